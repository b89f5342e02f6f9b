//! How a packet finds its VIP: an index built once per snapshot, so that the
//! cost per packet does not grow with the number of VIPs.
//!
//! * Addresses: an open-addressing table (linear probing, at most half
//!   full) keyed by (IP version, 16-byte address). A lookup probes at most as
//!   many slots as the longest probe of any address at build time, so even a
//!   packet to an address that is no VIP costs a bounded number of compares.
//!   Up to [`SCAN_MAX`] addresses are a plain array compared one by one
//!   instead: cheaper than hashing the address (callgrind, bench/README.md),
//!   and the usual deployment has few.
//! * Services on an address: its VIPs are contiguous in `grouped`; up to
//!   [`SCAN_MAX`] of them are compared one by one (the common case: one VIP
//!   per address), more go through a second open-addressing table keyed by
//!   (address group, port, protocol).
//! * Fragments: each address keeps the one VIP serving it per protocol (or
//!   none when there are several), found with the address.
//!
//! The index hash is private to one snapshot (not part of the hash
//! contract): it only decides where an entry sits, never which backend a
//! flow gets. Nothing here allocates after the build.

use super::forwarding::{Protocol, Vip};
use crate::wire::addr::{self, Addr16};

/// Addresses, and services per address, compared one by one; more are
/// hashed.
const SCAN_MAX: u32 = 4;

/// No VIP (an empty fragment target, an empty service slot).
const NONE: u32 = u32::MAX;

/// Multipliers of the index hashes (odd 64-bit constants with well-mixed
/// bits; the top bits of the product pick the slot).
const K1: u64 = 0x9e37_79b9_7f4a_7c15;
const K2: u64 = 0xc2b2_ae3d_27d4_eb4f;

/// A packet's destination found to be a VIP address
/// ([`VipIndex::addr`]): a handle for [`VipIndex::service`] and
/// [`VipIndex::fragment`], carrying what the service lookup needs so that it
/// does not read the address table again (two words: it is passed by value
/// on the packet path).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VipAddr {
    /// `grouped[first..first + count]`: the VIPs on this address; `first`
    /// also names the address (no other starts there).
    first: u32,
    count: u32,
}

#[derive(Clone, Copy, Debug)]
struct AddrSlot {
    addr: Addr16,
    /// 4 or 6; 0 marks an empty slot.
    version: u8,
    /// `grouped[first..first + count]`: the VIPs on this address.
    first: u32,
    count: u32,
}

impl AddrSlot {
    const EMPTY: AddrSlot = AddrSlot {
        addr: [0; 16],
        version: 0,
        first: 0,
        count: 0,
    };
}

#[derive(Clone, Copy, Debug)]
struct ServiceSlot {
    /// [`service_key`]; `u64::MAX` marks an empty slot.
    key: u64,
    /// Position in the snapshot's VIP list.
    vip: u32,
}

/// An open-addressing table's geometry: `len` a power of two, the slot of
/// hash `h` is `h >> shift`, and no entry sits more than `max_probe` slots
/// after its home.
#[derive(Clone, Copy, Debug)]
struct Geometry {
    shift: u32,
    mask: usize,
    max_probe: usize,
    /// Few entries: the table is just them, scanned (no hashing).
    scan: bool,
}

impl Geometry {
    /// Room for `n` entries at most half full (at least 2 slots).
    fn for_entries(n: usize) -> (Geometry, usize) {
        let len = n.saturating_mul(2).max(2).next_power_of_two();
        let g = Geometry {
            shift: 64 - len.trailing_zeros(),
            mask: len - 1,
            max_probe: 0,
            scan: false,
        };
        (g, len)
    }

    #[inline]
    fn home(&self, hash: u64) -> usize {
        (hash >> self.shift) as usize
    }
}

/// The index of one snapshot's VIPs (see the module doc).
#[derive(Clone, Debug)]
pub struct VipIndex {
    addrs: Box<[AddrSlot]>,
    addr_geometry: Geometry,
    /// VIP positions grouped by address, in config order within one.
    grouped: Box<[u32]>,
    /// By an address's `first`: the VIP serving its fragments of TCP, of
    /// UDP, or [`NONE`] (no VIP, or several).
    fragments: Box<[[u32; 2]]>,
    services: Box<[ServiceSlot]>,
    service_geometry: Geometry,
}

#[inline]
fn addr_hash(version: u8, a: &Addr16) -> u64 {
    let mut lo = [0u8; 8];
    let mut hi = [0u8; 8];
    lo.copy_from_slice(&a[..8]);
    hi.copy_from_slice(&a[8..]);
    let lo = u64::from_ne_bytes(lo) ^ u64::from(version);
    (lo.wrapping_mul(K1) ^ u64::from_ne_bytes(hi)).wrapping_mul(K2)
}

