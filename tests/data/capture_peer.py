#!/usr/bin/env python3
"""Tiny bounded client/server used by capture.sh to make real (MP)TCP traffic.

server: accepts up to N connections on ADDR:PORT (MPTCP or plain TCP), reads the
        request, answers REPLY bytes, waits for the peer to close, and exits after
        N connections or LIFETIME seconds, whichever comes first.
client: connects to ADDR:PORT from SRC:SPORT, sends REQ bytes, reads the reply,
        optionally lingers (so ADD_ADDR / MP_JOIN can happen), then closes with a
        FIN, or with a RST when --rst is given (SO_LINGER 0).
Every socket operation has a timeout; nothing here can hang for long.
"""
import argparse
import socket
import struct
import sys
import time

IPPROTO_MPTCP = getattr(socket, "IPPROTO_MPTCP", 262)


def family_of(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def make_socket(addr, mptcp):
    proto = IPPROTO_MPTCP if mptcp else socket.IPPROTO_TCP
    s = socket.socket(family_of(addr), socket.SOCK_STREAM, proto)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    return s


def recv_some(conn, want, deadline):
    got = b""
    while len(got) < want and time.monotonic() < deadline:
        try:
            chunk = conn.recv(want - len(got))
        except socket.timeout:
            break
        if not chunk:
            break
        got += chunk
    return got


def server(a):
    deadline = time.monotonic() + a.lifetime
    s = make_socket(a.addr, a.mptcp)
    s.bind((a.addr, a.port))
    s.listen(8)
    s.settimeout(1.0)
    print("listening", flush=True)
    served = 0
    while served < a.count and time.monotonic() < deadline:
        try:
            conn, peer = s.accept()
        except socket.timeout:
            continue
        conn.settimeout(2.0)
        try:
            req = recv_some(conn, a.req, min(deadline, time.monotonic() + 3))
            conn.sendall(b"R" * a.reply)
            # wait for the client's FIN (or RST) so the client closes first
            end = min(deadline, time.monotonic() + 3)
            while time.monotonic() < end:
                try:
                    if not conn.recv(4096):
                        break
                except (socket.timeout, ConnectionError):
                    break
            print(f"served {peer} req={len(req)}", flush=True)
        except OSError as e:
            print(f"conn error {peer}: {e}", flush=True)
        finally:
            conn.close()
        served += 1
    s.close()


def client(a):
    s = make_socket(a.addr, a.mptcp)
    s.settimeout(3.0)
    if a.src:
        s.bind((a.src, a.sport))
    s.connect((a.addr, a.port))
    s.sendall(b"Q" * a.req)
    got = recv_some(s, a.reply, time.monotonic() + 3)
    if a.linger > 0:
        time.sleep(a.linger)
    if a.rst:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    print(f"client got {len(got)} bytes", flush=True)
    return 0 if len(got) == a.reply else 1


def main():
    p = argparse.ArgumentParser()
    p.add_argument("role", choices=["server", "client"])
    p.add_argument("--addr", required=True)
    p.add_argument("--port", type=int, default=80)
    p.add_argument("--src")
    p.add_argument("--sport", type=int, default=0)
    p.add_argument("--mptcp", action="store_true")
    p.add_argument("--req", type=int, default=300)
    p.add_argument("--reply", type=int, default=3000)
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--lifetime", type=float, default=15.0)
    p.add_argument("--linger", type=float, default=0.0)
    p.add_argument("--rst", action="store_true")
    a = p.parse_args()
    if a.role == "server":
        server(a)
        return 0
    return client(a)


if __name__ == "__main__":
    sys.exit(main())
