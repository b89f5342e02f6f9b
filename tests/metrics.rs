//! The metrics page: validated by Prometheus' own parser and linter
//! (`promtool check metrics`), and served over real HTTP on 127.0.0.1.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use mplb::control::bgp::{BgpReport, FleetReport, VipAnnouncement};
use mplb::control::metrics::{
    BackendMetrics, CONTENT_TYPE, DeviceMetrics, FlowTableMetrics, MetricsQuery, MetricsSnapshot,
    PortMetrics, ResolverCounters, Unanswered, VipMetrics, WorkerMetrics, render, render_scoped,
    serve_metrics,
};
use mplb::datapath::counters::Counters;
use mplb::datapath::forwarding::{BackendState, Protocol};

use common::promtool_check;

fn model() -> MetricsSnapshot {
    let mut values = [0u64; Counters::LEN];
    for (i, v) in values.iter_mut().enumerate() {
        *v = (i as u64 + 1) * 1000;
    }
    let counters = Counters::from_values(&values);
    let worker = |n: u64| WorkerMetrics {
        counters,
        flow_table: Some(FlowTableMetrics {
            len: n,
            capacity: 1 << 20,
            inserts: 10 * n,
            evictions: n,
            timeouts: 2 * n,
        }),
    };
    let backend = |vip: &str, name: &str, addr: &str, state, healthy| BackendMetrics {
        vip: vip.into(),
        name: name.into(),
        address: addr.parse().expect("ip"),
        state,
        healthy,
        neighbour: "static",
        packets: 5,
        bytes: u64::MAX,
        new_flows: 1,
    };
    MetricsSnapshot {
        generation: 7,
        hash_version: 1,
        uptime: Duration::from_millis(86_400_123),
        workers: vec![worker(1), worker(2), WorkerMetrics::default()],
        vips: vec![
            VipMetrics {
                name: "web".into(),
                address: "198.18.0.10".parse().expect("ip"),
                port: 80,
                protocol: Protocol::Tcp,
                packets: 1,
                bytes: 2,
                new_flows: 3,
            },
            VipMetrics {
                name: "dns \"v6\"".into(),
                address: "2001:db8::53".parse().expect("ip"),
                port: 53,
                protocol: Protocol::Udp,
                packets: 4,
                bytes: 5,
                new_flows: 6,
            },
        ],
        backends: vec![
            backend("web", "a", "198.18.1.11", BackendState::Active, true),
            backend("web", "b\\x\ny", "198.18.1.12", BackendState::Down, false),
            backend(
                "dns \"v6\"",
                "a",
                "2001:db8::11",
                BackendState::Draining,
                true,
            ),
        ],
        neighbours: ResolverCounters {
            requested: 4,
            resolved: 2,
            mac_changes: 0,
            failures: 1,
        },
        devices: Some(DeviceMetrics {
            mempool_in_use: 1100,
            mempool_size: 4095,
            ports: vec![PortMetrics {
                name: "uplink".into(),
                rx_nombuf: 2,
                ..PortMetrics::default()
            }],
        }),
        fleet: FleetReport {
            stalled_workers: 0,
            drain: None,
            bgp: Some(BgpReport {
                speaker: "bird".into(),
                speaker_up: true,
                speaker_error: None,
                sessions: vec![
                    ("uplink".into(), true, "Established".into()),
                    ("uplink \"2\"".into(), false, "Active".into()),
                ],
                vips: vec![VipAnnouncement {
                    name: "dns \"v6\"".into(),
                    address: "2001:db8::53".parse().expect("ip"),
                    announced: true,
                    reason: "announced".into(),
                }],
                configure_failures: 1,
            }),
        },
    }
}

#[test]
fn promtool_accepts_the_page_without_lint_complaints() {
    let text = render(&model());
    let (ok, report) = promtool_check(&text);
    assert!(ok, "promtool: {report}\n---\n{text}");
    assert_eq!(report.trim(), "", "promtool lint:\n{report}");
}

