//! The 16-byte address form the datapath works with: an IPv6 address as its
//! 16 bytes, an IPv4 address IPv4-mapped (`::ffff:a.b.c.d`, RFC 4291
//! §2.5.5.2). It is the flow key's form ([`crate::datapath::hash`]), so a
//! parsed packet's addresses go into the key by a copy, and comparing two
//! addresses is two word compares instead of a match on `IpAddr`.
//!
//! The form alone does not tell an IPv4 address from an IPv6 packet's
//! mapped address (which do not appear on the wire); where that matters the
//! IP version travels with it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An address in the 16-byte form.
pub type Addr16 = [u8; 16];

/// The mapped form of an IPv4 address (its 4 bytes in network order).
#[inline]
pub const fn from_v4(a: [u8; 4]) -> Addr16 {
    [
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a[0], a[1], a[2], a[3],
    ]
}

/// The 16-byte form of a std address.
#[inline]
pub fn from_ip(a: IpAddr) -> Addr16 {
    match a {
        IpAddr::V4(v4) => from_v4(v4.octets()),
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// Back to a std address: IPv4 (the last four bytes) for `version` 4, IPv6
/// otherwise.
#[inline]
pub fn to_ip(a: &Addr16, version: u8) -> IpAddr {
    if version == 4 {
        IpAddr::V4(Ipv4Addr::new(a[12], a[13], a[14], a[15]))
    } else {
        IpAddr::V6(Ipv6Addr::from(*a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_matches_std_mapping() {
        let v4 = Ipv4Addr::new(198, 18, 0, 10);
        assert_eq!(from_v4(v4.octets()), v4.to_ipv6_mapped().octets());
        assert_eq!(to_ip(&from_ip(IpAddr::V4(v4)), 4), IpAddr::V4(v4));
        let v6: Ipv6Addr = "fd00:18::10".parse().unwrap();
        assert_eq!(from_ip(IpAddr::V6(v6)), v6.octets());
        assert_eq!(to_ip(&v6.octets(), 6), IpAddr::V6(v6));
    }
}
