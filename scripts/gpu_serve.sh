#!/usr/bin/env bash
# Issue 11 on a GPU, as ONE command: `b2g-deploy serve` (Triton through PyTriton) holding the
# `fast` network on the GPU, loaded by 1, 4 and 16 clients at 360p and 720p, beside the same
# frames through the local runtime in one process (benchmarks/bench_serve.py). Results:
# $OUT/serve.json and $OUT/gpu_serve.log (else runs/gpu_serve/).
#
# The serve python needs nvidia-pytriton, NumPy < 2 and tritonclient (scripts/setup_serve.sh
# makes .venv-serve with them) plus onnxruntime-gpu (DEVICE=cuda) or tensorrt (DEVICE=tensorrt,
# the default: ONNX Runtime's TensorRT provider builds the plan). On a GPU machine with a package
# registry: `bash scripts/setup_serve.sh && .venv-serve/bin/pip install onnxruntime-gpu tensorrt`.
# Offline, wheels in $WHEELS (default .gpuwheels) are installed into the serve python first.
# This workplace's lent H200 cannot run it: the PyTriton wheel alone is 55 MB, NumPy 1.26 18 MB
# and onnxruntime-gpu / tensorrt hundreds, over the 64 MiB that travels to that machine.
#
#   bash scripts/gpu_serve.sh                          # on the GPU machine, from the repo root
#   DEVICE=cpu SECONDS_PER_CELL=1 CLIENTS=1,4 SIZES=360p bash scripts/gpu_serve.sh   # CPU dry run
# Env: DEVICE (tensorrt | cuda | cpu), SECONDS_PER_CELL (5), CLIENTS (1,4,16), SIZES
#      (360p,720p), THREADS (4), SERVE_PYTHON (default: .venv-serve/bin/python).
set -uo pipefail
source "$(dirname "$0")/_gpu_env.sh" gpu_serve
DEVICE="${DEVICE:-tensorrt}"
SERVE_PY="${SERVE_PYTHON:-.venv-serve/bin/python}"
LOG="$OUTDIR/gpu_serve.log"
WHEELS="${WHEELS:-.gpuwheels}"
if [ -d "$WHEELS" ] && ls "$WHEELS"/*.whl >/dev/null 2>&1; then
    echo "== installing the wheels in $WHEELS into $SERVE_PY (offline)" | tee -a "$LOG"
    "$SERVE_PY" -m pip install -q --no-index --find-links "$WHEELS" "$WHEELS"/*.whl 2>&1 | tail -n 3 | tee -a "$LOG"
fi
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee -a "$LOG"
"$SERVE_PY" -c "import pytriton, numpy; print('pytriton ok, numpy', numpy.__version__)" 2>&1 | tail -n 1 | tee -a "$LOG"

# A `fast` network: a few steps from the shipped prior on the parity image (the weights do not
# change the speed), exported with the parity check.
B2G=("$PY" -m b2g_deploy.cli)
"${B2G[@]}" fit b2g_deploy/data/parity_kodim03_256.png --iters 5 -o "$WORK/fit.png" \
    --checkpoint "$WORK/fast.pt" 2>&1 | tail -n 1 | tee -a "$LOG"
"${B2G[@]}" export "$WORK/fast.pt" --onnx "$WORK/fast.onnx" 2>&1 | tail -n 2 | tee -a "$LOG"

export B2G_SERVE_PYTHON="$SERVE_PY"
timeout -s INT -k 15 "${LIMIT:-420}" "$PY" benchmarks/bench_serve.py --model "$WORK/fast.onnx" \
    --device "$DEVICE" --seconds "${SECONDS_PER_CELL:-5}" --clients "${CLIENTS:-1,4,16}" \
    --sizes "${SIZES:-360p,720p}" --threads "${THREADS:-4}" --json "$OUTDIR/serve.json" 2>&1 | tee -a "$LOG"
rc=${PIPESTATUS[0]}
echo "== gpu_serve: exit $rc" | tee -a "$LOG"
exit "$rc"
