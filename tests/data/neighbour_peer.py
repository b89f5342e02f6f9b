#!/usr/bin/env python3
"""The backend side of tests/neighbours_e2e.rs, run inside the backend's
network namespace on its veth end. Standard library only (raw AF_PACKET).

  send-syns IFACE LB_MAC VIP4 VIP6 COUNT
      sends COUNT TCP SYNs to VIP4:80 and COUNT to [VIP6]:80 (from client
      addresses off the segment) to mplb's port MAC, and prints, as one JSON
      list, every frame to a VIP that comes back within 2 s (what mplb
      forwarded): {"dst": mac, "src": mac, "vip": address}.
  garp IFACE MAC IP
      announces IP at MAC (a gratuitous ARP request), as a host whose NIC
      was replaced would.
"""
import ipaddress
import json
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


def mac_bytes(s):
    return bytes(int(x, 16) for x in s.split(":"))


def mac_text(b):
    return ":".join(f"{x:02x}" for x in b)


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def tcp_syn(sport):
    # No options; the checksum is left 0 (mplb does not verify TCP checksums
    # and the backend's kernel never sees these frames as its own).
    return struct.pack("!HHIIBBHHH", sport, 80, 1, 0, 5 << 4, 0x02, 65535, 0, 0)


def syn4(src_mac, dst_mac, client, vip, sport):
    seg = tcp_syn(sport)
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(seg), sport, 0x4000, 64, 6, 0,
                      ipaddress.IPv4Address(client).packed, ipaddress.IPv4Address(vip).packed)
    hdr = hdr[:10] + struct.pack("!H", checksum(hdr)) + hdr[12:]
    return dst_mac + src_mac + b"\x08\x00" + hdr + seg


def syn6(src_mac, dst_mac, client, vip, sport):
    seg = tcp_syn(sport)
    hdr = struct.pack("!IHBB16s16s", 6 << 28, len(seg), 6, 64,
                      ipaddress.IPv6Address(client).packed, ipaddress.IPv6Address(vip).packed)
    return dst_mac + src_mac + b"\x86\xdd" + hdr + seg


def send_syns(iface, lb_mac, vip4, vip6, count):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((iface, 0))
    ours = s.getsockname()[4]
    lb = mac_bytes(lb_mac)
    for i in range(count):
        s.send(syn4(ours, lb, "198.18.8.2", vip4, 40000 + i))
        s.send(syn6(ours, lb, "fd00:8::2", vip6, 40000 + i))
    vips = {ipaddress.IPv4Address(vip4).packed: vip4, ipaddress.IPv6Address(vip6).packed: vip6}
    seen = []
    s.settimeout(0.2)
    end = time.monotonic() + 2.0
    while time.monotonic() < end:
        try:
            frame, addr = s.recvfrom(2048)
        except socket.timeout:
            continue
        if addr[2] == PACKET_OUTGOING or len(frame) < 54:
            continue
        ethertype = frame[12:14]
        if ethertype == b"\x08\x00":
            dst = frame[30:34]
        elif ethertype == b"\x86\xdd":
            dst = frame[38:54]
        else:
            continue
        if dst in vips:
            seen.append({"dst": mac_text(frame[0:6]), "src": mac_text(frame[6:12]), "vip": vips[dst]})
    print(json.dumps(seen))


def garp(iface, mac, ip):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((iface, 0))
    m, a = mac_bytes(mac), ipaddress.IPv4Address(ip).packed
    arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, m, a, b"\0" * 6, a)
    frame = b"\xff" * 6 + m + b"\x08\x06" + arp
    s.send(frame + b"\0" * (60 - len(frame)))


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "send-syns":
        send_syns(args[0], args[1], args[2], args[3], int(args[4]))
    elif cmd == "garp":
        garp(*args)
    else:
        sys.exit(f"unknown command {cmd}")
