#!/usr/bin/env python3
"""Peers for the MPTCP lab.

server: listens on an MPTCP socket (IPv6 and IPv4 when bound to "::"); logs
        "accepted <ip> <port>" per connection. A connection sends one line
        "SEND <bytes> <seed> <pace_ms>\\n" and gets <bytes> pseudo-random bytes
        (random.Random(seed)) in 64 KiB chunks, <pace_ms> apart, then
        "sent <ip> <port> <bytes>" is logged; a connection that sends nothing
        (a health check) is just closed.
client: connects to the VIP (MPTCP unless --plain), asks for the bytes, and
        checks their SHA-256 against the same generator's. Prints JSON lines;
        the last one ("done") says whether the socket stayed MPTCP.
many:   the same for a range of source ports (one short connection each, a few
        at a time); prints one JSON summary with the failures.
lookup: asks a running mplb (control socket) which backend a new flow from
        each source port of a range would get; prints "<sport> <backend>".
pmtu:   UDP with DF to a VIP: a datagram filling 1500 bytes, then, once the
        kernel has learnt a smaller path MTU (ICMP "fragmentation needed"),
        one that fits; prints the path MTU as JSON.
"""
import argparse
import errno
import hashlib
import json
import random
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

IPPROTO_MPTCP = getattr(socket, "IPPROTO_MPTCP", 262)
TCP_IS_MPTCP = 43  # getsockopt(SOL_TCP): 1 while the socket is MPTCP, 0 after a fallback
CHUNK = 64 * 1024
LOG_LOCK = threading.Lock()


def log(line):
    with LOG_LOCK:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def payload(n, seed):
    return random.Random(seed).randbytes(n)


def family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def plain_ip(ip):
    """A v4-mapped IPv6 address as IPv4, as clients name themselves."""
    return ip[7:] if ip.startswith("::ffff:") else ip


def serve_one(conn, peer):
    ip, port = plain_ip(peer[0]), peer[1]
    try:
        conn.settimeout(30)
        line = b""
        while not line.endswith(b"\n"):
            b = conn.recv(256)
            if not b:
                return
            line += b
        cmd, n, seed, pace = line.split()
        if cmd != b"SEND":
            raise ValueError(f"bad request {line!r}")
        data = payload(int(n), int(seed))
        pace = int(pace) / 1000.0
        for off in range(0, len(data), CHUNK):
            conn.sendall(data[off:off + CHUNK])
            if pace:
                time.sleep(pace)
        log(f"sent {ip} {port} {len(data)}")
        conn.shutdown(socket.SHUT_WR)
        # wait for the client's close so the last bytes are not reset
        while conn.recv(4096):
            pass
    except Exception as e:  # one bad connection must not stop the server
        log(f"error {ip} {port} {e!r}")
    finally:
        conn.close()


def server(a):
    s = socket.socket(family(a.addr), socket.SOCK_STREAM, IPPROTO_MPTCP)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family(a.addr) == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind((a.addr, a.port))
    s.listen(256)
    log("listening")
    while True:
        c, peer = s.accept()
        log(f"accepted {plain_ip(peer[0])} {peer[1]}")
        threading.Thread(target=serve_one, args=(c, peer), daemon=True).start()


def fetch(a, sport, plain, progress=None):
    """One connection: returns (bytes received, sha256 ok, still MPTCP, seconds, longest gap)."""
    s = socket.socket(family(a.addr), socket.SOCK_STREAM, 0 if plain else IPPROTO_MPTCP)
    try:
        s.settimeout(a.timeout)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if a.src:
            s.bind((a.src, sport))
        t0 = time.monotonic()
        s.connect((a.addr, a.port))
        s.sendall(f"SEND {a.bytes} {a.seed} {a.pace_ms}\n".encode())
        h = hashlib.sha256()
        got = 0
        longest_gap = 0.0
        last = time.monotonic()
        mptcp = None
        while True:
            b = s.recv(1 << 20)
            now = time.monotonic()
            if mptcp is None:
                mptcp = bool(s.getsockopt(socket.IPPROTO_TCP, TCP_IS_MPTCP))
            if not b:
                break
            if progress and got == 0:
                progress({"event": "first_bytes", "t": round(now - t0, 3)})
            longest_gap = max(longest_gap, now - last)
            last = now
            h.update(b)
            if progress and got // a.progress != (got + len(b)) // a.progress:
                progress({"event": "progress", "received": got + len(b), "wall": round(time.time(), 3)})
            got += len(b)
            if a.linger and got >= a.bytes:
                time.sleep(a.linger)
    finally:
        s.close()
    ok = got == a.bytes and h.hexdigest() == hashlib.sha256(payload(a.bytes, a.seed)).hexdigest()
    return got, ok, mptcp, time.monotonic() - t0, longest_gap, h.hexdigest()


