//! configs/vm-af-packet.toml as an operator uses it: an interface prepared
//! by scripts/af-packet-port.sh (checked by its `--check`), mplb on it with
//! net_af_packet and that config (only the interface name, file prefix,
//! control socket and, in test mode, the CPUs changed), and a real kernel on
//! the other end of the wire pinging mplb's own address: only mplb can
//! answer, the kernel has no address there. Needs root (namespaces).

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Scratch, stopped_cleanly, write_config};

const NS_LB: &str = "mplbvm-lb";
const NS_PEER: &str = "mplbvm-peer";

/// One ICMP echo to argv[1], exit 0 on its reply within 1 s (no `ping`
/// binary on a bare machine).
const PING: &str = r#"
import os, socket, struct, sys, time
dst = sys.argv[1]
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
s.settimeout(1)
ident = os.getpid() & 0xffff
body = struct.pack("!BBHHH", 8, 0, 0, ident, 1) + b"mplb"
c = sum(struct.unpack("!%dH" % (len(body) // 2), body))
c = (c & 0xffff) + (c >> 16)
body = body[:2] + struct.pack("!H", ~c & 0xffff) + body[4:]
s.sendto(body, (dst, 0))
end = time.monotonic() + 1
while time.monotonic() < end:
    try:
        pkt, (src, _) = s.recvfrom(2048)
    except socket.timeout:
        break
    icmp = pkt[(pkt[0] & 15) * 4:]
    if src == dst and icmp[0] == 0 and struct.unpack("!H", icmp[4:6])[0] == ident:
        sys.exit(0)
sys.exit(1)
"#;

fn sh(args: &[&str]) -> std::process::Output {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("run a command")
}

fn ok(args: &[&str]) {
    let out = sh(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The namespaces, removed on drop (also when the test fails).
struct Wire;

impl Wire {
    fn new() -> Wire {
        for ns in [NS_LB, NS_PEER] {
            let _ = sh(&["ip", "netns", "del", ns]);
            ok(&["ip", "netns", "add", ns]);
            ok(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        ok(&[
            "ip", "-n", NS_LB, "link", "add", "vm0", "type", "veth", "peer", "vm1", "netns",
            NS_PEER,
        ]);
        ok(&[
            "ip",
            "-n",
            NS_PEER,
            "addr",
            "add",
            "198.18.9.1/24",
            "dev",
            "vm1",
        ]);
        ok(&[
            "ip", "netns", "exec", NS_PEER, "ethtool", "-K", "vm1", "tx", "off",
        ]);
        ok(&["ip", "-n", NS_PEER, "link", "set", "vm1", "up"]);
        // Something for the kernel to get wrong if it kept the interface.
        ok(&[
            "ip",
            "-n",
            NS_LB,
            "addr",
            "add",
            "198.18.9.3/24",
            "dev",
            "vm0",
        ]);
        Wire
    }
}

impl Drop for Wire {
    fn drop(&mut self) {
        for ns in [NS_LB, NS_PEER] {
            let _ = sh(&["ip", "netns", "del", ns]);
        }
    }
}

#[test]
fn the_vm_config_runs_on_a_prepared_interface_and_answers_the_wire() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/af-packet-port.sh");
    let _wire = Wire::new();
    // Not ready as it comes: the kernel has an address and IPv6 on it.
    let out = sh(&["ip", "netns", "exec", NS_LB, script, "--check", "vm0"]);
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("has IPv4 addresses") && said.contains("IPv6 is on"),
        "{said}"
    );
    ok(&["ip", "netns", "exec", NS_LB, script, "vm0"]);
    ok(&["ip", "netns", "exec", NS_LB, script, "--check", "vm0"]);

    let s = Scratch::new("vm-config");
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/configs/vm-af-packet.toml"
    ))
    .expect("configs/vm-af-packet.toml");
    let config = shipped
        .replace("iface=eth1", "iface=vm0")
        .replace(
            "--file-prefix=mplb",
            &format!("--file-prefix={}", s.file_prefix()),
        )
        .replace(
            "/run/mplb/mplb.sock",
            &s.path("mplb.sock").display().to_string(),
        )
        .replace("ipv4 = [\"198.18.0.2\"]", "ipv4 = [\"198.18.9.2\"]")
        .replace("lcores = [1, 2]", "lcores = [1, 2]\ncpus = [1, 0]");
    assert_ne!(config, shipped);
    let cfg = s.path("vm.toml");
    write_config(&cfg, &config);

    let mplb = Command::new("ip")
        .args(["netns", "exec", NS_LB, env!("CARGO_BIN_EXE_mplb")])
        .args([
            "run",
            "--config",
            cfg.to_str().expect("utf-8"),
            "--duration",
            "6",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn mplb");
    // mplb's own address answers pings once its port is up.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut answered = false;
    while Instant::now() < deadline && !answered {
        answered = sh(&[
            "ip",
            "netns",
            "exec",
            NS_PEER,
            "python3",
            "-c",
            PING,
            "198.18.9.2",
        ])
        .status
        .success();
    }
    let out = mplb.wait_with_output().expect("mplb exits");
    let (stdout, stderr) = stopped_cleanly(&out);
    assert!(
        answered,
        "no ping answer from mplb's address\n{stdout}\n{stderr}"
    );
    // The kernel's neighbour entry names mplb's port, not the kernel's.
    let neigh =
        String::from_utf8_lossy(&sh(&["ip", "-n", NS_PEER, "neigh", "show", "198.18.9.2"]).stdout)
            .into_owned();
    let lb_mac = String::from_utf8_lossy(
        &sh(&[
            "ip",
            "netns",
            "exec",
            NS_LB,
            "cat",
            "/sys/class/net/vm0/address",
        ])
        .stdout,
    )
    .trim()
    .to_string();
    assert!(neigh.contains(&lb_mac), "{neigh} vs {lb_mac}");
}
