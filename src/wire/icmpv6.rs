//! ICMPv6 (RFC 4443) and the neighbour discovery messages (RFC 4861) a
//! load balancer answers for its VIPs.

use std::net::Ipv6Addr;

use super::ethernet::MacAddr;
use super::ipv6::{self, UpperLayer};
use super::{Result, WireError, checksum, ip_proto};

pub const HEADER_LEN: usize = 8;
/// NS/NA without options.
pub const ND_LEN: usize = 24;

/// ICMPv6 message types used here.
pub mod msg_type {
    pub const DEST_UNREACHABLE: u8 = 1;
    pub const PACKET_TOO_BIG: u8 = 2;
    pub const TIME_EXCEEDED: u8 = 3;
    pub const PARAM_PROBLEM: u8 = 4;
    pub const ECHO_REQUEST: u8 = 128;
    pub const ECHO_REPLY: u8 = 129;
    pub const NEIGHBOR_SOLICIT: u8 = 135;
    pub const NEIGHBOR_ADVERT: u8 = 136;
}

/// True for the error types: 0..=127 (RFC 4443 §2.1).
pub fn is_error_type(ty: u8) -> bool {
    ty < 128
}

/// Neighbour advertisement flags (first byte after the checksum).
pub mod na_flags {
    pub const ROUTER: u8 = 0x80;
    pub const SOLICITED: u8 = 0x40;
    pub const OVERRIDE: u8 = 0x20;
}

/// The packet quoted by an ICMPv6 error: its IPv6 header (truncated copy),
/// where its upper layer is, and the first bytes of it (up to 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Embedded<'a> {
    pub ip: ipv6::Packet<&'a [u8]>,
    pub upper: UpperLayer,
    pub l4: &'a [u8],
}

/// A neighbour discovery option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NdOption<'a> {
    SourceLinkAddr(MacAddr),
    TargetLinkAddr(MacAddr),
    /// Any other type; `data` excludes the type and length bytes.
    Other {
        ty: u8,
        data: &'a [u8],
    },
}

/// Iterator over ND options; one `Err` item and then the end on a zero
/// length (which would never advance) or an option past the buffer.
#[derive(Debug, Clone)]
pub struct NdOptionIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for NdOptionIter<'a> {
    type Item = Result<NdOption<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        let (&ty, &units) = match self.rest {
            [] => return None,
            [t, l, ..] => (t, l),
            [_] => {
                self.rest = &[];
                return Some(Err(WireError::Truncated));
            }
        };
        let len = usize::from(units) * 8;
        if len == 0 || len > self.rest.len() {
            self.rest = &[];
            return Some(Err(if len == 0 {
                WireError::Malformed
            } else {
                WireError::Truncated
            }));
        }
        let (opt, rest) = self.rest.split_at(len);
        self.rest = rest;
        // len >= 8, so the data slice and the MAC read are in bounds.
        let data = &opt[2..];
        Some(Ok(match (ty, MacAddr::from_slice(data)) {
            (1, Some(m)) if len == 8 => NdOption::SourceLinkAddr(m),
            (2, Some(m)) if len == 8 => NdOption::TargetLinkAddr(m),
            _ => NdOption::Other { ty, data },
        }))
    }
}

