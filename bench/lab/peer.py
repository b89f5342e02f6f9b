#!/usr/bin/env python3
"""MPTCP peers for the lab.

server: listens on an MPTCP socket; each connection sends one line
        "SEND <bytes> <seed> <pace_ms>\\n" and gets <bytes> pseudo-random bytes
        (random.Random(seed)) in 64 KiB chunks, <pace_ms> apart; a connection
        that sends nothing (a health check) is just closed.
client: connects to the VIP over MPTCP, asks for the bytes, and checks their
        SHA-256 against the same generator's. Prints one JSON line.
"""
import argparse
import hashlib
import json
import random
import socket
import sys
import threading
import time

IPPROTO_MPTCP = getattr(socket, "IPPROTO_MPTCP", 262)
CHUNK = 64 * 1024


def payload(n, seed):
    return random.Random(seed).randbytes(n)


def serve_one(conn, log):
    try:
        conn.settimeout(30)
        line = b""
        while not line.endswith(b"\n"):
            b = conn.recv(256)
            if not b:
                return
            line += b
        cmd, n, seed, pace = line.split()
        assert cmd == b"SEND"
        data = payload(int(n), int(seed))
        pace = int(pace) / 1000.0
        for off in range(0, len(data), CHUNK):
            conn.sendall(data[off:off + CHUNK])
            if pace:
                time.sleep(pace)
        print(f"sent {len(data)} sha256={hashlib.sha256(data).hexdigest()}", file=log, flush=True)
        conn.shutdown(socket.SHUT_WR)
        # wait for the client's close so the last bytes are not reset
        while conn.recv(4096):
            pass
    except Exception as e:  # one bad connection must not stop the server
        print(f"connection error: {e!r}", file=log, flush=True)
    finally:
        conn.close()


def server(a):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, IPPROTO_MPTCP)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((a.addr, a.port))
    s.listen(64)
    print("listening", flush=True)
    while True:
        c, _ = s.accept()
        threading.Thread(target=serve_one, args=(c, sys.stdout), daemon=True).start()


def client(a):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 0 if a.plain else IPPROTO_MPTCP)
    s.settimeout(a.timeout)
    if a.src:
        s.bind((a.src, a.sport))
    t0 = time.monotonic()
    s.connect((a.addr, a.port))
    s.sendall(f"SEND {a.bytes} {a.seed} {a.pace_ms}\n".encode())
    h = hashlib.sha256()
    got = 0
    first = None
    longest_gap = 0.0
    last = time.monotonic()
    while True:
        b = s.recv(1 << 20)
        now = time.monotonic()
        if not b:
            break
        if first is None:
            first = now
            print(json.dumps({"event": "first_bytes", "t": round(now - t0, 3)}), flush=True)
        longest_gap = max(longest_gap, now - last)
        last = now
        h.update(b)
        if got // a.progress != (got + len(b)) // a.progress:
            print(json.dumps({"event": "progress", "received": got + len(b),
                              "wall": round(time.time(), 3)}), flush=True)
        got += len(b)
        if a.linger and got >= a.bytes:
            time.sleep(a.linger)
    s.close()
    want = hashlib.sha256(payload(a.bytes, a.seed)).hexdigest()
    ok = got == a.bytes and h.hexdigest() == want
    print(json.dumps({
        "event": "done", "ok": ok, "received": got, "expected": a.bytes,
        "sha256": h.hexdigest(), "expected_sha256": want,
        "seconds": round(time.monotonic() - t0, 3), "wall": round(time.time(), 3), "longest_gap_ms": round(longest_gap * 1000, 1),
    }), flush=True)
    return 0 if ok else 1


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["server", "client"])
    p.add_argument("--addr", required=True)
    p.add_argument("--port", type=int, default=80)
    p.add_argument("--src")
    p.add_argument("--sport", type=int, default=0)
    p.add_argument("--bytes", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--pace-ms", type=int, default=0)
    p.add_argument("--linger", type=float, default=0.0)
    p.add_argument("--timeout", type=float, default=20.0)
    p.add_argument("--plain", action="store_true", help="client: plain TCP, not MPTCP")
    p.add_argument("--progress", type=int, default=512 * 1024, help="report every N bytes")
    a = p.parse_args()
    if a.mode == "server":
        server(a)
    else:
        sys.exit(client(a))


if __name__ == "__main__":
    main()
