//! TCP segments (RFC 9293) and their options.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::mptcp::{self, MptcpOption};
use super::{Result, WireError, check_announced_len, checksum, ip_proto};

/// Length of a TCP header without options.
pub const MIN_HEADER_LEN: usize = 20;
/// Longest possible TCP header (data offset 15).
pub const MAX_HEADER_LEN: usize = 60;

/// The eight TCP flag bits of byte 13.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(pub u8);

impl Flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;

    /// True if every bit of `mask` is set.
    pub fn contains(self, mask: u8) -> bool {
        self.0 & mask == mask
    }
    pub fn fin(self) -> bool {
        self.contains(Self::FIN)
    }
    pub fn syn(self) -> bool {
        self.contains(Self::SYN)
    }
    pub fn rst(self) -> bool {
        self.contains(Self::RST)
    }
    pub fn psh(self) -> bool {
        self.contains(Self::PSH)
    }
    pub fn ack(self) -> bool {
        self.contains(Self::ACK)
    }
    pub fn urg(self) -> bool {
        self.contains(Self::URG)
    }
    pub fn ece(self) -> bool {
        self.contains(Self::ECE)
    }
    pub fn cwr(self) -> bool {
        self.contains(Self::CWR)
    }
}

view! {
    /// A view of a TCP segment (header, options, payload). The buffer is the IP
    /// payload: its length is the segment length used by the checksum.
    Packet {
        SRC_PORT: u16 = 0..2 => src_port / set_src_port;
        DST_PORT: u16 = 2..4 => dst_port / set_dst_port;
        SEQ: u32 = 4..8 => seq_number / set_seq_number;
        ACK: u32 = 8..12 => ack_number / set_ack_number;
        DATA_OFF: u8 = 12;
        FLAGS: u8 = 13;
        WINDOW: u16 = 14..16 => window / set_window;
        CHECKSUM: u16 = 16..18 => checksum / set_checksum;
        URGENT: u16 = 18..20 => urgent_ptr / set_urgent_ptr;
    }
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Validates data offset >= 5 and the header (options included) within
    /// the buffer.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::with_min_len(buffer, MIN_HEADER_LEN)?;
        let hl = usize::from(p.b()[field::DATA_OFF] >> 4) * 4;
        check_announced_len(hl, MIN_HEADER_LEN, p.b().len())?;
        Ok(p)
    }

    /// Header length in bytes (20..=60).
    pub fn header_len(&self) -> usize {
        usize::from(self.b()[field::DATA_OFF] >> 4) * 4
    }
    pub fn flags(&self) -> Flags {
        Flags(self.b()[field::FLAGS])
    }
    pub fn syn(&self) -> bool {
        self.flags().syn()
    }
    pub fn ack(&self) -> bool {
        self.flags().ack()
    }
    pub fn fin(&self) -> bool {
        self.flags().fin()
    }
    pub fn rst(&self) -> bool {
        self.flags().rst()
    }
    pub fn psh(&self) -> bool {
        self.flags().psh()
    }
    pub fn urg(&self) -> bool {
        self.flags().urg()
    }
    pub fn ece(&self) -> bool {
        self.flags().ece()
    }
    pub fn cwr(&self) -> bool {
        self.flags().cwr()
    }

    /// Raw option bytes (between the fixed header and the data offset).
    #[inline(always)]
    pub fn options(&self) -> &[u8] {
        &self.b()[MIN_HEADER_LEN..self.header_len()]
    }

    /// Iterator over the options, typed.
    pub fn options_iter(&self) -> OptionIter<'_> {
        OptionIter::new(self.options())
    }

    pub fn payload(&self) -> &[u8] {
        &self.b()[self.header_len()..]
    }

    /// Verifies the checksum over the whole buffer with an IPv4
    /// pseudo-header. Returns false if the segment is longer than 65535.
    pub fn verify_checksum_v4(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        checksum::upper_layer_v4(src, dst, ip_proto::TCP, self.b()) == Some(0xffff)
    }

    /// Verifies the checksum with an IPv6 pseudo-header.
    pub fn verify_checksum_v6(&self, src: &Ipv6Addr, dst: &Ipv6Addr) -> bool {
        checksum::upper_layer_v6(src, dst, ip_proto::TCP, self.b()) == Some(0xffff)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    pub fn set_flags(&mut self, f: Flags) {
        self.bm()[field::FLAGS] = f.0;
    }

    /// Mutable option bytes, e.g. to overwrite an option with NOPs.
    pub fn options_mut(&mut self) -> &mut [u8] {
        let h = self.header_len();
        &mut self.bm()[MIN_HEADER_LEN..h]
    }

    /// Recomputes the checksum with an IPv4 pseudo-header. Returns
    /// `Malformed` (nothing written) if the segment exceeds 65535 bytes.
    pub fn fill_checksum_v4(&mut self, src: Ipv4Addr, dst: Ipv4Addr) -> Result<()> {
        checksum::fill(self.bm(), field::CHECKSUM, |b| {
            checksum::upper_layer_v4(src, dst, ip_proto::TCP, b)
        })
    }

    /// Recomputes the checksum with an IPv6 pseudo-header.
    pub fn fill_checksum_v6(&mut self, src: &Ipv6Addr, dst: &Ipv6Addr) -> Result<()> {
        checksum::fill(self.bm(), field::CHECKSUM, |b| {
            checksum::upper_layer_v6(src, dst, ip_proto::TCP, b)
        })
    }
}

