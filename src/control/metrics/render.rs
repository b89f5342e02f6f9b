//! The text exposition format 0.0.4: one function per group of families.

use std::fmt::{Display, Write as _};

use super::{
    BackendMetrics, DeviceMetrics, FlowTableMetrics, MetricsSnapshot, NEIGHBOUR_STATES, Scopes,
    VipMetrics,
};
use crate::control::bgp::FleetReport;
use crate::datapath::counters::Counters;
use crate::datapath::forwarding::BackendState;

/// The `Content-Type` of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

const DROP_PREFIX: &str = "drop_";

/// Renders `m` in the Prometheus text format 0.0.4.
pub fn render(m: &MetricsSnapshot) -> String {
    render_scoped(m, Scopes::ALL)
}

/// [`render`] of the parts `scopes` names.
pub fn render_scoped(m: &MetricsSnapshot, scopes: Scopes) -> String {
    let mut out = Exposition::default();
    if scopes.global {
        process(&mut out, m);
        let worker_ids: Vec<String> = (0..m.workers.len()).map(|w| w.to_string()).collect();
        worker_counters(&mut out, m, &worker_ids);
        drops(&mut out, m, &worker_ids);
        flow_tables(&mut out, m, &worker_ids);
    }
    if scopes.vip {
        vips(&mut out, &m.vips);
    }
    if scopes.backend {
        backends(&mut out, &m.backends);
    }
    if scopes.global {
        neighbour_totals(&mut out, m);
    }
    if scopes.backend {
        neighbour_states(&mut out, m);
    }
    if scopes.global {
        fleet(&mut out, &m.fleet);
    }
    if scopes.vip {
        announcements(&mut out, &m.fleet);
    }
    if scopes.global {
        if let Some(d) = &m.devices {
            devices(&mut out, d);
        }
    }
    out.text
}

/// The resolution of backend MACs by ARP / ND: the management thread's
/// totals.
fn neighbour_totals(out: &mut Exposition, m: &MetricsSnapshot) {
    let n = &m.neighbours;
    let totals = [
        (
            "mplb_neighbour_requests_total",
            "ARP requests / neighbour solicitations the management thread asked a worker to send.",
            n.requested,
        ),
        (
            "mplb_neighbour_resolved_total",
            "Backend addresses whose MAC was learnt (first answer).",
            n.resolved,
        ),
        (
            "mplb_neighbour_mac_changes_total",
            "Answers that changed a backend's known MAC.",
            n.mac_changes,
        ),
        (
            "mplb_neighbour_failures_total",
            "Resolutions or refreshes of a backend's MAC left unanswered 3 times.",
            n.failures,
        ),
    ];
    for (metric, help, value) in totals {
        out.family(metric, "counter", help);
        out.sample(metric, &[], value);
    }
}

/// How each backend's MAC is known (a state set).
fn neighbour_states(out: &mut Exposition, m: &MetricsSnapshot) {
    out.family(
        "mplb_backend_neighbour_state",
        "gauge",
        "How the backend's MAC is known (static: from the config or the gateway; else learnt by ARP / ND): 1 for the current state, 0 for the others.",
    );
    for b in &m.backends {
        let address = b.address.to_string();
        for state in NEIGHBOUR_STATES {
            out.sample(
                "mplb_backend_neighbour_state",
                &[
                    ("vip", b.vip.as_str()),
                    ("backend", b.name.as_str()),
                    ("address", address.as_str()),
                    ("state", state),
                ],
                u8::from(b.neighbour == state),
            );
        }
    }
}

