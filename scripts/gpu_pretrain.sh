#!/usr/bin/env bash
# Pretrain a prior on a lent GPU in a fixed time (issue 8), and bring it back in $OUT (a few MB,
# resumable here with `pretrain --resume`). `--fit-to-budget` measures the speed first and sets
# the step count so that the learning-rate decay ends inside BUDGET: a fixed-time run ends
# decayed instead of cut off in its stable phase.
# The photographs travel with the working tree (the device copies only the repo, 64 MiB in
# all): `bash scripts/gpu_pretrain.sh --pack` copies part of ../shared/data/train into
# .gpudata/train (PACK_MB, default 44), leaving out the photographs the shipped RGB prior held
# out, so both priors can be validated here on the same unseen photographs; carry ".gpudata".
#
#   bash scripts/gpu_pretrain.sh --pack                          # here, once
#   KIND=rgb bash scripts/gpu_pretrain.sh                        # on the GPU machine
#   DEVICE=cpu BUDGET=20 KIND=t2 bash scripts/gpu_pretrain.sh    # a dry run on a CPU
# Env: KIND (rgb | t2: k=2 centred temporal | t2m: the same with a 64-channel head mixer |
#      t2c: k=2 causal), DEVICE (cuda), BUDGET (seconds, 540), BATCH (64; 32 for temporal),
#      CROP (128), LR (5e-4; 3e-4 for t2 and t2m), NOISE_ON_DEVICE (true), INIT (rgb and t2c: the
#      shipped RGB prior; t2 and t2m: the shipped centred prior `dI`; "none": from scratch),
#      LOG (default $OUT/pretrain_KIND.log).
# t2 and t2m continue the shipped centred prior on its own recipe (DIS-aligned windows, occluders,
# deformation, motion up to 6 px a frame: docs/PRIORS.md) at 16x its batch's pixels a step; t2m
# adds the head mixer, which gave nothing in 6,000 CPU steps, to test capacity at GPU scale.
set -uo pipefail
if [ "${1:-}" = "--pack" ]; then
    cd "$(dirname "$0")/.." && rm -rf .gpudata/train && mkdir -p .gpudata/train/bsds .gpudata/train/imagenet
    held=$("$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)" - <<'PYEOF'
import torch
print("\n".join(torch.load("b2g_deploy/data/prior_rgb.pt", weights_only=True)["meta"]["corpus"]["holdout"]))
PYEOF
)
    cap=$(( ${PACK_MB:-44} * 1000000 )) total=0
    # All of BSDS, then ImageNet photographs in a fixed shuffled order (its files are sorted by
    # class: a prefix would be fish and birds only).
    for f in ../shared/data/train/bsds397/* $(ls -d ../shared/data/train/imagenet712/* | shuf --random-source=<(yes)); do
        grep -qxF "$(basename "$f")" <<<"$held" && continue
        size=$(stat -c %s "$f"); total=$((total + size))
        [ $total -gt $cap ] && break
        case "$f" in *bsds397*) cp "$f" .gpudata/train/bsds/ ;; *) cp "$f" .gpudata/train/imagenet/ ;; esac
    done
    echo "packed $(find .gpudata/train -type f | wc -l) photographs, $(du -sh .gpudata/train | cut -f1)"; exit 0
fi
source "$(dirname "$0")/_gpu_env.sh" gpu_pretrain
DEVICE="${DEVICE:-cuda}"
KIND="${KIND:-rgb}"
case "${KIND:-rgb}" in t2|t2m) INIT="${INIT:-b2g_deploy/data/prior_rgb_t2.pt}" ;; esac
INIT="${INIT:-b2g_deploy/data/prior_rgb.pt}"
LOG="${LOG:-$OUTDIR/pretrain_$KIND.log}"
CFG="$WORK/pretrain.json"
EXTRA=()
case "$KIND" in
    rgb) NAME=prior_rgb_gpu.pt; BATCH="${BATCH:-64}"; MOTION="" ;;
    t2|t2m) NAME=prior_rgb_${KIND}_gpu.pt; BATCH="${BATCH:-32}"; LR="${LR:-3e-4}"; EXTRA=(--temporal-k 2)
        MOTION=', "motion_max": 6.0, "deform": 6.0, "occluders": 0.5, "align": "dis"'
        [ "$KIND" = t2m ] && MOTION="$MOTION, \"temporal_mixer\": 64" ;;
    t2c) NAME=prior_rgb_t2c_gpu.pt; BATCH="${BATCH:-32}"; EXTRA=(--temporal-k 2 --causal); MOTION=', "motion_max": 3.0' ;;
    *) echo "gpu_pretrain: KIND must be rgb, t2, t2m or t2c" >&2; exit 2 ;;
esac
[ "$INIT" != none ] && EXTRA+=(--init-from "$INIT")
# Masks and noise drawn on the GPU: on 2026-11-28 the H200 ran 6.6 steps/s (3.3 temporal) because
# its CPU drew them (~0.1-0.2 s a step); NOISE_ON_DEVICE=false keeps a seed's run device-independent.
echo "{\"batch\": $BATCH, \"crop\": ${CROP:-128}, \"lr\": ${LR:-5e-4}, \"noise_on_device\": ${NOISE_ON_DEVICE:-true}$MOTION}" > "$CFG"
echo "== pretrain $KIND: $(cat "$CFG") ${EXTRA[*]} budget ${BUDGET:-540} s ($(date +%T))" | tee -a "$LOG"
# SIGINT a minute after the budget (loading and saving) still writes a resumable prior.
timeout -s INT -k 30 $(( ${BUDGET:-540} + 60 )) "$PY" -m b2g_deploy.cli pretrain "$DATA/train" \
    -o "$OUTDIR/$NAME" --objective noisy --steps 10000000 --time-budget "${BUDGET:-540}" --fit-to-budget \
    --config "$CFG" --device "$DEVICE" --save-every 60 --force "${EXTRA[@]}" 2>&1 | tail -n 5 | tee -a "$LOG"
[ -f "$OUTDIR/$NAME" ] || { echo "no $OUTDIR/$NAME was written" | tee -a "$LOG"; exit 1; }
"$PY" - "$OUTDIR/$NAME" <<'PYEOF' 2>&1 | tee -a "$LOG"
import sys, torch
meta = torch.load(sys.argv[1], weights_only=True)["meta"]
print(f"steps {meta['steps']} of {meta['pretrain_config']['steps']} in {meta['seconds']:.0f} s "
      f"({meta['steps'] / max(meta['seconds'], 1e-9):.1f} steps/s)")
for h in meta["history"]:
    print(f"step {h['step']:7d}  {h['seconds']:7.1f} s  lr {h['lr']:.2e}  val f(y) {h.get('val_psnr', float('nan')):.2f} dB")
PYEOF
