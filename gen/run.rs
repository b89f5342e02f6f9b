//! The DPDK side: one port, one rx and one tx queue, polled by one loop on
//! the main lcore: build a burst from the templates, send it, receive what
//! came back and check it, repeat.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mplb::dpdk::{BURST, Batch, Eal, Mempool, Port, PortSetup, RxQueue, TxQueue, tsc_hz, tsc_now};

use crate::check::{Checker, Expect};
use crate::flows::FlowState;
use crate::frames::{arp_reply_from, arp_request};
use crate::plan::{Class, Plan};
use crate::report::{Meta, Report, Stats, verdict_index};
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

/// One rx/tx queue pair and the frames waiting to be sent on it (with
/// their [`IN_WINDOW`] | [`EXPECT_BACK`] | class attributes, in order).
struct Lane {
    rx: RxQueue,
    tx: TxQueue,
    out: Batch,
    attrs: [u8; BURST],
}

/// Attribute bits of a frame waiting in the tx batch.
const IN_WINDOW: u8 = 0x10;
const EXPECT_BACK: u8 = 0x20;
const CLASS_MASK: u8 = 0x0f;
/// Placeholder destination MAC for reflectors that do not care.
const DEFAULT_DUT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
/// How often the run checks that the link is still up.
const LINK_CHECK: Duration = Duration::from_millis(10);
/// Rx bursts per loop iteration at most (one tx burst each).
const RX_BURSTS: usize = 4;
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
            .map(|q| {
                Some(Lane {
                    rx: port.rx_queue(q)?,
                    tx: port.tx_queue(q)?,
                    out: Batch::new(),
                    attrs: [0; BURST],
                })
            })
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
        let report = traffic(
            settings,
            plan,
            &port,
            &pool,
            &mut lanes,
            (our_mac, dut_mac, lb_mac),
            &interrupted,
        );
        for l in &mut lanes {
            l.out.clear();
        }
        let report = report?;
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

