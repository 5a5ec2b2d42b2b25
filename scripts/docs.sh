#!/usr/bin/env bash
# Build the documentation site offline into site/ (open site/index.html) with the tools in .venv
# (made by scripts/setup.sh). It installs and downloads nothing and writes only inside the checkout.
# It executes the component notebooks (nbs/NN_*.ipynb) in a copy, _exec/, so the pages show their
# outputs and figures (see scripts/build_docs.py for the time); `--no-exec` builds without outputs.
# With Quarto installed, `bash scripts/nbdev_docs.sh` builds nbdev's own site from the same notebooks.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! .venv/bin/python -c "import cdnet, nbdev, execnb, mkdocs, mkdocs_jupyter, latex2mathml" 2>/dev/null; then
  echo "the documentation tools are not in .venv: run 'bash scripts/setup.sh' first (it installs them into .venv)" >&2
  exit 1
fi
# the notebooks run on one thread unless OMP_NUM_THREADS says otherwise
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
# caches of matplotlib and IPython (the notebook processing runs show_doc cells) stay in the checkout, not in $HOME
export MPLCONFIGDIR="$PWD/.cache/matplotlib" IPYTHONDIR="$PWD/.cache/ipython" XDG_CACHE_HOME="$PWD/.cache" MPLBACKEND=Agg
.venv/bin/python scripts/build_docs.py "$@"
