#!/usr/bin/env bash
# Creates or refreshes .venv with one of two dependency sets:
#   BOOTSTRAP_SET=run   the main job's: requirements-local.txt (the Pulumi program and the
#                       emulator, what scripts/deploy.sh --local and python -m localcloud need)
#   BOOTSTRAP_SET=dev   (default) that plus the test and lint tools: requirements-dev.txt
# Idempotent: pip runs only when a file of the set changed since the last run (a
# `dev` venv also satisfies `run`), so every script can source this at no cost.
# Progress: which set, roughly how much, each large download as it starts, a package
# count, and the time it took (PIP_QUIET=1 hides it; DEBUG=true shows pip's own output).
# Usage: source scripts/bootstrap.sh   (sets VENV_PY; exits on failure)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
BOOTSTRAP_SET="${BOOTSTRAP_SET:-dev}"
# The venv is installed without bytecode (--no-compile, below) because Python caches what
# a run imports on first use. Some machines export PYTHONDONTWRITEBYTECODE=1, and then
# nothing is ever cached: every process (the program, moto_server, each test's
# subprocesses) compiles pulumi-aws, moto and botocore from source again, about 4 s of
# CPU each. The venv and the checkout's __pycache__ (gitignored, never packaged: see
# lambda_pkg/sources.py) are this project's own, so its scripts let Python write there.
unset PYTHONDONTWRITEBYTECODE

# The files of each set, in the order they are hashed; each set's last file -r's the others.
case "$BOOTSTRAP_SET" in
  run) set_files=(requirements.txt requirements-local.txt)
       # Measured on a fresh venv with an empty pip cache (docs/local.md, "A faster first run").
       set_size="about 50 MB to download, 250 MB on disk" ;;
  dev) set_files=(requirements.txt requirements-local.txt requirements-dev.txt)
       set_size="about 120 MB to download, 600 MB on disk" ;;
  *) echo "error: BOOTSTRAP_SET=$BOOTSTRAP_SET: use run (the main job's dependencies) or dev (plus the test tools)" >&2
     exit 2 ;;
esac

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

set_hash() {  # the sha256 of the set's files, concatenated in order
  local f paths=()
  for f in "$@"; do paths+=("$ROOT/$f"); done
  cat "${paths[@]}" | sha256sum | cut -d' ' -f1
}

# Is the venv current for this set? A dev venv is current for run too.
venv_current() {
  local want
  want="$(set_hash "${set_files[@]}")"
  [ "$(cat "$VENV/.requirements-$BOOTSTRAP_SET.sha256" 2>/dev/null)" = "$want" ] && return 0
  if [ "$BOOTSTRAP_SET" = run ]; then
    want="$(set_hash requirements.txt requirements-local.txt requirements-dev.txt)"
    [ "$(cat "$VENV/.requirements-dev.sha256" 2>/dev/null)" = "$want" ] && return 0
  fi
  return 1
}

# pip's output, condensed: each download of 1 MB or more as it starts, with a running
# count of the packages collected, then the install step. Everything else is dropped
# (errors go to stderr, which is passed through unfiltered).
show_progress() {
  local line collected=0 name size
  while IFS= read -r line; do
    case "$line" in
      Collecting\ *) collected=$((collected + 1)) ;;
      *Downloading\ *MB\)*|*Downloading\ *GB\)*)
        name="${line#*Downloading }"; size="${name##* (}"; name="${name%% (*}"
        printf '    [%3d] downloading %s (%s\n' "$collected" "${name##*/}" "$size" >&2 ;;
      Installing\ collected\ packages:*)
        printf '==> %d packages collected; installing (unpacking pulumi-aws alone takes a while)\n' \
          "$collected" >&2 ;;
    esac
  done
}

if [ ! -x "$VENV/bin/python" ]; then
  if ! PY="$(find_python)"; then
    echo "error: Python >= 3.11 is required (set PYTHON=/path/to/python3.11 or install it: apt-get install python3)" >&2
    exit 2
  fi
  echo "==> creating $VENV with $PY" >&2
  "$PY" -m venv "$VENV"
fi

if ! venv_current; then
  req="${set_files[${#set_files[@]}-1]}"
  echo "==> installing the '$BOOTSTRAP_SET' dependencies from $req into $VENV (a first run: $set_size)" >&2
  started=$SECONDS
  # --no-compile: pip would byte-compile every installed module (tens of thousands of
  # files, pulumi-aws's alone) for about half the install time; Python compiles the
  # few hundred a run imports, once, on first use (a few seconds).
  # Some machines' global pip config names local indexes that do not exist; pip
  # warns once per package about them. Drop that noise, keep every other message.
  status=0
  if [ "${DEBUG:-}" = true ]; then
    "$VENV/bin/python" -m pip install --no-compile --progress-bar on -r "$ROOT/$req" >&2 || status=$?
  elif [ -n "${PIP_QUIET:-}" ]; then
    "$VENV/bin/python" -m pip install --no-compile --quiet -r "$ROOT/$req" >&2 \
      2> >(grep -v "is ignored: it is neither a file nor a directory" >&2) || status=$?
  else
    "$VENV/bin/python" -m pip install --no-compile --progress-bar off -r "$ROOT/$req" \
      2> >(grep -v "is ignored: it is neither a file nor a directory" >&2) |
      show_progress || status=$?
  fi
  # Explicit exits: a caller may source this where errexit does not apply.
  if [ "$status" -ne 0 ]; then
    echo "error: could not install $req into $VENV (see pip's message above)" >&2
    exit 1
  fi
  set_hash "${set_files[@]}" > "$VENV/.requirements-$BOOTSTRAP_SET.sha256"
  echo "==> dependencies installed in $((SECONDS - started)) s" >&2
fi

export VENV_PY="$VENV/bin/python"
export PATH="$VENV/bin:$PATH"