#[test]
fn promtool_rejects_a_broken_page() {
    // Guards the test above: promtool is really parsing what it is given.
    let broken = render(&model()).replace("mplb_workers 3", "mplb_workers three");
    let (ok, report) = promtool_check(&broken);
    assert!(!ok, "{report}");
}

/// Sends `request` and reads the whole answer (the server closes).
fn exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    s.write_all(request).expect("send");
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).expect("answer");
    String::from_utf8_lossy(&answer).into_owned()
}

fn start() -> (
    SocketAddr,
    Arc<AtomicBool>,
    Arc<AtomicUsize>,
    std::thread::JoinHandle<()>,
) {
    let stop = Arc::new(AtomicBool::new(false));
    let scrapes = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&scrapes);
    let (addr, handle) = serve_metrics(
        "127.0.0.1:0".parse().expect("address"),
        move |query: &MetricsQuery| {
            counted.fetch_add(1, Ordering::SeqCst);
            // The HTTP answers to a source's refusals: a name of no VIP,
            // a management thread that did not answer.
            match query.vips.first().map(String::as_str) {
                Some("nope") => Err(Unanswered::NoSuchVip("no VIP named `nope`".into())),
                Some("busy") => Err(Unanswered::Unavailable("metrics unavailable: busy".into())),
                _ => Ok(render_scoped(&model(), query.scopes)),
            }
        },
        Arc::clone(&stop),
    )
    .expect("serve");
    (addr, stop, scrapes, handle)
}

#[test]
fn http_server_answers_metrics_404_405_and_400() {
    let (addr, stop, scrapes, handle) = start();

    let ok = exchange(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    let (head, body) = ok.split_once("\r\n\r\n").expect("head and body");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.contains(&format!("\r\nContent-Type: {CONTENT_TYPE}")),
        "{head}"
    );
    assert!(
        head.contains(&format!("\r\nContent-Length: {}", body.len())),
        "{head}"
    );
    assert_eq!(body, render(&model()));
    assert_eq!(scrapes.load(Ordering::SeqCst), 1);

    let head_only = exchange(addr, b"HEAD /metrics HTTP/1.0\r\n\r\n");
    assert!(head_only.starts_with("HTTP/1.1 200 OK\r\n"));
    assert!(head_only.ends_with("\r\n\r\n"), "no body for HEAD");

    let not_found = exchange(addr, b"GET / HTTP/1.1\r\n\r\n");
    assert!(not_found.starts_with("HTTP/1.1 404 "), "{not_found}");
    let not_allowed = exchange(addr, b"POST /metrics HTTP/1.1\r\n\r\n");
    assert!(not_allowed.starts_with("HTTP/1.1 405 "), "{not_allowed}");
    for garbage in [
        &b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"[..],
        b"GET\r\n\r\n",
        b"hello\n\n",
    ] {
        let bad = exchange(addr, garbage);
        assert!(bad.starts_with("HTTP/1.1 400 "), "{garbage:?} -> {bad}");
    }
    // A request head that never ends.
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let _ = s.write_all(&[b'a'; 9000]);
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    assert!(answer.starts_with(b"HTTP/1.1 431 "), "{answer:?}");
    // Only the GET and the HEAD scraped.
    assert_eq!(scrapes.load(Ordering::SeqCst), 2);

    stop.store(true, Ordering::SeqCst);
    handle.join().expect("server thread");
    assert!(
        TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_err(),
        "listener closed after stop"
    );
}

