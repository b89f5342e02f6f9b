//! The exception path in the datapath: which frames a port with a kernel
//! interface hands to the host's kernel (`Verdict::Kernel`), which it still
//! answers itself, that nothing changes without one, and the budget.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use super::*;
use crate::datapath::frame::TestFrame;
use crate::datapath::neighbours::Neighbours;
use crate::testing::frames::flags::{ACK, SYN};
use crate::testing::frames::{self};
use crate::testing::{self, Tables};
use crate::wire::arp;

const S: u64 = 1_000_000_000;
const PORT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x10];
const PEER_MAC: [u8; 6] = [2, 0, 0, 0, 2, 2];
const OWN4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const PEER4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 254);
const VIP4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 10);
const BACKEND4: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 11);

fn own6() -> Ipv6Addr {
    "fd00:18::1".parse().unwrap()
}
fn peer6() -> Ipv6Addr {
    "fd00:18::fe".parse().unwrap()
}
fn peer_ll() -> Ipv6Addr {
    "fe80::ff:fe00:202".parse().unwrap()
}
fn kernel_ll() -> Ipv6Addr {
    "fe80::ff:fe00:10".parse().unwrap()
}

/// The datapath fixture, with or without a kernel interface on its port.
fn lab(kernel: bool) -> (Forwarding, Datapath) {
    let mut text = testing::fixture("datapath").to_string();
    if kernel {
        text = text.replace(
            "device = \"net_null0\"\n",
            "device = \"net_null0\"\nkernel_interface = \"mplb0\"\n",
        );
    }
    let fwd = testing::forwarding(&testing::parse(&text), &[PORT_MAC]);
    assert_eq!(fwd.interfaces[0].kernel, kernel);
    (fwd, Tables::small(4096).datapath())
}

fn send(fwd: &Forwarding, dp: &mut Datapath, bytes: &[u8], now: u64) -> (Verdict, Vec<u8>) {
    let mut f = TestFrame::new(bytes);
    let v = dp.process(fwd, 0, &mut f, now);
    (v, f.to_vec())
}

fn eth(et: u16, payload: &[u8]) -> Vec<u8> {
    frames::eth(PORT_MAC, PEER_MAC, et, payload)
}

fn v4(dst: Ipv4Addr, proto: u8, l4: &[u8]) -> Vec<u8> {
    eth(ethertype::IPV4, &frames::ipv4(PEER4, dst, proto, 64, 7, l4))
}

fn v6(src: Ipv6Addr, dst: Ipv6Addr, nh: u8, hop: u8, l4: &[u8]) -> Vec<u8> {
    eth(ethertype::IPV6, &frames::ipv6(src, dst, nh, hop, l4))
}

fn tcp(dport: u16, flags: u8) -> Vec<u8> {
    frames::tcp(&frames::tcp_repr(40000, dport, 1000, flags, &[]), &[])
}

fn icmp6(src: Ipv6Addr, dst: Ipv6Addr, ty: u8, rest: [u8; 4], data: &[u8]) -> Vec<u8> {
    frames::icmpv6(&src, &dst, ty, 0, rest, data)
}

/// A neighbour advertisement for `target` (solicited, override) with its
/// target link-layer option.
fn na(target: Ipv6Addr, hop: u8) -> Vec<u8> {
    let mut body = target.octets().to_vec();
    body.extend_from_slice(&[2, 1]);
    body.extend_from_slice(&PEER_MAC);
    let m = icmp6(target, own6(), 136, [0x60, 0, 0, 0], &body);
    v6(target, own6(), 58, hop, &m)
}

/// A neighbour solicitation for `target` from the peer.
fn ns(target: Ipv6Addr) -> Vec<u8> {
    let o = target.octets();
    let group = Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(o[13]),
        u16::from_be_bytes([o[14], o[15]]),
    );
    let mut body = o.to_vec();
    body.extend_from_slice(&[1, 1]);
    body.extend_from_slice(&PEER_MAC);
    let m = icmp6(peer6(), group, 135, [0; 4], &body);
    v6(peer6(), group, 58, 255, &m)
}

fn arp_frame(op: u16, sender: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    eth(
        ethertype::ARP,
        &frames::arp(op, (PEER_MAC, sender), (PORT_MAC, target)),
    )
}

