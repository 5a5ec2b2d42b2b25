#!/usr/bin/env bash
# Create .venv (once) and install cdnet with its pinned dependencies (.ci/constraints.txt).
# Re-running is cheap: nothing is installed again unless settings.ini, setup.py or the pins change.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))' || { echo "cdnet needs Python >= 3.10 (found $("$PY" --version))" >&2; exit 1; }
[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=.venv/.cdnet-installed
want=$(cat settings.ini setup.py pyproject.toml .ci/constraints.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "installing cdnet and its pinned dependencies into .venv (a few minutes the first time)"
  .venv/bin/pip install -q -c .ci/constraints.txt -e ".[dev]"
  # pulled in by jupyterlab; makes every `import nbformat` about 3 s slower and nothing here needs it
  .venv/bin/pip uninstall -y -q rfc3987-syntax >/dev/null 2>&1 || true
  echo "$want" > "$stamp"
fi
