//! The control socket: a Unix socket (mode 0600) taking one request line per
//! connection and answering `ok` or `error` on the first line, then the body.
//! Requests are handed to the management thread, which owns all state.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam::channel::{Receiver, Sender, bounded};

use super::manager::Request;

/// The longest request line accepted.
const MAX_REQUEST: u64 = 4096;
/// How long a client may take to send its request, and how long it waits
/// for the management thread to answer.
const TIMEOUT: Duration = Duration::from_secs(5);

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
/// serves it on a thread until `stop` is set, sending requests on `tx`.
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
                std::io::ErrorKind::AddrInUse,
                format!("{} is in use by a running mplb", path.display()),
            ));
        }
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    listener.set_nonblocking(true)?;
    let owned = path.to_path_buf();
    let handle = std::thread::Builder::new()
        .name("mplb-control".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => serve_one(stream, &tx),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
            let _ = std::fs::remove_file(&owned);
        })?;
    Ok(handle)
}

fn serve_one(stream: UnixStream, tx: &Sender<Pending>) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(TIMEOUT));
    let _ = stream.set_write_timeout(Some(TIMEOUT));
    let mut line = String::new();
    let read = BufReader::new((&stream).take(MAX_REQUEST)).read_line(&mut line);
    let answer = match read {
        Err(e) => Err(format!("reading request: {e}")),
        Ok(_) => Request::parse(&line).and_then(|request| ask(tx, request)),
    };
    let text = match answer {
        Ok(body) => format!("ok\n{body}"),
        Err(e) => format!("error\n{e}\n"),
    };
    let mut stream = stream;
    let _ = stream.write_all(text.as_bytes());
}

/// Hands a request to the management thread and waits for its answer.
pub fn ask(tx: &Sender<Pending>, request: Request) -> Result<String, String> {
    let (reply, back) = bounded(1);
    tx.send_timeout(Pending { request, reply }, TIMEOUT)
        .map_err(|_| "management thread busy".to_string())?;
    back.recv_timeout(TIMEOUT)
        .unwrap_or_else(|_| Err("management thread did not answer".to_string()))
}

/// The client side (`mplb stats` etc.): sends `request`, returns the body,
/// or the server's error.
pub fn call(path: &Path, request: &str) -> Result<String, String> {
    let mut stream = UnixStream::connect(path).map_err(|e| {
        format!(
            "cannot reach mplb at {}: {e} (is it running? is --socket right?)",
            path.display()
        )
    })?;
    stream
        .set_read_timeout(Some(TIMEOUT * 2))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(format!("{}\n", request.trim()).as_bytes())
        .map_err(|e| format!("sending request: {e}"))?;
    let mut reply = String::new();
    stream
        .read_to_string(&mut reply)
        .map_err(|e| format!("reading reply: {e}"))?;
    match reply.split_once('\n') {
        Some(("ok", body)) => Ok(body.to_string()),
        Some(("error", body)) => Err(body.trim_end().to_string()),
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
                    Request::Stats { json } => Ok(format!("stats json={json}\n")),
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
}
