#!/usr/bin/env bash
# Short fuzzing runs for the test suite: the datapath (`process_frame`, from
# fuzz/seeds, the real captures) and the config parser (`parse_config`, from
# the shipped configs and the test fixtures: configs/, tests/fixtures/).
#
# Installs cargo-fuzz when missing, then fuzzes each target from its
# committed seeds with AddressSanitizer, debug assertions and overflow
# checks: process_frame for FUZZ_SECONDS (default 45) seconds, parse_config
# for FUZZ_CONFIG_SECONDS (default 15). Exits non-zero on a crash, a failed
# invariant or a timeout, and prints how to reproduce.
#
# Works on stable Rust: cargo-fuzz passes `-Z` flags (the sanitizer) to rustc,
# which stable accepts with RUSTC_BOOTSTRAP=1. The build takes ~2 minutes the
# first time (fuzz/target is reused afterwards).
#
# Env: FUZZ_SECONDS, FUZZ_CONFIG_SECONDS (time fuzzing, not counting the
# build), FUZZ_SANITIZER (address or none).
set -euo pipefail

cd "$(dirname "$0")/.."
sanitizer="${FUZZ_SANITIZER:-address}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz smoke: installing cargo-fuzz"
    cargo install --locked cargo-fuzz
fi
export RUSTC_BOOTSTRAP=1
log="$(mktemp -t mplb-fuzz.XXXXXX)"
config_seeds="$(mktemp -d -t mplb-fuzz-configs.XXXXXX)"
trap 'rm -rf "$log" "$config_seeds"' EXIT
cp configs/*.toml "$config_seeds/"
for f in tests/fixtures/*.toml; do cp "$f" "$config_seeds/fixture-$(basename "$f")"; done

# smoke TARGET SEEDS SECONDS
smoke() {
    local target="$1" seeds="$2" seconds="$3"
    local corpus="fuzz/corpus/$target"
    mkdir -p "$corpus"
    echo "fuzz smoke: building $target (sanitizer: $sanitizer)"
    cargo fuzz build -s "$sanitizer" "$target"

    echo "fuzz smoke: fuzzing $target for ${seconds}s from $seeds"
    local status=0
    # The first corpus directory receives new inputs; the seeds stay untouched.
    cargo fuzz run -s "$sanitizer" "$target" "$corpus" "$seeds" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 \
        -print_final_stats=1 >"$log" 2>&1 || status=$?

    local runs
    runs="$(grep -Eo '^stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' || true)"
    if [ "$status" -ne 0 ]; then
        tail -n 60 "$log"
        echo "fuzz smoke: $target FAILED (exit $status) after ${runs:-?} inputs" >&2
        for a in fuzz/artifacts/"$target"/*; do
            [ -e "$a" ] || continue
            echo "fuzz smoke: reproduce with: RUSTC_BOOTSTRAP=1 cargo fuzz run $target $a" >&2
        done
        exit "$status"
    fi
    local cov
    cov="$(grep -Eo 'cov: [0-9]+' "$log" | tail -n 1 || true)"
    echo "fuzz smoke: $target ok, ${runs:-?} inputs in ${seconds}s, no crash (${cov:-cov: ?})"
}

smoke process_frame fuzz/seeds "${FUZZ_SECONDS:-45}"
smoke parse_config "$config_seeds" "${FUZZ_CONFIG_SECONDS:-15}"
