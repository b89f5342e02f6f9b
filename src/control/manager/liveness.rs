//! Whether every worker still polls. Each publishes its counters every few
//! hundred loop turns (microseconds apart, busy or idle) and its slot
//! counts the publications ([`StatsSlot::beats`]). A worker whose count
//! has not moved for [`STALL_AFTER`] is stalled — an endless loop, a device
//! call that does not return — and, like a dead instance, this one then
//! announces no VIP until every worker polls again: BGP moves the traffic
//! to the instances that forward. (A dead process is covered elsewhere:
//! its BGP session ends, or `mplb withdraw` runs after it.)
//!
//! [`StatsSlot::beats`]: crate::control::stats::StatsSlot::beats

use std::time::{Duration, Instant};

/// How long a worker may go without publishing before it counts as
/// stalled: far above a scheduling hiccup on a shared CPU, far below a
/// BGP hold time.
pub const STALL_AFTER: Duration = Duration::from_secs(2);

/// Each worker's last beat count and when it last moved.
#[derive(Debug, Default)]
pub struct Liveness {
    last: Vec<(u64, Instant)>,
}

impl Liveness {
    /// The indices of the workers whose count in `beats` has not moved for
    /// [`STALL_AFTER`] as of `now`. The first call (or a change in the
    /// number of workers) starts every clock at `now`.
    pub fn stalled(&mut self, beats: &[u64], now: Instant) -> Vec<usize> {
        if self.last.len() != beats.len() {
            self.last = beats.iter().map(|&b| (b, now)).collect();
        }
        let mut out = Vec::new();
        for (i, (&b, last)) in beats.iter().zip(self.last.iter_mut()).enumerate() {
            if b != last.0 {
                *last = (b, now);
            } else if now.saturating_duration_since(last.1) >= STALL_AFTER {
                out.push(i);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_that_stops_publishing_is_stalled_until_it_publishes_again() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut l = Liveness::default();
        assert!(l.stalled(&[5, 9], at(0)).is_empty());
        // Worker 0 moves, worker 1 does not: stalled once 2 s have passed.
        assert!(l.stalled(&[6, 9], at(1_000)).is_empty());
        assert!(l.stalled(&[7, 9], at(1_999)).is_empty());
        assert_eq!(l.stalled(&[8, 9], at(2_000)), vec![1]);
        // Worker 0 stops too; worker 1 moves again.
        assert_eq!(l.stalled(&[8, 9], at(3_999)), vec![1]);
        assert_eq!(l.stalled(&[8, 10], at(4_000)), vec![0]);
        assert!(l.stalled(&[9, 11], at(4_100)).is_empty());
        // Another number of workers (a restart of the count): clocks anew.
        assert!(l.stalled(&[1], at(10_000)).is_empty());
        assert_eq!(l.stalled(&[1], at(12_000)), vec![0]);
    }
}
