# Shared by scenarios.sh and demo.sh (sourced, not run): the lab's lifetime
# (lock, up, servers, capture, mplb, teardown on exit), mplb's counters and
# control socket, and the failure diagnostics.

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
. "$HERE/env.sh"
export LAB_DIR
PY=/usr/bin/python3
PEER="$HERE/peer.py"
MPLB="${MPLB:-$ROOT/target/debug/mplb}"
SOCK="$LAB_DIR/mplb.sock"
CAP=""               # the current scenario's capture of the segment
CAP_PID=""
MPLB_PID=""
PIDS=()              # background jobs, stopped at exit
declare -A SERVER_PID=()
declare -A BE_MAC=()

# (background jobs use `ip netns exec` directly, not x: it execs, so $! is
# the pid of `timeout`, which passes SIGTERM on)
. "$HERE/common.sh"
log() { echo "lab: $*"; }

stats() { timeout 5 "$MPLB" stats --socket "$SOCK" 2>/dev/null; }
counter() { awk -v k="$1" '$1 == k { print $2; f = 1 } END { if (!f) print "NA" }' <<<"$2"; }
# delta <counter> <stats before> <stats after>
delta() { echo $(( $(counter "$1" "$3") - $(counter "$1" "$2") )); }
nonzero() { awk '$2 != 0 { printf "%s=%s%s", $1, $2, (++n % 4 ? "  " : "\n") } END { if (n % 4) print "" }'; }
# tsh <display filter> <tshark -e fields...>: fields of the current capture's matching frames
tsh() { timeout 30 tshark -r "$CAP" -Y "$1" -T fields "${@:2}" 2>/dev/null; }
# ipf <address>: tshark's protocol name for the address's family
ipf() { case $1 in *:*) echo ipv6 ;; *) echo ip ;; esac; }
# be_row <vip> <backend>: "state health" from mplb's stats, or "absent"
be_row() { stats | awk -v v="$1" -v b="$2" '$1 == v && $2 == b { print $4, $5; f = 1 } END { if (!f) print "absent" }'; }
metrics() { x "$LB" timeout 5 $PY -c "import urllib.request as u; print(u.urlopen('http://$METRICS_ADDR/metrics', timeout=4).read().decode())"; }

diagnose() {
    echo "---------------- diagnostics"
    echo "-- mplb stats"; stats || echo "(mplb not answering)"
    echo "-- mplb stdout"; tail -n 20 "$LAB_DIR/mplb.out" 2>/dev/null
    echo "-- mplb stderr"; tail -n 30 "$LAB_DIR/mplb.err" 2>/dev/null
    echo "-- client MPTCP counters"; mptcp_counters $CLI | nonzero
    local b
    for b in "${BACKENDS[@]}"; do
        echo "-- $b MPTCP counters"; mptcp_counters $P-$b | nonzero
        echo "-- $b server log (last lines)"; grep -v '^accepted 198\.18\.1\.3 \|^accepted fd00:1::3 ' "$LAB_DIR/server-$b.log" 2>/dev/null | tail -n 5
    done
    echo "-- ip mptcp monitor (client)"; tail -n 20 "$LAB_DIR/monitor.log" 2>/dev/null
    echo "-- client output"; tail -n 20 "$LAB_DIR"/client-*.out 2>/dev/null
    if [ -n "$CAP" ] && [ -s "$CAP" ]; then
        echo "-- capture $CAP: SYNs, RSTs and ADD_ADDRs (frame eth.src eth.dst src:port dst:port flags mptcp-subtypes addaddr)"
        tsh "tcp.port == 80 and (tcp.flags.syn == 1 or tcp.flags.reset == 1) or tcp.options.mptcp.subtype == 3" \
            -e frame.number -e eth.src -e eth.dst -e ip.src -e ipv6.src -e tcp.srcport -e ip.dst -e ipv6.dst \
            -e tcp.dstport -e tcp.flags -e tcp.options.mptcp.subtype -e tcp.options.mptcp.ipv4 \
            -e tcp.options.mptcp.ipv6 | head -n 40
        echo "-- frames per (eth.src, src -> dst) on port 80"
        tsh "tcp.port == 80" -e eth.src -e ip.src -e ipv6.src -e ip.dst -e ipv6.dst | sort | uniq -c | sort -rn | head -n 20
    fi
}

