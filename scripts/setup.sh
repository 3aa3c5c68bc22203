#!/usr/bin/env bash
# Set up .venv with b2g-deploy and its test/benchmark tools.
# On a machine without an NVIDIA GPU the CPU build of PyTorch goes in first, so that the
# package's torch requirement is already met and pip does not fetch a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    .venv/bin/python -m pip install -q "torch>=2.4,<2.15"
  else
    .venv/bin/python -m pip install -q torch==2.13.0
  fi
fi
.venv/bin/python -m pip install -q -e ".[dev,bench,openvino]"
# The serve environment (.venv-serve) for `b2g-deploy serve` and its end-to-end test; B2G_NO_SERVE=1
# skips it. Where nvidia-pytriton has no wheel (not Linux with glibc >= 2.35) it is a warning here.
if [ "${B2G_NO_SERVE:-0}" != "1" ]; then
  bash scripts/setup_serve.sh || echo "warning: scripts/setup_serve.sh failed: b2g-deploy serve will not run here" >&2
fi
