//! Frame templates: each kind of frame to each VIP is built once, with its
//! checksums summed over everything that never changes; a packet is the
//! template copied into an mbuf with its few variable fields written and the
//! checksums finished from the template's partial sums (no pass over the
//! payload per packet).
//!
//! TCP frames always start their options with `NOP NOP TS(10)`: the TSC at
//! send time is the timestamp option's value (TSval = high 32 bits, TSecr =
//! low 32 bits), at TCP offset 24. UDP frames carry it in the first 8 bytes
//! of their payload. Malformed frames end with a 16-byte trailer
//! ([`TRAILER_MAGIC`], then the TSC), see [`malformed`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use mplb::wire::ethernet::{self, MacAddr, ethertype};
use mplb::wire::mptcp::{self, capable_flags, dss_flags};
use mplb::wire::tcp::{self, Flags};
use mplb::wire::{checksum, ip_proto, ipv4, ipv6, udp};

use crate::plan::VipPlan;

pub const ETH: usize = 14;
pub const V4_HDR: usize = 20;
pub const V6_HDR: usize = 40;
pub const TCP_HDR: usize = 20;
pub const UDP_HDR: usize = 8;
/// TTL / hop limit of every generated packet.
pub const TTL: u8 = 64;
/// TCP window of every generated segment.
pub const WINDOW: u16 = 502;
/// TCP offset of the timestamp option's value (after `NOP NOP 8 10`).
pub const TS_AT: usize = TCP_HDR + 4;
/// The first TCP option bytes of every generated segment.
pub const TS_LEAD: [u8; 4] = [1, 1, 8, 10];
/// Payload bytes data frames carry at least (when `--size` is smaller than
/// the headers): a UDP datagram needs 8 for the timestamp, and a TCP data
/// segment some data.
pub const MIN_PAYLOAD: usize = 8;
/// Ends every malformed frame, followed by the 8-byte TSC.
pub const TRAILER_MAGIC: [u8; 8] = *b"mplbGEN!";
pub const TRAILER: usize = 16;

const FIN: u8 = Flags::FIN;
const SYN: u8 = Flags::SYN;
const PSH: u8 = Flags::PSH;
const ACK: u8 = Flags::ACK;

/// The kinds of frame sent to a VIP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// SYN with MP_CAPABLE v1 (no key), MSS, window scale.
    MptcpSyn,
    /// Third ACK with MP_CAPABLE carrying both keys (client, server).
    MptcpKeys,
    /// Data with a DSS (data ACK, mapping: DSN, subflow sequence, length).
    MptcpData,
    /// FIN with a DSS carrying DATA_FIN.
    MptcpFin,
    PlainSyn,
    PlainAck,
    PlainData,
    PlainFin,
    /// SYN with MP_JOIN (the server's token, a nonce).
    JoinSyn,
    FloodSyn,
    FloodAck,
    Udp,
}

impl Kind {
    pub const ALL: [Kind; 12] = [
        Kind::MptcpSyn,
        Kind::MptcpKeys,
        Kind::MptcpData,
        Kind::MptcpFin,
        Kind::PlainSyn,
        Kind::PlainAck,
        Kind::PlainData,
        Kind::PlainFin,
        Kind::JoinSyn,
        Kind::FloodSyn,
        Kind::FloodAck,
        Kind::Udp,
    ];

    fn flags(self) -> u8 {
        match self {
            Kind::MptcpSyn | Kind::PlainSyn | Kind::JoinSyn | Kind::FloodSyn => SYN,
            Kind::MptcpKeys | Kind::PlainAck | Kind::FloodAck => ACK,
            Kind::MptcpData | Kind::PlainData => ACK | PSH,
            Kind::MptcpFin | Kind::PlainFin => FIN | ACK,
            Kind::Udp => 0,
        }
    }

    fn carries_data(self) -> bool {
        matches!(self, Kind::MptcpData | Kind::PlainData | Kind::Udp)
    }

