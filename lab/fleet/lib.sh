# The fleet lab's lifetime and helpers (sourced by scenarios.sh): the lock,
# `fleet.sh up`, the backends' servers, the router's BIRD, each instance's
# mplb and BIRD, the router's view of the VIPs, clients, and diagnostics.

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
. "$HERE/env.sh"
export FLEET_DIR
PY=/usr/bin/python3
PEER="$ROOT/lab/peer.py"
MPLB="${MPLB:-$ROOT/target/debug/mplb}"
RTR_CTL="$FLEET_DIR/bird-rtr.ctl"
PIDS=()
declare -A MPLB_PID=() BIRD_PID=() SERVER_PID=()

. "$ROOT/lab/common.sh"
log() { echo "fleet: $*"; }
check() { # check <description> <condition...>
    local what=$1; shift
    if "$@"; then echo "  ok: $what"; else fail "$what"; fi
}
fail() {
    echo "FAIL: $*"
    diagnose
    exit 1
}

sock() { echo "$(lbdir "$1")/mplb.sock"; }
stats() { timeout 5 "$MPLB" stats --socket "$(sock "$1")" 2>/dev/null; }
counter() { awk -v k="$1" '$1 == k { print $2; f = 1 } END { if (!f) print "NA" }' <<<"$2"; }
# metric <lb> <name>: the value of a metric line that starts with <name>
metric() {
    x "$P-$1" timeout 5 $PY -c "import urllib.request as u; print(u.urlopen('http://$METRICS_ADDR/metrics', timeout=4).read().decode())" 2>/dev/null |
        awk -v m="$2" 'index($0, m) == 1 { print $NF; exit }'
}
# wait_metric <lb> <metric> <value> <seconds>: true once the metric reads
# value (mplb notices its speaker every check_interval_ms, not at once).
wait_metric() {
    local end=$((SECONDS + $4))
    until [ "$(metric "$1" "$2")" = "$3" ]; do
        [ $SECONDS -lt $end ] || return 1
        sleep 0.2
    done
}
rbirdc() { x "$RTR" timeout 5 birdc -s "$RTR_CTL" "$@"; }

# nexthops <vip>: the router's next hops for the VIP (sorted, space-separated)
nexthops() {
    x "$RTR" ip route show "$1/32" 2>/dev/null | grep -o 'via [0-9.]*' | awk '{ print $2 }' | sort | xargs
}
# lbs_of <lb...>: those instances' addresses, as nexthops prints them
lbs_of() { local lb; for lb in "$@"; do echo "${LB_IP[$lb]}"; done | sort | xargs; }
# wait_nexthops <vip> <"want"> <seconds> [start ms]: until the router's next
# hops for the VIP are exactly <want>; prints the milliseconds it took (since
# start, default now); returns 1 after <seconds>
wait_nexthops() {
    local t0=${4:-$(date +%s%3N)} now got
    while :; do
        got=$(nexthops "$1")
        now=$(date +%s%3N)
        if [ "$got" = "$2" ]; then
            echo $((now - t0))
            return 0
        fi
        if [ $((now - t0)) -gt $(($3 * 1000)) ]; then
            echo "timeout: the router's next hops for $1 are \"$got\" after $3 s, not \"$2\"" >&2
            return 1
        fi
        sleep 0.01
    done
}

diagnose() {
    echo "---------------- diagnostics"
    echo "-- router: BGP and BFD"; rbirdc show protocols 2>&1 | sed 's/^/   /'
    rbirdc show bfd sessions 2>&1 | sed 's/^/   /'
    echo "-- router: routes to the VIPs"; x "$RTR" ip route show 198.18.0.0/24 | sed 's/^/   /'
    echo "-- router BIRD log"; tail -n 15 "$FLEET_DIR/bird-rtr.log" 2>/dev/null
    local lb b
    for lb in "${LBS[@]}"; do
        echo "-- $lb: mplb stats"; stats "$lb" | head -n 60 || echo "(not answering)"
        echo "-- $lb: mplb stderr"; tail -n 15 "$(lbdir "$lb")/mplb.err" 2>/dev/null
        echo "-- $lb: routes file"; cat "$(lbdir "$lb")/vips.conf" 2>/dev/null
        echo "-- $lb: BIRD log"; tail -n 8 "$(lbdir "$lb")/bird.log" 2>/dev/null
    done
    for b in "${BACKENDS[@]}"; do
        echo "-- $b MPTCP counters"; mptcp_counters "$P-$b" | awk '$2 != 0' | xargs
    done
    echo "-- client outputs (last lines)"; tail -n 3 "$FLEET_DIR"/client-*.out 2>/dev/null | tail -n 40
}

cleanup() {
    set +e
    local p
    for p in "${PIDS[@]}" "${SERVER_PID[@]}" "${MPLB_PID[@]}" "${BIRD_PID[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${PIDS[@]}" "${SERVER_PID[@]}" "${MPLB_PID[@]}" "${BIRD_PID[@]}"; do wait "$p" 2>/dev/null; done
    if [ "${LAB_KEEP:-0}" != 1 ]; then timeout 30 "$HERE/fleet.sh" down >/dev/null; fi
}

# start_server <backend> <port>: the peer server (logs "accepted <ip> <port>")
start_server() {
    local b=$1 port=$2 i log="$FLEET_DIR/server-$1-$2.log" before
    before=$(grep -c listening "$log" 2>/dev/null)
    ip netns exec "$P-$b" timeout 900 $PY -u "$PEER" server --addr 0.0.0.0 --port "$port" >>"$log" 2>&1 9>&- &
    SERVER_PID[$b:$port]=$!
    for i in $(seq 50); do
        [ "$(grep -c listening "$log" 2>/dev/null)" -gt "${before:-0}" ] && return 0
        sleep 0.1
    done
    fail "server on $b:$port did not start"
}
stop_server() {
    kill -TERM "${SERVER_PID[$1:$2]}" 2>/dev/null
    wait "${SERVER_PID[$1:$2]}" 2>/dev/null
    unset "SERVER_PID[$1:$2]"
}

