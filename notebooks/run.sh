#!/usr/bin/env bash
# Executes every notebook headlessly and fails on any error or false assertion (`just
# notebooks`; the README's test command runs it with --quick). Arguments go to run.py, e.g.
# `--quick`, `--html out/notebooks`, or notebook paths.
set -euo pipefail
cd "$(dirname "$0")/.."
source notebooks/setup.sh
# The notebooks are well-formed, and a false assertion really fails a run.
"$PY" notebooks/run.py --check-only
"$PY" notebooks/run.py --expect-failure tests/fixtures/notebooks/false-assertion.ipynb
"$PY" notebooks/run.py "$@"
