//! IPv6 headers (RFC 8200) and a bounded walk over extension headers.

use std::net::Ipv6Addr;

use super::{FragInfo, Result, WireError, checksum, ip_proto};

/// Length of the fixed IPv6 header.
pub const HEADER_LEN: usize = 40;

/// At most this many extension headers are walked; more is `Unsupported`.
/// Real traffic carries one or two; the bound keeps per-packet work small
/// against crafted chains.
pub const MAX_EXT_HEADERS: usize = 8;

/// Where the upper-layer header is, found by [`Packet::upper_layer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UpperLayer {
    /// Upper-layer protocol (TCP, UDP, ICMPv6, ESP, 59 = no next header, ...).
    pub protocol: u8,
    /// Offset of the upper-layer header from the start of the IPv6 header.
    pub offset: usize,
    /// Set if a fragment header was seen. When its offset is not 0 the
    /// bytes at `offset` are fragment data, not a header.
    pub fragment: Option<FragInfo>,
}

view! {
    /// A view of an IPv6 packet.
    Packet {
        VER_TC_FLOW: u32 = 0..4;
        PAYLOAD_LEN: u16 = 4..6 => payload_len;
        NEXT_HEADER: u8 = 6 => next_header / set_next_header;
        HOP_LIMIT: u8 = 7 => hop_limit / set_hop_limit;
        SRC: bytes = 8..24;
        DST: bytes = 24..40;
    }
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Validates version 6 and 40 + payload length within the buffer (which
    /// may be longer: Ethernet padding).
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_header_checked(buffer)?;
        if HEADER_LEN + usize::from(p.payload_len()) > p.buffer.as_ref().len() {
            return Err(WireError::Truncated);
        }
        Ok(p)
    }

    /// Validates only the fixed header: for the truncated copy inside an
    /// ICMPv6 error. [`Packet::payload`] then returns what the buffer holds.
    pub fn new_header_checked(buffer: T) -> Result<Self> {
        let p = Self::with_min_len(buffer, HEADER_LEN)?;
        if p.b()[0] >> 4 != 6 {
            return Err(WireError::Malformed);
        }
        Ok(p)
    }

    fn word0(&self) -> u32 {
        let s = &self.b()[field::VER_TC_FLOW];
        u32::from_be_bytes([s[0], s[1], s[2], s[3]])
    }

    pub fn version(&self) -> u8 {
        self.b()[0] >> 4
    }
    pub fn traffic_class(&self) -> u8 {
        (self.word0() >> 20) as u8
    }
    pub fn flow_label(&self) -> u32 {
        self.word0() & 0x000f_ffff
    }
    pub fn src_addr(&self) -> Ipv6Addr {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.b()[field::SRC]);
        Ipv6Addr::from(a)
    }
    pub fn dst_addr(&self) -> Ipv6Addr {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.b()[field::DST]);
        Ipv6Addr::from(a)
    }

    /// Offset just past the packet (40 + payload length), clamped to the
    /// buffer for header-checked views.
    pub fn end(&self) -> usize {
        (HEADER_LEN + usize::from(self.payload_len())).min(self.b().len())
    }

    /// Everything after the fixed header, extension headers included.
    pub fn payload(&self) -> &[u8] {
        &self.b()[HEADER_LEN..self.end()]
    }

    /// Walks the extension headers (hop-by-hop, routing, destination
    /// options, fragment, AH) and returns the upper-layer protocol and its
    /// offset. A non-first fragment stops the walk at the fragment header.
    /// Errors: a header running past the packet (`Truncated`); hop-by-hop not
    /// first, or two fragment headers (`Malformed`); more than
    /// [`MAX_EXT_HEADERS`] (`Unsupported`).
    pub fn upper_layer(&self) -> Result<UpperLayer> {
        walk_ext(self.b(), self.next_header(), self.end())
    }

    /// Partial sum of the pseudo-header for an upper-layer checksum, given
    /// the upper-layer protocol and its length.
    pub fn pseudo_header_sum(&self, protocol: u8, length: u32) -> u16 {
        checksum::pseudo_header_v6(&self.src_addr(), &self.dst_addr(), protocol, length)
    }
}

