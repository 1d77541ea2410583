#!/usr/bin/env bash
# Installs what Kiln needs on Debian 12 (as root), makes the venv .venv from Debian's Python
# 3.11 (/usr/bin/python3, which sees Debian's PyTorch, torchvision and ONNX), and builds.
# libdnnl-dev only recommends ocl-icd-opencl-dev, but its CMake config requires OpenCL (Debian's
# oneDNN is built with the OpenCL GPU runtime), so it is listed here.
# Safe to run again: each step skips what is already done.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=(cmake ninja-build g++ ccache pkg-config libdnnl-dev ocl-icd-opencl-dev libonnx-dev libprotobuf-dev
  protobuf-compiler pybind11-dev libgtest-dev libbenchmark-dev python3-dev python3-venv python3-numpy python3-onnx
  python3-pytest python3-torch python3-torchvision libonnx-testdata)
missing=()
for p in "${apt_packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  /usr/bin/python3 -m venv --system-site-packages .venv
fi

# The venv sees the sources and the build's compiled core, so `.venv/bin/python -c "import kiln"` works.
site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
printf '%s\n%s\n' "$PWD/build/py" "$PWD/python" > "$site/kiln-dev.pth"

export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/kiln-ccache}
export CCACHE_BASEDIR="$PWD"  # paths relative to the checkout: a fresh clone reuses the cache
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DPython3_EXECUTABLE="$PWD/.venv/bin/python" >/dev/null
cmake --build build --parallel "$(nproc)"
