//! Per-worker connection table: plain TCP (and UDP) flows, and MPTCP
//! subflows once their handshake has completed.
//!
//! MPTCP SYNs are routed statelessly (Maglev) and create no entry. A plain
//! TCP flow gets one on its second packet, an initial MPTCP subflow on the
//! ACK carrying both keys (VIP option `mptcp_tracking`, on by default), an
//! MP_JOIN routed by token on its SYN; each then stays on its backend when
//! the backend set changes. Each worker owns its table (`&mut self`, no
//! sharing, no atomics).
//!
//! # MPTCP entries and the MPTCP summary
//!
//! Some entries are *MPTCP entries* ([`FlowClass::is_mptcp`]): MP_JOIN
//! subflows pinned by token routing and initial subflows pinned by
//! `mptcp_tracking`. They are the only entries a packet carrying MPTCP
//! options looks for ([`FlowTable::lookup_mptcp`]). They were rare before
//! tracking was on by default, and still are for VIPs without it, so the
//! table keeps a summary of them: one bit per bucket, set iff the bucket
//! holds an MPTCP entry or has flows displaced to their second bucket (see
//! Layout; recomputed from the bucket's flags and displaced count whenever an
//! entry enters or leaves it, while the bucket is in the cache). An MPTCP
//! lookup in a bucket whose bit is clear is a miss without touching the
//! bucket: for
//! a large table, a DRAM access saved on every MPTCP data packet. The summary
//! is `capacity / 64` bits (32 KiB for 2M entries), small enough to stay in
//! the L2 cache.
//!
//! Consequence: an MPTCP lookup does not find a *plain* entry of the same
//! 5-tuple (one created by a packet without MPTCP option). For a real
//! connection there is none that matters: MPTCP is negotiated on the SYN, and
//! an MPTCP subflow puts a DSS (or another MPTCP option) on its segments,
//! while a connection that fell back to TCP sends no MPTCP option again, so
//! its packets all look the plain entry up. See bench/README.md.
//!
//! # Layout
//!
//! Set-associative: `capacity / 8` buckets of 8 slots, the bucket chosen by the
//! low bits of the caller's flow hash ([`super::hash::flow_hash`]; Maglev uses
//! the high bits). A bucket is 384 bytes aligned to 64 (six cache lines), 48
//! bytes per slot, stored as arrays: its first cache line holds every slot's
//! metadata — a one-byte tag (bits 32..40 of the hash), the flags byte, the
//! 32-bit timestamp and the 16-bit backend id — and the next five lines the
//! eight 40-byte keys. A lookup compares tags in the first line and reads
//! only the key of a slot whose tag matches: a miss touches one cache line
//! (and the summary bit), a hit one plus its key's (one or two). The occupied
//! slots of a bucket are kept at its front, so a miss stops at the first
//! empty slot.
//!
//! ## A second bucket per flow
//!
//! Eight slots are not enough for every bucket: with the hash spreading
//! flows evenly, some buckets are asked to hold more. At 30 % load (20 000
//! flows in 65 536 entries) 10 of the 8 192 buckets get 9 or 10 flows, 12
//! flows too many; at 62.5 %, the load bench/README.md sizes the capacity
//! for, 563 buckets and 992 flows (2.4 %) (figures for the keys of the
//! `pinning_tests`; a Poisson estimate gives the same). So a flow has a
//! second bucket: its first's index XOR a non-zero offset derived from the
//! tag (the symmetric choice of cuckoo filters: from a displaced entry's
//! bucket and tag the table finds its first bucket). A new flow goes to its
//! first bucket; if that is full, to its second, flagged *displaced*; if
//! both are full, an entry of either moves to its own other bucket when that
//! has a free slot (one step of cuckoo relocation), freeing a slot. Every
//! bucket counts its flows that live displaced (one byte per bucket), and its
//! summary bit is set while that count is not zero, so a lookup reads the
//! second bucket only after a miss in a first bucket with displaced flows: a
//! flow found in its first bucket, nearly every one up to the design load,
//! costs what it did with one bucket. The prefetch covers the first bucket
//! only. With the second bucket every flow of the tests above is placed, at
//! 30 % and at 62.5 %.
//!
//! # Memory
//!
//! The buckets are one array, allocated before the first packet; nothing
//! allocates afterwards. The MPTCP summary and the displaced counts (one
//! byte per bucket) are on the heap. [`FlowTable::new`] allocates it on the heap; the
//! DPDK engine passes its own with [`FlowTable::with_memory`]: hugepage memory
//! on the worker's NUMA node, because a random access to a large table on 4K
//! pages is a TLB miss (a page walk, nested in a VM) on top of the cache miss.
//! The memory type also supplies the prefetch ([`BucketMemory::prefetch`]),
//! which needs an instruction safe Rust does not offer.
//!
//! Every call for a key must pass the same hash, `flow_hash(key)`: the
//! bucket and the tag both come from it.
//!
//! # Time
//!
//! `now` is the caller's monotonic clock in nanoseconds; the table reads no
//! clock. Entries store it in ticks of 2^20 ns (~1.05 ms) as `u32`, which
//! wraps after ~52 days: ages are computed with wrapping arithmetic, so an
//! entry that nobody looked at or swept for exactly a multiple of ~52 days
//! could look fresh again. [`FlowTable::expire_some`] visits every bucket
//! periodically, which rules this out in practice.
//!
//! # Flood protection: Ananta's untrusted entries
//!
//! We use Ananta's scheme rather than Katran-style insert rate limiting,
//! because it protects established flows without a tuning knob that depends
//! on the machine's speed:
//! * every new entry starts *untrusted*, with a short idle timeout
//!   ([`FlowTimeouts::untrusted`]);
//! * it becomes trusted on its next packet ([`FlowTable::lookup`] hit), which
//!   a spoofed one-packet flow never sends;
//! * for a *promotion window* after it is stored, a quarter of the untrusted
//!   timeout but at least 1 s (the timeout itself if shorter: 1.25 s by
//!   default), an untrusted entry is not evicted: a real client's second
//!   packet comes one RTT after its first. Without this rule, whenever more
//!   new flows than slots (or than the quota) wanted a bucket, each newcomer
//!   evicted an earlier newcomer before its second packet, and with flows
//!   whose packets come in a fixed order (a generator's round-robin, periodic
//!   clients) the cycle never ended: none of them was ever pinned, and they
//!   moved when the backend set changed (issue 13);
//! * at most `untrusted_quota_pct` percent of the capacity may be untrusted;
//!   at the quota a new entry may only replace an untrusted entry past its
//!   promotion window in one of its two buckets, otherwise it is refused
//!   ([`InsertOutcome::RejectedQuota`], counted in `untrusted_drops`) and
//!   tries again on its next packet; as earlier entries are promoted the
//!   quota frees;
//! * below the quota a new entry takes a free slot of its first bucket, else
//!   of its second, else one made by moving an entry (see Layout). If there
//!   is none it evicts, in this order, the coldest untrusted entry past its
//!   promotion window, the coldest entry closed by RST, the coldest tracked
//!   initial MPTCP subflow ([`FlowClass::MptcpPinned`]), in either bucket
//!   ([`Evicted`] says which; the datapath counts each kind); if none exists
//!   the insert is refused ([`InsertOutcome::RejectedFull`], counted in
//!   `full_drops`). A live trusted plain flow or MP_JOIN subflow, and an
//!   untrusted entry within its promotion window, are never evicted.
//!   Tracked MPTCP subflows go before plain flows because a connection with
//!   a second subflow (the bypass, straight to the backend) survives losing
//!   the initial one, a plain TCP connection does not; for a single-path
//!   MPTCP client the two are equal, and the table cannot tell them apart.
//!
//! A refused insert or an evicted entry is not a dropped packet: the caller
//! forwards it by Maglev; the flow only loses stickiness across
//! backend-set changes.
use std::ops::DerefMut;

