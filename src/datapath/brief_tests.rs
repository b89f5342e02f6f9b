//! The VIP lane's parse against the full parse, and the lane against the
//! general path, on real frame shapes and on arbitrary mutations of them.

use std::net::{Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;

use super::*;
use crate::datapath::decide::fill_flow;
use crate::datapath::frame::TestFrame;
use crate::datapath::hash::HashVersion;
use crate::datapath::verdict::Verdict;
use crate::testing::frames::flags::{ACK, FIN, PSH, RST, SYN};
use crate::testing::frames::{self, opt};
use crate::testing::{self, Tables};
use crate::wire::ethernet::ethertype;
use crate::wire::parse::{L4, parse_frame};

const PORT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x10];
const CLIENT_MAC: [u8; 6] = [2, 0, 0, 0, 2, 2];
const S: u64 = 1_000_000_000;

/// Destinations of the datapath fixture: VIPs of every kind (L2 DSR,
/// IP-in-IP, UDP, tracking off, token routing off), an own address and an
/// address that is neither.
const DST4: [&str; 7] = [
    "198.18.0.10",
    "198.18.0.20",
    "198.18.0.30",
    "198.18.0.31",
    "198.18.0.40",
    "198.18.0.1",
    "198.18.0.99",
];
const DST6: [&str; 4] = ["fd00:18::10", "fd00:18::20", "fd00:18::1", "fd00:18::99"];

/// TCP options of the segments a connection sends: Linux's SYN (with and
/// without MP_CAPABLE), a third ACK with both keys, a join, DSS after
/// timestamps, none, and options ending in EOL.
fn options(which: u8) -> Vec<u8> {
    let linux_syn = [
        2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7,
    ];
    let ts = [1, 1, 8, 10, 0, 0, 0, 9, 0, 0, 0, 8];
    let mut o = Vec::new();
    match which % 7 {
        0 => {
            o.extend_from_slice(&linux_syn);
            o.extend(opt::mp_capable_syn());
        }
        1 => o.extend_from_slice(&linux_syn),
        2 => {
            o.extend_from_slice(&[1, 1]);
            o.extend(opt::mp_capable(&[0x1111, 0x2222_3333_4444_5555]));
            o.extend_from_slice(&[0, 0]);
        }
        3 => {
            o.extend(opt::mp_join(0xa119_08e9, 7));
            o.extend_from_slice(&[1, 3, 3, 7]);
        }
        4 => {
            o.extend_from_slice(&ts);
            o.extend(opt::dss_ack(5));
        }
        5 => {}
        _ => o.extend_from_slice(&[2, 4, 5, 0xb4, 0, 0, 0, 0]),
    }
    o
}

/// A frame of the shapes the datapath sees: TCP (flags, options, payload)
/// or UDP, over IPv4 or IPv6, untagged or with one VLAN tag.
fn frame(dst: usize, v6: bool, udp: bool, flags: u8, which: u8, tagged: bool, ttl: u8) -> Vec<u8> {
    let l4 = if udp {
        frames::udp(40_000, 53, b"query")
    } else {
        let dport = if dst == DST4.len() { 443 } else { 80 };
        let o = options(which);
        frames::tcp(&frames::tcp_repr(40_000, dport, 1000, flags, &o), b"data")
    };
    let proto = if udp { frames::UDP } else { frames::TCP };
    let (et, ip) = if v6 {
        let d: Ipv6Addr = DST6[dst % DST6.len()].parse().unwrap();
        let s: Ipv6Addr = "fd00:18:9::2".parse().unwrap();
        (ethertype::IPV6, frames::ipv6(s, d, proto, ttl, &l4))
    } else {
        let d: Ipv4Addr = DST4[dst % DST4.len()].parse().unwrap();
        let s = Ipv4Addr::new(198, 18, 9, 2);
        (ethertype::IPV4, frames::ipv4(s, d, proto, ttl, 7, &l4))
    };
    let mut f = frames::eth(PORT_MAC, CLIENT_MAC, et, &ip);
    if tagged {
        // 802.1Q, VLAN 5, in front of the EtherType.
        f.splice(12..12, [0x81, 0x00, 0x00, 0x05]);
    }
    f
}

