#!/usr/bin/env bash
# Issue 13, item 1, end to end: plain-TCP flows that start together in a
# lightly loaded flow table are all pinned. mplb-gen (memif server) sends
# FLOWS plain flows round-robin at RATE pps to `mplb run` (memif client) with
# a CAPACITY-entry flow table; prints the generator's checks and mplb's
# flow-table counters at the end of the run (`mplb stats`).
#
# With RELOADS=N, N reloads spread over the run from its 3rd second, each
# changing backend a's weight (1 <-> 3), so that Maglev moves flows that are
# not pinned.
#
# Usage: bench/flow-pinning.sh   Env: BIN (default target/release), FLOWS
# (20000), RATE (200000), CAPACITY (65536), SECS (20), RELOADS (0),
# OUT (/tmp/flow-pinning)
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${BIN:-target/release}"
flows="${FLOWS:-20000}" rate="${RATE:-200000}" cap="${CAPACITY:-65536}" secs="${SECS:-20}"
out="${OUT:-/tmp/flow-pinning}" reloads="${RELOADS:-0}"
rm -rf "$out" && mkdir -p "$out"
sock="$out/memif.sock" ctl="$out/ctl.sock"
# The VIPs are those of the generator smoke test (tests/fixtures/gen_vips.toml),
# backend a given weight $1.
write_config() {
cat >"$out/lb.toml" <<TOML
[dpdk]
eal_args = ["--vdev=net_memif0,role=client,socket=$sock,socket-abstract=no", "--no-huge", "-m", "512",
            "--no-shconf", "--no-pci", "--file-prefix=fp-lb", "--log-level=pmd.net.memif:warning"]
[workers]
lcores = [1]
[[port]]
name = "lan"
device = "net_memif0"
ipv4 = ["198.18.0.2"]
ipv6 = ["fd00:18::2"]
gateway_mac = "02:00:00:00:00:fe"
[flow_table]
capacity = $cap
[health]
kind = "none"
[management]
socket = "$ctl"
listen = "127.0.0.1:0"
TOML
awk -v w="$1" '{ print } /mac = "02:00:00:00:01:11"/ { print "  weight = " w }' \
    tests/fixtures/gen_vips.toml >>"$out/lb.toml"
}
write_config 1
"$bin/mplb-gen" --port net_memif0 \
    --eal "--vdev=net_memif0,role=server,socket=$sock,socket-abstract=no --no-huge -m 512 --no-shconf --no-pci --file-prefix=fp-gen -l 0 --log-level=pmd.net.memif:warning" \
    --lb-config "$out/lb.toml" --expect mplb --mix plain --flows "$flows" --rate "$rate" \
    --warmup 1 --duration "$secs" --progress 0 --json "$out/gen.json" --linger 30 \
    >"$out/gen.log" 2>&1 &
gen=$!
while [ ! -S "$sock" ]; do sleep 0.1; done
"$bin/mplb" run --config "$out/lb.toml" --duration "$((secs + 4))" >"$out/mplb.log" 2>&1 &
lb=$!
if [ "$reloads" -gt 0 ]; then
    gap="$(python3 -c "print(($secs - 3) / $reloads)")"
    sleep 3
    for i in $(seq "$reloads"); do
        write_config $((i % 2 == 1 ? 3 : 1))
        "$bin/mplb" reload --config "$out/lb.toml" >>"$out/reload.log" 2>&1 || true
        sleep "$gap"
    done
    sleep 2
else
    sleep "$((secs + 2))"
fi
"$bin/mplb" stats --config "$out/lb.toml" >"$out/stats.txt" 2>&1 || true
wait "$lb" || true
wait "$gen" || true
python3 - "$out" <<'PY'
import json, sys, re
out = sys.argv[1]
r = json.load(open(f"{out}/gen.json"))
print("gen: tx", r["tx_packets"], "lost", r["lost"], "check", r["check"])
print(open(f"{out}/stats.txt").read())
PY
