//! Zero-copy packet views. Owned by the wire work; see issue 3.
//!
//! One file per protocol. Every view is a thin wrapper over a byte buffer
//! (`T: AsRef<[u8]>`); its constructor `new_checked` validates the lengths the
//! accessors rely on, so accessors never panic afterwards. Setters need
//! `T: AsMut<[u8]>`. Fields are read at byte offsets, never by casting to
//! structs, so alignment never matters.
//!
//! [`parse::parse_frame`] is the single-pass classifier the datapath calls on
//! every frame.
#![forbid(unsafe_code)]

/// Declares a zero-copy view `$name<T: AsRef<[u8]>>` over a byte buffer,
/// with `into_inner` and the private readers and writers at `mod field`
/// ranges that its accessors are written with. Its `new_checked` (which
/// validates what the accessors index) is the view's own.
///
/// With a field table, the view states its layout once: each line
/// `NAME: kind = place => getter / setter;` declares `field::NAME` (a byte
/// index for `u8`, an offset for `at`, a range for `u16`, `u32` and `bytes`)
/// and, where named, the big-endian getter and setter. Fields read in other ways (bits, addresses,
/// options) are listed without `=>` and get their accessors by hand.
macro_rules! view {
    (@const [$(#[$m:meta])*] u8 $f:ident = $at:expr) => {
        $(#[$m])*
        pub const $f: usize = $at;
    };
    (@const [$(#[$m:meta])*] at $f:ident = $at:expr) => {
        $(#[$m])*
        pub const $f: usize = $at;
    };
    (@const [$(#[$m:meta])*] $kind:tt $f:ident = $at:expr) => {
        $(#[$m])*
        pub const $f: core::ops::Range<usize> = $at;
    };
    (@get u8 $get:ident $f:ident) => {
        pub fn $get(&self) -> u8 {
            self.b()[field::$f]
        }
    };
    (@get u16 $get:ident $f:ident) => {
        pub fn $get(&self) -> u16 {
            self.u16_at(field::$f)
        }
    };
    (@get u32 $get:ident $f:ident) => {
        pub fn $get(&self) -> u32 {
            self.u32_at(field::$f)
        }
    };
    (@set u8 $set:ident $f:ident) => {
        pub fn $set(&mut self, v: u8) {
            self.bm()[field::$f] = v;
        }
    };
    (@set u16 $set:ident $f:ident) => {
        pub fn $set(&mut self, v: u16) {
            self.set16(field::$f, v);
        }
    };
    (@set u32 $set:ident $f:ident) => {
        pub fn $set(&mut self, v: u32) {
            self.set32(field::$f, v);
        }
    };
    ($(#[$attr:meta])* $name:ident {
        $($(#[$fattr:meta])* $f:ident : $kind:tt = $at:expr $(=> $get:ident $(/ $set:ident)?)?;)*
    }) => {
        view!($(#[$attr])* $name);

        mod field {
            $(view!(@const [$(#[$fattr])*] $kind $f = $at);)*
        }

        impl<T: AsRef<[u8]>> $name<T> {
            $($(view!(@get $kind $get $f);)?)*
        }

        impl<T: AsRef<[u8]> + AsMut<[u8]>> $name<T> {
            $($($(view!(@set $kind $set $f);)?)?)*
        }
    };
    ($(#[$attr:meta])* $name:ident) => {
        $(#[$attr])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $name<T: AsRef<[u8]>> {
            buffer: T,
        }

        #[allow(dead_code)]
        impl<T: AsRef<[u8]>> $name<T> {
            /// `buffer` as a view if it holds at least `len` bytes (what
            /// every `new_checked` validates first).
            fn with_min_len(buffer: T, len: usize) -> $crate::wire::Result<Self> {
                if buffer.as_ref().len() < len {
                    return Err($crate::wire::WireError::Truncated);
                }
                Ok($name { buffer })
            }

            /// The buffer, given back.
            pub fn into_inner(self) -> T {
                self.buffer
            }

            fn b(&self) -> &[u8] {
                self.buffer.as_ref()
            }

            fn u16_at(&self, r: core::ops::Range<usize>) -> u16 {
                let s = &self.b()[r];
                u16::from_be_bytes([s[0], s[1]])
            }

            fn u32_at(&self, r: core::ops::Range<usize>) -> u32 {
                let s = &self.b()[r];
                u32::from_be_bytes([s[0], s[1], s[2], s[3]])
            }
        }

        #[allow(dead_code)]
        impl<T: AsRef<[u8]> + AsMut<[u8]>> $name<T> {
            fn bm(&mut self) -> &mut [u8] {
                self.buffer.as_mut()
            }

            fn set16(&mut self, r: core::ops::Range<usize>, v: u16) {
                self.bm()[r].copy_from_slice(&v.to_be_bytes());
            }

            fn set32(&mut self, r: core::ops::Range<usize>, v: u32) {
                self.bm()[r].copy_from_slice(&v.to_be_bytes());
            }
        }
    };
}

/// Declares an ICMP view (both versions) with [`view!`]: the header both
/// share (type, code, checksum, and the echo identifier and sequence
/// number), then the version's own fields.
macro_rules! icmp_view {
    ($(#[$attr:meta])* $name:ident { $($own:tt)* }) => {
        view! {
            $(#[$attr])*
            $name {
                TYPE: u8 = 0 => msg_type / set_msg_type;
                CODE: u8 = 1 => code / set_code;
                CHECKSUM: u16 = 2..4 => checksum / set_checksum;
                IDENT: u16 = 4..6;
                SEQ: u16 = 6..8;
                $($own)*
            }
        }

        impl<T: AsRef<[u8]>> $name<T> {
            /// Echo identifier (meaningful for echo request/reply).
            pub fn echo_ident(&self) -> u16 {
                self.u16_at(field::IDENT)
            }
            /// Echo sequence number (meaningful for echo request/reply).
            pub fn echo_seq(&self) -> u16 {
                self.u16_at(field::SEQ)
            }
        }
    };
}

pub mod add_addr;
pub mod addr;
pub mod arp;
pub mod checksum;
pub mod ethernet;
pub mod icmpv4;
pub mod icmpv6;
pub mod ipv4;
pub mod ipv6;
pub mod mptcp;
pub mod parse;
pub mod tcp;
pub mod udp;

use core::fmt;

pub use ethernet::MacAddr;
pub use parse::{Parsed, parse_frame};

/// Why a buffer could not be read as the requested header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WireError {
    /// The buffer ends before the header (or a length it announces) does.
    Truncated,
    /// A field holds a value the protocol does not allow (bad version, a
    /// header length below the minimum, an option length of 0 or 1, ...).
    Malformed,
    /// Well formed, but something this crate deliberately does not handle
    /// (stacked VLAN tags, too many IPv6 extension headers, ...).
    Unsupported,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WireError::Truncated => "truncated packet",
            WireError::Malformed => "malformed packet",
            WireError::Unsupported => "unsupported packet",
        })
    }
}

impl std::error::Error for WireError {}

/// Result alias used by all views.
pub type Result<T> = core::result::Result<T, WireError>;

/// IP protocol / IPv6 next-header numbers used in this crate.
pub mod ip_proto {
    pub const HOPOPT: u8 = 0;
    pub const ICMP: u8 = 1;
    /// IPv4 in IP (RFC 2003's IP-in-IP).
    pub const IPV4: u8 = 4;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    /// IPv6 in IP (RFC 2473, RFC 4213).
    pub const IPV6: u8 = 41;
    pub const IPV6_ROUTING: u8 = 43;
    pub const IPV6_FRAGMENT: u8 = 44;
    pub const ESP: u8 = 50;
    pub const AH: u8 = 51;
    pub const ICMPV6: u8 = 58;
    pub const IPV6_NONE: u8 = 59;
    pub const IPV6_DSTOPTS: u8 = 60;
}

/// Fragmentation facts common to IPv4 and the IPv6 fragment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FragInfo {
    /// Offset of this fragment's data in the original payload, in bytes.
    pub offset: u16,
    /// More fragments follow.
    pub more: bool,
    /// Identification (16 bits in IPv4, 32 bits in IPv6).
    pub id: u32,
}

impl FragInfo {
    /// True if this fragment carries the start of the upper-layer header.
    pub fn is_first(&self) -> bool {
        self.offset == 0
    }
}

/// Checks a length a header announces (its own, or its packet's): below
/// `min` it is `Malformed`, beyond the `available` bytes `Truncated`.
#[inline]
pub(crate) fn check_announced_len(len: usize, min: usize, available: usize) -> Result<()> {
    if len < min {
        return Err(WireError::Malformed);
    }
    if len > available {
        return Err(WireError::Truncated);
    }
    Ok(())
}

/// Reads a big-endian u16 at `at`; `None` if it does not fit. Used on paths
/// where the length has not been validated by a constructor.
#[inline]
pub(crate) fn be16(buf: &[u8], at: usize) -> Option<u16> {
    let b = buf.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

/// Reads a big-endian u32 at `at`; `None` if it does not fit.
#[inline]
pub(crate) fn be32(buf: &[u8], at: usize) -> Option<u32> {
    let b = buf.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Reads a big-endian u64 at `at`; `None` if it does not fit.
#[inline]
pub(crate) fn be64(buf: &[u8], at: usize) -> Option<u64> {
    let b = buf.get(at..at.checked_add(8)?)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    Some(u64::from_be_bytes(a))
}
