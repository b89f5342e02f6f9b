//! Runs one datapath path for a given number of packets, for instruction
//! counts under callgrind (`bench/callgrind.sh` runs every path and prints
//! the table). Only `measured_burst` is meant to be collected
//! (`--collect-atstart=no --toggle-collect='*measured_burst*'`): it holds
//! the `process_burst` call and nothing of the harness, so
//! instructions / packets is the datapath's own cost per packet.
//!
//! Usage: `callgrind_datapath SCENARIO [PACKETS]` (PACKETS default 32000);
//! `callgrind_datapath --list` prints the scenario names.
//! `MPLB_BENCH_VIPS=N`: N VIPs in the snapshot, the flows spread over them;
//! `MPLB_BENCH_HASH_VERSION=1`: the config's hash version (default 2) (see
//! `bench/scenarios.rs`).
//!
//! The flow table is smaller than the criterion benchmark's (64K established
//! flows in a 128K table) but at the same 50% load, so the buckets hold as
//! many entries and the instruction counts match; cache misses, which
//! callgrind does not time, are what the criterion benchmark adds.

#[path = "scenarios.rs"]
mod scenarios;

use std::hint::black_box;

use scenarios::{BURST, Bench, Memory, Scenario, Sizes, Workload};

const SIZES: Sizes = Sizes {
    flow_capacity: 1 << 17,
    established: 1 << 16,
    flows_per_path: 1 << 14,
    vips: 2,
    backends: 4,
};

#[inline(never)]
fn measured_burst(bench: &mut Bench) {
    bench.process_loaded();
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--list") {
        for s in Scenario::ALL {
            println!("{}", s.name());
        }
        return;
    }
    let Some(scenario) = args.first().and_then(|a| Scenario::from_name(a)) else {
        eprintln!("usage: callgrind_datapath SCENARIO [PACKETS]   (--list for the scenarios)");
        std::process::exit(2);
    };
    let packets: usize = match args.get(1).map(|p| p.parse()) {
        None => 32_000,
        Some(Ok(n)) => n,
        Some(Err(e)) => {
            eprintln!("bad packet count: {e}");
            std::process::exit(2);
        }
    };
    // Heap memory: instruction counts do not depend on the page size (and
    // the EAL's hugepage mappings are not worth the trouble under valgrind).
    let mut bench = Bench::new(SIZES.with_env(), Memory::Heap);
    let mut w: Workload = bench.workload(scenario);
    let bursts = packets.div_ceil(BURST);
    for _ in 0..bursts {
        bench.load(&mut w);
        measured_burst(&mut bench);
        black_box(&bench);
    }
    println!(
        "{} packets={} flows={} table={}/{}",
        scenario.name(),
        bursts * BURST,
        w.frames.len(),
        bench.dp.flow_table().len(),
        bench.dp.flow_table().capacity()
    );
}
