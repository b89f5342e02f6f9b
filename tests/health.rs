//! Health checks against real sockets on 127.0.0.1: TCP connect, HTTP status
//! lines (good, bad, garbage, silence) and the checker thread end to end.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mplb::config::{HealthConfig, HealthKind};
use mplb::control::health::{Egress, Target, check_http, check_tcp, spawn_health_thread};

/// A port on 127.0.0.1 with nothing listening (bound, then released).
fn closed_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    drop(l);
    addr
}

/// A one-shot-per-connection HTTP server answering every request with
/// `answer` (if `None`, it reads the request and then stays silent until the
/// client goes away). Serves `connections` connections, then ends.
fn server(answer: Option<&'static [u8]>, connections: usize) -> (SocketAddr, JoinHandle<String>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    let h = std::thread::spawn(move || {
        let mut first_request = String::new();
        for _ in 0..connections {
            let Ok((mut s, _)) = l.accept() else { break };
            s.set_read_timeout(Some(Duration::from_secs(5))).ok();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 1024];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            if first_request.is_empty() {
                first_request = String::from_utf8_lossy(&buf).into_owned();
            }
            match answer {
                Some(bytes) => {
                    let _ = s.write_all(bytes);
                }
                // Wait for the client to give up and close.
                None => while matches!(s.read(&mut chunk), Ok(n) if n > 0) {},
            }
        }
        first_request
    });
    (addr, h)
}

const T: Duration = Duration::from_millis(300);

#[test]
fn tcp_check_against_a_listener_and_a_closed_port() {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let open = l.local_addr().expect("addr");
    assert_eq!(check_tcp(open, Egress::default(), T), Ok(()));
    let err = check_tcp(closed_port(), Egress::default(), T).expect_err("refused");
    assert!(err.starts_with("connect:"), "{err}");
}

/// `[health] source_v4` and `interface`: the listener sees the check come
/// from the configured source (127.0.0.2, a local address that the kernel
/// would not pick by itself), over the configured interface; an interface
/// that does not exist fails the check with a reason that names it.
#[test]
fn tcp_check_leaves_from_the_configured_source_and_interface() {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let open = l.local_addr().expect("addr");
    let from = Egress {
        interface: Some("lo"),
        source: Some("127.0.0.2".parse().expect("address")),
    };
    assert_eq!(check_tcp(open, from, T), Ok(()));
    let (_, peer) = l.accept().expect("the check's connection");
    assert_eq!(peer.ip().to_string(), "127.0.0.2");
    let nowhere = Egress {
        interface: Some("mplbnone0"),
        source: None,
    };
    let err = check_tcp(open, nowhere, T).expect_err("no such interface");
    assert!(err.contains("interface mplbnone0"), "{err}");
}

#[test]
fn http_200_is_healthy_and_the_request_is_well_formed() {
    let (addr, h) = server(Some(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), 1);
    assert_eq!(
        check_http(addr, Egress::default(), "/healthz", 200, T),
        Ok(())
    );
    let request = h.join().expect("server");
    assert_eq!(
        request,
        format!(
            "GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nUser-Agent: mplb-health\r\n\r\n"
        )
    );
}

#[test]
fn http_wrong_status_is_unhealthy() {
    let (addr, h) = server(Some(b"HTTP/1.1 503 Service Unavailable\r\n\r\n"), 1);
    let err = check_http(addr, Egress::default(), "/", 200, T).expect_err("503");
    assert!(err.contains("503"), "{err}");
    h.join().expect("server");
    // And an expected 503 is healthy.
    let (addr, h) = server(Some(b"HTTP/1.0 503 Service Unavailable\r\n\r\n"), 1);
    assert_eq!(check_http(addr, Egress::default(), "/", 503, T), Ok(()));
    h.join().expect("server");
}

