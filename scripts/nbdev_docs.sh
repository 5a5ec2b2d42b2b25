#!/usr/bin/env bash
# nbdev's own documentation site (needs Quarto): runs `nbdev_docs` with the tools in .venv and keeps this
# checkout's README.md. nbdev_docs also renders README.md from nbs/index.ipynb (settings.ini: readme_nb),
# which would replace the project's README (a separate, longer text) with the index page; the README is
# put back whether or not the build succeeds. Arguments go to nbdev_docs.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v quarto >/dev/null || { echo "Quarto is not installed: build the site with 'bash scripts/docs.sh' instead" >&2; exit 1; }
[ -x .venv/bin/nbdev_docs ] || { echo "nbdev is not in .venv: run 'bash scripts/setup.sh' first" >&2; exit 1; }
keep=$(mktemp README.md.XXXXXX)
cp -p README.md "$keep"
trap 'mv -f "$keep" README.md' EXIT
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
.venv/bin/nbdev_docs "$@"
