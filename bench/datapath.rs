//! Criterion benchmarks of the datapath's per-burst function,
//! `Datapath::process_burst`, one per forwarding path, on real frames (see
//! `bench/scenarios.rs`) with 1M established plain-TCP flows in a 2M-entry
//! flow table. One iteration = one burst of 32 frames of 32 different flows;
//! criterion's throughput is in frames (elements) per second.
//!
//! Run: `cargo bench --bench datapath -- --warm-up-time 1 --measurement-time 3`
//! (add a filter such as `plain_hit` to run a subset; `MPLB_BENCH_PATHS=a,b`
//! also skips building the other workloads; `MPLB_BENCH_VIPS=10000` puts
//! 10 000 VIPs in the snapshot and spreads the flows over them, and
//! `MPLB_BENCH_TABLES=per-vip` gives each its own Maglev table,
//! `MPLB_BENCH_INDEX=hashed` has their addresses hashed, not in the direct
//! table (which they get from about 5 000; the table is printed unless
//! asked for, `direct` or `hashed`);
//! `MPLB_BENCH_HASH_VERSION=1` hashes by version 1, not 2). See
//! bench/README.md.

#[path = "pmu.rs"]
mod pmu;
#[path = "scenarios.rs"]
mod scenarios;

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, Throughput};
use mplb::dpdk::Eal;
use scenarios::{BURST, Bench, Memory, Scenario, Sizes, eal_args};

fn resident_bytes() -> Option<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn main() {
    let mut c = Criterion::default().configure_from_args();

    // The flow table in the memory a worker gets: DPDK hugepages (the EAL
    // must outlive `bench`, which is declared after it and dropped first).
    // MPLB_BENCH_MEMORY=heap: the engine's fallback, ordinary memory.
    let heap = std::env::var("MPLB_BENCH_MEMORY").is_ok_and(|m| m == "heap");
    let eal = if heap {
        None
    } else {
        Some(Eal::init(&eal_args()).expect("EAL init (hugepages reserved? run as root)"))
    };
    let memory = eal.as_ref().map_or(Memory::Heap, Memory::Dpdk);

    let rss0 = resident_bytes();
    let t0 = Instant::now();
    let sizes = match std::env::var("MPLB_BENCH_ESTABLISHED") {
        Ok(n) => {
            let n: usize = n.parse().expect("MPLB_BENCH_ESTABLISHED: a number");
            Sizes {
                flow_capacity: 2 * n,
                established: n,
                flows_per_path: n.min(1 << 18),
                vips: 2,
                backends: 4,
            }
        }
        Err(_) => Sizes::FULL,
    };
    // MPLB_BENCH_FLOWS=N: N distinct flows per workload (default 2^18, or
    // MPLB_BENCH_ESTABLISHED if smaller), e.g. to keep a workload's frames in
    // the cache while the flow table stays large.
    let sizes = match std::env::var("MPLB_BENCH_FLOWS") {
        Ok(n) => Sizes {
            flows_per_path: n.parse().expect("MPLB_BENCH_FLOWS: a number"),
            ..sizes
        },
        Err(_) => sizes,
    };
    let sizes = sizes.with_env();
    let mut bench = Bench::new(sizes, memory);
    let rss1 = resident_bytes();
    let table = bench.dp.flow_table();
    eprintln!("flow table memory: {}", table.memory().placement());
    eprintln!(
        "setup: {} VIPs, {} established flows in a {}-entry flow table in {:.1} s; \
         FlowTable::memory_bytes() = {} ({:.1} bytes per entry, {:.1} per established flow); \
         token table {} bytes; resident set grew by {} MiB",
        bench.fwd.vips.len(),
        table.len(),
        table.capacity(),
        t0.elapsed().as_secs_f64(),
        table.memory_bytes(),
        table.memory_bytes() as f64 / table.capacity() as f64,
        table.memory_bytes() as f64 / table.len() as f64,
        bench.dp.token_table().memory_bytes(),
        match (rss0, rss1) {
            (Some(a), Some(b)) => (b.saturating_sub(a) >> 20).to_string(),
            _ => "?".into(),
        },
    );

    let only = std::env::var("MPLB_BENCH_PATHS").ok();
    let batches: Option<usize> = std::env::var("MPLB_BENCH_BATCHES")
        .ok()
        .map(|b| b.parse().expect("MPLB_BENCH_BATCHES: a number"));
    // Hardware counters for the best-of-batches lines, where there is a PMU.
    let mut pmu = match batches.map(|_| pmu::Pmu::open()) {
        Some(Ok(p)) => Some(p),
        Some(Err(why)) => {
            eprintln!("no PMU: {why}");
            None
        }
        None => None,
    };
    for scenario in Scenario::ALL {
        if let Some(only) = &only {
            if !only.split(',').any(|p| p == scenario.name()) {
                continue;
            }
        }
        let mut w = bench.workload(scenario);
        eprintln!(
            "workload {}: {} flows, {} bytes of frames",
            scenario.name(),
            w.frames.len(),
            w.frames.total_bytes()
        );
        if let Some(n) = batches {
            best_of_batches(&mut bench, &mut w, n, pmu.as_mut());
            continue;
        }
        let mut g = c.benchmark_group(scenario.name());
        g.throughput(Throughput::Elements(BURST as u64));
        g.bench_function("process_burst", |b| {
            b.iter(|| black_box(bench.burst(&mut w)))
        });
        if matches!(scenario, Scenario::PlainHit | Scenario::MptcpSynL2) {
            g.bench_function("process", |b| {
                b.iter(|| black_box(bench.burst_by_frame(&mut w)))
            });
        }
        g.bench_function("frame_restore_only", |b| {
            b.iter(|| black_box(bench.load_only(&mut w)))
        });
        g.finish();
    }
    c.final_summary();
}

