//! Requests to the management thread, as the control socket sends them.

use std::net::IpAddr;

use crate::config::MAX_DRAIN_DEADLINE_SECS;
use crate::control::metrics::MetricsQuery;
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

/// Which VIPs' backends `mplb stats` lists: with thousands of VIPs, that
/// list is most of the answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backends {
    /// Every VIP's (the default).
    Every,
    /// None (`--no-backends`).
    Omitted,
    /// The VIP of this name's (`--vip NAME`).
    OfVip(String),
}

/// A request to the management thread (from the control socket or signals).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    Stats {
        json: bool,
        backends: Backends,
    },
    /// The Prometheus text page, or the parts and VIPs of it a scrape
    /// asked for (from the metrics endpoint).
    Metrics(MetricsQuery),
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
            ["stats", options @ ..] => stats(options),
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

/// `stats [json] [no-backends | vip NAME]`, the words in any order.
fn stats(options: &[&str]) -> Result<Request, String> {
    const USAGE: &str = "usage: stats [json] [no-backends | vip NAME]";
    let mut json = false;
    let mut backends = Backends::Every;
    let mut words = options.iter();
    while let Some(w) = words.next() {
        match (*w, &backends) {
            ("json", _) if !json => json = true,
            ("no-backends", Backends::Every) => backends = Backends::Omitted,
            ("vip", Backends::Every) => match words.next() {
                Some(name) => backends = Backends::OfVip(name.to_string()),
                None => return Err(format!("stats: `vip` needs a VIP's name; {USAGE}")),
            },
            _ => return Err(format!("stats: unexpected `{w}`; {USAGE}")),
        }
    }
    Ok(Request::Stats { json, backends })
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
                backends: Backends::Every,
            })
        );
        let web = || Backends::OfVip("web".into());
        for (line, json, backends) in [
            ("stats", false, Backends::Every),
            ("stats no-backends", false, Backends::Omitted),
            ("stats json no-backends", true, Backends::Omitted),
            ("stats no-backends json", true, Backends::Omitted),
            ("stats vip web", false, web()),
            ("stats json vip web", true, web()),
            ("stats vip web json", true, web()),
            ("stats vip json", false, Backends::OfVip("json".into())),
        ] {
            assert_eq!(
                Request::parse(line),
                Ok(Request::Stats { json, backends }),
                "{line}"
            );
        }
        for bad in [
            "stats json backends",
            "stats verbose",
            "stats json json",
            "stats vip",
            "stats vip web no-backends",
            "stats no-backends vip web",
            "stats vip web vip db",
            "stats no-backends no-backends",
        ] {
            assert!(Request::parse(bad).is_err(), "{bad}");
        }
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