fail() {
    echo "FAIL: $*"
    diagnose
    exit 1
}
# check_frames <description> <-ge|-eq> <count> <display filter>: the capture
# holds that many frames matching the filter (the count is shown).
check_frames() {
    local n
    n=$(tsh "$4" -e frame.number | wc -l)
    check "$1 ($n)" test "$n" "$2" "$3"
}
# within <seconds> <scenario> <start>: the scenario took less than its
# bound, times LAB_SLOW (default 1; 3 with more than two workers, which
# busy-poll CPUs they share with everything else in test mode)
LAB_SLOW="${LAB_SLOW:-$([ "${LAB_WORKERS:-1}" -gt 2 ] && echo 3 || echo 1)}"
within() {
    local limit=$(($1 * LAB_SLOW))
    check "scenario $2 within $limit s ($((SECONDS - $3)) s)" test $((SECONDS - $3)) -lt $limit
}
check() { # check <description> <condition...>
    local what=$1; shift
    if "$@"; then echo "  ok: $what"; else fail "$what"; fi
}

lab_cleanup() {
    set +e
    local p
    for p in "${PIDS[@]}" "${SERVER_PID[@]}" $CAP_PID; do kill -TERM "$p" 2>/dev/null; done
    for p in "${PIDS[@]}" "${SERVER_PID[@]}" $CAP_PID; do wait "$p" 2>/dev/null; done
    if [ "${LAB_KEEP:-0}" != 1 ]; then timeout 30 "$HERE/lab.sh" down >/dev/null; fi
}