/// The fields of a TCP header, for emitting one (smoltcp's `Repr` idea):
/// the options are given as their bytes (see [`mptcp`]'s `emit_*` for
/// MPTCP's), padded by the caller to a multiple of 4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq_number: u32,
    pub ack_number: u32,
    pub flags: Flags,
    pub window: u16,
    pub options: &'a [u8],
}

impl Repr<'_> {
    /// The header's length, options included.
    pub fn header_len(&self) -> usize {
        MIN_HEADER_LEN + self.options.len()
    }

    /// Writes the header into the start of `buf`, checksum and urgent
    /// pointer 0 (fill the checksum once the payload follows). `Malformed`
    /// if the options are not a multiple of 4 or longer than 40 bytes.
    pub fn emit(&self, buf: &mut [u8]) -> Result<()> {
        let len = self.header_len();
        if self.options.len() % 4 != 0 || len > MAX_HEADER_LEN {
            return Err(WireError::Malformed);
        }
        let h = buf.get_mut(..len).ok_or(WireError::Truncated)?;
        h.fill(0);
        h[field::DATA_OFF] = ((len / 4) as u8) << 4;
        h[MIN_HEADER_LEN..].copy_from_slice(self.options);
        let mut p = Packet { buffer: h };
        p.set_src_port(self.src_port);
        p.set_dst_port(self.dst_port);
        p.set_seq_number(self.seq_number);
        p.set_ack_number(self.ack_number);
        p.set_flags(self.flags);
        p.set_window(self.window);
        Ok(())
    }
}

/// TCP option kinds this crate types.
pub mod kind {
    pub const EOL: u8 = 0;
    pub const NOP: u8 = 1;
    pub const MSS: u8 = 2;
    pub const WINDOW_SCALE: u8 = 3;
    pub const SACK_PERMITTED: u8 = 4;
    pub const SACK: u8 = 5;
    pub const TIMESTAMPS: u8 = 8;
    pub const MPTCP: u8 = 30;
}

/// One TCP option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TcpOption<'a> {
    EndOfList,
    Nop,
    Mss(u16),
    WindowScale(u8),
    SackPermitted,
    /// The SACK blocks, 8 bytes each (left edge, right edge); see
    /// [`sack_blocks`].
    Sack(&'a [u8]),
    Timestamps {
        tsval: u32,
        tsecr: u32,
    },
    Mptcp(MptcpOption<'a>),
    /// Any other kind; `data` excludes the kind and length bytes.
    Unknown {
        kind: u8,
        data: &'a [u8],
    },
}

/// Iterates (left, right) edges of a SACK option body.
pub fn sack_blocks(body: &[u8]) -> impl Iterator<Item = (u32, u32)> + '_ {
    body.chunks_exact(8).map(|c| {
        (
            u32::from_be_bytes([c[0], c[1], c[2], c[3]]),
            u32::from_be_bytes([c[4], c[5], c[6], c[7]]),
        )
    })
}

/// Iterator over TCP options. Yields `Err` once and then stops on an option
/// whose length is below 2 or runs past the header, or a known kind with the
/// wrong length. Stops after EOL. Always terminates: every step consumes at
/// least one byte.
#[derive(Debug, Clone)]
pub struct OptionIter<'a> {
    rest: &'a [u8],
}

impl<'a> OptionIter<'a> {
    pub fn new(options: &'a [u8]) -> Self {
        OptionIter { rest: options }
    }
}

/// Splits one option off the front of `rest`: `(kind, whole option, rest)`.
/// The whole option is 1 byte for EOL/NOP, else `len` bytes with `len >= 2`.
#[inline]
pub(crate) fn split_option(rest: &[u8]) -> Result<(u8, &[u8], &[u8])> {
    let Some(&k) = rest.first() else {
        return Err(WireError::Truncated);
    };
    if k == kind::EOL || k == kind::NOP {
        return Ok((k, &rest[..1], &rest[1..]));
    }
    let Some(&len) = rest.get(1) else {
        return Err(WireError::Truncated);
    };
    let len = usize::from(len);
    // Length 0 or 1 would never advance: refuse it.
    if len < 2 {
        return Err(WireError::Malformed);
    }
    if len > rest.len() {
        return Err(WireError::Truncated);
    }
    let (opt, rest) = rest.split_at(len);
    Ok((k, opt, rest))
}

