#!/usr/bin/env bash
# Opens JupyterLab on the notebooks (`just lab`), installing what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
source notebooks/setup.sh
"$PY" -c "import jupyterlab" 2>/dev/null || "$PY" -m pip install -q jupyterlab
# Each kernel builds in its own temporary folder: two kernels must never share EVCXR_TMPDIR.
root=(); [ "$(id -u)" = 0 ] && root=(--allow-root)   # containers often run as root
exec "$PWD/.venv/bin/jupyter" lab --notebook-dir=notebooks "${root[@]}" "$@"
