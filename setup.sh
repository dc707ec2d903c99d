#!/usr/bin/env bash
# Set up (or update) the project's virtual environment in .venv: the package with its test extra, the Debian
# packages the scorers need, then a check that fairseq, transformers and the plugin all import. Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3

# ROUGE-1.5.5 (files2rouge) needs perl's XML::Parser; METEOR (QG metrics) needs Java.
need=()
perl -MXML::Parser -e1 2>/dev/null || need+=(libxml-parser-perl)
command -v java >/dev/null || need+=(default-jre-headless)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  echo "+ $sudo apt-get install ${need[*]}" >&2
  if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"; }; then
    echo "setup.sh: could not install ${need[*]} (ROUGE and METEOR need them); install them and re-run" >&2
    exit 1
  fi
fi

set -x
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# the known-good torch for this machine first (the CPU build lies on local disk); setup.py's range then keeps it.
# A venv that already has a torch (another CUDA build, say) keeps that one; TORCH=... picks another.
.venv/bin/python -c "import torch" 2>/dev/null || .venv/bin/pip install -q "${TORCH:-torch==2.13.0}"
.venv/bin/pip install -q -e '.[test]'
# ve-fairseq requires torchaudio, and pip picks a build made for another torch: it fails to load and makes
# transformers' models fail to import. fairseq's text tasks never import it, so it goes.
.venv/bin/pip uninstall -q -y torchaudio 2>/dev/null || true
.venv/bin/python -c "import fairseq_ssr, fairseq, transformers; print('fairseq', fairseq.__version__, '| transformers', transformers.__version__, '| fairseq_ssr ok')"
