//! BIRD 2's control socket, as `birdc` speaks it: on connect BIRD sends a
//! greeting (`0001 BIRD 2.0.12 ready.`); each command line is answered by
//! reply lines `NNNN-text` (more follow), ` text` (continues the previous
//! code) and one last `NNNN text`. Codes 0xxx end a command (0000: end of
//! a table, 0003 reconfigured, 0004 reconfiguration in progress, 0013
//! daemon up), 1xxx/2xxx carry data, 8xxx (runtime) and 9xxx (parse) are
//! errors.
//!
//! Every exchange is bounded by one deadline, so a BIRD that hangs holds
//! the management thread for at most [`EXCHANGE_TIMEOUT`].

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// The longest a connection and one command may take together.
pub const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(1);
/// The longest reply read: `show protocols` of a large router is far less.
const MAX_REPLY: usize = 1 << 20;

/// One reply line: its code (that of the line it continues, for ` text`)
/// and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub code: u16,
    pub text: String,
}

/// A complete reply: its lines, the last one ending it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub lines: Vec<Line>,
}

impl Reply {
    /// The code of the last line.
    pub fn code(&self) -> u16 {
        self.lines.last().map_or(0, |l| l.code)
    }

    /// An 8xxx or 9xxx code: the command failed; the text says why.
    pub fn error(&self) -> Option<String> {
        let last = self.lines.last()?;
        (last.code >= 8000).then(|| format!("{} {}", last.code, last.text.trim()))
    }
}

/// Parses `text` as one reply. `Ok(None)`: not complete yet (no final
/// `NNNN text` line); `Err`: not BIRD's protocol.
pub fn parse_reply(text: &str) -> Result<Option<Reply>, String> {
    let mut lines = Vec::new();
    let mut code = None;
    for raw in text.split_inclusive('\n') {
        let Some(line) = raw.strip_suffix('\n') else {
            return Ok(None);
        };
        if let Some(rest) = line.strip_prefix(' ') {
            let c = code.ok_or_else(|| format!("continuation before any code: {line:?}"))?;
            lines.push(Line {
                code: c,
                text: rest.to_string(),
            });
            continue;
        }
        let digits = line
            .get(..4)
            .filter(|d| d.bytes().all(|b| b.is_ascii_digit()));
        let Some(digits) = digits else {
            return Err(format!("not a BIRD reply line: {line:?}"));
        };
        // A bare code ends the reply like `NNNN ` does.
        let sep = line.as_bytes().get(4).copied().unwrap_or(b' ');
        let c: u16 = digits
            .parse()
            .map_err(|_| format!("bad code in {line:?}"))?;
        let text = line.get(5..).unwrap_or("").to_string();
        lines.push(Line { code: c, text });
        code = Some(c);
        match sep {
            b' ' => return Ok(Some(Reply { lines })),
            b'-' => {}
            _ => return Err(format!("not a BIRD reply line: {line:?}")),
        }
    }
    Ok(None)
}

/// One protocol of `show protocols`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protocol {
    pub name: String,
    /// `BGP`, `Static`, `BFD`, ...
    pub proto: String,
    /// `up`, `start`, `down`, ...
    pub state: String,
    /// The Info column: for BGP the session state (`Established`,
    /// `Active`, `Connect`, ...) and perhaps why (`Socket: Connection refused`).
    pub info: String,
}

impl Protocol {
    /// A BGP protocol whose session is established.
    pub fn established(&self) -> bool {
        self.info.split_whitespace().next() == Some("Established")
    }
}

/// The protocols of a `show protocols` reply (code 1002 lines; 2002 is the
/// header). Columns: name, proto, table, state, since (one word with the
/// default time format, or date and time), info.
pub fn protocols(reply: &Reply) -> Vec<Protocol> {
    reply
        .lines
        .iter()
        .filter(|l| l.code == 1002)
        .filter_map(|l| {
            let words: Vec<&str> = l.text.split_whitespace().collect();
            let (name, proto, state) = (words.first()?, words.get(1)?, words.get(3)?);
            // Info follows the time of the last change: skip the time
            // (and a date before it).
            let mut rest = words.get(4..).unwrap_or(&[]);
            if rest.first().is_some_and(|w| is_date(w)) {
                rest = rest.get(1..).unwrap_or(&[]);
            }
            let info = rest.get(1..).unwrap_or(&[]).join(" ");
            Some(Protocol {
                name: name.to_string(),
                proto: proto.to_string(),
                state: state.to_string(),
                info,
            })
        })
        .collect()
}

fn is_date(w: &str) -> bool {
    w.len() == 10 && w.as_bytes().get(4) == Some(&b'-') && w.as_bytes().get(7) == Some(&b'-')
}

/// A connection to BIRD's control socket, greeting read.
pub struct Connection {
    stream: UnixStream,
    deadline: Instant,
}

impl Connection {
    /// Connects to `path` and reads the greeting; everything done on this
    /// connection must end within [`EXCHANGE_TIMEOUT`] from now.
    pub fn open(path: &Path) -> Result<Connection, String> {
        let deadline = Instant::now() + EXCHANGE_TIMEOUT;
        let stream = UnixStream::connect(path)
            .map_err(|e| format!("cannot connect to BIRD at {}: {e}", path.display()))?;
        let mut c = Connection { stream, deadline };
        let greeting = c.read_reply()?;
        if greeting.code() != 1 {
            return Err(format!("unexpected greeting from BIRD: {greeting:?}"));
        }
        Ok(c)
    }

