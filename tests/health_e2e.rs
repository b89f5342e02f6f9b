//! Health checks end to end: two backends listen in a network namespace
//! reached over a veth; the real `mplb` binary checks them through the
//! kernel's stack. One listener stops: it is marked down within
//! interval × fall and new flows move to the other; it comes back and is
//! re-added. The live /metrics page is validated with promtool.

mod common;

use std::net::TcpStream;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use mplb::testing::{Backend, Vip};

use common::{
    Running, Scratch, free_port, head, new_flow_backend, promtool_check, run, scrape,
    scrape_target, sh, spawn, stopped_cleanly, text, write_config,
};

const INTERVAL_MS: u64 = 200;
const FALL: u64 = 3;

/// The namespace, its veth and listeners; removed on drop.
struct Lab {
    ns: String,
    veth: String,
    listeners: Vec<Option<Child>>,
}

impl Lab {
    fn new() -> Lab {
        let id = std::process::id() % 100_000;
        let lab = Lab {
            ns: format!("mplbhc{id}"),
            veth: format!("mplbhc{id}"),
            listeners: vec![None, None],
        };
        let _ = Command::new("ip").args(["netns", "del", &lab.ns]).status();
        sh(&["ip", "netns", "add", &lab.ns]);
        let peer = format!("{}p", lab.veth);
        sh(&[
            "ip", "link", "add", &lab.veth, "type", "veth", "peer", "name", &peer,
        ]);
        sh(&["ip", "link", "set", &peer, "netns", &lab.ns]);
        sh(&["ip", "addr", "add", "198.18.200.1/24", "dev", &lab.veth]);
        sh(&["ip", "link", "set", &lab.veth, "up"]);
        for a in ["198.18.200.2/24", "198.18.200.3/24"] {
            sh(&[
                "ip", "netns", "exec", &lab.ns, "ip", "addr", "add", a, "dev", &peer,
            ]);
        }
        sh(&[
            "ip", "netns", "exec", &lab.ns, "ip", "link", "set", &peer, "up",
        ]);
        sh(&[
            "ip", "netns", "exec", &lab.ns, "ip", "link", "set", "lo", "up",
        ]);
        lab
    }

    /// A TCP listener on backend `i` (198.18.200.{2+i}:8080), bounded in time.
    fn listen(&mut self, i: usize) {
        let code = format!(
            "import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n\
             s.bind(('198.18.200.{}',8080))\ns.listen(64)\nwhile True:\n  c,_=s.accept()\n  c.close()\n",
            2 + i
        );
        let child = Command::new("ip")
            .args([
                "netns", "exec", &self.ns, "timeout", "120", "python3", "-c", &code,
            ])
            .spawn()
            .expect("start listener");
        self.listeners[i] = Some(child);
        // Wait until it accepts.
        let started = Instant::now();
        while TcpStream::connect_timeout(
            &format!("198.18.200.{}:8080", 2 + i).parse().expect("addr"),
            Duration::from_millis(200),
        )
        .is_err()
        {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "listener {i} never came up"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stop(&mut self, i: usize) {
        if let Some(mut c) = self.listeners[i].take() {
            // SIGTERM: `timeout` passes it on to python (SIGKILL would
            // orphan the listener).
            let _ = Command::new("kill")
                .args(["-s", "TERM", &c.id().to_string()])
                .status();
            let _ = c.wait();
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for i in 0..self.listeners.len() {
            self.stop(i);
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.veth])
            .status();
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}

fn healthy(s: &Scratch, name: &str) -> bool {
    let sock = s.path("ctl.sock");
    let out = run(&["stats", "--json", "--socket", sock.to_str().expect("utf-8")]);
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&text(&out.stdout)) else {
        return false;
    };
    let address = format!("198.18.200.{}", if name == "be-a" { 2 } else { 3 });
    v["backends"].as_array().is_some_and(|bs| {
        bs.iter().any(|b| {
            b["name"] == name
                && b["address"] == address.as_str()
                && b["state"] == "active"
                && b["healthy"] == true
        })
    })
}

fn backends_for_new_flows(s: &Scratch) -> Vec<String> {
    let sock = s.path("ctl.sock");
    (40000..40032)
        .map(|p| new_flow_backend(&sock, p).unwrap_or_else(|_| "none".to_string()))
        .collect()
}

fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !f() {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(25));
    }
    started.elapsed()
}

