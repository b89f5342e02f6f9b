//! Real Linux MPTCP and TCP stacks through the real `mplb` binary: runs
//! `lab/scenarios.sh` (network namespaces: a client with two uplinks, a
//! router, mplb on `net_af_packet`, three backends) and requires every
//! scenario to pass. 1: the client's connection crosses mplb without a flow
//! entry, the backend's ADD_ADDR reaches the client and the client joins the
//! backend directly. 2: mplb is killed mid-download and the 8 MiB still
//! arrive, byte for byte, over the direct subflow. 3: plain TCP spreads by
//! weight; a reload adds and drains backends under live transfers. 4: a
//! backend's listener dies and returns; health checks follow. 5: joins sent
//! to the VIP with token routing on and off. 6: 1 and 3 over IPv6. 7: a path
//! that strips MPTCP options; the fallen-back connection is pinned. 8: a
//! datagram too big for IP-in-IP gets the client's kernel ICMP
//! "fragmentation needed" (ICMPv6 "packet too big") and a lower path MTU. See lab/README.md.
//! Needs root; about 45 s.

use std::process::Command;

#[test]
fn real_mptcp_and_tcp_through_mplb_in_the_namespace_lab() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/lab/scenarios.sh");
    let out = Command::new("timeout")
        .args(["300", "bash", script])
        .env("MPLB", env!("CARGO_BIN_EXE_mplb"))
        .env("LAB_DIR", std::env::temp_dir().join("mplblab"))
        .env_remove("LAB_SCENARIOS")
        .env_remove("LAB_KEEP")
        .output()
        .expect("run lab/scenarios.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "lab/scenarios.sh exited {:?}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains("lab: all scenarios passed"),
        "{stdout}\n{stderr}"
    );
}
