//! Backend MACs learnt by ARP and neighbour discovery, end to end: the real
//! `mplb` on `net_af_packet` over a veth pair into a network namespace
//! whose real Linux kernel holds the backends' addresses and answers. The
//! config gives no `mac`: mplb must ask, learn the MACs (IPv4 and IPv6),
//! then forward SYNs to the VIPs to exactly that MAC; a backend added by a
//! reload is resolved too; a gratuitous ARP with a new MAC moves the
//! backend; a backend nobody answers for gets no traffic and one warning.
//! Needs root (namespaces); about 15 s.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Running, Scratch, head, port, sh, stopped_cleanly, write_config};
use serde_json::Value;

const VIP4: &str = "198.18.7.10";
const VIP6: &str = "fd00:7::10";
const MOVED: &str = "02:00:00:00:07:99";

/// Two namespaces joined by a veth pair: mplb's (`a0`, no kernel address)
/// and the backends' (`b0`: 198.18.7.11 and .12, fd00:7::11). Removed on drop.
struct Segment {
    lb: String,
    be: String,
}

impl Segment {
    fn new() -> Segment {
        let id = std::process::id();
        let s = Segment {
            lb: format!("mplbnd-lb-{id}"),
            be: format!("mplbnd-be-{id}"),
        };
        let (lb, be) = (s.lb.as_str(), s.be.as_str());
        sh(&["ip", "netns", "add", lb]);
        sh(&["ip", "netns", "add", be]);
        sh(&[
            "ip", "-n", lb, "link", "add", "a0", "type", "veth", "peer", "name", "b0", "netns", be,
        ]);
        // mplb's side: the kernel keeps quiet (no IPv6 of its own).
        sh(&[
            "ip",
            "netns",
            "exec",
            lb,
            "sysctl",
            "-qw",
            "net.ipv6.conf.a0.disable_ipv6=1",
        ]);
        sh(&["ip", "-n", lb, "link", "set", "a0", "up"]);
        for a in ["198.18.7.11/24", "198.18.7.12/24"] {
            sh(&["ip", "-n", be, "addr", "add", a, "dev", "b0"]);
        }
        sh(&[
            "ip",
            "-n",
            be,
            "addr",
            "add",
            "fd00:7::11/64",
            "dev",
            "b0",
            "nodad",
        ]);
        sh(&["ip", "-n", be, "link", "set", "b0", "up"]);
        s
    }

    fn mac(&self, ns: &str, dev: &str) -> String {
        sh(&[
            "ip",
            "netns",
            "exec",
            ns,
            "cat",
            &format!("/sys/class/net/{dev}/address"),
        ])
    }

