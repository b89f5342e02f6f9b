#!/usr/bin/env bash
# Installs what is missing, builds mplb, and runs it on the demo config:
# DPDK's net_pcap device feeds it ARP and ping requests and the client→VIP
# frames of real Linux MPTCP and TCP connections from a pcap file, and records
# what it sends: answers, and frames forwarded to backends. No NIC needed.
# Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup-host.sh
cargo build --release --quiet

bin=target/release/mplb
out=/tmp/mplb-demo-output.pcap
rm -f "$out"
"$bin" --version
"$bin" check-config configs/demo.toml
echo
echo "== running mplb for 3 seconds on configs/demo.toml"
"$bin" run --config configs/demo.toml --duration 3 2> >(grep -v -e '^EAL: ' -e '^TELEMETRY: ' >&2)
echo
echo "== frames mplb sent (from $out), with the backend's MAC as destination:"
tcpdump -enr "$out" 2>/dev/null | cut -c 17-
