//! Real Linux MPTCP stacks through the real `mplb` binary: runs
//! `bench/lab/scenarios.sh` (network namespaces, mplb on `net_af_packet`,
//! two MPTCP backends) and requires it to pass. Scenario 1: the client's
//! connection to the VIP crosses mplb without a flow entry, the backend's
//! ADD_ADDR reaches the client and the client joins the backend directly.
//! Scenario 2: mplb is killed mid-download and the 8 MiB still arrive, byte
//! for byte, over the direct subflow. Needs root.

use std::process::Command;

#[test]
fn mptcp_bypasses_mplb_and_survives_its_death() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/lab/scenarios.sh");
    let out = Command::new("timeout")
        .args(["300", "bash", script])
        .env("MPLB", env!("CARGO_BIN_EXE_mplb"))
        .env("LAB_DIR", std::env::temp_dir().join("mplblab"))
        .output()
        .expect("run bench/lab/scenarios.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "bench/lab/scenarios.sh exited {:?}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains("scenarios: all scenarios passed"),
        "{stdout}\n{stderr}"
    );
}