    /// TCP options after the timestamp option, variable bytes zeroed, and
    /// where (TCP offset) the variable option bytes are.
    fn options(self, v6: bool) -> (Vec<u8>, Option<(usize, usize)>) {
        let mss: u16 = if v6 { 1440 } else { 1460 };
        let [m0, m1] = mss.to_be_bytes();
        let at = TCP_HDR + 12;
        // Appends an MPTCP option written by `emit` (into at most 20 bytes).
        let mptcp = |mut o: Vec<u8>, emit: &dyn Fn(&mut [u8]) -> mplb::wire::Result<usize>| {
            let start = o.len();
            o.resize(start + 20, 0);
            let n = emit(&mut o[start..]).expect("option fits");
            o.truncate(start + n);
            o
        };
        match self {
            // MSS, MP_CAPABLE v1 SYN (flags: H = HMAC-SHA256), NOP + WS 7.
            Kind::MptcpSyn => {
                let mut o = mptcp(vec![2, 4, m0, m1], &|b| {
                    mptcp::emit_mp_capable(b, 1, capable_flags::H, &[])
                });
                o.extend_from_slice(&[1, 3, 3, 7]);
                (o, None)
            }
            Kind::PlainSyn | Kind::FloodSyn => (vec![2, 4, m0, m1, 1, 3, 3, 7], None),
            // MP_CAPABLE, 20 bytes: sender's (client) key, receiver's (server) key.
            Kind::MptcpKeys => {
                let o = mptcp(Vec::new(), &|b| {
                    mptcp::emit_mp_capable(b, 1, capable_flags::H, &[0, 0])
                });
                (o, Some((at + 4, at + 20)))
            }
            // DSS: A (4-byte data ACK), M (4-byte DSN, SSN, length), F for
            // the FIN; then NOP NOP.
            Kind::MptcpData | Kind::MptcpFin => {
                let mut flags = dss_flags::DATA_ACK | dss_flags::DSN;
                if self == Kind::MptcpFin {
                    flags |= dss_flags::DATA_FIN;
                }
                let mut o = mptcp(Vec::new(), &|b| mptcp::emit_dss(b, flags, &[0; 14]));
                o.extend_from_slice(&[1, 1]);
                (o, Some((at + 4, at + 16)))
            }
            // MSS, MP_JOIN SYN: address id 1, token, nonce.
            Kind::JoinSyn => {
                let o = mptcp(vec![2, 4, m0, m1], &|b| {
                    mptcp::emit_mp_join_syn(b, false, 1, 0, 0)
                });
                (o, Some((at + 8, at + 16)))
            }
            Kind::PlainAck | Kind::PlainData | Kind::PlainFin | Kind::FloodAck | Kind::Udp => {
                (Vec::new(), None)
            }
        }
    }
}

/// A packet's variable fields.
#[derive(Clone, Copy, Debug, Default)]
pub struct Fields {
    /// Source address: 4 bytes for IPv4, 16 for IPv6.
    pub src: [u8; 16],
    /// Destination address, the VIP's: 4 bytes for IPv4, 16 for IPv6.
    pub dst: [u8; 16],
    pub sport: u16,
    pub seq: u32,
    pub ack: u32,
    /// Kind-specific option bytes (keys; DSS data ACK, DSN, SSN; join token, nonce).
    pub extra: [u8; 16],
}

/// One kind of frame to the VIPs of one family and port: the addresses are
/// written per packet, so 10 000 VIPs share a template (a template each
/// would not stay in the cache, and the generator would set the pace).
#[derive(Clone, Debug)]
pub struct Template {
    pub kind: Kind,
    pub v6: bool,
    bytes: Vec<u8>,
    l4: usize,
    /// Partial sum of the IPv4 header with the addresses zeroed.
    ip_sum: u16,
    /// Partial sum of pseudo-header and segment with every variable field
    /// (addresses included) zeroed.
    l4_sum: u16,
    /// Variable option bytes (TCP offsets).
    extra: Option<(usize, usize)>,
    /// DSS data-level length (MPTCP data and FIN).
    pub payload: usize,
}

