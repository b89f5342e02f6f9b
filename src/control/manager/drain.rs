//! `mplb drain`: the instance withdraws its VIPs, keeps forwarding what
//! still arrives, and ends once no packet was forwarded for the quiet time
//! (the routers moved the traffic to other instances), or at the deadline
//! whatever happens. No I/O: the caller passes the clock and the workers'
//! `forwarded` count.

use std::time::{Duration, Instant};

use crate::control::bgp::DrainReport;

/// How a drain ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// No packet forwarded for the quiet time.
    Quiet,
    /// The deadline passed first.
    Deadline,
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Quiet => "quiet",
            Outcome::Deadline => "deadline",
        }
    }
}

/// A drain in progress.
#[derive(Debug)]
pub struct Drain {
    started: Instant,
    quiet_since: Instant,
    forwarded: u64,
    quiet: Duration,
    deadline: Duration,
    done: Option<Outcome>,
}

impl Drain {
    /// Starts at `now`, the workers having forwarded `forwarded` packets.
    pub fn new(now: Instant, forwarded: u64, quiet: Duration, deadline: Duration) -> Drain {
        Drain {
            started: now,
            quiet_since: now,
            forwarded,
            quiet,
            deadline,
            done: None,
        }
    }

    /// Takes a reading; returns the outcome the first time the drain ends.
    pub fn observe(&mut self, now: Instant, forwarded: u64) -> Option<Outcome> {
        if self.done.is_some() {
            return None;
        }
        if forwarded != self.forwarded {
            self.forwarded = forwarded;
            self.quiet_since = now;
        }
        let outcome = if now.saturating_duration_since(self.quiet_since) >= self.quiet {
            Outcome::Quiet
        } else if now.saturating_duration_since(self.started) >= self.deadline {
            Outcome::Deadline
        } else {
            return None;
        };
        self.done = Some(outcome);
        Some(outcome)
    }

    pub fn done(&self) -> Option<Outcome> {
        self.done
    }

    pub fn started(&self) -> Instant {
        self.started
    }

    /// What it says about an ended drain (`mplb drain --wait`, the log).
    pub fn summary(&self, outcome: Outcome, now: Instant) -> String {
        let took = now.saturating_duration_since(self.started).as_secs_f64();
        match outcome {
            Outcome::Quiet => format!(
                "drained: no packet forwarded to a VIP for {} s ({took:.1} s after the withdrawal); mplb exits",
                self.quiet.as_secs()
            ),
            Outcome::Deadline => format!(
                "drain deadline of {} s passed with packets still forwarded to a VIP ({:.1} s ago); mplb exits anyway",
                self.deadline.as_secs(),
                now.saturating_duration_since(self.quiet_since)
                    .as_secs_f64()
            ),
        }
    }

    pub fn report(&self, now: Instant) -> DrainReport {
        DrainReport {
            elapsed_secs: now.saturating_duration_since(self.started).as_secs_f64(),
            quiet_secs: now
                .saturating_duration_since(self.quiet_since)
                .as_secs_f64(),
            quiet_needed_secs: self.quiet.as_secs(),
            deadline_secs: self.deadline.as_secs(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn ends_after_the_quiet_time_counted_from_the_last_packet() {
        let t0 = Instant::now();
        let mut d = Drain::new(t0, 100, 5 * S, 60 * S);
        assert_eq!(d.observe(t0 + 3 * S, 150), None, "traffic still comes");
        assert_eq!(d.observe(t0 + 7 * S, 150), None, "quiet for 4 s only");
        assert_eq!(d.observe(t0 + 8 * S, 150), Some(Outcome::Quiet));
        assert_eq!(d.observe(t0 + 9 * S, 150), None, "reported once");
        assert_eq!(d.done(), Some(Outcome::Quiet));
        assert!(d.summary(Outcome::Quiet, t0 + 8 * S).starts_with("drained"));
    }

    #[test]
    fn a_quiet_instance_ends_at_once_after_the_quiet_time() {
        let t0 = Instant::now();
        let mut d = Drain::new(t0, 7, 2 * S, 60 * S);
        assert_eq!(d.observe(t0 + S, 7), None);
        assert_eq!(d.observe(t0 + 2 * S, 7), Some(Outcome::Quiet));
    }

    #[test]
    fn traffic_that_never_stops_ends_at_the_deadline() {
        let t0 = Instant::now();
        let mut d = Drain::new(t0, 0, 5 * S, 10 * S);
        for i in 1..10u32 {
            assert_eq!(d.observe(t0 + i * S, u64::from(i)), None, "second {i}");
        }
        assert_eq!(d.observe(t0 + 10 * S, 10), Some(Outcome::Deadline));
        let r = d.report(t0 + 10 * S);
        assert_eq!((r.quiet_secs, r.deadline_secs), (0.0, 10));
        assert!(
            d.summary(Outcome::Deadline, t0 + 10 * S)
                .contains("deadline of 10 s")
        );
    }
}
