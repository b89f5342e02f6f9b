//! Prometheus metrics: a renderer from a plain model of the numbers to the
//! text exposition format 0.0.4, and a minimal HTTP server for `/metrics`.
//!
//! # Naming and labels
//!
//! Every metric is prefixed `mplb_`; counters end in `_total`. The datapath
//! counters are exposed **per worker only**, with a `worker="N"` label and no
//! unlabelled sum beside them (a sum next to its parts would be counted twice
//! by `sum(...)`; aggregate with `sum without (worker) (...)`). The
//! datapath's `drop_*` counters form one metric, `mplb_drops_total`, with a
//! `reason` label (the counter's name without `drop_`). Backends and VIPs are
//! labelled by name and address; a backend's administrative state is a state
//! set (`mplb_backend_state{state="active|draining|down"}`, exactly one of
//! them 1).
//!
//! # Server
//!
//! [`serve_metrics`] accepts on a non-blocking listener polled every few
//! milliseconds and serves each connection on its own short-lived thread
//! (at most [`MAX_CONNECTIONS`] at once; beyond that a connection gets 503),
//! so a client that never sends cannot hold up others; each connection gets
//! [`REQUEST_TIMEOUT`] to send its request. One request per connection.

use std::fmt::{Display, Write as _};
use std::io::{self, ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::datapath::counters::Counters;
use crate::datapath::forwarding::{BackendState, Protocol};

/// The `Content-Type` of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Connections served at the same time; more are answered 503 and closed.
pub const MAX_CONNECTIONS: usize = 16;

/// Time a client has to send its request headers.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// Time a client has to read the answer.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest request head (request line and headers) read.
const MAX_REQUEST: usize = 8192;

/// How often the accept loop looks for connections and the stop flag.
const ACCEPT_POLL: Duration = Duration::from_millis(20);

/// Everything the metrics page shows, collected by the management thread.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricsSnapshot {
    /// Generation of the forwarding snapshot the workers use.
    pub generation: u64,
    /// Time since the process started.
    pub uptime: Duration,
    /// One entry per worker, in worker order (`worker="0"` first).
    pub workers: Vec<WorkerMetrics>,
    pub vips: Vec<VipMetrics>,
    pub backends: Vec<BackendMetrics>,
}

/// One worker's numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerMetrics {
    pub counters: Counters,
    /// The worker's flow table; `None` if it has none (e.g. macswap mode).
    pub flow_table: Option<FlowTableMetrics>,
}

/// A worker's plain-TCP flow table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlowTableMetrics {
    /// Entries in use.
    pub len: u64,
    pub capacity: u64,
    pub inserts: u64,
    pub evictions: u64,
    pub timeouts: u64,
}

/// A virtual service's traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VipMetrics {
    pub name: String,
    pub address: IpAddr,
    pub port: u16,
    pub protocol: Protocol,
    pub packets: u64,
    pub bytes: u64,
    pub new_flows: u64,
}

/// One backend of one VIP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendMetrics {
    /// The VIP's name.
    pub vip: String,
    pub name: String,
    pub address: IpAddr,
    /// The state the forwarding snapshot uses (configuration, operator and
    /// health combined).
    pub state: BackendState,
    /// The health checks' verdict.
    pub healthy: bool,
    pub packets: u64,
    pub bytes: u64,
    pub new_flows: u64,
}

const DROP_PREFIX: &str = "drop_";

