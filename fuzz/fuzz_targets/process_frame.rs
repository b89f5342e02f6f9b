//! Fuzzes the whole per-packet function, `Datapath::process`, with one
//! datapath and forwarding snapshot built once (IPv4 and IPv6 VIPs, L2 DSR and
//! IPIP, token routing on, a small flow table so eviction and the untrusted
//! quota are reached).
//!
//! Input: byte 0 = control (bits 0-1 rx port, where 2 and 3 are no port;
//! bit 2 = burst mode; bits 3-7 = time-step shift), byte 1 = time step
//! (`(byte1 + 1) << shift` ns added to the clock), then up to 32 frames, each
//! a 2-byte big-endian length and that many bytes (the last one may be cut
//! short). `fuzz/make_seeds.py` writes seeds in this form from the captures.
//!
//! Invariants checked for any bytes: no panic; a `Forward` or `Reply` frame
//! is a well-formed Ethernet frame (one that `parse_frame` accepts) at most
//! 40 bytes (the largest encapsulation) longer than the input; counters
//! only grow.
#![no_main]

use std::cell::RefCell;
use std::path::Path;
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use mplb::config::Config;
use mplb::control::{BackendIds, build_forwarding, datapath_tables};
use mplb::datapath::counters::Counters;
use mplb::datapath::flow_table::FlowCounters;
use mplb::datapath::forwarding::Forwarding;
use mplb::datapath::frame::TestFrame;
use mplb::datapath::process::{Datapath, Verdict};
use mplb::datapath::token_table::TokenTable;
use mplb::wire::parse::parse_frame;

/// Two ports (the capture router's wifi and cell sides), so the real captures
/// hit the VIPs; see tests/data/README.md for the addresses.
const CONFIG: &str = r#"
[dpdk]
eal_args = []
[workers]
lcores = [1]

[[port]]
name = "wifi"
device = "net_null0"
ipv4 = ["198.18.2.1", "198.18.0.1"]
ipv6 = ["fd00:18:2::1", "fd00:18::1"]

[[port]]
name = "cell"
device = "net_null1"
ipv4 = ["198.18.3.1"]
ipv6 = ["fd00:18:3::1"]
gateway_mac = "02:00:00:00:03:fe"

[[vip]]
name = "web4-dsr"
address = "198.18.0.10"
port = 80
table_size = 251
  [[vip.backend]]
  name = "a"
  address = "198.18.1.11"
  mac = "02:00:00:00:01:11"
  [[vip.backend]]
  name = "b"
  address = "198.18.1.12"
  mac = "02:00:00:00:01:12"
  weight = 2
  [[vip.backend]]
  name = "c"
  address = "198.18.1.13"
  mac = "02:00:00:00:01:13"
  state = "draining"

[[vip]]
name = "web6-ipip"
address = "fd00:18::10"
port = 80
forwarding = "ipip"
table_size = 251
  [[vip.backend]]
  name = "a6"
  address = "fd00:18:1::11"
  mac = "02:00:00:00:01:11"
  [[vip.backend]]
  name = "b6"
  address = "fd00:18:1::12"

[[vip]]
name = "web4-ipip-tracked"
address = "198.18.0.11"
port = 80
forwarding = "ipip"
mptcp_tracking = true
table_size = 251
  [[vip.backend]]
  name = "a"
  address = "198.18.1.11"
  mac = "02:00:00:00:01:11"
  [[vip.backend]]
  name = "d"
  address = "198.18.9.14"

[[vip]]
name = "web6-dsr"
address = "fd00:18::11"
port = 443
table_size = 251
token_routing = false
  [[vip.backend]]
  name = "a6"
  address = "fd00:18:1::11"
  mac = "02:00:00:00:01:11"

[[vip]]
name = "dns4"
address = "198.18.0.10"
port = 53
protocol = "udp"
table_size = 251
  [[vip.backend]]
  name = "b"
  address = "198.18.1.12"
  mac = "02:00:00:00:01:12"

[flow_table]
capacity = 256
untrusted_quota_pct = 25