/// Bursts per timed batch of [`best_of_batches`] (~0.2 ms).
const BATCH_BURSTS: usize = 64;

/// The other timing mode (`MPLB_BENCH_BATCHES=N`), for a machine shared with
/// other work: `n` batches of `process_burst` and `n` of the frame restore
/// alone, interleaved; prints ns/packet at the minimum, 10th percentile and
/// median of the batches. A batch is short enough that many run without
/// being preempted, so the low percentiles are what the code costs on a
/// quiet core, while criterion's mean absorbs the other processes' load.
/// With `pmu`, each batch's user-mode instructions and cycles too: the line
/// ends with instructions per packet (median, burst − restore) and cycles
/// per packet (p10, burst − restore); else with "no PMU".
fn best_of_batches(
    bench: &mut Bench,
    w: &mut scenarios::Workload,
    n: usize,
    mut pmu: Option<&mut pmu::Pmu>,
) {
    let packets = (BATCH_BURSTS * BURST) as f64;
    let per_packet = |t: std::time::Duration| t.as_nanos() as f64 / packets;
    let mut burst = Vec::with_capacity(n);
    let mut restore = Vec::with_capacity(n);
    let mut counted = Counted::default();
    for _ in 0..n {
        let c0 = read(&mut pmu);
        let t = Instant::now();
        for _ in 0..BATCH_BURSTS {
            black_box(bench.burst(w));
        }
        burst.push(per_packet(t.elapsed()));
        let c1 = read(&mut pmu);
        let t = Instant::now();
        for _ in 0..BATCH_BURSTS {
            black_box(bench.load_only(w));
        }
        restore.push(per_packet(t.elapsed()));
        let c2 = read(&mut pmu);
        if let (Some(c0), Some(c1), Some(c2)) = (c0, c1, c2) {
            counted.add(c1 - c0, c2 - c1, packets);
        }
    }
    let (b0, b10, b50) = stats(&mut burst);
    let (r0, r10, r50) = stats(&mut restore);
    let counters = match pmu {
        Some(_) if counted.burst_instr.len() == n => {
            let (_, _, bi) = stats(&mut counted.burst_instr);
            let (_, _, ri) = stats(&mut counted.restore_instr);
            let (_, bc, _) = stats(&mut counted.burst_cycles);
            let (_, rc, _) = stats(&mut counted.restore_cycles);
            format!(
                "pmu instr/pkt net {:7.1} cycles/pkt net p10 {:6.1}",
                bi - ri,
                bc - rc
            )
        }
        Some(_) => "pmu read failed".to_string(),
        None => "no PMU".to_string(),
    };
    println!(
        "{:<18} process_burst ns/pkt min {b0:6.1} p10 {b10:6.1} median {b50:6.1} | \
         restore min {r0:5.1} p10 {r10:5.1} median {r50:5.1} | net p10 {:6.1} | {counters}",
        w.scenario.name(),
        b10 - r10
    );
}

/// The minimum, 10th percentile and median of `v` (sorted in place).
fn stats(v: &mut [f64]) -> (f64, f64, f64) {
    if v.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q) as usize];
    (at(0.0), at(0.1), at(0.5))
}

fn read(pmu: &mut Option<&mut pmu::Pmu>) -> Option<pmu::Counts> {
    pmu.as_mut().and_then(|p| p.read().ok())
}

/// Per batch, per packet: the counters of the bursts and of the restores.
#[derive(Default)]
struct Counted {
    burst_instr: Vec<f64>,
    burst_cycles: Vec<f64>,
    restore_instr: Vec<f64>,
    restore_cycles: Vec<f64>,
}

impl Counted {
    fn add(&mut self, burst: pmu::Counts, restore: pmu::Counts, packets: f64) {
        self.burst_instr.push(burst.instructions as f64 / packets);
        self.burst_cycles.push(burst.cycles as f64 / packets);
        self.restore_instr
            .push(restore.instructions as f64 / packets);
        self.restore_cycles.push(restore.cycles as f64 / packets);
    }
}
