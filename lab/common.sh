# What the single-instance lab (lab.sh, lib.sh) and the fleet lab (fleet/)
# share: running in a namespace, veth pairs, tearing down namespaces by
# prefix, and reading a namespace's MPTCP counters. Sourced (not run).

# x <ns> <command...>: the command in the namespace
x() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# veth <nsA> <ifA> <nsB> <ifB>: a pair, offloads off on both ends (mplb
# neither finishes checksums nor splits GSO frames), both up
veth() {
    ip link add "$2" netns "$1" type veth peer "$4" netns "$3"
    x "$1" ethtool -K "$2" tx off tso off gso off >/dev/null
    x "$3" ethtool -K "$4" tx off tso off gso off >/dev/null
    x "$1" ip link set "$2" up
    x "$3" ip link set "$4" up
}

# remove_namespaces <prefix>: stops every process in the namespaces whose
# name starts with <prefix>- (TERM, then KILL), then removes them
remove_namespaces() {
    local ns p
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$1-" || true); do
        for p in $(ip netns pids "$ns" 2>/dev/null || true); do kill -TERM "$p" 2>/dev/null || true; done
    done
    sleep 0.2
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$1-" || true); do
        for p in $(ip netns pids "$ns" 2>/dev/null || true); do kill -KILL "$p" 2>/dev/null || true; done
        ip netns del "$ns" 2>/dev/null || true
    done
}

# mptcp_counters <ns>: "MPTcpExt<Name> <value>" per counter, from the
# namespace's /proc/net/netstat (nstat keeps a history file shared by all
# namespaces; this reads the kernel's values directly)
mptcp_counters() {
    x "$1" cat /proc/net/netstat 2>/dev/null | awk '$1 == "MPTcpExt:" { if (!n) { for (i = 2; i <= NF; i++) k[i] = $i; n = NF } else for (i = 2; i <= n; i++) print "MPTcpExt" k[i], $i }'
}
# nstat_of <ns> <MPTcpExtName>: one counter's value (0 if absent)
nstat_of() { local v; v=$(mptcp_counters "$1" | awk -v k="$2" '$1 == k { print $2 }'); echo "${v:-0}"; }
