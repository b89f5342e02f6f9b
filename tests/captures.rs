//! The real Linux captures in tests/data (see its README for frame numbers,
//! keys and tokens) through the datapath core, client→VIP frames only, in
//! order — what a DSR load balancer sees.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;

use mplb::datapath::forwarding::Forwarding;
use mplb::datapath::frame::TestFrame;
use mplb::datapath::maglev::BackendId;
use mplb::datapath::process::Datapath;
use mplb::datapath::verdict::Verdict;
use mplb::testing::config::{self, Backend, Vip};
use mplb::testing::{self, Tables};
use mplb::wire::parse_frame;
use pcap_file::pcap::PcapReader;

const PORT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x10];
const S: u64 = 1_000_000_000;

/// Four backends per VIP; `draining` names backends (of both VIPs, by
/// index) set to draining.
fn config(token_routing: bool, draining: &[usize]) -> Forwarding {
    let mut text = config::null_port("");
    for (vip, fam) in [("198.18.0.10", 4), ("fd00:18::10", 6)] {
        let backends = (0..4).map(|i| {
            let addr = if fam == 4 {
                format!("198.18.1.{}", 11 + i)
            } else {
                format!("fd00:18:1::{}", 11 + i)
            };
            let state = if draining.contains(&i) {
                "draining"
            } else {
                "active"
            };
            Backend::new(format!("be{fam}{i}"), addr)
                .mac(format!("02:00:00:00:0{fam}:1{i}"))
                .state(state)
        });
        let v = Vip::new(format!("web{fam}"), vip, 80)
            .option("token_routing", token_routing)
            .option("table_size", 1021)
            .backends(backends);
        text += &v.to_string();
    }
    testing::forwarding(&testing::parse(&text), &[PORT_MAC])
}

fn datapath() -> Datapath {
    Tables::small(1024).datapath()
}

/// Client→VIP frames of a capture, in order, with their 1-based frame
/// number in the file.
fn client_frames(name: &str) -> Vec<(usize, Vec<u8>)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut r = PcapReader::new(file).expect("pcap");
    let vips: [IpAddr; 2] = [
        "198.18.0.10".parse().unwrap(),
        "fd00:18::10".parse().unwrap(),
    ];
    let mut out = Vec::new();
    let mut n = 0;
    while let Some(p) = r.next_packet() {
        let p = p.expect("packet");
        n += 1;
        let ip = parse_frame(&p.data).expect("parses").ip.expect("ip");
        if vips.contains(&ip.dst_addr()) {
            out.push((n, p.data.into_owned()));
        }
    }
    assert!(!out.is_empty(), "{name}");
    out
}

/// (client address, client port) of a frame.
fn subflow(f: &[u8]) -> (IpAddr, u16) {
    let p = parse_frame(f).unwrap();
    (p.ip.unwrap().src_addr(), p.ports().unwrap().0)
}

struct Run {
    /// Per client frame: (frame number, subflow, backend).
    sent: Vec<(usize, (IpAddr, u16), BackendId)>,
}

impl Run {
    fn backend_of(fwd: &Forwarding, out: &[u8]) -> BackendId {
        fwd.backends
            .iter()
            .flatten()
            .find(|b| b.mac.is_some_and(|m| out.get(..6) == Some(&m[..])))
            .map(|b| b.id)
            .expect("a backend's MAC")
    }

    /// Feeds `frames`, frame number `n` with snapshot `pick(n)`; `check`
    /// runs after each frame. Frames are 10 ms apart from t = 10 s.
    fn feed<'f>(
        dp: &mut Datapath,
        frames: &[(usize, Vec<u8>)],
        pick: impl Fn(usize) -> &'f Forwarding,
        mut check: impl FnMut(usize, &Datapath),
    ) -> Run {
        let mut sent = Vec::new();
        let mut now = 10 * S;
        for (n, bytes) in frames {
            let fwd = pick(*n);
            let mut f = TestFrame::new(bytes);
            let v = dp.process(fwd, 0, &mut f, now);
            assert_eq!(v, Verdict::Forward, "frame {n}");
            // L2 DSR: only the MACs change.
            assert_eq!(&f[12..], &bytes[12..], "frame {n}");
            sent.push((*n, subflow(bytes), Run::backend_of(fwd, &f)));
            check(*n, dp);
            now += S / 100;
        }
        Run { sent }
    }

    /// Every subflow went to exactly one backend; returns them.
    fn per_subflow(&self) -> HashMap<(IpAddr, u16), BackendId> {
        let mut m = HashMap::new();
        for (n, sf, b) in &self.sent {
            let first = *m.entry(*sf).or_insert(*b);
            assert_eq!(first, *b, "frame {n} of {sf:?} changed backend");
        }
        m
    }
}