/// Renders `m` in the Prometheus text format 0.0.4.
pub fn render(m: &MetricsSnapshot) -> String {
    let mut out = Exposition::default();
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
    out.family("mplb_workers", "gauge", "Poll-mode workers.");
    out.sample("mplb_workers", &[], m.workers.len());

    let worker_ids: Vec<String> = (0..m.workers.len()).map(|w| w.to_string()).collect();
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
    let vip_labels: Vec<[String; 4]> = m
        .vips
        .iter()
        .map(|v| {
            [
                v.name.clone(),
                v.address.to_string(),
                v.port.to_string(),
                protocol_name(v.protocol).to_string(),
            ]
        })
        .collect();
    for (metric, help, field) in vip {
        out.family(metric, "counter", help);
        for (v, l) in m.vips.iter().zip(&vip_labels) {
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

    let backend_labels: Vec<[String; 3]> = m
        .backends
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
    for (b, l) in m.backends.iter().zip(&backend_labels) {
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
    for (b, l) in m.backends.iter().zip(&backend_labels) {
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
        for (b, l) in m.backends.iter().zip(&backend_labels) {
            let l = labels(l);
            out.sample(
                metric,
                &l.each_ref().map(|(k, v)| (*k, v.as_str())),
                field(b),
            );
        }
    }
    out.text
}

fn protocol_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
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

/// Serves `GET /metrics` on `listen` with the text `source` returns, until
/// `stop` is set (then the listener closes within ~20 ms; requests
/// in progress finish on their own threads). Other paths get 404, other
/// methods 405, malformed requests 400. `source` is called once per scrape,
/// never concurrently. Returns the address actually bound (port 0 in
/// `listen` picks a free port) and the server thread.
pub fn serve_metrics(
    listen: SocketAddr,
    source: impl Fn() -> String + Send + 'static,
    stop: Arc<AtomicBool>,
) -> io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind(listen)?;
    let bound = listener.local_addr()?;
    listener.set_nonblocking(true)?;
    let source = Arc::new(Mutex::new(source));
    let active = Arc::new(AtomicUsize::new(0));
    std::thread::Builder::new()
        .name("mplb-metrics".to_string())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let stream = match listener.accept() {
                    Ok((stream, _)) => stream,
                    // WouldBlock, or a transient error (e.g. out of file
                    // descriptors): try again shortly.
                    Err(_) => {
                        std::thread::sleep(ACCEPT_POLL);
                        continue;
                    }
                };
                if stream.set_nonblocking(false).is_err() {
                    continue;
                }
                if active.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTIONS {
                    active.fetch_sub(1, Ordering::AcqRel);
                    busy(stream);
                    continue;
                }
                let source = Arc::clone(&source);
                let active_here = Arc::clone(&active);
                let spawned = std::thread::Builder::new()
                    .name("mplb-metrics-conn".to_string())
                    .spawn(move || {
                        handle_connection(stream, &|| {
                            let f = source.lock().unwrap_or_else(|p| p.into_inner());
                            f()
                        });
                        active_here.fetch_sub(1, Ordering::AcqRel);
                    });
                if spawned.is_err() {
                    // The closure (and the stream) was dropped with it.
                    active.fetch_sub(1, Ordering::AcqRel);
                }
            }
        })
        .map(|handle| (bound, handle))
}

fn busy(mut stream: TcpStream) {
    let _ = stream.set_write_timeout(Some(Duration::from_millis(100)));
    let _ = stream.write_all(&response(
        "503 Service Unavailable",
        &[],
        b"too many connections\n",
        true,
    ));
}

/// Reads one request from `stream` and answers it.
fn handle_connection(mut stream: TcpStream, source: &dyn Fn() -> String) {
    let head = match read_head(&mut stream, Instant::now() + REQUEST_TIMEOUT) {
        Ok(head) => head,
        // Silent, closed early or too slow: nothing sensible to answer.
        Err(Incomplete::Closed | Incomplete::TimedOut) => return,
        Err(Incomplete::TooLarge) => {
            answer(
                &mut stream,
                "431 Request Header Fields Too Large",
                &[],
                b"request too large\n",
                true,
            );
            return;
        }
    };
    match parse_request_line(&head) {
        Some((method @ ("GET" | "HEAD"), "/metrics")) => {
            let body = source();
            answer(&mut stream, "200 OK", &[], body.as_bytes(), method == "GET");
        }
        Some(("GET" | "HEAD", _)) => answer(
            &mut stream,
            "404 Not Found",
            &[],
            b"not found; try /metrics\n",
            true,
        ),
        Some(_) => answer(
            &mut stream,
            "405 Method Not Allowed",
            &[("Allow", "GET, HEAD")],
            b"method not allowed\n",
            true,
        ),
        None => answer(&mut stream, "400 Bad Request", &[], b"bad request\n", true),
    }
}