def client(a):
    def progress(e):
        print(json.dumps(e), flush=True)

    got, ok, mptcp, secs, gap, digest = fetch(a, a.sport, a.plain, progress)
    print(json.dumps({
        "event": "done", "ok": ok, "received": got, "expected": a.bytes, "mptcp": mptcp,
        "sha256": digest, "expected_sha256": hashlib.sha256(payload(a.bytes, a.seed)).hexdigest(),
        "seconds": round(secs, 3), "wall": round(time.time(), 3), "longest_gap_ms": round(gap * 1000, 1),
    }), flush=True)
    return 0 if ok else 1


def port_range(text):
    lo, _, hi = text.partition("-")
    return range(int(lo), int(hi or lo) + 1)


def many(a):
    t0 = time.monotonic()
    failed = []

    def one(sport):
        try:
            got, ok, _, _, _, _ = fetch(a, sport, a.plain)
            if not ok:
                failed.append({"sport": sport, "error": f"received {got} bytes, checksum mismatch or short"})
        except OSError as e:
            failed.append({"sport": sport, "error": repr(e)})

    sports = list(port_range(a.sports))
    with ThreadPoolExecutor(a.concurrency) as pool:
        list(pool.map(one, sports))
    print(json.dumps({"event": "many", "connections": len(sports), "ok": len(sports) - len(failed),
                      "failed": sorted(failed, key=lambda f: f["sport"]),
                      "seconds": round(time.monotonic() - t0, 3)}), flush=True)
    return 0 if not failed else 1


def lookup(a):
    """Batched `lookup` requests on the control socket (one request per connection)."""
    sports = list(port_range(a.sports))
    for i in range(0, len(sports), 64):
        batch = []
        for sport in sports[i:i + 64]:
            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            c.settimeout(10)
            c.connect(a.socket)
            c.sendall(f"lookup tcp {a.src} {sport} {a.addr} {a.port}\n".encode())
            batch.append((sport, c))
        for sport, c in batch:
            reply = b""
            while True:
                b = c.recv(4096)
                if not b:
                    break
                reply += b
            c.close()
            text = reply.decode(errors="replace")
            if not text.startswith("ok\n") or "-> backend " not in text:
                print(f"lookup failed for {sport}: {text.strip()}", file=sys.stderr)
                return 1
            print(sport, text.split("-> backend ", 1)[1].split()[0])
    return 0


def pmtu(a):
    """UDP datagrams without fragmentation to the VIP: first one filling a
    1500-byte IP packet, then, once an ICMP "fragmentation needed" (ICMPv6
    "packet too big") has lowered the path MTU, one that fits. Prints what
    the kernel learnt."""
    if ":" in a.addr:  # <linux/in6.h>: IPV6_MTU_DISCOVER, IPV6_PMTUDISC_DO, IPV6_MTU
        family, level, discover, do, mtu_opt, headers = socket.AF_INET6, socket.IPPROTO_IPV6, 23, 2, 24, 48
    else:  # <linux/in.h>: IP_MTU_DISCOVER, IP_PMTUDISC_DO, IP_MTU
        family, level, discover, do, mtu_opt, headers = socket.AF_INET, socket.IPPROTO_IP, 10, 2, 14, 28
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.setsockopt(level, discover, do)
    s.bind((a.src or ("::" if family == socket.AF_INET6 else "0.0.0.0"), a.sport))
    s.connect((a.addr, a.port))
    s.send(b"x" * (1500 - headers))
    # The ICMP error is reported on the connected socket as EMSGSIZE (and
    # the kernel's route to the VIP gets the new path MTU).
    deadline = time.monotonic() + a.timeout
    err = 0
    while not err and time.monotonic() < deadline:
        time.sleep(0.02)
        err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    mtu = s.getsockopt(level, mtu_opt)
    try:
        s.send(b"x" * (1500 - headers))
        big_refused = False
    except OSError as e:
        big_refused = e.errno == errno.EMSGSIZE
    s.send(b"x" * (mtu - headers))
    print(json.dumps({
        "socket_error": errno.errorcode.get(err, err),
        "pmtu": mtu,
        "full_size_refused": big_refused,
        "sent_fitting": mtu - headers,
    }))
    return 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["server", "client", "many", "lookup", "pmtu"])
    p.add_argument("--addr", required=True, help="server: address to bind; others: the VIP")
    p.add_argument("--port", type=int, default=80)
    p.add_argument("--src")
    p.add_argument("--sport", type=int, default=0)
    p.add_argument("--sports", default="0", help="many, lookup: source ports, FIRST-LAST")
    p.add_argument("--bytes", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--pace-ms", type=int, default=0)
    p.add_argument("--linger", type=float, default=0.0)
    p.add_argument("--timeout", type=float, default=20.0)
    p.add_argument("--plain", action="store_true", help="plain TCP, not MPTCP")
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--socket", help="lookup: mplb's control socket")
    p.add_argument("--progress", type=int, default=512 * 1024, help="report every N bytes")
    a = p.parse_args()
    if a.mode == "server":
        server(a)
    else:
        sys.exit({"client": client, "many": many, "lookup": lookup, "pmtu": pmtu}[a.mode](a))


if __name__ == "__main__":
    main()
