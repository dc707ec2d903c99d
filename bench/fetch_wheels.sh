#!/usr/bin/env bash
# Fill bench/wheels/ (git-ignored) with what bench/gpu_suite.sh installs on an offline GPU machine that has torch and
# transformers but no fairseq (seen: Python 3.12). Run here, where pip reaches an index; then carry bench/wheels.
#   bash bench/fetch_wheels.sh [PYTHON_VERSION]      # default 3.12
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
pyver="${1:-3.12}"
pip="${PIP:-$here/../.venv/bin/pip}"
mkdir -p "$here/wheels"
"$pip" download -q --no-deps --only-binary=:all: --python-version "$pyver" --implementation cp \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 \
  -d "$here/wheels" ve-fairseq==0.12.3 hydra-core==1.3.8 omegaconf==2.3.1 bitarray sentencepiece
"$pip" download -q --no-deps --no-binary=:all: -d "$here/wheels" antlr4-python3-runtime==4.9.3
ls -l "$here/wheels"
