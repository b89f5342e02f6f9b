//! Where the workers' flow tables live: DPDK hugepage memory when the EAL has
//! hugepages, ordinary memory (with a warning, still forwarding) when they
//! are too few. Runs the real `mplb` binary on `net_pcap` with a real
//! capture; these two tests use hugepages (`--in-memory`), the other engine
//! tests run with `--no-huge`.

mod common;

use std::path::Path;

use mplb::testing::{Backend, Vip};

use common::{Scratch, counter, head, port, run_for, text, write_config};

/// Free 2 MiB hugepages on this host.
fn free_hugepages() -> u64 {
    std::fs::read_to_string("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// Runs mplb for a second over tests/data/tcp_v4.pcap with `eal_extra`
/// EAL arguments and a flow table of `capacity` entries; returns (stdout,
/// stderr) after checking that the plain-TCP flow was forwarded through
/// the flow table.
fn run_with(name: &str, eal_extra: &[&str], capacity: usize) -> (String, String) {
    let s = Scratch::new(name);
    let input = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/tcp_v4.pcap");
    let cfg = s.path("mplb.toml");
    let vdev = format!(
        "--vdev=net_pcap0,rx_pcap={},tx_pcap={}",
        input.display(),
        s.path("out.pcap").display()
    );
    let mut eal = vec!["--in-memory", "--no-pci"];
    eal.extend_from_slice(eal_extra);
    eal.push(&vdev);
    write_config(
        &cfg,
        &format!(
            r#"{}{}[flow_table]
capacity = {capacity}
[health]
kind = "none"
{}"#,
            head(&s, &eal, (2047, 32), "", "127.0.0.1:0"),
            port("lan", "net_pcap0", "ipv4 = [\"198.18.0.1\"]\n"),
            Vip::web().backend(Backend::new("a", "198.18.1.11").mac("02:00:00:00:01:11")),
        ),
    );
    let out = run_for(&cfg, "1");
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success());
    // The capture's client→VIP segments: the SYN by Maglev, the rest hit
    // the entry its first ACK created.
    assert!(counter(&stdout, "flow_inserted") >= 1, "{stdout}");
    assert!(counter(&stdout, "flow_hit") >= 5, "{stdout}");
    assert!(stdout.contains("mbufs in use: 0 at start, 0 at end"));
    (stdout, stderr)
}

/// Whether `n` hugepages are free. Outside CI a machine without them skips
/// the test (with a note); in CI (`CI` set, after scripts/setup-host.sh
/// reserved them) a shortage fails it, so it cannot pass without running.
fn enough_hugepages(n: u64) -> bool {
    let free = free_hugepages();
    if free >= n {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "only {free} free 2 MiB hugepages, need {n} (scripts/setup-host.sh reserves them)"
    );
    eprintln!(
        "skipped: only {free} free 2 MiB hugepages, need {n} (scripts/setup-host.sh reserves them)"
    );
    false
}

#[test]
fn flow_table_is_on_hugepages_when_the_eal_has_them() {
    // 64 for the mempool and the EAL, 2 for the table.
    if !enough_hugepages(64) {
        return;
    }
    let (stdout, stderr) = run_with("hugemem", &[], 1 << 16);
    assert!(
        stdout.contains("worker 0: flow table 3 MiB in DPDK memory on socket 0, 2 MiB pages"),
        "{stdout}"
    );
    assert!(!stderr.contains("event=flow_table_memory"), "{stderr}");
}

#[test]
fn flow_table_falls_back_to_ordinary_memory_when_hugepages_are_short() {
    if !enough_hugepages(32) {
        return;
    }
    // DPDK may use 32 MiB on the socket; the table alone needs 48.
    let (stdout, stderr) = run_with("hugemem-short", &["--socket-limit=32"], 1 << 20);
    assert!(
        stderr.contains("level=warn event=flow_table_memory worker=0 mib=48"),
        "{stderr}"
    );
    assert!(
        stdout.contains("worker 0: flow table 48 MiB in ordinary memory"),
        "{stdout}"
    );
}
