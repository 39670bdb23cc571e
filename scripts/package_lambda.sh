#!/usr/bin/env bash
# Builds the Lambda deployment package (the seed guide's package_lambda.sh), then
# prints its size and the next steps. The build itself is `python -m lambda_pkg build`:
# cached, deterministic, for the Lambda platform (see docs/packager.md).
#
# Usage: scripts/package_lambda.sh [output_file.zip] [build options...]
#   output_file.zip   default: lambda_deployment.zip in the project root
#   build options     passed on, e.g. --architecture arm64, --layer, --bundle-boto3
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

out="lambda_deployment.zip"
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
  out="$1"
  shift
fi
# A relative output path is relative to where the user ran the script, not the root.
case "$out" in
  /*) ;;
  *) out="$PWD/$out" ;;
esac

cd "$ROOT"
# shellcheck source=scripts/bootstrap.sh
source "$ROOT/scripts/bootstrap.sh"

"$VENV_PY" -m lambda_pkg build --source "$ROOT" --output "$out" "$@"

bytes="$(wc -c < "$out" | tr -d ' ')"
manifest="${out%.zip}.manifest.json"
echo
echo "Package: $out"
echo "Size:    $(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1048576 }') MiB ($bytes bytes); manifest: $manifest"
if [ "$bytes" -gt $((50 * 1024 * 1024)) ]; then
  echo "         over the 50 MiB direct-upload limit: deploy it from S3 (next step)"
fi
cat <<NEXT

Next steps:
  1. Upload it:  scripts/upload_lambda_to_s3.sh "$out" <bucket> <key>
                 e.g. scripts/upload_lambda_to_s3.sh "$out" cloud-trading-bot-lambda-deployment-m6x4p8e lambda/dev/lambda_deployment.zip
  2. Deploy it:  scripts/deploy.sh
                 (to deploy exactly this build: CTB_ARTIFACT_MANIFEST="$manifest" scripts/deploy.sh)
  Check it any time with: .venv/bin/python -m lambda_pkg verify "$out"
NEXT
