#!/usr/bin/env bash
# mplb's benchmarks on a host without DPDK, without internet, without package
# installs: every binary and library comes from this directory (bin/ wrappers
# run libexec/ binaries through the bundled glibc loader, lib/).
#
#   OUT=/path/to/empty/dir bash bench/devbench/run.sh   (from the repository root)
#
# Writes to $OUT: summary.txt (steps and figures), run.txt (everything),
# sysinfo.txt, hugepages.txt, datapath.txt, paths.txt + paths.json, paths-vips.txt +
# paths-vips.json, engine.txt, scaling.txt + scaling/, harness.txt + harness/,
# harness-rt.txt + harness-rt/, harness-vips.txt + harness-vips/. Each step is
# guarded by `timeout`; a failed step does not stop the others. Wall time stays
# under DEVBENCH_BUDGET seconds (default 700; the last step may overrun it by
# up to 20 s while it stops).
#
# Environment (all optional):
#   DEVBENCH_QUICK=1      smoke mode: everything short (a minute or two)
#   DEVBENCH_BUDGET=S     total seconds (default 700)
#   DEVBENCH_NO_HUGE=1    do not use hugepages even if available
#   DEVBENCH_HUGEPAGES=N  2 MiB pages to reserve (default 2048; 0: leave as is)
#   DEVBENCH_SKIP=a,b     skip steps: datapath, paths, paths-vips, engine, scaling, harness,
#                         harness-rt, harness-vips
#   DEVBENCH_VIPS=N       VIPs of each family in the paths-vips and harness-vips steps
#                         (default 10000, issue 15's "1 and 10 000 VIPs")
#   DEVBENCH_SCALING=L    worker counts of the scaling table (default: 1, 2, 4, ...
#                         up to the most workers N with 1 + 2N physical cores,
#                         and that N); the step gets at most DEVBENCH_SCALING_BUDGET
#                         seconds (default 360)
#   DEVBENCH_RT_DRYRUN=1  run the harness-rt step without --realtime (to test
#                         the script on a shared machine, which RT would starve)
set -u
START=$(date +%s)
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd) || exit 1
OUT=${OUT:-$REPO/devbench-out-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT" || exit 1
OUT=$(cd "$OUT" && pwd)
cd "$REPO" || exit 1
DB=$REPO/bench/devbench
# Scratch space on a short path (memif socket paths must fit in 108 bytes).
WORK=$(mktemp -d /tmp/devbench.XXXXXX 2>/dev/null) || WORK=$(mktemp -d "$OUT/.work.XXXXXX")
# In case the copy lost the executable bits.
chmod +x "$DB"/bin/* "$DB"/libexec/* "$DB"/libexec/valgrind-lib/callgrind-* "$DB/lib/ld-linux-x86-64.so.2" 2>/dev/null
QUICK=${DEVBENCH_QUICK:-0}
BUDGET=${DEVBENCH_BUDGET:-700}
SKIP=",${DEVBENCH_SKIP:-},"
exec > >(tee -a "$OUT/run.txt") 2>&1
TEE_PID=$!

export PATH="$DB/bin:$PATH"
# The harness talks to mplb's metrics on 127.0.0.1 with urllib: no proxy.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
export no_proxy=127.0.0.1,localhost NO_PROXY=127.0.0.1,localhost
export LC_ALL=C

elapsed() { echo $(($(date +%s) - START)); }
left() { echo $((BUDGET - $(elapsed))); }
log() { echo "[devbench $(elapsed)s] $*"; }
have() { command -v "$1" >/dev/null 2>&1; }
summary() { echo "$*" >>"$OUT/summary.txt"; }

if ! have timeout; then
    # Minimal stand-in for coreutils' timeout: timeout [-s SIG] [-k S] SECS CMD...
    timeout() {
        local sig=TERM
        while [[ $1 == -* ]]; do
            case $1 in -s) sig=$2; shift 2 ;; -k) shift 2 ;; *) shift ;; esac
        done
        local t=$1
        shift
        "$@" &
        local p=$!
        (sleep "$t"; kill -s "$sig" "$p" 2>/dev/null; sleep 15; kill -9 "$p" 2>/dev/null) &
        local w=$!
        wait "$p"
        local rc=$?
        kill "$w" 2>/dev/null
        return $rc
    }
fi
# pinned CPULIST: the command prefix that pins to CPULIST (taskset, if any),
# as words for an array: a prefix, not a function, so `timeout` can run it.
pinned() { if [ -n "$1" ] && have taskset; then echo "taskset -c $1"; fi; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) print 0; else print a[int((NR+1)/2)]}'; }

# Processes of this bundle still running (a step that timed out hard):
# found by the bundle's path in their command line, ended by pid.
cleanup_procs() {
    local p cmd found=
    for p in /proc/[0-9]*; do
        p=${p#/proc/}
        [ "$p" = $$ ] && continue
        cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline") || continue
        case $cmd in *"$DB/libexec/"*) found="$found $p" ;; esac
    done
    [ -z "$found" ] && return 0
    log "stray bundle processes:$found; stopping them"
    kill -INT $found 2>/dev/null
    sleep 3
    kill -KILL $found 2>/dev/null
    rm -rf /var/run/dpdk/devbench-* 2>/dev/null
    return 0
}

step_t0=0
step_begin() { step_t0=$(date +%s); log "=== $1 (budget left $(left) s)"; }
step_end() { # NAME RC [NOTE]
    local t=$(($(date +%s) - step_t0)) st=ok
    [ "$2" != 0 ] && st="FAILED (status $2)"
    [ "$2" = 124 ] && st="TIMED OUT"
    summary "$(printf '%-11s %-22s %4d s  %s' "$1" "$st" "$t" "${3:-}")"
    log "=== $1: $st in $t s"
    cleanup_procs
}
skipped() { summary "$(printf '%-11s %-22s %4s    %s' "$1" skipped - "$2")"; log "=== $1: skipped ($2)"; }
want() { [[ $SKIP != *",$1,"* ]]; }

HP=/sys/kernel/mm/hugepages/hugepages-2048kB
HP_ORIG=
HP_MOUNTED=
finish() {
    cleanup_procs
    if [ -n "$HP_ORIG" ]; then
        echo "$HP_ORIG" >"$HP/nr_hugepages" 2>/dev/null && log "hugepages: nr_hugepages restored to $HP_ORIG"
    fi
    if [ -n "$HP_MOUNTED" ]; then umount /dev/hugepages 2>/dev/null && log "hugepages: unmounted /dev/hugepages"; fi
    rm -rf "$WORK"
    # Nothing over 5 MiB comes back.
    find "$OUT" -type f -size +5M 2>/dev/null | while read -r f; do
        log "truncating $f ($(du -h "$f" | cut -f1))"
        tail -c 1000000 "$f" >"$f.tail" && mv "$f.tail" "$f"
    done
    summary "total wall time: $(elapsed) s"
    log "done in $(elapsed) s; results in $OUT"
    # Let tee write the last lines of run.txt before the script ends.
    exec >&- 2>&-
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$TEE_PID" 2>/dev/null || break; sleep 0.2; done
}
trap finish EXIT
trap 'log "interrupted"; exit 130' INT TERM

: >"$OUT/summary.txt"
summary "devbench run, $(date -u '+%Y-%m-%d %H:%M:%S UTC'), quick=$QUICK, budget ${BUDGET} s"
summary "mplb: $(timeout 10 mplb --version 2>&1 | head -1)"

# ---------------------------------------------------------------- a. sysinfo
step_begin sysinfo
{
    sec() { echo; echo "### $*"; }
    sec "date"; date -u
    sec "uname -a"; uname -a
    sec "/etc/os-release"; cat /etc/os-release 2>&1
    sec "id"; id
    sec "nproc"; nproc 2>&1; grep Cpus_allowed_list /proc/self/status
    sec "lscpu"; timeout 10 lscpu 2>&1 || grep -m1 'model name' /proc/cpuinfo
    sec "lscpu -e"; timeout 10 lscpu -e 2>&1 | head -300
    sec "free -g"; timeout 10 free -g 2>&1 || head -3 /proc/meminfo
    sec "mount | grep huge"; grep -i huge /proc/mounts
    sec "/proc/meminfo Huge*"; grep -i huge /proc/meminfo
    sec "hugepage pools"
    for d in /sys/kernel/mm/hugepages/hugepages-*; do
        [ -d "$d" ] && echo "$(basename "$d"): nr=$(cat "$d/nr_hugepages") free=$(cat "$d/free_hugepages")"
    done
    sec "transparent hugepages"; cat /sys/kernel/mm/transparent_hugepage/enabled /sys/kernel/mm/transparent_hugepage/defrag 2>&1
    sec "sched_rt_runtime_us / period"; cat /proc/sys/kernel/sched_rt_runtime_us /proc/sys/kernel/sched_rt_period_us 2>&1
    sec "/proc/cmdline"; cat /proc/cmdline
    sec "isolcpus / nohz_full / rcu_nocbs"; tr ' ' '\n' </proc/cmdline | grep -E 'isolcpus|nohz|rcu_nocbs|irqaffinity' || echo none
    sec "cgroup"; cat /proc/self/cgroup; cat /sys/fs/cgroup/cpu.max /sys/fs/cgroup/cpuset.cpus.effective 2>/dev/null
    sec "cpu frequency governor"; cat /sys/devices/system/cpu/cpu*/cpufreq/scaling_governor 2>/dev/null | sort | uniq -c || echo n/a
    sec "loadavg"; cat /proc/loadavg
    sec "ulimit -a"; ulimit -a
    sec "tools"
    for t in python3 taskset chrt awk timeout lscpu free mount; do printf '%-8s %s\n' "$t" "$(command -v "$t" || echo MISSING)"; done
    python3 --version 2>&1
    sec "host glibc"; (ldd --version 2>&1 | head -1) || true
    sec "bundled loader"; "$DB/lib/ld-linux-x86-64.so.2" --version 2>&1 | head -1
    sec "disk"; df -h "$REPO" /tmp 2>&1
} >"$OUT/sysinfo.txt" 2>&1
step_end sysinfo 0