/// The mempool's fill and the ports' counters from DPDK.
fn devices(out: &mut Exposition, d: &DeviceMetrics) {
    out.family(
        "mplb_mempool_mbufs_in_use",
        "gauge",
        "Packet buffers out of the pool (rx rings, in flight, lcore caches).",
    );
    out.sample("mplb_mempool_mbufs_in_use", &[], d.mempool_in_use);
    out.family(
        "mplb_mempool_mbufs",
        "gauge",
        "Packet buffers in the pool in all (dpdk.mempool_size).",
    );
    out.sample("mplb_mempool_mbufs", &[], d.mempool_size);
    type PortField = fn(&super::PortMetrics) -> u64;
    let fields: [(&str, &str, PortField); 6] = [
        (
            "mplb_port_rx_packets_total",
            "Frames the port received (NIC count).",
            |p| p.rx_packets,
        ),
        (
            "mplb_port_tx_packets_total",
            "Frames the port sent (NIC count).",
            |p| p.tx_packets,
        ),
        (
            "mplb_port_rx_missed_total",
            "Frames the NIC dropped for want of a free rx descriptor (workers too slow).",
            |p| p.rx_missed,
        ),
        (
            "mplb_port_rx_nombuf_total",
            "Receive failures for want of a packet buffer (mempool exhausted).",
            |p| p.rx_nombuf,
        ),
        (
            "mplb_port_rx_errors_total",
            "Erroneous frames received.",
            |p| p.rx_errors,
        ),
        (
            "mplb_port_tx_errors_total",
            "Frames the port failed to send.",
            |p| p.tx_errors,
        ),
    ];
    for (metric, help, field) in fields {
        out.family(metric, "counter", help);
        for p in &d.ports {
            out.sample(metric, &[("port", p.name.as_str())], field(p));
        }
    }
}

/// Draining, and with `[bgp]` the speaker and its sessions.
fn fleet(out: &mut Exposition, f: &FleetReport) {
    out.family(
        "mplb_draining",
        "gauge",
        "1 while `mplb drain` runs: every VIP withdrawn, forwarding until quiet.",
    );
    out.sample("mplb_draining", &[], u8::from(f.draining()));
    out.family(
        "mplb_workers_stalled",
        "gauge",
        "Workers that published no counters for 2 s (stopped polling); while above 0 no VIP is announced.",
    );
    out.sample("mplb_workers_stalled", &[], f.stalled_workers);
    let Some(b) = &f.bgp else {
        return;
    };
    out.family(
        "mplb_bgp_speaker_up",
        "gauge",
        "1 when the BGP speaker (BIRD) answers on its control socket.",
    );
    out.sample("mplb_bgp_speaker_up", &[], u8::from(b.speaker_up));
    out.family(
        "mplb_bgp_session_up",
        "gauge",
        "1 when the speaker's BGP protocol is Established.",
    );
    for (name, up, _) in &b.sessions {
        out.sample("mplb_bgp_session_up", &[("protocol", name)], u8::from(*up));
    }
    out.family(
        "mplb_bgp_configure_failures_total",
        "counter",
        "Routes file writes or speaker `configure` commands that failed.",
    );
    out.sample(
        "mplb_bgp_configure_failures_total",
        &[],
        b.configure_failures,
    );
}

/// With `[bgp]`, each VIP's announcement.
fn announcements(out: &mut Exposition, f: &FleetReport) {
    let Some(b) = &f.bgp else {
        return;
    };
    out.family(
        "mplb_vip_announced",
        "gauge",
        "1 when this instance announces the VIP's address by BGP.",
    );
    // Labelled by name only (the VIP's address is in `mplb_vip_*`):
    // the interface the fleet lab and alerts match on.
    for v in &b.vips {
        out.sample(
            "mplb_vip_announced",
            &[("vip", &v.name)],
            u8::from(v.announced),
        );
    }
}

