//! The DPDK side: one port with `--queues` rx/tx queue pairs, dealt to the
//! generator lcores (see [`crate::generator`]): each builds bursts from the
//! templates, sends them, receives what came back and checks it, repeat.
//! The main lcore also watches the link and prints progress; their stats
//! are merged into one report.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use std::sync::mpsc;

use mplb::dpdk::{Batch, Eal, Mempool, Port, PortSetup, launch_on_lcore, tsc_hz, tsc_now};

use crate::check::Expect;
use crate::flows::FlowState;
use crate::frames::{arp_reply_from, arp_request};
use crate::generator::{Finished, Generator, Lane, Macs, MainDuties, STOPPED, Shared, Timing};
use crate::plan::Plan;
use crate::report::{LcoreCounts, Meta, Report};
use crate::source::Source;

/// How to run (the command line, validated).
pub struct Settings {
    pub port: String,
    pub eal: Vec<String>,
    pub expect: Expect,
    pub size: usize,
    /// Packets per second; 0 = flat out.
    pub rate: u64,
    pub duration: f64,
    pub warmup: f64,
    /// Seconds between progress lines; 0 = none.
    pub progress: f64,
    pub conn_packets: u64,
    pub mbufs: u32,
    pub link_timeout: f64,
    /// The MAC to send to; `None`: ask the load balancer by ARP (expect
    /// mplb), else a placeholder.
    pub dut_mac: Option<[u8; 6]>,
    /// Rx/tx queue pairs (a memif peer needs as many as it has).
    pub queues: u16,
    /// After the report, keep the port open (idle) until the peer
    /// disconnects, at most this many seconds.
    pub linger: f64,
}

/// Placeholder destination MAC for reflectors that do not care.
const DEFAULT_DUT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
/// How often each lcore publishes its progress and checks the stop flags
/// (the main lcore: the link).
const LINK_CHECK: Duration = Duration::from_millis(10);
/// After the run, wait this long for the last frames (at most).
const DRAIN: Duration = Duration::from_millis(500);
/// ... or until nothing arrived for this long.
const DRAIN_QUIET: Duration = Duration::from_millis(50);

/// Runs the traffic; hands the report to `publish` (which prints and writes
/// it) while the port is still open, then lingers (see [`Settings::linger`]).
pub fn run(
    settings: &Settings,
    plan: Plan,
    publish: impl FnOnce(&Report) -> Result<(), String>,
) -> Result<Report, String> {
    // SIGINT/SIGTERM end the run early, with a report of what was measured;
    // a second one exits at once.
    let interrupted = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(sig, 130, Arc::clone(&interrupted))
            .and_then(|_| signal_hook::flag::register(sig, Arc::clone(&interrupted)))
            .map_err(|e| format!("installing a signal handler: {e}"))?;
    }
    let mut args = vec!["mplb-gen".to_string()];
    args.extend(settings.eal.iter().cloned());
    let eal = Eal::init(&args).map_err(|e| e.to_string())?;
    // Before the port waits for its peer: every lcore must have flows.
    plan.check_parts(generator_lcores(&eal, settings.queues).len() as u32)?;
    let pool =
        Mempool::new(&eal, "mplb_gen", settings.mbufs, 256, -1).map_err(|e| e.to_string())?;
    let report = {
        let id = Port::id_by_name(&settings.port).map_err(|e| e.to_string())?;
        let setup = PortSetup {
            rx_queues: settings.queues,
            tx_queues: settings.queues,
            rx_descriptors: 1024,
            tx_descriptors: 1024,
            mtu: None,
            promiscuous: true,
        };
        let port = Port::start(id, &setup, &pool).map_err(|e| e.to_string())?;
        let mut lanes = (0..settings.queues)
            .map(|q| Some(Lane::new(q, port.rx_queue(q)?, port.tx_queue(q)?)))
            .collect::<Option<Vec<_>>>()
            .ok_or("queues unavailable")?;
        wait_for_link(&port, settings.link_timeout)?;
        let our_mac = port.mac();
        let (dut_mac, lb_mac) = match (settings.dut_mac, settings.expect) {
            (Some(m), Expect::Mplb) => (m, Some(m)),
            (Some(m), _) => (m, None),
            (None, Expect::Mplb) => match plan.lb.ipv4.first() {
                Some(ip) => {
                    let m = arp(
                        &pool,
                        &mut lanes,
                        our_mac,
                        ip.octets(),
                        settings.link_timeout,
                    )?;
                    eprintln!("mplb-gen: {ip} is at {}", fmt_mac(m));
                    (m, Some(m))
                }
                None => (DEFAULT_DUT_MAC, None),
            },
            (None, _) => (DEFAULT_DUT_MAC, None),
        };
        let macs = Macs {
            ours: our_mac,
            dut: dut_mac,
            lb: lb_mac,
        };
        let report = traffic(
            settings,
            plan,
            Dpdk {
                eal: &eal,
                port: &port,
                pool: &pool,
            },
            lanes,
            macs,
            &interrupted,
        )?;
        publish(&report)?;
        linger(&port, settings.linger);
        Ok(report)
        // Port stopped and closed here, before the pool and the EAL go.
    };
    drop(pool);
    drop(eal);
    report
}

