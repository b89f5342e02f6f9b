//! The poll-mode worker: one per configured lcore, run to completion.
//!
//! Each iteration: pick up the current forwarding snapshot (one atomic load),
//! then for each owned (port, rx queue): rx burst → datapath → tx bursts
//! (and, when the burst asked for any, the ADD_ADDRs sent on backends'
//! behalf, built by the datapath, copied into buffers of the worker's pool).
//! No allocation, no locks and no syscalls inside the loop; counters are plain
//! integers owned by the worker and copied to a shared slot every
//! [`PUBLISH_EVERY`] iterations, where the management thread reads them.
//! At the same turn worker 0 sends the ARP requests / neighbour
//! solicitations the management thread queued (a lock-free queue; buffers
//! from the mempool), to learn backends' MACs.
//!
//! On a port with an exception path, the burst's `Verdict::Kernel` frames go
//! to the worker's queue of the port's kernel interface (a full queue: a
//! counted drop, never a wait), and every iteration the worker takes what
//! the kernel sent on that queue and sends it out of the data port. Polling
//! an idle net_tap queue makes no system call (its rx burst returns unless
//! the queue's SIGIO trigger moved): about 1.5% of the bare loop, measured
//! in bench/README.md ("Exception path"). Without kernel interfaces the
//! worker has no such queue and does none of this.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam::channel::Receiver;

use crate::config::WorkerMode;
use crate::control::metrics::FlowTableMetrics;
use crate::control::stats::StatsSlot;
use crate::datapath::counters::Counters;
use crate::datapath::flow_table::Bucket;
use crate::datapath::forwarding::Forwarding;
use crate::datapath::frame::Frame;
use crate::datapath::neighbours::{SOLICIT_MAX_LEN, Solicit, write_solicit};
use crate::datapath::process::Datapath;
use crate::datapath::verdict::{DropReason, Verdict};
use crate::dpdk::{BURST, Batch, Mbuf, Mempool, RxQueue, TableMemory, TxQueue, tsc_now};
use crate::snapshot::Reader;

/// A worker's datapath: its flow table in [`TableMemory`] (hugepages).
pub type WorkerDatapath = Datapath<TableMemory<Bucket>>;

/// Loop iterations between two counter publications (~µs apart when busy).
const PUBLISH_EVERY: u32 = 256;
/// ARP requests / neighbour solicitations sent per publication at most.
const SOLICITS_PER_TURN: usize = 8;

/// Everything one worker owns.
pub struct Worker {
    pub index: usize,
    pub lcore: u32,
    pub mode: WorkerMode,
    /// (port index, queue) pairs this worker polls.
    pub rx: Vec<(usize, RxQueue)>,
    /// One tx queue per port, indexed by port index.
    pub tx: Vec<TxQueue>,
    /// Where `Verdict::Forward` goes; `None` = back out the rx port.
    pub backend_port: Option<usize>,
    pub datapath: WorkerDatapath,
    pub snapshot: Reader<Forwarding>,
    pub stats: Arc<StatsSlot>,
    pub stop: Arc<AtomicBool>,
    /// TSC ticks per second, to turn the TSC into nanoseconds.
    pub tsc_hz: u64,
    /// Worker 0 only: the management thread's ARP requests / neighbour
    /// solicitations to send, and the pool their buffers come from.
    pub solicits: Option<(Receiver<Solicit>, Mempool)>,
    /// Where the buffers of the ADD_ADDRs the datapath asks for come from
    /// (see [`crate::datapath::announce`]); `None`: none is sent.
    pub pool: Option<Mempool>,
    /// Indexed by port index: this worker's queue pair on the port's
    /// kernel interface, if the port has an exception path; empty when no
    /// port has one.
    pub kernel: Vec<Option<KernelQueues>>,
}

/// A worker's queue pair on a kernel interface (net_tap): `tx` takes the
/// frames for the host's kernel, `rx` gives what the kernel sends.
pub struct KernelQueues {
    pub rx: RxQueue,
    pub tx: TxQueue,
}

