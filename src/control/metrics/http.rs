//! The HTTP server for `/metrics`: one request per connection, each on its
//! own short-lived thread.
//!
//! A connection has [`REQUEST_TIMEOUT`] for its whole request head (not per
//! read) and [`WRITE_TIMEOUT`] for its whole answer. At most
//! [`MAX_CONNECTIONS`] are served at once; when that many are open, the one
//! that has been sending its request head the longest is closed to make room
//! for the new one, so slow or silent clients cannot keep an honest scraper
//! out. Only when every connection is past its request head is a new one
//! answered 503.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{CONTENT_TYPE, MetricsQuery, Unanswered};

/// Connections served at the same time (see the module's description for
/// what happens to one more).
pub const MAX_CONNECTIONS: usize = 256;

/// Time a client has to send its whole request head.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// Time a client has to read the whole answer.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// Stack of a connection thread: it parses a head and copies a page.
const CONNECTION_STACK: usize = 256 * 1024;

/// Longest request head (request line and headers) read.
const MAX_REQUEST: usize = 8192;

/// How often the accept loop looks for connections and the stop flag.
const ACCEPT_POLL: Duration = Duration::from_millis(20);

/// Serves `GET /metrics` on `listen` with the text `source` returns for
/// the request's query (the parts of the page its `scope=` parameters
/// name, of the VIPs its `vip=` parameters name: see [`MetricsQuery`]),
/// until `stop` is set (then the listener closes within ~20 ms; requests
/// in progress finish on their own threads). Other paths get 404, other
/// methods 405, malformed requests and queries 400; a `source` that names
/// no such VIP 404, and one that cannot answer 503 (a scraper then marks
/// the target down rather than reading an empty page).
/// `source` is called once per scrape, never concurrently. Returns the
/// address actually bound (port 0 in `listen` picks a free port) and the
/// server thread.
pub fn serve_metrics(
    listen: SocketAddr,
    source: impl Fn(&MetricsQuery) -> Result<String, Unanswered> + Send + 'static,
    stop: Arc<AtomicBool>,
) -> io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind(listen)?;
    let bound = listener.local_addr()?;
    listener.set_nonblocking(true)?;
    let source = Arc::new(Mutex::new(source));
    let active = Arc::new(AtomicUsize::new(0));
    let reading = Arc::new(Reading::default());
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
                if active.load(Ordering::Acquire) >= MAX_CONNECTIONS && !reading.shed_oldest() {
                    busy(stream);
                    continue;
                }
                let Ok(id) = reading.add(&stream) else {
                    continue;
                };
                active.fetch_add(1, Ordering::AcqRel);
                let source = Arc::clone(&source);
                let active_here = Arc::clone(&active);
                let reading_here = Arc::clone(&reading);
                let spawned = std::thread::Builder::new()
                    .name("mplb-metrics-conn".to_string())
                    .stack_size(CONNECTION_STACK)
                    .spawn(move || {
                        handle_connection(stream, &|| reading_here.remove(id), &|query| {
                            let f = source.lock().unwrap_or_else(|p| p.into_inner());
                            f(query)
                        });
                        reading_here.remove(id);
                        active_here.fetch_sub(1, Ordering::AcqRel);
                    });
                if spawned.is_err() {
                    // The closure (and the stream) was dropped with it.
                    reading.remove(id);
                    active.fetch_sub(1, Ordering::AcqRel);
                }
            }
        })
        .map(|handle| (bound, handle))
}

/// The connections still sending their request head, oldest first (handles
/// to them, to close one that must make room).
#[derive(Default)]
struct Reading {
    inner: Mutex<(u64, BTreeMap<u64, TcpStream>)>,
}

impl Reading {
    fn add(&self, stream: &TcpStream) -> io::Result<u64> {
        let handle = stream.try_clone()?;
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let id = inner.0;
        inner.0 += 1;
        inner.1.insert(id, handle);
        Ok(id)
    }

    fn remove(&self, id: u64) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.1.remove(&id);
    }

    /// Closes the connection that has been sending its head the longest:
    /// its thread sees the end of the stream and ends. False when there is
    /// none.
    fn shed_oldest(&self) -> bool {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        match inner.1.pop_first() {
            Some((_, stream)) => {
                let _ = stream.shutdown(Shutdown::Both);
                true
            }
            None => false,
        }
    }
}

fn busy(mut stream: TcpStream) {
    write_by(
        &mut stream,
        &response(
            "503 Service Unavailable",
            &[],
            b"too many connections\n",
            true,
        ),
        Instant::now() + Duration::from_millis(100),
    );
}

/// Reads one request from `stream` and answers it; `head_read` is called
/// once the request head is in (or did not come).
fn handle_connection(
    mut stream: TcpStream,
    head_read: &dyn Fn(),
    source: &dyn Fn(&MetricsQuery) -> Result<String, Unanswered>,
) {
    let head = read_head(&mut stream, Instant::now() + REQUEST_TIMEOUT);
    head_read();
    let head = match head {
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
        Some((method @ ("GET" | "HEAD"), "/metrics", query)) => match MetricsQuery::parse(query) {
            Ok(query) => {
                let (status, body) = match source(&query) {
                    Ok(page) => ("200 OK", page),
                    Err(Unanswered::NoSuchVip(e)) => ("404 Not Found", format!("{e}\n")),
                    Err(Unanswered::Unavailable(e)) => {
                        ("503 Service Unavailable", format!("{e}\n"))
                    }
                };
                answer(&mut stream, status, &[], body.as_bytes(), method == "GET");
            }
            Err(e) => answer(
                &mut stream,
                "400 Bad Request",
                &[],
                format!("{e}\n").as_bytes(),
                true,
            ),
        },
        Some(("GET" | "HEAD", _, _)) => answer(
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
    write_by(
        stream,
        &response(status, headers, body, with_body),
        Instant::now() + WRITE_TIMEOUT,
    );
}

/// Writes `bytes`, giving up at `deadline` (a client that does not read
/// holds only its own thread, and not for longer).
fn write_by(stream: &mut TcpStream, mut bytes: &[u8], deadline: Instant) {
    while !bytes.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_write_timeout(Some(left)).is_err() {
            return;
        }
        match stream.write(bytes) {
            Ok(0) => return,
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
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

/// Method, path and query (after `?`, if any) of
/// `METHOD SP TARGET SP HTTP/1.x`.
fn parse_request_line(head: &[u8]) -> Option<(&str, &str, Option<&str>)> {
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
    match target.split_once('?') {
        Some((path, query)) => Some((method, path, Some(query))),
        None => Some((method, target, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn any_request_bytes_parse_without_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            if let Some((method, path, _)) = parse_request_line(&bytes) {
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
            Some(("GET", "/metrics", None))
        );
        assert_eq!(
            parse_request_line(b"HEAD /metrics?x=1 HTTP/1.0\n\n"),
            Some(("HEAD", "/metrics", Some("x=1")))
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
