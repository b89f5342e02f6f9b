//! Criterion benchmarks of the datapath's per-burst function,
//! `Datapath::process_burst`, one per forwarding path, on real frames (see
//! `bench/scenarios.rs`) with 1M established plain-TCP flows in a 2M-entry
//! flow table. One iteration = one burst of 32 frames of 32 different flows;
//! criterion's throughput is in frames (elements) per second.
//!
//! Run: `cargo bench --bench datapath -- --warm-up-time 1 --measurement-time 3`
//! (add a filter such as `plain_hit` to run a subset; `MPLB_BENCH_PATHS=a,b`
//! also skips building the other workloads). See bench/README.md.

#[path = "scenarios.rs"]
mod scenarios;

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, Throughput};
use scenarios::{BURST, Bench, Scenario, Sizes};

fn resident_bytes() -> Option<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn main() {
    let mut c = Criterion::default().configure_from_args();

    let rss0 = resident_bytes();
    let t0 = Instant::now();
    let mut bench = Bench::new(Sizes::FULL);
    let rss1 = resident_bytes();
    let table = bench.dp.flow_table();
    eprintln!(
        "setup: {} established flows in a {}-entry flow table in {:.1} s; \
         FlowTable::memory_bytes() = {} ({:.1} bytes per entry, {:.1} per established flow); \
         token table {} bytes; resident set grew by {} MiB",
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