    fn peer(&self, args: &[&str]) -> String {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/neighbour_peer.py");
        let mut all = vec![
            "ip", "netns", "exec", &self.be, "timeout", "20", "python3", script,
        ];
        all.extend_from_slice(args);
        sh(&all)
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        for ns in [&self.lb, &self.be] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

fn config(s: &Scratch, extra_backend: bool) -> String {
    let eal = [
        "--no-huge",
        "-m",
        "128",
        "--no-shconf",
        "--no-pci",
        "--vdev=net_af_packet0,iface=a0",
    ];
    let mut text = head(s, &eal, (2047, 32), "", "127.0.0.1:0")
        + &port(
            "lan",
            "net_af_packet0",
            "ipv4 = [\"198.18.7.2\"]\nipv6 = [\"fd00:7::2\"]\n",
        )
        + "[health]\nkind = \"none\"\n";
    let backend = |name: &str, addr: &str| {
        format!("  [[vip.backend]]\n  name = \"{name}\"\n  address = \"{addr}\"\n")
    };
    text +=
        &format!("[[vip]]\nname = \"web\"\naddress = \"{VIP4}\"\nport = 80\ntable_size = 251\n");
    text += &backend("be", "198.18.7.11");
    text += &backend("ghost", "198.18.7.99");
    if extra_backend {
        text += &backend("be2", "198.18.7.12");
    }
    text +=
        &format!("[[vip]]\nname = \"web6\"\naddress = \"{VIP6}\"\nport = 80\ntable_size = 251\n");
    text += &backend("be6", "fd00:7::11");
    text
}

/// `mplb stats --json`'s row for backend `name`.
fn row(s: &Scratch, name: &str) -> Value {
    let out = common::run(&[
        "stats",
        "--json",
        "--socket",
        s.path("ctl.sock").to_str().expect("utf-8 path"),
    ]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    v["backends"]
        .as_array()
        .and_then(|bs| bs.iter().find(|b| b["name"] == name).cloned())
        .unwrap_or(Value::Null)
}

/// Waits (at most 10 s) until backend `name`'s MAC is `mac`, learnt.
fn wait_learnt(s: &Scratch, name: &str, mac: &str) {
    let t0 = Instant::now();
    loop {
        let r = row(s, name);
        if r["mac"] == mac && r["mac_from"] == "reachable" {
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "{name} not learnt as {mac}: {r}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn backend_macs_are_learnt_by_arp_and_nd_and_traffic_goes_to_them() {
    let s = Scratch::new("neighbours");
    let seg = Segment::new();
    let cfg = s.path("mplb.toml");
    write_config(&cfg, &config(&s, false));
    let (be_mac, lb_mac) = (seg.mac(&seg.be, "b0"), seg.mac(&seg.lb, "a0"));
    let started = Instant::now();
    let child = Command::new("ip")
        .args(["netns", "exec", &seg.lb])
        .arg(env!("CARGO_BIN_EXE_mplb"))
        .args([
            "run",
            "--config",
            cfg.to_str().expect("utf-8"),
            "--duration",
            "60",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn mplb");
    let mut mplb = Running(Some(child));

    // Resolved from the backends' kernel, IPv4 by ARP and IPv6 by ND.
    wait_learnt(&s, "be", &be_mac);
    wait_learnt(&s, "be6", &be_mac);
    let ghost = row(&s, "ghost");
    assert_eq!(
        (&ghost["state"], &ghost["mac"], &ghost["mac_from"]),
        (&"unresolved".into(), &"-".into(), &"unresolved".into()),
        "{ghost}"
    );

    // SYNs to both VIPs come back out to the learnt MAC, from mplb's port;
    // none to the unresolved backend (it has no MAC: nothing else could be).
    let seen: Value =
        serde_json::from_str(&seg.peer(&["send-syns", "b0", &lb_mac, VIP4, VIP6, "20"]))
            .expect("peer's JSON");
    let seen = seen.as_array().expect("list");
    for vip in [VIP4, VIP6] {
        let n = seen.iter().filter(|f| f["vip"] == vip).count();
        assert_eq!(n, 20, "SYNs to {vip} forwarded: {seen:?}");
    }
    for f in seen {
        assert_eq!(
            (&f["dst"], &f["src"]),
            (&be_mac.as_str().into(), &lb_mac.as_str().into()),
            "{f}"
        );
    }

    // A reload adding a backend: resolved in turn.
    write_config(&cfg, &config(&s, true));
    let out = common::control(&s, "reload");
    assert!(out.status.success());
    wait_learnt(&s, "be2", &be_mac);

    // The backend announces a new MAC (its NIC was replaced): followed.
    seg.peer(&["garp", "b0", MOVED, "198.18.7.11"]);
    wait_learnt(&s, "be", MOVED);

    // Give the unresolved backend its warning (3 unanswered questions, 1 s
    // apart), then stop.
    let wait = Duration::from_secs(5).saturating_sub(started.elapsed());
    std::thread::sleep(wait);
    let out = mplb.interrupt();
    let (stdout, stderr) = stopped_cleanly(&out);
    let lines = |event: &str| -> Vec<&str> {
        stderr
            .lines()
            .filter(|l| l.contains(&format!("event={event} ")))
            .collect()
    };
    let warned = lines("neighbour_unresolved");
    assert_eq!(warned.len(), 1, "one warning, not one per retry:\n{stderr}");
    for want in [
        "level=warn",
        "backend=ghost",
        "address=198.18.7.99",
        "port=lan",
    ] {
        assert!(warned[0].contains(want), "{want} in {}", warned[0]);
    }
    let changed = lines("neighbour_changed");
    assert_eq!(changed.len(), 1, "{stderr}");
    let to = format!("to={MOVED}");
    assert!(
        changed[0].contains("backend=be ") && changed[0].contains(&to),
        "{}",
        changed[0]
    );
    assert!(lines("neighbour_resolved").len() >= 3, "{stderr}");
    assert!(
        common::counter(&stdout, "neighbour_solicits_sent") >= 6,
        "{stdout}"
    );
    assert!(
        common::counter(&stdout, "neighbour_learnt") >= 4,
        "{stdout}"
    );
    assert!(common::counter(&stdout, "forwarded_l2") >= 40, "{stdout}");
}
