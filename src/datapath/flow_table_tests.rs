use super::super::hash::{PROTO_TCP, flow_hash};
use super::*;
use proptest::prelude::*;
use std::collections::HashMap;

const MS: u64 = 1_000_000;
const S: u64 = 1_000_000_000;

fn key(i: u32) -> FlowKey {
    let [a, b, c, d] = i.to_be_bytes();
    FlowKey::from_v4(
        [10, b, c, d],
        [192, 0, 2, a],
        1024 + (i % 50_000) as u16,
        443,
        PROTO_TCP,
    )
}

fn table(capacity: usize) -> FlowTable {
    FlowTable::new(FlowTableConfig::with_capacity(capacity)).unwrap()
}

// Insert and promote (second packet): a real, trusted flow.
fn establish(t: &mut FlowTable, k: &FlowKey, b: BackendId, class: FlowClass, now: u64) {
    let h = flow_hash(k);
    assert_eq!(t.insert(k, h, b, class, now), InsertOutcome::Inserted);
    assert_eq!(t.lookup(k, h, now), Some(b));
}

proptest! {
    #[test]
    fn candidates_match_the_per_slot_definition(
        tags in any::<[u8; BUCKET_SLOTS]>(),
        flags in any::<[u8; BUCKET_SLOTS]>(),
        other in any::<u8>(),
        pick in 0usize..=BUCKET_SLOTS,
    ) {
        // Mostly a tag present in the bucket, sometimes any byte.
        let tag_in = tags.get(pick).copied().unwrap_or(other);
        let mut m = Bucket::EMPTY.meta;
        m.tags = tags;
        m.flags = flags;
        let c = candidates(&m, tag_in, Scope::Any);
        let cm = candidates(&m, tag_in, Scope::Mptcp);
        for i in 0..BUCKET_SLOTS {
            let want = flags[i] != 0 && tags[i] == tag_in;
            prop_assert_eq!(c >> (8 * i + 7) & 1 == 1, want);
            prop_assert_eq!(c >> (8 * i) & 0x7f, 0);
            let want_m = want && flags[i] & MPTCP != 0;
            prop_assert_eq!(cm >> (8 * i + 7) & 1 == 1, want_m);
            prop_assert_eq!(cm >> (8 * i) & 0x7f, 0);
        }
    }
}

proptest! {
    #[test]
    fn first_tag_match_is_the_first_slot_with_the_tag(
        tags in any::<[u8; BUCKET_SLOTS]>(),
        other in any::<u8>(),
        pick in 0usize..=BUCKET_SLOTS,
    ) {
        let tag_in = tags.get(pick).copied().unwrap_or(other);
        let mut m = Bucket::EMPTY.meta;
        m.tags = tags;
        prop_assert_eq!(
            first_tag_match(&m, tag_in),
            tags.iter().position(|&t| t == tag_in)
        );
    }
}

