//! The neighbour table, the questions a worker writes, and answers taken in
//! by the datapath. Two endpoints in memory: mplb's datapath as the backend
//! that owns an address answers the question another datapath wrote, and
//! that answer is fed back to the asking one.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use super::*;
use crate::datapath::forwarding::{Encap, Forwarding, Interface};
use crate::datapath::frame::TestFrame;
use crate::datapath::process::Datapath;
use crate::datapath::verdict::DropReason;
use crate::testing::Tables;
use crate::wire::parse::parse_frame;

const US: [u8; 6] = [2, 0, 0, 0, 0, 0x10];
const BACKEND: [u8; 6] = [2, 0, 0, 0, 1, 0x11];
const MOVED: [u8; 6] = [2, 0, 0, 0, 1, 0x99];
const LB4: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 2);
const BE4: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 11);

fn lb6() -> Ipv6Addr {
    "fd00:1::2".parse().unwrap()
}
fn be6() -> Ipv6Addr {
    "fd00:1::11".parse().unwrap()
}

fn iface(mac: [u8; 6], v4: Ipv4Addr, v6: Ipv6Addr) -> Interface {
    Interface {
        mac,
        ipv4: vec![v4],
        ipv6: vec![v6],
        ..Interface::default()
    }
}

/// A datapath on one port with `iface`, watching `watched` on port 0.
fn endpoint(iface: Interface, watched: &[IpAddr]) -> (Forwarding, Datapath) {
    let table = Neighbours::new(watched.iter().map(|a| (0, *a)));
    let fwd = Forwarding::new(vec![iface], Vec::new(), Vec::new(), Encap::default())
        .with_neighbours(Arc::new(table));
    (fwd, Tables::small(64).datapath())
}

fn send(fwd: &Forwarding, dp: &mut Datapath, frame: &[u8]) -> (Verdict, Vec<u8>) {
    let mut f = TestFrame::new(frame);
    let v = dp.process(fwd, 0, &mut f, 1);
    (v, f.to_vec())
}

fn solicit(target: IpAddr, unicast: Option<[u8; 6]>) -> Vec<u8> {
    let mut buf = [0u8; SOLICIT_MAX_LEN];
    let s = Solicit {
        port: 0,
        target,
        unicast,
    };
    let n = write_solicit(&mut buf, &s, &iface(US, LB4, lb6()).asker()).expect("written");
    buf[..n].to_vec()
}

#[test]
fn the_table_records_only_watched_pairs_and_unicast_macs() {
    let t = Neighbours::new([
        (0, IpAddr::V4(BE4)),
        (0, IpAddr::V4(BE4)),
        (1, be6().into()),
    ]);
    assert_eq!(t.watched().count(), 2, "duplicates merged");
    let none = Heard {
        count: 0,
        mac: None,
    };
    assert_eq!(t.heard(0, BE4.into()), Some(none));
    assert_eq!(t.heard(1, BE4.into()), None, "watched on port 0 only");
    assert!(!t.record(1, BE4.into(), BACKEND));
    assert!(!t.record(0, BE4.into(), [0xff; 6]), "broadcast");
    assert!(
        !t.record(0, BE4.into(), [0x33, 0x33, 0, 0, 0, 1]),
        "multicast"
    );
    assert!(!t.record(0, BE4.into(), [0; 6]));
    assert_eq!(t.heard(0, BE4.into()), Some(none));
    assert!(t.record(0, BE4.into(), BACKEND));
    assert!(t.record(0, BE4.into(), MOVED));
    assert_eq!(
        t.heard(0, BE4.into()),
        Some(Heard {
            count: 2,
            mac: Some(MOVED)
        })
    );
    assert!(t.record(1, be6().into(), BACKEND));
    assert_eq!(t.heard(1, be6().into()).and_then(|h| h.mac), Some(BACKEND));
}

#[test]
fn an_arp_request_is_broadcast_from_the_ports_first_ipv4_address() {
    let f = solicit(BE4.into(), None);
    assert_eq!(f.len(), 60, "padded to the Ethernet minimum");
    assert_eq!(&f[..6], &[0xff; 6]);
    assert_eq!(&f[6..12], &US);
    assert_eq!(&f[12..14], &[0x08, 0x06]);
    let a = arp::Packet::new_checked(&f[14..]).expect("ARP");
    assert!(a.is_request());
    assert_eq!((a.sender_mac().0, a.sender_ip()), (US, LB4));
    assert_eq!((a.target_mac(), a.target_ip()), (MacAddr::ZERO, BE4));
    // A refresh asks the known MAC directly.
    let f = solicit(BE4.into(), Some(BACKEND));
    assert_eq!(&f[..6], &BACKEND);
    // No own IPv4 address, or too little room: nothing written.
    let bare = Interface {
        mac: US,
        ..Interface::default()
    };
    let s = Solicit {
        port: 0,
        target: BE4.into(),
        unicast: None,
    };
    assert_eq!(write_solicit(&mut [0u8; 128], &s, &bare.asker()), None);
    assert_eq!(
        write_solicit(&mut [0u8; 59], &s, &iface(US, LB4, lb6()).asker()),
        None
    );
}

