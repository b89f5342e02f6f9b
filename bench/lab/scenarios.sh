#!/usr/bin/env bash
# Real Linux MPTCP through mplb, in the namespace lab of lab.sh. Run as root
# from anywhere:   bench/lab/scenarios.sh
#   MPLB=path/to/mplb   the binary (default: target/debug/mplb, built if missing)
#   LAB_KEEP=1          leave the lab up afterwards (bench/lab/lab.sh down removes it)
#
# Scenario 1: an MPTCP client connects to the VIP through mplb; the backend
#   answers from the VIP, its ADD_ADDR reaches the client, and the client joins
#   the backend's own address over its second uplink without crossing mplb;
#   mplb counts the MP_CAPABLE SYN and learns the token, and inserts no flow.
# Scenario 2: mplb is killed (SIGKILL) in the middle of an 8 MiB download; the
#   transfer completes over the direct subflow, checked by SHA-256.
# Scenario 3 (controls, run before 2): plain TCP does get a flow entry; with the
#   backends' C flag off, a join sent to the VIP is routed by the learnt token.
# Exits non-zero on the first failed assertion, after printing mplb's counters,
# its output, the client's MPTCP counters and a summary of the capture.
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
LAB_DIR="${LAB_DIR:-/tmp/mplblab}"
export LAB_DIR
PY=/usr/bin/python3
PEER="$HERE/peer.py"
MPLB="${MPLB:-$ROOT/target/debug/mplb}"

CLI=mplblab-cli RTR=mplblab-rtr SEG=mplblab-seg LB=mplblab-lb
VIP=198.18.0.10 WIFI=198.18.2.2 CELL=198.18.3.2
declare -A BE_IP=([be1]=198.18.1.11 [be2]=198.18.1.12)
SOCK="$LAB_DIR/mplb.sock"
CAP="$LAB_DIR/seg.pcap"
PIDS=()
MPLB_PID=""
FAILED=0

# (background jobs use `ip netns exec` directly, not x: it execs, so $! is
# the pid of `timeout`, which passes SIGTERM on)
x() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
log() { echo "scenarios: $*"; }

stats() { timeout 5 "$MPLB" stats --socket "$SOCK" 2>/dev/null; }
counter() { awk -v k="$1" '$1 == k { print $2; f = 1 } END { if (!f) print "NA" }' <<<"$2"; }
nstat_of() { x "$1" nstat -az 2>/dev/null | awk -v k="$2" '$1 == k { print $2 }'; }
tsh() { timeout 30 tshark -r "$CAP" -Y "$1" -T fields "${@:2}" 2>/dev/null; }

diagnose() {
    echo "---------------- diagnostics"
    echo "-- mplb stats"; stats || echo "(mplb not answering)"
    echo "-- mplb stdout"; tail -n 20 "$LAB_DIR/mplb.out" 2>/dev/null
    echo "-- mplb stderr"; tail -n 20 "$LAB_DIR/mplb.err" 2>/dev/null
    echo "-- client MPTCP counters"; x $CLI nstat -az 2>/dev/null | awk '$1 ~ /^MPTcp/ && $2 != 0'
    for b in be1 be2; do
        echo "-- $b MPTCP counters"; x mplblab-$b nstat -az 2>/dev/null | awk '$1 ~ /^MPTcp/ && $2 != 0'
        echo "-- $b server log"; tail -n 5 "$LAB_DIR/server-$b.log" 2>/dev/null
    done
    echo "-- ip mptcp monitor (client)"; tail -n 20 "$LAB_DIR/monitor.log" 2>/dev/null
    echo "-- client output"; cat "$LAB_DIR"/client-*.out 2>/dev/null | tail -n 20
    if [ -s "$CAP" ]; then
        echo "-- capture on the segment: SYNs and ADD_ADDRs (frame eth.src eth.dst ip.src:port ip.dst:port flags mptcp-subtypes addaddr)"
        tsh "tcp.flags.syn == 1 and tcp.port == 80 or tcp.options.mptcp.subtype == 3" \
            -e frame.number -e eth.src -e eth.dst -e ip.src -e tcp.srcport -e ip.dst -e tcp.dstport \
            -e tcp.flags -e tcp.options.mptcp.subtype -e tcp.options.mptcp.ipv4 | head -n 40
        echo "-- frames per (eth.src, ip.src -> ip.dst) on port 80"
        tsh "tcp.port == 80" -e eth.src -e ip.src -e ip.dst | sort | uniq -c | sort -rn | head -n 20
    fi
}

