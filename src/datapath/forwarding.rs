//! The immutable forwarding snapshot: everything a worker needs to decide
//! where a frame goes. Built by the control plane from the config (and, later,
//! health state and learnt MACs; see `crate::control`), published to workers
//! between bursts. Workers never see a partial update.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::maglev::{BackendId, MaglevTable};

/// One DPDK port's own identity, as the datapath answers for it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Interface {
    pub mac: [u8; 6],
    pub ipv4: Vec<Ipv4Addr>,
    pub ipv6: Vec<Ipv6Addr>,
    /// The next hop's MAC for encapsulated frames to backends not on this
    /// segment (backends with no known MAC).
    pub gateway_mac: Option<[u8; 6]>,
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

/// A complete forwarding state.
#[derive(Clone, Debug, Default)]
pub struct Forwarding {
    /// Indexed by the port index the worker passes to `process`.
    pub interfaces: Vec<Interface>,
    pub vips: Vec<Vip>,
    /// Indexed by `BackendId.0`; `None` for unused ids.
    pub backends: Vec<Option<Backend>>,
    pub encap: Encap,
}

impl Forwarding {
    /// The VIP serving `addr:port` over `protocol`.
    #[inline]
    pub fn vip(&self, addr: IpAddr, port: u16, protocol: Protocol) -> Option<&Vip> {
        self.vips
            .iter()
            .find(|v| v.port == port && v.protocol == protocol && v.addr == addr)
    }

    /// Whether `addr` is the address of any VIP (answered for ARP/ND).
    pub fn is_vip_addr(&self, addr: IpAddr) -> bool {
        self.vips.iter().any(|v| v.addr == addr)
    }

    #[inline]
    pub fn backend(&self, id: BackendId) -> Option<&Backend> {
        self.backends
            .get(usize::from(id.0))
            .and_then(Option::as_ref)
    }
}
