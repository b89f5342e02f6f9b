//! Weighted Maglev lookup table for one VIP.
//!
//! # Compatibility contract
//!
//! Independent LB instances built from the same backend set must produce the
//! same table, so that a flow lands on the same backend whichever instance ECMP
//! picks. The table is a function of (size, {(id, key, weight)}) only:
//!
//! 1. Backends with weight 0 are left out. The rest are sorted by key bytes
//!    (lexicographic; keys are unique), so the input order does not matter.
//! 2. Backend `i`'s permutation of `0..M` is `offset_i + j * skip_i (mod M)`,
//!    with `offset_i = xxh3_64(key_i, OFFSET_SEED) mod M` and
//!    `skip_i = xxh3_64(key_i, SKIP_SEED) mod (M - 1) + 1` (`M` prime, so every
//!    permutation visits every slot).
//! 3. Weighted fill: let `W` be the largest weight. In each round, in sorted
//!    order, backend `i` adds its weight to a credit counter and, while the
//!    credit is at least `W`, takes the next unclaimed slot of its permutation
//!    and pays `W`. Rounds repeat until all `M` slots are claimed. The heaviest
//!    backend takes one slot per round, the others `w_i / W` of a slot, so the
//!    shares follow the weights to within a slot or two; with equal weights this
//!    is exactly the round-robin fill of the Maglev paper.
//! 4. Lookup of a 64-bit flow hash `h`: slot `(h * M) >> 64` (a 128-bit
//!    multiply-shift, which uses the high bits of `h`; the flow table uses the
//!    low bits, so the two stay independent).
//!
//! The table is built once by the control plane and read by the workers;
//! lookups do not allocate and cost one multiply and one load.
use std::sync::Arc;

use super::hash::hash_bytes;

/// Seed for a backend's permutation offset (ASCII "mplbmgof").
pub const OFFSET_SEED: u64 = 0x6d70_6c62_6d67_6f66;
/// Seed for a backend's permutation skip (ASCII "mplbmgsk").
pub const SKIP_SEED: u64 = 0x6d70_6c62_6d67_736b;

/// Default table size: prime, more than 100 entries per backend up to ~650
/// backends, and the size used by the Maglev paper.
pub const DEFAULT_TABLE_SIZE: u32 = 65_537;
/// Largest accepted table size (keeps the build bounded: 2 bytes per entry).
pub const MAX_TABLE_SIZE: u32 = 1 << 26;

/// Stable identity of a backend, chosen by the control plane. Stored in the
/// table, the flow table and the token table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BackendId(pub u16);

/// One backend as input to [`MaglevTable::build`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaglevBackend {
    /// Identity returned by lookups.
    pub id: BackendId,
    /// Bytes that determine the backend's permutation, e.g. its name or its
    /// address bytes. Must be unique in the set and stable across restarts.
    pub key: Vec<u8>,
    /// Relative weight; 0 removes the backend from the table.
    pub weight: u32,
}

impl MaglevBackend {
    /// Convenience constructor.
    pub fn new(id: BackendId, key: impl Into<Vec<u8>>, weight: u32) -> Self {
        MaglevBackend {
            id,
            key: key.into(),
            weight,
        }
    }
}

/// Why a table could not be built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MaglevError {
    /// The size is not a prime number (Maglev needs a prime for the
    /// permutations to cover the table).
    SizeNotPrime(u32),
    /// The size is below 3 or above [`MAX_TABLE_SIZE`].
    SizeOutOfRange(u32),
    /// Two backends share a key, so their permutations would be identical and
    /// the result would depend on input order.
    DuplicateKey(BackendId, BackendId),
    /// Two backends share an id.
    DuplicateId(BackendId),
    /// More weighted backends than table slots.
    TooManyBackends { backends: usize, size: u32 },
}

impl std::fmt::Display for MaglevError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MaglevError::SizeNotPrime(m) => write!(f, "Maglev table size {m} is not prime"),
            MaglevError::SizeOutOfRange(m) => {
                write!(f, "Maglev table size {m} is outside 3..={MAX_TABLE_SIZE}")
            }
            MaglevError::DuplicateKey(a, b) => {
                write!(f, "backends {} and {} have the same key", a.0, b.0)
            }
            MaglevError::DuplicateId(a) => write!(f, "backend id {} appears twice", a.0),
            MaglevError::TooManyBackends { backends, size } => {
                write!(
                    f,
                    "{backends} backends do not fit a Maglev table of size {size}"
                )
            }
        }
    }
}

impl std::error::Error for MaglevError {}

