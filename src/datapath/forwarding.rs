//! The immutable forwarding snapshot: everything a worker needs to decide
//! where a frame goes. Built by the control plane from the config (and, later,
//! health state and learnt MACs; see `crate::control`), published to workers
//! between bursts. Workers never see a partial update.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use super::hash::HashVersion;
use super::maglev::{BackendId, MaglevTable};
use super::neighbours::{Asker, Neighbours};
use super::tunnel::{Ends, Outer, Tunnels};
use super::verdict::DropReason;
pub use super::vip_index::{Protocol, Service, VipAddr, VipIndex};
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
    /// The port has an exception path (a kernel interface): the host's own
    /// traffic is handed to it (`Verdict::Kernel`) instead of dropped.
    pub kernel: bool,
}

impl Service for Vip {
    #[inline]
    fn addr(&self) -> IpAddr {
        self.addr
    }
    #[inline]
    fn port(&self) -> u16 {
        self.port
    }
    #[inline]
    fn protocol(&self) -> Protocol {
        self.protocol
    }
    #[inline]
    fn id(&self) -> u16 {
        self.id
    }
}

impl Interface {
    /// What this port asks for backends' MACs from (ARP / ND).
    pub fn asker(&self) -> Asker {
        Asker {
            mac: self.mac,
            ipv4: self.ipv4.first().copied(),
            ipv6: self.ipv6.first().copied(),
        }
    }
}

