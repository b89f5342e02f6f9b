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
    assert!(out.status.success(), "{stdout}");
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

/// configs/bare-metal.toml promises that every value shown is the default
/// unless its comment starts with "example": the file with every other key
/// line removed must parse to the same config.
#[test]
fn bare_metal_values_are_defaults_unless_marked_example() {
    use mplb::config::Config;
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/configs/bare-metal.toml");
    let full = std::fs::read_to_string(path).expect("bare-metal.toml");
    let mut stripped = String::new();
    let mut removed = Vec::new();
    let mut in_removed_array = false;
    for line in full.lines() {
        if in_removed_array {
            in_removed_array = !line.trim_start().starts_with(']');
            continue;
        }
        let code = line.split('#').next().unwrap_or("");
        let comment = line.split_once('#').map_or("", |(_, c)| c.trim_start());
        let is_key = code.split_once('=').is_some_and(|(k, _)| {
            let k = k.trim();
            !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
        if is_key && !comment.starts_with("example") {
            removed.push(code.trim().to_string());
            in_removed_array = code.trim_end().ends_with('[');
            continue;
        }
        stripped.push_str(line);
        stripped.push('\n');
    }
    assert!(removed.len() > 30, "the defaults shown: {removed:?}");
    let parse = |text: &str| {
        Config::parse(text, std::path::Path::new("bare-metal.toml"))
            .unwrap_or_else(|e| panic!("{e}"))
    };
    assert_eq!(
        parse(&full),
        parse(&stripped),
        "a value not marked \"example\" differs from its default; the lines without it: {removed:#?}"
    );
}

/// `[health] interface` / `source_v4` / `source_v6` must exist on the host
/// that runs the config: check-config (and `mplb run`, and a reload, which
/// load the file the same way) refuse a way out that is not there, with
/// file:line:field.
#[test]
fn a_health_egress_that_does_not_exist_is_an_error() {
    let dir = Scratch::new("health-egress");
    let base = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/configs/demo.toml"))
        .expect("demo.toml");
    let with = |keys: &str| {
        base.replacen(
            "kind = \"none\"\n",
            &format!("kind = \"none\"\n{keys}\n"),
            1,
        )
    };
    for (key, value, want) in [
        (
            "interface",
            "\"mplbnone0\"",
            "no interface `mplbnone0` on this host",
        ),
        (
            "source_v4",
            "\"198.18.255.254\"",
            "198.18.255.254 is not an address of this host",
        ),
        (
            "source_v6",
            "\"fd00:18::ffff\"",
            "fd00:18::ffff is not an address of this host",
        ),
    ] {
        let config = with(&format!("{key} = {value}"));
        let line = config
            .lines()
            .position(|l| l.starts_with(key))
            .expect("the key's line")
            + 1;
        let path = dir.path("egress.toml");
        write_config(&path, &config);
        let out = run(&["check-config", path.to_str().expect("utf-8")]);
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{key}: {stderr}");
        assert!(stderr.contains(want), "{key}: {stderr}");
        assert!(
            stderr.contains(&format!("egress.toml:{line}:")),
            "{key}: {stderr}"
        );
        assert!(stderr.contains(&format!("health.{key}")), "{key}: {stderr}");
    }
    // What exists is fine: loopback, and a local address.
    let path = dir.path("egress-ok.toml");
    write_config(
        &path,
        &with("interface = \"lo\"\nsource_v4 = \"127.0.0.1\""),
    );
    let out = run(&["check-config", path.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
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

/// `[bgp]` and `[drain]`: bad values are errors naming the field; a BIRD
/// socket that is not there is a warning only (BIRD may start later).
#[test]
fn bgp_and_drain_sections_are_checked() {
    let dir = Scratch::new("bgp-section");
    let base = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/configs/demo.toml"))
        .expect("demo.toml");
    let check = |extra: &str| {
        let path = dir.path("bgp.toml");
        write_config(&path, &format!("{base}\n{extra}\n"));
        run(&["check-config", path.to_str().expect("utf-8")])
    };
    for (extra, field, want) in [
        (
            "[bgp]\ncheck_interval_ms = 5",
            "bgp.check_interval_ms",
            "100 to 60000",
        ),
        (
            "[bgp]\nroutes_file = \"vips.conf\"",
            "bgp.routes_file",
            "not an absolute path",
        ),
        (
            "[bgp]\nspeaker = \"frr\"",
            "bgp.speaker",
            "unknown variant `frr`",
        ),
        (
            "[drain]\nquiet_secs = 0",
            "drain.quiet_secs",
            "at least 1 s",
        ),
        (
            "[drain]\nquiet_secs = 10\ndeadline_secs = 5",
            "drain.deadline_secs",
            "quiet_secs (10)",
        ),
    ] {
        let out = check(extra);
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{extra}: accepted");
        assert!(
            stderr.contains(&format!("field `{field}`")) && stderr.contains(want),
            "{extra}: {stderr}"
        );
    }
    let out = check("[bgp]\ncontrol_socket = \"/run/mplb-test-no-bird/bird.ctl\"");
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        stdout.contains("warning: bgp: no BIRD control socket at /run/mplb-test-no-bird/bird.ctl"),
        "{stdout}"
    );
    assert!(stdout.contains("drain: exits once no packet went to a VIP for 5 s, or after 120 s"));
}

#[test]
fn health_checks_may_leave_through_the_kernel_interface_mplb_makes() {
    let s = Scratch::new("kernelhealth");
    let cfg = s.path("k.toml");
    let body = "[dpdk]\neal_args = []\n[workers]\nlcores = [1]\n\
                [[port]]\nname = \"lan\"\ndevice = \"net_null0\"\nipv4 = [\"198.18.77.2/24\"]\n\
                kernel_interface = \"mplbnone7\"\n\
                [health]\ninterface = \"mplbnone7\"\nsource_v4 = \"198.18.77.2\"\n";
    write_config(&cfg, body);
    // Neither exists before mplb runs; both will once it does.
    let out = run(&["check-config", cfg.to_str().expect("utf-8 path")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("port 0: kernel interface mplbnone7 (addresses 198.18.77.2/24;"),
        "{}",
        text(&out.stdout)
    );
    // Without the exception path, the interface must exist already.
    write_config(
        &cfg,
        &body.replace("kernel_interface = \"mplbnone7\"\n", ""),
    );
    let out = run(&["check-config", cfg.to_str().expect("utf-8 path")]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("field `health.interface`: no interface `mplbnone7`"),
        "{}",
        text(&out.stderr)
    );
}
