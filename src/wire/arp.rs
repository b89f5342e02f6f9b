//! ARP for Ethernet/IPv4 (RFC 826): the 28-byte form only.

use std::net::Ipv4Addr;

use super::ethernet::MacAddr;
use super::{Result, WireError};

pub const PACKET_LEN: usize = 28;

/// ARP operation codes.
pub mod op {
    pub const REQUEST: u16 = 1;
    pub const REPLY: u16 = 2;
}

view! {
    /// A view of an Ethernet/IPv4 ARP packet.
    Packet {
        HTYPE: bytes = 0..2;
        PTYPE: bytes = 2..4;
        HLEN: u8 = 4;
        PLEN: u8 = 5;
        OPER: u16 = 6..8 => operation / set_operation;
        SHA: bytes = 8..14;
        SPA: bytes = 14..18;
        THA: bytes = 18..24;
        TPA: bytes = 24..28;
    }
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Validates the length and that this is the Ethernet (1) / IPv4
    /// (0x0800) form with address lengths 6 and 4; other forms are
    /// `Unsupported`.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::with_min_len(buffer, PACKET_LEN)?;
        let b = p.b();
        if b[field::HTYPE] != [0, 1]
            || b[field::PTYPE] != [0x08, 0x00]
            || b[field::HLEN] != 6
            || b[field::PLEN] != 4
        {
            return Err(WireError::Unsupported);
        }
        Ok(p)
    }

    fn mac(&self, r: core::ops::Range<usize>) -> MacAddr {
        let mut a = [0u8; 6];
        a.copy_from_slice(&self.b()[r]);
        MacAddr(a)
    }

    fn ip(&self, r: core::ops::Range<usize>) -> Ipv4Addr {
        let s = &self.b()[r];
        Ipv4Addr::new(s[0], s[1], s[2], s[3])
    }

    pub fn is_request(&self) -> bool {
        self.operation() == op::REQUEST
    }
    pub fn sender_mac(&self) -> MacAddr {
        self.mac(field::SHA)
    }
    pub fn sender_ip(&self) -> Ipv4Addr {
        self.ip(field::SPA)
    }
    pub fn target_mac(&self) -> MacAddr {
        self.mac(field::THA)
    }
    pub fn target_ip(&self) -> Ipv4Addr {
        self.ip(field::TPA)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    pub fn set_sender(&mut self, mac: MacAddr, ip: Ipv4Addr) {
        self.bm()[field::SHA].copy_from_slice(&mac.0);
        self.bm()[field::SPA].copy_from_slice(&ip.octets());
    }
    pub fn set_target(&mut self, mac: MacAddr, ip: Ipv4Addr) {
        self.bm()[field::THA].copy_from_slice(&mac.0);
        self.bm()[field::TPA].copy_from_slice(&ip.octets());
    }

    /// Turns a request into the reply "target IP is at `our_mac`": the old
    /// sender becomes the target, we become the sender. Returns `Malformed`
    /// (nothing changed) if this is not a request. The Ethernet header is
    /// the caller's: set its destination to the new target MAC.
    pub fn make_reply(&mut self, our_mac: MacAddr) -> Result<()> {
        if !self.is_request() {
            return Err(WireError::Malformed);
        }
        let (sha, spa, tpa) = (self.sender_mac(), self.sender_ip(), self.target_ip());
        self.set_operation(op::REPLY);
        self.set_target(sha, spa);
        self.set_sender(our_mac, tpa);
        Ok(())
    }
}

/// Writes a 28-byte Ethernet/IPv4 ARP packet into the start of `buf`.
pub fn emit(
    buf: &mut [u8],
    operation: u16,
    sender: (MacAddr, Ipv4Addr),
    target: (MacAddr, Ipv4Addr),
) -> Result<()> {
    let b = buf.get_mut(..PACKET_LEN).ok_or(WireError::Truncated)?;
    b[field::HTYPE].copy_from_slice(&[0, 1]);
    b[field::PTYPE].copy_from_slice(&[0x08, 0x00]);
    b[field::HLEN] = 6;
    b[field::PLEN] = 4;
    let mut p = Packet { buffer: b };
    p.set_operation(operation);
    p.set_sender(sender.0, sender.1);
    p.set_target(target.0, target.1);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CLIENT: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
    const US: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x10]);
    const CIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 10);

    #[test]
    fn request_to_reply() {
        let mut buf = [0u8; 28];
        emit(&mut buf, op::REQUEST, (CLIENT, CIP), (MacAddr::ZERO, VIP)).unwrap();
        let mut p = Packet::new_checked(&mut buf[..]).unwrap();
        assert!(p.is_request());
        assert_eq!(
            (p.sender_mac(), p.sender_ip(), p.target_ip()),
            (CLIENT, CIP, VIP)
        );
        p.make_reply(US).unwrap();
        assert_eq!(p.operation(), op::REPLY);
        assert_eq!((p.sender_mac(), p.sender_ip()), (US, VIP));
        assert_eq!((p.target_mac(), p.target_ip()), (CLIENT, CIP));
        // A reply cannot be replied to.
        assert_eq!(p.make_reply(US), Err(WireError::Malformed));
        assert_eq!(p.sender_mac(), US);
    }

    #[test]
    fn errors() {
        let mut buf = [0u8; 28];
        emit(&mut buf, op::REQUEST, (CLIENT, CIP), (MacAddr::ZERO, VIP)).unwrap();
        assert_eq!(Packet::new_checked(&buf[..27]), Err(WireError::Truncated));
        buf[5] = 16;
        assert_eq!(Packet::new_checked(&buf[..]), Err(WireError::Unsupported));
        assert_eq!(
            emit(&mut [0u8; 27], 1, (US, VIP), (US, VIP)),
            Err(WireError::Truncated)
        );
    }

    proptest! {
        #[test]
        fn any_bytes(data in proptest::collection::vec(any::<u8>(), 0..40)) {
            let mut data = data;
            if let Ok(mut p) = Packet::new_checked(&mut data[..]) {
                let was_request = p.is_request();
                prop_assert_eq!(p.make_reply(US).is_ok(), was_request);
            } else {
                prop_assert!(data.len() < 28 || data[0..6] != [0, 1, 8, 0, 6, 4]);
            }
        }
    }
}
