# Scenario 8: a packet too big for IP-in-IP. The `tun` VIP (UDP, port 9)
# encapsulates to be1, adding 20 bytes; mplb's port MTU is 1500. The client
# sends a 1500-byte UDP datagram with DF: mplb answers from the VIP with ICMP
# "fragmentation needed", next-hop MTU 1480, the client's kernel learns that
# path MTU, refuses the next full-size datagram itself (EMSGSIZE), and a
# 1480-byte one is encapsulated and sent to be1. Sourced by scenarios.sh.

s8() {
    local t0=$SECONDS before after out="$LAB_DIR/client-s8.out"
    log "scenario 8: too big for IP-in-IP: ICMP fragmentation needed, the client's path MTU drops to 1480"
    x $CLI ip route flush cache
    before=$(stats) || fail "stats"
    x $CLI timeout 10 $PY -u "$PEER" pmtu --addr $VIP --port $TUN_PORT --src $WIFI --sport 40008 \
        --timeout 3 >"$out" 2>&1
    local rc=$?
    sleep 0.3
    after=$(stats) || fail "stats"
    sed 's/^/  client: /' "$out" | cut -c 1-200
    check "the probe ran (rc $rc)" test "$rc" -eq 0
    check "the client's socket got the ICMP error (EMSGSIZE)" grep -q '"socket_error": "EMSGSIZE"' "$out"
    check "the client learnt path MTU 1480 for the VIP" grep -q '"pmtu": 1480' "$out"
    check "its kernel refused the next 1500-byte datagram itself (EMSGSIZE)" grep -q '"full_size_refused": true' "$out"
    local route
    route=$(x $CLI ip route get $VIP from $WIFI)
    echo "  client: $(head -2 <<<"$route" | tr -s ' \n' ' ')"
    check "its route cache holds it (ip route get: mtu 1480)" grep -q "mtu 1480" <<<"$route"
    local d_big d_ipip d_udp
    d_big=$(delta icmp_too_big_sent "$before" "$after")
    d_ipip=$(delta forwarded_ipip "$before" "$after")
    d_udp=$(delta udp_forwarded "$before" "$after")
    echo "  mplb deltas: icmp_too_big_sent=$d_big forwarded_ipip=$d_ipip udp_forwarded=$d_udp"
    check "mplb answered the full-size datagram (icmp_too_big_sent +1)" test "$d_big" -eq 1
    check "and encapsulated the 1480-byte one to be1 (forwarded_ipip +1)" test "$d_ipip" -eq 1
    check "scenario 8 within 10 s ($((SECONDS - t0)) s)" test $((SECONDS - t0)) -lt 10
    log "scenario 8 passed ($((SECONDS - t0)) s)"
}
