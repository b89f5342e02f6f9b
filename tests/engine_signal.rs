//! Runs `mplb` flat out on DPDK's net_null devices, stops it with SIGINT and
//! SIGTERM, and checks that it drains cleanly: exit 0, counters printed, and
//! every mbuf back in its pool.

mod common;

use std::time::{Duration, Instant};

use common::{Scratch, counter, head, port, spawn, text, write_config};

fn config(s: &Scratch, mode: &str) -> std::path::PathBuf {
    let cfg = s.path("mplb.toml");
    write_config(
        &cfg,
        &format!(
            "{}{}{}[datapath]\nbackend_port = \"out\"\n",
            head(
                s,
                &[
                    "--no-huge",
                    "--no-shconf",
                    "--no-pci",
                    "--vdev=net_null0,copy=1",
                    "--vdev=net_null1"
                ],
                (4095, 64),
                &format!("mode = \"{mode}\"\n"),
                "127.0.0.1:0"
            ),
            port("in", "net_null0", "rx_queues = 2\n"),
            port("out", "net_null1", ""),
        ),
    );
    cfg
}

fn run_until_signal(mode: &str, signal: &str) -> String {
    let s = Scratch::new(mode);
    let cfg = config(&s, mode);
    let child = spawn(&cfg);
    // Let it start and forward for a moment.
    std::thread::sleep(Duration::from_millis(1500));
    let sent = std::process::Command::new("kill")
        .args(["-s", signal, &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(sent.success());
    let started = Instant::now();
    let out = child.wait_with_output().expect("wait for mplb");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "shutdown took too long"
    );
    let stdout = text(&out.stdout);
    eprintln!("{stdout}\n{}", text(&out.stderr));
    assert!(out.status.success(), "mplb exit status {:?}", out.status);
    assert!(stdout.contains("stopping: waiting for workers to drain"));
    // One worker polls every queue: two on the first port, one on the second.
    assert!(stdout.contains(
        "worker 0 on lcore 1 (socket 0): polls net_null0/rx0, net_null0/rx1, net_null1/rx0"
    ));
    assert!(
        stdout.contains("port net_null0 xstats: rx_good_packets="),
        "xstats missing"
    );
    assert!(
        stdout.contains("mbufs in use: 0 at start, 0 at end"),
        "leak check line missing"
    );
    stdout
}

#[test]
fn macswap_forwards_and_stops_cleanly_on_sigint() {
    let stdout = run_until_signal("macswap", "INT");
    let rx = counter(&stdout, "rx_packets");
    assert!(rx > 1000, "too few frames: {rx}");
    // Every frame is sent or counted as a tx drop; nothing vanishes.
    assert_eq!(
        counter(&stdout, "tx_packets") + counter(&stdout, "tx_dropped"),
        rx
    );
}

#[test]
fn balance_mode_counts_null_frames_as_drops_and_stops_on_sigterm() {
    let stdout = run_until_signal("balance", "TERM");
    let rx = counter(&stdout, "rx_packets");
    assert!(rx > 1000, "too few frames: {rx}");
    // net_null frames are all zero bytes (ethertype 0): unsupported, dropped.
    assert_eq!(counter(&stdout, "drop_unsupported"), rx);
    assert_eq!(counter(&stdout, "tx_packets"), 0);
}
