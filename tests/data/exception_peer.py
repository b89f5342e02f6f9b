#!/usr/bin/env python3
"""Both ends of the traffic of tests/exception_path.rs: run in mplb's
network namespace (the services on its kernel interface) or in the peer's.
Standard library only. Every wait is bounded; failures exit non-zero.

  serve tcp|udp ADDR PORT
      answers one TCP connection or one UDP datagram on ADDR:PORT with the
      bytes received, upper-cased (UDP with TTL / hop limit 255, as BFD);
      prints "ready" once bound.
  ask tcp|udp ADDR PORT TEXT
      sends TEXT (UDP with TTL / hop limit 255) and prints the answer.
  ping ADDR
      one ICMP / ICMPv6 echo request (raw socket); prints "reply" if
      answered within 2 s.
  vip-udp IFACE VIP PORT BACKEND_MAC
      sends a UDP datagram to VIP:PORT and prints "forwarded" once a frame
      to BACKEND_MAC carrying it shows up on IFACE (within 2 s).
"""
import socket
import struct
import sys
import time

TIMEOUT = 5.0


def family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def set_ttl_255(s, fam):
    if fam == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 255)
    else:
        s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 255)


def serve(kind, addr, port):
    fam = family(addr)
    if kind == "tcp":
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((addr, port))
        s.listen(1)
        s.settimeout(TIMEOUT * 2)
        print("ready", flush=True)
        c, _ = s.accept()
        c.settimeout(TIMEOUT)
        c.sendall(c.recv(1000).upper())
        c.close()
    else:
        s = socket.socket(fam, socket.SOCK_DGRAM)
        set_ttl_255(s, fam)
        s.bind((addr, port))
        s.settimeout(TIMEOUT * 2)
        print("ready", flush=True)
        data, peer = s.recvfrom(1000)
        s.sendto(data.upper(), peer)


def ask(kind, addr, port, text):
    fam = family(addr)
    if kind == "tcp":
        s = socket.create_connection((addr, port), timeout=TIMEOUT)
        s.sendall(text.encode())
        print(s.recv(1000).decode())
        return
    s = socket.socket(fam, socket.SOCK_DGRAM)
    set_ttl_255(s, fam)
    s.settimeout(1.0)
    for _ in range(int(TIMEOUT)):
        s.sendto(text.encode(), (addr, port))
        try:
            print(s.recv(1000).decode())
            return
        except socket.timeout:
            continue
    sys.exit("no answer")


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ping(addr):
    fam = family(addr)
    if fam == socket.AF_INET6:
        s = socket.socket(fam, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
        request, reply = 128, 129
    else:
        s = socket.socket(fam, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        request, reply = 8, 0
    ident = 0x4D50
    msg = struct.pack("!BBHHH", request, 0, 0, ident, 1) + b"mplb"
    if fam == socket.AF_INET:
        msg = msg[:2] + struct.pack("!H", checksum(msg)) + msg[4:]
    # IPv6: the kernel fills the checksum of raw ICMPv6 sockets.
    s.settimeout(0.5)
    deadline = time.monotonic() + 2
    s.sendto(msg, (addr, 0))
    while time.monotonic() < deadline:
        try:
            data, _ = s.recvfrom(2000)
        except socket.timeout:
            continue
        icmp = data[20:] if fam == socket.AF_INET else data
        ty, _, _, got_id = struct.unpack("!BBHH", icmp[:6])
        if ty == reply and got_id == ident:
            print("reply")
            return
    sys.exit("no echo reply")


def vip_udp(iface, vip, port, backend_mac):
    want = bytes(int(x, 16) for x in backend_mac.split(":"))
    sniff = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    sniff.bind((iface, 0))
    sniff.settimeout(0.2)
    s = socket.socket(family(vip), socket.SOCK_DGRAM)
    deadline = time.monotonic() + 2
    s.sendto(b"to-the-vip", (vip, port))
    while time.monotonic() < deadline:
        try:
            frame = sniff.recv(4000)
        except socket.timeout:
            continue
        if frame[:6] == want and frame.endswith(b"to-the-vip"):
            print("forwarded")
            return
    sys.exit("nothing forwarded to the backend")


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "serve":
        serve(args[0], args[1], int(args[2]))
    elif cmd == "ask":
        ask(args[0], args[1], int(args[2]), args[3])
    elif cmd == "ping":
        ping(args[0])
    elif cmd == "vip-udp":
        vip_udp(args[0], args[1], int(args[2]), args[3])
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
