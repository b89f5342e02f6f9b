//! Smoke runs of the packet generator (`mplb-gen`, gen): a couple of
//! seconds against the real `mplb` binary over a memif link, and against
//! `dpdk-testpmd --forward-mode=macswap`. They assert that what comes back
//! is correct (backends, flow consistency, rewrites), not how fast it is.

mod common;

use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use mplb::testing::fixture;

use common::generator::{
    assert_forwarding_correct, memif_lb_head, num, report, spawn_gen, spawn_gen_for_mplb,
    spawn_gen_on, wait_bounded, wait_for_file,
};
use common::{Running, Scratch, counter, spawn_with, text, write_config};
use serde_json::Value;

/// One smoke run at a time: each busy-polls a core or two.
static SERIAL: Mutex<()> = Mutex::new(());

fn assert_checks_clean(r: &Value) {
    assert_forwarding_correct(r, 1000);
    // memif under a shared machine may drop a few frames; not more.
    let (tx, lost) = (num(r, &["tx_packets"]), num(r, &["lost"]));
    assert!(tx > 10_000, "{r}");
    assert!(lost * 50 <= tx, "lost {lost} of {tx}");
    assert!(num(r, &["latency_ns", "samples"]) > 0, "{r}");
    assert!(num(r, &["latency_ns", "p50"]) > 0, "{r}");
}

#[test]
fn generator_against_mplb_over_memif_sees_correct_forwarding() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let s = Scratch::new("gen-mplb");
    let (sock, json, cfg) = (s.path("memif.sock"), s.path("gen.json"), s.path("lb.toml"));
    write_config(
        &cfg,
        // The VIPs of tests/fixtures/gen_vips.toml.
        &format!("{}{}", memif_lb_head(&s, &sock, 65536), fixture("gen_vips")),
    );
    // The generator first: it is the memif server and waits for mplb.
    let generator = spawn_gen_for_mplb(
        &s,
        &sock,
        &json,
        &cfg,
        "--mix mptcp=3,plain=2,join=1,flood=1,malformed=1,udp=1 --flows 5000 --ipv6 25 \
         --conn-packets 40 --rate 30000 --warmup 0.5 --duration 2 --strict --linger 15",
    );
    wait_for_file(&sock, "the generator's memif socket");
    // mplb stops first (while the generator lingers, idle): a memif peer
    // that disconnects under a polling side can crash it.
    let lb = Running(Some(spawn_with(&cfg, &["--duration", "8"])));
    let out = wait_bounded(generator, Duration::from_secs(30), "mplb-gen");
    let mut lb = lb;
    let lb_out = wait_bounded(
        lb.0.take().expect("mplb child"),
        Duration::from_secs(20),
        "mplb",
    );
    assert!(out.status.success(), "mplb-gen failed (3 = a check failed)");
    assert!(lb_out.status.success());
    let lb_stdout = text(&lb_out.stdout);
    assert!(lb_stdout.contains("mbufs in use: 0 at start, 0 at end"));

    let r = report(&json);
    assert_checks_clean(&r);
    assert_eq!(r["expect"], "mplb");
    assert_eq!(num(&r, &["ipv6_percent"]), 25);
    // Malformed frames were dropped (not returned), and counted as such.
    assert!(num(&r, &["expected_drops"]) > 0, "{r}");
    assert_eq!(num(&r, &["per_class", "malformed", "rx"]), 0, "{r}");
    for class in ["mptcp", "plain", "join", "flood", "udp"] {
        assert!(
            num(&r, &["per_class", class, "rx"]) > 0,
            "{class} came back: {r}"
        );
    }
    // mplb's side: joins routed by learnt tokens; both forwarding modes used;
    // the malformed frames dropped for their reasons.
    assert!(counter(&lb_stdout, "tokens_learnt") > 0);
    assert!(counter(&lb_stdout, "join_token_hit") > 0);
    assert_eq!(counter(&lb_stdout, "join_token_miss"), 0);
    assert!(counter(&lb_stdout, "forwarded_l2") > 0);
    assert!(counter(&lb_stdout, "forwarded_ipip") > 0);
    assert!(counter(&lb_stdout, "drop_malformed") > 0);
    assert!(counter(&lb_stdout, "drop_ttl") > 0);
}

