# Scenario 1 (and 6a with v6): an MPTCP client connects to the VIP through
# mplb; the backend answers from the VIP, its ADD_ADDR reaches the client, and
# the client joins the backend's own address over its second uplink without
# crossing mplb; mplb counts the MP_CAPABLE SYN, learns the token and inserts
# no flow. Sourced by scenarios.sh.

# s1 <v4|v6> <client sport>
s1() {
    family "$1"
    local t0=$SECONDS sport=$2 before after be b out n
    local id="s1-$1"
    log "scenario $id: MPTCP through mplb to $FVIP, ADD_ADDR, a direct join that bypasses mplb"
    capture_start "$id"
    announce "$1"
    before=$(stats) || fail "stats"
    local addaddr0 joins0
    addaddr0=$(nstat_of $CLI MPTcpExtAddAddr)
    joins0=$(nstat_of $CLI MPTcpExtMPJoinSynAckRx)
    out="$LAB_DIR/client-$id.out"
    # paced over 1 s (5 chunks, 250 ms apart): the direct join must come up
    # before the server's DATA_FIN, after which the client's kernel refuses it
    x $CLI timeout 20 $PY -u "$PEER" client --addr $FVIP --src $FWIFI --sport $sport \
        --bytes 300000 --pace-ms 250 >"$out" 2>&1
    check "client got 300000 bytes with the right SHA-256 through the VIP" grep -q '"ok": true' "$out"
    check "the connection stayed MPTCP" grep -q '"mptcp": true' "$out"
    sleep 0.3
    after=$(stats) || fail "stats"
    local d_syn d_tok d_ins d_join
    d_syn=$(delta mptcp_syn "$before" "$after")
    d_tok=$(delta tokens_learnt "$before" "$after")
    d_ins=$(delta flow_inserted "$before" "$after")
    d_join=$(( $(delta join_token_hit "$before" "$after") + $(delta join_token_miss "$before" "$after") ))
    echo "  mplb deltas: mptcp_syn=$d_syn tokens_learnt=$d_tok flow_inserted=$d_ins joins_at_vip=$d_join"
    check "mplb counted the MP_CAPABLE SYN (mptcp_syn +$d_syn)" test "$d_syn" -ge 1
    check "mplb learnt the token (tokens_learnt +$d_tok)" test "$d_tok" -ge 1
    check "mplb tracked the connection's initial subflow: one entry, from the third ACK (flow_inserted +$d_ins)" test "$d_ins" -eq 1
    check "no MP_JOIN reached mplb (join_token_hit+miss +$d_join)" test "$d_join" -eq 0

    be=$(backend_of $FWIFI $sport)
    check "the SYN crossed mplb (router -> mplb -> a backend's MAC)" test -n "$be"
    b=$(bip "$be")
    echo "  backend chosen by mplb: $be ($b, ${BE_MAC[$be]})"
    check_frames "client's MP_CAPABLE SYN to the VIP was sent to mplb's MAC by the router" -ge 1 "eth.src == $RTR_MAC and eth.dst == $MPLB_MAC and $F.src == $FWIFI and tcp.srcport == $sport and tcp.flags.syn == 1 and tcp.flags.ack == 0 and tcp.options.mptcp.subtype == 0"
    check_frames "$be answered with an MP_CAPABLE SYN-ACK from the VIP, straight to the router" -ge 1 "eth.src == ${BE_MAC[$be]} and $F.src == $FVIP and tcp.srcport == 80 and $F.dst == $FWIFI and tcp.dstport == $sport and tcp.flags.syn == 1 and tcp.flags.ack == 1 and tcp.options.mptcp.subtype == 0"
    check_frames "$be sent ADD_ADDR $b to the client" -ge 1 "$F.src == $FVIP and $F.dst == $FWIFI and tcp.dstport == $sport and tcp.options.mptcp.subtype == 3 and tcp.options.mptcp.$FADDR == $b"
    n=$(( $(nstat_of $CLI MPTcpExtAddAddr) - addaddr0 ))
    check "the client received the ADD_ADDR (MPTcpExtAddAddr +$n)" test "$n" -ge 1
    check_frames "the client's MP_JOIN SYN from cell reached $b straight from the router" -ge 1 "eth.src == $RTR_MAC and eth.dst == ${BE_MAC[$be]} and $F.src == $FCELL and $F.dst == $b and tcp.dstport == 80 and tcp.flags.syn == 1 and tcp.flags.ack == 0 and tcp.options.mptcp.subtype == 1"
    check_frames "mplb forwarded none of the direct subflow's frames" -eq 0 "eth.src == $MPLB_MAC and ($F.dst == $b or $F.src == $FCELL)"
    check_frames "$be accepted the join (MP_JOIN SYN-ACK from $b)" -ge 1 "$F.src == $b and $F.dst == $FCELL and tcp.flags.syn == 1 and tcp.flags.ack == 1 and tcp.options.mptcp.subtype == 1"
    n=$(( $(nstat_of $CLI MPTcpExtMPJoinSynAckRx) - joins0 ))
    check "the client established the join (MPTcpExtMPJoinSynAckRx +$n)" test "$n" -ge 1
    local d=daddr4 s=saddr4
    [ "$F" = ipv6 ] && d=daddr6 s=saddr6
    check "ip mptcp monitor: the client saw $b announced" \
        grep -Eq "ANNOUNCED\].* $d=$b( |$)" "$LAB_DIR/monitor.log"
    check "ip mptcp monitor: subflow $FCELL -> $b:80 established" \
        grep -Eq "SF_ESTABLISHED\].* $s=$FCELL $d=$b .*dport=80" "$LAB_DIR/monitor.log"
    announce v4
    within 30 "$id" "$t0"
    log "scenario $id passed ($((SECONDS - t0)) s)"
}
