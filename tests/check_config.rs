//! `mplb check-config` on good and broken files.

mod common;

use common::{Scratch, run, text, write_config};

#[test]
fn good_file_prints_summary_and_exits_zero() {
    let out = run(&[
        "check-config",
        concat!(env!("CARGO_MANIFEST_DIR"), "/configs/demo.toml"),
    ]);
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    assert!(stdout.contains("demo.toml: ok"), "{stdout}");
    assert!(stdout.contains("workers: 1 on lcores [1]"), "{stdout}");
    assert!(stdout.contains("port 0: lan device net_pcap0"), "{stdout}");
    assert!(stdout.contains("mtu (the device's)"), "{stdout}");
    let out = run(&[
        "check-config",
        concat!(env!("CARGO_MANIFEST_DIR"), "/configs/bare-metal.toml"),
    ]);
    let stdout = text(&out.stdout);
    assert!(stdout.contains(" mtu 1500 "), "{stdout}");
    // IPv6 VIPs with their port in brackets.
    assert!(stdout.contains("tcp [fd00:18::10]:443"), "{stdout}");
    // web-2 has no `mac`: learnt; the IP-in-IP backends go via the gateway.
    assert!(
        stdout.contains("backends web-1, web-2 (MAC by ARP)\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("backend MACs: 1 address(es) learnt by ARP / ND on port uplink"),
        "{stdout}"
    );
}

#[test]
fn a_backend_without_mac_needs_an_address_to_ask_from() {
    let s = Scratch::new("learntmac");
    let cfg = s.path("learnt.toml");
    let body = "[dpdk]\neal_args = []\n[workers]\nlcores = [1]\n\
                [[port]]\nname = \"lan\"\ndevice = \"net_null0\"\nipv4 = [\"198.18.0.1\"]\n\
                [[vip]]\nname = \"web6\"\naddress = \"fd00::10\"\nport = 80\n\
                [[vip.backend]]\nname = \"b\"\naddress = \"fd00:1::12\"\n";
    write_config(&cfg, body);
    let out = run(&["check-config", cfg.to_str().expect("utf-8 path")]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    let expected = format!("{}:14:8: field `vip[0].backend[0].mac`", cfg.display());
    assert!(
        stderr.contains(&expected),
        "wanted `{expected}` in: {stderr}"
    );
    assert!(
        stderr.contains("no IPv6 address to ask from; add one to port[0].ipv6"),
        "{stderr}"
    );
    // With an IPv6 address on the port it is learnt by ND.
    write_config(
        &cfg,
        &body.replace("ipv4 = [\"198.18.0.1\"]", "ipv6 = [\"fd00:1::2\"]"),
    );
    let out = run(&["check-config", cfg.to_str().expect("utf-8 path")]);
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("backends b (MAC by ND)"));
}

#[test]
fn every_shipped_config_is_valid() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/configs");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).expect("configs/ exists") {
        let path = entry.expect("dir entry").path();
        if path.extension().is_some_and(|e| e == "toml") {
            let out = run(&["check-config", path.to_str().expect("utf-8 path")]);
            assert!(out.status.success(), "{} is invalid", path.display());
            checked += 1;
        }
    }
    assert!(checked >= 1);
}

#[test]
fn broken_file_names_file_line_and_field() {
    let s = Scratch::new("badcfg");
    let cfg = s.path("broken.toml");
    write_config(
        &cfg,
        "[dpdk]\neal_args = []\n\n[workers]\nlcores = [1]\n\n[[port]]\nname = \"lan\"\ndevice = \"net_null0\"\nrx_queues = -3\n",
    );
    let out = run(&["check-config", cfg.to_str().expect("utf-8 path")]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    let expected = format!("{}:10:13: field `port[0].rx_queues`", cfg.display());
    assert!(
        stderr.contains(&expected),
        "wanted `{expected}` in: {stderr}"
    );
}

#[test]
fn missing_file_is_an_error() {
    let out = run(&["check-config", "/nonexistent/mplb.toml"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("/nonexistent/mplb.toml: cannot read"));
}
