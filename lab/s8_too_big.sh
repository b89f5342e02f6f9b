# Scenario 8: a packet too big for IP-in-IP. The UDP VIPs `tun` and `tun6`
# (port 9) encapsulate to be1, adding 20 (IPv4) or 40 (IPv6) bytes; mplb's
# port MTU is 1500. The client sends a 1500-byte datagram that may not be
# fragmented: mplb answers from the VIP with ICMP "fragmentation needed",
# next-hop MTU 1480 (ICMPv6 "packet too big", MTU 1460), the client's kernel
# learns that path MTU, refuses the next full-size datagram itself
# (EMSGSIZE), and one that fits is encapsulated and sent to be1. Sourced by
# scenarios.sh.

# s8_family <v4|v6>
s8_family() {
    family "$1"
    local t0=$SECONDS before after want=1480 out="$LAB_DIR/client-s8-$1.out"
    [ "$1" = v6 ] && want=1460
    log "scenario 8 ($1): too big for IP-in-IP: ICMP too big from the VIP, the client's path MTU drops to $want"
    x $CLI ip $([ "$1" = v6 ] && echo -6) route flush cache
    before=$(stats) || fail "stats"
    x $CLI timeout 10 $PY -u "$PEER" pmtu --addr $FVIP --port $TUN_PORT --src $FWIFI --sport 40008 \
        --timeout 3 >"$out" 2>&1
    local rc=$?
    sleep 0.3
    after=$(stats) || fail "stats"
    sed 's/^/  client: /' "$out" | cut -c 1-200
    check "the probe ran (rc $rc)" test "$rc" -eq 0
    check "the client's socket got the ICMP error (EMSGSIZE)" grep -q '"socket_error": "EMSGSIZE"' "$out"
    check "the client learnt path MTU $want for the VIP" grep -q "\"pmtu\": $want" "$out"
    check "its kernel refused the next 1500-byte datagram itself (EMSGSIZE)" grep -q '"full_size_refused": true' "$out"
    local route
    route=$(x $CLI ip route get $FVIP from $FWIFI)
    echo "  client: $(head -2 <<<"$route" | tr -s ' \n' ' ')"
    check "its route cache holds it (ip route get: mtu $want)" grep -q "mtu $want" <<<"$route"
    local d_big d_ipip d_udp
    d_big=$(delta icmp_too_big_sent "$before" "$after")
    d_ipip=$(delta forwarded_ipip "$before" "$after")
    d_udp=$(delta udp_forwarded "$before" "$after")
    echo "  mplb deltas: icmp_too_big_sent=$d_big forwarded_ipip=$d_ipip udp_forwarded=$d_udp"
    check "mplb answered the full-size datagram (icmp_too_big_sent +1)" test "$d_big" -eq 1
    check "and encapsulated the $want-byte one to be1 (forwarded_ipip +1)" test "$d_ipip" -eq 1
    within 10 "8 ($1)" "$t0"
    log "scenario 8 ($1) passed ($((SECONDS - t0)) s)"
}

s8() {
    s8_family v4
    s8_family v6
}
