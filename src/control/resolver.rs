//! When to ask for a backend's MAC, and what the answers mean. No I/O and
//! no clock: the management core passes the addresses to resolve and
//! `now`, and gets back the questions to send and what to log. The answers
//! arrive in the [`Neighbours`] table the workers write (see
//! [`crate::datapath::neighbours`]).
//!
//! Per (port, address), much as a kernel's neighbour cache does:
//! * unknown: ask at once, then every second; after [`PROBES`] unanswered
//!   questions the resolution has failed: one `warn` log line, a failure
//!   counted, and from then on questions at growing intervals (2 s, 4 s, …,
//!   at most [`MAX_RETRY`]) until it answers. It gets no traffic meanwhile;
//! * known: believed for [`REACHABLE`] after the last answer, then asked
//!   again at the known MAC (a unicast refresh); an answer with another MAC
//!   replaces it (logged, counted). After [`PROBES`] unanswered refreshes it
//!   is stale: one `warn` line, a failure counted, and questions go back to
//!   broadcast at growing intervals, while the last MAC is still used (the
//!   health checks, not ARP, decide whether a backend is up).
//!
//! At most [`ASK_PER_POLL`] questions leave per poll (the management loop
//! polls every 20 ms), so a config with thousands of backends does not
//! burst thousands of broadcasts; the others wait for the next poll.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::datapath::neighbours::{Neighbours, Solicit};
use crate::wire::MacAddr;

/// How long an answer is believed before it is refreshed.
pub const REACHABLE: Duration = Duration::from_secs(30);
/// Unanswered questions before a resolution (or a refresh) has failed.
pub const PROBES: u32 = 3;
/// Between the first [`PROBES`] questions.
pub const RETRY: Duration = Duration::from_secs(1);
/// The longest wait between two questions to an address that does not answer.
pub const MAX_RETRY: Duration = Duration::from_secs(30);
/// Questions sent per [`Resolver::poll`] at most.
pub const ASK_PER_POLL: usize = 16;

/// An address to resolve: where, and the backends that have it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Want {
    pub port: usize,
    pub port_name: String,
    pub addr: IpAddr,
    pub backends: Vec<String>,
}

/// Where the resolution of an address stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// No answer yet: its backends get no traffic.
    Unresolved,
    /// Answered within [`REACHABLE`] (or being refreshed).
    Reachable,
    /// Known, but stopped answering: the last MAC is still used.
    Stale,
}

impl Resolution {
    pub fn name(self) -> &'static str {
        match self {
            Resolution::Unresolved => "unresolved",
            Resolution::Reachable => "reachable",
            Resolution::Stale => "stale",
        }
    }
}

/// What happened to an address, for the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Happened {
    /// First answer (`asked`: questions it took).
    Resolved { mac: MacAddr, asked: u32 },
    /// A stale address answered again, with the MAC it had.
    Reachable { mac: MacAddr },
    /// An answer with a new MAC.
    Changed { from: MacAddr, to: MacAddr },
    /// [`PROBES`] questions and no answer: never resolved.
    NoAnswer { asked: u32 },
    /// [`PROBES`] refreshes and no answer: stale, `mac` still used.
    Stale { mac: MacAddr },
}

/// A [`Happened`] with the address it is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub addr: IpAddr,
    pub port_name: String,
    /// The backends with that address, comma-separated.
    pub backends: String,
    pub what: Happened,
}

/// Totals since start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ResolverCounters {
    /// Questions handed to the workers to send.
    pub requested: u64,
    /// Addresses resolved for the first time (or again after a reload).
    pub resolved: u64,
    /// Answers that changed a known MAC.
    pub mac_changes: u64,
    /// Resolutions and refreshes that went unanswered [`PROBES`] times.
    pub failures: u64,
}

#[derive(Debug)]
struct Entry {
    port_name: String,
    backends: Vec<String>,
    mac: Option<[u8; 6]>,
    /// The table's answer count when last read.
    heard_seen: u64,
    /// Questions since the last answer.
    asked: u32,
    /// When to ask next; `None`: now.
    next: Option<Instant>,
    /// The failure was logged (cleared by an answer).
    failed: bool,
}

/// The addresses being resolved and their state.
#[derive(Debug, Default)]
pub struct Resolver {
    table: Arc<Neighbours>,
    entries: BTreeMap<(usize, IpAddr), Entry>,
    counters: ResolverCounters,
}

impl Resolver {
    /// The table the workers record answers in (goes into every snapshot).
    pub fn table(&self) -> &Arc<Neighbours> {
        &self.table
    }

    pub fn counters(&self) -> ResolverCounters {
        self.counters
    }

    /// The MAC known for `addr` on `port`.
    pub fn mac(&self, port: usize, addr: IpAddr) -> Option<[u8; 6]> {
        self.entries.get(&(port, addr)).and_then(|e| e.mac)
    }

