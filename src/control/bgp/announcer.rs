//! The edge between the decision and BIRD: writes the routes file and has
//! BIRD re-read it when the set of announced addresses changes, looks at
//! BIRD and its BGP sessions every check interval, and logs each
//! transition once (speaker down/up, session down/up, VIP announced /
//! withdrawn). Nothing here can stop forwarding: every failure is logged,
//! counted, reported, and retried at the next check.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Display;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::bird::{self, Connection};
use super::decision::{self, Instance, Verdict, VipVerdict};
use super::report::{BgpReport, VipAnnouncement};
use super::routes;
use crate::config::BgpConfig;
use crate::control::log;
use crate::datapath::forwarding::Forwarding;

/// Announces this instance's VIPs through BIRD.
pub struct Announcer {
    config: BgpConfig,
    verdicts: Vec<VipVerdict>,
    /// What the routes file should hold.
    wanted: BTreeSet<IpAddr>,
    /// What BIRD announces as far as known: the set of the last
    /// `configure` it accepted (a rejected one leaves it). `None`: not
    /// known (BIRD down or restarted, or no answer): tell it again.
    configured: Option<BTreeSet<IpAddr>>,
    /// What the routes file holds (`None`: not known, write it).
    written: Option<BTreeSet<IpAddr>>,
    /// Whether BIRD was looked at at least once.
    checked: bool,
    speaker_up: bool,
    speaker_error: Option<String>,
    /// BIRD's `Last reboot on ...`: a change means it restarted between
    /// two checks, with whatever file it found.
    booted: Option<String>,
    sessions: Sessions,
    configure_failures: u64,
    last_failure: Option<String>,
    /// Per VIP, whether it was announced as last logged, and its address.
    announced: BTreeMap<String, (bool, IpAddr)>,
    next_check: Instant,
}

/// BGP protocol → (established, BIRD's info column).
type Sessions = BTreeMap<String, (bool, String)>;

fn log_vip(name: &str, address: IpAddr, announced: bool, reason: &str) {
    logline(
        "info",
        if announced {
            "vip_announced"
        } else {
            "vip_withdrawn"
        },
        &[("vip", &name), ("address", &address), ("reason", &reason)],
    );
}

fn logline(level: &str, event: &str, fields: &[(&str, &dyn Display)]) {
    log::event(level, event, fields);
}

impl Announcer {
    pub fn new(config: BgpConfig) -> Announcer {
        Announcer {
            config,
            verdicts: Vec::new(),
            wanted: BTreeSet::new(),
            configured: None,
            written: None,
            checked: false,
            speaker_up: false,
            speaker_error: Some("not checked yet".into()),
            booted: None,
            sessions: BTreeMap::new(),
            configure_failures: 0,
            last_failure: None,
            announced: BTreeMap::new(),
            next_check: Instant::now(),
        }
    }

    /// At start, before anything is announced: an empty routes file, so a
    /// BIRD that kept the file of a previous run announces nothing, then a
    /// first look at BIRD.
    pub fn start(&mut self, now: Instant) {
        self.configured = None;
        self.written = None;
        self.check(now);
    }

    /// At stop: withdraws everything, so a BIRD outliving mplb does not go
    /// on attracting traffic.
    pub fn stop(&mut self) {
        self.wanted.clear();
        for v in &mut self.verdicts {
            v.verdict = Verdict::NotForwarding;
        }
        self.configured = None;
        self.written = None;
        self.apply();
        self.log_vips();
    }

    /// Recomputes the verdicts from `fwd` and tells BIRD if the set of
    /// addresses changed.
    pub fn update(&mut self, fwd: &Forwarding, instance: Instance) {
        self.verdicts = decision::decide(fwd, instance);
        self.wanted = decision::addresses(&self.verdicts);
        if self.configured.as_ref() != Some(&self.wanted) {
            self.apply();
        }
        self.log_vips();
    }