fn typed(k: u8, opt: &[u8]) -> Result<TcpOption<'_>> {
    let body = opt.get(2..).unwrap_or(&[]);
    Ok(match k {
        kind::EOL => TcpOption::EndOfList,
        kind::NOP => TcpOption::Nop,
        kind::MSS => match body {
            [a, b] => TcpOption::Mss(u16::from_be_bytes([*a, *b])),
            _ => return Err(WireError::Malformed),
        },
        kind::WINDOW_SCALE => match body {
            [s] => TcpOption::WindowScale(*s),
            _ => return Err(WireError::Malformed),
        },
        kind::SACK_PERMITTED => match body {
            [] => TcpOption::SackPermitted,
            _ => return Err(WireError::Malformed),
        },
        kind::SACK => {
            if body.is_empty() || body.len() & 7 != 0 {
                return Err(WireError::Malformed);
            }
            TcpOption::Sack(body)
        }
        kind::TIMESTAMPS => match body {
            [a, b, c, d, e, f, g, h] => TcpOption::Timestamps {
                tsval: u32::from_be_bytes([*a, *b, *c, *d]),
                tsecr: u32::from_be_bytes([*e, *f, *g, *h]),
            },
            _ => return Err(WireError::Malformed),
        },
        kind::MPTCP => TcpOption::Mptcp(mptcp::MptcpOption::parse(opt)),
        _ => TcpOption::Unknown {
            kind: k,
            data: body,
        },
    })
}

