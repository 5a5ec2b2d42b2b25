#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run every test: notebook/package drift, the component notebooks,
# and the pytest suite (which also executes the reproduction notebooks at the `smoke` preset).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH" MPLBACKEND=Agg PYTHONHASHSEED=0
# One BLAS/OpenMP thread per process: tests run several processes at once (nbdev_test workers,
# papermill kernels, two-rank gloo runs), and oversubscribed OpenMP threads can slow a step 50x.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} MKL_NUM_THREADS=${MKL_NUM_THREADS:-1}

echo "== nbdev_export / nbdev_clean leave the tree unchanged"
state() { git status --porcelain --untracked-files=all -- nbs cdnet reports; git diff -- nbs cdnet reports | sha256sum; }
before=$(state)
nbdev_export && nbdev_clean
if [ "$before" != "$(state)" ]; then
  echo "nbdev_export or nbdev_clean changed files: run them and commit the result" >&2
  git status --porcelain -- nbs cdnet reports >&2; exit 1
fi

echo "== component notebooks (nbdev_test; reproduction notebooks carry skip_exec and run under pytest)"
nbdev_test --n_workers 2 --timing

echo "== pytest"
pytest -q tests "$@"
