#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine with Rust, gcc and
# Python: installs what is missing, then checks formatting and lints, and
# runs unit, property, integration and DPDK tests. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup-host.sh

echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo test (with DPDK)"
cargo test --workspace
echo "== cargo test (I/O-free core without DPDK)"
cargo test --lib --no-default-features
echo "== bench harness: bench/paths' parser and tables, the benchmark config's VIPs"
(cd bench && python3 -m unittest -q harness.test_paths harness.test_lbconfig)
echo "== fuzz smoke run of the per-packet function"
bash fuzz/run-smoke.sh
echo "== static build: runs without DPDK's shared libraries"
cargo build --release --features static-dpdk --target-dir target/static --quiet
if ldd target/static/release/mplb | grep -q librte_; then
    echo "static build still links DPDK shared libraries" >&2
    exit 1
fi
target/static/release/mplb run --config configs/demo.toml --duration 1 | grep -q "mbufs in use: 0 at start, 0 at end"
echo "== Debian package: builds, installs, its unit verifies, check-config, removes cleanly"
./scripts/test-package.sh
echo "== all tests passed"
