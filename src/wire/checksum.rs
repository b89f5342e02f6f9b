//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! Sums are kept *unfolded-then-folded* as `u16` "partial sums" (the one's
//! complement sum, not yet complemented). Combine partial sums with
//! [`combine`], turn the final one into the header field with [`finish`].
//! A buffer that contains a correct checksum field sums to `0xffff`.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Folds a wide accumulator into a 16-bit one's complement sum.
#[inline]
pub fn fold(mut acc: u64) -> u16 {
    // Each step adds the high half into the low half; with end-around carry
    // the value stays congruent modulo 0xffff because 2^16 == 1 (mod 0xffff).
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc = (acc & 0xffff) + (acc >> 16);
    acc = (acc & 0xffff) + (acc >> 16);
    acc as u16
}

/// [`fold`] for an accumulator of 32 bits: two steps instead of four.
#[inline]
pub fn fold32(acc: u32) -> u16 {
    // After the first step the value is at most 0x1fffe, after the second
    // at most 0xffff.
    let acc = (acc & 0xffff) + (acc >> 16);
    ((acc & 0xffff) + (acc >> 16)) as u16
}

/// One's complement sum of `data`, as 16-bit big-endian words (an odd final
/// byte is padded with a zero byte on the right, as RFC 1071 says).
#[inline]
pub fn sum(data: &[u8]) -> u16 {
    fold(sum_wide(data))
}

/// Unfolded sum: adds 64-bit big-endian words with end-around carry, which
/// is congruent to the 16-bit sum modulo 0xffff because 0xffff divides
/// 2^64 - 1. Eight bytes per add keeps this fast without `unsafe`.
fn sum_wide(data: &[u8]) -> u64 {
    let mut acc: u64 = 0;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        let (s, carry) = acc.overflowing_add(w);
        // When carry is set, s <= 2^64 - 2, so adding 1 cannot overflow.
        acc = s + u64::from(carry);
    }
    let rest = chunks.remainder();
    // At most 7 bytes remain: place them as the top bytes of one more word,
    // which keeps the big-endian 16-bit word alignment (the chunk started on
    // an even offset) and pads an odd last byte with zero.
    if !rest.is_empty() {
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        let (s, carry) = acc.overflowing_add(u64::from_be_bytes(w));
        acc = s + u64::from(carry);
    }
    acc
}

/// Adds partial sums (one's complement addition).
#[inline]
pub fn combine(sums: &[u16]) -> u16 {
    fold(sums.iter().map(|&s| u64::from(s)).sum())
}

/// Turns a final partial sum into the value to store in a checksum field.
#[inline]
pub fn finish(sum: u16) -> u16 {
    !sum
}

/// The checksum of `data` alone (e.g. an IPv4 header with its checksum field
/// zeroed, or an ICMPv4 message).
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    finish(sum(data))
}

/// Partial sum of the IPv4 pseudo-header (RFC 793/768): source, destination,
/// zero, protocol, upper-layer length.
#[inline]
pub fn pseudo_header_v4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, length: u16) -> u16 {
    let acc = u64::from(u32::from(src))
        + u64::from(u32::from(dst))
        + u64::from(protocol)
        + u64::from(length);
    fold(acc)
}

/// The sum of an upper-layer message (TCP, UDP) and its IPv4
/// pseudo-header: 0xffff when the message's checksum field is right; with
/// that field zeroed, [`finish`] gives the value to write. `None` if the
/// message is longer than 65535 bytes.
pub fn upper_layer_v4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, data: &[u8]) -> Option<u16> {
    let len = u16::try_from(data.len()).ok()?;
    Some(combine(&[
        pseudo_header_v4(src, dst, protocol, len),
        sum(data),
    ]))
}

/// The same with an IPv6 pseudo-header (TCP, UDP, ICMPv6).
pub fn upper_layer_v6(src: &Ipv6Addr, dst: &Ipv6Addr, next_header: u8, data: &[u8]) -> Option<u16> {
    let len = u32::try_from(data.len()).ok()?;
    Some(combine(&[
        pseudo_header_v6(src, dst, next_header, len),
        sum(data),
    ]))
}

