#!/usr/bin/env python3
"""Ground-truth check for the golden pcaps in this directory.

Reads every pcap with a small standard-library parser (classic pcap, Ethernet, IPv4/IPv6,
TCP options), and checks what the load balancer's tests rely on:

  * MPTCP v1 token = top 32 bits of SHA-256(key as 8 big-endian bytes) (RFC 8684 §3.2);
  * the receiver's key in the client's third ACK equals the key of the server's SYN-ACK;
  * the token in an MP_JOIN SYN sent to the VIP equals token(server key from the third ACK);
  * plain-TCP captures carry no option of kind 30; the fallback capture has MP_CAPABLE on
    the SYN only.

If tshark is installed, its own decoding (sendkey/recvkey/recvtok/mptcp.expected_token) is
compared as well. Prints one PASS/FAIL line per check and exits 1 on any FAIL.
Usage: python3 tests/data/check_tokens.py [pcap ...]
"""
import hashlib
import os
import shutil
import struct
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
VIPS = {"198.18.0.10", "fd00:18::10"}
MPTCP_KIND = 30
SYN, ACK, FIN, RST = 0x02, 0x10, 0x01, 0x04


def token_of(key):
    return int.from_bytes(hashlib.sha256(key.to_bytes(8, "big")).digest()[:4], "big")


def idsn_of(key):
    return int.from_bytes(hashlib.sha256(key.to_bytes(8, "big")).digest()[24:], "big")


def read_pcap(path):
    with open(path, "rb") as f:
        data = f.read()
    magic = data[:4]
    if magic == b"\xd4\xc3\xb2\xa1":
        e = "<"
    elif magic == b"\xa1\xb2\xc3\xd4":
        e = ">"
    else:
        raise ValueError(f"{path}: not a classic microsecond pcap")
    _, _, _, _, _, linktype = struct.unpack(e + "HHiIII", data[4:24])
    if linktype != 1:
        raise ValueError(f"{path}: link type {linktype}, expected 1 (Ethernet)")
    off, n = 24, 0
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack(e + "IIII", data[off:off + 16])
        off += 16
        n += 1
        yield n, data[off:off + incl]
        off += incl


def ip_str(b):
    if len(b) == 4:
        return ".".join(str(x) for x in b)
    import ipaddress
    return str(ipaddress.IPv6Address(b))


def parse_frame(frame):
    """Return dict(src, dst, sport, dport, flags, opts=[(kind, bytes)], plen) or None."""
    etype = struct.unpack("!H", frame[12:14])[0]
    p = frame[14:]
    if etype == 0x0800:
        ihl = (p[0] & 0x0F) * 4
        if p[9] != 6:
            return None
        src, dst, seg = p[12:16], p[16:20], p[ihl:struct.unpack("!H", p[2:4])[0]]
    elif etype == 0x86DD:
        if p[6] != 6:  # no extension headers in these captures
            return None
        src, dst = p[8:24], p[24:40]
        seg = p[40:40 + struct.unpack("!H", p[4:6])[0]]
    else:
        return None
    sport, dport = struct.unpack("!HH", seg[:4])
    doff = (seg[12] >> 4) * 4
    flags = seg[13]
    opts, i, raw = [], 20, seg[:doff]
    while i < len(raw):
        kind = raw[i]
        if kind == 0:
            break
        if kind == 1:
            i += 1
            continue
        if i + 1 >= len(raw) or raw[i + 1] < 2 or i + raw[i + 1] > len(raw):
            raise ValueError("malformed TCP option")
        opts.append((kind, raw[i:i + raw[i + 1]]))
        i += raw[i + 1]
    return dict(src=ip_str(src), dst=ip_str(dst), sport=sport, dport=dport,
                flags=flags, opts=opts, plen=len(seg) - doff)


def mptcp_opts(pkt):
    return [o for k, o in pkt["opts"] if k == MPTCP_KIND]