/// `true` if `n` is prime (trial division; sizes are at most 2^26).
pub fn is_prime(n: u32) -> bool {
    if n < 2 {
        return false;
    }
    if n % 2 == 0 {
        return n == 2;
    }
    let n = u64::from(n);
    let mut d = 3u64;
    while d * d <= n {
        if n % d == 0 {
            return false;
        }
        d += 2;
    }
    true
}

/// An immutable Maglev lookup table: a handle on its entries, which a
/// clone shares (VIPs of the same backends, and the next snapshot while
/// they do not change, use one table).
///
/// The handle is held in the VIP itself, not behind a pointer: a lookup
/// reads where the entries are from the VIP's line, which a burst of many
/// VIPs has fetched ahead, and then the entry — one miss, not two, with a
/// table per VIP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaglevTable {
    // Backend id per slot; empty when there is no weighted backend, which
    // makes `lookup` return `None` without a separate check.
    entries: Arc<[u16]>,
    size: u32,
}

// Per-backend state during the fill.
struct Filler {
    id: u16,
    weight: u64,
    credit: u64,
    pos: u32,
    skip: u32,
}

impl MaglevTable {
    /// Builds a table of the default size ([`DEFAULT_TABLE_SIZE`]).
    pub fn build_default(backends: &[MaglevBackend]) -> Result<Self, MaglevError> {
        Self::build(DEFAULT_TABLE_SIZE, backends)
    }