    /// Looks at BIRD if a check is due (speaker up? sessions?) and catches
    /// up with it: a BIRD that came back is told the routes again.
    pub fn check(&mut self, now: Instant) {
        if now < self.next_check {
            return;
        }
        self.next_check = now + Duration::from_millis(self.config.check_interval_ms);
        match self.look() {
            Ok((booted, sessions)) => {
                if !self.speaker_up {
                    logline(
                        "info",
                        "bgp_speaker",
                        &[
                            ("to", &"up"),
                            ("socket", &self.config.control_socket.display()),
                        ],
                    );
                    self.configured = None;
                } else if self.booted.as_ref() != Some(&booted) {
                    self.configured = None;
                }
                self.speaker_up = true;
                self.speaker_error = None;
                self.booted = Some(booted);
                self.set_sessions(sessions);
            }
            Err(e) => {
                if self.speaker_up || !self.checked {
                    logline(
                        "warn",
                        "bgp_speaker",
                        &[
                            ("to", &"down"),
                            ("socket", &self.config.control_socket.display()),
                            ("error", &e),
                            (
                                "message",
                                &"mplb keeps forwarding; the VIPs are not announced by this instance until BIRD answers again",
                            ),
                        ],
                    );
                }
                self.speaker_up = false;
                self.speaker_error = Some(e);
                self.configured = None;
                let down: Vec<(String, (bool, String))> = self
                    .sessions
                    .keys()
                    .map(|n| (n.clone(), (false, "speaker down".to_string())))
                    .collect();
                self.set_sessions(down.into_iter().collect());
            }
        }
        self.checked = true;
        if self.configured.as_ref() != Some(&self.wanted) {
            self.apply();
        }
        self.log_vips();
    }

    /// `show status` and `show protocols`: BIRD's boot time and its BGP
    /// sessions.
    fn look(&self) -> Result<(String, Sessions), String> {
        let mut c = Connection::open(&self.config.control_socket)?;
        let status = c.command("show status")?;
        if let Some(e) = status.error() {
            return Err(format!("show status: {e}"));
        }
        if status.code() != 13 {
            return Err(format!(
                "BIRD is not up and running: {}",
                status.lines.last().map_or("", |l| l.text.as_str())
            ));
        }
        let booted = status
            .lines
            .iter()
            .find_map(|l| l.text.strip_prefix("Last reboot on "))
            .unwrap_or("")
            .to_string();
        let protocols = c.command("show protocols")?;
        if let Some(e) = protocols.error() {
            return Err(format!("show protocols: {e}"));
        }
        let sessions = bird::protocols(&protocols)
            .into_iter()
            .filter(|p| p.proto == "BGP")
            .map(|p| (p.name.clone(), (p.established(), p.info.clone())))
            .collect();
        Ok((booted, sessions))
    }

    fn set_sessions(&mut self, sessions: Sessions) {
        for (name, (up, info)) in &sessions {
            let before = self.sessions.get(name).map(|s| s.0);
            if before != Some(*up) && (before.is_some() || *up) {
                logline(
                    if *up { "info" } else { "warn" },
                    "bgp_session",
                    &[
                        ("protocol", name),
                        ("to", if *up { &"up" } else { &"down" }),
                        ("info", info),
                    ],
                );
            }
        }
        self.sessions = sessions;
    }

    /// Writes the routes file if it changed and, with BIRD up, tells it
    /// `configure` (a BIRD that is down reads the file when it starts, and
    /// is told again when it is seen back). A failure is counted, logged
    /// when it differs from the last one, and retried at the next check.
    fn apply(&mut self) {
        if self.written.as_ref() != Some(&self.wanted) {
            let text = routes::render(&self.wanted);
            if let Err(e) = routes::write_atomically(&self.config.routes_file, &text) {
                // BIRD was not told: it announces what it did.
                self.failed(format!(
                    "writing {}: {e}",
                    self.config.routes_file.display()
                ));
                return;
            }
            self.written = Some(self.wanted.clone());
        }
        if !self.speaker_up {
            self.configured = None;
            return;
        }
        match self.configure() {
            Ok(()) => {
                self.configured = Some(self.wanted.clone());
                self.last_failure = None;
            }
            Err((e, rejected)) => {
                // Rejected: BIRD keeps its running config. No answer: who knows.
                if !rejected {
                    self.configured = None;
                }
                self.failed(e);
            }
        }
    }

