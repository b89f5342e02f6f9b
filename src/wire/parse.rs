//! The per-packet classifier: one pass over a frame's headers into a small
//! `Copy` summary the datapath decides on. No allocation; checksums are not
//! verified here (offloads or the endpoints do that).

use std::net::IpAddr;

use super::addr::{self, Addr16};
use super::ethernet::{self, ethertype};
use super::mptcp::{self, MpCapable, MptcpOption};
use super::tcp::{self, Flags};
use super::{FragInfo, Result, WireError, icmpv4, icmpv6, ip_proto, ipv4, ipv6, udp};

/// What [`parse_frame`] found in a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parsed {
    /// 802.1Q VLAN id, if the frame was tagged.
    pub vlan: Option<u16>,
    /// The payload EtherType (inner one when tagged).
    pub ethertype: u16,
    /// Offset of the L3 header in the frame (14 or 18).
    pub l3_offset: usize,
    /// IP facts; `None` for ARP and other non-IP EtherTypes.
    pub ip: Option<IpInfo>,
}

/// IPv4 or IPv6 facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpInfo {
    /// 4 or 6.
    pub version: u8,
    /// Source and destination in the 16-byte form (IPv4 mapped, see
    /// [`addr`]); [`IpInfo::src_addr`] and [`IpInfo::dst_addr`] give them
    /// as std addresses.
    pub src: Addr16,
    pub dst: Addr16,
    /// TTL or hop limit.
    pub ttl: u8,
    /// Upper-layer protocol (after IPv6 extension headers).
    pub protocol: u8,
    /// Offset of the upper-layer header (or fragment data) in the frame.
    pub l4_offset: usize,
    /// Offset just past the IP packet in the frame; bytes after it are
    /// Ethernet padding.
    pub l3_end: usize,
    /// Set for any fragment (first or not).
    pub fragment: Option<FragInfo>,
    pub l4: L4,
}

/// Upper-layer facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L4 {
    Tcp(TcpInfo),
    Udp {
        src_port: u16,
        dst_port: u16,
    },
    /// ICMPv4 (version 4) or ICMPv6 (version 6).
    Icmp {
        ty: u8,
        code: u8,
        /// For error messages: the flow of the quoted packet, if readable.
        quoted: Option<Quoted>,
    },
    /// A fragment other than the first: no L4 header here.
    NonFirstFragment,
    /// Any other protocol (ESP, GRE, ...), not looked into.
    Other,
}

/// The flow an ICMP error is about, as seen in its quote (from the quoted
/// packet's sender's point of view, i.e. usually the reverse direction).
/// Addresses in the 16-byte form, of the outer packet's IP version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quoted {
    pub src: Addr16,
    pub dst: Addr16,
    pub protocol: u8,
    /// (source, destination) ports of a quoted TCP/UDP header.
    pub ports: Option<(u16, u16)>,
}

/// TCP facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpInfo {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: Flags,
    /// Header length in bytes, options included (20..=60).
    pub header_len: u8,
    pub window: u16,
    /// False if the option walk stopped at a malformed option (length 0/1,
    /// past the header); what was seen before it is still reported.
    pub options_ok: bool,
    pub mptcp: MptcpSummary,
}

/// Which MPTCP options a segment carried, from one walk over its options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MptcpSummary {
    /// Bit `n` set if an option of subtype `n` was present (well formed or
    /// not); see [`mptcp::subtype`].
    pub subtypes: u16,
    /// The first well-formed MP_CAPABLE.
    pub capable: Option<MpCapable>,
    /// The first MP_JOIN SYN form (length 12).
    pub join_syn: Option<JoinSyn>,
    /// Some kind-30 option was malformed (bad length for its subtype).
    pub malformed: bool,
}

/// The parts of an MP_JOIN SYN that route it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct JoinSyn {
    /// The receiver's (server's) token.
    pub token: u32,
    pub addr_id: u8,
    pub backup: bool,
}

impl MptcpSummary {
    /// Any kind-30 option at all.
    pub fn any(&self) -> bool {
        self.subtypes != 0 || self.malformed
    }
    pub fn has(&self, subtype: u8) -> bool {
        subtype < 16 && self.subtypes & (1 << subtype) != 0
    }
    pub fn has_capable(&self) -> bool {
        self.has(mptcp::subtype::MP_CAPABLE)
    }
    pub fn has_join(&self) -> bool {
        self.has(mptcp::subtype::MP_JOIN)
    }
    pub fn has_dss(&self) -> bool {
        self.has(mptcp::subtype::DSS)
    }
    pub fn has_add_addr(&self) -> bool {
        self.has(mptcp::subtype::ADD_ADDR)
    }
}

impl IpInfo {
    /// The source as a std address.
    pub fn src_addr(&self) -> IpAddr {
        addr::to_ip(&self.src, self.version)
    }

