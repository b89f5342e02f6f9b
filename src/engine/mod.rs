//! Brings the whole engine up from a config, runs it until told to stop, and
//! takes it down in the one order that is safe: workers joined → ports
//! stopped and closed → mempool checked for leaks and freed → EAL cleaned up.

mod datapath_on_dpdk;
pub mod worker;

use std::path::Path;
use std::sync::Arc;

use crossbeam::channel::{Receiver, Sender};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::control::datapath_tables;
use crate::control::log;
use crate::control::manager::{Manager, Request};
use crate::control::metrics::serve_metrics;
use crate::control::socket::{self, Pending};
use crate::control::stats::StatsSlot;
use crate::control::stats::total;
use crate::datapath::counters::Counters;
use crate::datapath::flow_table::{Bucket, FlowTableConfig};
use crate::datapath::forwarding::PortFacts;
use crate::datapath::process::Datapath;
use crate::datapath::token_table::TokenTable;
use crate::dpdk::{
    Eal, Mempool, Port, PortSetup, TableMemory, eal_has_hugepages, launch_on_lcore, tsc_hz,
};
use worker::Worker;

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

pub fn run(config_path: &Path, config: &Config, options: &RunOptions) -> Result<RunReport, String> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal while stopping exits at once (a stuck shutdown must
        // not need kill -9).
        signal_hook::flag::register_conditional_shutdown(sig, 130, Arc::clone(&stop))
            .and_then(|_| signal_hook::flag::register(sig, Arc::clone(&stop)))
            .map_err(|e| format!("installing signal handler: {e}"))?;
    }
    let reload = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&reload))
        .map_err(|e| format!("installing signal handler: {e}"))?;

    let eal = Eal::init(&config.eal_command_line()).map_err(|e| e.to_string())?;
    let lcores = config.workers.lcores.clone();
    for &l in &lcores {
        if !eal.lcore_enabled(l) {
            return Err(format!("worker lcore {l} is not available to DPDK"));
        }
    }
    let pool = Mempool::new(
        "mplb_mbufs",
        config.dpdk.mempool_size,
        config.dpdk.mempool_cache,
        -1,
    )
    .map_err(|e| e.to_string())?;
    let in_use_at_start = pool.in_use();

    let counters = {
        let ports = configure_ports(config, &pool, lcores.len())?;
        let counters = run_workers(
            config_path,
            config,
            options,
            &eal,
            &ports,
            &lcores,
            &stop,
            &reload,
        )?;
        for p in &ports {
            let s = p.stats();
            println!(
                "port {}: rx {} tx {} missed {} rx-errors {} tx-errors {} no-mbuf {}",
                p.name(),
                s.rx_packets,
                s.tx_packets,
                s.rx_missed,
                s.rx_errors,
                s.tx_errors,
                s.rx_nombuf
            );
            let xstats: Vec<String> = p
                .xstats()
                .into_iter()
                .filter(|(_, v)| *v != 0)
                .map(|(n, v)| format!("{n}={v}"))
                .collect();
            if !xstats.is_empty() {
                println!("port {} xstats: {}", p.name(), xstats.join(" "));
            }
        }
        counters
        // Ports are stopped and closed here, returning their ring buffers.
    };
    let report = RunReport {
        counters,
        mbufs_in_use_at_start: in_use_at_start,
        mbufs_in_use_at_end: pool.in_use(),
    };
    drop(pool);
    drop(eal);
    Ok(report)
}

/// Configures every port of the config; they are started by
/// [`run_workers`] once the workers are ready, so that a port's link never
/// comes up before mplb forwards (zeroing large flow tables takes a while).
fn configure_ports(config: &Config, pool: &Mempool, workers: usize) -> Result<Vec<Port>, String> {
    let tx_queues = u16::try_from(workers).map_err(|_| "too many workers".to_string())?;
    let mut ports = Vec::with_capacity(config.ports.len());
    for (i, pc) in config.ports.iter().enumerate() {
        let id = Port::id_by_name(&pc.device).map_err(|e| e.to_string())?;
        let setup = PortSetup {
            rx_queues: config.rx_queues(i),
            tx_queues,
            rx_descriptors: pc.rx_descriptors,
            tx_descriptors: pc.tx_descriptors,
            mtu: pc.mtu,
            promiscuous: pc.promiscuous,
        };
        let port = Port::configure(id, &setup, pool)
            .map_err(|e| format!("port {} ({}): {e}", pc.name, pc.device))?;
        ports.push(port);
    }
    Ok(ports)
}

