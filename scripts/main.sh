#!/usr/bin/env bash
# Set up (scripts/setup.sh), then the study: train and evaluate every model on each dataset family of
# DATASETS, once per seed of SEEDS, at the `auto` preset (`paper` on a CUDA device, else `cpu`), and
# report. A family runs at the preset's size (cdnet.config.STUDY_DATASETS: at `cpu`, mmnist -> mmnist1_32 (one digit)
# and clips -> clips_32, both 4 -> 4); an exact dataset name (e.g. mmnist_32) is run as it is.
#   bash scripts/main.sh                                          # the main job: Moving MNIST, one seed
#   SEEDS="1 2 3" DATASETS="mmnist clips" bash scripts/main.sh    # the full study
#   PRESET=smoke bash scripts/main.sh                             # seconds, to check the plumbing
#   MNIST_DIR=/path/to/mnist CLIPS_DIR=/path/to/clips bash scripts/main.sh
# A progress bar counts the runs (models x seeds) of each dataset and estimates the time left.
# Finished runs of an identical configuration are read back, not retrained, so a killed study started
# again goes on where it stopped (delete results/ to retrain). The report of a study goes to
# reports/output/ and the verdict per claim to reports/findings.md; smoke runs are reported to
# results/smoke-report/ (findings included) and never into reports/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH" MPLBACKEND=Agg
PRESET=${PRESET:-auto}
SEEDS=${SEEDS:-1}
DATASETS=${DATASETS:-${DATASET:-mmnist}}
RESULTS=${RESULTS:-results}
DATA_ROOT=${DATA_ROOT:-data}
# the MNIST test digits and the clips: given, else the offline copies beside this checkout
MNIST_DIR=${MNIST_DIR:-}
[ -n "$MNIST_DIR" ] || { [ -d ../shared/data/mnist ] && MNIST_DIR=../shared/data/mnist; } || true
CLIPS_DIR=${CLIPS_DIR:-../shared/data/clips}
case " $DATASETS " in *mmnist*)
  if [ -n "$MNIST_DIR" ]; then echo "== MNIST test digits: $MNIST_DIR" >&2
  else echo "== MNIST test digits: none given (MNIST_DIR unset, no ../shared/data/mnist): a cached or downloaded copy, else held-out training digits (results then do not pair with the study's)" >&2; fi ;;
esac
PRESET=$(python -c "from cdnet.config import resolve_config; print(resolve_config('$PRESET', verbose=False).preset)")
if [ "$PRESET" = smoke ]; then REPORT=${REPORT:-$RESULTS/smoke-report}; SELECT=(-p presets smoke -p findings "$REPORT/findings.md" -p findings_preset smoke)
else REPORT=${REPORT:-reports/output}; SELECT=(-p exclude_presets smoke -p findings_preset "$PRESET"); fi
seeds_yaml="seeds: [$(echo $SEEDS | tr ' ' ',')]"
mkdir -p "$RESULTS/notebooks"
set -- $DATASETS
i=0
for family in "$@"; do
  i=$((i + 1))
  ds=$(python -c "from cdnet.config import study_dataset; print(study_dataset('$family', '$PRESET'))")
  case "$ds" in
    clips_*) [ -f "$DATA_ROOT/$ds/manifest.json" ] || python data_prep/clips.py --src "$CLIPS_DIR" --out "$DATA_ROOT" --setting "${ds#clips_}" --quiet ;;
  esac
  echo "== dataset $i/$#: $ds ($family), preset $PRESET, seeds $SEEDS" >&2
  papermill --log-output --no-progress-bar nbs/main_results.ipynb "$RESULTS/notebooks/main_results_${ds}_${PRESET}.ipynb" \
    -p preset "$PRESET" -p dataset "$ds" -y "$seeds_yaml" -p out_dir "$RESULTS" -p data_root "$DATA_ROOT" \
    -p mnist_dir "$MNIST_DIR" -p reuse True
done
papermill --no-progress-bar reports/study_report.ipynb "$RESULTS/notebooks/study_report_${PRESET}.ipynb" -p results_dir "$RESULTS" \
  -p out_dir "$REPORT" "${SELECT[@]}"
echo "tables, summary.csv and plots: $REPORT/ ; findings: $([ "$PRESET" = smoke ] && echo "$REPORT/findings.md" || echo reports/findings.md) ; executed notebooks: $RESULTS/notebooks/"