    /// The destination as a std address.
    pub fn dst_addr(&self) -> IpAddr {
        addr::to_ip(&self.dst, self.version)
    }
}

impl Parsed {
    /// The TCP facts, if this is a TCP segment with its header.
    pub fn tcp(&self) -> Option<&TcpInfo> {
        match &self.ip {
            Some(IpInfo { l4: L4::Tcp(t), .. }) => Some(t),
            _ => None,
        }
    }

    /// (source, destination) ports for TCP and UDP.
    pub fn ports(&self) -> Option<(u16, u16)> {
        match self.ip?.l4 {
            L4::Tcp(t) => Some((t.src_port, t.dst_port)),
            L4::Udp { src_port, dst_port } => Some((src_port, dst_port)),
            _ => None,
        }
    }
}

/// Classifies one Ethernet frame. Errors: the Ethernet header is short or
/// stacked-tagged; an IP header is short, malformed or announces more than
/// the frame holds; a TCP/UDP/ICMP header that should be there is cut
/// short. Non-IP EtherTypes are `Ok` with `ip: None`.
pub fn parse_frame(frame: &[u8]) -> Result<Parsed> {
    let mut out = Err(WireError::Truncated);
    parse_frame_into(frame, &mut out);
    out
}

/// [`parse_frame`] writing its result into `out` (a reused slot: no copy
/// of the result).
#[inline(always)]
pub fn parse_frame_into(frame: &[u8], out: &mut Result<Parsed>) {
    let eth = match ethernet::Frame::new_checked(frame) {
        Ok(eth) => eth,
        Err(e) => {
            *out = Err(e);
            return;
        }
    };
    let l3_offset = eth.header_len();
    let et = eth.ethertype();
    let l3 = eth.payload();
    // Built in place, level by level (no copy of each level's result into
    // the next); on an error the partial result is replaced by the error.
    *out = Ok(Parsed {
        vlan: eth.vlan_id(),
        ethertype: et,
        l3_offset,
        ip: None,
    });
    let Ok(p) = out else {
        return;
    };
    let r = match et {
        ethertype::IPV4 => parse_ipv4(l3, l3_offset, &mut p.ip),
        ethertype::IPV6 => parse_ipv6(l3, l3_offset, &mut p.ip),
        _ => Ok(()),
    };
    if let Err(e) = r {
        *out = Err(e);
    }
}

#[inline(always)]
fn parse_ipv4(l3: &[u8], base: usize, out: &mut Option<IpInfo>) -> Result<()> {
    let p = ipv4::Packet::new_checked(l3)?;
    let hl = p.header_len();
    let fragment = p.frag_info();
    let protocol = p.protocol();
    let ip = out.insert(IpInfo {
        version: 4,
        src: addr::from_v4(p.src_addr().octets()),
        dst: addr::from_v4(p.dst_addr().octets()),
        ttl: p.ttl(),
        protocol,
        l4_offset: base + hl,
        l3_end: base + usize::from(p.total_len()),
        fragment,
        l4: L4::NonFirstFragment,
    });
    match fragment {
        Some(f) if !f.is_first() => Ok(()),
        _ => parse_l4(4, protocol, p.payload(), &mut ip.l4),
    }
}

fn parse_ipv6(l3: &[u8], base: usize, out: &mut Option<IpInfo>) -> Result<()> {
    let p = ipv6::Packet::new_checked(l3)?;
    let ul = p.upper_layer()?;
    let end = p.end();
    let ip = out.insert(IpInfo {
        version: 6,
        src: p.src_addr().octets(),
        dst: p.dst_addr().octets(),
        ttl: p.hop_limit(),
        protocol: ul.protocol,
        l4_offset: base + ul.offset,
        l3_end: base + end,
        fragment: ul.fragment,
        l4: L4::NonFirstFragment,
    });
    match ul.fragment {
        Some(f) if !f.is_first() => Ok(()),
        // offset <= end is guaranteed by the walk.
        _ => parse_l4(
            6,
            ul.protocol,
            l3.get(ul.offset..end).unwrap_or(&[]),
            &mut ip.l4,
        ),
    }
}

#[inline(always)]
fn parse_l4(version: u8, protocol: u8, seg: &[u8], out: &mut L4) -> Result<()> {
    if protocol == ip_proto::TCP {
        return parse_tcp(seg, out);
    }
    parse_other_l4(version, protocol, seg, out)
}

