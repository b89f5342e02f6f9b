//! ICMPv4 (RFC 792): echo, and the errors a load balancer must route or
//! answer (destination unreachable incl. fragmentation needed, time
//! exceeded), with access to the packet they quote.

use super::{Result, WireError, checksum, ipv4};

pub const HEADER_LEN: usize = 8;

/// ICMPv4 message types used here.
pub mod msg_type {
    pub const ECHO_REPLY: u8 = 0;
    pub const DEST_UNREACHABLE: u8 = 3;
    pub const SOURCE_QUENCH: u8 = 4;
    pub const REDIRECT: u8 = 5;
    pub const ECHO_REQUEST: u8 = 8;
    pub const TIME_EXCEEDED: u8 = 11;
    pub const PARAM_PROBLEM: u8 = 12;
}

/// True for the error types, which quote the offending packet.
pub fn is_error_type(ty: u8) -> bool {
    matches!(
        ty,
        msg_type::DEST_UNREACHABLE
            | msg_type::SOURCE_QUENCH
            | msg_type::REDIRECT
            | msg_type::TIME_EXCEEDED
            | msg_type::PARAM_PROBLEM
    )
}

/// Destination unreachable code "fragmentation needed and DF set".
pub const CODE_FRAG_NEEDED: u8 = 4;

/// The packet quoted by an ICMP error: its IP header (total length not
/// checked, the copy is truncated) and the first bytes of its L4 header
/// (up to 8, fewer if the quote is shorter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Embedded<'a> {
    pub ip: ipv4::Packet<&'a [u8]>,
    pub l4: &'a [u8],
}

icmp_view! {
    /// A view of an ICMPv4 message (the IPv4 payload).
    Packet {
        /// Next-hop MTU of "fragmentation needed" (RFC 1191).
        MTU: u16 = 6..8;
        DATA: at = 8;
    }
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Validates the 8-byte header.
    pub fn new_checked(buffer: T) -> Result<Self> {
        Self::with_min_len(buffer, HEADER_LEN)
    }

    /// Next-hop MTU if this is "fragmentation needed".
    pub fn next_hop_mtu(&self) -> Option<u16> {
        (self.msg_type() == msg_type::DEST_UNREACHABLE && self.code() == CODE_FRAG_NEEDED)
            .then(|| self.u16_at(field::MTU))
    }

    /// True for the error types that quote the offending packet.
    pub fn is_error(&self) -> bool {
        is_error_type(self.msg_type())
    }

    /// Bytes after the 8-byte header (echo data, or the quoted packet).
    pub fn data(&self) -> &[u8] {
        &self.b()[field::DATA..]
    }

    /// The quoted packet of an error message. `Malformed` if this is not an
    /// error type; errors of the quoted IPv4 header otherwise.
    pub fn embedded(&self) -> Result<Embedded<'_>> {
        if !self.is_error() {
            return Err(WireError::Malformed);
        }
        let ip = ipv4::Packet::new_header_checked(self.data())?;
        let rest = &self.data()[ip.header_len()..];
        let l4 = &rest[..rest.len().min(8)];
        Ok(Embedded { ip, l4 })
    }

    pub fn verify_checksum(&self) -> bool {
        checksum::sum(self.b()) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(self.b());
        self.set_checksum(c);
    }

    /// Turns an echo request into its reply in place, patching the checksum
    /// incrementally (only the type changes). `Malformed` if not a request.
    /// The IPv4 addresses are the caller's to swap.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ip_proto;
    use proptest::prelude::*;
    use std::net::Ipv4Addr;

    fn echo_request() -> Vec<u8> {
        let mut v = vec![8, 0, 0, 0, 0x12, 0x34, 0, 7];
        v.extend_from_slice(b"ping data");
        let c = checksum::checksum(&v);
        v[2..4].copy_from_slice(&c.to_be_bytes());
        v
    }

    #[test]
    fn echo_reply_in_place() {
        let mut v = echo_request();
        let mut p = Packet::new_checked(&mut v[..]).unwrap();
        assert!(p.verify_checksum());
        assert_eq!((p.echo_ident(), p.echo_seq()), (0x1234, 7));
        assert!(!p.is_error());
        assert_eq!(p.embedded(), Err(WireError::Malformed));
        p.make_echo_reply().unwrap();
        assert_eq!(p.msg_type(), msg_type::ECHO_REPLY);
        assert!(p.verify_checksum());
        assert_eq!(p.make_echo_reply(), Err(WireError::Malformed));
        assert_eq!(p.data(), b"ping data");
    }

    #[test]
    fn frag_needed_quotes_packet() {
        let mut inner = vec![0u8; 20];
        let (c, vip) = (Ipv4Addr::new(198, 18, 1, 2), Ipv4Addr::new(198, 18, 0, 10));
        ipv4::emit_header(&mut inner, vip, c, ip_proto::TCP, 1480, 64, 1).unwrap();
        inner.extend_from_slice(&[0, 80, 0x9c, 0x40, 1, 2, 3, 4, 0xff, 0xff]); // ports, seq, more
        let mut v = vec![3, 4, 0, 0, 0, 0, 0x05, 0x78];
        v.extend_from_slice(&inner);
        let mut p = Packet::new_checked(&mut v[..]).unwrap();
        p.fill_checksum();
        assert!(p.verify_checksum());
        assert!(p.is_error());
        assert_eq!(p.next_hop_mtu(), Some(1400));
        let e = p.embedded().unwrap();
        assert_eq!(
            (e.ip.src_addr(), e.ip.dst_addr(), e.ip.protocol()),
            (vip, c, 6)
        );
        assert_eq!(e.l4, &[0, 80, 0x9c, 0x40, 1, 2, 3, 4]);

        // Time exceeded has no MTU; a short quote yields a short L4 slice.
        v[0] = msg_type::TIME_EXCEEDED;
        v[1] = 0;
        let p = Packet::new_checked(&v[..8 + 20 + 4]).unwrap();
        assert_eq!(p.next_hop_mtu(), None);
        assert_eq!(p.embedded().unwrap().l4, &[0, 80, 0x9c, 0x40]);
        // A quote shorter than an IPv4 header is an error, not a panic.
        let p = Packet::new_checked(&v[..8 + 19]).unwrap();
        assert_eq!(p.embedded(), Err(WireError::Truncated));
    }

    proptest! {
        #[test]
        fn any_bytes(data in proptest::collection::vec(any::<u8>(), 0..80)) {
            let mut data = data;
            if let Ok(mut p) = Packet::new_checked(&mut data[..]) {
                if let Ok(e) = p.embedded() {
                    prop_assert!(e.l4.len() <= 8);
                    prop_assert!(8 + e.ip.header_len() + e.l4.len() <= p.data().len() + 8);
                }
                let valid = p.verify_checksum();
                if p.make_echo_reply().is_ok() {
                    prop_assert_eq!(p.verify_checksum(), valid);
                }
            } else {
                prop_assert!(data.len() < 8);
            }
        }
    }
}
