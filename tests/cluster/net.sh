# Host networking, sysctls, cgroup mounts and iptables clean-up for the local
# cluster. Sourced by `up` and `down`.

# Kernel settings that up, kubelet or kube-proxy change; saved before the
# first `up` and restored by `down`.
SYSCTLS=(
    net.ipv4.ip_forward
    net.bridge.bridge-nf-call-iptables
    net.bridge.bridge-nf-call-ip6tables
    net.ipv4.conf.all.route_localnet
    vm.overcommit_memory
    vm.panic_on_oom
    kernel.panic
    kernel.panic_on_oops
    kernel.keys.root_maxkeys
    kernel.keys.root_maxbytes
    net.netfilter.nf_conntrack_max
    net.netfilter.nf_conntrack_tcp_timeout_established
    net.netfilter.nf_conntrack_tcp_timeout_close_wait
)
SYSCTL_SAVE="$D/sysctl.saved"
MOUNTED_MARK="$D/mounted-by-up"   # cgroup hierarchies that up mounted
VARLOG_MARK="$D/created-var-log-containers"

sysctl_save() {
    [ -f "$SYSCTL_SAVE" ] && return 0
    local k f
    : >"$SYSCTL_SAVE.tmp"
    for k in "${SYSCTLS[@]}"; do
        f="/proc/sys/${k//.//}"
        [ -r "$f" ] && printf '%s=%s\n' "$k" "$(tr '\t' ' ' <"$f")" >>"$SYSCTL_SAVE.tmp"
    done
    mv "$SYSCTL_SAVE.tmp" "$SYSCTL_SAVE"
}

sysctl_restore() {
    [ -f "$SYSCTL_SAVE" ] || return 0
    local k v
    while IFS='=' read -r k v; do
        [ -n "$k" ] || continue
        printf '%s\n' "$v" >"/proc/sys/${k//.//}" 2>/dev/null || log "could not restore $k=$v"
    done <"$SYSCTL_SAVE"
    rm -f "$SYSCTL_SAVE"
}

host_up() {
    mkdir -p "$D"
    sysctl_save
    echo 1 >/proc/sys/net/ipv4/ip_forward
    echo 1 >/proc/sys/net/bridge/bridge-nf-call-iptables
    echo 1 >/proc/sys/net/bridge/bridge-nf-call-ip6tables

    # cgroup v1 hierarchies that are compiled in but not mounted, if asked for
    # (VORTEX_CLUSTER_MOUNT_CGROUPS="hugetlb"); kubelet and containerd run without.
    local c
    for c in ${VORTEX_CLUSTER_MOUNT_CGROUPS:-}; do
        if grep -qw "^$c" /proc/cgroups && ! grep -q " /sys/fs/cgroup/$c cgroup " /proc/mounts; then
            mkdir -p "/sys/fs/cgroup/$c"
            mount -t cgroup -o "$c" none "/sys/fs/cgroup/$c"
            echo "/sys/fs/cgroup/$c" >>"$MOUNTED_MARK"
        fi
    done

    # The node's own address, on a bridge with no ports (there is no dummy
    # interface in this kernel). Service IPs route there too, so a packet to a
    # Service IP that kube-proxy has not rewritten never leaves the machine.
    if ! ip link show "$NODE_BRIDGE" >/dev/null 2>&1; then
        ip link add "$NODE_BRIDGE" type bridge
    fi
    ip addr replace "$NODE_IP/32" dev "$NODE_BRIDGE"
    ip link set "$NODE_BRIDGE" up
    ip route replace "$SERVICE_CIDR" dev "$NODE_BRIDGE" src "$NODE_IP"

    # The pod bridge; the CNI bridge plugin attaches pods to it.
    if ! ip link show "$POD_BRIDGE" >/dev/null 2>&1; then
        ip link add "$POD_BRIDGE" type bridge
    fi
    ip addr replace "$POD_GW/${POD_CIDR#*/}" dev "$POD_BRIDGE"
    ip link set "$POD_BRIDGE" up

    # Pods talk to each other, to Services and to this host, never beyond it.
    iptables -w -N VORTEX-EGRESS 2>/dev/null || true
    iptables -w -F VORTEX-EGRESS
    iptables -w -A VORTEX-EGRESS -o "$POD_BRIDGE" -j RETURN
    iptables -w -A VORTEX-EGRESS -m comment --comment "vortex: pods stay on this host" -j DROP
    iptables -w -C FORWARD -s "$POD_CIDR" -j VORTEX-EGRESS 2>/dev/null ||
        iptables -w -I FORWARD 1 -s "$POD_CIDR" -j VORTEX-EGRESS

    # kubelet links container logs into /var/log/containers
    if [ ! -e /var/log/containers ] && [ ! -f "$VARLOG_MARK" ]; then
        mkdir -p /var/log/containers
        touch "$VARLOG_MARK"
    fi
}

