//! Backend health checks, through the kernel's network stack to each
//! backend's own address.
//!
//! Three layers, so that the logic is testable without sockets or sleeping:
//!
//! * [`HealthState`]: the rise/fall state machine of one check target.
//! * [`HealthChecker`]: the scheduler. It does no I/O and reads no clock: the
//!   caller passes `now`, takes the checks that are due ([`HealthChecker::take_due`]),
//!   performs them however it likes and reports each result
//!   ([`HealthChecker::report`]). It answers with [`HealthEvent`]s when a
//!   backend's health changes.
//! * The I/O: [`check_tcp`], [`check_http`] and [`spawn_health_thread`], which
//!   drives a checker with the real clock and a small pool of check threads.
//!
//! # Choices
//!
//! * **Initial state.** A backend present when the checker is created starts
//!   *up*: restarting the load balancer must not black-hole a working service
//!   for `rise × interval`. A backend added later by
//!   [`HealthChecker::replace_targets`] starts *down* and needs `rise`
//!   consecutive successes, so a new server takes no traffic before it has
//!   answered. (A target whose name and IP are kept but whose port or check
//!   settings changed keeps its up/down state; its streak restarts.)
//! * **Targets and backends.** A target is one (backend, address:port, check
//!   settings). A backend that serves several VIPs with different check ports
//!   has one target per distinct check; the backend is healthy iff all of its
//!   targets are up, and events are per backend name (what the forwarding
//!   snapshot needs). Identical targets are checked once.
//! * **Concurrency.** Checks run on a pool of up to [`MAX_CHECK_THREADS`]
//!   threads fed by a channel; the scheduler thread never blocks on a socket.
//!   A backend that hangs occupies one check thread for at most `timeout_ms`
//!   and delays nobody else's checks, so a failing backend is reported down
//!   within `interval × fall` of its first failed check as long as fewer than
//!   `MAX_CHECK_THREADS` checks are hanging at once (`timeout_ms ≤
//!   interval_ms` is enforced by the config). Beyond that, checks wait in the
//!   queue; a target is never checked twice at the same time.
//! * `kind = "none"`: never checked, always up.
//!
//! Every socket operation of a check is bounded by one deadline, `timeout_ms`
//! after the check starts; no bytes a backend sends can make a check panic.

use std::collections::BTreeMap;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam::channel::{Receiver, RecvTimeoutError, Sender, unbounded};
use socket2::{Domain, Protocol, Socket, Type};

use crate::config::{Config, HealthConfig, HealthKind};

/// Upper bound on concurrent checks (threads of the check pool).
pub const MAX_CHECK_THREADS: usize = 32;

/// How often the scheduler thread looks at the stop flag and the reload
/// channel when nothing else wakes it.
const POLL: Duration = Duration::from_millis(50);

/// The longest status line an HTTP check reads.
const MAX_STATUS_LINE: usize = 512;

/// A state change of a [`HealthState`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Went up after `rise` consecutive successes.
    Up,
    /// Went down after `fall` consecutive failures.
    Down,
}

/// Rise/fall hysteresis for one target: `fall` consecutive failures take an
/// up target down, `rise` consecutive successes bring a down target up; any
/// result agreeing with the current state resets the streak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthState {
    up: bool,
    /// Whether a check has borne `up` out: a result agreeing with it, or a
    /// transition. A target starts up and unconfirmed, so that it takes
    /// traffic at once, but nothing is announced on its word until then.
    confirmed: bool,
    /// Consecutive results contradicting `up`.
    streak: u32,
    rise: u32,
    fall: u32,
}

impl HealthState {
    /// `rise` and `fall` below 1 are taken as 1.
    pub fn new(up: bool, rise: u32, fall: u32) -> HealthState {
        HealthState {
            up,
            confirmed: false,
            streak: 0,
            rise: rise.max(1),
            fall: fall.max(1),
        }
    }

    pub fn is_up(&self) -> bool {
        self.up
    }

    /// Whether a check result has borne out the current state.
    pub fn is_confirmed(&self) -> bool {
        self.confirmed
    }

    /// Consecutive results so far that contradict the current state.
    pub fn streak(&self) -> u32 {
        self.streak
    }

    /// Records one check result; returns the transition it caused, if any.
    pub fn record(&mut self, ok: bool) -> Option<Transition> {
        if ok == self.up {
            self.streak = 0;
            self.confirmed = true;
            return None;
        }
        self.streak = self.streak.saturating_add(1);
        let needed = if self.up { self.fall } else { self.rise };
        if self.streak < needed {
            return None;
        }
        self.up = ok;
        self.streak = 0;
        self.confirmed = true;
        Some(if ok { Transition::Up } else { Transition::Down })
    }
}