fail() {
    echo "FAIL: $*"
    FAILED=1
    diagnose
    exit 1
}
check() { # check <description> <condition...>
    local what=$1; shift
    if "$@"; then echo "  ok: $what"; else fail "$what"; fi
}

[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
# one lab run at a time on this machine (see lab.sh); held until exit
exec 9>/run/lock/mplblab.lock
if ! flock -n 9; then
    log "waiting for another lab run to finish"
    flock -w 240 9 || { echo "another lab run holds /run/lock/mplblab.lock" >&2; exit 1; }
fi
export MPLBLAB_LOCKED=1

cleanup() {
    set +e
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    if [ "${LAB_KEEP:-0}" != 1 ]; then timeout 30 "$HERE/lab.sh" down >/dev/null; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM


# ------------------------------------------------------------------ setup
if [ ! -x "$MPLB" ]; then
    log "building mplb"
    (cd "$ROOT" && timeout 900 cargo build -q) || { echo "build failed" >&2; exit 1; }
fi
timeout 120 "$HERE/lab.sh" up || { echo "lab up failed" >&2; exit 1; }
rm -f "$LAB_DIR"/*.log "$LAB_DIR"/*.out "$LAB_DIR"/*.err "$CAP" "$SOCK"

for b in be1 be2; do
    ip netns exec mplblab-$b timeout 110 $PY -u "$PEER" server --addr 0.0.0.0 --port 80 >"$LAB_DIR/server-$b.log" 2>&1 9>&- &
    PIDS+=($!)
done
for b in be1 be2; do
    for _ in $(seq 50); do grep -q listening "$LAB_DIR/server-$b.log" 2>/dev/null && break; sleep 0.1; done
    grep -q listening "$LAB_DIR/server-$b.log" || fail "server on $b did not start"
done

ip netns exec $SEG timeout 100 tcpdump --immediate-mode -U -n -e -s 160 -i br0 -w "$CAP" tcp >"$LAB_DIR/tcpdump.log" 2>&1 9>&- &
PIDS+=($!)
for _ in $(seq 50); do grep -q "listening on" "$LAB_DIR/tcpdump.log" 2>/dev/null && break; sleep 0.1; done
grep -q "listening on" "$LAB_DIR/tcpdump.log" || fail "tcpdump did not start"

ip netns exec $CLI timeout 100 ip mptcp monitor >"$LAB_DIR/monitor.log" 2>&1 9>&- &
PIDS+=($!)

ip netns exec $LB timeout 100 "$MPLB" run --config "$LAB_DIR/mplb.toml" >"$LAB_DIR/mplb.out" 2>"$LAB_DIR/mplb.err" 9>&- &
MPLB_PID=$!
PIDS+=($MPLB_PID)
for _ in $(seq 200); do stats >/dev/null && break; sleep 0.1; done
S=$(stats) || fail "mplb did not start (no answer on $SOCK)"
echo "$S" | grep -Eq '^web +be1 .* up$' && echo "$S" | grep -Eq '^web +be2 .* up$' \
    || fail "backends not up in mplb's view"

MPLB_MAC=$(x $LB cat /sys/class/net/lb0/address)
RTR_MAC=$(x $RTR cat /sys/class/net/r-seg/address)
declare -A BE_MAC=([be1]=$(x mplblab-be1 cat /sys/class/net/be1/address) [be2]=$(x mplblab-be2 cat /sys/class/net/be2/address))

# which backend got the SYN from $WIFI:<sport>: echoes be1/be2
backend_of() {
    local mac
    mac=$(tsh "eth.src == $MPLB_MAC and ip.src == $WIFI and tcp.srcport == $1 and tcp.flags.syn == 1" -e eth.dst | head -n 1)
    for b in be1 be2; do [ "$mac" = "${BE_MAC[$b]}" ] && echo $b; done
}

# ------------------------------------------------------------------ scenario 1
s1() {
    local t0=$SECONDS sport=40001 before after be bip out
    log "scenario 1: MPTCP through mplb, ADD_ADDR, direct join"
    before=$(stats) || fail "stats"
    x $CLI nstat -n >/dev/null
    out="$LAB_DIR/client-1.out"
    x $CLI timeout 20 $PY -u "$PEER" client --addr $VIP --src $WIFI --sport $sport \
        --bytes 300000 --linger 1.0 >"$out" 2>&1
    check "client got 300000 bytes with the right SHA-256 through the VIP" grep -q '"ok": true' "$out"
    sleep 0.5
    after=$(stats) || fail "stats"
    local d_syn=$(( $(counter mptcp_syn "$after") - $(counter mptcp_syn "$before") ))
    local d_tok=$(( $(counter tokens_learnt "$after") - $(counter tokens_learnt "$before") ))
    local d_ins=$(( $(counter flow_inserted "$after") - $(counter flow_inserted "$before") ))
    local d_join=$(( $(counter join_token_hit "$after") + $(counter join_token_miss "$after") \
                   - $(counter join_token_hit "$before") - $(counter join_token_miss "$before") ))
    echo "  mplb deltas: mptcp_syn=$d_syn tokens_learnt=$d_tok flow_inserted=$d_ins joins_at_vip=$d_join"
    check "mplb counted the MP_CAPABLE SYN (mptcp_syn +$d_syn)" test "$d_syn" -ge 1
    check "mplb learnt the token (tokens_learnt +$d_tok)" test "$d_tok" -ge 1
    check "mplb inserted no flow for the MPTCP connection (flow_inserted +$d_ins)" test "$d_ins" -eq 0
    check "no MP_JOIN reached mplb (join_token_hit+miss +$d_join)" test "$d_join" -eq 0

    be=$(backend_of $sport)
    check "the SYN crossed mplb (router -> mplb -> a backend's MAC)" test -n "$be"
    bip=${BE_IP[$be]}
    echo "  backend chosen by mplb: $be ($bip, ${BE_MAC[$be]})"
    local n
    n=$(tsh "eth.src == $RTR_MAC and eth.dst == $MPLB_MAC and ip.src == $WIFI and tcp.srcport == $sport and tcp.flags.syn == 1 and tcp.flags.ack == 0 and tcp.options.mptcp.subtype == 0" -e frame.number | wc -l)
    check "client's MP_CAPABLE SYN to the VIP was sent to mplb's MAC by the router ($n)" test "$n" -ge 1
    n=$(tsh "eth.src == ${BE_MAC[$be]} and ip.src == $VIP and tcp.srcport == 80 and ip.dst == $WIFI and tcp.dstport == $sport and tcp.flags.syn == 1 and tcp.flags.ack == 1 and tcp.options.mptcp.subtype == 0" -e frame.number | wc -l)
    check "$be answered with an MP_CAPABLE SYN-ACK from the VIP, straight to the router ($n)" test "$n" -ge 1
    n=$(tsh "ip.src == $VIP and ip.dst == $WIFI and tcp.dstport == $sport and tcp.options.mptcp.subtype == 3 and tcp.options.mptcp.ipv4 == $bip" -e frame.number | wc -l)
    check "$be sent ADD_ADDR $bip to the client ($n)" test "$n" -ge 1
    n=$(nstat_of $CLI MPTcpExtAddAddr)
    check "the client received the ADD_ADDR (MPTcpExtAddAddr=${n:-0})" test "${n:-0}" -ge 1
    n=$(tsh "eth.src == $RTR_MAC and eth.dst == ${BE_MAC[$be]} and ip.src == $CELL and ip.dst == $bip and tcp.dstport == 80 and tcp.flags.syn == 1 and tcp.flags.ack == 0 and tcp.options.mptcp.subtype == 1" -e frame.number | wc -l)
    check "the client's MP_JOIN SYN from cell reached $bip straight from the router ($n)" test "$n" -ge 1
    n=$(tsh "eth.src == $MPLB_MAC and (ip.dst == $bip or ip.src == $CELL)" -e frame.number | wc -l)
    check "mplb forwarded none of the direct subflow's frames ($n)" test "$n" -eq 0
    n=$(tsh "ip.src == $bip and ip.dst == $CELL and tcp.flags.syn == 1 and tcp.flags.ack == 1 and tcp.options.mptcp.subtype == 1" -e frame.number | wc -l)
    check "$be accepted the join (MP_JOIN SYN-ACK from $bip) ($n)" test "$n" -ge 1
    n=$(nstat_of $CLI MPTcpExtMPJoinSynAckRx)
    check "the client established the join (MPTcpExtMPJoinSynAckRx=${n:-0})" test "${n:-0}" -ge 1
    check "ip mptcp monitor: the client saw $bip announced" \
        grep -Eq "ANNOUNCED\].* daddr4=$bip( |$)" "$LAB_DIR/monitor.log"
    check "ip mptcp monitor: subflow $CELL -> $bip:80 established" \
        grep -Eq "SF_ESTABLISHED\].* saddr4=$CELL daddr4=$bip .*dport=80" "$LAB_DIR/monitor.log"
    check "scenario 1 within 60 s ($((SECONDS - t0)) s)" test $((SECONDS - t0)) -lt 60
    log "scenario 1 passed"
}

# ------------------------------------------------------------------ scenario 3
# Controls: a plain TCP connection does get a flow entry (so scenario 1's
# "no insert" means something), and an MP_JOIN sent to the VIP (backends
# without the C flag) is routed by the learnt token to the right backend.
s3() {
    local t0=$SECONDS before after out="$LAB_DIR/client-3.out" be bip n
    log "scenario 3: controls: plain TCP gets a flow entry; a join to the VIP is routed by token"
    before=$(stats) || fail "stats"
    ip netns exec $CLI timeout 20 $PY -u "$PEER" client --plain --addr $VIP --src $WIFI --sport 40003 \
        --bytes 100000 >"$out" 2>&1
    check "plain TCP client got its bytes through the VIP" grep -q '"ok": true' "$out"
    sleep 0.3
    after=$(stats) || fail "stats"
    n=$(( $(counter flow_inserted "$after") - $(counter flow_inserted "$before") ))
    check "plain TCP through mplb inserted a flow (flow_inserted +$n)" test "$n" -ge 1

    for b in be1 be2; do x mplblab-$b sysctl -qw net.mptcp.allow_join_initial_addr_port=1; done
    before=$after
    x $CLI nstat -n >/dev/null
    ip netns exec $CLI timeout 20 $PY -u "$PEER" client --addr $VIP --src $WIFI --sport 40004 \
        --bytes 300000 --linger 1.0 >>"$out" 2>&1
    local rc=$?
    for b in be1 be2; do x mplblab-$b sysctl -qw net.mptcp.allow_join_initial_addr_port=0; done
    check "MPTCP client (joins to the VIP allowed) got its bytes" test $rc -eq 0
    sleep 0.3
    after=$(stats) || fail "stats"
    local hit miss
    hit=$(( $(counter join_token_hit "$after") - $(counter join_token_hit "$before") ))
    miss=$(( $(counter join_token_miss "$after") - $(counter join_token_miss "$before") ))
    echo "  mplb deltas: join_token_hit=$hit join_token_miss=$miss"
    be=$(backend_of 40004)
    check "the initial SYN crossed mplb" test -n "$be"
    n=$(tsh "eth.src == $MPLB_MAC and eth.dst == ${BE_MAC[$be]} and ip.src == $CELL and ip.dst == $VIP and tcp.flags.syn == 1 and tcp.flags.ack == 0 and tcp.options.mptcp.subtype == 1" -e frame.number | wc -l)
    check "mplb sent the MP_JOIN SYN to the VIP on to $be, the connection's backend ($n)" test "$n" -ge 1
    check "mplb found the token (join_token_hit +$hit)" test "$hit" -ge 1
    check "ip mptcp monitor: subflow $CELL -> VIP established" \
        grep -Eq "SF_ESTABLISHED\].* saddr4=$CELL daddr4=$VIP .*dport=80" "$LAB_DIR/monitor.log"
    check "scenario 3 within 60 s ($((SECONDS - t0)) s)" test $((SECONDS - t0)) -lt 60
    log "scenario 3 passed"
}

# ------------------------------------------------------------------ scenario 2
s2() {
    local t0=$SECONDS sport=40002 total=$((8 * 1024 * 1024)) out="$LAB_DIR/client-2.out" cpid mpid kill_at be bip
    log "scenario 2: mplb killed mid-transfer of $total bytes"
    x $CLI nstat -n >/dev/null
    # 128 chunks of 64 KiB, 25 ms apart: ~3.2 s of transfer
    ip netns exec $CLI timeout 40 $PY -u "$PEER" client --addr $VIP --src $WIFI --sport $sport \
        --bytes $total --seed 2 --pace-ms 25 --timeout 30 >"$out" 2>&1 9>&- &
    cpid=$!
    PIDS+=($cpid)
    for _ in $(seq 100); do grep -q first_bytes "$out" 2>/dev/null && break; sleep 0.05; done
    check "the transfer started" grep -q first_bytes "$out"
    # let the join come up and some data flow, then kill mplb
    for _ in $(seq 40); do
        [ "$(nstat_of $CLI MPTcpExtMPJoinSynAckRx)" -ge 1 ] 2>/dev/null && break
        sleep 0.05
    done
    check "the direct subflow is up before the kill" test "$(nstat_of $CLI MPTcpExtMPJoinSynAckRx)" -ge 1
    sleep 0.7
    local pre; pre=$(stats)
    mpid=$(pgrep -P "$MPLB_PID" | head -n 1)
    check "found mplb's pid" test -n "$mpid"
    kill_at=$(date +%s.%N)
    kill -KILL "$mpid"
    wait "$MPLB_PID" 2>/dev/null
    echo "  killed mplb (pid $mpid) at $kill_at"
    check "mplb is gone" test -z "$(stats)"
    wait "$cpid"
    local rc=$?
    cat "$out" | grep -E '"done"' | sed 's/^/  /'
    check "client exited 0 (rc=$rc)" test $rc -eq 0
    check "all $total bytes arrived with the right SHA-256" grep -q '"ok": true' "$out"
    local at_kill after_kill
    at_kill=$($PY - "$out" "$kill_at" <<'EOF'
import json, sys
got = 0
for l in open(sys.argv[1]):
    e = json.loads(l)
    if e["event"] == "progress" and e["wall"] <= float(sys.argv[2]):
        got = e["received"]
print(got)
EOF
)
    after_kill=$(grep -c '"event": "progress"' "$out")
    echo "  received before the kill: at most $at_kill + 512 KiB; progress reports in all: $after_kill"
    check "the kill happened mid-transfer (<= $at_kill bytes reported before it)" test "$at_kill" -lt $((total - 1024 * 1024))
    be=$(backend_of $sport)
    check "scenario 2's SYN crossed mplb" test -n "$be"
    bip=${BE_IP[$be]}
    local direct
    direct=$(tsh "ip.src == $bip and ip.dst == $CELL and tcp.srcport == 80 and frame.time_epoch > $kill_at" -e tcp.len | awk '{s += $1} END {print s + 0}')
    echo "  payload bytes from $bip to the client's cell address after the kill: $direct"
    check "data flowed over the direct subflow after the kill ($direct bytes)" test "$direct" -gt 0
    check "scenario 2 within 60 s ($((SECONDS - t0)) s)" test $((SECONDS - t0)) -lt 60
    echo "  mplb counters just before the kill:"
    grep -E '^(rx_packets|forwarded|mptcp_syn|tokens_learnt|flow_inserted|join_token_hit|join_token_miss) ' <<<"$pre" | sed 's/^/    /'
    log "scenario 2 passed"
}

s1
s3
s2
log "all scenarios passed"