use super::hash::FlowKey;
use super::maglev::BackendId;

/// Slots per bucket (the probe window).
pub const BUCKET_SLOTS: usize = 8;
const TICK_SHIFT: u32 = 20;

// Slot flags.
const OCCUPIED: u8 = 1;
const UNTRUSTED: u8 = 2;
const PINNED: u8 = 4;
const FIN: u8 = 8;
const RST: u8 = 16;
/// An MPTCP entry (see the module doc); outside the timeout index bits.
const MPTCP: u8 = 32;
/// An entry stored in its flow's second bucket because the first was full
/// (see the module doc); outside the timeout index bits.
const DISPLACED: u8 = 64;
/// [`MPTCP`] in every byte: the flags of a bucket as one `u64`.
const MPTCP_BYTES: u64 = 0x2020_2020_2020_2020;

/// Idle timeouts in nanoseconds, by entry state. When several apply (e.g. an
/// untrusted entry that saw a FIN) the shortest wins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowTimeouts {
    /// New entries that have not seen a second packet.
    pub untrusted: u64,
    /// Trusted entries (plain or pinned).
    pub established: u64,
    /// After a FIN: the rest of the close handshake.
    pub fin: u64,
    /// After an RST: stragglers only.
    pub rst: u64,
}

impl Default for FlowTimeouts {
    fn default() -> Self {
        const S: u64 = 1_000_000_000;
        FlowTimeouts {
            untrusted: 5 * S,
            established: 300 * S,
            fin: 10 * S,
            rst: 2 * S,
        }
    }
}

/// Construction parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowTableConfig {
    /// Number of entries: a power of two, at least [`BUCKET_SLOTS`].
    pub capacity: usize,
    /// Idle timeouts.
    pub timeouts: FlowTimeouts,
    /// Largest share of the capacity that may be untrusted, in percent (1..=100).
    pub untrusted_quota_pct: u8,
}

impl FlowTableConfig {
    /// A config with default timeouts and a 25% untrusted quota.
    pub fn with_capacity(capacity: usize) -> Self {
        FlowTableConfig {
            capacity,
            timeouts: FlowTimeouts::default(),
            untrusted_quota_pct: 25,
        }
    }
}

/// What kind of flow an entry holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowClass {
    /// A plain TCP or UDP flow: never evicted by a newcomer once trusted.
    Plain,
    /// An MP_JOIN subflow routed by its token: protected like a plain flow
    /// (Maglev would send it elsewhere), found by MPTCP lookups.
    MptcpJoin,
    /// An initial MPTCP subflow pinned by a VIP's `mptcp_tracking` option:
    /// useful but optional (Maglev routes it anyway), so evicted before
    /// trusted plain flows. Found by MPTCP lookups.
    MptcpPinned,
}

impl FlowClass {
    /// Whether [`FlowTable::lookup_mptcp`] finds entries of this class.
    pub fn is_mptcp(self) -> bool {
        self != FlowClass::Plain
    }

    fn flags(self) -> u8 {
        match self {
            FlowClass::Plain => 0,
            FlowClass::MptcpJoin => MPTCP,
            FlowClass::MptcpPinned => MPTCP | PINNED,
        }
    }
}

/// Which entries a lookup (or its prefetch) may find.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every entry: packets without MPTCP option, ICMP errors.
    Any,
    /// MPTCP entries only ([`FlowClass::is_mptcp`]): packets with an MPTCP
    /// option. Looks at the bucket only if the summary says it holds one.
    Mptcp,
}

