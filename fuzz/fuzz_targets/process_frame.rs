//! Fuzzes the whole per-packet function with one forwarding snapshot and
//! datapath built once (IPv4 and IPv6 VIPs, L2 DSR and IPIP, token routing on,
//! a small flow table so that eviction, the untrusted quota and timeouts are
//! reached). Every input goes through `Datapath::process_burst` on that
//! datapath and through `Datapath::process_general` (the general path alone,
//! without the VIP lane), frame by frame, on a twin built the same way, so
//! both keep the same state.
//!
//! Three snapshots of that config take turns, by the input's length modulo
//! 3: the config as it is, whose few VIP addresses are found by the direct
//! index; with 64 more VIPs (addresses in a row: still the direct index),
//! so that bursts find each frame's VIP ahead of its decision (the
//! datapath's `Ahead`); and those and an IPv6 VIP ending as one of them,
//! whose addresses are hashed. A reload between bursts, as far as the
//! datapath can tell.
//!
//! Input: byte 0 = control (bits 0-1 rx port, where 2 and 3 are no port;
//! bits 2-7 = time-step shift), byte 1 = time step (`(byte1 + 1) << shift`
//! ns added to the clock), then up to 32 frames, each a 2-byte big-endian
//! length and that many bytes (the last one may be cut short).
//! `fuzz/make_seeds.py` writes seeds in this form from the captures.
//!
//! Invariants, for any bytes: no panic; `process_burst` gives the same
//! verdicts and bytes as `process_general`; a `Forward` or `Reply` frame is a
//! well-formed Ethernet frame (one that `parse_frame` accepts) at most 48
//! bytes (an ICMPv6 "packet too big" in front of its quote) longer than the
//! input, and a `Forward` frame leaves from the rx port's MAC to a configured backend or gateway
//! MAC; counters only grow, `forwarded` by the number of `Forward` verdicts
//! and the `drop_*` counters by the number of `Drop` verdicts. The
//! ADD_ADDRs recorded on a backend's behalf (VIPs `web4-dsr`, `web6-ipip`)
//! are the same from both, one per `add_addr_sent`, each a well-formed
//! frame from the rx port's MAC, for the rx port, carrying exactly one
//! MPTCP option, an ADD_ADDR of a configured backend's address; they are
//! taken after every burst, as the worker does.
#![no_main]

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;
use mplb::datapath::counters::Counters;
use mplb::datapath::flow_table::FlowCounters;
use mplb::datapath::forwarding::Forwarding;
use mplb::datapath::frame::TestFrame;
use mplb::datapath::process::Datapath;
use mplb::datapath::verdict::{DropReason, Verdict};
use mplb::testing::{self, Tables};
use mplb::wire::mptcp::MptcpOption;
use mplb::wire::parse::parse_frame;
use mplb::wire::tcp::{self, TcpOption};

const PORT_MACS: [[u8; 6]; 2] = [[2, 0, 0, 0, 2, 1], [2, 0, 0, 0, 3, 1]];
const MAX_FRAMES: usize = 32;
/// The largest growth: the headers of an ICMPv6 "packet too big" (an
/// encapsulation adds at most 40).
const MAX_GROWTH: usize = 48;

struct State {
    fwd: Forwarding,
    /// Which of the three snapshots `fwd` is (see the module doc), and the
    /// other two, swapped with it, and which they are.
    kind: usize,
    others: [(usize, Forwarding); 2],
    /// Runs `process_burst`.
    dp: Datapath,
    /// Runs `process_general`, frame by frame.
    twin: Datapath,
    /// Destination MACs a forwarded frame may have.
    next_hops: Vec<[u8; 6]>,
    now: u64,
    frames: Vec<TestFrame>,
    twin_frames: Vec<TestFrame>,
    verdicts: Vec<Verdict>,
    input_lens: Vec<usize>,
    counters: Counters,
    flow_counters: FlowCounters,
}

