# Scenario 10: stock backends — no `signal` endpoint, the kernel's default
# MPTCP limits and sysctls — and mplb announcing each connection's backend
# address on its behalf (`announce_backend_address = true`). An MPTCP
# download over IPv4 and one over IPv6 run at once: each client receives
# mplb's ADD_ADDR (`ip mptcp monitor` ANNOUNCED, MPTcpExtAddAddr), joins the
# backend's own address directly over cell, and mplb forwards none of that
# subflow's frames; the backend counts the client's echo of an address it
# never announced (MPTcpExtEchoAdd) and nothing else happens. Then mplb is
# SIGKILLed and both downloads complete byte for byte over their direct
# subflows. Kills mplb: runs last (after scenario 2 it starts mplb again).
# Sourced by scenarios.sh.

# stock_backends: no endpoint, default limits, default join policy (no C flag)
stock_backends() {
    local b
    for b in "${BACKENDS[@]}"; do
        x $P-$b ip mptcp endpoint flush
        x $P-$b ip mptcp limits set subflows 2 add_addr_accepted 0
        x $P-$b sysctl -qw net.mptcp.allow_join_initial_addr_port=1
    done
}

# s10_check_announced <v4|v6> <client sport>: the capture shows mplb's ADD_ADDR
# of the connection's backend, its echo, the direct join and no frame of it via mplb
s10_check_announced() {
    family "$1"
    local sport=$2 be b n
    be=$(backend_of $FWIFI $sport)
    check "$1: the SYN crossed mplb" test -n "$be"
    b=$(bip "$be")
    S10_BE[$1]=$be S10_B[$1]=$b
    echo "  $1: backend chosen by mplb: $be ($b)"
    check_frames "$1: mplb sent the client one ADD_ADDR of $b, from the VIP" -eq 1 "eth.src == $MPLB_MAC and $F.src == $FVIP and $F.dst == $FWIFI and tcp.dstport == $sport and tcp.options.mptcp.subtype == 3 and tcp.options.mptcp.$FADDR == $b"
    check_frames "$1: the backend sent no ADD_ADDR itself" -eq 0 "eth.src == ${BE_MAC[$be]} and tcp.options.mptcp.subtype == 3"
    check_frames "$1: the client echoed it (through mplb to $be)" -ge 1 "eth.src == $MPLB_MAC and $F.dst == $FVIP and tcp.srcport == $sport and tcp.options.mptcp.subtype == 3 and tcp.options.mptcp.$FADDR == $b"
    local d=daddr4 s=saddr4
    [ "$F" = ipv6 ] && d=daddr6 s=saddr6
    check "$1: ip mptcp monitor: the client saw $b announced" \
        grep -Eq "ANNOUNCED\].* $d=$b( |$)" "$LAB_DIR/monitor.log"
    check "$1: ip mptcp monitor: subflow $FCELL -> $b:80 established" \
        grep -Eq "SF_ESTABLISHED\].* $s=$FCELL $d=$b .*dport=80" "$LAB_DIR/monitor.log"
    check_frames "$1: the client's MP_JOIN SYN from cell reached $b straight from the router" -ge 1 "eth.src == $RTR_MAC and eth.dst == ${BE_MAC[$be]} and $F.src == $FCELL and $F.dst == $b and tcp.flags.syn == 1 and tcp.flags.ack == 0 and tcp.options.mptcp.subtype == 1"
    check_frames "$1: mplb forwarded none of the direct subflow's frames" -eq 0 "eth.src == $MPLB_MAC and $F.dst == $b"
}

