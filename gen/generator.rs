//! One generator lcore: its own queue pairs, its own flows (flow id mod the
//! lcore count), its own source, checker, counters and latency histogram.
//! The lcores share only the per-flow state (a frame may come back on
//! another lcore's queue when a NIC's RSS picks it), a few stop flags and
//! their published progress counters; their stats are merged at the end.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use mplb::dpdk::{BURST, Batch, Mempool, Port, RxQueue, TxQueue, tsc_now};

use crate::check::{Checker, Expect, Verdict};
use crate::flows::FlowState;
use crate::plan::{Class, Plan};
use crate::report::{Stats, verdict_index};
use crate::source::Source;

/// One rx/tx queue pair and the frames waiting to be sent on it (with
/// their [`IN_WINDOW`] | [`EXPECT_BACK`] | class attributes, in order).
pub struct Lane {
    pub queue: u16,
    pub rx: RxQueue,
    pub tx: TxQueue,
    pub out: Batch,
    pub attrs: [u8; BURST],
}

impl Lane {
    pub fn new(queue: u16, rx: RxQueue, tx: TxQueue) -> Lane {
        Lane {
            queue,
            rx,
            tx,
            out: Batch::new(),
            attrs: [0; BURST],
        }
    }
}

/// Attribute bits of a frame waiting in the tx batch.
const IN_WINDOW: u8 = 0x10;
const EXPECT_BACK: u8 = 0x20;
const CLASS_MASK: u8 = 0x0f;
/// The error of an lcore stopped because another one failed (whose error
/// is the one to report).
pub const STOPPED: &str = "stopped: another generator lcore failed";
/// Rx bursts per loop iteration at most (one tx burst each).
const RX_BURSTS: usize = 4;

/// The run's instants in TSC ticks, the same for every lcore.
#[derive(Clone, Copy)]
pub struct Timing {
    pub hz: u64,
    pub t0: u64,
    pub warm_end: u64,
    pub end: u64,
    /// Longest drain after `end`, and the quiet time that ends it earlier.
    pub drain: u64,
    pub quiet: u64,
    /// How often the lcore publishes its progress and looks at the flags.
    pub check_every: u64,
}

/// Published progress of one lcore: tx_all, rx_all, tx_expected,
/// rx_expected, then the verdicts.
pub const LIVE: usize = 9;

/// What the lcores share besides the flow state.
pub struct Shared {
    /// SIGINT/SIGTERM: end the measured run now, drain and report.
    pub interrupted: Arc<AtomicBool>,
    /// The main lcore saw the link go down.
    pub link_down: AtomicBool,
    /// Stop at once, without a report (another lcore failed).
    pub abort: AtomicBool,
    /// Per lcore, [`LIVE`] counters for the progress line.
    pub live: Vec<[AtomicU64; LIVE]>,
}

impl Shared {
    pub fn new(interrupted: Arc<AtomicBool>, lcores: usize) -> Shared {
        Shared {
            interrupted,
            link_down: AtomicBool::new(false),
            abort: AtomicBool::new(false),
            live: (0..lcores)
                .map(|_| std::array::from_fn(|_| AtomicU64::new(0)))
                .collect(),
        }
    }

    /// The sums of every lcore's published counters.
    pub fn live_total(&self) -> [u64; LIVE] {
        let mut t = [0u64; LIVE];
        for l in &self.live {
            for (a, v) in t.iter_mut().zip(l) {
                *a += v.load(Ordering::Relaxed);
            }
        }
        t
    }
}

/// The MACs frames are built and checked with.
#[derive(Clone, Copy)]
pub struct Macs {
    pub ours: [u8; 6],
    pub dut: [u8; 6],
    /// The load balancer's (expect mplb), when known.
    pub lb: Option<[u8; 6]>,
}

/// What the main lcore does on top of generating: watch the link and print
/// progress lines.
pub struct MainDuties<'a> {
    pub port: &'a Port,
    /// Ticks between progress lines; 0 = none.
    pub progress_every: u64,
}

/// One lcore's generator.
pub struct Generator {
    /// This lcore's index among the generator lcores (its part of the flows).
    pub index: usize,
    pub lanes: Vec<Lane>,
    /// Queue pairs on the port, over all lcores.
    pub queues: u32,
    pub lcores: u32,
    pub plan: Plan,
    pub source: Source,
    pub expect: Expect,
    pub macs: Macs,
    /// This lcore's share of the offered rate (0 = flat out).
    pub rate: u64,
    pub pool: Mempool,
    pub state: Arc<FlowState>,
    pub shared: Arc<Shared>,
    pub timing: Timing,
}

/// How a generator's run ended.
pub struct Finished {
    pub stats: Stats,
    /// The measured seconds (shorter than asked if interrupted).
    pub measured_s: f64,
}

