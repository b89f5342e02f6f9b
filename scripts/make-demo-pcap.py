#!/usr/bin/env python3
"""Writes the demo's input frames (classic pcap, Ethernet) with the standard
library only: ARP requests and ICMP echo requests for mplb's own address, a
few frames it must drop (not for it, malformed), then the client→VIP frames
of real Linux MPTCP and TCP connections captured in tests/data/."""
import struct
import sys

LB_MAC = bytes.fromhex("027063617000")  # the MAC DPDK's net_pcap gives its first port
CLIENT_MAC = bytes.fromhex("0200000000c1")
LB_IP = bytes([198, 18, 0, 1])
CLIENT_IP = bytes([198, 18, 0, 2])
OTHER_IP = bytes([198, 18, 0, 99])


def csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def arp_request(target: bytes) -> bytes:
    eth = b"\xff" * 6 + CLIENT_MAC + b"\x08\x06"
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + CLIENT_MAC + CLIENT_IP + b"\0" * 6 + target
    return eth + arp + b"\0" * 18  # pad to the 60-byte Ethernet minimum


def echo_request(dst: bytes, seq: int, payload: bytes = b"mplb-demo-ping!!") -> bytes:
    icmp = struct.pack("!BBHHH", 8, 0, 0, 0x4D50, seq) + payload
    icmp = icmp[:2] + struct.pack("!H", csum(icmp)) + icmp[4:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), seq, 0x4000, 64, 1, 0, CLIENT_IP, dst)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return LB_MAC + CLIENT_MAC + b"\x08\x00" + ip + icmp


VIP = bytes([198, 18, 0, 10])


def client_to_vip(path: str) -> list:
    """The IPv4 frames addressed to the VIP in a classic little-endian pcap."""
    with open(path, "rb") as f:
        data = f.read()
    frames, off = [], 24
    while off + 16 <= len(data):
        incl = struct.unpack_from("<I", data, off + 8)[0]
        fr = data[off + 16 : off + 16 + incl]
        off += 16 + incl
        if len(fr) >= 34 and fr[12:14] == b"\x08\x00" and fr[30:34] == VIP:
            frames.append(fr)
    return frames


def main(path: str) -> None:
    frames = [arp_request(LB_IP)]
    frames += [echo_request(LB_IP, seq) for seq in range(1, 4)]
    frames.append(arp_request(OTHER_IP))  # not ours: dropped
    frames.append(echo_request(OTHER_IP, 9))  # not ours: dropped
    frames.append(LB_MAC + CLIENT_MAC + b"\x08\x00" + b"\x45\x00")  # truncated IPv4: dropped
    frames += client_to_vip("tests/data/mptcp_v4.pcap")
    frames += client_to_vip("tests/data/tcp_v4.pcap")
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i, fr in enumerate(frames):
            f.write(struct.pack("<IIII", 1_700_000_000 + i, 0, len(fr), len(fr)))
            f.write(fr)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "configs/demo-input.pcap")
