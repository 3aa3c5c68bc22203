#!/usr/bin/env bash
# What one GPU lease is for, as ONE command (a session has 15 minutes of device time and each
# machine start costs one or two), in the brief's order of value:
#   1. the temporal network's throughput at 720p (scripts/gpu_temporal.sh: torch fp16 network and
#      end to end, with and without DIS alignment; issue 9's 200 fps target; and the output fusion
#      in torch on the GPU, `--fuse-flow lk`), about two minutes;
#   2. then, side by side on the GPU for the rest of TOTAL, three temporal priors pretrained with
#      budget-fitted schedules (scripts/gpu_pretrain.sh; issue 9, whose σ=25 gap is what is left):
#      the shipped centred prior continued on its own recipe at batch 32, crop 128 (t2), the same
#      with a 64-channel head mixer (t2m: capacity at scale), and the k=2 causal prior (t2c);
#   3. beside them, the GPU tests (tests/gpu).
# Results in $OUT (at most 8 files come back): session.log, pretrain.log, the three priors,
# gpu_temporal.json, gpu_temporal.md, gpu_temporal_run.log.
#
#   bash scripts/gpu_session.sh --prepare      # here, once: the photographs into .gpudata and the
#                                              # wheels the device's python lacks into .whl
#   bash scripts/gpu_session.sh                # on the GPU machine (carry .gpudata and .whl), run
#                                              # with timeout_s 600
#   DEVICE=cpu TOTAL=100 bash scripts/gpu_session.sh   # the plumbing on a CPU (tiny, meaningless)
# Env: TOTAL (seconds the whole takes, 575), DEVICE (cuda), KINDS ("t2 t2m t2c"; rgb may be added).
set -uo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--prepare" ]; then
    bash scripts/gpu_pretrain.sh --pack || exit 1
    # The H200 image (Python 3.12) has torch, onnx, onnxruntime, opencv and numpy but not these
    # (2026-11-28); versions as in .venv.
    mkdir -p .whl
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
        pydantic==2.14.4 pydantic_core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 \
        typing_extensions==4.16.0 typer==0.29.2 annotated-doc==0.0.7 rich==15.0.0 || exit 1
    du -sh .gpudata .whl; exit 0
fi
START=$SECONDS
export OUT="${OUT:-runs/gpu_session}"
mkdir -p "$OUT"
LOG="$OUT/session.log"
DEVICE="${DEVICE:-cuda}"
TOTAL="${TOTAL:-575}"
say() { echo "== $* (t=$((SECONDS - START)) s, $(date +%T))" | tee -a "$LOG"; }

if ls .whl/*.whl >/dev/null 2>&1; then  # the device's python: the packages it lacks, offline
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        .whl/*.whl 2>&1 | tail -n 2 | tee -a "$LOG"
    export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
[ -x .venv/bin/python ] && [ -z "${PYTHON:-}" ] && export PYTHON=.venv/bin/python
export PYTHON="${PYTHON:-python3}" PYTHONUNBUFFERED=1
say "start: $("$PYTHON" -c 'import torch; print("torch", torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else "no CUDA")' 2>&1 | tail -n 1)"
PYTHONPATH="$PWD:$PYTHONPATH" "$PYTHON" -c "import b2g_deploy.api, b2g_deploy.cli" 2>&1 | tail -n 3 | tee -a "$LOG"
PYTHONPATH="$PWD:$PYTHONPATH" "$PYTHON" -c "import b2g_deploy.api, b2g_deploy.cli" 2>/dev/null \
    || { say "cannot import b2g_deploy: stopping"; exit 1; }
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee -a "$LOG"

say "1. temporal throughput"
SMOKE=()
[ "$DEVICE" = cpu ] && SMOKE=(--cpu-smoke)
SMOKE_OUT="$OUT" BUDGET="${TEMPORAL_BUDGET:-70}" timeout -s INT -k 10 "${TEMPORAL_LIMIT:-130}" \
    bash scripts/gpu_temporal.sh "${SMOKE[@]}" >>"$LOG" 2>&1
say "temporal throughput: exit $?"

# 2 and 3: the pretraining budget is what is left, less loading (~15 s) and saving at the end.
BUDGET=$(( TOTAL - (SECONDS - START) - 45 ))
say "2. pretraining ${KINDS:-t2 t2m t2c} side by side, budget $BUDGET s each"
pids=()
for kind in ${KINDS:-t2 t2m t2c}; do
    OMP_NUM_THREADS=4 KIND=$kind BUDGET=$BUDGET DEVICE=$DEVICE LOG="$OUT/.pretrain_$kind.log" \
        bash scripts/gpu_pretrain.sh >/dev/null 2>&1 &
    pids+=($!)
done
if [ "$DEVICE" = cuda ]; then
    say "3. GPU tests"
    OMP_NUM_THREADS=2 timeout -s INT -k 10 120 "$PYTHON" -m pytest -q -p no:cacheprovider tests/gpu 2>&1 \
        | tail -n 15 | tee -a "$LOG"
fi
wait "${pids[@]}"
cat "$OUT"/.pretrain_*.log > "$OUT/pretrain.log" 2>/dev/null
rm -f "$OUT"/.pretrain_*.log
cat "$OUT/pretrain.log" >> "$LOG"
say "done; files: $(ls "$OUT" | tr '\n' ' ')"
