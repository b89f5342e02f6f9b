# Scenario 6, neighbour discovery: mplb answers ND for its own IPv6 address
# (the router's next hop for the IPv6 VIP) and for the VIP itself (the router
# is made to treat the VIP as on-link for one connection). The backends hold
# the VIP on lo, and Linux answers ND only for addresses on the asking
# interface, so only mplb may answer. Sourced by scenarios.sh.

# neigh_mac <address>: the router's neighbour entry for it on the segment
neigh_mac() { x $RTR ip -6 neigh show "$1" dev r-seg | awk '{ for (i = 1; i < NF; i++) if ($i == "lladdr") print $(i + 1) }'; }

# nd_connect <sport>: forget the router's neighbours on the segment, then
# make one short plain-TCP download from the VIP; echoes mplb's nd_replies delta
nd_connect() {
    local before after out="$LAB_DIR/client-s6-nd-$1.out"
    before=$(stats)
    x $RTR ip -6 neigh flush dev r-seg
    x $CLI timeout 10 $PY -u "$PEER" client --plain --addr $VIP6 --src $WIFI6 --sport "$1" --bytes 10000 >"$out" 2>&1
    grep -q '"ok": true' "$out" || return 1
    after=$(stats)
    delta nd_replies "$before" "$after"
}

s6_nd() {
    family v6
    local t0=$SECONDS n mac
    log "scenario 6 (ND): mplb answers neighbour solicitations for $LB_IP6 and the VIP $VIP6"
    n=$(nd_connect 40062) || fail "a connection to the VIP through the router failed"
    mac=$(neigh_mac $LB_IP6)
    check "the router resolved the VIP's next hop $LB_IP6 to mplb's MAC ($mac), mplb answered (nd_replies +$n)" \
        test "$mac" = "$MPLB_MAC" -a "$n" -ge 1
    x $RTR ip -6 route replace $VIP6/128 dev r-seg
    n=$(nd_connect 40063)
    local rc=$?
    mac=$(neigh_mac $VIP6)
    x $RTR ip -6 route replace $VIP6/128 via $LB_IP6 dev r-seg
    check "with the VIP on-link, a connection to it completed" test $rc -eq 0
    check "the router resolved the VIP $VIP6 itself to mplb's MAC ($mac), mplb answered (nd_replies +$n)" \
        test "$mac" = "$MPLB_MAC" -a "$n" -ge 1
    log "scenario 6 (ND) passed ($((SECONDS - t0)) s)"
}