/// The process: version, uptime, snapshot generation, workers.
fn process(out: &mut Exposition, m: &MetricsSnapshot) {
    out.family(
        "mplb_build_info",
        "gauge",
        "Constant 1, labelled with the mplb version.",
    );
    out.sample(
        "mplb_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1,
    );
    out.family(
        "mplb_uptime_seconds",
        "gauge",
        "Seconds since mplb started.",
    );
    out.sample(
        "mplb_uptime_seconds",
        &[],
        format_args!("{:.3}", m.uptime.as_secs_f64()),
    );
    out.family(
        "mplb_config_generation",
        "gauge",
        "Generation of the forwarding snapshot in use (0 = the first).",
    );
    out.sample("mplb_config_generation", &[], m.generation);
    out.family(
        "mplb_hash_version",
        "gauge",
        "Version of the hash contract flows are placed by ([datapath] hash_version): the same on every instance of an ECMP group, or they disagree on backends.",
    );
    out.sample("mplb_hash_version", &[], m.hash_version);
    out.family("mplb_workers", "gauge", "Poll-mode workers.");
    out.sample("mplb_workers", &[], m.workers.len());
}

/// The datapath counters other than drops, one family each, per worker.
fn worker_counters(out: &mut Exposition, m: &MetricsSnapshot, worker_ids: &[String]) {
    for (i, name) in Counters::NAMES.iter().enumerate() {
        if name.starts_with(DROP_PREFIX) {
            continue;
        }
        let metric = format!("mplb_{name}_total");
        out.family(&metric, "counter", &Counters::help(i));
        for (w, worker) in m.workers.iter().enumerate() {
            let value = worker.counters.values().get(i).copied().unwrap_or(0);
            out.sample(&metric, &[("worker", &worker_ids[w])], value);
        }
    }
}

/// The `drop_*` counters as one family with a `reason` label.
fn drops(out: &mut Exposition, m: &MetricsSnapshot, worker_ids: &[String]) {
    out.family(
        "mplb_drops_total",
        "counter",
        "Packets the datapath dropped, by reason.",
    );
    for (w, worker) in m.workers.iter().enumerate() {
        for (name, value) in Counters::NAMES.iter().zip(worker.counters.values()) {
            if let Some(reason) = name.strip_prefix(DROP_PREFIX) {
                out.sample(
                    "mplb_drops_total",
                    &[("worker", &worker_ids[w]), ("reason", reason)],
                    value,
                );
            }
        }
    }
}

/// Each worker's flow table (workers without one have no samples).
fn flow_tables(out: &mut Exposition, m: &MetricsSnapshot, worker_ids: &[String]) {
    type FlowField = fn(&FlowTableMetrics) -> u64;
    let flow: [(&str, &str, &str, FlowField); 5] = [
        (
            "mplb_flow_table_entries",
            "gauge",
            "Entries in the worker's flow table.",
            |f| f.len,
        ),
        (
            "mplb_flow_table_capacity",
            "gauge",
            "Capacity of the worker's flow table.",
            |f| f.capacity,
        ),
        (
            "mplb_flow_table_inserts_total",
            "counter",
            "Entries stored in the worker's flow table.",
            |f| f.inserts,
        ),
        (
            "mplb_flow_table_evictions_total",
            "counter",
            "Live flow-table entries pushed out by newcomers.",
            |f| f.evictions,
        ),
        (
            "mplb_flow_table_timeouts_total",
            "counter",
            "Flow-table entries removed after being idle too long.",
            |f| f.timeouts,
        ),
    ];
    for (metric, kind, help, field) in flow {
        out.family(metric, kind, help);
        for (w, worker) in m.workers.iter().enumerate() {
            if let Some(f) = &worker.flow_table {
                out.sample(metric, &[("worker", &worker_ids[w])], field(f));
            }
        }
    }
}

