//! How a packet finds its VIP: an index built once per snapshot, so that the
//! cost per packet does not grow with the number of VIPs.
//!
//! * Addresses: an open-addressing table (linear probing, at most half
//!   full) keyed by (IP version, 16-byte address). A lookup probes at most as
//!   many slots as the longest probe of any address at build time, so even a
//!   packet to an address that is no VIP costs a bounded number of compares.
//!   Addresses whose last four bytes, shifted by some amount, give each its
//!   own slot of a table of at most four slots an address (one address
//!   always does; VIPs numbered in a row do, as do thousands taken from one
//!   prefix, the usual way a deployment numbers them) are found in that
//!   slot instead: one compare, whichever address it is, and no hashing.
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

use std::net::IpAddr;

use crate::wire::addr::{self, Addr16};

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

    /// `tcp` or `udp`, as metrics and `mplb stats` name it.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// What the index needs of a VIP (implemented by the snapshot's `Vip`).
pub trait Service {
    fn addr(&self) -> IpAddr;
    fn port(&self) -> u16;
    fn protocol(&self) -> Protocol;
    /// The VIP's traffic id (see [`Sole`]).
    fn id(&self) -> u16;
}

/// The one VIP of an address, as [`VipIndex::sole_from`] finds it: its
/// position in the snapshot's list and its traffic id, whose counters a
/// burst can then prefetch along with the VIP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sole {
    pub vip: u16,
    pub id: u16,
}

/// Services per address compared one by one; more are hashed.
const SCAN_MAX: usize = 4;

/// Addresses whose VIPs' state stays in the cache: with more, a burst
/// fetches each frame's ahead of its decision ([`VipIndex::many`]).
const FEW: usize = 64;

/// No VIP (an empty fragment target, an empty service slot).
const NONE: u32 = u32::MAX;

/// Multipliers of the index hashes (odd 64-bit constants with well-mixed
/// bits; the top bits of the product pick the slot).
const K1: u64 = 0x9e37_79b9_7f4a_7c15;
const K2: u64 = 0xc2b2_ae3d_27d4_eb4f;

/// A packet's destination found to be a VIP address
/// ([`VipIndex::addr`]): a handle for [`VipIndex::service`] and
/// [`VipIndex::fragment`], its address's slot, so that the service lookup
/// does not search the address table again and reads of the slot only what
/// it needs (one VIP on the address, the usual case: two words).
#[derive(Clone, Copy, Debug)]
pub struct VipAddr<'a> {
    slot: &'a AddrSlot,
}

impl PartialEq for VipAddr<'_> {
    /// The same address (slot) of the same index.
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self.slot, other.slot)
    }
}

impl Eq for VipAddr<'_> {}

/// One address of the index (public only as what a burst prefetches: see
/// [`VipIndex::slot`]). 32 bytes, aligned to that: a slot is one cache line
/// to fetch, never two.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(32))]
pub struct AddrSlot {
    addr: Addr16,
    /// An address with one VIP (the usual case): its [`sole_key`], or
    /// [`NONE`] when there are several; and that VIP's position and traffic
    /// id, so that finding the service, and a burst the VIP's counters,
    /// read nothing more.
    sole: u32,
    sole_vip: u16,
    sole_id: u16,
    /// `grouped[first..=first + more]`: the VIPs on this address; `first`
    /// also names the address (no other starts there).
    first: u32,
    /// How many VIPs the address has after the first (so that all 65 536 a
    /// snapshot may hold fit).
    more: u16,
    /// 4 or 6; 0 marks an empty slot.
    version: u8,
}

impl AddrSlot {
    const EMPTY: AddrSlot = AddrSlot {
        addr: [0; 16],
        sole: NONE,
        sole_vip: 0,
        sole_id: 0,
        first: 0,
        more: 0,
        version: 0,
    };

    /// How many VIPs the address has.
    fn count(&self) -> usize {
        usize::from(self.more) + 1
    }
}