#[test]
fn http_garbage_and_early_close_are_unhealthy() {
    let garbage: [&'static [u8]; 6] = [
        b"\xff\xfe\x00\x01garbage\n",
        b"SSH-2.0-OpenSSH_9.2p1\r\n",
        b"HTTP/1.1 2OO OK\r\n",
        b"HTTP/1.1 200",
        b"",
        &[b'x'; 2000],
    ];
    for bytes in garbage {
        let (addr, h) = server(Some(bytes), 1);
        let r = check_http(addr, Egress::default(), "/", 200, T);
        h.join().expect("server");
        if bytes == b"HTTP/1.1 200" {
            // A status line cut short by the close is still a status line.
            assert_eq!(r, Ok(()));
        } else {
            assert!(r.is_err(), "{:?} -> {r:?}", String::from_utf8_lossy(bytes));
        }
    }
}

#[test]
fn http_silence_times_out_within_the_timeout() {
    let (addr, h) = server(None, 1);
    let started = Instant::now();
    let err = check_http(addr, Egress::default(), "/", 200, T).expect_err("silent");
    let took = started.elapsed();
    assert!(err.contains("timed out"), "{err}");
    // Bounded by the timeout, with generous slack for a loaded machine.
    assert!(took < T + Duration::from_secs(3), "{took:?}");
    h.join().expect("server");
}

#[test]
fn http_bad_path_and_closed_port_are_unhealthy() {
    let (addr, h) = server(Some(b"HTTP/1.1 200 OK\r\n\r\n"), 1);
    let err = check_http(addr, Egress::default(), "/a b\r\nX: y", 200, T).expect_err("injection");
    assert!(err.contains("invalid HTTP path"), "{err}");
    // Unblock the server's accept.
    assert_eq!(check_http(addr, Egress::default(), "/", 200, T), Ok(()));
    h.join().expect("server");
    assert!(check_http(closed_port(), Egress::default(), "/", 200, T).is_err());
}

fn health(kind: HealthKind) -> HealthConfig {
    HealthConfig {
        kind,
        interval_ms: 100,
        timeout_ms: 100,
        rise: 2,
        fall: 2,
        ..HealthConfig::default()
    }
}

#[test]
fn checker_thread_reports_down_and_new_backends_up() {
    let stop = Arc::new(AtomicBool::new(false));
    // "dead": connection refused; "silent": accepts but never answers the
    // HTTP request (each check waits for its whole timeout); "alive": a
    // listener (the kernel completes the handshake from its backlog).
    let (silent_addr, _silent) = server(None, 1000);
    let alive = TcpListener::bind("127.0.0.1:0").expect("bind");
    let alive_addr = alive.local_addr().expect("addr");
    let targets = vec![
        Target {
            name: "dead".into(),
            addr: closed_port(),
            config: health(HealthKind::Tcp),
        },
        Target {
            name: "silent".into(),
            addr: silent_addr,
            config: health(HealthKind::Http),
        },
        Target {
            name: "alive".into(),
            addr: alive_addr,
            config: health(HealthKind::Tcp),
        },
    ];
    let started = Instant::now();
    let thread = spawn_health_thread(targets.clone(), Arc::clone(&stop)).expect("spawn");
    let mut down = Vec::new();
    while down.len() < 2 {
        let ev = thread
            .events()
            .recv_timeout(Duration::from_secs(10))
            .expect("two down events within 10 s");
        assert!(!ev.up, "{ev:?}");
        down.push(ev.name);
    }
    down.sort();
    assert_eq!(down, ["dead", "silent"]);
    // 2 × 100 ms plus slack for scheduling on a busy machine.
    assert!(started.elapsed() < Duration::from_secs(5));

    // Reload: add a new backend that answers. It is announced down at once,
    // then up after two successful checks; "alive" stays up (no event).
    let mut reloaded = targets;
    reloaded.push(Target {
        name: "new".into(),
        addr: alive_addr,
        config: health(HealthKind::Tcp),
    });
    thread.replace_targets(reloaded);
    let ev = thread
        .events()
        .recv_timeout(Duration::from_secs(10))
        .expect("event");
    assert_eq!((ev.name.as_str(), ev.up), ("new", false), "{ev:?}");
    let ev = thread
        .events()
        .recv_timeout(Duration::from_secs(10))
        .expect("event");
    assert_eq!((ev.name.as_str(), ev.up), ("new", true), "{ev:?}");

    stop.store(true, Ordering::Relaxed);
    let stopping = Instant::now();
    thread.join().expect("health thread");
    assert!(stopping.elapsed() < Duration::from_secs(5));
    drop(alive);
}