#[test]
fn a_scrape_gets_the_parts_its_scopes_name() {
    let (addr, stop, scrapes, handle) = start();
    let body = |target: &str| {
        let got = exchange(addr, format!("GET {target} HTTP/1.1\r\n\r\n").as_bytes());
        let (head, body) = got.split_once("\r\n\r\n").expect("head and body");
        (
            head.lines().next().unwrap_or("").to_string(),
            body.to_string(),
        )
    };
    let series = |page: &str, prefix: &str| page.lines().filter(|l| l.starts_with(prefix)).count();
    let whole = render(&model());
    for prefix in ["mplb_uptime_seconds", "mplb_vip_", "mplb_backend_"] {
        assert!(series(&whole, prefix) > 0, "{prefix} in the model's page");
    }
    let (status, global) = body("/metrics?scope=global");
    assert!(status.contains(" 200 "), "{status}");
    assert!(series(&global, "mplb_uptime_seconds") > 0);
    assert!(series(&global, "mplb_neighbour_requests_total") > 0);
    assert_eq!(
        series(&global, "mplb_vip_") + series(&global, "mplb_backend_"),
        0
    );
    let (_, vips) = body("/metrics?scope=vip&scope=global");
    assert_eq!(series(&vips, "mplb_vip_"), series(&whole, "mplb_vip_"));
    assert_eq!(series(&vips, "mplb_backend_"), 0);
    let (_, backends) = body("/metrics?scope=backend");
    assert_eq!(
        series(&backends, "mplb_backend_"),
        series(&whole, "mplb_backend_")
    );
    assert_eq!(
        series(&backends, "mplb_uptime_seconds") + series(&backends, "mplb_vip_"),
        0
    );
    // Every scope together is the whole page; no scope too.
    assert_eq!(
        body("/metrics?scope=global&scope=vip&scope=backend").1,
        whole
    );
    assert_eq!(body("/metrics?other=1").1, whole);
    // Each part on its own is a valid page.
    for page in [&global, &vips, &backends] {
        let (ok, report) = promtool_check(page);
        assert!(ok, "{report}\n{page}");
    }
    assert_eq!(scrapes.load(Ordering::SeqCst), 5);
    // An unknown scope: 400, saying which, and nothing rendered.
    let (status, text) = body("/metrics?scope=backends");
    assert!(status.contains(" 400 "), "{status}");
    assert!(
        text.contains("\"backends\"") && text.contains("global, vip, backend"),
        "{text}"
    );
    assert_eq!(scrapes.load(Ordering::SeqCst), 5);
    // A VIP name the source does not know: 404 with its answer; one it
    // cannot answer for: 503 (a scraper marks the target down instead of
    // taking an empty page); a malformed name: 400, not asked.
    let (status, text) = body("/metrics?scope=backend&vip=nope");
    assert!(status.contains(" 404 "), "{status}");
    assert_eq!(text, "no VIP named `nope`\n");
    let (status, text) = body("/metrics?vip=busy");
    assert!(status.contains(" 503 "), "{status}");
    assert_eq!(text, "metrics unavailable: busy\n");
    assert_eq!(scrapes.load(Ordering::SeqCst), 7);
    let (status, text) = body("/metrics?vip=%zz");
    assert!(
        status.contains(" 400 ") && text.contains("not a VIP's name"),
        "{status} {text}"
    );
    assert_eq!(scrapes.load(Ordering::SeqCst), 7);
    stop.store(true, Ordering::SeqCst);
    handle.join().expect("server thread");
}

#[test]
fn silent_clients_do_not_hold_up_a_scrape() {
    let (addr, stop, _, handle) = start();
    // Clients that connect and never send.
    let idle: Vec<TcpStream> = (0..4)
        .map(|_| TcpStream::connect(addr).expect("connect"))
        .collect();
    let ok = exchange(addr, b"GET /metrics HTTP/1.1\r\n\r\n");
    assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
    // The silent connections are still open (the scrape did not wait for
    // them to time out)...
    for s in &idle {
        s.set_nonblocking(true).expect("nonblocking");
        let mut b = [0u8; 1];
        let r = (&*s).read(&mut b);
        assert!(
            matches!(&r, Err(e) if e.kind() == ErrorKind::WouldBlock),
            "still waiting for a request: {r:?}"
        );
    }
    // ...and are closed, without an answer, once their time is up.
    for s in &idle {
        s.set_nonblocking(false).expect("blocking");
        s.set_read_timeout(Some(Duration::from_secs(10))).ok();
        let mut rest = Vec::new();
        let n = (&*s).read_to_end(&mut rest).expect("closed by the server");
        assert_eq!(n, 0);
    }
    stop.store(true, Ordering::SeqCst);
    handle.join().expect("server thread");
}
