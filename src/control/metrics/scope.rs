//! Which parts of the metrics page a scrape asks for: `/metrics?scope=…`.
//!
//! With thousands of VIPs the per-backend series are most of the page (a
//! dozen a VIP's backend: 20 000 VIPs of 4 backends give 88 MB, 940 000
//! series, 0.6 s of the management thread to render), more than a scrape
//! every few seconds should carry. A scrape job can then ask for the
//! instance's own series and the VIPs' (`?scope=global&scope=vip`) and
//! leave the backends' to a slower job, or to `mplb stats`.

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

/// A `scope=` value that names no part (the 400 answer's text).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownScope(String);

impl fmt::Display for UnknownScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown scope {:?}; the scopes are global, vip, backend",
            self.0
        )
    }
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

    /// From a request target's query (after `?`, if it has one): each
    /// `scope=` parameter adds a part; without any, the whole page. Other
    /// parameters are ignored (a proxy may add its own).
    pub fn from_query(query: Option<&str>) -> Result<Scopes, UnknownScope> {
        let mut scopes = Scopes::NONE;
        let mut any = false;
        for param in query.unwrap_or("").split('&') {
            let Some(value) = param.strip_prefix("scope=") else {
                continue;
            };
            any = true;
            match value {
                "global" => scopes.global = true,
                "vip" => scopes.vip = true,
                "backend" => scopes.backend = true,
                _ => return Err(UnknownScope(value.chars().take(ECHO_MAX).collect())),
            }
        }
        Ok(if any { scopes } else { Scopes::ALL })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries() {
        let only = |global, vip, backend| {
            Ok(Scopes {
                global,
                vip,
                backend,
            })
        };
        assert_eq!(Scopes::from_query(None), Ok(Scopes::ALL));
        assert_eq!(Scopes::from_query(Some("")), Ok(Scopes::ALL));
        assert_eq!(Scopes::from_query(Some("x=1")), Ok(Scopes::ALL));
        assert_eq!(
            Scopes::from_query(Some("scope=global")),
            only(true, false, false)
        );
        assert_eq!(
            Scopes::from_query(Some("scope=global&scope=vip&x=1")),
            only(true, true, false)
        );
        assert_eq!(
            Scopes::from_query(Some("scope=backend")),
            only(false, false, true)
        );
        let e = Scopes::from_query(Some("scope=vips")).expect_err("no such scope");
        assert!(e.to_string().contains("\"vips\""), "{e}");
        let long = format!("scope={}", "x".repeat(1000));
        let e = Scopes::from_query(Some(&long)).expect_err("no such scope");
        assert!(e.to_string().len() < 100, "{e}");
        assert!(Scopes::from_query(Some("scope=")).is_err());
    }
}
