# Set-up shared by gpu_bench.sh and gpu_sweep.sh (sourced, with the default output folder's
# name as $1): the repo root as working folder, $PY (python3 on a GPU machine, the venv here
# unless PYTHON is set) with the package on its path, $DATA (.gpudata when carried there, else
# ../shared/data), $OUTDIR ($OUT, else runs/$1) and a $WORK folder removed on exit.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] && [ -z "${PYTHON:-}" ] && PY=.venv/bin/python
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
DATA="${DATA:-$([ -d .gpudata ] && echo .gpudata || echo ../shared/data)}"
OUTDIR="${OUT:-runs/$1}"
mkdir -p "$OUTDIR"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