    /// Builds a table of `size` slots (prime) from `backends`, in any order.
    pub fn build(size: u32, backends: &[MaglevBackend]) -> Result<Self, MaglevError> {
        if !(3..=MAX_TABLE_SIZE).contains(&size) {
            return Err(MaglevError::SizeOutOfRange(size));
        }
        if !is_prime(size) {
            return Err(MaglevError::SizeNotPrime(size));
        }
        // Validate the whole set (including weight-0 backends) so a config
        // error does not hide until someone raises a weight.
        let mut by_id: Vec<BackendId> = backends.iter().map(|b| b.id).collect();
        by_id.sort_unstable();
        if let Some(w) = by_id.windows(2).find(|w| w[0] == w[1]) {
            return Err(MaglevError::DuplicateId(w[0]));
        }
        let mut sorted: Vec<&MaglevBackend> = backends.iter().collect();
        sorted.sort_by(|a, b| a.key.cmp(&b.key));
        if let Some(w) = sorted.windows(2).find(|w| w[0].key == w[1].key) {
            return Err(MaglevError::DuplicateKey(w[0].id, w[1].id));
        }
        sorted.retain(|b| b.weight > 0);
        if sorted.is_empty() {
            return Ok(MaglevTable {
                entries: Arc::new([]),
                size,
            });
        }
        if sorted.len() > size as usize {
            return Err(MaglevError::TooManyBackends {
                backends: sorted.len(),
                size,
            });
        }

        let m = u64::from(size);
        let mut fillers: Vec<Filler> = sorted
            .iter()
            .map(|b| {
                // Both values are reduced modulo m <= 2^26, so they fit u32.
                let offset = (hash_bytes(&b.key, OFFSET_SEED) % m) as u32;
                let skip = (hash_bytes(&b.key, SKIP_SEED) % (m - 1) + 1) as u32;
                Filler {
                    id: b.id.0,
                    weight: u64::from(b.weight),
                    credit: 0,
                    pos: offset,
                    skip,
                }
            })
            .collect();
        let wmax = fillers.iter().map(|f| f.weight).max().unwrap_or(1);

        // u32::MAX marks an unclaimed slot during the build (ids are u16).
        const FREE: u32 = u32::MAX;
        let mut slots = vec![FREE; size as usize];
        let mut claimed: u32 = 0;
        'fill: loop {
            for f in fillers.iter_mut() {
                f.credit += f.weight;
                while f.credit >= wmax {
                    f.credit -= wmax;
                    // Walk the permutation to the next unclaimed slot. It
                    // exists because claimed < size and the permutation covers
                    // every slot.
                    loop {
                        let c = f.pos as usize;
                        f.pos += f.skip;
                        if f.pos >= size {
                            f.pos -= size;
                        }
                        if let Some(s) = slots.get_mut(c) {
                            if *s == FREE {
                                *s = u32::from(f.id);
                                break;
                            }
                        }
                    }
                    claimed += 1;
                    if claimed == size {
                        break 'fill;
                    }
                }
            }
        }
        // Every slot now holds a u16 id.
        let entries = slots.into_iter().map(|s| s as u16).collect();
        Ok(MaglevTable { entries, size })
    }

    /// The backend for a flow hash, or `None` if the table has no backend.
    #[inline]
    pub fn lookup(&self, hash: u64) -> Option<BackendId> {
        self.slot(hash).map(|&e| BackendId(e))
    }

    /// The slot [`MaglevTable::lookup`] reads for `hash`, for a burst to
    /// prefetch ahead of it.
    #[inline(always)]
    pub fn slot(&self, hash: u64) -> Option<&u16> {
        let idx = ((u128::from(hash) * u128::from(self.size)) >> 64) as usize;
        self.entries.get(idx)
    }

    /// Whether `other` is this very table (a clone of it), not merely an
    /// equal one.
    pub fn same(&self, other: &MaglevTable) -> bool {
        Arc::ptr_eq(&self.entries, &other.entries)
    }

    /// Number of slots (the configured prime size).
    pub fn size(&self) -> u32 {
        self.size
    }

    /// `true` if no backend has a positive weight.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The backend id of every slot (empty for an empty table), for tests,
    /// diagnostics and the "which backend would this flow go to" tool.
    pub fn raw_entries(&self) -> &[u16] {
        &self.entries
    }

    /// How many slots each backend owns, as (id, count), sorted by id.
    pub fn shares(&self) -> Vec<(BackendId, u32)> {
        let mut counts = std::collections::BTreeMap::new();
        for &e in self.entries.iter() {
            *counts.entry(BackendId(e)).or_insert(0u32) += 1;
        }
        counts.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_prefetched_slot_is_the_one_lookup_reads() {
        let t = MaglevTable::build(251, &backends(5)).expect("table");
        let entries = t.raw_entries().as_ptr_range();
        for i in 0..2000u64 {
            let h = i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            let slot = t.slot(h).expect("a slot of a full table");
            assert!(entries.contains(&(slot as *const u16)));
            assert_eq!(Some(BackendId(*slot)), t.lookup(h));
        }
        let empty = MaglevTable::build(251, &[]).expect("empty table");
        assert!(empty.slot(7).is_none() && empty.lookup(7).is_none());
    }

    fn backends(n: usize) -> Vec<MaglevBackend> {
        (0..n)
            .map(|i| {
                MaglevBackend::new(
                    BackendId(i as u16),
                    format!("10.1.{}.{}", i / 256, i % 256),
                    1,
                )
            })
            .collect()
    }

    fn moved(a: &MaglevTable, b: &MaglevTable, except: BackendId) -> usize {
        a.raw_entries()
            .iter()
            .zip(b.raw_entries())
            .filter(|(x, y)| x != y && **x != except.0 && **y != except.0)
            .count()
    }

    #[test]
    fn sizes_are_validated() {
        assert_eq!(
            MaglevTable::build(65536, &backends(3)),
            Err(MaglevError::SizeNotPrime(65536))
        );
        assert_eq!(
            MaglevTable::build(1, &backends(3)),
            Err(MaglevError::SizeOutOfRange(1))
        );
        assert!(MaglevTable::build(MAX_TABLE_SIZE + 1, &backends(3)).is_err());
        assert!(MaglevTable::build(251, &backends(3)).is_ok());
        assert!(is_prime(65537) && is_prime(2) && is_prime(3) && !is_prime(9) && !is_prime(1));
        assert_eq!(
            MaglevTable::build(5, &backends(6)),
            Err(MaglevError::TooManyBackends {
                backends: 6,
                size: 5
            })
        );
    }

    #[test]
    fn duplicates_are_rejected() {
        let mut b = backends(3);
        b[2].id = BackendId(0);
        assert_eq!(
            MaglevTable::build_default(&b),
            Err(MaglevError::DuplicateId(BackendId(0)))
        );
        let mut b = backends(3);
        b[2].key = b[0].key.clone();
        assert!(matches!(
            MaglevTable::build_default(&b),
            Err(MaglevError::DuplicateKey(..))
        ));
    }

    #[test]
    fn empty_set_returns_none() {
        let t = MaglevTable::build_default(&[]).unwrap();
        assert!(t.is_empty());
        assert_eq!(t.lookup(0), None);
        assert_eq!(t.lookup(u64::MAX), None);
        // All weights zero is the same as no backend.
        let mut b = backends(4);
        b.iter_mut().for_each(|b| b.weight = 0);
        let t = MaglevTable::build_default(&b).unwrap();
        assert_eq!(t.lookup(12345), None);
    }

    #[test]
    fn every_slot_filled_and_lookup_covers_the_range() {
        let t = MaglevTable::build(251, &backends(7)).unwrap();
        assert_eq!(t.raw_entries().len(), 251);
        assert!(t.raw_entries().iter().all(|&e| e < 7));
        // Extreme hashes map to the first and last slots.
        assert_eq!(t.lookup(0), Some(BackendId(t.raw_entries()[0])));
        assert_eq!(t.lookup(u64::MAX), Some(BackendId(t.raw_entries()[250])));
    }

    #[test]
    fn zero_weight_backend_gets_nothing() {
        let mut b = backends(5);
        b[3].weight = 0;
        let t = MaglevTable::build_default(&b).unwrap();
        assert!(t.raw_entries().iter().all(|&e| e != 3));
        assert_eq!(t.shares().len(), 4);
    }

    #[test]
    fn table_is_pinned_to_the_spec() {
        // A small known table; a change here means independent builds of
        // different versions would disagree.
        // Expected values come from an independent model of the module doc
        // (Python over the C reference libxxhash), not from this code.
        let t = MaglevTable::build(13, &backends(3)).unwrap();
        assert_eq!(t.raw_entries(), &[0, 2, 2, 0, 1, 0, 1, 1, 1, 0, 0, 2, 2]);
        let weighted = [
            MaglevBackend::new(BackendId(2), "c", 2),
            MaglevBackend::new(BackendId(0), "a", 1),
            MaglevBackend::new(BackendId(1), "b", 3),
        ];
        let t = MaglevTable::build(17, &weighted).unwrap();
        assert_eq!(
            t.raw_entries(),
            &[1, 1, 0, 1, 1, 2, 1, 2, 1, 0, 2, 2, 1, 0, 1, 2, 1]
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

        #[test]
        fn equal_weights_are_balanced(n in 1usize..=100) {
            let t = MaglevTable::build_default(&backends(n)).unwrap();
            let shares = t.shares();
            prop_assert_eq!(shares.len(), n);
            let max = shares.iter().map(|s| s.1).max().unwrap();
            let mean = f64::from(DEFAULT_TABLE_SIZE) / n as f64;
            prop_assert!(f64::from(max) / mean <= 1.01, "max {} mean {}", max, mean);
        }

        #[test]
        fn weights_are_honoured(weights in prop::collection::vec(1u32..=10, 1..=20)) {
            let b: Vec<MaglevBackend> = weights
                .iter()
                .enumerate()
                .map(|(i, &w)| MaglevBackend::new(BackendId(i as u16), format!("be-{i}"), w))
                .collect();
            let t = MaglevTable::build_default(&b).unwrap();
            let total: u32 = weights.iter().sum();
            for (id, count) in t.shares() {
                let expected =
                    f64::from(DEFAULT_TABLE_SIZE) * f64::from(weights[id.0 as usize]) / f64::from(total);
                let err = (f64::from(count) - expected).abs() / expected;
                prop_assert!(err <= 0.01, "backend {} has {} want {}", id.0, count, expected);
            }
        }

        #[test]
        fn removal_is_minimally_disruptive(n in 2usize..=100, victim in any::<prop::sample::Index>()) {
            let all = backends(n);
            let v = victim.index(n);
            let mut rest = all.clone();
            let gone = rest.remove(v).id;
            let before = MaglevTable::build_default(&all).unwrap();
            let after = MaglevTable::build_default(&rest).unwrap();
            // Removed backend's slots move (necessarily); others barely do.
            prop_assert!(after.raw_entries().iter().all(|&e| e != gone.0));
            let m = moved(&before, &after, gone);
            prop_assert!(m as f64 <= 0.01 * f64::from(DEFAULT_TABLE_SIZE), "moved {}", m);
        }

        #[test]
        fn addition_is_minimally_disruptive(n in 1usize..=99) {
            let rest = backends(n);
            let mut all = rest.clone();
            all.push(MaglevBackend::new(BackendId(999), "new-backend", 1));
            let before = MaglevTable::build_default(&rest).unwrap();
            let after = MaglevTable::build_default(&all).unwrap();
            let m = moved(&before, &after, BackendId(999));
            prop_assert!(m as f64 <= 0.01 * f64::from(DEFAULT_TABLE_SIZE), "moved {}", m);
        }

        #[test]
        fn builds_are_deterministic_and_order_free(n in 1usize..=100, seed in any::<u64>()) {
            let b = backends(n);
            let mut shuffled = b.clone();
            // Deterministic Fisher-Yates driven by the case seed.
            let mut s = seed | 1;
            for i in (1..shuffled.len()).rev() {
                s ^= s << 13; s ^= s >> 7; s ^= s << 17;
                shuffled.swap(i, (s % (i as u64 + 1)) as usize);
            }
            let a = MaglevTable::build_default(&b).unwrap();
            let c = MaglevTable::build_default(&shuffled).unwrap();
            prop_assert_eq!(a.raw_entries(), c.raw_entries());
        }
    }
}
