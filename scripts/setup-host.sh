#!/usr/bin/env bash
# Installs what building, running and testing mplb needs on Debian 12, and
# reserves hugepages. Idempotent: when everything is there it only checks.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    echo "setup-host: run as root (DPDK needs it to map memory and devices)" >&2
    exit 1
fi

packages=(dpdk dpdk-dev libdpdk-dev pkg-config clang libclang-dev tcpdump tshark ethtool python3 iproute2 prometheus)
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

# Hugepages for the benchmarks and bare-metal configs (the demo and the tests
# run with --no-huge and do not need them). Not fatal: containers may forbid it.
hp=/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages
if [ -w "$hp" ] && [ "$(cat "$hp")" -lt 256 ]; then
    echo 256 >"$hp" 2>/dev/null || echo "setup-host: could not reserve hugepages (continuing)" >&2
fi
if ! grep -qs hugetlbfs /proc/mounts; then
    mkdir -p /dev/hugepages
    mount -t hugetlbfs nodev /dev/hugepages 2>/dev/null || true
fi

pkg-config --atleast-version=22.11 libdpdk || {
    echo "setup-host: DPDK 22.11 development files missing after install" >&2
    exit 1
}
