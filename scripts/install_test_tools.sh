#!/usr/bin/env bash
# Installs the real tools the image tests start (Debian packages):
#   docker-registry  a registry server on 127.0.0.1 (push, pull back, blob reuse)
#   podman, runc     run the built image (podman --runtime runc run ...)
#   skopeo           bench/image.py's comparison of registry clients
#   unzip            Info-ZIP reads the packager's archives (tests/unit/lambda_pkg/test_zipper.py)
# Idempotent and quiet when everything is there. scripts/test.sh runs it before pytest.
# As root it installs with apt-get; otherwise it prints the command and exits 0 (those
# tests then skip, saying why; under CI=true they fail instead).
set -euo pipefail

missing=()
for pair in docker-registry:docker-registry podman:podman runc:runc skopeo:skopeo unzip:unzip; do
  cmd="${pair%%:*}" pkg="${pair##*:}"
  PATH="$PATH:/usr/sbin:/sbin" command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
done
[ "${#missing[@]}" -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "note: the image tests need ${missing[*]}: sudo apt-get install -y ${missing[*]}" \
       "(until then they skip)" >&2
  exit 0
fi
echo "==> apt-get install ${missing[*]} (image tests)" >&2
export DEBIAN_FRONTEND=noninteractive
# A fresh machine may have no package lists yet: update once, only if the install fails.
if ! apt-get install -y -q "${missing[@]}" >/dev/null 2>&1; then
  apt-get update -q >/dev/null
  apt-get install -y -q "${missing[@]}" >/dev/null
fi