/// Port and IP protocol number of a VIP in one word (never [`NONE`]).
#[inline(always)]
fn sole_key(port: u16, protocol: u8) -> u32 {
    (u32::from(port) << 8) | u32::from(protocol)
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
/// after its home. Or, `direct`, the address table placed by [`last4`]:
/// slot `(last4 >> shift) & mask`, one address a slot.
#[derive(Clone, Copy, Debug)]
struct Geometry {
    shift: u32,
    mask: usize,
    max_probe: usize,
    direct: bool,
}

/// An address's last four bytes (the IPv4 address of a mapped one) as a
/// number, which a direct address table places it by: addresses taken from
/// one prefix are then a range of numbers, a slot each in a table as large
/// as the range (shift 0).
#[inline(always)]
fn last4(a: &Addr16) -> u32 {
    u32::from_be_bytes([a[12], a[13], a[14], a[15]])
}

/// A shift that gives each of `addrs` its own slot of a table of
/// `mask + 1`, if there is one.
fn direct_shift(addrs: &[Addr16], mask: usize) -> Option<u32> {
    (0..32).find(|&shift| {
        let mut used = vec![false; mask + 1];
        addrs.iter().all(|a| {
            let slot = (last4(a) >> shift) as usize & mask;
            !std::mem::replace(&mut used[slot], true)
        })
    })
}

impl Geometry {
    /// Room for `n` entries at most half full (at least 2 slots).
    fn for_entries(n: usize) -> (Geometry, usize) {
        let len = n.saturating_mul(2).max(2).next_power_of_two();
        let g = Geometry {
            shift: 64 - len.trailing_zeros(),
            mask: len - 1,
            max_probe: 0,
            direct: false,
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
    /// How many of `addrs` are in use.
    addresses: usize,
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

fn version_of<V: Service>(v: &V) -> u8 {
    if v.addr().is_ipv4() { 4 } else { 6 }
}

fn fragment_slot(protocol: Protocol) -> usize {
    match protocol {
        Protocol::Tcp => 0,
        Protocol::Udp => 1,
    }
}

impl VipIndex {
    /// Indexes `vips` (a snapshot holds far fewer than 2^32).
    pub fn new<V: Service>(vips: &[V]) -> VipIndex {
        // Positions grouped by (address, version), config order within one.
        let mut order: Vec<u32> = (0..vips.len() as u32).collect();
        order.sort_by_key(|&i| {
            let v = &vips[i as usize];
            (addr::from_ip(v.addr()), version_of(v), i)
        });
        let mut groups: Vec<AddrSlot> = Vec::new();
        for (pos, &i) in order.iter().enumerate() {
            let v = &vips[i as usize];
            let (a, version) = (addr::from_ip(v.addr()), version_of(v));
            match groups.last_mut() {
                Some(g) if g.addr == a && g.version == version => {
                    // At most 65 536 VIPs (16-bit ids): `more` < 2^16.
                    g.more = g.more.saturating_add(1);
                    g.sole = NONE;
                }
                _ => groups.push(AddrSlot {
                    addr: a,
                    // A position past 16 bits (not in a snapshot: its VIPs
                    // have 16-bit ids) is found through `grouped`.
                    sole: match u16::try_from(i) {
                        Ok(_) => sole_key(v.port(), v.protocol().number()),
                        Err(_) => NONE,
                    },
                    sole_vip: i as u16,
                    sole_id: v.id(),
                    first: pos as u32,
                    more: 0,
                    version,
                }),
            }
        }
        // A fragment's VIP: the only one of its protocol on the address.
        let mut fragments = vec![[NONE; 2]; order.len()].into_boxed_slice();
        for g in &groups {
            let members = &order[g.first as usize..][..g.count()];
            for p in [Protocol::Tcp, Protocol::Udp] {
                let mut of_p = members
                    .iter()
                    .filter(|&&i| vips[i as usize].protocol() == p);
                if let (Some(&only), None) = (of_p.next(), of_p.next()) {
                    fragments[g.first as usize][fragment_slot(p)] = only;
                }
            }
        }

        let services_needed: usize = groups
            .iter()
            .filter(|g| g.count() > SCAN_MAX)
            .map(|g| g.count())
            .sum();
        let direct = {
            // Up to four slots an address: most sets of a few have a shift,
            // and sets numbered from one prefix.
            let mask = (groups.len() * 4).next_power_of_two() - 1;
            let all: Vec<Addr16> = groups.iter().map(|g| g.addr).collect();
            direct_shift(&all, mask).map(|s| (s, mask))
        };
        let (mut addr_geometry, len) = match direct {
            Some((shift, mask)) => {
                let g = Geometry {
                    shift,
                    mask,
                    max_probe: 0,
                    direct: true,
                };
                (g, mask + 1)
            }
            None => Geometry::for_entries(groups.len()),
        };
        let mut addrs = vec![AddrSlot::EMPTY; len].into_boxed_slice();
        for g in &groups {
            if addr_geometry.direct {
                addrs[(last4(&g.addr) >> addr_geometry.shift) as usize & addr_geometry.mask] = *g;
                continue;
            }
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
        for g in groups.iter().filter(|g| g.count() > SCAN_MAX) {
            for &i in &order[g.first as usize..][..g.count()] {
                let v = &vips[i as usize];
                let key = service_key(g.first, v.port(), v.protocol());
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
            addresses: groups.len(),
            addr_geometry,
            grouped: order.into_boxed_slice(),
            fragments,
            services,
            service_geometry,
        }
    }

    /// The VIP address `a` (IP `version`), if it is one.
    #[inline]
    pub fn addr(&self, version: u8, a: &Addr16) -> Option<VipAddr<'_>> {
        let found = |slot| VipAddr { slot };
        let g = &self.addr_geometry;
        if g.direct {
            // An empty slot has version 0: never a match.
            let s = self.addrs.get((last4(a) >> g.shift) as usize & g.mask)?;
            return (s.addr == *a && s.version == version).then(|| found(s));
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

    /// Where a lookup of address `a` starts: a burst prefetches that slot
    /// ([`VipIndex::slot`]) and finds the VIP from there later
    /// ([`VipIndex::sole_from`]), without hashing the address again.
    #[inline(always)]
    pub fn home(&self, version: u8, a: &Addr16) -> u32 {
        let g = &self.addr_geometry;
        let at = match g.direct {
            true => (last4(a) >> g.shift) as usize & g.mask,
            false => g.home(addr_hash(version, a)),
        };
        // The table has fewer than 2^32 slots.
        at as u32
    }

    /// The address slot at `home`, to prefetch.
    #[inline(always)]
    pub fn slot(&self, home: u32) -> Option<&AddrSlot> {
        self.addrs.get(home as usize)
    }

    /// The VIP serving `port` over IP protocol `protocol`
    /// at address `a`, looked up from `a`'s [`VipIndex::home`] — if `a` is
    /// the address of that one VIP alone (the usual case). `None` for every
    /// other case (no VIP address, several VIPs on it, another service):
    /// [`VipIndex::addr`] and [`VipIndex::service`] tell those apart.
    ///
    /// Its probe is [`VipIndex::addr`]'s, written out again: `addr` built on
    /// this compiled the VIP lane of a few VIPs to 4–9 more instructions a
    /// packet (bench/README.md).
    #[inline(always)]
    pub fn sole_from(
        &self,
        home: u32,
        version: u8,
        a: &Addr16,
        port: u16,
        protocol: u8,
    ) -> Option<Sole> {
        let g = &self.addr_geometry;
        let mut at = home as usize;
        for _ in 0..=g.max_probe {
            let s = self.addrs.get(at)?;
            if s.version == version && s.addr == *a {
                return (s.sole == sole_key(port, protocol)).then_some(Sole {
                    vip: s.sole_vip,
                    id: s.sole_id,
                });
            }
            if s.version == 0 {
                return None;
            }
            at = (at + 1) & g.mask;
        }
        None
    }

    /// Whether addresses are found by hashing (no shift of their last four
    /// bytes gives each its own slot).
    pub fn hashed(&self) -> bool {
        !self.addr_geometry.direct
    }

    /// Whether there are more addresses than stay in the cache with their
    /// VIPs' state (see [`FEW`]).
    pub fn many(&self) -> bool {
        self.addresses > FEW
    }

    /// Positions of the VIPs on a VIP address, in config order.
    #[inline]
    pub fn members(&self, at: VipAddr<'_>) -> &[u32] {
        let first = at.slot.first as usize;
        self.grouped
            .get(first..first + at.slot.count())
            .unwrap_or(&[])
    }

    /// The VIP serving `port` over `protocol` at a VIP address; `vips` is
    /// the list the index was built from.
    #[inline]
    pub fn service<'v, V: Service>(
        &self,
        vips: &'v [V],
        at: VipAddr<'_>,
        port: u16,
        protocol: Protocol,
    ) -> Option<&'v V> {
        let s = at.slot;
        if s.sole != NONE {
            return match s.sole == sole_key(port, protocol.number()) {
                true => vips.get(usize::from(s.sole_vip)),
                false => None,
            };
        }
        if s.count() <= SCAN_MAX {
            return self
                .members(at)
                .iter()
                .filter_map(|&i| vips.get(i as usize))
                .find(|v| v.port() == port && v.protocol() == protocol);
        }
        let key = service_key(s.first, port, protocol);
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
    pub fn fragment(&self, at: VipAddr<'_>, protocol: Protocol) -> Option<usize> {
        let i = *self
            .fragments
            .get(at.slot.first as usize)?
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

/// The type of an empty VIP list (no value exists).
enum NoVip {}

impl Service for NoVip {
    fn addr(&self) -> IpAddr {
        match *self {}
    }
    fn port(&self) -> u16 {
        match *self {}
    }
    fn protocol(&self) -> Protocol {
        match *self {}
    }
    fn id(&self) -> u16 {
        match *self {}
    }
}

impl Default for VipIndex {
    fn default() -> VipIndex {
        VipIndex::new::<NoVip>(&[])
    }
}

#[cfg(test)]
#[path = "vip_index_tests.rs"]
mod tests;
