//! The control socket: a Unix socket (mode 0600) taking one request line per
//! connection and answering `ok` or `error` on the first line, then the body.
//! Requests are handed to the management thread, which owns all state.
//!
//! One thread accepts; each connection is served on its own short-lived
//! thread, so a client that connects and sends nothing, or sends slowly,
//! holds up no one else. A connection has [`REQUEST_DEADLINE`] for its whole
//! request line and [`WRITE_TIMEOUT`] to take its reply; at most
//! [`MAX_CLIENTS`] are served at once, and one more is answered
//! `error` (too many connections) at once and closed. A change (`reload`,
//! `backend ...`) waits for the management thread's real answer for up to
//! [`CHANGE_WAIT`]; past that the reply says it is still in progress and how
//! to check, never that it failed.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam::channel::{Receiver, RecvTimeoutError, SendTimeoutError, Sender, bounded};

use super::manager::Request;

/// The longest request line accepted.
const MAX_REQUEST: usize = 4096;
/// Connections served at the same time; one more is answered `error` at
/// once and closed.
pub const MAX_CLIENTS: usize = 512;
/// Time a client has to send its whole request line (not per read).
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(2);
/// Time a client has to take its whole reply.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a request waits for room in the management thread's queue;
/// past that nothing was done and the client is told so.
const QUEUE_WAIT: Duration = Duration::from_secs(5);
/// How long a query (`stats`, `lookup`, a scrape) waits for its answer.
pub const QUERY_WAIT: Duration = Duration::from_secs(10);
/// How long a change (`reload`, `backend ...`) waits for its answer: a
/// reload of a large config takes seconds.
pub const CHANGE_WAIT: Duration = Duration::from_secs(120);
/// Stack of a connection thread: it parses a line and waits on a channel.
const CONNECTION_STACK: usize = 256 * 1024;
/// How often the accept loop looks for connections and the stop flag.
const ACCEPT_POLL: Duration = Duration::from_millis(20);

/// A request with the way back to its client.
pub struct Pending {
    pub request: Request,
    pub reply: Sender<Result<String, String>>,
}

/// The channel requests travel to the management thread on.
pub fn channel() -> (Sender<Pending>, Receiver<Pending>) {
    bounded(16)
}

/// Binds `path` (replacing a stale socket), restricts it to its owner and
/// serves it until `stop` is set, sending requests on `tx`. The returned
/// thread is the accept loop; it removes the socket when it stops.
/// Connections in progress finish on their own threads.
pub fn serve(
    path: &Path,
    tx: Sender<Pending>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    if path.exists() {
        // Refuse to steal a live instance's socket.
        if UnixStream::connect(path).is_ok() {
            return Err(std::io::Error::new(
                ErrorKind::AddrInUse,
                format!("{} is in use by a running mplb", path.display()),
            ));
        }
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    listener.set_nonblocking(true)?;
    let owned = path.to_path_buf();
    let active = Arc::new(AtomicUsize::new(0));
    let handle = std::thread::Builder::new()
        .name("mplb-control".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => dispatch(stream, &tx, &active),
                    // WouldBlock, or a transient error (e.g. out of file
                    // descriptors): try again shortly.
                    Err(_) => std::thread::sleep(ACCEPT_POLL),
                }
            }
            let _ = std::fs::remove_file(&owned);
        })?;
    Ok(handle)
}

/// A place among the [`MAX_CLIENTS`] connections served; given back on drop.
struct Slot(Arc<AtomicUsize>);

