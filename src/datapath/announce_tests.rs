//! The ADD_ADDR sent on a backend's behalf, through the whole datapath:
//! when it is sent (once, never on fallback, within the rate limit) and
//! its bytes, compared with a frame built here from the documented
//! behaviour with the wire emitters (whose HMAC the capture golden test,
//! tests/add_addr_capture.rs, checks against a real Linux backend).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::ADDRESS_ID;
use crate::datapath::forwarding::Forwarding;
use crate::datapath::frame::TestFrame;
use crate::datapath::process::Datapath;
use crate::datapath::verdict::Verdict;
use crate::testing::config::{Backend, Vip, null_port};
use crate::testing::frames::flags::{ACK, PSH, SYN};
use crate::testing::frames::{self, opt};
use crate::testing::{self, Tables};
use crate::wire::ethernet::ethertype;
use crate::wire::{add_addr, mptcp, tcp};

const S: u64 = 1_000_000_000;
const PORT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x10];
const ROUTER_MAC: [u8; 6] = [2, 0, 0, 0, 2, 1];
const CLIENT_KEY: u64 = 0x4644_b275_7431_7ce1;
const SERVER_KEY: u64 = 0xd456_6925_ddf7_e962;
/// The client segment's sequence and acknowledgement numbers.
const SEQ: u32 = 0x1000_0001;
const ACKN: u32 = 0x2000_0001;
const WINDOW: u16 = 502;

/// One VIP per family, one backend each (so Maglev has one answer).
fn config(announce: bool) -> Forwarding {
    let mut text = null_port("ipv6 = [\"fd00:18::1\"]\n");
    text += &Vip::new("web4", "198.18.0.10", 80)
        .option("table_size", 251)
        .option("announce_backend_address", announce)
        .backend(Backend::new("a", "198.18.1.11").mac("02:00:00:00:01:11"))
        .to_string();
    text += &Vip::new("web6", "fd00:18::10", 80)
        .option("table_size", 251)
        .option("announce_backend_address", announce)
        .backend(Backend::new("a6", "fd00:18:1::11").mac("02:00:00:00:06:11"))
        .to_string();
    testing::forwarding(&testing::parse(&text), &[PORT_MAC])
}

struct Lab {
    fwd: Forwarding,
    dp: Datapath,
    now: u64,
}

impl Lab {
    fn new(announce: bool) -> Lab {
        Lab::with_flows(announce, 4096)
    }

    fn with_flows(announce: bool, flows: usize) -> Lab {
        Lab {
            fwd: config(announce),
            dp: Tables::small(flows).datapath(),
            now: 1_000 * S,
        }
    }

    /// Processes one frame (it must be forwarded) and returns the
    /// announcements it caused.
    fn send(&mut self, frame: &[u8]) -> Vec<(usize, Vec<u8>)> {
        let mut f = TestFrame::new(frame);
        let v = self.dp.process(&self.fwd, 0, &mut f, self.now);
        assert_eq!(v, Verdict::Forward, "{:?}", self.dp.counters);
        let mut out = Vec::new();
        self.dp
            .announcements()
            .drain(|a| out.push((a.port, a.frame().to_vec())));
        out
    }
}

fn client4() -> Ipv4Addr {
    "198.18.2.2".parse().unwrap()
}
fn vip4() -> Ipv4Addr {
    "198.18.0.10".parse().unwrap()
}
fn client6() -> Ipv6Addr {
    "fd00:18:2::2".parse().unwrap()
}
fn vip6() -> Ipv6Addr {
    "fd00:18::10".parse().unwrap()
}

/// A client→VIP segment from port `sport` with these options and data.
fn segment(v6: bool, sport: u16, flags: u8, opts: &[u8], data: &[u8]) -> Vec<u8> {
    let repr = tcp::Repr {
        src_port: sport,
        dst_port: 80,
        seq_number: SEQ,
        ack_number: ACKN,
        flags: tcp::Flags(flags),
        window: WINDOW,
        options: opts,
    };
    let seg = frames::tcp(&repr, data);
    if v6 {
        let ip = frames::ipv6(client6(), vip6(), 6, 64, &seg);
        frames::eth(PORT_MAC, ROUTER_MAC, ethertype::IPV6, &ip)
    } else {
        let ip = frames::ipv4(client4(), vip4(), 6, 64, 7, &seg);
        frames::eth(PORT_MAC, ROUTER_MAC, ethertype::IPV4, &ip)
    }
}

