# Scenario 2: mplb is killed (SIGKILL) in the middle of an 8 MiB download;
# the transfer completes over the direct subflow, checked by SHA-256. Run
# last: mplb stays dead. Sourced by scenarios.sh.

s2() {
    family v4
    local t0=$SECONDS sport=40002 total=$((8 * 1024 * 1024)) out="$LAB_DIR/client-s2.out" cpid kill_at be b
    log "scenario 2: mplb killed mid-transfer of $total bytes"
    capture_start s2
    local joins0; joins0=$(nstat_of $CLI MPTcpExtMPJoinSynAckRx)
    # 128 chunks of 64 KiB, 25 ms apart: ~3.2 s of transfer
    ip netns exec $CLI timeout 40 $PY -u "$PEER" client --addr $VIP --src $WIFI --sport $sport \
        --bytes $total --seed 2 --pace-ms 25 --timeout 30 >"$out" 2>&1 9>&- &
    cpid=$!
    PIDS+=($cpid)
    transferring "$out" "the transfer"
    # let the join come up and some data flow, then kill mplb
    for _ in $(seq 40); do
        [ "$(nstat_of $CLI MPTcpExtMPJoinSynAckRx)" -gt "$joins0" ] && break
        sleep 0.05
    done
    check "the direct subflow is up before the kill (MPTcpExtMPJoinSynAckRx > $joins0)" test "$(nstat_of $CLI MPTcpExtMPJoinSynAckRx)" -gt "$joins0"
    sleep 0.7
    local pre; pre=$(stats)
    kill_mplb
    kill_at=$KILLED_AT
    wait "$cpid"
    local rc=$?
    grep -E '"done"' "$out" | sed 's/^/  /'
    check "client exited 0 (rc=$rc)" test $rc -eq 0
    check "all $total bytes arrived with the right SHA-256" grep -q '"ok": true' "$out"
    local at_kill
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
    echo "  received before the kill: at most $at_kill + 512 KiB"
    check "the kill happened mid-transfer (<= $at_kill bytes reported before it)" test "$at_kill" -lt $((total - 1024 * 1024))
    be=$(backend_of $WIFI $sport)
    check "scenario 2's SYN crossed mplb" test -n "$be"
    b=${BE_IP[$be]}
    local direct
    direct=$(tsh "ip.src == $b and ip.dst == $CELL and tcp.srcport == 80 and frame.time_epoch > $kill_at" -e tcp.len | awk '{s += $1} END {print s + 0}')
    echo "  payload bytes from $b to the client's cell address after the kill: $direct"
    check "data flowed over the direct subflow after the kill ($direct bytes)" test "$direct" -gt 0
    within 30 "2" "$t0"
    echo "  mplb counters just before the kill:"
    grep -E '^(rx_packets|forwarded|mptcp_syn|tokens_learnt|flow_inserted|join_token_hit|join_token_miss) ' <<<"$pre" | sed 's/^/    /'
    log "scenario 2 passed ($((SECONDS - t0)) s)"
}