/// One thing to check: a backend (by name), the address and port to connect
/// to, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The backend's name.
    pub name: String,
    /// The backend's own address with the check port.
    pub addr: SocketAddr,
    pub config: HealthConfig,
}

/// The check targets of a configuration: every backend of every VIP, with
/// the VIP's `health` (or the global one) and its port (default: the VIP's).
/// Identical targets (a backend under two VIPs with the same check) appear
/// once.
pub fn targets_from_config(config: &Config) -> Vec<Target> {
    let mut out: Vec<Target> = Vec::new();
    for vip in &config.vips {
        let health = vip.health.as_ref().unwrap_or(&config.health);
        let port = health.port.unwrap_or(vip.port);
        for b in &vip.backends {
            let t = Target {
                name: b.name.clone(),
                addr: SocketAddr::new(b.address, port),
                config: health.clone(),
            };
            if !out.contains(&t) {
                out.push(t);
            }
        }
    }
    out
}

/// A backend's health changed (or, after a reload, a new backend's initial
/// state).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthEvent {
    /// The backend's name.
    pub name: String,
    /// The target whose check caused the event.
    pub addr: SocketAddr,
    /// The backend's health now: all of its targets up.
    pub up: bool,
    pub at: Instant,
    /// Human-readable cause, for logs.
    pub reason: String,
}

/// A check to perform, handed out by [`HealthChecker::take_due`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// Identifies the target in [`HealthChecker::report`]; stable while the
    /// target is unchanged, never reused.
    pub id: u64,
    pub target: Target,
}

#[derive(Debug)]
struct Entry {
    id: u64,
    target: Target,
    state: HealthState,
    next_due: Instant,
    in_flight: bool,
}

impl Entry {
    fn checked(&self) -> bool {
        self.target.config.kind != HealthKind::None
    }

    fn interval(&self) -> Duration {
        Duration::from_millis(self.target.config.interval_ms.max(1))
    }
}

/// The scheduler and the state of every target; no I/O, no clock.
#[derive(Debug, Default)]
pub struct HealthChecker {
    entries: Vec<Entry>,
    next_id: u64,
}

impl HealthChecker {
    /// Every target starts up, and is due for its first check at `now`.
    pub fn new(targets: Vec<Target>, now: Instant) -> HealthChecker {
        let mut c = HealthChecker::default();
        for t in dedup(targets) {
            c.push(t, true, now);
        }
        c
    }

    fn push(&mut self, target: Target, up: bool, now: Instant) {
        let state = HealthState::new(
            up || target.config.kind == HealthKind::None,
            target.config.rise,
            target.config.fall,
        );
        self.entries.push(Entry {
            id: self.next_id,
            target,
            state,
            next_due: now,
            in_flight: false,
        });
        self.next_id += 1;
    }

    /// Whether every checked target's state has been borne out by a check
    /// (see [`HealthState::is_confirmed`]): at start, the first verdicts
    /// are in.
    pub fn settled(&self) -> bool {
        self.entries
            .iter()
            .all(|e| !e.checked() || e.state.is_confirmed())
    }

    /// Number of targets.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Targets that are actually checked (kind other than `none`).
    pub fn checked_len(&self) -> usize {
        self.entries.iter().filter(|e| e.checked()).count()
    }

    /// The checks due at `now`, marked as in flight: a target is not handed
    /// out again before its result is reported. The next check of each is
    /// scheduled one interval after this one was due (or after `now`, if
    /// the schedule fell behind by a whole interval).
    pub fn take_due(&mut self, now: Instant) -> Vec<Check> {
        let mut due = Vec::new();
        for e in &mut self.entries {
            if !e.checked() || e.in_flight || e.next_due > now {
                continue;
            }
            e.in_flight = true;
            let next = e.next_due + e.interval();
            e.next_due = if next > now { next } else { now + e.interval() };
            due.push(Check {
                id: e.id,
                target: e.target.clone(),
            });
        }
        due
    }

    /// When the next check becomes due (`None`: nothing to check, or every
    /// checked target is in flight).
    pub fn next_due(&self) -> Option<Instant> {
        self.entries
            .iter()
            .filter(|e| e.checked() && !e.in_flight)
            .map(|e| e.next_due)
            .min()
    }