/// The service table's key: the address group (its `first`), port and
/// protocol in one word (`first` < 2^32, so never `u64::MAX`).
#[inline]
fn service_key(first: u32, port: u16, protocol: Protocol) -> u64 {
    (u64::from(first) << 24) | (u64::from(port) << 8) | u64::from(protocol.number())
}

fn version_of(v: &Vip) -> u8 {
    if v.addr.is_ipv4() { 4 } else { 6 }
}

fn fragment_slot(protocol: Protocol) -> usize {
    match protocol {
        Protocol::Tcp => 0,
        Protocol::Udp => 1,
    }
}

impl VipIndex {
    /// Indexes `vips` (a snapshot holds far fewer than 2^32).
    pub fn new(vips: &[Vip]) -> VipIndex {
        // Positions grouped by (address, version), config order within one.
        let mut order: Vec<u32> = (0..vips.len() as u32).collect();
        order.sort_by_key(|&i| {
            let v = &vips[i as usize];
            (addr::from_ip(v.addr), version_of(v), i)
        });
        let mut groups: Vec<AddrSlot> = Vec::new();
        for (pos, &i) in order.iter().enumerate() {
            let v = &vips[i as usize];
            let (a, version) = (addr::from_ip(v.addr), version_of(v));
            match groups.last_mut() {
                Some(g) if g.addr == a && g.version == version => g.count += 1,
                _ => groups.push(AddrSlot {
                    addr: a,
                    version,
                    first: pos as u32,
                    count: 1,
                }),
            }
        }
        // A fragment's VIP: the only one of its protocol on the address.
        let mut fragments = vec![[NONE; 2]; order.len()].into_boxed_slice();
        for g in &groups {
            let members = &order[g.first as usize..(g.first + g.count) as usize];
            for p in [Protocol::Tcp, Protocol::Udp] {
                let mut of_p = members.iter().filter(|&&i| vips[i as usize].protocol == p);
                if let (Some(&only), None) = (of_p.next(), of_p.next()) {
                    fragments[g.first as usize][fragment_slot(p)] = only;
                }
            }
        }

        let services_needed: usize = groups
            .iter()
            .filter(|g| g.count > SCAN_MAX)
            .map(|g| g.count as usize)
            .sum();
        let (mut addr_geometry, len) = Geometry::for_entries(groups.len());
        let mut addrs = vec![AddrSlot::EMPTY; len].into_boxed_slice();
        if groups.len() <= SCAN_MAX as usize {
            addr_geometry.scan = true;
            addrs = groups.clone().into_boxed_slice();
        }
        for g in groups.iter().filter(|_| !addr_geometry.scan) {
            let mut at = addr_geometry.home(addr_hash(g.version, &g.addr));
            let mut probe = 0;
            while addrs[at].version != 0 {
                at = (at + 1) & addr_geometry.mask;
                probe += 1;
            }
            addrs[at] = *g;
            addr_geometry.max_probe = addr_geometry.max_probe.max(probe);
        }

        let (mut service_geometry, len) = Geometry::for_entries(services_needed);
        let empty = ServiceSlot {
            key: u64::MAX,
            vip: NONE,
        };
        let mut services = vec![empty; len].into_boxed_slice();
        for g in groups.iter().filter(|g| g.count > SCAN_MAX) {
            for &i in &order[g.first as usize..(g.first + g.count) as usize] {
                let v = &vips[i as usize];
                let key = service_key(g.first, v.port, v.protocol);
                let mut at = service_geometry.home(key.wrapping_mul(K1));
                let mut probe = 0;
                while services[at].key != u64::MAX {
                    at = (at + 1) & service_geometry.mask;
                    probe += 1;
                }
                services[at] = ServiceSlot { key, vip: i };
                service_geometry.max_probe = service_geometry.max_probe.max(probe);
            }
        }

        VipIndex {
            addrs,
            addr_geometry,
            grouped: order.into_boxed_slice(),
            fragments,
            services,
            service_geometry,
        }
    }

    /// The VIP address `a` (IP `version`), if it is one.
    #[inline]
    pub fn addr(&self, version: u8, a: &Addr16) -> Option<VipAddr> {
        let found = |s: &AddrSlot| VipAddr {
            first: s.first,
            count: s.count,
        };
        let g = &self.addr_geometry;
        if g.scan {
            return self
                .addrs
                .iter()
                .find(|s| s.addr == *a && s.version == version)
                .map(found);
        }
        let mut at = g.home(addr_hash(version, a));
        for _ in 0..=g.max_probe {
            let s = self.addrs.get(at)?;
            if s.version == version && s.addr == *a {
                return Some(found(s));
            }
            if s.version == 0 {
                return None;
            }
            at = (at + 1) & g.mask;
        }
        None
    }

