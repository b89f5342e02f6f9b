//! IP-in-IP outer headers, built once per snapshot.
//!
//! Everything in the outer headers but the lengths, the IPv4 identification
//! (the flow's entropy), the IPv6 flow label and the inner protocol is fixed
//! per backend and port: the next hop's MAC, the port's MAC, the outer
//! source (`encap.source_v4/v6` or the port's first address), the backend's
//! address and the TTL. [`Tunnels::build`] writes those once for every
//! backend of an IP-in-IP VIP and every port, with the IPv4 header's partial
//! checksum; per packet [`Outer::write`] copies them and fills in the rest.
//! How the headers are laid out and why is [`super::rewrite`]'s module doc.
//!
//! A backend or port that cannot have a tunnel (no next hop, no source of
//! the backend's family) keeps the reason, which the packet is dropped for.

use std::net::IpAddr;

use super::forwarding::{Backend, Encap, ForwardingMode, Interface, Vip};
use super::verdict::DropReason;
use crate::wire::ethernet::{self, MacAddr, ethertype};
use crate::wire::{ipv4, ipv6};

/// The outer IP header's protocol / next header for an IPv4 inner packet.
pub const IPPROTO_IPIP: u8 = 4;
/// The same for an IPv6 inner packet.
pub const IPPROTO_IPV6: u8 = 41;

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
    /// The outer headers of every backend of an IP-in-IP VIP, through every
    /// port; `backends` is indexed by backend id.
    pub fn build(
        interfaces: &[Interface],
        vips: &[Vip],
        backends: &[Option<Backend>],
        encap: &Encap,
    ) -> Tunnels {
        let ports = interfaces.len();
        let mut tunnelled = vips
            .iter()
            .filter(|v| v.mode == ForwardingMode::Ipip)
            .flat_map(|v| v.backends.iter())
            .peekable();
        // No IP-in-IP VIP (an L2 DSR deployment): no memory at all.
        if tunnelled.peek().is_none() {
            return Tunnels::default();
        }
        let mut outer = vec![None; backends.len() * ports];
        for id in tunnelled {
            let i = usize::from(id.0);
            let Some(Some(b)) = backends.get(i) else {
                continue;
            };
            for (p, iface) in interfaces.iter().enumerate() {
                if let Some(slot) = outer.get_mut(i * ports + p) {
                    if slot.is_none() {
                        *slot = Some(Outer::new(iface, encap, b));
                    }
                }
            }
        }
        Tunnels { ports, outer }
    }

    /// The memory the headers take.
    pub fn memory_bytes(&self) -> usize {
        self.outer.len() * std::mem::size_of::<Option<Result<Outer, DropReason>>>()
    }

    /// The outer headers to `backend` through port `port`; a backend of no
    /// IP-in-IP VIP, or a port that does not exist, has none.
    #[inline(always)]
    pub fn outer(&self, backend: &Backend, port: usize) -> Result<&Outer, DropReason> {
        if port >= self.ports {
            return Err(DropReason::NoNextHop);
        }
        match self
            .outer
            .get(usize::from(backend.id.0) * self.ports + port)
        {
            Some(Some(o)) => o.as_ref().map_err(|r| *r),
            _ => Err(DropReason::NoNextHop),
        }
    }
}