[token_table]
capacity = 64
ttl_secs = 60
"#;

const PORT_MACS: [[u8; 6]; 2] = [[2, 0, 0, 0, 2, 1], [2, 0, 0, 0, 3, 1]];
const MAX_FRAMES: usize = 32;
/// The largest encapsulation: an outer IPv6 header.
const MAX_GROWTH: usize = 40;

struct State {
    fwd: Forwarding,
    dp: Datapath,
    now: u64,
    frames: Vec<TestFrame>,
    verdicts: Vec<Verdict>,
    inputs: Vec<(usize, usize)>,
    counters: Counters,
    flow_counters: FlowCounters,
}

fn setup() -> State {
    let config = Config::parse(CONFIG, Path::new("fuzz.toml")).expect("fuzz config is valid");
    let fwd = build_forwarding(&config, &PORT_MACS, &mut BackendIds::default())
        .expect("fuzz config builds");
    let (flow, token_capacity, token_ttl) = datapath_tables(&config);
    let tokens = Arc::new(TokenTable::new(token_capacity, token_ttl).expect("token table"));
    let dp = Datapath::new(flow, tokens).expect("flow table");
    State {
        fwd,
        dp,
        // Not zero: the clock of a machine that has been up for a while.
        now: 1 << 40,
        frames: (0..MAX_FRAMES)
            .map(|_| TestFrame::new(&[0; 1600]))
            .collect(),
        verdicts: Vec::with_capacity(MAX_FRAMES),
        inputs: Vec::with_capacity(MAX_FRAMES),
        counters: Counters::default(),
        flow_counters: FlowCounters::default(),
    }
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(setup());
}

fn flow_counter_values(c: &FlowCounters) -> [u64; 8] {
    [
        c.inserts,
        c.hits,
        c.misses,
        c.evictions,
        c.timeouts,
        c.promotions,
        c.untrusted_drops,
        c.full_drops,
    ]
}

fn check_output(verdict: Verdict, input_len: usize, frame: &[u8]) {
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
}

fn run(state: &mut State, data: &[u8]) {
    let [control, step, rest @ ..] = data else {
        return;
    };
    let port = usize::from(control & 3);
    let burst = control & 4 != 0;
    let shift = u32::from(control >> 3);
    state.now = state
        .now
        .saturating_add((u64::from(*step) + 1) << shift.min(40));

    // Split the rest into frames.
    state.inputs.clear();
    let mut rest = rest;
    while state.inputs.len() < MAX_FRAMES {
        let [hi, lo, tail @ ..] = rest else { break };
        let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(tail.len());
        let (frame, tail) = tail.split_at(len);
        let i = state.inputs.len();
        state.frames[i].reset(frame);
        state.inputs.push((i, frame.len()));
        rest = tail;
    }
    let n = state.inputs.len();
    if n == 0 {
        return;
    }

    let State {
        fwd,
        dp,
        now,
        frames,
        verdicts,
        ..
    } = state;
    verdicts.clear();
    if burst {
        for frame in &mut frames[..n] {
            verdicts.push(dp.process(fwd, port, frame, *now));
        }
    } else {
        for frame in &mut frames[..n] {
            verdicts.push(dp.process(fwd, port, frame, *now));
        }
    }

    for &(i, input_len) in &state.inputs {
        check_output(state.verdicts[i], input_len, &state.frames[i]);
    }
    let counters = state.dp.counters;
    for ((name, new), old) in Counters::NAMES
        .iter()
        .zip(counters.values())
        .zip(state.counters.values())
    {
        assert!(new >= old, "counter {name} went from {old} to {new}");
    }
    state.counters = counters;
    let flow_counters = *state.dp.flow_table().counters();
    for (new, old) in flow_counter_values(&flow_counters)
        .into_iter()
        .zip(flow_counter_values(&state.flow_counters))
    {
        assert!(new >= old, "flow-table counter went from {old} to {new}");
    }
    state.flow_counters = flow_counters;
}

fuzz_target!(|data: &[u8]| {
    STATE.with(|s| run(&mut s.borrow_mut(), data));
});
