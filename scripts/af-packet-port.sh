#!/usr/bin/env bash
# Prepares a kernel interface to be mplb's DPDK port through net_af_packet
# (a VM's virtio NIC, a veth): DPDK then reads and writes the interface's
# frames, and the kernel must keep out of the way, or it answers ARP and
# neighbour solicitations for its own addresses, sends router solicitations
# and DAD probes, resets TCP connections it does not know, or forwards
# packets to the VIPs itself; and offloads must be off, or the kernel hands
# DPDK coalesced (GRO) super-frames and frames with unfinished checksums.
#
#   scripts/af-packet-port.sh IFACE          set the interface up for mplb
#   scripts/af-packet-port.sh --check IFACE  say what is wrong; exit 1 if anything
#
# Sets: no IPv4 address, IPv6 off (disable_ipv6), arp_ignore 8 (never answer
# ARP on it), forwarding 0, rp_filter 1 (strict: no route leads out of it,
# so the kernel takes in nothing that arrives on it: with an exception path
# the host holds mplb's addresses on the kernel interface, and the weak host
# model would otherwise accept each frame twice, from the port and from
# mplb), offloads off (rx/tx checksum, TSO, GSO, GRO, LRO), link up. Run it again after the interface is recreated. Needs root,
# iproute2 and ethtool.
set -euo pipefail

check=0
if [ "${1:-}" = "--check" ]; then
    check=1
    shift
fi
iface="${1:-}"
if [ -z "$iface" ] || [ "$#" -ne 1 ]; then
    echo "usage: $0 [--check] IFACE" >&2
    exit 2
fi
if [ ! -e "/sys/class/net/$iface" ]; then
    echo "$iface: no such interface" >&2
    exit 1
fi
command -v ethtool >/dev/null || { echo "ethtool is needed (apt-get install ethtool)" >&2; exit 1; }

# The offloads that must be off, as ethtool -k names them.
OFFLOADS=(rx-checksumming tx-checksumming tcp-segmentation-offload
          generic-segmentation-offload generic-receive-offload large-receive-offload)

problems() {
    local v
    if ip -4 -o addr show dev "$iface" | grep -q .; then
        echo "has IPv4 addresses ($(ip -4 -o addr show dev "$iface" | awk '{print $4}' | tr '\n' ' ')): the kernel answers for them; mplb's own addresses go in [[port]] ipv4"
    fi
    v=$(sysctl -n "net.ipv6.conf.$iface.disable_ipv6" 2>/dev/null || echo 1)
    [ "$v" = 1 ] || echo "IPv6 is on (net.ipv6.conf.$iface.disable_ipv6 = $v): the kernel sends router solicitations and answers ND"
    v=$(sysctl -n "net.ipv4.conf.$iface.arp_ignore")
    [ "$v" = 8 ] || echo "net.ipv4.conf.$iface.arp_ignore = $v: the kernel answers ARP on it for the host's other addresses (want 8)"
    v=$(sysctl -n "net.ipv4.conf.$iface.forwarding")
    [ "$v" = 0 ] || echo "net.ipv4.conf.$iface.forwarding = $v: the kernel may forward VIP traffic itself (want 0)"
    v=$(sysctl -n "net.ipv4.conf.$iface.rp_filter")
    [ "$v" = 1 ] || echo "net.ipv4.conf.$iface.rp_filter = $v: the kernel takes in IPv4 frames for the host's addresses that arrive on it (want 1)"
    local o state
    for o in "${OFFLOADS[@]}"; do
        state=$(ethtool -k "$iface" 2>/dev/null | awk -v o="$o:" '$1 == o { print $2 }')
        [ "$state" = on ] && echo "offload $o is on"
    done
    (( $(cat "/sys/class/net/$iface/flags") & 1 )) || echo "the link is down (ip link set $iface up)"
    return 0
}

if [ "$check" = 0 ]; then
    ip -4 addr flush dev "$iface"
    sysctl -qw "net.ipv6.conf.$iface.disable_ipv6=1"
    sysctl -qw "net.ipv4.conf.$iface.arp_ignore=8"
    sysctl -qw "net.ipv4.conf.$iface.forwarding=0"
    sysctl -qw "net.ipv4.conf.$iface.rp_filter=1"
    # Each offload on its own: a driver that cannot change one (fixed) must
    # not stop the others.
    for o in rx tx tso gso gro lro; do ethtool -K "$iface" "$o" off >/dev/null 2>&1 || true; done
    ip link set "$iface" up
fi
found=$(problems)
if [ -n "$found" ]; then
    echo "$iface is not ready for mplb's net_af_packet port:"
    sed 's/^/  - /' <<<"$found"
    exit 1
fi
echo "$iface is ready for mplb's net_af_packet port (no kernel address, IPv6 off, arp_ignore 8, forwarding 0, rp_filter 1, offloads off)"
