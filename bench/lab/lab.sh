#!/usr/bin/env bash
# A lab of network namespaces around mplb with real Linux MPTCP stacks.
# Run as root:   bench/lab/lab.sh up|down|status
#
#   mplblab-cli                 mplblab-rtr                  mplblab-seg (bridge br0)
#   wifi 198.18.2.2/24 ------ r-wifi 198.18.2.1/24
#   cell 198.18.3.2/24 ------ r-cell 198.18.3.1/24
#                             r-seg  198.18.1.1/24 ------------ s-rtr
#                             198.18.0.10/32 via 198.18.1.2      s-lb   ---- lb0   (mplblab-lb: mplb's DPDK
#                                                                                   port, net_af_packet;
#                                                                                   mplb answers for
#                                                                                   198.18.1.2 and the VIP)
#                                                                s-mgmt ---- mgmt 198.18.1.3/24 (mplblab-lb:
#                                                                                   kernel side, health checks)
#                                                                s-be1  ---- be1 198.18.1.11/24 (mplblab-be1)
#                                                                s-be2  ---- be2 198.18.1.12/24 (mplblab-be2)
#
# Backends hold the VIP 198.18.0.10 on lo (arp_ignore=1, arp_announce=2), route
# everything via the router (direct server return) and announce their own
# address with ADD_ADDR. The client accepts announcements and joins over cell.
# Only 198.18.0.0/15 is used; nothing is routed out of the host.
#
# `up` removes leftovers first, builds the namespaces and writes the run dir
# ($LAB_DIR, default /tmp/mplblab) with mplb.toml for this lab. `down` removes
# every namespace whose name starts with mplblab- and the run dir's pid files.
set -euo pipefail

LAB_DIR="${LAB_DIR:-/tmp/mplblab}"
P=mplblab
CLI=$P-cli
RTR=$P-rtr
SEG=$P-seg
LB=$P-lb
BE1=$P-be1
BE2=$P-be2
NSS=("$CLI" "$RTR" "$SEG" "$LB" "$BE1" "$BE2")

VIP=198.18.0.10
VIP_PORT=80
LB_IP=198.18.1.2
MGMT_IP=198.18.1.3
RTR_SEG=198.18.1.1
BE1_IP=198.18.1.11
BE2_IP=198.18.1.12
WIFI_IP=198.18.2.2
CELL_IP=198.18.3.2

x() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

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
    if [ ${#missing[@]} -gt 0 ]; then
        echo "lab: installing ${missing[*]}" >&2
        DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -q "${missing[@]}" >&2 || {
            timeout 300 apt-get update -q >&2
            DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -q "${missing[@]}" >&2
        }
    fi
}

down() {
    local ns
    # processes left in the lab's namespaces (servers, captures, mplb)
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$P-" || true); do
        local pids
        pids=$(ip netns pids "$ns" 2>/dev/null || true)
        for p in $pids; do kill -TERM "$p" 2>/dev/null || true; done
    done
    sleep 0.2
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$P-" || true); do
        for p in $(ip netns pids "$ns" 2>/dev/null || true); do kill -KILL "$p" 2>/dev/null || true; done
        ip netns del "$ns" 2>/dev/null || true
    done
}

# veth <nsA> <ifA> <nsB> <ifB>: a pair, offloads off on both ends, both up
veth() {
    ip link add "$2" netns "$1" type veth peer "$4" netns "$3"
    x "$1" ethtool -K "$2" tx off tso off gso off >/dev/null
    x "$3" ethtool -K "$4" tx off tso off gso off >/dev/null
    x "$1" ip link set "$2" up
    x "$3" ip link set "$4" up
}

mac_of() { x "$1" cat "/sys/class/net/$2/address"; }

up() {
    [ "$(id -u)" = 0 ] || { echo "lab: run as root" >&2; exit 1; }
    need_tools
    down
    mkdir -p "$LAB_DIR"
    for ns in "${NSS[@]}"; do
        ip netns add "$ns"
        x "$ns" ip link set lo up
        x "$ns" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
        x "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
        x "$ns" sysctl -qw net.mptcp.enabled=1
    done

    # segment: a bridge holding the router's leg, mplb's port, its management leg, backends
    x "$SEG" ip link add br0 type bridge
    x "$SEG" ip link set br0 up
    veth "$CLI" wifi "$RTR" r-wifi
    veth "$CLI" cell "$RTR" r-cell
    veth "$RTR" r-seg "$SEG" s-rtr
    veth "$LB" lb0 "$SEG" s-lb
    veth "$LB" mgmt "$SEG" s-mgmt
    veth "$BE1" be1 "$SEG" s-be1
    veth "$BE2" be2 "$SEG" s-be2
    for i in s-rtr s-lb s-mgmt s-be1 s-be2; do x "$SEG" ip link set "$i" master br0; done

    # client: wifi is the default path; cell by source routing; joins over cell
    x "$CLI" ip addr add $WIFI_IP/24 dev wifi
    x "$CLI" ip addr add $CELL_IP/24 dev cell
    x "$CLI" ip route add default via 198.18.2.1 dev wifi
    x "$CLI" ip route add default via 198.18.3.1 dev cell table 103
    x "$CLI" ip rule add from $CELL_IP table 103 pref 1000
    x "$CLI" ip mptcp endpoint flush
    x "$CLI" ip mptcp limits set subflows 4 add_addr_accepted 4
    x "$CLI" ip mptcp endpoint add $CELL_IP dev cell subflow fullmesh

    # router: forwards; the VIP's next hop is mplb's address on the segment
    x "$RTR" ip addr add 198.18.2.1/24 dev r-wifi
    x "$RTR" ip addr add 198.18.3.1/24 dev r-cell
    x "$RTR" ip addr add $RTR_SEG/24 dev r-seg
    x "$RTR" sysctl -qw net.ipv4.ip_forward=1
    x "$RTR" ip route add $VIP/32 via $LB_IP dev r-seg

    # mplb's namespace: lb0 carries no address (DPDK owns it through AF_PACKET),
    # the kernel forwards nothing; mgmt is the management path to the backends.
    x "$LB" sysctl -qw net.ipv4.ip_forward=0
    x "$LB" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
    x "$LB" ip addr add $MGMT_IP/24 dev mgmt

    # backends: own address, VIP on lo, DSR ARP settings, default route via the router
    local ns ifc addr
    for b in "$BE1 be1 $BE1_IP" "$BE2 be2 $BE2_IP"; do
        set -- $b; ns=$1 ifc=$2 addr=$3
        x "$ns" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
        x "$ns" sysctl -qw "net.ipv4.conf.$ifc.arp_ignore=1" "net.ipv4.conf.$ifc.arp_announce=2"
        x "$ns" ip addr add $VIP/32 dev lo
        x "$ns" ip addr add "$addr/24" dev "$ifc"
        x "$ns" ip route add default via $RTR_SEG dev "$ifc"
        x "$ns" sysctl -qw net.mptcp.allow_join_initial_addr_port=0
        x "$ns" ip mptcp endpoint flush
        x "$ns" ip mptcp limits set subflows 4 add_addr_accepted 0
        x "$ns" ip mptcp endpoint add "$addr" dev "$ifc" signal
    done

    write_config
    echo "lab up: config $LAB_DIR/mplb.toml"
}

write_config() {
    local be1_mac be2_mac
    be1_mac=$(mac_of "$BE1" be1)
    be2_mac=$(mac_of "$BE2" be2)
    cat >"$LAB_DIR/mplb.toml" <<EOF
# Generated by bench/lab/lab.sh for the namespace lab; mplb runs in $LB.
[dpdk]
eal_args = ["--no-huge", "--no-shconf", "--no-pci", "--file-prefix=mplblab",
            "--log-level=lib.eal:error", "--vdev=net_af_packet0,iface=lb0"]
main_lcore = 0
mempool_size = 4095
mempool_cache = 64

[workers]
lcores = [1]
mode = "balance"

[[port]]
name = "seg"
device = "net_af_packet0"
ipv4 = ["$LB_IP"]

[flow_table]
capacity = 4096

[health]
# checked from mplb's namespace over its kernel leg (mgmt, $MGMT_IP)
kind = "tcp"
port = $VIP_PORT
interval_ms = 1000
timeout_ms = 500
rise = 2
fall = 3

[management]
socket = "$LAB_DIR/mplb.sock"
listen = "127.0.0.1:0"

[[vip]]
name = "web"
address = "$VIP"
port = $VIP_PORT
protocol = "tcp"
forwarding = "l2-dsr"

  [[vip.backend]]
  name = "be1"
  address = "$BE1_IP"
  mac = "$be1_mac"

  [[vip.backend]]
  name = "be2"
  address = "$BE2_IP"
  mac = "$be2_mac"
EOF
}

status() {
    local ns
    for ns in "${NSS[@]}"; do
        if ip netns list | awk '{print $1}' | grep -qx "$ns"; then
            echo "== $ns"
            x "$ns" ip -br addr | sed 's/^/   /'
            case $ns in
                $CLI|$BE1|$BE2) x "$ns" ip mptcp endpoint show | sed 's/^/   mptcp: /'
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
