//! Counters of a run, the latency histogram, and the final report (table
//! on stdout, JSON as agreed in /work/briefs/gen-cli.md → gen/README.md).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::check::Verdict;
use crate::plan::Class;

/// What the run loop counts. "Window" = sent after the warm-up and before
/// the end of the measured duration (returned frames are placed by the
/// TSC they carry).
pub struct Stats {
    pub tx_all: u64,
    pub tx_window: u64,
    /// Sent in the window, expected back.
    pub tx_expected: u64,
    /// Sent in the window, expected to be dropped by the device.
    pub expected_drops: u64,
    pub rx_all: u64,
    /// Returned frames sent in the window.
    pub rx_window: u64,
    /// ... of which expected back.
    pub rx_expected: u64,
    pub rx_bytes_window: u64,
    pub tx_class: [u64; 7],
    pub rx_class: [u64; 7],
    /// By [`verdict_index`], all returned frames (warm-up included).
    pub verdicts: [u64; 5],
    pub frame_min: usize,
    pub frame_max: usize,
    /// Round-trip latency in ns of frames sent in the window.
    pub latency: Histogram<u64>,
    /// Times the pool had no mbuf for a burst (the device holds them all).
    pub alloc_failures: u64,
    /// ARP frames received (late answers to the address probe), not checked.
    pub arp_ignored: u64,
    /// Tx bursts the queue did not take whole: the device under test (or
    /// the link) was the bottleneck, not the generator.
    pub tx_full_bursts: u64,
}

pub fn verdict_index(v: Verdict) -> usize {
    match v {
        Verdict::Ok => 0,
        Verdict::WrongBackend => 1,
        Verdict::FlowMoved => 2,
        Verdict::BadRewrite => 3,
        Verdict::Unexpected => 4,
    }
}

impl Stats {
    pub fn new() -> Result<Stats, String> {
        Ok(Stats {
            tx_all: 0,
            tx_window: 0,
            tx_expected: 0,
            expected_drops: 0,
            rx_all: 0,
            rx_window: 0,
            rx_expected: 0,
            rx_bytes_window: 0,
            tx_class: [0; 7],
            rx_class: [0; 7],
            verdicts: [0; 5],
            frame_min: usize::MAX,
            frame_max: 0,
            // 1 ns .. 100 s at 3 significant digits.
            latency: Histogram::new_with_bounds(1, 100_000_000_000, 3)
                .map_err(|e| format!("histogram: {e}"))?,
            alloc_failures: 0,
            arp_ignored: 0,
            tx_full_bursts: 0,
        })
    }

    pub fn lost(&self) -> u64 {
        self.tx_expected.saturating_sub(self.rx_expected)
    }

    /// Adds another lcore's counts and latencies to these.
    pub fn merge(&mut self, o: &Stats) -> Result<(), String> {
        self.tx_all += o.tx_all;
        self.tx_window += o.tx_window;
        self.tx_expected += o.tx_expected;
        self.expected_drops += o.expected_drops;
        self.rx_all += o.rx_all;
        self.rx_window += o.rx_window;
        self.rx_expected += o.rx_expected;
        self.rx_bytes_window += o.rx_bytes_window;
        for (a, b) in self.tx_class.iter_mut().zip(o.tx_class) {
            *a += b;
        }
        for (a, b) in self.rx_class.iter_mut().zip(o.rx_class) {
            *a += b;
        }
        for (a, b) in self.verdicts.iter_mut().zip(o.verdicts) {
            *a += b;
        }
        self.frame_min = self.frame_min.min(o.frame_min);
        self.frame_max = self.frame_max.max(o.frame_max);
        self.latency
            .add(&o.latency)
            .map_err(|e| format!("merging latency histograms: {e}"))?;
        self.alloc_failures += o.alloc_failures;
        self.arp_ignored += o.arp_ignored;
        self.tx_full_bursts += o.tx_full_bursts;
        Ok(())
    }
}

