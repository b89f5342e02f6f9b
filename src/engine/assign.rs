//! Who does what: one [`Worker`] per worker lcore, each with its own flow
//! table and one tx queue on every port, and the (port, rx queue) pairs
//! dealt to the workers round-robin.

use std::sync::Arc;

use crossbeam::channel::{Sender, bounded};

use crate::control::datapath_tables;
use crate::control::manager::Manager;
use crate::control::stats::StatsSlot;
use crate::datapath::flow_table::FlowTableConfig;
use crate::datapath::neighbours::Solicit;
use crate::datapath::process::Datapath;
use crate::datapath::token_table::TokenTable;
use crate::datapath::traffic::Traffic;
use crate::dpdk::{Eal, Port, tsc_hz};

use super::Context;
use super::memory::flow_table_memory;
use super::worker::{KernelQueues, Worker};

/// The workers, ready to launch, and what the management thread reads of
/// them (in worker order).
pub(super) struct Crew {
    pub workers: Vec<Worker>,
    /// Where the management thread queues ARP requests / neighbour
    /// solicitations for worker 0 to send.
    pub solicits: Sender<Solicit>,
    pub slots: Vec<Arc<StatsSlot>>,
    pub traffic: Vec<Arc<Traffic>>,
}

/// Questions the management thread may have queued for worker 0 before it
/// sends them (it takes some every few microseconds; the resolver asks at
/// most 16 per 20 ms poll).
const SOLICIT_QUEUE: usize = 1024;

/// What every worker's datapath is built from.
struct Tables {
    flow: FlowTableConfig,
    /// One token table for all workers: a join arrives on whichever queue
    /// RSS picks for its own 5-tuple, not its connection's.
    tokens: Arc<TokenTable>,
    backend_port: Option<usize>,
}

/// Builds a worker for each lcore of `lcores` and deals them the ports' rx
/// queues.
pub(super) fn build_crew(
    context: &Context,
    ports: &[Port],
    taps: &[Option<Port>],
    lcores: &[u32],
    manager: &Manager,
) -> Result<Crew, String> {
    let config = context.config;
    let (flow, token_capacity, token_ttl) = datapath_tables(config);
    let tables = Tables {
        flow,
        tokens: Arc::new(
            TokenTable::new(token_capacity, token_ttl).map_err(|e| format!("token table: {e}"))?,
        ),
        backend_port: config
            .datapath
            .backend_port
            .as_ref()
            .and_then(|n| config.port_index(n)),
    };
    let (solicits, solicit_queue) = bounded(SOLICIT_QUEUE);
    let mut crew = Crew {
        solicits,
        workers: Vec::with_capacity(lcores.len()),
        slots: Vec::with_capacity(lcores.len()),
        traffic: Vec::with_capacity(lcores.len()),
    };
    for (w, &lcore) in lcores.iter().enumerate() {
        let mut worker = build_worker(context, &tables, ports, (w, lcore), manager)?;
        worker.kernel = kernel_queues(taps, w)?;
        if w == 0 {
            // Any port's pool: they share one.
            worker.solicits = ports
                .first()
                .map(|p| (solicit_queue.clone(), p.pool().clone()));
        }
        crew.slots.push(Arc::clone(&worker.stats));
        crew.traffic.push(Arc::clone(worker.datapath.traffic()));
        crew.workers.push(worker);
    }
    deal_rx_queues(ports, &mut crew.workers)?;
    Ok(crew)
}

/// Worker `w` on `lcore`: tx queue `w` of every port, its flow table, no rx
/// queue yet.
fn build_worker(
    context: &Context,
    tables: &Tables,
    ports: &[Port],
    (w, lcore): (usize, u32),
    manager: &Manager,
) -> Result<Worker, String> {
    let eal = context.eal;
    let tx = ports
        .iter()
        .map(|p| {
            p.tx_queue(w as u16)
                .ok_or_else(|| format!("port {}: tx queue {w} unavailable", p.name()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let memory = flow_table_memory(eal, &tables.flow, w, eal.lcore_socket(lcore))?;
    say!(
        "worker {w}: flow table {} MiB in {}",
        tables.flow.memory_bytes().unwrap_or(0).div_ceil(1 << 20),
        memory.placement()
    );
    let mut datapath = Datapath::with_memory(tables.flow, memory, Arc::clone(&tables.tokens))
        .map_err(|e| format!("flow table: {e}"))?;
    datapath.set_backend_port(tables.backend_port);
    datapath.set_kernel_rate(context.config.datapath.kernel_rate_pps);
    Ok(Worker {
        index: w,
        lcore,
        mode: context.config.workers.mode,
        rx: Vec::new(),
        tx,
        backend_port: tables.backend_port,
        datapath,
        snapshot: manager.reader(),
        stats: Arc::new(StatsSlot::default()),
        stop: Arc::clone(&context.signals.stop),
        tsc_hz: tsc_hz(),
        solicits: None,
        // Any port's pool: they share one.
        pool: ports.first().map(|p| p.pool().clone()),
        kernel: Vec::new(),
    })
}

/// Worker `w`'s queue pair (queue `w`) on each kernel interface, by port;
/// empty without any kernel interface.
fn kernel_queues(taps: &[Option<Port>], w: usize) -> Result<Vec<Option<KernelQueues>>, String> {
    if taps.iter().all(Option::is_none) {
        return Ok(Vec::new());
    }
    let q = u16::try_from(w).map_err(|_| "too many workers".to_string())?;
    taps.iter()
        .map(|t| {
            let Some(t) = t else {
                return Ok(None);
            };
            match (t.rx_queue(q), t.tx_queue(q)) {
                (Some(rx), Some(tx)) => Ok(Some(KernelQueues { rx, tx })),
                _ => Err(format!(
                    "kernel interface {}: queue {w} unavailable",
                    t.name()
                )),
            }
        })
        .collect()
}

/// Deals every (port, rx queue) to the workers round-robin, in port order.
fn deal_rx_queues(ports: &[Port], workers: &mut [Worker]) -> Result<(), String> {
    let mut next = 0usize;
    for (pi, p) in ports.iter().enumerate() {
        for q in 0..p.rx_queues() {
            let rxq = p
                .rx_queue(q)
                .ok_or_else(|| format!("port {}: rx queue {q} unavailable", p.name()))?;
            let count = workers.len().max(1);
            if let Some(w) = workers.get_mut(next % count) {
                w.rx.push((pi, rxq));
            }
            next += 1;
        }
    }
    Ok(())
}

/// The start-up line naming the queues a worker polls.
pub(super) fn describe_worker(eal: &Eal, ports: &[Port], w: &Worker) -> String {
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
    format!(
        "worker {} on lcore {} (socket {}): polls {}",
        w.index,
        w.lcore,
        eal.lcore_socket(w.lcore),
        if queues.is_empty() {
            "nothing".to_string()
        } else {
            queues.join(", ")
        }
    )
}
