# Scenario 3 (and 6b with v6): plain TCP to the VIP spreads over the backends
# by weight; a reload in the middle of live transfers adds a backend and
# drains one: established connections keep their backend and complete byte
# for byte, new ones go to the new set; the drained backend is then removed.
# With v4 the scenario also removes a backend that still has a live
# connection: it retires (no new flows, its pinned flows keep going), the
# connection completes, and mplb forgets both removed backends once they have
# been idle for [flow_table] established_timeout_secs. Sourced by scenarios.sh.

# spread <id> <first-last> <weights>: mplb's predictions vs where the
# connections of that port range landed, and the split vs the weights
spread() {
    local out rc logs=() b
    for b in "${BACKENDS[@]}"; do logs+=(--log "$b=$LAB_DIR/server-$b.log"); done
    out=$($PY "$HERE/spread.py" --lookup "$LAB_DIR/$1.lookup" "${logs[@]}" --client $FWIFI \
        --sports "$2" --weights "$3" --suffix="$FSFX")
    rc=$?
    echo "$out"
    return $rc
}

# many <id> <first-last>: one short plain-TCP download per source port,
# after asking mplb where each will go
many() {
    lookup $FWIFI $FVIP "$2" >"$LAB_DIR/$1.lookup" || fail "mplb lookup for $1"
    x $CLI timeout 60 $PY -u "$PEER" many --plain --addr $FVIP --src $FWIFI --sports "$2" \
        --bytes 8192 --concurrency 24 --timeout 10 >"$LAB_DIR/client-$1.out" 2>&1
    local rc=$?
    sed 's/^/  /' "$LAB_DIR/client-$1.out" | cut -c 1-400
    check "all connections of $1 completed with the right SHA-256" test $rc -eq 0
}