    /// Positions of the VIPs on a VIP address, in config order.
    #[inline]
    pub fn members(&self, at: VipAddr) -> &[u32] {
        let first = at.first as usize;
        self.grouped
            .get(first..first + at.count as usize)
            .unwrap_or(&[])
    }

    /// The VIP serving `port` over `protocol` at a VIP address; `vips` is
    /// the list the index was built from.
    #[inline]
    pub fn service<'v>(
        &self,
        vips: &'v [Vip],
        at: VipAddr,
        port: u16,
        protocol: Protocol,
    ) -> Option<&'v Vip> {
        if at.count <= SCAN_MAX {
            return self
                .members(at)
                .iter()
                .filter_map(|&i| vips.get(i as usize))
                .find(|v| v.port == port && v.protocol == protocol);
        }
        let key = service_key(at.first, port, protocol);
        let g = &self.service_geometry;
        let mut at = g.home(key.wrapping_mul(K1));
        for _ in 0..=g.max_probe {
            let e = self.services.get(at)?;
            if e.key == key {
                return vips.get(e.vip as usize);
            }
            if e.key == u64::MAX {
                return None;
            }
            at = (at + 1) & g.mask;
        }
        None
    }

    /// Position of the one VIP serving `protocol` at a VIP address, for its
    /// fragments; `None` if there is none or more than one.
    #[inline]
    pub fn fragment(&self, at: VipAddr, protocol: Protocol) -> Option<usize> {
        let i = *self
            .fragments
            .get(at.first as usize)?
            .get(fragment_slot(protocol))?;
        (i != NONE).then_some(i as usize)
    }

    /// Longest probe of an address and of a service at build time (how
    /// many slots past its home a lookup may look), for tests and reports.
    pub fn max_probes(&self) -> (usize, usize) {
        (
            self.addr_geometry.max_probe,
            self.service_geometry.max_probe,
        )
    }

    /// Bytes of the index's tables.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.addrs)
            + std::mem::size_of_val(&*self.grouped)
            + std::mem::size_of_val(&*self.fragments)
            + std::mem::size_of_val(&*self.services)
    }
}