s10() {
    local t0=$SECONDS total=$((8 * 1024 * 1024)) v fam sport
    log "scenario 10: stock backends, mplb announces their addresses; mplb killed mid-download, v4 and v6"
    stats >/dev/null || { echo "  mplb is not running (scenario 2 killed it): starting it"; start_mplb; }
    stock_backends
    LAB_ANNOUNCE=true
    reload
    capture_start s10
    local before addaddr0 echo0=0 b
    before=$(stats)
    addaddr0=$(nstat_of $CLI MPTcpExtAddAddr)
    for b in "${BACKENDS[@]}"; do echo0=$((echo0 + $(nstat_of $P-$b MPTcpExtEchoAdd))); done
    declare -gA S10_PID=() S10_OUT=() S10_BE=() S10_B=() S10_SPORT=([v4]=40101 [v6]=40161)
    for v in v4 v6; do
        family $v
        sport=${S10_SPORT[$v]}
        S10_OUT[$v]="$LAB_DIR/client-s10-$v.out"
        # 128 chunks of 64 KiB, 25 ms apart: ~3.2 s of transfer
        ip netns exec $CLI timeout 40 $PY -u "$PEER" client --addr $FVIP --src $FWIFI --sport $sport \
            --bytes $total --seed 10 --pace-ms 25 --timeout 30 >"${S10_OUT[$v]}" 2>&1 9>&- &
        S10_PID[$v]=$!
        PIDS+=(${S10_PID[$v]})
    done
    # both direct subflows up (the monitor logs them), then some data
    local d4="daddr4=(${BE_IP[be1]}|${BE_IP[be2]}|${BE_IP[be3]})" d6="daddr6=(${BE_IP6[be1]}|${BE_IP6[be2]}|${BE_IP6[be3]})"
    for _ in $(seq 60); do
        grep -Eq "SF_ESTABLISHED\].* saddr4=$CELL $d4 " "$LAB_DIR/monitor.log" &&
            grep -Eq "SF_ESTABLISHED\].* saddr6=$CELL6 $d6 " "$LAB_DIR/monitor.log" && break
        sleep 0.05
    done
    sleep 0.7
    local pre kill_at
    pre=$(stats)
    echo "  mplb deltas before the kill: add_addr_sent +$(delta add_addr_sent "$before" "$pre")" \
        "add_addr_skipped_duplicate +$(delta add_addr_skipped_duplicate "$before" "$pre")" \
        "add_addr_skipped_rate_limit +$(delta add_addr_skipped_rate_limit "$before" "$pre")"
    check "mplb announced both connections' backends (add_addr_sent +$(delta add_addr_sent "$before" "$pre"))" \
        test "$(delta add_addr_sent "$before" "$pre")" -eq 2
    local n=$(( $(nstat_of $CLI MPTcpExtAddAddr) - addaddr0 ))
    check "the client took both ADD_ADDRs in (MPTcpExtAddAddr +$n)" test "$n" -ge 2
    kill_mplb
    kill_at=$KILLED_AT
    local rc
    for v in v4 v6; do
        wait "${S10_PID[$v]}"
        rc=$?
        grep -E '"done"' "${S10_OUT[$v]}" | sed "s/^/  $v: /"
        check "$v: client exited 0 (rc=$rc)" test $rc -eq 0
        check "$v: all $total bytes arrived with the right SHA-256, over MPTCP" grep -q '"ok": true.*"mptcp": true' "${S10_OUT[$v]}"
    done
    sleep 0.3
    capture_stop
    local echo1=0 direct
    for b in "${BACKENDS[@]}"; do echo1=$((echo1 + $(nstat_of $P-$b MPTcpExtEchoAdd))); done
    echo "  the backends counted the client's echoes of addresses they never announced: MPTcpExtEchoAdd +$((echo1 - echo0))"
    check "the echoes reached the backends and were only counted (MPTcpExtEchoAdd +$((echo1 - echo0)))" test $((echo1 - echo0)) -ge 2
    for v in v4 v6; do
        s10_check_announced $v "${S10_SPORT[$v]}"
        direct=$(tsh "$F.src == ${S10_B[$v]} and $F.dst == $FCELL and tcp.srcport == 80 and frame.time_epoch > $kill_at" -e tcp.len | awk '{s += $1} END {print s + 0}')
        check "$v: data flowed over the direct subflow after the kill ($direct bytes)" test "$direct" -gt 0
    done
    within 60 "10" "$t0"
    log "scenario 10 passed ($((SECONDS - t0)) s)"
}
