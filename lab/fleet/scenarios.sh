#!/usr/bin/env bash
# A fleet of three mplb instances behind a BIRD 2 ECMP router (fleet.sh),
# real Linux MPTCP and TCP clients and backends. Run as root from anywhere:
#   lab/fleet/scenarios.sh
#   MPLB=path/to/mplb   the binary (default: target/debug/mplb, built if missing)
#   LAB_KEEP=1          leave the fleet up afterwards (lab/fleet/fleet.sh down)
#   FLEET_JOINS=300     connections of the joins scenario (default 30)
#
#   start     instances come up one by one; each is announced once ready;
#             lb3 runs a while without its BIRD (speaker down: said, forwarding)
#   withdraw  api is announced by all while its backend is healthy, withdrawn
#             by all when it fails, announced again when it returns
#   spread    new connections spread over the instances; `mplb lookup` is
#             the same on every instance
#   joins     MP_JOIN to the VIP across three instances: the miss rate
#   rolling   a backend added by reload on each instance in turn, nine
#             downloads in flight: none reset
#   kill      SIGKILL an instance mid-transfer: BFD reroutes (time printed),
#             every download through it completes (bypass MPTCP, single-path
#             MPTCP, plain TCP); restarted, it is announced again
#   drain     `mplb drain --wait` mid-transfer: withdrawn at once, downloads
#             complete, exits 0; restarted, announced, takes new connections
#
# Exits non-zero on the first failed assertion, after printing the router's
# sessions and routes, each instance's stats, logs and routes file.
set -uo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$HERE/f_announce.sh"
. "$HERE/f_connections.sh"

T0=$SECONDS
fleet_start
f_start
log "fleet up: three instances announced ($((SECONDS - T0)) s)"
f_withdraw
f_spread
f_joins
f_rolling
f_kill
f_drain
log "reroute on instance death: $REROUTE_MS ms; joins to the VIP: $JOIN_ROW"
log "all fleet scenarios passed ($((SECONDS - T0)) s)"