/// Traffic per VIP.
fn vips(out: &mut Exposition, vips: &[VipMetrics]) {
    type VipField = fn(&VipMetrics) -> u64;
    let vip: [(&str, &str, VipField); 3] = [
        (
            "mplb_vip_packets_total",
            "Packets to the VIP forwarded to a backend.",
            |v| v.packets,
        ),
        (
            "mplb_vip_bytes_total",
            "Bytes to the VIP forwarded to a backend.",
            |v| v.bytes,
        ),
        (
            "mplb_vip_new_flows_total",
            "New connections to the VIP.",
            |v| v.new_flows,
        ),
    ];
    let vip_labels: Vec<[String; 4]> = vips
        .iter()
        .map(|v| {
            [
                v.name.clone(),
                v.address.to_string(),
                v.port.to_string(),
                v.protocol.name().to_string(),
            ]
        })
        .collect();
    for (metric, help, field) in vip {
        out.family(metric, "counter", help);
        for (v, l) in vips.iter().zip(&vip_labels) {
            out.sample(
                metric,
                &[
                    ("vip", &l[0]),
                    ("address", &l[1]),
                    ("port", &l[2]),
                    ("protocol", &l[3]),
                ],
                field(v),
            );
        }
    }
}

/// Per backend of each VIP: health, forwarding state (a state set) and traffic.
fn backends(out: &mut Exposition, backends: &[BackendMetrics]) {
    let backend_labels: Vec<[String; 3]> = backends
        .iter()
        .map(|b| [b.vip.clone(), b.name.clone(), b.address.to_string()])
        .collect();
    let labels = |l: &[String; 3]| -> [(&'static str, String); 3] {
        [
            ("vip", l[0].clone()),
            ("backend", l[1].clone()),
            ("address", l[2].clone()),
        ]
    };
    out.family(
        "mplb_backend_healthy",
        "gauge",
        "1 if the backend's health checks pass, else 0.",
    );
    for (b, l) in backends.iter().zip(&backend_labels) {
        let l = labels(l);
        out.sample(
            "mplb_backend_healthy",
            &l.each_ref().map(|(k, v)| (*k, v.as_str())),
            u8::from(b.healthy),
        );
    }
    out.family(
        "mplb_backend_state",
        "gauge",
        "The backend's forwarding state: 1 for the current state, 0 for the others.",
    );
    for (b, l) in backends.iter().zip(&backend_labels) {
        let l = labels(l);
        for state in [
            BackendState::Active,
            BackendState::Draining,
            BackendState::Down,
        ] {
            out.sample(
                "mplb_backend_state",
                &[
                    ("vip", l[0].1.as_str()),
                    ("backend", l[1].1.as_str()),
                    ("address", l[2].1.as_str()),
                    ("state", state_name(state)),
                ],
                u8::from(b.state == state),
            );
        }
    }
    type BackendField = fn(&BackendMetrics) -> u64;
    let backend: [(&str, &str, BackendField); 3] = [
        (
            "mplb_backend_packets_total",
            "Packets forwarded to the backend for the VIP.",
            |b| b.packets,
        ),
        (
            "mplb_backend_bytes_total",
            "Bytes forwarded to the backend for the VIP.",
            |b| b.bytes,
        ),
        (
            "mplb_backend_new_flows_total",
            "New connections sent to the backend for the VIP.",
            |b| b.new_flows,
        ),
    ];
    for (metric, help, field) in backend {
        out.family(metric, "counter", help);
        for (b, l) in backends.iter().zip(&backend_labels) {
            let l = labels(l);
            out.sample(
                metric,
                &l.each_ref().map(|(k, v)| (*k, v.as_str())),
                field(b),
            );
        }
    }
}

fn state_name(s: BackendState) -> &'static str {
    match s {
        BackendState::Active => "active",
        BackendState::Draining => "draining",
        BackendState::Down => "down",
    }
}

/// Text being built; writing to a `String` cannot fail.
#[derive(Default)]
struct Exposition {
    text: String,
}

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Display) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{k}=\"{}\"", escape_label_value(v));
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
    }
}

