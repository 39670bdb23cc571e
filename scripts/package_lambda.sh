#!/usr/bin/env bash
# Builds the Lambda deployment package (the seed guide's package_lambda.sh), then
# prints its size and the next steps. The build is `python -m lambda_pkg build`:
# cached, deterministic, for the Lambda platform (docs/packager.md).
#
# Usage: scripts/package_lambda.sh [output_file.zip] [build options...]
#   output_file.zip  default: lambda_deployment.zip in the project root. A relative
#                    path is relative to where you run the script. The manifest goes
#                    beside it as <name>.manifest.json (with --layer, the dependency
#                    layer as <name>-layer.zip).
#   build options    passed on to `python -m lambda_pkg build`, e.g. --architecture
#                    arm64, --layer, --bundle-boto3, --json (see its --help)
# Exit codes: 0 built or up to date; 2 a user error (one line on stderr); 1 internal.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

case "${1:-}" in
  -h|--help) sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
esac

out="$ROOT/lambda_deployment.zip"
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
  out="$1"
  shift
fi
json=false
for arg in "$@"; do
  case "$arg" in
    --output|--output=*)
      echo "error: give the output path as the first argument, not --output (usage: $0 [output_file.zip] [build options])" >&2
      exit 2 ;;
    --json) json=true ;;
  esac
done
# A relative output path is relative to where the user ran the script.
case "$out" in
  /*) ;;
  *) out="$PWD/$out" ;;
esac

# A caller that already bootstrapped (scripts/test.sh, CI, tests) passes VENV_PY.
if [ -z "${VENV_PY:-}" ]; then
  # The run set (building needs the packager only); a dev .venv satisfies it.
  export BOOTSTRAP_SET="${BOOTSTRAP_SET:-run}"
  # shellcheck source=scripts/bootstrap.sh
  source "$ROOT/scripts/bootstrap.sh"
fi
caller="$PWD"
cd "$ROOT"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"

# --source first, so that a --source among the build options wins (tests use it).
"$VENV_PY" -m lambda_pkg build --source "$ROOT" --output "$out" "$@"

# With --json, stdout carries the build's JSON only; this summary goes to stderr.
if [ "$json" = true ]; then exec 3>&2; else exec 3>&1; fi

# Where the build put the zip and its manifest (a directory gets lambda_deployment.zip
# inside it): lambda_pkg.api.output_paths, the build's own rule. Sizes and the
# direct-upload limit from the manifest it just wrote (not from files lying around).
{
  read -r out; read -r manifest; read -r bytes; read -r layer_name; read -r layer_bytes
  read -r direct_limit
} < <("$VENV_PY" - "$out" <<'PY'
import json, sys
from lambda_pkg.api import output_paths
zip_path, manifest, _ = output_paths(sys.argv[1])
m = json.loads(manifest.read_text(encoding="utf-8"))
layer = m.get("layer") or {}
print(zip_path, manifest, m["size"], layer.get("zip", "-"), layer.get("size", 0),
      m["report"]["direct_upload_limit"], sep="\n")
PY
)
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
q() { printf '%q' "$1"; }
# Commands are printed so that they work when pasted where the user ran this script.
if [ "$caller" = "$ROOT" ]; then scripts="scripts"; cdroot=""; else
  scripts="$(q "$ROOT")/scripts"; cdroot="cd $(q "$ROOT") && "
fi
env_prefix="CTB_ARTIFACT_MANIFEST=$(q "$manifest")"

{
  echo
  echo "Package:  $out"
  echo "Size:     $(mib "$bytes") ($bytes bytes)"
  if [ "$layer_name" != "-" ]; then
    echo "Layer:    $(dirname "$out")/$layer_name, $(mib "$layer_bytes") ($layer_bytes bytes)"
  fi
  echo "Manifest: $manifest"
  if [ "$bytes" -gt "$direct_limit" ] || [ "$layer_bytes" -gt "$direct_limit" ]; then
    echo "          over the $(mib "$direct_limit") direct-upload limit: it deploys from S3 (both ways below do)"
  fi
  echo
  echo "Next steps:"
  echo "  Deploy exactly this build with the stack (it uploads the package to S3 and pins the"
  echo "  function to that object version; the stack's runtime, architecture and"
  echo "  dependencyLayer must match the build):"
  if [ "$layer_name" = "-" ]; then
    echo "    $env_prefix $scripts/deploy.sh --stack dev --local     # rehearse on emulated AWS"
  else
    # The shipped stacks have dependencyLayer: false; a layered build must be told so.
    echo "    $env_prefix $scripts/deploy.sh --stack dev --local --config dependencyLayer=true"
    echo "    (for real deploys first: pulumi config set dependencyLayer true --stack dev)"
  fi
  echo "    $env_prefix $scripts/deploy.sh --stack dev --preview   # what would change"
  echo "    $env_prefix $scripts/deploy.sh --stack dev"
  if [ "$layer_name" = "-" ]; then
    echo "  Or upload it by hand, the seed's way (it prints the update-function-code command):"
    echo "    $scripts/upload_lambda_to_s3.sh $(q "$out") cloud-trading-bot-lambda-deployment-m6x4p8e lambda/dev/lambda_deployment.zip us-east-1"
  else
    echo "  (with a layer, deploy with the stack: it publishes the layer and attaches it)"
  fi
  echo "  Check it again any time:"
  echo "    ${cdroot}.venv/bin/python -m lambda_pkg verify $(q "$out")"
} >&3
