//! The immutable forwarding snapshot: everything a worker needs to decide
//! where a frame goes. Built by the control plane from the config (and, later,
//! health state and learnt MACs; see `crate::control`), published to workers
//! between bursts. Workers never see a partial update.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use super::maglev::{BackendId, MaglevTable};
use super::neighbours::Neighbours;
use crate::wire::addr::{self, Addr16};

/// What the engine knows of a started port that the config need not say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortFacts {
    pub mac: [u8; 6],
    /// L3 MTU: the largest IP packet the port sends.
    pub mtu: u16,
}

/// The Ethernet MTU, assumed for a port known by its MAC alone.
pub const DEFAULT_MTU: u16 = 1500;

impl From<[u8; 6]> for PortFacts {
    fn from(mac: [u8; 6]) -> PortFacts {
        PortFacts {
            mac,
            mtu: DEFAULT_MTU,
        }
    }
}

/// One DPDK port's own identity, as the datapath answers for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    pub mac: [u8; 6],
    pub ipv4: Vec<Ipv4Addr>,
    pub ipv6: Vec<Ipv6Addr>,
    /// The next hop's MAC for encapsulated frames to backends not on this
    /// segment (backends with no known MAC).
    pub gateway_mac: Option<[u8; 6]>,
    /// L3 MTU: an IP-in-IP packet longer than this is not sent (see
    /// [`super::local::too_big`]).
    pub mtu: u16,
}

impl Default for Interface {
    fn default() -> Interface {
        Interface {
            mac: [0; 6],
            ipv4: Vec::new(),
            ipv6: Vec::new(),
            gateway_mac: None,
            mtu: DEFAULT_MTU,
        }
    }
}

impl Interface {
    pub fn owns_v4(&self, a: Ipv4Addr) -> bool {
        self.ipv4.contains(&a)
    }
    pub fn owns_v6(&self, a: Ipv6Addr) -> bool {
        self.ipv6.contains(&a)
    }
}

/// Transport protocol of a VIP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    /// The IP protocol number.
    pub fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
        }
    }
}

/// How a frame reaches the chosen backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForwardingMode {
    /// Layer-2 direct server return: only the Ethernet header changes
    /// (destination = backend's MAC, source = our port's MAC). Backends must
    /// share the segment with the load balancer and hold the VIP on loopback.
    L2Dsr,
    /// IP-in-IP to the backend's own address: IPv4 in IPv4 (protocol 4) or
    /// IPv6 in IPv6 (next header 41); the inner packet is unchanged. Works
    /// across routers; the backend decapsulates and answers from the VIP.
    Ipip,
}

/// Whether a backend takes traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendState {
    /// In the Maglev tables; receives new flows.
    Active,
    /// Out of the Maglev tables (no new flows) but still receives the plain
    /// TCP flows pinned to it and MP_JOINs whose token it owns.
    Draining,
    /// Health checks failed or disabled by the operator: receives nothing new.
    Down,
}

/// A backend server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backend {
    pub id: BackendId,
    pub name: String,
    /// The backend's own unicast address (encapsulation destination, and the
    /// address it announces with ADD_ADDR).
    pub addr: IpAddr,
    /// Its MAC, for L2 DSR (static from the config, or learnt).
    pub mac: Option<[u8; 6]>,
    pub weight: u32,
    pub state: BackendState,
}

/// A virtual service: address, port and protocol, and who serves it.
#[derive(Clone, Debug)]
pub struct Vip {
    /// Stable across reloads while the name stays (keys traffic counters).
    pub id: u16,
    pub name: String,
    pub addr: IpAddr,
    pub port: u16,
    pub protocol: Protocol,
    pub mode: ForwardingMode,
    /// Pin the initial subflow of MPTCP connections in the flow table too
    /// (see the datapath docs for why); default off = stateless MPTCP.
    pub mptcp_tracking: bool,
    /// Route MP_JOIN SYNs sent to the VIP by their token (default on).
    pub token_routing: bool,
    /// Send each MPTCP client, once its handshake is seen complete, an
    /// ADD_ADDR with the chosen backend's own address (see
    /// [`super::announce`]). Only with `mptcp_tracking`.
    pub announce_backend_address: bool,
    /// All backends of the VIP, whatever their state.
    pub backends: Vec<BackendId>,
    /// Built from the active backends only.
    pub maglev: MaglevTable,
}