    /// Where `addr` on `port` stands; `None` if it is not being resolved.
    pub fn resolution(&self, port: usize, addr: IpAddr) -> Option<Resolution> {
        let e = self.entries.get(&(port, addr))?;
        Some(match (e.mac, e.failed) {
            (None, _) => Resolution::Unresolved,
            (Some(_), false) => Resolution::Reachable,
            (Some(_), true) => Resolution::Stale,
        })
    }

    /// Resolves exactly `wants` from now on. Addresses already known keep
    /// their MAC and timers; new ones are asked for at the next poll. When
    /// the set of addresses changes, the workers get a new table with the
    /// next snapshot (answers still recorded in the old one are asked for
    /// again).
    pub fn watch(&mut self, wants: Vec<Want>) {
        let mut entries = BTreeMap::new();
        for w in wants {
            let key = (w.port, w.addr);
            let mut e = self.entries.remove(&key).unwrap_or(Entry {
                port_name: String::new(),
                backends: Vec::new(),
                mac: None,
                heard_seen: 0,
                asked: 0,
                next: None,
                failed: false,
            });
            e.port_name = w.port_name;
            e.backends = w.backends;
            entries.insert(key, e);
        }
        let same = entries.len() == self.table.watched().count()
            && self.table.watched().all(|k| entries.contains_key(&k));
        if !same {
            self.table = Arc::new(Neighbours::new(entries.keys().copied()));
            for e in entries.values_mut() {
                e.heard_seen = 0;
            }
        }
        self.entries = entries;
    }

    /// Takes in the answers recorded since the last poll and asks what is
    /// due at `now`: questions go to `ask`, what to log to `reports`.
    /// Returns whether a MAC was learnt or changed (the snapshot must be
    /// rebuilt).
    pub fn poll(
        &mut self,
        now: Instant,
        ask: &mut Vec<Solicit>,
        reports: &mut Vec<Report>,
    ) -> bool {
        let mut changed = false;
        let mut budget = ASK_PER_POLL;
        for (&(port, addr), e) in self.entries.iter_mut() {
            let mut happened = Vec::new();
            if let Some(h) = self.table.heard(port, addr) {
                if let (true, Some(mac)) = (h.count != e.heard_seen, h.mac) {
                    changed |= take_answer(e, mac, now, &mut self.counters, &mut happened);
                }
                e.heard_seen = h.count;
            }
            if e.next.is_none_or(|t| now >= t) && budget > 0 {
                if e.asked >= PROBES && !e.failed {
                    e.failed = true;
                    self.counters.failures += 1;
                    happened.push(match e.mac {
                        None => Happened::NoAnswer { asked: e.asked },
                        Some(mac) => Happened::Stale { mac: MacAddr(mac) },
                    });
                }
                // A refresh asks the known MAC first, then everyone.
                let unicast = e.mac.filter(|_| e.asked < PROBES);
                ask.push(Solicit {
                    port,
                    target: addr,
                    unicast,
                });
                budget -= 1;
                self.counters.requested += 1;
                e.asked += 1;
                e.next = Some(now + retry_after(e.asked));
            }
            reports.extend(happened.into_iter().map(|what| Report {
                addr,
                port_name: e.port_name.clone(),
                backends: e.backends.join(","),
                what,
            }));
        }
        changed
    }
}

/// An answer with `mac` for entry `e`: what it means. Returns whether the
/// MAC the workers use changes.
fn take_answer(
    e: &mut Entry,
    mac: [u8; 6],
    now: Instant,
    counters: &mut ResolverCounters,
    happened: &mut Vec<Happened>,
) -> bool {
    let changed = match e.mac {
        None => {
            counters.resolved += 1;
            happened.push(Happened::Resolved {
                mac: MacAddr(mac),
                asked: e.asked,
            });
            true
        }
        Some(old) if old != mac => {
            counters.mac_changes += 1;
            happened.push(Happened::Changed {
                from: MacAddr(old),
                to: MacAddr(mac),
            });
            true
        }
        Some(_) => {
            if e.failed {
                happened.push(Happened::Reachable { mac: MacAddr(mac) });
            }
            false
        }
    };
    e.mac = Some(mac);
    e.asked = 0;
    e.failed = false;
    e.next = Some(now + REACHABLE);
    changed
}

/// The wait after the `asked`-th unanswered question: [`RETRY`] for the
/// first [`PROBES`], then doubling up to [`MAX_RETRY`].
fn retry_after(asked: u32) -> Duration {
    match asked.checked_sub(PROBES) {
        None | Some(0) => RETRY,
        Some(n) => RETRY.saturating_mul(1u32 << n.min(16)).min(MAX_RETRY),
    }
}

#[cfg(test)]
#[path = "resolver_tests.rs"]
mod tests;
