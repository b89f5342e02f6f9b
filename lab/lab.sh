#!/usr/bin/env bash
# A lab of network namespaces around mplb with real Linux MPTCP stacks.
# Run as root:   lab/lab.sh up|down|status
#
#   mplblab-cli                 mplblab-rtr                  mplblab-seg (bridge br0)
#   wifi 198.18.2.2  fd00:2::2 -- r-wifi .2.1  fd00:2::1
#   cell 198.18.3.2  fd00:3::2 -- r-cell .3.1  fd00:3::1
#                               r-seg  198.18.1.1 fd00:1::1 ---- s-rtr
#                               198.18.0.10/32, fd00::10/128     s-lb   ---- lb0   (mplblab-lb: mplb's DPDK
#                                 via mplb (198.18.1.2,                            port, net_af_packet; mplb
#                                 fd00:1::2)                                       answers ARP/ND for its
#                                                                                  addresses and the VIPs)
#                                                                s-mgmt ---- mgmt 198.18.1.3 fd00:1::3
#                                                                            (mplblab-lb: kernel side,
#                                                                             health checks)
#                                                                s-be1  ---- be1 198.18.1.11 fd00:1::11 (mplblab-be1)
#                                                                s-be2  ---- be2 198.18.1.12 fd00:1::12 (mplblab-be2)
#                                                                s-be3  ---- be3 198.18.1.13 fd00:1::13 (mplblab-be3)
#
# Backends hold the VIPs 198.18.0.10 and fd00::10 on lo (arp_ignore=1,
# arp_announce=2; IPv6 answers ND only for addresses on the asking
# interface), route everything via the router (direct server return) and
# announce their own IPv4 address with ADD_ADDR. The client accepts
# announcements and joins over cell. Only 198.18.0.0/15 and fd00::/8 are used;
# nothing is routed out of the host.
#
# `up` removes leftovers first, builds the namespaces and writes the run dir
# ($LAB_DIR, default /tmp/mplblab) with mplb.toml for this lab (env.sh). `down`
# removes every namespace whose name starts with mplblab- and the run dir's
# pid files.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

