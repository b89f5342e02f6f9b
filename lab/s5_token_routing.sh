# Scenario 5: controls, and token routing on and off.
# * Plain TCP through mplb does get a flow entry (so scenario 1's "no insert"
#   means something).
# * With the backends' C flag off (allow_join_initial_addr_port=1) the client
#   also sends an MP_JOIN SYN to the VIP. The ports are chosen with mplb's own
#   `lookup` so that Maglev on the join's 5-tuple names a different backend
#   than the connection's: with token routing on, mplb still sends the join
#   to the connection's backend (join_token_hit) and the subflow comes up;
#   with `token_routing = false` the join goes where Maglev says and that
#   backend resets it (MPJoinNoTokenFound). The client limits its ephemeral
#   ports to two so that the join's source port is known in advance.
# Sourced by scenarios.sh.

# per_worker_delta <metric> <page before> <page after>: "worker:+n ..." for
# the workers whose sample of <metric> grew
per_worker_delta() {
    $PY -c '
import re, sys
def samples(text):
    out = {}
    for line in text.splitlines():
        m = re.match(re.escape(sys.argv[1]) + r"\{worker=\"(\d+)\"\} (\d+)", line)
        if m:
            out[m.group(1)] = int(m.group(2))
    return out
a, b = samples(sys.argv[2]), samples(sys.argv[3])
print(" ".join(f"{w}:+{b[w] - a.get(w, 0)}" for w in sorted(b) if b[w] > a.get(w, 0)))
' "$1" "$2" "$3"
}

# join_ports <first-last>: "J B": the first even port J of the range with J
# and J+1 both hashed to backend B for a new flow from the client's cell address
join_ports() {
    lookup $CELL $VIP "$1" | awk '$1 % 2 == 0 { b[$1] = $2 } $1 % 2 == 1 && b[$1 - 1] == $2 { print $1 - 1, $2; exit }'
}