impl Outer {
    /// The fixed part of the outer headers to `backend` leaving by `out`.
    pub fn new(out: &Interface, encap: &Encap, backend: &Backend) -> Result<Outer, DropReason> {
        let next_hop = MacAddr(
            backend
                .mac
                .or(out.gateway_mac)
                .ok_or(DropReason::NoNextHop)?,
        );
        let eth = |et| ethernet::header(next_hop, MacAddr(out.mac), et);
        let room = |ip_len: usize| out.mtu.saturating_sub(ip_len as u16);
        Ok(match backend.addr {
            IpAddr::V4(dst) => {
                let src = encap
                    .source_v4
                    .or_else(|| out.ipv4.first().copied())
                    .ok_or(DropReason::NoEncapSource)?;
                Outer {
                    eth: eth(ethertype::IPV4),
                    ip: OuterIp::V4(ipv4::Template::new(src, dst, encap.ttl)),
                    room: room(ipv4::MIN_HEADER_LEN),
                }
            }
            IpAddr::V6(dst) => {
                let src = encap
                    .source_v6
                    .or_else(|| out.ipv6.first().copied())
                    .ok_or(DropReason::NoEncapSource)?;
                Outer {
                    eth: eth(ethertype::IPV6),
                    ip: OuterIp::V6(ipv6::header(&src, &dst, 0, 0, encap.ttl, 0)),
                    room: room(ipv6::HEADER_LEN),
                }
            }
        })
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
            IPPROTO_IPIP
        } else {
            IPPROTO_IPV6
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
    use crate::datapath::forwarding::BackendState;
    use crate::datapath::maglev::BackendId;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn backend(id: u16, addr: &str, mac: Option<[u8; 6]>) -> Backend {
        Backend {
            id: BackendId(id),
            name: format!("b{id}"),
            addr: addr.parse().unwrap(),
            mac,
            weight: 1,
            state: BackendState::Active,
        }
    }

    fn port(ipv4: &[&str], ipv6: &[&str], gateway: Option<[u8; 6]>) -> Interface {
        Interface {
            mac: [2, 0, 0, 0, 0, 1],
            ipv4: ipv4
                .iter()
                .map(|a| a.parse::<Ipv4Addr>().unwrap())
                .collect(),
            ipv6: ipv6
                .iter()
                .map(|a| a.parse::<Ipv6Addr>().unwrap())
                .collect(),
            gateway_mac: gateway,
            ..Interface::default()
        }
    }

    const ENCAP: Encap = Encap {
        source_v4: None,
        source_v6: None,
        ttl: 61,
    };

    /// The headers written from the template are those the general
    /// emitters write for the same fields, for both families and inner
    /// versions.
    #[test]
    fn written_headers_are_the_emitters() {
        let out = port(
            &["198.18.0.2"],
            &["fd00:18::2"],
            Some([2, 0, 0, 0, 0, 0xfe]),
        );
        let b4 = backend(0, "198.18.1.7", Some([2, 0, 0, 0, 1, 7]));
        let b6 = backend(1, "fd00:18::7", None);
        for (b, inner_version, mix) in [
            (&b4, 4, 0x1234_5678),
            (&b4, 6, 0),
            (&b6, 4, 0),
            (&b6, 6, 0xabc_def0),
        ] {
            let o = Outer::new(&out, &ENCAP, b).expect("a tunnel");
            let mut got = vec![0xa5; 14 + o.ip_len()];
            o.write(&mut got, 1000, inner_version, mix)
                .expect("written");
            let proto = if inner_version == 4 { 4 } else { 41 };
            let mut want = vec![0u8; 14 + o.ip_len()];
            match b.addr {
                IpAddr::V4(dst) => {
                    let mac = b.mac.expect("b4 has its MAC");
                    ethernet::emit_header(
                        &mut want,
                        MacAddr(mac),
                        MacAddr(out.mac),
                        ethertype::IPV4,
                    )
                    .unwrap();
                    ipv4::emit_header(
                        &mut want[14..],
                        out.ipv4[0],
                        dst,
                        proto,
                        1000,
                        61,
                        mix as u16,
                    )
                    .unwrap();
                }
                IpAddr::V6(dst) => {
                    let gw = out.gateway_mac.expect("gateway");
                    ethernet::emit_header(
                        &mut want,
                        MacAddr(gw),
                        MacAddr(out.mac),
                        ethertype::IPV6,
                    )
                    .unwrap();
                    want[14..].copy_from_slice(&ipv6::header(
                        &out.ipv6[0],
                        &dst,
                        proto,
                        1000,
                        61,
                        (mix & 0xf_ffff).max(1),
                    ));
                }
            }
            assert_eq!(got, want, "{b:?} inner v{inner_version}");
        }
    }

    fn vip(mode: ForwardingMode, backends: &[u16]) -> Vip {
        Vip {
            id: 0,
            name: "v".into(),
            addr: "198.18.0.10".parse().unwrap(),
            port: 80,
            protocol: crate::datapath::forwarding::Protocol::Tcp,
            mode,
            mptcp_tracking: true,
            token_routing: true,
            announce_backend_address: false,
            backends: backends.iter().map(|&i| BackendId(i)).collect(),
            members: Default::default(),
            maglev: std::sync::Arc::new(
                crate::datapath::maglev::MaglevTable::build(7, &[]).unwrap(),
            ),
        }
    }

    /// Headers for the backends of IP-in-IP VIPs through every port, for
    /// no other backend, and no memory where no VIP is IP-in-IP.
    #[test]
    fn built_for_the_backends_of_ip_in_ip_vips_through_every_port() {
        let gw = Some([2, 0, 0, 0, 0, 0xfe]);
        let ports = [
            port(&["198.18.0.2"], &[], gw),
            port(&["198.18.9.2"], &[], None),
        ];
        let backends = vec![
            Some(backend(0, "198.18.1.7", None)),
            None,
            Some(backend(2, "198.18.1.8", Some([2, 0, 0, 0, 1, 8]))),
            Some(backend(3, "198.18.1.9", None)),
        ];
        let vips = [
            vip(ForwardingMode::Ipip, &[0, 2]),
            vip(ForwardingMode::L2Dsr, &[3]),
        ];
        let t = Tunnels::build(&ports, &vips, &backends, &ENCAP);
        let b = |i: usize| backends[i].as_ref().unwrap();
        assert!(t.outer(b(0), 0).is_ok());
        // Port 1 has no gateway and backend 0 no MAC.
        assert_eq!(t.outer(b(0), 1), Err(DropReason::NoNextHop));
        assert!(t.outer(b(2), 0).is_ok() && t.outer(b(2), 1).is_ok());
        // Backend 2 through port 1: that port's source.
        let mut h = [0u8; 34];
        t.outer(b(2), 1).unwrap().write(&mut h, 40, 4, 0).unwrap();
        assert_eq!(&h[26..30], &[198, 18, 9, 2]);
        assert_eq!(
            t.outer(b(3), 0),
            Err(DropReason::NoNextHop),
            "an L2 DSR VIP's"
        );
        assert_eq!(t.outer(b(0), 2), Err(DropReason::NoNextHop), "no such port");
        assert!(t.memory_bytes() > 0);
        let none = Tunnels::build(&ports, &vips[1..], &backends, &ENCAP);
        assert_eq!(none.memory_bytes(), 0);
        assert_eq!(none.outer(b(0), 0), Err(DropReason::NoNextHop));
    }

    #[test]
    fn the_reason_a_tunnel_cannot_be_built_is_kept() {
        let b = backend(0, "198.18.1.7", None);
        assert_eq!(
            Outer::new(&port(&["198.18.0.2"], &[], None), &ENCAP, &b),
            Err(DropReason::NoNextHop)
        );
        let gw = Some([2, 0, 0, 0, 0, 0xfe]);
        assert_eq!(
            Outer::new(&port(&[], &["fd00:18::2"], gw), &ENCAP, &b),
            Err(DropReason::NoEncapSource)
        );
        let encap = Encap {
            source_v4: Some(Ipv4Addr::new(198, 18, 9, 9)),
            ..ENCAP
        };
        assert!(
            Outer::new(&port(&[], &[], gw), &encap, &b).is_ok(),
            "the configured source serves"
        );
        // Too long: the IPv4 total length would pass 65535.
        let o = Outer::new(&port(&["198.18.0.2"], &[], gw), &ENCAP, &b).unwrap();
        let mut buf = [0u8; 34];
        assert_eq!(o.write(&mut buf, 65516, 4, 0), Err(DropReason::TooBig));
        assert_eq!(o.write(&mut buf, 65515, 4, 0), Ok(()));
        assert_eq!(o.write(&mut buf[..33], 0, 4, 0), Err(DropReason::Malformed));
    }
}
