//! UDP datagrams (RFC 768).

use std::net::{Ipv4Addr, Ipv6Addr};

use super::{Result, WireError, check_announced_len, checksum, ip_proto};

pub const HEADER_LEN: usize = 8;

view! {
    /// A view of a UDP datagram.
    Packet {
        SRC_PORT: u16 = 0..2 => src_port / set_src_port;
        DST_PORT: u16 = 2..4 => dst_port / set_dst_port;
        LENGTH: u16 = 4..6 => len / set_len;
        CHECKSUM: u16 = 6..8 => checksum / set_checksum;
    }
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Validates 8 <= length field <= buffer length. (Length 0, the IPv6
    /// jumbogram form, is refused as `Malformed`.)
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::with_min_len(buffer, HEADER_LEN)?;
        check_announced_len(usize::from(p.len()), HEADER_LEN, p.b().len())?;
        Ok(p)
    }

    /// Validates only the 8-byte header (for the copy in an ICMP error).
    pub fn new_header_checked(buffer: T) -> Result<Self> {
        Self::with_min_len(buffer, HEADER_LEN)
    }

    /// True if the length field says there is no payload.
    pub fn is_empty(&self) -> bool {
        usize::from(self.len()) <= HEADER_LEN
    }

    /// The datagram (header + payload) as the length field bounds it,
    /// clamped to the buffer.
    fn datagram(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        let end = usize::from(self.len()).clamp(HEADER_LEN, b.len());
        &b[..end]
    }

    pub fn payload(&self) -> &[u8] {
        &self.datagram()[HEADER_LEN..]
    }

    /// Verifies with an IPv4 pseudo-header; a zero checksum means "none"
    /// in IPv4 and verifies.
    pub fn verify_checksum_v4(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        if self.checksum() == 0 {
            return true;
        }
        checksum::upper_layer_v4(src, dst, ip_proto::UDP, self.datagram()) == Some(0xffff)
    }

    /// Verifies with an IPv6 pseudo-header; zero is invalid in IPv6.
    pub fn verify_checksum_v6(&self, src: &Ipv6Addr, dst: &Ipv6Addr) -> bool {
        self.checksum() != 0
            && checksum::upper_layer_v6(src, dst, ip_proto::UDP, self.datagram()) == Some(0xffff)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    fn fill_with(&mut self, ph: u16) {
        self.set_checksum(0);
        let c = checksum::finish(checksum::combine(&[ph, checksum::sum(self.datagram())]));
        // A computed 0 is sent as 0xffff: 0 means "no checksum".
        self.set_checksum(if c == 0 { 0xffff } else { c });
    }

    pub fn fill_checksum_v4(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        let len = self.datagram().len() as u16;
        self.fill_with(checksum::pseudo_header_v4(src, dst, ip_proto::UDP, len));
    }

    pub fn fill_checksum_v6(&mut self, src: &Ipv6Addr, dst: &Ipv6Addr) {
        let len = self.datagram().len() as u32;
        self.fill_with(checksum::pseudo_header_v6(src, dst, ip_proto::UDP, len));
    }
}

/// Writes an 8-byte UDP header into the start of `buf`, checksum 0 ("none";
/// fill it once the payload follows); `payload_len` is what follows it.
pub fn emit_header(buf: &mut [u8], src_port: u16, dst_port: u16, payload_len: u16) -> Result<()> {
    let len = payload_len
        .checked_add(HEADER_LEN as u16)
        .ok_or(WireError::Malformed)?;
    let h = buf.get_mut(..HEADER_LEN).ok_or(WireError::Truncated)?;
    let mut p = Packet { buffer: h };
    p.set_src_port(src_port);
    p.set_dst_port(dst_port);
    p.set_len(len);
    p.set_checksum(0);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn datagram(payload: &[u8]) -> Vec<u8> {
        let mut v = vec![0u8; 8];
        v[0..2].copy_from_slice(&5353u16.to_be_bytes());
        v[2..4].copy_from_slice(&53u16.to_be_bytes());
        v[4..6].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn fields_and_checksums() {
        let mut v = datagram(b"abc");
        v.push(0xee); // trailing byte beyond the length field
        let mut p = Packet::new_checked(&mut v[..]).unwrap();
        assert_eq!((p.src_port(), p.dst_port(), p.len()), (5353, 53, 11));
        assert_eq!(p.payload(), b"abc");
        let (s, d) = (Ipv4Addr::new(1, 2, 3, 4), Ipv4Addr::new(5, 6, 7, 8));
        assert!(p.verify_checksum_v4(s, d)); // zero = none in IPv4
        p.fill_checksum_v4(s, d);
        assert_ne!(p.checksum(), 0);
        assert!(p.verify_checksum_v4(s, d));
        assert!(!p.verify_checksum_v4(d, Ipv4Addr::new(5, 6, 7, 9)));
        let (s6, d6): (Ipv6Addr, Ipv6Addr) = ("::1".parse().unwrap(), "::2".parse().unwrap());
        p.fill_checksum_v6(&s6, &d6);
        assert!(p.verify_checksum_v6(&s6, &d6));
        p.set_checksum(0);
        assert!(!p.verify_checksum_v6(&s6, &d6));
    }

    #[test]
    fn errors() {
        let v = datagram(b"abc");
        assert_eq!(Packet::new_checked(&v[..7]), Err(WireError::Truncated));
        assert_eq!(Packet::new_checked(&v[..10]), Err(WireError::Truncated));
        assert!(Packet::new_header_checked(&v[..10]).is_ok());
        let mut w = v.clone();
        w[4..6].copy_from_slice(&0u16.to_be_bytes());
        assert_eq!(Packet::new_checked(&w[..]), Err(WireError::Malformed));
    }

    proptest! {
        #[test]
        fn any_bytes(data in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(p) = Packet::new_checked(&data[..]) {
                prop_assert_eq!(p.payload().len() + 8, usize::from(p.len()));
            }
            if let Ok(p) = Packet::new_header_checked(&data[..]) {
                prop_assert!(p.payload().len() + 8 <= data.len());
                let _ = p.verify_checksum_v6(&Ipv6Addr::LOCALHOST, &Ipv6Addr::LOCALHOST);
            }
        }
    }
}