/// Keeps the port open, without polling it, until the peer disconnects or
/// `secs` pass. A memif peer that disconnects while the other side is inside
/// an rx/tx burst can crash it (DPDK 22.11's memif unmaps the rings under
/// the poller), so the device under test should stop first, while the
/// generator is idle here. (A second SIGINT ends the wait: it exits.)
fn linger(port: &Port, secs: f64) {
    let until = Instant::now() + Duration::from_secs_f64(secs.max(0.0));
    while port.link().up && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn wait_for_link(port: &Port, timeout: f64) -> Result<(), String> {
    let until = Instant::now() + Duration::from_secs_f64(timeout.max(0.0));
    while !port.link().up {
        if Instant::now() >= until {
            return Err(format!(
                "port {}: link not up after {timeout} s (is the device under test connected? a memif server waits for its client)",
                port.name()
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

/// Asks the load balancer's address for its MAC (mplb answers ARP for its
/// own addresses), every 100 ms for up to `timeout` seconds (at least 2):
/// a DUT's link can be up before it forwards, and a memif link can come up
/// before frames get through.
fn arp(
    pool: &Mempool,
    lanes: &mut [Lane],
    our_mac: [u8; 6],
    target: [u8; 4],
    timeout: f64,
) -> Result<[u8; 6], String> {
    let request = arp_request(our_mac, [198, 19, 255, 254], target);
    let mut out = Batch::new();
    let mut got = Batch::new();
    let tries = (timeout * 10.0).max(20.0) as u32;
    for _ in 0..tries {
        if pool.alloc_into(&mut out, 1) {
            if let Some(m) = out.frames_mut().first_mut() {
                if m.set_len(request.len()) {
                    m.copy_from_slice(&request);
                }
            }
            if let Some(first) = lanes.first_mut() {
                first.tx.tx_burst(&mut out);
            }
            out.clear();
        }
        let until = Instant::now() + Duration::from_millis(100);
        while Instant::now() < until {
            // The answer comes back on any queue; what else comes is dropped.
            for l in lanes.iter_mut() {
                l.rx.rx_burst(&mut got);
                let found = got
                    .frames_mut()
                    .iter()
                    .find_map(|m| arp_reply_from(m, target));
                got.clear();
                if let Some(mac) = found {
                    return Ok(mac);
                }
            }
        }
    }
    Err(format!(
        "no ARP answer from {}.{}.{}.{} in {:.1} s (the load balancer's address in --lb-config); is mplb running on the other end? (or give --dut-mac)",
        target[0],
        target[1],
        target[2],
        target[3],
        f64::from(tries) / 10.0
    ))
}

/// The lcores that generate: the main lcore first, then the EAL's worker
/// lcores, as many as divide the queue count evenly (each lcore polls
/// queues ≡ its index mod the lcore count, and sends the flows whose id is
/// ≡ its index as well, so a flow keeps to one lcore and one queue).
fn generator_lcores(eal: &Eal, queues: u16) -> Vec<u32> {
    let mut all = vec![eal.main_lcore()];
    all.extend(eal.worker_lcores());
    let n = (1..=all.len().min(usize::from(queues)))
        .rev()
        .find(|n| usize::from(queues) % n == 0)
        .unwrap_or(1);
    all.truncate(n);
    all
}

/// The DPDK handles a run uses.
struct Dpdk<'a> {
    eal: &'a Eal,
    port: &'a Port,
    pool: &'a Mempool,
}

fn traffic(
    settings: &Settings,
    plan: Plan,
    Dpdk { eal, port, pool }: Dpdk,
    lanes: Vec<Lane>,
    macs: Macs,
    interrupted: &Arc<AtomicBool>,
) -> Result<Report, String> {
    let lcores = generator_lcores(eal, settings.queues);
    let parts = lcores.len() as u32;
    if lcores.len() < eal.worker_lcores().len() + 1 {
        eprintln!(
            "mplb-gen: {} queue(s) on {} lcore(s) {:?}; other EAL lcores stay idle (the lcore count must divide --queues)",
            settings.queues,
            lcores.len(),
            lcores
        );
    }
    let hz = tsc_hz().max(1);
    let secs = |s: f64| (s * hz as f64) as u64;
    let state = Arc::new(FlowState::new(plan.flows));
    let shared = Arc::new(Shared::new(Arc::clone(interrupted), lcores.len()));
    let t0 = tsc_now();
    let warm_end = t0 + secs(settings.warmup);
    let timing = Timing {
        hz,
        t0,
        warm_end,
        end: warm_end + secs(settings.duration),
        drain: secs(DRAIN.as_secs_f64()),
        quiet: secs(DRAIN_QUIET.as_secs_f64()),
        check_every: secs(LINK_CHECK.as_secs_f64()),
    };
    // Deal the lanes: queue q to lcore q mod parts, in queue order.
    let mut dealt: Vec<Vec<Lane>> = (0..lcores.len()).map(|_| Vec::new()).collect();
    for lane in lanes {
        if let Some(d) = dealt.get_mut(usize::from(lane.queue) % lcores.len()) {
            d.push(lane);
        }
    }
    let mut generators = Vec::with_capacity(lcores.len());
    for (index, lanes) in dealt.into_iter().enumerate() {
        let part = index as u32;
        // The offered rate is split evenly (the remainder to the first lcores).
        let rate = settings.rate / u64::from(parts)
            + u64::from(u64::from(part) < settings.rate % u64::from(parts));
        let source = Source::new(
            plan.clone(),
            macs.dut,
            macs.ours,
            settings.size,
            settings.conn_packets,
        )
        .for_part(part, parts);
        generators.push(Generator {
            index,
            lanes,
            queues: u32::from(settings.queues),
            lcores: parts,
            plan: plan.clone(),
            source,
            expect: settings.expect,
            macs,
            rate,
            pool: pool.clone(),
            state: Arc::clone(&state),
            shared: Arc::clone(&shared),
            timing,
        });
    }
    let queues_of = |g: &Generator| g.lanes.iter().map(|l| l.queue).collect::<Vec<u16>>();
    let mut generators = generators.into_iter();
    let main_gen = generators.next().ok_or("no generator lcore")?;
    let main_queues = queues_of(&main_gen);

    // The other lcores first, each reporting back through the channel.
    let (done_tx, done_rx) = mpsc::channel();
    let mut launched = Vec::new();
    let mut others: Vec<Vec<u16>> = Vec::new();
    for (g, &lcore) in generators.zip(lcores.iter().skip(1)) {
        let queues = queues_of(&g);
        let done = done_tx.clone();
        let index = g.index;
        let job = move || {
            let r = g.run(None);
            let rc = i32::from(r.is_err());
            let _ = done.send((index, r));
            rc
        };
        match launch_on_lcore(eal, lcore, job) {
            Ok(l) => launched.push(l),
            Err(e) => {
                shared.abort.store(true, Ordering::SeqCst);
                return Err(format!("launching the generator on lcore {lcore}: {e}"));
            }
        }
        others.push(queues);
    }
    drop(done_tx);
    let duties = MainDuties {
        port,
        progress_every: secs(settings.progress),
    };
    let main_result = main_gen.run(Some(&duties));
    for l in launched {
        l.wait();
    }
    let mut results: Vec<(usize, Result<Finished, String>)> = done_rx.try_iter().collect();
    results.sort_by_key(|(i, _)| *i);
    // The first real failure, not an lcore that stopped because of it.
    // `others` holds the queues of generator i (i ≥ 1) at i - 1.
    let lcore_of = |i: usize| lcores.get(i).copied().unwrap_or(0);
    let cause = results.iter().find_map(|(i, r)| match r {
        Err(e) if e != STOPPED => Some(format!("generator lcore {}: {e}", lcore_of(*i))),
        _ => None,
    });
    let first = match main_result {
        Ok(f) => f,
        Err(e) => return Err(cause.unwrap_or(e)),
    };

    let mut per_lcore = vec![LcoreCounts::new(
        lcores.first().copied().unwrap_or(0),
        main_queues,
        &first.stats,
    )];
    let mut total = first.stats;
    for (i, r) in results {
        let f = r.map_err(|e| format!("generator lcore {}: {e}", lcore_of(i)))?;
        let queues = i
            .checked_sub(1)
            .and_then(|o| others.get(o))
            .cloned()
            .unwrap_or_default();
        per_lcore.push(LcoreCounts::new(lcore_of(i), queues, &f.stats));
        total.merge(&f.stats)?;
    }
    if per_lcore.len() != lcores.len() {
        return Err("a generator lcore ended without a report".into());
    }
    let meta = Meta {
        mix: plan.mix.spec(),
        flows: plan.flows,
        ipv6_percent: plan.ipv6_percent,
        duration_s: first.measured_s,
        offered_pps: settings.rate,
        tsc_hz: hz,
        expect: format!("{:?}", settings.expect).to_lowercase(),
        flow_state_bytes: (state.len() * FlowState::BYTES_PER_FLOW) as u64,
    };
    let mut report = Report::new(meta, &total);
    report.per_lcore = per_lcore;
    Ok(report)
}

pub fn fmt_mac(m: [u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}
