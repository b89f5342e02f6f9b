//! Whole frames for tests, the benchmarks, the fuzz seeds and mplb-gen's
//! checks, built with the emitters of [`crate::wire`] (one set, instead of
//! bytes written by hand in each harness). Each function appends its header
//! in front of an already built payload, so a frame reads inside out:
//! `eth(.., &ipv4(.., &tcp(.., &[])))`.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::wire::ethernet::{self, MacAddr};
use crate::wire::{arp, icmpv4, icmpv6, ip_proto, ipv4, ipv6, mptcp, tcp, udp};

/// TCP flag bits, as `u8` (the same values as [`tcp::Flags`]' constants).
pub mod flags {
    use crate::wire::tcp::Flags;
    pub const FIN: u8 = Flags::FIN;
    pub const SYN: u8 = Flags::SYN;
    pub const RST: u8 = Flags::RST;
    pub const PSH: u8 = Flags::PSH;
    pub const ACK: u8 = Flags::ACK;
}

/// Ethertypes.
pub mod ethertype {
    pub use crate::wire::ethernet::ethertype::*;
}

fn prepend(header_len: usize, payload: &[u8], emit: impl FnOnce(&mut [u8])) -> Vec<u8> {
    let mut v = vec![0u8; header_len + payload.len()];
    emit(&mut v);
    v[header_len..].copy_from_slice(payload);
    v
}

fn len16(payload: &[u8]) -> u16 {
    u16::try_from(payload.len()).expect("payload fits a length field")
}

/// An untagged Ethernet frame.
pub fn eth(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    prepend(14, payload, |b| {
        ethernet::emit_header(b, MacAddr(dst), MacAddr(src), ethertype).expect("14 bytes")
    })
}

/// An option-less IPv4 packet with a valid header checksum; `flags_frag` is
/// the header's 16-bit flags and fragment offset field as sent (0x4000: DF).
pub fn ipv4_full(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    (protocol, ttl, ident, flags_frag): (u8, u8, u16, u16),
    payload: &[u8],
) -> Vec<u8> {
    prepend(20, payload, |b| {
        ipv4::emit_header(b, src, dst, protocol, len16(payload), ttl, ident).expect("20 bytes");
        let mut p = ipv4::Packet::new_checked(b).expect("valid header");
        p.set_flags_frag(
            flags_frag & 0x4000 != 0,
            flags_frag & 0x2000 != 0,
            (flags_frag & 0x1fff) * 8,
        );
        p.fill_checksum();
    })
}

/// An IPv4 packet with DF set.
pub fn ipv4(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: u8,
    ttl: u8,
    ident: u16,
    payload: &[u8],
) -> Vec<u8> {
    ipv4_full(src, dst, (protocol, ttl, ident, 0x4000), payload)
}

/// A fixed-header IPv6 packet with the given flow label.
pub fn ipv6_full(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    (next_header, hop_limit, flow_label): (u8, u8, u32),
    payload: &[u8],
) -> Vec<u8> {
    prepend(40, payload, |b| {
        ipv6::emit_header(b, &src, &dst, next_header, len16(payload), hop_limit).expect("40 bytes");
        ipv6::Packet::new_checked(b)
            .expect("valid header")
            .set_flow_label(flow_label);
    })
}

/// An IPv6 packet with flow label 0.
pub fn ipv6(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    next_header: u8,
    hop_limit: u8,
    payload: &[u8],
) -> Vec<u8> {
    ipv6_full(src, dst, (next_header, hop_limit, 0), payload)
}

/// A TCP segment with checksum 0 (the datapath does not check it; use
/// [`tcp_checksum_v4`] / [`tcp_checksum_v6`] where a peer would).
pub fn tcp(repr: &tcp::Repr<'_>, payload: &[u8]) -> Vec<u8> {
    prepend(repr.header_len(), payload, |b| {
        repr.emit(b).expect("valid header")
    })
}