/// Writes into `message[at]` the checksum that `sum` gives (see
/// [`upper_layer_v4`]) over the message with that field zeroed. `Malformed`,
/// the field left as it was, when `sum` has none (a message too long for
/// its pseudo-header).
pub fn fill(
    message: &mut [u8],
    at: core::ops::Range<usize>,
    sum: impl Fn(&[u8]) -> Option<u16>,
) -> super::Result<()> {
    let old = [message[at.start], message[at.start + 1]];
    message[at.clone()].fill(0);
    let Some(s) = sum(message) else {
        message[at].copy_from_slice(&old);
        return Err(super::WireError::Malformed);
    };
    message[at].copy_from_slice(&finish(s).to_be_bytes());
    Ok(())
}

/// Partial sum of the IPv6 pseudo-header (RFC 8200 §8.1): source,
/// destination, 32-bit upper-layer length, next header.
#[inline]
pub fn pseudo_header_v6(src: &Ipv6Addr, dst: &Ipv6Addr, next_header: u8, length: u32) -> u16 {
    let s = u128::from(*src);
    let d = u128::from(*dst);
    // Four 64-bit halves plus two small terms cannot overflow a u128 sum.
    let acc: u128 = (s >> 64)
        + (s & u128::from(u64::MAX))
        + (d >> 64)
        + (d & u128::from(u64::MAX))
        + u128::from(length)
        + u128::from(next_header);
    // Fold the u128 into u64 range first (each half < 2^64, sum < 2^66).
    let folded = (acc >> 64) + (acc & u128::from(u64::MAX));
    let folded = (folded >> 64) + (folded & u128::from(u64::MAX));
    fold(folded as u64)
}

/// RFC 1624 eqn. 3: the new checksum field after a 16-bit word of the
/// covered data changed from `old` to `new`. `check` is the old field value.
#[inline]
pub fn update16(check: u16, old: u16, new: u16) -> u16 {
    // HC' = ~(~HC + ~m + m'); eqn. 3 avoids the -0 problem of eqn. 2.
    !fold(u64::from(!check) + u64::from(!old) + u64::from(new))
}

/// Incremental update for a changed 32-bit field (two 16-bit words),
/// e.g. an IPv4 address or a TCP sequence number. The field must start at an
/// even offset of the covered data, as all such header fields do.
#[inline]
pub fn update32(check: u16, old: u32, new: u32) -> u16 {
    let acc = u64::from(!check)
        + u64::from(!(old >> 16) as u16)
        + u64::from(!(old as u16))
        + u64::from((new >> 16) as u16)
        + u64::from(new as u16);
    !fold(acc)
}

/// Incremental update for a changed 128-bit field (an IPv6 address).
#[inline]
pub fn update128(check: u16, old: u128, new: u128) -> u16 {
    let mut acc = u64::from(!check);
    for i in 0..8 {
        let shift = 16 * i;
        acc += u64::from(!((old >> shift) as u16));
        acc += u64::from((new >> shift) as u16);
    }
    !fold(acc)
}

/// [`update32`] for IPv4 addresses.
#[inline]
pub fn update_ipv4_addr(check: u16, old: Ipv4Addr, new: Ipv4Addr) -> u16 {
    update32(check, u32::from(old), u32::from(new))
}