impl Template {
    /// `v6`, `port`: the VIPs' family and port; `dst`/`src`: the Ethernet
    /// addresses; `size`: the wanted frame length (data frames are padded up
    /// to it, handshakes keep their natural size).
    pub fn new(
        kind: Kind,
        v6: bool,
        port: u16,
        dst: [u8; 6],
        src: [u8; 6],
        size: usize,
    ) -> Template {
        let ip_len = if v6 { V6_HDR } else { V4_HDR };
        let l4 = ETH + ip_len;
        let (opts, extra) = kind.options(v6);
        let l4_hdr = if kind == Kind::Udp {
            UDP_HDR
        } else {
            TCP_HDR + TS_LEAD.len() + 8 + opts.len()
        };
        let payload = if kind.carries_data() {
            size.saturating_sub(l4 + l4_hdr).max(MIN_PAYLOAD)
        } else {
            0
        };
        let seg_len = l4_hdr + payload;
        let mut b = vec![0u8; l4 + seg_len];
        let proto = if kind == Kind::Udp {
            ip_proto::UDP
        } else {
            ip_proto::TCP
        };
        let (dst, src) = (MacAddr(dst), MacAddr(src));
        let len = seg_len as u16;
        // IP header: addresses zero (variable), checksum 0 (finished per
        // packet), everything else final.
        if v6 {
            ethernet::emit_header(&mut b, dst, src, ethertype::IPV6).expect("frame");
            let zero = Ipv6Addr::UNSPECIFIED;
            ipv6::emit_header(&mut b[ETH..], &zero, &zero, proto, len, TTL).expect("frame");
        } else {
            ethernet::emit_header(&mut b, dst, src, ethertype::IPV4).expect("frame");
            let zero = Ipv4Addr::UNSPECIFIED;
            ipv4::emit_header(&mut b[ETH..], zero, zero, proto, len, TTL, 0).expect("frame");
            b[ETH + 10..ETH + 12].fill(0);
        }
        let seg = &mut b[l4..];
        if kind == Kind::Udp {
            udp::emit_header(seg, 0, port, (seg_len - UDP_HDR) as u16).expect("frame");
            fill_pattern(&mut seg[UDP_HDR + 8..]);
        } else {
            let mut all = TS_LEAD.to_vec();
            all.resize(TS_LEAD.len() + 8, 0);
            all.extend_from_slice(&opts);
            let repr = tcp::Repr {
                src_port: 0,
                dst_port: port,
                seq_number: 0,
                ack_number: 0,
                flags: Flags(kind.flags()),
                window: WINDOW,
                options: &all,
            };
            repr.emit(seg).expect("frame");
            if matches!(kind, Kind::MptcpData | Kind::MptcpFin) {
                // DSS data-level length: the payload (DATA_FIN counts one).
                let dl = if kind == Kind::MptcpFin {
                    1
                } else {
                    payload as u16
                };
                seg[TCP_HDR + 12 + 16..TCP_HDR + 12 + 18].copy_from_slice(&dl.to_be_bytes());
            }
            fill_pattern(&mut seg[l4_hdr..]);
        }
        let ip_sum = if v6 {
            0
        } else {
            checksum::sum(&b[ETH..ETH + V4_HDR])
        };
        // Pseudo-header without the addresses (added per packet).
        let pseudo = checksum::combine(&[u16::from(proto), fold_len(seg_len)]);
        let l4_sum = checksum::combine(&[pseudo, checksum::sum(&b[l4..])]);
        Template {
            kind,
            v6,
            bytes: b,
            l4,
            ip_sum,
            l4_sum,
            extra,
            payload,
        }
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Writes the packet into `buf` (exactly [`Template::len`] bytes).
    /// Returns false if `buf` has the wrong length.
    #[inline]
    pub fn write(&self, buf: &mut [u8], f: &Fields, tsc: u64) -> bool {
        if buf.len() != self.bytes.len() {
            return false;
        }
        buf.copy_from_slice(&self.bytes);
        let l4 = self.l4;
        let mut acc: u64 = u64::from(self.l4_sum);
        // Addresses: IP header (and its checksum) and pseudo-header.
        if self.v6 {
            buf[ETH + 8..ETH + 24].copy_from_slice(&f.src);
            buf[ETH + 24..ETH + 40].copy_from_slice(&f.dst);
            acc += u64::from(checksum::sum(&f.src)) + u64::from(checksum::sum(&f.dst));
        } else {
            let (src, dst) = (&f.src[..4], &f.dst[..4]);
            buf[ETH + 12..ETH + 16].copy_from_slice(src);
            buf[ETH + 16..ETH + 20].copy_from_slice(dst);
            let (s, d) = (checksum::sum(src), checksum::sum(dst));
            acc += u64::from(s) + u64::from(d);
            let ip = !checksum::combine(&[self.ip_sum, s, d]);
            buf[ETH + 10..ETH + 12].copy_from_slice(&ip.to_be_bytes());
        }
        buf[l4..l4 + 2].copy_from_slice(&f.sport.to_be_bytes());
        acc += u64::from(f.sport);
        if self.kind == Kind::Udp {
            buf[l4 + UDP_HDR..l4 + UDP_HDR + 8].copy_from_slice(&tsc.to_be_bytes());
            acc += u64::from(checksum::sum(&tsc.to_be_bytes()));
            let mut c = !checksum::fold(acc);
            if c == 0 {
                c = 0xffff; // 0 means "no checksum" in UDP
            }
            buf[l4 + 6..l4 + 8].copy_from_slice(&c.to_be_bytes());
            return true;
        }
        let mut words = [0u8; 8];
        words[..4].copy_from_slice(&f.seq.to_be_bytes());
        words[4..].copy_from_slice(&f.ack.to_be_bytes());
        buf[l4 + 4..l4 + 12].copy_from_slice(&words);
        acc += u64::from(checksum::sum(&words));
        let ts = tsc.to_be_bytes();
        buf[l4 + TS_AT..l4 + TS_AT + 8].copy_from_slice(&ts);
        acc += u64::from(checksum::sum(&ts));
        if let Some((a, b)) = self.extra {
            let bytes = &f.extra[..b - a];
            buf[l4 + a..l4 + b].copy_from_slice(bytes);
            acc += u64::from(checksum::sum(bytes));
        }
        let c = !checksum::fold(acc);
        buf[l4 + 16..l4 + 18].copy_from_slice(&c.to_be_bytes());
        true
    }
}

/// An address as [`Fields`] holds it: IPv4's 4 bytes first, the rest zero.
pub fn address_bytes(addr: IpAddr) -> [u8; 16] {
    let mut out = [0u8; 16];
    match addr {
        IpAddr::V4(a) => out[..4].copy_from_slice(&a.octets()),
        IpAddr::V6(a) => out = a.octets(),
    }
    out
}

/// A pseudo-header's upper-layer length as a partial sum.
fn fold_len(len: usize) -> u16 {
    checksum::fold(len as u64)
}

/// The payload pattern: byte i = i mod 251 (a prime, so it does not line
/// up with any header period).
fn fill_pattern(buf: &mut [u8]) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b = (i % 251) as u8;
    }
}

