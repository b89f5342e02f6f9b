#!/usr/bin/env bash
# The fleet lab: three mplb instances behind a BIRD 2 ECMP router, in
# network namespaces, with real Linux MPTCP and TCP. Run as root:
#   lab/fleet/fleet.sh up|down|status
#
#   mplbfl-cli  wifi 198.18.2.2 -- r-wifi .2.1 ┐
#               cell 198.18.3.2 -- r-cell .3.1 │ mplbfl-rtr: BIRD, eBGP + BFD to each
#   mplbfl-sp   sp0  198.18.4.2 -- r-sp   .4.1 │ instance, ECMP into the FIB (merge
#                                              │ paths, an L4 multipath hash)
#                                   r-seg .1.1 ┘
#                                     |
#   mplbfl-seg: bridge br0 ── s-rtr, s-lb1..3, s-be1..3
#     s-lbN ── lb0 (mplbfl-lbN): mplb's DPDK port (net_af_packet, the kernel
#              kept off it); mplb creates lbk0, its exception path, holding
#              198.18.1.2N/24: the instance's BIRD peers with the router over
#              it, and health checks leave through it (one-armed)
#     s-beN ── beN 198.18.1.1N/24 (mplbfl-beN): backends, both VIPs on lo,
#              default route via the router (direct server return)
#
# VIPs: web 198.18.0.10:80 (be1, be2), api 198.18.0.11:8080 (be3).
# `up` removes leftovers first and writes $FLEET_DIR (default /tmp/mplbfleet)
# with each instance's mplb.toml and bird.conf and the router's bird.conf;
# it starts nothing (lib.sh does). `down` stops every process in the lab's
# namespaces and removes them.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$HERE/env.sh"
. "$HERE/../common.sh"

