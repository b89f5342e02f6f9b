//! `mplb check-host` on this machine, which has no NIC for DPDK: the
//! bare-metal example's PCI port is reported absent (exit 1), the demo on a
//! virtual device is fine (exit 0). The checks themselves are tested on
//! made-up hosts in `src/host/tests.rs`.

mod common;

use common::{run, text};

fn root(p: &str) -> String {
    format!("{}/{p}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_bare_metal_example_misses_its_nic_here() {
    let out = run(&["check-host", &root("configs/bare-metal.toml")]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("missing: port uplink: PCI device 0000:3b:00.0 is not on this host"),
        "{stdout}"
    );
    assert!(
        stdout.contains("fix: `dpdk-devbind.py --status` lists the NICs"),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .last()
            .is_some_and(|l| l.starts_with("host not ready: ")),
        "{stdout}"
    );
}

#[test]
fn the_demo_on_a_virtual_device_is_ready() {
    let out = run(&["check-host", &root("configs/demo.toml")]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("ok: port lan: net_pcap0 is a DPDK virtual device, no NIC needed"),
        "{stdout}"
    );
    assert!(
        stdout.contains("\nhost ready for this config ("),
        "{stdout}"
    );
}

#[test]
fn a_broken_config_is_an_error_not_a_report() {
    let out = run(&["check-host", "/nonexistent/mplb.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).starts_with("error: "),
        "{}",
        text(&out.stderr)
    );
    assert!(text(&out.stdout).is_empty());
}
