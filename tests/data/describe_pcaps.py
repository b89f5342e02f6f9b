#!/usr/bin/env python3
"""Print a markdown table of frames per pcap, as decoded by tshark.

Usage: python3 tests/data/describe_pcaps.py            # print to stdout
       python3 tests/data/describe_pcaps.py --update    # rewrite the frame tables in README.md
The README sections between the BEGIN/END KEYS and BEGIN/END FRAMES markers are
replaced on --update.
"""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ORDER = ["mptcp_v4", "mptcp_join_v4", "mptcp_v6", "mptcp_fallback_v4", "tcp_v4", "tcp_v6"]
VIPS = {"198.18.0.10", "fd00:18::10"}
SUBTYPES = {"0": "MP_CAPABLE", "1": "MP_JOIN", "2": "DSS", "3": "ADD_ADDR", "4": "REMOVE_ADDR",
            "5": "MP_PRIO", "6": "MP_FAIL", "7": "MP_FASTCLOSE", "8": "MP_TCPRST"}
FIELDS = ["frame.number", "frame.len", "ip.src", "ip.dst", "ipv6.src", "ipv6.dst",
          "tcp.srcport", "tcp.dstport", "tcp.flags.str", "tcp.len", "tcp.checksum.status",
          "tcp.option_len", "tcp.options.mptcp.subtype", "tcp.options.mptcp.version",
          "tcp.options.mptcp.flags", "tcp.options.mptcp.sendkey", "tcp.options.mptcp.recvkey",
          "tcp.options.mptcp.recvtok", "tcp.options.mptcp.addrid", "tcp.options.mptcp.ipv4",
          "tcp.options.mptcp.ipv6", "tcp.options.mptcp.echo", "tcp.options.mptcp.rawdataseqno",
          "tcp.options.mptcp.rawdataack", "tcp.options.mptcp.datalvllen",
          "tcp.options.mptcp.datafin.flag", "tcp.options.mptcp.sendrand",
          "tcp.options.mptcp.backup.flag"]
FLAGNAMES = [("S", "SYN"), ("A", "ACK"), ("P", "PSH"), ("F", "FIN"), ("R", "RST")]


def flags_str(s):
    return ",".join(name for ch, name in FLAGNAMES if ch in s)


def mptcp_desc(f):
    subs = [x for x in f["tcp.options.mptcp.subtype"].split(",") if x]
    out = []
    for sub in subs:
        name = SUBTYPES.get(sub, "subtype " + sub)
        if sub == "0":
            d = f"MP_CAPABLE v{f['tcp.options.mptcp.version']} flags={f['tcp.options.mptcp.flags']}"
            if f["tcp.options.mptcp.sendkey"]:
                d += f" sender key={f['tcp.options.mptcp.sendkey']}"
            if f["tcp.options.mptcp.recvkey"]:
                d += f" receiver key={f['tcp.options.mptcp.recvkey']}"
            if f["tcp.options.mptcp.datalvllen"]:
                d += f" data-level len={f['tcp.options.mptcp.datalvllen']}"
        elif sub == "1":
            d = "MP_JOIN"
            if f["tcp.options.mptcp.recvtok"]:
                d += (f" token={f['tcp.options.mptcp.recvtok']}"
                      f" (0x{int(f['tcp.options.mptcp.recvtok']):08x})"
                      f" addr id={f['tcp.options.mptcp.addrid']}"
                      f" nonce={f['tcp.options.mptcp.sendrand']}"
                      f" backup={f['tcp.options.mptcp.backup.flag']}")
            elif "S" in f["tcp.flags.str"]:
                d += " (SYN-ACK: truncated HMAC, nonce)"
            else:
                d += " (ACK: HMAC)"
        elif sub == "2":
            d = f"DSS flags={f['tcp.options.mptcp.flags']}"
            if f["tcp.options.mptcp.rawdataack"]:
                d += f" data ack={f['tcp.options.mptcp.rawdataack']}"
            if f["tcp.options.mptcp.rawdataseqno"]:
                d += (f" dsn={f['tcp.options.mptcp.rawdataseqno']}"
                      f" len={f['tcp.options.mptcp.datalvllen']}")
            if f["tcp.options.mptcp.datafin.flag"] in ("1", "True"):
                d += " DATA_FIN"
        elif sub == "3":
            addr = f["tcp.options.mptcp.ipv4"] or f["tcp.options.mptcp.ipv6"]
            echo = f["tcp.options.mptcp.echo"] in ("1", "True")
            d = f"ADD_ADDR{' echo' if echo else ''} id={f['tcp.options.mptcp.addrid']} addr={addr}"
        else:
            d = name
        out.append(d)
    return "; ".join(out)


