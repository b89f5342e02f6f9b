//! `mplb check-host`: whether this host can run a config, and what to do
//! where it cannot. DPDK fails late and tersely when hugepages are short, a
//! NIC is still on its kernel driver or the IOMMU is off; this names each
//! gap with the command that closes it.
//!
//! [`probe`] reads the facts from `/proc` and `/sys` (under a root, so the
//! tests can give it a made-up tree); [`checks`] compares them with the
//! config and does no I/O. A finding is `missing` (mplb cannot start: the
//! exit status is non-zero), `advice` (it runs, slower or less isolated) or
//! `ok`.

#![forbid(unsafe_code)]

pub mod checks;
pub mod probe;
#[cfg(test)]
mod tests;

use std::fmt;
use std::path::PathBuf;

pub use checks::check;
pub use probe::{HostFacts, NodeFacts, PciFacts};

/// How much a finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Ok,
    /// mplb runs, but not as well as it could (isolation, NUMA placement).
    Advice,
    /// mplb cannot start (or forward) on this host as it is.
    Missing,
}

/// One thing checked, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    /// What was found.
    pub what: String,
    /// The concrete commands or settings that fix it.
    pub fix: Option<String>,
    /// A hugepage count to write to a sysfs file (`--reserve-hugepages`).
    pub reserve: Option<Reserve>,
}

/// Writing `pages` to `path` (a `nr_hugepages` file) reserves the hugepages
/// a finding says are missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reserve {
    pub path: PathBuf,
    pub pages: u64,
}

impl Finding {
    fn ok(what: String) -> Finding {
        Finding {
            severity: Severity::Ok,
            what,
            fix: None,
            reserve: None,
        }
    }

    fn advice(what: String, fix: String) -> Finding {
        Finding {
            severity: Severity::Advice,
            what,
            fix: Some(fix),
            reserve: None,
        }
    }

    fn missing(what: String, fix: String) -> Finding {
        Finding {
            severity: Severity::Missing,
            what,
            fix: Some(fix),
            reserve: None,
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tag = match self.severity {
            Severity::Ok => "ok",
            Severity::Advice => "advice",
            Severity::Missing => "missing",
        };
        write!(f, "{tag}: {}", self.what)?;
        if let Some(fix) = &self.fix {
            for line in fix.lines() {
                write!(f, "\n    fix: {line}")?;
            }
        }
        Ok(())
    }
}

/// The findings as the command prints them, with a last line that sums up.
pub fn report(findings: &[Finding]) -> String {
    let mut out = String::new();
    for f in findings {
        out += &format!("{f}\n");
    }
    let missing = count(findings, Severity::Missing);
    let advice = count(findings, Severity::Advice);
    out += &if missing == 0 {
        format!("host ready for this config ({advice} advice)\n")
    } else {
        format!("host not ready: {missing} missing, {advice} advice\n")
    };
    out
}

/// How many findings have `severity`.
pub fn count(findings: &[Finding], severity: Severity) -> usize {
    findings.iter().filter(|f| f.severity == severity).count()
}

/// The PCI addresses of the config's ports (vdevs left out).
pub fn pci_addresses(config: &crate::config::Config) -> Vec<String> {
    (config.ports.iter())
        .filter_map(|p| probe::pci_address(&p.device))
        .collect()
}

/// Probes this host and checks `config` against it.
pub fn check_this_host(config: &crate::config::Config) -> Vec<Finding> {
    let facts = HostFacts::probe(std::path::Path::new("/"), &pci_addresses(config));
    check(config, &facts)
}

/// Carries out the findings' hugepage reservations (writes to
/// `nr_hugepages`, as root); one line per write saying how it went. The
/// kernel may reserve fewer pages than asked (fragmented memory): check
/// again to know.
pub fn reserve_hugepages(findings: &[Finding]) -> Vec<String> {
    (findings.iter())
        .filter_map(|f| f.reserve.as_ref())
        .map(
            |r| match std::fs::write(&r.path, format!("{}\n", r.pages)) {
                Ok(()) => format!("reserved: {} hugepages in {}", r.pages, r.path.display()),
                Err(e) => format!(
                    "could not reserve: {} in {}: {e}",
                    r.pages,
                    r.path.display()
                ),
            },
        )
        .collect()
}