/// Encapsulation settings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Encap {
    /// Outer IPv4 source. `None`: the rx port's first IPv4 address.
    pub source_v4: Option<Ipv4Addr>,
    /// Outer IPv6 source. `None`: the rx port's first IPv6 address.
    pub source_v6: Option<Ipv6Addr>,
    /// Outer TTL / hop limit.
    pub ttl: u8,
}

/// A complete forwarding state. Built by [`Forwarding::new`], which indexes
/// the VIPs by address; read-only afterwards (workers share it).
#[derive(Clone, Debug, Default)]
pub struct Forwarding {
    /// Indexed by the port index the worker passes to `process`.
    pub interfaces: Vec<Interface>,
    /// Read-only: [`Forwarding::new`] indexed them.
    pub vips: Vec<Vip>,
    /// Indexed by `BackendId.0`; `None` for unused ids.
    pub backends: Vec<Option<Backend>>,
    pub encap: Encap,
    /// The backend addresses being resolved by ARP / ND, where workers
    /// record the answers (the same table across snapshots while the set of
    /// addresses stays; see [`super::neighbours`]).
    pub neighbours: Arc<Neighbours>,
    /// The VIP addresses, for one lookup per packet.
    by_addr: Vec<VipAddrEntry>,
    /// Indexes into `vips`, grouped by address (see `VipAddrEntry`).
    by_addr_vips: Vec<u32>,
}

/// One VIP address and the VIPs (ports, protocols) served on it.
#[derive(Clone, Copy, Debug)]
struct VipAddrEntry {
    addr: Addr16,
    version: u8,
    at: VipAddr,
}

/// A packet's destination found to be a VIP address ([`Forwarding::vip_addr`]):
/// the VIPs served there, for [`Forwarding::vip_at`] to pick by port and
/// protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VipAddr {
    /// `by_addr_vips[first..first + count]`.
    first: u32,
    count: u32,
}

impl Forwarding {
    /// A snapshot from its parts; indexes the VIPs by address.
    pub fn new(
        interfaces: Vec<Interface>,
        vips: Vec<Vip>,
        backends: Vec<Option<Backend>>,
        encap: Encap,
    ) -> Forwarding {
        let version = |v: &Vip| if v.addr.is_ipv4() { 4 } else { 6 };
        // VIP positions grouped by (address, version), in config order within
        // an address.
        let mut order: Vec<u32> = (0..vips.len() as u32).collect();
        order.sort_by_key(|&i| {
            let v = &vips[i as usize];
            (addr::from_ip(v.addr), version(v), i)
        });
        let mut by_addr: Vec<VipAddrEntry> = Vec::new();
        for (pos, &i) in order.iter().enumerate() {
            let v = &vips[i as usize];
            let (a, ver) = (addr::from_ip(v.addr), version(v));
            match by_addr.last_mut() {
                Some(e) if e.addr == a && e.version == ver => e.at.count += 1,
                _ => by_addr.push(VipAddrEntry {
                    addr: a,
                    version: ver,
                    at: VipAddr {
                        // A config holds far fewer than 2^32 VIPs.
                        first: pos as u32,
                        count: 1,
                    },
                }),
            }
        }
        Forwarding {
            interfaces,
            vips,
            backends,
            encap,
            neighbours: Arc::default(),
            by_addr,
            by_addr_vips: order,
        }
    }

    /// This snapshot with `table` as its neighbour table.
    pub fn with_neighbours(mut self, table: Arc<Neighbours>) -> Forwarding {
        self.neighbours = table;
        self
    }

    /// Whether `addr` (16-byte form, IP `version`) is the address of a VIP:
    /// the one search per packet, whose result [`Forwarding::vip_at`] uses.
    #[inline]
    pub fn vip_addr(&self, version: u8, addr: &Addr16) -> Option<VipAddr> {
        // Few distinct addresses in practice: a linear scan of 16-byte
        // compares beats a binary search's branches up to a few dozen.
        self.by_addr
            .iter()
            .find(|e| e.addr == *addr && e.version == version)
            .map(|e| e.at)
    }