impl Slot {
    fn take(active: &Arc<AtomicUsize>) -> Option<Slot> {
        if active.fetch_add(1, Ordering::AcqRel) >= MAX_CLIENTS {
            active.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Slot(Arc::clone(active)))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Serves `stream` on a thread of its own, or refuses it when
/// [`MAX_CLIENTS`] are being served.
fn dispatch(stream: UnixStream, tx: &Sender<Pending>, active: &Arc<AtomicUsize>) {
    if stream.set_nonblocking(false).is_err() {
        return;
    }
    let Some(slot) = Slot::take(active) else {
        refuse(stream);
        return;
    };
    let tx = tx.clone();
    // On a failed spawn the closure, with the stream and the slot, is
    // dropped: the client sees the connection closed.
    let _ = std::thread::Builder::new()
        .name("mplb-control-conn".into())
        .stack_size(CONNECTION_STACK)
        .spawn(move || {
            serve_one(stream, &tx);
            drop(slot);
        });
}

fn refuse(stream: UnixStream) {
    let text = format!(
        "error\ncontrol socket busy: {MAX_CLIENTS} connections are being served; try again\n"
    );
    write_reply(stream, &text, Instant::now() + Duration::from_millis(100));
}

fn serve_one(stream: UnixStream, tx: &Sender<Pending>) {
    let answer = read_request(&stream, Instant::now() + REQUEST_DEADLINE)
        .and_then(|line| Request::parse(&line))
        .and_then(|request| ask(tx, request));
    let text = match answer {
        Ok(body) => format!("ok\n{body}"),
        Err(e) => format!("error\n{e}\n"),
    };
    write_reply(stream, &text, Instant::now() + WRITE_TIMEOUT);
}

/// Reads one request line (without its newline; end of stream also ends
/// it), all of it by `deadline`.
fn read_request(mut stream: &UnixStream, deadline: Instant) -> Result<String, String> {
    let mut line = Vec::with_capacity(64);
    let mut chunk = [0u8; 512];
    loop {
        if let Some(end) = line.iter().position(|&b| b == b'\n') {
            line.truncate(end);
            break;
        }
        if line.len() > MAX_REQUEST {
            return Err(format!("request longer than {MAX_REQUEST} bytes"));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return Err(too_slow());
        }
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => line.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(too_slow());
            }
            Err(e) => return Err(format!("reading request: {e}")),
        }
    }
    String::from_utf8(line).map_err(|_| "request is not UTF-8".to_string())
}

fn too_slow() -> String {
    format!(
        "no complete request line within {} s; send one line, e.g. `stats`",
        REQUEST_DEADLINE.as_secs()
    )
}

