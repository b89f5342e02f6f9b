//! Multipath TCP options (TCP option kind 30; RFC 8684 for v1, RFC 6824
//! for v0), as far as a load balancer needs them, plus key → token helpers.
//!
//! All parsing takes the whole option, kind and length bytes included (the
//! lengths in the RFCs count them), and is infallible: a kind-30 option the
//! TCP framing accepted but whose body does not fit its subtype is returned
//! as [`MptcpOption::Malformed`], so a caller can tell "MPTCP present but
//! unusable" from "no MPTCP" and the TCP option walk goes on (Linux likewise
//! ignores such an option and keeps parsing the rest).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use sha1::Sha1;
use sha2::{Digest, Sha256};

use super::{be16, be32, be64};

/// TCP option kind of every MPTCP option.
pub const KIND: u8 = 30;

/// MPTCP option subtypes (high nibble of the option's third byte).
pub mod subtype {
    pub const MP_CAPABLE: u8 = 0;
    pub const MP_JOIN: u8 = 1;
    pub const DSS: u8 = 2;
    pub const ADD_ADDR: u8 = 3;
    pub const REMOVE_ADDR: u8 = 4;
    pub const MP_PRIO: u8 = 5;
    pub const MP_FAIL: u8 = 6;
    pub const MP_FASTCLOSE: u8 = 7;
    pub const MP_TCPRST: u8 = 8;
}

/// MP_CAPABLE flag bits (the option's fourth byte).
pub mod capable_flags {
    /// A: DSS checksums required.
    pub const A: u8 = 0x80;
    /// B: extensibility; must be 0.
    pub const B: u8 = 0x40;
    /// C (v1): do not open more subflows to my source address/port.
    pub const C: u8 = 0x20;
    /// H: HMAC-SHA256 (v1) / HMAC-SHA1 (v0).
    pub const H: u8 = 0x01;
}

/// Which of the MP_CAPABLE layouts was seen; told apart by length only,
/// since an LB may see either direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CapableForm {
    /// Length 4: v1 SYN, no key.
    NoKey,
    /// Length 12: v0 SYN, or SYN-ACK of either version; the sender's key.
    OneKey { sender_key: u64 },
    /// Length 20: third ACK; sender's key, then receiver's key.
    TwoKeys { sender_key: u64, receiver_key: u64 },
    /// Length 22 (24 with checksum): v1 first data packet.
    TwoKeysData {
        sender_key: u64,
        receiver_key: u64,
        data_len: u16,
        checksum: Option<u16>,
    },
}

/// A parsed MP_CAPABLE option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MpCapable {
    /// Low nibble of the third byte: 0 or 1 in practice.
    pub version: u8,
    /// Fourth byte; see [`capable_flags`].
    pub flags: u8,
    pub form: CapableForm,
}

impl MpCapable {
    pub fn checksum_required(&self) -> bool {
        self.flags & capable_flags::A != 0
    }

    /// The C flag: the sender asks not to be joined at this address/port.
    pub fn no_subflows_to_source(&self) -> bool {
        self.flags & capable_flags::C != 0
    }

    pub fn hmac_sha256(&self) -> bool {
        self.flags & capable_flags::H != 0
    }

    pub fn sender_key(&self) -> Option<u64> {
        match self.form {
            CapableForm::NoKey => None,
            CapableForm::OneKey { sender_key }
            | CapableForm::TwoKeys { sender_key, .. }
            | CapableForm::TwoKeysData { sender_key, .. } => Some(sender_key),
        }
    }

    pub fn receiver_key(&self) -> Option<u64> {
        match self.form {
            CapableForm::NoKey | CapableForm::OneKey { .. } => None,
            CapableForm::TwoKeys { receiver_key, .. }
            | CapableForm::TwoKeysData { receiver_key, .. } => Some(receiver_key),
        }
    }
}

/// A parsed MP_JOIN option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MpJoin<'a> {
    /// Length 12: the receiver's token identifies the connection.
    Syn {
        backup: bool,
        addr_id: u8,
        token: u32,
        nonce: u32,
    },
    /// Length 16.
    SynAck {
        backup: bool,
        addr_id: u8,
        truncated_hmac: u64,
        nonce: u32,
    },
    /// Length 24: the 160-bit HMAC.
    Ack { hmac: &'a [u8] },
}