def decode_mptcp(o):
    sub = o[2] >> 4
    d = {"subtype": sub, "len": len(o)}
    if sub == 0:
        d["version"] = o[2] & 0x0F
        d["flags"] = o[3]
        if len(o) >= 12:
            d["sendkey"] = int.from_bytes(o[4:12], "big")
        if len(o) >= 20:
            d["recvkey"] = int.from_bytes(o[12:20], "big")
    elif sub == 1 and len(o) == 12:  # MP_JOIN SYN
        d["backup"] = o[2] & 0x01
        d["addr_id"] = o[3]
        d["token"] = int.from_bytes(o[4:8], "big")
        d["nonce"] = int.from_bytes(o[8:12], "big")
    elif sub == 2:
        fl, i = o[3], 4
        d["flags"] = fl
        if fl & 0x01:  # A: data ACK present, a (0x02): 8 bytes
            w = 8 if fl & 0x02 else 4
            d["data_ack"] = int.from_bytes(o[i:i + w], "big")
            i += w
        if fl & 0x04:  # M: mapping present, m (0x08): 8-byte DSN
            w = 8 if fl & 0x08 else 4
            d["dsn"], d["dsn_len"] = int.from_bytes(o[i:i + w], "big"), w
            d["ssn"] = int.from_bytes(o[i + w:i + w + 4], "big")
            d["dll"] = int.from_bytes(o[i + w + 4:i + w + 6], "big")
        d["data_fin"] = bool(fl & 0x10)
    elif sub == 3:
        d["echo"] = o[2] & 0x01
        d["addr_id"] = o[3]
    return d


RESULTS = []


def check(ok, what):
    RESULTS.append(ok)
    print(("PASS " if ok else "FAIL ") + what)


def tshark_fields(path, fields):
    if not shutil.which("tshark"):
        return None
    cmd = ["tshark", "-r", path, "-T", "fields", "-E", "separator=|"]
    for f in fields:
        cmd += ["-e", f]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    return [line.split("|") for line in out.splitlines()]