#[test]
fn dead_backend_goes_down_within_interval_times_fall_and_comes_back() {
    let mut lab = Lab::new();
    lab.listen(0);
    lab.listen(1);
    let s = Scratch::new("health");
    let metrics_port = free_port();
    let cfg = s.path("mplb.toml");
    write_config(
        &cfg,
        &format!(
            r#"{}[flow_table]
capacity = 4096
[health]
kind = "tcp"
port = 8080
interval_ms = {INTERVAL_MS}
timeout_ms = 100
rise = 2
fall = {FALL}
[[port]]
name = "lan"
device = "net_null0"
{}"#,
            head(
                &s,
                &["--no-huge", "--no-shconf", "--no-pci", "--vdev=net_null0"],
                (2047, 32),
                "",
                &format!("127.0.0.1:{metrics_port}")
            ),
            Vip::web()
                .backend(Backend::new("be-a", "198.18.200.2").mac("02:00:00:00:02:02"))
                .backend(Backend::new("be-b", "198.18.200.3").mac("02:00:00:00:02:03")),
        ),
    );
    let child = spawn(&cfg);
    let mut running = Running(Some(child));
    wait_until("control socket", Duration::from_secs(20), || {
        s.path("ctl.sock").exists()
    });
    assert!(healthy(&s, "be-a") && healthy(&s, "be-b"));
    let before = backends_for_new_flows(&s);
    assert!(before.iter().any(|b| b == "be-a") && before.iter().any(|b| b == "be-b"));

    lab.stop(0);
    let took = wait_until("be-a marked down", Duration::from_secs(5), || {
        !healthy(&s, "be-a")
    });
    // Detection takes `fall` failed checks, `interval` apart; allow one
    // interval for the phase of the first failure plus scheduling slack.
    let bound = Duration::from_millis(INTERVAL_MS * (FALL + 1) + 500);
    assert!(took <= bound, "took {took:?}, bound {bound:?}");
    assert!(
        backends_for_new_flows(&s).iter().all(|b| b == "be-b"),
        "new flows left be-a"
    );

    let page = scrape(metrics_port);
    assert!(
        page.contains("mplb_backend_healthy{vip=\"web\",backend=\"be-a\""),
        "{page}"
    );
    let (ok, report) = promtool_check(&page);
    assert!(ok, "promtool: {report}");
    // One VIP's backends through the real management thread; a name of no
    // VIP is 404.
    let (status, web) = scrape_target(metrics_port, "/metrics?scope=backend&vip=web");
    assert!(status.contains(" 200 "), "{status}");
    assert!(
        web.contains("mplb_backend_healthy{vip=\"web\",backend=\"be-a\"")
            && !web.contains("mplb_uptime_seconds"),
        "{web}"
    );
    let (status, text) = scrape_target(metrics_port, "/metrics?vip=nope");
    assert!(status.contains(" 404 "), "{status}");
    assert!(text.contains("no VIP named `nope`"), "{text}");

    lab.listen(0);
    wait_until("be-a back up", Duration::from_secs(5), || {
        healthy(&s, "be-a")
    });
    assert_eq!(
        backends_for_new_flows(&s),
        before,
        "re-added: the same choices as before"
    );

    let (_, stderr) = stopped_cleanly(&running.interrupt());
    assert!(
        stderr.contains("event=backend_health backend=be-a to=down"),
        "{stderr}"
    );
    assert!(
        stderr.contains("event=backend_health backend=be-a to=up"),
        "{stderr}"
    );
}
