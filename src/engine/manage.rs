//! The management side of a run, on the main lcore while the workers
//! forward: the control socket, the metrics endpoint, the health checks and
//! the loop that serves them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam::channel::{Receiver, Sender};

use crate::config::Config;
use crate::control::manager::{Manager, Request};
use crate::control::metrics::{MetricsQuery, Unanswered, serve_metrics};
use crate::control::sd_notify::Notifier;
use crate::control::socket::{self, Pending};
use crate::control::stats::{StatsSlot, total};
use crate::datapath::counters::Counters;

use super::{Context, RunOptions};

/// Starts the management threads, runs the management loop until told to
/// stop, then stops the health checks and joins the threads.
pub(super) fn run(
    context: &Context,
    manager: &mut Manager,
    slots: &[Arc<StatsSlot>],
) -> Result<(), String> {
    let signals = context.signals;
    let (tx, requests) = socket::channel();
    // Before anything forwards: the routes file emptied (a BIRD still
    // holding a previous run's announces nothing).
    manager.start_bgp();
    let threads = start_management(context.config, manager, tx, &signals.stop)?;
    // Ports started, workers launched, control socket and metrics served:
    // mplb forwards now, and a service manager may consider it started.
    let notify = Notifier::from_env();
    notify.send(&format!(
        "READY=1\nSTATUS=forwarding with {} worker(s)",
        slots.len()
    ));
    manager.set_forwarding();
    manage(manager, context, slots, &requests, &notify);
    notify.send("STOPPING=1\nSTATUS=stopping: draining workers");
    // Withdraw before the workers stop, so routers move the traffic first.
    manager.stop_bgp();
    // `drain --wait` clients take their answer before the process goes.
    let until = Instant::now() + Duration::from_secs(1);
    while manager.drain_answers_pending() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    manager.stop_health();
    for t in threads {
        let _ = t.join();
    }
    Ok(())
}

/// Starts the control socket, the metrics endpoint and the health checks.
fn start_management(
    config: &Config,
    manager: &mut Manager,
    tx: Sender<Pending>,
    stop: &Arc<AtomicBool>,
) -> Result<Vec<std::thread::JoinHandle<()>>, String> {
    let sock = &config.management.socket;
    let control = socket::serve(sock, tx.clone(), Arc::clone(stop))
        .map_err(|e| format!("control socket {}: {e}", sock.display()))?;
    say!("control socket {}", sock.display());
    let listen = config.management.listen;
    // The management thread refuses a metrics request only for a `vip=`
    // of no VIP.
    let scrape =
        move |query: &MetricsQuery| match socket::answer_of(&tx, Request::Metrics(query.clone())) {
            Ok(answer) => answer.map_err(Unanswered::NoSuchVip),
            Err(e) => Err(Unanswered::Unavailable(format!("metrics unavailable: {e}"))),
        };
    let (bound, metrics) = match serve_metrics(listen, scrape, Arc::clone(stop)) {
        Ok(served) => served,
        Err(e) => {
            stop.store(true, Ordering::SeqCst);
            let _ = control.join();
            return Err(format!("metrics endpoint {listen}: {e}"));
        }
    };
    say!("metrics at http://{bound}/metrics");
    manager.start_health(Arc::clone(stop))?;
    Ok(vec![control, metrics])
}

/// The management loop (this thread, the main lcore): answers control
/// requests, reloads on SIGHUP, frees retired snapshots as workers move on,
/// prints rates, and stops on a signal or after the duration.
fn manage(
    manager: &mut Manager,
    context: &Context,
    slots: &[Arc<StatsSlot>],
    requests: &Receiver<Pending>,
    notify: &Notifier,
) {
    let options: &RunOptions = context.options;
    let (stop, reload): (&AtomicBool, &AtomicBool) =
        (&context.signals.stop, &context.signals.reload);
    let started = Instant::now();
    let mut rates = RateMeter::new(slots);
    let tick = Duration::from_millis(20);
    while !stop.load(Ordering::SeqCst) {
        if let Ok(p) = requests.recv_timeout(tick) {
            serve(manager, p, notify);
        }
        manager.poll_health();
        if reload.swap(false, Ordering::SeqCst) {
            let _ = reloading(notify, || manager.reload());
        }
        manager.housekeeping(Instant::now());
        if let Some(every) = options.stats_interval {
            if let Some(line) = rates.line_if_due(slots, every) {
                say!("{line}");
            }
        }
        if options.duration.is_some_and(|d| started.elapsed() >= d) || manager.drained() {
            stop.store(true, Ordering::SeqCst);
        }
    }
}

/// Answers one request; `drain wait` is answered when the drain ends.
fn serve(manager: &mut Manager, p: Pending, notify: &Notifier) {
    let answer = match p.request {
        Request::WaitDrained => return manager.wait_drained(p.reply),
        Request::Reload => reloading(notify, || manager.handle(&p.request)),
        Request::DrainInstance { .. } => {
            let answer = manager.handle(&p.request);
            notify.send("STATUS=draining: VIPs withdrawn, forwarding until quiet");
            answer
        }
        _ => manager.handle(&p.request),
    };
    let _ = p.reply.send(answer);
}

/// Runs a reload between `RELOADING=1` and `READY=1`, so `systemctl reload`
/// (and a SIGHUP the service manager sent) shows the service reloading.
/// A rejected file leaves the running config, still ready.
fn reloading(
    notify: &Notifier,
    reload: impl FnOnce() -> Result<String, String>,
) -> Result<String, String> {
    notify.send("RELOADING=1");
    let result = reload();
    let status = match &result {
        Ok(_) => "reload applied".to_string(),
        Err(e) => format!("reload rejected: {}", e.lines().next().unwrap_or("")),
    };
    notify.send(&format!("READY=1\nSTATUS={status}"));
    result
}

/// Packet rates between two readings of the workers' counters.
struct RateMeter {
    at: Instant,
    last: Counters,
}

impl RateMeter {
    fn new(slots: &[Arc<StatsSlot>]) -> RateMeter {
        RateMeter {
            at: Instant::now(),
            last: total(slots),
        }
    }

    fn line_if_due(&mut self, slots: &[Arc<StatsSlot>], every: Duration) -> Option<String> {
        let elapsed = self.at.elapsed();
        if elapsed < every {
            return None;
        }
        let now = total(slots);
        let secs = elapsed.as_secs_f64();
        let rate = |a: u64, b: u64| a.wrapping_sub(b) as f64 / secs;
        let line = format!(
            "rate: rx {:.3} Mpps tx {:.3} Mpps ({:.2} Gbit/s in), tx drops {:.0}/s",
            rate(now.rx_packets, self.last.rx_packets) / 1e6,
            rate(now.tx_packets, self.last.tx_packets) / 1e6,
            rate(now.rx_bytes, self.last.rx_bytes) * 8.0 / 1e9,
            rate(now.tx_dropped, self.last.tx_dropped),
        );
        self.at = Instant::now();
        self.last = now;
        Some(line)
    }
}