# lab_start: lock, lab up, servers on all backends, client monitor, mplb;
# the lab comes down again when the calling script exits (also on Ctrl-C).
lab_start() {
    [ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
    # one lab run at a time on this machine (see lab.sh); held until exit
    exec 9>/run/lock/mplblab.lock
    if ! flock -n 9; then
        log "waiting for another lab run to finish"
        flock -w 240 9 || { echo "another lab run holds /run/lock/mplblab.lock" >&2; exit 1; }
    fi
    export MPLBLAB_LOCKED=1
    trap lab_cleanup EXIT
    trap 'echo; log "interrupted: removing the lab"; exit 130' INT TERM

    if [ ! -x "$MPLB" ]; then
        log "building mplb"
        (cd "$ROOT" && timeout 900 cargo build -q) || { echo "build failed" >&2; exit 1; }
    fi
    timeout 120 "$HERE/lab.sh" up >/dev/null || { echo "lab up failed" >&2; exit 1; }
    rm -f "$LAB_DIR"/*.log "$LAB_DIR"/*.out "$LAB_DIR"/*.err "$LAB_DIR"/*.pcap "$SOCK"
    local b
    for b in "${BACKENDS[@]}"; do
        BE_MAC[$b]=$(lab_mac "$b")
        start_server "$b"
    done
    ip netns exec $CLI timeout 600 ip mptcp monitor >"$LAB_DIR/monitor.log" 2>&1 9>&- &
    PIDS+=($!)
    start_mplb
    MPLB_MAC=$(x $LB cat /sys/class/net/lb0/address)
    RTR_MAC=$(x $RTR cat /sys/class/net/r-seg/address)
}

# start_server <backend>: the peer server in the backend's namespace (IPv4 and IPv6)
start_server() {
    local b=$1 i
    local before; before=$(grep -c listening "$LAB_DIR/server-$b.log" 2>/dev/null)
    ip netns exec $P-$b timeout 600 $PY -u "$PEER" server --addr :: --port $VIP_PORT >>"$LAB_DIR/server-$b.log" 2>&1 9>&- &
    SERVER_PID[$b]=$!
    for i in $(seq 50); do
        [ "$(grep -c listening "$LAB_DIR/server-$b.log" 2>/dev/null)" -gt "${before:-0}" ] && return 0
        sleep 0.1
    done
    fail "server on $b did not start"
}

# stop_server <backend>: the listener and its connections go away
stop_server() {
    kill -TERM "${SERVER_PID[$1]}" 2>/dev/null
    wait "${SERVER_PID[$1]}" 2>/dev/null
    unset "SERVER_PID[$1]"
}

start_mplb() {
    ip netns exec $LB timeout 600 "$MPLB" run --config "$LAB_DIR/mplb.toml" >"$LAB_DIR/mplb.out" 2>"$LAB_DIR/mplb.err" 9>&- &
    MPLB_PID=$!
    PIDS+=($MPLB_PID)
    local i
    for i in $(seq 200); do stats >/dev/null && break; sleep 0.1; done
    stats >/dev/null || fail "mplb did not start (no answer on $SOCK)"
    wait_resolved
}

# wait_resolved: until mplb has learnt the MAC of every backend of its
# config (by ARP / ND: the lab's config gives none); fails after 10 s
wait_resolved() {
    local i left
    for i in $(seq 100); do
        left=$(stats | awk '$4 == "unresolved" { print $2 }')
        [ -z "$left" ] && return 0
        sleep 0.1
    done
    fail "mplb did not learn the MACs of: $left"
}

# transferring <client output> <what>: the client (peer.py) received its
# first bytes within 5 s
transferring() {
    for _ in $(seq 100); do grep -q first_bytes "$1" 2>/dev/null && break; sleep 0.05; done
    check "$2 is transferring" grep -q first_bytes "$1"
}

# kill_mplb: SIGKILL to the running mplb (the process under `timeout`),
# checked gone; sets KILLED_AT (epoch seconds with ns)
kill_mplb() {
    local mpid
    mpid=$(pgrep -P "$MPLB_PID" | head -n 1)
    check "found mplb's pid" test -n "$mpid"
    KILLED_AT=$(date +%s.%N)
    kill -KILL "$mpid"
    wait "$MPLB_PID" 2>/dev/null
    echo "  killed mplb (pid $mpid) at $KILLED_AT"
    check "mplb is gone" test -z "$(stats)"
}

# capture_start <name> [filter]: capture the segment (with MACs) into
# $LAB_DIR/<name>.pcap (default filter: tcp)
capture_start() {
    capture_stop
    CAP="$LAB_DIR/$1.pcap"
    ip netns exec $SEG timeout 300 tcpdump --immediate-mode -U -n -e -s 160 -i br0 -w "$CAP" ${2:-tcp} >"$LAB_DIR/tcpdump-$1.log" 2>&1 9>&- &
    CAP_PID=$!
    local i
    for i in $(seq 50); do grep -q "listening on" "$LAB_DIR/tcpdump-$1.log" 2>/dev/null && return 0; sleep 0.1; done
    fail "tcpdump did not start"
}
capture_stop() {
    [ -n "$CAP_PID" ] || return 0
    kill -TERM "$CAP_PID" 2>/dev/null
    wait "$CAP_PID" 2>/dev/null
    CAP_PID=""
}

# reload: writes the config for the current LAB_* settings and has mplb re-read it
reload() {
    lab_config
    local out
    out=$(timeout 10 "$MPLB" reload --socket "$SOCK" 2>&1) || fail "mplb reload: $out"
    echo "  mplb reload: $out"
    wait_resolved
}

# wait_backend <vip> <backend> <"state health"|absent> <seconds> [start ms]:
# polls mplb's stats; prints how long it took (since start, default now) in
# milliseconds; returns 1 after <seconds>
wait_backend() {
    local t0=${5:-$(date +%s%3N)} now row
    while :; do
        row=$(be_row "$1" "$2")
        now=$(date +%s%3N)
        if [ "$row" = "$3" ]; then
            echo $((now - t0))
            return 0
        fi
        if [ $((now - t0)) -gt $(($4 * 1000)) ]; then
            echo "timeout: $1/$2 is \"$row\" after $4 s, not \"$3\"" >&2
            return 1
        fi
        sleep 0.1
    done
}

# announce <v4|v6>: which of its own addresses each backend announces (ADD_ADDR)
announce() {
    local b addr
    for b in "${BACKENDS[@]}"; do
        if [ "$1" = v6 ]; then addr=${BE_IP6[$b]}; else addr=${BE_IP[$b]}; fi
        x $P-$b ip mptcp endpoint flush
        x $P-$b ip mptcp endpoint add "$addr" dev "$b" signal
    done
}

# secs <ms>: as seconds with 1 decimal
secs() { printf '%d.%d' $(($1 / 1000)) $(($1 % 1000 / 100)); }

# lookup <src> <vip> <first-last>: "<sport> <backend>" per port, by mplb itself
lookup() { timeout 30 $PY "$PEER" lookup --socket "$SOCK" --src "$1" --addr "$2" --sports "$3"; }

# served_by <client ip> <sport>: the backend(s) whose server accepted that connection
served_by() {
    local b
    for b in "${BACKENDS[@]}"; do
        grep -qx "accepted $1 $2" "$LAB_DIR/server-$b.log" 2>/dev/null && echo "$b"
    done
}

# backend_of <client ip> <sport>: the backend whose MAC mplb sent that SYN to (capture)
backend_of() {
    local f mac b
    f=$(ipf "$1")
    mac=$(tsh "eth.src == $MPLB_MAC and $f.src == $1 and tcp.srcport == $2 and tcp.flags.syn == 1" -e eth.dst | head -n 1)
    for b in "${BACKENDS[@]}"; do [ "$mac" = "${BE_MAC[$b]}" ] && echo "$b"; done
}

# paced_download <src> <port range> <backend> <out> <bytes> <seed> <pace ms> <timeout s>:
# a plain download of <bytes> from the VIP, paced, in the background, from the
# first source port of <port range> that mplb sends to <backend>; checks that
# such a port exists and that the download is transferring. Sets PACED_SPORT
# and PACED_PID.
paced_download() {
    local src=$1 range=$2 be=$3 out=$4
    PACED_SPORT=$(lookup "$src" $VIP "$range" | awk -v be="$be" '$2 == be { print $1; exit }')
    check "found a source port mplb sends to $be ($PACED_SPORT)" test -n "$PACED_SPORT"
    ip netns exec $CLI timeout 40 $PY -u "$PEER" client --plain --addr $VIP --src "$src" --sport "$PACED_SPORT" \
        --bytes "$5" --seed "$6" --pace-ms "$7" --timeout "$8" >"$out" 2>&1 9>&- &
    PACED_PID=$!
    transferring "$out" "the download from $be"
}

# family v4|v6: the addresses a scenario uses for that IP version:
# FVIP, FWIFI, FCELL, F (tshark's ip/ipv6), FADDR (tshark's name of an
# ADD_ADDR's address: ipv4/ipv6), FVIPNAME (mplb's VIP name),
# FSFX (backend name suffix in mplb), bip <backend> (its own address)
family() {
    if [ "$1" = v6 ]; then
        FVIP=$VIP6 FWIFI=$WIFI6 FCELL=$CELL6 F=ipv6 FADDR=ipv6 FVIPNAME=web6 FSFX=-v6
    else
        FVIP=$VIP FWIFI=$WIFI FCELL=$CELL F=ip FADDR=ipv4 FVIPNAME=web FSFX=""
    fi
}
bip() { if [ "$F" = ipv6 ]; then echo "${BE_IP6[$1]}"; else echo "${BE_IP[$1]}"; fi; }