fn third_ack(v6: bool, sport: u16) -> Vec<u8> {
    segment(
        v6,
        sport,
        ACK,
        &opt::mp_capable(&[CLIENT_KEY, SERVER_KEY]),
        &[],
    )
}

/// What the backend would have sent: VIP→client, seq = the client's ACK
/// number, ack = its seq + `data_len`, ACK only, the client's window, one
/// option, TTL 64, IPv4 identification 0 with DF; to the router's MAC from
/// the port's.
fn expected(v6: bool, sport: u16, data_len: u32, option: &[u8]) -> Vec<u8> {
    let repr = tcp::Repr {
        src_port: 80,
        dst_port: sport,
        seq_number: ACKN,
        ack_number: SEQ + data_len,
        flags: tcp::Flags(ACK),
        window: WINDOW,
        options: option,
    };
    let seg = frames::tcp(&repr, &[]);
    if v6 {
        let seg = frames::tcp_checksum_v6(seg, &vip6(), &client6());
        let ip = frames::ipv6(vip6(), client6(), 6, 64, &seg);
        frames::eth(ROUTER_MAC, PORT_MAC, ethertype::IPV6, &ip)
    } else {
        let seg = frames::tcp_checksum_v4(seg, vip4(), client4());
        let ip = frames::ipv4(vip4(), client4(), 6, 64, 0, &seg);
        frames::eth(ROUTER_MAC, PORT_MAC, ethertype::IPV4, &ip)
    }
}

fn v1_option(addr: &str) -> Vec<u8> {
    let addr: IpAddr = addr.parse().unwrap();
    let hmac = add_addr::hmac_v1(SERVER_KEY, CLIENT_KEY, ADDRESS_ID, addr, 0);
    let mut b = [0u8; add_addr::MAX_LEN];
    let n = add_addr::emit_v1(&mut b, ADDRESS_ID, addr, hmac).unwrap();
    b[..n].to_vec()
}

#[test]
fn the_third_ack_makes_one_v1_announcement_of_the_backend_v4() {
    let mut lab = Lab::new(true);
    let got = lab.send(&third_ack(false, 40001));
    let want = expected(false, 40001, 0, &v1_option("198.18.1.11"));
    assert_eq!(got, vec![(0, want)]);
    assert_eq!(lab.dp.counters.add_addr_sent, 1);
}

#[test]
fn the_third_ack_makes_one_v1_announcement_of_the_backend_v6() {
    let mut lab = Lab::new(true);
    let got = lab.send(&third_ack(true, 40011));
    let want = expected(true, 40011, 0, &v1_option("fd00:18:1::11"));
    assert_eq!(got, vec![(0, want)]);
}

#[test]
fn a_retransmitted_third_ack_or_the_first_data_does_not_announce_again() {
    let mut lab = Lab::new(true);
    assert_eq!(lab.send(&third_ack(false, 40001)).len(), 1);
    lab.now += S;
    assert!(lab.send(&third_ack(false, 40001)).is_empty());
    let keys_and_data = {
        let mut o = [0u8; 24];
        let n = mptcp::emit_mp_capable(
            &mut o,
            1,
            mptcp::capable_flags::H,
            &[CLIENT_KEY, SERVER_KEY],
        )
        .unwrap();
        // Length 22: the data-level length follows the keys.
        o[1] = 22;
        o[n..n + 2].copy_from_slice(&5u16.to_be_bytes());
        o[n + 2..n + 4].copy_from_slice(&[1, 1]);
        o.to_vec()
    };
    let first_data = segment(false, 40001, ACK | PSH, &keys_and_data, b"hello");
    assert!(lab.send(&first_data).is_empty());
    let c = &lab.dp.counters;
    assert_eq!((c.add_addr_sent, c.add_addr_skipped_duplicate), (1, 2));
}

#[test]
fn a_lost_third_ack_is_made_up_for_by_the_first_data_with_its_payload_acked() {
    let mut lab = Lab::new(true);
    let mut o = [0u8; 24];
    let n = mptcp::emit_mp_capable(
        &mut o,
        1,
        mptcp::capable_flags::H,
        &[CLIENT_KEY, SERVER_KEY],
    )
    .unwrap();
    o[1] = 22;
    o[n..n + 2].copy_from_slice(&5u16.to_be_bytes());
    o[n + 2..n + 4].copy_from_slice(&[1, 1]);
    let got = lab.send(&segment(false, 40002, ACK | PSH, &o, b"hello"));
    let want = expected(false, 40002, 5, &v1_option("198.18.1.11"));
    assert_eq!(got, vec![(0, want)]);
}

