//! The VIP path's own parse: only what deciding and rewriting a TCP or UDP
//! packet to a VIP needs, read at fixed offsets into a small record.
//!
//! It covers the frames a load balancer forwards: Ethernet untagged or with
//! one 802.1Q tag, IPv4 without options or IPv6 without extension headers,
//! not a fragment, a complete TCP or UDP header. Everything else — ARP,
//! neighbour discovery, ICMP, fragments, IPv4 options, IPv6 extension
//! headers, stacked tags, anything malformed — is left to the full parse
//! ([`crate::wire::parse::parse_frame`]) and the general path of
//! [`super::process`], as is a covered packet whose destination is no VIP
//! address (the host's own traffic). Where it covers a frame, it reads what
//! the full parse would: the same checks, the same option walk
//! ([`parse::summarize_options`]), the same flow key and hash. The tests
//! hold the two against each other on arbitrary frames.
//!
//! Why a second parse: the full one fills a 152-byte record every frame
//! (ICMP quotes, fragment facts, every TCP field) and the VIP decision reads
//! a fraction of it; this one writes only the flow key and a few bytes
//! (bench/README.md, "The VIP lane").

use super::flow_table::{Scope, SlotHint};
use super::hash::{FlowKey, HashVersion, flow_hash, flow_hash_v4};
use crate::wire::ethernet::ethertype;
use crate::wire::ip_proto;
use crate::wire::parse::{self, MptcpSummary};
use crate::wire::tcp::Flags;

/// What the VIP path reads of a TCP or UDP packet. `covered` says whether
/// [`Brief::fill`] took the frame; the other fields mean nothing when not.
#[derive(Clone, Copy)]
pub(super) struct Brief {
    pub covered: bool,
    /// 4 or 6.
    pub version: u8,
    /// TTL or hop limit.
    pub ttl: u8,
    /// [`ip_proto::TCP`] or [`ip_proto::UDP`].
    pub protocol: u8,
    /// TCP flags; zero for UDP.
    pub flags: Flags,
    /// Offset of the IP header (14 or 18).
    pub l3_offset: usize,
    /// Offset just past the IP packet (bytes after it are padding).
    pub l3_end: usize,
    pub dst_port: u16,
    /// The 5-tuple, addresses in the 16-byte form, and its hash.
    pub key: FlowKey,
    pub hash: u64,
    /// Which flow-table entries the decision looks for (worth a prefetch),
    /// see [`super::decide::tcp_table_scope`]. Only the burst's prefetches
    /// read it: the first clears it where the bucket holds nothing of that
    /// scope, so that the second (the key's) is not tried.
    pub scope: Option<Scope>,
    /// TCP only: the MPTCP options seen.
    pub mptcp: MptcpSummary,
    /// Where the burst's key prefetch saw the flow in its bucket (see
    /// [`SlotHint`]); not set by [`Brief::fill`], and only a hint.
    pub hint: SlotHint,
}

impl Brief {
    /// A placeholder (`covered: false`) for the burst array.
    pub const EMPTY: Brief = Brief {
        covered: false,
        version: 0,
        ttl: 0,
        protocol: 0,
        flags: Flags(0),
        l3_offset: 0,
        l3_end: 0,
        dst_port: 0,
        key: FlowKey::ZERO,
        hash: 0,
        scope: None,
        mptcp: MptcpSummary {
            subtypes: 0,
            capable: None,
            join_syn: None,
            malformed: false,
        },
        hint: SlotHint::NONE,
    };

    /// The flow hash and the entries to prefetch, if the decision will
    /// look at the flow table.
    #[inline(always)]
    pub fn table_hash(&self) -> Option<(u64, Scope)> {
        match (self.covered, self.scope) {
            (true, Some(s)) => Some((self.hash, s)),
            _ => None,
        }
    }

    /// Reads `frame` if it is one this parse covers, in place, hashing its
    /// flow by `hash`; sets `covered` accordingly.
    #[inline(always)]
    pub fn fill(&mut self, frame: &[u8], hash: HashVersion) {
        self.covered = self.read(frame, hash).is_some();
    }

