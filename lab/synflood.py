#!/usr/bin/env python3
"""Spoofed TCP SYNs to a VIP, for the lab (its namespaces only).

Sends SYNs from random source addresses in --from (a prefix inside
198.18.0.0/15 or fd00::/8) and random source ports to --addr:--port, as
whole Ethernet frames out --iface to --dst-mac (mplb's port: the router's
next hop for the VIP) on a packet socket, so no kernel route or source
check is involved. Bounded in count, time and rate; prints one JSON line
with what it sent. Only SYNs: mplb must create no state for any of them."""
import argparse
import ipaddress
import json
import random
import socket
import struct
import time


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def tcp_syn(src, dst, sport, dport, seq, pseudo):
    hdr = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4, 0x02, 64240, 0, 0)
    c = checksum(pseudo + hdr)
    return hdr[:16] + struct.pack("!H", c) + hdr[18:]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--addr", required=True, help="the VIP")
    p.add_argument("--port", type=int, default=80)
    p.add_argument("--from", dest="prefix", required=True, help="spoofed source prefix")
    p.add_argument("--count", type=int, default=100_000, help="at most this many SYNs")
    p.add_argument("--seconds", type=float, default=10.0, help="for at most this long")
    p.add_argument("--pps", type=int, default=20_000, help="at most this rate")
    p.add_argument("--iface", required=True, help="the interface to send on")
    p.add_argument("--dst-mac", required=True, help="the next hop's MAC (mplb's port)")
    a = p.parse_args()

    net = ipaddress.ip_network(a.prefix)
    lab = [ipaddress.ip_network("198.18.0.0/15"), ipaddress.ip_network("fd00::/8")]
    if not any(net.version == n.version and net.subnet_of(n) for n in lab):
        raise SystemExit(f"{net} is outside the lab's ranges")
    dst = ipaddress.ip_address(a.addr)
    v6 = dst.version == 6
    with open(f"/sys/class/net/{a.iface}/address") as f:
        src_mac = bytes.fromhex(f.read().strip().replace(":", ""))
    dst_mac = bytes.fromhex(a.dst_mac.replace(":", ""))
    eth = dst_mac + src_mac + struct.pack("!H", 0x86DD if v6 else 0x0800)
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((a.iface, 0))
    rnd = random.Random(7)
    sent = 0
    t0 = time.monotonic()
    deadline = t0 + a.seconds
    while sent < a.count and time.monotonic() < deadline:
        src = net[rnd.randrange(1, net.num_addresses - 1)]
        sport = rnd.randrange(1024, 65535)
        if v6:
            pseudo = src.packed + dst.packed + struct.pack("!I3xB", 20, 6)
            seg = tcp_syn(src, dst, sport, a.port, rnd.getrandbits(32), pseudo)
            ip = struct.pack("!IHBB16s16s", 6 << 28, 20, 6, 64, src.packed, dst.packed)
        else:
            pseudo = src.packed + dst.packed + struct.pack("!xBH", 6, 20)
            seg = tcp_syn(src, dst, sport, a.port, rnd.getrandbits(32), pseudo)
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40, rnd.getrandbits(16), 0, 64, 6, 0, src.packed, dst.packed)
            ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
        s.send(eth + ip + seg)
        sent += 1
        # pace: never ahead of --pps
        ahead = sent / a.pps - (time.monotonic() - t0)
        if ahead > 0:
            time.sleep(ahead)
    print(json.dumps({"event": "synflood", "sent": sent, "seconds": round(time.monotonic() - t0, 3)}), flush=True)


if __name__ == "__main__":
    main()
