#!/usr/bin/env bash
# Short fuzzing run of the datapath (`process_frame`), for the test suite.
#
# Installs cargo-fuzz when missing, then fuzzes from the committed seeds
# (fuzz/seeds, from the real captures) for FUZZ_SECONDS (default 45) seconds
# with AddressSanitizer, debug assertions and overflow checks. Exits non-zero
# on a crash, a failed invariant or a timeout, and prints how to reproduce.
#
# Works on stable Rust: cargo-fuzz passes `-Z` flags (the sanitizer) to rustc,
# which stable accepts with RUSTC_BOOTSTRAP=1. The build takes ~2 minutes the
# first time (fuzz/target is reused afterwards).
#
# Env: FUZZ_SECONDS (time fuzzing, not counting the build), FUZZ_SANITIZER
# (address or none).
set -euo pipefail

cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-45}"
sanitizer="${FUZZ_SANITIZER:-address}"
target=process_frame

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz smoke: installing cargo-fuzz"
    cargo install --locked cargo-fuzz
fi

export RUSTC_BOOTSTRAP=1
corpus="fuzz/corpus/$target"
mkdir -p "$corpus"
log="$(mktemp -t mplb-fuzz.XXXXXX)"
trap 'rm -f "$log"' EXIT

echo "fuzz smoke: building $target (sanitizer: $sanitizer)"
cargo fuzz build -s "$sanitizer" "$target"

echo "fuzz smoke: fuzzing $target for ${seconds}s from fuzz/seeds"
status=0
# The first corpus directory receives new inputs; the seeds stay untouched.
cargo fuzz run -s "$sanitizer" "$target" "$corpus" fuzz/seeds -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 \
    -print_final_stats=1 >"$log" 2>&1 || status=$?

runs="$(grep -Eo '^stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' || true)"
if [ "$status" -ne 0 ]; then
    tail -n 60 "$log"
    echo "fuzz smoke: FAILED (exit $status) after ${runs:-?} inputs" >&2
    for a in fuzz/artifacts/"$target"/*; do
        [ -e "$a" ] || continue
        echo "fuzz smoke: reproduce with: RUSTC_BOOTSTRAP=1 cargo fuzz run $target $a" >&2
    done
    exit "$status"
fi
cov="$(grep -Eo 'cov: [0-9]+' "$log" | tail -n 1 || true)"
echo "fuzz smoke: ok, ${runs:-?} inputs in ${seconds}s, no crash (${cov:-cov: ?})"