icmp_view! {
    /// A view of an ICMPv6 message (the IPv6 upper-layer payload).
    Packet {
        MTU: u32 = 4..8;
        NA_FLAGS: u8 = 4;
        DATA: at = 8;
        TARGET: bytes = 8..24;
        ND_OPTIONS: at = 24;
    }
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Validates the 8-byte header, and 24 bytes for NS/NA (so the target
    /// address is there).
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::with_min_len(buffer, HEADER_LEN)?;
        let nd = matches!(
            p.b()[field::TYPE],
            msg_type::NEIGHBOR_SOLICIT | msg_type::NEIGHBOR_ADVERT
        );
        if nd && p.b().len() < ND_LEN {
            return Err(WireError::Truncated);
        }
        Ok(p)
    }

    /// The MTU of a packet-too-big message.
    pub fn mtu(&self) -> Option<u32> {
        (self.msg_type() == msg_type::PACKET_TOO_BIG).then(|| {
            let s = &self.b()[field::MTU];
            u32::from_be_bytes([s[0], s[1], s[2], s[3]])
        })
    }

    pub fn is_error(&self) -> bool {
        is_error_type(self.msg_type())
    }

    pub fn is_neighbor_discovery(&self) -> bool {
        matches!(
            self.msg_type(),
            msg_type::NEIGHBOR_SOLICIT | msg_type::NEIGHBOR_ADVERT
        )
    }

    /// Bytes after the 8-byte header.
    pub fn data(&self) -> &[u8] {
        &self.b()[field::DATA..]
    }

    /// The quoted packet of an error message (`Malformed` if not an error).
    pub fn embedded(&self) -> Result<Embedded<'_>> {
        if !self.is_error() {
            return Err(WireError::Malformed);
        }
        let data = self.data();
        let ip = ipv6::Packet::new_header_checked(data)?;
        let upper = ip.upper_layer()?;
        let rest = data.get(upper.offset..).unwrap_or(&[]);
        let l4 = &rest[..rest.len().min(8)];
        Ok(Embedded { ip, upper, l4 })
    }

    /// Target address of an NS/NA.
    pub fn target_addr(&self) -> Option<Ipv6Addr> {
        if !self.is_neighbor_discovery() {
            return None;
        }
        let a: [u8; 16] = self.b().get(field::TARGET)?.try_into().ok()?;
        Some(Ipv6Addr::from(a))
    }

    /// NA flags byte (R, S, O); 0 for other types.
    pub fn na_flags(&self) -> u8 {
        if self.msg_type() == msg_type::NEIGHBOR_ADVERT {
            self.b()[field::NA_FLAGS]
        } else {
            0
        }
    }

    /// Options of an NS/NA (empty iterator for other types).
    pub fn nd_options(&self) -> NdOptionIter<'_> {
        let rest = if self.is_neighbor_discovery() {
            self.b().get(field::ND_OPTIONS..).unwrap_or(&[])
        } else {
            &[]
        };
        NdOptionIter { rest }
    }

    /// The source link-layer address option of an NS, if present.
    pub fn source_link_addr(&self) -> Option<MacAddr> {
        self.nd_options().find_map(|o| match o {
            Ok(NdOption::SourceLinkAddr(m)) => Some(m),
            _ => None,
        })
    }

    /// The target link-layer address option of an NA, if present.
    pub fn target_link_addr(&self) -> Option<MacAddr> {
        self.nd_options().find_map(|o| match o {
            Ok(NdOption::TargetLinkAddr(m)) => Some(m),
            _ => None,
        })
    }

    /// Verifies the checksum with the IPv6 pseudo-header (the whole buffer
    /// is the message).
    pub fn verify_checksum(&self, src: &Ipv6Addr, dst: &Ipv6Addr) -> bool {
        checksum::upper_layer_v6(src, dst, ip_proto::ICMPV6, self.b()) == Some(0xffff)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    pub fn fill_checksum(&mut self, src: &Ipv6Addr, dst: &Ipv6Addr) -> Result<()> {
        checksum::fill(self.bm(), field::CHECKSUM, |b| {
            checksum::upper_layer_v6(src, dst, ip_proto::ICMPV6, b)
        })
    }

    /// Echo request → reply in place, checksum patched incrementally. The
    /// pseudo-header sum is unchanged when the caller swaps the addresses.
    pub fn make_echo_reply(&mut self) -> Result<()> {
        if self.msg_type() != msg_type::ECHO_REQUEST || self.code() != 0 {
            return Err(WireError::Malformed);
        }
        let old = u16::from_be_bytes([msg_type::ECHO_REQUEST, 0]);
        let new = u16::from_be_bytes([msg_type::ECHO_REPLY, 0]);
        let c = checksum::update16(self.checksum(), old, new);
        self.set_msg_type(msg_type::ECHO_REPLY);
        self.set_checksum(c);
        Ok(())
    }
}

/// Length of what [`emit_neighbor_advert`] writes.
pub const NA_WITH_TLL_LEN: usize = ND_LEN + 8;

/// Writes a neighbour advertisement for `target` with a target link-layer
/// address option (32 bytes) into `buf`, checksum filled for the given IPv6
/// source and destination. Returns the length written.
pub fn emit_neighbor_advert(
    buf: &mut [u8],
    target: &Ipv6Addr,
    mac: MacAddr,
    flags: u8,
    src: &Ipv6Addr,
    dst: &Ipv6Addr,
) -> Result<usize> {
    let b = buf.get_mut(..NA_WITH_TLL_LEN).ok_or(WireError::Truncated)?;
    b.fill(0);
    b[field::TYPE] = msg_type::NEIGHBOR_ADVERT;
    b[field::NA_FLAGS] = flags;
    b[field::TARGET].copy_from_slice(&target.octets());
    b[ND_LEN] = 2; // target link-layer address
    b[ND_LEN + 1] = 1; // 8 bytes
    b[ND_LEN + 2..].copy_from_slice(&mac.0);
    Packet { buffer: b }.fill_checksum(src, dst)?;
    Ok(NA_WITH_TLL_LEN)
}

