#!/usr/bin/env bash
# Temporal (multi-frame) throughput at 720p on a GPU, as ONE command (issue 9's target: 720p
# >= 200 fps end to end with torch fp16). scripts/gpu_temporal.py does the work: a k=2 centred
# TemporalB2GNet of the `fast` preset's shape (from the shipped prior; or CHECKPOINT=a fitted one),
# exported to ONNX; an fp16 TensorRT engine for its windows when tensorrt imports (the checked
# build of `export --trt`, parity included); a noisy 720p clip; then per runtime (torch fp16,
# TensorRT, torch fp32, ONNX Runtime CUDA when onnxruntime-gpu is there) the network alone and
# the video pipeline end to end (decode -> ring buffer -> runtime -> encode), and the I/O alone.
# Needs only the repository and what the GPU image has (python3 with torch, onnx, onnxruntime,
# opencv, typer, rich, pydantic); wheels in $WHEELS (default .gpuwheels/, e.g. tensorrt or
# onnxruntime-gpu, carried along) are installed offline first. Under ~6 minutes: the stages have
# their own time limits. Writes gpu_temporal.json (naming the card) and gpu_temporal.md, with
# run.log beside them, to $OUT, else benchmarks/results/gpu/.
#
#   bash scripts/gpu_temporal.sh                          # on the GPU machine, from the repo root
#   bash scripts/gpu_temporal.sh --cpu-smoke              # the plumbing on a CPU, tiny sizes,
#                                                         # results in /tmp/gpu_temporal_smoke/
# Env: PYTHON, OUT, WHEELS, CHECKPOINT (a temporal .pt), FRAMES (120), BATCH (4), RUNS (20),
#      CODEC (hfyu), TRT_FP32 (1: also an fp32 engine), BUDGET (measurement seconds, 200).
set -uo pipefail
export OUT="${OUT:-benchmarks/results/gpu}"
source "$(dirname "$0")/_gpu_env.sh" gpu_temporal
LOG="$OUTDIR/gpu_temporal_run.log"
SMOKE=0
[ "${1:-}" = "--cpu-smoke" ] && SMOKE=1
[ "$SMOKE" = 1 ] && LOG="$WORK/run.log"  # a dry run writes nothing under benchmarks/

echo "== gpu_temporal ($(date +%T))" | tee "$LOG"
WHEELS="${WHEELS:-.gpuwheels}"
if [ -d "$WHEELS" ] && ls "$WHEELS"/*.whl >/dev/null 2>&1; then
    echo "== installing the wheels in $WHEELS (offline)" | tee -a "$LOG"
    "$PY" -m pip install -q --no-index --find-links "$WHEELS" "$WHEELS"/*.whl 2>&1 | tail -n 3 | tee -a "$LOG"
fi
# Nothing below can work without the package: stop here rather than spend device time on errors.
"$PY" -c "import b2g_deploy.api, b2g_deploy.config" 2>&1 | tail -n 2 | tee -a "$LOG"
"$PY" -c "import b2g_deploy.api, b2g_deploy.config" 2>/dev/null || { echo "gpu_temporal: cannot import b2g_deploy" | tee -a "$LOG"; exit 1; }
if [ "$SMOKE" = 0 ]; then
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee -a "$LOG"
    "$PY" -c "import tensorrt; print('tensorrt', tensorrt.__version__)" 2>&1 | tail -n 1 | tee -a "$LOG"
    "$PY" -c "import onnxruntime as o; print('onnxruntime', o.__version__, o.get_available_providers())" 2>&1 | tail -n 1 | tee -a "$LOG"
fi

if [ "$SMOKE" = 1 ]; then  # results in /tmp, nothing under benchmarks/
    ARGS=(--out "${SMOKE_OUT:-/tmp/gpu_temporal_smoke}" --work "$WORK/work" --cpu-smoke --budget 120)
else
    ARGS=(--out "$OUTDIR" --work "$WORK" --budget "${BUDGET:-200}")
fi
# HuffYUV: lossless like FFV1, ~5x faster to write (docs/BENCHMARKS.md, "Video codecs"); on the
# 2026-11-28 lease FFV1 alone capped the file output at 9.3 fps. CODEC=ffv1 measures the default.
ARGS+=(--frames "${FRAMES:-120}" --batch "${BATCH:-4}" --runs "${RUNS:-20}" --codec "${CODEC:-hfyu}")
[ -n "${CHECKPOINT:-}" ] && ARGS+=(--checkpoint "$CHECKPOINT")
[ "${TRT_FP32:-0}" = 1 ] && ARGS+=(--trt-fp32)
# One stage: model + export, the clip, the engine build(s) (a minute or two each), then the
# measurements under --budget; the whole is stopped at 330 s (SIGINT, then KILL 15 s later).
timeout -s INT -k 15 330 "$PY" scripts/gpu_temporal.py "${ARGS[@]}" 2>&1 | tee -a "$LOG"
rc=${PIPESTATUS[0]}
echo "== gpu_temporal: exit $rc ($(date +%T))" | tee -a "$LOG"
exit "$rc"