prop_compose! {
    fn a_frame()(
        dst in 0usize..8, v6 in any::<bool>(), udp in prop::bool::weighted(0.2),
        flags in prop::sample::select(vec![SYN, SYN | ACK, ACK, ACK | PSH, ACK | FIN, RST, ACK | RST]),
        which in any::<u8>(), tagged in prop::bool::weighted(0.2), ttl in prop::sample::select(vec![1u8, 2, 64]),
    ) -> Vec<u8> {
        frame(dst, v6, udp, flags, which, tagged, ttl)
    }
}

fn a_hash_version() -> impl Strategy<Value = HashVersion> {
    prop::sample::select(HashVersion::ALL.to_vec())
}

prop_compose! {
    /// A frame with some bytes changed, cut short or padded.
    fn a_mutated_frame()(
        mut f in a_frame(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        cut in prop::option::weighted(0.2, any::<prop::sample::Index>()),
        pad in prop::sample::select(vec![0usize, 0, 6]),
    ) -> Vec<u8> {
        for (at, byte) in edits {
            let i = at.index(f.len());
            f[i] = byte;
        }
        if let Some(c) = cut {
            f.truncate(c.index(f.len() + 1));
        }
        f.resize(f.len() + pad, 0);
        f
    }
}

/// Where the brief parse covers `f`, what it read is what the full parse
/// reads (and the same flow key and hash, in hash version `hash`).
fn agrees(f: &[u8], hash: HashVersion) -> Result<bool, TestCaseError> {
    let mut b = Brief::EMPTY;
    b.fill(f, hash);
    if !b.covered {
        return Ok(false);
    }
    let p = parse_frame(f);
    let p = p
        .as_ref()
        .map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
    let ip = p.ip.as_ref().ok_or_else(|| TestCaseError::fail("no IP"))?;
    prop_assert!(ip.fragment.is_none());
    prop_assert_eq!(
        (b.version, b.ttl, b.protocol, b.l3_offset, b.l3_end),
        (ip.version, ip.ttl, ip.protocol, p.l3_offset, ip.l3_end)
    );
    match &ip.l4 {
        L4::Tcp(t) => {
            prop_assert_eq!(b.protocol, frames::TCP);
            prop_assert_eq!(
                (b.flags, b.dst_port, b.mptcp),
                (t.flags, t.dst_port, t.mptcp)
            );
        }
        L4::Udp { dst_port, .. } => {
            prop_assert_eq!(
                (b.protocol, b.flags, b.dst_port),
                (frames::UDP, Flags(0), *dst_port)
            );
        }
        other => return Err(TestCaseError::fail(format!("covered {other:?}"))),
    }
    let mut flow = None;
    fill_flow(ip, &mut flow, hash);
    prop_assert_eq!(flow, Some((b.key, b.hash)));
    prop_assert_eq!(hash.flow(&b.key), b.hash);
    prop_assert_eq!(b.key.dst16(), &ip.dst);
    Ok(true)
}

#[test]
fn covers_the_forwarded_shapes() {
    for (v6, udp, tagged) in [
        (false, false, false),
        (true, false, true),
        (false, true, true),
    ] {
        for which in 0..7 {
            let f = frame(0, v6, udp, SYN, which, tagged, 64);
            for hash in HashVersion::ALL {
                assert!(
                    agrees(&f, hash).unwrap(),
                    "{v6} {udp} {tagged} {which}: not covered"
                );
            }
        }
    }
    // Left to the full parse: a fragment, IPv4 options, an IPv6 extension
    // header, ICMP, two VLAN tags.
    let mut frag = frame(0, false, false, ACK, 5, false, 64);
    frag[14 + 6] = 0x20; // more fragments
    let mut v4_opts = frame(0, false, false, ACK, 5, false, 64);
    v4_opts[14] = 0x46;
    let mut v6_ext = frame(0, true, false, ACK, 5, false, 64);
    v6_ext[14 + 6] = 0; // hop-by-hop options
    let mut icmp = frame(0, false, false, ACK, 5, false, 64);
    icmp[14 + 9] = frames::ICMP;
    let mut qinq = frame(0, false, false, ACK, 5, true, 64);
    qinq.splice(12..12, [0x81, 0x00, 0x00, 0x06]);
    for f in [frag, v4_opts, v6_ext, icmp, qinq] {
        assert!(!agrees(&f, HashVersion::V2).unwrap());
    }
}

proptest! {
    #[test]
    fn brief_reads_what_the_full_parse_reads(f in a_mutated_frame(), hash in a_hash_version()) {
        agrees(&f, hash)?;
    }

    #[test]
    fn brief_on_arbitrary_bytes(
        f in prop::collection::vec(any::<u8>(), 0..120),
        hash in a_hash_version(),
    ) {
        agrees(&f, hash)?;
    }

    /// The same frames through the VIP lane of one datapath and the general
    /// path of another: the same verdicts, rewritten frames, counters and
    /// flow-table contents, frame after frame (flows, tokens and
    /// announcements carry over between frames of a run).
    #[test]
    fn the_lane_decides_as_the_general_path(
        run in prop::collection::vec(prop_oneof![3 => a_frame(), 1 => a_mutated_frame()], 1..24),
        hash in a_hash_version(),
    ) {
        let fwd = testing::forwarding(&testing::parse(testing::fixture("datapath")), &[PORT_MAC])
            .with_hash(hash);
        let mut lane = Tables::small(4096).datapath();
        let mut general = Tables::small(4096).datapath();
        for (i, bytes) in run.iter().enumerate() {
            let now = 1_000 * S + i as u64 * S / 10;
            let (mut a, mut b) = (TestFrame::new(bytes), TestFrame::new(bytes));
            let va = lane.process(&fwd, 0, &mut a, now);
            let vb = general.process_general(&fwd, 0, &mut b, now);
            prop_assert_eq!(va, vb, "frame {}", i);
            prop_assert_eq!(a.to_vec(), b.to_vec(), "frame {}", i);
            prop_assert_eq!(lane.counters, general.counters, "frame {}", i);
            prop_assert_eq!(lane.flow_table().len(), general.flow_table().len());
            prop_assert_eq!(lane.announcements().len(), general.announcements().len());
        }
        for v in &fwd.vips {
            prop_assert_eq!(lane.traffic().vip(v.id), general.traffic().vip(v.id));
        }
        for b in fwd.backends.iter().flatten() {
            let id = b.id.0;
            prop_assert_eq!(lane.traffic().backend(id), general.traffic().backend(id));
        }
        prop_assert!(run.is_empty() || lane.counters != Default::default());
    }
}

/// The lane takes the VIP traffic (the equivalence above would also hold
/// if it took nothing) and leaves the rest to the general path.
#[test]
fn vip_frames_are_forwarded_by_the_lane() {
    let fwd = testing::forwarding(&testing::parse(testing::fixture("datapath")), &[PORT_MAC]);
    let mut dp = Tables::small(4096).datapath();
    let link = dp.link(&fwd, 0).expect("port 0");
    for (v6, udp) in [(false, false), (true, false), (false, true)] {
        let bytes = frame(0, v6, udp, SYN, 0, false, 64);
        let mut b = Brief::EMPTY;
        b.fill(&bytes, fwd.hash);
        assert!(b.covered);
        let mut f = TestFrame::new(&bytes);
        assert_eq!(
            dp.vip_lane::<_, false>(&fwd, link, &mut f, &b, None, 1_000 * S),
            Some(Verdict::Forward)
        );
    }
    // Not a VIP: the general path's.
    let bytes = frame(5, false, false, SYN, 0, false, 64);
    let mut b = Brief::EMPTY;
    b.fill(&bytes, fwd.hash);
    assert!(b.covered);
    assert_eq!(
        dp.vip_lane::<_, false>(&fwd, link, &mut TestFrame::new(&bytes), &b, None, 1_000 * S),
        None
    );
}
