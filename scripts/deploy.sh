#!/usr/bin/env bash
# Deploys the cloud trading bot: builds the Lambda package, then runs Pulumi for a stack.
#
# Usage: scripts/deploy.sh [--stack dev|prod] [--local] [--preview] [--yes] [-- EXTRA...]
#        scripts/deploy.sh --local [--stack NAME] [--json] [--config KEY=VALUE]... [--keep]
#        scripts/deploy.sh --local --down
#   --stack NAME  the stack (a Pulumi.NAME.yaml must exist; default: dev)
#   --local       rehearse against emulated AWS (moto_server) instead: deploy, invoke,
#                 show what landed. Needs nothing but Python >= 3.11, no AWS account.
#   --preview     `pulumi preview` only: show what would change, change nothing
#   --yes         `pulumi up --yes`: no confirmation prompt (for CI)
#   --json        with --local: print the rehearsal's result as JSON on stdout
#   --config K=V  with --local: override a stack config value (repeatable)
#   --keep        with --local: deploy into the local cloud (python -m localcloud) and leave
#                 it running, printing the lines that point the AWS CLI at it; run again,
#                 it deploys only what changed (docs/local.md)
#   --down        with --local: stop the local cloud --keep left; nothing is left running
#   EXTRA         after `--`: passed on to `pulumi` (or, with --local, to the rehearsal)
# Environment:
#   DEBUG=true                 trace this script (set -x) and run the tools verbosely
#   CTB_ARTIFACT_MANIFEST=...  deploy this prebuilt package (from `lambda_pkg build`)
#                              instead of building one (CI: build once, deploy everywhere)
# Exit codes: 0 success; 2 a prerequisite, argument or config problem; 130 interrupted;
# otherwise the failing tool's code (1 for a failed rehearsal step).
set -euo pipefail
# Empty arrays are expanded as ${a[@]+"${a[@]}"} below: bash 3.2 (macOS's) treats a
# plain "${a[@]}" of an empty array as unbound under set -u.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

DEBUG="${DEBUG:-false}"
if [ "$DEBUG" = "true" ]; then
  set -x
fi

# The header comment above, up to the first line that is not a comment.
usage() { awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "${BASH_SOURCE[0]}"; }
say() { echo "==> $*" >&2; }
die() { echo "error: $*" >&2; exit "${2:-2}"; }

STACK=dev LOCAL=false PREVIEW=false YES=false JSON=false KEEP=false DOWN=false
EXTRA=()
CONFIG=()
while [ $# -gt 0 ]; do
  case "$1" in
    --stack) [ $# -ge 2 ] || die "--stack needs a name (dev or prod)"; STACK="$2"; shift 2 ;;
    --stack=*) STACK="${1#--stack=}"; shift ;;
    --local) LOCAL=true; shift ;;
    --preview) PREVIEW=true; shift ;;
    --yes|-y) YES=true; shift ;;
    --json) JSON=true; shift ;;
    --keep) KEEP=true; shift ;;
    --down) DOWN=true; shift ;;
    --config) [ $# -ge 2 ] || die "--config needs KEY=VALUE"; CONFIG+=(--config "$2"); shift 2 ;;
    --config=*) CONFIG+=(--config "${1#--config=}"); shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; EXTRA=("$@"); break ;;
    *) die "unknown argument: $1 (see scripts/deploy.sh --help)" ;;
  esac
done

[[ "$STACK" =~ ^[A-Za-z0-9_.-]+$ ]] || die "--stack '$STACK' is not a stack name"
[ -f "$ROOT/Pulumi.$STACK.yaml" ] ||
  die "no stack '$STACK': Pulumi.$STACK.yaml does not exist (stacks: $(cd "$ROOT" && ls Pulumi.*.yaml | sed 's/^Pulumi\.//; s/\.yaml$//' | paste -sd, - | sed 's/,/, /g'))"
if [ "$LOCAL" = true ] && [ "$PREVIEW" = true ]; then
  die "--preview and --local do not combine: the rehearsal deploys to an emulator, nothing real changes"
