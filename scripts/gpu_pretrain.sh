#!/usr/bin/env bash
# Pretrain the RGB prior on a lent GPU in under 10 minutes (issue 8), as ONE command, and
# bring the prior back in $OUT (about 2.4 MB, resumable here with `pretrain --resume`).
# The photographs must travel with the working tree (the device copies only the repo, 64 MiB
# of carried paths in all): `bash scripts/gpu_pretrain.sh --pack` copies the BSDS part of
# ../shared/data/train (29 MB) and ImageNet samples up to ~55 MB into .gpudata/train; carry
# ".gpudata" with the run.
#
#   bash scripts/gpu_pretrain.sh --pack                      # here, once
#   bash scripts/gpu_pretrain.sh                             # on the GPU machine
#   DEVICE=cpu STEPS=20 BUDGET=60 bash scripts/gpu_pretrain.sh   # a dry run on a CPU
# Env: DEVICE (cuda), STEPS (12000), BUDGET (seconds, 540), BATCH (32), CROP (128), TEMPORAL_K
# (unset; 2: the k=2 temporal prior, docs/PRIORS.md).
set -uo pipefail
if [ "${1:-}" = "--pack" ]; then
    cd "$(dirname "$0")/.." && mkdir -p .gpudata/train
    cp -r ../shared/data/train/bsds397 .gpudata/train/
    mkdir -p .gpudata/train/imagenet && total=0
    for f in ../shared/data/train/imagenet712/*; do
        size=$(stat -c %s "$f"); total=$((total + size))
        [ $total -gt 26000000 ] && break
        cp "$f" .gpudata/train/imagenet/
    done
    du -sh .gpudata/train; exit 0
fi
source "$(dirname "$0")/_gpu_env.sh" gpu_pretrain
DEVICE="${DEVICE:-cuda}"
CFG="$WORK/pretrain.json"
# TEMPORAL_K=2: the temporal prior instead (docs/PRIORS.md), started from the shipped RGB prior.
NAME=prior_rgb_gpu.pt
EXTRA=()
if [ -n "${TEMPORAL_K:-}" ]; then
  NAME="prior_rgb_t${TEMPORAL_K}_gpu.pt"
  EXTRA=(--temporal-k "$TEMPORAL_K" --init-from b2g_deploy/data/prior_rgb.pt)
  echo "{\"batch\": ${BATCH:-32}, \"crop\": ${CROP:-128}, \"lr\": 5e-4, \"motion_max\": 3.0}" > "$CFG"
else
  echo "{\"batch\": ${BATCH:-32}, \"crop\": ${CROP:-128}}" > "$CFG"
fi
nvidia-smi -L 2>/dev/null | tee "$OUTDIR/run.log"
# SIGINT at the budget's end (plus a minute for loading and saving) still writes the prior.
timeout -s INT -k 30 $(( ${BUDGET:-540} + 60 )) "$PY" -m b2g_deploy.cli pretrain "$DATA/train" \
    -o "$OUTDIR/$NAME" --objective noisy --steps "${STEPS:-12000}" --time-budget "${BUDGET:-540}" \
    --config "$CFG" --device "$DEVICE" --save-every 60 --force "${EXTRA[@]}" 2>&1 | tail -n 5 | tee -a "$OUTDIR/run.log"
"$PY" - "$OUTDIR/$NAME" <<'PYEOF' | tee -a "$OUTDIR/run.log"
import sys, torch
meta = torch.load(sys.argv[1], weights_only=True)["meta"]
print(f"steps {meta['steps']} in {meta['seconds']:.0f} s ({meta['steps'] / max(meta['seconds'], 1e-9):.1f} steps/s)")
for h in meta["history"]:
    print(f"step {h['step']:6d}  {h['seconds']:7.1f} s  val f(y) {h.get('val_psnr', float('nan')):.2f} dB")
PYEOF