def check_file(path):
    name = os.path.basename(path)
    pkts = [(n, parse_frame(f)) for n, f in read_pcap(path)]
    pkts = [(n, p) for n, p in pkts if p]
    print(f"== {name}: {len(pkts)} TCP frames")
    any_mptcp = any(mptcp_opts(p) for _, p in pkts)

    if name.startswith("tcp_"):
        check(not any_mptcp, f"{name}: no MPTCP option in a plain-TCP capture")
        return

    syns = [(n, p) for n, p in pkts if p["flags"] & SYN and not p["flags"] & ACK
            and p["dst"] in VIPS]
    first = syns[0][1]
    mpc_syn = [decode_mptcp(o) for o in mptcp_opts(first) if o[2] >> 4 == 0]
    check(len(mpc_syn) == 1 and mpc_syn[0]["version"] == 1 and mpc_syn[0]["len"] == 4,
          f"{name}: frame {syns[0][0]} is an MP_CAPABLE v1 SYN without key")

    conn = (first["src"], first["sport"], first["dst"], first["dport"])
    synack_key = None
    third = None
    for n, p in pkts:
        fwd = (p["src"], p["sport"], p["dst"], p["dport"]) == conn
        rev = (p["dst"], p["dport"], p["src"], p["sport"]) == conn
        if rev and p["flags"] & SYN:
            for o in mptcp_opts(p):
                d = decode_mptcp(o)
                if d["subtype"] == 0:
                    synack_key = d["sendkey"]
                    print(f"     frame {n}: SYN-ACK MP_CAPABLE flags=0x{d['flags']:02x} "
                          f"server key={d['sendkey']}")
        if fwd and not p["flags"] & SYN and third is None:
            third = (n, p)

    if name.startswith("mptcp_fallback"):
        check(synack_key is None, f"{name}: SYN-ACK has no MP_CAPABLE")
        later = [n for n, p in pkts if n != syns[0][0] and mptcp_opts(p)]
        check(not later, f"{name}: no MPTCP option after the SYN (fallback to TCP)")
        return

    n3, p3 = third
    caps = [decode_mptcp(o) for o in mptcp_opts(p3) if o[2] >> 4 == 0]
    check(len(caps) == 1 and caps[0]["len"] in (20, 22, 24),
          f"{name}: frame {n3} is the third ACK with MP_CAPABLE (len {caps[0]['len'] if caps else '-'})")
    ckey, skey = caps[0]["sendkey"], caps[0]["recvkey"]
    check(skey == synack_key, f"{name}: receiver key in third ACK == SYN-ACK key")
    print(f"     client key={ckey} (0x{ckey:016x}) token=0x{token_of(ckey):08x} "
          f"idsn=0x{idsn_of(ckey):016x}")
    print(f"     server key={skey} (0x{skey:016x}) token=0x{token_of(skey):08x} "
          f"({token_of(skey)}) idsn=0x{idsn_of(skey):016x}")

    # The data sequence space starts at IDSN + 1 (IDSN = low 64 bits of SHA-256(key)).
    for direction, key, match in (("client", ckey, conn), ("server", skey, None)):
        for n, p in pkts:
            t = (p["src"], p["sport"], p["dst"], p["dport"])
            if not p["plen"] or (t != conn if match else t != (conn[2], conn[3], conn[0], conn[1])):
                continue
            ds = [decode_mptcp(o) for o in mptcp_opts(p)]
            dss = [d for d in ds if d["subtype"] == 2 and "dsn" in d]
            if dss:
                want = (idsn_of(key) + 1) % (1 << (8 * dss[0]["dsn_len"]))
                check(dss[0]["dsn"] == want,
                      f"{name}: first {direction} data (frame {n}) DSN {dss[0]['dsn']} == IDSN+1")
            else:
                print(f"     frame {n}: first {direction} data carries MP_CAPABLE "
                      f"len {ds[0]['len'] if ds else '-'} (DSN implicitly IDSN+1)")
            break

    for n, p in pkts:
        for o in mptcp_opts(p):
            d = decode_mptcp(o)
            if d["subtype"] == 3:
                print(f"     frame {n}: ADD_ADDR id={d['addr_id']} echo={d['echo']} len={d['len']} "
                      f"{p['src']} -> {p['dst']}")
            if d["subtype"] == 1 and "token" in d:
                print(f"     frame {n}: MP_JOIN SYN {p['src']}:{p['sport']} -> "
                      f"{p['dst']}:{p['dport']} token=0x{d['token']:08x} ({d['token']}) "
                      f"addr_id={d['addr_id']} backup={d['backup']}")
                check(p["dst"] in VIPS, f"{name}: MP_JOIN SYN (frame {n}) goes to the VIP")
                check(d["token"] == token_of(skey),
                      f"{name}: MP_JOIN token 0x{d['token']:08x} == sha256 token of server key")

    if name.startswith("mptcp_join"):
        joins = [n for n, p in pkts for o in mptcp_opts(p)
                 if o[2] >> 4 == 1 and len(o) == 12]
        check(len(joins) >= 1, f"{name}: holds an MP_JOIN SYN")

    rows = tshark_fields(path, ["frame.number", "tcp.options.mptcp.recvkey",
                                "tcp.options.mptcp.recvtok", "mptcp.expected_token"])
    if rows is not None:
        r3 = [r for r in rows if r[0] == str(n3)][0]
        check(r3[1] == str(skey), f"{name}: tshark agrees on the server key")
        for r in rows:
            if r[2]:
                check(int(r[2]) == token_of(skey),
                      f"{name}: tshark recvtok in frame {r[0]} == sha256 token of server key")


def main():
    paths = sys.argv[1:] or sorted(
        os.path.join(HERE, f) for f in os.listdir(HERE) if f.endswith(".pcap"))
    for p in paths:
        try:
            check_file(p)
        except Exception as e:  # a broken fixture is a failure, not a crash
            check(False, f"{os.path.basename(p)}: {type(e).__name__}: {e}")
    print(f"check_tokens: {sum(RESULTS)} PASS / {len(RESULTS) - sum(RESULTS)} FAIL")
    return 0 if all(RESULTS) else 1


if __name__ == "__main__":
    sys.exit(main())
