# Scenario 7: a path that strips MPTCP options. The router removes TCP option
# 30 (iptables TCPOPTSTRIP) from one connection in both directions; the
# client's MPTCP socket falls back to plain TCP, mplb sees a plain SYN and
# pins the connection in its flow table (no token learnt), and the transfer
# completes. Sourced by scenarios.sh.

s7() {
    family v4
    local t0=$SECONDS sport=40007 before after out="$LAB_DIR/client-s7.out" ipt
    log "scenario 7: MPTCP options stripped on the path: fallback to TCP, pinned by mplb"
    ipt=$(command -v iptables-legacy || command -v iptables) || fail "no iptables"
    capture_start s7
    x $RTR "$ipt" -t mangle -A FORWARD -p tcp -s $WIFI --sport $sport -d $VIP --dport 80 -j TCPOPTSTRIP --strip-options 30 \
        || fail "TCPOPTSTRIP rule (client -> VIP)"
    x $RTR "$ipt" -t mangle -A FORWARD -p tcp -s $VIP --sport 80 -d $WIFI --dport $sport -j TCPOPTSTRIP --strip-options 30 \
        || fail "TCPOPTSTRIP rule (VIP -> client)"
    echo "  router: $(x $RTR "$ipt" -t mangle -S FORWARD | grep -c TCPOPTSTRIP) TCPOPTSTRIP rules ($(basename "$ipt"))"
    local fb0 syn0=0 b
    fb0=$(nstat_of $CLI MPTcpExtMPCapableFallbackSYNACK)
    for b in "${BACKENDS[@]}"; do syn0=$((syn0 + $(nstat_of $P-$b MPTcpExtMPCapableSYNRX))); done
    before=$(stats) || fail "stats"
    x $CLI timeout 20 $PY -u "$PEER" client --addr $VIP --src $WIFI --sport $sport \
        --bytes 1000000 --seed 7 >"$out" 2>&1
    local rc=$?
    sleep 0.3
    after=$(stats) || fail "stats"
    x $RTR "$ipt" -t mangle -F FORWARD
    grep '"done"' "$out" | sed 's/^/  /' | cut -c 1-200
    check "the client got 1000000 bytes with the right SHA-256 (rc $rc)" grep -q '"ok": true' "$out"
    check "its MPTCP socket fell back to plain TCP (TCP_IS_MPTCP = 0)" grep -q '"mptcp": false' "$out"
    local fb syn=0
    fb=$(( $(nstat_of $CLI MPTcpExtMPCapableFallbackSYNACK) - fb0 ))
    for b in "${BACKENDS[@]}"; do syn=$((syn + $(nstat_of $P-$b MPTcpExtMPCapableSYNRX))); done
    syn=$((syn - syn0))
    check "the client counted the fallback (MPTcpExtMPCapableFallbackSYNACK +$fb)" test "$fb" -eq 1
    check "no backend saw an MP_CAPABLE SYN (MPTcpExtMPCapableSYNRX +$syn)" test "$syn" -eq 0
    local n
    check_frames "the SYN mplb forwarded carried no MPTCP option" -ge 1 "eth.src == $MPLB_MAC and ip.src == $WIFI and tcp.srcport == $sport and tcp.flags.syn == 1 and not tcp.options.mptcp.subtype"
    local d_ins d_plain d_mp d_tok d_hit
    d_ins=$(delta flow_inserted "$before" "$after")
    d_plain=$(delta plain_syn "$before" "$after")
    d_mp=$(delta mptcp_syn "$before" "$after")
    d_tok=$(delta tokens_learnt "$before" "$after")
    d_hit=$(delta flow_hit "$before" "$after")
    echo "  mplb deltas: plain_syn=$d_plain mptcp_syn=$d_mp flow_inserted=$d_ins flow_hit=$d_hit tokens_learnt=$d_tok"
    check "mplb saw a plain SYN, no MP_CAPABLE one" test "$d_plain" -eq 1 -a "$d_mp" -eq 0
    check "mplb pinned the connection (flow_inserted +1) and its later packets hit the entry (flow_hit +$d_hit)" \
        test "$d_ins" -eq 1 -a "$d_hit" -ge 10
    check "mplb learnt no token (tokens_learnt +$d_tok)" test "$d_tok" -eq 0
    local want got
    want=$(lookup $WIFI $VIP "$sport-$sport" | awk '{ print $2 }')
    got=$(served_by $WIFI $sport | tr -d '\n')
    check "served by $want, mplb's choice ($got)" test "$got" = "$want"
    within 20 "7" "$t0"
    log "scenario 7 passed ($((SECONDS - t0)) s)"
}
