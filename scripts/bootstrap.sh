#!/usr/bin/env bash
# Creates or refreshes .venv with the program's and the test tools' dependencies.
# Idempotent: pip runs only when a requirements file changed since the last run,
# so every script can source this at no cost.
# Usage: source scripts/bootstrap.sh   (sets VENV_PY; exits on failure)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"

find_python() {
  local c
  for c in "${PYTHON:-}" python3.11 python3.12 python3.13 python3; do
    [ -n "$c" ] || continue
    if command -v "$c" >/dev/null 2>&1 &&
       "$c" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
      echo "$c"; return 0
    fi
  done
  return 1
}

if [ ! -x "$VENV/bin/python" ]; then
  if ! PY="$(find_python)"; then
    echo "error: Python >= 3.11 is required (set PYTHON=/path/to/python3.11 or install it: apt-get install python3)" >&2
    exit 2
  fi
  echo "==> creating $VENV with $PY" >&2
  "$PY" -m venv "$VENV"
fi

stamp="$VENV/.requirements.sha256"
want="$(cat "$ROOT/requirements.txt" "$ROOT/requirements-dev.txt" | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "==> installing dependencies into $VENV (first run takes about a minute)" >&2
  # Some machines' global pip config names local indexes that do not exist; pip
  # warns once per package about them. Drop that noise, keep every other message.
  quiet_pip() {
    local status=0
    "$VENV/bin/python" -m pip "$@" >&2 \
      2> >(grep -v "is ignored: it is neither a file nor a directory" >&2) || status=$?
    return "$status"
  }
  # Explicit exits: a caller may source this where errexit does not apply.
  quiet_pip install --quiet --upgrade pip ||
    { echo "error: could not upgrade pip in $VENV (see pip's message above)" >&2; exit 1; }
  quiet_pip install --quiet -r "$ROOT/requirements-dev.txt" ||
    { echo "error: could not install requirements-dev.txt into $VENV (see pip's message above)" >&2; exit 1; }
  echo "$want" > "$stamp"
fi

export VENV_PY="$VENV/bin/python"
export PATH="$VENV/bin:$PATH"
