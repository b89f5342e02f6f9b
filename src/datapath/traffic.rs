//! Per-VIP and per-backend traffic counters (packets, bytes, new flows) of
//! one worker, readable by the management thread at any time.
//!
//! Indexed directly by the stable 16-bit VIP and backend ids, in arrays of
//! 2^16 cells, so recording is two array accesses with no bounds to check. Each worker has its own
//! `Traffic` and is its only writer: a relaxed load and store (plain moves on
//! x86) instead of an atomic read-modify-write; readers may see a value a
//! few packets old, never a torn one. A cell takes 32 bytes, aligned to
//! that, so that recording (and a burst's prefetch of it) touches one cache
//! line, not two. Memory: 2 × 65536 × 32 bytes = 4 MiB per worker,
//! allocated once.

use std::sync::atomic::{AtomicU64, Ordering};

const IDS: usize = 1 << 16;

#[derive(Default)]
#[repr(align(32))]
struct Cell {
    packets: AtomicU64,
    bytes: AtomicU64,
    new_flows: AtomicU64,
}

/// Totals for one VIP or backend.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrafficTotals {
    pub packets: u64,
    pub bytes: u64,
    pub new_flows: u64,
}

/// One worker's per-VIP and per-backend counters.
pub struct Traffic {
    // Fixed size: a u16 id indexes them without a bounds check.
    vips: Box<[Cell; IDS]>,
    backends: Box<[Cell; IDS]>,
}

impl Default for Traffic {
    fn default() -> Self {
        Traffic::new()
    }
}

impl std::fmt::Debug for Traffic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Traffic")
    }
}

#[inline]
fn bump(a: &AtomicU64, by: u64) {
    a.store(
        a.load(Ordering::Relaxed).wrapping_add(by),
        Ordering::Relaxed,
    );
}

impl Cell {
    #[inline]
    fn add(&self, bytes: u64, new_flows: u64) {
        bump(&self.packets, 1);
        bump(&self.bytes, bytes);
        // Added even when 0: cheaper than a branch per packet.
        bump(&self.new_flows, new_flows);
    }
}

fn cells() -> Box<[Cell; IDS]> {
    let v: Box<[Cell]> = (0..IDS).map(|_| Cell::default()).collect();
    // Exactly IDS cells: the conversion cannot fail.
    v.try_into().unwrap_or_else(|_| unreachable!())
}

impl Traffic {
    pub fn new() -> Traffic {
        Traffic {
            vips: cells(),
            backends: cells(),
        }
    }

    /// Counts one forwarded packet of `bytes` to `backend` of `vip`. Only
    /// the owning worker calls this.
    #[inline]
    pub fn record(&self, vip: u16, backend: u16, bytes: u64, new_flow: bool) {
        let new = u64::from(new_flow);
        self.vips[usize::from(vip)].add(bytes, new);
        self.backends[usize::from(backend)].add(bytes, new);
    }

    /// What [`Traffic::record`] writes for `vip`, to prefetch.
    #[inline(always)]
    pub fn vip_cell(&self, vip: u16) -> &impl Sized {
        &self.vips[usize::from(vip)]
    }

    fn read(cells: &[Cell; IDS], id: u16) -> TrafficTotals {
        let c = &cells[usize::from(id)];
        TrafficTotals {
            packets: c.packets.load(Ordering::Relaxed),
            bytes: c.bytes.load(Ordering::Relaxed),
            new_flows: c.new_flows.load(Ordering::Relaxed),
        }
    }

    pub fn vip(&self, id: u16) -> TrafficTotals {
        Traffic::read(&self.vips, id)
    }

    pub fn backend(&self, id: u16) -> TrafficTotals {
        Traffic::read(&self.backends, id)
    }
}

impl std::ops::AddAssign for TrafficTotals {
    fn add_assign(&mut self, o: TrafficTotals) {
        self.packets = self.packets.wrapping_add(o.packets);
        self.bytes = self.bytes.wrapping_add(o.bytes);
        self.new_flows = self.new_flows.wrapping_add(o.new_flows);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cell_is_one_cache_line_to_write() {
        assert_eq!(std::mem::size_of::<Cell>(), 32);
        assert_eq!(std::mem::align_of::<Cell>(), 32);
    }

    #[test]
    fn records_per_vip_and_backend() {
        let t = Traffic::new();
        t.record(3, 65535, 100, true);
        t.record(3, 7, 60, false);
        assert_eq!(
            t.vip(3),
            TrafficTotals {
                packets: 2,
                bytes: 160,
                new_flows: 1
            }
        );
        assert_eq!(
            t.backend(65535),
            TrafficTotals {
                packets: 1,
                bytes: 100,
                new_flows: 1
            }
        );
        assert_eq!(t.backend(7).packets, 1);
        assert_eq!(t.vip(4), TrafficTotals::default());
    }
}
