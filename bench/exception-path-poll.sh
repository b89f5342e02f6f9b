#!/usr/bin/env bash
# What polling a kernel interface (the exception path's net_tap) every loop
# costs the worker: the engine's bare macswap loop on net_null
# (configs/null-bench.toml) without and with `kernel_interface` on port p0,
# the tap idle, alternating ROUNDS times, SECONDS each; the figure is the
# median of the per-second rx rates, skipping the first second. Runs in a
# network namespace of its own (removed at exit), as root.
#
# Usage: sudo bench/exception-path-poll.sh [SECONDS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-6}"
rounds="${2:-3}"
mplb="${MPLB:-target/release/mplb}"
[ -x "$mplb" ] || cargo build --release --quiet
tmp="$(mktemp -d)"
ns="mplb-pollbench-$$"
ip netns add "$ns"
trap 'ip netns del "$ns" 2>/dev/null; rm -rf "$tmp"' EXIT

cp configs/null-bench.toml "$tmp/plain.toml"
sed 's/^device = "net_null0"$/device = "net_null0"\nkernel_interface = "mplbpoll0"/' \
    configs/null-bench.toml >"$tmp/tap.toml"
grep -q kernel_interface "$tmp/tap.toml" || { echo "could not add kernel_interface" >&2; exit 1; }

median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) print 0; else print a[int((NR+1)/2)]}'; }
rate() {
    ip netns exec "$ns" "$mplb" run --config "$tmp/$1.toml" --duration "$secs" \
        --stats-interval 1 >"$tmp/$1.out" 2>"$tmp/$1.err" || {
        cat "$tmp/$1.err" >&2
        exit 1
    }
    awk '/^rate:/ {print $3}' "$tmp/$1.out" | tail -n +2 | median
}

printf '%-6s %16s %16s %8s\n' round "plain Mpps" "with tap Mpps" ratio
for r in $(seq "$rounds"); do
    p="$(rate plain)"
    t="$(rate tap)"
    printf '%-6s %16.2f %16.2f %8.3f\n' "$r" "$p" "$t" "$(echo "$p $t" | awk '{print ($1 > 0) ? $2 / $1 : 0}')"
done