/// Frames for the host itself: BGP to an own address over both families,
/// BFD (UDP 3784, TTL 255), an ICMP error about the kernel's own traffic,
/// a fragment to an own address, an ARP reply, a neighbour advertisement,
/// a solicitation for the kernel's link-local address, IPv6 to link-local
/// unicast (BFD over link-local) and to link-scope multicast (a router
/// advertisement), IPv4 to the link's control block (an OSPF hello, a VRRP
/// advertisement) and to the limited broadcast.
fn for_the_host() -> Vec<(&'static str, Vec<u8>)> {
    let udp_bfd = frames::udp(49152, 3784, &[0x20, 0x40, 3, 24]);
    let unreachable = frames::icmpv4(3, 3, [0; 4], &[0x45; 28]);
    let mut frag = v4(OWN4, 1, &frames::icmpv4(8, 0, [0, 1, 0, 1], &[0; 16]));
    // More fragments: an echo request in pieces, reassembled by the kernel.
    frag[14 + 6] = 0x20;
    let ra = icmp6(
        peer_ll(),
        "ff02::1".parse().unwrap(),
        134,
        [64, 0, 7, 8],
        &[0; 8],
    );
    vec![
        ("bgp v4", v4(OWN4, 6, &tcp(179, SYN))),
        ("bgp v6", v6(peer6(), own6(), 6, 64, &tcp(179, ACK))),
        ("bfd", v4(OWN4, 17, &udp_bfd)),
        ("icmp error", v4(OWN4, 1, &unreachable)),
        ("fragment", frag),
        ("arp reply", arp_frame(arp::op::REPLY, PEER4, OWN4)),
        ("neighbour advertisement", na(peer6(), 255)),
        ("solicitation for the kernel's link-local", ns(kernel_ll())),
        (
            "bfd over link-local",
            v6(
                peer_ll(),
                kernel_ll(),
                17,
                255,
                &frames::udp(49152, 3784, &[0; 24]),
            ),
        ),
        (
            "router advertisement",
            v6(peer_ll(), "ff02::1".parse().unwrap(), 58, 255, &ra),
        ),
        (
            "ospf hello",
            v4(Ipv4Addr::new(224, 0, 0, 5), 89, &[2, 1, 0, 44]),
        ),
        (
            "vrrp",
            v4(Ipv4Addr::new(224, 0, 0, 18), 112, &[0x31, 1, 100, 1]),
        ),
        (
            "limited broadcast",
            v4(Ipv4Addr::BROADCAST, 17, &frames::udp(68, 67, &[1; 8])),
        ),
    ]
}

#[test]
fn the_hosts_own_traffic_goes_to_the_kernel_unchanged() {
    let (fwd, mut dp) = lab(true);
    for (what, f) in for_the_host() {
        let (v, out) = send(&fwd, &mut dp, &f, 1000 * S);
        assert_eq!(v, Verdict::Kernel, "{what}");
        assert_eq!(out, f, "{what}: handed over as received");
    }
    // Counted by the worker once its queue takes them; no drop here.
    assert_eq!(dp.counters.drops.total(), 0, "{:?}", dp.counters);
}

#[test]
fn without_a_kernel_interface_the_same_frames_are_dropped_as_before() {
    let (fwd, mut dp) = lab(false);
    for (what, f) in for_the_host() {
        let (v, _) = send(&fwd, &mut dp, &f, 1000 * S);
        assert!(matches!(v, Verdict::Drop(_)), "{what}: {v:?}");
    }
    let c = dp.counters;
    assert_eq!(
        (
            c.drops[DropReason::Unsupported],
            c.drops[DropReason::NotForUs]
        ),
        // Own address (BGP, BFD, ICMP error, fragment) and the ARP reply;
        // the advertisement, the solicitation and the link-scope ones.
        (6, 7)
    );
}

