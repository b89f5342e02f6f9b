//! IP-in-IP outer headers, built once per snapshot.
//!
//! Everything in the outer headers but the lengths, the IPv4 identification
//! (the flow's entropy), the IPv6 flow label and the inner protocol is fixed
//! per backend and port: the next hop's MAC, the port's MAC, the outer
//! source, the backend's address and the TTL. The snapshot
//! ([`super::forwarding::tunnels`]) builds an [`Outer`] of those once for
//! every backend of an IP-in-IP VIP and every port, with the IPv4 header's
//! partial checksum; per packet [`Outer::write`] copies it and fills in the
//! rest. How the headers are laid out and why is [`super::rewrite`]'s
//! module doc.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::maglev::BackendId;
use super::verdict::DropReason;
use crate::wire::ethernet::{self, MacAddr, ethertype};
use crate::wire::{ip_proto, ipv4, ipv6};

/// The outer headers to one backend through one port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outer {
    eth: [u8; ethernet::HEADER_LEN],
    ip: OuterIp,
    /// The longest inner packet the port's MTU leaves room for.
    room: u16,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum OuterIp {
    V4(ipv4::Template),
    V6([u8; ipv6::HEADER_LEN]),
}

/// Where each backend's outer headers are: `backend id × ports + port`.
#[derive(Clone, Debug, Default)]
pub struct Tunnels {
    ports: usize,
    /// `None` for backends of no IP-in-IP VIP.
    outer: Vec<Option<Result<Outer, DropReason>>>,
}

impl Tunnels {
    /// Room for `backends` backend ids through `ports` ports, none built.
    pub fn new(backends: usize, ports: usize) -> Tunnels {
        Tunnels {
            ports,
            outer: vec![None; backends * ports],
        }
    }

    /// Sets the outer headers to `backend` through `port` (or why there are
    /// none); an id or port out of range is left out.
    pub fn insert(&mut self, backend: BackendId, port: usize, outer: Result<Outer, DropReason>) {
        if port < self.ports {
            if let Some(slot) = self
                .outer
                .get_mut(usize::from(backend.0) * self.ports + port)
            {
                *slot = Some(outer);
            }
        }
    }

    /// Whether the headers to `backend` through `port` are set.
    pub fn has(&self, backend: BackendId, port: usize) -> bool {
        port < self.ports
            && matches!(
                self.outer.get(usize::from(backend.0) * self.ports + port),
                Some(Some(_))
            )
    }

    /// The memory the headers take.
    pub fn memory_bytes(&self) -> usize {
        self.outer.len() * std::mem::size_of::<Option<Result<Outer, DropReason>>>()
    }

    /// The outer headers to `backend` through port `port`; a backend of no
    /// IP-in-IP VIP, or a port that does not exist, has none.
    #[inline(always)]
    pub fn outer(&self, backend: BackendId, port: usize) -> Result<&Outer, DropReason> {
        if port >= self.ports {
            return Err(DropReason::NoNextHop);
        }
        match self.outer.get(usize::from(backend.0) * self.ports + port) {
            Some(Some(o)) => o.as_ref().map_err(|r| *r),
            _ => Err(DropReason::NoNextHop),
        }
    }
}

/// The two ends of a tunnel, of one family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ends {
    V4 { src: Ipv4Addr, dst: Ipv4Addr },
    V6 { src: Ipv6Addr, dst: Ipv6Addr },
}

impl Outer {
    /// The fixed part of the outer headers: from `port_mac` to `next_hop`,
    /// between `ends`, with `ttl`, leaving by a port of L3 MTU `mtu`.
    pub fn new(next_hop: [u8; 6], port_mac: [u8; 6], ends: Ends, ttl: u8, mtu: u16) -> Outer {
        let eth = |et| ethernet::header(MacAddr(next_hop), MacAddr(port_mac), et);
        let room = |ip_len: usize| mtu.saturating_sub(ip_len as u16);
        match ends {
            Ends::V4 { src, dst } => Outer {
                eth: eth(ethertype::IPV4),
                ip: OuterIp::V4(ipv4::Template::new(src, dst, ttl)),
                room: room(ipv4::MIN_HEADER_LEN),
            },
            Ends::V6 { src, dst } => Outer {
                eth: eth(ethertype::IPV6),
                ip: OuterIp::V6(ipv6::header(&src, &dst, 0, 0, ttl, 0)),
                room: room(ipv6::HEADER_LEN),
            },
        }
    }

    /// The longest inner packet that fits the out port's MTU with the outer
    /// IP header (a longer one is answered "too big", see
    /// [`super::local::too_big`]).
    #[inline(always)]
    pub fn room(&self) -> usize {
        usize::from(self.room)
    }

    /// The outer IP header's length.
    #[inline(always)]
    pub fn ip_len(&self) -> usize {
        match self.ip {
            OuterIp::V4(_) => ipv4::MIN_HEADER_LEN,
            OuterIp::V6(_) => ipv6::HEADER_LEN,
        }
    }

