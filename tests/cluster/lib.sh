# Shared settings and helpers for tests/cluster/{up,down,status,images,build} and tests/deps.sh.
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

# Scripts that run under `set -e` say which command ended them, and where, instead of exiting
# silently (a failed `x="$(...)"` prints nothing of its own).
_on_error() {  # _on_error STATUS LINE COMMAND
    [ "$BASH_SUBSHELL" -eq 0 ] || return 0
    local src="${BASH_SOURCE[1]:-$0}" fn="${FUNCNAME[1]:-}"
    local where="${src##*/}:$2"
    [ -n "$fn" ] && [ "$fn" != main ] && where+=" in $fn"
    log "ERROR: $(basename "$0") stopped: \`$3\` exited $1 ($where)"
}
if [[ $- == *e* ]]; then
    set -E
    trap '_on_error $? $LINENO "$BASH_COMMAND"' ERR
fi

# 75s -> "1m15s"
fmt_secs() { local s="$1"; if [ "$s" -ge 60 ]; then printf '%dm%02ds' $((s / 60)) $((s % 60)); else printf '%ds' "$s"; fi; }

# run_logged NAME CMD...: run one build step with its output in $LOGS/build-NAME.log. One line
# when it starts and one when it ends, with the elapsed time; while it runs, a line every
# $VORTEX_PROGRESS_S seconds (default 30) with the log's last line, so nothing looks hung. On
# failure: the log's tail and the command that retries the step alone ($RETRY, default: this
# script with its arguments), then exit with the step's status.
run_logged() {
    local name="$1"; shift
    local lf="$LOGS/build-$name.log" t0=$SECONDS every="${VORTEX_PROGRESS_S:-30}" pid rc=0 next last
    mkdir -p "$LOGS"
    log "$name: started (log: $lf)"
    "$@" >"$lf" 2>&1 </dev/null &
    pid=$!
    next=$((SECONDS + every))
    while kill -0 "$pid" 2>/dev/null; do
        sleep 1
        if [ $SECONDS -ge $next ] && kill -0 "$pid" 2>/dev/null; then
            last="$(tail -n 1 "$lf" 2>/dev/null | tr -d '\r' | cut -c1-100)"
            log "$name: running, $(fmt_secs $((SECONDS - t0)))${last:+ (last: $last)}"
            next=$((SECONDS + every))
        fi
    done
    wait "$pid" || rc=$?
    if [ $rc -ne 0 ]; then
        log "$name: FAILED after $(fmt_secs $((SECONDS - t0))) (exit $rc); last lines of $lf:"
        tail -n 40 "$lf" | sed 's/^/    /' >&2
        log "retry it alone: ${RETRY:-$0${SCRIPT_ARGS:+ $SCRIPT_ARGS}}"
        exit "$rc"
    fi
    log "$name: done in $(fmt_secs $((SECONDS - t0)))"
}

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

CLUSTER_BINS=(kubelet kube-proxy kube-scheduler kube-controller-manager kube-apiserver etcd containerd containerd-shim-runc-v2)

# our_pids and pod_pids run inside `$(...)` under `set -euo pipefail` (in `down`): each ends with
# an explicit `return 0`, never with the status of a test that was false for the last item.

# Processes whose executable is one of our cluster binaries (pidfile or not).
our_pids() {
    local p exe b
    for p in /proc/[0-9]*; do
        exe="$(readlink "$p/exe" 2>/dev/null)" || continue
        for b in "${CLUSTER_BINS[@]}"; do
            if [ "$exe" = "$BIN/$b" ]; then echo "${p#/proc/}"; break; fi
        done
    done
    return 0
}

# Processes in pod cgroups (containers), in any cgroup v1 hierarchy.
pod_pids() {
    local f
    for f in /sys/fs/cgroup/*/kubepods; do
        if [ -d "$f" ]; then find "$f" -name cgroup.procs -exec cat {} + 2>/dev/null || true; fi
    done | sort -u
    return 0
}

# -- NetworkPolicy enforcer --------------------------------------------------------------------
# kube-router runs with its firewall only (`up`); `down` stops it like the other components and
# removes what it leaves behind itself (kube-router's own `--cleanup-config` panics).
CLUSTER_BINS+=(kube-router)
KUBE_ROUTER_CHAINS_RE='^(KUBE-ROUTER-|KUBE-POD-FW-|KUBE-NWPLCY-)'
# its ipsets: per-policy source/destination sets, and the temporary sets of its atomic swaps
KUBE_ROUTER_IPSETS_RE='^(inet6:)?(KUBE-SRC-|KUBE-DST-|TMP-)'

# pod_egress_guard: drop pod traffic leaving this host in the mangle table's FORWARD chain, which
# packets pass before filter's. kube-router puts its jump first in filter FORWARD and ACCEPTs the
# traffic a policy allows there, ahead of net.sh's VORTEX-EGRESS.
pod_egress_guard() {
    iptables -w -t mangle -N VORTEX-EGRESS 2>/dev/null || true
    iptables -w -t mangle -F VORTEX-EGRESS
    iptables -w -t mangle -A VORTEX-EGRESS -o "$POD_BRIDGE" -j RETURN
    iptables -w -t mangle -A VORTEX-EGRESS -m comment --comment "vortex: pods stay on this host" -j DROP
    iptables -w -t mangle -C FORWARD -s "$POD_CIDR" -j VORTEX-EGRESS 2>/dev/null ||
        iptables -w -t mangle -I FORWARD 1 -s "$POD_CIDR" -j VORTEX-EGRESS
    return 0
}

# kube_router_state: kube-router's chains (filter table) and ipsets that exist now, one a line.
kube_router_state() {
    iptables -w -t filter -S 2>/dev/null | awk '$1=="-N" {print $2}' | grep -E "$KUBE_ROUTER_CHAINS_RE" || true
    if command -v ipset >/dev/null; then
        ipset list -n 2>/dev/null | grep -E "$KUBE_ROUTER_IPSETS_RE" || true
    fi
    return 0
}

# kube_router_cleanup: remove kube-router's firewall state (run once it is stopped): the jumps to
# its chains from the built-in chains, its chains, then its ipsets (a set can go only once no rule
# names it).
kube_router_cleanup() {
    local rule c s chains sets
    if command -v iptables >/dev/null; then
        iptables -w -t filter -S | grep -E '^-A (INPUT|FORWARD|OUTPUT) .*-j (KUBE-ROUTER-|KUBE-POD-FW-|KUBE-NWPLCY-)' |
            while read -r rule; do
                eval "iptables -w -t filter -D ${rule#-A }" || true
            done || true
        chains="$(iptables -w -t filter -S | awk '$1=="-N" {print $2}' | grep -E "$KUBE_ROUTER_CHAINS_RE" || true)"
        for c in $chains; do iptables -w -t filter -F "$c" 2>/dev/null || true; done
        for c in $chains; do iptables -w -t filter -X "$c" 2>/dev/null || true; done
    fi
    if command -v ipset >/dev/null; then
        sets="$(ipset list -n 2>/dev/null | grep -E "$KUBE_ROUTER_IPSETS_RE" || true)"
        for s in $sets; do ipset flush "$s" 2>/dev/null || true; done
        for s in $sets; do ipset destroy "$s" 2>/dev/null || true; done
    fi
    return 0
}