#[test]
fn the_datapath_still_answers_and_forwards_what_it_did() {
    let (fwd, mut dp) = lab(true);
    let now = 1000 * S;
    // Echo to an own address, ARP and ND for an own address and a VIP.
    let echo = v4(OWN4, 1, &frames::icmpv4(8, 0, [0, 1, 0, 1], b"hi"));
    let echo6 = v6(
        peer6(),
        own6(),
        58,
        64,
        &icmp6(peer6(), own6(), 128, [0, 1, 0, 1], b"hi"),
    );
    for (what, f) in [
        ("echo", echo),
        ("echo v6", echo6),
        ("arp own", arp_frame(arp::op::REQUEST, PEER4, OWN4)),
        ("arp vip", arp_frame(arp::op::REQUEST, PEER4, VIP4)),
        ("ns own", ns(own6())),
        ("ns vip", ns("fd00:18::10".parse().unwrap())),
    ] {
        assert_eq!(send(&fwd, &mut dp, &f, now).0, Verdict::Reply, "{what}");
    }
    assert_eq!(
        (
            dp.counters.icmp_echo_replies,
            dp.counters.arp_replies,
            dp.counters.nd_replies
        ),
        (2, 2, 2)
    );
    // The VIP path is unchanged.
    assert_eq!(
        send(&fwd, &mut dp, &v4(VIP4, 6, &tcp(80, SYN)), now).0,
        Verdict::Forward
    );
    // Not for us, nor for the kernel: global addresses of others, an ARP
    // request for someone else, a malformed advertisement (hop limit 64).
    let other = Ipv4Addr::new(198, 18, 9, 9);
    for (what, f, why) in [
        (
            "other v4",
            v4(other, 6, &tcp(179, SYN)),
            DropReason::NotForUs,
        ),
        (
            "other v6",
            v6(
                peer6(),
                "fd00:18::99".parse().unwrap(),
                6,
                64,
                &tcp(179, SYN),
            ),
            DropReason::NotForUs,
        ),
        (
            "site multicast",
            v6(
                peer6(),
                "ff05::2".parse().unwrap(),
                17,
                64,
                &frames::udp(1, 2, &[]),
            ),
            DropReason::NotForUs,
        ),
        (
            "arp request for another",
            arp_frame(arp::op::REQUEST, PEER4, other),
            DropReason::NotForUs,
        ),
        ("bad advertisement", na(peer6(), 64), DropReason::Malformed),
    ] {
        assert_eq!(send(&fwd, &mut dp, &f, now).0, Verdict::Drop(why), "{what}");
    }
}

#[test]
fn a_backends_answer_is_learnt_and_handed_to_the_kernel_too() {
    let (fwd, mut dp) = lab(true);
    let watched = Neighbours::new([(0, BACKEND4.into()), (0, peer6().into())]);
    let fwd = fwd.with_neighbours(Arc::new(watched));
    let reply = arp_frame(arp::op::REPLY, BACKEND4, OWN4);
    assert_eq!(send(&fwd, &mut dp, &reply, S).0, Verdict::Kernel);
    assert_eq!(send(&fwd, &mut dp, &na(peer6(), 255), S).0, Verdict::Kernel);
    assert_eq!(dp.counters.neighbour_learnt, 2);
    let heard = fwd.neighbours.heard(0, BACKEND4.into()).expect("watched");
    assert_eq!(heard.mac, Some(PEER_MAC));
    // Without the exception path, the same answers are absorbed.
    let (plain, mut dp) = lab(false);
    let plain = plain.with_neighbours(fwd.neighbours.clone());
    assert_eq!(send(&plain, &mut dp, &reply, S).0, Verdict::Absorbed);
    assert_eq!(
        send(&plain, &mut dp, &na(peer6(), 255), S).0,
        Verdict::Absorbed
    );
}

#[test]
fn a_flood_to_an_own_address_is_held_to_the_budget() {
    let (fwd, mut dp) = lab(true);
    dp.set_kernel_rate(100);
    let syn = v4(OWN4, 6, &tcp(22, SYN));
    let now = 1000 * S;
    // A full bucket: bursts of 32 (a tenth of a second's worth, at least 32).
    let kernel = (0..100)
        .filter(|_| send(&fwd, &mut dp, &syn, now).0 == Verdict::Kernel)
        .count();
    assert_eq!(kernel, 32);
    assert_eq!(dp.counters.drops[DropReason::KernelLimit], 68);
    // 100 a second: one more after 10 ms.
    assert_eq!(
        send(&fwd, &mut dp, &syn, now + 10_000_000).0,
        Verdict::Kernel
    );
    assert_eq!(
        send(&fwd, &mut dp, &syn, now + 10_000_000).0,
        Verdict::Drop(DropReason::KernelLimit)
    );
    // The datapath's own answers and the VIP path do not spend it.
    let echo = v4(OWN4, 1, &frames::icmpv4(8, 0, [0, 1, 0, 1], b"hi"));
    assert_eq!(
        send(&fwd, &mut dp, &echo, now + 10_000_000).0,
        Verdict::Reply
    );
    let vip = v4(VIP4, 6, &tcp(80, SYN));
    assert_eq!(
        send(&fwd, &mut dp, &vip, now + 10_000_000).0,
        Verdict::Forward
    );
}