/// Result of [`FlowTable::insert`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InsertOutcome {
    /// Stored in a free slot.
    Inserted,
    /// Stored in place of an evicted entry (counted in `evictions`), of the
    /// kind given: the eviction order, first to last.
    InsertedEvicting(Evicted),
    /// The key already has a live entry, with this backend; nothing changed.
    AlreadyPresent(BackendId),
    /// The untrusted quota is used up and neither of the key's buckets holds
    /// an untrusted entry past its promotion window.
    RejectedQuota,
    /// Both of the key's buckets hold only live entries that a newcomer may
    /// not evict, and none of them could move.
    RejectedFull,
}

/// What a newcomer evicted, in the order the table picks victims (see the
/// module doc): an entry of a later kind goes only when no earlier kind is
/// in either of the newcomer's buckets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Evicted {
    /// An untrusted entry past its promotion window: a flow that never sent
    /// a second packet, likely spoofed.
    Untrusted,
    /// A flow closed by RST.
    Reset,
    /// A tracked initial MPTCP subflow ([`FlowClass::MptcpPinned`]): the only
    /// kind of live connection the table gives up, and only when full of
    /// trusted entries. It keeps its backend until the backend set changes.
    Tracked,
}

impl Evicted {
    fn from_rank(rank: u8) -> Evicted {
        match rank {
            0 => Evicted::Untrusted,
            1 => Evicted::Reset,
            _ => Evicted::Tracked,
        }
    }
}

/// Event counters, cumulative since construction. Lookups' hits and misses
/// are not among them: the datapath counts those (`flow_hit`, `flow_miss`),
/// once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowCounters {
    /// New entries stored.
    pub inserts: u64,
    /// Live entries pushed out by a newcomer.
    pub evictions: u64,
    /// Entries removed because they were idle too long.
    pub timeouts: u64,
    /// Untrusted entries promoted to trusted.
    pub promotions: u64,
    /// Inserts refused by the untrusted quota ([`InsertOutcome::RejectedQuota`]).
    pub untrusted_drops: u64,
    /// Inserts refused because both buckets were full of protected entries
    /// ([`InsertOutcome::RejectedFull`]).
    pub full_drops: u64,
}

/// Why a table could not be constructed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowTableError {
    /// Capacity is not a power of two or is below [`BUCKET_SLOTS`].
    BadCapacity(usize),
    /// The untrusted quota is not in 1..=100.
    BadQuota(u8),
    /// Memory passed to [`FlowTable::with_memory`] holds `got` buckets, the
    /// capacity needs `want`.
    BadMemory { want: usize, got: usize },
}

impl std::fmt::Display for FlowTableError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FlowTableError::BadCapacity(c) => {
                write!(
                    f,
                    "flow table capacity {c} is not a power of two >= {BUCKET_SLOTS}"
                )
            }
            FlowTableError::BadQuota(q) => write!(f, "untrusted quota {q}% is not in 1..=100"),
            FlowTableError::BadMemory { want, got } => {
                write!(f, "flow table memory holds {got} buckets, {want} needed")
            }
        }
    }
}

impl std::error::Error for FlowTableError {}

/// Every slot's metadata, the first cache line of a bucket. A slot is free
/// iff its flags are 0.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Meta {
    tags: [u8; BUCKET_SLOTS],
    flags: [u8; BUCKET_SLOTS],
    last_seen: [u32; BUCKET_SLOTS],
    backend: [u16; BUCKET_SLOTS],
}

/// Eight slots of a [`FlowTable`] (opaque: the unit of its memory, see
/// [`BucketMemory`]). Aligned so that a bucket starts on a cache line and the
/// memory per entry is exactly 48 bytes.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
pub struct Bucket {
    meta: Meta,
    keys: [FlowKey; BUCKET_SLOTS],
}

impl Bucket {
    /// A bucket with all slots free: what new memory is filled with.
    pub const EMPTY: Bucket = Bucket {
        meta: Meta {
            tags: [0; BUCKET_SLOTS],
            flags: [0; BUCKET_SLOTS],
            last_seen: [0; BUCKET_SLOTS],
            backend: [0; BUCKET_SLOTS],
        },
        keys: [FlowKey::ZERO; BUCKET_SLOTS],
    };

    /// Moves slot `from`'s entry into slot `to` and frees `from`.
    fn move_slot(&mut self, from: usize, to: usize) {
        let m = &mut self.meta;
        m.tags[to] = m.tags[from];
        m.flags[to] = m.flags[from];
        m.last_seen[to] = m.last_seen[from];
        m.backend[to] = m.backend[from];
        self.keys[to] = self.keys[from];
        m.flags[from] = 0;
        m.tags[from] = 0;
        m.last_seen[from] = 0;
        m.backend[from] = 0;
        self.keys[from] = FlowKey::ZERO;
    }
}

/// The tag of a hash: bits 32..40, independent of the bucket index (low
/// bits) for any table below 2^35 entries.
#[inline]
fn tag(hash: u64) -> u8 {
    (hash >> 32) as u8
}

/// Where [`FlowTable::prefetch_key`] found a flow's tag in its bucket: the
/// slot a lookup compares first ([`FlowTable::lookup_hinted`]). Only a
/// hint: the lookup checks the slot's state and key, and looks the usual
/// way if they are not the flow's (the table may have changed since, or
/// the tag be another flow's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotHint(u8);

impl SlotHint {
    /// No slot to try first.
    pub const NONE: SlotHint = SlotHint(u8::MAX);
}