# s3 <v4|v6> <port base>
s3() {
    family "$1"
    local t0=$SECONDS base=$2 id="s3-$1" before after s b i
    log "scenario $id: plain TCP spread by weight; backend added and one drained by reload mid-transfer"
    capture_start "$id"
    local set_a set_b set_c
    set_a="be1:1 be2:2" set_b="be1:1:draining be2:2 be3:1" set_c="be2:2 be3:1"
    echo "  weights: $set_a"
    before=$(stats) || fail "stats"

    # A: 300 short connections over be1:be2 = 1:2
    local range_a="$base-$((base + 299))"
    many "$id-a" "$range_a"
    check "phase A: every connection on the backend mplb's lookup names; split within 5 sd of 1:2" \
        spread "$id-a" "$range_a" "$set_a"
    if [ "$WORKERS" -gt 1 ]; then
        # the kernel's packet fanout hash spreads the 300 connections over
        # the queues, so every worker forwarded some (mplb stats per worker)
        local rows idle
        rows=$(stats | awk '$1 == "worker" && $2 == "rx_packets" { on = 1; next } on && NF == 0 { on = 0 } on && $1 ~ /^[0-9]+$/')
        sed 's/^/  per worker: /' <<<"$rows"
        idle=$(awk '$2 == 0' <<<"$rows" | wc -l)
        check "all $WORKERS workers received packets ($idle idle)" test "$(wc -l <<<"$rows")" -eq "$WORKERS" -a "$idle" -eq 0
    fi

    # long-lived downloads: 3 on be1 (to be drained) and 3 on be2, paced over ~5 s
    local range_l="$((base + 400))-$((base + 479))" long=() want=() LONG_PID=()
    lookup $FWIFI $FVIP "$range_l" >"$LAB_DIR/$id-l.lookup" || fail "lookup"
    long=($(awk -v s="$FSFX" '$2 == "be1"s && n1 < 3 { print $1; n1++ } $2 == "be2"s && n2 < 3 { print $1; n2++ }' "$LAB_DIR/$id-l.lookup"))
    check "found 3 + 3 source ports mplb sends to be1 and be2 (${long[*]})" test ${#long[@]} -eq 6
    for s in "${long[@]}"; do
        want+=("$(awk -v p="$s" '$1 == p { print $2 }' "$LAB_DIR/$id-l.lookup")")
        ip netns exec $CLI timeout 40 $PY -u "$PEER" client --plain --addr $FVIP --src $FWIFI --sport "$s" \
            --bytes $((2 * 1024 * 1024)) --seed 3 --pace-ms 150 --timeout 30 >"$LAB_DIR/client-$id-long-$s.out" 2>&1 9>&- &
        LONG_PID[$s]=$!
    done
    for s in "${long[@]}"; do
        transferring "$LAB_DIR/client-$id-long-$s.out" "long-lived connection from port $s"
    done

    # B: reload mid-flight: be3 added, be1 draining
    echo "  reload to: $set_b"
    if [ "$1" = v6 ]; then LAB_V6_BACKENDS=$set_b; else LAB_V4_BACKENDS=$set_b; fi
    local reloaded_at; reloaded_at=$(date +%s.%N)
    reload
    local took
    took=$(wait_backend $FVIPNAME "be3$FSFX" "active up" 5) || fail "be3$FSFX did not come up after the reload"
    echo "  be3$FSFX active after $(secs $took) s (a new backend waits for rise = 2 checks, 0.5 s apart)"
    check "be1$FSFX is draining" test "$(be_row $FVIPNAME "be1$FSFX")" = "draining up"
    # what Maglev says now for the long-lived ports: the drained ones hash elsewhere
    lookup $FWIFI $FVIP "$range_l" >"$LAB_DIR/$id-l2.lookup" || fail "lookup"
    local moved=0 now
    for i in "${!long[@]}"; do
        now=$(awk -v p="${long[$i]}" '$1 == p { print $2 }' "$LAB_DIR/$id-l2.lookup")
        [ "$now" != "${want[$i]}" ] && moved=$((moved + 1))
        echo "  long-lived ${long[$i]}: pinned to ${want[$i]}; a new flow with this tuple would now go to $now"
    done
    check "at least the 3 long-lived connections on draining be1$FSFX would hash elsewhere now ($moved)" test $moved -ge 3
    local range_b="$((base + 500))-$((base + 649))"
    many "$id-b" "$range_b"
    check "phase B: new connections on the new set (none on draining be1), split within 5 sd of be2:be3 = 2:1" \
        spread "$id-b" "$range_b" "$set_b"

    # the long-lived connections: done, right bytes, on their first backend
    local done_wall
    for i in "${!long[@]}"; do
        s=${long[$i]}
        wait "${LONG_PID[$s]}"
        check "long-lived $s: all 2 MiB with the right SHA-256 (rc $?)" grep -q '"ok": true' "$LAB_DIR/client-$id-long-$s.out"
        done_wall=$(sed -n 's/.*"event": "done".*"wall": \([0-9.]*\).*/\1/p' "$LAB_DIR/client-$id-long-$s.out")
        check "long-lived $s was still transferring after the reload (done at $done_wall)" \
            $PY -c "import sys; sys.exit(not float('$done_wall') > float('$reloaded_at'))"
        check "long-lived $s was served by ${want[$i]%$FSFX} alone, its backend before the reload ($(served_by $FWIFI "$s" | tr '\n' ' '))" \
            test "$(served_by $FWIFI "$s" | tr -d '\n')" = "${want[$i]%$FSFX}"
    done
    after=$(stats)
    check "no pinned flow lost its backend (flow_backend_gone +$(delta flow_backend_gone "$before" "$after"))" \
        test "$(delta flow_backend_gone "$before" "$after")" -eq 0

    # C: the drained backend is removed
    if [ "$1" = v6 ]; then
        LAB_V6_BACKENDS=$set_c
        echo "  reload to: $set_c (be1$FSFX removed once drained)"
        reload
        check "be1$FSFX is retiring (removed; kept until idle)" test "$(be_row $FVIPNAME "be1$FSFX")" = "retiring up"
    else
        s3_remove_live
    fi
    within 40 "$id" "$t0"
    log "scenario $id passed ($((SECONDS - t0)) s)"
}

# Removal by reload, v4: be1 (drained, idle) and be3 (one live connection)
# leave the config; both retire: be3's connection keeps its backend and
# completes, and both are forgotten once idle for the established timeout.
s3_remove_live() {
    local s before after out="$LAB_DIR/client-s3-v4-removed.out"
    paced_download $WIFI "41700-41760" be3 "$out" $((2 * 1024 * 1024)) 4 100 10
    s=$PACED_SPORT
    local cpid=$PACED_PID
    before=$(stats)
    LAB_V4_BACKENDS="be2:2"
    echo "  reload to: be2:2 (be1 removed once drained; be3 removed with a live connection)"
    reload
    check "be1 and be3 are retiring (removed, kept until idle)" \
        test "$(be_row web be1) / $(be_row web be3)" = "retiring up / retiring up"
    check "new connections no longer go to be3" \
        test -z "$(lookup $FWIFI $VIP "41700-41760" | awk '$2 != "be2"')"
    wait $cpid
    local rc=$?
    check "the connection on removed be3: all 2 MiB with the right SHA-256 (rc $rc)" grep -q '"ok": true' "$out"
    check "... served by be3 alone ($(served_by $WIFI "$s" | tr '\n' ' '))" test "$(served_by $WIFI "$s" | tr -d '\n')" = be3
    after=$(stats)
    check "no pinned flow lost its backend (flow_backend_gone +$(delta flow_backend_gone "$before" "$after"))" \
        test "$(delta flow_backend_gone "$before" "$after")" -eq 0
    local t_idle=$SECONDS
    for _ in $(seq 100); do
        [ "$(be_row web be1) $(be_row web be3)" = "absent absent" ] && break
        sleep 0.1
    done
    check "be1 and be3 forgotten once idle for established_timeout_secs = $ESTABLISHED_TIMEOUT s (after $((SECONDS - t_idle)) s)" \
        test "$(be_row web be1) $(be_row web be3)" = "absent absent"
}