/// UDP, ICMP and the rest: out of the TCP path's line.
#[inline(never)]
fn parse_other_l4(version: u8, protocol: u8, seg: &[u8], out: &mut L4) -> Result<()> {
    *out = match protocol {
        ip_proto::UDP => {
            // Header only: a first fragment's length field covers data that
            // is not in this packet.
            let u = udp::Packet::new_header_checked(seg)?;
            L4::Udp {
                src_port: u.src_port(),
                dst_port: u.dst_port(),
            }
        }
        ip_proto::ICMP if version == 4 => {
            let m = icmpv4::Packet::new_checked(seg)?;
            let quoted = m.embedded().ok().map(|e| Quoted {
                src: addr::from_v4(e.ip.src_addr().octets()),
                dst: addr::from_v4(e.ip.dst_addr().octets()),
                protocol: e.ip.protocol(),
                ports: quoted_ports(e.ip.protocol(), e.l4),
            });
            L4::Icmp {
                ty: m.msg_type(),
                code: m.code(),
                quoted,
            }
        }
        ip_proto::ICMPV6 if version == 6 => {
            let m = icmpv6::Packet::new_checked(seg)?;
            let quoted = m.embedded().ok().map(|e| Quoted {
                src: e.ip.src_addr().octets(),
                dst: e.ip.dst_addr().octets(),
                protocol: e.upper.protocol,
                ports: quoted_ports(e.upper.protocol, e.l4),
            });
            L4::Icmp {
                ty: m.msg_type(),
                code: m.code(),
                quoted,
            }
        }
        _ => L4::Other,
    };
    Ok(())
}

fn quoted_ports(protocol: u8, l4: &[u8]) -> Option<(u16, u16)> {
    if protocol != ip_proto::TCP && protocol != ip_proto::UDP {
        return None;
    }
    match l4 {
        [a, b, c, d, ..] => Some((u16::from_be_bytes([*a, *b]), u16::from_be_bytes([*c, *d]))),
        _ => None,
    }
}

#[inline(always)]
fn parse_tcp(seg: &[u8], out: &mut L4) -> Result<()> {
    let t = tcp::Packet::new_checked(seg)?;
    *out = L4::Tcp(TcpInfo {
        src_port: t.src_port(),
        dst_port: t.dst_port(),
        seq: t.seq_number(),
        ack: t.ack_number(),
        flags: t.flags(),
        // header_len <= 60.
        header_len: t.header_len() as u8,
        window: t.window(),
        options_ok: true,
        mptcp: MptcpSummary::default(),
    });
    if let L4::Tcp(info) = out {
        info.options_ok = summarize_options(t.options(), &mut info.mptcp);
    }
    Ok(())
}

/// One walk over the TCP options, looking only into kind 30: a loop over
/// the remaining bytes that skips every other kind by its length (the same
/// framing rules as [`tcp::split_option`]: EOL ends the list, NOP is one
/// byte, a length below 2 or past the header stops the walk as malformed).
/// Returns false if the walk stopped at a malformed option. Written as
/// slice patterns so that each step costs one length test per byte read
/// (~15 instructions an option, ~8 a NOP; a Linux SYN has six).
#[inline(always)]
pub(crate) fn summarize_options(opts: &[u8], s: &mut MptcpSummary) -> bool {
    // NOP, NOP, timestamps: RFC 7323's recommended layout, what Linux, BSD
    // and Apple send on every segment after the SYN, stepped over in one
    // comparison. On an MPTCP data segment a DSS follows, alone or padded.
    // (The four kind and length bytes compared as one word.)
    const NOP_NOP_TS: [u8; 4] = [tcp::kind::NOP, tcp::kind::NOP, tcp::kind::TIMESTAMPS, 10];
    if let Some((ts, rest)) = opts.split_first_chunk::<12>()
        && ts.first_chunk().map(|k| u32::from_ne_bytes(*k)) == Some(u32::from_ne_bytes(NOP_NOP_TS))
    {
        if lone_dss(rest) {
            s.subtypes |= 1 << mptcp::subtype::DSS;
            return true;
        }
        return walk(rest, s);
    }
    walk(skip_syn_prefix(opts), s)
}

/// Whether `rest` is exactly one DSS option and nothing or two NOPs of
/// padding: what the walk would summarize as a DSS and nothing else (a
/// DSS with its flags byte is well formed and keeps nothing), in one test.
#[inline(always)]
fn lone_dss(rest: &[u8]) -> bool {
    let [mptcp::KIND, len, b2, _, ..] = rest else {
        return false;
    };
    let len = usize::from(*len);
    b2 >> 4 == mptcp::subtype::DSS
        && len >= 4
        && matches!(rest.get(len..), Some([] | [tcp::kind::NOP, tcp::kind::NOP]))
}

/// The walk itself, from wherever the known prefixes end.
#[inline(always)]
fn walk(mut rest: &[u8], s: &mut MptcpSummary) -> bool {
    loop {
        match rest {
            [] | [tcp::kind::EOL, ..] => return true,
            [tcp::kind::NOP, tail @ ..] => rest = tail,
            [kind, len, ..] => {
                let len = usize::from(*len);
                // Length 0 or 1 would never advance.
                if len < 2 {
                    return false;
                }
                let Some((opt, tail)) = rest.split_at_checked(len) else {
                    return false;
                };
                if *kind == mptcp::KIND {
                    summarize_mptcp(s, opt);
                }
                rest = tail;
            }
            [_] => return false,
        }
    }
}

