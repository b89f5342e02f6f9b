//! Issue 13, item 1, end to end (~15 s): 20 000 plain-TCP flows from
//! mplb-gen, all started together, in a 65 536-entry flow table (30 % load),
//! then a reload that re-weights the backends (Maglev moves about a quarter
//! of the flows). Every flow must be pinned before the reload: none moves,
//! the table holds all 20 000 and nothing was evicted. Before the fix, the
//! flows of the ~10 buckets asked to hold more than 8 evicted each other
//! every round, were never pinned, and moved on the reload.
//!
//! Self-contained (its own scratch directory and helpers), like
//! tests/gen_smoke.rs: the generator is the memif server, mplb the client,
//! no hugepages.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        let dir = std::env::temp_dir().join(format!("mplb-flow-pinning-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }
    fn path(&self, f: &str) -> PathBuf {
        self.0.join(f)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Kills the child if the test fails before it exits.
struct Reap(Option<Child>);

impl Drop for Reap {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Reap {
    fn wait(mut self, limit: Duration, what: &str) -> String {
        let mut c = self.0.take().expect("child");
        let until = Instant::now() + limit;
        while c.try_wait().expect("wait").is_none() {
            if Instant::now() > until {
                let _ = c.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = c.wait_with_output().expect("output");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!("--- {what} exit {:?}\n{text}", out.status);
        text
    }
}

fn config(s: &Scratch, weight_a: u32) -> String {
    format!(
        r#"
[dpdk]
eal_args = ["--vdev=net_memif0,role=client,socket={sock},socket-abstract=no", "--no-huge", "-m", "256",
            "--no-shconf", "--no-pci", "--file-prefix=flowpin-{pid}-lb", "--log-level=pmd.net.memif:warning"]
mempool_size = 4095
mempool_cache = 64
[workers]
lcores = [1]
[[port]]
name = "lan"
device = "net_memif0"
ipv4 = ["198.18.0.2"]
gateway_mac = "02:00:00:00:00:fe"
[flow_table]
capacity = 65536
[health]
kind = "none"
[management]
socket = "{ctl}"
listen = "127.0.0.1:0"
[[vip]]
name = "web4"
address = "198.18.0.10"
port = 80
  [[vip.backend]]
  name = "a"
  address = "198.18.1.11"
  mac = "02:00:00:00:01:11"
  weight = {weight_a}
  [[vip.backend]]
  name = "b"
  address = "198.18.1.12"
  mac = "02:00:00:00:01:12"
  [[vip.backend]]
  name = "c"
  address = "198.18.1.13"
  mac = "02:00:00:00:01:13"
"#,
        sock = s.path("memif.sock").display(),
        ctl = s.path("ctl.sock").display(),
        pid = std::process::id(),
    )
}

fn mplb(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_mplb"))
        .args(args)
        .output()
        .expect("spawn mplb");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!(
        "--- mplb {args:?} exit {:?}\n{text}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

fn wait_for(path: &Path) {
    let until = Instant::now() + Duration::from_secs(30);
    while !path.exists() {
        assert!(Instant::now() < until, "{} never appeared", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_burst_of_plain_flows_is_pinned_and_survives_a_reload() {
    let s = Scratch::new();
    let (cfg, json, sock) = (s.path("lb.toml"), s.path("gen.json"), s.path("memif.sock"));
    let cfg_s = cfg.to_str().expect("utf-8 path");
    std::fs::write(&cfg, config(&s, 1)).expect("write config");
    let eal = format!(
        "--vdev=net_memif0,role=server,socket={},socket-abstract=no --no-huge -m 256 --no-shconf --no-pci --file-prefix=flowpin-{}-gen -l 0 --log-level=pmd.net.memif:warning",
        sock.display(),
        std::process::id()
    );
    // One packet per flow per round, ~1 s a round: SYN, third ACK, data...
    let generator = Reap(Some(
        Command::new(env!("CARGO_BIN_EXE_mplb-gen"))
            .args(["--port", "net_memif0", "--eal", &eal, "--progress", "0"])
            .args(["--json", json.to_str().expect("utf-8 path")])
            .args(["--lb-config", cfg_s, "--expect", "mplb", "--mix", "plain"])
            .args(["--flows", "20000", "--rate", "20000", "--warmup", "0.5"])
            .args(["--duration", "9", "--linger", "15"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn mplb-gen"),
    ));
    wait_for(&sock);
    let lb = Reap(Some(
        Command::new(env!("CARGO_BIN_EXE_mplb"))
            .args(["run", "--config", cfg_s, "--duration", "12"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn mplb"),
    ));
    // Five rounds: every flow has had its ACK and two data segments (the
    // ACKs refused by the untrusted quota, a round later).
    std::thread::sleep(Duration::from_secs(6));
    std::fs::write(&cfg, config(&s, 4)).expect("write config");
    let reload = mplb(&["reload", "--config", cfg_s]);
    assert!(reload.contains("reload"), "{reload}");
    std::thread::sleep(Duration::from_secs(4));
    let stats = mplb(&["stats", "--config", cfg_s]);
    lb.wait(Duration::from_secs(20), "mplb run");
    generator.wait(Duration::from_secs(30), "mplb-gen");

    let line = stats
        .lines()
        .find(|l| l.starts_with("flow tables:"))
        .unwrap_or_else(|| panic!("no flow-table line in {stats}"));
    assert!(
        line.contains("20000 of 65536 entries in use") && line.contains(" 0 evicted"),
        "{line}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("generator report"))
            .expect("JSON");
    let check = &report["check"];
    assert!(check["ok"].as_u64().unwrap_or(0) > 50_000, "{report}");
    for f in ["wrong_backend", "flow_moved", "bad_rewrite", "unexpected"] {
        assert_eq!(check[f].as_u64(), Some(0), "check.{f}: {report}");
    }
}
