#!/usr/bin/env bash
# Set up (or update) the project's virtual environment in .venv: the package with its test extra, then a check
# that fairseq, transformers and the plugin all import. Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
set -x
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/pip install -q -e '.[test]'
# ve-fairseq requires torchaudio, and pip picks a build made for another torch: it fails to load and makes
# `import transformers` die. fairseq's text tasks never import it, so it goes.
.venv/bin/pip uninstall -q -y torchaudio 2>/dev/null || true
.venv/bin/python -c "import fairseq, transformers, fairseq_ssr; print('fairseq', fairseq.__version__, '| transformers', transformers.__version__, '| fairseq_ssr ok')"