impl Worker {
    /// Runs until `stop` is set; then flushes what it holds, publishes its
    /// final counters and returns 0.
    pub fn run(mut self) -> i32 {
        let mut rx = Batch::new();
        // One outgoing batch per port, and the burst's verdicts, allocated
        // before the loop.
        let mut out: Vec<Batch> = self.tx.iter().map(|_| Batch::new()).collect();
        let mut to_kernel: Vec<Batch> = self.kernel.iter().map(|_| Batch::new()).collect();
        let mut verdicts = [Verdict::Drop(DropReason::Unsupported); BURST];
        let mut iterations: u32 = 0;
        let hz = u128::from(self.tsc_hz.max(1));
        let now_ns = || (u128::from(tsc_now()) * 1_000_000_000 / hz) as u64;
        while !self.stop.load(Ordering::Relaxed) {
            let fwd = self.snapshot.load();
            let mut received = 0;
            for (port, queue) in self.rx.iter_mut() {
                let n = queue.rx_burst(&mut rx);
                if n == 0 {
                    continue;
                }
                received += n;
                let c = &mut self.datapath.counters;
                c.rx_packets += n as u64;
                c.rx_bytes += rx.frames_mut().iter().map(|m| m.len() as u64).sum::<u64>();
                match self.mode {
                    WorkerMode::Macswap => {
                        for mut m in rx.drain() {
                            macswap(&mut m);
                            push(&mut out, *port, m);
                        }
                    }
                    WorkerMode::Balance => {
                        let vs = &mut verdicts[..n.min(BURST)];
                        self.datapath
                            .process_burst(fwd, *port, rx.frames_mut(), vs, now_ns());
                        for (m, v) in rx.drain().zip(vs.iter()) {
                            match v {
                                Verdict::Reply => push(&mut out, *port, m),
                                Verdict::Forward => {
                                    push(&mut out, self.backend_port.unwrap_or(*port), m)
                                }
                                Verdict::Kernel => match to_kernel.get_mut(*port) {
                                    Some(b) => {
                                        let _ = b.push(m);
                                    }
                                    // Only a port with a kernel interface
                                    // gives this verdict; were it otherwise,
                                    // a counted drop.
                                    None => self.datapath.counters.to_kernel_dropped += 1,
                                },
                                Verdict::Absorbed | Verdict::Drop(_) => drop(m),
                            }
                        }
                        flush_to_kernel(
                            &mut self.kernel,
                            &mut to_kernel,
                            &mut self.datapath.counters,
                        );
                        if !self.datapath.announcements().is_empty() {
                            // The batches may be full: send the burst's
                            // frames first.
                            flush(&mut self.tx, &mut out, &mut self.datapath.counters);
                            send_announcements(self.pool.as_ref(), &mut self.datapath, &mut out);
                        }
                    }
                }
                flush(&mut self.tx, &mut out, &mut self.datapath.counters);
            }
            let c = &mut self.datapath.counters;
            let from_kernel = from_kernel(&mut self.kernel, &mut rx, &mut out, c);
            if from_kernel > 0 {
                flush(&mut self.tx, &mut out, c);
            }
            if received + from_kernel == 0 {
                self.datapath.housekeeping(now_ns());
            }
            iterations = iterations.wrapping_add(1);
            if iterations % PUBLISH_EVERY == 0 {
                if let Some((queue, pool)) = &self.solicits {
                    let c = &mut self.datapath.counters;
                    send_solicits(queue, pool, fwd, &mut out, c);
                    flush(&mut self.tx, &mut out, c);
                }
                self.publish();
            }
        }
        // Drain: one last attempt to send what is held, then free the rest.
        flush(&mut self.tx, &mut out, &mut self.datapath.counters);
        flush_to_kernel(
            &mut self.kernel,
            &mut to_kernel,
            &mut self.datapath.counters,
        );
        rx.clear();
        self.publish();
        0
    }

    fn publish(&self) {
        self.stats.publish(&self.datapath.counters);
        let t = self.datapath.flow_table();
        let c = self.datapath.flow_counters();
        self.stats.publish_flow_table(FlowTableMetrics {
            len: t.len() as u64,
            capacity: t.capacity() as u64,
            inserts: c.inserts,
            evictions: c.evictions,
            timeouts: c.timeouts,
        });
    }
}

#[inline]
fn push(out: &mut [Batch], port: usize, m: Mbuf) {
    // Each rx burst yields at most BURST frames and out batches are flushed
    // after every rx burst, so a batch cannot be full here; if the port index
    // were ever wrong, the frame is freed rather than sent astray.
    if let Some(b) = out.get_mut(port) {
        let _ = b.push(m);
    }
}

/// Sends each port's frames for the kernel to this worker's queue of its
/// kernel interface; what the queue does not take is freed and counted.
fn flush_to_kernel(queues: &mut [Option<KernelQueues>], batches: &mut [Batch], c: &mut Counters) {
    for (k, b) in queues.iter_mut().zip(batches.iter_mut()) {
        if b.is_empty() {
            continue;
        }
        if let Some(k) = k {
            c.to_kernel += k.tx.tx_burst(b) as u64;
        }
        // Unsent (queue full), or no kernel interface on that port.
        c.to_kernel_dropped += b.len() as u64;
        b.clear();
    }
}

