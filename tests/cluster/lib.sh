# Shared settings and helpers for tests/cluster/{up,down,status,images,build}.
# Sourced, not executed.

CLUSTER_SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
. "$CLUSTER_SRC/versions.env"

D="${VORTEX_CLUSTER_DIR:-/var/lib/vortex-cluster}"
case "$D" in /*) ;; *) D="$(pwd)/$D" ;; esac
BIN="$D/bin"
STAMP="$BIN/.stamp"
PKI="$D/pki"
ETC="$D/etc"
RUN="$D/run"
LOGS="$D/log"
DATA="$D/data"
IMAGES_DIR="$D/images"

# Network layout. Everything stays on this machine: the node address sits on
# a bridge with no ports, pods on a second bridge, Service IPs are virtual.
NODE_NAME=vortex-node
NODE_BRIDGE=vx0
NODE_IP=10.201.0.1
POD_BRIDGE=vxcni0
POD_CIDR=10.202.0.0/24
POD_GW=10.202.0.1
SERVICE_CIDR=10.203.0.0/24
KUBERNETES_SVC_IP=10.203.0.1
DNS_SVC_IP=10.203.0.10
CLUSTER_DOMAIN=cluster.local
APISERVER_PORT=6443
ETCD_CLIENT_PORT=2379
ETCD_PEER_PORT=2380

KUBECONFIG_ADMIN="$ETC/admin.kubeconfig"
CONTAINERD_SOCK="$RUN/containerd/containerd.sock"

PAUSE_IMAGE="localhost/vortex-pause:$PAUSE_VERSION"
COREDNS_IMAGE="localhost/vortex-coredns:$COREDNS_VERSION"

# buildah keeps its own storage in the state dir. overlay: builds copy nothing
# (vfs copies the whole rootfs per step); its mounts live only while a build runs.
BUILDAH_ROOT="$D/buildah/overlay"
BUILDAH_RUNROOT="$RUN/buildah"

export PATH="$BIN:/usr/local/go/bin:/usr/sbin:/sbin:$PATH"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

buildah_() {
    buildah --storage-driver overlay --root "$BUILDAH_ROOT" --runroot "$BUILDAH_RUNROOT" "$@"
}

# stamp_ok NAME VERSION: binary exists and was built from VERSION
stamp_ok() {
    [ -x "$BIN/$1" ] && [ -f "$STAMP/$1" ] && [ "$(cat "$STAMP/$1")" = "$2" ]
}
stamp_set() { mkdir -p "$STAMP"; printf '%s\n' "$2" >"$STAMP/$1"; }

pid_alive() {  # pid_alive NAME -> 0 if the pidfile's process runs our binary
    local f="$RUN/pids/$1.pid" pid
    [ -f "$f" ] || return 1
    pid="$(cat "$f")"
    [ -n "$pid" ] && [ -d "/proc/$pid" ] || return 1
    case "$(readlink "/proc/$pid/exe" 2>/dev/null)" in
        "$BIN"/*) return 0 ;;
    esac
    return 1
}

# put_file FILE < CONTENT: replace FILE only when its content differs. Some
# components watch their files (kube-proxy exits when its config is written).
put_file() {
    local f="$1" tmp="$1.tmp.$$"
    cat >"$tmp"
    if [ -f "$f" ] && cmp -s "$tmp" "$f"; then rm -f "$tmp"; return 0; fi
    mv -f "$tmp" "$f"
}

stop_proc() {  # stop_proc NAME [TIMEOUT]: TERM, then KILL after TIMEOUT seconds
    local name="$1" timeout="${2:-15}" pid i
    if pid_alive "$name"; then
        pid="$(cat "$RUN/pids/$name.pid")"
        log "stopping $name ($pid)"
        kill -TERM "$pid" 2>/dev/null || true
        for i in $(seq $((timeout * 10))); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
        [ -d "/proc/$pid" ] && kill -KILL "$pid" 2>/dev/null || true
        for i in $(seq 50); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
    fi
    rm -f "$RUN/pids/$name.pid" "$RUN/pids/$name.spec"
}
