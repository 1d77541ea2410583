#!/usr/bin/env bash
# Kiln in one command: sets up and builds (scripts/setup.sh), then runs ResNet-50 through Kiln and
# PyTorch on the same input and prints the largest output difference and both latencies
# (scripts/demo.py; extra arguments go to it, e.g. --threads 1). The first run also builds the
# model (about a minute); later runs take well under two minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python scripts/demo.py "$@"