def describe(path):
    cmd = ["tshark", "-r", path, "-o", "tcp.check_checksum:TRUE", "-o",
           "tcp.relative_sequence_numbers:FALSE", "-T", "fields", "-E", "separator=|",
           "-E", "occurrence=a", "-E", "aggregator=,"]
    for fld in FIELDS:
        cmd += ["-e", fld]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    lines = [f"| # | dir | src → dst | flags | payload | MPTCP option(s) |",
             "|---|---|---|---|---|---|"]
    for row in res.stdout.splitlines():
        f = dict(zip(FIELDS, row.split("|")))
        src = f["ip.src"] or f["ipv6.src"]
        dst = f["ip.dst"] or f["ipv6.dst"]
        direction = "C→S" if dst in VIPS else "S→C"
        fmt = (lambda a, p: f"[{a}]:{p}") if ":" in src else (lambda a, p: f"{a}:{p}")
        lines.append(f"| {f['frame.number']} | {direction} | {fmt(src, f['tcp.srcport'])} → "
                     f"{fmt(dst, f['tcp.dstport'])} | {flags_str(f['tcp.flags.str'])} | "
                     f"{f['tcp.len']} | {mptcp_desc(f) or '—'} |")
    return "\n".join(lines)


def key_table():
    """Keys from the client's third ACK, tokens derived from them, MP_JOIN tokens seen."""
    sys.path.insert(0, HERE)
    from check_tokens import token_of
    rows = ["| capture | client key (3rd ACK, sender) | server key (3rd ACK, receiver) | "
            "token(server key) | token(client key) | MP_JOIN SYN tokens on the wire |",
            "|---|---|---|---|---|---|"]
    for name in ORDER:
        path = os.path.join(HERE, name + ".pcap")
        if not name.startswith("mptcp_") or not os.path.exists(path):
            continue
        cmd = ["tshark", "-r", path, "-T", "fields", "-E", "separator=|", "-e", "frame.number",
               "-e", "tcp.options.mptcp.sendkey", "-e", "tcp.options.mptcp.recvkey",
               "-e", "tcp.options.mptcp.recvtok"]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout
        keys, joins = None, []
        for line in out.splitlines():
            num, sk, rk, tok = line.split("|")
            if rk and keys is None:
                keys = (int(sk), int(rk))
            if tok:
                joins.append((num, int(tok)))
        if keys is None:
            rows.append(f"| {name} | — (fallback: no key exchanged) | — | — | — | — |")
            continue
        ck, sk = keys
        js = ", ".join(f"frame {n}: 0x{t:08x} ({'matches' if t == token_of(sk) else 'MISMATCH'})"
                       for n, t in joins) or "—"
        rows.append(f"| {name} | {ck} (0x{ck:016x}) | {sk} (0x{sk:016x}) | "
                    f"0x{token_of(sk):08x} ({token_of(sk)}) | 0x{token_of(ck):08x} | {js} |")
    return "\n".join(rows)


def replace_between(doc, tag, text):
    begin, end = f"<!-- BEGIN {tag} -->", f"<!-- END {tag} -->"
    a, b = doc.index(begin) + len(begin), doc.index(end)
    return doc[:a] + "\n" + text + "\n" + doc[b:]


def all_tables():
    parts = []
    for name in ORDER:
        path = os.path.join(HERE, name + ".pcap")
        if os.path.exists(path):
            parts.append(f"### `{name}.pcap`\n\n{describe(path)}\n")
    return "\n".join(parts)


def main():
    keys, frames = key_table(), all_tables()
    if "--update" not in sys.argv:
        print(keys + "\n\n" + frames)
        return 0
    readme = os.path.join(HERE, "README.md")
    with open(readme) as fh:
        doc = fh.read()
    doc = replace_between(doc, "KEYS", keys)
    doc = replace_between(doc, "FRAMES", frames)
    with open(readme, "w") as fh:
        fh.write(doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
