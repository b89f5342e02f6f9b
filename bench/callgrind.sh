#!/usr/bin/env bash
# Instructions per packet of each datapath path, counted by callgrind.
#
# Builds the `callgrind_datapath` example (release profile), then runs each
# path under `valgrind --tool=callgrind`, collecting only inside
# `measured_burst` (the `process_burst` call: no harness, no setup), and
# prints instructions / packet. `--annotate` also prints each path's most
# expensive functions (inclusive of callees).
#
# Usage: bench/callgrind.sh [--annotate] [PATH...]   (default: every path)
# Env:   PACKETS (default 32000), CARGO_TARGET_DIR, OUT (callgrind files,
#        default /tmp/mplb-callgrind)
set -euo pipefail

cd "$(dirname "$0")/.."
annotate=0
if [ "${1:-}" = "--annotate" ]; then
    annotate=1
    shift
fi
packets="${PACKETS:-32000}"
out="${OUT:-/tmp/mplb-callgrind}"
target_dir="${CARGO_TARGET_DIR:-target}"

if ! command -v valgrind >/dev/null; then
    echo "callgrind.sh: valgrind not found (scripts/setup-host.sh installs it)" >&2
    exit 1
fi

cargo build --release --example callgrind_datapath >&2
bin="$target_dir/release/examples/callgrind_datapath"
mkdir -p "$out"

paths=("$@")
if [ "${#paths[@]}" -eq 0 ]; then
    mapfile -t paths < <("$bin" --list)
fi

printf '%-18s %12s %10s\n' path packets instr/pkt
for p in "${paths[@]}"; do
    file="$out/callgrind.out.$p"
    valgrind --tool=callgrind --callgrind-out-file="$file" \
        --collect-atstart=no --toggle-collect='*measured_burst*' \
        "$bin" "$p" "$packets" >"$out/$p.stdout" 2>"$out/$p.stderr" || {
        cat "$out/$p.stderr" >&2
        echo "callgrind run of $p failed" >&2
        exit 1
    }
    sent="$(grep -Eo 'packets=[0-9]+' "$out/$p.stdout" | cut -d= -f2)"
    ir="$(grep -E '^(summary|totals):' "$file" | head -n 1 | awk '{print $2}')"
    awk -v p="$p" -v n="$sent" -v ir="$ir" \
        'BEGIN { printf "%-18s %12d %10.1f\n", p, n, ir / n }'
done

if [ "$annotate" = 1 ]; then
    for p in "${paths[@]}"; do
        echo
        echo "== $p: top functions (inclusive instructions per packet = Ir / packets)"
        callgrind_annotate --inclusive=yes "$out/callgrind.out.$p" 2>/dev/null |
            sed -n '/^ *Ir/,$p' | head -n 25
    done
fi