# CPUs: the allowed ones, one per physical core, not CPU 0's core when there
# are at least 4 cores (CPU 0 takes interrupts and housekeeping).
expand_list() {
    local r out=() i
    local IFS=,
    for r in $1; do
        if [[ $r == *-* ]]; then
            for ((i = ${r%-*}; i <= ${r#*-}; i++)); do out+=("$i"); done
        else
            out+=("$r")
        fi
    done
    IFS=' '
    echo "${out[*]}"
}
corekey() {
    local t=/sys/devices/system/cpu/cpu$1/topology
    if [ -r "$t/core_id" ]; then echo "$(cat "$t/physical_package_id" 2>/dev/null):$(cat "$t/core_id")"; else echo "cpu$1"; fi
}
ALLOWED=$(expand_list "$(grep Cpus_allowed_list /proc/self/status | cut -f2 | tr -d ' \t')")
[ -z "$ALLOWED" ] && ALLOWED=$(seq 0 $(($(nproc) - 1)) | tr '\n' ' ')
declare -A SEEN=()
PHYS=()
for c in $ALLOWED; do
    k=$(corekey "$c")
    [ -n "${SEEN[$k]:-}" ] && continue
    SEEN[$k]=1
    PHYS+=("$c")
done
if [ ${#PHYS[@]} -ge 4 ]; then
    k0=$(corekey 0)
    tmp=()
    for c in "${PHYS[@]}"; do [ "$(corekey "$c")" != "$k0" ] && tmp+=("$c"); done
    PHYS=("${tmp[@]}")
fi
# Several NUMA nodes: keep to the node with the most of these cores, so the
# generator, the DUT and their shared memory are on one node.
nodeof() {
    local n
    for n in /sys/devices/system/cpu/cpu$1/node[0-9]*; do
        [ -e "$n" ] && { echo "${n##*node}"; return; }
    done
    echo 0
}
declare -A NCOUNT=()
for c in "${PHYS[@]}"; do
    nd=$(nodeof "$c")
    NCOUNT[$nd]=$((${NCOUNT[$nd]:-0} + 1))
done
if [ ${#NCOUNT[@]} -gt 1 ]; then
    best=
    for nd in "${!NCOUNT[@]}"; do
        if [ -z "$best" ] || [ "${NCOUNT[$nd]}" -gt "${NCOUNT[$best]}" ]; then best=$nd; fi
    done
    if [ "${NCOUNT[$best]}" -ge 3 ]; then
        tmp=()
        for c in "${PHYS[@]}"; do [ "$(nodeof "$c")" = "$best" ] && tmp+=("$c"); done
        PHYS=("${tmp[@]}")
        log "NUMA: ${#NCOUNT[@]} nodes; using the CPUs of node $best"
    fi
fi
join() { local IFS=,; echo "$*"; }
A=${PHYS[0]:-0}
B=${PHYS[1]:-}
if [ ${#PHYS[@]} -ge 3 ]; then HCPUS=$(join "${PHYS[@]}"); else HCPUS=$(join $ALLOWED); fi
log "CPUs allowed: $ALLOWED; one per physical core (used): ${PHYS[*]}"
summary "CPUs allowed: $(join $ALLOWED); one per physical core, used: $(join "${PHYS[@]}")"
summary "engine: main lcore $A, worker lcore ${B:-none}; datapath pinned to $A; harness runs on $HCPUS"
echo "cpus: allowed $(join $ALLOWED); chosen (one per core, CPU 0's core avoided when >= 4 cores): $(join "${PHYS[@]}")" >>"$OUT/sysinfo.txt"

# ---------------------------------------------------------------- b. hugepages
# probe_testpmd LOG PREFIX: does a DPDK program start here (EAL, mbuf pool,
# two null ports)? testpmd until it forwards (10 s at most), then SIGINT.
probe_testpmd() {
    local log=$1 p i
    dpdk-testpmd -l "$A,$B" --main-lcore "$A" --in-memory --no-pci --file-prefix="$2" \
        --log-level=lib.eal:error --vdev=net_null0 --vdev=net_null1 -- --stats-period 1 --nb-cores=1 >"$log" 2>&1 &
    p=$!
    for i in $(seq 1 50); do
        grep -q "forwards packets on" "$log" 2>/dev/null && break
        kill -0 "$p" 2>/dev/null || break
        sleep 0.2
    done
    kill -INT "$p" 2>/dev/null
    for i in $(seq 1 25); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$p" 2>/dev/null
    wait "$p"
}
step_begin hugepages
HUGE=0
{
    want_pages=${DEVBENCH_HUGEPAGES:-2048}
    if [ "${DEVBENCH_NO_HUGE:-0}" = 1 ]; then
        echo "DEVBENCH_NO_HUGE=1: hugepages not used"
    else
        if [ -e "$HP/nr_hugepages" ]; then
            cur=$(cat "$HP/nr_hugepages" 2>/dev/null || echo 0)
            echo "2 MiB hugepages before: nr=$cur free=$(cat "$HP/free_hugepages" 2>/dev/null)"
            if [ "$want_pages" -gt 0 ] && [ "$cur" -lt "$want_pages" ]; then
                if timeout 60 sh -c "echo $want_pages > $HP/nr_hugepages" 2>&1; then
                    HP_ORIG=$cur
                    echo "wrote $want_pages to $HP/nr_hugepages"
                else
                    echo "could not write $HP/nr_hugepages (read-only /sys, not root, or a container)"
                fi
            fi
            echo "2 MiB hugepages after: nr=$(cat "$HP/nr_hugepages" 2>/dev/null) free=$(cat "$HP/free_hugepages" 2>/dev/null)"
        else
            echo "no $HP (kernel without 2 MiB hugepages?)"
        fi
        if grep -q hugetlbfs /proc/mounts; then
            echo "hugetlbfs mounted: $(grep hugetlbfs /proc/mounts | tr '\n' ';')"
        else
            mkdir -p /dev/hugepages 2>/dev/null
            if timeout 20 mount -t hugetlbfs -o pagesize=2M nodev /dev/hugepages 2>&1; then
                HP_MOUNTED=1
                echo "mounted hugetlbfs at /dev/hugepages"
            else
                echo "could not mount hugetlbfs (DPDK --in-memory does not need the mount, only reserved pages)"
            fi
        fi
        free_mb=0
        for d in /sys/kernel/mm/hugepages/hugepages-*kB; do
            [ -d "$d" ] || continue
            kb=${d##*hugepages-}
            kb=${kb%kB}
            free_mb=$((free_mb + kb * $(cat "$d/free_hugepages") / 1024))
        done
        echo "free hugepage memory: $free_mb MiB"
        if [ "$free_mb" -ge 2048 ] && [ -n "$B" ]; then
            echo "probe: testpmd with hugepages (--in-memory; its default mbuf pool is ~340 MiB)"
            probe_testpmd "$WORK/probe.txt" devbench-probe-$$
            echo "probe exit status $?"
            grep -v '^ *$' "$WORK/probe.txt" | head -12
            if grep -q "Configuring Port 0" "$WORK/probe.txt" && ! grep -qi "cannot allocate\|Cannot init\|Error - exiting" "$WORK/probe.txt"; then
                HUGE=1
            fi
        else
            echo "less than 2048 MiB of free hugepages (or one CPU): running with --no-huge"
        fi
    fi
    if [ "$HUGE" = 1 ]; then
        echo "RESULT: hugepages usable; DPDK programs run with --in-memory on hugepages"
    else
        echo "RESULT: no usable hugepages; every DPDK program runs with --no-huge -m 2048 (without --in-memory)"
        export DEVBENCH_NO_HUGE=1
        [ -n "$B" ] && probe_testpmd "$WORK/probe2.txt" devbench-probe2-$$
        echo "probe without hugepages: status $?; $(grep -c 'Configuring Port' "$WORK/probe2.txt" 2>/dev/null) port(s) configured"
        grep -v '^ *$' "$WORK/probe2.txt" 2>/dev/null | head -12
    fi
} >"$OUT/hugepages.txt" 2>&1
[ "$HUGE" = 1 ] || export DEVBENCH_NO_HUGE=1
rm -rf /var/run/dpdk/devbench-probe*-$$ 2>/dev/null
MODE=$([ "$HUGE" = 1 ] && echo "hugepages (--in-memory)" || echo "NO hugepages (--no-huge -m 2048)")
step_end hugepages 0 "$MODE"
summary "memory mode: $MODE"

# ---------------------------------------------------------------- c. datapath
# The benchmarks read the captures from this tree, not from the build's.
export MPLB_BENCH_DATA=$REPO/tests/data
PYOK=
if have python3 && python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 8) else 1)' 2>/dev/null; then PYOK=1; fi
if ! want datapath; then
    skipped datapath "DEVBENCH_SKIP"
elif [ ! -x "$DB/libexec/datapath-bench" ]; then
    skipped datapath "no datapath-bench binary in the bundle"
else
    step_begin datapath
    if [ "$QUICK" = 1 ]; then
        export MPLB_BENCH_BATCHES=30 MPLB_BENCH_ESTABLISHED=65536
        rounds=1
    else
        export MPLB_BENCH_BATCHES=400
        rounds=3
    fi
    rc=0
    {
        echo "# MPLB_BENCH_MEMORY=heap MPLB_BENCH_BATCHES=$MPLB_BENCH_BATCHES ${MPLB_BENCH_ESTABLISHED:+MPLB_BENCH_ESTABLISHED=$MPLB_BENCH_ESTABLISHED }datapath-bench --bench, pinned to CPU $A, $rounds round(s)"
        echo "# (bench/README.md \"Datapath: time per packet\": ns/packet; the tables use p10 and net p10)"
        echo "# transparent hugepages: $(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null)"
        for r in $(seq 1 $rounds); do
            echo "## round $r"
            MPLB_BENCH_MEMORY=heap timeout -k 5 40 $(pinned "$A") datapath-bench --bench || rc=$?
        done
    } >"$OUT/datapath.txt" 2>&1
    # The flow table in DPDK hugepages, as the engine has it (the benchmark
    # starts the EAL itself, on CPU 0: `-l 0`), once, if there are hugepages.
    if [ "$HUGE" = 1 ] && [[ " $ALLOWED " == *" 0 "* ]] && [ "$(left)" -gt 250 ]; then
        {
            echo "# MPLB_BENCH_BATCHES=$MPLB_BENCH_BATCHES ${MPLB_BENCH_ESTABLISHED:+MPLB_BENCH_ESTABLISHED=$MPLB_BENCH_ESTABLISHED }datapath-bench --bench: flow table in DPDK hugepages (EAL --in-memory -l 0: CPU 0)"
            timeout -k 5 40 datapath-bench --bench
            echo "exit status $?"
        } >"$OUT/datapath-hugepages.txt" 2>&1
    fi
    unset MPLB_BENCH_BATCHES MPLB_BENCH_ESTABLISHED
    step_end datapath $rc "$(grep -c 'process_burst' "$OUT/datapath.txt") result lines"
fi

# ---------------------------------------------------------------- c2. paths
# bench/paths with the bundle's binaries: per path, instructions per packet
# (callgrind, bundled) next to ns per packet (the datapath benchmark, heap
# memory, pinned to CPU A) and the PMU's instructions and cycles where there
# is one; paths.json compares with another machine's (bench/paths --compare).
# paths_table NAME TIMEOUT ARGS...: bench/paths with the bundle's binaries
# into $OUT/NAME.txt and $OUT/NAME.json. Callgrind runs are single-threaded
# and independent: one per core.
paths_table() {
    local name=$1 t=$2 jobs=${#PHYS[@]} cg
    shift 2
    [ "$jobs" -lt 1 ] && jobs=1
    cg=$(printf '%q ' "$DB/lib/ld-linux-x86-64.so.2" --library-path "$DB/lib" "$DB/libexec/callgrind-datapath")
    cg=${cg% }
    timeout -k 10 "$t" python3 bench/paths "$@" --jobs "$jobs" ${A:+--cpu "$A"} \
        --callgrind "$cg" --bench "$(printf '%q' "$DB/bin/datapath-bench")" \
        --valgrind "$(printf '%q' "$DB/bin/valgrind")" --data "$REPO/tests/data" \
        --commit "$(cat "$DB/libexec/COMMIT" 2>/dev/null || echo unknown)" \
        --out "$WORK/$name" --json "$OUT/$name.json" >"$OUT/$name.txt" 2>&1
}
if ! want paths; then
    skipped paths "DEVBENCH_SKIP"
elif [ ! -x "$DB/libexec/callgrind-datapath" ] || [ ! -x "$DB/libexec/datapath-bench" ]; then
    skipped paths "the bundle lacks the callgrind example or the datapath benchmark"
elif [ -z "$PYOK" ]; then
    skipped paths "python3 >= 3.8 not found: bench/paths needs it"
else
    step_begin paths
    if [ "$QUICK" = 1 ]; then
        args=(--packets 3200 --batches 50 --rounds 1)
    else
        args=(--packets 32000 --batches 400 --rounds 3)
    fi
    paths_table paths 300 "${args[@]}"
    rc=$?
    step_end paths $rc "$(grep -c '^[a-z0-9_]\+ \+[0-9.]\+ ' "$OUT/paths.txt") path rows"
fi

# ---------------------------------------------------------------- c3. paths-vips
# The same table with DEVBENCH_VIPS VIPs in the snapshot and the captures'
# traffic spread over them (MPLB_BENCH_VIPS, one Maglev table), against
# paths.json: issue 15's "1 and 10 000 VIPs: ns/packet within 5 %" on this
# host. Fewer packets and batches than paths: a 10 000-VIP snapshot takes a
# while to build under callgrind.
VIPS=${DEVBENCH_VIPS:-10000}
if ! want paths-vips; then
    skipped paths-vips "DEVBENCH_SKIP"
elif [ ! -x "$DB/libexec/callgrind-datapath" ] || [ ! -x "$DB/libexec/datapath-bench" ]; then
    skipped paths-vips "the bundle lacks the callgrind example or the datapath benchmark"
elif [ -z "$PYOK" ]; then
    skipped paths-vips "python3 >= 3.8 not found: bench/paths needs it"
elif [ "$(left)" -lt 120 ]; then
    skipped paths-vips "only $(left) s left"
else
    step_begin paths-vips
    if [ "$QUICK" = 1 ]; then
        args=(--packets 3200 --batches 50 --rounds 1)
    else
        args=(--packets 8000 --batches 200 --rounds 3)
    fi
    MPLB_BENCH_VIPS=$VIPS paths_table paths-vips 240 "${args[@]}"
    rc=$?
    if [ "$rc" = 0 ] && [ -f "$OUT/paths.json" ]; then
        python3 bench/paths --compare "$OUT/paths.json" "$OUT/paths-vips.json" >"$OUT/paths-vips-compare.txt" 2>&1
    fi
    step_end paths-vips $rc "$VIPS VIPs a family; $(grep -c '^[a-z0-9_]\+ \+[0-9.]\+ ' "$OUT/paths-vips.txt") path rows"
fi

# ---------------------------------------------------------------- d. engine
engine() {
    local secs rounds port cfg r m t tpout mout
    if [ "$QUICK" = 1 ]; then secs=3; rounds=1; else secs=5; rounds=3; fi
    port=$((20000 + RANDOM % 20000))
    cfg=$WORK/null-bench.toml
    sed -e "s/^main_lcore = .*/main_lcore = $A/" -e "s/^lcores = .*/lcores = [$B]/" \
        -e "s/--file-prefix=mplb-bench/--file-prefix=devbench-engine-$$/" configs/null-bench.toml >"$cfg"
    printf '\n[management]\nlisten = "127.0.0.1:%s"\nsocket = "%s"\n' "$port" "$WORK/engine-mplb.sock" >>"$cfg"
    echo "# mplb bare loop (configs/null-bench.toml, workers.mode = macswap) vs dpdk-testpmd --forward-mode=macswap"
    echo "# net_null0/1 copy=1, main lcore $A, one forwarding lcore $B; $secs s per run, $rounds rounds; memory: $MODE"
    echo "# figure: median of the per-second rates, first second skipped (as bench/engine-vs-testpmd.sh)"
    printf '%-8s %14s %14s %8s\n' round "mplb Mpps" "testpmd Mpps" ratio
    mkdir -p "$OUT/engine-logs"
    for r in $(seq 1 "$rounds"); do
        mout=$OUT/engine-logs/mplb-r$r.txt
        timeout -s INT -k 10 $((secs + 30)) mplb run --config "$cfg" --duration "$secs" --stats-interval 1 >"$mout" 2>&1
        m=$(awk '/^rate:/ {print $3}' "$mout" | tail -n +2 | median)
        m=${m:-0}
        tpout=$OUT/engine-logs/testpmd-r$r.txt
        timeout -s INT -k 10 $((secs + 3)) dpdk-testpmd -l "$A,$B" --main-lcore "$A" --in-memory --no-pci \
            --file-prefix=devbench-tp-$$ --log-level=lib.eal:error \
            --vdev=net_null0,copy=1 --vdev=net_null1,copy=1 -- \
            --forward-mode=macswap --nb-cores=1 --stats-period 1 --auto-start >"$tpout" 2>&1
        t=$(awk '/Rx-pps:/ {sum += $2; n++; if (n % 2 == 0) {print sum / 1e6; sum = 0}}' "$tpout" | awk '$1 > 0' | tail -n +2 | median)
        t=${t:-0}
        printf '%-8s %14.2f %14.2f %8.2f\n' "$r" "$m" "$t" "$(echo "$m $t" | awk '{print ($2 > 0) ? $1 / $2 : 0}')"
        rm -rf /var/run/dpdk/devbench-engine-$$ /var/run/dpdk/devbench-tp-$$ 2>/dev/null
        # Keep the logs small: testpmd prints a stats block per second.
        for f in "$mout" "$tpout"; do tail -c 60000 "$f" >"$f.t" && mv "$f.t" "$f"; done
    done
}
if ! want engine; then
    skipped engine "DEVBENCH_SKIP"
elif [ -z "$B" ]; then
    skipped engine "needs two CPUs"
else
    step_begin engine
    engine >"$OUT/engine.txt" 2>&1
    rc=$?
    awk '$1 ~ /^[0-9]+$/ && NF == 4 {print $2, $3, $4}' "$OUT/engine.txt" >"$WORK/eng"
    med=$(awk '{print $3}' "$WORK/eng" | median)
    {
        echo "median over rounds: mplb $(awk '{print $1}' "$WORK/eng" | median) Mpps, testpmd $(awk '{print $2}' "$WORK/eng" | median) Mpps, ratio $med"
    } >>"$OUT/engine.txt"
    step_end engine $rc "ratio (median) $med"
fi

# ---------------------------------------------------------------- e. harness
RTOK=
if have chrt && timeout 5 chrt -r 1 true 2>/dev/null; then RTOK=1; fi
summary "python3: $(python3 --version 2>&1 | head -1); chrt -r 1: $([ -n "$RTOK" ] && echo works || echo 'not permitted or missing')"

harness() { # NAME TIMEOUT ARGS...: bench/run with the bundled binaries
    local name=$1 t=$2
    shift 2
    local hw=$WORK/$name
    log "harness $name: timeout $t s: $*"
    echo "# bench/run --no-build --mplb bench/devbench/bin/mplb --gen bench/devbench/bin/mplb-gen $*"
    echo "# memory: $MODE; CPUs given to the harness: $HCPUS; timeout $t s"
    timeout -s TERM -k 20 "$t" $(pinned "$HCPUS") python3 bench/run --no-build \
        --mplb "$DB/bin/mplb" --gen "$DB/bin/mplb-gen" --out "$hw" "$@"
    local rc=$?
    mkdir -p "$OUT/$name"
    for f in results.json load-sweep.svg; do
        [ -f "$hw/$f" ] && cp "$hw/$f" "$OUT/$name/"
    done
    # The per-run logs, configs and generator reports, compressed, if small.
    if [ -d "$hw/runs" ]; then
        (cd "$hw" && tar czf "$WORK/$name-runs.tgz" runs 2>/dev/null)
        if [ -f "$WORK/$name-runs.tgz" ] && [ "$(stat -c %s "$WORK/$name-runs.tgz" 2>/dev/null || echo 99999999)" -lt 4000000 ]; then
            cp "$WORK/$name-runs.tgz" "$OUT/$name/runs.tgz"
        fi
    fi
    if [ -f "$OUT/$name/results.json" ] && [ "$(stat -c %s "$OUT/$name/results.json")" -gt 4500000 ]; then
        gzip -f "$OUT/$name/results.json"
    fi
    return $rc
}

harness_note() { # what bench/run said at its end
    local f=$OUT/$1.txt
    if grep -q 'run(s) failed' "$f"; then
        grep 'run(s) failed' "$f" | tail -1 | cut -c1-200
    elif grep -q '^done in' "$f"; then
        echo "all runs ok; $(ls "$OUT/$1" 2>/dev/null | tr '\n' ' ')"
    else
        echo "did not finish; $(ls "$OUT/$1" 2>/dev/null | tr '\n' ' ')"
    fi
}

# late_harness NAME TIMEOUT NOTE ARGS...: a harness step after the main one,
# with the time left (skipped under 45 s); NOTE leads the summary's line.
late_harness() {
    local name=$1 t=$2 note=$3 rc
    shift 3
    if [ "$t" -lt 45 ]; then
        skipped "$name" "only $t s left"
        return
    fi
    step_begin "$name"
    harness "$name" "$t" "$@" >"$OUT/$name.txt" 2>&1
    rc=$?
    step_end "$name" $rc "$note$(harness_note "$name")"
}

# ---------------------------------------------------------------- f. scaling
# The worker counts: 1, 2, 4, ... while 1 + 2N physical cores are free (DUT
# main + N workers + N generator lcores), and the largest such N.
scaling_counts() {
    local max=$(((${#PHYS[@]} - 1) / 2)) n=1 out=()
    [ "$max" -lt 1 ] && max=1
    while [ "$n" -le "$max" ]; do out+=("$n"); n=$((n * 2)); done
    [ "${out[-1]}" != "$max" ] && out+=("$max")
    join "${out[@]}"
}
if ! want scaling; then
    skipped scaling "DEVBENCH_SKIP"
elif [ -z "$PYOK" ] || [ "$(id -u)" != 0 ]; then
    skipped scaling "python3 or root missing"
else
    counts=${DEVBENCH_SCALING:-$(scaling_counts)}
    t=$(($(left) - 15))
    [ "$t" -gt "${DEVBENCH_SCALING_BUDGET:-360}" ] && t=${DEVBENCH_SCALING_BUDGET:-360}
    if [ "$QUICK" = 1 ]; then
        args=(--quick --scaling "$counts" --duration 1 --warmup 1)
    else
        args=(--scaling "$counts" --duration 3 --warmup 1)
    fi
    if [ "$t" -lt 40 ]; then
        skipped scaling "only $t s left"
    else
        step_begin scaling
        summary "scaling: worker counts $counts (1 + 2N cores needed for N; fewer share CPUs: not scaling evidence)"
        harness scaling "$t" "${args[@]}" >"$OUT/scaling.txt" 2>&1
        rc=$?
        step_end scaling $rc "$(harness_note scaling)"
    fi
fi

if ! want harness; then
    skipped harness "DEVBENCH_SKIP"
elif [ -z "$PYOK" ]; then
    skipped harness "python3 >= 3.8 not found: bench/run needs it"
elif [ "$(id -u)" != 0 ]; then
    skipped harness "not root: bench/run refuses (DPDK needs root here)"
else
    step_begin harness
    # Time for the real-time sweep after this one is kept back, unless that
    # leaves this one too little (this one comes first).
    # Estimated on a 2-core VM: a run costs ~1 s of start and stop besides
    # its warm-up and measured seconds; 18 side-by-side runs (3 mixes, 2
    # DUTs, 3 rounds) and 14 sweep runs: ~180 s with --duration 3 --warmup 1.
    if [ "$QUICK" = 1 ]; then reserve=60; need=40; else reserve=75; need=120; fi
    [ -n "$RTOK" ] && want harness-rt || reserve=0
    t=$(($(left) - reserve - 15))
    if [ "$t" -lt "$need" ]; then
        RT_DROPPED="the harness before it needed the time"
        t=$(($(left) - 15))
    fi
    if [ "$QUICK" = 1 ]; then
        args=(--quick --parts side,sweep --rounds 1 --duration 1 --warmup 1)
    elif [ "$t" -ge 230 ]; then
        args=(--parts side,sweep --rounds 3 --duration 3 --warmup 2)
    elif [ "$t" -ge 190 ]; then
        args=(--parts side,sweep --rounds 3 --duration 3 --warmup 1)
    else
        args=(--parts side,sweep --rounds 3 --duration 2 --warmup 1)
    fi
    if [ "$t" -lt 30 ]; then
        skipped harness "only $t s left"
    else
        harness harness "$t" "${args[@]}" >"$OUT/harness.txt" 2>&1
        rc=$?
        step_end harness $rc "$(harness_note harness)"
    fi
fi

if ! want harness-rt; then
    skipped harness-rt "DEVBENCH_SKIP"
elif [ -n "${RT_DROPPED:-}" ]; then
    skipped harness-rt "$RT_DROPPED"
elif [ -z "$PYOK" ] || [ "$(id -u)" != 0 ]; then
    skipped harness-rt "python3 or root missing"
elif [ -z "$RTOK" ]; then
    skipped harness-rt "chrt -r 1 not permitted here (no CAP_SYS_NICE or RT runtime 0 in this cgroup)"
else
    t=$(($(left) - 25))
    # The sweep alone: mplb's saturation first (one run), then 7 loads x 2 DUTs.
    if [ "$QUICK" = 1 ]; then
        args=(--quick --parts sweep --duration 1 --warmup 1)
    elif [ "$t" -ge 110 ]; then
        args=(--parts sweep --duration 3 --warmup 1)
    elif [ "$t" -ge 75 ]; then
        args=(--parts sweep --duration 2 --warmup 1)
    else
        args=(--quick --parts sweep --duration 2 --warmup 1)
    fi
    if [ "${DEVBENCH_RT_DRYRUN:-0}" = 1 ]; then
        summary "harness-rt: DEVBENCH_RT_DRYRUN=1, run WITHOUT --realtime"
    else
        args+=(--realtime)
    fi
    late_harness harness-rt "$t" "" "${args[@]}"
fi

# ---------------------------------------------------------------- g. harness-vips
# Side by side with DEVBENCH_VIPS VIPs of each family in mplb's config and
# the generator's flows spread over them (bench/run --vips): the ratio of
# issue 15's 10 000 VIPs on dedicated cores, next to harness.txt's one VIP.
# Last: the other steps measure the issue's main targets.
if ! want harness-vips; then
    skipped harness-vips "DEVBENCH_SKIP"
elif [ -z "$PYOK" ] || [ "$(id -u)" != 0 ]; then
    skipped harness-vips "python3 or root missing"
else
    t=$(($(left) - 15))
    if [ "$QUICK" = 1 ]; then
        args=(--quick --parts side --rounds 1 --duration 1 --warmup 1 --vips "$VIPS")
    else
        args=(--parts side --rounds 1 --duration 3 --warmup 2 --vips "$VIPS")
    fi
    late_harness harness-vips "$t" "$VIPS VIPs a family; " "${args[@]}"
fi

# Key figures into the summary.
{
    echo
    echo "---- datapath, heap memory (ns/packet; see datapath.txt)"
    grep -E '^(## round|[a-z0-9_]+ +process_burst)' "$OUT/datapath.txt" 2>/dev/null | head -40
    if [ -f "$OUT/datapath-hugepages.txt" ]; then
        echo "---- datapath, hugepages (datapath-hugepages.txt)"
        grep -E '^[a-z0-9_]+ +process_burst' "$OUT/datapath-hugepages.txt" | head -20
    fi
    if [ -f "$OUT/paths.txt" ]; then
        echo "---- per path, side by side (paths.txt, paths.json)"
        grep -v '^\[paths\]' "$OUT/paths.txt" | head -30
    fi
    if [ -f "$OUT/paths-vips-compare.txt" ]; then
        echo "---- per path, 2 VIPs (A) and $VIPS VIPs a family (B) (paths-vips-compare.txt)"
        head -40 "$OUT/paths-vips-compare.txt"
    elif [ -f "$OUT/paths-vips.txt" ]; then
        echo "---- per path, $VIPS VIPs a family (paths-vips.txt)"
        grep -v '^\[paths\]' "$OUT/paths-vips.txt" | head -30
    fi
    echo "---- engine"
    tail -n 5 "$OUT/engine.txt" 2>/dev/null
    if [ -f "$OUT/scaling.txt" ]; then
        echo "---- scaling (table)"
        awk '/^Scaling/,/^vs 1 =/' "$OUT/scaling.txt" | head -60
        grep -E '^(done in|[0-9]+ run\(s\) failed)' "$OUT/scaling.txt"
    fi
    for h in harness harness-rt harness-vips; do
        [ -f "$OUT/$h.txt" ] || continue
        echo "---- $h (tables)"
        awk '/^(Side by side|Offered-load|Load sweep)/,/^$/' "$OUT/$h.txt" | head -40
        grep -E '^(done in|[0-9]+ run\(s\) failed)' "$OUT/$h.txt"
    done
} >>"$OUT/summary.txt"