/// One generator lcore's share of the run (a `per_lcore` entry).
#[derive(Serialize, Clone, Debug)]
pub struct LcoreCounts {
    pub lcore: u32,
    /// The port's queue pairs it polled.
    pub queues: Vec<u16>,
    /// Sent / received in the window.
    pub tx_packets: u64,
    pub rx_packets: u64,
    /// Sent / received in the whole run.
    pub tx_all: u64,
    pub rx_all: u64,
    pub latency_p99_ns: u64,
}

impl LcoreCounts {
    pub fn new(lcore: u32, queues: Vec<u16>, s: &Stats) -> LcoreCounts {
        LcoreCounts {
            lcore,
            queues,
            tx_packets: s.tx_window,
            rx_packets: s.rx_window,
            tx_all: s.tx_all,
            rx_all: s.rx_all,
            latency_p99_ns: if s.latency.is_empty() {
                0
            } else {
                s.latency.value_at_quantile(0.99)
            },
        }
    }
}

#[derive(Serialize)]
pub struct MinMax {
    pub min: usize,
    pub max: usize,
}

#[derive(Serialize)]
pub struct Latency {
    pub samples: u64,
    pub p50: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

#[derive(Serialize)]
pub struct CheckCounts {
    pub ok: u64,
    pub wrong_backend: u64,
    pub flow_moved: u64,
    pub bad_rewrite: u64,
    pub unexpected: u64,
}

#[derive(Serialize)]
pub struct ClassCounts {
    pub tx: u64,
    pub rx: u64,
}

/// The JSON report: the agreed fields first, then extras.
#[derive(Serialize)]
pub struct Report {
    pub mix: String,
    pub flows: u32,
    pub ipv6_percent: u8,
    pub frame_bytes: MinMax,
    pub duration_s: f64,
    pub offered_pps: u64,
    pub tx_packets: u64,
    pub rx_packets: u64,
    pub tx_pps: f64,
    pub rx_pps: f64,
    pub rx_mbps: f64,
    pub expected_drops: u64,
    pub lost: u64,
    pub latency_ns: Latency,
    pub check: CheckCounts,
    pub tsc_hz: u64,
    // Extras (not in the contract; consumers may ignore them).
    pub expect: String,
    /// Per traffic class, frames sent and returned in the window.
    pub per_class: BTreeMap<String, ClassCounts>,
    /// All frames sent / received, warm-up and drain included.
    pub tx_all: u64,
    pub rx_all: u64,
    /// Generator memory for per-flow state.
    pub flow_state_bytes: u64,
    pub alloc_failures: u64,
    pub arp_ignored: u64,
    /// Tx bursts not taken whole (the DUT was the bottleneck).
    pub tx_full_bursts: u64,
    /// Each generator lcore: its queues and what it sent and received.
    pub per_lcore: Vec<LcoreCounts>,
}

pub struct Meta {
    pub mix: String,
    pub flows: u32,
    pub ipv6_percent: u8,
    pub duration_s: f64,
    pub offered_pps: u64,
    pub tsc_hz: u64,
    pub expect: String,
    pub flow_state_bytes: u64,
}

impl Report {
    pub fn new(m: Meta, s: &Stats) -> Report {
        let d = if m.duration_s > 0.0 {
            m.duration_s
        } else {
            1.0
        };
        let h = &s.latency;
        let q = |x: f64| {
            if h.is_empty() {
                0
            } else {
                h.value_at_quantile(x)
            }
        };
        let per_class = Class::ALL
            .iter()
            .filter(|c| s.tx_class[c.index()] + s.rx_class[c.index()] > 0)
            .map(|c| {
                (
                    c.name().to_string(),
                    ClassCounts {
                        tx: s.tx_class[c.index()],
                        rx: s.rx_class[c.index()],
                    },
                )
            })
            .collect();
        Report {
            mix: m.mix,
            flows: m.flows,
            ipv6_percent: m.ipv6_percent,
            frame_bytes: MinMax {
                min: if s.frame_max == 0 { 0 } else { s.frame_min },
                max: s.frame_max,
            },
            duration_s: m.duration_s,
            offered_pps: m.offered_pps,
            tx_packets: s.tx_window,
            rx_packets: s.rx_window,
            tx_pps: s.tx_window as f64 / d,
            rx_pps: s.rx_window as f64 / d,
            rx_mbps: s.rx_bytes_window as f64 * 8.0 / d / 1e6,
            expected_drops: s.expected_drops,
            lost: s.lost(),
            latency_ns: Latency {
                samples: h.len(),
                p50: q(0.5),
                p99: q(0.99),
                p999: q(0.999),
                max: if h.is_empty() { 0 } else { h.max() },
            },
            check: CheckCounts {
                ok: s.verdicts[0],
                wrong_backend: s.verdicts[1],
                flow_moved: s.verdicts[2],
                bad_rewrite: s.verdicts[3],
                unexpected: s.verdicts[4],
            },
            tsc_hz: m.tsc_hz,
            expect: m.expect,
            per_class,
            tx_all: s.tx_all,
            rx_all: s.rx_all,
            flow_state_bytes: m.flow_state_bytes,
            alloc_failures: s.alloc_failures,
            arp_ignored: s.arp_ignored,
            tx_full_bursts: s.tx_full_bursts,
            per_lcore: Vec::new(),
        }
    }

