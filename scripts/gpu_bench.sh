#!/usr/bin/env bash
# Everything a lent GPU machine is for, as ONE command (device time is scarce and each start
# costs minutes): the GPU tests, scripts/gpu_check.sh (CUDA fit, export, parity, timings),
# the `paper` preset and ZS-N2N on Kodak24 on the GPU (issue 2), and a long `fast` fit's PSNR
# against time (does more fitting close the gap to BM3D?). Each stage has its own time limit
# and is stopped with SIGINT, which the benchmarks turn into "keep the rows so far", so a slow
# stage costs its own rows only. Results land in $OUT (or runs/gpu_bench): run.log, the JSON
# of each benchmark and gpu_check.md/.json; at most 8 files, what the device tool brings back.
#
#   bash scripts/gpu_bench.sh                      # on the GPU machine, from the repo root
#   DEVICE=cpu PAPER_PRESET=tiny LIMIT=1 CURVE_ITERS=60 QUALITY_S=60 bash scripts/gpu_bench.sh
#                                                  # a dry run of the plumbing on a CPU
# Env: DATA (folder with Kodak24/; default ../shared/data, or .gpudata when that exists),
#      PYTHON, DEVICE (cuda), PAPER_PRESET (paper), LIMIT (3), NOISES (25,50),
#      CURVE_ITERS (5000), TESTS_S/QUALITY_S/CURVE_S/CHECK_S (stage limits in seconds).
set -uo pipefail
source "$(dirname "$0")/_gpu_env.sh" gpu_bench
DEVICE="${DEVICE:-cuda}"
LOG="$OUTDIR/run.log"

# stage NAME SECONDS CMD...: run CMD under a time limit (SIGINT first, KILL 15 s later), log it.
stage() {
    local name="$1" secs="$2"
    shift 2
    echo "== $name (limit ${secs} s, $(date +%T))" | tee -a "$LOG"
    local t0=$SECONDS
    timeout -s INT -k 15 "$secs" "$@" 2>&1 | tee -a "$LOG"
    local rc=${PIPESTATUS[0]}
    echo "== $name: exit $rc after $((SECONDS - t0)) s" | tee -a "$LOG"
}

# Nothing below can work without the package: stop here rather than spend device time on errors.
"$PY" -c "import b2g_deploy.config, b2g_deploy.cli" || { echo "gpu_bench: cannot import b2g_deploy" | tee -a "$LOG"; exit 1; }
stage environment 60 "$PY" -c "from b2g_deploy.cli import main; main()" info
if command -v nvidia-smi >/dev/null; then nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee -a "$LOG"; fi

stage gpu-tests "${TESTS_S:-75}" "$PY" -m pytest -q -p no:cacheprovider tests/gpu

stage quality "${QUALITY_S:-200}" "$PY" benchmarks/bench_quality.py --sets Kodak24 \
    --limit "${LIMIT:-3}" --noises "${NOISES:-25,50}" --methods b2g,zsn2n,nlm \
    --preset "${PAPER_PRESET:-paper}" --device "$DEVICE" --data "$DATA" --no-doc \
    --json "$OUTDIR/quality_gpu.json"

stage psnr-time "${CURVE_S:-80}" "$PY" benchmarks/bench_psnr_time.py --image kodim03.png \
    --preset fast --iters "${CURVE_ITERS:-5000}" --every 5 --methods b2g --device "$DEVICE" \
    --data "$DATA" --no-doc --png "$OUTDIR/psnr_time_gpu.png" --json "$OUTDIR/psnr_time_gpu.json"

# gpu_check.sh writes five files; only its table and JSON come back (the 8-file limit).
OUT="$WORK" CHECK_BUDGET=100 stage gpu-check "${CHECK_S:-170}" env PYTHON="$PY" bash scripts/gpu_check.sh
cp "$WORK"/gpu_check.md "$WORK"/gpu_check.json "$OUTDIR"/ 2>/dev/null || true
echo "== done ($(date +%T)); files in $OUTDIR:" | tee -a "$LOG"
ls "$OUTDIR" | tee -a "$LOG"