    /// Writes the outer headers into `front` (their length: 14 + 20 or
    /// 14 + 40 bytes) for an inner packet of `inner_len` bytes and IP
    /// version `inner_version`; `mix` is the flow's entropy (the IPv4
    /// identification, the IPv6 flow label). `TooBig` if the outer packet
    /// would pass 65535 bytes.
    #[inline(always)]
    pub fn write(
        &self,
        front: &mut [u8],
        inner_len: u16,
        inner_version: u8,
        mix: u32,
    ) -> Result<(), DropReason> {
        let proto = if inner_version == 4 {
            ip_proto::IPV4
        } else {
            ip_proto::IPV6
        };
        match &self.ip {
            OuterIp::V4(t) => {
                let (e, h) = headers::<{ ipv4::MIN_HEADER_LEN }>(front)?;
                *e = self.eth;
                t.write(h, proto, inner_len, mix as u16)
                    .map_err(|_| DropReason::TooBig)
            }
            OuterIp::V6(t) => {
                let (e, h) = headers::<{ ipv6::HEADER_LEN }>(front)?;
                *e = self.eth;
                *h = *t;
                // Flow label: 20 bits, never 0 (0 means "unlabelled").
                ipv6::fill(h, proto, inner_len, (mix & 0xf_ffff).max(1));
                Ok(())
            }
        }
    }
}

/// The Ethernet header and an `N`-byte IP header at the start of `front`,
/// as arrays (their writes then need no further bounds checks).
#[inline(always)]
fn headers<const N: usize>(
    front: &mut [u8],
) -> Result<(&mut [u8; ethernet::HEADER_LEN], &mut [u8; N]), DropReason> {
    let (e, rest) = front
        .split_first_chunk_mut::<{ ethernet::HEADER_LEN }>()
        .ok_or(DropReason::Malformed)?;
    let h = rest.first_chunk_mut::<N>().ok_or(DropReason::Malformed)?;
    Ok((e, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PORT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const GW: [u8; 6] = [2, 0, 0, 0, 0, 0xfe];

    fn v4(src: [u8; 4], dst: [u8; 4]) -> Ends {
        Ends::V4 {
            src: src.into(),
            dst: dst.into(),
        }
    }

    /// The headers written from the template are those the general
    /// emitters write for the same fields, for both families and inner
    /// versions.
    #[test]
    fn written_headers_are_the_emitters() {
        let src6: Ipv6Addr = "fd00:18::2".parse().unwrap();
        let dst6: Ipv6Addr = "fd00:18::7".parse().unwrap();
        let b4 = ([2, 0, 0, 0, 1, 7], v4([198, 18, 0, 2], [198, 18, 1, 7]));
        let b6 = (
            GW,
            Ends::V6 {
                src: src6,
                dst: dst6,
            },
        );
        for ((next_hop, ends), inner_version, mix) in [
            (b4, 4, 0x1234_5678),
            (b4, 6, 0),
            (b6, 4, 0),
            (b6, 6, 0xabc_def0),
        ] {
            let o = Outer::new(next_hop, PORT_MAC, ends, 61, 1500);
            let mut got = vec![0xa5; 14 + o.ip_len()];
            o.write(&mut got, 1000, inner_version, mix)
                .expect("written");
            let proto = if inner_version == 4 { 4 } else { 41 };
            let mut want = vec![0u8; 14 + o.ip_len()];
            match ends {
                Ends::V4 { src, dst } => {
                    ethernet::emit_header(
                        &mut want,
                        MacAddr(next_hop),
                        MacAddr(PORT_MAC),
                        ethertype::IPV4,
                    )
                    .unwrap();
                    ipv4::emit_header(&mut want[14..], src, dst, proto, 1000, 61, mix as u16)
                        .unwrap();
                }
                Ends::V6 { src, dst } => {
                    ethernet::emit_header(
                        &mut want,
                        MacAddr(next_hop),
                        MacAddr(PORT_MAC),
                        ethertype::IPV6,
                    )
                    .unwrap();
                    want[14..].copy_from_slice(&ipv6::header(
                        &src,
                        &dst,
                        proto,
                        1000,
                        61,
                        (mix & 0xf_ffff).max(1),
                    ));
                }
            }
            assert_eq!(got, want, "{ends:?} inner v{inner_version}");
        }
    }

    #[test]
    fn room_is_the_mtu_less_the_outer_header() {
        let o = Outer::new(GW, PORT_MAC, v4([198, 18, 0, 2], [198, 18, 1, 7]), 61, 1500);
        assert_eq!(o.room(), 1480);
        let src: Ipv6Addr = "fd00:18::2".parse().unwrap();
        let o6 = Outer::new(GW, PORT_MAC, Ends::V6 { src, dst: src }, 61, 30);
        assert_eq!(o6.room(), 0, "an MTU below the header leaves none");
    }

    /// Set slots only, within range.
    #[test]
    fn slots_by_backend_and_port() {
        let o = Outer::new(GW, PORT_MAC, v4([198, 18, 0, 2], [198, 18, 1, 7]), 61, 1500);
        let mut t = Tunnels::new(3, 2);
        t.insert(BackendId(1), 1, Ok(o.clone()));
        t.insert(BackendId(2), 0, Err(DropReason::NoEncapSource));
        t.insert(BackendId(3), 0, Ok(o.clone()));
        t.insert(BackendId(0), 2, Ok(o.clone()));
        assert_eq!(t.outer(BackendId(1), 1), Ok(&o));
        assert_eq!(t.outer(BackendId(2), 0), Err(DropReason::NoEncapSource));
        assert_eq!(t.outer(BackendId(1), 0), Err(DropReason::NoNextHop));
        assert_eq!(t.outer(BackendId(3), 0), Err(DropReason::NoNextHop));
        assert_eq!(t.outer(BackendId(0), 2), Err(DropReason::NoNextHop));
        assert!(t.has(BackendId(2), 0) && !t.has(BackendId(0), 0));
    }
}
