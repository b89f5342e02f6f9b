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
echo "== all tests passed"