    /// Sends `command` and reads its whole reply (errors included: see
    /// [`Reply::error`]).
    pub fn command(&mut self, command: &str) -> Result<Reply, String> {
        let left = self.left()?;
        self.stream
            .set_write_timeout(Some(left))
            .map_err(|e| e.to_string())?;
        self.stream
            .write_all(format!("{command}\n").as_bytes())
            .map_err(|e| format!("sending `{command}` to BIRD: {e}"))?;
        self.read_reply().map_err(|e| format!("`{command}`: {e}"))
    }

    fn left(&self) -> Result<Duration, String> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!(
                "BIRD did not answer within {} ms",
                EXCHANGE_TIMEOUT.as_millis()
            ));
        }
        Ok(left)
    }

    fn read_reply(&mut self) -> Result<Reply, String> {
        let mut bytes = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let text = String::from_utf8_lossy(&bytes);
            if let Some(reply) = parse_reply(&text)? {
                return Ok(reply);
            }
            if bytes.len() > MAX_REPLY {
                return Err(format!("reply longer than {MAX_REPLY} bytes"));
            }
            let left = self.left()?;
            self.stream
                .set_read_timeout(Some(left))
                .map_err(|e| e.to_string())?;
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err("BIRD closed the connection".into()),
                Ok(n) => bytes.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    self.left()?;
                }
                Err(e) => return Err(format!("reading from BIRD: {e}")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Replies captured from BIRD 2.0.12 (Debian 12) over its control socket.
    const STATUS: &str = "1000-BIRD 2.0.12\n1011-Router ID is 198.18.250.1\n Hostname is vm\n Current server time is 2026-12-05 01:00:40.282\n Last reboot on 2026-12-05 01:00:35.029\n Last reconfiguration on 2026-12-05 01:00:35.029\n0013 Daemon is up and running\n";
    const PROTOCOLS: &str = "2002-Name       Proto      Table      State  Since         Info\n1002-device1    Device     ---        up     01:00:35.029  \n mplb_vips4 Static     master4    up     01:00:35.029  \n mplb_vips6 Static     master6    up     01:00:35.029  \n bfd1       BFD        ---        up     01:00:35.029  \n uplink     BGP        ---        up     01:00:35.279  Established   \n0000 \n";
    const PROTOCOLS_PEER_GONE: &str = "2002-Name       Proto      Table      State  Since         Info\n1002-device1    Device     ---        up     01:00:35.029  \n uplink     BGP        ---        start  01:00:54.435  Active        Socket: Connection refused\n0000 \n";
    const CONFIGURED: &str = "0002-Reading configuration from lb.conf\n0003 Reconfigured\n";
    const CONFIGURE_FAILED: &str = "0002-Reading configuration from lb.conf\n8002 /tmp/bgpcap/routes.conf:1:50 Invalid prefix length 33\n";
    const UNKNOWN_COMMAND: &str = "9001 syntax error, unexpected CF_SYM_UNDEFINED\n";

    fn reply(text: &str) -> Reply {
        parse_reply(text)
            .expect("BIRD's protocol")
            .expect("complete")
    }

    #[test]
    fn status_and_configure_replies() {
        let s = reply(STATUS);
        assert_eq!(s.code(), 13);
        assert_eq!(s.lines[2].code, 1011, "a continuation keeps its code");
        assert_eq!(s.lines[2].text, "Hostname is vm");
        assert_eq!(s.error(), None);
        assert_eq!(reply(CONFIGURED).code(), 3);
        assert_eq!(reply(CONFIGURED).error(), None);
        assert_eq!(
            reply(CONFIGURE_FAILED).error().as_deref(),
            Some("8002 /tmp/bgpcap/routes.conf:1:50 Invalid prefix length 33")
        );
        assert!(
            reply(UNKNOWN_COMMAND)
                .error()
                .is_some_and(|e| e.starts_with("9001"))
        );
    }

    #[test]
    fn protocols_and_their_sessions() {
        let p = protocols(&reply(PROTOCOLS));
        let names: Vec<&str> = p.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            ["device1", "mplb_vips4", "mplb_vips6", "bfd1", "uplink"]
        );
        let uplink = &p[4];
        assert_eq!(
            (uplink.proto.as_str(), uplink.state.as_str()),
            ("BGP", "up")
        );
        assert!(uplink.established());
        assert!(!p[1].established());
        let down = protocols(&reply(PROTOCOLS_PEER_GONE));
        assert_eq!(down[1].info, "Active Socket: Connection refused");
        assert!(!down[1].established());
        // With `timeformat protocol iso long` the time has a date before it.
        let long = reply("1002-up1 BGP --- up 2026-12-05 01:00:35 Established\n0000 \n");
        assert!(protocols(&long)[0].established());
    }

    #[test]
    fn incomplete_and_foreign_text() {
        assert_eq!(parse_reply("1000-BIRD 2.0.12\n"), Ok(None));
        assert_eq!(parse_reply("0013 Daemon is up"), Ok(None), "no newline yet");
        assert!(parse_reply("HTTP/1.1 200 OK\n").is_err());
        assert!(parse_reply(" orphan\n").is_err());
        assert!(parse_reply("12\n").is_err());
        assert!(parse_reply("1234x\n").is_err());
        assert_eq!(reply("0000\n").code(), 0, "a bare code ends the reply");
    }
}
