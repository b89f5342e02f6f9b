//! The exception path end to end: the real `mplb` on `net_af_packet` over a
//! veth pair, in a network namespace of its own (so its kernel interface,
//! a net_tap, is made there), and a peer namespace with a real Linux
//! kernel on the other end. From the peer: a TCP connection and a UDP
//! exchange (TTL 255, as BFD) with services bound on the port's address in
//! mplb's namespace, over IPv4 and IPv6, with the kernel resolving the peer
//! by ARP and ND through the path; ping answered by the datapath itself;
//! a VIP forwarded as before beside it. The counters match the kernel
//! interface's own, and the interface is gone once mplb stops, cleanly or
//! by SIGKILL; a name already taken stops the start with a clear error. Two workers, so the interface has two queue pairs. Needs
//! root (namespaces, /dev/net/tun); about 15 s.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Running, Scratch, head, port, sh, stopped_cleanly, write_config};

const IFACE: &str = "mplbk0";
const LB4: &str = "198.18.8.2";
const LB6: &str = "fd00:8::2";
const PEER4: &str = "198.18.8.1";
const PEER6: &str = "fd00:8::1";
const VIP4: &str = "198.18.8.10";
const BACKEND_MAC: &str = "02:00:00:00:08:99";

/// mplb's namespace (`a0`, no kernel address: mplb owns it) and the peer's
/// (`b0`: 198.18.8.1/24, fd00:8::1/64), joined by a veth pair. Removed on
/// drop.
struct Segment {
    lb: String,
    peer: String,
}

impl Segment {
    fn new() -> Segment {
        let id = std::process::id();
        let s = Segment {
            lb: format!("mplbxp-lb-{id}"),
            peer: format!("mplbxp-pe-{id}"),
        };
        let (lb, pe) = (s.lb.as_str(), s.peer.as_str());
        sh(&["ip", "netns", "add", lb]);
        sh(&["ip", "netns", "add", pe]);
        sh(&[
            "ip", "-n", lb, "link", "add", "a0", "type", "veth", "peer", "name", "b0", "netns", pe,
        ]);
        let lb_sysctl = "net.ipv6.conf.a0.disable_ipv6=1";
        sh(&["ip", "netns", "exec", lb, "sysctl", "-qw", lb_sysctl]);
        sh(&["ip", "-n", lb, "link", "set", "a0", "up"]);
        // The metrics endpoint listens on loopback.
        sh(&["ip", "-n", lb, "link", "set", "lo", "up"]);
        sh(&["ip", "-n", pe, "addr", "add", "198.18.8.1/24", "dev", "b0"]);
        sh(&[
            "ip",
            "-n",
            pe,
            "addr",
            "add",
            "fd00:8::1/64",
            "dev",
            "b0",
            "nodad",
        ]);
        // A veth hands its peer TCP/UDP with the checksum left to offload
        // (a real NIC delivers it complete); mplb passes frames to its
        // kernel interface as received, whose kernel checks it.
        sh(&[
            "ip", "netns", "exec", pe, "ethtool", "-K", "b0", "tx", "off",
        ]);
        sh(&["ip", "-n", pe, "link", "set", "b0", "up"]);
        s
    }

    fn mac(&self, ns: &str, dev: &str) -> String {
        let path = format!("/sys/class/net/{dev}/address");
        sh(&["ip", "netns", "exec", ns, "cat", &path])
    }

    /// `exception_peer.py ARGS` in namespace `ns`, waited for.
    fn py(&self, ns: &str, args: &[&str]) -> String {
        let mut all = vec![
            "ip", "netns", "exec", ns, "timeout", "15", "python3", PEER_PY,
        ];
        all.extend_from_slice(args);
        sh(&all)
    }

    /// Starts `exception_peer.py serve ...` in mplb's namespace and waits
    /// until it is bound.
    fn serve(&self, kind: &str, addr: &str, port: &str) -> Child {
        let mut c = Command::new("ip")
            .args([
                "netns", "exec", &self.lb, "timeout", "15", "python3", PEER_PY,
            ])
            .args(["serve", kind, addr, port])
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn server");
        let mut line = String::new();
        let out = c.stdout.take().expect("piped");
        BufReader::new(out).read_line(&mut line).expect("read");
        assert_eq!(line.trim(), "ready", "{kind} server on {addr}:{port}");
        c
    }

