//! The VIP index against a linear scan of the same VIPs, and at scale.

use std::net::IpAddr;

use proptest::prelude::*;

use super::*;
use crate::datapath::forwarding::{Encap, Forwarding, ForwardingMode, Vip};
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
        announce_backend_address: false,
        backends: Vec::new(),
        members: Default::default(),
        maglev: MaglevTable::build(7, &[]).expect("empty table"),
    }
}

/// `vips` with ids that are not their positions (an odd multiplier: still
/// one id each), as in a snapshot after reloads.
fn ids_apart(mut vips: Vec<Vip>) -> Vec<Vip> {
    for v in &mut vips {
        v.id = v.id.wrapping_mul(7).wrapping_add(3);
    }
    vips
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

/// [`VipIndex::sole_from`] from the address's home, as a burst asks it: the
/// id of the VIP at the position found, which must be the id found.
fn sole(f: &Forwarding, a: IpAddr, port: u16, p: Protocol) -> Option<u16> {
    let (version, a) = (if a.is_ipv4() { 4 } else { 6 }, addr::from_ip(a));
    let index = f.vip_index();
    let found = index.sole_from(index.home(version, &a), version, &a, port, p.number())?;
    let id = f.vips.get(usize::from(found.vip)).map(|v| v.id);
    assert_eq!(id, Some(found.id), "the id beside the position");
    id
}

fn v4(i: usize) -> IpAddr {
    IpAddr::from([198, 18, (i >> 8) as u8, i as u8])
}

fn v6(i: usize) -> IpAddr {
    IpAddr::from([0xfd00, 0, 0, 0, 0, 0, (i >> 16) as u16, i as u16])
}

/// An IPv6 address whose last four bytes are [`v4`]`(i)`: no direct table
/// parts it from that one.
fn twin6(i: usize) -> IpAddr {
    let [a, b, c, d] = [198u8, 18, (i >> 8) as u8, i as u8];
    IpAddr::from([
        0xfd00,
        0,
        0,
        0,
        0,
        0,
        u16::from_be_bytes([a, b]),
        u16::from_be_bytes([c, d]),
    ])
}

#[test]
fn ten_thousand_addresses_are_each_found_in_a_few_probes() {
    // Each IPv6 address ends as one of the IPv4 ones: the addresses are
    // hashed.
    let vips: Vec<Vip> = (0..10_000)
        .map(|i| {
            let a = if i % 2 == 0 { v4(i / 2) } else { twin6(i / 2) };
            vip(i, a, 80, Protocol::Tcp)
        })
        .collect();
    let f = forwarding(ids_apart(vips));
    assert!(!f.vip_index().addr_geometry.direct && f.many_vips());
    for v in &f.vips {
        assert_eq!(
            f.vip(v.addr, 80, Protocol::Tcp).map(|x| x.id),
            Some(v.id),
            "{}",
            v.addr
        );
        assert!(f.vip(v.addr, 81, Protocol::Tcp).is_none());
        assert!(f.vip(v.addr, 80, Protocol::Udp).is_none());
        assert_eq!(sole(&f, v.addr, 80, Protocol::Tcp), Some(v.id));
        assert_eq!(sole(&f, v.addr, 81, Protocol::Tcp), None);
    }
    assert_eq!(sole(&f, v4(5001), 80, Protocol::Tcp), None);
    // Addresses not configured, of both families.
    for i in 5000..10_000 {
        assert!(!f.is_vip_addr(v4(i)));
        assert!(!f.is_vip_addr(twin6(i)));
        assert!(!f.is_vip_addr(v6(i - 5000)));
    }
    let (addr_probe, _) = f.vip_index().max_probes();
    assert!(addr_probe < 32, "longest address probe {addr_probe}");
}

#[test]
fn ten_thousand_addresses_from_one_prefix_get_a_direct_table() {
    // IPv4 addresses in a row and IPv6 ones of a /112 between them: one
    // slot each, found with one compare.
    let vips: Vec<Vip> = (0..10_000)
        .map(|i| {
            let a = if i % 2 == 0 { v4(i) } else { v6(i) };
            vip(i, a, 80, Protocol::Tcp)
        })
        .collect();
    let f = forwarding(ids_apart(vips));
    let index = f.vip_index();
    assert!(index.addr_geometry.direct && f.many_vips());
    // At most four slots an address.
    assert!(index.memory_bytes() < 10_000 * 4 * 2 * std::mem::size_of::<AddrSlot>());
    for v in &f.vips {
        assert_eq!(f.vip(v.addr, 80, Protocol::Tcp).map(|x| x.id), Some(v.id));
        assert!(f.vip(v.addr, 81, Protocol::Tcp).is_none());
        assert_eq!(sole(&f, v.addr, 80, Protocol::Tcp), Some(v.id));
        assert_eq!(sole(&f, v.addr, 80, Protocol::Udp), None);
    }
    // Not configured: the other family at each index, the addresses past
    // the row, and twins that end as a configured address.
    for i in 0..10_000 {
        let (other, twin) = match i % 2 {
            0 => (v6(i), twin6(i)),
            _ => (v4(i), v4(i + 65536)),
        };
        assert!(
            !f.is_vip_addr(other) && !f.is_vip_addr(twin),
            "{other} {twin}"
        );
        assert_eq!(sole(&f, other, 80, Protocol::Tcp), None);
    }
    for i in 10_000..12_000 {
        assert!(!f.is_vip_addr(v4(i)) && !f.is_vip_addr(v6(i)));
    }
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
        let f = forwarding(ids_apart(vips));
        for (a, port, udp) in probes {
            let (a, p) = (addr(a), proto(udp));
            prop_assert_eq!(f.vip(a, port, p).map(|v| v.id), scan(&f, a, port, p));
            // A burst's lookup ahead: the VIP where it is its address's only
            // one, else nothing (the decision looks it up).
            let on_addr = f.vips.iter().filter(|v| v.addr == a).count();
            let want = scan(&f, a, port, p).filter(|_| on_addr == 1);
            prop_assert_eq!(sole(&f, a, port, p), want);
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

#[test]
fn a_few_addresses_get_a_direct_table_unless_two_end_alike() {
    // A row of VIPs, both families: each has its own slot.
    let row: Vec<Vip> = (0..12)
        .map(|i| {
            let a = if i % 2 == 0 { v4(10 + i) } else { v6(10 + i) };
            vip(i, a, 80, Protocol::Tcp)
        })
        .collect();
    let f = forwarding(row);
    assert!(f.vip_index().addr_geometry.direct);
    for v in &f.vips {
        assert_eq!(f.vip(v.addr, 80, Protocol::Tcp).map(|x| x.id), Some(v.id));
    }
    for i in 0..40 {
        let configured = (10..22).contains(&i);
        assert_eq!(f.is_vip_addr(v4(i)), configured && i % 2 == 0, "{}", v4(i));
        assert_eq!(f.is_vip_addr(v6(i)), configured && i % 2 == 1, "{}", v6(i));
    }
    // One address, and none.
    let one = forwarding(vec![vip(0, v4(3), 80, Protocol::Tcp)]);
    assert!(one.vip_index().addr_geometry.direct);
    assert!(one.is_vip_addr(v4(3)) && !one.is_vip_addr(v4(4)) && !one.is_vip_addr(v6(3)));
    assert!(Forwarding::default().vip_index().addr_geometry.direct);
    // An IPv4 VIP and an IPv6 VIP whose last four bytes are its address:
    // no shift parts them, so the addresses are hashed, and both found.
    let twin: IpAddr = "fd00::c612:3".parse().expect("v6");
    assert_eq!(v4(3), IpAddr::from([198, 18, 0, 3]));
    let f = forwarding(vec![
        vip(0, v4(3), 80, Protocol::Tcp),
        vip(1, twin, 80, Protocol::Tcp),
    ]);
    assert!(!f.vip_index().addr_geometry.direct);
    assert_eq!(f.vip(v4(3), 80, Protocol::Tcp).map(|x| x.id), Some(0));
    assert_eq!(f.vip(twin, 80, Protocol::Tcp).map(|x| x.id), Some(1));
    // Up to FEW addresses, the burst does not fetch their state ahead.
    let few = |n: usize| forwarding((0..n).map(|i| vip(i, v4(i), 80, Protocol::Tcp)).collect());
    assert!(!few(FEW).many_vips() && few(FEW + 1).many_vips());
}

#[test]
fn an_address_slot_is_one_cache_line_to_fetch() {
    // 32 bytes at a multiple of 32: never across two 64-byte lines.
    assert_eq!(std::mem::size_of::<AddrSlot>(), 32);
    assert_eq!(std::mem::align_of::<AddrSlot>(), 32);
}

#[test]
fn every_vip_a_snapshot_may_hold_can_share_one_address() {
    // 16-bit VIP ids: at most 65 536 VIPs, here all on one address (both
    // protocols on each port), each found, all of them its members.
    let a = v4(1);
    let n = 1 << 16;
    let vips: Vec<Vip> = (0..n)
        .map(|i| {
            let p = if i % 2 == 0 {
                Protocol::Tcp
            } else {
                Protocol::Udp
            };
            vip(i, a, (i / 2) as u16, p)
        })
        .collect();
    let index = VipIndex::new(&vips);
    let at = index.addr(4, &addr::from_ip(a)).expect("the address");
    assert_eq!(index.members(at).len(), n);
    for (i, v) in vips
        .iter()
        .enumerate()
        .step_by(97)
        .chain(vips.iter().enumerate().rev().take(3))
    {
        let found = index.service(&vips, at, v.port, v.protocol);
        assert_eq!(found.map(|f| f.name.as_str()), Some(v.name.as_str()), "{i}");
    }
}
