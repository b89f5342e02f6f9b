#!/usr/bin/env bash
# The demo: brings the namespace lab up (lab.sh), runs mplb in it, and walks
# a newcomer through scenarios 1 and 2 in plain words, with mplb's counters
# refreshed while the traffic runs. Run as root (scripts/demo.sh builds mplb
# and installs what is missing first):
#   MPLB=target/release/mplb lab/demo.sh
# The lab is torn down at exit, also on Ctrl-C.
set -uo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
family v4

# say <text>: wrapped at 78 columns, indented; a "* " item's lines hang under its text
say() { echo "$*" | fold -s -w 74 | awk 'NR == 1 { item = /^\* /; print "  " $0; next } { print (item ? "    " : "  ") $0 }'; }
title() { echo; echo "== $*"; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
# demo steps fail with the lab's diagnostics, like the tests
need() { local what=$1; shift; "$@" || fail "$what"; }

# one line of mplb's counters, or "(not running)"
counters_line() {
    local s
    if ! s=$(stats); then echo "mplb: (not running)"; return; fi
    printf 'mplb: forwarded %s, MPTCP SYNs %s, tokens learnt %s, flow entries made %s, joins at VIP %s' \
        "$(counter forwarded "$s")" "$(counter mptcp_syn "$s")" "$(counter tokens_learnt "$s")" \
        "$(counter flow_inserted "$s")" "$(( $(counter join_token_hit "$s") + $(counter join_token_miss "$s") ))"
}

# watch <client pid> <client output>: progress and counters every 0.5 s until the client ends
watch() {
    local got
    while kill -0 "$1" 2>/dev/null; do
        got=$(grep -o '"received": [0-9]*' "$2" 2>/dev/null | tail -n 1 | awk '{ print $2 }')
        printf '  %s  client has %-8s  %s\n' "$(date +%T)" "$(mib "${got:-0}")" "$(counters_line)"
        sleep 0.5
    done
}

# subflows <client sport>: the connection's subflows (ip mptcp monitor) and
# how many of their frames mplb forwarded (capture of the segment)
subflows() {
    local token line src dst sp n
    token=$(grep -E "\[ *ESTABLISHED\].* sport=$1 " "$LAB_DIR/monitor.log" | grep -o 'token=[^ ]*' | tail -n 1)
    [ -n "$token" ] || return 1
    while read -r line; do
        src=$(grep -o 'saddr4=[^ ]*' <<<"$line" | cut -d= -f2)
        dst=$(grep -o 'daddr4=[^ ]*' <<<"$line" | cut -d= -f2)
        sp=$(grep -o 'sport=[^ ]*' <<<"$line" | cut -d= -f2)
        n=$(tsh "eth.src == $MPLB_MAC and ip.src == $src and tcp.srcport == $sp" -e frame.number | wc -l)
        if [ "$n" -gt 0 ]; then
            printf '    %-19s -> %-15s through mplb (%s frames forwarded by mplb)\n' "$src:$sp" "$dst:80" "$n"
        else
            printf '    %-19s -> %-15s straight to the backend, bypassing mplb (0 frames through mplb)\n' "$src:$sp" "$dst:80"
        fi
    done < <(grep -E "\[ *(ESTABLISHED|SF_ESTABLISHED)\] $token " "$LAB_DIR/monitor.log")
}

T0=$SECONDS
title "Setting up the lab"
lab_start
title "The lab"
say "Network namespaces on this machine, with real Linux MPTCP stacks and the real mplb binary:"
cat <<EOF
    client   a phone with two uplinks: wifi $WIFI and cell $CELL
    router   sends traffic for the service address (VIP) $VIP to mplb
    mplb     the load balancer ($LB_IP), on DPDK's af_packet driver
    be1, be2 backends ${BE_IP[be1]} and ${BE_IP[be2]}; each also holds the VIP, answers
             clients directly (direct server return) and announces its own
             address to MPTCP clients (ADD_ADDR)
EOF
say "mplb's config is $LAB_DIR/mplb.toml. Its counters below come from \`mplb stats\` on its control socket, twice a second."

# ---------------------------------------------------------------- scenario 1
title "1. An MPTCP connection to the VIP"
# (paced: the second path must come up before the server's DATA_FIN, after
# which the client's kernel refuses new subflows)
say "The client downloads 300 KB from $VIP:80 over wifi, paced over a second. mplb picks a backend for its SYN by hashing the connection (Maglev), with no state for the SYN."
capture_start demo-1
sport=40001
out="$LAB_DIR/client-demo-1.out"
ip netns exec $CLI timeout 20 $PY -u "$PEER" client --addr $VIP --src $WIFI --sport $sport \
    --bytes 300000 --pace-ms 250 --progress 100000 >"$out" 2>&1 9>&- &
cpid=$!
watch $cpid "$out"
wait $cpid
need "the download completed" grep -q '"ok": true' "$out"
sleep 0.3
be=$(backend_of $WIFI $sport)
need "found the backend mplb chose" test -n "$be"
echo
say "What happened:"
say "* mplb sent the connection's first packet to $be (${BE_IP[$be]}). Once the handshake completed (the client's ACK carries both MPTCP keys) it made one flow-table entry for this subflow, so that a change of the backend set does not move it, and remembered the connection's token, in case a later subflow comes to the VIP."
say "* $be answered the client directly from the VIP and announced its own address ${BE_IP[$be]} (ADD_ADDR)."
say "* The client opened a second path from its cell address straight to ${BE_IP[$be]}. The connection's subflows:"
subflows $sport || fail "no subflows in ip mptcp monitor"
say "All 300000 bytes arrived; their SHA-256 matches."
# keep the facts told above honest
n=$(tsh "eth.src == $MPLB_MAC and ip.src == $CELL" -e frame.number | wc -l)
need "the cell subflow bypassed mplb" test "$n" -eq 0
need "a subflow to the backend's own address" grep -Eq "SF_ESTABLISHED\].* saddr4=$CELL daddr4=${BE_IP[$be]} " "$LAB_DIR/monitor.log"

# ---------------------------------------------------------------- scenario 2
title "2. mplb dies in the middle of a download"
say "The client downloads 8 MiB, paced over about 3 seconds. Once the direct cell path is up, mplb is killed (SIGKILL)."
capture_start demo-2
sport=40002
total=$((8 * 1024 * 1024))
out="$LAB_DIR/client-demo-2.out"
joins0=$(nstat_of $CLI MPTcpExtMPJoinSynAckRx)
ip netns exec $CLI timeout 40 $PY -u "$PEER" client --addr $VIP --src $WIFI --sport $sport \
    --bytes $total --seed 2 --pace-ms 25 --timeout 30 >"$out" 2>&1 9>&- &
cpid=$!
PIDS+=($cpid)
# progress and counters every 0.5 s; mplb is killed 1 s after the direct path is up
killed_at=""
joined_at=""
while kill -0 $cpid 2>/dev/null; do
    got=$(grep -o '"received": [0-9]*' "$out" 2>/dev/null | tail -n 1 | awk '{ print $2 }')
    printf '  %s  client has %-8s  %s\n' "$(date +%T)" "$(mib "${got:-0}")" "$(counters_line)"
    if [ -z "$joined_at" ] && [ "$(nstat_of $CLI MPTcpExtMPJoinSynAckRx)" -gt "$joins0" ]; then
        joined_at=$SECONDS
    fi
    if [ -z "$killed_at" ] && [ -n "$joined_at" ] && [ $((SECONDS - joined_at)) -ge 1 ]; then
        mpid=$(pgrep -P "$MPLB_PID" | head -n 1)
        killed_at=$(date +%s.%N)
        echo "  $(date +%T)  >>> killing mplb (pid $mpid) <<<"
        kill -KILL "$mpid"
        wait "$MPLB_PID" 2>/dev/null
    fi
    sleep 0.5
done
wait $cpid
rc=$?
need "mplb was killed during the download" test -n "$killed_at"
need "the download completed (rc $rc)" grep -q '"ok": true' "$out"
need "mplb is dead" test -z "$(stats)"
be=$(backend_of $WIFI $sport)
direct=$(tsh "ip.src == ${BE_IP[$be]} and ip.dst == $CELL and tcp.srcport == 80 and frame.time_epoch > $killed_at" -e tcp.len | awk '{ s += $1 } END { print s + 0 }')
gap=$(grep -o '"longest_gap_ms": [0-9.]*' "$out" | awk '{ print $2 }')
echo
say "What happened:"
say "* The connection went to $be. Its subflows:"
subflows $sport || true
say "* mplb was killed mid-transfer: the wifi path through it went dead, but the cell path never used mplb. After the kill, $be sent $(mib "$direct") over the direct path."
say "* All $total bytes arrived and their SHA-256 matches: the download never stopped. The longest wait between two pieces of data was $gap ms (MPTCP resending on the direct path what was lost on the dead one takes up to one TCP retransmission timeout, about 200 ms)."
need "data flowed over the direct subflow after the kill" test "$direct" -gt 0

title "Done in $((SECONDS - T0)) s"
say "The lab is torn down now. lab/README.md describes it; lab/scenarios.sh runs its ten scenarios as tests (./scripts/test.sh runs them with the rest of the suite)."