/// The real connections' SYN creates nothing; their third ACK teaches the
/// token and, with `mptcp_tracking` (the default), pins the initial subflow:
/// with its backend draining from the next frame on (Maglev then sends new
/// flows elsewhere), every later segment still reaches it.
#[test]
fn the_syn_is_stateless_and_the_third_ack_tracks_the_connection() {
    for (name, token) in [
        ("mptcp_v4.pcap", 0x71b0_d4bfu32),
        ("mptcp_v6.pcap", 0x773d_50b6),
    ] {
        let frames = client_frames(name);
        let fwd = config(true, &[]);
        let mut probe = datapath();
        let first = Run::feed(&mut probe, &frames[..1], |_| &fwd, |_, _| {}).sent[0].2;
        let idx = fwd
            .vips
            .iter()
            .find_map(|v| v.backends.iter().position(|b| *b == first))
            .unwrap();
        let drained = config(true, &[idx]);
        let mut dp = datapath();
        let run = Run::feed(
            &mut dp,
            &frames,
            |n| if n > 3 { &drained } else { &fwd },
            |n, dp| {
                match n {
                    // The MP_CAPABLE SYN: no state, nothing learnt.
                    1 => {
                        assert_eq!(dp.flow_table().len(), 0, "{name}");
                        assert_eq!(dp.counters.mptcp_syn, 1, "{name}");
                        assert_eq!(dp.counters.tokens_learnt, 0, "{name}");
                    }
                    // The third ACK (both keys): learnt and tracked.
                    3 => {
                        assert_eq!(dp.counters.tokens_learnt, 1, "{name}");
                        assert_eq!(dp.flow_table().len(), 1, "{name}");
                    }
                    _ => {}
                }
            },
        );
        // per_subflow: every frame of the subflow reached one backend.
        let subflows = run.per_subflow();
        assert_eq!(subflows.len(), 1, "{name}");
        assert_eq!(*subflows.values().next().unwrap(), first, "{name}");
        assert!(run.sent.len() > 4, "{name}: frames after the drain");
        assert_eq!(
            dp.token_table().lookup(token, 11 * S),
            Some(first),
            "{name}: token → the connection's backend"
        );
        assert_eq!(dp.counters.flow_inserted, 1, "{name}");
        assert!(dp.counters.flow_hit >= 1, "{name}");
    }
}

/// mptcp_join_v4.pcap with the initial subflow's backend draining while the
/// join SYN (frame 12) arrives, so that Maglev cannot pick it for the join:
/// only the token can.
fn join_run(token_routing: bool) -> (Datapath, Run, BackendId) {
    let frames = client_frames("mptcp_join_v4.pcap");
    let fwd = config(token_routing, &[]);
    // Which backend the initial subflow gets (Maglev, all active).
    let mut probe = datapath();
    let first = Run::feed(&mut probe, &frames[..1], |_| &fwd, |_, _| {}).sent[0].2;
    let idx = fwd.vips[0]
        .backends
        .iter()
        .position(|b| *b == first)
        .unwrap();
    let drained = config(token_routing, &[idx]);
    let mut dp = datapath();
    let run = Run::feed(
        &mut dp,
        &frames,
        |n| if n == 12 { &drained } else { &fwd },
        |n, dp| {
            if n == 3 {
                assert_eq!(dp.counters.tokens_learnt, 1);
                assert_eq!(dp.token_table().lookup(0xa119_08e9, 11 * S), Some(first));
            }
        },
    );
    (dp, run, first)
}

