//! Reloads under load (issue 13): 20 000 flows from `mplb-gen`, half plain
//! TCP and half MPTCP connections (SYN, third ACK with both keys, DSS data:
//! tracked by default, issue 12), all started together, through the real `mplb` over memif, while 20
//! reloads alternate between good configs (backends re-weighted, drained,
//! removed and put back: each moves part of the Maglev table) and broken
//! ones (a syntax error, a VIP whose backends all have weight 0, a change to
//! a section that cannot be reloaded), with a small flow table (65 536
//! entries: 30 % load) and a large one (1M). Every good reload is applied,
//! every broken one refused with its reason; no established flow moves, no
//! frame is rewritten wrongly, and the table holds every flow, evicting none.
//! About 15 s per table size.

mod common;

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use common::generator::{
    assert_forwarding_correct, memif_lb_head, report, spawn_gen_for_mplb, wait_bounded,
    wait_for_file,
};
use common::{Running, Scratch, control, spawn_with, text, write_config};
use mplb::testing::config::{Backend, Vip};

/// One run at a time: each busy-polls both CPUs of a small machine.
static SERIAL: Mutex<()> = Mutex::new(());

const FLOWS: &str = "20000";
const RATE: &str = "40000";

/// The VIP the generator's plain flows go to, with backends `a`, `b`, `c`
/// (the generator knows their MACs from the config it was started with);
/// `edit` changes the backends of one good reload.
fn vip(edit: impl Fn(Vec<Backend>) -> Vec<Backend>) -> String {
    let backends = vec![
        Backend::new("a", "198.18.1.11").mac("02:00:00:00:01:11"),
        Backend::new("b", "198.18.1.12").mac("02:00:00:00:01:12"),
        Backend::new("c", "198.18.1.13").mac("02:00:00:00:01:13"),
    ];
    Vip::new("web4", "198.18.0.10", 80)
        .backends(edit(backends))
        .to_string()
}

/// Config `i` of the reload sequence: even = good, odd = broken, and the
/// reply `mplb reload` must give for it.
fn reload_config(head: &str, i: usize) -> (String, &'static str) {
    let weights = |w: [u32; 3]| {
        move |bs: Vec<Backend>| bs.into_iter().zip(w).map(|(b, w)| b.weight(w)).collect()
    };
    match (i / 2 % 5, i % 2) {
        (0, 0) => (head.to_string() + &vip(weights([1, 4, 2])), "reloaded"),
        (1, 0) => (
            head.to_string()
                + &vip(|bs| {
                    bs.into_iter()
                        .map(|b| if b.is("b") { b.state("draining") } else { b })
                        .collect()
                }),
            "reloaded",
        ),
        // `c` removed: it retires, its pinned flows keep going to it.
        (2, 0) => (
            head.to_string() + &vip(|bs| bs.into_iter().filter(|b| !b.is("c")).collect()),
            "reloaded",
        ),
        (3, 0) => (head.to_string() + &vip(weights([5, 1, 1])), "reloaded"),
        (_, 0) => (head.to_string() + &vip(|bs| bs), "reloaded"),
        (0 | 3, _) => (head.to_string() + &vip(|bs| bs) + "[[vip]\n", "error"),
        (1 | 4, _) => (head.to_string() + &vip(weights([0, 0, 0])), "error"),
        _ => (
            head.replace("lcores = [1]", "lcores = [1, 0]") + &vip(|bs| bs),
            "error",
        ),
    }
}

/// Writes `text_of_config` over the running config and has mplb re-read it
/// (through its control socket: a broken file must reach mplb, not the CLI).
fn reload(s: &Scratch, cfg: &Path, text_of_config: &str, expect: &str) {
    write_config(cfg, text_of_config);
    let out = control(s, "reload");
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        all.contains(expect),
        "reload expected `{expect}`:\n{all}\n--- config\n{text_of_config}"
    );
    assert_eq!(out.status.success(), expect == "reloaded", "{all}");
}

fn reloads_under_load(capacity: u64) {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let s = Scratch::new("reload-load");
    let (sock, json, cfg) = (s.path("memif.sock"), s.path("gen.json"), s.path("lb.toml"));
    let head = memif_lb_head(&s, &sock, capacity);
    write_config(&cfg, &(head.clone() + &vip(|bs| bs)));
    // Two packets per flow a second: SYN, third ACK (plain: ACK), data, ...;
    // the burst of 20 000 second packets exceeds the untrusted quota (16 384
    // of 65 536), and those refused get in on a later packet. Half a second
    // between a flow's packets is well inside the promotion window (1.25 s),
    // even on a loaded machine, so no flow's entry is evicted before its
    // next packet promotes it.
    let generator = spawn_gen_for_mplb(
        &s,
        &sock,
        &json,
        &cfg,
        &format!(
            "--mix plain=1,mptcp=1 --flows {FLOWS} --rate {RATE} --warmup 0.5 --duration 10 --linger 15"
        ),
    );
    wait_for_file(&sock, "the generator's memif socket");
    let mut lb = Running(Some(spawn_with(&cfg, &["--duration", "13"])));
    // Every flow has had its SYN, ACK and a data segment: all pinned.
    std::thread::sleep(Duration::from_secs(5));
    for i in 0..20 {
        let (config, expect) = reload_config(&head, i);
        reload(&s, &cfg, &config, expect);
        std::thread::sleep(Duration::from_millis(150));
    }
    let stats = control(&s, "stats");
    let stats = text(&stats.stdout);
    let lb_out = wait_bounded(
        lb.0.take().expect("mplb child"),
        Duration::from_secs(25),
        "mplb",
    );
    let gen_out = wait_bounded(generator, Duration::from_secs(40), "mplb-gen");
    assert!(lb_out.status.success());
    assert!(text(&lb_out.stdout).contains("mbufs in use: 0 at start, 0 at end"));
    assert!(
        gen_out.status.success(),
        "mplb-gen failed (3 = a check failed)"
    );

    let line = stats
        .lines()
        .find(|l| l.starts_with("flow tables:"))
        .unwrap_or_else(|| panic!("no flow-table line in {stats}"));
    assert!(
        line.contains(&format!("{FLOWS} of {capacity} entries in use")),
        "every flow pinned: {line}\n{stats}"
    );
    // Nothing established was pushed out: an eviction may only take an
    // untrusted entry past its promotion window (a flow's next packet puts
    // it back; the generator checks that it did not move).
    for c in [
        "flow_evicted_tracked",
        "flow_evicted_reset",
        "flow_backend_gone",
    ] {
        let v = stats
            .lines()
            .find_map(|l| l.strip_prefix(c).map(str::trim))
            .unwrap_or_else(|| panic!("no {c} in {stats}"));
        assert_eq!(v, "0", "{c}\n{stats}");
    }
    let generation: u64 = stats
        .split("snapshot generation ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .and_then(|g| g.parse().ok())
        .unwrap_or_else(|| panic!("no generation in {stats}"));
    assert!(generation >= 10, "10 good reloads applied: {stats}");
    let r = report(&json);
    // Both kinds were there and came back (flow_moved is 0 for both).
    for class in ["plain", "mptcp"] {
        let rx = r["per_class"][class]["rx"].as_u64().unwrap_or(0);
        assert!(rx > 20_000, "{class} frames back: {rx}\n{r}");
    }
    assert_forwarding_correct(&r, 100_000);
}

#[test]
fn reloads_under_load_move_no_flow_with_a_small_table() {
    reloads_under_load(65_536);
}

#[test]
fn reloads_under_load_move_no_flow_with_a_large_table() {
    reloads_under_load(1 << 20);
}