    /// The human-readable table.
    pub fn table(&self) -> String {
        let mut t = String::new();
        let us = |ns: u64| format!("{:.2} µs", ns as f64 / 1000.0);
        let rate = if self.offered_pps == 0 {
            "flat out".to_string()
        } else {
            format!("{} pps", self.offered_pps)
        };
        let _ = writeln!(
            t,
            "mplb-gen: mix {} | {} flows | IPv6 {}% | frames {}..{} B | {rate} | {:.1} s | expect {}",
            self.mix,
            self.flows,
            self.ipv6_percent,
            self.frame_bytes.min,
            self.frame_bytes.max,
            self.duration_s,
            self.expect
        );
        let _ = writeln!(t, "{:<16} {:>14} {:>14}", "", "tx", "rx");
        let _ = writeln!(
            t,
            "{:<16} {:>14} {:>14}",
            "packets", self.tx_packets, self.rx_packets
        );
        let _ = writeln!(
            t,
            "{:<16} {:>14.3} {:>14.3}",
            "Mpps",
            self.tx_pps / 1e6,
            self.rx_pps / 1e6
        );
        for (name, c) in &self.per_class {
            let _ = writeln!(t, "{:<16} {:>14} {:>14}", format!("  {name}"), c.tx, c.rx);
        }
        let _ = writeln!(t, "rx Mbit/s        {:.1}", self.rx_mbps);
        let _ = writeln!(
            t,
            "lost             {} (expected drops {})",
            self.lost, self.expected_drops
        );
        let l = &self.latency_ns;
        let _ = writeln!(
            t,
            "latency          p50 {}  p99 {}  p99.9 {}  max {}  ({} samples)",
            us(l.p50),
            us(l.p99),
            us(l.p999),
            us(l.max),
            l.samples
        );
        if self.per_lcore.len() > 1 {
            for l in &self.per_lcore {
                let _ = writeln!(
                    t,
                    "{:<16} {:>14} {:>14}  queues {:?}  p99 {}",
                    format!("  lcore {}", l.lcore),
                    l.tx_packets,
                    l.rx_packets,
                    l.queues,
                    us(l.latency_p99_ns)
                );
            }
        }
        let c = &self.check;
        let _ = writeln!(
            t,
            "check            ok {}  wrong_backend {}  flow_moved {}  bad_rewrite {}  unexpected {}",
            c.ok, c.wrong_backend, c.flow_moved, c.bad_rewrite, c.unexpected
        );
        t
    }
}
