#!/usr/bin/env python3
"""Writes the seed corpus of the `process_frame` fuzz target from the real
captures in tests/data/ (and the demo's ARP/ping frames).

Input format of the target (see fuzz_targets/process_frame.rs):
  byte 0   control: bits 0-1 rx port, bits 2-7 time-step shift
  byte 1   time step (ns = (byte1 + 1) << shift) added to the clock first
  then     up to 32 records: 2-byte big-endian length, then that many bytes

Seeds: every frame alone (port 0, single mode), and each capture's
client->VIP frames in order as bursts of up to 32 (so a burst goes from the
MP_CAPABLE SYN through the third ACK to the MP_JOIN SYN). Frames from the
client's second uplink get port 0's MAC as destination, so that one burst on
port 0 carries the whole connection.

Usage: python3 fuzz/make_seeds.py [OUT_DIR]   (default fuzz/seeds)
Stdlib only; deterministic output (file names are content hashes).
"""
import hashlib
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CAPTURES = [
    "tests/data/mptcp_v4.pcap",
    "tests/data/mptcp_join_v4.pcap",
    "tests/data/mptcp_v6.pcap",
    "tests/data/mptcp_fallback_v4.pcap",
    "tests/data/tcp_v4.pcap",
    "tests/data/tcp_v6.pcap",
    "configs/demo-input.pcap",
]
# Port 0's MAC in the fuzz target's config (the capture router's wifi port).
PORT0_MAC = bytes([2, 0, 0, 0, 2, 1])
CELL_ROUTER_MAC = bytes([2, 0, 0, 0, 3, 1])
VIP_PORT = 80


def read_pcap(path):
    with open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack("<I", data[:4])[0]
    if magic in (0xA1B2C3D4, 0xA1B23C4D):
        endian = "<"
    elif magic in (0xD4C3B2A1, 0x4D3CB2A1):
        endian = ">"
    else:
        raise SystemExit(f"{path}: not a classic pcap file")
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    if linktype != 1:
        raise SystemExit(f"{path}: link type {linktype}, expected Ethernet (1)")
    off = 24
    frames = []
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack(endian + "IIII", data[off : off + 16])
        off += 16
        frames.append(data[off : off + incl])
        off += incl
    return frames


def to_vip(frame):
    """True for TCP frames whose destination port is the VIP's (client->VIP)."""
    if len(frame) < 14:
        return False
    et = struct.unpack("!H", frame[12:14])[0]
    if et == 0x0800 and len(frame) >= 34:
        ihl = (frame[14] & 0x0F) * 4
        l4 = 14 + ihl
        proto = frame[23]
    elif et == 0x86DD and len(frame) >= 54:
        l4 = 54
        proto = frame[20]
    else:
        return False
    if proto != 6 or len(frame) < l4 + 4:
        return False
    return struct.unpack("!H", frame[l4 + 2 : l4 + 4])[0] == VIP_PORT


def normalise(frame):
    if frame[:6] == CELL_ROUTER_MAC:
        return PORT0_MAC + frame[6:]
    return frame


def record(frame):
    return struct.pack("!H", len(frame)) + frame


def write(out, data, written):
    name = hashlib.sha1(data).hexdigest()[:16]
    if name in written:
        return
    written.add(name)
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "seeds")
    os.makedirs(out, exist_ok=True)
    written = set()
    for rel in CAPTURES:
        frames = [normalise(f) for f in read_pcap(os.path.join(ROOT, rel))]
        # Control byte 0: port 0, clock step 1 ns.
        for f in frames:
            write(out, bytes([0, 0]) + record(f), written)
        flow = [f for f in frames if to_vip(f)]
        for i in range(0, len(flow), 32):
            burst = flow[i : i + 32]
            # Clock step 244 << 12 ns (~1 ms) before each burst.
            write(out, bytes([12 << 2, 243]) + b"".join(map(record, burst)), written)
    print(f"{len(written)} seeds in {out}")


if __name__ == "__main__":
    main()
