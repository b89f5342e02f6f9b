//! Requests to the management thread, as the control socket sends them.

use std::net::IpAddr;

use crate::datapath::forwarding::Protocol;

/// What an operator asked for a backend (`mplb backend ACTION NAME`). Kept
/// across reloads until changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Override {
    /// No new flows; pinned plain-TCP flows and joins keep going to it.
    Drain,
    /// Nothing new at all, as if down.
    Disable,
}

/// A request to the management thread (from the control socket or signals).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    Stats {
        json: bool,
    },
    /// The Prometheus text page (from the metrics endpoint).
    Metrics,
    Drain(String),
    Disable(String),
    Enable(String),
    Reload,
    Lookup {
        protocol: Protocol,
        src: IpAddr,
        sport: u16,
        dst: IpAddr,
        dport: u16,
    },
}

impl Request {
    /// Parses one request line, e.g. `lookup tcp 198.18.2.2 40001 198.18.0.10 80`.
    pub fn parse(line: &str) -> Result<Request, String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let name = |w: &[&str]| match w {
            [n] => Ok(n.to_string()),
            _ => Err("usage: backend drain|enable|disable NAME".to_string()),
        };
        match words.as_slice() {
            ["stats"] => Ok(Request::Stats { json: false }),
            ["stats", "json"] => Ok(Request::Stats { json: true }),
            ["reload"] => Ok(Request::Reload),
            ["backend", "drain", rest @ ..] => name(rest).map(Request::Drain),
            ["backend", "disable", rest @ ..] => name(rest).map(Request::Disable),
            ["backend", "enable", rest @ ..] => name(rest).map(Request::Enable),
            ["lookup", proto, src, sport, dst, dport] => {
                let protocol = match *proto {
                    "tcp" => Protocol::Tcp,
                    "udp" => Protocol::Udp,
                    p => return Err(format!("unknown protocol `{p}` (tcp or udp)")),
                };
                let addr = |s: &str| {
                    s.parse::<IpAddr>()
                        .map_err(|_| format!("`{s}` is not an IP address"))
                };
                let port = |s: &str| s.parse::<u16>().map_err(|_| format!("`{s}` is not a port"));
                Ok(Request::Lookup {
                    protocol,
                    src: addr(src)?,
                    sport: port(sport)?,
                    dst: addr(dst)?,
                    dport: port(dport)?,
                })
            }
            _ => Err(format!("unknown request `{}`", line.trim())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_and_reject_garbage() {
        assert_eq!(
            Request::parse("stats json"),
            Ok(Request::Stats { json: true })
        );
        assert_eq!(
            Request::parse("backend drain web-1"),
            Ok(Request::Drain("web-1".into()))
        );
        assert!(Request::parse("backend drain").is_err());
        assert!(Request::parse("lookup tcp 1.2.3.4 99999 1.2.3.5 80").is_err());
        assert!(Request::parse("lookup sctp 1.2.3.4 1 1.2.3.5 80").is_err());
        assert!(Request::parse("\u{0}\u{ff}").is_err());
    }
}
