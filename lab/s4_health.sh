# Scenario 4: backend failure under live traffic. be2's listener goes away
# (its server process is stopped): mplb's TCP health checks, from its
# management interface, mark be2 down within interval × fall (plus one
# interval for where the first failed check falls); new connections all go
# to be1 and succeed, while a download from be1 carries on; when be2's
# listener is back, rise successes put it back and new connections reach it
# again. Checked in mplb's stats, its metrics page and where connections
# landed. Sourced by scenarios.sh (needs spread/many from s3).

# metric <name> <backend>: the value of a per-backend sample on mplb's metrics page
metric() { metrics | awk -v m="$1" -v b="backend=\"$2\"" 'index($0, m "{") == 1 && index($0, b) { print $2 }'; }

s4() {
    family v4
    local t0=$SECONDS id=s4 s out="$LAB_DIR/client-s4-long.out" before after took
    log "scenario 4: be2's listener goes away under live traffic; health checks take it out and put it back"
    capture_start $id
    check "both backends up and healthy" test "$(be_row web be1) $(be_row web be2)" = "active up active up"
    # a download on be1 that lasts through the outage (~5 s)
    paced_download $WIFI "43000-43040" be1 "$out" $((4 * 1024 * 1024)) 5 80 30
    s=$PACED_SPORT
    local cpid=$PACED_PID
    local range_d="43100-43159" would
    would=$(lookup $WIFI $VIP "$range_d" | awk '$2 == "be2"' | wc -l)
    check "while be2 is up, $would of the 60 ports of the next batch would go to be2" test "$would" -ge 1
    check "metrics: be2 healthy (mplb_backend_healthy = 1)" test "$(metric mplb_backend_healthy be2)" = 1

    local killed_at; killed_at=$(date +%s%3N)
    stop_server be2
    echo "  stopped be2's server (listener and connections)"
    took=$(wait_backend web be2 "down down" 5 "$killed_at") || fail "be2 not marked down"
    echo "  mplb marked be2 down $(secs $took) s after its listener went away (interval 0.5 s × fall 3 = 1.5 s)"
    check "be2 down within interval × fall + one interval + 1 s of slack (3.0 s; took $(secs $took) s)" \
        test "$took" -le 3000
    check "metrics: be2 unhealthy (mplb_backend_healthy = 0)" test "$(metric mplb_backend_healthy be2)" = 0
    before=$(metrics)
    many "$id-down" "$range_d"
    check "while be2 is down, every new connection went to be1" spread "$id-down" "$range_d" "be1:1 be2:2:disabled"
    after=$(metrics)
    local nf1 nf2
    nf1=$(( $(awk '/^mplb_backend_new_flows_total\{.*backend="be1"/ { print $2 }' <<<"$after") - $(awk '/^mplb_backend_new_flows_total\{.*backend="be1"/ { print $2 }' <<<"$before") ))
    nf2=$(( $(awk '/^mplb_backend_new_flows_total\{.*backend="be2"/ { print $2 }' <<<"$after") - $(awk '/^mplb_backend_new_flows_total\{.*backend="be2"/ { print $2 }' <<<"$before") ))
    echo "  metrics: new flows during the outage: be1 +$nf1, be2 +$nf2"
    check "metrics agree: be1 took the 60 new flows, be2 none (+$nf1, +$nf2)" test "$nf1" -ge 60 -a "$nf2" -eq 0

    local back_at; back_at=$(date +%s%3N)
    start_server be2
    took=$(wait_backend web be2 "active up" 5 "$back_at") || fail "be2 not back up"
    echo "  mplb put be2 back $(secs $took) s after its listener returned (rise 2 × 0.5 s)"
    check "be2 up within rise × interval + one interval + 1 s of slack (2.5 s; took $(secs $took) s)" \
        test "$took" -le 2500
    check "metrics: be2 healthy again" test "$(metric mplb_backend_healthy be2)" = 1
    local range_u="43200-43289"
    many "$id-up" "$range_u"
    check "after recovery, new connections spread over be1 and be2 again (1:2)" spread "$id-up" "$range_u" "be1:1 be2:2"

    wait $cpid
    check "the download from be1 went on through be2's outage: 4 MiB, right SHA-256" grep -q '"ok": true' "$out"
    within 30 "4" "$t0"
    log "scenario 4 passed ($((SECONDS - t0)) s)"
}
