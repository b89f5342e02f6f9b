//! Writing an MPTCP ADD_ADDR option as the *server* of a connection would:
//! what mplb sends a client on a backend's behalf (see
//! `crate::datapath::announce`). v1 (RFC 8684 §3.4.1) carries a truncated
//! HMAC-SHA256 that proves the sender knows both keys; v0 (RFC 6824 §3.4.1,
//! still spoken by Apple's clients) carries none.
//!
//! The HMAC's inputs are those Linux uses (`net/mptcp/options.c`,
//! `add_addr_generate_hmac`): key = the announcing side's key then the
//! peer's, each 8 bytes big-endian; message = address ID, address bytes and
//! **always** two port bytes (`00 00` without a port). The option carries
//! the rightmost 64 bits. A wrong order or missing port bytes make a Linux
//! client drop the option silently.

use std::net::IpAddr;

use sha2::{Digest, Sha256};

use super::mptcp::{KIND, subtype};
use super::{Result, WireError};

/// The longest option written here: v1, IPv6, no port.
pub const MAX_LEN: usize = 28;

/// HMAC-SHA256 (RFC 2104) of `msg` under a key of at most one block (64
/// bytes; MPTCP's are 16), which is all MPTCP needs.
fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    let n = key.len().min(64);
    block[..n].copy_from_slice(&key[..n]);
    let mut inner = Sha256::new();
    inner.update(block.map(|b| b ^ 0x36));
    inner.update(msg);
    let inner = inner.finalize();
    let mut outer = Sha256::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner);
    outer.finalize().into()
}

/// The truncated HMAC of a v1 ADD_ADDR sent by the side whose key is
/// `sender_key` (here the server's) to the side whose key is `peer_key`.
pub fn hmac_v1(sender_key: u64, peer_key: u64, addr_id: u8, addr: IpAddr, port: u16) -> u64 {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&sender_key.to_be_bytes());
    key[8..].copy_from_slice(&peer_key.to_be_bytes());
    let mut msg = [0u8; 19];
    msg[0] = addr_id;
    let end = match addr {
        IpAddr::V4(a) => {
            msg[1..5].copy_from_slice(&a.octets());
            5
        }
        IpAddr::V6(a) => {
            msg[1..17].copy_from_slice(&a.octets());
            17
        }
    };
    msg[end..end + 2].copy_from_slice(&port.to_be_bytes());
    let mac = hmac_sha256(&key, &msg[..end + 2]);
    let mut tail = [0u8; 8];
    tail.copy_from_slice(&mac[24..]);
    u64::from_be_bytes(tail)
}

fn addr_bytes(addr: &IpAddr, out: &mut [u8]) -> usize {
    match addr {
        IpAddr::V4(a) => {
            out[..4].copy_from_slice(&a.octets());
            4
        }
        IpAddr::V6(a) => {
            out[..16].copy_from_slice(&a.octets());
            16
        }
    }
}

/// Writes a v1 ADD_ADDR without port (not an echo) into the start of `buf`:
/// 16 bytes for IPv4, 28 for IPv6. Returns its length.
pub fn emit_v1(buf: &mut [u8], addr_id: u8, addr: IpAddr, hmac: u64) -> Result<usize> {
    let len = if addr.is_ipv4() { 16 } else { 28 };
    let o = buf.get_mut(..len).ok_or(WireError::Truncated)?;
    o[..4].copy_from_slice(&[KIND, len as u8, subtype::ADD_ADDR << 4, addr_id]);
    let n = addr_bytes(&addr, &mut o[4..]);
    o[4 + n..].copy_from_slice(&hmac.to_be_bytes());
    Ok(len)
}

/// Writes a v0 ADD_ADDR without port into the start of `buf`: the low
/// nibble of the third byte is the IP version, no HMAC; 8 bytes for IPv4,
/// 20 for IPv6. Returns its length.
pub fn emit_v0(buf: &mut [u8], addr_id: u8, addr: IpAddr) -> Result<usize> {
    let (len, ipver) = if addr.is_ipv4() { (8, 4) } else { (20, 6) };
    let o = buf.get_mut(..len).ok_or(WireError::Truncated)?;
    o[..4].copy_from_slice(&[KIND, len as u8, subtype::ADD_ADDR << 4 | ipver, addr_id]);
    addr_bytes(&addr, &mut o[4..]);
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::mptcp::MptcpOption;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn hmac_matches_rfc4231_vectors() {
        // Test cases 1 and 2 of RFC 4231.
        assert_eq!(
            hmac_sha256(&[0x0b; 20], b"Hi There").to_vec(),
            hex("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
        );
        assert_eq!(
            hmac_sha256(b"Jefe", b"what do ya want for nothing?").to_vec(),
            hex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        );
    }

    #[test]
    fn v1_options_parse_back_with_their_fields() {
        for addr in ["198.18.1.11", "fd00:18:1::11"] {
            let addr: IpAddr = addr.parse().unwrap();
            let mut buf = [0u8; MAX_LEN];
            let n = emit_v1(&mut buf, 1, addr, 0x0102_0304_0506_0708).unwrap();
            assert_eq!(n, if addr.is_ipv4() { 16 } else { 28 });
            match MptcpOption::parse(&buf[..n]) {
                MptcpOption::AddAddr(a) => {
                    assert!(!a.echo);
                    assert_eq!((a.addr_id, a.addr, a.port), (1, addr, None));
                    assert_eq!(a.hmac, Some(0x0102_0304_0506_0708));
                }
                o => panic!("{o:?}"),
            }
        }
    }

    #[test]
    fn v0_layout_is_rfc6824s() {
        // RFC 6824 §3.4.1: kind, length, subtype | IPVer, address ID, address.
        let mut buf = [0u8; MAX_LEN];
        let n = emit_v0(&mut buf, 200, "198.18.1.11".parse().unwrap()).unwrap();
        assert_eq!(&buf[..n], &[30, 8, 0x34, 200, 198, 18, 1, 11]);
        let n = emit_v0(&mut buf, 7, "fd00:18:1::11".parse().unwrap()).unwrap();
        assert_eq!(n, 20);
        assert_eq!(&buf[..4], &[30, 20, 0x36, 7]);
        assert_eq!(
            &buf[4..20],
            &"fd00:18:1::11"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets()
        );
    }

    #[test]
    fn short_buffers_are_refused() {
        let a: IpAddr = "fd00::1".parse().unwrap();
        assert_eq!(emit_v1(&mut [0u8; 27], 1, a, 0), Err(WireError::Truncated));
        assert_eq!(emit_v0(&mut [0u8; 19], 1, a), Err(WireError::Truncated));
    }

    #[test]
    fn the_hmac_depends_on_key_order_and_every_input() {
        let a: IpAddr = "198.18.1.11".parse().unwrap();
        let h = hmac_v1(1, 2, 1, a, 0);
        assert_ne!(h, hmac_v1(2, 1, 1, a, 0));
        assert_ne!(h, hmac_v1(1, 2, 2, a, 0));
        assert_ne!(h, hmac_v1(1, 2, 1, "198.18.1.12".parse().unwrap(), 0));
        assert_ne!(h, hmac_v1(1, 2, 1, a, 80));
    }
}
