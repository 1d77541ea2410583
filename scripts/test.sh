#!/usr/bin/env bash
# Sets up (scripts/setup.sh), then runs the whole test suite: the C++ tests (ctest) and the
# Python tests (pytest, including the model zoo against PyTorch and the ONNX conformance suite).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
(cd build && ctest --output-on-failure --parallel "$(nproc)" --timeout 600)

.venv/bin/python -m pytest tests/python -q "$@"
