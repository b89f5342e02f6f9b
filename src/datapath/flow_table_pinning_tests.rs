//! Issue 13, item 1: flows that start together are all pinned.

use super::super::hash::{PROTO_TCP, flow_hash};
use super::*;

const MS: u64 = 1_000_000;
const US: u64 = 1_000;

fn key(i: u32) -> FlowKey {
    let [a, b, c, d] = i.to_be_bytes();
    FlowKey::from_v4([10, b, c, d], [192, 0, 2, a], 40_000, 443, PROTO_TCP)
}

/// What a worker does with a non-SYN segment of a plain flow: lookup,
/// else insert with the backend Maglev picks now.
fn packet(t: &mut FlowTable, k: &FlowKey, now: u64, maglev: BackendId) -> Option<BackendId> {
    let h = flow_hash(k);
    if let Some(b) = t.lookup(k, h, now) {
        return Some(b);
    }
    t.insert(k, h, maglev, FlowClass::Plain, now);
    None
}

/// `flows` plain flows sent like mplb-gen sends them: round-robin, one
/// packet per flow per round, 5 µs apart (200 kpps). Round 0 is the SYN
/// (no state), round 1 the third ACK (every first packet arrives before
/// any second one), then data. Maglev's answer changes every round (a
/// reload each round). Returns the first round from which every flow
/// hits, and checks that a flow that hit keeps hitting with the same
/// backend (it is never pushed out by another legitimate flow).
fn rounds_until_all_pinned(capacity: usize, flows: u32, rounds: u32) -> Option<u32> {
    let mut t = FlowTable::new(FlowTableConfig::with_capacity(capacity)).unwrap();
    let keys: Vec<FlowKey> = (0..flows).map(key).collect();
    let mut pinned: Vec<Option<BackendId>> = vec![None; keys.len()];
    let mut all_since = None;
    for r in 1..rounds {
        let mut missed = 0;
        for (i, k) in keys.iter().enumerate() {
            let now = u64::from(r) * 100 * MS + i as u64 * 5 * US;
            match packet(&mut t, k, now, BackendId(r as u16)) {
                Some(b) => {
                    if let Some(p) = pinned[i] {
                        assert_eq!(b, p, "flow {i} moved in round {r}");
                    }
                    pinned[i] = Some(b);
                }
                None => {
                    assert_eq!(pinned[i], None, "established flow {i} lost in round {r}");
                    missed += 1;
                }
            }
        }
        if missed == 0 {
            all_since.get_or_insert(r);
        } else {
            all_since = None;
        }
    }
    all_since
}

#[test]
fn a_burst_of_new_flows_at_30_percent_is_all_pinned() {
    // 20 000 flows in 65 536 entries; the untrusted quota (16 384) is
    // smaller than the burst.
    let since = rounds_until_all_pinned(65_536, 20_000, 12);
    assert!(since.is_some_and(|r| r <= 4), "{since:?}");
}

#[test]
fn a_burst_of_new_flows_at_design_load_is_all_pinned() {
    // 62.5 %: the load the capacity is sized for (bench/README.md).
    let since = rounds_until_all_pinned(65_536, 40_960, 12);
    assert!(since.is_some_and(|r| r <= 6), "{since:?}");
}