    /// Whether mplb's namespace has the kernel interface.
    fn has_interface(&self) -> bool {
        Command::new("ip")
            .args(["-n", &self.lb, "link", "show", IFACE])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Waits (at most 5 s) for the kernel interface to go.
    fn wait_gone(&self) {
        let t0 = Instant::now();
        while self.has_interface() {
            assert!(t0.elapsed() < Duration::from_secs(5), "{IFACE} still there");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        for ns in [&self.lb, &self.peer] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

const PEER_PY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/exception_peer.py");

fn config(s: &Scratch) -> String {
    let eal = [
        "--no-huge",
        "-m",
        "128",
        "--no-shconf",
        "--no-pci",
        "--vdev=net_af_packet0,iface=a0,qpairs=2",
    ];
    let lines =
        format!("ipv4 = [\"{LB4}/24\"]\nipv6 = [\"{LB6}/64\"]\nkernel_interface = \"{IFACE}\"\n");
    // Two workers (sharing a CPU: the test mode), so two queue pairs on
    // the kernel interface, each worker its own.
    head(s, &eal, (2047, 32), "", "127.0.0.1:0")
        .replace("lcores = [1]\n", "lcores = [1, 2]\ncpus = [1, 1]\n")
        + &port("lan", "net_af_packet0", &lines)
        + "[flow_table]\ncapacity = 4096\n[health]\nkind = \"none\"\n"
        + &format!(
            "[[vip]]\nname = \"dns\"\naddress = \"{VIP4}\"\nport = 53\nprotocol = \"udp\"\n\
             table_size = 251\n  [[vip.backend]]\n  name = \"be\"\n  address = \"198.18.8.99\"\n  mac = \"{BACKEND_MAC}\"\n"
        )
}

fn start(seg: &Segment, cfg: &std::path::Path) -> Running {
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
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn mplb");
    let running = Running(Some(child));
    // Up once mplb has given it its last address.
    let t0 = Instant::now();
    while !seg.has_interface() || !addresses(seg).contains("fd00:8::2/64") {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "{IFACE} never got its addresses"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    running
}

/// `ip -br addr show` of the kernel interface.
fn addresses(seg: &Segment) -> String {
    sh(&["ip", "-n", &seg.lb, "-br", "addr", "show", IFACE])
}

/// "port NAME: rx N tx M ..." of mplb's exit report: (rx, tx).
fn port_line(stdout: &str, name: &str) -> (u64, u64) {
    let prefix = format!("port {name}: rx ");
    let line = stdout
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no `{prefix}` in:\n{stdout}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let num = |i: usize| words.get(i).and_then(|w| w.parse().ok()).expect("a count");
    (num(3), num(5))
}

#[test]
fn the_hosts_traffic_crosses_the_kernel_interface_and_it_dies_with_mplb() {
    let s = Scratch::new("exception");
    let seg = Segment::new();
    let cfg = s.path("mplb.toml");
    write_config(&cfg, &config(&s));

    // A name already taken is a clear error at start, not a takeover.
    let lb = seg.lb.as_str();
    sh(&[
        "ip", "-n", lb, "link", "add", IFACE, "type", "veth", "peer", "name", "taken0",
    ]);
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            lb,
            env!("CARGO_BIN_EXE_mplb"),
            "run",
            "--config",
        ])
        .arg(&cfg)
        .output()
        .expect("run mplb");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(
            "error: port lan: kernel interface mplbk0: an interface of that name already exists"
        ),
        "{stderr}"
    );
    sh(&["ip", "-n", lb, "link", "del", IFACE]);

    let mut mplb = start(&seg, &cfg);
    let (lb_mac, peer_mac) = (seg.mac(&seg.lb, "a0"), seg.mac(&seg.peer, "b0"));
    // The kernel interface wears the data port's MAC, addresses and MTU.
    assert_eq!(seg.mac(&seg.lb, IFACE), lb_mac);
    let addrs = addresses(&seg);
    for a in ["198.18.8.2/24", "fd00:8::2/64"] {
        assert!(addrs.contains(a), "{a} in {addrs}");
    }
    let mtu = sh(&[
        "ip",
        "netns",
        "exec",
        &seg.lb,
        "cat",
        "/sys/class/net/mplbk0/mtu",
    ]);
    assert_eq!(mtu, "1500");

    // Ping: answered by the datapath (the kernel never sees it).
    for a in [LB4, LB6] {
        assert_eq!(seg.py(&seg.peer, &["ping", a]), "reply", "ping {a}");
    }
    // TCP (as BGP) and UDP (as BFD) with the kernel, both families, both
    // directions of bytes.
    for addr in [LB4, LB6] {
        let server = seg.serve("tcp", addr, "179");
        let got = seg.py(&seg.peer, &["ask", "tcp", addr, "179", "open"]);
        assert_eq!(got, "OPEN", "tcp {addr}");
        assert!(server.wait_with_output().expect("wait").status.success());
        let server = seg.serve("udp", addr, "3784");
        let got = seg.py(&seg.peer, &["ask", "udp", addr, "3784", "hello"]);
        assert_eq!(got, "HELLO", "udp {addr}");
        assert!(server.wait_with_output().expect("wait").status.success());
    }
    // The kernel found the peer by its own ARP and ND through the path.
    for peer in [PEER4, PEER6] {
        let n = sh(&["ip", "-n", &seg.lb, "neigh", "show", peer, "dev", IFACE]);
        assert!(n.contains(&peer_mac), "{peer} resolved by the kernel: {n}");
    }
    // And the VIP is served as before, beside it.
    let fwd = seg.py(&seg.peer, &["vip-udp", "b0", VIP4, "53", BACKEND_MAC]);
    assert_eq!(fwd, "forwarded");

    let out = mplb.interrupt();
    let (stdout, _) = stopped_cleanly(&out);
    let counter = |n: &str| common::counter(&stdout, n);
    // What went to the kernel is what its interface received, and what
    // came from it is what it sent; nothing dropped.
    let (tap_rx, tap_tx) = port_line(&stdout, "net_tap_mplb0");
    assert_eq!(counter("to_kernel"), tap_tx, "{stdout}");
    assert_eq!(counter("from_kernel"), tap_rx, "{stdout}");
    // At least: 2 × (TCP: SYN, ACK, data, FIN, ACK; UDP: 1) in, the ARP
    // reply and the advertisement; out at least as many.
    assert!(counter("to_kernel") >= 14, "{stdout}");
    assert!(counter("from_kernel") >= 14, "{stdout}");
    assert_eq!(counter("to_kernel_dropped"), 0, "{stdout}");
    assert_eq!(counter("drop_kernel_limit"), 0, "{stdout}");
    assert_eq!(counter("icmp_echo_replies"), 2, "{stdout}");
    assert!(counter("udp_forwarded") >= 1, "{stdout}");
    seg.wait_gone();

    // Killed outright, the interface goes with the process, and with it
    // any BGP session over it.
    let mut mplb = start(&seg, &cfg);
    mplb.signal("KILL");
    let _ = mplb.0.take().map(|mut c| c.wait());
    seg.wait_gone();
}
