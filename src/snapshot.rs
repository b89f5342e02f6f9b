//! Hand-off of immutable forwarding snapshots from the management thread to
//! the poll-mode workers, without stopping them.
//!
//! The publisher swaps an `Arc<T>` into an [`arc_swap::ArcSwap`]. Each worker
//! holds a [`Reader`], a cache of the last `Arc<T>` it saw; once per burst it
//! compares the cached pointer with the published one — a single atomic load —
//! and only on a change clones the new `Arc` (a reference-count increment).
//! So a worker never blocks, and within a burst it sees one consistent
//! snapshot.
//!
//! Freeing: an old snapshot must never be freed on a worker (a large free can
//! take a syscall) nor while a worker may still read it. The publisher keeps
//! every replaced snapshot in a retired list and [`Publisher::reap`] drops
//! those whose only remaining reference is that list — i.e. no worker cache
//! still holds them, and none can pick them up again because they are no
//! longer published. The last reference is therefore always released on the
//! management thread.

#![forbid(unsafe_code)]

use std::sync::Arc;

use arc_swap::ArcSwap;
use arc_swap::cache::Cache;

/// The management side: publishes new snapshots and frees retired ones.
pub struct Publisher<T> {
    current: Arc<ArcSwap<T>>,
    retired: Vec<Arc<T>>,
    generation: u64,
}

impl<T> Publisher<T> {
    /// Publishes `initial` (a value or an `Arc` of one) as generation 0.
    pub fn new(initial: impl Into<Arc<T>>) -> Self {
        Publisher {
            current: Arc::new(ArcSwap::new(initial.into())),
            retired: Vec::new(),
            generation: 0,
        }
    }

    /// A reader for one worker.
    pub fn reader(&self) -> Reader<T> {
        Reader {
            cache: Cache::new(Arc::clone(&self.current)),
        }
    }

    /// Makes `next` the snapshot every worker uses from its next burst on.
    /// `next` is a value or an `Arc` of one. Returns the new generation
    /// number (1 for the first publish).
    pub fn publish(&mut self, next: impl Into<Arc<T>>) -> u64 {
        let old = self.current.swap(next.into());
        self.retired.push(old);
        self.generation += 1;
        self.reap();
        self.generation
    }

    /// Frees retired snapshots that no worker holds any more; returns how
    /// many are still waiting for a worker to move on.
    pub fn reap(&mut self) -> usize {
        self.retired.retain(|s| Arc::strong_count(s) > 1);
        self.retired.len()
    }

    /// The snapshot currently published.
    pub fn current(&self) -> Arc<T> {
        self.current.load_full()
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }
}

/// A worker's view: [`Reader::load`] once per burst.
pub struct Reader<T> {
    cache: Cache<Arc<ArcSwap<T>>, Arc<T>>,
}

impl<T> Reader<T> {
    /// The current snapshot: one atomic load when nothing changed.
    #[inline]
    pub fn load(&mut self) -> &T {
        self.cache.load()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    /// Counts live snapshots, so the test can see that retired ones are freed
    /// and that none is freed while a reader still uses it.
    struct Snap {
        value: u64,
        check: u64,
        live: Arc<AtomicUsize>,
    }
    impl Snap {
        fn new(value: u64, live: &Arc<AtomicUsize>) -> Snap {
            live.fetch_add(1, Ordering::SeqCst);
            Snap {
                value,
                check: value.wrapping_mul(0x9E37_79B9_7F4A_7C15),
                live: Arc::clone(live),
            }
        }
    }
    impl Drop for Snap {
        fn drop(&mut self) {
            // Poison the contents so a use after drop would fail the check below.
            self.check = 0xdead;
            self.live.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// A publisher of snapshot 1 and a reader that has loaded it.
    fn one_read(live: &Arc<AtomicUsize>) -> (Publisher<Snap>, Reader<Snap>) {
        let p = Publisher::new(Snap::new(1, live));
        let mut r = p.reader();
        assert_eq!(r.load().value, 1);
        (p, r)
    }

    #[test]
    fn reader_sees_published_snapshot() {
        let live = Arc::new(AtomicUsize::new(0));
        let (mut p, mut r) = one_read(&live);
        assert_eq!(p.publish(Snap::new(2, &live)), 1);
        assert_eq!(r.load().value, 2);
    }

    #[test]
    fn retired_snapshot_freed_only_after_reader_moves_on() {
        let live = Arc::new(AtomicUsize::new(0));
        let (mut p, mut r) = one_read(&live);
        p.publish(Snap::new(2, &live));
        // The reader still caches snapshot 1: it must stay alive.
        assert_eq!(p.reap(), 1);
        assert_eq!(live.load(Ordering::SeqCst), 2);
        // The reader's next burst moves it to snapshot 2; then 1 can go.
        assert_eq!(r.load().value, 2);
        assert_eq!(p.reap(), 0);
        assert_eq!(live.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn concurrent_readers_never_see_a_freed_snapshot() {
        let live = Arc::new(AtomicUsize::new(0));
        let mut p = Publisher::new(Snap::new(0, &live));
        let stop = AtomicBool::new(false);
        let readers: Vec<_> = (0..3).map(|_| p.reader()).collect();
        std::thread::scope(|s| {
            for mut r in readers {
                let stop = &stop;
                s.spawn(move || {
                    let mut last = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let snap = r.load();
                        assert_eq!(snap.check, snap.value.wrapping_mul(0x9E37_79B9_7F4A_7C15));
                        assert!(snap.value >= last, "snapshots went backwards");
                        last = snap.value;
                    }
                });
            }
            for v in 1..=2000 {
                p.publish(Snap::new(v, &live));
            }
            stop.store(true, Ordering::Relaxed);
        });
        // Readers are gone (their caches dropped); everything retired can go.
        assert_eq!(p.reap(), 0);
        assert_eq!(live.load(Ordering::SeqCst), 1);
    }
}
