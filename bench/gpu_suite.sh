#!/usr/bin/env bash
# Issue 13's GPU measurements in one command (see bench/gpu_suite.py and README "GPU performance").
#   bash bench/gpu_suite.sh            # on a GPU: about 6 minutes; writes bench/results/DATE_GPU.jsonl
#   bash bench/gpu_suite.sh --smoke    # the same code on tiny shapes, CPU, a couple of minutes
# On a machine without fairseq and without network, wheels carried in bench/wheels/ (bench/fetch_wheels.sh fills
# it) are installed once into /tmp/ssr-site, which goes on PYTHONPATH with the repository itself.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
py="${PYTHON:-}"
if [[ -z "$py" ]]; then
  if [[ -x "$repo/.venv/bin/python" ]]; then py="$repo/.venv/bin/python"; else py=python3; fi
fi
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
if ! "$py" -c "import fairseq" 2>/dev/null; then
  if [[ ! -d "$here/wheels" ]]; then
    echo "gpu_suite.sh: fairseq is not importable by $py and $here/wheels is missing (run bench/fetch_wheels.sh)" >&2
    exit 2
  fi
  site=/tmp/ssr-site
  if [[ ! -d "$site/fairseq" ]]; then
    "$py" -m pip install -q --no-index --no-deps --no-build-isolation --target "$site" "$here"/wheels/*
  fi
  export PYTHONPATH="$site:$PYTHONPATH"
fi
exec "$py" "$here/gpu_suite.py" "$@"