impl Default for Interface {
    fn default() -> Interface {
        Interface {
            mac: [0; 6],
            ipv4: Vec::new(),
            ipv6: Vec::new(),
            gateway_mac: None,
            mtu: DEFAULT_MTU,
            kernel: false,
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
///
/// Laid out for the packet path: what a decision reads (id, port and
/// protocol, mode and options, members, Maglev table) is in the first cache
/// line of a line-aligned value, the rest after it. With thousands of VIPs a
/// packet's VIP is then one line, which a burst prefetches.
#[derive(Clone, Debug)]
#[repr(C, align(64))]
pub struct Vip {
    /// Stable across reloads while the name stays (keys traffic counters).
    pub id: u16,
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
    /// The same ids as the membership test of every flow-table hit reads
    /// them (see [`Members`]): filled by [`Forwarding::new`], whatever the
    /// VIP was built with.
    pub members: Members,
    /// Built from the active backends only; shared with the next snapshot
    /// (and with VIPs of the same backends) while those do not change.
    pub maglev: MaglevTable,
    pub name: String,
    pub addr: IpAddr,
    /// All backends of the VIP, whatever their state, in config order.
    pub backends: Vec<BackendId>,
}

/// A VIP's backend ids, for the membership test of every flow-table hit
/// (whether the flow's backend still belongs to the VIP): one word compare
/// for up to four backends, a binary search for more — not a scan whose
/// cost grows with the VIP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Members {
    /// One to four ids, a 16-bit lane each; spare lanes repeat an id.
    Few(u64),
    /// None, or more than four, sorted.
    Many(Box<[BackendId]>),
}

impl Default for Members {
    fn default() -> Members {
        Members::Many(Box::default())
    }
}

impl Members {
    pub fn of(backends: &[BackendId]) -> Members {
        let mut ids = backends.to_vec();
        ids.sort_unstable();
        ids.dedup();
        match ids[..] {
            [first, ..] if ids.len() <= 4 => Members::Few((0..4).fold(0u64, |w, i| {
                w | u64::from(ids.get(i).unwrap_or(&first).0) << (16 * i)
            })),
            _ => Members::Many(ids.into_boxed_slice()),
        }
    }

    #[inline(always)]
    pub fn contains(&self, id: BackendId) -> bool {
        match self {
            Members::Few(w) => {
                const LOW: u64 = 0x0001_0001_0001_0001;
                const HIGH: u64 = 0x8000_8000_8000_8000;
                // A lane of `x` is zero iff it holds `id`; the test is
                // exact for "some lane is zero".
                let x = w ^ (u64::from(id.0) * LOW);
                x.wrapping_sub(LOW) & !x & HIGH != 0
            }
            Members::Many(ids) => ids.binary_search(&id).is_ok(),
        }
    }
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
/// the VIPs (see [`VipIndex`]), fills their [`Members`] and builds the
/// IP-in-IP outer headers (see [`Tunnels`]); read-only afterwards (workers
/// share it). A snapshot whose fields are changed in place must be
/// [`Forwarding::rebuilt`].
#[derive(Clone, Debug, Default)]
pub struct Forwarding {
    /// Indexed by the port index the worker passes to `process`.
    pub interfaces: Vec<Interface>,
    /// Read-only: [`Forwarding::new`] indexed them.
    pub vips: Vec<Vip>,
    /// Indexed by `BackendId.0`; `None` for unused ids.
    pub backends: Vec<Option<Backend>>,
    pub encap: Encap,
    /// The flow hash (`[datapath] hash_version`): fixed for the life of
    /// the process (a reload cannot change it), since the flow table's
    /// entries are placed by it.
    pub hash: HashVersion,
    /// The backend addresses being resolved by ARP / ND, where workers
    /// record the answers (the same table across snapshots while the set of
    /// addresses stays; see [`super::neighbours`]).
    pub neighbours: Arc<Neighbours>,
    /// Where each packet finds its VIP, whatever their number.
    index: VipIndex,
    /// The IP-in-IP outer headers, built from the fields above: a snapshot
    /// whose interfaces, backends or encapsulation change is a new one
    /// ([`Forwarding::new`] again).
    tunnels: Tunnels,
}

impl Forwarding {
    /// A snapshot from its parts; indexes the VIPs.
    pub fn new(
        interfaces: Vec<Interface>,
        vips: Vec<Vip>,
        backends: Vec<Option<Backend>>,
        encap: Encap,
    ) -> Forwarding {
        let mut vips = vips;
        for v in &mut vips {
            v.members = Members::of(&v.backends);
        }
        let index = VipIndex::new(&vips);
        let tunnels = tunnels(&interfaces, &vips, &backends, &encap);
        Forwarding {
            interfaces,
            vips,
            backends,
            encap,
            hash: HashVersion::default(),
            neighbours: Arc::default(),
            index,
            tunnels,
        }
    }

    /// This snapshot built again from its parts after some were changed in
    /// place (tests do): what is derived from them — the VIP index, the
    /// VIPs' members, the tunnels — is rebuilt.
    pub fn rebuilt(self) -> Forwarding {
        Forwarding::new(self.interfaces, self.vips, self.backends, self.encap)
            .with_neighbours(self.neighbours)
            .with_hash(self.hash)
    }

    /// This snapshot hashing flows by `version`.
    pub fn with_hash(mut self, version: HashVersion) -> Forwarding {
        self.hash = version;
        self
    }

    /// This snapshot with `table` as its neighbour table.
    pub fn with_neighbours(mut self, table: Arc<Neighbours>) -> Forwarding {
        self.neighbours = table;
        self
    }

    /// Whether `addr` (16-byte form, IP `version`) is the address of a VIP:
    /// the one address lookup per packet, whose result
    /// [`Forwarding::vip_at`] uses.
    #[inline]
    pub fn vip_addr(&self, version: u8, addr: &Addr16) -> Option<VipAddr<'_>> {
        self.index.addr(version, addr)
    }

    /// Whether a burst prefetches the VIPs' state: where there are too many
    /// addresses for it to stay in the cache (see [`VipIndex::many`]).
    pub fn many_vips(&self) -> bool {
        self.index.many()
    }

    /// The VIPs served at a VIP address, in config order.
    #[inline]
    pub fn vips_at(&self, at: VipAddr<'_>) -> impl Iterator<Item = &Vip> {
        self.index
            .members(at)
            .iter()
            .filter_map(|&i| self.vips.get(i as usize))
    }

    /// The VIP serving `port` over `protocol` at a VIP address.
    #[inline]
    pub fn vip_at(&self, at: VipAddr<'_>, port: u16, protocol: Protocol) -> Option<&Vip> {
        self.index.service(&self.vips, at, port, protocol)
    }

    /// The one VIP serving `protocol` at a VIP address, which takes its
    /// fragments; `None` if none does or several do (ambiguous).
    #[inline]
    pub fn fragment_vip(&self, at: VipAddr<'_>, protocol: Protocol) -> Option<&Vip> {
        let i = self.index.fragment(at, protocol)?;
        self.vips.get(i)
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

    /// The IP-in-IP outer headers to `backend` leaving by port `port`.
    #[inline(always)]
    pub fn tunnel(&self, backend: &Backend, port: usize) -> Result<&Outer, DropReason> {
        self.tunnels.outer(backend.id, port)
    }

    /// The VIP index (its size and probe lengths, for reports; a burst's
    /// lookups ahead, see [`VipIndex::home`]).
    #[inline(always)]
    pub fn vip_index(&self) -> &VipIndex {
        &self.index
    }

    #[inline]
    pub fn backend(&self, id: BackendId) -> Option<&Backend> {
        self.backends
            .get(usize::from(id.0))
            .and_then(Option::as_ref)
    }
}

/// The IP-in-IP outer headers of every backend of an IP-in-IP VIP, through
/// every port (see [`super::tunnel`]); `backends` is indexed by backend id.
/// Where no VIP is IP-in-IP (an L2 DSR deployment), none and no memory.
pub fn tunnels(
    interfaces: &[Interface],
    vips: &[Vip],
    backends: &[Option<Backend>],
    encap: &Encap,
) -> Tunnels {
    let mut tunnelled = vips
        .iter()
        .filter(|v| v.mode == ForwardingMode::Ipip)
        .flat_map(|v| v.backends.iter())
        .filter_map(|id| backends.get(usize::from(id.0))?.as_ref())
        .peekable();
    if tunnelled.peek().is_none() {
        return Tunnels::default();
    }
    let mut t = Tunnels::new(backends.len(), interfaces.len());
    for b in tunnelled {
        for (p, out) in interfaces.iter().enumerate() {
            // A backend in several IP-in-IP VIPs is built once.
            if !t.has(b.id, p) {
                t.insert(b.id, p, outer_to(out, encap, b));
            }
        }
    }
    t
}

/// The fixed outer headers to `backend` leaving by `out`: the next hop is
/// the backend's MAC, else the port's gateway; the source is
/// `encap.source_v4/v6`, else the port's first address of the backend's
/// family. Without either, why the backend's packets are dropped.
pub fn outer_to(out: &Interface, encap: &Encap, backend: &Backend) -> Result<Outer, DropReason> {
    let next_hop = backend
        .mac
        .or(out.gateway_mac)
        .ok_or(DropReason::NoNextHop)?;
    let ends = match backend.addr {
        IpAddr::V4(dst) => Ends::V4 {
            src: encap
                .source_v4
                .or_else(|| out.ipv4.first().copied())
                .ok_or(DropReason::NoEncapSource)?,
            dst,
        },
        IpAddr::V6(dst) => Ends::V6 {
            src: encap
                .source_v6
                .or_else(|| out.ipv6.first().copied())
                .ok_or(DropReason::NoEncapSource)?,
            dst,
        },
    };
    Ok(Outer::new(next_hop, out.mac, ends, encap.ttl, out.mtu))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn what_a_decision_reads_of_a_vip_is_its_first_cache_line() {
        use std::mem::{align_of, offset_of, size_of};
        assert_eq!(align_of::<Vip>(), 64);
        let ends = [
            offset_of!(Vip, id) + size_of::<u16>(),
            offset_of!(Vip, port) + size_of::<u16>(),
            offset_of!(Vip, protocol) + size_of::<Protocol>(),
            offset_of!(Vip, mode) + size_of::<ForwardingMode>(),
            offset_of!(Vip, mptcp_tracking) + 1,
            offset_of!(Vip, token_routing) + 1,
            offset_of!(Vip, announce_backend_address) + 1,
            offset_of!(Vip, members) + size_of::<Members>(),
            offset_of!(Vip, maglev) + size_of::<MaglevTable>(),
        ];
        assert!(ends.iter().all(|&end| end <= 64), "{ends:?}");
    }

    proptest! {
        /// Membership as the VIP's list says, for every size (the word
        /// compare up to four, the search above), ids close together (lanes
        /// that differ in one bit) and far apart.
        #[test]
        fn members_are_the_vips_backends(
            ids in proptest::collection::vec(any::<u16>(), 0..40),
            near in proptest::collection::vec(0u16..8, 0..6),
            probes in proptest::collection::vec(any::<u16>(), 0..40),
        ) {
            let list: Vec<BackendId> = ids.iter().chain(&near).map(|&i| BackendId(i)).collect();
            let m = Members::of(&list);
            for p in probes.iter().chain(&ids).chain(&near).chain(&[0, 1, 7, 8, u16::MAX]) {
                let id = BackendId(*p);
                prop_assert_eq!(m.contains(id), list.contains(&id), "{:?} in {:?}", id, list);
            }
        }
    }

    #[test]
    fn members_of_no_backend_hold_none() {
        let m = Members::of(&[]);
        assert!(!m.contains(BackendId(0)) && !m.contains(BackendId(u16::MAX)));
        assert_eq!(m, Members::default());
        let one = Members::of(&[BackendId(0)]);
        assert!(one.contains(BackendId(0)) && !one.contains(BackendId(1)));
    }

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

    fn tunnelled_vip(mode: ForwardingMode, backends: &[u16]) -> Vip {
        Vip {
            mode,
            backends: backends.iter().map(|&i| BackendId(i)).collect(),
            ..vip(0, "198.18.0.10", 80, Protocol::Tcp)
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
            tunnelled_vip(ForwardingMode::Ipip, &[0, 2]),
            tunnelled_vip(ForwardingMode::L2Dsr, &[3]),
        ];
        let f = Forwarding::new(ports.to_vec(), vips.to_vec(), backends.clone(), ENCAP);
        let b = |i: usize| backends[i].as_ref().unwrap();
        assert!(f.tunnel(b(0), 0).is_ok());
        // Port 1 has no gateway and backend 0 no MAC.
        assert_eq!(f.tunnel(b(0), 1), Err(DropReason::NoNextHop));
        assert!(f.tunnel(b(2), 0).is_ok() && f.tunnel(b(2), 1).is_ok());
        // Backend 2 through port 1: that port's source.
        let mut h = [0u8; 34];
        f.tunnel(b(2), 1).unwrap().write(&mut h, 40, 4, 0).unwrap();
        assert_eq!(&h[26..30], &[198, 18, 9, 2]);
        assert_eq!(
            f.tunnel(b(3), 0),
            Err(DropReason::NoNextHop),
            "an L2 DSR VIP's"
        );
        assert_eq!(
            f.tunnel(b(0), 2),
            Err(DropReason::NoNextHop),
            "no such port"
        );
        assert!(f.tunnels.memory_bytes() > 0);
        let none = tunnels(&ports, &vips[1..], &backends, &ENCAP);
        assert_eq!(none.memory_bytes(), 0);
        assert_eq!(none.outer(BackendId(0), 0), Err(DropReason::NoNextHop));
    }

    #[test]
    fn the_reason_a_tunnel_cannot_be_built_is_kept() {
        let b = backend(0, "198.18.1.7", None);
        assert_eq!(
            outer_to(&port(&["198.18.0.2"], &[], None), &ENCAP, &b),
            Err(DropReason::NoNextHop)
        );
        let gw = Some([2, 0, 0, 0, 0, 0xfe]);
        assert_eq!(
            outer_to(&port(&[], &["fd00:18::2"], gw), &ENCAP, &b),
            Err(DropReason::NoEncapSource)
        );
        let encap = Encap {
            source_v4: Some(Ipv4Addr::new(198, 18, 9, 9)),
            ..ENCAP
        };
        assert!(
            outer_to(&port(&[], &[], gw), &encap, &b).is_ok(),
            "the configured source serves"
        );
        // Too long: the IPv4 total length would pass 65535.
        let o = outer_to(&port(&["198.18.0.2"], &[], gw), &ENCAP, &b).unwrap();
        let mut buf = [0u8; 34];
        assert_eq!(o.write(&mut buf, 65516, 4, 0), Err(DropReason::TooBig));
        assert_eq!(o.write(&mut buf, 65515, 4, 0), Ok(()));
        assert_eq!(o.write(&mut buf[..33], 0, 4, 0), Err(DropReason::Malformed));
    }

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
            members: Members::default(),
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
