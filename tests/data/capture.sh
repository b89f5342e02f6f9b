#!/usr/bin/env bash
# Regenerates the golden pcaps in this directory from real Linux (MP)TCP connections.
# Run as root:  bash tests/data/capture.sh      (needs ip, ethtool, tcpdump, mergecap, python3)
#
# Topology (all inside network namespaces made here; nothing leaves the host):
#
#   mplbcap-cli                     mplbcap-rtr                      mplbcap-be
#   wifi 198.18.2.2/24  ------- r-wifi 198.18.2.1/24
#        fd00:18:2::2/64              fd00:18:2::1/64
#   cell 198.18.3.2/24  ------- r-cell 198.18.3.1/24
#        fd00:18:3::2/64              fd00:18:3::1/64
#                                  r-be  198.18.1.1/24 ----------- be0 198.18.1.11/24
#                                        fd00:18:1::1/64               fd00:18:1::11/64
#                                  VIP routes: 198.18.0.10/32 via 198.18.1.11     lo: VIP 198.18.0.10/32
#                                              fd00:18::10/128 via fd00:18:1::11      fd00:18::10/128
#
# The router stands where the load balancer would be: it forwards client->VIP traffic to
# the backend, and the backend answers straight back (it holds the VIP on lo, arp_ignore=1,
# arp_announce=2). Frames are captured on the client's own interfaces (wifi, cell).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="${OUT:-$HERE}"
PY="${PY:-$(command -v /usr/bin/python3 || command -v python3)}"
PEER="$HERE/capture_peer.py"

CLI=mplbcap-cli
RTR=mplbcap-rtr
BE=mplbcap-be
NSS=("$CLI" "$RTR" "$BE")

VIP4=198.18.0.10
VIP6=fd00:18::10
BE4=198.18.1.11
BE6=fd00:18:1::11
WIFI4=198.18.2.2
WIFI6=fd00:18:2::2
CELL4=198.18.3.2
CELL6=fd00:18:3::2

TMP="$(mktemp -d /tmp/mplbcap.XXXXXX)"
PIDS=()

