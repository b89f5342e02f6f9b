//! What a scrape asks for: `/metrics?scope=…&vip=…`.
//!
//! With thousands of VIPs the per-backend series are most of the page (a
//! dozen a VIP's backend: 20 000 VIPs of 4 backends give 88 MB, 940 000
//! series, 0.6 s of the management thread to render), more than a scrape
//! every few seconds should carry. A scrape job can then ask for the
//! instance's own series and the VIPs' (`?scope=global&scope=vip`) and
//! leave the backends' to a slower job, or to `mplb stats`; and `vip=NAME`
//! narrows the per-VIP and per-backend series to the VIPs named (one
//! service's dashboard, or the backend scrape split into jobs).

use std::fmt;

/// The parts of the page: `global` (the process, workers, drops, flow
/// tables, neighbour resolution totals, drain, the BGP speaker and its
/// sessions, DPDK's pool and ports), `vip` (per-VIP traffic and BGP
/// announcement) and `backend` (per VIP's backend: health, state, traffic,
/// how its MAC is known).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scopes {
    pub global: bool,
    pub vip: bool,
    pub backend: bool,
}

/// A query the page cannot be cut by (the 400 answer's text): a `scope=`
/// value that names no part, or a `vip=` value that is not a name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BadQuery {
    UnknownScope(String),
    /// Not percent-encoded UTF-8, or empty.
    BadVipName(String),
}

impl fmt::Display for BadQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadQuery::UnknownScope(s) => write!(
                f,
                "unknown scope {s:?}; the scopes are global, vip, backend"
            ),
            BadQuery::BadVipName(s) => write!(
                f,
                "vip={s:?} is not a VIP's name (percent-encoded UTF-8, not empty)"
            ),
        }
    }
}

/// What a scrape asks for: the parts of the page, and the VIPs whose
/// per-VIP and per-backend series it shows (every VIP's when `vips` is
/// empty). The instance's own series (`global`) are not cut by VIP.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetricsQuery {
    pub scopes: Scopes,
    pub vips: Vec<String>,
}

/// The most of an unknown value the answer repeats.
const ECHO_MAX: usize = 32;

impl Scopes {
    /// The whole page (a scrape without `scope=`).
    pub const ALL: Scopes = Scopes {
        global: true,
        vip: true,
        backend: true,
    };
    const NONE: Scopes = Scopes {
        global: false,
        vip: false,
        backend: false,
    };
}

impl Default for Scopes {
    fn default() -> Scopes {
        Scopes::ALL
    }
}

impl MetricsQuery {
    /// The whole page.
    pub const ALL: MetricsQuery = MetricsQuery {
        scopes: Scopes::ALL,
        vips: Vec::new(),
    };

    /// From a request target's query (after `?`, if it has one): each
    /// `scope=` parameter adds a part, without any the whole page; each
    /// `vip=` names a VIP (percent-encoded, `+` for a space, as scrapers
    /// encode their `params`). Other parameters are ignored (a proxy may
    /// add its own).
    pub fn parse(query: Option<&str>) -> Result<MetricsQuery, BadQuery> {
        let mut scopes = Scopes::NONE;
        let mut any = false;
        let mut vips = Vec::new();
        for param in query.unwrap_or("").split('&') {
            if let Some(value) = param.strip_prefix("vip=") {
                match percent_decoded(value) {
                    Some(name) if !name.is_empty() => vips.push(name),
                    _ => return Err(BadQuery::BadVipName(echo(value))),
                }
                continue;
            }
            let Some(value) = param.strip_prefix("scope=") else {
                continue;
            };
            any = true;
            match value {
                "global" => scopes.global = true,
                "vip" => scopes.vip = true,
                "backend" => scopes.backend = true,
                _ => return Err(BadQuery::UnknownScope(echo(value))),
            }
        }
        let scopes = if any { scopes } else { Scopes::ALL };
        Ok(MetricsQuery { scopes, vips })
    }

    /// Whether the page shows the series of the VIP named `name`.
    pub fn shows_vip(&self, name: &str) -> bool {
        self.vips.is_empty() || self.vips.iter().any(|v| v == name)
    }
}

/// The start of a value, for an answer that repeats it.
fn echo(value: &str) -> String {
    value.chars().take(ECHO_MAX).collect()
}

/// `value` with its `%XX` escapes and `+` decoded; `None` if an escape is
/// malformed or the bytes are not UTF-8.
fn percent_decoded(value: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(value.len());
    let mut rest = value.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        rest = tail;
        match b {
            b'+' => bytes.push(b' '),
            b'%' => {
                let hex = rest.get(..2)?;
                // (`from_str_radix` alone would take a sign: "%+1")
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return None;
                }
                bytes.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
                rest = rest.get(2..)?;
            }
            _ => bytes.push(b),
        }
    }
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries() {
        let only = |global, vip, backend| {
            Ok(MetricsQuery {
                scopes: Scopes {
                    global,
                    vip,
                    backend,
                },
                vips: Vec::new(),
            })
        };
        let parse = |q| MetricsQuery::parse(Some(q));
        assert_eq!(MetricsQuery::parse(None), Ok(MetricsQuery::ALL));
        assert_eq!(parse(""), Ok(MetricsQuery::ALL));
        assert_eq!(parse("x=1"), Ok(MetricsQuery::ALL));
        assert_eq!(parse("scope=global"), only(true, false, false));
        assert_eq!(parse("scope=global&scope=vip&x=1"), only(true, true, false));
        assert_eq!(parse("scope=backend"), only(false, false, true));
        let e = parse("scope=vips").expect_err("no such scope");
        assert!(e.to_string().contains("\"vips\""), "{e}");
        let long = format!("scope={}", "x".repeat(1000));
        let e = parse(&long).expect_err("no such scope");
        assert!(e.to_string().len() < 100, "{e}");
        assert!(parse("scope=").is_err());
    }

    #[test]
    fn vips_are_named_percent_encoded() {
        let q = MetricsQuery::parse(Some("scope=backend&vip=web&vip=api%2Dv2&vip=my+site%C3%A9"))
            .expect("valid");
        assert_eq!(
            q.scopes,
            Scopes {
                global: false,
                vip: false,
                backend: true
            }
        );
        assert_eq!(q.vips, ["web", "api-v2", "my site\u{e9}"]);
        assert!(q.shows_vip("web") && q.shows_vip("my site\u{e9}") && !q.shows_vip("Web"));
        // Without `scope=`, the whole page of the VIPs named.
        let q = MetricsQuery::parse(Some("vip=web")).expect("valid");
        assert_eq!((q.scopes, q.vips.len()), (Scopes::ALL, 1));
        assert!(MetricsQuery::ALL.shows_vip("anything"));
        for bad in [
            "vip=", "vip=%", "vip=%+1", "vip=%4", "vip=%zz", "vip=%ff", "vip=a%C3",
        ] {
            let e = MetricsQuery::parse(Some(bad)).expect_err(bad);
            assert!(matches!(e, BadQuery::BadVipName(_)), "{bad}: {e}");
            assert!(e.to_string().contains("not a VIP's name"), "{e}");
        }
        let long = format!("vip=%{}", "x".repeat(1000));
        let e = MetricsQuery::parse(Some(&long)).expect_err("malformed");
        assert!(e.to_string().len() < 120, "{e}");
    }
}
