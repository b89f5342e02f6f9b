//! Requests to the management thread, as the control socket sends them.

use std::net::IpAddr;

use crate::config::MAX_DRAIN_DEADLINE_SECS;
use crate::control::metrics::Scopes;
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
        /// With the table of every VIP's backends (`mplb stats
        /// --no-backends` leaves it out: with thousands of VIPs it is most
        /// of the answer).
        backends: bool,
    },
    /// The Prometheus text page, or the parts of it a scrape asked for
    /// (from the metrics endpoint).
    Metrics(Scopes),
    Drain(String),
    Disable(String),
    Enable(String),
    Reload,
    /// `mplb drain`: withdraw every VIP, keep forwarding, exit once quiet
    /// (or at the deadline: `[drain]`'s, or this one in seconds).
    DrainInstance {
        deadline_secs: Option<u64>,
    },
    /// Answered when the drain under way ends (`mplb drain --wait`).
    WaitDrained,
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
            ["stats", options @ ..]
                if options.iter().all(|o| matches!(*o, "json" | "no-backends")) =>
            {
                Ok(Request::Stats {
                    json: options.contains(&"json"),
                    backends: !options.contains(&"no-backends"),
                })
            }
            ["reload"] => Ok(Request::Reload),
            ["drain"] => Ok(Request::DrainInstance {
                deadline_secs: None,
            }),
            ["drain", "deadline", secs] => match secs.parse::<u64>() {
                Ok(n) if (1..=MAX_DRAIN_DEADLINE_SECS).contains(&n) => Ok(Request::DrainInstance {
                    deadline_secs: Some(n),
                }),
                _ => Err(format!(
                    "drain deadline `{secs}`: a number of seconds, 1 to {MAX_DRAIN_DEADLINE_SECS}"
                )),
            },
            ["drain", "wait"] => Ok(Request::WaitDrained),
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
            Ok(Request::Stats {
                json: true,
                backends: true,
            })
        );
        for (line, json, backends) in [
            ("stats", false, true),
            ("stats no-backends", false, false),
            ("stats json no-backends", true, false),
            ("stats no-backends json", true, false),
        ] {
            assert_eq!(
                Request::parse(line),
                Ok(Request::Stats { json, backends }),
                "{line}"
            );
        }
        assert!(Request::parse("stats json backends").is_err());
        assert!(Request::parse("stats verbose").is_err());
        assert_eq!(
            Request::parse("backend drain web-1"),
            Ok(Request::Drain("web-1".into()))
        );
        assert!(Request::parse("backend drain").is_err());
        assert!(Request::parse("lookup tcp 1.2.3.4 99999 1.2.3.5 80").is_err());
        assert!(Request::parse("lookup sctp 1.2.3.4 1 1.2.3.5 80").is_err());
        assert!(Request::parse("\u{0}\u{ff}").is_err());
        assert_eq!(
            Request::parse("drain"),
            Ok(Request::DrainInstance {
                deadline_secs: None
            })
        );
        assert_eq!(
            Request::parse("drain deadline 30"),
            Ok(Request::DrainInstance {
                deadline_secs: Some(30)
            })
        );
        assert_eq!(Request::parse("drain wait"), Ok(Request::WaitDrained));
        assert!(Request::parse("drain deadline 0").is_err());
        assert!(Request::parse("drain deadline -1").is_err());
        assert!(Request::parse("drain deadline 99999999999999999999").is_err());
    }
}