/// mplb-gen (on `lcores`, two queues) against a two-worker mplb (test
/// mode, both workers on CPU 1) over memif with the `gen_vips` fixture,
/// for 2 s of checked traffic; `args` adds the mix, flows and rate. Both
/// must exit 0; returns the generator's report and mplb's stdout.
fn against_two_workers(name: &str, lcores: &str, args: &[&str]) -> (Value, String) {
    let s = Scratch::new(name);
    let (sock, json, cfg) = (s.path("memif.sock"), s.path("gen.json"), s.path("lb.toml"));
    let head =
        memif_lb_head(&s, &sock, 65536).replace("lcores = [1]", "lcores = [1, 2]\ncpus = [1, 1]");
    write_config(&cfg, &format!("{head}{}", fixture("gen_vips")));
    let mut all = vec![
        "--lb-config",
        cfg.to_str().expect("utf-8 path"),
        "--expect",
        "mplb",
        "--queues",
        "2",
        "--conn-packets",
        "40",
        "--warmup",
        "0.5",
        "--duration",
        "2",
        "--strict",
        "--linger",
        "15",
    ];
    all.extend_from_slice(args);
    let generator = spawn_gen_on(&s, &sock, &json, lcores, &all);
    wait_for_file(&sock, "the generator's memif socket");
    let mut lb = Running(Some(spawn_with(&cfg, &["--duration", "8"])));
    let out = wait_bounded(generator, Duration::from_secs(30), "mplb-gen");
    let lb_out = wait_bounded(
        lb.0.take().expect("mplb child"),
        Duration::from_secs(20),
        "mplb",
    );
    assert!(
        out.status.success(),
        "mplb-gen failed (3 = a check failed): {}",
        text(&out.stderr)
    );
    assert!(lb_out.status.success());
    (report(&json), text(&lb_out.stdout))
}

#[test]
fn two_generator_lcores_against_two_mplb_workers() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // Two generator lcores, one queue each.
    let (r, lb_stdout) = against_two_workers(
        "gen-2x2",
        "--lcores=0@0,1@1",
        &[
            "--mix",
            "mptcp=3,plain=2,join=1",
            "--flows",
            "4000",
            "--ipv6",
            "25",
            "--rate",
            "30000",
        ],
    );
    assert_checks_clean(&r);
    // Each generator lcore polled its own queue, and sent and received.
    let lcores = r["per_lcore"].as_array().expect("per_lcore");
    assert_eq!(lcores.len(), 2, "{r}");
    for (i, l) in lcores.iter().enumerate() {
        assert_eq!(num(l, &["lcore"]), i as u64, "{r}");
        assert_eq!(l["queues"], serde_json::json!([i]), "{r}");
        assert!(num(l, &["tx_packets"]) > 5_000, "lcore {i}: {r}");
        assert!(num(l, &["rx_packets"]) > 5_000, "lcore {i}: {r}");
    }
    let sum = |f: &str| lcores.iter().map(|l| num(l, &[f])).sum::<u64>();
    assert_eq!(sum("tx_packets"), num(&r, &["tx_packets"]), "{r}");
    assert_eq!(sum("rx_packets"), num(&r, &["rx_packets"]), "{r}");
    // And mplb's two workers both forwarded (each worker's counters line
    // in its exit report); joins found their connection's token.
    for w in ["worker 0:", "worker 1:"] {
        assert!(
            lb_stdout
                .lines()
                .any(|l| l.contains(w) && l.contains(" forwarded=")),
            "no `{w}` line with forwarded frames: {lb_stdout}"
        );
    }
    assert!(counter(&lb_stdout, "join_token_hit") > 0);
    assert_eq!(counter(&lb_stdout, "join_token_miss"), 0);
}