    /// The result of check `id` (`Err` carries the failure's cause). Returns
    /// an event if the backend's health changed. Results for targets that
    /// were removed meanwhile are ignored.
    pub fn report(
        &mut self,
        id: u64,
        result: &Result<(), String>,
        now: Instant,
    ) -> Option<HealthEvent> {
        let i = self.entries.iter().position(|e| e.id == id)?;
        let name = self.entries[i].target.name.clone();
        let before = self.backend_up(&name);
        let e = &mut self.entries[i];
        e.in_flight = false;
        let transition = e.state.record(result.is_ok())?;
        let reason = match (transition, result) {
            (Transition::Up, _) => format!(
                "{}: {} consecutive successful checks",
                e.target.addr, e.target.config.rise
            ),
            (Transition::Down, Err(why)) => format!(
                "{}: {} consecutive failed checks, last: {why}",
                e.target.addr, e.target.config.fall
            ),
            (Transition::Down, Ok(())) => format!("{}: failed", e.target.addr),
        };
        let addr = e.target.addr;
        let after = self.backend_up(&name);
        if after == before {
            return None;
        }
        Some(HealthEvent {
            name,
            addr,
            up: after.unwrap_or(true),
            at: now,
            reason,
        })
    }

    /// Replaces the target set (after a config reload). A target equal to a
    /// current one keeps its state, schedule and in-flight check. A target
    /// whose backend name and IP are known but whose port or settings
    /// changed keeps the up/down state with a fresh streak and is due at
    /// `now`. Any other target is new: down until `rise` successes (up if
    /// its kind is `none`), due at `now`. Returns one event per backend name
    /// that is new (its initial state) or whose health changed.
    pub fn replace_targets(&mut self, targets: Vec<Target>, now: Instant) -> Vec<HealthEvent> {
        let before = self.backends();
        let mut old = std::mem::take(&mut self.entries);
        for t in dedup(targets) {
            if let Some(i) = old.iter().position(|e| e.target == t) {
                self.entries.push(old.swap_remove(i));
                continue;
            }
            let carried = old
                .iter()
                .find(|e| e.target.name == t.name && e.target.addr.ip() == t.addr.ip())
                .map(|e| e.state.is_up());
            self.push(t, carried.unwrap_or(false), now);
        }
        let mut events = Vec::new();
        for (name, up) in self.backends() {
            let was = before.get(&name).copied();
            if was == Some(up) {
                continue;
            }
            let (addr, rise) = self
                .entries
                .iter()
                .find(|e| e.target.name == name && e.state.is_up() == up)
                .or_else(|| self.entries.iter().find(|e| e.target.name == name))
                .map_or((SocketAddr::from(([0, 0, 0, 0], 0)), 0), |e| {
                    (e.target.addr, e.target.config.rise)
                });
            let reason = match (was, up) {
                (None, false) => format!("new backend: down until {rise} successful checks"),
                (None, true) => "new backend: not checked".to_string(),
                (Some(_), _) => "health checks changed by reload".to_string(),
            };
            events.push(HealthEvent {
                name,
                addr,
                up,
                at: now,
                reason,
            });
        }
        events
    }

    /// A backend's health: `Some(true)` iff all of its targets are up;
    /// `None` for a name without targets.
    pub fn backend_up(&self, name: &str) -> Option<bool> {
        let mut found = false;
        for e in self.entries.iter().filter(|e| e.target.name == name) {
            if !e.state.is_up() {
                return Some(false);
            }
            found = true;
        }
        found.then_some(true)
    }

    /// Every backend's health, by name.
    pub fn backends(&self) -> BTreeMap<String, bool> {
        let mut out = BTreeMap::new();
        for e in &self.entries {
            let up = out.entry(e.target.name.clone()).or_insert(true);
            *up &= e.state.is_up();
        }
        out
    }

    /// Every target with its state.
    pub fn targets(&self) -> impl Iterator<Item = (&Target, HealthState)> {
        self.entries.iter().map(|e| (&e.target, e.state))
    }
}

fn dedup(targets: Vec<Target>) -> Vec<Target> {
    let mut out: Vec<Target> = Vec::with_capacity(targets.len());
    for t in targets {
        if !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

/// Time left until `deadline`, or an error once it has passed.
fn remaining(deadline: Instant) -> Result<Duration, String> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err("timed out".to_string())
    } else {
        Ok(left)
    }
}

/// Where a check leaves from: `[health] interface`, and the source address
/// for the target's address family (`source_v4` / `source_v6`). Default:
/// wherever the kernel's routing table says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Egress<'a> {
    pub interface: Option<&'a str>,
    pub source: Option<IpAddr>,
}