/// Length of what [`emit_neighbor_solicit`] writes.
pub const NS_WITH_SLL_LEN: usize = ND_LEN + 8;

/// Writes a neighbour solicitation for `target` with a source link-layer
/// address option (32 bytes) into `buf`, checksum filled for the given IPv6
/// source and destination (RFC 4861 §4.3). Returns the length written.
pub fn emit_neighbor_solicit(
    buf: &mut [u8],
    target: &Ipv6Addr,
    mac: MacAddr,
    src: &Ipv6Addr,
    dst: &Ipv6Addr,
) -> Result<usize> {
    let b = buf.get_mut(..NS_WITH_SLL_LEN).ok_or(WireError::Truncated)?;
    b.fill(0);
    b[field::TYPE] = msg_type::NEIGHBOR_SOLICIT;
    b[field::TARGET].copy_from_slice(&target.octets());
    b[ND_LEN] = 1; // source link-layer address
    b[ND_LEN + 1] = 1; // 8 bytes
    b[ND_LEN + 2..].copy_from_slice(&mac.0);
    Packet { buffer: b }.fill_checksum(src, dst)?;
    Ok(NS_WITH_SLL_LEN)
}

/// The solicited-node multicast address of `target` (ff02::1:ffXX:XXXX,
/// RFC 4291 §2.7.1): where a neighbour solicitation for it is sent.
pub fn solicited_node(target: &Ipv6Addr) -> Ipv6Addr {
    let t = target.octets();
    Ipv6Addr::from([
        0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, t[13], t[14], t[15],
    ])
}