/// [`update128`] for IPv6 addresses.
#[inline]
pub fn update_ipv6_addr(check: u16, old: &Ipv6Addr, new: &Ipv6Addr) -> u16 {
    update128(check, u128::from(*old), u128::from(*new))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Straightforward RFC 1071 reference: 16-bit words, 32-bit accumulator.
    fn reference_sum(data: &[u8]) -> u16 {
        let mut acc: u32 = 0;
        for pair in data.chunks(2) {
            let w = if pair.len() == 2 {
                u16::from_be_bytes([pair[0], pair[1]])
            } else {
                u16::from_be_bytes([pair[0], 0])
            };
            acc += u32::from(w);
            acc = (acc & 0xffff) + (acc >> 16);
        }
        acc as u16
    }

    /// 0 and 0xffff are the two representations of zero in one's complement.
    fn same_ones(a: u16, b: u16) -> bool {
        a == b || (a == 0 && b == 0xffff) || (a == 0xffff && b == 0)
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3 example: words 0001 f203 f4f5 f6f7 sum to ddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(sum(&data), 0xddf2);
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn known_ipv4_header() {
        // A classic example header whose checksum is 0xb861.
        let mut h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(checksum(&h), 0xb861);
        h[10..12].copy_from_slice(&0xb861u16.to_be_bytes());
        assert_eq!(sum(&h), 0xffff);
    }

    #[test]
    fn odd_lengths_pad_right() {
        assert_eq!(sum(&[0x12]), 0x1200);
        assert_eq!(sum(&[0x12, 0x34, 0x56]), 0x1234 + 0x5600);
        assert_eq!(sum(&[]), 0);
    }

    #[test]
    fn pseudo_headers_match_bytes() {
        let s = Ipv4Addr::new(10, 0, 0, 1);
        let d = Ipv4Addr::new(192, 168, 255, 254);
        let mut b = Vec::new();
        b.extend_from_slice(&s.octets());
        b.extend_from_slice(&d.octets());
        b.extend_from_slice(&[0, 6, 0x05, 0xdc]);
        assert_eq!(pseudo_header_v4(s, d, 6, 1500), reference_sum(&b));

        let s6: Ipv6Addr = "2001:db8::ffff:1".parse().unwrap();
        let d6: Ipv6Addr = "fe80::aaaa:bbbb:cccc:dddd".parse().unwrap();
        let mut b = Vec::new();
        b.extend_from_slice(&s6.octets());
        b.extend_from_slice(&d6.octets());
        b.extend_from_slice(&70000u32.to_be_bytes());
        b.extend_from_slice(&[0, 0, 0, 17]);
        assert_eq!(pseudo_header_v6(&s6, &d6, 17, 70000), reference_sum(&b));
    }

    proptest! {
        #[test]
        fn sum_matches_reference(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            prop_assert!(same_ones(sum(&data), reference_sum(&data)));
        }

        #[test]
        fn combine_is_concatenation(
            a in proptest::collection::vec(any::<u8>(), 0..64),
            b in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            // Only valid when the first part has even length.
            let mut a = a;
            if a.len() % 2 == 1 { a.pop(); }
            let mut ab = a.clone();
            ab.extend_from_slice(&b);
            prop_assert!(same_ones(combine(&[sum(&a), sum(&b)]), sum(&ab)));
        }

        #[test]
        fn incremental_matches_full(
            data in proptest::collection::vec(any::<u8>(), 24..200),
            pos in 0usize..100,
            w16 in any::<u16>(),
            w32 in any::<u32>(),
            w128 in any::<u128>(),
        ) {
            let mut data = data;
            // Checksum lives in the first two bytes; fields at even offsets after.
            data[0] = 0;
            data[1] = 0;
            let c = checksum(&data);
            data[0..2].copy_from_slice(&c.to_be_bytes());
            prop_assert_eq!(sum(&data), 0xffff);

            // 16-bit field change.
            let at = 2 + 2 * (pos % ((data.len() - 2) / 2));
            let old = u16::from_be_bytes([data[at], data[at + 1]]);
            data[at..at + 2].copy_from_slice(&w16.to_be_bytes());
            let c1 = update16(c, old, w16);
            data[0] = 0; data[1] = 0;
            prop_assert!(same_ones(c1, checksum(&data)));
            data[0..2].copy_from_slice(&c1.to_be_bytes());

            // 32-bit field change.
            let at = 2 + 2 * (pos % ((data.len() - 4) / 2));
            let old = u32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]);
            data[at..at + 4].copy_from_slice(&w32.to_be_bytes());
            let c2 = update32(c1, old, w32);
            data[0] = 0; data[1] = 0;
            prop_assert!(same_ones(c2, checksum(&data)));
            data[0..2].copy_from_slice(&c2.to_be_bytes());

            // 128-bit field change.
            let at = 2 + 2 * (pos % ((data.len() - 16) / 2));
            let mut old = [0u8; 16];
            old.copy_from_slice(&data[at..at + 16]);
            data[at..at + 16].copy_from_slice(&w128.to_be_bytes());
            let c3 = update128(c2, u128::from_be_bytes(old), w128);
            data[0] = 0; data[1] = 0;
            prop_assert!(same_ones(c3, checksum(&data)));
        }
    }
}