/// MSS, SACK-permitted, timestamps (then NOP, window scale): the start of a
/// Linux SYN, stepped over in one comparison instead of one loop turn an
/// option (~15 instructions each). Only the kind and length bytes are
/// compared, so any values are accepted, and a well-formed prefix is
/// exactly what the walk would have skipped.
#[inline(always)]
fn skip_syn_prefix(opts: &[u8]) -> &[u8] {
    // Whole-array comparisons: one 4-byte compare each, not one a byte.
    if let Some((head, rest)) = opts.split_first_chunk::<16>() {
        if head[..2] == [2, 4] && head[4..8] == [4, 2, 8, 10] {
            // Linux then sends NOP, window scale.
            return match rest.split_first_chunk::<4>() {
                Some((&[1, 3, 3, _], after)) => after,
                _ => rest,
            };
        }
    }
    opts
}

#[inline(always)]
fn summarize_mptcp(s: &mut MptcpSummary, opt: &[u8]) {
    let &[_, _, b2, ..] = opt else {
        s.malformed = true;
        return;
    };
    let st = b2 >> 4;
    s.subtypes |= 1 << st;
    // The two forms on the fast paths, decoded here exactly as
    // `MptcpOption::parse` would: a DSS is well formed with its flags byte
    // (it carries nothing the summary keeps), and an MP_CAPABLE SYN of
    // length 4 has no key.
    match (st, opt) {
        (mptcp::subtype::DSS, [_, _, _, _, ..]) => return,
        (mptcp::subtype::DSS, _) => {
            s.malformed = true;
            return;
        }
        (mptcp::subtype::MP_CAPABLE, &[_, _, _, flags]) => {
            if s.capable.is_none() {
                s.capable = Some(MpCapable {
                    version: b2 & 0x0f,
                    flags,
                    form: mptcp::CapableForm::NoKey,
                });
            }
            return;
        }
        _ => {}
    }
    note_option(s, MptcpOption::parse(opt));
}

/// What the summary keeps of a parsed MPTCP option: the first MP_CAPABLE,
/// the first MP_JOIN SYN, and whether any was malformed.
fn note_option(s: &mut MptcpSummary, o: MptcpOption<'_>) {
    match o {
        MptcpOption::MpCapable(c) if s.capable.is_none() => s.capable = Some(c),
        MptcpOption::MpJoin(mptcp::MpJoin::Syn {
            backup,
            addr_id,
            token,
            ..
        }) if s.join_syn.is_none() => {
            s.join_syn = Some(JoinSyn {
                token,
                addr_id,
                backup,
            })
        }
        MptcpOption::Malformed { .. } => s.malformed = true,
        _ => {}
    }
}

/// Builds an Ethernet + IP frame for tests in this and other modules.
#[cfg(test)]
pub(crate) mod build {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    pub const CMAC: ethernet::MacAddr = ethernet::MacAddr([2, 0, 0, 0, 0, 1]);
    pub const LMAC: ethernet::MacAddr = ethernet::MacAddr([2, 0, 0, 0, 0, 0x10]);