/// Ways a frame can be broken; each is one the load balancer must drop.
pub const MALFORMED_VARIANTS: usize = 6;

/// Builds malformed variant `v` towards `vip` (a TCP VIP), or `None` if the
/// variant does not apply to its family. Every one ends with the trailer
/// (its TSC bytes zero here; [`stamp_trailer`] fills them).
/// * 0: IP total length / payload length beyond the frame (truncated packet);
/// * 1: IPv4 header length below 20 (IPv4 only);
/// * 2: TCP data offset below 5;
/// * 3: TTL / hop limit 1 (must not be forwarded);
/// * 4: IPv4 EtherType with an IPv6 header (bad version; IPv4 only);
/// * 5: to the VIP's address on a port no VIP serves (`no_vip_port`).
pub fn malformed(
    v: usize,
    vip: &VipPlan,
    dst: [u8; 6],
    src: [u8; 6],
    no_vip_port: u16,
) -> Option<Vec<u8>> {
    // Sources outside the flow and flood ranges: these frames are told
    // apart by their trailer only.
    let client: [u8; 16] = [0xfd, 0, 0, 0x1b, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    let v6 = vip.addr.is_ipv6();
    let port = if v == 5 { no_vip_port } else { vip.port };
    let t = Template::new(Kind::PlainSyn, v6, port, dst, src, 0);
    let mut f = Fields {
        sport: 40_000,
        seq: 1,
        dst: address_bytes(vip.addr),
        ..Fields::default()
    };
    if v6 {
        f.src = client;
    } else {
        f.src[..4].copy_from_slice(&[198, 18, 100, 1]);
    }
    let mut b = vec![0u8; t.len()];
    t.write(&mut b, &f, 0);
    let ip = ETH;
    let l4 = ETH + if v6 { V6_HDR } else { V4_HDR };
    match (v, v6) {
        (0, false) => b[ip + 2..ip + 4].copy_from_slice(&1400u16.to_be_bytes()),
        (0, true) => b[ip + 4..ip + 6].copy_from_slice(&1400u16.to_be_bytes()),
        (1, false) => b[ip] = 0x44,
        (2, _) => b[l4 + 12] = 0x30,
        (3, false) => b[ip + 8] = 1,
        (3, true) => b[ip + 7] = 1,
        (4, false) => b[ip] = 0x65,
        (1, true) | (4, true) => return None,
        (5, _) => {}
        _ => return None,
    }
    b.extend_from_slice(&TRAILER_MAGIC);
    b.extend_from_slice(&[0; 8]);
    Some(b)
}

/// Writes the TSC into a malformed frame's trailer.
#[inline]
pub fn stamp_trailer(buf: &mut [u8], tsc: u64) {
    let n = buf.len();
    if let Some(t) = buf.get_mut(n.saturating_sub(8)..) {
        t.copy_from_slice(&tsc.to_be_bytes());
    }
}

/// An Ethernet ARP request (broadcast) for `target`, from `mac`/`ip`.
pub fn arp_request(mac: [u8; 6], ip: [u8; 4], target: [u8; 4]) -> Vec<u8> {
    let mut b = vec![0u8; 60];
    b[..6].copy_from_slice(&[0xff; 6]);
    b[6..12].copy_from_slice(&mac);
    b[12..14].copy_from_slice(&[0x08, 0x06]);
    let a = &mut b[14..42];
    a[..8].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    a[8..14].copy_from_slice(&mac);
    a[14..18].copy_from_slice(&ip);
    a[24..28].copy_from_slice(&target);
    b
}

/// The sender MAC of an ARP reply from `ip`, if `frame` is one.
pub fn arp_reply_from(frame: &[u8], ip: [u8; 4]) -> Option<[u8; 6]> {
    let a = frame.get(14..42)?;
    if frame.get(12..14)? != [0x08, 0x06] || a[..8] != [0, 1, 8, 0, 6, 4, 0, 2] || a[14..18] != ip {
        return None;
    }
    a[8..14].try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Mode;
    use mplb::wire::parse_frame;
    use mplb::wire::{ipv4, ipv6, tcp, udp};
    use std::net::{Ipv4Addr, Ipv6Addr};

    pub fn vip(addr: &str, port: u16, udp: bool) -> VipPlan {
        VipPlan {
            name: "v".into(),
            addr: addr.parse().expect("address"),
            port,
            udp,
            mode: Mode::L2Dsr,
            token_routing: true,
            backends: vec![0],
        }
    }

    fn fields(v6: bool) -> Fields {
        let mut f = Fields {
            sport: 1234,
            seq: 0xdead_beef,
            ack: 0x0102_0304,
            extra: [0xab; 16],
            ..Fields::default()
        };
        if v6 {
            f.src = "fd00:19::7".parse::<Ipv6Addr>().expect("v6").octets();
        } else {
            f.src[..4].copy_from_slice(&[198, 19, 0, 7]);
        }
        f
    }

    #[test]
    fn every_template_has_valid_checksums_and_fields() {
        for (addr, is_udp) in [
            ("198.18.0.10", false),
            ("fd00:18::10", false),
            ("198.18.0.10", true),
            ("fd00:18::10", true),
        ] {
            let v = vip(addr, 80, is_udp);
            for kind in Kind::ALL {
                if (kind == Kind::Udp) != is_udp {
                    continue;
                }
                for size in [64, 200, 1500] {
                    let t = Template::new(kind, v.addr.is_ipv6(), 80, [2; 6], [4; 6], size);
                    let mut b = vec![0u8; t.len()];
                    let mut f = fields(v.addr.is_ipv6());
                    f.dst = address_bytes(v.addr);
                    assert!(t.write(&mut b, &f, 0x1122_3344_5566_7788));
                    if kind.carries_data() {
                        assert!(b.len() >= size, "{kind:?} {size}");
                        assert!(b.len() == size || t.payload == MIN_PAYLOAD);
                    }
                    let p = parse_frame(&b).expect("parses");
                    let ip = p.ip.expect("ip");
                    assert_eq!(ip.dst_addr(), v.addr);
                    assert_eq!(ip.l3_end, b.len());
                    let seg = &b[ip.l4_offset..];
                    if v.addr.is_ipv4() {
                        let h = ipv4::Packet::new_checked(&b[14..]).expect("v4");
                        assert!(h.verify_checksum(), "{kind:?} ip checksum");
                        let (s, d) = (h.src_addr(), h.dst_addr());
                        assert_eq!(s, Ipv4Addr::new(198, 19, 0, 7));
                        if is_udp {
                            assert!(
                                udp::Packet::new_checked(seg)
                                    .expect("udp")
                                    .verify_checksum_v4(s, d)
                            );
                        } else {
                            assert!(
                                tcp::Packet::new_checked(seg)
                                    .expect("tcp")
                                    .verify_checksum_v4(s, d),
                                "{kind:?}"
                            );
                        }
                    } else {
                        let h = ipv6::Packet::new_checked(&b[14..]).expect("v6");
                        let (s, d) = (h.src_addr(), h.dst_addr());
                        if is_udp {
                            assert!(
                                udp::Packet::new_checked(seg)
                                    .expect("udp")
                                    .verify_checksum_v6(&s, &d)
                            );
                        } else {
                            assert!(
                                tcp::Packet::new_checked(seg)
                                    .expect("tcp")
                                    .verify_checksum_v6(&s, &d),
                                "{kind:?}"
                            );
                        }
                    }
                    if let Some(t) = p.tcp() {
                        assert!(t.options_ok, "{kind:?}");
                        assert_eq!(t.seq, 0xdead_beef);
                        assert_eq!(seg[TCP_HDR..TCP_HDR + 4], TS_LEAD);
                        assert_eq!(
                            seg[TS_AT..TS_AT + 8],
                            0x1122_3344_5566_7788u64.to_be_bytes()
                        );
                        let m = t.mptcp;
                        match kind {
                            Kind::MptcpSyn => assert!(m.capable.is_some() && !m.malformed),
                            Kind::MptcpKeys => {
                                let c = m.capable.expect("capable");
                                assert_eq!(c.receiver_key(), Some(0xabab_abab_abab_abab));
                            }
                            Kind::MptcpData | Kind::MptcpFin => {
                                assert!(m.has_dss() && !m.malformed)
                            }
                            Kind::JoinSyn => {
                                assert_eq!(m.join_syn.map(|j| j.token), Some(0xabab_abab))
                            }
                            _ => assert!(!m.any(), "{kind:?}"),
                        }
                    } else {
                        assert_eq!(seg[8..16], 0x1122_3344_5566_7788u64.to_be_bytes());
                    }
                }
            }
        }
    }

    #[test]
    fn malformed_frames_do_not_parse_or_are_otherwise_undeliverable() {
        for addr in ["198.18.0.10", "fd00:18::10"] {
            let v = vip(addr, 80, false);
            for variant in 0..MALFORMED_VARIANTS {
                let Some(mut b) = malformed(variant, &v, [2; 6], [4; 6], 81) else {
                    continue;
                };
                stamp_trailer(&mut b, 42);
                assert_eq!(b[b.len() - 16..b.len() - 8], TRAILER_MAGIC);
                let p = parse_frame(&b);
                match variant {
                    3 => assert_eq!(p.expect("parses").ip.expect("ip").ttl, 1),
                    5 => assert_eq!(p.expect("parses").ports(), Some((40_000, 81))),
                    _ => assert!(p.is_err(), "variant {variant} {addr} parsed"),
                }
            }
        }
    }

    #[test]
    fn arp_round_trip() {
        let req = arp_request([2; 6], [198, 19, 255, 254], [198, 18, 0, 2]);
        let mut a = mplb::wire::arp::Packet::new_checked(req[14..42].to_vec()).expect("arp");
        a.make_reply(mplb::wire::MacAddr([9; 6])).expect("reply");
        let mut reply = req.clone();
        reply[14..42].copy_from_slice(&a.into_inner());
        assert_eq!(arp_reply_from(&reply, [198, 18, 0, 2]), Some([9; 6]));
        assert_eq!(arp_reply_from(&req, [198, 18, 0, 2]), None);
    }
}