# s5_join <on|off> <port range for the join> <port range for the connection>
# runs one MPTCP download whose join to the VIP Maglev would send to the
# wrong backend, and checks what happened to that join
s5_join() {
    local mode=$1 jp bwrong s bright before after out="$LAB_DIR/client-s5-$1.out"
    read -r jp bwrong <<<"$(join_ports "$2")"
    check "found join ports $jp,$((jp + 1)) that Maglev sends to ${bwrong:-?}" test -n "$bwrong"
    s=$(lookup $WIFI $VIP "$3" | awk -v w="$bwrong" '$2 != w { print $1; exit }')
    check "found a connection port ($s) that Maglev sends elsewhere" test -n "$s"
    bright=$(lookup $WIFI $VIP "$s-$s" | awk '{ print $2 }')
    echo "  token routing $mode: connection $WIFI:$s -> $bright; its join from $CELL:$jp or $((jp + 1)) would hash to $bwrong"
    x $CLI sysctl -qw net.ipv4.ip_local_port_range="$jp $((jp + 1))"
    # The backend also announces its own address; a join to it would race
    # the join to the VIP for the cell endpoint (CI saw the VIP's lose).
    # Only the join to the VIP is under test here.
    x $CLI ip mptcp limits set subflows 4 add_addr_accepted 0
    local cj0 bj0 ns0
    cj0=$(nstat_of $CLI MPTcpExtMPJoinSynAckRx)
    ns0=$(nstat_of $P-$bwrong MPTcpExtMPJoinNoTokenFound)
    before=$(stats)
    local m_before m_after
    m_before=$(metrics)
    # The server paces its 300 KB over 2 s (5 chunks, 500 ms apart): once
    # its DATA_FIN has arrived, the client's kernel refuses a join's SYN-ACK
    # (MP_TCPRST "MPTCP-specific error", no MPJoinSynAckRx). Unpaced, the
    # transfer takes ~3 ms on the veths, and CI saw the join, delayed a few
    # ms in a worker sharing a CPU, lose that race; a linger after the data
    # does not help, the connection is already half-closed by then.
    x $CLI timeout 20 $PY -u "$PEER" client --addr $VIP --src $WIFI --sport "$s" \
        --bytes 300000 --pace-ms 500 >"$out" 2>&1
    local rc=$?
    x $CLI sysctl -qw net.ipv4.ip_local_port_range="32768 60999"
    x $CLI ip mptcp limits set subflows 4 add_addr_accepted 4
    sleep 0.3
    after=$(stats)
    m_after=$(metrics)
    # which worker learnt the token and which routed the join (their
    # queues come from the kernel's packet fanout hash)
    local learnt_on hit_on
    learnt_on=$(per_worker_delta mplb_tokens_learnt_total "$m_before" "$m_after")
    hit_on=$(per_worker_delta mplb_join_token_hit_total "$m_before" "$m_after")
    echo "  workers: token learnt on [$learnt_on], join routed by token on [$hit_on]"
    check "MPTCP client got its bytes (rc $rc)" grep -q '"ok": true' "$out"
    local hit miss cj nt
    hit=$(delta join_token_hit "$before" "$after")
    miss=$(delta join_token_miss "$before" "$after")
    cj=$(( $(nstat_of $CLI MPTcpExtMPJoinSynAckRx) - cj0 ))
    nt=$(( $(nstat_of $P-$bwrong MPTcpExtMPJoinNoTokenFound) - ns0 ))
    local sent_to n_rst est=no
    local jsp="(tcp.srcport == $jp or tcp.srcport == $((jp + 1)))" jdp="(tcp.dstport == $jp or tcp.dstport == $((jp + 1)))"
    sent_to=$(tsh "eth.src == $MPLB_MAC and ip.src == $CELL and ip.dst == $VIP and $jsp and tcp.flags.syn == 1 and tcp.flags.ack == 0 and tcp.options.mptcp.subtype == 1" -e eth.dst | head -n 1)
    local b sent_be=nobody
    for b in "${BACKENDS[@]}"; do [ "$sent_to" = "${BE_MAC[$b]}" ] && sent_be=$b; done
    n_rst=$(tsh "eth.src == ${BE_MAC[$bwrong]} and ip.src == $VIP and ip.dst == $CELL and $jdp and tcp.flags.reset == 1" -e frame.number | wc -l)
    grep -Eq "SF_ESTABLISHED\].* saddr4=$CELL daddr4=$VIP sport=($jp|$((jp + 1))) dport=80" "$LAB_DIR/monitor.log" && est=yes
    S5_ROW[$mode]="$(printf '%-4s %-15s %-9s %-9s %-20s %-14s %-10s' "$mode" "$sent_be" "+$hit" "+$miss" "$est" "+$cj" "+$nt")"
    if [ "$mode" = on ]; then
        check "mplb sent the join to $bright, the connection's backend, not Maglev's $bwrong ($sent_be)" test "$sent_be" = "$bright"
        check "by the token (join_token_hit +$hit, join_token_miss +$miss)" test "$hit" -ge 1 -a "$miss" -eq 0
        check "the subflow $CELL -> VIP came up (ip mptcp monitor)" test $est = yes
    else
        check "mplb sent the join by Maglev to $bwrong ($sent_be)" test "$sent_be" = "$bwrong"
        check "without looking at the token (join_token_miss +$miss, join_token_hit +$hit)" test "$miss" -ge 1 -a "$hit" -eq 0
        check "$bwrong reset the join ($n_rst RST from $bwrong to $CELL)" test "$n_rst" -ge 1
        check "$bwrong counted MPJoinNoTokenFound +$nt" test "$nt" -ge 1
        check "no subflow $CELL -> VIP came up" test $est = no
    fi
}

s5() {
    family v4
    local t0=$SECONDS before after out="$LAB_DIR/client-s5-plain.out" n b
    log "scenario 5: controls; joins sent to the VIP with token routing on and off"
    capture_start s5
    before=$(stats) || fail "stats"
    ip netns exec $CLI timeout 20 $PY -u "$PEER" client --plain --addr $VIP --src $WIFI --sport 40003 \
        --bytes 100000 >"$out" 2>&1
    check "plain TCP client got its bytes through the VIP" grep -q '"ok": true' "$out"
    sleep 0.3
    after=$(stats) || fail "stats"
    n=$(delta flow_inserted "$before" "$after")
    check "plain TCP through mplb inserted a flow (flow_inserted +$n)" test "$n" -ge 1

    for b in "${BACKENDS[@]}"; do x $P-$b sysctl -qw net.mptcp.allow_join_initial_addr_port=1; done
    declare -gA S5_ROW=()
    s5_join on 50000-50199 40100-40199
    LAB_TOKEN_ROUTING=false
    reload
    s5_join off 50200-50399 40200-40299
    LAB_TOKEN_ROUTING=true
    reload
    for b in "${BACKENDS[@]}"; do x $P-$b sysctl -qw net.mptcp.allow_join_initial_addr_port=0; done
    echo "  the join to the VIP, token routing on vs off:"
    printf '    %-4s %-15s %-9s %-9s %-20s %-14s %-10s\n' "" "mplb sent it to" "token hit" "miss" "subflow to VIP up" "client joins" "NoToken at the Maglev pick"
    echo "    ${S5_ROW[on]}"
    echo "    ${S5_ROW[off]}"
    within 30 "5" "$t0"
    log "scenario 5 passed ($((SECONDS - t0)) s)"
}