fn traffic(
    settings: &Settings,
    plan: Plan,
    port: &Port,
    pool: &Mempool,
    lanes: &mut [Lane],
    (our_mac, dut_mac, lb_mac): ([u8; 6], [u8; 6], Option<[u8; 6]>),
    interrupted: &AtomicBool,
) -> Result<Report, String> {
    let hz = tsc_hz().max(1);
    let secs = |s: f64| (s * hz as f64) as u64;
    let ns_per_tick = 1e9 / hz as f64;
    let expect = settings.expect;
    let mut state = FlowState::new(plan.flows);
    let mut meta = Meta {
        mix: plan.mix.spec(),
        flows: plan.flows,
        ipv6_percent: plan.ipv6_percent,
        duration_s: settings.duration,
        offered_pps: settings.rate,
        tsc_hz: hz,
        expect: format!("{expect:?}").to_lowercase(),
        flow_state_bytes: (state.len() * FlowState::BYTES_PER_FLOW) as u64,
    };
    let mut source = Source::new(
        plan.clone(),
        dut_mac,
        our_mac,
        settings.size,
        settings.conn_packets,
    );
    let mut checker = Checker::new(&plan, expect, our_mac, dut_mac, lb_mac);
    let mut s = Stats::new()?;
    let expected_back = |c: Class| c != Class::Malformed || expect != Expect::Mplb;

    let t0 = tsc_now();
    let warm_end = t0 + secs(settings.warmup);
    let mut end = warm_end + secs(settings.duration);
    let mut drain_end = end + secs(DRAIN.as_secs_f64());

    let quiet = secs(DRAIN_QUIET.as_secs_f64());
    let every = secs(settings.progress);
    let mut next_progress = t0 + every;
    let link_every = secs(LINK_CHECK.as_secs_f64());
    let mut next_link_check = t0 + link_every;
    let mut last = (t0, 0u64, 0u64);
    let mut last_rx = t0;
    let mut built: u64 = 0;

    let mut staging = Batch::new();
    let mut rxb = Batch::new();
    let queues = lanes.len().max(1);
    loop {
        let now = tsc_now();
        if now < end && interrupted.load(Ordering::Relaxed) {
            eprintln!("mplb-gen: interrupted; draining and reporting");
            end = now;
            drain_end = end + secs(DRAIN.as_secs_f64());
            meta.duration_s = end.saturating_sub(warm_end) as f64 / hz as f64;
        }
        if now < end {
            // The fullest queue bounds the burst: each frame may go to any.
            let room = lanes.iter().map(|l| BURST - l.out.len()).min().unwrap_or(0);
            let want = if settings.rate == 0 {
                room
            } else {
                let due =
                    (u128::from(now - t0) * u128::from(settings.rate) / u128::from(hz)) as u64;
                (due.saturating_sub(built) as usize).min(room)
            };
            if want > 0 {
                if pool.alloc_into(&mut staging, want) {
                    let window = if now >= warm_end { IN_WINDOW } else { 0 };
                    for mut m in staging.drain() {
                        let n = source.next(&state).ok_or("the mix produced no frame")?;
                        let len = source.len(&n.build);
                        if !m.set_len(len) || !source.write(&n.build, &mut m, now) {
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
                        let Some(lane) = lanes.get_mut(n.lane as usize % queues) else {
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
        for lane in lanes.iter_mut() {
            if lane.out.is_empty() {
                continue;
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

        // Receive before sending more, up to a few bursts per queue: a
        // reflector whose return ring is full drops frames.
        for lane in lanes.iter_mut() {
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
                    let o = checker.check(m, &mut state);
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
                    if o.verdict != crate::check::Verdict::BadRewrite && t <= now {
                        s.latency
                            .saturating_record(((now - t) as f64 * ns_per_tick) as u64);
                    }
                }
                rxb.clear();
            }
        }

        if now >= next_link_check {
            next_link_check = now + link_every;
            if !port.link().up {
                if now >= end {
                    eprintln!("mplb-gen: link down while draining; frames still out count as lost");
                    break;
                }
                return Err(format!(
                    "link down after {:.2} s: the device under test went away (stop it after mplb-gen, see --linger)",
                    (now - t0) as f64 / hz as f64
                ));
            }
        }
        if every > 0 && now >= next_progress {
            next_progress = now + every;
            eprintln!("{}", progress(&s, now, t0, warm_end, end, hz, &mut last));
        }
        if now >= end {
            let all_back = lanes.iter().all(|l| l.out.is_empty()) && s.rx_expected >= s.tx_expected;
            // last_rx may be a little after `now` (read later in the iteration).
            let quiet_for = now.saturating_sub(last_rx);
            if all_back || now >= drain_end || (quiet_for > quiet && now - end > quiet) {
                break;
            }
        }
    }
    rxb.clear();
    Ok(Report::new(meta, &s))
}

fn progress(
    s: &Stats,
    now: u64,
    t0: u64,
    warm_end: u64,
    end: u64,
    hz: u64,
    last: &mut (u64, u64, u64),
) -> String {
    let dt = (now - last.0) as f64 / hz as f64;
    let rate = |a: u64, b: u64| {
        if dt > 0.0 {
            (a - b) as f64 / dt / 1e6
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
    let h = &s.latency;
    let p99 = if h.is_empty() {
        0.0
    } else {
        h.value_at_quantile(0.99) as f64 / 1000.0
    };
    let line = format!(
        "[{:6.1}s {phase:>6}] tx {:7.3} Mpps  rx {:7.3} Mpps  lost {}  ok {}  wrong_backend {}  flow_moved {}  bad_rewrite {}  unexpected {}  p99 {p99:.1} µs",
        (now - t0) as f64 / hz as f64,
        rate(s.tx_all, last.1),
        rate(s.rx_all, last.2),
        s.lost(),
        s.verdicts[0],
        s.verdicts[1],
        s.verdicts[2],
        s.verdicts[3],
        s.verdicts[4],
    );
    *last = (now, s.tx_all, s.rx_all);
    line
}

pub fn fmt_mac(m: [u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}
