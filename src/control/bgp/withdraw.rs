//! `mplb withdraw`: every VIP withdrawn from BIRD without a running mplb.
//!
//! A running mplb withdraws its VIPs itself when it stops. One that was
//! killed, crashed or ran out of memory cannot, and BIRD keeps announcing
//! what the routes file last said. Where BIRD's sessions share the data
//! port's fate (over the exception path) they die with mplb and the routers
//! notice; over a separate management NIC they do not, and the VIPs would
//! go on attracting traffic into a dead instance. systemd runs this after
//! every exit of the service (`ExecStopPost`), so the routes go either way.

use std::collections::BTreeSet;
use std::io::ErrorKind;
use std::os::unix::net::UnixStream;

use super::announcer::configure;
use super::routes;
use crate::config::BgpConfig;

/// What [`withdraw_all`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Withdrawn {
    /// The routes file is empty and BIRD re-read it.
    Told,
    /// The routes file is empty; nothing listens on BIRD's control socket
    /// (not running), so it announces nothing when it starts.
    SpeakerAbsent,
}

/// Empties the routes file and has BIRD re-read it. An error if the file
/// cannot be written, or BIRD's socket exists but BIRD does not accept the
/// `configure` (it may still be announcing).
pub fn withdraw_all(config: &BgpConfig) -> Result<Withdrawn, String> {
    let text = routes::render(&BTreeSet::new());
    routes::write_atomically(&config.routes_file, &text)
        .map_err(|e| format!("writing {}: {e}", config.routes_file.display()))?;
    // No socket, or one nobody listens on (BIRD killed): no BIRD to tell.
    if let Err(e) = UnixStream::connect(&config.control_socket) {
        if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::ConnectionRefused) {
            return Ok(Withdrawn::SpeakerAbsent);
        }
    }
    configure(&config.control_socket)
        .map(|()| Withdrawn::Told)
        .map_err(|(e, _)| e)
}
