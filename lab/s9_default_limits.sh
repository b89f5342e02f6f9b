# Scenario 9: MPTCP clients with the kernel's default limits
# (add_addr_accepted 0, no endpoints): they ignore the backends' ADD_ADDR, so
# each whole connection stays on its initial subflow, through mplb. Twelve
# paced downloads (six on be1, six on be2) run while, one after another, a
# reload adds be3, a reload drains be1, a reload changes the weights, and
# be3 (which carries none of them) fails its health checks. With the default
# config (mptcp_tracking on) none is reset: every download completes byte
# for byte, still MPTCP, on its first backend. `s9 <v4|v6> <port base> flood`
# does the same while spoofed SYNs flood the VIP, and checks that the flood
# added no flow-table entry. Sourced by scenarios.sh.

# client_limits default|lab: the client's MPTCP limits and endpoints
client_limits() {
    x $CLI ip mptcp endpoint flush
    if [ "$1" = default ]; then
        x $CLI ip mptcp limits set subflows 2 add_addr_accepted 0
    else
        x $CLI ip mptcp limits set subflows 4 add_addr_accepted 4
        x $CLI ip mptcp endpoint add $CELL dev cell subflow fullmesh
        x $CLI ip mptcp endpoint add $CELL6 dev cell subflow fullmesh
    fi
}

# set_backends <list>: the current family's backends, then `mplb reload`
set_backends() {
    if [ "$F" = ipv6 ]; then LAB_V6_BACKENDS=$1; else LAB_V4_BACKENDS=$1; fi
    echo "  reload to: $1"
    reload
}