/// Two ports (the capture router's wifi and cell sides), so the real
/// captures hit the VIPs: tests/fixtures/fuzz.toml.
fn setup() -> State {
    let config = testing::parse(testing::fixture("fuzz"));
    let fwd = testing::forwarding(&config, &PORT_MACS);
    let many = testing::forwarding(&testing::parse(&with_many_vips(64)), &PORT_MACS);
    assert!(!fwd.many_vips() && many.many_vips() && !many.vip_index().hashed());
    // 198.18.200.101's last four bytes: no direct table parts the two.
    let twin = testing::Vip::a_b("twin", "fd00::c612:c865").to_string();
    let hashed = testing::forwarding(&testing::parse(&(with_many_vips(64) + &twin)), &PORT_MACS);
    assert!(hashed.many_vips() && hashed.vip_index().hashed());
    let next_hops = many
        .backends
        .iter()
        .flatten()
        .filter_map(|b| b.mac)
        .chain(fwd.interfaces.iter().filter_map(|i| i.gateway_mac))
        .collect();
    let pool = || {
        (0..MAX_FRAMES)
            .map(|_| TestFrame::new(&[0; 1600]))
            .collect()
    };
    State {
        dp: Tables::of(&config).datapath(),
        twin: Tables::of(&config).datapath(),
        fwd,
        kind: 0,
        others: [(1, many), (2, hashed)],
        next_hops,
        // Not zero: the clock of a machine that has been up for a while.
        now: 1 << 40,
        frames: pool(),
        twin_frames: pool(),
        verdicts: Vec::with_capacity(MAX_FRAMES),
        input_lens: Vec::with_capacity(MAX_FRAMES),
        counters: Counters::default(),
        flow_counters: FlowCounters::default(),
    }
}

/// The fuzz config and `n` more VIPs (198.18.200.101 upwards, port 80, of its
/// backends `a` and `b`, so no new next hop: `testing::Vip::a_b`).
fn with_many_vips(n: u8) -> String {
    let mut text = testing::fixture("fuzz").to_string();
    for k in 1..=n {
        let mut v = testing::Vip::a_b(format!("many{k}"), format!("198.18.200.{}", 100 + k));
        if k % 2 == 0 {
            v = v.option("forwarding", "\"ipip\"");
        }
        text += &v.to_string();
    }
    text
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(setup());
}

fn flow_counter_values(c: &FlowCounters) -> [u64; 6] {
    [
        c.inserts,
        c.evictions,
        c.timeouts,
        c.promotions,
        c.untrusted_drops,
        c.full_drops,
    ]
}

fn check_output(state: &State, port: usize, i: usize) {
    let verdict = state.verdicts[i];
    let input_len = state.input_lens[i];
    let frame: &[u8] = &state.frames[i];
    // The twin's verdicts follow the burst's in `verdicts`.
    let twin_verdict = state.verdicts[state.input_lens.len() + i];
    assert_eq!(
        verdict, twin_verdict,
        "process_burst and process_general disagree on frame {i}"
    );
    assert_eq!(
        frame,
        &state.twin_frames[i][..],
        "process_burst and process_general wrote different bytes (frame {i}, {verdict:?})"
    );
    if verdict == Verdict::Kernel {
        // Handed over as received, and only where there is a kernel.
        let kernel = state.fwd.interfaces.get(port).is_some_and(|i| i.kernel);
        assert!(kernel, "Kernel on port {port}");
        assert_eq!(frame.len(), input_len, "a frame for the kernel changed");
    }
    if !matches!(verdict, Verdict::Forward | Verdict::Reply) {
        return;
    }
    assert!(
        frame.len() <= input_len + MAX_GROWTH,
        "{verdict:?}: {} bytes out of {input_len} in",
        frame.len()
    );
    if let Err(e) = parse_frame(frame) {
        panic!("{verdict:?} frame is malformed ({e:?}): {frame:02x?}");
    }
    if verdict == Verdict::Forward {
        assert_eq!(frame[6..12], PORT_MACS[port], "source MAC of a forward");
        assert!(
            state.next_hops.iter().any(|m| frame[..6] == *m),
            "forward to an unknown MAC: {frame:02x?}"
        );
    }
}

fn check_counters(state: &mut State) {
    let n = state.input_lens.len();
    let counters = state.dp.counters;
    assert_eq!(counters, state.twin.counters, "counters of burst and twin");
    let old = state.counters;
    let (mut forwarded, mut dropped) = (0, 0);
    for ((name, new), old) in Counters::NAMES
        .iter()
        .zip(counters.values())
        .zip(old.values())
    {
        assert!(new >= old, "counter {name} went from {old} to {new}");
        if *name == "forwarded" {
            forwarded += new - old;
        } else if name.starts_with("drop_") {
            dropped += new - old;
        }
    }
    let verdicts = &state.verdicts[..n];
    let count = |f: fn(&Verdict) -> bool| verdicts.iter().filter(|v| f(v)).count() as u64;
    assert_eq!(forwarded, count(|v| *v == Verdict::Forward), "forwarded");
    assert_eq!(dropped, count(|v| matches!(v, Verdict::Drop(_))), "drop_*");
    state.counters = counters;

    let flow_counters = *state.dp.flow_counters();
    assert_eq!(flow_counters, *state.twin.flow_counters());
    for (new, old) in flow_counter_values(&flow_counters)
        .into_iter()
        .zip(flow_counter_values(&state.flow_counters))
    {
        assert!(new >= old, "flow-table counter went from {old} to {new}");
    }
    state.flow_counters = flow_counters;
}

