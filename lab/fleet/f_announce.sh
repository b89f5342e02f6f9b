# Fleet scenarios on what the router learns (sourced by scenarios.sh).

# f_start: the three instances come up one after another. lb3's mplb starts
# before its BIRD: the speaker is absent, mplb forwards and says so (metric
# and log line); once BIRD runs, lb3 is announced too. web gets the three
# instances as next hops; api (be3:8080, no listener yet) gets none.
f_start() {
    local lb t0 ms
    log "start: three instances, each announcing web once ready"
    for lb in lb1 lb2; do
        t0=$(date +%s%3N)
        start_mplb "$lb"
        start_bird "$lb"
        ms=$(wait_nexthops $VIP "$(lbs_of lb1 ${lb/lb1/})" 20 "$t0") ||
            fail "web is not announced by $lb"
        echo "  $lb: web reaches the router $ms ms after mplb started"
    done
    start_mplb lb3
    sleep 1.5
    check "lb3 without its BIRD: mplb_bgp_speaker_up 0 ($(metric lb3 mplb_bgp_speaker_up))" \
        test "$(metric lb3 mplb_bgp_speaker_up)" = 0
    check "lb3 without its BIRD logs that the speaker is down" \
        grep -qi 'speaker.*\(down\|unreachable\|absent\|not running\)' "$(lbdir lb3)/mplb.err" "$(lbdir lb3)/mplb.out"
    check "lb3 without its BIRD still answers ping on its port" \
        x "$RTR" ping -c 1 -W 2 "${LB_IP[lb3]}"
    start_bird lb3
    ms=$(wait_nexthops $VIP "$(lbs_of lb1 lb2 lb3)" 20) || fail "web is not announced by lb3"
    echo "  lb3: web announced $ms ms after its BIRD started"
    # BIRD reads the routes file mplb wrote at its start, so the route can
    # reach the router before mplb's next look at the speaker.
    check "lb3: mplb_bgp_speaker_up 1 once mplb has looked again" \
        wait_metric lb3 mplb_bgp_speaker_up 1 5
    check "api (no healthy backend) is announced by no instance" test -z "$(nexthops $API_VIP)"
}

# f_withdraw: api's only backend comes up: every instance announces it; its
# listener stops: every instance withdraws it (health checks over the
# exception path); back up: announced again.
f_withdraw() {
    local t0=$SECONDS ms all
    all=$(lbs_of "${LBS[@]}")
    log "scenario withdraw: a VIP is announced while it has a healthy backend, by every instance"
    start_server be3 $API_PORT
    ms=$(wait_nexthops $API_VIP "$all" 15) || fail "api was not announced by every instance"
    echo "  api announced by all three $ms ms after be3:$API_PORT listened"
    check "lb1: mplb_vip_announced{vip=\"api\",...} 1" test "$(metric lb1 'mplb_vip_announced{vip="api"')" = 1
    stop_server be3 $API_PORT
    ms=$(wait_nexthops $API_VIP "" 15) || fail "api was not withdrawn when its last backend failed"
    echo "  api withdrawn by all three $ms ms after be3:$API_PORT stopped"
    check "web stays announced by all three" test "$(nexthops $VIP)" = "$all"
    check "lb2 logs the withdrawal" grep -qi 'api.*withdrawn\|withdrawn.*api' "$(lbdir lb2)/mplb.err" "$(lbdir lb2)/mplb.out"
    start_server be3 $API_PORT
    ms=$(wait_nexthops $API_VIP "$all" 15) || fail "api was not announced again"
    echo "  api announced again $ms ms after be3:$API_PORT came back"
    log "scenario withdraw passed ($((SECONDS - t0)) s)"
}

# f_spread: new connections spread over the instances (each forwards some),
# and every instance answers `mplb lookup` identically.
f_spread() {
    local t0=$SECONDS lb before=() after n out="$FLEET_DIR/client-spread.out"
    log "scenario spread: 60 plain connections over three instances; lookup identical everywhere"
    for lb in "${LBS[@]}"; do before+=("$(counter forwarded "$(stats "$lb")")"); done
    ip netns exec "$SP" timeout 60 $PY -u "$PEER" many --plain --addr $VIP --src $SPIP \
        --sports 42000-42059 --bytes 2000 --concurrency 8 --timeout 20 >"$out" 2>&1
    check "60 plain connections through the fleet succeeded" grep -q '"ok": 60' "$out"
    local i=0
    for lb in "${LBS[@]}"; do
        after=$(counter forwarded "$(stats "$lb")")
        n=$((after - before[i]))
        i=$((i + 1))
        check "$lb forwarded some of them ($n frames)" test "$n" -gt 0
    done
    for lb in "${LBS[@]}"; do
        timeout 30 $PY "$PEER" lookup --socket "$(sock "$lb")" --src $SPIP --addr $VIP --sports 43000-43199 \
            >"$FLEET_DIR/lookup-$lb.txt" || fail "lookup on $lb"
    done
    check "lookup answers 200 flows on lb1" test "$(wc -l <"$FLEET_DIR/lookup-lb1.txt")" -eq 200
    check "lb2 answers lookup exactly as lb1" cmp -s "$FLEET_DIR/lookup-lb1.txt" "$FLEET_DIR/lookup-lb2.txt"
    check "lb3 answers lookup exactly as lb1" cmp -s "$FLEET_DIR/lookup-lb1.txt" "$FLEET_DIR/lookup-lb3.txt"
    log "scenario spread passed ($((SECONDS - t0)) s)"
}