#[test]
fn v0_clients_get_a_v0_announcement_without_hmac() {
    let mut lab = Lab::new(true);
    let mut o = [0u8; 20];
    mptcp::emit_mp_capable(
        &mut o,
        0,
        mptcp::capable_flags::H,
        &[CLIENT_KEY, SERVER_KEY],
    )
    .unwrap();
    let got = lab.send(&segment(true, 40012, ACK, &o, &[]));
    let mut v0 = [0u8; add_addr::MAX_LEN];
    let n = add_addr::emit_v0(&mut v0, ADDRESS_ID, "fd00:18:1::11".parse().unwrap()).unwrap();
    assert_eq!(got, vec![(0, expected(true, 40012, 0, &v0[..n]))]);
}

#[test]
fn fallen_back_plain_and_other_segments_never_announce() {
    let mut lab = Lab::new(true);
    // SYN with MP_CAPABLE, then the fallback's third ACK without MPTCP
    // option (the server answered without MP_CAPABLE), then data.
    assert!(
        lab.send(&segment(false, 40005, SYN, &opt::mp_capable_syn(), &[]))
            .is_empty()
    );
    assert!(lab.send(&segment(false, 40005, ACK, &[], &[])).is_empty());
    assert!(
        lab.send(&segment(false, 40005, ACK | PSH, &[], b"data"))
            .is_empty()
    );
    // A DSS-only segment of an MPTCP subflow whose keys mplb never saw.
    assert!(
        lab.send(&segment(false, 40006, ACK, &opt::dss_ack(1), &[]))
            .is_empty()
    );
    let c = &lab.dp.counters;
    assert_eq!(c.add_addr_sent + c.add_addr_skipped_duplicate, 0);
}

#[test]
fn vips_without_the_option_never_announce() {
    let mut lab = Lab::new(false);
    assert!(lab.send(&third_ack(false, 40001)).is_empty());
    assert!(lab.send(&third_ack(true, 40011)).is_empty());
    let c = &lab.dp.counters;
    assert_eq!(c.add_addr_sent + c.add_addr_skipped_duplicate, 0);
    assert_eq!(c.tokens_learnt, 2);
}

#[test]
fn the_rate_limit_holds_then_refills() {
    // A table large enough for the untrusted quota to take them all.
    let mut lab = Lab::with_flows(true, 1 << 16);
    let mut sent = 0;
    for sport in 10_000..11_200u16 {
        sent += lab.send(&third_ack(false, sport)).len();
    }
    assert_eq!(sent, 1_000);
    assert_eq!(lab.dp.counters.add_addr_skipped_rate_limit, 200);
    lab.now += S / 100; // 10 ms: 100 tokens
    let more: usize = (20_000..20_200u16)
        .map(|p| lab.send(&third_ack(false, p)).len())
        .sum();
    assert_eq!(more, 100);
    assert_eq!(lab.dp.counters.add_addr_skipped_unpinned, 0);
}

#[test]
fn a_third_ack_that_cannot_be_pinned_is_not_announced() {
    // A small table's untrusted quota refuses some of many new subflows:
    // those get no announcement, since a retransmission of their third
    // ACK could not be told apart.
    let mut lab = Lab::with_flows(true, 1024);
    let sent: usize = (10_000..11_000u16)
        .map(|p| lab.send(&third_ack(false, p)).len())
        .sum();
    let c = &lab.dp.counters;
    assert!(c.add_addr_skipped_unpinned > 0, "{c:?}");
    assert_eq!(c.add_addr_skipped_unpinned, c.flow_insert_rejected);
    assert_eq!(sent as u64 + c.add_addr_skipped_unpinned, 1_000);
}

#[test]
fn an_undrained_list_is_bounded() {
    let mut lab = Lab::new(true);
    for sport in 30_000..30_100u16 {
        let mut f = TestFrame::new(&third_ack(false, sport));
        lab.dp.process(&lab.fwd, 0, &mut f, lab.now);
    }
    assert_eq!(lab.dp.announcements().len(), super::PENDING_MAX);
    let c = &lab.dp.counters;
    assert_eq!(c.add_addr_sent, super::PENDING_MAX as u64);
    assert_eq!(
        c.add_addr_skipped_no_buffer,
        100 - super::PENDING_MAX as u64
    );
}
