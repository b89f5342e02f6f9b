//! IPv4 headers (RFC 791), options included.

use std::net::Ipv4Addr;

use super::{FragInfo, Result, WireError, check_announced_len, checksum};

/// Length of an IPv4 header without options.
pub const MIN_HEADER_LEN: usize = 20;

const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const FRAG_OFFSET_MASK: u16 = 0x1fff;

view! {
    /// A view of an IPv4 packet.
    Packet {
        VER_IHL: u8 = 0;
        DSCP_ECN: u8 = 1;
        TOTAL_LEN: u16 = 2..4 => total_len;
        IDENT: u16 = 4..6 => ident / set_ident;
        FLAGS_FRAG: u16 = 6..8;
        TTL: u8 = 8 => ttl / set_ttl;
        PROTOCOL: u8 = 9 => protocol / set_protocol;
        CHECKSUM: u16 = 10..12 => checksum / set_checksum;
        SRC: bytes = 12..16;
        DST: bytes = 16..20;
    }
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Validates version 4, IHL >= 5, the header within the buffer, and
    /// header length <= total length <= buffer length. The buffer may be
    /// longer than the total length (Ethernet padding); [`Packet::payload`]
    /// stops at the total length.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_header_checked(buffer)?;
        check_announced_len(usize::from(p.total_len()), p.header_len(), p.b().len())?;
        Ok(p)
    }

    /// Validates only the header (version, IHL, header within the buffer),
    /// not the total length: for the truncated copy of a packet that ICMP
    /// errors carry. [`Packet::payload`] then returns what the buffer holds.
    pub fn new_header_checked(buffer: T) -> Result<Self> {
        let p = Self::with_min_len(buffer, MIN_HEADER_LEN)?;
        let b = p.b();
        if b[field::VER_IHL] >> 4 != 4 {
            return Err(WireError::Malformed);
        }
        let hl = usize::from(b[field::VER_IHL] & 0x0f) * 4;
        check_announced_len(hl, MIN_HEADER_LEN, b.len())?;
        Ok(p)
    }

    pub fn version(&self) -> u8 {
        self.b()[field::VER_IHL] >> 4
    }

    /// Header length in bytes (20..=60).
    pub fn header_len(&self) -> usize {
        usize::from(self.b()[field::VER_IHL] & 0x0f) * 4
    }

    pub fn dscp(&self) -> u8 {
        self.b()[field::DSCP_ECN] >> 2
    }

    pub fn ecn(&self) -> u8 {
        self.b()[field::DSCP_ECN] & 0x03
    }

    pub fn dont_frag(&self) -> bool {
        self.u16_at(field::FLAGS_FRAG) & FLAG_DF != 0
    }

    pub fn more_frags(&self) -> bool {
        self.u16_at(field::FLAGS_FRAG) & FLAG_MF != 0
    }

    /// Fragment offset in bytes.
    pub fn frag_offset(&self) -> u16 {
        // 13-bit field in 8-byte units: at most 0x1fff * 8 = 65528, fits.
        (self.u16_at(field::FLAGS_FRAG) & FRAG_OFFSET_MASK) * 8
    }

    /// True for any fragment, first or not.
    pub fn is_fragment(&self) -> bool {
        self.more_frags() || self.frag_offset() != 0
    }

    /// Fragment facts if this is a fragment.
    pub fn frag_info(&self) -> Option<FragInfo> {
        self.is_fragment().then(|| FragInfo {
            offset: self.frag_offset(),
            more: self.more_frags(),
            id: u32::from(self.ident()),
        })
    }

    pub fn src_addr(&self) -> Ipv4Addr {
        let s = &self.b()[field::SRC];
        Ipv4Addr::new(s[0], s[1], s[2], s[3])
    }

    pub fn dst_addr(&self) -> Ipv4Addr {
        let s = &self.b()[field::DST];
        Ipv4Addr::new(s[0], s[1], s[2], s[3])
    }

    /// The header bytes, options included.
    pub fn header(&self) -> &[u8] {
        &self.b()[..self.header_len()]
    }

    /// The option bytes (empty when IHL is 5).
    pub fn options(&self) -> &[u8] {
        &self.b()[MIN_HEADER_LEN..self.header_len()]
    }

    /// True if the header checksum is correct.
    pub fn verify_checksum(&self) -> bool {
        checksum::sum(self.header()) == 0xffff
    }

    /// Offset just past the packet: the total length, clamped to the buffer
    /// (only a header-checked view can have a total length past the end).
    fn end(&self) -> usize {
        let total = usize::from(self.total_len());
        total.clamp(self.header_len(), self.b().len())
    }

    /// The bytes after the header, up to the total length.
    pub fn payload(&self) -> &[u8] {
        &self.b()[self.header_len()..self.end()]
    }

    /// Partial sum of the pseudo-header for the payload's L4 checksum.
    pub fn pseudo_header_sum(&self) -> u16 {
        let len = self.end() - self.header_len();
        // end <= total_len <= u16::MAX, so the length fits.
        checksum::pseudo_header_v4(
            self.src_addr(),
            self.dst_addr(),
            self.protocol(),
            len as u16,
        )
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    pub fn set_dscp_ecn(&mut self, value: u8) {
        self.bm()[field::DSCP_ECN] = value;
    }

    /// Sets the total length. Does not re-validate: keep it within the
    /// buffer or `payload()` is clamped to the buffer.
    pub fn set_total_len(&mut self, value: u16) {
        self.set16(field::TOTAL_LEN, value);
    }

    /// Sets DF/MF and the offset (in bytes; the low three bits are dropped).
    pub fn set_flags_frag(&mut self, dont_frag: bool, more_frags: bool, offset_bytes: u16) {
        let mut v = (offset_bytes / 8) & FRAG_OFFSET_MASK;
        if dont_frag {
            v |= FLAG_DF;
        }
        if more_frags {
            v |= FLAG_MF;
        }
        self.set16(field::FLAGS_FRAG, v);
    }

    pub fn set_src_addr(&mut self, a: Ipv4Addr) {
        self.bm()[field::SRC].copy_from_slice(&a.octets());
    }

    pub fn set_dst_addr(&mut self, a: Ipv4Addr) {
        self.bm()[field::DST].copy_from_slice(&a.octets());
    }

    /// Recomputes the header checksum from scratch.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(self.header());
        self.set_checksum(c);
    }

    /// Decrements the TTL and patches the checksum incrementally. Returns the
    /// new TTL, or `None` (nothing changed) if it was already 0 or 1 and the
    /// packet must not be forwarded.
    pub fn decrement_ttl(&mut self) -> Option<u8> {
        let ttl = self.ttl();
        if ttl <= 1 {
            return None;
        }
        // TTL is the high byte of the 16-bit word it shares with protocol.
        let proto = self.protocol();
        let old = u16::from_be_bytes([ttl, proto]);
        let new = u16::from_be_bytes([ttl - 1, proto]);
        let c = checksum::update16(self.checksum(), old, new);
        self.set_ttl(ttl - 1);
        self.set_checksum(c);
        Some(ttl - 1)
    }

    /// Swaps source and destination; the header checksum stays valid
    /// because the one's complement sum does not depend on word order.
    pub fn swap_addrs(&mut self) {
        let (s, d) = (self.src_addr(), self.dst_addr());
        self.set_src_addr(d);
        self.set_dst_addr(s);
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (h, e) = (self.header_len(), self.end());
        &mut self.bm()[h..e]
    }
}