s9() {
    family "$1"
    local t0 base=$2 flood=${3:-} id="s9-$1${3:+-$3}" s i b
    log "scenario $id: 12 single-path MPTCP downloads (default client limits) through add, drain, re-weight and a health failure${flood:+, under a spoofed-SYN flood}"
    capture_start "$id" "tcp and host $FWIFI"
    client_limits default
    set_backends "be1:1 be2:1"
    t0=$SECONDS
    # be3, removed at the end of a previous run, retires until idle
    wait_backend $FVIPNAME "be3$FSFX" absent 15 >/dev/null || fail "be3$FSFX is still configured"

    # 6 source ports mplb sends to be1, 6 to be2
    local range="$((base))-$((base + 99))" ports=() want=() PID=()
    lookup $FWIFI $FVIP "$range" >"$LAB_DIR/$id.lookup" || fail "lookup"
    ports=($(awk -v s="$FSFX" '$2 == "be1"s && n1 < 6 { print $1; n1++ } $2 == "be2"s && n2 < 6 { print $1; n2++ }' "$LAB_DIR/$id.lookup"))
    check "found 6 + 6 source ports mplb sends to be1 and be2" test ${#ports[@]} -eq 12

    local before after flood_pid="" flood_out="$LAB_DIR/$id-flood.out" addaddr0
    before=$(stats)
    addaddr0=$(nstat_of $CLI MPTcpExtAddAddr)
    local joins0; joins0=$(nstat_of $CLI MPTcpExtMPJoinSynTx)
    # 3 MiB each in 64 KiB chunks 200 ms apart: ~9.6 s of transfer
    for s in "${ports[@]}"; do
        want+=("$(awk -v p="$s" '$1 == p { print $2 }' "$LAB_DIR/$id.lookup")")
        ip netns exec $CLI timeout 60 $PY -u "$PEER" client --addr $FVIP --src $FWIFI --sport "$s" \
            --bytes $((3 * 1024 * 1024)) --seed 9 --pace-ms 200 --timeout 40 >"$LAB_DIR/client-$id-$s.out" 2>&1 9>&- &
        PID[$s]=$!
    done
    for s in "${ports[@]}"; do
        transferring "$LAB_DIR/client-$id-$s.out" "download from port $s"
    done
    local established; established=$(stats)

    if [ -n "$flood" ]; then
        # the router's leg on the segment, to mplb's MAC, from 198.19.0.0/16
        # (or fd00:19::/64): ~5000 SYNs a second for 6 s, while the backend
        # set changes, ending before the downloads do
        local from=198.19.0.0/16
        [ "$F" = ipv6 ] && from=fd00:19::/64
        ip netns exec $RTR timeout 30 $PY -u "$HERE/synflood.py" --iface r-seg --dst-mac "$MPLB_MAC" \
            --addr $FVIP --port $VIP_PORT --from $from --pps 5000 --seconds 6 --count 30000 >"$flood_out" 2>&1 9>&- &
        flood_pid=$!
        sleep 0.5
    fi

    set_backends "be1:1 be2:1 be3:1"
    wait_backend $FVIPNAME "be3$FSFX" "active up" 5 >/dev/null || fail "be3$FSFX did not come up"
    set_backends "be1:1:draining be2:1 be3:1"
    set_backends "be1:1:draining be2:3 be3:1"
    local down_at; down_at=$(date +%s%3N)
    stop_server be3
    wait_backend $FVIPNAME "be3$FSFX" "down down" 5 "$down_at" >/dev/null || fail "be3$FSFX not marked down"
    echo "  be3$FSFX failed its health checks (its listener stopped)"

    if [ -n "$flood" ]; then
        # counted as soon as the flood ends, while the downloads still run
        # (their last, option-less ACKs may each add a plain entry later)
        wait "$flood_pid"
        local flooded sent syns inserted
        flooded=$(stats)
        sent=$($PY -c "import json,sys; print(json.load(open(sys.argv[1]))['sent'])" "$flood_out") \
            || fail "the flood did not run: $(cat "$flood_out")"
        syns=$(delta plain_syn "$established" "$flooded")
        inserted=$(delta flow_inserted "$established" "$flooded")
        echo "  flood: $sent spoofed SYNs sent; mplb saw plain_syn +$syns; flow_inserted +$inserted"
        check "mplb forwarded the flood's SYNs statelessly (plain_syn +$syns of $sent)" test "$syns" -ge $((sent * 9 / 10))
        check "the flood added no flow-table entry (flow_inserted +$inserted during it)" test "$inserted" -eq 0
        check "the downloads were still running when the flood ended" \
            test "$(grep -c '"event": "done"' "$LAB_DIR"/client-$id-*.out | awk -F: '{ n += $2 } END { print n + 0 }')" -eq 0
    fi

    # what a new flow with each download's tuple would get now
    lookup $FWIFI $FVIP "$range" >"$LAB_DIR/$id-after.lookup" || fail "lookup"
    local moved=0 now
    for i in "${!ports[@]}"; do
        now=$(awk -v p="${ports[$i]}" '$1 == p { print $2 }' "$LAB_DIR/$id-after.lookup")
        [ "$now" != "${want[$i]}" ] && moved=$((moved + 1))
    done
    check "Maglev now sends $moved of the 12 tuples elsewhere (at least the 6 on draining be1)" test $moved -ge 6

    for i in "${!ports[@]}"; do
        s=${ports[$i]}
        wait "${PID[$s]}"
        check "port $s: 3 MiB with the right SHA-256, still MPTCP, served by ${want[$i]%$FSFX} alone" \
            test "$(grep -c '"ok": true.*"mptcp": true' "$LAB_DIR/client-$id-$s.out") $(served_by $FWIFI "$s" | tr '\n' ' ')" \
            = "1 ${want[$i]%$FSFX} "
    done
    after=$(stats)
    check "no reset seen for the downloads (capture)" test "$(tsh 'tcp.flags.reset == 1' -e frame.number | wc -l)" -eq 0
    check "the client ignored the ADD_ADDRs: no join sent (MPTcpExtMPJoinSynTx +$(( $(nstat_of $CLI MPTcpExtMPJoinSynTx) - joins0 )))" \
        test "$(nstat_of $CLI MPTcpExtMPJoinSynTx)" -eq "$joins0"
    echo "  ADD_ADDRs the client received and ignored: +$(( $(nstat_of $CLI MPTcpExtAddAddr) - addaddr0 ))"
    check "no tracked flow lost its backend (flow_backend_gone +$(delta flow_backend_gone "$before" "$after"))" \
        test "$(delta flow_backend_gone "$before" "$after")" -eq 0
    check "the 12 connections were tracked (flow_inserted +$(delta flow_inserted "$before" "$established"))" \
        test "$(delta flow_inserted "$before" "$established")" -ge 12

    # back to the lab's defaults for the next scenarios
    start_server be3
    if [ "$F" = ipv6 ]; then LAB_V6_BACKENDS="be1:1 be2:2"; else LAB_V4_BACKENDS="be1:1 be2:2"; fi
    reload
    client_limits lab
    within 45 "$id" "$t0"
    log "scenario $id passed ($((SECONDS - t0)) s)"
}