# start_mplb <lb>: mplb in the instance's namespace; waits for its control
# socket and its exception path's kernel interface
start_mplb() {
    local lb=$1 d i
    d=$(lbdir "$lb")
    rm -f "$(sock "$lb")"
    ip netns exec "$P-$lb" timeout 900 "$MPLB" run --config "$d/mplb.toml" >>"$d/mplb.out" 2>>"$d/mplb.err" 9>&- &
    MPLB_PID[$lb]=$!
    for i in $(seq 200); do stats "$lb" >/dev/null && break; sleep 0.1; done
    stats "$lb" >/dev/null || fail "$lb: mplb did not start (no answer on $(sock "$lb"))"
    for i in $(seq 50); do x "$P-$lb" ip link show "$KIF" >/dev/null 2>&1 && return 0; sleep 0.1; done
    fail "$lb: no exception path interface $KIF"
}

# mplb_pid <lb>: the mplb process itself (under `timeout`)
mplb_pid() { pgrep -P "${MPLB_PID[$1]}" | head -n 1; }

# start_bird <lb>: the instance's BIRD (foreground, so that its pid is ours)
start_bird() {
    local lb=$1 d
    d=$(lbdir "$lb")
    ip netns exec "$P-$lb" timeout 900 bird -f -c "$d/bird.conf" -s "$d/bird.ctl" >"$d/bird.out" 2>&1 9>&- &
    BIRD_PID[$lb]=$!
}

# fleet_start: lock, fleet up, servers, the router's BIRD; the fleet comes
# down when the calling script exits (also on Ctrl-C). Instances are
# started by the caller.
fleet_start() {
    [ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
    exec 9>/run/lock/mplblab.lock
    if ! flock -n 9; then
        log "waiting for another lab run to finish"
        flock -w 240 9 || { echo "another lab run holds /run/lock/mplblab.lock" >&2; exit 1; }
    fi
    export MPLBLAB_LOCKED=1
    trap cleanup EXIT
    trap 'echo; log "interrupted: removing the fleet"; exit 130' INT TERM
    if [ ! -x "$MPLB" ]; then
        log "building mplb"
        (cd "$ROOT" && timeout 900 cargo build -q) || { echo "build failed" >&2; exit 1; }
    fi
    timeout 120 "$HERE/fleet.sh" up >/dev/null || { echo "fleet up failed" >&2; exit 1; }
    rm -f "$FLEET_DIR"/*.log "$FLEET_DIR"/*.out "$FLEET_DIR"/*/*.out "$FLEET_DIR"/*/*.err "$FLEET_DIR"/*/*.log
    local b
    for b in "${BACKENDS[@]}"; do start_server "$b" $VIP_PORT; done
    ip netns exec "$RTR" timeout 900 bird -f -c "$FLEET_DIR/bird-rtr.conf" -s "$RTR_CTL" >"$FLEET_DIR/bird-rtr.out" 2>&1 9>&- &
    PIDS+=($!)
}

# client <ns> <src> <sport> <out> <bytes> <pace ms> [--plain]: a paced
# download from web in the background; its pid is appended to CLIENTS
CLIENTS=()
client() {
    ip netns exec "$1" timeout 90 $PY -u "$PEER" client --addr $VIP --src "$2" --sport "$3" \
        --bytes "$5" --seed "$3" --pace-ms "$6" --timeout 60 ${7:-} >"$4" 2>&1 9>&- &
    CLIENTS+=($!)
}
transferring() {
    for _ in $(seq 100); do grep -q first_bytes "$1" 2>/dev/null && break; sleep 0.05; done
    check "$2 is transferring" grep -q first_bytes "$1"
}
# via <src> <sport> <ingress>: the instance the router sends that flow to
via() {
    local hop lb
    hop=$(x "$RTR" ip route get $VIP from "$1" iif "$3" ipproto tcp sport "$2" dport $VIP_PORT 2>/dev/null | grep -o 'via [0-9.]*' | awk '{ print $2 }')
    for lb in "${LBS[@]}"; do [ "${LB_IP[$lb]}" = "$hop" ] && echo "$lb"; done
}
# ports_via <lb> <src> <ingress> <first> <count>: <count> source ports from
# <first> up whose flows the router sends to <lb>
ports_via() {
    local s=$4 n=0
    while [ $n -lt "$5" ] && [ $s -lt $(($4 + 2000)) ]; do
        if [ "$(via "$2" $s "$3")" = "$1" ]; then echo $s; n=$((n + 1)); fi
        s=$((s + 1))
    done
}
# served_by <client ip> <sport>: the backend(s) that accepted that connection
served_by() {
    local b
    for b in "${BACKENDS[@]}"; do
        grep -qx "accepted $1 $2" "$FLEET_DIR/server-$b-$VIP_PORT.log" 2>/dev/null && echo "$b"
    done
}
# wait_clients <what>: every background client finished with "ok": true
wait_clients() {
    local p ok=0 bad=()
    for p in "${CLIENTS[@]}"; do wait "$p" 2>/dev/null; done
    local f
    for f in "$@"; do
        if grep -q '"ok": true' "$f"; then ok=$((ok + 1)); else bad+=("$f"); fi
    done
    CLIENTS=()
    check "all $# downloads completed byte for byte ($ok ok${bad:+; failed: ${bad[*]}})" test ${#bad[@]} -eq 0
}
