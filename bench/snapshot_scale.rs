//! The control plane at issue #15's scale: 10 000 VIPs and 100 000
//! backends (`mplb::testing::scale`). Prints the time to parse the config,
//! to build the forwarding snapshot (every Maglev table and the VIP index),
//! the memory of the tables, and what a reload costs the workers: the
//! publish (one pointer swap) and a worker's next snapshot load, timed on a
//! reader as a worker holds one. The old snapshot is freed on this thread
//! (`Publisher::reap`), timed too.
//!
//! Rebuilds after the first share the Maglev tables whose inputs did not
//! change (`control::build`): a health change and a reload are timed too.
//!
//! Usage: `snapshot_scale [TABLE_SIZE] [CONFIG_OUT]` (TABLE_SIZE default
//! 1021); CONFIG_OUT: also write the config there, for `mplb check-config`.
//! Run it in release: `cargo run --release --example snapshot_scale`.

use std::path::Path;
use std::time::Instant;

use mplb::config::Config;
use mplb::control::{StableIds, build_forwarding, build_forwarding_with};
use mplb::datapath::forwarding::BackendState;
use mplb::datapath::forwarding::{Forwarding, ForwardingMode, tunnels};
use mplb::snapshot::Publisher;
use mplb::testing::scale::Scale;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let table_size: u32 = args
        .first()
        .map_or(1021, |a| a.parse().expect("TABLE_SIZE"));
    let s = Scale {
        table_size,
        ..Scale::ISSUE_15
    };
    let text = s.config();
    if let Some(out) = args.get(1) {
        std::fs::write(out, &text).expect("write the config");
    }
    let t = Instant::now();
    let config = Config::parse(&text, Path::new("scale.toml")).expect("valid config");
    let parse = t.elapsed();
    let mut ids = StableIds::default();
    let ports = [[2, 0, 0, 0, 0, 1]];
    let t = Instant::now();
    let first = build_forwarding(&config, &ports, &mut ids).expect("snapshot");
    let build = t.elapsed();
    let maglev: usize = first
        .vips
        .iter()
        .map(|v| std::mem::size_of_val(v.maglev.raw_entries()))
        .sum();
    let (addr_probe, service_probe) = first.vip_index().max_probes();
    println!(
        "{} VIPs, {} backend entries, {} distinct backends, table_size {table_size}, {} bytes of config",
        first.vips.len(),
        first.vips.iter().map(|v| v.backends.len()).sum::<usize>(),
        first.backends.iter().flatten().count(),
        text.len()
    );
    println!("parse: {:.3} s", parse.as_secs_f64());
    println!(
        "snapshot build: {:.3} s ({:.1} us per VIP and its table)",
        build.as_secs_f64(),
        build.as_secs_f64() * 1e6 / first.vips.len() as f64
    );
    println!(
        "maglev tables: {:.1} MiB ({} B per VIP); VIP index: {} KiB, longest probe {addr_probe} (addresses), {service_probe} (services)",
        maglev as f64 / (1 << 20) as f64,
        maglev / first.vips.len().max(1),
        first.vip_index().memory_bytes() >> 10
    );

    // The IP-in-IP outer headers (`datapath::tunnel`), built with every
    // snapshot for the backends of IP-in-IP VIPs: here the config's VIPs are
    // L2 DSR, so timed as if every one were IP-in-IP.
    let mut tunnelled = first.vips.clone();
    for v in &mut tunnelled {
        v.mode = ForwardingMode::Ipip;
    }
    let t = Instant::now();
    let tunnels = tunnels(&first.interfaces, &tunnelled, &first.backends, &first.encap);
    let tunnels_time = t.elapsed();
    println!(
        "IP-in-IP outer headers, were every VIP IP-in-IP: {:.1} ms, {:.1} MiB",
        tunnels_time.as_secs_f64() * 1e3,
        tunnels.memory_bytes() as f64 / (1 << 20) as f64
    );
    drop(tunnels);

    // A health change: backend be7 (in 2 VIPs) down; the other tables are
    // the previous build's.
    let t = Instant::now();
    let down = build_forwarding_with(&config, &ports, &mut ids, &|name, s| {
        if name == "be7" { BackendState::Down } else { s }
    })
    .expect("snapshot");
    let health = t.elapsed();
    let shared = down
        .vips
        .iter()
        .zip(&first.vips)
        .filter(|(a, b)| a.maglev.same(&b.maglev))
        .count();
    println!(
        "health change (one backend down): rebuild {:.3} s, {shared} of {} tables shared with the previous snapshot",
        health.as_secs_f64(),
        down.vips.len()
    );
    drop(down);

    // A reload: the same config again (ids kept), published while a
    // worker's reader holds the first snapshot.
    let t = Instant::now();
    let second = build_forwarding(&config, &ports, &mut ids).expect("snapshot");
    let rebuild = t.elapsed();
    let mut publisher = Publisher::<Forwarding>::new(first);
    let mut reader = publisher.reader();
    let before = reader.load().vips.len();
    let t = Instant::now();
    publisher.publish(second);
    let publish = t.elapsed();
    let t = Instant::now();
    let after = reader.load().vips.len();
    let load = t.elapsed();
    assert_eq!(before, after);
    let t = Instant::now();
    let waiting = publisher.reap();
    let reap = t.elapsed();
    println!(
        "reload: rebuild {:.3} s on the management thread; publish {} ns; the worker's next load {} ns; \
         freeing the old snapshot on the management thread {:.1} ms ({waiting} still held)",
        rebuild.as_secs_f64(),
        publish.as_nanos(),
        load.as_nanos(),
        reap.as_secs_f64() * 1e3
    );
}
