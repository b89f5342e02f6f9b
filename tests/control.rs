//! The control socket of a running `mplb` (DPDK net_null devices): stats,
//! lookup, drain, and reload — a broken file is rejected over the socket and
//! on SIGHUP while the old config keeps running, a good one is applied.

mod common;

use std::time::{Duration, Instant};

use mplb::testing::{Backend, Vip};

use common::{Running, Scratch, head, new_flow_backend, run, spawn, text, write_config};

fn config(s: &Scratch, backends: &[&str]) -> String {
    let eal = ["--no-huge", "--no-shconf", "--no-pci", "--vdev=net_null0"];
    let c = head(s, &eal, (2047, 32), "", "127.0.0.1:0")
        + "[flow_table]\ncapacity = 4096\n[health]\nkind = \"none\"\n\
           [[port]]\nname = \"lan\"\ndevice = \"net_null0\"\n";
    let vip = Vip::web().backends(backends.iter().enumerate().map(|(i, b)| {
        Backend::new(*b, format!("198.18.1.{}", 11 + i))
            .mac(format!("02:00:00:00:01:{:02x}", 0x11 + i))
    }));
    c + &vip.to_string()
}

fn ctl(s: &Scratch, args: &[&str]) -> (bool, String) {
    let sock = s.path("ctl.sock");
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--socket", sock.to_str().expect("utf-8")]);
    let out = run(&all);
    (
        out.status.success(),
        format!("{}{}", text(&out.stdout), text(&out.stderr)),
    )
}

fn lookups(s: &Scratch) -> Vec<String> {
    let sock = s.path("ctl.sock");
    (40000..40032)
        .map(|p| new_flow_backend(&sock, p).unwrap_or_else(|e| panic!("lookup failed: {e}")))
        .collect()
}

#[test]
fn stats_lookup_drain_and_reload_over_the_socket() {
    let s = Scratch::new("control");
    let cfg = s.path("mplb.toml");
    write_config(&cfg, &config(&s, &["web-1", "web-2"]));
    let child = spawn(&cfg);
    let mut running = Running(Some(child));
    let started = Instant::now();
    while !s.path("ctl.sock").exists() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "control socket never appeared"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let (ok, out) = ctl(&s, &["stats", "--json"]);
    assert!(ok, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("stats --json is JSON");
    assert_eq!(v["generation"], 0, "{out}");
    assert!(
        v["backends"]
            .as_array()
            .is_some_and(|bs| bs.iter().any(|b| b["name"] == "web-2")),
        "{out}"
    );
    let (ok, out) = ctl(&s, &["stats"]);
    assert!(ok && out.contains("rx_packets"), "{out}");
    // One VIP's backends; an unknown VIP or two contrary options: an error.
    let (ok, out) = ctl(&s, &["stats", "--vip", "web"]);
    assert!(
        ok && out.contains("web-2") && out.contains("rx_packets"),
        "{out}"
    );
    assert!(out.contains("vip web (198.18.0.10 port 80 tcp): "), "{out}");
    let (ok, out) = ctl(&s, &["stats", "--vip", "nope"]);
    assert!(!ok && out.contains("no VIP named `nope`"), "{out}");
    let (ok, out) = ctl(&s, &["stats", "--vip", "web", "--no-backends"]);
    assert!(!ok && out.contains("cannot be used with"), "{out}");

    let before = lookups(&s);
    assert!(before.contains(&"web-1".to_string()) && before.contains(&"web-2".to_string()));
    let (ok, out) = ctl(&s, &["backend", "drain", "web-1"]);
    assert!(ok && out.contains("backend web-1 draining"), "{out}");
    assert!(
        lookups(&s).iter().all(|b| b == "web-2"),
        "a draining backend gets no new flows"
    );
    let (ok, out) = ctl(&s, &["backend", "enable", "web-1"]);
    assert!(ok, "{out}");
    assert_eq!(lookups(&s), before, "enabled again: the same choices");
    let (ok, out) = ctl(&s, &["backend", "drain", "nobody"]);
    assert!(!ok && out.contains("no backend named `nobody`"), "{out}");

    // A broken file: rejected over the socket, named with file and line.
    write_config(
        &cfg,
        &config(&s, &["web-1", "web-2"]).replace("port = 80", "port = 80000"),
    );
    let (ok, out) = ctl(&s, &["reload"]);
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!("{}:", cfg.display())) && out.contains("vip[0].port"),
        "{out}"
    );
    // ... and on SIGHUP; the old config keeps running.
    running.signal("HUP");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(lookups(&s), before, "still the old config");

    // A good file with a changed backend set is applied.
    write_config(&cfg, &config(&s, &["web-1", "web-2", "web-3"]));
    let (ok, out) = ctl(&s, &["reload"]);
    assert!(ok && out.contains("reloaded"), "{out}");
    let after = lookups(&s);
    assert!(after.contains(&"web-3".to_string()), "{after:?}");
    // Maglev: adding one backend of three moves only about a third of the flows.
    let moved = before.iter().zip(&after).filter(|(a, b)| a != b).count();
    assert!(moved <= 20, "{moved} of 32 flows moved");

    let out = running.interrupt();
    let stderr = text(&out.stderr);
    eprintln!("{}\n{stderr}", text(&out.stdout));
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    assert!(stdout.contains("mbufs in use: 0 at start, 0 at end"));
    // `listen = "127.0.0.1:0"`: the line names the port actually bound.
    let metrics_line = stdout
        .lines()
        .find(|l| l.starts_with("metrics at http://127.0.0.1:"))
        .expect("metrics address printed");
    assert!(!metrics_line.contains(":0/"), "{metrics_line}");
    assert!(
        stderr.contains("event=reload result=rejected"),
        "structured log of the rejection"
    );
    assert!(stderr.contains("event=backend_override backend=web-1 to=draining"));
    assert!(!s.path("ctl.sock").exists(), "socket removed at exit");
}

#[test]
fn client_without_a_running_mplb_fails_clearly() {
    let out = run(&["stats", "--socket", "/nonexistent/mplb.sock"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("cannot reach mplb at /nonexistent/mplb.sock"));
}
