#!/usr/bin/env bash
# Build the documentation site offline into site/ (open site/index.html) with the tools in .venv
# (made by scripts/setup.sh). It installs and downloads nothing and writes only inside the checkout.
# With Quarto installed, `nbdev_docs` builds nbdev's own site from the same notebooks.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! .venv/bin/python -c "import cdnet, nbdev, mkdocs, mkdocs_jupyter" 2>/dev/null; then
  echo "the documentation tools are not in .venv: run 'bash scripts/setup.sh' first (it installs them into .venv)" >&2
  exit 1
fi
# caches of matplotlib and IPython (the notebook processing runs show_doc cells) stay in the checkout, not in $HOME
export MPLCONFIGDIR="$PWD/.cache/matplotlib" IPYTHONDIR="$PWD/.cache/ipython" XDG_CACHE_HOME="$PWD/.cache" MPLBACKEND=Agg
.venv/bin/python scripts/build_docs.py "$@"
