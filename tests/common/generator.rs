//! The packet generator (`mplb-gen`) as the other end of a memif link to
//! the real `mplb`: starting it, waiting for it, reading its report.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{Scratch, head, port, text};

fn gen_command() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mplb-gen"))
}

/// The generator as memif server on `sock`, lcore 0, no hugepages.
pub fn spawn_gen(s: &Scratch, sock: &Path, json: &Path, args: &[&str]) -> Child {
    spawn_gen_on(s, sock, json, "-l 0", args)
}

/// [`spawn_gen`] on the EAL lcores `lcores` (e.g. `--lcores=0@0,1@1`: one
/// generator lcore per queue pair).
pub fn spawn_gen_on(s: &Scratch, sock: &Path, json: &Path, lcores: &str, args: &[&str]) -> Child {
    let eal = format!(
        "--vdev=net_memif0,role=server,socket={},socket-abstract=no --no-huge -m 256 --no-shconf --no-pci --file-prefix={}-gen {lcores} --log-level=pmd.net.memif:warning",
        sock.display(),
        s.file_prefix()
    );
    gen_command()
        .args(["--port", "net_memif0", "--eal", &eal, "--progress", "0"])
        .args(["--json", json.to_str().expect("utf-8 path")])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn mplb-gen")
}

/// The generator against the `mplb` running `cfg`: it reads the VIPs and
/// backends from `cfg` and checks every frame that comes back. `args`: the
/// rest of its command line (mix, flows, rate, times), split at spaces.
pub fn spawn_gen_for_mplb(s: &Scratch, sock: &Path, json: &Path, cfg: &Path, args: &str) -> Child {
    let mut all = vec![
        "--lb-config",
        cfg.to_str().expect("utf-8 path"),
        "--expect",
        "mplb",
    ];
    all.extend(args.split_whitespace());
    spawn_gen(s, sock, json, &all)
}

/// The head of an mplb config facing the generator: the memif client on
/// `sock`, one worker, a port `lan` (198.18.0.2, fd00:18::2), a flow table
/// of `capacity` entries, no health checks. VIPs follow.
pub fn memif_lb_head(s: &Scratch, sock: &Path, capacity: u64) -> String {
    let vdev = format!(
        "--vdev=net_memif0,role=client,socket={},socket-abstract=no",
        sock.display()
    );
    let eal = [
        vdev.as_str(),
        "--no-huge",
        "-m",
        "256",
        "--no-shconf",
        "--no-pci",
        "--log-level=pmd.net.memif:warning",
    ];
    format!(
        "{}{}[flow_table]\ncapacity = {capacity}\n[health]\nkind = \"none\"\n",
        head(s, &eal, (4095, 64), "", "127.0.0.1:0"),
        port(
            "lan",
            "net_memif0",
            "ipv4 = [\"198.18.0.2\"]\nipv6 = [\"fd00:18::2\"]\ngateway_mac = \"02:00:00:00:00:fe\"\n",
        ),
    )
}

/// Waits for a child at most `limit`, killing it after that.
pub fn wait_bounded(mut child: Child, limit: Duration, what: &str) -> Output {
    let until = Instant::now() + limit;
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > until {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "{what} still running after {limit:?}\n{}\n{}",
                text(&out.stdout),
                text(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("output");
    eprintln!(
        "--- {what} exit {:?}\n{}\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}

/// Waits until `path` exists: a memif client that starts before its
/// server's socket is there never connects (DPDK 22.11 does not retry).
pub fn wait_for_file(path: &Path, what: &str) {
    let until = Instant::now() + Duration::from_secs(30);
    while !path.exists() {
        assert!(
            Instant::now() < until,
            "{what} never appeared: {}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The generator's JSON report.
pub fn report(json: &Path) -> Value {
    let t = std::fs::read_to_string(json).expect("the generator wrote its JSON report");
    serde_json::from_str(&t).expect("valid JSON")
}

/// A count in the report, at `path`.
pub fn num(v: &Value, path: &[&str]) -> u64 {
    let mut x = v;
    for p in path {
        x = &x[*p];
    }
    x.as_u64()
        .unwrap_or_else(|| panic!("report field {path:?} is not a count: {x}"))
}

/// More than `ok` frames came back, each to its flow's one backend and
/// rewritten correctly.
pub fn assert_forwarding_correct(r: &Value, ok: u64) {
    assert!(num(r, &["check", "ok"]) > ok, "frames came back: {r}");
    for f in ["wrong_backend", "flow_moved", "bad_rewrite", "unexpected"] {
        assert_eq!(num(r, &["check", f]), 0, "check.{f}: {r}");
    }
}
