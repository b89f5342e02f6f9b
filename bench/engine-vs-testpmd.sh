#!/usr/bin/env bash
# The engine benchmark: mplb's bare rx→tx loop (workers.mode = "macswap") next
# to dpdk-testpmd --forward-mode=macswap, on the same net_null virtual devices
# (copy=1: every received frame is copied into its mbuf, as a NIC's DMA would),
# with one worker core each, in the same run. Prints a table; needs root and
# hugepages (scripts/setup-host.sh).
#
#   bench/engine-vs-testpmd.sh [SECONDS_PER_RUN] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-8}
rounds=${2:-3}
./scripts/setup-host.sh
cargo build --release --quiet
mplb="${CARGO_TARGET_DIR:-target}/release/mplb"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Steady-state rate: median of the per-second readings, skipping the first.
median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) print 0; else print a[int((NR+1)/2)]}'; }

run_mplb() {
    "$mplb" run --config configs/null-bench.toml --duration "$secs" --stats-interval 1 \
        >"$tmp/mplb.out" 2>&1 || { cat "$tmp/mplb.out" >&2; return 1; }
    awk '/^rate:/ {print $3}' "$tmp/mplb.out" | tail -n +2 | median
}

run_testpmd() {
    # Two ports, one forwarding core (lcore 1): testpmd pairs port 0 ↔ 1.
    # testpmd runs until interrupted: timeout's SIGINT is its normal end.
    timeout -s INT "$((secs + 1))" stdbuf -oL dpdk-testpmd -l 0,1 --in-memory --no-pci \
        --file-prefix=bench-testpmd --log-level=lib.eal:error \
        --vdev=net_null0,copy=1 --vdev=net_null1,copy=1 -- \
        --forward-mode=macswap --nb-cores=1 --stats-period 1 --auto-start >"$tmp/testpmd.out" 2>&1 || true
    # Each period prints Rx-pps for port 0 then port 1: sum the pairs.
    awk '/Rx-pps:/ {sum += $2; n++; if (n % 2 == 0) {print sum / 1e6; sum = 0}}' "$tmp/testpmd.out" \
        | awk '$1 > 0' | tail -n +2 | median
}

printf '%-8s %14s %14s %8s\n' round "mplb Mpps" "testpmd Mpps" ratio
for r in $(seq 1 "$rounds"); do
    m=$(run_mplb)
    t=$(run_testpmd)
    printf '%-8s %14.2f %14.2f %8.2f\n' "$r" "$m" "$t" "$(echo "$m $t" | awk '{print ($2 > 0) ? $1 / $2 : 0}')"
done
