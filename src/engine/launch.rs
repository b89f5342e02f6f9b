//! The workers on their lcores: launched together, joined together, and
//! their counters summed up at the end.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::control::stats::StatsSlot;
use crate::datapath::counters::Counters;
use crate::dpdk::{LaunchedLcore, launch_on_lcore};

use super::Context;
use super::worker::Worker;

/// The launched workers. Dropping it without [`Running::join`] (an error
/// path) sets the stop flag and waits for every worker.
pub(super) struct Running {
    lcores: Vec<LaunchedLcore>,
    stop: Arc<AtomicBool>,
}

/// Runs each worker on its lcore. If one cannot be launched, those already
/// running are stopped and joined.
pub(super) fn launch(context: &Context, workers: Vec<Worker>) -> Result<Running, String> {
    let mut running = Running {
        lcores: Vec::with_capacity(workers.len()),
        stop: Arc::clone(&context.signals.stop),
    };
    for w in workers {
        let lcore = w.lcore;
        let launched = launch_on_lcore(context.eal, lcore, move || w.run());
        running.lcores.push(launched.map_err(|e| e.to_string())?);
    }
    Ok(running)
}

impl Running {
    /// Waits for every worker (the stop flag must be set); returns the
    /// lcores whose worker failed.
    pub(super) fn join(mut self) -> Vec<u32> {
        let mut failed = Vec::new();
        for l in std::mem::take(&mut self.lcores) {
            let lcore = l.lcore();
            if l.wait() != 0 {
                failed.push(lcore);
            }
        }
        failed
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.lcores.is_empty() {
            return;
        }
        self.stop.store(true, Ordering::SeqCst);
        for l in self.lcores.drain(..) {
            l.wait();
        }
    }
}

/// Prints each worker's final counters and their total; returns the total.
pub(super) fn print_counters(slots: &[Arc<StatsSlot>]) -> Counters {
    let mut total = Counters::default();
    for (w, slot) in slots.iter().enumerate() {
        let c = slot.read();
        say!("worker {w}: {}", format_counters(&c));
        total.add(&c);
    }
    say!("total: {}", format_counters(&total));
    total
}

/// Non-zero counters as `name=value` pairs.
pub fn format_counters(c: &Counters) -> String {
    let parts: Vec<String> = Counters::NAMES
        .iter()
        .zip(c.values())
        .filter(|(_, v)| *v != 0)
        .map(|(n, v)| format!("{n}={v}"))
        .collect();
    if parts.is_empty() {
        "(all zero)".to_string()
    } else {
        parts.join(" ")
    }
}
