//! Counters flowing from the workers to the management thread.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam::utils::CachePadded;

use super::metrics::FlowTableMetrics;
use crate::datapath::counters::Counters;

/// A worker's counters as the management thread sees them, on their own
/// cache line(s) so workers never share a line.
pub struct StatsSlot {
    values: CachePadded<[AtomicU64; Counters::LEN]>,
    /// The worker's flow table: len, capacity, inserts, evictions, timeouts.
    flow: [AtomicU64; 5],
    /// Publications so far: a heartbeat the management thread watches (a
    /// worker publishes every few hundred loop turns, busy or idle).
    beats: AtomicU64,
}

impl Default for StatsSlot {
    fn default() -> Self {
        StatsSlot {
            values: CachePadded::new(std::array::from_fn(|_| AtomicU64::new(0))),
            flow: std::array::from_fn(|_| AtomicU64::new(0)),
            beats: AtomicU64::new(0),
        }
    }
}

impl StatsSlot {
    /// Single writer (the worker): relaxed stores are enough; readers may see
    /// counters of slightly different instants, never torn values.
    pub fn publish(&self, c: &Counters) {
        for (slot, v) in self.values.iter().zip(c.values()) {
            slot.store(v, Ordering::Relaxed);
        }
        // Single writer: a load and a store, no locked add.
        let b = self.beats.load(Ordering::Relaxed);
        self.beats.store(b.wrapping_add(1), Ordering::Relaxed);
    }

    /// How many times the worker has published: moves while it polls.
    pub fn beats(&self) -> u64 {
        self.beats.load(Ordering::Relaxed)
    }

    /// The worker's flow-table figures, published with the counters.
    pub fn publish_flow_table(&self, f: FlowTableMetrics) {
        for (slot, v) in
            self.flow
                .iter()
                .zip([f.len, f.capacity, f.inserts, f.evictions, f.timeouts])
        {
            slot.store(v, Ordering::Relaxed);
        }
    }

    pub fn read_flow_table(&self) -> FlowTableMetrics {
        let v: [u64; 5] = std::array::from_fn(|i| self.flow[i].load(Ordering::Relaxed));
        FlowTableMetrics {
            len: v[0],
            capacity: v[1],
            inserts: v[2],
            evictions: v[3],
            timeouts: v[4],
        }
    }

    pub fn read(&self) -> Counters {
        let mut v = [0u64; Counters::LEN];
        for (out, slot) in v.iter_mut().zip(self.values.iter()) {
            *out = slot.load(Ordering::Relaxed);
        }
        Counters::from_values(&v)
    }
}

/// The sum of every worker's counters.
pub fn total(slots: &[Arc<StatsSlot>]) -> Counters {
    let mut total = Counters::default();
    for s in slots {
        total.add(&s.read());
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_counters_are_read_back_and_summed() {
        let a = Arc::new(StatsSlot::default());
        let b = Arc::new(StatsSlot::default());
        a.publish(&Counters {
            rx_packets: 5,
            ..Counters::default()
        });
        b.publish(&Counters {
            rx_packets: 7,
            tx_packets: 1,
            ..Counters::default()
        });
        assert_eq!(a.read().rx_packets, 5);
        let t = total(&[a, b]);
        assert_eq!((t.rx_packets, t.tx_packets), (12, 1));
    }
}