/// A label value as the text format wants it: `\`, `"` and newline escaped.
pub fn escape_label_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// HELP text: `\` and newline escaped.
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::control::metrics::{ResolverCounters, WorkerMetrics};
    use crate::datapath::forwarding::Protocol;

    fn small() -> MetricsSnapshot {
        let mut counters = Counters {
            rx_packets: 10,
            rx_bytes: 1500,
            ..Counters::default()
        };
        counters.drops[crate::datapath::verdict::DropReason::Malformed] = 7;
        MetricsSnapshot {
            generation: 3,
            hash_version: 2,
            uptime: Duration::from_millis(12_345),
            workers: vec![
                WorkerMetrics {
                    counters,
                    flow_table: Some(FlowTableMetrics {
                        len: 5,
                        capacity: 1024,
                        inserts: 9,
                        evictions: 1,
                        timeouts: 3,
                    }),
                },
                WorkerMetrics::default(),
            ],
            vips: vec![VipMetrics {
                name: "web".into(),
                address: "2001:db8::10".parse().expect("ip"),
                port: 443,
                protocol: Protocol::Tcp,
                packets: 100,
                bytes: 6400,
                new_flows: 4,
            }],
            backends: vec![BackendMetrics {
                vip: "web".into(),
                name: "a \"quoted\" \\ name\nline2".into(),
                address: "198.18.1.11".parse().expect("ip"),
                state: BackendState::Draining,
                healthy: true,
                neighbour: "stale",
                packets: 60,
                bytes: 3600,
                new_flows: 2,
            }],
            neighbours: ResolverCounters {
                requested: 9,
                resolved: 2,
                mac_changes: 1,
                failures: 3,
            },
            devices: Some(DeviceMetrics {
                mempool_in_use: 600,
                mempool_size: 4095,
                ports: vec![super::super::PortMetrics {
                    name: "uplink".into(),
                    rx_nombuf: 12,
                    rx_missed: 3,
                    ..Default::default()
                }],
            }),
            fleet: FleetReport {
                stalled_workers: 1,
                drain: Some(crate::control::bgp::DrainReport {
                    elapsed_secs: 2.0,
                    quiet_secs: 1.0,
                    quiet_needed_secs: 5,
                    deadline_secs: 120,
                }),
                bgp: Some(crate::control::bgp::BgpReport {
                    speaker: "bird".into(),
                    speaker_up: true,
                    speaker_error: None,
                    sessions: vec![("uplink".into(), true, "Established".into())],
                    vips: vec![crate::control::bgp::VipAnnouncement {
                        name: "web".into(),
                        address: "2001:db8::10".parse().expect("ip"),
                        announced: false,
                        reason: "draining".into(),
                    }],
                    configure_failures: 2,
                }),
            },
        }
    }

    #[test]
    fn fleet_lines() {
        let text = render(&small());
        for line in [
            "mplb_draining 1",
            "mplb_workers_stalled 1",
            "mplb_bgp_speaker_up 1",
            "mplb_bgp_session_up{protocol=\"uplink\"} 1",
            "mplb_bgp_configure_failures_total 2",
            "mplb_vip_announced{vip=\"web\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
        let mut off = small();
        off.fleet = FleetReport::default();
        let text = render(&off);
        assert!(text.lines().any(|l| l == "mplb_draining 0"), "{text}");
        assert!(
            text.lines().any(|l| l == "mplb_workers_stalled 0"),
            "{text}"
        );
        assert!(!text.contains("mplb_bgp_"), "no [bgp]: no BGP families");
    }

    fn block(text: &str, metric: &str) -> Vec<String> {
        text.lines()
            .filter(|l| {
                l.strip_prefix("# HELP ")
                    .or_else(|| l.strip_prefix("# TYPE "))
                    .unwrap_or(l)
                    .split(['{', ' '])
                    .next()
                    == Some(metric)
            })
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn renders_exact_lines() {
        let text = render(&small());
        assert_eq!(
            block(&text, "mplb_rx_packets_total"),
            [
                "# HELP mplb_rx_packets_total Frames received.",
                "# TYPE mplb_rx_packets_total counter",
                "mplb_rx_packets_total{worker=\"0\"} 10",
                "mplb_rx_packets_total{worker=\"1\"} 0",
            ]
        );
        assert!(text.contains("\nmplb_uptime_seconds 12.345\n"), "{text}");
        assert!(text.contains("\nmplb_mempool_mbufs_in_use 600\n"));
        assert!(text.contains("\nmplb_mempool_mbufs 4095\n"));
        assert!(text.contains("\nmplb_port_rx_nombuf_total{port=\"uplink\"} 12\n"));
        assert!(text.contains("\nmplb_port_rx_missed_total{port=\"uplink\"} 3\n"));
        assert!(text.contains("\nmplb_config_generation 3\n"));
        assert!(text.contains("\nmplb_hash_version 2\n"));
        assert!(text.contains("\nmplb_workers 2\n"));
        assert!(text.contains("\nmplb_drops_total{worker=\"0\",reason=\"malformed\"} 7\n"));
        assert!(text.contains("\nmplb_drops_total{worker=\"1\",reason=\"no_backend\"} 0\n"));
        assert!(
            !text.contains("mplb_drop_malformed"),
            "drops only as reasons"
        );
        assert_eq!(
            block(&text, "mplb_flow_table_entries"),
            [
                "# HELP mplb_flow_table_entries Entries in the worker's flow table.",
                "# TYPE mplb_flow_table_entries gauge",
                "mplb_flow_table_entries{worker=\"0\"} 5",
            ],
            "worker 1 has no flow table"
        );
        assert!(text.contains(
            "\nmplb_vip_bytes_total{vip=\"web\",address=\"2001:db8::10\",port=\"443\",protocol=\"tcp\"} 6400\n"
        ));
        let labels = r#"vip="web",backend="a \"quoted\" \\ name\nline2",address="198.18.1.11""#;
        assert_eq!(
            block(&text, "mplb_backend_state")[2..],
            [
                format!("mplb_backend_state{{{labels},state=\"active\"}} 0"),
                format!("mplb_backend_state{{{labels},state=\"draining\"}} 1"),
                format!("mplb_backend_state{{{labels},state=\"down\"}} 0"),
            ]
        );
        assert!(text.contains(&format!("\nmplb_backend_healthy{{{labels}}} 1\n")));
        assert_eq!(
            block(&text, "mplb_backend_neighbour_state")[2..],
            [
                format!("mplb_backend_neighbour_state{{{labels},state=\"static\"}} 0"),
                format!("mplb_backend_neighbour_state{{{labels},state=\"reachable\"}} 0"),
                format!("mplb_backend_neighbour_state{{{labels},state=\"stale\"}} 1"),
                format!("mplb_backend_neighbour_state{{{labels},state=\"unresolved\"}} 0"),
            ]
        );
        assert!(text.contains("\nmplb_neighbour_requests_total 9\n"));
        assert!(text.contains("\nmplb_neighbour_mac_changes_total 1\n"));
        assert!(text.contains("\nmplb_neighbour_failures_total 3\n"));
        assert!(text.contains(&format!("\nmplb_backend_new_flows_total{{{labels}}} 2\n")));
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn no_series_twice_and_every_family_declared_once_before_its_samples() {
        let text = render(&small());
        let mut seen_series = std::collections::HashSet::new();
        let mut declared: Vec<&str> = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let name = rest.split(' ').next().expect("name");
                assert!(!declared.contains(&name), "{name} declared twice");
                declared.push(name);
            } else if !line.starts_with('#') {
                let (series, _) = line.rsplit_once(' ').expect("value");
                let name = series.split('{').next().expect("name");
                assert_eq!(declared.last(), Some(&name), "{line} outside its family");
                assert!(seen_series.insert(series.to_string()), "{series} twice");
            }
        }
    }

    #[test]
    fn escaping() {
        assert_eq!(escape_label_value(r#"a\b"c"#), r#"a\\b\"c"#);
        assert_eq!(escape_label_value("x\ny"), "x\\ny");
        assert_eq!(escape_label_value("plain é"), "plain é");
        assert_eq!(escape_help("a\\b\nc \"q\""), "a\\\\b\\nc \"q\"");
    }
}