/// Writes a 20-byte option-less IPv4 header (DF set, checksum filled) into
/// the start of `buf`; `payload_len` is the length of what follows it.
pub fn emit_header(
    buf: &mut [u8],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: u8,
    payload_len: u16,
    ttl: u8,
    ident: u16,
) -> Result<()> {
    let h = buf.first_chunk_mut().ok_or(WireError::Truncated)?;
    Template::new(src, dst, ttl).write(h, protocol, payload_len, ident)
}

/// An option-less header (DF set) with its addresses and TTL, to be
/// completed per packet with its protocol, length and identification: the
/// fixed part of a tunnel's outer header. The checksum is summed from the
/// fields, not from the bytes: the fixed fields' sum is kept, and each
/// packet adds its own three.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    /// The header with protocol, total length, identification and checksum 0.
    bytes: [u8; MIN_HEADER_LEN],
    /// The one's complement sum of the fixed fields, folded.
    sum: u16,
}

impl Template {
    pub fn new(src: Ipv4Addr, dst: Ipv4Addr, ttl: u8) -> Template {
        let (s, d) = (src.octets(), dst.octets());
        let [f0, f1] = FLAG_DF.to_be_bytes();
        let bytes = [
            0x45, 0, 0, 0, 0, 0, f0, f1, ttl, 0, 0, 0, s[0], s[1], s[2], s[3], d[0], d[1], d[2],
            d[3],
        ];
        // The addresses go in as 32-bit words, which `fold` reduces as it
        // would their 16-bit halves.
        let sum = checksum::fold(
            0x4500
                + u64::from(FLAG_DF)
                + (u64::from(ttl) << 8)
                + u64::from(u32::from_be_bytes(s))
                + u64::from(u32::from_be_bytes(d)),
        );
        Template { bytes, sum }
    }

