#!/usr/bin/env bash
# Installs what building, running and testing mplb needs on Debian 12, and
# reserves hugepages. Idempotent: when everything is there it only checks.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    echo "setup-host: run as root (DPDK needs it to map memory and devices)" >&2
    exit 1
fi

# prometheus: promtool, for the metrics page and the alerting rules;
# systemd: systemd-analyze, to verify the packaged unit; valgrind: callgrind's
# instruction counts (bench/callgrind.sh, bench/paths, the devbench bundle);
# bird2: the BGP speaker that announces the VIPs (tests/bgp_e2e.rs, the
# fleet lab); iputils-ping: the fleet lab pings instances' ports.
packages=(dpdk dpdk-dev libdpdk-dev pkg-config clang libclang-dev tcpdump tshark ethtool python3 iproute2 prometheus iptables systemd valgrind bird2 iputils-ping)
missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup-host: installing ${missing[*]}"
    # tshark asks whether non-root users may capture: no.
    echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Hugepages (2 MiB) for the benchmarks: the generator, testpmd and mplb run
# side by side, and mplb keeps its flow tables on hugepages (10M flows take
# ~480 MiB). 3 GiB in all. The demo and most tests run with --no-huge. Not
# fatal: containers may forbid it.
HUGEPAGES=${MPLB_HUGEPAGES:-1536}
hp=/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages
if [ -w "$hp" ] && [ "$(cat "$hp")" -lt "$HUGEPAGES" ]; then
    echo "$HUGEPAGES" >"$hp" 2>/dev/null || echo "setup-host: could not reserve hugepages (continuing)" >&2
fi
if ! grep -qs hugetlbfs /proc/mounts; then
    mkdir -p /dev/hugepages
    mount -t hugetlbfs nodev /dev/hugepages 2>/dev/null || true
fi

pkg-config --atleast-version=22.11 libdpdk || {
    echo "setup-host: DPDK 22.11 development files missing after install" >&2
    exit 1
}
