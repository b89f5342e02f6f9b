//! The control socket of a running `mplb` (DPDK net_null device) under idle,
//! slow and many clients: `mplb stats` still answers within a second, idle
//! connections are told why they are closed, concurrent clients are all
//! served, and past the connection bound a client gets a clear error at
//! once, never a stall.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Running, Scratch, head, mplb, port, run, text, write_config};
use mplb::control::socket::{self, MAX_CLIENTS, REQUEST_DEADLINE};
use mplb::testing::{Backend, Vip};

/// The bound this test holds `mplb stats` to while idle clients are open.
const STATS_WITHIN: Duration = Duration::from_secs(1);

/// The config with `backends` backends, `web-1` (198.18.1.11) onwards.
fn config(s: &Scratch, backends: u8) -> String {
    let eal = ["--no-huge", "--no-shconf", "--no-pci", "--vdev=net_null0"];
    let web = Vip::web().backends((1..=backends).map(|i| {
        Backend::new(format!("web-{i}"), format!("198.18.1.{}", 10 + i)).mac_bytes([
            2,
            0,
            0,
            0,
            1,
            0x10 + i,
        ])
    }));
    format!(
        "{}[flow_table]\ncapacity = 4096\n[health]\nkind = \"none\"\n{}{web}",
        head(s, &eal, (2047, 32), "", "127.0.0.1:0"),
        port("lan", "net_null0", ""),
    )
}

fn start(s: &Scratch) -> Running {
    let cfg = s.path("mplb.toml");
    write_config(&cfg, &config(s, 1));
    let child = mplb()
        .args(["run", "--config", cfg.to_str().expect("utf-8")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let running = Running(Some(child));
    let started = Instant::now();
    while socket::call(&s.path("ctl.sock"), "stats").is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "control socket never answered"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    running
}

/// `mplb stats` through the CLI: its output, and how long it took.
fn timed_stats(sock: &Path) -> (bool, String, Duration) {
    let t = Instant::now();
    let out = run(&["stats", "--socket", sock.to_str().expect("utf-8")]);
    let took = t.elapsed();
    (
        out.status.success(),
        format!("{}{}", text(&out.stdout), text(&out.stderr)),
        took,
    )
}

fn open_idle(sock: &Path, n: usize) -> Vec<UnixStream> {
    (0..n)
        .map(|_| UnixStream::connect(sock).expect("connect"))
        .collect()
}

#[test]
fn idle_and_slow_clients_do_not_hold_up_stats() {
    let s = Scratch::new("control-idle");
    let _running = start(&s);
    let sock = s.path("ctl.sock");

    // A few clients that connect and send nothing, and one that sends half
    // a request and stops.
    let mut idle = open_idle(&sock, 5);
    let mut half = UnixStream::connect(&sock).expect("connect");
    half.write_all(b"sta").expect("half a request");
    let (ok, out, took) = timed_stats(&sock);
    assert!(ok && out.contains("rx_packets"), "{out}");
    assert!(
        took < STATS_WITHIN,
        "stats took {took:?} beside 6 idle clients"
    );

    // Many.
    idle.extend(open_idle(&sock, 300));
    let (ok, out, took) = timed_stats(&sock);
    assert!(ok && out.contains("rx_packets"), "{out}");
    assert!(
        took < STATS_WITHIN,
        "stats took {took:?} beside 306 idle clients"
    );

    // Clients at the same time are all served.
    let callers: Vec<_> = (0..32)
        .map(|_| {
            let sock = sock.clone();
            std::thread::spawn(move || socket::call(&sock, "stats json"))
        })
        .collect();
    for c in callers {
        let answer = c.join().expect("caller");
        assert!(
            answer.as_ref().is_ok_and(|b| b.contains("\"generation\"")),
            "{answer:?}"
        );
    }

    // An idle client is closed once its time to send a request is up, and
    // told why.
    let mut reply = String::new();
    half.set_read_timeout(Some(REQUEST_DEADLINE * 5))
        .expect("timeout");
    half.read_to_string(&mut reply).expect("reply, then close");
    assert!(
        reply.starts_with("error\n") && reply.contains("no complete request line"),
        "{reply:?}"
    );
    drop(idle);
}

#[test]
fn past_the_connection_bound_a_client_is_answered_at_once() {
    let s = Scratch::new("control-bound");
    let _running = start(&s);
    let sock = s.path("ctl.sock");
    let idle = open_idle(&sock, MAX_CLIENTS + 20);
    // Every place may be taken by a silent client: the answer is then a
    // clear refusal, at once. Places freed by expired clients serve it.
    let t = Instant::now();
    let answer = socket::call(&sock, "stats");
    let took = t.elapsed();
    eprintln!("past the bound, after {took:?}: {answer:?}");
    match &answer {
        Ok(body) => assert!(body.contains("rx_packets"), "{body}"),
        Err(e) => assert!(e.contains("control socket busy"), "{e}"),
    }
    assert!(took < STATS_WITHIN, "answered after {took:?}: {answer:?}");
    drop(idle);
    // Once they are gone, everyone is served again.
    let (ok, out, _) = timed_stats(&sock);
    assert!(ok, "{out}");
}

#[test]
fn a_reload_answers_with_what_happened() {
    let s = Scratch::new("control-reload");
    let _running = start(&s);
    let sock = s.path("ctl.sock");
    // Applied: the answer comes after the new snapshot is published.
    let cfg = s.path("mplb.toml");
    write_config(&cfg, &config(&s, 2));
    let idle = open_idle(&sock, 10);
    let applied = socket::call(&sock, "reload").expect("applied");
    assert!(applied.contains("reloaded"), "{applied}");
    let stats = socket::call(&sock, "stats json").expect("stats");
    let v: serde_json::Value = serde_json::from_str(&stats).expect("json");
    assert_eq!(v["generation"], 1, "{stats}");
    drop(idle);
}