impl<'a> Egress<'a> {
    /// The way out `config` gives for checks to `addr`.
    pub fn of(config: &'a HealthConfig, addr: SocketAddr) -> Egress<'a> {
        Egress {
            interface: config.interface.as_deref(),
            source: match addr {
                SocketAddr::V4(_) => config.source_v4.map(IpAddr::V4),
                SocketAddr::V6(_) => config.source_v6.map(IpAddr::V6),
            },
        }
    }
}

fn connect(addr: SocketAddr, from: Egress, timeout: Duration) -> Result<TcpStream, String> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
        .map_err(|e| format!("socket: {e}"))?;
    if let Some(name) = from.interface {
        socket
            .bind_device(Some(name.as_bytes()))
            .map_err(|e| format!("leave from interface {name}: {e}"))?;
    }
    if let Some(source) = from.source {
        socket
            .bind(&SocketAddr::new(source, 0).into())
            .map_err(|e| format!("leave from {source}: {e}"))?;
    }
    socket
        .connect_timeout(&addr.into(), timeout.max(Duration::from_millis(1)))
        .map_err(|e| {
            if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) {
                "connect: timed out".to_string()
            } else {
                format!("connect: {e}")
            }
        })?;
    Ok(socket.into())
}

/// Healthy iff a TCP connection to `addr`, leaving as `from` says,
/// completes within `timeout`.
pub fn check_tcp(addr: SocketAddr, from: Egress, timeout: Duration) -> Result<(), String> {
    connect(addr, from, timeout).map(drop)
}

/// Healthy iff `GET path` on `addr` is answered with status `expect_status`
/// within `timeout` (connect, request and status line together).
pub fn check_http(
    addr: SocketAddr,
    from: Egress,
    path: &str,
    expect_status: u16,
    timeout: Duration,
) -> Result<(), String> {
    if !path.starts_with('/') || path.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(format!("invalid HTTP path {path:?}"));
    }
    let deadline = Instant::now() + timeout;
    let mut stream = connect(addr, from, timeout)?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nUser-Agent: mplb-health\r\n\r\n"
    );
    let io_err = |what: &str, e: io::Error| {
        if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) {
            format!("{what}: timed out")
        } else {
            format!("{what}: {e}")
        }
    };
    stream
        .set_write_timeout(Some(remaining(deadline)?))
        .map_err(|e| io_err("send", e))?;
    stream
        .write_all(request.as_bytes())
        .map_err(|e| io_err("send", e))?;

    let mut buf = [0u8; MAX_STATUS_LINE];
    let mut len = 0;
    loop {
        if let Some(end) = buf[..len].iter().position(|&b| b == b'\n') {
            return judge_status_line(&buf[..end], expect_status);
        }
        if len == buf.len() {
            return Err(format!(
                "no status line in the first {MAX_STATUS_LINE} bytes"
            ));
        }
        let left = remaining(deadline).map_err(|_| "no answer: timed out".to_string())?;
        stream
            .set_read_timeout(Some(left))
            .map_err(|e| io_err("receive", e))?;
        match stream.read(&mut buf[len..]) {
            Ok(0) if len == 0 => return Err("closed without answering".to_string()),
            Ok(0) => return judge_status_line(&buf[..len], expect_status),
            Ok(n) => len += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(io_err("no answer", e)),
        }
    }
}

fn judge_status_line(line: &[u8], expect: u16) -> Result<(), String> {
    match parse_status_line(line) {
        Some(code) if code == expect => Ok(()),
        Some(code) => Err(format!("HTTP status {code}, expected {expect}")),
        None => {
            let shown = &line[..line.len().min(64)];
            Err(format!(
                "malformed status line {:?}",
                String::from_utf8_lossy(shown)
            ))
        }
    }
}

/// The status code of `HTTP/1.x DDD [reason]` (without the line end).
fn parse_status_line(line: &[u8]) -> Option<u16> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut parts = line.splitn(3, |&b| b == b' ');
    let version = parts.next()?;
    let code = parts.next()?;
    if !version.starts_with(b"HTTP/1.") || code.len() != 3 {
        return None;
    }
    let mut value = 0u16;
    for &d in code {
        if !d.is_ascii_digit() {
            return None;
        }
        value = value * 10 + u16::from(d - b'0');
    }
    (100..=599).contains(&value).then_some(value)
}

/// Performs the check `target.config` describes (`none`: always healthy).
pub fn run_check(target: &Target) -> Result<(), String> {
    let c = &target.config;
    let timeout = Duration::from_millis(c.timeout_ms.max(1));
    let from = Egress::of(c, target.addr);
    match c.kind {
        HealthKind::None => Ok(()),
        HealthKind::Tcp => check_tcp(target.addr, from, timeout),
        HealthKind::Http => check_http(target.addr, from, &c.path, c.expect_status, timeout),
    }
}

/// The running health checker: its events and a way to change its targets.
pub struct HealthThread {
    events: Receiver<HealthEvent>,
    /// Latched once the first verdicts on the targets at start are in.
    settled: Arc<AtomicBool>,
    reload: Sender<Vec<Target>>,
    join: JoinHandle<()>,
}

impl HealthThread {
    /// Health changes, in the order they were detected.
    pub fn events(&self) -> &Receiver<HealthEvent> {
        &self.events
    }