thread_local! {
    static PREFETCHED: std::cell::RefCell<Vec<(usize, usize)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Heap buckets whose prefetches are recorded (address, length).
struct Recording(Box<[Bucket]>);

impl std::ops::Deref for Recording {
    type Target = [Bucket];
    fn deref(&self) -> &[Bucket] {
        &self.0
    }
}

impl std::ops::DerefMut for Recording {
    fn deref_mut(&mut self) -> &mut [Bucket] {
        &mut self.0
    }
}

impl BucketMemory for Recording {
    fn prefetch(bytes: &[u8]) {
        PREFETCHED.with(|p| p.borrow_mut().push((bytes.as_ptr() as usize, bytes.len())));
    }
}

#[test]
fn a_slot_hint_never_changes_a_lookups_result() {
    let mut t = table(64);
    let all = [SlotHint::NONE]
        .into_iter()
        .chain((0..BUCKET_SLOTS as u8).map(SlotHint));
    let all: Vec<SlotHint> = all.collect();
    // Plain and MPTCP entries, several to a bucket.
    let keys: Vec<FlowKey> = (0..40).map(key).collect();
    for (i, k) in keys.iter().enumerate() {
        let class = [FlowClass::Plain, FlowClass::MptcpPinned][i % 2];
        // Each promoted (its second packet), so that the untrusted
        // quota refuses none.
        establish(&mut t, k, BackendId(i as u16), class, 0);
    }
    // One removed (its slot freed, or refilled by its bucket's last).
    let gone = 6;
    let k = keys[gone];
    assert!(t.remove(&k, flow_hash(&k)).is_some());
    for (i, k) in keys.iter().enumerate() {
        let h = flow_hash(k);
        let want_any = t.lookup(k, h, MS);
        let want_mptcp = t.lookup_mptcp(k, h, MS);
        if i == gone {
            assert_eq!((want_any, want_mptcp), (None, None));
        } else {
            assert!(want_any.is_some(), "flow {i}");
        }
        for &hint in &all {
            assert_eq!(
                t.lookup_hinted(k, h, MS, Scope::Any, hint),
                want_any,
                "{i} {hint:?}"
            );
            assert_eq!(
                t.lookup_hinted(k, h, MS, Scope::Mptcp, hint),
                want_mptcp,
                "{i} {hint:?}"
            );
        }
    }
    // The prefetch's hint is the flow's slot where its tag comes first
    // in its bucket (most flows).
    let hinted = keys
        .iter()
        .filter(|k| {
            let h = flow_hash(k);
            let hint = t.prefetch_key(h);
            let idx = h as usize & t.mask;
            t.buckets[idx].keys.get(usize::from(hint.0)) == Some(k)
        })
        .count();
    assert!(hinted > 30, "{hinted} of 39 hinted");
}

#[test]
fn the_key_prefetch_fetches_the_matching_slots_key() {
    let config = FlowTableConfig::with_capacity(64);
    let n = config.buckets().unwrap();
    let mut t =
        FlowTable::with_memory(config, Recording(vec![Bucket::EMPTY; n].into_boxed_slice()))
            .unwrap();
    let taken = || PREFETCHED.with(|p| std::mem::take(&mut *p.borrow_mut()));
    // Three flows in one bucket: their keys in slots 0, 1, 2.
    let h0 = flow_hash(&key(1));
    let same: Vec<FlowKey> = (2..100_000)
        .map(key)
        .filter(|k| flow_hash(k) as usize & t.mask == h0 as usize & t.mask)
        .filter(|k| tag(flow_hash(k)) != tag(h0))
        .take(2)
        .collect();
    let keys = [key(1), same[0], same[1]];
    for k in &keys {
        assert_eq!(
            t.insert(k, flow_hash(k), BackendId(1), FlowClass::Plain, 0),
            InsertOutcome::Inserted
        );
    }
    let idx = h0 as usize & t.mask;
    for (slot, k) in keys.iter().enumerate() {
        let h = flow_hash(k);
        if keys[..slot].iter().any(|o| tag(flow_hash(o)) == tag(h)) {
            continue; // an earlier slot has the same tag: that one is fetched
        }
        taken();
        t.prefetch_key(h);
        // Its first and last bytes' lines.
        let want = t.buckets[idx].keys[slot].as_bytes();
        let at = want.as_ptr() as usize;
        assert_eq!(
            taken(),
            vec![(at, 1), (at + want.len() - 1, 1)],
            "slot {slot}"
        );
    }
    // A tag none of the eight slots has (free ones included: the hint
    // does not look at the slots' state): nothing fetched.
    let absent = (0u64..256)
        .map(|t8| (h0 & !(0xff << 32)) | (t8 << 32))
        .find(|&h| !t.buckets[idx].meta.tags.contains(&tag(h)))
        .unwrap();
    taken();
    t.prefetch_key(absent);
    assert_eq!(taken(), vec![]);
    // The metadata prefetch: the bucket's first line (by its first
    // byte), which the bucket's alignment makes a line's start.
    assert!(t.prefetch(h0, Scope::Any));
    let meta = t.buckets[idx].meta.tags.as_ptr() as usize;
    assert_eq!(taken(), vec![(meta, 1)]);
    assert_eq!(meta % 64, 0);
}

#[test]
fn memory_per_entry_is_at_most_64_bytes() {
    assert_eq!(std::mem::size_of::<Meta>(), 64);
    assert_eq!(std::mem::size_of::<Bucket>(), 48 * BUCKET_SLOTS);
    for cap in [1024usize, 1 << 20] {
        let t = table(cap);
        assert_eq!(t.capacity(), cap);
        let per_entry = t.memory_bytes() as f64 / cap as f64;
        assert!(per_entry <= 64.0, "{per_entry} bytes per entry");
    }
}

#[test]
fn config_is_validated() {
    assert!(FlowTable::new(FlowTableConfig::with_capacity(1000)).is_err());
    assert!(FlowTable::new(FlowTableConfig::with_capacity(4)).is_err());
    let mut c = FlowTableConfig::with_capacity(64);
    c.untrusted_quota_pct = 0;
    assert_eq!(FlowTable::new(c).err(), Some(FlowTableError::BadQuota(0)));
    c.untrusted_quota_pct = 101;
    assert!(FlowTable::new(c).is_err());
}

#[test]
fn caller_memory_must_fit_and_is_reset() {
    let c = FlowTableConfig::with_capacity(64);
    assert_eq!(c.buckets(), Ok(8));
    assert_eq!(c.memory_bytes(), Ok(8 * 384));
    let short = vec![Bucket::EMPTY; 7].into_boxed_slice();
    assert_eq!(
        FlowTable::with_memory(c, short).err(),
        Some(FlowTableError::BadMemory { want: 8, got: 7 })
    );
    // Memory that held a live table is wiped: no stale entry survives.
    let mut old = table(64);
    let k = key(1);
    establish(&mut old, &k, BackendId(3), FlowClass::Plain, 0);
    let mut t = FlowTable::with_memory(c, old.buckets).unwrap();
    assert!(t.is_empty());
    assert_eq!(t.lookup(&k, flow_hash(&k), 0), None);
}

#[test]
fn insert_lookup_promote_and_counters() {
    let mut t = table(1024);
    let k = key(1);
    let h = flow_hash(&k);
    assert_eq!(t.lookup(&k, h, 0), None);
    assert_eq!(
        t.insert(&k, h, BackendId(7), FlowClass::Plain, 0),
        InsertOutcome::Inserted
    );
    assert_eq!(t.untrusted_len(), 1);
    assert_eq!(
        t.insert(&k, h, BackendId(9), FlowClass::Plain, 0),
        InsertOutcome::AlreadyPresent(BackendId(7))
    );
    assert_eq!(t.lookup(&k, h, MS), Some(BackendId(7)));
    assert_eq!(t.untrusted_len(), 0);
    assert_eq!(t.lookup(&k, h, 2 * MS), Some(BackendId(7)));
    assert_eq!(t.len(), 1);
    let c = *t.counters();
    assert_eq!((c.inserts, c.promotions), (1, 1));
    assert_eq!(t.remove(&k, h), Some(BackendId(7)));
    assert!(t.is_empty());
    assert_eq!(t.lookup(&k, h, 3 * MS), None);
}

#[test]
fn timeouts_depend_on_state() {
    let tmo = FlowTimeouts::default();
    let mut t = table(1024);
    let (u, e, f, r) = (key(1), key(2), key(3), key(4));
    let hu = flow_hash(&u);
    assert_eq!(
        t.insert(&u, hu, BackendId(1), FlowClass::Plain, 0),
        InsertOutcome::Inserted
    );
    for k in [&e, &f, &r] {
        establish(&mut t, k, BackendId(2), FlowClass::Plain, 0);
    }
    assert!(t.note_fin(&f, flow_hash(&f), 0));
    assert!(t.note_rst(&r, flow_hash(&r), 0));
    assert!(!t.note_fin(&key(99), flow_hash(&key(99)), 0));

    // Just past the RST timeout: only the reset flow is gone.
    let now = tmo.rst + 10 * MS;
    assert_eq!(t.lookup(&r, flow_hash(&r), now), None);
    assert_eq!(t.lookup(&f, flow_hash(&f), 0), Some(BackendId(2)));
    // Past the untrusted timeout (measured from its only packet).
    let now = tmo.untrusted + 10 * MS;
    assert_eq!(t.lookup(&u, hu, now), None);
    // Past the FIN timeout: the FIN'd flow is gone, the established one not.
    let now = tmo.fin + 10 * MS;
    assert_eq!(t.lookup(&f, flow_hash(&f), now), None);
    assert_eq!(t.lookup(&e, flow_hash(&e), now), Some(BackendId(2)));
    // Refreshed at `now`, it lives until now + established.
    assert_eq!(
        t.lookup(&e, flow_hash(&e), now + tmo.established - 10 * MS),
        Some(BackendId(2))
    );
    assert_eq!(t.lookup(&e, flow_hash(&e), now + 2 * tmo.established), None);
    assert_eq!(t.counters().timeouts, 4);
    assert!(t.is_empty());
    assert_eq!(t.untrusted_len(), 0);
}

#[test]
fn expire_some_sweeps_incrementally() {
    let mut t = table(1024);
    for i in 0..300 {
        establish(&mut t, &key(i), BackendId(1), FlowClass::Plain, 0);
    }
    let n = t.len();
    assert_eq!(n, 300);
    let late = FlowTimeouts::default().established + S;
    // 128 buckets: half a sweep, then the other half.
    let first = t.expire_some(late, 64);
    assert!(first > 0 && first < n, "{first}");
    let second = t.expire_some(late, 64);
    assert_eq!(first + second, n);
    assert!(t.is_empty());
    assert_eq!(t.counters().timeouts, n as u64);
    // Nothing expires early.
    let mut t = table(1024);
    establish(&mut t, &key(1), BackendId(1), FlowClass::Plain, 0);
    assert_eq!(t.expire_some(S, 1000), 0);
    assert_eq!(t.len(), 1);
}

// With capacity 8 the table is one bucket, so every key collides.
#[test]
fn eviction_order_untrusted_then_pinned_never_trusted() {
    let mut c = FlowTableConfig::with_capacity(8);
    c.untrusted_quota_pct = 100;
    let mut t = FlowTable::new(c).unwrap();
    for i in 0..4 {
        establish(
            &mut t,
            &key(i),
            BackendId(1),
            FlowClass::Plain,
            i as u64 * MS,
        );
    }
    // Pinned flows 4..8; flow 6 is the coldest pinned one.
    for (i, at) in [(4u32, 20), (5, 30), (6, 10), (7, 40)] {
        establish(
            &mut t,
            &key(i),
            BackendId(2),
            FlowClass::MptcpPinned,
            at * MS,
        );
    }
    assert_eq!(t.len(), 8);
    let now = 100 * MS;
    let k8 = key(8);
    assert_eq!(
        t.insert(&k8, flow_hash(&k8), BackendId(3), FlowClass::Plain, now),
        InsertOutcome::InsertedEvicting(Evicted::Tracked)
    );
    assert_eq!(
        t.lookup(&key(6), flow_hash(&key(6)), now),
        None,
        "coldest pinned goes first"
    );
    // An untrusted entry is protected while it may still see its second
    // packet (the promotion window): the next newcomer takes the
    // coldest pinned flow instead.
    let k9 = key(9);
    let now = now + 500 * MS;
    assert_eq!(
        t.insert(&k9, flow_hash(&k9), BackendId(3), FlowClass::Plain, now),
        InsertOutcome::InsertedEvicting(Evicted::Tracked)
    );
    assert_eq!(t.lookup(&key(4), flow_hash(&key(4)), now), None);
    // Once it has had its chance it is the next victim, before any
    // pinned flow (8 is 1.5 s old, past the window; 9 is not).
    let now = now + S;
    let k10 = key(10);
    assert_eq!(
        t.insert(&k10, flow_hash(&k10), BackendId(4), FlowClass::Plain, now),
        InsertOutcome::InsertedEvicting(Evicted::Untrusted)
    );
    assert_eq!(t.lookup(&k8, flow_hash(&k8), now), None);
    for i in [5, 7] {
        assert_eq!(
            t.lookup(&key(i), flow_hash(&key(i)), now),
            Some(BackendId(2))
        );
    }
    // Promote 9 and 10, then newcomers eat the remaining pinned flows ...
    assert_eq!(t.lookup(&k9, flow_hash(&k9), now), Some(BackendId(3)));
    assert_eq!(t.lookup(&k10, flow_hash(&k10), now), Some(BackendId(4)));
    for i in 11..13 {
        let k = key(i);
        assert_eq!(
            t.insert(&k, flow_hash(&k), BackendId(4), FlowClass::Plain, now),
            InsertOutcome::InsertedEvicting(Evicted::Tracked)
        );
        assert_eq!(t.lookup(&k, flow_hash(&k), now), Some(BackendId(4)));
    }
    // ... and then stop: only trusted plain flows are left.
    let k = key(13);
    assert_eq!(
        t.insert(&k, flow_hash(&k), BackendId(4), FlowClass::Plain, now),
        InsertOutcome::RejectedFull
    );
    for i in 0..4 {
        assert_eq!(
            t.lookup(&key(i), flow_hash(&key(i)), now),
            Some(BackendId(1))
        );
    }
    assert_eq!(t.counters().full_drops, 1);
    assert_eq!(t.counters().evictions, 5);
    // A reset trusted flow becomes evictable.
    assert!(t.note_rst(&key(0), flow_hash(&key(0)), now));
    assert_eq!(
        t.insert(&k, flow_hash(&k), BackendId(4), FlowClass::Plain, now),
        InsertOutcome::InsertedEvicting(Evicted::Reset)
    );
    assert_eq!(t.lookup(&key(0), flow_hash(&key(0)), now), None);
}

#[test]
fn untrusted_quota_is_enforced() {
    let mut t = table(256); // quota 25% = 64
    assert_eq!(t.untrusted_quota(), 64);
    let mut refused = 0;
    for i in 0..1000 {
        let k = key(i);
        match t.insert(&k, flow_hash(&k), BackendId(1), FlowClass::Plain, 0) {
            InsertOutcome::RejectedQuota => refused += 1,
            InsertOutcome::RejectedFull => panic!("table is mostly empty"),
            _ => {}
        }
        assert!(t.untrusted_len() <= 64);
    }
    assert_eq!(t.untrusted_len(), 64);
    assert_eq!(t.len(), 64);
    assert!(refused > 0);
    assert_eq!(t.counters().untrusted_drops, refused);
}

#[test]
fn a_young_untrusted_entry_is_not_evicted() {
    // One bucket, no second one: one trusted and 7 untrusted entries
    // fill it (the quota, 8, is not reached).
    let mut c = FlowTableConfig::with_capacity(8);
    c.untrusted_quota_pct = 100;
    let mut t = FlowTable::new(c).unwrap();
    establish(&mut t, &key(100), BackendId(1), FlowClass::Plain, 0);
    for i in 0..7 {
        let k = key(i);
        let out = t.insert(&k, flow_hash(&k), BackendId(1), FlowClass::Plain, 0);
        assert_eq!(out, InsertOutcome::Inserted);
    }
    // Within the promotion window a newcomer is refused (full) ...
    let k = key(8);
    let h = flow_hash(&k);
    let at = |ms: u64| ms * MS;
    assert_eq!(
        t.insert(&k, h, BackendId(2), FlowClass::Plain, at(1000)),
        InsertOutcome::RejectedFull
    );
    assert_eq!(t.counters().full_drops, 1);
    // ... past it, it replaces the coldest untrusted entry.
    assert_eq!(
        t.insert(&k, h, BackendId(2), FlowClass::Plain, at(1300)),
        InsertOutcome::InsertedEvicting(Evicted::Untrusted)
    );
    assert_eq!(t.counters().evictions, 1);

    // At the quota, the same rule, counted as a quota refusal.
    let mut t = table(256); // quota 64
    let mut n = 0;
    let mut i = 0;
    while t.untrusted_len() < 64 {
        let k = key(i);
        if t.insert(&k, flow_hash(&k), BackendId(1), FlowClass::Plain, 0) == InsertOutcome::Inserted
        {
            n += 1;
        }
        i += 1;
    }
    assert_eq!(n, 64);
    for j in 0..1000 {
        let k = key(10_000 + j);
        assert_eq!(
            t.insert(&k, flow_hash(&k), BackendId(1), FlowClass::Plain, at(1000)),
            InsertOutcome::RejectedQuota
        );
    }
    assert_eq!(t.counters().untrusted_drops, 1000);
    assert_eq!(t.counters().evictions, 0);
    // Every one of the first 64 is still there and is promoted.
    for j in 0..i {
        let k = key(j);
        assert_eq!(t.lookup(&k, flow_hash(&k), at(1100)), Some(BackendId(1)));
    }
    assert_eq!(t.untrusted_len(), 0);
}

// With a single bucket (no second one), nine flows sent round-robin:
// eight are pinned and stay pinned, the ninth is refused on each of its
// packets. Before the promotion window, each flow evicted the untrusted
// entry of the one before it and none was ever pinned.
#[test]
fn nine_flows_in_one_bucket_round_robin_settle() {
    let mut c = FlowTableConfig::with_capacity(8);
    c.untrusted_quota_pct = 100;
    let mut t = FlowTable::new(c).unwrap();
    let mut hits = [0u32; 9];
    for round in 0..20u64 {
        for (i, hit) in hits.iter_mut().enumerate() {
            let k = key(i as u32);
            let h = flow_hash(&k);
            let now = round * 100 * MS + i as u64 * MS;
            if t.lookup(&k, h, now).is_some() {
                *hit += 1;
            } else {
                t.insert(&k, h, BackendId(1), FlowClass::Plain, now);
            }
        }
    }
    assert_eq!(hits[..8], [19; 8]);
    assert_eq!(hits[8], 0);
    assert_eq!(t.counters().evictions, 0);
    assert_eq!(t.counters().full_drops, 19);
}

// More flows than slots share a first bucket: the surplus goes to their
// second buckets, and every flow is found, promoted and removed there.
#[test]
fn flows_of_a_full_bucket_go_to_their_second_bucket() {
    let mut t = table(1024);
    let target = flow_hash(&key(0)) as usize & t.mask;
    let same: Vec<FlowKey> = (0..200_000)
        .map(key)
        .filter(|k| flow_hash(k) as usize & t.mask == target)
        .take(20)
        .collect();
    assert_eq!(same.len(), 20);
    for (i, k) in same.iter().enumerate() {
        let out = t.insert(k, flow_hash(k), BackendId(i as u16), FlowClass::Plain, 0);
        assert_eq!(out, InsertOutcome::Inserted, "flow {i}");
        assert_summary_exact(&t);
    }
    assert_eq!(t.displaced[target], 12);
    assert!(t.may_hold(flow_hash(&same[0]), Scope::Mptcp));
    for (i, k) in same.iter().enumerate() {
        assert_eq!(t.lookup(k, flow_hash(k), MS), Some(BackendId(i as u16)));
        assert!(t.note_fin(k, flow_hash(k), MS));
    }
    assert_eq!(t.counters().promotions, 20);
    // A lookup for MPTCP entries finds none of these plain flows.
    assert_eq!(t.lookup_mptcp(&same[19], flow_hash(&same[19]), MS), None);
    for (i, k) in same.iter().enumerate().rev() {
        assert_eq!(t.remove(k, flow_hash(k)), Some(BackendId(i as u16)));
        assert_summary_exact(&t);
    }
    assert!(t.is_empty());
    assert_eq!(t.displaced[target], 0);
    assert!(!t.may_hold(flow_hash(&same[0]), Scope::Mptcp));
}

#[test]
fn spoofed_flood_does_not_push_out_established_flows() {
    let cap = 4096;
    let mut t = table(cap);
    // Half the table full of real flows.
    let mut real = Vec::new();
    for i in 0..(cap as u32 / 2) {
        let k = key(i);
        let h = flow_hash(&k);
        if t.insert(&k, h, BackendId((i % 7) as u16), FlowClass::Plain, 0)
            == InsertOutcome::Inserted
        {
            assert!(t.lookup(&k, h, 0).is_some());
            real.push((k, BackendId((i % 7) as u16)));
        }
    }
    // At 50% load a few 8-slot buckets overflow (RejectedFull, ~1%).
    assert!(real.len() > cap * 48 / 100, "{}", real.len());
    // 100x capacity spoofed one-packet flows over 60 s of simulated
    // time; the real flows send a packet every 10 s.
    let flood = 100 * cap as u32;
    let step = 60 * S / u64::from(flood);
    for j in 0..flood {
        let now = u64::from(j) * step;
        let k = key(1_000_000 + j);
        t.insert(&k, flow_hash(&k), BackendId(99), FlowClass::Plain, now);
        assert!(t.untrusted_len() <= t.untrusted_quota());
        if j % (flood / 6) == 0 {
            for (k, b) in &real {
                assert_eq!(t.lookup(k, flow_hash(k), now), Some(*b));
            }
        }
    }
    for (k, b) in &real {
        assert_eq!(t.lookup(k, flow_hash(k), 60 * S), Some(*b));
    }
    let c = t.counters();
    // The flood went through the quota: untrusted entries replaced each
    // other (evictions) and were refused, and none was promoted.
    assert!(c.untrusted_drops > 0 && c.evictions > 0, "{c:?}");
    assert_eq!(c.promotions as usize, real.len());
    assert!(t.len() <= cap);
}

// The displaced count and summary bit of every bucket, recomputed from
// the entries; every entry is where a lookup of its key looks (keys
// hashed with flow_hash).
fn assert_summary_exact(t: &FlowTable) {
    let mut displaced = vec![0u8; t.buckets.len()];
    let (mut len, mut untrusted) = (0, 0);
    for (idx, b) in t.buckets.iter().enumerate() {
        for i in 0..BUCKET_SLOTS {
            let f = b.meta.flags[i];
            if f == 0 {
                assert!(b.meta.flags[i..].iter().all(|&f| f == 0), "bucket {idx}");
                break;
            }
            len += 1;
            untrusted += usize::from(f & UNTRUSTED != 0);
            let h = flow_hash(&b.keys[i]);
            let home = h as usize & t.mask;
            assert_eq!(b.meta.tags[i], tag(h));
            if f & DISPLACED != 0 {
                assert_eq!(other_bucket(home, tag(h), t.mask), idx);
                assert_ne!(home, idx);
                displaced[home] += 1;
            } else {
                assert_eq!(home, idx);
            }
            assert_eq!(t.locate(&b.keys[i], h, Scope::Any), Some((idx, i)));
        }
    }
    assert_eq!(&displaced[..], &t.displaced[..]);
    assert_eq!((t.len(), t.untrusted_len()), (len, untrusted));
    for (idx, b) in t.buckets.iter().enumerate() {
        let holds = b.meta.flags.iter().any(|&f| f & MPTCP != 0) || displaced[idx] != 0;
        assert_eq!(t.summary_bit(idx), holds, "bucket {idx}");
    }
}

#[test]
fn summary_is_small() {
    // One bit per bucket of eight entries.
    let c = FlowTableConfig::with_capacity(1 << 21);
    assert_eq!(c.summary_bytes(), Ok(32 * 1024));
    assert_eq!(FlowTableConfig::with_capacity(8).summary_bytes(), Ok(8));
}

#[test]
fn mptcp_lookup_finds_only_mptcp_entries() {
    let mut t = table(1024);
    let (p, j, m) = (key(1), key(2), key(3));
    establish(&mut t, &p, BackendId(1), FlowClass::Plain, 0);
    establish(&mut t, &j, BackendId(2), FlowClass::MptcpJoin, 0);
    establish(&mut t, &m, BackendId(3), FlowClass::MptcpPinned, 0);
    assert_eq!(t.lookup_mptcp(&p, flow_hash(&p), MS), None);
    assert_eq!(t.lookup_mptcp(&j, flow_hash(&j), MS), Some(BackendId(2)));
    assert_eq!(t.lookup_mptcp(&m, flow_hash(&m), MS), Some(BackendId(3)));
    // A plain lookup finds every class.
    assert_eq!(t.lookup(&p, flow_hash(&p), MS), Some(BackendId(1)));
    assert_eq!(t.lookup(&j, flow_hash(&j), MS), Some(BackendId(2)));
    assert!(t.may_hold(flow_hash(&j), Scope::Mptcp));
    assert_summary_exact(&t);
}

#[test]
fn a_mptcp_entry_plain_neighbour_in_its_bucket_is_not_found() {
    // One bucket: the bit is set by the join, the plain entry beside it
    // must still be invisible to an MPTCP lookup.
    let mut t = table(8);
    let (p, j) = (key(1), key(2));
    establish(&mut t, &p, BackendId(1), FlowClass::Plain, 0);
    establish(&mut t, &j, BackendId(2), FlowClass::MptcpJoin, 0);
    assert!(t.may_hold(flow_hash(&p), Scope::Mptcp));
    assert_eq!(t.lookup_mptcp(&p, flow_hash(&p), MS), None);
    assert_eq!(t.lookup_mptcp(&j, flow_hash(&j), MS), Some(BackendId(2)));
}

#[test]
fn eviction_and_expiry_clear_the_summary_bit() {
    let mut c = FlowTableConfig::with_capacity(8);
    c.untrusted_quota_pct = 100;
    let mut t = FlowTable::new(c).unwrap();
    let pinned = key(100);
    let hp = flow_hash(&pinned);
    establish(&mut t, &pinned, BackendId(2), FlowClass::MptcpPinned, 0);
    assert!(t.may_hold(hp, Scope::Mptcp));
    for i in 0..7 {
        establish(&mut t, &key(i), BackendId(1), FlowClass::Plain, MS);
    }
    // Full bucket: the next newcomer evicts the pinned entry (the only
    // evictable one), and the bit goes with it.
    let k = key(7);
    assert_eq!(
        t.insert(&k, flow_hash(&k), BackendId(1), FlowClass::Plain, 2 * MS),
        InsertOutcome::InsertedEvicting(Evicted::Tracked)
    );
    assert!(!t.may_hold(hp, Scope::Mptcp));
    assert_eq!(t.lookup_mptcp(&pinned, hp, 2 * MS), None);
    assert_summary_exact(&t);

    // Expiry, by the sweep and by a lookup.
    let mut t = table(1024);
    let (j, m) = (key(1), key(2));
    establish(&mut t, &j, BackendId(2), FlowClass::MptcpJoin, 0);
    establish(&mut t, &m, BackendId(3), FlowClass::MptcpPinned, 0);
    let late = FlowTimeouts::default().established + S;
    assert_eq!(t.lookup_mptcp(&m, flow_hash(&m), late), None);
    assert!(
        !t.may_hold(flow_hash(&m), Scope::Mptcp)
            || flow_hash(&m) as usize & t.mask == flow_hash(&j) as usize & t.mask
    );
    assert_eq!(t.expire_some(late, 1000), 1);
    assert!(!t.may_hold(flow_hash(&j), Scope::Mptcp));
    assert!(!t.may_hold(flow_hash(&m), Scope::Mptcp));
    assert_summary_exact(&t);
}

#[derive(Debug, Clone)]
enum SumOp {
    Insert(u8, u8),
    Lookup(u8),
    LookupMptcp(u8),
    Remove(u8),
    Rst(u8),
    Advance(u8),
    Sweep(u8),
}

fn sum_op() -> impl Strategy<Value = SumOp> {
    prop_oneof![
        4 => (0u8..64, 0u8..3).prop_map(|(k, c)| SumOp::Insert(k, c)),
        2 => (0u8..64).prop_map(SumOp::Lookup),
        2 => (0u8..64).prop_map(SumOp::LookupMptcp),
        1 => (0u8..64).prop_map(SumOp::Remove),
        1 => (0u8..64).prop_map(SumOp::Rst),
        1 => (0u8..8).prop_map(SumOp::Advance),
        1 => (0u8..8).prop_map(SumOp::Sweep),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    // 64 keys over 4 buckets of 8: full buckets, evictions, quota
    // refusals, expiries by lookup, insert and sweep. After every step
    // a bucket's summary bit is set iff it holds an MPTCP entry, and an
    // MPTCP lookup finds exactly the MPTCP entries.
    #[test]
    fn summary_bit_iff_bucket_holds_an_mptcp_entry(
        ops in prop::collection::vec(sum_op(), 1..300),
    ) {
        let mut c = FlowTableConfig::with_capacity(32);
        c.untrusted_quota_pct = 50;
        c.timeouts.untrusted = 3 * S;
        c.timeouts.established = 10 * S;
        let mut t = FlowTable::new(c).unwrap();
        let classes = [FlowClass::Plain, FlowClass::MptcpJoin, FlowClass::MptcpPinned];
        // key -> class of its entry, when inserted (the table may have
        // dropped it since: expiry or eviction).
        let mut class_of: HashMap<u8, FlowClass> = HashMap::new();
        let mut now = 0u64;
        for o in ops {
            match o {
                SumOp::Insert(k, ci) => {
                    let kk = key(u32::from(k));
                    let class = classes[usize::from(ci)];
                    match t.insert(&kk, flow_hash(&kk), BackendId(k.into()), class, now) {
                        InsertOutcome::Inserted | InsertOutcome::InsertedEvicting(_) => {
                            class_of.insert(k, class);
                        }
                        _ => {}
                    }
                }
                SumOp::Lookup(k) => {
                    let kk = key(u32::from(k));
                    t.lookup(&kk, flow_hash(&kk), now);
                }
                SumOp::LookupMptcp(k) => {
                    let kk = key(u32::from(k));
                    let h = flow_hash(&kk);
                    let any_found = t.buckets[h as usize & t.mask]
                        .keys
                        .iter()
                        .zip(t.buckets[h as usize & t.mask].meta.flags)
                        .any(|(x, f)| f != 0 && x == &kk);
                    let got = t.lookup_mptcp(&kk, h, now);
                    if got.is_some() {
                        prop_assert!(class_of.get(&k).is_some_and(|c| c.is_mptcp()));
                        prop_assert_eq!(got, Some(BackendId(k.into())));
                    } else if any_found && class_of.get(&k).is_some_and(|c| c.is_mptcp()) {
                        // Only an expired entry may be missed.
                        prop_assert!(t.buckets[h as usize & t.mask]
                            .keys
                            .iter()
                            .zip(t.buckets[h as usize & t.mask].meta.flags)
                            .all(|(x, f)| f == 0 || x != &kk));
                    }
                }
                SumOp::Remove(k) => {
                    let kk = key(u32::from(k));
                    t.remove(&kk, flow_hash(&kk));
                }
                SumOp::Rst(k) => {
                    let kk = key(u32::from(k));
                    t.note_rst(&kk, flow_hash(&kk), now);
                }
                SumOp::Advance(s) => now += u64::from(s) * S,
                SumOp::Sweep(n) => {
                    t.expire_some(now, usize::from(n));
                }
            }
            assert_summary_exact(&t);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    // 96 flows over a 64-entry table (8 buckets), packets in any order,
    // 0 to 0.4 s apart (under 240 s in all, so no pinned flow reaches
    // the established timeout; untrusted ones pass the promotion
    // window and may time out): a flow that has
    // been pinned (a hit) is never lost nor moved, however full its
    // buckets get, and the table's bookkeeping stays exact.
    #[test]
    fn a_pinned_flow_stays_pinned(
        packets in prop::collection::vec((0u32..96, 0u64..400), 1..600),
    ) {
        let mut c = FlowTableConfig::with_capacity(64);
        c.untrusted_quota_pct = 50;
        let mut t = FlowTable::new(c).unwrap();
        let mut pinned: HashMap<u32, BackendId> = HashMap::new();
        let mut now = 0u64;
        for (n, (f, step)) in packets.into_iter().enumerate() {
            now += step * MS;
            let k = key(f);
            let h = flow_hash(&k);
            match t.lookup(&k, h, now) {
                Some(b) => {
                    if let Some(&p) = pinned.get(&f) {
                        prop_assert_eq!(b, p);
                    }
                    pinned.insert(f, b);
                }
                None => {
                    prop_assert!(!pinned.contains_key(&f), "flow {} lost", f);
                    t.insert(&k, h, BackendId(n as u16), FlowClass::Plain, now);
                }
            }
            prop_assert!(t.untrusted_len() <= t.untrusted_quota());
            assert_summary_exact(&t);
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Insert(u8, u16),
    Lookup(u8),
    Remove(u8),
    Fin(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..8, any::<u16>()).prop_map(|(k, b)| Op::Insert(k, b)),
        (0u8..8).prop_map(Op::Lookup),
        (0u8..8).prop_map(Op::Remove),
        (0u8..8).prop_map(Op::Fin),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    // All keys forced into one bucket (same hash) and never more keys
    // than slots: the table must behave like a map, which exercises the
    // compaction on removal.
    #[test]
    fn one_bucket_behaves_like_a_map(ops in prop::collection::vec(op(), 1..200)) {
        let mut c = FlowTableConfig::with_capacity(1024);
        c.untrusted_quota_pct = 100;
        let mut t = FlowTable::new(c).unwrap();
        let mut model: HashMap<u8, u16> = HashMap::new();
        for o in ops {
            match o {
                Op::Insert(k, b) => {
                    let got = t.insert(&key(u32::from(k)), 5, BackendId(b), FlowClass::Plain, 0);
                    match model.get(&k) {
                        Some(&old) => prop_assert_eq!(got, InsertOutcome::AlreadyPresent(BackendId(old))),
                        None => {
                            prop_assert_eq!(got, InsertOutcome::Inserted);
                            model.insert(k, b);
                        }
                    }
                }
                Op::Lookup(k) => {
                    prop_assert_eq!(t.lookup(&key(u32::from(k)), 5, 0), model.get(&k).map(|&b| BackendId(b)));
                }
                Op::Remove(k) => {
                    prop_assert_eq!(t.remove(&key(u32::from(k)), 5), model.remove(&k).map(BackendId));
                }
                Op::Fin(k) => {
                    prop_assert_eq!(t.note_fin(&key(u32::from(k)), 5, 0), model.contains_key(&k));
                }
            }
            prop_assert_eq!(t.len(), model.len());
        }
    }
}
