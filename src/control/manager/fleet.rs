//! The fleet side of the management thread: announcing the VIPs by BGP
//! (with `[bgp]`) and `mplb drain`.

use std::time::{Duration, Instant};

use super::drain::Drain;
use super::{DrainWaiter, Manager};
use crate::control::bgp::{Announcer, FleetReport, Instance};
use crate::control::log;

impl Manager {
    /// Recomputes which VIPs this instance announces (with `[bgp]`).
    pub(super) fn announce(&mut self) {
        let instance = Instance {
            forwarding: self.forwarding,
            workers_polling: self.stalled.is_empty(),
            draining: self.drain.is_some(),
            health_settled: self.health.as_ref().is_none_or(|h| h.settled()),
        };
        if let Some(b) = &mut self.bgp {
            b.update(self.core.current(), instance);
        }
    }

    /// Looks at the workers' heartbeats once forwarding: a worker that
    /// stopped polling (or polls again) is logged once per change and the
    /// announcements follow (see `liveness`).
    pub(super) fn watch_workers(&mut self, now: Instant) {
        if !self.forwarding {
            return;
        }
        let beats: Vec<u64> = self.slots.iter().map(|s| s.beats()).collect();
        let stalled = self.liveness.stalled(&beats, now);
        if stalled == self.stalled {
            return;
        }
        let list = |v: &[usize]| {
            v.iter()
                .map(|w| w.to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        if stalled.is_empty() {
            log::event(
                "info",
                "workers_polling",
                &[("resumed", &list(&self.stalled))],
            );
        } else {
            log::event(
                "error",
                "worker_stalled",
                &[
                    ("workers", &list(&stalled)),
                    ("secs", &super::liveness::STALL_AFTER.as_secs()),
                    (
                        "message",
                        &"no counters published: VIPs withdrawn until every worker polls again",
                    ),
                ],
            );
        }
        self.stalled = stalled;
        self.announce();
    }

    /// At start, before the ports forward: an empty routes file (nothing
    /// announced yet) and a first look at the speaker.
    pub fn start_bgp(&mut self) {
        if let Some(b) = &mut self.bgp {
            b.start(Instant::now());
        }
    }

    /// The ports forward and workers use the published snapshot: VIPs may
    /// be announced from now on.
    pub fn set_forwarding(&mut self) {
        self.forwarding = true;
        self.announce();
    }

    /// At stop: every VIP withdrawn; `drain --wait` clients told if the
    /// drain did not end.
    pub fn stop_bgp(&mut self) {
        if let Some(b) = &mut self.bgp {
            b.stop();
        }
        // Each waiter's channel holds one answer: those of an ended drain
        // have theirs. (`try_send`: never block the way out.)
        if !self.drained() {
            for w in &self.drain_waiters {
                let _ = w.try_send(Err(
                    "mplb stopped (signal or --duration) before the drain ended".to_string(),
                ));
            }
        }
    }

    /// `mplb drain`: withdraws every VIP, keeps forwarding; the management
    /// loop stops once [`Manager::drained`].
    pub(super) fn start_drain(&mut self, deadline_secs: Option<u64>) -> String {
        let now = Instant::now();
        let d = &self.core.config().drain;
        let quiet = Duration::from_secs(d.quiet_secs);
        let deadline = Duration::from_secs(deadline_secs.unwrap_or(d.deadline_secs));
        if let Some(drain) = &self.drain {
            return format!(
                "already draining (pid {}) for {:.0} s: every VIP stays withdrawn; nothing changed\n",
                std::process::id(),
                now.saturating_duration_since(drain.started()).as_secs_f64()
            );
        }
        self.drain = Some(Drain::new(now, self.counters().forwarded, quiet, deadline));
        self.announce();
        let withdrawn = match &self.bgp {
            Some(_) => "every VIP withdrawn from BGP",
            None => "no [bgp]: nothing was announced",
        };
        log::event(
            "info",
            "drain_started",
            &[
                ("quiet_secs", &quiet.as_secs()),
                ("deadline_secs", &deadline.as_secs()),
                ("message", &withdrawn),
            ],
        );
        format!(
            "draining (pid {}): {withdrawn}; still forwarding; exits once no packet goes to a VIP for {} s, or after {} s\n",
            std::process::id(),
            quiet.as_secs(),
            deadline.as_secs()
        )
    }

    /// Answers `waiter` when the drain ends (now, if it has).
    pub fn wait_drained(&mut self, waiter: DrainWaiter) {
        match &self.drain {
            None => {
                let _ = waiter.try_send(Err("not draining: run `mplb drain` first".to_string()));
            }
            Some(d) => match d.done() {
                Some(outcome) => {
                    let _ = waiter.try_send(Ok(d.summary(outcome, Instant::now()) + "\n"));
                }
                None => self.drain_waiters.push(waiter),
            },
        }
    }

    /// Whether a drain ended: the management loop stops.
    pub fn drained(&self) -> bool {
        self.drain.as_ref().is_some_and(|d| d.done().is_some())
    }

    /// Whether `mplb drain` ran.
    pub fn draining(&self) -> bool {
        self.drain.is_some()
    }

    /// Whether `drain --wait` clients still wait for their answer to be
    /// taken (the management loop lets them, briefly, before exiting).
    pub fn drain_answers_pending(&self) -> bool {
        self.drain_waiters.iter().any(|w| !w.is_empty())
    }

    pub(super) fn observe_drain(&mut self, now: Instant) {
        let forwarded = self.counters().forwarded;
        let Some(d) = &mut self.drain else {
            return;
        };
        let Some(outcome) = d.observe(now, forwarded) else {
            return;
        };
        let summary = d.summary(outcome, now);
        log::event(
            "info",
            "drain_done",
            &[("outcome", &outcome.name()), ("message", &summary)],
        );
        for w in &self.drain_waiters {
            let _ = w.try_send(Ok(summary.clone() + "\n"));
        }
    }

    /// The fleet side of `stats` and `/metrics`.
    pub(super) fn fleet(&self) -> FleetReport {
        FleetReport {
            stalled_workers: self.stalled.len(),
            drain: self.drain.as_ref().map(|d| d.report(Instant::now())),
            bgp: self.bgp.as_ref().map(Announcer::report),
        }
    }
}
