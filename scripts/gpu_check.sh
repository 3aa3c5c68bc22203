#!/usr/bin/env bash
# One prepared check for a GPU machine with PyTorch, onnx and CPU onnxruntime and no internet
# (onnxruntime-gpu / tensorrt, if wanted, are installed beforehand from wheels). Under 5 minutes:
#   fit 300 steps on CUDA -> export ONNX (fp32 and fp16, parity vs PyTorch checked by export)
#   -> torch fp16 vs fp32 PSNR -> TensorRT build + parity if tensorrt imports -> timings at
#   720p/1080p. Prints a markdown table; with $OUT set, writes gpu_check.md/.json and logs there.
# Usage: bash scripts/gpu_check.sh            (from the repository root)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python}"
[ -x .venv/bin/python ] && PY="${PYTHON:-.venv/bin/python}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
OUTDIR="${OUT:-$WORK}"
step() { echo; echo "== $* ($(date +%T))"; }

if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    echo "gpu_check: no CUDA GPU visible to PyTorch ($PY); nothing to check here." >&2
    exit 3
fi
if ! "$PY" -c "import b2g_deploy" 2>/dev/null; then
    "$PY" -m pip install --no-deps --no-build-isolation -e . >/dev/null  # no internet: no deps
fi
B2G=("$PY" -c "from b2g_deploy.cli import main; main()")

step "environment"
"${B2G[@]}" info | tee "$OUTDIR/info.txt"

step "noisy 720p frame (kodim03 or a synthetic scene, sigma 25, seed 0)"
"$PY" - "$WORK/noisy.png" <<'PY'
import sys, numpy as np, cv2
from b2g_deploy.export.parity import parity_image
from b2g_deploy.io.images import write_image
x = parity_image(3, (512, 768))[0]  # noisy crop; upscale to 720p for the timing-sized frame
x = np.stack([cv2.resize(c, (1280, 720), interpolation=cv2.INTER_CUBIC) for c in x]).clip(0, 1)
write_image(sys.argv[1], x, 8)
PY

step "fit 300 steps on CUDA (fast preset)"
timeout 120 "${B2G[@]}" fit "$WORK/noisy.png" --preset fast --device cuda --iters 300 \
    --single-pass -o "$WORK/fit_out.png" --checkpoint "$WORK/m.pt" 2>&1 | tail -n 3

step "export ONNX fp32 and fp16 (parity checked by export)"
timeout 90 "${B2G[@]}" export "$WORK/m.pt" --onnx "$WORK/m.onnx" | tee "$OUTDIR/export.txt"
timeout 90 "${B2G[@]}" export "$WORK/m.pt" --onnx "$WORK/m16.onnx" --fp16 | tee -a "$OUTDIR/export.txt"

step "fp16 PSNR, TensorRT, timings"
timeout 200 "$PY" scripts/gpu_check.py --checkpoint "$WORK/m.pt" --onnx "$WORK/m.onnx" \
    --frame "$WORK/noisy.png" --work "$WORK" --budget "${CHECK_BUDGET:-170}" | tee "$OUTDIR/gpu_check.log"
echo "gpu_check: done"
