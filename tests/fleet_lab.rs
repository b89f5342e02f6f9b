//! A fleet: three real `mplb` instances behind a BIRD 2 ECMP router, real
//! Linux MPTCP and TCP clients and backends, in network namespaces
//! (`lab/fleet/scenarios.sh`, see lab/README.md). Each instance is
//! one-armed: its BIRD peers with the router (eBGP, BFD 100 ms × 3) and its
//! health checks run over mplb's exception path. Requires every scenario to
//! pass: VIPs announced only when ready and healthy and withdrawn with their
//! last backend; new connections spread, `mplb lookup` identical on every
//! instance; the MP_JOIN miss rate across the fleet measured; a rolling
//! backend change, an instance SIGKILLed (the reroute time is printed) and
//! an instance drained, each mid-transfer, with no download lost (bypass
//! MPTCP, single-path MPTCP, plain TCP). Needs root; about 2 minutes.

use std::io::Write;
use std::process::Command;

#[test]
fn fleet_of_three_behind_an_ecmp_router() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/lab/fleet/scenarios.sh");
    let out = Command::new("timeout")
        .args(["600", "bash", script])
        .env("MPLB", env!("CARGO_BIN_EXE_mplb"))
        .env("FLEET_DIR", std::env::temp_dir().join("mplbfleet"))
        .env_remove("LAB_KEEP")
        .output()
        .expect("run lab/fleet/scenarios.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The figures the issue asks for, in the CI log even when the test
    // passes: written to stderr directly, which libtest does not capture
    // (it captures only the print macros).
    let mut err = std::io::stderr();
    for line in stdout
        .lines()
        .filter(|l| l.contains("reroute") || l.contains("joins to the VIP"))
    {
        let _ = writeln!(err, "fleet_lab: {}", line.trim());
    }
    assert!(
        out.status.success(),
        "lab/fleet/scenarios.sh exited {:?}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains("fleet: all fleet scenarios passed"),
        "{stdout}\n{stderr}"
    );
}