/// Takes what the kernel sent on this worker's queue of each kernel
/// interface into its data port's outgoing batch (flushed by the caller).
/// `rx` is empty on entry and on return. The number of frames taken.
fn from_kernel(
    queues: &mut [Option<KernelQueues>],
    rx: &mut Batch,
    out: &mut [Batch],
    c: &mut Counters,
) -> usize {
    let mut taken = 0;
    for (port, k) in queues.iter_mut().enumerate() {
        let Some(k) = k else {
            continue;
        };
        // The outgoing batches are flushed after every rx burst: room for
        // one more burst, which the free space of `out[port]` bounds.
        let n = k.rx.rx_burst(rx);
        if n == 0 {
            continue;
        }
        taken += n;
        c.from_kernel += n as u64;
        for m in rx.drain() {
            push(out, port, m);
        }
    }
    taken
}

/// Builds up to [`SOLICITS_PER_TURN`] of the queued questions in fresh
/// buffers and adds them to their ports' outgoing batches (sent by the next
/// flush). Off the per-packet path: once per [`PUBLISH_EVERY`] iterations.
fn send_solicits(
    queue: &Receiver<Solicit>,
    pool: &Mempool,
    fwd: &Forwarding,
    out: &mut [Batch],
    c: &mut Counters,
) {
    for _ in 0..SOLICITS_PER_TURN {
        let Ok(s) = queue.try_recv() else {
            return;
        };
        let (Some(iface), Some(batch)) = (fwd.interfaces.get(s.port), out.get_mut(s.port)) else {
            continue;
        };
        let mut fresh = Batch::new();
        if !pool.alloc_into(&mut fresh, 1) {
            return;
        }
        for mut m in fresh.drain() {
            if !m.set_len(SOLICIT_MAX_LEN) {
                continue;
            }
            let Some(len) = write_solicit(&mut m, &s, &iface.asker()) else {
                continue;
            };
            m.truncate(len);
            c.neighbour_solicits_sent += 1;
            let _ = batch.push(m);
        }
    }
}

/// Copies the ADD_ADDR frames the datapath recorded during the burst into
/// fresh buffers (one bulk allocation) and adds them to their ports'
/// outgoing batches, which were just flushed. At most one per frame of the
/// burst, so they fit.
fn send_announcements(pool: Option<&Mempool>, dp: &mut WorkerDatapath, out: &mut [Batch]) {
    let n = dp.announcements().len();
    let mut fresh = Batch::new();
    let _ = pool.is_some_and(|p| p.alloc_into(&mut fresh, n.min(BURST)));
    let mut bufs = fresh.drain();
    let mut missed = 0u64;
    dp.announcements().drain(|a| {
        let frame = a.frame();
        let sent = match bufs.next() {
            // A buffer too small for the frame is freed (dropped) here.
            Some(mut m) => {
                let fits = m.set_len(frame.len());
                if fits {
                    m.copy_from_slice(frame);
                    push(out, a.port, m);
                }
                fits
            }
            _ => false,
        };
        missed += u64::from(!sent);
    });
    drop(bufs);
    // Counted as sent when the datapath built them; not sent after all.
    // Both happen before the next publication, so the published counter
    // never goes back.
    let c = &mut dp.counters;
    c.add_addr_sent -= missed.min(c.add_addr_sent);
    c.add_addr_skipped_no_buffer += missed;
}

fn flush(tx: &mut [TxQueue], out: &mut [Batch], c: &mut Counters) {
    for (q, b) in tx.iter_mut().zip(out.iter_mut()) {
        if b.is_empty() {
            continue;
        }
        c.tx_packets += q.tx_burst(b) as u64;
        if !b.is_empty() {
            c.tx_dropped += b.len() as u64;
            b.clear();
        }
    }
}

/// Swaps source and destination MAC (the testpmd `macswap` reference loop).
#[inline]
fn macswap<F: Frame>(f: &mut F) {
    // Fixed-size copies: a few register moves, no byte loop.
    if let Some(h) = f.get_mut(..12) {
        let mut macs = [0u8; 12];
        macs.copy_from_slice(h);
        h[..6].copy_from_slice(&macs[6..]);
        h[6..].copy_from_slice(&macs[..6]);
    }
}