/// Writes `text` to the client, giving up at `deadline` (a client that does
/// not read its reply holds only its own thread).
fn write_reply(mut stream: UnixStream, text: &str, deadline: Instant) {
    let mut rest = text.as_bytes();
    while !rest.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_write_timeout(Some(left)).is_err() {
            return;
        }
        match stream.write(rest) {
            Ok(0) => return,
            Ok(n) => rest = &rest[n..],
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// Whether `request` changes state (and may take long: a reload).
fn is_change(request: &Request) -> bool {
    matches!(
        request,
        Request::Reload
            | Request::Drain(_)
            | Request::Disable(_)
            | Request::Enable(_)
            | Request::DrainInstance { .. }
    )
}

/// How long `drain wait` may wait: the longest drain, and a minute.
pub const DRAIN_WAIT: Duration = Duration::from_secs(crate::config::MAX_DRAIN_DEADLINE_SECS + 60);

/// How long the answer to `request` is waited for, once it is queued.
pub fn answer_within(request: &Request) -> Duration {
    if matches!(request, Request::WaitDrained) {
        DRAIN_WAIT
    } else if is_change(request) {
        CHANGE_WAIT
    } else {
        QUERY_WAIT
    }
}

/// Hands a request to the management thread and waits for its answer, for
/// up to [`answer_within`]. Every error says whether the request was carried
/// out, will be, or was not.
pub fn ask(tx: &Sender<Pending>, request: Request) -> Result<String, String> {
    answer_of(tx, request)?
}

/// [`ask`], telling the management thread's answer (`Ok`: its page, or its
/// refusal of the request) from no answer (`Err`: busy, stopping).
pub fn answer_of(tx: &Sender<Pending>, request: Request) -> Result<Result<String, String>, String> {
    let wait = answer_within(&request);
    ask_within(tx, request, wait)
}

fn ask_within(
    tx: &Sender<Pending>,
    request: Request,
    wait: Duration,
) -> Result<Result<String, String>, String> {
    let (reply, back) = bounded(1);
    let pending = Pending {
        request: request.clone(),
        reply,
    };
    match tx.send_timeout(pending, QUEUE_WAIT) {
        Ok(()) => {}
        Err(SendTimeoutError::Timeout(_)) => {
            return Err(format!(
                "management thread busy: its queue stayed full for {} s; nothing was done, try again",
                QUEUE_WAIT.as_secs()
            ));
        }
        Err(SendTimeoutError::Disconnected(_)) => {
            return Err("mplb is stopping; nothing was done".to_string());
        }
    }
    match back.recv_timeout(wait) {
        Ok(answer) => Ok(answer),
        Err(RecvTimeoutError::Disconnected) => {
            Err("mplb stopped before answering; the request was not carried out".to_string())
        }
        Err(RecvTimeoutError::Timeout) => Err(still_in_progress(&request, wait)),
    }
}

/// The reply to a request queued on the management thread whose answer did
/// not come within `waited`: it is still carried out, and how to check.
fn still_in_progress(request: &Request, waited: Duration) -> String {
    let secs = waited.as_secs();
    match request {
        Request::Reload => format!(
            "reload still in progress after {secs} s: the management thread is applying it \
             (or finishing earlier work) and will apply or reject it, logging event=reload; \
             `mplb stats` shows the snapshot generation in use, which goes up when it is applied"
        ),
        Request::DrainInstance { .. } => format!(
            "drain still queued after {secs} s behind earlier work: it will be carried out, \
             logging event=drain_started; check with `mplb stats`"
        ),
        Request::Drain(name) | Request::Disable(name) | Request::Enable(name) => format!(
            "backend {name}: still queued after {secs} s behind earlier work (a large reload?); \
             it will be carried out, logging event=backend_override; check with `mplb stats`"
        ),
        _ => format!(
            "no answer within {secs} s: the management thread is busy (a large reload?); \
             nothing changes, try again"
        ),
    }
}

/// The client side (`mplb stats` etc.): sends `request`, returns the body,
/// or the server's error. Waits as long as the server may take for this
/// request, and a little more.
pub fn call(path: &Path, request: &str) -> Result<String, String> {
    let mut stream = UnixStream::connect(path).map_err(|e| {
        format!(
            "cannot reach mplb at {}: {e} (is it running? is --socket right?)",
            path.display()
        )
    })?;
    let wait = Request::parse(request).map_or(QUERY_WAIT, |r| answer_within(&r));
    stream
        .set_read_timeout(Some(QUEUE_WAIT + wait + Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(REQUEST_DEADLINE))
        .map_err(|e| e.to_string())?;
    // A server that refuses the connection may close it before reading the
    // request: its reply says why, so read it before reporting a failed send.
    let sent = stream.write_all(format!("{}\n", request.trim()).as_bytes());
    let mut reply = String::new();
    let read = stream.read_to_string(&mut reply);
    match (reply.split_once('\n'), sent, read) {
        (Some(("ok", body)), _, _) => Ok(body.to_string()),
        (Some(("error", body)), _, _) => Err(body.trim_end().to_string()),
        (_, Err(e), _) => Err(format!("sending request: {e}")),
        (_, _, Err(e)) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            Err(format!(
                "no reply from mplb at {} within {} s",
                path.display(),
                (QUEUE_WAIT + wait).as_secs() + 5
            ))
        }
        (_, _, Err(e)) => Err(format!("reading reply: {e}")),
        _ => Err(format!("unexpected reply: {reply:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_through_the_socket_with_owner_only_mode() {
        let path =
            std::env::temp_dir().join(format!("mplb-sock-test-{}/ctl.sock", std::process::id()));
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = channel();
        let handle = serve(&path, tx.clone(), Arc::clone(&stop)).expect("serve");
        let mode = std::fs::metadata(&path)
            .expect("socket exists")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // A second instance must not take the socket over.
        assert!(serve(&path, tx, Arc::clone(&stop)).is_err());
        let answerer = std::thread::spawn(move || {
            for _ in 0..2 {
                let p = rx
                    .recv_timeout(Duration::from_secs(10))
                    .expect("request arrives");
                let body = match p.request {
                    Request::Stats { json, .. } => Ok(format!("stats json={json}\n")),
                    other => Err(format!("not in this test: {other:?}")),
                };
                let _ = p.reply.send(body);
            }
        });
        assert_eq!(
            call(&path, "stats json"),
            Ok("stats json=true\n".to_string())
        );
        assert_eq!(
            call(&path, "reload"),
            Err("not in this test: Reload".to_string())
        );
        assert!(
            call(&path, "frobnicate")
                .expect_err("bad request")
                .contains("unknown request")
        );
        answerer.join().expect("answerer");
        stop.store(true, Ordering::SeqCst);
        handle.join().expect("server stops");
        assert!(!path.exists(), "socket removed on stop");
    }

    #[test]
    fn a_late_answer_is_reported_as_what_it_is() {
        let (tx, rx) = channel();
        // Queued, not answered in time: a reload is still going on and will
        // be applied or rejected; a query changed nothing.
        let e = ask_within(&tx, Request::Reload, Duration::from_millis(50)).expect_err("late");
        assert!(
            e.contains("reload still in progress") && e.contains("generation"),
            "{e}"
        );
        let e = ask_within(&tx, Request::Drain("a".into()), Duration::from_millis(50))
            .expect_err("late");
        assert!(e.contains("will be carried out"), "{e}");
        let e = ask_within(
            &tx,
            Request::Stats {
                json: false,
                backends: crate::control::manager::Backends::Every,
            },
            Duration::from_millis(50),
        )
        .expect_err("late");
        assert!(e.contains("nothing changes"), "{e}");
        assert_eq!(rx.len(), 3, "all three reached the management thread");
        // An answer that comes in time, however slowly, is the answer.
        let (tx, rx) = channel();
        let answerer = std::thread::spawn(move || {
            let p = rx.recv().expect("request");
            std::thread::sleep(Duration::from_millis(200));
            let _ = p.reply.send(Ok("reloaded\n".into()));
        });
        assert_eq!(
            ask_within(&tx, Request::Reload, Duration::from_secs(10)),
            Ok(Ok("reloaded\n".to_string()))
        );
        answerer.join().expect("answerer");
        let (tx, rx) = channel();
        drop(rx);
        let e = ask(&tx, Request::Reload).expect_err("nobody to answer");
        assert!(e.contains("nothing was done"), "{e}");
        assert!(answer_within(&Request::Reload) > QUERY_WAIT);
    }

    #[test]
    fn silent_clients_hold_up_no_one_and_are_told_why_they_are_closed() {
        let path = std::env::temp_dir().join(format!(
            "mplb-sock-idle-test-{}/ctl.sock",
            std::process::id()
        ));
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = channel();
        let handle = serve(&path, tx, Arc::clone(&stop)).expect("serve");
        let answerer = std::thread::spawn(move || {
            while let Ok(p) = rx.recv_timeout(Duration::from_secs(10)) {
                let _ = p.reply.send(Ok("stats\n".into()));
            }
        });
        let silent: Vec<UnixStream> = (0..50)
            .map(|_| UnixStream::connect(&path).expect("connect"))
            .collect();
        let t = Instant::now();
        for _ in 0..10 {
            assert_eq!(call(&path, "stats"), Ok("stats\n".to_string()));
        }
        assert!(
            t.elapsed() < REQUEST_DEADLINE,
            "answered beside silent clients"
        );
        let mut reply = String::new();
        let mut first = &silent[0];
        first
            .set_read_timeout(Some(REQUEST_DEADLINE * 5))
            .expect("timeout");
        first.read_to_string(&mut reply).expect("reply, then close");
        assert!(
            reply.starts_with("error\nno complete request line"),
            "{reply:?}"
        );
        stop.store(true, Ordering::SeqCst);
        handle.join().expect("server stops");
        answerer.join().expect("answerer");
    }
}