# Remove every iptables rule and chain of ours (KUBE-* from kubelet and
# kube-proxy, CNI-* from CNI plugins, VORTEX-* from up), in all tables.
iptables_cleanup() {
    local ipt t rule chains c
    for ipt in iptables ip6tables; do
        command -v "$ipt" >/dev/null || continue
        for t in filter nat mangle raw security; do
            $ipt -w -t "$t" -S >/dev/null 2>&1 || continue
            # rules in built-in chains that jump to our chains
            $ipt -w -t "$t" -S | grep -E '^-A [A-Z]+ .*-j (KUBE-|CNI-|VORTEX-)' |
                grep -vE '^-A (KUBE-|CNI-|VORTEX-)' | while read -r rule; do
                    eval "$ipt -w -t $t -D ${rule#-A }" || true
                done || true
            chains="$($ipt -w -t "$t" -S | awk '$1=="-N" && $2 ~ /^(KUBE-|CNI-|VORTEX-)/ {print $2}')"
            for c in $chains; do $ipt -w -t "$t" -F "$c" 2>/dev/null || true; done
            for c in $chains; do $ipt -w -t "$t" -X "$c" 2>/dev/null || true; done
        done
    done
    # nftables tables kube-proxy may create (nftables mode, or its clean-up probe)
    if command -v nft >/dev/null; then
        local fam
        for fam in ip ip6; do
            nft list table "$fam" kube-proxy >/dev/null 2>&1 && nft delete table "$fam" kube-proxy || true
        done
    fi
    if command -v conntrack >/dev/null; then
        conntrack -D -s "$POD_CIDR" >/dev/null 2>&1 || true
        conntrack -D -d "$POD_CIDR" >/dev/null 2>&1 || true
        conntrack -D -d "$SERVICE_CIDR" >/dev/null 2>&1 || true
    fi
}

host_down() {
    local l
    # veths left on the pod bridge (their netns normally takes them along)
    for l in $(ip -o link show master "$POD_BRIDGE" 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
        ip link del "$l" 2>/dev/null || true
    done
    ip route del "$SERVICE_CIDR" dev "$NODE_BRIDGE" 2>/dev/null || true
    ip link del "$POD_BRIDGE" 2>/dev/null || true
    ip link del "$NODE_BRIDGE" 2>/dev/null || true
    iptables_cleanup
    if [ -f "$MOUNTED_MARK" ]; then
        while read -r l; do
            [ -n "$l" ] || continue
            umount "$l" 2>/dev/null && rmdir "$l" 2>/dev/null || true
        done <"$MOUNTED_MARK"
        rm -f "$MOUNTED_MARK"
    fi
    # kubelet's log symlinks point into our state dir
    if [ -d /var/log/containers ]; then
        find /var/log/containers -maxdepth 1 -type l -lname "$D/*" -delete 2>/dev/null || true
        if [ -f "$VARLOG_MARK" ]; then rmdir /var/log/containers 2>/dev/null || true; fi
    fi
    rm -f "$VARLOG_MARK"
    sysctl_restore
}
