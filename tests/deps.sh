#!/usr/bin/env bash
# Installs what the tests and benchmarks need on a fresh machine, and caches it outside the repo:
# Debian packages, the MinIO server (built with Go) and workerd (npm, the benchmark anchor).
# Idempotent: a warm run only checks that everything is there.
set -euo pipefail

CACHE_DIR="${VORTEX_CLUSTER_DIR:-/var/lib/vortex-cluster}"
BIN="$CACHE_DIR/bin"
NPM_DIR="${VORTEX_NPM_DIR:-/var/cache/vortex/npm}"
WORKERD_VERSION="${WORKERD_VERSION:-1.20261117.1}"
mkdir -p "$BIN" "$NPM_DIR"

apt_pkgs=(wrk iptables buildah mmdebstrap runc containernetworking-plugins prometheus conntrack socat jq)
missing=()
for p in "${apt_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "deps: installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ ! -x "$BIN/minio" ]; then
  echo "deps: building MinIO (go install github.com/minio/minio@latest), a few minutes the first time"
  GOBIN="$BIN" CGO_ENABLED=0 go install github.com/minio/minio@latest
fi

if [ ! -x "$NPM_DIR/node_modules/.bin/workerd" ] || \
   [ "$(cat "$NPM_DIR/.workerd-version" 2>/dev/null)" != "$WORKERD_VERSION" ]; then
  echo "deps: installing workerd@$WORKERD_VERSION from npm"
  (cd "$NPM_DIR" && npm install --no-audit --no-fund --silent "workerd@$WORKERD_VERSION" >/dev/null)
  echo "$WORKERD_VERSION" > "$NPM_DIR/.workerd-version"
fi
