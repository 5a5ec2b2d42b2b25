#!/usr/bin/env bash
# Set up (scripts/setup.sh), then the main job: train and evaluate every model on the embedded
# Moving MNIST at the `auto` preset (`paper` on a CUDA device, else `cpu`), and report. Finished
# runs of an identical configuration are read back, not retrained (delete results/ to retrain).
#   PRESET=smoke bash scripts/main.sh        # seconds, to check the plumbing
#   MNIST_DIR=/path/to/mnist bash scripts/main.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH" MPLBACKEND=Agg
PRESET=${PRESET:-auto}
DATASET=${DATASET:-mmnist}
RESULTS=${RESULTS:-results}
# the MNIST test digits: given, else the offline copy beside this checkout, else the cache/fallback
MNIST_DIR=${MNIST_DIR:-}
[ -n "$MNIST_DIR" ] || { [ -d ../shared/data/mnist ] && MNIST_DIR=../shared/data/mnist; } || true
mkdir -p "$RESULTS/notebooks"
papermill nbs/main_results.ipynb "$RESULTS/notebooks/main_results_${DATASET}_${PRESET}.ipynb" \
  -p preset "$PRESET" -p dataset "$DATASET" -p out_dir "$RESULTS" -p mnist_dir "$MNIST_DIR" -p reuse True
papermill reports/report.ipynb "$RESULTS/notebooks/report.ipynb" -p results_dir "$RESULTS" -p out_dir reports/output
echo "tables and plots: reports/output/ ; executed notebooks: $RESULTS/notebooks/"
