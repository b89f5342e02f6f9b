//! MPTCP token → backend table, shared by all workers.
//!
//! An MP_JOIN SYN sent to the VIP carries the server's token and may arrive on
//! any NIC queue, so the table is shared, lock-free and fixed-size. It is
//! lossy by design: a new token overwrites the oldest entry of its set, and
//! entries expire. A miss only means the join is routed by Maglev like any
//! SYN (and is likely reset by the wrong backend; the MPTCP connection itself
//! carries on over its other subflows). Tokens can collide, so a hit is a hint.
//!
//! # Layout
//!
//! Sets of 4 `AtomicU64` slots (32 bytes, aligned, so a set never straddles a
//! cache line), chosen by the token's low bits (tokens are SHA-256 output:
//! uniform, and not chosen by the client). A slot packs
//!
//! ```text
//! 63           32 31        16   15    14        0
//! | token (32)   | backend(16) | valid | time (15) |
//! ```
//!
//! `time` is the learn time in ticks of 2^32 ns (~4.29 s) modulo 2^15, so
//! ages are exact up to ~39 hours; the TTL may be at most 2^14 ticks
//! (~19.5 hours). An entry that nobody overwrote or swept for ~39 hours could
//! look fresh again; it still names a backend that was learnt for that token,
//! and [`TokenTable::sweep`] clears stale entries long before that.
//!
//! # Concurrency
//!
//! Every slot is one atomic word, written whole, so a reader sees either the
//! old or the new (token, backend, time) triple, never a mix. No other memory
//! is published through a slot, so `Relaxed` ordering suffices. Concurrent
//! learns may overwrite each other's new entries (lossy) or store the same
//! token twice in a set (lookup takes the youngest; the other ages out).
use std::sync::atomic::{AtomicU64, Ordering};

use super::maglev::BackendId;

/// Slots per set.
pub const WAYS: usize = 4;
const TICK_SHIFT: u32 = 32;
const TIME_BITS: u32 = 15;
const TIME_MASK: u64 = (1 << TIME_BITS) - 1;
const VALID: u64 = 1 << TIME_BITS;
/// Largest TTL in ticks: half the time field, so ages are unambiguous.
pub const MAX_TTL_TICKS: u64 = 1 << (TIME_BITS - 1);
/// Length of one time tick in nanoseconds (~4.29 s).
pub const TICK_NS: u64 = 1 << TICK_SHIFT;
// A learner whose clock is slightly ahead of the reader's (different cores)
// may store a time up to this many ticks in the future; it counts as fresh.
const FUTURE_SLACK: u64 = 2;

#[repr(align(32))]
struct Set([AtomicU64; WAYS]);

/// Why a table could not be constructed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenTableError {
    /// Capacity is not a power of two or is below [`WAYS`].
    BadCapacity(usize),
    /// The TTL is zero ticks or longer than [`MAX_TTL_TICKS`] ticks.
    BadTtl(u64),
}

impl std::fmt::Display for TokenTableError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenTableError::BadCapacity(c) => {
                write!(
                    f,
                    "token table capacity {c} is not a power of two >= {WAYS}"
                )
            }
            TokenTableError::BadTtl(ns) => write!(
                f,
                "token TTL {ns} ns is outside 1..={} ticks of {TICK_NS} ns",
                MAX_TTL_TICKS
            ),
        }
    }
}

impl std::error::Error for TokenTableError {}

/// The shared token table. `Sync`: share it by reference or `Arc`.
pub struct TokenTable {
    sets: Box<[Set]>,
    mask: usize,
    ttl_ticks: u64,
}

#[inline]
fn tick(now: u64) -> u64 {
    (now >> TICK_SHIFT) & TIME_MASK
}

#[inline]
fn pack(token: u32, backend: BackendId, t: u64) -> u64 {
    (u64::from(token) << 32) | (u64::from(backend.0) << 16) | VALID | t
}