fn describe_port(p: &Port) -> String {
    let m = p.mac();
    let link = p.link();
    format!(
        "port {} (id {}, driver {}): mac {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}, rx queues {}, tx queues {}, rss {}, mtu {}, link {}",
        p.name(),
        p.id(),
        p.driver(),
        m[0],
        m[1],
        m[2],
        m[3],
        m[4],
        m[5],
        p.rx_queues(),
        p.tx_queues(),
        if p.rss_enabled() { "on" } else { "off" },
        p.mtu(),
        if link.up {
            format!("up {} Mb/s", link.speed_mbps)
        } else {
            "down".to_string()
        }
    )
}

#[allow(clippy::too_many_arguments)]
fn run_workers(
    config_path: &Path,
    config: &Config,
    options: &RunOptions,
    eal: &Eal,
    ports: &[Port],
    lcores: &[u32],
    stop: &Arc<AtomicBool>,
    reload: &Arc<AtomicBool>,
) -> Result<Counters, String> {
    let facts: Vec<PortFacts> = ports
        .iter()
        .map(|p| PortFacts {
            mac: p.mac(),
            mtu: p.mtu(),
        })
        .collect();
    let mut manager = Manager::new(config_path, config.clone(), facts)?;
    let (flow_config, token_capacity, token_ttl) = datapath_tables(config);
    // One token table for all workers: a join arrives on whichever queue RSS
    // picks for its own 5-tuple, not its connection's.
    let tokens = Arc::new(
        TokenTable::new(token_capacity, token_ttl).map_err(|e| format!("token table: {e}"))?,
    );
    let backend_port = config
        .datapath
        .backend_port
        .as_ref()
        .and_then(|n| config.port_index(n));

    // Deal every (port, rx queue) to the workers round-robin; worker w sends
    // on tx queue w of every port.
    let mut workers: Vec<Worker> = Vec::with_capacity(lcores.len());
    let mut slots = Vec::with_capacity(lcores.len());
    let mut traffic = Vec::with_capacity(lcores.len());
    for (w, &lcore) in lcores.iter().enumerate() {
        let tx = ports
            .iter()
            .map(|p| {
                p.tx_queue(w as u16)
                    .ok_or_else(|| format!("port {}: tx queue {w} unavailable", p.name()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let memory = flow_table_memory(eal, &flow_config, w, eal.lcore_socket(lcore))?;
        println!(
            "worker {w}: flow table {} MiB in {}",
            flow_config.memory_bytes().unwrap_or(0).div_ceil(1 << 20),
            memory.placement()
        );
        let mut datapath = Datapath::with_memory(flow_config, memory, Arc::clone(&tokens))
            .map_err(|e| format!("flow table: {e}"))?;
        datapath.set_backend_port(backend_port);
        let slot = Arc::new(StatsSlot::default());
        slots.push(Arc::clone(&slot));
        traffic.push(Arc::clone(datapath.traffic()));
        workers.push(Worker {
            index: w,
            lcore,
            mode: config.workers.mode,
            rx: Vec::new(),
            tx,
            backend_port,
            datapath,
            snapshot: manager.reader(),
            stats: slot,
            stop: Arc::clone(stop),
            tsc_hz: tsc_hz(),
        });
    }
    let mut next = 0usize;
    for (pi, p) in ports.iter().enumerate() {
        for q in 0..p.rx_queues() {
            let rxq = p
                .rx_queue(q)
                .ok_or_else(|| format!("port {}: rx queue {q} unavailable", p.name()))?;
            if let Some(w) = workers.get_mut(next % lcores.len()) {
                w.rx.push((pi, rxq));
            }
            next += 1;
        }
    }
    for p in ports {
        p.start_traffic().map_err(|e| e.to_string())?;
        println!("{}", describe_port(p));
    }
    for w in &workers {
        let queues: Vec<String> =
            w.rx.iter()
                .map(|(pi, q)| {
                    format!(
                        "{}/rx{}",
                        ports.get(*pi).map_or("?", |p| p.name()),
                        q.queue()
                    )
                })
                .collect();
        println!(
            "worker {} on lcore {} (socket {}): polls {}",
            w.index,
            w.lcore,
            eal.lcore_socket(w.lcore),
            if queues.is_empty() {
                "nothing".to_string()
            } else {
                queues.join(", ")
            }
        );
    }
    println!(
        "management on lcore {}; mode {:?}; {} worker(s) running. Ctrl-C stops.",
        eal.main_lcore(),
        config.workers.mode,
        workers.len()
    );

    let mut launched = Vec::with_capacity(workers.len());
    for w in workers {
        let lcore = w.lcore;
        match launch_on_lcore(lcore, move || w.run()) {
            Ok(l) => launched.push(l),
            Err(e) => {
                stop.store(true, Ordering::SeqCst);
                for l in launched {
                    l.wait();
                }
                return Err(e.to_string());
            }
        }
    }

    manager.set_workers(slots.clone(), traffic);
    let (tx, requests) = socket::channel();
    let threads = match start_management(config, &mut manager, tx, stop) {
        Ok(t) => t,
        Err(e) => {
            stop.store(true, Ordering::SeqCst);
            for l in launched {
                l.wait();
            }
            manager.stop_health();
            return Err(e);
        }
    };
    manage(&mut manager, options, stop, reload, &slots, &requests);
    manager.stop_health();
    for t in threads {
        let _ = t.join();
    }
    println!("stopping: waiting for workers to drain");
    let mut failed = Vec::new();
    for l in launched {
        let lcore = l.lcore();
        if l.wait() != 0 {
            failed.push(lcore);
        }
    }
    let mut total = Counters::default();
    for (w, slot) in slots.iter().enumerate() {
        let c = slot.read();
        println!("worker {w}: {}", format_counters(&c));
        total.add(&c);
    }
    println!("total: {}", format_counters(&total));
    if !failed.is_empty() {
        return Err(format!("workers on lcores {failed:?} failed"));
    }
    Ok(total)
}

/// Worker `w`'s flow-table memory: DPDK hugepage memory on the worker's NUMA
/// socket. When the EAL runs without hugepages (`--no-huge`), or they are too
/// few, ordinary memory instead, with a log line: mplb still starts (a
/// smaller or heap table only costs more TLB misses per packet), and the
/// operator sees why it is slower.
fn flow_table_memory(
    eal: &Eal,
    config: &FlowTableConfig,
    w: usize,
    socket: u32,
) -> Result<TableMemory<Bucket>, String> {
    let buckets = config.buckets().map_err(|e| format!("flow table: {e}"))?;
    let mib = config
        .memory_bytes()
        .map_err(|e| format!("flow table: {e}"))?
        .div_ceil(1 << 20);
    if !eal_has_hugepages(eal) {
        log::event(
            "info",
            "flow_table_memory",
            &[
                ("worker", &w),
                ("mib", &mib),
                ("placement", &"ordinary memory"),
                ("reason", &"EAL runs without hugepages (--no-huge)"),
            ],
        );
        return TableMemory::heap(buckets, Bucket::EMPTY).map_err(|e| format!("flow table: {e}"));
    }
    match TableMemory::dpdk(eal, buckets, Bucket::EMPTY, socket) {
        Ok(m) => Ok(m),
        Err(e) => {
            log::event(
                "warn",
                "flow_table_memory",
                &[
                    ("worker", &w),
                    ("mib", &mib),
                    ("placement", &"ordinary memory"),
                    ("reason", &e),
                    (
                        "hint",
                        &"reserve more hugepages (scripts/setup-host.sh) or lower flow_table.capacity",
                    ),
                ],
            );
            TableMemory::heap(buckets, Bucket::EMPTY).map_err(|e| format!("flow table: {e}"))
        }
    }
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
    println!("control socket {}", sock.display());
    let listen = config.management.listen;
    let scrape = move || {
        socket::ask(&tx, Request::Metrics)
            .unwrap_or_else(|e| format!("# metrics unavailable: {e}\n"))
    };
    let (bound, metrics) = match serve_metrics(listen, scrape, Arc::clone(stop)) {
        Ok(served) => served,
        Err(e) => {
            stop.store(true, Ordering::SeqCst);
            let _ = control.join();
            return Err(format!("metrics endpoint {listen}: {e}"));
        }
    };
    println!("metrics at http://{bound}/metrics");
    manager.start_health(Arc::clone(stop))?;
    Ok(vec![control, metrics])
}

/// The management loop (this thread, the main lcore): answers control
/// requests, reloads on SIGHUP, frees retired snapshots as workers move on,
/// prints rates, and stops on a signal or after the duration.
fn manage(
    manager: &mut Manager,
    options: &RunOptions,
    stop: &AtomicBool,
    reload: &AtomicBool,
    slots: &[Arc<StatsSlot>],
    requests: &Receiver<Pending>,
) {
    let started = Instant::now();
    let mut rates = RateMeter::new(slots);
    let tick = Duration::from_millis(20);
    while !stop.load(Ordering::SeqCst) {
        if let Ok(p) = requests.recv_timeout(tick) {
            let _ = p.reply.send(manager.handle(&p.request));
        }
        manager.poll_health();
        if reload.swap(false, Ordering::SeqCst) {
            let _ = manager.reload();
        }
        manager.housekeeping(Instant::now());
        if let Some(every) = options.stats_interval {
            if let Some(line) = rates.line_if_due(slots, every) {
                println!("{line}");
            }
        }
        if options.duration.is_some_and(|d| started.elapsed() >= d) {
            stop.store(true, Ordering::SeqCst);
        }
    }
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
