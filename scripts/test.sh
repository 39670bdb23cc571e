#!/usr/bin/env bash
# The test command from the README: sets itself up, lints, type-checks, then runs every
# test in parallel (docs/testing.md). Extra arguments go to pytest, after the defaults,
# so they win: scripts/test.sh -k packager -x, scripts/test.sh -n 0 (one process).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/bootstrap.sh
source "$ROOT/scripts/bootstrap.sh"

echo "==> ruff" >&2
ruff check .
ruff format --check . >/dev/null || { echo "ruff format: run '.venv/bin/ruff format .'" >&2; exit 1; }

echo "==> mypy (the files and strictness in pyproject.toml)" >&2
mypy

echo "==> workflows (actionlint + zizmor)" >&2
bash "$ROOT/scripts/lint_workflows.sh"

# The end-to-end tests start real tools (a registry, podman with runc, unzip). Install the
# missing ones where we may (root, or passwordless sudo as on CI runners), so a test that
# could run does not skip; elsewhere the installer prints the apt-get line and the tests
# skip saying why (and fail instead under CI=true).
if [ "$(id -u)" -eq 0 ]; then
  bash "$ROOT/scripts/install_test_tools.sh"
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo -n bash "$ROOT/scripts/install_test_tools.sh"
else
  bash "$ROOT/scripts/install_test_tools.sh"
fi

# Two workers on CI's and this project's 2-core machines; --dist loadfile runs each
# test file on one worker, so a module fixture is built once, and --no-loadscope-reorder
# hands the files out in tests/conftest.py's order, long ones first, instead of xdist's
# most-tests-first (which left the few-but-slow network files for last)
# (docs/testing.md, "Parallelism"). --durations: CI's log then says where the time went
# on a fresh clone, which a warm checkout cannot show.
echo "==> pytest" >&2
exec "$VENV_PY" -m pytest -n "${PYTEST_WORKERS:-2}" --dist loadfile --no-loadscope-reorder \
  --durations=20 "$@"
