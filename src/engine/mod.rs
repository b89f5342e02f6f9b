//! Brings the whole engine up from a config, runs it until told to stop, and
//! takes it down: workers joined → ports stopped and closed → mempool checked
//! for leaks and freed → EAL cleaned up. The DPDK handles hold that order by
//! themselves (see [`crate::dpdk`]); the engine only has to take the leak
//! report after the last port is gone and before it lets go of the pool.
//!
//! The steps, one file each: [`ports`] configures and starts the ports,
//! [`kernel`] makes the exception paths' kernel interfaces,
//! [`memory`] finds each worker's flow-table memory, [`assign`] builds the
//! workers and deals them the rx queues, [`launch`] runs them on their
//! lcores and joins them, [`manage`] runs the management loop meanwhile, and
//! [`worker`] is the loop each worker runs.

#![forbid(unsafe_code)]

/// `println!` for what `mplb run` tells the operator, which must not panic
/// when stdout is a pipe whose reader went away (`mplb run … | head`):
/// losing a line of output is fine, stopping the forwarding is not.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

mod assign;
mod datapath_on_dpdk;
mod kernel;
mod launch;
mod manage;
mod memory;
mod ports;
pub mod worker;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crate::config::Config;
use crate::control::manager::Manager;
use crate::datapath::counters::Counters;
use crate::dpdk::{Eal, Mempool, Port};

pub use launch::format_counters;

/// How `run` ends.
#[derive(Debug, Default, Clone)]
pub struct RunOptions {
    /// Stop by itself after this long (tests, demos); `None`: until a signal.
    pub duration: Option<Duration>,
    /// Print the packet rates this often; `None`: only the final counters.
    pub stats_interval: Option<Duration>,
}

/// What a finished run reports.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub counters: Counters,
    pub mbufs_in_use_at_start: u32,
    pub mbufs_in_use_at_end: u32,
}

impl RunReport {
    pub fn leaked_mbufs(&self) -> u32 {
        self.mbufs_in_use_at_end
            .saturating_sub(self.mbufs_in_use_at_start)
    }
}

/// What every step of a run reads.
struct Context<'a> {
    config_path: &'a Path,
    config: &'a Config,
    options: &'a RunOptions,
    eal: &'a Eal,
    signals: &'a Signals,
}

/// The flags the signal handlers set.
struct Signals {
    /// SIGINT/SIGTERM (or the end of the duration): stop everything.
    stop: Arc<AtomicBool>,
    /// SIGHUP: reload the config.
    reload: Arc<AtomicBool>,
}

impl Signals {
    fn install() -> Result<Signals, String> {
        let stop = Arc::new(AtomicBool::new(false));
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            // A second signal while stopping exits at once (a stuck shutdown
            // must not need kill -9).
            signal_hook::flag::register_conditional_shutdown(sig, 130, Arc::clone(&stop))
                .and_then(|_| signal_hook::flag::register(sig, Arc::clone(&stop)))
                .map_err(|e| format!("installing signal handler: {e}"))?;
        }
        let reload = Arc::new(AtomicBool::new(false));
        signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&reload))
            .map_err(|e| format!("installing signal handler: {e}"))?;
        Ok(Signals { stop, reload })
    }
}

pub fn run(config_path: &Path, config: &Config, options: &RunOptions) -> Result<RunReport, String> {
    let signals = Signals::install()?;
    if config.workers.share_cpus(config.dpdk.main_lcore) {
        crate::control::log::event(
            "warn",
            "workers_share_cpus",
            &[
                ("lcores", &format!("{:?}", config.workers.lcores)),
                ("cpus", &format!("{:?}", config.workers.cpus)),
                (
                    "message",
                    &"test mode: workers share CPUs; production wants one dedicated core per worker",
                ),
            ],
        );
    }
    let eal = Eal::init(&config.eal_command_line()).map_err(|e| e.to_string())?;
    let lcores = config.workers.lcores.clone();
    for &l in &lcores {
        if !eal.lcore_enabled(l) {
            return Err(format!("worker lcore {l} is not available to DPDK"));
        }
    }
    let pool = Mempool::new(
        &eal,
        "mplb_mbufs",
        config.dpdk.mempool_size,
        config.dpdk.mempool_cache,
        -1,
    )
    .map_err(|e| e.to_string())?;
    let in_use_at_start = pool.in_use();
    let context = Context {
        config_path,
        config,
        options,
        eal: &eal,
        signals: &signals,
    };
    let counters = {
        let ports = ports::configure(config, &pool, lcores.len())?;
        let taps = kernel::configure(config, &ports, &pool, lcores.len())?;
        let counters = forward(&context, &ports, &taps, &pool, &lcores)?;
        ports::print_stats(&ports);
        ports::print_stats(taps.iter().flatten());
        counters
        // The last handles to the ports go here (the workers took their
        // queues with them): the ports are stopped and closed, and their
        // rings' buffers return to the pool.
    };
    Ok(RunReport {
        counters,
        mbufs_in_use_at_start: in_use_at_start,
        // Still holding the pool: it is freed (and the EAL cleaned up) when
        // `pool` and `eal` go, after this reading.
        mbufs_in_use_at_end: pool.in_use(),
    })
}

/// Builds the workers, starts the ports and the workers, runs the management
/// loop until told to stop, then joins the workers and prints their
/// counters. Any early return stops and joins the workers already launched.
fn forward(
    context: &Context,
    ports: &[Port],
    taps: &[Option<Port>],
    pool: &Mempool,
    lcores: &[u32],
) -> Result<Counters, String> {
    let config = context.config;
    let mut manager = Manager::new(context.config_path, config.clone(), ports::facts(ports))?;
    let crew = assign::build_crew(context, ports, taps, lcores, &manager)?;
    ports::start(ports)?;
    kernel::start(config, ports, taps)?;
    for w in &crew.workers {
        say!("{}", assign::describe_worker(context.eal, ports, w));
    }
    say!(
        "management on lcore {}; mode {:?}; {} worker(s) running. Ctrl-C stops.",
        context.eal.main_lcore(),
        config.workers.mode,
        crew.workers.len()
    );
    let running = launch::launch(context, crew.workers)?;
    manager.set_workers(crew.slots.clone(), crew.traffic);
    manager.set_solicit_queue(crew.solicits);
    manager.set_device_probe(ports::device_probe(config, ports, pool));
    if let Err(e) = manage::run(context, &mut manager, &crew.slots) {
        drop(running);
        manager.stop_health();
        return Err(e);
    }
    say!("stopping: waiting for workers to drain");
    let failed = running.join();
    let total = launch::print_counters(&crew.slots);
    if !failed.is_empty() {
        return Err(format!("workers on lcores {failed:?} failed"));
    }
    Ok(total)
}