impl<'a> Iterator for OptionIter<'a> {
    type Item = Result<TcpOption<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let item = split_option(self.rest).and_then(|(k, opt, rest)| {
            self.rest = if k == kind::EOL { &[] } else { rest };
            typed(k, opt)
        });
        if item.is_err() {
            // One error item, then the iteration ends.
            self.rest = &[];
        }
        Some(item)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A TCP segment with the given options (padded with EOL to 4 bytes) and
    /// payload. Used by other modules' tests too.
    pub(crate) fn segment(flags: u8, options: &[u8], payload: &[u8]) -> Vec<u8> {
        let mut opts = options.to_vec();
        while opts.len() & 3 != 0 {
            opts.push(0);
        }
        let hl = 20 + opts.len();
        let mut v = vec![0u8; hl];
        v[0..2].copy_from_slice(&40000u16.to_be_bytes());
        v[2..4].copy_from_slice(&80u16.to_be_bytes());
        v[4..8].copy_from_slice(&0x0102_0304u32.to_be_bytes());
        v[8..12].copy_from_slice(&0x0a0b_0c0du32.to_be_bytes());
        v[12] = ((hl / 4) as u8) << 4;
        v[13] = flags;
        v[14..16].copy_from_slice(&64240u16.to_be_bytes());
        v[20..].copy_from_slice(&opts);
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn header_fields() {
        let v = segment(Flags::SYN | Flags::ECE | Flags::CWR, &[], b"hi");
        let p = Packet::new_checked(&v[..]).unwrap();
        assert_eq!(p.src_port(), 40000);
        assert_eq!(p.dst_port(), 80);
        assert_eq!(p.seq_number(), 0x0102_0304);
        assert_eq!(p.ack_number(), 0x0a0b_0c0d);
        assert_eq!(p.header_len(), 20);
        assert!(p.syn() && p.ece() && p.cwr());
        assert!(!p.ack() && !p.fin() && !p.rst() && !p.psh() && !p.urg());
        assert_eq!(p.window(), 64240);
        assert_eq!(p.payload(), b"hi");
        assert_eq!(p.options_iter().count(), 0);
    }

    #[test]
    fn linux_syn_options() {
        // Linux MPTCP SYN: MSS 1460, SACK-permitted, timestamps, NOP, wscale 7,
        // MP_CAPABLE v1 (no key).
        let opts = [
            2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7, 30, 4, 0x01, 0x01,
        ];
        let v = segment(Flags::SYN, &opts, &[]);
        let p = Packet::new_checked(&v[..]).unwrap();
        let got: Vec<_> = p.options_iter().collect::<Result<_>>().unwrap();
        assert_eq!(got.len(), 6);
        assert_eq!(got[0], TcpOption::Mss(1460));
        assert_eq!(got[1], TcpOption::SackPermitted);
        assert_eq!(got[2], TcpOption::Timestamps { tsval: 1, tsecr: 0 });
        assert_eq!(got[3], TcpOption::Nop);
        assert_eq!(got[4], TcpOption::WindowScale(7));
        assert!(matches!(got[5], TcpOption::Mptcp(MptcpOption::MpCapable(c)) if c.version == 1));
    }

    #[test]
    fn sack_unknown_and_eol() {
        let mut opts = vec![1, 1, 5, 18];
        for x in [10u32, 20, 30, 40] {
            opts.extend_from_slice(&x.to_be_bytes());
        }
        opts.extend_from_slice(&[0xfd, 4, 0xaa, 0xbb, 0, 2, 4, 5, 0xb4]); // EOL then junk
        let v = segment(Flags::ACK, &opts, &[]);
        let p = Packet::new_checked(&v[..]).unwrap();
        let got: Vec<_> = p.options_iter().collect();
        assert_eq!(got.len(), 5);
        let Ok(TcpOption::Sack(body)) = got[2] else {
            panic!("{:?}", got[2])
        };
        assert_eq!(sack_blocks(body).collect::<Vec<_>>(), [(10, 20), (30, 40)]);
        assert_eq!(
            got[3],
            Ok(TcpOption::Unknown {
                kind: 0xfd,
                data: &[0xaa, 0xbb]
            })
        );
        assert_eq!(got[4], Ok(TcpOption::EndOfList));
    }

    #[test]
    fn malformed_options_end_iteration() {
        for (opts, err) in [
            (&[2u8, 0, 1, 1][..], WireError::Malformed),  // length 0
            (&[8, 1, 1, 1][..], WireError::Malformed),    // length 1
            (&[1, 1, 2, 8][..], WireError::Truncated),    // runs past the header
            (&[1, 1, 1, 0xfe][..], WireError::Truncated), // no length byte
            (&[2, 3, 0, 1][..], WireError::Malformed),    // MSS with length 3
            (&[5, 4, 0, 0][..], WireError::Malformed),    // SACK without a block
        ] {
            let v = segment(Flags::ACK, opts, &[]);
            let p = Packet::new_checked(&v[..]).unwrap();
            let got: Vec<_> = p.options_iter().collect();
            assert_eq!(got.last(), Some(&Err(err)), "{opts:?}");
            assert_eq!(got.iter().filter(|r| r.is_err()).count(), 1);
        }
    }

    #[test]
    fn data_offset_checks() {
        let mut v = segment(0, &[], &[]);
        v[12] = 0x40;
        assert_eq!(Packet::new_checked(&v[..]), Err(WireError::Malformed));
        v[12] = 0x60;
        assert_eq!(Packet::new_checked(&v[..]), Err(WireError::Truncated));
        assert_eq!(Packet::new_checked(&v[..19]), Err(WireError::Truncated));
    }

    #[test]
    fn checksum_roundtrip() {
        let s4 = Ipv4Addr::new(10, 0, 0, 1);
        let d4 = Ipv4Addr::new(10, 0, 0, 2);
        let mut v = segment(Flags::ACK | Flags::PSH, &[1, 1, 1], b"odd");
        let mut p = Packet::new_checked(&mut v[..]).unwrap();
        p.fill_checksum_v4(s4, d4).unwrap();
        assert!(p.verify_checksum_v4(s4, d4));
        assert!(!p.verify_checksum_v4(s4, Ipv4Addr::new(10, 0, 0, 3)));
        // Incremental port rewrite keeps it valid.
        let c = checksum::update16(p.checksum(), p.dst_port(), 8080);
        p.set_dst_port(8080);
        p.set_checksum(c);
        assert!(p.verify_checksum_v4(s4, d4));

        let s6: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let d6: Ipv6Addr = "2001:db8::2".parse().unwrap();
        p.fill_checksum_v6(&s6, &d6).unwrap();
        assert!(p.verify_checksum_v6(&s6, &d6));
        assert!(!p.verify_checksum_v6(&d6, &"2001:db8::3".parse().unwrap()));
    }

    proptest! {
        #[test]
        fn any_bytes(data in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(p) = Packet::new_checked(&data[..]) {
                prop_assert!(p.header_len() >= 20 && p.header_len() <= data.len());
                let n = p.options_iter().count();
                // Each item consumes at least one byte.
                prop_assert!(n <= p.options().len());
                prop_assert!(p.options_iter().filter(|r| r.is_err()).count() <= 1);
            }
        }

        #[test]
        fn any_options(opts in proptest::collection::vec(any::<u8>(), 0..40)) {
            let n = OptionIter::new(&opts).count();
            prop_assert!(n <= opts.len());
            let mut it = OptionIter::new(&opts);
            let mut seen_err = false;
            for item in &mut it {
                prop_assert!(!seen_err, "item after an error");
                seen_err |= item.is_err();
            }
        }
    }
}