impl Default for VipIndex {
    fn default() -> VipIndex {
        VipIndex::new(&[])
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use proptest::prelude::*;

    use super::*;
    use crate::datapath::forwarding::{Encap, Forwarding, ForwardingMode};
    use crate::datapath::maglev::MaglevTable;

    fn vip(i: usize, addr: IpAddr, port: u16, protocol: Protocol) -> Vip {
        Vip {
            id: i as u16,
            name: format!("v{i}"),
            addr,
            port,
            protocol,
            mode: ForwardingMode::L2Dsr,
            mptcp_tracking: false,
            token_routing: true,
            backends: Vec::new(),
            maglev: std::sync::Arc::new(MaglevTable::build(7, &[]).expect("empty table")),
        }
    }

    fn forwarding(vips: Vec<Vip>) -> Forwarding {
        Forwarding::new(Vec::new(), vips, Vec::new(), Encap::default())
    }

    /// What the index must answer, by a scan of every VIP.
    fn scan(f: &Forwarding, a: IpAddr, port: u16, p: Protocol) -> Option<u16> {
        f.vips
            .iter()
            .find(|v| v.addr == a && v.port == port && v.protocol == p)
            .map(|v| v.id)
    }

    fn v4(i: usize) -> IpAddr {
        IpAddr::from([198, 18, (i >> 8) as u8, i as u8])
    }

    fn v6(i: usize) -> IpAddr {
        IpAddr::from([0xfd00, 0, 0, 0, 0, 0, (i >> 16) as u16, i as u16])
    }

    #[test]
    fn ten_thousand_addresses_are_each_found_in_a_few_probes() {
        let vips: Vec<Vip> = (0..10_000)
            .map(|i| {
                let a = if i % 2 == 0 { v4(i) } else { v6(i) };
                vip(i, a, 80, Protocol::Tcp)
            })
            .collect();
        let f = forwarding(vips);
        for v in &f.vips {
            assert_eq!(
                f.vip(v.addr, 80, Protocol::Tcp).map(|x| x.id),
                Some(v.id),
                "{}",
                v.addr
            );
            assert!(f.vip(v.addr, 81, Protocol::Tcp).is_none());
            assert!(f.vip(v.addr, 80, Protocol::Udp).is_none());
        }
        // The IPv4 addresses not configured (odd ones) and other IPv6 ones.
        for i in (1..10_000).step_by(2) {
            assert!(!f.is_vip_addr(v4(i)));
            assert!(!f.is_vip_addr(v6(i + 1)));
        }
        let (addr_probe, _) = f.vip_index().max_probes();
        assert!(addr_probe < 32, "longest address probe {addr_probe}");
    }

    #[test]
    fn thousands_of_ports_on_one_address_use_the_service_table() {
        let a = v4(7);
        let vips: Vec<Vip> = (0..6000)
            .map(|i| {
                let p = if i % 3 == 0 {
                    Protocol::Udp
                } else {
                    Protocol::Tcp
                };
                vip(i, a, 1000 + (i / 2) as u16, p)
            })
            .collect();
        let f = forwarding(vips);
        for port in 900..4100 {
            for p in [Protocol::Tcp, Protocol::Udp] {
                assert_eq!(
                    f.vip(a, port, p).map(|v| v.id),
                    scan(&f, a, port, p),
                    "{port} {p:?}"
                );
            }
        }
        let at = f.vip_addr(4, &addr::from_ip(a)).expect("the address");
        assert_eq!(f.vips_at(at).count(), 6000);
        // Several VIPs of each protocol: fragments are ambiguous.
        assert!(f.fragment_vip(at, Protocol::Tcp).is_none());
        assert!(f.fragment_vip(at, Protocol::Udp).is_none());
    }

    #[test]
    fn fragments_go_to_the_only_vip_of_their_protocol() {
        let a = v4(1);
        let f = forwarding(vec![
            vip(0, a, 80, Protocol::Tcp),
            vip(1, a, 53, Protocol::Udp),
            vip(2, a, 443, Protocol::Tcp),
            vip(3, v6(1), 53, Protocol::Udp),
        ]);
        let at = f.vip_addr(4, &addr::from_ip(a)).expect("v4 address");
        assert!(f.fragment_vip(at, Protocol::Tcp).is_none(), "80 and 443");
        assert_eq!(f.fragment_vip(at, Protocol::Udp).map(|v| v.id), Some(1));
        let at6 = f.vip_addr(6, &addr::from_ip(v6(1))).expect("v6 address");
        assert_eq!(f.fragment_vip(at6, Protocol::Udp).map(|v| v.id), Some(3));
        assert!(f.fragment_vip(at6, Protocol::Tcp).is_none());
    }

    #[test]
    fn an_empty_snapshot_finds_nothing() {
        let f = Forwarding::default();
        assert!(!f.is_vip_addr(v4(0)));
        assert!(!f.is_vip_addr(IpAddr::from([0u8; 16])));
        assert!(f.vip_index().memory_bytes() > 0);
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// Any set of VIPs (few addresses, so several share one; both
        /// families; both protocols): the index answers what a scan does,
        /// for configured and unconfigured services alike.
        #[test]
        fn the_index_agrees_with_a_scan(
            spec in prop::collection::vec((0usize..24, 0u16..12, any::<bool>()), 0..80),
            probes in prop::collection::vec((0usize..30, 0u16..14, any::<bool>()), 1..60),
        ) {
            let addr = |a: usize| if a % 3 == 0 { v6(a) } else { v4(a) };
            let proto = |udp: bool| if udp { Protocol::Udp } else { Protocol::Tcp };
            let mut seen = std::collections::HashSet::new();
            let vips: Vec<Vip> = spec
                .iter()
                .filter(|s| seen.insert(**s))
                .enumerate()
                .map(|(i, &(a, port, udp))| vip(i, addr(a), port, proto(udp)))
                .collect();
            let f = forwarding(vips);
            for (a, port, udp) in probes {
                let (a, p) = (addr(a), proto(udp));
                prop_assert_eq!(f.vip(a, port, p).map(|v| v.id), scan(&f, a, port, p));
                prop_assert_eq!(f.is_vip_addr(a), f.vips.iter().any(|v| v.addr == a));
                if let Some(at) = f.vip_addr(if a.is_ipv4() { 4 } else { 6 }, &addr::from_ip(a)) {
                    let of_p: Vec<u16> =
                        f.vips.iter().filter(|v| v.addr == a && v.protocol == p).map(|v| v.id).collect();
                    let want = (of_p.len() == 1).then(|| of_p[0]);
                    prop_assert_eq!(f.fragment_vip(at, p).map(|v| v.id), want);
                }
            }
        }
    }
}
