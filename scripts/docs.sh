#!/usr/bin/env bash
# Set up (scripts/setup.sh) and build the documentation site offline into site/ (open site/index.html).
# With Quarto installed, `nbdev_docs` builds nbdev's own site from the same notebooks.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python scripts/build_docs.py "$@"