/// The Ethernet multicast address of an IPv6 multicast address (33:33 and
/// its last 32 bits, RFC 2464 §7).
pub fn multicast_mac(group: &Ipv6Addr) -> MacAddr {
    let g = group.octets();
    MacAddr([0x33, 0x33, g[12], g[13], g[14], g[15]])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    #[test]
    fn neighbor_solicit_parses_back() {
        let (us, target) = (a("fd00:1::2"), a("fd00:1::11"));
        let mac = MacAddr([2, 0, 0, 0, 0, 0x10]);
        let group = solicited_node(&target);
        assert_eq!(group, a("ff02::1:ff00:11"));
        assert_eq!(
            multicast_mac(&group),
            MacAddr([0x33, 0x33, 0xff, 0, 0, 0x11])
        );
        let mut buf = [0xaau8; 40];
        assert_eq!(
            emit_neighbor_solicit(&mut buf, &target, mac, &us, &group),
            Ok(NS_WITH_SLL_LEN)
        );
        let p = Packet::new_checked(&buf[..NS_WITH_SLL_LEN]).unwrap();
        assert_eq!((p.msg_type(), p.code()), (msg_type::NEIGHBOR_SOLICIT, 0));
        assert!(p.verify_checksum(&us, &group));
        assert_eq!(p.target_addr(), Some(target));
        assert_eq!(p.source_link_addr(), Some(mac));
        assert_eq!(p.target_link_addr(), None);
        assert_eq!(&buf[NS_WITH_SLL_LEN..], &[0xaa; 8], "nothing past its end");
        assert_eq!(
            emit_neighbor_solicit(&mut [0u8; 31], &target, mac, &us, &group),
            Err(WireError::Truncated)
        );
    }

    #[test]
    fn echo() {
        let (s, d) = (a("2001:db8::1"), a("fd00:18::10"));
        let mut v = vec![128, 0, 0, 0, 0, 9, 0, 1, 0xab, 0xcd, 0xef];
        let mut p = Packet::new_checked(&mut v[..]).unwrap();
        p.fill_checksum(&s, &d).unwrap();
        assert!(p.verify_checksum(&s, &d));
        assert!(!p.verify_checksum(&s, &a("fd00:18::11")));
        assert_eq!((p.echo_ident(), p.echo_seq()), (9, 1));
        p.make_echo_reply().unwrap();
        assert_eq!(p.msg_type(), msg_type::ECHO_REPLY);
        // Addresses swapped by the caller: still valid.
        assert!(p.verify_checksum(&d, &s));
        assert_eq!(p.make_echo_reply(), Err(WireError::Malformed));
        assert_eq!(p.embedded(), Err(WireError::Malformed));
    }

    #[test]
    fn packet_too_big_quotes_packet() {
        let (c, vip) = (a("2001:db8::1"), a("fd00:18::10"));
        let mut inner = vec![0u8; 40];
        ipv6::emit_header(&mut inner, &vip, &c, ip_proto::TCP, 1400, 64).unwrap();
        inner.extend_from_slice(&[0, 80, 0x9c, 0x40, 1, 2, 3, 4, 5, 6]);
        let mut v = vec![2, 0, 0, 0, 0, 0, 0x05, 0x00];
        v.extend_from_slice(&inner);
        let p = Packet::new_checked(&v[..]).unwrap();
        assert!(p.is_error());
        assert_eq!(p.mtu(), Some(1280));
        let e = p.embedded().unwrap();
        assert_eq!((e.ip.src_addr(), e.ip.dst_addr()), (vip, c));
        assert_eq!((e.upper.protocol, e.upper.offset), (ip_proto::TCP, 40));
        assert_eq!(e.l4, &[0, 80, 0x9c, 0x40, 1, 2, 3, 4]);
        v[0] = msg_type::TIME_EXCEEDED;
        let p = Packet::new_checked(&v[..8 + 39]).unwrap();
        assert_eq!(p.mtu(), None);
        assert_eq!(p.embedded(), Err(WireError::Truncated));
    }

    #[test]
    fn neighbor_solicit_and_advert() {
        let (me, vip) = (a("fe80::1"), a("fd00:18::10"));
        let mac = MacAddr([2, 0, 0, 0, 0, 1]);
        // NS for the VIP with a source link-layer option and an unknown one.
        let mut ns = vec![135, 0, 0, 0, 0, 0, 0, 0];
        ns.extend_from_slice(&vip.octets());
        ns.extend_from_slice(&[1, 1, 2, 0, 0, 0, 0, 1]);
        ns.extend_from_slice(&[14, 1, 0, 0, 0, 0, 0, 0]);
        let p = Packet::new_checked(&ns[..]).unwrap();
        assert_eq!(p.target_addr(), Some(vip));
        assert_eq!(p.source_link_addr(), Some(mac));
        assert_eq!(p.target_link_addr(), None);
        assert_eq!(p.nd_options().count(), 2);
        assert_eq!(Packet::new_checked(&ns[..23]), Err(WireError::Truncated));

        // A zero-length option ends the walk with one error.
        let mut bad = ns.clone();
        bad[25] = 0;
        let p = Packet::new_checked(&bad[..]).unwrap();
        let got: Vec<_> = p.nd_options().collect();
        assert_eq!(got, [Err(WireError::Malformed)]);

        let mut buf = [0u8; 40];
        let vmac = MacAddr([2, 0, 0, 0, 0, 0x10]);
        let n = emit_neighbor_advert(&mut buf, &vip, vmac, na_flags::SOLICITED, &vip, &me).unwrap();
        let p = Packet::new_checked(&buf[..n]).unwrap();
        assert_eq!(p.msg_type(), msg_type::NEIGHBOR_ADVERT);
        assert_eq!(p.target_addr(), Some(vip));
        assert_eq!(p.target_link_addr(), Some(vmac));
        assert_eq!(p.na_flags(), na_flags::SOLICITED);
        assert!(p.verify_checksum(&vip, &me));
    }

    proptest! {
        #[test]
        fn any_bytes(data in proptest::collection::vec(any::<u8>(), 0..100)) {
            let mut data = data;
            if let Ok(mut p) = Packet::new_checked(&mut data[..]) {
                let n = p.nd_options().count();
                prop_assert!(n <= p.data().len() / 8 + 1);
                if let Ok(e) = p.embedded() {
                    prop_assert!(e.l4.len() <= 8);
                    prop_assert!(e.upper.offset <= e.ip.end());
                }
                let _ = (p.target_addr(), p.mtu(), p.source_link_addr());
                let valid = p.verify_checksum(&Ipv6Addr::LOCALHOST, &Ipv6Addr::UNSPECIFIED);
                if p.make_echo_reply().is_ok() {
                    prop_assert_eq!(p.verify_checksum(&Ipv6Addr::LOCALHOST, &Ipv6Addr::UNSPECIFIED), valid);
                }
            }
        }
    }
}