impl TokenTable {
    /// Allocates a table of `capacity` entries (a power of two, at least
    /// [`WAYS`]) whose entries live `ttl_ns` nanoseconds after being learnt
    /// (rounded up to whole ticks of [`TICK_NS`]).
    pub fn new(capacity: usize, ttl_ns: u64) -> Result<Self, TokenTableError> {
        if !capacity.is_power_of_two() || capacity < WAYS {
            return Err(TokenTableError::BadCapacity(capacity));
        }
        let ttl_ticks = ttl_ns.div_ceil(TICK_NS);
        if ttl_ticks == 0 || ttl_ticks > MAX_TTL_TICKS {
            return Err(TokenTableError::BadTtl(ttl_ns));
        }
        let n = capacity / WAYS;
        let sets: Box<[Set]> = (0..n).map(|_| Set(Default::default())).collect();
        Ok(TokenTable {
            sets,
            mask: n - 1,
            ttl_ticks,
        })
    }

    /// Entries the table can hold.
    pub fn capacity(&self) -> usize {
        self.sets.len() * WAYS
    }

    // Age of a valid slot word in ticks, or None if it is stale. Times a
    // little in the future count as age 0.
    #[inline]
    fn fresh_age(&self, word: u64, now_tick: u64) -> Option<u64> {
        let age = now_tick.wrapping_sub(word & TIME_MASK) & TIME_MASK;
        if age <= self.ttl_ticks {
            Some(age)
        } else if age > TIME_MASK - FUTURE_SLACK {
            Some(0)
        } else {
            None
        }
    }

    /// Records that `token` belongs to `backend` (learnt from the third ACK).
    /// Updates the token's entry if present, else takes an empty or stale
    /// slot of its set, else overwrites the set's oldest entry.
    pub fn learn(&self, token: u32, backend: BackendId, now: u64) {
        let now_tick = tick(now);
        let word = pack(token, backend, now_tick);
        let Some(set) = self.sets.get(token as usize & self.mask) else {
            return;
        };
        // Victim preference: the token's own entry, then an empty or stale
        // slot, then the oldest live one.
        let mut victim = 0;
        let mut victim_score = 0u64;
        for (i, slot) in set.0.iter().enumerate() {
            let w = slot.load(Ordering::Relaxed);
            let score = if w & VALID == 0 {
                u64::MAX - 1
            } else if (w >> 32) as u32 == token {
                u64::MAX
            } else {
                // Stale entries rank with empty slots.
                self.fresh_age(w, now_tick).unwrap_or(u64::MAX - 1)
            };
            if score == u64::MAX {
                slot.store(word, Ordering::Relaxed);
                return;
            }
            if i == 0 || score > victim_score {
                victim = i;
                victim_score = score;
            }
        }
        if let Some(slot) = set.0.get(victim) {
            slot.store(word, Ordering::Relaxed);
        }
    }

    /// The backend learnt for `token`, if a fresh entry exists (the youngest
    /// one, should a race have stored it twice).
    #[inline]
    pub fn lookup(&self, token: u32, now: u64) -> Option<BackendId> {
        let now_tick = tick(now);
        let set = self.sets.get(token as usize & self.mask)?;
        let mut best: Option<(u64, u16)> = None;
        for slot in &set.0 {
            let w = slot.load(Ordering::Relaxed);
            if w & VALID == 0 || (w >> 32) as u32 != token {
                continue;
            }
            if let Some(age) = self.fresh_age(w, now_tick) {
                if best.is_none_or(|(a, _)| age < a) {
                    best = Some((age, (w >> 16) as u16));
                }
            }
        }
        best.map(|(_, b)| BackendId(b))
    }

    /// Forgets `token` (e.g. when its backend is removed). Returns whether an
    /// entry was cleared.
    pub fn forget(&self, token: u32) -> bool {
        let mut cleared = false;
        if let Some(set) = self.sets.get(token as usize & self.mask) {
            for slot in &set.0 {
                let w = slot.load(Ordering::Relaxed);
                if w & VALID != 0 && (w >> 32) as u32 == token {
                    // Only clear the word we saw, not a concurrent re-learn.
                    cleared |= slot
                        .compare_exchange(w, 0, Ordering::Relaxed, Ordering::Relaxed)
                        .is_ok();
                }
            }
        }
        cleared
    }