/// DSS flag bits (the option's fourth byte).
pub mod dss_flags {
    pub const DATA_ACK: u8 = 0x01;
    pub const DATA_ACK_8: u8 = 0x02;
    pub const DSN: u8 = 0x04;
    pub const DSN_8: u8 = 0x08;
    pub const DATA_FIN: u8 = 0x10;
}

/// A DSS option; only its presence and flags matter to the LB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Dss<'a> {
    pub flags: u8,
    /// The whole option, kind and length included.
    pub raw: &'a [u8],
}

impl Dss<'_> {
    pub fn data_fin(&self) -> bool {
        self.flags & dss_flags::DATA_FIN != 0
    }
}

/// A parsed ADD_ADDR (v1) option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddAddr {
    /// E flag: this is the echo of the peer's announcement (no HMAC).
    pub echo: bool,
    pub addr_id: u8,
    pub addr: IpAddr,
    pub port: Option<u16>,
    /// Truncated HMAC, present exactly when `echo` is false.
    pub hmac: Option<u64>,
}

/// One MPTCP option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MptcpOption<'a> {
    MpCapable(MpCapable),
    MpJoin(MpJoin<'a>),
    Dss(Dss<'a>),
    AddAddr(AddAddr),
    /// Address ids being removed.
    RemoveAddr {
        ids: &'a [u8],
    },
    MpPrio {
        backup: bool,
    },
    MpFail {
        dsn: u64,
    },
    MpFastclose {
        receiver_key: u64,
    },
    MpTcpRst {
        flags: u8,
        reason: u8,
    },
    /// A subtype this crate does not know (e.g. 0xf, MP_EXPERIMENTAL).
    Unknown {
        subtype: u8,
        raw: &'a [u8],
    },
    /// A known subtype (or no subtype byte at all) with a length or flags
    /// that do not fit it.
    Malformed {
        raw: &'a [u8],
    },
}

impl<'a> MptcpOption<'a> {
    /// Parses one kind-30 option; `opt` is the whole option (kind, length,
    /// body) and its length is taken to be `opt.len()`.
    pub fn parse(opt: &'a [u8]) -> MptcpOption<'a> {
        parse_inner(opt).unwrap_or(MptcpOption::Malformed { raw: opt })
    }

    /// The subtype nibble, if the option has a third byte.
    pub fn subtype_of(opt: &[u8]) -> Option<u8> {
        opt.get(2).map(|b| b >> 4)
    }
}

fn parse_inner(opt: &[u8]) -> Option<MptcpOption<'_>> {
    let b2 = *opt.get(2)?;
    let len = opt.len();
    let sub = b2 >> 4;
    let low = b2 & 0x0f;
    Some(match sub {
        subtype::MP_CAPABLE => {
            let flags = *opt.get(3)?;
            let form = match len {
                4 => CapableForm::NoKey,
                12 => CapableForm::OneKey {
                    sender_key: be64(opt, 4)?,
                },
                20 => CapableForm::TwoKeys {
                    sender_key: be64(opt, 4)?,
                    receiver_key: be64(opt, 12)?,
                },
                22 | 24 => CapableForm::TwoKeysData {
                    sender_key: be64(opt, 4)?,
                    receiver_key: be64(opt, 12)?,
                    data_len: be16(opt, 20)?,
                    checksum: if len == 24 {
                        Some(be16(opt, 22)?)
                    } else {
                        None
                    },
                },
                _ => return None,
            };
            MptcpOption::MpCapable(MpCapable {
                version: low,
                flags,
                form,
            })
        }
        subtype::MP_JOIN => MptcpOption::MpJoin(match len {
            12 => MpJoin::Syn {
                backup: low & 0x01 != 0,
                addr_id: *opt.get(3)?,
                token: be32(opt, 4)?,
                nonce: be32(opt, 8)?,
            },
            16 => MpJoin::SynAck {
                backup: low & 0x01 != 0,
                addr_id: *opt.get(3)?,
                truncated_hmac: be64(opt, 4)?,
                nonce: be32(opt, 12)?,
            },
            24 => MpJoin::Ack {
                hmac: opt.get(4..24)?,
            },
            _ => return None,
        }),
        subtype::DSS => MptcpOption::Dss(Dss {
            flags: *opt.get(3)?,
            raw: opt,
        }),
        subtype::ADD_ADDR => {
            let echo = low & 0x01 != 0;
            // The length alone tells family, port and HMAC apart; the E flag
            // must agree with the HMAC's absence (Linux ignores it otherwise).
            let (v6, port, hmac) = match len {
                8 => (false, false, false),
                10 => (false, true, false),
                16 => (false, false, true),
                18 => (false, true, true),
                20 => (true, false, false),
                22 => (true, true, false),
                28 => (true, false, true),
                30 => (true, true, true),
                _ => return None,
            };
            if echo == hmac {
                return None;
            }
            let (addr, next) = if v6 {
                let a: [u8; 16] = opt.get(4..20)?.try_into().ok()?;
                (IpAddr::V6(Ipv6Addr::from(a)), 20)
            } else {
                let a: [u8; 4] = opt.get(4..8)?.try_into().ok()?;
                (IpAddr::V4(Ipv4Addr::from(a)), 8)
            };
            let port_v = if port { Some(be16(opt, next)?) } else { None };
            let hmac_at = if port { next + 2 } else { next };
            MptcpOption::AddAddr(AddAddr {
                echo,
                addr_id: *opt.get(3)?,
                addr,
                port: port_v,
                hmac: if hmac {
                    Some(be64(opt, hmac_at)?)
                } else {
                    None
                },
            })
        }
        subtype::REMOVE_ADDR => {
            if len < 4 {
                return None;
            }
            MptcpOption::RemoveAddr { ids: opt.get(3..)? }
        }
        subtype::MP_PRIO => {
            // v1 is 3 bytes; v0 appended an address id (4 bytes).
            if len != 3 && len != 4 {
                return None;
            }
            MptcpOption::MpPrio {
                backup: low & 0x01 != 0,
            }
        }
        subtype::MP_FAIL if len == 12 => MptcpOption::MpFail { dsn: be64(opt, 4)? },
        subtype::MP_FASTCLOSE if len == 12 => MptcpOption::MpFastclose {
            receiver_key: be64(opt, 4)?,
        },
        subtype::MP_TCPRST if len == 4 => MptcpOption::MpTcpRst {
            flags: low,
            reason: *opt.get(3)?,
        },
        subtype::MP_FAIL | subtype::MP_FASTCLOSE | subtype::MP_TCPRST => return None,
        _ => MptcpOption::Unknown {
            subtype: sub,
            raw: opt,
        },
    })
}

/// Writes an MP_CAPABLE option into the start of `buf`: no key (length 4,
/// a v1 SYN), the sender's key (12), or both keys (20, the third ACK).
/// Returns its length.
pub fn emit_mp_capable(
    buf: &mut [u8],
    version: u8,
    flags: u8,
    keys: &[u64],
) -> super::Result<usize> {
    if keys.len() > 2 {
        return Err(super::WireError::Malformed);
    }
    let len = 4 + 8 * keys.len();
    let o = buf.get_mut(..len).ok_or(super::WireError::Truncated)?;
    o[..4].copy_from_slice(&[
        KIND,
        len as u8,
        subtype::MP_CAPABLE << 4 | version & 0x0f,
        flags,
    ]);
    for (k, at) in keys.iter().zip([4, 12]) {
        o[at..at + 8].copy_from_slice(&k.to_be_bytes());
    }
    Ok(len)
}

/// Writes an MP_JOIN option of a SYN (length 12) into the start of `buf`.
pub fn emit_mp_join_syn(
    buf: &mut [u8],
    backup: bool,
    addr_id: u8,
    token: u32,
    nonce: u32,
) -> super::Result<usize> {
    let o = buf.get_mut(..12).ok_or(super::WireError::Truncated)?;
    o[..4].copy_from_slice(&[KIND, 12, subtype::MP_JOIN << 4 | u8::from(backup), addr_id]);
    o[4..8].copy_from_slice(&token.to_be_bytes());
    o[8..12].copy_from_slice(&nonce.to_be_bytes());
    Ok(12)
}

/// Writes a DSS option into the start of `buf`: `flags` (see
/// [`dss_flags`]), then `body` (data ACK, mapping, checksum as the flags
/// say). Returns its length.
pub fn emit_dss(buf: &mut [u8], flags: u8, body: &[u8]) -> super::Result<usize> {
    let len = 4 + body.len();
    let l = u8::try_from(len).map_err(|_| super::WireError::Malformed)?;
    let o = buf.get_mut(..len).ok_or(super::WireError::Truncated)?;
    o[..4].copy_from_slice(&[KIND, l, subtype::DSS << 4, flags]);
    o[4..].copy_from_slice(body);
    Ok(len)
}

/// MPTCP v1 token: the most significant 32 bits of SHA-256 over the key as
/// 8 big-endian bytes (RFC 8684 §3.2).
pub fn token_v1(key: u64) -> u32 {
    let d = Sha256::digest(key.to_be_bytes());
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// MPTCP v1 initial data sequence number: the least significant 64 bits of
/// the same SHA-256.
pub fn idsn_v1(key: u64) -> u64 {
    let d = Sha256::digest(key.to_be_bytes());
    let mut a = [0u8; 8];
    a.copy_from_slice(&d[24..32]);
    u64::from_be_bytes(a)
}

/// MPTCP v0 token: the most significant 32 bits of SHA-1 over the key
/// (RFC 6824 §3.1).
pub fn token_v0(key: u64) -> u32 {
    let d = Sha1::digest(key.to_be_bytes());
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// The token for a key of the given MP_CAPABLE version (0 → SHA-1,
/// anything else → SHA-256, since v1 is the only later version).
pub fn token(version: u8, key: u64) -> u32 {
    if version == 0 {
        token_v0(key)
    } else {
        token_v1(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn opt(sub_low: u8, rest: &[u8]) -> Vec<u8> {
        let mut v = vec![KIND, (rest.len() + 3) as u8, sub_low];
        v.extend_from_slice(rest);
        v
    }

    #[test]
    fn tokens_known_answers() {
        // From tests/data/mptcp_join_v4.pcap (captured from Linux): the server
        // key seen in the third ACK, and the token the client's MP_JOIN SYN
        // carried to the VIP. Also decoded identically by tshark.
        assert_eq!(token_v1(0xd456_6925_ddf7_e962), 0xa119_08e9);
        assert_eq!(idsn_v1(0xd456_6925_ddf7_e962), 0x4a56_c92e_5cf8_cfe6);
        // From tests/data/mptcp_v6.pcap (server key; token per tshark).
        assert_eq!(token_v1(0x88bf_4d2f_0109_fb5c), 0x773d_50b6);
        // v0: computed independently with Python hashlib.sha1.
        assert_eq!(token_v0(0x0123_4567_89ab_cdef), 0x0ca2_eadb);
        assert_eq!(token_v0(0xd456_6925_ddf7_e962), 0xdef3_b94a);
        assert_eq!(token(0, 0x0123_4567_89ab_cdef), 0x0ca2_eadb);
        assert_eq!(token(1, 0x0123_4567_89ab_cdef), 0x55c5_3f5d);
    }

    #[test]
    fn mp_capable_forms() {
        // v1 SYN as Linux sends it: 1e 04 01 01.
        let o = MptcpOption::parse(&[30, 4, 0x01, 0x01]);
        let MptcpOption::MpCapable(c) = o else {
            panic!("{o:?}")
        };
        assert_eq!((c.version, c.form), (1, CapableForm::NoKey));
        assert!(c.hmac_sha256() && !c.checksum_required() && !c.no_subflows_to_source());
        assert_eq!(c.sender_key(), None);

        let k1 = 0x1122_3344_5566_7788u64;
        let k2 = 0x99aa_bbcc_ddee_ff00u64;
        let mut body = vec![0x21];
        body.extend_from_slice(&k1.to_be_bytes());
        let MptcpOption::MpCapable(c) = MptcpOption::parse(&opt(0x01, &body)) else {
            panic!()
        };
        assert_eq!(c.form, CapableForm::OneKey { sender_key: k1 });
        assert!(c.no_subflows_to_source());

        // v0 SYN with key.
        let MptcpOption::MpCapable(c) = MptcpOption::parse(&opt(0x00, &body)) else {
            panic!()
        };
        assert_eq!(c.version, 0);
        assert_eq!(c.sender_key(), Some(k1));

        body.extend_from_slice(&k2.to_be_bytes());
        let MptcpOption::MpCapable(c) = MptcpOption::parse(&opt(0x01, &body)) else {
            panic!()
        };
        assert_eq!(
            c.form,
            CapableForm::TwoKeys {
                sender_key: k1,
                receiver_key: k2
            }
        );
        assert_eq!(c.receiver_key(), Some(k2));

        body.extend_from_slice(&[0x05, 0xdc]);
        let MptcpOption::MpCapable(c) = MptcpOption::parse(&opt(0x01, &body)) else {
            panic!()
        };
        assert_eq!(
            c.form,
            CapableForm::TwoKeysData {
                sender_key: k1,
                receiver_key: k2,
                data_len: 1500,
                checksum: None
            }
        );
        body.extend_from_slice(&[0xab, 0xcd]);
        let MptcpOption::MpCapable(c) = MptcpOption::parse(&opt(0x01, &body)) else {
            panic!()
        };
        assert!(matches!(
            c.form,
            CapableForm::TwoKeysData {
                checksum: Some(0xabcd),
                ..
            }
        ));
        // Odd lengths are malformed, not misread.
        body.push(0);
        assert!(matches!(
            MptcpOption::parse(&opt(0x01, &body)),
            MptcpOption::Malformed { .. }
        ));
        assert!(matches!(
            MptcpOption::parse(&[30, 3, 0x01]),
            MptcpOption::Malformed { .. }
        ));
    }

    #[test]
    fn mp_join_forms() {
        // SYN: B flag, address id 1, token 0xa11908e9, nonce.
        let raw = opt(
            0x11,
            &[0x01, 0xa1, 0x19, 0x08, 0xe9, 0xde, 0xad, 0xbe, 0xef],
        );
        let o = MptcpOption::parse(&raw);
        assert_eq!(
            o,
            MptcpOption::MpJoin(MpJoin::Syn {
                backup: true,
                addr_id: 1,
                token: 0xa119_08e9,
                nonce: 0xdead_beef
            })
        );
        let mut body = vec![2];
        body.extend_from_slice(&7u64.to_be_bytes());
        body.extend_from_slice(&9u32.to_be_bytes());
        assert_eq!(
            MptcpOption::parse(&opt(0x10, &body)),
            MptcpOption::MpJoin(MpJoin::SynAck {
                backup: false,
                addr_id: 2,
                truncated_hmac: 7,
                nonce: 9
            })
        );
        let mut body = vec![0];
        body.extend_from_slice(&[0x5a; 20]);
        assert_eq!(
            MptcpOption::parse(&opt(0x10, &body)),
            MptcpOption::MpJoin(MpJoin::Ack { hmac: &[0x5a; 20] })
        );
        assert!(matches!(
            MptcpOption::parse(&opt(0x10, &[0; 5])),
            MptcpOption::Malformed { .. }
        ));
    }

    #[test]
    fn add_addr_forms() {
        let v4 = [198, 18, 0, 10];
        // len 16: id 1, IPv4, HMAC.
        let mut b = vec![1];
        b.extend_from_slice(&v4);
        b.extend_from_slice(&0x0102_0304_0506_0708u64.to_be_bytes());
        assert_eq!(
            MptcpOption::parse(&opt(0x30, &b)),
            MptcpOption::AddAddr(AddAddr {
                echo: false,
                addr_id: 1,
                addr: IpAddr::V4(Ipv4Addr::from(v4)),
                port: None,
                hmac: Some(0x0102_0304_0506_0708)
            })
        );
        // len 10: echo with port.
        let mut b = vec![3];
        b.extend_from_slice(&v4);
        b.extend_from_slice(&8080u16.to_be_bytes());
        assert_eq!(
            MptcpOption::parse(&opt(0x31, &b)),
            MptcpOption::AddAddr(AddAddr {
                echo: true,
                addr_id: 3,
                addr: IpAddr::V4(Ipv4Addr::from(v4)),
                port: Some(8080),
                hmac: None
            })
        );
        // Same bytes without the E flag: a 10-byte form must be an echo.
        assert!(matches!(
            MptcpOption::parse(&opt(0x30, &b)),
            MptcpOption::Malformed { .. }
        ));
        // len 30: IPv6, port, HMAC.
        let a6: Ipv6Addr = "fd00:18::10".parse().unwrap();
        let mut b = vec![2];
        b.extend_from_slice(&a6.octets());
        b.extend_from_slice(&443u16.to_be_bytes());
        b.extend_from_slice(&5u64.to_be_bytes());
        assert_eq!(
            MptcpOption::parse(&opt(0x30, &b)),
            MptcpOption::AddAddr(AddAddr {
                echo: false,
                addr_id: 2,
                addr: IpAddr::V6(a6),
                port: Some(443),
                hmac: Some(5)
            })
        );
        // len 20: IPv6 echo.
        let mut b = vec![2];
        b.extend_from_slice(&a6.octets());
        let MptcpOption::AddAddr(a) = MptcpOption::parse(&opt(0x31, &b)) else {
            panic!()
        };
        assert!(a.echo && a.port.is_none() && a.addr == IpAddr::V6(a6));
    }

    #[test]
    fn other_subtypes() {
        assert_eq!(
            MptcpOption::parse(&[30, 8, 0x20, 0x01, 1, 2, 3, 4]),
            MptcpOption::Dss(Dss {
                flags: 0x01,
                raw: &[30, 8, 0x20, 0x01, 1, 2, 3, 4]
            })
        );
        assert_eq!(
            MptcpOption::parse(&[30, 5, 0x40, 1, 2]),
            MptcpOption::RemoveAddr { ids: &[1, 2] }
        );
        assert_eq!(
            MptcpOption::parse(&[30, 3, 0x51]),
            MptcpOption::MpPrio { backup: true }
        );
        let mut fc = vec![30, 12, 0x70, 0];
        fc.extend_from_slice(&42u64.to_be_bytes());
        assert_eq!(
            MptcpOption::parse(&fc),
            MptcpOption::MpFastclose { receiver_key: 42 }
        );
        fc[2] = 0x60;
        assert_eq!(MptcpOption::parse(&fc), MptcpOption::MpFail { dsn: 42 });
        assert_eq!(
            MptcpOption::parse(&[30, 4, 0x81, 3]),
            MptcpOption::MpTcpRst {
                flags: 1,
                reason: 3
            }
        );
        assert!(matches!(
            MptcpOption::parse(&[30, 5, 0x81, 3, 0]),
            MptcpOption::Malformed { .. }
        ));
        assert_eq!(
            MptcpOption::parse(&[30, 4, 0xf0, 0]),
            MptcpOption::Unknown {
                subtype: 0xf,
                raw: &[30, 4, 0xf0, 0]
            }
        );
        assert_eq!(MptcpOption::subtype_of(&[30, 4, 0xf0]), Some(0xf));
        assert_eq!(MptcpOption::subtype_of(&[30, 2]), None);
    }

    proptest! {
        #[test]
        fn any_bytes(data in proptest::collection::vec(any::<u8>(), 0..40)) {
            let o = MptcpOption::parse(&data);
            if data.len() < 3 {
                prop_assert_eq!(o, MptcpOption::Malformed { raw: &data[..] });
            }
            if let MptcpOption::MpCapable(c) = o {
                prop_assert!(matches!(data.len(), 4 | 12 | 20 | 22 | 24));
                prop_assert_eq!(c.version, data[2] & 0x0f);
            }
        }
    }
}