impl Generator {
    /// Sends, receives and checks until the measured time and the drain are
    /// over. `main`: the main lcore's extra duties.
    pub fn run(mut self, main: Option<&MainDuties>) -> Result<Finished, String> {
        let result = self.traffic(main);
        for l in &mut self.lanes {
            l.out.clear();
        }
        if result.is_err() {
            // The others must not wait for this lcore's frames.
            self.shared.abort.store(true, Ordering::SeqCst);
        }
        result
    }

    fn traffic(&mut self, main: Option<&MainDuties>) -> Result<Finished, String> {
        let Timing {
            hz,
            t0,
            warm_end,
            mut end,
            drain,
            quiet,
            check_every,
        } = self.timing;
        let ns_per_tick = 1e9 / hz as f64;
        let expect = self.expect;
        let plan = self.plan.clone();
        let mut checker = Checker::new(&plan, expect, self.macs.ours, self.macs.dut, self.macs.lb);
        let mut s = Stats::new()?;
        let expected_back = |c: Class| c != Class::Malformed || expect != Expect::Mplb;
        let mut drain_end = end + drain;
        let mut measured_s = (end - warm_end) as f64 / hz as f64;
        let mut next_check = t0 + check_every;
        let progress_every = main.map_or(0, |m| m.progress_every);
        let mut next_progress = t0 + progress_every;
        let mut last = (t0, 0u64, 0u64);
        let mut last_rx = t0;
        let mut built: u64 = 0;
        let mut staging = Batch::new();
        let mut rxb = Batch::new();
        let (queues, lcores) = (self.queues.max(1), self.lcores.max(1));
        loop {
            let now = tsc_now();
            if now < end && self.shared.interrupted.load(Ordering::Relaxed) {
                if main.is_some() {
                    eprintln!("mplb-gen: interrupted; draining and reporting");
                }
                end = now;
                drain_end = end + drain;
                measured_s = end.saturating_sub(warm_end) as f64 / hz as f64;
            }
            if now < end {
                // The fullest lane bounds the burst: each frame may go to any.
                let room = self
                    .lanes
                    .iter()
                    .map(|l| BURST - l.out.len())
                    .min()
                    .unwrap_or(0);
                let want = if self.rate == 0 {
                    room
                } else {
                    let due =
                        (u128::from(now - t0) * u128::from(self.rate) / u128::from(hz)) as u64;
                    (due.saturating_sub(built) as usize).min(room)
                };
                if want > 0 {
                    if self.pool.alloc_into(&mut staging, want) {
                        let window = if now >= warm_end { IN_WINDOW } else { 0 };
                        for mut m in staging.drain() {
                            let n = self
                                .source
                                .next(&self.state)
                                .ok_or("the mix produced no frame")?;
                            let len = self.source.len(&n.build);
                            if !m.set_len(len) || !self.source.write(&n.build, &mut m, now) {
                                return Err(format!("cannot build a {len}-byte frame in an mbuf"));
                            }
                            let back = if expected_back(n.class) {
                                EXPECT_BACK
                            } else {
                                0
                            };
                            if window != 0 {
                                s.frame_min = s.frame_min.min(len);
                                s.frame_max = s.frame_max.max(len);
                            }
                            // This lcore's lanes are the queues ≡ its index
                            // (mod lcores), in order; the source only picks those.
                            let lane = (n.lane % queues) / lcores;
                            let Some(lane) = self.lanes.get_mut(lane as usize) else {
                                continue;
                            };
                            if let Some(a) = lane.attrs.get_mut(lane.out.len()) {
                                *a = n.class.index() as u8 | window | back;
                            }
                            // Cannot be full: every lane had room for the whole burst.
                            let _ = lane.out.push(m);
                        }
                        built += want as u64;
                    } else {
                        s.alloc_failures += 1;
                    }
                }
            }
            for lane in self.lanes.iter_mut() {
                send(lane, &mut s);
            }

            // Receive before sending more, up to a few bursts per queue: a
            // reflector whose return ring is full drops frames.
            for lane in self.lanes.iter_mut() {
                for _ in 0..RX_BURSTS {
                    if lane.rx.rx_burst(&mut rxb) == 0 {
                        break;
                    }
                    let now = tsc_now();
                    last_rx = now;
                    for m in rxb.frames_mut().iter() {
                        // ARP answers to the address probe can still arrive: not traffic.
                        if m.get(12..14) == Some(&[0x08, 0x06]) {
                            s.arp_ignored += 1;
                            continue;
                        }
                        s.rx_all += 1;
                        let o = checker.check(m, &self.state);
                        s.verdicts[verdict_index(o.verdict)] += 1;
                        let Some(t) = o.tsc.filter(|t| *t >= warm_end && *t < end) else {
                            continue;
                        };
                        s.rx_window += 1;
                        s.rx_bytes_window += m.len() as u64;
                        if let Some(c) = o.class {
                            s.rx_class[c.index()] += 1;
                            if expected_back(c) {
                                s.rx_expected += 1;
                            }
                        }
                        if o.verdict != Verdict::BadRewrite && t <= now {
                            s.latency
                                .saturating_record(((now - t) as f64 * ns_per_tick) as u64);
                        }
                    }
                    rxb.clear();
                }
            }

            if now >= next_check {
                next_check = now + check_every;
                self.publish(&s);
                if self.shared.abort.load(Ordering::Relaxed) {
                    return Err(STOPPED.into());
                }
                if let Some(m) = main {
                    if !m.port.link().up {
                        self.shared.link_down.store(true, Ordering::SeqCst);
                    }
                }
                if self.shared.link_down.load(Ordering::Relaxed) {
                    if now >= end {
                        if main.is_some() {
                            eprintln!(
                                "mplb-gen: link down while draining; frames still out count as lost"
                            );
                        }
                        break;
                    }
                    return Err(format!(
                        "link down after {:.2} s: the device under test went away (stop it after mplb-gen, see --linger)",
                        (now - t0) as f64 / hz as f64
                    ));
                }
            }
            if progress_every > 0 && now >= next_progress {
                next_progress = now + progress_every;
                eprintln!(
                    "{}",
                    progress(&self.shared, &s, now, (t0, warm_end, end), hz, &mut last)
                );
            }
            if now >= end {
                let all_back =
                    self.lanes.iter().all(|l| l.out.is_empty()) && s.rx_expected >= s.tx_expected;
                // last_rx may be a little after `now` (read later in the iteration).
                let quiet_for = now.saturating_sub(last_rx);
                if all_back || now >= drain_end || (quiet_for > quiet && now - end > quiet) {
                    break;
                }
            }
        }
        rxb.clear();
        self.publish(&s);
        Ok(Finished {
            stats: s,
            measured_s,
        })
    }