need_tools() {
    local missing=()
    command -v bird >/dev/null || missing+=(bird2)
    command -v ethtool >/dev/null || missing+=(ethtool)
    command -v tcpdump >/dev/null || missing+=(tcpdump)
    command -v tshark >/dev/null || missing+=(tshark)
    command -v flock >/dev/null || missing+=(util-linux)
    command -v ping >/dev/null || missing+=(iputils-ping)
    if [ ${#missing[@]} -gt 0 ]; then
        echo "fleet: installing ${missing[*]}" >&2
        DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -q "${missing[@]}" >&2 || {
            timeout 300 apt-get update -q >&2
            DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -q "${missing[@]}" >&2
        }
    fi
}

down() { remove_namespaces "$P"; }

up() {
    [ "$(id -u)" = 0 ] || { echo "fleet: run as root" >&2; exit 1; }
    need_tools
    down
    mkdir -p "$FLEET_DIR"
    local ns lb b
    local all=("$CLI" "$SP" "$RTR" "$SEG")
    for lb in "${LBS[@]}"; do all+=("$P-$lb"); done
    for b in "${BACKENDS[@]}"; do all+=("$P-$b"); done
    for ns in "${all[@]}"; do
        ip netns add "$ns"
        x "$ns" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
        x "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
        x "$ns" sysctl -qw net.ipv6.conf.all.accept_ra=0 net.ipv6.conf.default.accept_ra=0
        x "$ns" sysctl -qw net.mptcp.enabled=1
        x "$ns" ip link set lo up
    done
    x "$SEG" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    x "$SEG" ip link add br0 type bridge mcast_snooping 0
    x "$SEG" ip link set br0 up

    veth "$CLI" wifi "$RTR" r-wifi
    veth "$CLI" cell "$RTR" r-cell
    veth "$SP" sp0 "$RTR" r-sp
    veth "$RTR" r-seg "$SEG" s-rtr
    x "$SEG" ip link set s-rtr master br0
    for lb in "${LBS[@]}"; do
        ns=$P-$lb
        x "$ns" ip link add lb0 type veth peer "s-$lb" netns "$SEG"
        # the kernel kept off mplb's port (configs/vm-af-packet.toml)
        x "$ns" "$HERE/../../scripts/af-packet-port.sh" lb0 >/dev/null
        x "$SEG" ethtool -K "s-$lb" tx off tso off gso off >/dev/null
        x "$SEG" ip link set "s-$lb" up
        x "$SEG" ip link set "s-$lb" master br0
        # the exception path's kernel: no forwarding, answers ARP only for
        # its own addresses on the asking interface
        x "$ns" sysctl -qw net.ipv4.ip_forward=0
        x "$ns" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
        mkdir -p "$(lbdir "$lb")"
    done
    for b in "${BACKENDS[@]}"; do
        veth "$P-$b" "$b" "$SEG" "s-$b"
        x "$SEG" ip link set "s-$b" master br0
    done

    # clients: cli joins over cell (source routing); sp has one uplink and
    # the kernel's default MPTCP limits (it ignores ADD_ADDRs)
    x "$CLI" ip addr add $WIFI/24 dev wifi
    x "$CLI" ip addr add $CELL/24 dev cell
    x "$CLI" ip route add default via 198.18.2.1 dev wifi
    x "$CLI" ip route add default via 198.18.3.1 dev cell table 103
    x "$CLI" ip rule add from $CELL table 103 pref 1000
    x "$CLI" ip mptcp endpoint flush
    x "$CLI" ip mptcp limits set subflows 4 add_addr_accepted 4
    x "$CLI" ip mptcp endpoint add $CELL dev cell subflow fullmesh
    x "$SP" ip addr add $SPIP/24 dev sp0
    x "$SP" ip route add default via 198.18.4.1 dev sp0
    x "$SP" ip mptcp endpoint flush
    x "$SP" ip mptcp limits set subflows 2 add_addr_accepted 0

    # router: forwards and hashes flows (not hosts) over equal paths by their
    # 5-tuple: policy 3 with fields 0x37 (addresses, protocol, ports). Not
    # policy 1: for a packet that already carries an L4 hash, policy 1 uses
    # it, and a veth keeps the sending socket's random hash (rethought on
    # each RTO), so flows would not be hashed on their headers as a
    # hardware router does. The VIPs' routes come only from BGP.
    x "$RTR" ip addr add 198.18.2.1/24 dev r-wifi
    x "$RTR" ip addr add 198.18.3.1/24 dev r-cell
    x "$RTR" ip addr add 198.18.4.1/24 dev r-sp
    x "$RTR" ip addr add $RTR_SEG/24 dev r-seg
    x "$RTR" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.fib_multipath_hash_policy=3 net.ipv4.fib_multipath_hash_fields=0x0037

    for b in "${BACKENDS[@]}"; do
        ns=$P-$b
        x "$ns" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
        x "$ns" sysctl -qw "net.ipv4.conf.$b.arp_ignore=1" "net.ipv4.conf.$b.arp_announce=2"
        x "$ns" ip addr add $VIP/32 dev lo
        x "$ns" ip addr add $API_VIP/32 dev lo
        x "$ns" ip addr add "${BE_IP[$b]}/24" dev "$b"
        x "$ns" ip route add default via $RTR_SEG dev "$b"
        x "$ns" sysctl -qw net.mptcp.allow_join_initial_addr_port=0
        x "$ns" ip mptcp endpoint flush
        x "$ns" ip mptcp limits set subflows 4 add_addr_accepted 0
        x "$ns" ip mptcp endpoint add "${BE_IP[$b]}" dev "$b" signal
    done

    for lb in "${LBS[@]}"; do
        mplb_config "$lb"
        bird_lb_config "$lb"
        # BIRD reads the include at start: empty until mplb writes it
        : >"$(lbdir "$lb")/vips.conf"
    done
    bird_rtr_config
    echo "fleet up: $FLEET_DIR"
}

status() {
    local ns
    for ns in $(ip netns list | awk '{print $1}' | grep "^$P-" | sort); do
        echo "== $ns"
        x "$ns" ip -br addr | sed 's/^/   /'
    done
    if [ -S "$FLEET_DIR/bird-rtr.ctl" ]; then
        echo "== router: BGP sessions and the VIPs' routes"
        x "$RTR" birdc -s "$FLEET_DIR/bird-rtr.ctl" show protocols | sed 's/^/   /'
        x "$RTR" ip route show 198.18.0.0/24 | sed 's/^/   /'
    fi
}

lock() {
    [ "${MPLBLAB_LOCKED:-0}" = 1 ] && return 0
    exec 9>/run/lock/mplblab.lock
    flock -w 240 9 || { echo "fleet: another lab run holds /run/lock/mplblab.lock" >&2; exit 1; }
}

case "${1:-}" in
    up) lock; up ;;
    down) [ "$(id -u)" = 0 ] || { echo "fleet: run as root" >&2; exit 1; }; lock; down; echo "fleet down" ;;
    status) status ;;
    *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
