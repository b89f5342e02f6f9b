#!/usr/bin/env bash
# Real Linux MPTCP and TCP through mplb, in the namespace lab of lab.sh. Run
# as root from anywhere:   lab/scenarios.sh
#   MPLB=path/to/mplb   the binary (default: target/debug/mplb, built if missing)
#   LAB_KEEP=1          leave the lab up afterwards (lab/lab.sh down removes it)
#   LAB_WORKERS=2       mplb's workers (default 1), in test mode on CPUs 1, 0, 1, ...,
#                       with as many af_packet queue pairs (rx_queues = workers)
#   LAB_SCENARIOS="1 5" run only these (default: all; 2 kills mplb, so it runs last)
#
#   1  MPTCP bypass: ADD_ADDR, a join straight to the backend      (s1_bypass.sh)
#   2  mplb SIGKILLed mid 8 MiB download; it completes              (s2_kill.sh)
#   3  plain TCP spread by weight; reload adds/drains/removes       (s3_weights_reload.sh)
#   4  a backend's listener dies and returns under live traffic     (s4_health.sh)
#   5  controls; joins to the VIP with token routing on and off     (s5_token_routing.sh)
#   6  IPv6: ND for mplb and the VIP; scenarios 1 and 3 on the IPv6 VIP (s6_nd.sh; s1, s3)
#   7  MPTCP options stripped on the path: fallback, pinned         (s7_fallback.sh)
#   8  too big for IP-in-IP: ICMP too big, the client's PMTU, v4+v6 (s8_too_big.sh)
#   9  default-limit MPTCP clients through add, drain, re-weight and a health
#      failure, also under a spoofed-SYN flood; v4+v6, 0 resets     (s9_default_limits.sh)
#  10  stock backends, mplb sends the ADD_ADDR; direct joins; mplb
#      SIGKILLed mid-download, v4+v6 complete (runs last)           (s10_announce.sh)
#
# Exits non-zero on the first failed assertion, after printing mplb's
# counters, its output, both sides' MPTCP counters, the servers' logs and a
# summary of the scenario's capture of the segment.
set -uo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
for f in s1_bypass s2_kill s3_weights_reload s4_health s5_token_routing s6_nd s7_fallback s8_too_big s9_default_limits s10_announce; do
    . "$HERE/$f.sh"
done

want() { [[ " ${LAB_SCENARIOS:-1 2 3 4 5 6 7 8 9 10} " == *" $1 "* ]]; }

T0=$SECONDS
lab_start
log "lab up, mplb running ($((SECONDS - T0)) s)"
for b in web/be1 web/be2 web6/be1-v6 web6/be2-v6; do
    [ "$(be_row "${b%/*}" "${b#*/}")" = "active up" ] || fail "$b is not active and up in mplb's view"
done
# The config gives no MAC: mplb learnt each backend's by ARP (IPv4) or
# neighbour discovery (IPv6) from the backend's own kernel.
for b in web/be1 web/be2 web6/be1-v6 web6/be2-v6; do
    name=${b#*/}
    got=$(stats | awk -v v="${b%/*}" -v n="$name" '$1 == v && $2 == n { print $6, $7 }')
    [ "$got" = "${BE_MAC[${name%-v6}]} reachable" ] ||
        fail "$b: mplb's MAC for it is \"$got\", not \"${BE_MAC[${name%-v6}]} reachable\" (learnt)"
done
log "backend MACs learnt by ARP and ND: $(stats | awk '/^backend MACs/ { sub(/^backend MACs by ARP \/ ND: /, ""); print }')"

want 1 && s1 v4 40001
want 5 && s5
want 7 && s7
want 8 && s8
want 4 && s4
want 9 && s9 v4 46000
want 9 && s9 v4 46200 flood
want 9 && s9 v6 46400 flood
want 6 && s6_nd
want 6 && s1 v6 40061
want 6 && s3 v6 45000
want 3 && s3 v4 41000
want 2 && s2
want 10 && s10
capture_stop
log "all scenarios passed ($((SECONDS - T0)) s)"
