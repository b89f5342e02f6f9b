//! The shared token table under concurrent learn and lookup from several
//! workers (threads here), bounded in count, deterministic in outcome.
//!
//! What the design promises (module doc of `token_table`), and what these
//! tests hold it to:
//! * No torn entries: a slot is one atomic word, so a lookup returns nothing
//!   or a backend that some learn wrote for that very token.
//! * No lost updates between workers that do not share a set: a token learnt
//!   on one worker is found by a lookup on any other worker that runs after it
//!   (here: after a barrier or a join), as long as no more than `WAYS` tokens
//!   of its set were learnt.
//! * Learns racing into the same set may be lost (one store overwrites
//!   another's new entry) or stored twice; that is the stated lossiness, so
//!   it is not checked beyond "nothing torn, nothing invented".

use std::sync::{Arc, Barrier};
use std::thread;

use proptest::prelude::*;

use super::{BackendId, TokenTable, WAYS};

const NOW: u64 = 1_000_000_000;
const TTL: u64 = 60_000_000_000;

/// The backend worker `w` learns for `token`: the token's own 12-bit
/// fingerprint and the writer in the top 4 bits, so a lookup can tell a
/// backend that belongs to the token from one that belongs to another.
fn backend_for(token: u32, w: usize) -> BackendId {
    let fp = (token.wrapping_mul(0x9E37_79B1) >> 20) as u16 & 0x0fff;
    BackendId(fp | ((w as u16 & 0xf) << 12))
}

/// `Err` unless `found` is nothing or a backend some writer learnt for `token`.
fn plausible(token: u32, found: Option<BackendId>, writers: usize) -> Result<(), String> {
    match found {
        None => Ok(()),
        Some(b) if (0..writers).any(|w| backend_for(token, w) == b) => Ok(()),
        Some(b) => Err(format!(
            "token {token:#x}: backend {} was never learnt for it",
            b.0
        )),
    }
}

#[test]
fn workers_learning_and_looking_up_at_once_see_no_torn_entry() {
    const THREADS: usize = 4;
    const ROUNDS: u32 = 20_000;
    // A small table, so that threads collide in sets all the time.
    let table = Arc::new(TokenTable::new(64, TTL).expect("table"));
    let start = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|w| {
            let (table, start) = (Arc::clone(&table), Arc::clone(&start));
            thread::spawn(move || {
                start.wait();
                let mut x = 0x2545_f491_u32.wrapping_add(w as u32 * 7919);
                for i in 0..ROUNDS {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    // 256 distinct tokens over 16 sets of 4: heavy contention
                    let token = (x & 0xff).wrapping_mul(0x0101_0101) | 1;
                    if i % 3 == 0 {
                        table.learn(token, backend_for(token, w), NOW);
                    }
                    plausible(token, table.lookup(token, NOW), THREADS)?;
                }
                Ok::<(), String>(())
            })
        })
        .collect();
    for h in handles {
        h.join().expect("thread").expect("no torn entry");
    }
}

#[test]
fn a_token_learnt_on_one_worker_is_found_by_every_other() {
    const THREADS: usize = 4;
    let capacity = 1024;
    let sets = capacity / WAYS;
    let table = Arc::new(TokenTable::new(capacity, TTL).expect("table"));
    let learnt = Arc::new(Barrier::new(THREADS));
    // Worker w learns WAYS tokens in each set s with s % THREADS == w (no set
    // shared between learners), then, after all have learnt, looks up every
    // other worker's tokens: all are there, with the learner's backend.
    let tokens = move |w: usize| {
        (0..sets)
            .filter(move |s| s % THREADS == w)
            .flat_map(move |s| (0..WAYS as u32).map(move |k| (k << 20) | s as u32))
    };
    let handles: Vec<_> = (0..THREADS)
        .map(|w| {
            let (table, learnt) = (Arc::clone(&table), Arc::clone(&learnt));
            thread::spawn(move || {
                for t in tokens(w) {
                    table.learn(t, backend_for(t, w), NOW);
                }
                learnt.wait();
                let mut found = 0;
                for other in (0..THREADS).filter(|&o| o != w) {
                    for t in tokens(other) {
                        assert_eq!(table.lookup(t, NOW), Some(backend_for(t, other)), "{t:#x}");
                        found += 1;
                    }
                }
                found
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().expect("thread"), capacity - capacity / THREADS);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Any interleaving of learns of any tokens (from a small pool, so sets
    /// are shared) by several workers: every lookup during and after is
    /// nothing or a backend learnt for that token; after the workers stop, a
    /// token of a set that only one worker learnt into, and that got at most
    /// WAYS distinct tokens, is found with that worker's backend (a set two
    /// workers raced into may have lost an entry: the stated lossiness).
    #[test]
    fn concurrent_learns_never_tear_and_lose_only_what_they_race_for(
        ops in prop::collection::vec(prop::collection::vec(0u32..48, 1..200), 2..5),
    ) {
        let table = Arc::new(TokenTable::new(32, TTL).expect("table"));
        let writers = ops.len();
        let token = |k: u32| k.wrapping_mul(0x0100_0001) ^ (k << 8);
        let start = Arc::new(Barrier::new(writers));
        let handles: Vec<_> = ops
            .iter()
            .cloned()
            .enumerate()
            .map(|(w, mine)| {
                let (table, start) = (Arc::clone(&table), Arc::clone(&start));
                thread::spawn(move || {
                    start.wait();
                    for k in mine {
                        let t = token(k);
                        table.learn(t, backend_for(t, w), NOW);
                        plausible(t, table.lookup(t, NOW), writers)?;
                    }
                    Ok::<(), String>(())
                })
            })
            .collect();
        for h in handles {
            h.join().expect("thread").map_err(TestCaseError::fail)?;
        }
        use std::collections::{BTreeMap, BTreeSet};
        let set_of = |t: u32| t as usize % (32 / WAYS);
        // per set: its distinct tokens, and the workers that learnt into it
        let mut per_set = BTreeMap::<usize, (BTreeSet<u32>, BTreeSet<usize>)>::new();
        for (w, mine) in ops.iter().enumerate() {
            for &k in mine {
                let t = token(k);
                let e = per_set.entry(set_of(t)).or_default();
                e.0.insert(t);
                e.1.insert(w);
            }
        }
        for (tokens, by) in per_set.values() {
            for &t in tokens {
                let found = table.lookup(t, NOW);
                plausible(t, found, writers).map_err(TestCaseError::fail)?;
                if by.len() == 1 && tokens.len() <= WAYS {
                    let w = by.iter().next().copied().unwrap_or(0);
                    prop_assert_eq!(found, Some(backend_for(t, w)), "token {:#x}", t);
                }
            }
        }
    }
}
