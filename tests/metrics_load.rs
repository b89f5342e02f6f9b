//! The metrics endpoint under slow and many clients: honest scrapers are
//! served while slowloris clients hold connections open, a request head has
//! one deadline as a whole, and a full house of silent connections does not
//! keep a scraper out.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mplb::control::metrics::{MAX_CONNECTIONS, REQUEST_TIMEOUT, serve_metrics};

const PAGE: &str = "# TYPE mplb_up gauge\nmplb_up 1\n";

fn start() -> (SocketAddr, Arc<AtomicBool>, JoinHandle<()>) {
    let stop = Arc::new(AtomicBool::new(false));
    let (addr, handle) = serve_metrics(
        "127.0.0.1:0".parse().expect("address"),
        |_: &_| Ok(PAGE.to_string()),
        Arc::clone(&stop),
    )
    .expect("serve");
    (addr, stop, handle)
}

/// One scrape; its status line (or what went wrong).
fn scrape(addr: SocketAddr) -> String {
    let go = || -> std::io::Result<String> {
        let mut s = TcpStream::connect(addr)?;
        s.set_read_timeout(Some(Duration::from_secs(20)))?;
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")?;
        let mut answer = Vec::new();
        s.read_to_end(&mut answer)?;
        let answer = String::from_utf8_lossy(&answer).into_owned();
        Ok(answer.lines().next().unwrap_or("").to_string())
    };
    go().unwrap_or_else(|e| format!("failed: {e}"))
}

/// A slowloris client: starts a request head and sends one more byte of it
/// every 200 ms until `limit` has passed or the server closes the
/// connection. Returns how long the server let it go on.
fn slowloris(addr: SocketAddr, limit: Duration) -> JoinHandle<Duration> {
    std::thread::spawn(move || {
        let started = Instant::now();
        let Ok(mut s) = TcpStream::connect(addr) else {
            return started.elapsed();
        };
        if s.write_all(b"GET /metrics HTTP/1.1\r\nX-Slow: ").is_err() {
            return started.elapsed();
        }
        s.set_nonblocking(true).expect("nonblocking");
        while started.elapsed() < limit {
            std::thread::sleep(Duration::from_millis(200));
            let mut b = [0u8; 256];
            match s.read(&mut b) {
                // The server closed (or answered and closed).
                Ok(_) => break,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => break,
            }
            if s.write_all(b"a").is_err() {
                break;
            }
        }
        started.elapsed()
    })
}

#[test]
fn hundred_concurrent_scrapes_all_get_200_beside_slowloris_clients() {
    let (addr, stop, handle) = start();
    let slow: Vec<_> = (0..24)
        .map(|_| slowloris(addr, REQUEST_TIMEOUT * 5))
        .collect();
    // Let the slow clients take their connections first.
    std::thread::sleep(Duration::from_millis(300));
    let scrapers: Vec<_> = (0..100)
        .map(|_| std::thread::spawn(move || scrape(addr)))
        .collect();
    let statuses: Vec<String> = scrapers
        .into_iter()
        .map(|t| t.join().expect("scraper"))
        .collect();
    let not_ok: Vec<&String> = statuses
        .iter()
        .filter(|s| s.as_str() != "HTTP/1.1 200 OK")
        .collect();
    assert!(
        not_ok.is_empty(),
        "{} of 100 scrapes not 200: {not_ok:?}",
        not_ok.len()
    );
    for t in slow {
        t.join().expect("slow client");
    }
    stop.store(true, Ordering::SeqCst);
    handle.join().expect("server thread");
}

#[test]
fn a_head_sent_a_byte_at_a_time_is_cut_off_at_one_deadline() {
    let (addr, stop, handle) = start();
    // Each byte comes well within any per-read timeout; the head as a whole
    // never completes.
    let lasted = slowloris(addr, REQUEST_TIMEOUT * 5)
        .join()
        .expect("slow client");
    assert!(
        lasted < REQUEST_TIMEOUT * 3,
        "closed after {lasted:?}; the request head deadline is {REQUEST_TIMEOUT:?}"
    );
    stop.store(true, Ordering::SeqCst);
    handle.join().expect("server thread");
}

#[test]
fn a_full_house_of_silent_connections_does_not_keep_a_scraper_out() {
    let (addr, stop, handle) = start();
    let silent: Vec<TcpStream> = (0..MAX_CONNECTIONS + 8)
        .map(|_| TcpStream::connect(addr).expect("connect"))
        .collect();
    for _ in 0..3 {
        assert_eq!(scrape(addr), "HTTP/1.1 200 OK");
    }
    drop(silent);
    stop.store(true, Ordering::SeqCst);
    handle.join().expect("server thread");
}
