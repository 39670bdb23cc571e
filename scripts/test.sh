#!/usr/bin/env bash
# The test command from the README: sets itself up, lints, then runs every test.
# Extra arguments go to pytest (e.g. scripts/test.sh -k packager -x).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/bootstrap.sh
source "$ROOT/scripts/bootstrap.sh"

echo "==> ruff" >&2
ruff check .
ruff format --check . >/dev/null || { echo "ruff format: run '.venv/bin/ruff format .'" >&2; exit 1; }

echo "==> workflows (actionlint + zizmor)" >&2
bash "$ROOT/scripts/lint_workflows.sh"

echo "==> pytest" >&2
exec "$VENV_PY" -m pytest "$@"