/// Issue 14: a token learnt by one worker routes an MP_JOIN that arrives on
/// another. One generator lcore on two queues sends every join on the queue
/// after its connection's (mplb-gen's model of RSS hashing the join's own
/// 5-tuple), so each join reaches the other worker than the one that saw
/// its connection's third ACK: both workers learn tokens and both route
/// joins by tokens the other learnt, every join lands on its connection's
/// backend (the generator's check), and none misses.
#[test]
fn a_join_on_another_worker_follows_the_token_its_connections_worker_learnt() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (r, lb_stdout) = against_two_workers(
        "gen-cross",
        "--lcores=0@0",
        &[
            "--mix",
            "mptcp=3,join=1",
            "--flows",
            "2000",
            "--rate",
            "20000",
        ],
    );
    assert_checks_clean(&r);
    for w in ["worker 0:", "worker 1:"] {
        let line = lb_stdout
            .lines()
            .find(|l| l.starts_with(w) && l.contains(" forwarded="))
            .unwrap_or_else(|| panic!("no `{w}` counters line: {lb_stdout}"));
        let of = |name: &str| {
            line.split_whitespace()
                .find_map(|kv| {
                    kv.strip_prefix(name)?
                        .strip_prefix('=')?
                        .parse::<u64>()
                        .ok()
                })
                .unwrap_or(0)
        };
        assert!(of("tokens_learnt") > 0, "{line}");
        assert!(of("join_token_hit") > 0, "{line}");
    }
    assert_eq!(counter(&lb_stdout, "join_token_miss"), 0, "{lb_stdout}");
}

#[test]
fn too_few_flows_for_the_generator_lcores_is_a_clear_error() {
    let s = Scratch::new("gen-parts");
    let (sock, json) = (s.path("memif.sock"), s.path("gen.json"));
    // Two lcores (sharing CPU 0), two queues, but one plain flow: refused
    // before the port waits for a peer.
    let generator = spawn_gen_on(
        &s,
        &sock,
        &json,
        "--lcores=0@0,1@0",
        &[
            "--expect", "none", "--mix", "plain", "--flows", "1", "--queues", "2",
        ],
    );
    let out = wait_bounded(generator, Duration::from_secs(30), "mplb-gen");
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("fewer than the 2 generator lcores"), "{err}");
    assert!(!json.exists());
}

#[test]
fn generator_against_testpmd_macswap() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let s = Scratch::new("gen-testpmd");
    let (sock, json) = (s.path("memif.sock"), s.path("gen.json"));
    let generator = spawn_gen(
        &s,
        &sock,
        &json,
        &[
            "--expect",
            "macswap",
            "--mix",
            "mptcp=1,plain=1,malformed=1",
            "--flows",
            "2000",
            "--ipv6",
            "50",
            "--size",
            "256",
            "--rate",
            "30000",
            "--warmup",
            "0.3",
            "--duration",
            "1",
            "--strict",
            "--linger",
            "15",
            "--queues",
            "2",
        ],
    );
    wait_for_file(&sock, "the generator's memif socket");
    // testpmd runs until interrupted; SIGINT after the generator is done.
    let testpmd = Command::new("dpdk-testpmd")
        .args([
            "-l",
            "0,1",
            "--no-huge",
            "-m",
            "256",
            "--no-shconf",
            "--no-pci",
        ])
        .arg(format!("--file-prefix={}-tp", s.file_prefix()))
        .arg(format!(
            "--vdev=net_memif0,role=client,socket={},socket-abstract=no",
            sock.display()
        ))
        .args([
            "--",
            "--forward-mode=macswap",
            "--port-topology=loop",
            // Two queue pairs, as many as the generator's.
            "--rxq=2",
            "--txq=2",
            "--auto-start",
            // Without a stats period testpmd waits on stdin, and stops at EOF.
            "--stats-period",
            "1",
            "--no-mlockall",
            "--total-num-mbufs=4096",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dpdk-testpmd (scripts/setup-host.sh installs it)");
    let mut tp = Running(Some(testpmd));
    // The report is written before the generator lingers: then stop
    // testpmd (it runs until interrupted), and the generator ends.
    wait_for_file(&json, "the generator's report");
    if let Some(c) = tp.0.as_ref() {
        let _ = Command::new("kill")
            .args(["-s", "INT", &c.id().to_string()])
            .status();
    }
    let _ = wait_bounded(
        tp.0.take().expect("testpmd child"),
        Duration::from_secs(20),
        "testpmd",
    );
    let out = wait_bounded(generator, Duration::from_secs(20), "mplb-gen");
    assert!(out.status.success(), "mplb-gen failed (3 = a check failed)");
    let r = report(&json);
    assert_checks_clean(&r);
    // A reflector returns malformed frames too.
    assert_eq!(num(&r, &["expected_drops"]), 0);
    assert!(num(&r, &["per_class", "malformed", "rx"]) > 0, "{r}");
    assert!(num(&r, &["frame_bytes", "max"]) >= 256, "{r}");
}
