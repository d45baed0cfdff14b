#!/usr/bin/env bash
# Installs and builds everything the tests and benchmarks need, before any test runs, and caches
# it outside the repo, keyed by version: Debian packages, the local cluster's binaries (Kubernetes,
# etcd, containerd, CoreDNS, crictl, helm and kube-router built with Go, MinIO, NATS, pause),
# workerd (npm, the benchmark anchor), and the container images (the Debian base image, then the
# runtime and operator images). Run by `make test` and `make bench` (`make deps`); a warm run only
# checks that everything is there and takes seconds.
#
#   tests/deps.sh [apt|workerd|binaries|images]...   (default: all four, in this order)
#
# One line per component as it starts and ends, with its time and its log; a line every 30 s
# while a component builds; a failure prints its log's tail and the command that retries it.
set -euo pipefail
. "$(dirname "$0")/cluster/lib.sh"

NPM_DIR="${VORTEX_NPM_DIR:-/var/cache/vortex/npm}"
WORKERD_VERSION="${WORKERD_VERSION:-1.20261117.1}"
APT_PKGS=(wrk iptables ipset buildah mmdebstrap runc containernetworking-plugins prometheus conntrack socat jq)
HERE="$(dirname "$0")"
ROOT=0; [ "$(id -u)" = 0 ] && ROOT=1

deps_apt() {
    local missing=() p
    for p in "${APT_PKGS[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    [ $ROOT = 1 ] || die "missing Debian packages: ${missing[*]}; as root: apt-get install ${missing[*]}"
    RETRY="$0 apt" run_logged apt bash -c \
        'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"' _ "${missing[@]}"
}

_npm_workerd() {
    mkdir -p "$NPM_DIR"
    cd "$NPM_DIR"
    npm install --no-audit --no-fund "workerd@$WORKERD_VERSION"
    echo "$WORKERD_VERSION" >"$NPM_DIR/.workerd-version"
}
deps_workerd() {
    if [ -x "$NPM_DIR/node_modules/.bin/workerd" ] &&
        [ "$(cat "$NPM_DIR/.workerd-version" 2>/dev/null)" = "$WORKERD_VERSION" ]; then
        return 0
    fi
    RETRY="$0 workerd" run_logged "workerd-$WORKERD_VERSION" _npm_workerd
}

deps_binaries() { "$HERE/cluster/build" all; }

deps_images() {
    if [ $ROOT = 0 ]; then
        log "images: skipped, buildah needs root (so does the cluster: run \`make test\` as root)"
        return 0
    fi
    # Without a running containerd this only builds; `tests/cluster/images` imports them later.
    "$HERE/cluster/images" >/dev/null
}

SCRIPT_ARGS="$*"
steps=("$@"); [ ${#steps[@]} -eq 0 ] && steps=(apt workerd binaries images)
T0=$SECONDS
summary=()
for s in "${steps[@]}"; do
    case "$s" in
        apt|workerd|binaries|images) ;;
        *) die "unknown component: $s (apt, workerd, binaries, images)" ;;
    esac
    t=$SECONDS
    "deps_$s"
    summary+=("$s $(fmt_secs $((SECONDS - t)))")
done
log "deps: everything present in $(fmt_secs $((SECONDS - T0))) ($(IFS=,; echo "${summary[*]}" | sed 's/,/, /g'))"