need_tools() {
    local missing=()
    command -v ip >/dev/null || missing+=(iproute2)
    command -v ethtool >/dev/null || missing+=(ethtool)
    command -v tcpdump >/dev/null || missing+=(tcpdump)
    command -v tshark >/dev/null || missing+=(tshark)
    [ -x /usr/bin/python3 ] || missing+=(python3)
    command -v nstat >/dev/null || missing+=(iproute2)
    command -v flock >/dev/null || missing+=(util-linux)
    command -v pgrep >/dev/null || missing+=(procps)
    command -v iptables >/dev/null || missing+=(iptables)
    if [ ${#missing[@]} -gt 0 ]; then
        echo "lab: installing ${missing[*]}" >&2
        DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -q "${missing[@]}" >&2 || {
            timeout 300 apt-get update -q >&2
            DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -q "${missing[@]}" >&2
        }
    fi
}

down() { remove_namespaces "$P"; }

up() {
    [ "$(id -u)" = 0 ] || { echo "lab: run as root" >&2; exit 1; }
    need_tools
    down
    mkdir -p "$LAB_DIR"
    local ns
    for ns in "${NSS[@]}"; do
        ip netns add "$ns"
        x "$ns" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
        # IPv6 addresses are usable at once (no DAD), no autoconfiguration
        x "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
        x "$ns" sysctl -qw net.ipv6.conf.all.accept_ra=0 net.ipv6.conf.default.accept_ra=0
        x "$ns" sysctl -qw net.mptcp.enabled=1
        x "$ns" ip link set lo up
    done
    # The segment's namespace only bridges; mplb's port has no kernel IPv6
    # (set below) so that its kernel neither answers nor sends anything there.
    x "$SEG" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1

    # segment: a bridge holding the router's leg, mplb's port, its management leg, backends
    x "$SEG" ip link add br0 type bridge mcast_snooping 0
    x "$SEG" ip link set br0 up
    veth "$CLI" wifi "$RTR" r-wifi
    veth "$CLI" cell "$RTR" r-cell
    veth "$RTR" r-seg "$SEG" s-rtr
    x "$LB" ip link add lb0 type veth peer s-lb netns "$SEG"
    # the kernel kept off mplb's port, as configs/vm-af-packet.toml says
    x "$LB" "$(dirname "${BASH_SOURCE[0]}")/../scripts/af-packet-port.sh" lb0 >/dev/null
    x "$SEG" ethtool -K s-lb tx off tso off gso off >/dev/null
    x "$SEG" ip link set s-lb up
    veth "$LB" mgmt "$SEG" s-mgmt
    local b
    for b in "${BACKENDS[@]}"; do veth "$P-$b" "$b" "$SEG" "s-$b"; done
    for i in s-rtr s-lb s-mgmt s-be1 s-be2 s-be3; do x "$SEG" ip link set "$i" master br0; done

    # client: wifi is the default path; cell by source routing; joins over cell
    x "$CLI" ip addr add $WIFI/24 dev wifi
    x "$CLI" ip addr add $CELL/24 dev cell
    x "$CLI" ip -6 addr add $WIFI6/64 dev wifi nodad
    x "$CLI" ip -6 addr add $CELL6/64 dev cell nodad
    x "$CLI" ip route add default via 198.18.2.1 dev wifi
    x "$CLI" ip route add default via 198.18.3.1 dev cell table 103
    x "$CLI" ip rule add from $CELL table 103 pref 1000
    x "$CLI" ip -6 route add default via fd00:2::1 dev wifi
    x "$CLI" ip -6 route add default via fd00:3::1 dev cell table 103
    x "$CLI" ip -6 rule add from $CELL6 table 103 pref 1000
    x "$CLI" ip mptcp endpoint flush
    x "$CLI" ip mptcp limits set subflows 4 add_addr_accepted 4
    x "$CLI" ip mptcp endpoint add $CELL dev cell subflow fullmesh
    x "$CLI" ip mptcp endpoint add $CELL6 dev cell subflow fullmesh

    # router: forwards; the VIPs' next hop is mplb's address on the segment
    x "$RTR" ip addr add 198.18.2.1/24 dev r-wifi
    x "$RTR" ip addr add 198.18.3.1/24 dev r-cell
    x "$RTR" ip addr add $RTR_SEG/24 dev r-seg
    x "$RTR" ip -6 addr add fd00:2::1/64 dev r-wifi nodad
    x "$RTR" ip -6 addr add fd00:3::1/64 dev r-cell nodad
    x "$RTR" ip -6 addr add $RTR_SEG6/64 dev r-seg nodad
    x "$RTR" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
    x "$RTR" ip route add $VIP/32 via $LB_IP dev r-seg
    x "$RTR" ip -6 route add $VIP6/128 via $LB_IP6 dev r-seg

    # mplb's namespace: lb0 carries no address (DPDK owns it through AF_PACKET),
    # the kernel forwards nothing; mgmt is the management path to the backends.
    x "$LB" sysctl -qw net.ipv4.ip_forward=0 net.ipv6.conf.all.forwarding=0
    x "$LB" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
    x "$LB" ip addr add $MGMT_IP/24 dev mgmt
    x "$LB" ip -6 addr add $MGMT_IP6/64 dev mgmt nodad

    # backends: own addresses, VIPs on lo, DSR ARP settings, default routes via
    # the router, and an ADD_ADDR ("signal") endpoint per own address
    local ns
    for b in "${BACKENDS[@]}"; do
        ns=$P-$b
        x "$ns" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
        x "$ns" sysctl -qw "net.ipv4.conf.$b.arp_ignore=1" "net.ipv4.conf.$b.arp_announce=2"
        x "$ns" ip addr add $VIP/32 dev lo
        x "$ns" ip -6 addr add $VIP6/128 dev lo nodad
        x "$ns" ip addr add "${BE_IP[$b]}/24" dev "$b"
        x "$ns" ip -6 addr add "${BE_IP6[$b]}/64" dev "$b" nodad
        x "$ns" ip route add default via $RTR_SEG dev "$b"
        x "$ns" ip -6 route add default via $RTR_SEG6 dev "$b"
        x "$ns" sysctl -qw net.mptcp.allow_join_initial_addr_port=0
        x "$ns" ip mptcp endpoint flush
        x "$ns" ip mptcp limits set subflows 4 add_addr_accepted 0
        # IPv4 only: a backend announcing both its addresses has them
        # announced back to back, and the client takes up one announcement
        # at a time (the other may be dropped); the IPv6 scenarios switch
        # the backends to announcing their IPv6 address (lib.sh: announce)
        x "$ns" ip mptcp endpoint add "${BE_IP[$b]}" dev "$b" signal
    done

    lab_config
    echo "lab up: config $LAB_DIR/mplb.toml"
}

status() {
    local ns
    for ns in "${NSS[@]}"; do
        if grep -qx "$ns" <<<"$(ip netns list | awk '{print $1}')"; then
            echo "== $ns"
            x "$ns" ip -br addr | sed 's/^/   /'
            case $ns in
                "$CLI"|"$P"-be*) x "$ns" ip mptcp endpoint show | sed 's/^/   mptcp: /'
                                x "$ns" ip mptcp limits show | sed 's/^/   mptcp limits: /' ;;
            esac
        else
            echo "== $ns: absent"
        fi
    done
    [ -f "$LAB_DIR/mplb.toml" ] && echo "config: $LAB_DIR/mplb.toml"
}

# One lab on the machine at a time: the names are fixed, so a second run (say
# the test suite started by someone else) waits here instead of tearing this
# one down. scenarios.sh holds the lock for its whole run and says so.
lock() {
    [ "${MPLBLAB_LOCKED:-0}" = 1 ] && return 0
    exec 9>/run/lock/mplblab.lock
    flock -w 240 9 || { echo "lab: another lab run holds /run/lock/mplblab.lock" >&2; exit 1; }
}

case "${1:-}" in
    up|down) lock ;;
esac
case "${1:-}" in
    up) up ;;
    down) [ "$(id -u)" = 0 ] || { echo "lab: run as root" >&2; exit 1; }; down; echo "lab down" ;;
    status) status ;;
    *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
