//! Ethernet II frames with at most one 802.1Q VLAN tag.

use core::fmt;

use super::{Result, WireError};

/// EtherType values this crate knows.
pub mod ethertype {
    pub const IPV4: u16 = 0x0800;
    pub const ARP: u16 = 0x0806;
    pub const VLAN: u16 = 0x8100;
    pub const IPV6: u16 = 0x86dd;
    /// 802.1ad service tag (QinQ outer tag); not supported, reported as such.
    pub const QINQ: u16 = 0x88a8;
}

/// A 48-bit MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    /// Reads a MAC from the first six bytes of `b`, if there are six.
    pub fn from_slice(b: &[u8]) -> Option<MacAddr> {
        let b = b.get(..6)?;
        let mut a = [0u8; 6];
        a.copy_from_slice(b);
        Some(MacAddr(a))
    }

    pub const fn octets(&self) -> [u8; 6] {
        self.0
    }

    pub fn is_broadcast(&self) -> bool {
        self.0 == [0xff; 6]
    }

    /// Group bit set (includes broadcast).
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    pub fn is_unicast(&self) -> bool {
        !self.is_multicast()
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

mod field {
    use core::ops::Range;
    pub const DST: Range<usize> = 0..6;
    pub const SRC: Range<usize> = 6..12;
    pub const ETHERTYPE: Range<usize> = 12..14;
    /// Present only when ETHERTYPE is 0x8100.
    pub const TCI: Range<usize> = 14..16;
    pub const INNER_ETHERTYPE: Range<usize> = 16..18;
    pub const HEADER_LEN: usize = 14;
    pub const TAGGED_HEADER_LEN: usize = 18;
}

/// Length of an untagged Ethernet II header.
pub const HEADER_LEN: usize = field::HEADER_LEN;
/// Length of an Ethernet II header with one 802.1Q tag.
pub const TAGGED_HEADER_LEN: usize = field::TAGGED_HEADER_LEN;

/// A view of an Ethernet II frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
    /// 14 or 18: where the L3 header starts. Fixed by `new_checked`.
    header_len: usize,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Validates that the header (and the tag, if any) fits. Stacked tags
    /// (802.1Q in 802.1Q, or an 802.1ad outer tag) are `Unsupported`.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let b = buffer.as_ref();
        if b.len() < field::HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let outer = u16::from_be_bytes([b[12], b[13]]);
        let header_len = match outer {
            ethertype::VLAN => {
                if b.len() < field::TAGGED_HEADER_LEN {
                    return Err(WireError::Truncated);
                }
                let inner = u16::from_be_bytes([b[16], b[17]]);
                if inner == ethertype::VLAN || inner == ethertype::QINQ {
                    return Err(WireError::Unsupported);
                }
                field::TAGGED_HEADER_LEN
            }
            ethertype::QINQ => return Err(WireError::Unsupported),
            _ => field::HEADER_LEN,
        };
        Ok(Frame { buffer, header_len })
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    pub fn dst_addr(&self) -> MacAddr {
        let mut a = [0u8; 6];
        a.copy_from_slice(&self.b()[field::DST]);
        MacAddr(a)
    }

    pub fn src_addr(&self) -> MacAddr {
        let mut a = [0u8; 6];
        a.copy_from_slice(&self.b()[field::SRC]);
        MacAddr(a)
    }

    /// True if the frame carries an 802.1Q tag.
    pub fn is_tagged(&self) -> bool {
        self.header_len == field::TAGGED_HEADER_LEN
    }

    /// The whole 16-bit tag control information (PCP, DEI, VID), if tagged.
    pub fn vlan_tci(&self) -> Option<u16> {
        if self.is_tagged() {
            let t = &self.b()[field::TCI];
            Some(u16::from_be_bytes([t[0], t[1]]))
        } else {
            None
        }
    }

    /// The 12-bit VLAN id, if tagged.
    pub fn vlan_id(&self) -> Option<u16> {
        self.vlan_tci().map(|t| t & 0x0fff)
    }

    /// The EtherType of the payload (the inner one when tagged).
    pub fn ethertype(&self) -> u16 {
        let r = if self.is_tagged() {
            field::INNER_ETHERTYPE
        } else {
            field::ETHERTYPE
        };
        let t = &self.b()[r];
        u16::from_be_bytes([t[0], t[1]])
    }

    /// Offset of the L3 header in the frame (14 or 18).
    pub fn header_len(&self) -> usize {
        self.header_len
    }

    /// Everything after the Ethernet header (may include trailing padding).
    pub fn payload(&self) -> &[u8] {
        &self.b()[self.header_len..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    pub fn set_dst_addr(&mut self, mac: MacAddr) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&mac.0);
    }

    pub fn set_src_addr(&mut self, mac: MacAddr) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&mac.0);
    }

    /// Swaps source and destination MACs (for replies sent back out).
    pub fn swap_addrs(&mut self) {
        let (d, s) = (self.dst_addr(), self.src_addr());
        self.set_dst_addr(s);
        self.set_src_addr(d);
    }

    /// Sets the payload EtherType (the inner one when tagged).
    pub fn set_ethertype(&mut self, value: u16) {
        let r = if self.is_tagged() {
            field::INNER_ETHERTYPE
        } else {
            field::ETHERTYPE
        };
        self.buffer.as_mut()[r].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the VLAN id of a tagged frame, keeping PCP/DEI. Returns false
    /// (and changes nothing) if the frame is untagged.
    pub fn set_vlan_id(&mut self, vid: u16) -> bool {
        match self.vlan_tci() {
            Some(tci) => {
                let tci = (tci & 0xf000) | (vid & 0x0fff);
                self.buffer.as_mut()[field::TCI].copy_from_slice(&tci.to_be_bytes());
                true
            }
            None => false,
        }
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        let h = self.header_len;
        &mut self.buffer.as_mut()[h..]
    }
}

