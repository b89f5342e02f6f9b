#!/usr/bin/env bash
# The demo: installs what is missing, builds mplb, and runs it in a lab of
# network namespaces with real Linux MPTCP clients and backends
# (lab/demo.sh): an MPTCP connection whose second path bypasses the
# load balancer, then a download that survives the load balancer being
# killed, explained step by step with live counters. No NIC needed; the lab
# is removed at exit (also on Ctrl-C). Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$(id -u)" = 0 ] || { echo "demo: run as root (network namespaces, DPDK)" >&2; exit 1; }
./scripts/setup-host.sh
echo "demo: building mplb (release)"
cargo build --release --quiet
MPLB="$(realpath "${CARGO_TARGET_DIR:-target}/release/mplb")" exec lab/demo.sh