    #[inline(always)]
    fn read(&mut self, frame: &[u8], hash: HashVersion) -> Option<()> {
        // Ethernet: the EtherType at 12, or behind one 802.1Q tag. A
        // stacked tag is then an EtherType neither IPv4 nor IPv6. Each is
        // read and compared as one word, in memory order (no byte swap),
        // the second from wherever the first puts the IP header.
        const fn word(et: u16) -> u16 {
            u16::from_ne_bytes(et.to_be_bytes())
        }
        const VLAN: u16 = word(ethertype::VLAN);
        const IPV4: u16 = word(ethertype::IPV4);
        const IPV6: u16 = word(ethertype::IPV6);
        let h: &[u8; 18] = frame.first_chunk()?;
        let l3 = match u16::from_ne_bytes([h[12], h[13]]) {
            VLAN => 18,
            _ => 14,
        };
        let et: &[u8; 2] = h.get(l3 - 2..l3)?.try_into().ok()?;
        let et = u16::from_ne_bytes(*et);
        match et {
            IPV4 => self.ipv4(frame, l3, hash),
            IPV6 => self.ipv6(frame, l3),
            _ => None,
        }
    }

    /// IPv4 with a 20-byte header (version and IHL byte 0x45), its total
    /// length within the frame, no fragment bits.
    #[inline(always)]
    fn ipv4(&mut self, frame: &[u8], l3: usize, version: HashVersion) -> Option<()> {
        let ip: &[u8; 20] = frame.get(l3..)?.first_chunk()?;
        let &[0x45, _, t0, t1, _, _, f0, f1, ttl, protocol, ..] = ip else {
            return None;
        };
        let end = l3 + usize::from(u16::from_be_bytes([t0, t1]));
        // More-fragments or an offset: a fragment, hashed on 3 tuples by
        // the full path.
        if end > frame.len() || f0 & 0x3f != 0 || f1 != 0 {
            return None;
        }
        let src: &[u8; 4] = ip[12..16].try_into().ok()?;
        let dst: &[u8; 4] = ip[16..20].try_into().ok()?;
        let seg = frame.get(l3 + 20..end)?;
        let key = |ports: &[u8; 4]| FlowKey::from_wire_v4(src, dst, ports, protocol);
        // Version 2 hashes the header's own words (no byte string built).
        let hash = |key: &FlowKey, ports: &[u8; 4]| match version {
            HashVersion::V1 => flow_hash(key),
            HashVersion::V2 => flow_hash_v4(src, dst, ports, protocol),
        };
        (self.version, self.ttl, self.l3_offset, self.l3_end) = (4, ttl, l3, end);
        self.transport(seg, protocol, key, hash)
    }

    /// IPv6 whose next header is TCP or UDP (no extension header), its
    /// payload within the frame.
    #[inline(always)]
    fn ipv6(&mut self, frame: &[u8], l3: usize) -> Option<()> {
        let ip: &[u8; 40] = frame.get(l3..)?.first_chunk()?;
        let &[v, _, _, _, p0, p1, protocol, hop, ..] = ip;
        let end = l3 + 40 + usize::from(u16::from_be_bytes([p0, p1]));
        if v >> 4 != 6 || end > frame.len() {
            return None;
        }
        let src: &[u8; 16] = ip[8..24].try_into().ok()?;
        let dst: &[u8; 16] = ip[24..40].try_into().ok()?;
        let seg = frame.get(l3 + 40..end)?;
        let key = |ports: &[u8; 4]| FlowKey::from_wire(src, dst, ports, protocol);
        // The same in every version.
        let hash = |key: &FlowKey, _: &[u8; 4]| flow_hash(key);
        (self.version, self.ttl, self.l3_offset, self.l3_end) = (6, hop, l3, end);
        self.transport(seg, protocol, key, hash)
    }

    /// The TCP header (data offset ≥ 5, options within the segment) or the
    /// UDP header (8 bytes); the flow key (`key` of the ports' four bytes)
    /// and its hash (`hash` of the key and those bytes).
    #[inline(always)]
    fn transport(
        &mut self,
        seg: &[u8],
        protocol: u8,
        key: impl FnOnce(&[u8; 4]) -> FlowKey,
        hash: impl FnOnce(&FlowKey, &[u8; 4]) -> u64,
    ) -> Option<()> {
        let ports: &[u8; 4] = seg.first_chunk()?;
        self.key = key(ports);
        self.protocol = protocol;
        self.dst_port = self.key.dst_port();
        match protocol {
            ip_proto::TCP => {
                let t: &[u8; 20] = seg.first_chunk()?;
                let options = seg.get(20..usize::from(t[12] >> 4) * 4)?;
                self.flags = Flags(t[13]);
                self.mptcp = MptcpSummary::default();
                parse::summarize_options(options, &mut self.mptcp);
                self.scope = super::decide::tcp_table_scope(self.flags, &self.mptcp);
            }
            ip_proto::UDP => {
                let _: &[u8; 8] = seg.first_chunk()?;
                (self.flags, self.scope) = (Flags(0), None);
            }
            _ => return None,
        }
        self.hash = hash(&self.key, ports);
        Some(())
    }
}

#[cfg(test)]
#[path = "brief_tests.rs"]
mod tests;