/// Writes an untagged Ethernet II header into the first 14 bytes of `buf`.
pub fn emit_header(buf: &mut [u8], dst: MacAddr, src: MacAddr, ethertype: u16) -> Result<()> {
    buf.get_mut(..field::HEADER_LEN)
        .ok_or(WireError::Truncated)?
        .copy_from_slice(&header(dst, src, ethertype));
    Ok(())
}

/// The untagged header [`emit_header`] writes, as a value.
#[inline]
pub fn header(dst: MacAddr, src: MacAddr, ethertype: u16) -> [u8; field::HEADER_LEN] {
    let (d, s, [e0, e1]) = (dst.0, src.0, ethertype.to_be_bytes());
    [
        d[0], d[1], d[2], d[3], d[4], d[5], s[0], s[1], s[2], s[3], s[4], s[5], e0, e1,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const A: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x0a]);
    const B: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x0b]);

    #[test]
    fn untagged() {
        let mut buf = [0u8; 20];
        emit_header(&mut buf, A, B, ethertype::IPV6).unwrap();
        let f = Frame::new_checked(&buf[..]).unwrap();
        assert_eq!(f.dst_addr(), A);
        assert_eq!(f.src_addr(), B);
        assert_eq!(f.ethertype(), ethertype::IPV6);
        assert_eq!(f.vlan_id(), None);
        assert_eq!(f.header_len(), 14);
        assert_eq!(f.payload().len(), 6);
    }

    #[test]
    fn tagged_and_setters() {
        let mut buf = [0u8; 18];
        emit_header(&mut buf, A, B, ethertype::VLAN).unwrap();
        buf[14..16].copy_from_slice(&0xa123u16.to_be_bytes()); // PCP 5, VID 0x123
        buf[16..18].copy_from_slice(&ethertype::IPV4.to_be_bytes());
        let mut f = Frame::new_checked(&mut buf[..]).unwrap();
        assert_eq!(f.vlan_id(), Some(0x123));
        assert_eq!(f.ethertype(), ethertype::IPV4);
        assert_eq!(f.header_len(), 18);
        assert!(f.payload().is_empty());
        f.swap_addrs();
        assert_eq!(f.dst_addr(), B);
        assert_eq!(f.src_addr(), A);
        assert!(f.set_vlan_id(0x7));
        assert_eq!(f.vlan_tci(), Some(0xa007));
        f.set_ethertype(ethertype::ARP);
        assert_eq!(f.ethertype(), ethertype::ARP);
        assert_eq!(&buf[12..14], &[0x81, 0x00]);
    }

    #[test]
    fn errors() {
        assert_eq!(
            Frame::new_checked(&[0u8; 13][..]),
            Err(WireError::Truncated)
        );
        let mut buf = [0u8; 18];
        buf[12..14].copy_from_slice(&[0x81, 0x00]);
        assert_eq!(Frame::new_checked(&buf[..17]), Err(WireError::Truncated));
        buf[16..18].copy_from_slice(&[0x81, 0x00]);
        assert_eq!(Frame::new_checked(&buf[..]), Err(WireError::Unsupported));
        buf[12..14].copy_from_slice(&[0x88, 0xa8]);
        assert_eq!(Frame::new_checked(&buf[..]), Err(WireError::Unsupported));
    }

    #[test]
    fn mac_display_and_kinds() {
        assert_eq!(A.to_string(), "02:00:00:00:00:0a");
        assert!(MacAddr::BROADCAST.is_broadcast());
        assert!(MacAddr::BROADCAST.is_multicast());
        assert!(A.is_unicast());
        assert_eq!(MacAddr::from_slice(&[1, 2, 3, 4, 5]), None);
        assert_eq!(
            MacAddr::from_slice(&[1, 2, 3, 4, 5, 6, 7]),
            Some(MacAddr([1, 2, 3, 4, 5, 6]))
        );
    }

    proptest! {
        #[test]
        fn any_bytes(data in proptest::collection::vec(any::<u8>(), 0..40)) {
            if data.len() < 14 {
                prop_assert_eq!(Frame::new_checked(&data[..]), Err(WireError::Truncated));
            } else if let Ok(f) = Frame::new_checked(&data[..]) {
                prop_assert!(f.header_len() <= data.len());
                prop_assert_eq!(f.payload().len(), data.len() - f.header_len());
                prop_assert_eq!(f.vlan_id().is_some(), f.header_len() == 18);
                let _ = (f.dst_addr(), f.src_addr(), f.ethertype());
            } else {
                // Only short buffers and stacked or 802.1ad tags are refused.
                let outer = u16::from_be_bytes([data[12], data[13]]);
                prop_assert!(data.len() < 18 || outer == ethertype::VLAN || outer == ethertype::QINQ);
            }
        }
    }
}
