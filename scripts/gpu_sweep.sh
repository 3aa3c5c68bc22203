#!/usr/bin/env bash
# Side-by-side B2G variants on one GPU (benchmarks/bench_sweep.py), one process per variant:
# each fit is launch-bound and leaves the GPU mostly idle, so eight run at once in about the
# time of one. Writes $OUT/sweep.json (all variants) and $OUT/sweep.log.
#   bash scripts/gpu_sweep.sh                  # on the GPU machine, from the repo root
#   DEVICE=cpu BUDGET=10 ITERS=20 EVERY=5 ONLY=2 bash scripts/gpu_sweep.sh   # plumbing dry run
set -uo pipefail
source "$(dirname "$0")/_gpu_env.sh" gpu_sweep
export OMP_NUM_THREADS=2  # each of the side-by-side processes gets two of the 16 cores
BUDGET="${BUDGET:-120}"

VARIANTS=(
    'fast base|fast|{}'
    'dropout none|fast|{"model": {"dropout": "none"}}'
    'omega 0 (blind-spot + distill)|fast|{"loss": {"omega": 0.0}}'
    'crop 128 batch 8|fast|{"crop": 128, "batch": 8}'
    'lr 1e-3|fast|{"lr": 0.001}'
    'bernoulli, no dropout, omega 0|fast|{"mask": {"kind": "bernoulli"}, "model": {"dropout": "none"}, "loss": {"omega": 0.0}}'
    'width 64|fast|{"model": {"width": 64}}'
    'paper, lr 2e-4|paper|{"lr": 0.0002}'
    'no dropout, crop 128 batch 8, lr 1e-3|fast|{"model": {"dropout": "none"}, "crop": 128, "batch": 8, "lr": 0.001}'
    'no dropout, width 64|fast|{"model": {"width": 64, "dropout": "none"}}'
)
i=0
for v in "${VARIANTS[@]:0:${ONLY:-${#VARIANTS[@]}}}"; do
    IFS='|' read -r name preset change <<<"$v"
    timeout -s INT -k 15 $((BUDGET + ${SCORE_S:-90})) "$PY" benchmarks/bench_sweep.py --name "$name" --preset "$preset" \
        --change "$change" --iters "${ITERS:-3000}" --time-budget "$BUDGET" --every "${EVERY:-20}" \
        --device "${DEVICE:-cuda}" --data "$DATA" --json "$WORK/v$i.json" >"$WORK/v$i.log" 2>&1 &
    i=$((i + 1))
done
wait
cat "$WORK"/v*.log | tee "$OUTDIR/sweep.log"
"$PY" -c "import json,sys,glob; json.dump([json.load(open(p)) for p in sorted(glob.glob(sys.argv[1]+'/v*.json'))], open(sys.argv[2],'w'), indent=1)" \
    "$WORK" "$OUTDIR/sweep.json"
echo "gpu_sweep: $(ls "$WORK"/v*.json 2>/dev/null | wc -l) of $i variants written to $OUTDIR/sweep.json"
