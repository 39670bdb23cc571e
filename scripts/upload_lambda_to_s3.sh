#!/usr/bin/env bash
# The seed's upload script, kept with its argument order, as a thin wrapper over
# `python -m ops upload` (validate, skip-if-unchanged, SHA-256 upload with s3transfer,
# verify). docs/operations.md.
#
# Usage: scripts/upload_lambda_to_s3.sh <zip_file> <s3_bucket> <s3_key> [aws_region] [options]
#   options go to `python -m ops upload` (see --help), e.g. --endpoint-url URL.
# Exit codes: 0 uploaded or unchanged, 2 bad input (one-line message), 1 failure,
# 130/143/129 stopped by SIGINT/SIGTERM/SIGHUP (a multipart upload is aborted first).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if [ $# -lt 3 ] || [[ "$1" == -h || "$1" == --help ]]; then
  echo "usage: $0 <zip_file> <s3_bucket> <s3_key> [aws_region] [upload options]" >&2
  [ $# -ge 1 ] && [[ "$1" == -h || "$1" == --help ]] && exit 0
  exit 2
fi

zip_file=$1 bucket=$2 key=$3
shift 3
region=()
if [ $# -gt 0 ] && [[ "$1" != -* ]]; then
  region=(--region "$1")
  shift
fi

# A caller that already bootstrapped (scripts/test.sh, CI) passes VENV_PY.
if [ -z "${VENV_PY:-}" ]; then
  # The run set (uploading needs boto3 only); a dev .venv satisfies it.
  export BOOTSTRAP_SET="${BOOTSTRAP_SET:-run}"
  # shellcheck source=scripts/bootstrap.sh
  source "$ROOT/scripts/bootstrap.sh"
fi

# The zip path stays relative to the caller's directory; only the import path changes.
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
exec "$VENV_PY" -m ops upload "$zip_file" "$bucket" "$key" ${region[@]+"${region[@]}"} "$@"