/// A TCP header's usual fields for a client segment: window 64240, no
/// acknowledgment number.
pub fn tcp_repr<'a>(
    src_port: u16,
    dst_port: u16,
    seq: u32,
    flags: u8,
    options: &'a [u8],
) -> tcp::Repr<'a> {
    tcp::Repr {
        src_port,
        dst_port,
        seq_number: seq,
        ack_number: 0,
        flags: tcp::Flags(flags),
        window: 64240,
        options,
    }
}

/// `segment` (a whole TCP segment) with its IPv4 checksum filled.
pub fn tcp_checksum_v4(mut segment: Vec<u8>, src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
    tcp::Packet::new_checked(&mut segment[..])
        .expect("a TCP segment")
        .fill_checksum_v4(src, dst)
        .expect("fits");
    segment
}

/// `segment` with its IPv6 checksum filled.
pub fn tcp_checksum_v6(mut segment: Vec<u8>, src: &Ipv6Addr, dst: &Ipv6Addr) -> Vec<u8> {
    tcp::Packet::new_checked(&mut segment[..])
        .expect("a TCP segment")
        .fill_checksum_v6(src, dst)
        .expect("fits");
    segment
}

/// A UDP datagram with checksum 0 ("none").
pub fn udp(src_port: u16, dst_port: u16, payload: &[u8]) -> Vec<u8> {
    prepend(8, payload, |b| {
        udp::emit_header(b, src_port, dst_port, len16(payload)).expect("8 bytes")
    })
}

/// An ICMPv4 message: type, code, the four bytes after the checksum (echo
/// identifier and sequence, next-hop MTU, ...), then `data`; checksum
/// filled.
pub fn icmpv4(msg_type: u8, code: u8, rest: [u8; 4], data: &[u8]) -> Vec<u8> {
    let mut v = icmp_message(msg_type, code, rest, data);
    icmpv4::Packet::new_checked(&mut v[..])
        .expect("icmp header")
        .fill_checksum();
    v
}

/// An ICMPv6 message, checksum filled for the IPv6 addresses it travels
/// between.
pub fn icmpv6(
    src: &Ipv6Addr,
    dst: &Ipv6Addr,
    msg_type: u8,
    code: u8,
    rest: [u8; 4],
    data: &[u8],
) -> Vec<u8> {
    let mut v = icmp_message(msg_type, code, rest, data);
    icmpv6::Packet::new_checked(&mut v[..])
        .expect("icmpv6 header")
        .fill_checksum(src, dst)
        .expect("fits");
    v
}

fn icmp_message(msg_type: u8, code: u8, rest: [u8; 4], data: &[u8]) -> Vec<u8> {
    let mut v = vec![msg_type, code, 0, 0];
    v.extend_from_slice(&rest);
    v.extend_from_slice(data);
    v
}

/// An Ethernet/IPv4 ARP packet (without the Ethernet header).
pub fn arp(operation: u16, sender: ([u8; 6], Ipv4Addr), target: ([u8; 6], Ipv4Addr)) -> Vec<u8> {
    let mut v = vec![0u8; 28];
    arp::emit(
        &mut v,
        operation,
        (MacAddr(sender.0), sender.1),
        (MacAddr(target.0), target.1),
    )
    .expect("28 bytes");
    v
}