cleanup() {
    set +e
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    for ns in "${NSS[@]}"; do ip netns del "$ns" 2>/dev/null; done
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
for t in ip ethtool tcpdump mergecap timeout; do
    command -v "$t" >/dev/null || { echo "missing tool: $t" >&2; exit 1; }
done

x() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# ---------------------------------------------------------------- topology
for ns in "${NSS[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
for ns in "${NSS[@]}"; do
    ip netns add "$ns"
    x "$ns" ip link set lo up
    x "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
    x "$ns" sysctl -qw net.ipv6.conf.all.accept_ra=0 net.ipv6.conf.default.accept_ra=0
    x "$ns" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
    x "$ns" sysctl -qw net.mptcp.enabled=1
done

# veth pairs, created directly inside the namespaces, with fixed MACs
ip link add wifi   netns "$CLI" address 02:00:00:00:02:02 type veth peer r-wifi netns "$RTR" address 02:00:00:00:02:01
ip link add cell   netns "$CLI" address 02:00:00:00:03:02 type veth peer r-cell netns "$RTR" address 02:00:00:00:03:01
ip link add be0    netns "$BE"  address 02:00:00:00:01:11 type veth peer r-be   netns "$RTR" address 02:00:00:00:01:01

# finished checksums and normal-sized frames on every veth end
for pair in "$CLI wifi" "$CLI cell" "$RTR r-wifi" "$RTR r-cell" "$RTR r-be" "$BE be0"; do
    set -- $pair
    x "$1" ethtool -K "$2" tx off tso off gso off >/dev/null
    x "$1" ip link set "$2" up
done

# client: wifi is the default path, cell is reached by source routing
x "$CLI" ip addr add $WIFI4/24 dev wifi
x "$CLI" ip addr add $CELL4/24 dev cell
x "$CLI" ip -6 addr add $WIFI6/64 dev wifi nodad
x "$CLI" ip -6 addr add $CELL6/64 dev cell nodad
x "$CLI" ip route add default via 198.18.2.1 dev wifi
x "$CLI" ip -6 route add default via fd00:18:2::1 dev wifi
x "$CLI" ip route add default via 198.18.3.1 dev cell table 103
x "$CLI" ip -6 route add default via fd00:18:3::1 dev cell table 103
x "$CLI" ip rule add from $CELL4 table 103 pref 1000
x "$CLI" ip -6 rule add from $CELL6 table 103 pref 1000

# router: forwards, routes the VIP to the backend
x "$RTR" ip addr add 198.18.2.1/24 dev r-wifi
x "$RTR" ip addr add 198.18.3.1/24 dev r-cell
x "$RTR" ip addr add 198.18.1.1/24 dev r-be
x "$RTR" ip -6 addr add fd00:18:2::1/64 dev r-wifi nodad
x "$RTR" ip -6 addr add fd00:18:3::1/64 dev r-cell nodad
x "$RTR" ip -6 addr add fd00:18:1::1/64 dev r-be nodad
x "$RTR" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
x "$RTR" ip route add $VIP4/32 via $BE4 dev r-be
x "$RTR" ip -6 route add $VIP6/128 via $BE6 dev r-be

# backend: VIP on lo, own unicast address on be0, DSR-style ARP settings
x "$BE" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
x "$BE" sysctl -qw net.ipv4.conf.be0.arp_ignore=1 net.ipv4.conf.be0.arp_announce=2
x "$BE" ip addr add $VIP4/32 dev lo
x "$BE" ip -6 addr add $VIP6/128 dev lo
x "$BE" ip addr add $BE4/24 dev be0
x "$BE" ip -6 addr add $BE6/64 dev be0 nodad
x "$BE" ip route add default via 198.18.1.1 dev be0
x "$BE" ip -6 route add default via fd00:18:1::1 dev be0

# ---------------------------------------------------------------- helpers
# mptcp_config <backend: signal|none> <client: join|none>
mptcp_config() {
    x "$BE" ip mptcp endpoint flush
    x "$CLI" ip mptcp endpoint flush
    x "$BE" ip mptcp limits set subflows 4 add_addr_accepted 0
    x "$BE" sysctl -qw net.mptcp.allow_join_initial_addr_port=1
    if [ "$1" = signal ]; then
        x "$BE" ip mptcp endpoint add $BE4 dev be0 signal
        x "$BE" ip mptcp endpoint add $BE6 dev be0 signal
    fi
    if [ "$2" = join ]; then
        x "$CLI" ip mptcp limits set subflows 4 add_addr_accepted 4
        x "$CLI" ip mptcp endpoint add $CELL4 dev cell subflow
        x "$CLI" ip mptcp endpoint add $CELL6 dev cell subflow
    else
        x "$CLI" ip mptcp limits set subflows 0 add_addr_accepted 0
    fi
}

# start_capture <name> <iface> <filter>   -> $TMP/<name>.<iface>.pcap
start_capture() {
    local name=$1 ifc=$2 filter=$3
    ip netns exec "$CLI" timeout 30 tcpdump --immediate-mode -U -s 0 -n -i "$ifc" \
        -w "$TMP/$name.$ifc.pcap" "$filter" 2>"$TMP/$name.$ifc.log" &
    PIDS+=($!)
    CAP_PIDS+=($!)
    # wait (bounded) until tcpdump reports it is listening
    for _ in $(seq 50); do
        grep -q "listening on" "$TMP/$name.$ifc.log" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "tcpdump on $ifc did not start" >&2
    return 1
}

stop_captures() {
    sleep 0.3
    for p in "${CAP_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${CAP_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    CAP_PIDS=()
}

# start_server <args...>  (runs in the backend namespace, bounded by --lifetime and timeout)
start_server() {
    ip netns exec "$BE" timeout 20 "$PY" "$PEER" server "$@" >"$TMP/server.log" 2>&1 &
    SRV_PID=$!
    PIDS+=($SRV_PID)
    for _ in $(seq 50); do
        grep -q listening "$TMP/server.log" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "server did not start" >&2
    cat "$TMP/server.log" >&2
    return 1
}

stop_server() {
    # the server exits by itself after its connections; make sure of it
    for _ in $(seq 50); do kill -0 "$SRV_PID" 2>/dev/null || break; sleep 0.1; done
    kill "$SRV_PID" 2>/dev/null || true
    wait "$SRV_PID" 2>/dev/null || true
}

client() { ip netns exec "$CLI" timeout 15 "$PY" "$PEER" client "$@"; }

# finish <name> <ifaces...>: merge per-interface captures into classic pcap $OUT/<name>.pcap
finish() {
    local name=$1; shift
    local files=()
    for ifc in "$@"; do files+=("$TMP/$name.$ifc.pcap"); done
    mergecap -F pcap -w "$OUT/$name.pcap" "${files[@]}"
    echo "$name.pcap: $(capinfos -c -M "$OUT/$name.pcap" 2>/dev/null | awk -F: '/Number of packets/ {gsub(/ /,"",$2); print $2}') frames"
}

CAP_PIDS=()

# plain_tcp <capture> <server address> <vip> <client address> <sport>: two
# plain TCP connections to the VIP from <sport> and <sport>+1, the second
# ended by a reset, captured on wifi as <capture>.
plain_tcp() {
    local name=$1 server=$2 vip=$3 src=$4 sport=$5
    mptcp_config none none
    start_capture "$name" wifi "tcp port 80"
    start_server --addr "$server" --port 80 --req 300 --reply 3000 --count 2
    client --addr "$vip" --port 80 --src "$src" --sport "$sport" --req 300 --reply 3000
    client --addr "$vip" --port 80 --src "$src" --sport $((sport + 1)) --req 100 --reply 500 --rst
    stop_server
    stop_captures
    finish "$name" wifi
}

# ---------------------------------------------------------------- 1. MPTCP over IPv4
# Backend announces its own address (ADD_ADDR, id 1); the client ignores announcements.
mptcp_config signal none
start_capture mptcp_v4 wifi "tcp port 80"
start_server --addr 0.0.0.0 --port 80 --mptcp --req 300 --reply 3000
client --addr $VIP4 --port 80 --src $WIFI4 --sport 40001 --mptcp --req 300 --reply 3000 --linger 0.3
stop_server
stop_captures
finish mptcp_v4 wifi

# ---------------------------------------------------------------- 2. MP_JOIN to the VIP
# No announcement; the client has a 'subflow' endpoint on cell, so after the initial
# subflow (wifi) is up it sends an MP_JOIN SYN from cell to the VIP.
mptcp_config none join
start_capture mptcp_join_v4 wifi "tcp port 80"
start_capture mptcp_join_v4 cell "tcp port 80"
start_server --addr 0.0.0.0 --port 80 --mptcp --req 300 --reply 3000
client --addr $VIP4 --port 80 --src $WIFI4 --sport 40002 --mptcp --req 300 --reply 3000 --linger 0.5
stop_server
stop_captures
finish mptcp_join_v4 wifi cell

# ---------------------------------------------------------------- 3. plain TCP over IPv4
plain_tcp tcp_v4 0.0.0.0 $VIP4 $WIFI4 40003

# ---------------------------------------------------------------- 4. MPTCP and TCP over IPv6
mptcp_config signal none
start_capture mptcp_v6 wifi "tcp port 80"
start_server --addr :: --port 80 --mptcp --req 300 --reply 3000
client --addr $VIP6 --port 80 --src $WIFI6 --sport 40011 --mptcp --req 300 --reply 3000 --linger 0.3
stop_server
stop_captures
finish mptcp_v6 wifi

plain_tcp tcp_v6 :: $VIP6 $WIFI6 40013

# ---------------------------------------------------------------- 5. MPTCP client, plain server
mptcp_config none none
start_capture mptcp_fallback_v4 wifi "tcp port 80"
start_server --addr 0.0.0.0 --port 80 --req 300 --reply 3000
client --addr $VIP4 --port 80 --src $WIFI4 --sport 40005 --mptcp --req 300 --reply 3000
stop_server
stop_captures
finish mptcp_fallback_v4 wifi

echo "done: pcaps in $OUT"

# ground truth check, and refresh the generated tables in README.md
"$PY" "$HERE/check_tokens.py" $(ls "$OUT"/*.pcap)
if command -v tshark >/dev/null && [ "$OUT" = "$HERE" ]; then
    "$PY" "$HERE/describe_pcaps.py" --update
fi