    fn publish(&self, s: &Stats) {
        if let Some(live) = self.shared.live.get(self.index) {
            let v = [
                s.tx_all,
                s.rx_all,
                s.tx_expected,
                s.rx_expected,
                s.verdicts[0],
                s.verdicts[1],
                s.verdicts[2],
                s.verdicts[3],
                s.verdicts[4],
            ];
            for (slot, v) in live.iter().zip(v) {
                slot.store(v, Ordering::Relaxed);
            }
        }
    }
}

/// Sends what waits on a lane and counts what the queue took.
fn send(lane: &mut Lane, s: &mut Stats) {
    if lane.out.is_empty() {
        return;
    }
    let len = lane.out.len();
    let sent = lane.tx.tx_burst(&mut lane.out);
    if sent < len {
        s.tx_full_bursts += 1;
    }
    for &a in &lane.attrs[..sent] {
        s.tx_all += 1;
        if a & IN_WINDOW != 0 {
            s.tx_window += 1;
            if let Some(c) = s.tx_class.get_mut(usize::from(a & CLASS_MASK)) {
                *c += 1;
            }
            if a & EXPECT_BACK != 0 {
                s.tx_expected += 1;
            } else {
                s.expected_drops += 1;
            }
        }
    }
    lane.attrs.copy_within(sent..len, 0);
}

/// A progress line: rates and verdicts over all lcores (as last published,
/// at most a check interval old), the p99 of the main lcore's frames.
fn progress(
    shared: &Shared,
    own: &Stats,
    now: u64,
    (t0, warm_end, end): (u64, u64, u64),
    hz: u64,
    last: &mut (u64, u64, u64),
) -> String {
    let [
        tx_all,
        rx_all,
        tx_expected,
        rx_expected,
        ok,
        wrong,
        moved,
        bad,
        unexpected,
    ] = shared.live_total();
    let dt = (now - last.0) as f64 / hz as f64;
    let rate = |a: u64, b: u64| {
        if dt > 0.0 {
            a.saturating_sub(b) as f64 / dt / 1e6
        } else {
            0.0
        }
    };
    let phase = if now < warm_end {
        "warmup"
    } else if now < end {
        "run"
    } else {
        "drain"
    };
    let h = &own.latency;
    let p99 = if h.is_empty() {
        0.0
    } else {
        h.value_at_quantile(0.99) as f64 / 1000.0
    };
    let line = format!(
        "[{:6.1}s {phase:>6}] tx {:7.3} Mpps  rx {:7.3} Mpps  lost {}  ok {ok}  wrong_backend {wrong}  flow_moved {moved}  bad_rewrite {bad}  unexpected {unexpected}  p99 {p99:.1} µs",
        (now - t0) as f64 / hz as f64,
        rate(tx_all, last.1),
        rate(rx_all, last.2),
        tx_expected.saturating_sub(rx_expected),
    );
    *last = (now, tx_all, rx_all);
    line
}