/// The extension-header walk, on the raw packet `b` (fixed header at 0)
/// whose valid bytes end at `end <= b.len()`.
#[inline]
pub(crate) fn walk_ext(b: &[u8], first: u8, end: usize) -> Result<UpperLayer> {
    let end = end.min(b.len());
    let mut next = first;
    let mut off = HEADER_LEN;
    let mut fragment: Option<FragInfo> = None;
    for i in 0..=MAX_EXT_HEADERS {
        let ext_len = match next {
            ip_proto::HOPOPT | ip_proto::IPV6_ROUTING | ip_proto::IPV6_DSTOPTS => {
                if next == ip_proto::HOPOPT && i != 0 {
                    return Err(WireError::Malformed);
                }
                let l = b.get(off + 1).filter(|_| off + 2 <= end);
                (usize::from(*l.ok_or(WireError::Truncated)?) + 1) * 8
            }
            ip_proto::AH => {
                let l = b.get(off + 1).filter(|_| off + 2 <= end);
                (usize::from(*l.ok_or(WireError::Truncated)?) + 2) * 4
            }
            ip_proto::IPV6_FRAGMENT => {
                if fragment.is_some() {
                    return Err(WireError::Malformed);
                }
                if off + 8 > end {
                    return Err(WireError::Truncated);
                }
                let h = &b[off..off + 8];
                let offm = u16::from_be_bytes([h[2], h[3]]);
                let f = FragInfo {
                    offset: offm & 0xfff8,
                    more: offm & 1 != 0,
                    id: u32::from_be_bytes([h[4], h[5], h[6], h[7]]),
                };
                fragment = Some(f);
                if f.offset != 0 {
                    // What follows is the middle of the original payload.
                    return Ok(UpperLayer {
                        protocol: h[0],
                        offset: off + 8,
                        fragment,
                    });
                }
                8
            }
            _ => {
                return Ok(UpperLayer {
                    protocol: next,
                    offset: off,
                    fragment,
                });
            }
        };
        if i == MAX_EXT_HEADERS {
            return Err(WireError::Unsupported);
        }
        // off <= end and ext_len <= 2048, so no overflow.
        if off + ext_len > end {
            return Err(WireError::Truncated);
        }
        next = b[off];
        off += ext_len;
    }
    Err(WireError::Unsupported)
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    pub fn set_traffic_class(&mut self, tc: u8) {
        let w = (self.word0() & !0x0ff0_0000) | (u32::from(tc) << 20);
        self.set32(field::VER_TC_FLOW, w);
    }
    pub fn set_flow_label(&mut self, label: u32) {
        let w = (self.word0() & !0x000f_ffff) | (label & 0x000f_ffff);
        self.set32(field::VER_TC_FLOW, w);
    }
    /// Sets the payload length; not re-validated (payload() clamps).
    pub fn set_payload_len(&mut self, v: u16) {
        self.set16(field::PAYLOAD_LEN, v);
    }
    pub fn set_src_addr(&mut self, a: &Ipv6Addr) {
        self.bm()[field::SRC].copy_from_slice(&a.octets());
    }
    pub fn set_dst_addr(&mut self, a: &Ipv6Addr) {
        self.bm()[field::DST].copy_from_slice(&a.octets());
    }
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let e = self.end();
        &mut self.bm()[HEADER_LEN..e]
    }
}

/// Writes a fixed IPv6 header into the first 40 bytes of `buf`.
pub fn emit_header(
    buf: &mut [u8],
    src: &Ipv6Addr,
    dst: &Ipv6Addr,
    next_header: u8,
    payload_len: u16,
    hop_limit: u8,
) -> Result<()> {
    buf.get_mut(..HEADER_LEN)
        .ok_or(WireError::Truncated)?
        .copy_from_slice(&header(src, dst, next_header, payload_len, hop_limit, 0));
    Ok(())
}

/// The header [`emit_header`] writes, as a value, with a flow label (its
/// low 20 bits).
#[inline]
pub fn header(
    src: &Ipv6Addr,
    dst: &Ipv6Addr,
    next_header: u8,
    payload_len: u16,
    hop_limit: u8,
    flow_label: u32,
) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0] = 0x60;
    h[field::HOP_LIMIT] = hop_limit;
    h[field::SRC].copy_from_slice(&src.octets());
    h[field::DST].copy_from_slice(&dst.octets());
    fill(&mut h, next_header, payload_len, flow_label);
    h
}