fi
if [ "$KEEP" = true ] && [ "$DOWN" = true ]; then
  die "--keep and --down do not combine: --keep deploys and leaves the local cloud up, --down stops it"
fi
if [ "$LOCAL" = false ] && { [ "$KEEP" = true ] || [ "$DOWN" = true ]; }; then
  die "--keep and --down are for the local cloud: scripts/deploy.sh --local --keep (or --local --down)"
fi
if [ "$DOWN" = true ] && { [ "$JSON" = true ] || [ ${#CONFIG[@]} -gt 0 ]; }; then
  die "--down stops the local cloud; it takes no --json or --config"
fi
if [ "$LOCAL" = false ] && [ "$JSON" = true ]; then
  die "--json is for the rehearsal (--local); to pass it to pulumi, put it after --: scripts/deploy.sh -- --json"
fi
if [ "$LOCAL" = false ] && [ ${#CONFIG[@]} -gt 0 ]; then
  die "--config overrides a value for the rehearsal only (--local); for a real deploy set it in the stack: pulumi config set --stack $STACK KEY VALUE"
fi

# ---- prerequisites -----------------------------------------------------------------
# Python >= 3.11 and .venv: bootstrap.sh finds the interpreter (with an install hint if
# there is none), creates .venv and installs the requirements when they changed.
# The run set (the main job needs the program and the emulator, not the test and lint tools); a dev .venv satisfies it.
export BOOTSTRAP_SET="${BOOTSTRAP_SET:-run}"
# shellcheck source=scripts/bootstrap.sh
source "$ROOT/scripts/bootstrap.sh"

if [ "$LOCAL" = false ]; then
  command -v pulumi >/dev/null 2>&1 ||
    die "the Pulumi CLI is not installed (a real deploy needs it).
  install it:  curl -fsSL https://get.pulumi.com | sh    (macOS: brew install pulumi)
  then:        pulumi login    (or 'pulumi login --local' to keep the state on this machine)
  no AWS account? rehearse the whole stack on emulated AWS instead: scripts/deploy.sh --local"
  # Only whether credentials are configured (environment, profile, SSO, instance role);
  # Pulumi itself checks that they work. Nothing is printed about them.
  "$VENV_PY" - <<'PY' ||
import sys, boto3
sys.exit(0 if boto3.Session().get_credentials() is not None else 1)
PY
    die "no AWS credentials found (a real deploy needs them).
  set them up: aws configure    (or: aws sso login; or set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)
  no AWS account? rehearse the whole stack on emulated AWS instead: scripts/deploy.sh --local"
fi

if [ "$DOWN" = true ]; then
  # Nothing to build: stop the cloud (saying so, exit 0, when none runs).
  exec "$VENV_PY" -m infra.rehearsal --down ${EXTRA[@]+"${EXTRA[@]}"}
fi

# ---- the package -------------------------------------------------------------------
# What this stack needs (runtime, architecture, layer) and its function's name. With
# --local, the rehearsal's --config values (given before or after `--`) apply here too,
# so the package is built for the settings the rehearsal deploys.
PKG_CONFIG=(${CONFIG[@]+"${CONFIG[@]}"})
if [ "$LOCAL" = true ]; then
  set -- ${EXTRA[@]+"${EXTRA[@]}"}
  while [ $# -gt 0 ]; do
    case "$1" in
      --config) if [ $# -ge 2 ]; then PKG_CONFIG+=(--config "$2"); shift; fi ;;
      --config=*) PKG_CONFIG+=(--config "${1#--config=}") ;;
    esac
    shift
  done
fi
info="$("$VENV_PY" -m infra.rehearsal.stackinfo --stack "$STACK" ${PKG_CONFIG[@]+"${PKG_CONFIG[@]}"})" || exit 2
get() { sed -n "s/^$1=//p" <<<"$info"; }
ENVIRONMENT="$(get environment)"
FUNCTION="$(get function)"

if [ -n "${CTB_ARTIFACT_MANIFEST:-}" ]; then
  [ -f "$CTB_ARTIFACT_MANIFEST" ] || die "CTB_ARTIFACT_MANIFEST=$CTB_ARTIFACT_MANIFEST does not exist"
  say "using the prebuilt package $CTB_ARTIFACT_MANIFEST"
elif [ "$LOCAL" = true ]; then
  # The rehearsal's package step builds it (the program's getter, the same cached build,
  # with the --config values), while the service's image builds beside it: on a first
  # run the two cold builds overlap (docs/rehearsal.md, the image step).
  :
else
  say "building the Lambda package for stack $STACK ($(get runtime), $(get architecture))"
  out="$ROOT/.build/deploy/$STACK/lambda_deployment.zip"
  build=(-m lambda_pkg build --source "$ROOT" --runtime "$(get runtime)"
         --architecture "$(get architecture)" --output "$out")
  [ "$(get layer)" = true ] && build+=(--layer)
  # Cached: with nothing changed this only hashes the inputs.
  "$VENV_PY" "${build[@]}" >&2 || die "the package build failed (see above); nothing was deployed" 1
  export CTB_ARTIFACT_MANIFEST="${out%.zip}.manifest.json"
fi

# ---- the deploy --------------------------------------------------------------------
if [ "$LOCAL" = true ]; then
  if [ "$KEEP" = true ]; then
    say "deploying stack $STACK into the local cloud on 127.0.0.1 (kept running; only what changed)"
  else
    say "rehearsing stack $STACK against emulated AWS (moto_server on 127.0.0.1)"
  fi
  rehearsal=(-m infra.rehearsal --stack "$STACK")
  if [ "$JSON" = true ]; then rehearsal+=(--json); fi
  if [ "$KEEP" = true ]; then rehearsal+=(--keep); fi
  if [ "$DEBUG" = "true" ]; then rehearsal+=(--verbose); fi
  # exec: Ctrl-C, a CI timeout's SIGTERM or a closed terminal reach the rehearsal
  # itself, which stops the emulator on the way out (with --keep the local cloud runs
  # in its own session and stays up). It names a failing step itself.
  exec "$VENV_PY" "${rehearsal[@]}" ${CONFIG[@]+"${CONFIG[@]}"} ${EXTRA[@]+"${EXTRA[@]}"}
fi

verbose=()
if [ "$DEBUG" = "true" ]; then verbose=(--debug --verbose=3); fi
export CTB_ARTIFACT_MANIFEST
if [ "$PREVIEW" = true ]; then
  say "pulumi preview --stack $STACK"
  set +e
  pulumi preview --stack "$STACK" --diff ${verbose[@]+"${verbose[@]}"} ${EXTRA[@]+"${EXTRA[@]}"}
  code=$?
  set -e
  [ "$code" -eq 0 ] || echo "error: pulumi preview failed (exit $code); nothing was changed" >&2
  exit "$code"
fi

up=(up --stack "$STACK")
if [ "$YES" = true ]; then up+=(--yes); fi
say "pulumi ${up[*]}"
set +e
pulumi "${up[@]}" ${verbose[@]+"${verbose[@]}"} ${EXTRA[@]+"${EXTRA[@]}"}
code=$?
set -e
if [ "$code" -ne 0 ]; then
  cat >&2 <<EOF
error: pulumi up failed for stack $STACK (exit $code). Pulumi's messages above say which
resource failed and why. Resources it finished are recorded in the stack's state; run
'pulumi up --stack $STACK' again after fixing the cause, or 'pulumi refresh --stack $STACK'
if the state and AWS disagree.

To roll back the function to its previous published version (the alias 'live' moves back;
the package object versions in S3 are kept):
  $VENV_PY -m ops rollback --function $FUNCTION
To see what is live now:
  $VENV_PY -m ops status --function $FUNCTION
EOF
  exit "$code"
fi

say "deployed stack $STACK (environment $ENVIRONMENT). Check it with:"
echo "  pulumi stack output --stack $STACK" >&2
echo "  $VENV_PY -m ops invoke --function $FUNCTION --qualifier live    # {\"test\": true}" >&2