    pub fn v4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, l4: &[u8]) -> Vec<u8> {
        let mut v = vec![0u8; 34];
        ethernet::emit_header(&mut v, LMAC, CMAC, ethertype::IPV4).unwrap();
        ipv4::emit_header(&mut v[14..], src, dst, proto, l4.len() as u16, 64, 1).unwrap();
        v.extend_from_slice(l4);
        v
    }

    pub fn v6(src: Ipv6Addr, dst: Ipv6Addr, proto: u8, l4: &[u8]) -> Vec<u8> {
        let mut v = vec![0u8; 54];
        ethernet::emit_header(&mut v, LMAC, CMAC, ethertype::IPV6).unwrap();
        ipv6::emit_header(&mut v[14..], &src, &dst, proto, l4.len() as u16, 64).unwrap();
        v.extend_from_slice(l4);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::build::*;
    use super::*;
    use crate::wire::WireError;
    use crate::wire::mptcp::CapableForm;
    use crate::wire::tcp::tests::segment;
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const C4: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 2);
    const VIP4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 10);

    fn c6() -> Ipv6Addr {
        "fd00:18:1::2".parse().unwrap()
    }
    fn vip6() -> Ipv6Addr {
        "fd00:18::10".parse().unwrap()
    }

    const MPC_SYN: [u8; 8] = [2, 4, 0x05, 0xb4, 30, 4, 0x01, 0x01];

    fn third_ack_opts(ck: u64, sk: u64) -> Vec<u8> {
        let mut o = vec![1, 1, 30, 20, 0x01, 0x01];
        o.extend_from_slice(&ck.to_be_bytes());
        o.extend_from_slice(&sk.to_be_bytes());
        o
    }

    #[test]
    fn mp_capable_syn_both_versions() {
        let seg = segment(Flags::SYN, &MPC_SYN, &[]);
        for f in [v4(C4, VIP4, 6, &seg), v6(c6(), vip6(), 6, &seg)] {
            let p = parse_frame(&f).unwrap();
            let ip = p.ip.unwrap();
            let t = p.tcp().unwrap();
            assert_eq!((p.vlan, p.l3_offset), (None, 14));
            assert_eq!(ip.l4_offset, if ip.version == 4 { 34 } else { 54 });
            assert_eq!(ip.l3_end, f.len());
            assert_eq!(p.ports(), Some((40000, 80)));
            assert!(t.flags.syn() && !t.flags.ack() && t.options_ok);
            assert_eq!(t.header_len, 28);
            let c = t.mptcp.capable.unwrap();
            assert_eq!((c.version, c.form), (1, CapableForm::NoKey));
            assert!(t.mptcp.has_capable() && !t.mptcp.has_dss() && !t.mptcp.malformed);
        }
        assert_eq!(
            parse_frame(&v4(C4, VIP4, 6, &segment(Flags::SYN, &[], &[])))
                .unwrap()
                .ip
                .unwrap()
                .src_addr(),
            IpAddr::V4(C4)
        );
    }

    #[test]
    fn third_ack_keys_and_join_token() {
        let sk = 0xd456_6925_ddf7_e962u64;
        let seg = segment(Flags::ACK, &third_ack_opts(0x4644_b275_7431_7ce1, sk), &[]);
        let p = parse_frame(&v6(c6(), vip6(), 6, &seg)).unwrap();
        let c = p.tcp().unwrap().mptcp.capable.unwrap();
        assert_eq!(c.receiver_key(), Some(sk));
        assert_eq!(c.sender_key(), Some(0x4644_b275_7431_7ce1));

        // The join SYN carries token(sk).
        let mut join = vec![30, 12, 0x10, 1];
        join.extend_from_slice(&mptcp::token_v1(sk).to_be_bytes());
        join.extend_from_slice(&[1, 2, 3, 4]);
        let seg = segment(Flags::SYN, &join, &[]);
        let p = parse_frame(&v4(C4, VIP4, 6, &seg)).unwrap();
        let m = p.tcp().unwrap().mptcp;
        assert_eq!(
            m.join_syn,
            Some(JoinSyn {
                token: 0xa119_08e9,
                addr_id: 1,
                backup: false
            })
        );
        assert!(m.has_join() && m.capable.is_none());
    }

    #[test]
    fn dss_other_and_malformed() {
        // DSS + ADD_ADDR echo + an MPTCP option with a bad length.
        let opts = [
            30, 4, 0x20, 0x01, 30, 8, 0x31, 1, 198, 18, 0, 10, 30, 5, 0x00, 0x01, 0, 1, 1, 1,
        ];
        let seg = segment(Flags::ACK, &opts, b"data");
        let p = parse_frame(&v4(C4, VIP4, 6, &seg)).unwrap();
        let t = p.tcp().unwrap();
        assert!(t.mptcp.has_dss() && t.mptcp.has_add_addr() && t.mptcp.has_capable());
        assert!(t.mptcp.malformed && t.mptcp.capable.is_none());
        assert!(t.options_ok);

        // Plain TCP: no kind 30.
        let seg = segment(Flags::ACK, &[1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2], &[]);
        let t = *parse_frame(&v4(C4, VIP4, 6, &seg)).unwrap().tcp().unwrap();
        assert!(!t.mptcp.any() && t.options_ok);

        // Option length 0 after an MP_CAPABLE: what came before is kept.
        let seg = segment(Flags::SYN, &[30, 4, 0x01, 0x01, 8, 0, 0, 0], &[]);
        let t = *parse_frame(&v4(C4, VIP4, 6, &seg)).unwrap().tcp().unwrap();
        assert!(!t.options_ok && t.mptcp.capable.is_some());
    }

    #[test]
    fn udp_vlan_and_arp() {
        let mut f = v4(
            C4,
            VIP4,
            17,
            &[0x13, 0x88, 0x00, 0x35, 0, 12, 0, 0, 1, 2, 3, 4],
        );
        // Insert a VLAN tag (id 42).
        f.splice(12..12, [0x81, 0x00, 0x00, 0x2a]);
        f.extend_from_slice(&[0; 6]); // padding
        let p = parse_frame(&f).unwrap();
        assert_eq!(
            (p.vlan, p.l3_offset, p.ethertype),
            (Some(42), 18, ethertype::IPV4)
        );
        assert_eq!(p.ports(), Some((5000, 53)));
        let ip = p.ip.unwrap();
        assert_eq!((ip.l4_offset, ip.l3_end), (38, f.len() - 6));

        let mut a = vec![0u8; 14 + 28];
        ethernet::emit_header(&mut a, ethernet::MacAddr::BROADCAST, CMAC, ethertype::ARP).unwrap();
        crate::wire::arp::emit(&mut a[14..], 1, (CMAC, C4), (ethernet::MacAddr::ZERO, VIP4))
            .unwrap();
        let p = parse_frame(&a).unwrap();
        assert_eq!((p.ethertype, p.ip), (ethertype::ARP, None));
    }

    #[test]
    fn fragments() {
        let seg = segment(Flags::ACK, &[], &[0; 16]);
        let mut f = v4(C4, VIP4, 6, &seg);
        // First fragment: L4 parsed, fragment reported.
        f[14 + 6] = 0x20; // MF
        let ip = parse_frame(&f).unwrap().ip.unwrap();
        assert!(matches!(ip.l4, L4::Tcp(_)));
        assert_eq!(
            ip.fragment,
            Some(FragInfo {
                offset: 0,
                more: true,
                id: 1
            })
        );
        // Later fragment: no L4.
        f[14 + 6] = 0x00;
        f[14 + 7] = 0x10; // offset 16 * 8
        let ip = parse_frame(&f).unwrap().ip.unwrap();
        assert_eq!(ip.l4, L4::NonFirstFragment);
        assert_eq!(ip.fragment.unwrap().offset, 128);

        // IPv6 non-first fragment.
        let mut body = vec![6, 0, 0x05, 0xa8, 0, 0, 0, 9];
        body.extend_from_slice(&[0xaa; 8]);
        let ip = parse_frame(&v6(c6(), vip6(), 44, &body))
            .unwrap()
            .ip
            .unwrap();
        assert_eq!(
            (ip.protocol, ip.l4, ip.l4_offset),
            (6, L4::NonFirstFragment, 62)
        );
        assert_eq!(
            ip.fragment,
            Some(FragInfo {
                offset: 1448,
                more: false,
                id: 9
            })
        );
    }

    #[test]
    fn icmp_errors_carry_the_flow() {
        // Frag needed about a VIP → client TCP packet.
        let mut q = vec![0u8; 20];
        ipv4::emit_header(&mut q, VIP4, C4, 6, 1480, 64, 3).unwrap();
        q.extend_from_slice(&[0, 80, 0x9c, 0x40, 0, 0, 0, 1]);
        let mut m = vec![3, 4, 0, 0, 0, 0, 0x05, 0x78];
        m.extend_from_slice(&q);
        let p = parse_frame(&v4(Ipv4Addr::new(10, 0, 0, 1), VIP4, 1, &m)).unwrap();
        assert_eq!(
            p.ip.unwrap().l4,
            L4::Icmp {
                ty: 3,
                code: 4,
                quoted: Some(Quoted {
                    src: addr::from_v4(VIP4.octets()),
                    dst: addr::from_v4(C4.octets()),
                    protocol: 6,
                    ports: Some((80, 40000))
                })
            }
        );
        // ICMPv6 echo: no quote.
        let p = parse_frame(&v6(c6(), vip6(), 58, &[128, 0, 0, 0, 0, 1, 0, 1])).unwrap();
        assert_eq!(
            p.ip.unwrap().l4,
            L4::Icmp {
                ty: 128,
                code: 0,
                quoted: None
            }
        );
        // ICMP type 1 over IPv4 is not ICMPv6: left as Other.
        let p = parse_frame(&v4(C4, VIP4, 58, &[128, 0, 0, 0])).unwrap();
        assert_eq!(p.ip.unwrap().l4, L4::Other);
    }

    #[test]
    fn errors() {
        let seg = segment(Flags::SYN, &MPC_SYN, &[]);
        let f = v4(C4, VIP4, 6, &seg);
        assert_eq!(parse_frame(&f[..10]), Err(WireError::Truncated));
        assert_eq!(parse_frame(&f[..f.len() - 1]), Err(WireError::Truncated));
        // IP total length says the TCP header is cut short.
        let mut g = v4(C4, VIP4, 6, &seg[..12]);
        g.extend_from_slice(&seg[12..]);
        assert_eq!(parse_frame(&g), Err(WireError::Truncated));
        let mut g = f.clone();
        g[14 + 32] = 0x40; // TCP data offset 4
        assert_eq!(parse_frame(&g), Err(WireError::Malformed));
    }

    /// Minimal classic-pcap reader (microsecond, either byte order).
    fn pcap_frames(path: &str) -> Vec<Vec<u8>> {
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let le = match &data[..4] {
            [0xd4, 0xc3, 0xb2, 0xa1] => true,
            [0xa1, 0xb2, 0xc3, 0xd4] => false,
            m => panic!("{path}: bad magic {m:?}"),
        };
        let rd = |b: &[u8]| {
            let a = [b[0], b[1], b[2], b[3]];
            if le {
                u32::from_le_bytes(a)
            } else {
                u32::from_be_bytes(a)
            }
        };
        let mut out = Vec::new();
        let mut off = 24;
        while off + 16 <= data.len() {
            let incl = rd(&data[off + 8..off + 12]) as usize;
            off += 16;
            out.push(data[off..off + incl].to_vec());
            off += incl;
        }
        out
    }

    /// Golden check on a real Linux capture (tests/data/mptcp_join_v4.pcap,
    /// ground truth from tests/data/check_tokens.py and tshark): the server
    /// key learnt from the third ACK gives the token of the MP_JOIN SYN.
    #[test]
    fn real_capture_join_token() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/mptcp_join_v4.pcap");
        let frames = pcap_frames(path);
        let mut server_key = None;
        let mut join_token = None;
        let mut dss = 0;
        for f in &frames {
            let p = parse_frame(f).unwrap();
            let Some(t) = p.tcp() else { continue };
            assert!(t.options_ok && !t.mptcp.malformed);
            if let Some(c) = t.mptcp.capable {
                if let CapableForm::TwoKeys { receiver_key, .. } = c.form {
                    server_key.get_or_insert(receiver_key);
                }
            }
            if let Some(j) = t.mptcp.join_syn {
                assert!(t.flags.syn() && !t.flags.ack());
                assert_eq!(p.ip.unwrap().dst_addr(), IpAddr::V4(VIP4));
                join_token.get_or_insert(j.token);
            }
            dss += usize::from(t.mptcp.has_dss());
        }
        assert_eq!(server_key, Some(0xd456_6925_ddf7_e962));
        assert_eq!(join_token, Some(0xa119_08e9));
        assert_eq!(server_key.map(mptcp::token_v1), join_token);
        assert!(dss > 10, "Linux puts DSS on nearly every packet: {dss}");
    }

    /// Plain TCP and IPv6 captures: every frame parses, none has kind 30.
    #[test]
    fn real_capture_plain_and_v6() {
        for (name, mptcp) in [("tcp_v4", false), ("tcp_v6", false), ("mptcp_v6", true)] {
            let path = format!("{}/tests/data/{name}.pcap", env!("CARGO_MANIFEST_DIR"));
            let frames = pcap_frames(&path);
            assert!(frames.len() >= 20, "{name}");
            let mut any = false;
            for f in &frames {
                let p = parse_frame(f).unwrap();
                if let Some(t) = p.tcp() {
                    any |= t.mptcp.any();
                    assert!(t.options_ok);
                    let ip = p.ip.unwrap();
                    assert_eq!(ip.version, if name.ends_with("v6") { 6 } else { 4 });
                    assert!(ip.l4_offset + usize::from(t.header_len) <= ip.l3_end);
                }
            }
            assert_eq!(any, mptcp, "{name}");
        }
    }

    fn check(data: &[u8]) -> std::result::Result<(), TestCaseError> {
        if let Ok(p) = parse_frame(data) {
            prop_assert!(p.l3_offset == 14 || p.l3_offset == 18);
            if let Some(ip) = p.ip {
                prop_assert!(p.l3_offset < ip.l4_offset);
                prop_assert!(ip.l4_offset <= ip.l3_end && ip.l3_end <= data.len());
                if let L4::Tcp(t) = ip.l4 {
                    prop_assert!(t.header_len >= 20);
                    prop_assert!(ip.l4_offset + usize::from(t.header_len) <= ip.l3_end);
                }
                if ip.l4 == L4::NonFirstFragment {
                    prop_assert!(ip.fragment.is_some_and(|f| !f.is_first()));
                }
            }
        }
        Ok(())
    }

    /// The kind-30 summary step before its fast paths: every option through
    /// `MptcpOption::parse`.
    fn summarize_mptcp_reference(s: &mut MptcpSummary, opt: &[u8]) {
        match MptcpOption::subtype_of(opt) {
            Some(st) => s.subtypes |= 1 << st,
            None => {
                s.malformed = true;
                return;
            }
        }
        note_option(s, MptcpOption::parse(opt));
    }

    /// The walk of `split_option` items that `summarize_options` replaced:
    /// the reference it must agree with on any option bytes.
    fn summarize_options_reference(mut rest: &[u8]) -> (MptcpSummary, bool) {
        let mut s = MptcpSummary::default();
        while !rest.is_empty() {
            let Ok((kind, opt, next)) = tcp::split_option(rest) else {
                return (s, false);
            };
            match kind {
                tcp::kind::EOL => break,
                mptcp::KIND => summarize_mptcp_reference(&mut s, opt),
                _ => {}
            }
            rest = next;
        }
        (s, true)
    }

    proptest! {
        #[test]
        fn mptcp_summary_matches_reference(
            first in proptest::collection::vec(any::<u8>(), 0..30),
            second in proptest::collection::vec(any::<u8>(), 0..30),
            subtypes in (0u8..16, 0u8..16),
        ) {
            // Two kind-30 options into one summary (the first-one-wins
            // fields), each with a forced subtype nibble when long enough.
            let mut fast = MptcpSummary::default();
            let mut reference = MptcpSummary::default();
            for (mut opt, st) in [(first, subtypes.0), (second, subtypes.1)] {
                if let Some(b) = opt.get_mut(2) {
                    *b = (st << 4) | (*b & 0x0f);
                }
                summarize_mptcp(&mut fast, &opt);
                summarize_mptcp_reference(&mut reference, &opt);
            }
            prop_assert_eq!(fast, reference);
        }

        #[test]
        fn option_walk_matches_reference(
            prefix in prop_oneof![
                Just(&[][..]),
                Just(&[1u8, 1, 8, 10][..]),
                Just(&[2u8, 4, 5, 0xb4, 4, 2, 8, 10][..]),
                // A Linux SYN's MSS, SACK-permitted, timestamps, NOP, and
                // window scale but for its value.
                Just(&[2u8, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3][..]),
            ],
            opts in proptest::collection::vec(
                prop_oneof![Just(0u8), Just(1), Just(2), Just(4), Just(8), Just(30), Just(0x10), Just(0x20), any::<u8>()],
                0..40,
            ),
        ) {
            // The fast prefixes (summarize_options' shortcuts) followed by anything,
            // cut anywhere: the same summary as the reference walk.
            let opts = [prefix, &opts[..]].concat();
            let mut s = MptcpSummary::default();
            let ok = summarize_options(&opts, &mut s);
            prop_assert_eq!((s, ok), summarize_options_reference(&opts));
        }

        /// A data segment's options: NOP, NOP, timestamps, then an option
        /// of kind 30 shaped like a DSS (any length byte, subtype DSS or
        /// another), its body, and padding or more: the lone-DSS shortcut
        /// gives what the reference walk gives, wherever the shapes differ
        /// from what it takes.
        #[test]
        fn dss_after_timestamps_matches_reference(
            len in prop_oneof![0u8..=6, 7u8..=40, any::<u8>()],
            subtype in prop_oneof![Just(2u8), 0u8..16],
            body in proptest::collection::vec(any::<u8>(), 0..40),
            tail in prop_oneof![
                Just(vec![]),
                Just(vec![1u8, 1]),
                Just(vec![1u8]),
                Just(vec![1u8, 1, 1]),
                Just(vec![0u8, 0]),
                Just(vec![1u8, 30]),
                proptest::collection::vec(any::<u8>(), 0..12),
            ],
            cut in proptest::option::of(0usize..60),
        ) {
            let mut opts = vec![1u8, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 30, len, subtype << 4];
            opts.extend_from_slice(&body);
            // The body up to the length byte, then the tail after it.
            let end = (12 + usize::from(len)).max(15).min(opts.len());
            opts.truncate(end);
            opts.extend_from_slice(&tail);
            if let Some(c) = cut {
                opts.truncate(c);
            }
            let mut s = MptcpSummary::default();
            let ok = summarize_options(&opts, &mut s);
            prop_assert_eq!((s, ok), summarize_options_reference(&opts));
        }

        #[test]
        fn any_bytes(data in proptest::collection::vec(any::<u8>(), 0..160)) {
            check(&data)?;
        }

        #[test]
        fn mutated_valid_frames(
            which in 0usize..4,
            flips in proptest::collection::vec((0usize..200, any::<u8>()), 1..8),
            cut in 0usize..200,
        ) {
            let sk = 0x0123_4567_89ab_cdefu64;
            let seg = segment(Flags::ACK, &third_ack_opts(sk, !sk), b"payload");
            let syn = segment(Flags::SYN, &MPC_SYN, &[]);
            let mut f = match which {
                0 => v4(C4, VIP4, 6, &seg),
                1 => v6(c6(), vip6(), 6, &seg),
                2 => v6(c6(), vip6(), 0, &{ let mut h = vec![6, 0, 1, 4, 0, 0, 0, 0]; h.extend_from_slice(&syn); h }),
                _ => v4(C4, VIP4, 17, &[0, 1, 0, 2, 0, 8, 0, 0]),
            };
            prop_assert!(parse_frame(&f).is_ok());
            for (at, x) in flips {
                let at = at % f.len();
                f[at] ^= x;
            }
            check(&f)?;
            f.truncate(cut.min(f.len()));
            check(&f)?;
        }
    }
}