/// A client's first packet to a service, as an Ethernet frame to `dst_mac`
/// (hop limit 64): a TCP SYN without options (`udp` false) or a UDP
/// datagram of 4 bytes. Both addresses must be of one family.
pub fn first_packet(
    dst_mac: [u8; 6],
    (src, src_port): (std::net::IpAddr, u16),
    (dst, dst_port): (std::net::IpAddr, u16),
    udp: bool,
) -> Vec<u8> {
    use std::net::IpAddr;
    const CLIENT_MAC: [u8; 6] = [2, 0, 0, 0, 0xc1, 0x1e];
    let l4 = if udp {
        self::udp(src_port, dst_port, b"ping")
    } else {
        tcp(&tcp_repr(src_port, dst_port, 1, flags::SYN, &[]), &[])
    };
    let proto = if udp { ip_proto::UDP } else { ip_proto::TCP };
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => eth(
            dst_mac,
            CLIENT_MAC,
            ethertype::IPV4,
            &ipv4(s, d, proto, 64, 1, &l4),
        ),
        (IpAddr::V6(s), IpAddr::V6(d)) => eth(
            dst_mac,
            CLIENT_MAC,
            ethertype::IPV6,
            &ipv6(s, d, proto, 64, &l4),
        ),
        _ => panic!("first_packet: {src} and {dst} are of different families"),
    }
}

/// MPTCP options, as TCP option bytes.
pub mod opt {
    use super::mptcp;

    fn emit(max: usize, f: impl FnOnce(&mut [u8]) -> crate::wire::Result<usize>) -> Vec<u8> {
        let mut v = vec![0u8; max];
        let n = f(&mut v).expect("option fits");
        v.truncate(n);
        v
    }

    /// MP_CAPABLE of a v1 SYN (no key), flag H.
    pub fn mp_capable_syn() -> Vec<u8> {
        mp_capable(&[])
    }

    /// MP_CAPABLE v1, flag H, with these keys (1: SYN-ACK, 2: third ACK).
    pub fn mp_capable(keys: &[u64]) -> Vec<u8> {
        emit(20, |b| {
            mptcp::emit_mp_capable(b, 1, mptcp::capable_flags::H, keys)
        })
    }

    /// MP_JOIN of a SYN: address id 1, not backup.
    pub fn mp_join(token: u32, nonce: u32) -> Vec<u8> {
        emit(12, |b| mptcp::emit_mp_join_syn(b, false, 1, token, nonce))
    }

    /// DSS with a 4-byte data ACK only.
    pub fn dss_ack(data_ack: u32) -> Vec<u8> {
        emit(8, |b| {
            mptcp::emit_dss(b, mptcp::dss_flags::DATA_ACK, &data_ack.to_be_bytes())
        })
    }
}

/// The IP protocol numbers the helpers above take.
pub use ip_proto::{ICMP, ICMPV6, TCP, UDP};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_match_the_rfc_layouts() {
        assert_eq!(opt::mp_capable_syn(), [30, 4, 0x01, 0x01]);
        assert_eq!(opt::dss_ack(1), [30, 8, 0x20, 0x01, 0, 0, 0, 1]);
        let j = opt::mp_join(0x0102_0304, 0x0909_0909);
        assert_eq!(j, [30, 12, 0x10, 1, 1, 2, 3, 4, 9, 9, 9, 9]);
        let k = opt::mp_capable(&[1, 2]);
        assert_eq!(&k[..4], &[30, 20, 0x01, 0x01]);
        assert_eq!(&k[4..], &[0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2]);
    }

    #[test]
    fn a_frame_parses_back() {
        let c = Ipv4Addr::new(198, 18, 2, 2);
        let v = Ipv4Addr::new(198, 18, 0, 10);
        let o = opt::mp_capable_syn();
        let seg = tcp_checksum_v4(tcp(&tcp_repr(40000, 80, 7, flags::SYN, &o), b"hi"), c, v);
        let f = eth(
            [2; 6],
            [4; 6],
            ethertype::IPV4,
            &ipv4(c, v, TCP, 64, 1, &seg),
        );
        let p = crate::wire::parse_frame(&f).expect("parses");
        assert_eq!(p.ip.expect("ip").dst_addr(), std::net::IpAddr::V4(v));
        let t = tcp::Packet::new_checked(&seg[..]).expect("tcp");
        assert!(t.verify_checksum_v4(c, v));
        assert_eq!(t.payload(), b"hi");
    }
}