    /// Writes the completed header into `h`; `payload_len` is the length of
    /// what follows it. `Malformed` if the total length passes 65535.
    #[inline(always)]
    pub fn write(
        &self,
        h: &mut [u8; MIN_HEADER_LEN],
        protocol: u8,
        payload_len: u16,
        ident: u16,
    ) -> Result<()> {
        let total = payload_len
            .checked_add(MIN_HEADER_LEN as u16)
            .ok_or(WireError::Malformed)?;
        // Four 16-bit values: no overflow in 32 bits.
        let sum = u32::from(self.sum) + u32::from(total) + u32::from(ident) + u32::from(protocol);
        *h = self.bytes;
        h[field::TOTAL_LEN].copy_from_slice(&total.to_be_bytes());
        h[field::IDENT].copy_from_slice(&ident.to_be_bytes());
        h[field::PROTOCOL] = protocol;
        let c = checksum::finish(checksum::fold32(sum));
        h[field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const S: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const D: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);

    fn packet(payload: usize) -> Vec<u8> {
        let mut v = vec![0u8; 20 + payload];
        emit_header(&mut v, S, D, 6, payload as u16, 64, 0x1234).unwrap();
        v
    }

    #[test]
    fn roundtrip() {
        let mut v = packet(8);
        v.extend_from_slice(&[0xee; 6]); // Ethernet padding past total length
        let p = Packet::new_checked(&v[..]).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.total_len(), 28);
        assert_eq!(p.ident(), 0x1234);
        assert!(p.dont_frag());
        assert!(!p.is_fragment());
        assert_eq!(p.frag_info(), None);
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), 6);
        assert_eq!(p.src_addr(), S);
        assert_eq!(p.dst_addr(), D);
        assert!(p.verify_checksum());
        assert_eq!(p.payload().len(), 8);
        assert!(p.options().is_empty());
    }

    #[test]
    fn options_and_fragments() {
        let mut v = [0u8; 24 + 4];
        v[0] = 0x46;
        v[2..4].copy_from_slice(&28u16.to_be_bytes());
        v[20..24].copy_from_slice(&[1, 1, 1, 0]); // NOPs, EOL
        let mut p = Packet::new_checked(&mut v[..]).unwrap();
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.options(), &[1, 1, 1, 0]);
        assert_eq!(p.payload().len(), 4);
        p.set_flags_frag(false, true, 1480);
        assert_eq!(
            p.frag_info(),
            Some(FragInfo {
                offset: 1480,
                more: true,
                id: 0
            })
        );
        p.set_flags_frag(false, false, 2960);
        assert!(p.is_fragment());
        assert!(!p.more_frags());
        assert_eq!(p.frag_offset(), 2960);
        p.set_flags_frag(false, true, 0);
        assert!(p.is_fragment() && p.frag_info().unwrap().is_first());
        p.fill_checksum();
        assert!(p.verify_checksum());
    }

    #[test]
    fn setters_keep_checksum_valid() {
        let mut v = packet(0);
        let mut p = Packet::new_checked(&mut v[..]).unwrap();
        assert_eq!(p.decrement_ttl(), Some(63));
        assert!(p.verify_checksum());
        p.swap_addrs();
        assert!(p.verify_checksum());
        assert_eq!(p.src_addr(), D);
        let old = p.dst_addr();
        let new = Ipv4Addr::new(10, 9, 8, 7);
        p.set_dst_addr(new);
        let c = checksum::update_ipv4_addr(p.checksum(), old, new);
        p.set_checksum(c);
        assert!(p.verify_checksum());
        p.set_ttl(1);
        assert_eq!(p.decrement_ttl(), None);
        assert_eq!(p.ttl(), 1);
    }

    #[test]
    fn errors() {
        let v = packet(4);
        assert_eq!(Packet::new_checked(&v[..19]), Err(WireError::Truncated));
        assert_eq!(Packet::new_checked(&v[..23]), Err(WireError::Truncated));
        assert!(Packet::new_header_checked(&v[..23]).is_ok());
        let mut w = v.clone();
        w[0] = 0x65;
        assert_eq!(Packet::new_checked(&w[..]), Err(WireError::Malformed));
        let mut w = v.clone();
        w[0] = 0x44;
        assert_eq!(Packet::new_checked(&w[..]), Err(WireError::Malformed));
        let mut w = v.clone();
        w[0] = 0x47; // 28-byte header in a 24-byte buffer
        assert_eq!(Packet::new_checked(&w[..]), Err(WireError::Truncated));
        let mut w = v.clone();
        w[2..4].copy_from_slice(&10u16.to_be_bytes()); // total < header
        assert_eq!(Packet::new_checked(&w[..]), Err(WireError::Malformed));
    }

    proptest! {
        /// The header written from field values reads back as those
        /// values, and its checksum is the RFC 1071 sum of its bytes.
        #[test]
        fn emitted_header_reads_back(
            src in any::<u32>(), dst in any::<u32>(), protocol in any::<u8>(),
            payload_len in 0u16..=65515, ttl in any::<u8>(), ident in any::<u16>(),
        ) {
            let (src, dst) = (Ipv4Addr::from(src), Ipv4Addr::from(dst));
            let mut v = vec![0xa5u8; 20];
            emit_header(&mut v, src, dst, protocol, payload_len, ttl, ident).unwrap();
            let mut zeroed = v.clone();
            zeroed[10..12].fill(0);
            prop_assert_eq!(u16::from_be_bytes([v[10], v[11]]), checksum::checksum(&zeroed));
            let p = Packet::new_header_checked(&v[..]).unwrap();
            prop_assert!(p.verify_checksum());
            prop_assert_eq!((p.src_addr(), p.dst_addr(), p.protocol(), p.ttl()), (src, dst, protocol, ttl));
            prop_assert_eq!((p.total_len(), p.ident(), p.dont_frag(), p.frag_info()), (payload_len + 20, ident, true, None));
        }

        #[test]
        fn any_bytes(data in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(p) = Packet::new_checked(&data[..]) {
                prop_assert!(p.header_len() >= 20 && p.header_len() <= data.len());
                prop_assert!(usize::from(p.total_len()) <= data.len());
                prop_assert_eq!(p.header_len() + p.payload().len(), usize::from(p.total_len()));
                let _ = (p.verify_checksum(), p.frag_info(), p.options(), p.pseudo_header_sum());
            }
            if let Ok(p) = Packet::new_header_checked(&data[..]) {
                prop_assert!(p.header_len() + p.payload().len() <= data.len());
                let _ = p.pseudo_header_sum();
            }
        }

        #[test]
        fn mutated_valid(
            payload in 0usize..40,
            flips in proptest::collection::vec((0usize..60, any::<u8>()), 1..6),
        ) {
            let mut v = packet(payload);
            for (at, x) in flips {
                let at = at % v.len();
                v[at] ^= x;
            }
            if let Ok(p) = Packet::new_checked(&v[..]) {
                prop_assert!(p.header_len() + p.payload().len() <= v.len());
            }
        }
    }
}