/// The second bucket of a flow whose first bucket is `idx` and whose tag is
/// `tag`: `idx` XOR a non-zero offset derived from the tag, so that the
/// relation is symmetric (the first bucket of a displaced entry is found
/// from its own bucket and tag) and the flows of one full bucket spread over
/// up to 255 others. `idx` itself for a one-bucket table.
#[inline]
fn other_bucket(idx: usize, tag: u8, mask: usize) -> usize {
    let g = (u64::from(tag) + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40;
    let off = g as usize & mask;
    idx ^ if off == 0 { mask & 1 } else { off }
}

/// Where a flow table's buckets live: an owned array of
/// [`FlowTableConfig::buckets`] buckets. `Box<[Bucket]>` is ordinary heap
/// memory; the DPDK engine's type is hugepage memory with a real prefetch.
pub trait BucketMemory: DerefMut<Target = [Bucket]> {
    /// Asks the CPU to start loading the cache lines of `bytes` (all of them,
    /// from its first to its last byte) without waiting for them. The
    /// default does nothing: safe Rust has no prefetch instruction, and a
    /// plain load in its place stalls the burst loop until the line arrives
    /// (flow-table paths 2.5× slower than with a real prefetch, see
    /// bench/README.md). The engine's memory type issues a real one.
    #[inline]
    fn prefetch(bytes: &[u8]) {
        let _ = bytes;
    }

    /// [`BucketMemory::prefetch`] of every cache line of `value`: the
    /// snapshot's state a burst's decisions will read (a VIP's address
    /// slot, the VIP, its Maglev slot), fetched as the flow table's are.
    #[inline]
    fn prefetch_value<T>(value: &T) {
        let _ = value;
    }
}

impl BucketMemory for Box<[Bucket]> {}

/// The per-worker flow table. See the module doc.
pub struct FlowTable<M = Box<[Bucket]>> {
    buckets: M,
    /// Bit `i % 64` of word `i / 64` set iff bucket `i` holds an MPTCP entry
    /// or has entries displaced to its flows' second buckets.
    mptcp_summary: Box<[u64]>,
    /// Per bucket: how many of its flows live in their second bucket.
    displaced: Box<[u8]>,
    mask: usize,
    len: usize,
    untrusted_len: usize,
    max_untrusted: usize,
    // Timeout in ticks indexed by (flags >> 1) & 15, i.e. by the combination
    // of UNTRUSTED, PINNED, FIN and RST: one load instead of branches.
    timeout_ticks: [i32; 16],
    // An untrusted entry younger than this (ticks) is never evicted.
    promotion_window: i32,
    sweep_cursor: usize,
    counters: FlowCounters,
}

fn ticks(ns: u64) -> i32 {
    // Round up so a timeout never becomes shorter; ages are signed 32-bit
    // tick differences, so cap there.
    let t = ns.div_ceil(1 << TICK_SHIFT);
    t.min(i32::MAX as u64) as i32
}

// Ticks since `last`, signed: a timestamp slightly in the future (a caller
// whose clock stepped back) counts as fresh instead of ~2^32 ticks old.
#[inline]
fn age(tick: u32, last: u32) -> i32 {
    tick.wrapping_sub(last) as i32
}

// Eviction preference for a newcomer: lower goes first; None = protected.
// An untrusted entry is evictable only once it has had `window` ticks to see
// its second packet.
fn evict_rank(flags: u8, age: i32, window: i32) -> Option<u8> {
    if flags & UNTRUSTED != 0 {
        (age >= window).then_some(0)
    } else if flags & RST != 0 {
        Some(1)
    } else if flags & PINNED != 0 {
        Some(2)
    } else {
        None
    }
}

impl FlowTableConfig {
    /// The number of buckets of the table, once the config is checked: what
    /// the memory passed to [`FlowTable::with_memory`] must hold.
    pub fn buckets(&self) -> Result<usize, FlowTableError> {
        let cap = self.capacity;
        if !cap.is_power_of_two() || cap < BUCKET_SLOTS {
            return Err(FlowTableError::BadCapacity(cap));
        }
        if !(1..=100).contains(&self.untrusted_quota_pct) {
            return Err(FlowTableError::BadQuota(self.untrusted_quota_pct));
        }
        Ok(cap / BUCKET_SLOTS)
    }

    /// Bytes of bucket memory the table needs (what the caller of
    /// [`FlowTable::with_memory`] provides; the table adds its MPTCP summary,
    /// [`FlowTableConfig::summary_bytes`], on the heap).
    pub fn memory_bytes(&self) -> Result<usize, FlowTableError> {
        Ok(self.buckets()? * std::mem::size_of::<Bucket>())
    }

    /// Bytes of the MPTCP summary (one bit per bucket).
    pub fn summary_bytes(&self) -> Result<usize, FlowTableError> {
        Ok(self.buckets()?.div_ceil(64) * 8)
    }
}

impl FlowTable {
    /// Allocates the table on the heap (its only allocation).
    pub fn new(config: FlowTableConfig) -> Result<Self, FlowTableError> {
        let n = config.buckets()?;
        FlowTable::with_memory(config, vec![Bucket::EMPTY; n].into_boxed_slice())
    }
}

impl<M: BucketMemory> FlowTable<M> {
    /// A table in the caller's memory, which must hold exactly
    /// [`FlowTableConfig::buckets`] buckets; every bucket is reset (so the
    /// pages are resident before the first packet, and stale contents do
    /// not matter).
    pub fn with_memory(config: FlowTableConfig, mut buckets: M) -> Result<Self, FlowTableError> {
        let n = config.buckets()?;
        if buckets.len() != n {
            return Err(FlowTableError::BadMemory {
                want: n,
                got: buckets.len(),
            });
        }
        buckets.fill(Bucket::EMPTY);
        let cap = config.capacity;
        let t = config.timeouts;
        let mut timeout_ticks = [0i32; 16];
        for (i, out) in timeout_ticks.iter_mut().enumerate() {
            let flags = (i as u8) << 1;
            let mut ns = if flags & UNTRUSTED != 0 {
                t.untrusted
            } else {
                t.established
            };
            if flags & FIN != 0 {
                ns = ns.min(t.fin);
            }
            if flags & RST != 0 {
                ns = ns.min(t.rst);
            }
            *out = ticks(ns);
        }
        const S: u64 = 1_000_000_000;
        let window = (t.untrusted / 4).max(t.untrusted.min(S));
        Ok(FlowTable {
            buckets,
            mptcp_summary: vec![0u64; n.div_ceil(64)].into_boxed_slice(),
            displaced: vec![0u8; n].into_boxed_slice(),
            mask: n - 1,
            len: 0,
            untrusted_len: 0,
            max_untrusted: (cap * usize::from(config.untrusted_quota_pct) / 100).max(1),
            timeout_ticks,
            promotion_window: ticks(window),
            sweep_cursor: 0,
            counters: FlowCounters::default(),
        })
    }

    /// Looks a flow up. A hit refreshes the entry and, if it was untrusted,
    /// promotes it (this is the flow's second packet). An expired entry is
    /// removed and reported as a miss.
    #[inline(always)]
    pub fn lookup(&mut self, key: &FlowKey, hash: u64, now: u64) -> Option<BackendId> {
        self.lookup_hinted(key, hash, now, Scope::Any, SlotHint::NONE)
    }

    /// [`FlowTable::lookup`] among MPTCP entries only ([`Scope::Mptcp`]):
    /// when the summary says the bucket holds none, a miss that does not
    /// read the bucket.
    #[inline(always)]
    pub fn lookup_mptcp(&mut self, key: &FlowKey, hash: u64, now: u64) -> Option<BackendId> {
        self.lookup_hinted(key, hash, now, Scope::Mptcp, SlotHint::NONE)
    }

    /// Whether `hash`'s bucket may be looked at by a lookup of `scope`
    /// (always for [`Scope::Any`]; for [`Scope::Mptcp`], iff the bucket holds
    /// an MPTCP entry).
    #[inline]
    pub fn may_hold(&self, hash: u64, scope: Scope) -> bool {
        scope == Scope::Any || self.summary_bit(hash as usize & self.mask)
    }

    #[inline]
    fn summary_bit(&self, idx: usize) -> bool {
        self.mptcp_summary
            .get(idx / 64)
            .is_some_and(|w| w >> (idx % 64) & 1 == 1)
    }

    // Recomputes bucket idx's summary bit from its flags; call after any
    // change of the bucket's entries, while it is in the cache.
    #[inline]
    fn sync_summary(&mut self, idx: usize) {
        let holds = self
            .buckets
            .get(idx)
            .is_some_and(|b| u64::from_le_bytes(b.meta.flags) & MPTCP_BYTES != 0)
            || self.displaced.get(idx).is_some_and(|&d| d != 0);
        if let Some(w) = self.mptcp_summary.get_mut(idx / 64) {
            let bit = 1u64 << (idx % 64);
            if holds {
                *w |= bit;
            } else {
                *w &= !bit;
            }
        }
    }

    // The bucket and slot of `key`'s entry among those of `scope`: in its
    // first bucket, else in its second if the first has displaced flows.
    #[inline]
    fn locate(&self, key: &FlowKey, hash: u64, scope: Scope) -> Option<(usize, usize)> {
        let idx = hash as usize & self.mask;
        let tg = tag(hash);
        if let Some(i) = find(self.buckets.get(idx)?, key, tg, scope) {
            return Some((idx, i));
        }
        // The summary bit (small, cached) before the count: clear, nothing
        // of this bucket is displaced.
        if !self.summary_bit(idx) || self.displaced.get(idx).is_none_or(|&d| d == 0) {
            return None;
        }
        let alt = other_bucket(idx, tg, self.mask);
        let i = find(self.buckets.get(alt)?, key, tg, scope)?;
        Some((alt, i))
    }

    /// [`FlowTable::lookup`] among the entries of `scope`, trying the slot
    /// `hint` first (see [`SlotHint`]): the same result whatever the hint.
    #[inline(always)]
    pub fn lookup_hinted(
        &mut self,
        key: &FlowKey,
        hash: u64,
        now: u64,
        scope: Scope,
        hint: SlotHint,
    ) -> Option<BackendId> {
        let tick = (now >> TICK_SHIFT) as u32;
        let idx = hash as usize & self.mask;
        if !self.may_hold(hash, scope) {
            return None;
        }
        // Always Some: idx is masked to the bucket count.
        let bucket = self.buckets.get(idx)?;
        let found =
            at_hint(bucket, key, scope, hint).or_else(|| find(bucket, key, tag(hash), scope));
        let Some(i) = found else {
            return self.lookup_displaced(key, hash, tick, scope);
        };
        self.touch(idx, i, tick)
    }

    // A lookup's second step, after a miss in the first bucket: the second
    // bucket, if the first has displaced flows.
    #[cold]
    #[inline(never)]
    fn lookup_displaced(
        &mut self,
        key: &FlowKey,
        hash: u64,
        tick: u32,
        scope: Scope,
    ) -> Option<BackendId> {
        let idx = hash as usize & self.mask;
        if !self.summary_bit(idx) || self.displaced.get(idx).is_none_or(|&d| d == 0) {
            return None;
        }
        let alt = other_bucket(idx, tag(hash), self.mask);
        let i = find(self.buckets.get(alt)?, key, tag(hash), scope)?;
        self.touch(alt, i, tick)
    }

    // A lookup that found slot i of bucket idx: expires the entry or
    // refreshes (and promotes) it.
    #[inline(always)]
    fn touch(&mut self, idx: usize, i: usize, tick: u32) -> Option<BackendId> {
        let bucket = self.buckets.get_mut(idx)?;
        let m = &mut bucket.meta;
        if age(tick, m.last_seen[i]) > self.timeout_ticks[usize::from(m.flags[i] >> 1) & 15] {
            self.remove_at(idx, i);
            self.counters.timeouts += 1;
            return None;
        }
        m.last_seen[i] = tick;
        if m.flags[i] & UNTRUSTED != 0 {
            m.flags[i] &= !UNTRUSTED;
            self.untrusted_len -= 1;
            self.counters.promotions += 1;
        }
        Some(BackendId(m.backend[i]))
    }

    // The first free slot of bucket idx, if any.
    fn free_slot(&self, idx: usize) -> Option<usize> {
        let b = self.buckets.get(idx)?;
        let occupied = b.meta.flags.iter().take_while(|&&f| f != 0).count();
        (occupied < BUCKET_SLOTS).then_some(occupied)
    }

    // Frees a slot of the full bucket idx by moving one of its entries to
    // that entry's other bucket (its second if idx is its first, its first
    // if it is displaced here), if that bucket has a free slot (after its
    // expired entries are dropped). Returns the freed slot.
    fn make_room(&mut self, idx: usize, tick: u32) -> Option<usize> {
        for i in 0..BUCKET_SLOTS {
            let b = self.buckets.get(idx)?;
            let (flags, tg) = (b.meta.flags[i], b.meta.tags[i]);
            let other = other_bucket(idx, tg, self.mask);
            let here = self.displaced.get(idx).copied().unwrap_or(u8::MAX);
            if other == idx || (flags & DISPLACED == 0 && here == u8::MAX) {
                continue;
            }
            self.expire_bucket(other, tick);
            let Some(j) = self.free_slot(other) else {
                continue;
            };
            let b = self.buckets.get(idx)?;
            let (meta, key) = (b.meta, b.keys[i]);
            let to = self.buckets.get_mut(other)?;
            to.meta.tags[j] = tg;
            to.meta.flags[j] = flags ^ DISPLACED;
            to.meta.last_seen[j] = meta.last_seen[i];
            to.meta.backend[j] = meta.backend[i];
            to.keys[j] = key;
            // Back home: one displaced flow fewer for `other`; out: one
            // more for idx (checked above to have room).
            if flags & DISPLACED != 0 {
                if let Some(c) = self.displaced.get_mut(other) {
                    *c -= 1;
                }
            } else if let Some(c) = self.displaced.get_mut(idx) {
                *c += 1;
            }
            let from = self.buckets.get_mut(idx)?;
            let last = from.meta.flags.iter().rposition(|&f| f != 0).unwrap_or(i);
            from.move_slot(last, i);
            self.sync_summary(idx);
            self.sync_summary(other);
            return Some(last);
        }
        None
    }

    // The entry of bucket idx a newcomer may evict: the coldest of the
    // lowest eviction rank; at the quota only untrusted entries qualify, so
    // the untrusted count stays put. Returns (slot, rank, age).
    fn victim(&self, idx: usize, at_quota: bool, tick: u32) -> Option<(usize, u8, i32)> {
        let m = &self.buckets.get(idx)?.meta;
        let mut best: Option<(usize, u8, i32)> = None;
        for i in 0..BUCKET_SLOTS {
            if m.flags[i] == 0 {
                break;
            }
            let a = age(tick, m.last_seen[i]);
            let Some(rank) = evict_rank(m.flags[i], a, self.promotion_window) else {
                continue;
            };
            if at_quota && rank != 0 {
                continue;
            }
            if best.is_none_or(|(_, r, best_age)| rank < r || (rank == r && a > best_age)) {
                best = Some((i, rank, a));
            }
        }
        best
    }

    /// Adds a new (untrusted) entry. See the module doc for the placement
    /// and eviction rules.
    pub fn insert(
        &mut self,
        key: &FlowKey,
        hash: u64,
        backend: BackendId,
        class: FlowClass,
        now: u64,
    ) -> InsertOutcome {
        let tick = (now >> TICK_SHIFT) as u32;
        let home = hash as usize & self.mask;
        let tg = tag(hash);
        let alt = other_bucket(home, tg, self.mask);
        // Drop expired entries of both buckets first: it frees slots and
        // makes an expired entry for the same key disappear.
        self.expire_bucket(home, tick);
        if alt != home {
            self.expire_bucket(alt, tick);
        }
        if let Some((idx, i)) = self.locate(key, hash, Scope::Any) {
            let b = self.buckets.get(idx).map_or(0, |b| b.meta.backend[i]);
            return InsertOutcome::AlreadyPresent(BackendId(b));
        }
        let at_quota = self.untrusted_len >= self.max_untrusted;
        // The second bucket is used while the first one's count of
        // displaced flows has room.
        let may_displace = alt != home && self.displaced.get(home).is_some_and(|&d| d < u8::MAX);

        // Below the quota: a free slot of the first bucket, else of the
        // second, else one made by moving an entry of either to its own
        // other bucket.
        let free = if at_quota {
            None
        } else {
            self.free_slot(home)
                .map(|i| (home, i))
                .or_else(|| {
                    may_displace
                        .then(|| self.free_slot(alt).map(|i| (alt, i)))
                        .flatten()
                })
                .or_else(|| self.make_room(home, tick).map(|i| (home, i)))
                .or_else(|| {
                    may_displace
                        .then(|| self.make_room(alt, tick).map(|i| (alt, i)))
                        .flatten()
                })
        };
        let target = match free {
            Some((idx, i)) => Some((idx, i, None)),
            None => {
                let h = self.victim(home, at_quota, tick);
                let a = if may_displace {
                    self.victim(alt, at_quota, tick)
                } else {
                    None
                };
                match (h, a) {
                    (Some((i, r, ag)), Some((j, ra, aa))) => {
                        if ra < r || (ra == r && aa > ag) {
                            Some((alt, j, Some(ra)))
                        } else {
                            Some((home, i, Some(r)))
                        }
                    }
                    (Some((i, r, _)), None) => Some((home, i, Some(r))),
                    (None, Some((j, ra, _))) => Some((alt, j, Some(ra))),
                    (None, None) => None,
                }
            }
        };
        let Some((idx, i, evicting)) = target else {
            if at_quota {
                self.counters.untrusted_drops += 1;
                return InsertOutcome::RejectedQuota;
            }
            self.counters.full_drops += 1;
            return InsertOutcome::RejectedFull;
        };
        if evicting.is_some() {
            self.release(idx, i);
            self.counters.evictions += 1;
        } else {
            self.len += 1;
        }
        let displaced = if idx != home { DISPLACED } else { 0 };
        let Some(bucket) = self.buckets.get_mut(idx) else {
            return InsertOutcome::RejectedFull;
        };
        let m = &mut bucket.meta;
        m.tags[i] = tg;
        m.last_seen[i] = tick;
        m.backend[i] = backend.0;
        m.flags[i] = OCCUPIED | UNTRUSTED | class.flags() | displaced;
        bucket.keys[i] = *key;
        if displaced != 0 {
            if let Some(d) = self.displaced.get_mut(home) {
                *d += 1;
            }
            self.sync_summary(home);
        }
        // The newcomer may be an MPTCP entry, or have evicted one.
        self.sync_summary(idx);
        self.untrusted_len += 1;
        self.counters.inserts += 1;
        match evicting {
            Some(rank) => InsertOutcome::InsertedEvicting(Evicted::from_rank(rank)),
            None => InsertOutcome::Inserted,
        }
    }

    /// Marks a flow as closing after a FIN (shorter timeout). Returns whether
    /// a live entry was found. Does not promote: a FIN proves nothing.
    pub fn note_fin(&mut self, key: &FlowKey, hash: u64, now: u64) -> bool {
        self.mark(key, hash, now, FIN)
    }

    /// Marks a flow as reset (shortest timeout, evictable by newcomers).
    /// Returns whether a live entry was found.
    pub fn note_rst(&mut self, key: &FlowKey, hash: u64, now: u64) -> bool {
        self.mark(key, hash, now, RST)
    }

    fn mark(&mut self, key: &FlowKey, hash: u64, now: u64, flag: u8) -> bool {
        let tick = (now >> TICK_SHIFT) as u32;
        let home = hash as usize & self.mask;
        self.expire_bucket(home, tick);
        let alt = other_bucket(home, tag(hash), self.mask);
        if alt != home && self.displaced.get(home).is_some_and(|&d| d != 0) {
            self.expire_bucket(alt, tick);
        }
        let Some((idx, i)) = self.locate(key, hash, Scope::Any) else {
            return false;
        };
        let Some(bucket) = self.buckets.get_mut(idx) else {
            return false;
        };
        bucket.meta.flags[i] |= flag;
        bucket.meta.last_seen[i] = tick;
        true
    }

    /// Removes a flow; returns its backend if it was present.
    pub fn remove(&mut self, key: &FlowKey, hash: u64) -> Option<BackendId> {
        let (idx, i) = self.locate(key, hash, Scope::Any)?;
        let backend = BackendId(self.buckets.get(idx)?.meta.backend[i]);
        self.remove_at(idx, i);
        Some(backend)
    }

    /// Sweeps up to `budget` buckets (8 slots each) for expired entries,
    /// continuing where the previous call stopped; call it between bursts.
    /// Returns the number of entries removed.
    pub fn expire_some(&mut self, now: u64, budget: usize) -> usize {
        let tick = (now >> TICK_SHIFT) as u32;
        let mut removed = 0;
        for _ in 0..budget.min(self.buckets.len()) {
            let idx = self.sweep_cursor;
            self.sweep_cursor = (idx + 1) & self.mask;
            removed += self.expire_bucket(idx, tick);
        }
        removed
    }

    /// Starts loading a flow's bucket metadata (its first cache line) into
    /// the cache: call for every packet of a burst before the lookups, so the
    /// memory accesses overlap (see [`BucketMemory::prefetch`]). Nothing for
    /// a bucket a lookup of `scope` will not read ([`FlowTable::may_hold`]);
    /// returns whether it prefetched (false: no [`FlowTable::prefetch_key`]
    /// to follow).
    #[inline]
    pub fn prefetch(&self, hash: u64, scope: Scope) -> bool {
        if !self.may_hold(hash, scope) {
            return false;
        }
        if let Some(b) = self.buckets.get(hash as usize & self.mask) {
            // One byte: the bucket starts a line (no test for a second).
            M::prefetch(std::slice::from_ref(&b.meta.tags[0]));
        }
        true
    }

    /// Second step after [`FlowTable::prefetch`] (one that returned true),
    /// once the metadata line has (most likely) arrived: prefetches the key
    /// of the first slot whose tag matches, if any, so a hit finds its key
    /// in the cache. A hint: the tags alone are compared (not the slots'
    /// state or scope, which the lookup tests), so a stale or other-scope
    /// tag costs at most a useless prefetch.
    /// Returns that slot, for the lookup to try first.
    #[inline]
    pub fn prefetch_key(&self, hash: u64) -> SlotHint {
        let Some(b) = self.buckets.get(hash as usize & self.mask) else {
            return SlotHint::NONE;
        };
        let Some(i) = first_tag_match(&b.meta, tag(hash)) else {
            return SlotHint::NONE;
        };
        if let Some(k) = b.keys.get(i) {
            // A key may straddle two cache lines: the lines of its first
            // and last bytes are fetched (the same one twice, harmlessly,
            // where it does not), without a test.
            let bytes = k.as_bytes();
            for end in [bytes.first(), bytes.last()].into_iter().flatten() {
                M::prefetch(std::slice::from_ref(end));
            }
        }
        // i < 8.
        SlotHint(i as u8)
    }

    /// Live and not yet swept entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// `true` if the table holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Entries the table can hold.
    pub fn capacity(&self) -> usize {
        self.buckets.len() * BUCKET_SLOTS
    }

    /// Entries that are still untrusted.
    pub fn untrusted_len(&self) -> usize {
        self.untrusted_len
    }

    /// The most entries that may be untrusted at once.
    pub fn untrusted_quota(&self) -> usize {
        self.max_untrusted
    }

    /// Event counters.
    pub fn counters(&self) -> &FlowCounters {
        &self.counters
    }

    /// Memory held by the table, including its own struct, the MPTCP
    /// summary and the displaced counts.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + std::mem::size_of_val(&*self.buckets)
            + std::mem::size_of_val(&*self.mptcp_summary)
            + std::mem::size_of_val(&*self.displaced)
    }

    /// The bucket memory (e.g. to report where it lives).
    pub fn memory(&self) -> &M {
        &self.buckets
    }

    // Removes expired entries of one bucket; returns how many.
    fn expire_bucket(&mut self, idx: usize, tick: u32) -> usize {
        let mut removed = 0;
        let mut i = 0;
        while i < BUCKET_SLOTS {
            let Some((flags, last_seen)) = self
                .buckets
                .get(idx)
                .map(|b| (b.meta.flags[i], b.meta.last_seen[i]))
            else {
                break;
            };
            if flags == 0 {
                break;
            }
            if age(tick, last_seen) > self.timeout_ticks[usize::from(flags >> 1) & 15] {
                // remove_at moves the bucket's last entry into slot i, so
                // look at slot i again.
                self.remove_at(idx, i);
                removed += 1;
            } else {
                i += 1;
            }
        }
        self.counters.timeouts += removed as u64;
        removed
    }

    // The bookkeeping of an entry leaving slot i of bucket idx (removed or
    // evicted): the untrusted count, and the displaced count (and summary
    // bit) of its first bucket if it lives in its second.
    fn release(&mut self, idx: usize, i: usize) {
        let Some(b) = self.buckets.get(idx) else {
            return;
        };
        let (flags, tg) = (b.meta.flags[i], b.meta.tags[i]);
        if flags & UNTRUSTED != 0 {
            self.untrusted_len -= 1;
        }
        if flags & DISPLACED != 0 {
            let home = other_bucket(idx, tg, self.mask);
            if let Some(d) = self.displaced.get_mut(home) {
                *d -= 1;
            }
            self.sync_summary(home);
        }
    }

    // Removes slot i of bucket idx, keeping occupied slots at the front.
    fn remove_at(&mut self, idx: usize, i: usize) {
        self.release(idx, i);
        let Some(bucket) = self.buckets.get_mut(idx) else {
            return;
        };
        let last = bucket.meta.flags.iter().rposition(|&f| f != 0).unwrap_or(i);
        // With last == i this frees slot i.
        bucket.move_slot(last, i);
        self.sync_summary(idx);
        self.len -= 1;
    }
}

