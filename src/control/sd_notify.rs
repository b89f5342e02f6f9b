//! Readiness for a service manager: systemd's `sd_notify` protocol, spoken
//! directly (one datagram per state change to the socket named by
//! `NOTIFY_SOCKET`; a leading `@` names an abstract socket), so mplb needs
//! no libsystemd. Without `NOTIFY_SOCKET` (not run by systemd, or not
//! `Type=notify`) every call does nothing.
//!
//! mplb sends `READY=1` once its ports are started and its workers are
//! forwarding (so `systemctl start` returns, and units ordered after mplb
//! start, only then), `RELOADING=1` … `READY=1` around each reload, and
//! `STOPPING=1` when a stop begins.

use std::ffi::OsStr;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::net::{SocketAddr, UnixDatagram};

use super::log;

/// Where state changes go; `None` inside when nobody listens.
pub struct Notifier {
    target: Option<(UnixDatagram, SocketAddr)>,
}

impl Notifier {
    /// From `NOTIFY_SOCKET`. A socket that cannot be used is logged once
    /// and ignored: readiness reporting never stops forwarding.
    pub fn from_env() -> Notifier {
        let target = std::env::var_os("NOTIFY_SOCKET").and_then(|name| {
            match connect(name.as_encoded_bytes()) {
                Ok(t) => Some(t),
                Err(e) => {
                    log::event(
                        "warn",
                        "sd_notify",
                        &[
                            ("socket", &name.to_string_lossy()),
                            ("error", &e.to_string()),
                        ],
                    );
                    None
                }
            }
        });
        Notifier { target }
    }

    /// Whether a service manager listens.
    pub fn enabled(&self) -> bool {
        self.target.is_some()
    }

    /// Sends `state` (newline-separated `KEY=value` lines, e.g.
    /// `READY=1\nSTATUS=forwarding`). A failed send is logged, not fatal.
    pub fn send(&self, state: &str) {
        let Some((socket, addr)) = &self.target else {
            return;
        };
        if let Err(e) = socket.send_to_addr(state.as_bytes(), addr) {
            log::event(
                "warn",
                "sd_notify",
                &[("state", &state.replace('\n', " ")), ("error", &e)],
            );
        }
    }
}

/// An unbound datagram socket and the manager's address.
fn connect(name: &[u8]) -> std::io::Result<(UnixDatagram, SocketAddr)> {
    let addr = match name.split_first() {
        Some((b'@', abstract_name)) => SocketAddr::from_abstract_name(abstract_name)?,
        Some((b'/', _)) => SocketAddr::from_pathname(OsStr::from_bytes(name))?,
        _ => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "NOTIFY_SOCKET is neither an absolute path nor @abstract",
            ));
        }
    };
    Ok((UnixDatagram::unbound()?, addr))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn receive(socket: &UnixDatagram) -> String {
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut buf = [0u8; 256];
        let n = socket.recv(&mut buf).expect("a datagram");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn states_reach_a_path_and_an_abstract_socket() {
        let path = std::env::temp_dir().join(format!("mplb-notify-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let listener = UnixDatagram::bind(&path).expect("bind");
        let (s, a) = connect(path.as_os_str().as_bytes()).expect("path target");
        let n = Notifier {
            target: Some((s, a)),
        };
        n.send("READY=1\nSTATUS=forwarding");
        assert_eq!(receive(&listener), "READY=1\nSTATUS=forwarding");
        let _ = std::fs::remove_file(&path);

        let name = format!("mplb-notify-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).expect("name");
        let listener = UnixDatagram::bind_addr(&addr).expect("bind abstract");
        let (s, a) = connect(format!("@{name}").as_bytes()).expect("abstract target");
        Notifier {
            target: Some((s, a)),
        }
        .send("STOPPING=1");
        assert_eq!(receive(&listener), "STOPPING=1");
    }

    #[test]
    fn a_relative_name_is_refused_and_no_target_sends_nothing() {
        assert!(connect(b"relative.sock").is_err());
        assert!(connect(b"").is_err());
        let n = Notifier { target: None };
        assert!(!n.enabled());
        n.send("READY=1");
    }
}
