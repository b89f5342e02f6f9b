#!/usr/bin/env bash
# Installs what is missing, builds mplb, and runs it on the demo config:
# DPDK's net_pcap device feeds it ARP and ping requests from a pcap file and
# records its answers. No NIC needed. Run as root.
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
echo "== frames mplb sent (from $out):"
tcpdump -nr "$out" 2>/dev/null
