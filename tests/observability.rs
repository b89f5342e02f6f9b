//! What operators import as is: the Prometheus alerting rules pass
//! `promtool check rules` and their unit tests (`promtool test rules`), the
//! Grafana dashboard's queries parse as PromQL, and every metric the rules
//! and the dashboard name is on the page a running mplb serves.

mod common;

use std::collections::BTreeSet;
use std::io::ErrorKind;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use mplb::testing::{Backend, Vip};

use common::{
    Running, Scratch, free_port, head, port, scrape, spawn, stopped_cleanly, text, write_config,
};

const RULES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/deploy/prometheus/mplb-alerts.yml"
);
const RULE_TESTS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/deploy/prometheus/mplb-alerts.test.yml"
);
const DASHBOARD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/deploy/grafana/mplb-dashboard.json"
);

fn promtool(args: &[&str]) -> Output {
    match Command::new("promtool").args(args).output() {
        Ok(out) => out,
        Err(e) if e.kind() == ErrorKind::NotFound => panic!(
            "promtool is not installed; this test needs it (scripts/setup-host.sh installs \
             Debian's prometheus package)"
        ),
        Err(e) => panic!("running promtool: {e}"),
    }
}

fn assert_ok(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what}: {:?}\n{}{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// Every `mplb_...` metric name in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("mplb_") {
        let word: String = rest[i..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let before = rest[..i].chars().next_back();
        if !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            names.insert(word.clone());
        }
        rest = &rest[i + word.len()..];
    }
    names
}

/// The dashboard's PromQL queries, Grafana's variables replaced by values
/// Prometheus takes.
fn dashboard_queries() -> Vec<String> {
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(DASHBOARD).expect("dashboard"))
            .expect("the dashboard is JSON");
    let mut out = Vec::new();
    for panel in json["panels"].as_array().expect("panels") {
        for t in panel["targets"].as_array().into_iter().flatten() {
            let expr = t["expr"].as_str().expect("a target has an expr");
            out.push(
                expr.replace("$__rate_interval", "5m")
                    .replace("$instance", ".*"),
            );
        }
    }
    out
}

#[test]
fn the_alert_rules_pass_promtool_and_their_unit_tests() {
    assert_ok(
        "promtool check rules",
        &promtool(&["check", "rules", RULES]),
    );
    assert_ok(
        "promtool test rules",
        &promtool(&["test", "rules", RULE_TESTS]),
    );
    let rules = std::fs::read_to_string(RULES).expect("rules");
    for alert in [
        "MplbBackendDown",
        "MplbVipNoBackend",
        "MplbDropsHigh",
        "MplbFlowTableNearFull",
        "MplbFlowInsertsRefused",
        "MplbMempoolExhausted",
    ] {
        assert!(rules.contains(&format!("alert: {alert}\n")), "{alert}");
        let tests = std::fs::read_to_string(RULE_TESTS).expect("rule tests");
        assert!(
            tests.contains(&format!("alertname: {alert}\n")),
            "{alert} has no unit test"
        );
    }
}

#[test]
fn the_dashboard_queries_parse_as_promql() {
    let queries = dashboard_queries();
    assert!(queries.len() >= 20, "{} queries", queries.len());
    let s = Scratch::new("dashboard-promql");
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, q) in queries.iter().enumerate() {
        rules += &format!(
            "      - record: dashboard_query_{i}\n        expr: {}\n",
            serde_json::to_string(q).expect("quote")
        );
    }
    let file = s.path("dashboard-rules.yml");
    std::fs::write(&file, rules).expect("write");
    assert_ok(
        "promtool check rules on the dashboard's queries",
        &promtool(&["check", "rules", file.to_str().expect("utf-8")]),
    );
}

#[test]
fn every_metric_the_rules_and_dashboard_use_is_served() {
    let s = Scratch::new("observability");
    let metrics_port = free_port();
    let cfg = s.path("mplb.toml");
    write_config(
        &cfg,
        &format!(
            "{}[health]\nkind = \"none\"\n{}{}",
            head(
                &s,
                &["--no-huge", "--no-shconf", "--no-pci", "--vdev=net_null0"],
                (2047, 32),
                "",
                &format!("127.0.0.1:{metrics_port}")
            ),
            port("lan", "net_null0", "ipv4 = [\"198.18.0.1\"]\n"),
            Vip::web().backend(Backend::new("a", "198.18.1.11").mac("02:00:00:00:01:11")),
        ),
    );
    let mut running = Running(Some(spawn(&cfg)));
    let started = Instant::now();
    while !s.path("ctl.sock").exists() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "mplb did not start"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
    let page = scrape(metrics_port);
    let served: BTreeSet<String> = page
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .map(str::to_string)
        .collect();
    let out = running.interrupt();
    stopped_cleanly(&out);

    let mut used = metric_names(&std::fs::read_to_string(RULES).expect("rules"));
    used.extend(metric_names(
        &std::fs::read_to_string(DASHBOARD).expect("dashboard"),
    ));
    assert!(used.len() >= 25, "{used:?}");
    let missing: Vec<&String> = used.difference(&served).collect();
    assert!(
        missing.is_empty(),
        "named by the rules or the dashboard but not served: {missing:?}\n{page}"
    );
    // The guard above can fail: a name nobody serves is caught.
    assert!(!served.contains("mplb_no_such_metric_total"));
    assert!(
        metric_names("x mplb_no_such_metric_total{a=\"b\"}").contains("mplb_no_such_metric_total")
    );
}
