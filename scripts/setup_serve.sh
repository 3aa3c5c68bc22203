#!/usr/bin/env bash
# Set up .venv-serve: the environment `b2g-deploy serve` runs Triton in (docs/SERVING.md).
#
# PyTriton's Triton Python-backend stub is built against the NumPy 1.x ABI and imports NumPy
# from the serving interpreter's environment (its embedded Python ignores PYTHONPATH); with
# NumPy 2 every response comes back empty. So the server gets its own small environment:
# NumPy < 2, ONNX Runtime, nvidia-pytriton (which bundles tritonserver, ~370 MB installed) and
# this package without its dependencies (the server imports only its runtime layer). .venv
# keeps NumPy 2 and finds this environment by itself.
#
# nvidia-pytriton ships wheels for Linux x86_64 and aarch64 with glibc >= 2.35 only; elsewhere
# this script fails and `b2g-deploy serve` says what is missing (denoise --server still works).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv-serve/bin/python ] || "$PY" -m venv .venv-serve
.venv-serve/bin/python -m pip install -q --upgrade pip
.venv-serve/bin/python -m pip install -q "numpy>=1.24,<2" "onnxruntime>=1.17" "nvidia-pytriton>=0.7,<0.8"
.venv-serve/bin/python -m pip install -q --no-deps -e .
.venv-serve/bin/python -c "import numpy, pytriton, onnxruntime, b2g_deploy.serving.server; print('serve environment: numpy', numpy.__version__)"