    /// Whether every backend at start has had its health borne out by a
    /// check (a success, or `fall` failures): what BGP waits for before
    /// announcing anything. Stays true after reloads.
    pub fn settled(&self) -> bool {
        self.settled.load(Ordering::Relaxed)
    }

    /// Replaces the targets (see [`HealthChecker::replace_targets`]); the
    /// resulting events arrive on [`HealthThread::events`].
    pub fn replace_targets(&self, targets: Vec<Target>) {
        // Fails only if the thread has ended (stop flag set): nothing to do.
        let _ = self.reload.send(targets);
    }

    /// Waits for the thread to end after the stop flag was set: at most
    /// about one check timeout.
    pub fn join(self) -> std::thread::Result<()> {
        self.join.join()
    }
}

type CheckResult = (u64, Result<(), String>);

fn spawn_check_thread(
    n: usize,
    jobs: &Receiver<Check>,
    results: &Sender<CheckResult>,
) -> io::Result<JoinHandle<()>> {
    let jobs = jobs.clone();
    let results = results.clone();
    std::thread::Builder::new()
        .name(format!("mplb-check-{n}"))
        .spawn(move || {
            for check in jobs.iter() {
                let result = run_check(&check.target);
                if results.send((check.id, result)).is_err() {
                    break;
                }
            }
        })
}