#[test]
fn a_neighbour_solicitation_goes_to_the_solicited_node_group() {
    let f = solicit(be6().into(), None);
    assert_eq!(f.len(), SOLICIT_MAX_LEN);
    assert_eq!(&f[..6], &[0x33, 0x33, 0xff, 0, 0, 0x11]);
    let p = parse_frame(&f).expect("parses");
    let ip = p.ip.expect("IPv6");
    assert_eq!((ip.version, ip.ttl), (6, 255));
    let (src, dst) = (Ipv6Addr::from(ip.src), Ipv6Addr::from(ip.dst));
    assert_eq!((src, dst), (lb6(), "ff02::1:ff00:11".parse().unwrap()));
    let m = icmpv6::Packet::new_checked(&f[ip.l4_offset..ip.l3_end]).expect("ICMPv6");
    assert_eq!(m.msg_type(), icmpv6::msg_type::NEIGHBOR_SOLICIT);
    assert!(m.verify_checksum(&src, &dst));
    assert_eq!(m.target_addr(), Some(be6()));
    assert_eq!(m.source_link_addr(), Some(MacAddr(US)));
    // A refresh: to the address itself, at the known MAC.
    let f = solicit(be6().into(), Some(BACKEND));
    assert_eq!(&f[..6], &BACKEND);
    let ip = parse_frame(&f).expect("parses").ip.expect("IPv6");
    assert_eq!(Ipv6Addr::from(ip.dst), be6());
}

#[test]
fn an_arp_answer_from_a_watched_backend_is_learnt() {
    // The backend: a datapath owning BE4 answers our request.
    let (be_fwd, mut be_dp) = endpoint(iface(BACKEND, BE4, be6()), &[]);
    let (v, reply) = send(&be_fwd, &mut be_dp, &solicit(BE4.into(), None));
    assert_eq!(v, Verdict::Reply);
    // The asker records it and takes the frame in.
    let (fwd, mut dp) = endpoint(iface(US, LB4, lb6()), &[BE4.into()]);
    assert_eq!(send(&fwd, &mut dp, &reply).0, Verdict::Absorbed);
    let heard = fwd.neighbours.heard(0, BE4.into()).expect("watched");
    assert_eq!((heard.count, heard.mac), (1, Some(BACKEND)));
    assert_eq!(dp.counters.neighbour_learnt, 1);
    assert_eq!(dp.counters.drops.total(), 0);

    // A gratuitous announcement (a request for its own address) moves it.
    let mut garp = solicit(BE4.into(), None);
    arp::emit(
        &mut garp[14..],
        arp::op::REQUEST,
        (MacAddr(MOVED), BE4),
        (MacAddr::ZERO, BE4),
    )
    .unwrap();
    assert_eq!(send(&fwd, &mut dp, &garp).0, Verdict::Absorbed);
    assert_eq!(
        fwd.neighbours.heard(0, BE4.into()).and_then(|h| h.mac),
        Some(MOVED)
    );

    // The backend asking for us: answered, and its MAC learnt on the way.
    let mut ask = solicit(LB4.into(), None);
    arp::emit(
        &mut ask[14..],
        arp::op::REQUEST,
        (MacAddr(BACKEND), BE4),
        (MacAddr::ZERO, LB4),
    )
    .unwrap();
    assert_eq!(send(&fwd, &mut dp, &ask).0, Verdict::Reply);
    assert_eq!(
        fwd.neighbours.heard(0, BE4.into()).and_then(|h| h.mac),
        Some(BACKEND)
    );

    // An answer from an address nobody watches is dropped as before.
    let (other_fwd, mut other_dp) = endpoint(iface(US, LB4, lb6()), &[]);
    assert_eq!(
        send(&other_fwd, &mut other_dp, &reply).0,
        Verdict::Drop(DropReason::Unsupported)
    );
}

#[test]
fn a_neighbour_advertisement_from_a_watched_backend_is_learnt() {
    let (be_fwd, mut be_dp) = endpoint(iface(BACKEND, BE4, be6()), &[]);
    let (v, na) = send(&be_fwd, &mut be_dp, &solicit(be6().into(), None));
    assert_eq!(v, Verdict::Reply, "{:?}", be_dp.counters);
    let (fwd, mut dp) = endpoint(iface(US, LB4, lb6()), &[be6().into()]);
    assert_eq!(send(&fwd, &mut dp, &na).0, Verdict::Absorbed);
    let heard = fwd.neighbours.heard(0, be6().into()).expect("watched");
    assert_eq!((heard.count, heard.mac), (1, Some(BACKEND)));
    assert_eq!(dp.counters.neighbour_learnt, 1);

    // Hop limit below 255: not from the link, not believed.
    let mut forged = na.clone();
    forged[14 + 7] = 254;
    assert_eq!(
        send(&fwd, &mut dp, &forged).0,
        Verdict::Drop(DropReason::Malformed)
    );
    // A bad checksum neither.
    let mut forged = na.clone();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    assert_eq!(
        send(&fwd, &mut dp, &forged).0,
        Verdict::Drop(DropReason::Malformed)
    );
    assert_eq!(
        fwd.neighbours.heard(0, be6().into()).map(|h| h.count),
        Some(1)
    );
    // For an address nobody watches: not for us.
    let (other_fwd, mut other_dp) = endpoint(iface(US, LB4, lb6()), &[]);
    assert_eq!(
        send(&other_fwd, &mut other_dp, &na).0,
        Verdict::Drop(DropReason::NotForUs)
    );

    // The backend resolving us: its solicitation is answered and its
    // source link-layer address learnt.
    let mut buf = [0u8; SOLICIT_MAX_LEN];
    let s = Solicit {
        port: 0,
        target: lb6().into(),
        unicast: None,
    };
    let n = write_solicit(&mut buf, &s, &iface(MOVED, BE4, be6()).asker()).expect("written");
    assert_eq!(send(&fwd, &mut dp, &buf[..n]).0, Verdict::Reply);
    assert_eq!(
        fwd.neighbours.heard(0, be6().into()).and_then(|h| h.mac),
        Some(MOVED)
    );
}