/// The address of a v0 ADD_ADDR without port (8 or 20 bytes).
fn v0_add_addr(raw: &[u8]) -> Option<std::net::IpAddr> {
    match raw {
        [30, 8, 0x34, _, a @ ..] => <[u8; 4]>::try_from(a).ok().map(Into::into),
        [30, 20, 0x36, _, a @ ..] => <[u8; 16]>::try_from(a).ok().map(Into::into),
        _ => None,
    }
}

/// Takes both datapaths' announcements and checks them (see the top).
fn check_announcements(state: &mut State, port: usize, sent: u64) {
    let mut got: Vec<(usize, Vec<u8>)> = Vec::new();
    let mut twin: Vec<(usize, Vec<u8>)> = Vec::new();
    state
        .dp
        .announcements()
        .drain(|a| got.push((a.port, a.frame().to_vec())));
    state
        .twin
        .announcements()
        .drain(|a| twin.push((a.port, a.frame().to_vec())));
    assert_eq!(got, twin, "announcements of burst and twin");
    assert_eq!(got.len() as u64, sent, "one announcement per add_addr_sent");
    for (p, frame) in &got {
        assert_eq!(*p, port, "announcement for another port");
        assert_eq!(
            frame[6..12],
            PORT_MACS[port],
            "source MAC of an announcement"
        );
        let ip = match parse_frame(frame) {
            Ok(p) => p.ip.expect("an IP announcement"),
            Err(e) => panic!("announcement malformed ({e:?}): {frame:02x?}"),
        };
        let seg = tcp::Packet::new_checked(&frame[ip.l4_offset..ip.l3_end]).expect("TCP");
        let opts: Vec<_> = seg.options_iter().collect();
        let addr = match opts.as_slice() {
            // v1 (RFC 8684), which the parser reads.
            [Ok(TcpOption::Mptcp(MptcpOption::AddAddr(a)))] => a.addr,
            // v0 (RFC 6824): the low nibble is the IP version, which v1
            // reads as flags, so the parser calls it malformed.
            [Ok(TcpOption::Mptcp(MptcpOption::Malformed { raw }))] => {
                v0_add_addr(raw).unwrap_or_else(|| panic!("announcement option {raw:02x?}"))
            }
            o => panic!("announcement options {o:?}"),
        };
        assert!(
            state.fwd.backends.iter().flatten().any(|b| b.addr == addr),
            "announced {addr} is no backend's"
        );
    }
}

fn run(state: &mut State, data: &[u8]) {
    let [control, step, rest @ ..] = data else {
        return;
    };
    let kind = data.len() % 3;
    if let Some((k, other)) = state.others.iter_mut().find(|(k, _)| *k == kind) {
        std::mem::swap(&mut state.fwd, other);
        *k = std::mem::replace(&mut state.kind, kind);
    }
    let port = usize::from(control & 3);
    let shift = u32::from(control >> 2).min(40);
    state.now = state.now.saturating_add((u64::from(*step) + 1) << shift);

    // Split the rest into frames.
    state.input_lens.clear();
    let mut rest = rest;
    while state.input_lens.len() < MAX_FRAMES {
        let [hi, lo, tail @ ..] = rest else { break };
        let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(tail.len());
        let (frame, tail) = tail.split_at(len);
        let i = state.input_lens.len();
        state.frames[i].reset(frame);
        state.twin_frames[i].reset(frame);
        state.input_lens.push(frame.len());
        rest = tail;
    }
    let n = state.input_lens.len();
    if n == 0 {
        return;
    }

    let State {
        fwd,
        dp,
        twin,
        now,
        frames,
        twin_frames,
        verdicts,
        ..
    } = state;
    verdicts.clear();
    verdicts.resize(n, Verdict::Drop(DropReason::Malformed));
    dp.process_burst(fwd, port, &mut frames[..n], verdicts, *now);
    for frame in &mut twin_frames[..n] {
        verdicts.push(twin.process_general(fwd, port, frame, *now));
    }

    for i in 0..n {
        check_output(state, port, i);
    }
    let sent_before = state.counters.add_addr_sent;
    check_counters(state);
    let sent = state.counters.add_addr_sent - sent_before;
    check_announcements(state, port, sent);
}

fuzz_target!(|data: &[u8]| {
    STATE.with(|s| run(&mut s.borrow_mut(), data));
});