/// Starts checking `targets` (all initially up, see the module docs) until
/// `stop` is set. One scheduler thread hands due checks to a pool of check
/// threads (as many as checked targets, at most [`MAX_CHECK_THREADS`]; the
/// pool grows on reload if needed).
pub fn spawn_health_thread(
    targets: Vec<Target>,
    stop: Arc<AtomicBool>,
) -> io::Result<HealthThread> {
    let (event_tx, event_rx) = unbounded();
    let (reload_tx, reload_rx) = unbounded::<Vec<Target>>();
    let (job_tx, job_rx) = unbounded::<Check>();
    let (result_tx, result_rx) = unbounded::<CheckResult>();
    let mut checker = HealthChecker::new(targets, Instant::now());
    let settled = Arc::new(AtomicBool::new(checker.settled()));
    let settled_flag = settled.clone();
    let mut pool = Vec::new();
    let wanted = checker.checked_len().clamp(1, MAX_CHECK_THREADS);
    for n in 0..wanted {
        pool.push(spawn_check_thread(n, &job_rx, &result_tx)?);
    }
    let join = std::thread::Builder::new()
        .name("mplb-health".to_string())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let now = Instant::now();
                while let Ok(targets) = reload_rx.try_recv() {
                    for ev in checker.replace_targets(targets, now) {
                        let _ = event_tx.send(ev);
                    }
                    let wanted = checker.checked_len().clamp(1, MAX_CHECK_THREADS);
                    while pool.len() < wanted {
                        match spawn_check_thread(pool.len(), &job_rx, &result_tx) {
                            Ok(h) => pool.push(h),
                            // Keep going with the threads there are.
                            Err(_) => break,
                        }
                    }
                }
                for check in checker.take_due(now) {
                    let _ = job_tx.send(check);
                }
                let wait = checker
                    .next_due()
                    .map_or(POLL, |t| t.saturating_duration_since(now).min(POLL));
                match result_rx.recv_timeout(wait) {
                    Ok((id, result)) => {
                        if let Some(ev) = checker.report(id, &result, Instant::now()) {
                            let _ = event_tx.send(ev);
                        }
                        if checker.settled() {
                            settled_flag.store(true, Ordering::Relaxed);
                        }
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            }
            // Closing the job queue ends the check threads after their
            // current check (bounded by its timeout).
            drop(job_tx);
            drop(result_rx);
            for h in pool {
                let _ = h.join();
            }
        })?;
    Ok(HealthThread {
        events: event_rx,
        settled,
        reload: reload_tx,
        join,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::config::{Backend, Vip, null_port};

    fn cfg(kind: HealthKind, rise: u32, fall: u32) -> HealthConfig {
        HealthConfig {
            kind,
            rise,
            fall,
            interval_ms: 1000,
            timeout_ms: 500,
            ..HealthConfig::default()
        }
    }

    fn target(name: &str, port: u16, config: HealthConfig) -> Target {
        Target {
            name: name.to_string(),
            addr: SocketAddr::from(([10, 0, 0, 1], port)),
            config,
        }
    }

    #[test]
    fn fall_then_rise() {
        let mut s = HealthState::new(true, 2, 3);
        assert_eq!(s.record(false), None);
        assert_eq!(s.record(false), None);
        assert_eq!(s.record(false), Some(Transition::Down));
        assert!(!s.is_up());
        assert_eq!(s.record(false), None, "already down");
        assert_eq!(s.record(true), None);
        assert_eq!(s.record(true), Some(Transition::Up));
        assert!(s.is_up());
        assert_eq!(s.record(true), None);
    }

    #[test]
    fn a_success_resets_the_failure_streak() {
        let mut s = HealthState::new(true, 2, 3);
        for _ in 0..10 {
            assert_eq!(s.record(false), None);
            assert_eq!(s.record(false), None);
            assert_eq!(s.record(true), None);
            assert!(s.is_up());
        }
        assert_eq!(s.streak(), 0);
    }

    #[test]
    fn flapping_never_transitions() {
        let mut up = HealthState::new(true, 2, 2);
        let mut down = HealthState::new(false, 2, 2);
        for i in 0..50 {
            let ok = i % 2 == 0;
            assert_eq!(up.record(ok), None);
            assert_eq!(down.record(!ok), None);
        }
        assert!(up.is_up() && !down.is_up());
    }

    #[test]
    fn rise_and_fall_of_one_act_at_once() {
        let mut s = HealthState::new(true, 0, 1);
        assert_eq!(s.record(false), Some(Transition::Down));
        assert_eq!(s.record(true), Some(Transition::Up), "rise 0 taken as 1");
    }

    #[test]
    fn schedule_hands_out_each_check_once_per_interval() {
        let t0 = Instant::now();
        let mut c = HealthChecker::new(vec![target("a", 80, cfg(HealthKind::Tcp, 2, 3))], t0);
        let first = c.take_due(t0);
        assert_eq!(first.len(), 1);
        assert!(c.take_due(t0).is_empty(), "in flight");
        assert_eq!(c.next_due(), None, "the only target is in flight");
        c.report(first[0].id, &Ok(()), t0 + Duration::from_millis(3));
        assert_eq!(c.next_due(), Some(t0 + Duration::from_secs(1)));
        assert!(c.take_due(t0 + Duration::from_millis(999)).is_empty());
        assert_eq!(c.take_due(t0 + Duration::from_millis(1000)).len(), 1);
    }

    /// BGP waits for this: every target at start borne out by a check (a
    /// success for one taken up, or its fall), unchecked kinds at once.
    #[test]
    fn settled_once_every_first_verdict_is_in() {
        let t0 = Instant::now();
        let tcp = cfg(HealthKind::Tcp, 2, 2);
        let mut c = HealthChecker::new(
            vec![
                target("a", 80, tcp.clone()),
                target("b", 80, tcp),
                target("n", 80, cfg(HealthKind::None, 2, 3)),
            ],
            t0,
        );
        assert!(!c.settled(), "nothing checked yet");
        let due = c.take_due(t0);
        let id = |name: &str| due.iter().find(|d| d.target.name == name).expect("due").id;
        c.report(id("a"), &Ok(()), t0);
        assert!(!c.settled(), "b not borne out yet");
        c.report(id("b"), &Err("refused".into()), t0);
        assert!(
            !c.settled(),
            "one failure of two: b still taken up, unconfirmed"
        );
        let again = c.take_due(t0 + Duration::from_secs(1));
        let b = again.iter().find(|d| d.target.name == "b").expect("due").id;
        assert!(c.report(b, &Err("refused".into()), t0).is_some(), "b falls");
        assert!(c.settled());
        let mut s = HealthState::new(true, 2, 3);
        assert!(!s.is_confirmed());
        s.record(true);
        assert!(s.is_confirmed());
    }

    #[test]
    fn none_kind_is_never_checked_and_always_up() {
        let t0 = Instant::now();
        let mut c = HealthChecker::new(vec![target("a", 80, cfg(HealthKind::None, 2, 3))], t0);
        assert!(c.take_due(t0 + Duration::from_secs(100)).is_empty());
        assert_eq!(c.backend_up("a"), Some(true));
        assert_eq!(c.checked_len(), 0);
        // Even when added by a reload.
        let ev = c.replace_targets(vec![target("b", 80, cfg(HealthKind::None, 2, 3))], t0);
        assert_eq!(ev.len(), 1);
        assert!(ev[0].up && ev[0].name == "b");
    }

    /// Drives the checker with a fake clock in 10 ms steps: `alive(now)`
    /// says whether the backend answers; a failing check reports after the
    /// full timeout, a good one after 1 ms.
    fn simulate(
        c: &mut HealthChecker,
        t0: Instant,
        until: Duration,
        alive: impl Fn(Duration) -> bool,
        check_starts: &mut Vec<(Duration, bool)>,
    ) -> Vec<(Duration, HealthEvent)> {
        let mut pending: Vec<(Duration, u64, bool)> = Vec::new();
        let mut events = Vec::new();
        let mut t = Duration::ZERO;
        while t <= until {
            let now = t0 + t;
            pending.sort_by_key(|p| p.0);
            while pending.first().is_some_and(|p| p.0 <= t) {
                let (_, id, ok) = pending.remove(0);
                let result = if ok {
                    Ok(())
                } else {
                    Err("refused".to_string())
                };
                if let Some(ev) = c.report(id, &result, now) {
                    events.push((t, ev));
                }
            }
            for check in c.take_due(now) {
                let ok = alive(t);
                check_starts.push((t, ok));
                let timeout = Duration::from_millis(check.target.config.timeout_ms);
                let done = if ok {
                    Duration::from_millis(1)
                } else {
                    timeout
                };
                pending.push((t + done, check.id, ok));
            }
            t += Duration::from_millis(10);
        }
        events
    }

    #[test]
    fn a_dead_backend_is_down_within_interval_times_fall_of_its_first_failure() {
        let t0 = Instant::now();
        let config = cfg(HealthKind::Tcp, 2, 3);
        let interval = Duration::from_millis(config.interval_ms);
        let mut c = HealthChecker::new(vec![target("a", 80, config)], t0);
        let dies = Duration::from_millis(4_321);
        let mut starts = Vec::new();
        let events = simulate(
            &mut c,
            t0,
            Duration::from_secs(20),
            |t| t < dies,
            &mut starts,
        );
        assert_eq!(events.len(), 1, "{events:?}");
        let (at, ev) = &events[0];
        assert!(!ev.up && ev.name == "a");
        assert!(ev.reason.contains("refused"), "{}", ev.reason);
        let first_failure = starts
            .iter()
            .find(|(_, ok)| !ok)
            .map(|(t, _)| *t)
            .expect("a failed check");
        assert!(
            *at - first_failure <= interval * 3,
            "down at {at:?}, first failure at {first_failure:?}"
        );
        assert!(*at >= dies);
        // And the checks kept their cadence: one per interval.
        for w in starts.windows(2) {
            assert_eq!(w[1].0 - w[0].0, interval, "{starts:?}");
        }
    }

    #[test]
    fn each_target_falls_and_rises_on_its_own_schedule() {
        let t0 = Instant::now();
        let mut slow = cfg(HealthKind::Http, 2, 2);
        slow.interval_ms = 300;
        slow.timeout_ms = 300;
        let fast = cfg(HealthKind::Tcp, 2, 2);
        let mut c =
            HealthChecker::new(vec![target("slow", 80, slow), target("fast", 81, fast)], t0);
        // Both dead from 0 to 5 s; after 5 s both answer.
        let mut starts = Vec::new();
        let events = simulate(
            &mut c,
            t0,
            Duration::from_secs(10),
            |t| t >= Duration::from_secs(5),
            &mut starts,
        );
        let at = |name: &str, up: bool| {
            events
                .iter()
                .find(|(_, e)| e.name == name && e.up == up)
                .map(|(t, _)| *t)
        };
        // Down after 2 failures: fast's checks at 0 and 1 s (reported at
        // 1.5 s); slow's at 0 and 0.3 s (reported at 0.6 s).
        assert_eq!(at("fast", false), Some(Duration::from_millis(1500)));
        assert_eq!(at("slow", false), Some(Duration::from_millis(600)));
        // Up after 2 successes from 5 s on: fast checks at 5 and 6 s.
        assert_eq!(at("fast", true), Some(Duration::from_millis(6010)));
        assert_eq!(events.len(), 4, "{events:?}");
        assert_eq!(c.backend_up("fast"), Some(true));
    }

    #[test]
    fn a_backend_is_up_only_if_all_its_targets_are() {
        let t0 = Instant::now();
        let config = cfg(HealthKind::Tcp, 1, 1);
        let mut c = HealthChecker::new(
            vec![target("a", 80, config.clone()), target("a", 443, config)],
            t0,
        );
        let checks = c.take_due(t0);
        assert_eq!(checks.len(), 2);
        let port = |ch: &Check| ch.target.addr.port();
        let (c80, c443) = if port(&checks[0]) == 80 {
            (checks[0].id, checks[1].id)
        } else {
            (checks[1].id, checks[0].id)
        };
        let ev = c.report(c80, &Err("x".into()), t0).expect("down");
        assert!(!ev.up && ev.addr.port() == 80);
        // The other target failing too changes nothing for the backend.
        assert_eq!(c.report(c443, &Err("y".into()), t0), None);
        let t1 = t0 + Duration::from_secs(1);
        let checks = c.take_due(t1);
        for ch in &checks {
            let ev = c.report(ch.id, &Ok(()), t1);
            if ch.id == checks[checks.len() - 1].id {
                assert!(ev.is_some_and(|e| e.up), "up once both are");
            } else {
                assert_eq!(ev, None, "one of two up is not enough");
            }
        }
    }

    #[test]
    fn reload_keeps_unchanged_targets_and_starts_new_ones_down() {
        let t0 = Instant::now();
        let config = cfg(HealthKind::Tcp, 2, 1);
        let mut c = HealthChecker::new(
            vec![
                target("a", 80, config.clone()),
                target("b", 80, config.clone()),
            ],
            t0,
        );
        let checks = c.take_due(t0);
        let b_id = checks
            .iter()
            .find(|ch| ch.target.name == "b")
            .expect("b")
            .id;
        assert!(c.report(b_id, &Err("refused".into()), t0).is_some());
        assert_eq!(c.backend_up("b"), Some(false));

        let mut changed = config.clone();
        changed.timeout_ms = 400;
        let events = c.replace_targets(
            vec![
                target("a", 80, config.clone()),
                target("b", 80, changed),
                target("new", 80, config.clone()),
            ],
            t0,
        );
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0].name, "new");
        assert!(!events[0].up);
        assert_eq!(c.backend_up("new"), Some(false));
        assert_eq!(c.backend_up("b"), Some(false), "state carried over");
        assert_eq!(c.backend_up("a"), Some(true));
        // "a" was unchanged: still in flight with the same id, not due again.
        let a_id = checks
            .iter()
            .find(|ch| ch.target.name == "a")
            .expect("a")
            .id;
        let due = c.take_due(t0);
        assert!(due.iter().all(|ch| ch.target.name != "a"), "{due:?}");
        assert_eq!(c.report(a_id, &Ok(()), t0), None);
        // The new one needs rise = 2 successes.
        let t1 = t0 + Duration::from_secs(1);
        let new_id = due
            .iter()
            .find(|ch| ch.target.name == "new")
            .expect("new is due")
            .id;
        assert_eq!(c.report(new_id, &Ok(()), t0), None);
        let again = c.take_due(t1);
        let new_id2 = again
            .iter()
            .find(|ch| ch.target.name == "new")
            .expect("due again")
            .id;
        assert_eq!(new_id, new_id2);
        assert!(c.report(new_id2, &Ok(()), t1).is_some_and(|e| e.up));
        // A removed target is forgotten; its late result is ignored.
        let events = c.replace_targets(vec![target("a", 80, config)], t1);
        assert!(events.is_empty());
        assert_eq!(c.backend_up("new"), None);
        assert_eq!(c.report(new_id, &Err("late".into()), t1), None);
        assert_eq!(c.len(), 1);
    }

    proptest::proptest! {
        #[test]
        fn any_status_line_bytes_parse_without_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            if let Some(code) = parse_status_line(&bytes) {
                proptest::prop_assert!((100..=599).contains(&code));
            }
            let _ = judge_status_line(&bytes, 200);
        }
    }

    #[test]
    fn status_lines() {
        // (line, the status it carries or None)
        let cases: [(&[u8], Option<u16>); 12] = [
            (b"HTTP/1.1 200 OK\r", Some(200)),
            (b"HTTP/1.0 503 Service Unavailable", Some(503)),
            (b"HTTP/1.1 204", Some(204)),
            (b"", None),
            (b"HTTP/1.1", None),
            (b"HTTP/1.1 20 OK", None),
            (b"HTTP/1.1 2000 OK", None),
            (b"HTTP/1.1 +20 OK", None),
            (b"HTTP/1.1 999 x", None),
            (b"HTTP/2 200 OK", None),
            (b"SSH-2.0-OpenSSH_9.2", None),
            (b"\xff\xfe\x00 200 x", None),
        ];
        for (line, status) in cases {
            assert_eq!(parse_status_line(line), status, "{line:?}");
        }
    }

    #[test]
    fn targets_from_config_use_vip_port_and_overrides() {
        let a = || Backend::new("a", "198.18.1.11").mac("02:00:00:00:01:11");
        let health = r#"{ kind = "http", port = 8080, path = "/healthz" }"#;
        let text = null_port("[health]\nkind = \"tcp\"\n")
            + &Vip::web().backend(a()).to_string()
            + &Vip::new("web2", "198.18.0.11", 80).backend(a()).to_string()
            + &Vip::new("api", "198.18.0.12", 443)
                .option("health", health)
                .backend(a())
                .to_string();
        let config = Config::parse(&text, std::path::Path::new("t.toml")).expect("valid");
        let t = targets_from_config(&config);
        assert_eq!(t.len(), 2, "{t:?}");
        assert_eq!(t[0].addr, "198.18.1.11:80".parse().expect("addr"));
        assert_eq!(t[0].config.kind, HealthKind::Tcp);
        assert_eq!(t[1].addr, "198.18.1.11:8080".parse().expect("addr"));
        assert_eq!(t[1].config.path, "/healthz");
    }
}