fn answer(
    stream: &mut TcpStream,
    status: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    with_body: bool,
) {
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let _ = stream.write_all(&response(status, headers, body, with_body));
    let _ = stream.flush();
}

fn response(status: &str, headers: &[(&str, &str)], body: &[u8], with_body: bool) -> Vec<u8> {
    let content_type = if status.starts_with("200") {
        CONTENT_TYPE
    } else {
        "text/plain; charset=utf-8"
    };
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        let _ = write!(out, "{k}: {v}\r\n");
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    if with_body {
        bytes.extend_from_slice(body);
    }
    bytes
}

#[derive(Debug, PartialEq, Eq)]
enum Incomplete {
    Closed,
    TimedOut,
    TooLarge,
}

/// Reads until the end of the request head (an empty line).
fn read_head(stream: &mut TcpStream, deadline: Instant) -> Result<Vec<u8>, Incomplete> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        if head_complete(&buf) {
            return Ok(buf);
        }
        if buf.len() >= MAX_REQUEST {
            return Err(Incomplete::TooLarge);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return Err(Incomplete::TimedOut);
        }
        match stream.read(&mut chunk) {
            Ok(0) => return Err(Incomplete::Closed),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(Incomplete::TimedOut);
            }
            Err(_) => return Err(Incomplete::Closed),
        }
    }
}

fn head_complete(buf: &[u8]) -> bool {
    buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.windows(2).any(|w| w == b"\n\n")
}

/// Method and path (without the query) of `METHOD SP TARGET SP HTTP/1.x`.
fn parse_request_line(head: &[u8]) -> Option<(&str, &str)> {
    let end = head.iter().position(|&b| b == b'\n')?;
    let line = &head[..end];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some()
        || method.is_empty()
        || !method.bytes().all(|b| b.is_ascii_uppercase())
        || !target.starts_with('/')
        || target.bytes().any(|b| b.is_ascii_control())
        || !matches!(version, "HTTP/1.0" | "HTTP/1.1")
    {
        return None;
    }
    let path = target.split('?').next().unwrap_or(target);
    Some((method, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> MetricsSnapshot {
        let mut counters = Counters {
            rx_packets: 10,
            rx_bytes: 1500,
            ..Counters::default()
        };
        counters.drops[crate::datapath::verdict::DropReason::Malformed] = 7;
        MetricsSnapshot {
            generation: 3,
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
                packets: 60,
                bytes: 3600,
                new_flows: 2,
            }],
        }
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
        assert!(text.contains("\nmplb_config_generation 3\n"));
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

    proptest::proptest! {
        #[test]
        fn any_request_bytes_parse_without_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            if let Some((method, path)) = parse_request_line(&bytes) {
                proptest::prop_assert!(path.starts_with('/'));
                proptest::prop_assert!(!method.is_empty());
            }
            let _ = head_complete(&bytes);
        }
    }

    #[test]
    fn request_lines() {
        assert_eq!(
            parse_request_line(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Some(("GET", "/metrics"))
        );
        assert_eq!(
            parse_request_line(b"HEAD /metrics?x=1 HTTP/1.0\n\n"),
            Some(("HEAD", "/metrics"))
        );
        for bad in [
            &b"\r\n\r\n"[..],
            b"GET /metrics\r\n\r\n",
            b"GET  /metrics HTTP/1.1\r\n\r\n",
            b"GET metrics HTTP/1.1\r\n\r\n",
            b"get /metrics HTTP/1.1\r\n\r\n",
            b"GET /metrics HTTP/2\r\n\r\n",
            b"GET /met\x01rics HTTP/1.1\r\n\r\n",
            b"\xff\xfe /metrics HTTP/1.1\r\n\r\n",
            b"no line end",
        ] {
            assert_eq!(parse_request_line(bad), None, "{bad:?}");
        }
    }
}