const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
/// 1 in every byte: times a byte, that byte in every byte.
const ONES: u64 = 0x0101_0101_0101_0101;

/// Bit 7 of byte `i` set iff byte `i` of `x` is zero (exact: no carries
/// between bytes).
#[inline]
fn zero_bytes(x: u64) -> u64 {
    !(((x & LOW7) + LOW7) | x | LOW7)
}

/// Bit 7 of byte `i` set iff slot `i` is occupied, has tag `tag` and is
/// in `scope`: the slots whose key may be `tag`'s, compared eight at once.
#[inline]
fn candidates(m: &Meta, tag: u8, scope: Scope) -> u64 {
    let tags = u64::from_le_bytes(m.tags);
    let flags = u64::from_le_bytes(m.flags);
    let in_scope = match scope {
        Scope::Any => !zero_bytes(flags),
        // MPTCP (bit 5 of a byte) moved to bit 7; it implies OCCUPIED.
        Scope::Mptcp => (flags & MPTCP_BYTES) << 2,
    };
    zero_bytes(tags ^ (u64::from(tag) * ONES)) & in_scope
}

/// The first slot whose tag is `tag`, whatever its state: cheaper than
/// [`candidates`] (no flags, and the lowest zero byte only, which the
/// borrow-based test finds exactly: a borrow only disturbs the bytes above
/// it).
#[inline]
fn first_tag_match(m: &Meta, tag: u8) -> Option<usize> {
    let x = u64::from_le_bytes(m.tags) ^ (u64::from(tag) * ONES);
    let zero = x.wrapping_sub(ONES) & !x & (ONES << 7);
    (zero != 0).then(|| (zero.trailing_zeros() / 8) as usize)
}

/// Slot `hint` if it holds `key` among the entries of `scope`.
#[inline(always)]
fn at_hint(bucket: &Bucket, key: &FlowKey, scope: Scope, hint: SlotHint) -> Option<usize> {
    let i = usize::from(hint.0);
    let flags = *bucket.meta.flags.get(i)?;
    let in_scope = match scope {
        Scope::Any => flags != 0,
        Scope::Mptcp => flags & MPTCP != 0,
    };
    (in_scope && bucket.keys.get(i)? == key).then_some(i)
}

#[inline]
fn find(bucket: &Bucket, key: &FlowKey, tag: u8, scope: Scope) -> Option<usize> {
    let mut c = candidates(&bucket.meta, tag, scope);
    while c != 0 {
        let i = (c.trailing_zeros() / 8) as usize;
        if bucket.keys.get(i) == Some(key) {
            return Some(i);
        }
        c &= c - 1;
    }
    None
}

#[cfg(test)]
#[path = "flow_table_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "flow_table_pinning_tests.rs"]
mod pinning_tests;