    fn failed(&mut self, e: String) {
        self.configure_failures += 1;
        if self.last_failure.as_ref() != Some(&e) {
            logline(
                "error",
                "bgp_configure",
                &[
                    ("routes_file", &self.config.routes_file.display()),
                    ("error", &e),
                    (
                        "message",
                        &"announcements not updated; retried at the next check",
                    ),
                ],
            );
        }
        self.last_failure = Some(e);
    }

    /// `configure`; an error says whether BIRD answered it (rejected: its
    /// running config stays).
    fn configure(&self) -> Result<(), (String, bool)> {
        configure(&self.config.control_socket)
    }

    /// Whether `v`'s address is announced now (BIRD up and told it), and
    /// the reason in words.
    fn announcement(&self, v: &VipVerdict) -> (bool, &'static str) {
        let has = self.speaker_up
            && self
                .configured
                .as_ref()
                .is_some_and(|c| c.contains(&v.address));
        let wanted = self.wanted.contains(&v.address);
        match (has, wanted, v.verdict) {
            (true, true, _) => (true, "announced"),
            (true, false, _) => (true, "configure failed: still announced"),
            (false, _, Verdict::Announce) if !self.speaker_up => (false, "speaker down"),
            (false, _, Verdict::Announce) => (false, "configure failed"),
            (false, _, other) => (false, other.reason()),
        }
    }

    /// One line per VIP whose announcement changed (a VIP a reload removed
    /// included).
    fn log_vips(&mut self) {
        let mut now = BTreeMap::new();
        for v in &self.verdicts {
            let (announced, reason) = self.announcement(v);
            let before = self.announced.get(&v.name).is_some_and(|a| a.0);
            if before != announced {
                log_vip(&v.name, v.address, announced, reason);
            }
            now.insert(v.name.clone(), (announced, v.address));
        }
        for (name, (was, address)) in &self.announced {
            if *was && !now.contains_key(name) {
                log_vip(name, *address, false, "removed from the config");
            }
        }
        self.announced = now;
    }

    pub fn report(&self) -> BgpReport {
        BgpReport {
            speaker: "bird".into(),
            speaker_up: self.speaker_up,
            speaker_error: self.speaker_error.clone(),
            sessions: self
                .sessions
                .iter()
                .map(|(n, (up, info))| (n.clone(), *up, info.clone()))
                .collect(),
            vips: self
                .verdicts
                .iter()
                .map(|v| {
                    let (announced, reason) = self.announcement(v);
                    VipAnnouncement {
                        name: v.name.clone(),
                        address: v.address,
                        announced,
                        reason: reason.to_string(),
                    }
                })
                .collect(),
            configure_failures: self.configure_failures,
        }
    }
}

/// Has BIRD at `socket` re-read its config (and so the routes file). The
/// bool of an error: BIRD answered and rejected it (it keeps its running
/// config), rather than not answering.
pub(super) fn configure(socket: &std::path::Path) -> Result<(), (String, bool)> {
    let unanswered = |e: String| (e, false);
    let mut c = Connection::open(socket).map_err(unanswered)?;
    let reply = c.command("configure").map_err(unanswered)?;
    if let Some(e) = reply.error() {
        return Err((format!("BIRD rejected `configure`: {e}"), true));
    }
    match reply.code() {
        3 | 4 => Ok(()),
        other => Err((
            format!("unexpected reply {other} to `configure`: {reply:?}"),
            false,
        )),
    }
}