    /// Clears stale entries in up to `budget` sets, starting at set `start`
    /// (the caller keeps the cursor, e.g. the control thread; the table has no
    /// mutable state besides its slots). Returns the next start and the
    /// number of entries cleared.
    pub fn sweep(&self, now: u64, start: usize, budget: usize) -> (usize, usize) {
        let now_tick = tick(now);
        let mut cleared = 0;
        let mut idx = start & self.mask;
        for _ in 0..budget.min(self.sets.len()) {
            if let Some(set) = self.sets.get(idx) {
                for slot in &set.0 {
                    let w = slot.load(Ordering::Relaxed);
                    if w & VALID != 0
                        && self.fresh_age(w, now_tick).is_none()
                        && slot
                            .compare_exchange(w, 0, Ordering::Relaxed, Ordering::Relaxed)
                            .is_ok()
                    {
                        cleared += 1;
                    }
                }
            }
            idx = (idx + 1) & self.mask;
        }
        (idx, cleared)
    }

    /// Memory held by the table, including its own struct.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + std::mem::size_of_val(&*self.sets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: u64 = 600 * 1_000_000_000;

    fn ttl_ticks() -> u64 {
        TTL.div_ceil(TICK_NS)
    }

    #[test]
    fn is_sync_and_compact() {
        fn assert_sync<T: Sync + Send>() {}
        assert_sync::<TokenTable>();
        assert_eq!(std::mem::size_of::<Set>(), 32);
        let t = TokenTable::new(1 << 16, TTL).unwrap();
        assert_eq!(t.capacity(), 1 << 16);
        assert!(t.memory_bytes() <= 8 * (1 << 16) + 64);
    }

    #[test]
    fn config_is_validated() {
        assert_eq!(
            TokenTable::new(6, TTL).err(),
            Some(TokenTableError::BadCapacity(6))
        );
        assert!(TokenTable::new(2, TTL).is_err());
        assert!(TokenTable::new(64, 0).is_err());
        assert!(TokenTable::new(64, (MAX_TTL_TICKS + 1) * TICK_NS).is_err());
        assert!(TokenTable::new(64, MAX_TTL_TICKS * TICK_NS).is_ok());
    }

    #[test]
    fn learn_lookup_update_forget() {
        let t = TokenTable::new(1024, TTL).unwrap();
        assert_eq!(t.lookup(0xdead_beef, 0), None);
        t.learn(0xdead_beef, BackendId(3), 0);
        t.learn(0, BackendId(0), 0); // token 0 / backend 0 is a valid entry
        assert_eq!(t.lookup(0xdead_beef, 1), Some(BackendId(3)));
        assert_eq!(t.lookup(0, 1), Some(BackendId(0)));
        // Same low bits, other token: a miss, not a wrong answer.
        assert_eq!(t.lookup(0xdead_beef ^ 0x8000_0000, 1), None);
        t.learn(0xdead_beef, BackendId(4), 2);
        assert_eq!(t.lookup(0xdead_beef, 3), Some(BackendId(4)));
        assert!(t.forget(0xdead_beef));
        assert!(!t.forget(0xdead_beef));
        assert_eq!(t.lookup(0xdead_beef, 3), None);
    }

    #[test]
    fn entries_expire() {
        let t = TokenTable::new(64, TTL).unwrap();
        let learnt = 5 * TICK_NS;
        t.learn(42, BackendId(9), learnt);
        let last_fresh = learnt + ttl_ticks() * TICK_NS;
        assert_eq!(t.lookup(42, last_fresh), Some(BackendId(9)));
        assert_eq!(t.lookup(42, last_fresh + TICK_NS), None);
        // A learner a tick ahead of the reader (clock skew between cores).
        t.learn(43, BackendId(1), learnt + TICK_NS);
        assert_eq!(t.lookup(43, learnt), Some(BackendId(1)));
        // Sweeping clears the stale entry and keeps the fresh one.
        let (_, cleared) = t.sweep(last_fresh + TICK_NS, 0, 16);
        assert_eq!(cleared, 1);
        assert_eq!(t.lookup(43, last_fresh), Some(BackendId(1)));
    }