/// Sets a header's per-packet fields: next header, payload length and flow
/// label (its low 20 bits; the traffic class is kept).
#[inline(always)]
pub fn fill(h: &mut [u8; HEADER_LEN], next_header: u8, payload_len: u16, flow_label: u32) {
    let [_, l0, l1, l2] = flow_label.to_be_bytes();
    h[1] = (h[1] & 0xf0) | (l0 & 0x0f);
    h[2] = l1;
    h[3] = l2;
    h[field::PAYLOAD_LEN].copy_from_slice(&payload_len.to_be_bytes());
    h[field::NEXT_HEADER] = next_header;
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn addrs() -> (Ipv6Addr, Ipv6Addr) {
        (
            "2001:db8::1".parse().unwrap(),
            "fd00:18::10".parse().unwrap(),
        )
    }

    /// Builds a packet: fixed header, then `exts` (each: next-header value
    /// to announce it, bytes), then an upper layer of `proto` with `l4`.
    fn packet(exts: &[(u8, Vec<u8>)], proto: u8, l4: &[u8]) -> Vec<u8> {
        let (s, d) = addrs();
        let mut body = Vec::new();
        for (i, (_, bytes)) in exts.iter().enumerate() {
            let mut bytes = bytes.clone();
            bytes[0] = exts.get(i + 1).map_or(proto, |e| e.0);
            body.extend_from_slice(&bytes);
        }
        body.extend_from_slice(l4);
        let first = exts.first().map_or(proto, |e| e.0);
        let mut v = vec![0u8; 40];
        emit_header(&mut v, &s, &d, first, body.len() as u16, 64).unwrap();
        v.extend_from_slice(&body);
        v
    }

    fn frag(offset: u16, more: bool, id: u32) -> Vec<u8> {
        let mut f = vec![0u8; 8];
        f[2..4].copy_from_slice(&(offset | u16::from(more)).to_be_bytes());
        f[4..8].copy_from_slice(&id.to_be_bytes());
        f
    }

    #[test]
    fn fixed_header() {
        let mut v = packet(&[], ip_proto::TCP, &[0; 20]);
        v.extend_from_slice(&[0xee; 4]); // padding past the payload length
        let mut p = Packet::new_checked(&mut v[..]).unwrap();
        let (s, d) = addrs();
        assert_eq!((p.version(), p.payload_len(), p.hop_limit()), (6, 20, 64));
        assert_eq!((p.src_addr(), p.dst_addr()), (s, d));
        assert_eq!(p.payload().len(), 20);
        assert_eq!(
            p.upper_layer(),
            Ok(UpperLayer {
                protocol: ip_proto::TCP,
                offset: 40,
                fragment: None
            })
        );
        p.set_traffic_class(0xb8);
        p.set_flow_label(0xabcde);
        assert_eq!(
            (p.traffic_class(), p.flow_label(), p.version()),
            (0xb8, 0xabcde, 6)
        );
    }

    #[test]
    fn ext_chain() {
        let hbh = vec![0, 0, 1, 4, 0, 0, 0, 0]; // 8 bytes, PadN
        let mut rt = vec![0u8; 24];
        rt[1] = 2; // (2 + 1) * 8 = 24 bytes
        let dst = vec![0, 0, 1, 4, 0, 0, 0, 0];
        let mut ah = vec![0u8; 16];
        ah[1] = 2; // (2 + 2) * 4 = 16 bytes
        let v = packet(
            &[
                (ip_proto::HOPOPT, hbh.clone()),
                (ip_proto::IPV6_ROUTING, rt),
                (ip_proto::IPV6_FRAGMENT, frag(0, true, 0xdead_beef)),
                (ip_proto::AH, ah),
                (ip_proto::IPV6_DSTOPTS, dst),
            ],
            ip_proto::UDP,
            &[0; 8],
        );
        let p = Packet::new_checked(&v[..]).unwrap();
        assert_eq!(
            p.upper_layer(),
            Ok(UpperLayer {
                protocol: ip_proto::UDP,
                offset: 40 + 8 + 24 + 8 + 16 + 8,
                fragment: Some(FragInfo {
                    offset: 0,
                    more: true,
                    id: 0xdead_beef
                })
            })
        );

        // Non-first fragment: stop at the fragment header.
        let v = packet(
            &[(ip_proto::IPV6_FRAGMENT, frag(1448, false, 7))],
            ip_proto::TCP,
            &[0xaa; 16],
        );
        let ul = Packet::new_checked(&v[..]).unwrap().upper_layer().unwrap();
        assert_eq!((ul.protocol, ul.offset), (ip_proto::TCP, 48));
        assert_eq!(
            ul.fragment,
            Some(FragInfo {
                offset: 1448,
                more: false,
                id: 7
            })
        );

        // Hop-by-hop in second place is malformed.
        let v = packet(
            &[
                (ip_proto::IPV6_DSTOPTS, hbh.clone()),
                (ip_proto::HOPOPT, hbh.clone()),
            ],
            ip_proto::TCP,
            &[],
        );
        assert_eq!(
            Packet::new_checked(&v[..]).unwrap().upper_layer(),
            Err(WireError::Malformed)
        );

        // Too many headers.
        let many: Vec<_> = (0..=MAX_EXT_HEADERS)
            .map(|_| (ip_proto::IPV6_DSTOPTS, hbh.clone()))
            .collect();
        let v = packet(&many, ip_proto::TCP, &[]);
        assert_eq!(
            Packet::new_checked(&v[..]).unwrap().upper_layer(),
            Err(WireError::Unsupported)
        );
        let v = packet(&many[1..], ip_proto::TCP, &[]);
        assert_eq!(
            Packet::new_checked(&v[..])
                .unwrap()
                .upper_layer()
                .unwrap()
                .offset,
            40 + 8 * MAX_EXT_HEADERS
        );

        // A header announcing more than the payload holds.
        let mut big = hbh.clone();
        big[1] = 5;
        let v = packet(&[(ip_proto::HOPOPT, big)], ip_proto::TCP, &[]);
        assert_eq!(
            Packet::new_checked(&v[..]).unwrap().upper_layer(),
            Err(WireError::Truncated)
        );
    }

    #[test]
    fn errors() {
        let v = packet(&[], ip_proto::TCP, &[0; 4]);
        assert_eq!(Packet::new_checked(&v[..39]), Err(WireError::Truncated));
        assert_eq!(Packet::new_checked(&v[..43]), Err(WireError::Truncated));
        assert_eq!(
            Packet::new_header_checked(&v[..43])
                .unwrap()
                .payload()
                .len(),
            3
        );
        let mut w = v.clone();
        w[0] = 0x40;
        assert_eq!(Packet::new_checked(&w[..]), Err(WireError::Malformed));
        // Upper layer with no bytes after an ext header that ends the packet.
        let v = packet(&[], ip_proto::IPV6_FRAGMENT, &[0; 4]);
        assert_eq!(
            Packet::new_checked(&v[..]).unwrap().upper_layer(),
            Err(WireError::Truncated)
        );
    }

    proptest! {
        #[test]
        fn any_bytes(data in proptest::collection::vec(any::<u8>(), 0..120)) {
            for p in [Packet::new_checked(&data[..]), Packet::new_header_checked(&data[..])].into_iter().flatten() {
                prop_assert!(p.end() <= data.len());
                if let Ok(ul) = p.upper_layer() {
                    prop_assert!(ul.offset >= 40 && ul.offset <= p.end());
                }
            }
        }

        #[test]
        fn mutated_chain(flips in proptest::collection::vec((0usize..90, any::<u8>()), 1..6)) {
            let hbh = vec![0, 0, 1, 4, 0, 0, 0, 0];
            let mut v = packet(
                &[(ip_proto::HOPOPT, hbh), (ip_proto::IPV6_FRAGMENT, frag(0, true, 1))],
                ip_proto::TCP,
                &[0; 30],
            );
            for (at, x) in flips {
                let at = at % v.len();
                v[at] ^= x;
            }
            if let Ok(p) = Packet::new_checked(&v[..]) {
                if let Ok(ul) = p.upper_layer() {
                    prop_assert!(ul.offset <= p.end());
                }
            }
        }
    }
}