    /// The VIPs served at a VIP address, in config order.
    #[inline]
    pub fn vips_at(&self, at: VipAddr) -> impl Iterator<Item = &Vip> {
        let first = at.first as usize;
        self.by_addr_vips
            .get(first..first + at.count as usize)
            .unwrap_or(&[])
            .iter()
            .filter_map(|&i| self.vips.get(i as usize))
    }

    /// The VIP serving `port` over `protocol` at a VIP address.
    #[inline]
    pub fn vip_at(&self, at: VipAddr, port: u16, protocol: Protocol) -> Option<&Vip> {
        self.vips_at(at)
            .find(|v| v.port == port && v.protocol == protocol)
    }

    /// The VIP serving `addr:port` over `protocol`.
    pub fn vip(&self, addr: IpAddr, port: u16, protocol: Protocol) -> Option<&Vip> {
        let at = self.vip_addr(if addr.is_ipv4() { 4 } else { 6 }, &addr::from_ip(addr))?;
        self.vip_at(at, port, protocol)
    }

    /// Whether `addr` is the address of any VIP (answered for ARP/ND).
    pub fn is_vip_addr(&self, addr: IpAddr) -> bool {
        self.vip_addr(if addr.is_ipv4() { 4 } else { 6 }, &addr::from_ip(addr))
            .is_some()
    }

    #[inline]
    pub fn backend(&self, id: BackendId) -> Option<&Backend> {
        self.backends
            .get(usize::from(id.0))
            .and_then(Option::as_ref)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vip(id: u16, addr: &str, port: u16, protocol: Protocol) -> Vip {
        Vip {
            id,
            name: format!("v{id}"),
            addr: addr.parse().unwrap(),
            port,
            protocol,
            mode: ForwardingMode::L2Dsr,
            mptcp_tracking: false,
            token_routing: true,
            announce_backend_address: false,
            backends: Vec::new(),
            maglev: MaglevTable::build(7, &[]).unwrap(),
        }
    }

    #[test]
    fn vips_are_found_by_address_then_port_and_protocol() {
        let f = Forwarding::new(
            Vec::new(),
            vec![
                vip(0, "198.18.0.10", 80, Protocol::Tcp),
                vip(1, "fd00::10", 80, Protocol::Tcp),
                vip(2, "198.18.0.11", 80, Protocol::Tcp),
                vip(3, "198.18.0.10", 53, Protocol::Udp),
                vip(4, "198.18.0.10", 443, Protocol::Tcp),
            ],
            Vec::new(),
            Encap::default(),
        );
        let v4 = addr::from_v4([198, 18, 0, 10]);
        let at = f.vip_addr(4, &v4).expect("a VIP address");
        let ids: Vec<u16> = f.vips_at(at).map(|v| v.id).collect();
        assert_eq!(ids, [0, 3, 4], "the VIPs of that address, in config order");
        assert_eq!(f.vip_at(at, 53, Protocol::Udp).map(|v| v.id), Some(3));
        assert_eq!(f.vip_at(at, 443, Protocol::Tcp).map(|v| v.id), Some(4));
        assert!(f.vip_at(at, 53, Protocol::Tcp).is_none());
        // An IPv6 packet to the IPv4-mapped form is not for the IPv4 VIP.
        assert!(f.vip_addr(6, &v4).is_none());
        let v6: Ipv6Addr = "fd00::10".parse().unwrap();
        let at6 = f.vip_addr(6, &v6.octets()).expect("the IPv6 VIP");
        assert_eq!(f.vip_at(at6, 80, Protocol::Tcp).map(|v| v.id), Some(1));
        assert!(f.vip_addr(4, &addr::from_v4([198, 18, 0, 12])).is_none());
        // The IpAddr forms agree.
        assert_eq!(
            f.vip("198.18.0.11".parse().unwrap(), 80, Protocol::Tcp)
                .map(|v| v.id),
            Some(2)
        );
        assert!(f.is_vip_addr("fd00::10".parse().unwrap()));
        assert!(!f.is_vip_addr("fd00::11".parse().unwrap()));
        assert!(Forwarding::default().vip_addr(4, &v4).is_none());
    }
}