#[test]
fn join_follows_its_token_to_the_initial_backend() {
    let (dp, run, first) = join_run(true);
    let subflows = run.per_subflow();
    assert_eq!(subflows.len(), 2, "initial subflow and join");
    let initial: (IpAddr, u16) = ("198.18.2.2".parse().unwrap(), 40002);
    assert_eq!(subflows[&initial], first);
    let join = subflows
        .iter()
        .find(|(sf, _)| **sf != initial)
        .map(|(sf, b)| (*sf, *b))
        .unwrap();
    assert_eq!(join.0.0, "198.18.3.2".parse::<IpAddr>().unwrap());
    assert_eq!(
        join.1, first,
        "the join reached the initial subflow's backend"
    );
    assert_eq!(dp.counters.join_token_hit, 1);
    assert_eq!(dp.counters.join_token_miss, 0);
    // The tracked initial subflow and the join (a known token) created
    // state; the join's option-less last ACK (frame 36) was among the hits.
    assert_eq!(dp.counters.flow_inserted, 2);
    assert_eq!(dp.flow_table().len(), 2);
    assert!(run.sent.iter().any(|(n, sf, _)| *n == 36 && *sf == join.0));
    assert!(dp.counters.flow_hit >= 4);
}

#[test]
fn without_token_routing_the_join_goes_by_maglev() {
    let (dp, run, first) = join_run(false);
    let initial: (IpAddr, u16) = ("198.18.2.2".parse().unwrap(), 40002);
    let (_, join_sf, join_backend) = *run.sent.iter().find(|(n, ..)| *n == 12).unwrap();
    assert_ne!(join_sf, initial);
    assert_ne!(
        join_backend, first,
        "Maglev, which excludes the draining backend"
    );
    assert_eq!(dp.counters.join_token_miss, 1);
    assert_eq!(dp.counters.join_token_hit, 0);
    assert!(
        run.sent
            .iter()
            .filter(|(_, sf, _)| *sf == initial)
            .all(|(_, _, b)| *b == first)
    );
    // No known token: the join SYN created no state; the tracked initial
    // subflow did (its later segments are hits), and so did the join's
    // option-less TIME_WAIT ACK (frame 36, plain TCP to the LB).
    assert_eq!(dp.counters.flow_inserted, 2);
    assert!(dp.counters.flow_hit >= 1);
}

#[test]
fn plain_tcp_and_fallback_are_pinned() {
    for (name, connections, mptcp_syns) in [
        ("tcp_v4.pcap", 2, 0),
        ("tcp_v6.pcap", 2, 0),
        ("mptcp_fallback_v4.pcap", 1, 1),
    ] {
        let frames = client_frames(name);
        let fwd = config(true, &[]);
        let mut dp = datapath();
        let run = Run::feed(&mut dp, &frames, |_| &fwd, |_, _| {});
        let subflows = run.per_subflow();
        assert_eq!(subflows.len(), connections, "{name}");
        let c = dp.counters;
        assert_eq!(c.plain_syn + c.mptcp_syn, connections as u64, "{name}");
        assert_eq!(c.mptcp_syn, mptcp_syns, "{name}");
        assert_eq!(
            c.flow_inserted, connections as u64,
            "{name}: one entry per connection"
        );
        assert_eq!(dp.flow_table().len(), connections, "{name}");
        // Every non-SYN frame after the first one of each connection hit.
        let non_syn = frames.len() as u64 - connections as u64;
        assert_eq!(c.flow_hit, non_syn - connections as u64, "{name}");

        // Pinned: with its backend draining (out of Maglev), a
        // connection's next packet still goes there.
        let now = 10 * S + frames.len() as u64 * S / 100;
        for (sf, b) in &subflows {
            let vip = fwd.vips.iter().find(|v| v.backends.contains(b)).unwrap();
            let own = vip.backends.iter().position(|x| x == b).unwrap();
            let drained = config(true, &[own]);
            let (_, last) = frames
                .iter()
                .rev()
                .find(|(_, f)| subflow(f) == *sf)
                .unwrap();
            let mut f = TestFrame::new(last);
            assert_eq!(dp.process(&drained, 0, &mut f, now), Verdict::Forward);
            assert_eq!(Run::backend_of(&drained, &f), *b, "{name} {sf:?}");
        }
    }
}