    #[test]
    fn full_set_overwrites_oldest_and_prefers_stale() {
        // Capacity 4 = one set: every token collides.
        let t = TokenTable::new(4, TTL).unwrap();
        for i in 0..4u32 {
            t.learn(100 + i, BackendId(i as u16), u64::from(i) * TICK_NS);
        }
        for i in 0..4u32 {
            assert_eq!(t.lookup(100 + i, 4 * TICK_NS), Some(BackendId(i as u16)));
        }
        t.learn(200, BackendId(20), 4 * TICK_NS);
        assert_eq!(t.lookup(100, 4 * TICK_NS), None, "oldest overwritten");
        for i in 1..4u32 {
            assert_eq!(t.lookup(100 + i, 4 * TICK_NS), Some(BackendId(i as u16)));
        }
        assert_eq!(t.lookup(200, 4 * TICK_NS), Some(BackendId(20)));
        // Updating an existing token does not evict anyone.
        t.learn(102, BackendId(22), 5 * TICK_NS);
        for (tok, b) in [(101, 1), (102, 22), (103, 3), (200, 20)] {
            assert_eq!(t.lookup(tok, 5 * TICK_NS), Some(BackendId(b)));
        }
        // Refresh three entries much later; token 101 is stale by then, and
        // a new token takes its slot while every fresh entry survives.
        let later = (ttl_ticks() + 3) * TICK_NS;
        for (tok, b) in [(102, 22), (103, 3), (200, 20)] {
            t.learn(tok, BackendId(b), later - 2 * TICK_NS);
        }
        t.learn(300, BackendId(30), later);
        assert_eq!(t.lookup(300, later), Some(BackendId(30)));
        for (tok, b) in [(102, 22), (103, 3), (200, 20)] {
            assert_eq!(t.lookup(tok, later), Some(BackendId(b)));
        }
    }

    /// The next value of a xorshift32 sequence.
    fn xorshift(x: &mut u32) -> u32 {
        *x ^= *x << 13;
        *x ^= *x >> 17;
        *x ^= *x << 5;
        *x
    }

    #[test]
    fn concurrent_learn_lookup_never_invents_a_backend() {
        // A tiny table (4 sets) under heavy overwriting from several threads.
        // Token t is only ever learnt with backends (t % 1000) or
        // (t % 1000) + 1000, so any other answer is a torn or misplaced read.
        let t = TokenTable::new(16, TTL).unwrap();
        let allowed = |tok: u32, b: BackendId| {
            let base = (tok % 1000) as u16;
            b.0 == base || b.0 == base + 1000
        };
        let hits = std::sync::atomic::AtomicU64::new(0);
        std::thread::scope(|s| {
            for w in 0..2u32 {
                let t = &t;
                s.spawn(move || {
                    let mut x = 0x9e37_79b9u32.wrapping_mul(w + 1);
                    for i in 0..200_000u32 {
                        let tok = xorshift(&mut x) % 64;
                        let b = (tok % 1000) as u16 + if i % 2 == 0 { 0 } else { 1000 };
                        t.learn(tok, BackendId(b), u64::from(i % 3) * TICK_NS);
                    }
                });
            }
            for r in 0..2u32 {
                let (t, hits) = (&t, &hits);
                s.spawn(move || {
                    let mut x = 0x85eb_ca6bu32.wrapping_mul(r + 1);
                    for _ in 0..200_000u32 {
                        let tok = xorshift(&mut x) % 64;
                        if let Some(b) = t.lookup(tok, TICK_NS) {
                            assert!(allowed(tok, b), "token {tok} gave {b:?}");
                            hits.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        assert!(hits.load(Ordering::Relaxed) > 0);
        // Tokens 64.. were never learnt.
        for tok in 64..1000 {
            assert_eq!(t.lookup(tok, TICK_NS), None);
        }
    }
}

#[cfg(test)]
#[path = "token_table_concurrency.rs"]
mod concurrency;
