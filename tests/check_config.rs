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
