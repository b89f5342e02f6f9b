//! The management thread's state: the running config, backend health and
//! operator overrides, and the publisher of forwarding snapshots. Every change
//! (reload, health transition, `mplb backend ...`) goes through here and ends
//! in one new snapshot, published to the workers without stopping them.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use super::build::{StableIds, build_forwarding, build_forwarding_with};
use super::health::{HealthEvent, HealthThread, spawn_health_thread, targets_from_config};
use super::log;
use super::metrics::{
    self, BackendMetrics, FlowTableMetrics, MetricsSnapshot, VipMetrics, WorkerMetrics,
};
use super::stats::{StatsSlot, total};
use crate::config::{BackendConfig, BackendStateConfig, Config, HealthKind};
use crate::datapath::counters::Counters;
use crate::datapath::forwarding::{BackendState, Forwarding, PortFacts, Protocol};
use crate::datapath::hash::{FlowKey, flow_hash};
use crate::datapath::traffic::{Traffic, TrafficTotals};
use crate::snapshot::{Publisher, Reader};

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

/// The management thread's state.
pub struct Manager {
    path: PathBuf,
    config: Config,
    ports: Vec<PortFacts>,
    ids: StableIds,
    publisher: Publisher<Forwarding>,
    overrides: BTreeMap<String, Override>,
    /// Backends whose health check says down (absent = up).
    unhealthy: BTreeMap<String, String>,
    slots: Vec<Arc<StatsSlot>>,
    traffic: Vec<Arc<Traffic>>,
    health: Option<HealthThread>,
    /// Backends a reload removed while they may still have pinned flows.
    retiring: Vec<Retiring>,
    started: Instant,
}

/// A backend removed from the config by a reload. It stays in the snapshot
/// as a draining member of its VIP (no new flows, pinned flows keep going)
/// until no packet has gone to it for the flow table's established timeout,
/// by which time every entry pinned to it has expired. Removing a backend
/// from the file thus never resets its established connections; `backend
/// disable` cuts them at once.
struct Retiring {
    vip: String,
    backend: BackendConfig,
    /// Packets forwarded to it (all workers) when last looked at.
    packets: u64,
    idle_since: Instant,
}

impl Manager {
    /// Builds the first snapshot from `config` (loaded from `path`).
    /// `ports`: the started ports' MACs and MTUs (or bare MACs), by index.
    pub fn new<P: Into<PortFacts>>(
        path: &Path,
        config: Config,
        ports: Vec<P>,
    ) -> Result<Manager, String> {
        let ports: Vec<PortFacts> = ports.into_iter().map(Into::into).collect();
        let mut ids = StableIds::default();
        let first = build_forwarding(&config, &ports, &mut ids)?;
        Ok(Manager {
            path: path.to_path_buf(),
            config,
            ports,
            ids,
            publisher: Publisher::new(first),
            overrides: BTreeMap::new(),
            unhealthy: BTreeMap::new(),
            slots: Vec::new(),
            traffic: Vec::new(),
            health: None,
            retiring: Vec::new(),
            started: Instant::now(),
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// A snapshot reader for a new worker.
    pub fn reader(&self) -> Reader<Forwarding> {
        self.publisher.reader()
    }

    /// The workers' counter slots and traffic counters, for stats.
    pub fn set_workers(&mut self, slots: Vec<Arc<StatsSlot>>, traffic: Vec<Arc<Traffic>>) {
        self.slots = slots;
        self.traffic = traffic;
    }

    /// Starts health-checking the configured backends (until `stop`).
    pub fn start_health(&mut self, stop: Arc<AtomicBool>) -> Result<(), String> {
        let thread = spawn_health_thread(targets_from_config(&self.config), stop)
            .map_err(|e| format!("starting health checks: {e}"))?;
        self.health = Some(thread);
        Ok(())
    }

    /// Applies the health transitions reported since the last call.
    pub fn poll_health(&mut self) {
        let events: Vec<HealthEvent> = match &self.health {
            Some(h) => h.events().try_iter().collect(),
            None => return,
        };
        for e in events {
            if let Err(err) = self.set_health(&e.name, e.up, &e.reason) {
                log::event("error", "snapshot_build", &[("error", &err)]);
            }
        }
    }

    /// Stops waiting for health checks (after the stop flag was set).
    pub fn stop_health(&mut self) {
        if let Some(h) = self.health.take() {
            let _ = h.join();
        }
    }

    pub fn counters(&self) -> Counters {
        total(&self.slots)
    }

    /// The snapshot workers use now.
    pub fn current(&self) -> Arc<Forwarding> {
        self.publisher.current()
    }

    /// Frees snapshots no worker holds any more.
    fn reap(&mut self) {
        self.publisher.reap();
    }

    /// Answers one request.
    pub fn handle(&mut self, req: &Request) -> Result<String, String> {
        match req {
            Request::Metrics => Ok(metrics::render(&self.metrics())),
            Request::Stats { json } => Ok(if *json {
                self.stats_json()
            } else {
                self.stats_text()
            }),
            Request::Reload => self.reload(),
            Request::Drain(n) => self.set_override(n, Some(Override::Drain)),
            Request::Disable(n) => self.set_override(n, Some(Override::Disable)),
            Request::Enable(n) => self.set_override(n, None),
            Request::Lookup {
                protocol,
                src,
                sport,
                dst,
                dport,
            } => self.lookup(*protocol, *src, *sport, *dst, *dport),
        }
    }

    /// Re-reads the config file. A broken file, or one that changes what
    /// needs a restart, is rejected and the running config stays.
    pub fn reload(&mut self) -> Result<String, String> {
        let result = Config::load(&self.path)
            .map_err(|e| e.to_string())
            .and_then(|new| {
                if let Some(why) = self.config.reload_blocker(&new) {
                    return Err(format!(
                        "{}: {why}; that needs a restart",
                        self.path.display()
                    ));
                }
                // A backend new to this instance gets traffic only once its
                // health checks pass (the checker reports it up after `rise`).
                let checked = self.health.is_some();
                let fresh: Vec<String> = new
                    .vips
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| checked && new.health_for(*i).kind != HealthKind::None)
                    .flat_map(|(_, v)| v.backends.iter().map(|b| b.name.clone()))
                    .filter(|n| self.ids.get(n).is_none())
                    .collect();
                let retiring_before = self.retiring.len();
                self.retire_removed(&new);
                let old = std::mem::replace(&mut self.config, new);
                let unhealthy_before = self.unhealthy.clone();
                for n in fresh {
                    self.unhealthy
                        .insert(n, "new: awaiting health checks".to_string());
                }
                if let Err(e) = self.republish("reload") {
                    self.config = old;
                    self.unhealthy = unhealthy_before;
                    self.retiring.truncate(retiring_before);
                    return Err(e);
                }
                // Forget backends no longer configured; re-aim the checks.
                let names: Vec<String> = self
                    .config
                    .vips
                    .iter()
                    .flat_map(|v| v.backends.iter().map(|b| b.name.clone()))
                    .chain(self.retiring.iter().map(|r| r.backend.name.clone()))
                    .collect();
                self.unhealthy.retain(|n, _| names.contains(n));
                self.overrides.retain(|n, _| names.contains(n));
                if let Some(h) = &self.health {
                    h.replace_targets(targets_from_config(&self.config));
                }
                Ok(format!(
                    "reloaded {} (generation {})",
                    self.path.display(),
                    self.publisher.generation()
                ))
            });
        match &result {
            Ok(msg) => log::event("info", "reload", &[("result", &"applied"), ("detail", msg)]),
            Err(e) => log::event("error", "reload", &[("result", &"rejected"), ("error", e)]),
        }
        result
    }

    /// A health check's verdict on backend `name`.
    pub fn set_health(&mut self, name: &str, up: bool, reason: &str) -> Result<(), String> {
        let changed = if up {
            self.unhealthy.remove(name).is_some()
        } else {
            self.unhealthy
                .insert(name.to_string(), reason.to_string())
                .is_none()
        };
        if changed {
            log::event(
                if up { "info" } else { "warn" },
                "backend_health",
                &[
                    ("backend", &name),
                    ("to", &if up { "up" } else { "down" }),
                    ("reason", &reason),
                ],
            );
            self.republish("health")?;
        }
        Ok(())
    }

    fn set_override(&mut self, name: &str, ov: Option<Override>) -> Result<String, String> {
        if self.ids.get(name).is_none() {
            return Err(format!("no backend named `{name}`"));
        }
        let before = self.overrides.get(name).copied();
        match ov {
            Some(o) => self.overrides.insert(name.to_string(), o),
            None => self.overrides.remove(name),
        };
        if let Err(e) = self.republish("operator") {
            match before {
                Some(o) => self.overrides.insert(name.to_string(), o),
                None => self.overrides.remove(name),
            };
            return Err(e);
        }
        let what = match ov {
            Some(Override::Drain) => "draining",
            Some(Override::Disable) => "disabled",
            None => "enabled",
        };
        log::event(
            "info",
            "backend_override",
            &[("backend", &name), ("to", &what)],
        );
        Ok(format!("backend {name} {what}"))
    }

    /// The state a backend gets in the next snapshot.
    fn state_of(&self, name: &str, configured: BackendState) -> BackendState {
        let operator = match self.overrides.get(name) {
            Some(Override::Disable) => BackendState::Down,
            Some(Override::Drain) if configured != BackendState::Down => BackendState::Draining,
            _ => configured,
        };
        if self.unhealthy.contains_key(name) {
            BackendState::Down
        } else {
            operator
        }
    }

    fn republish(&mut self, cause: &str) -> Result<(), String> {
        let mut ids = self.ids.clone();
        let config = self.effective_config();
        let next =
            build_forwarding_with(&config, &self.ports, &mut ids, &|n, s| self.state_of(n, s))?;
        self.ids = ids;
        let generation = self.publisher.publish(next);
        log::event(
            "info",
            "snapshot_published",
            &[("generation", &generation), ("cause", &cause)],
        );
        Ok(())
    }

    /// The config snapshots are built from: the file's, plus the retiring
    /// backends as draining members of their VIPs.
    fn effective_config(&self) -> Config {
        let mut config = self.config.clone();
        for r in &self.retiring {
            if let Some(v) = config.vips.iter_mut().find(|v| v.name == r.vip) {
                let mut b = r.backend.clone();
                b.state = BackendStateConfig::Draining;
                v.backends.push(b);
            }
        }
        config
    }

    /// Before `new` replaces the running config: backends of VIPs that stay
    /// but which `new` no longer lists anywhere start retiring (unless they
    /// are down: their flows have moved already). Retiring backends that
    /// `new` lists again, or whose VIP it drops, stop retiring.
    fn retire_removed(&mut self, new: &Config) {
        let listed = |name: &str| {
            new.vips
                .iter()
                .any(|v| v.backends.iter().any(|b| b.name == name))
        };
        let vip_stays = |vip: &str| new.vips.iter().any(|v| v.name == vip);
        self.retiring
            .retain(|r| !listed(&r.backend.name) && vip_stays(&r.vip));
        let fwd = self.publisher.current();
        let now = Instant::now();
        for v in &self.config.vips {
            if !vip_stays(&v.name) {
                continue;
            }
            for b in &v.backends {
                let name = &b.name;
                let down = self
                    .ids
                    .get(name)
                    .and_then(|id| fwd.backend(id))
                    .is_none_or(|b| b.state == BackendState::Down);
                if listed(name) || down {
                    continue;
                }
                log::event(
                    "info",
                    "backend_retiring",
                    &[("backend", name), ("vip", &v.name)],
                );
                self.retiring.push(Retiring {
                    vip: v.name.clone(),
                    backend: b.clone(),
                    packets: self.backend_packets(name),
                    idle_since: now,
                });
            }
        }
    }

    /// Packets forwarded to backend `name` so far, all workers.
    fn backend_packets(&self, name: &str) -> u64 {
        self.ids.get(name).map_or(0, |id| {
            self.traffic.iter().map(|t| t.backend(id.0).packets).sum()
        })
    }

    /// Periodic work: frees snapshots no worker holds any more, and forgets
    /// retiring backends that have been idle for the established timeout.
    pub fn housekeeping(&mut self, now: Instant) {
        self.reap();
        let idle_for = Duration::from_secs(self.config.flow_table.established_timeout_secs);
        let mut retired = Vec::new();
        for i in 0..self.retiring.len() {
            let packets = self.backend_packets(&self.retiring[i].backend.name);
            let r = &mut self.retiring[i];
            if packets != r.packets {
                r.packets = packets;
                r.idle_since = now;
            } else if now.saturating_duration_since(r.idle_since) >= idle_for {
                retired.push(i);
            }
        }
        if retired.is_empty() {
            return;
        }
        for i in retired.into_iter().rev() {
            let r = self.retiring.remove(i);
            log::event(
                "info",
                "backend_retired",
                &[("backend", &r.backend.name), ("vip", &r.vip)],
            );
        }
        let names: Vec<String> = self
            .config
            .vips
            .iter()
            .flat_map(|v| v.backends.iter().map(|b| b.name.clone()))
            .chain(self.retiring.iter().map(|r| r.backend.name.clone()))
            .collect();
        self.overrides.retain(|n, _| names.contains(n));
        if let Err(e) = self.republish("backend retired") {
            log::event("error", "snapshot_build", &[("error", &e)]);
        }
    }

    /// Which backend a new flow would get (an operator's simulator; pinned
    /// plain-TCP flows keep the backend they already have).
    fn lookup(
        &self,
        protocol: Protocol,
        src: IpAddr,
        sport: u16,
        dst: IpAddr,
        dport: u16,
    ) -> Result<String, String> {
        let fwd = self.publisher.current();
        let vip = fwd
            .vip(dst, dport, protocol)
            .ok_or_else(|| format!("no VIP serves {dst} port {dport}/{protocol:?}"))?;
        let key = FlowKey::new(src, dst, sport, dport, protocol.number());
        let id = vip
            .maglev
            .lookup(flow_hash(&key))
            .ok_or_else(|| format!("vip {}: no backend is up", vip.name))?;
        let b = fwd
            .backend(id)
            .ok_or("internal: backend missing from the snapshot")?;
        Ok(format!(
            "vip {} ({}:{}) -> backend {} ({}), by Maglev over {} active backend(s), generation {}",
            vip.name,
            vip.addr,
            vip.port,
            b.name,
            b.addr,
            vip.backends
                .iter()
                .filter(|id| fwd
                    .backend(**id)
                    .is_some_and(|b| b.state == BackendState::Active))
                .count(),
            self.publisher.generation()
        ))
    }

    /// Everything the metrics page shows.
    pub fn metrics(&self) -> MetricsSnapshot {
        let fwd = self.publisher.current();
        let sum = |f: &dyn Fn(&Traffic) -> TrafficTotals| {
            let mut t = TrafficTotals::default();
            for w in &self.traffic {
                t += f(w);
            }
            t
        };
        let vips = fwd
            .vips
            .iter()
            .map(|v| {
                let t = sum(&|w| w.vip(v.id));
                VipMetrics {
                    name: v.name.clone(),
                    address: v.addr,
                    port: v.port,
                    protocol: v.protocol,
                    packets: t.packets,
                    bytes: t.bytes,
                    new_flows: t.new_flows,
                }
            })
            .collect();
        let mut backends = Vec::new();
        for v in &fwd.vips {
            for id in &v.backends {
                if let Some(b) = fwd.backend(*id) {
                    let t = sum(&|w| w.backend(id.0));
                    backends.push(BackendMetrics {
                        vip: v.name.clone(),
                        name: b.name.clone(),
                        address: b.addr,
                        state: b.state,
                        healthy: !self.unhealthy.contains_key(&b.name),
                        packets: t.packets,
                        bytes: t.bytes,
                        new_flows: t.new_flows,
                    });
                }
            }
        }
        MetricsSnapshot {
            generation: self.publisher.generation(),
            uptime: self.started.elapsed(),
            workers: self
                .slots
                .iter()
                .map(|s| WorkerMetrics {
                    counters: s.read(),
                    flow_table: Some(s.read_flow_table()),
                })
                .collect(),
            vips,
            backends,
        }
    }

    fn backend_rows(&self) -> Vec<(String, String, String, &'static str, bool)> {
        let fwd = self.publisher.current();
        let mut rows = Vec::new();
        for v in &fwd.vips {
            for id in &v.backends {
                if let Some(b) = fwd.backend(*id) {
                    let retiring = self.retiring.iter().any(|r| r.backend.name == b.name);
                    let state = match b.state {
                        BackendState::Active => "active",
                        BackendState::Draining if retiring => "retiring",
                        BackendState::Draining => "draining",
                        BackendState::Down => "down",
                    };
                    rows.push((
                        v.name.clone(),
                        b.name.clone(),
                        b.addr.to_string(),
                        state,
                        !self.unhealthy.contains_key(&b.name),
                    ));
                }
            }
        }
        rows
    }

    fn stats_text(&self) -> String {
        let c = self.counters();
        let mut s = format!(
            "uptime {:.0}s, snapshot generation {}, {} worker(s)\n\n",
            self.started.elapsed().as_secs_f64(),
            self.publisher.generation(),
            self.slots.len()
        );
        let f = self.flow_table_total();
        let _ = writeln!(
            s,
            "flow tables: {} of {} entries in use ({} inserted, {} evicted, {} timed out)\n",
            f.len, f.capacity, f.inserts, f.evictions, f.timeouts
        );
        let _ = writeln!(s, "{:<28} {:>20}", "counter", "value");
        for (name, v) in Counters::NAMES.iter().zip(c.values()) {
            let _ = writeln!(s, "{name:<28} {v:>20}");
        }
        let _ = writeln!(
            s,
            "\n{:<16} {:<16} {:<40} {:<9} health",
            "vip", "backend", "address", "state"
        );
        for (vip, name, addr, state, healthy) in self.backend_rows() {
            let _ = writeln!(
                s,
                "{vip:<16} {name:<16} {addr:<40} {state:<9} {}",
                if healthy { "up" } else { "down" }
            );
        }
        s
    }

    fn stats_json(&self) -> String {
        let c = self.counters();
        let counters: serde_json::Map<String, serde_json::Value> = Counters::NAMES
            .iter()
            .zip(c.values())
            .map(|(n, v)| ((*n).to_string(), v.into()))
            .collect();
        let backends: Vec<serde_json::Value> = self
            .backend_rows()
            .into_iter()
            .map(|(vip, name, addr, state, healthy)| {
                serde_json::json!({
                    "vip": vip, "name": name, "address": addr, "state": state, "healthy": healthy,
                })
            })
            .collect();
        let f = self.flow_table_total();
        let report = serde_json::json!({
            "uptime_seconds": self.started.elapsed().as_secs_f64(),
            "generation": self.publisher.generation(),
            "workers": self.slots.len(),
            "counters": counters,
            "flow_table": {
                "entries": f.len, "capacity": f.capacity, "inserts": f.inserts,
                "evictions": f.evictions, "timeouts": f.timeouts,
            },
            "backends": backends,
        });
        format!("{report}\n")
    }

    /// The flow tables of all workers, summed.
    fn flow_table_total(&self) -> FlowTableMetrics {
        self.slots
            .iter()
            .map(|s| s.read_flow_table())
            .fold(FlowTableMetrics::default(), |a, f| FlowTableMetrics {
                len: a.len + f.len,
                capacity: a.capacity + f.capacity,
                inserts: a.inserts + f.inserts,
                evictions: a.evictions + f.evictions,
                timeouts: a.timeouts + f.timeouts,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: &str = r#"
[dpdk]
eal_args = []
[workers]
lcores = [1]
[[port]]
name = "lan"
device = "net_null0"
[[vip]]
name = "web"
address = "198.18.0.10"
port = 80
table_size = 251
  [[vip.backend]]
  name = "a"
  address = "198.18.1.11"
  mac = "02:00:00:00:01:11"
  [[vip.backend]]
  name = "b"
  address = "198.18.1.12"
  mac = "02:00:00:00:01:12"
"#;

    struct Tmp(PathBuf);
    impl Drop for Tmp {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn manager(name: &str) -> (Manager, Tmp) {
        let path =
            std::env::temp_dir().join(format!("mplb-manager-{name}-{}.toml", std::process::id()));
        std::fs::write(&path, CFG).expect("write config");
        let config = Config::load(&path).expect("valid");
        (
            Manager::new(&path, config, vec![[2, 0, 0, 0, 0, 1]]).expect("builds"),
            Tmp(path),
        )
    }

    fn lookup_backend(m: &mut Manager, sport: u16) -> String {
        let req = Request::parse(&format!("lookup tcp 198.18.2.2 {sport} 198.18.0.10 80"))
            .expect("parses");
        let out = m.handle(&req).expect("lookup");
        out.split("-> backend ")
            .nth(1)
            .and_then(|s| s.split(' ').next())
            .expect("backend name")
            .to_string()
    }

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

    #[test]
    fn health_and_operator_move_new_flows_away() {
        let (mut m, _t) = manager("health");
        let before: Vec<String> = (40000..40064).map(|p| lookup_backend(&mut m, p)).collect();
        assert!(before.iter().any(|b| b == "a") && before.iter().any(|b| b == "b"));
        m.set_health("a", false, "connect refused")
            .expect("republish");
        assert!((40000..40064).all(|p| lookup_backend(&mut m, p) == "b"));
        m.set_health("a", true, "ok").expect("republish");
        let after: Vec<String> = (40000..40064).map(|p| lookup_backend(&mut m, p)).collect();
        assert_eq!(
            before, after,
            "Maglev gives the same answers once a is back"
        );
        m.handle(&Request::Drain("a".into())).expect("drain");
        assert!((40000..40064).all(|p| lookup_backend(&mut m, p) == "b"));
        let fwd = m.current();
        let a = fwd
            .backends
            .iter()
            .flatten()
            .find(|b| b.name == "a")
            .expect("a");
        assert_eq!(
            a.state,
            BackendState::Draining,
            "draining keeps pinned flows"
        );
        assert!(m.handle(&Request::Enable("nobody".into())).is_err());
    }

    #[test]
    fn broken_reload_keeps_the_running_config() {
        let (mut m, t) = manager("reload");
        let gen_before = m.publisher.generation();
        std::fs::write(&t.0, CFG.replace("port = 80", "port = \"eighty\"")).expect("write");
        let e = m.handle(&Request::Reload).expect_err("broken file");
        assert!(e.contains("field `vip[0].port`"), "{e}");
        assert_eq!(m.publisher.generation(), gen_before);
        // A change that needs a restart is refused too.
        std::fs::write(&t.0, CFG.replace("lcores = [1]", "lcores = [2]")).expect("write");
        assert!(
            m.handle(&Request::Reload)
                .expect_err("restart")
                .contains("[workers] changed")
        );
        // A good change is applied.
        std::fs::write(&t.0, CFG.replace("name = \"b\"", "name = \"c\"")).expect("write");
        m.handle(&Request::Reload).expect("applied");
        assert!(m.current().backends.iter().flatten().any(|b| b.name == "c"));
        let stats = m.handle(&Request::Stats { json: true }).expect("stats");
        let v: serde_json::Value = serde_json::from_str(&stats).expect("stats json parses");
        let names: Vec<&str> = v["backends"]
            .as_array()
            .expect("backends")
            .iter()
            .filter_map(|b| b["name"].as_str())
            .collect();
        assert!(names.contains(&"c"), "{stats}");
        assert!(v["counters"]["rx_packets"].is_u64(), "{stats}");
        assert!(v["flow_table"]["capacity"].is_u64(), "{stats}");
    }

    #[test]
    fn a_backend_removed_by_reload_retires_once_idle() {
        let (mut m, t) = manager("retire");
        let traffic = Arc::new(Traffic::new());
        m.set_workers(Vec::new(), vec![Arc::clone(&traffic)]);
        let b = m.ids.get("b").expect("id");
        std::fs::write(
            &t.0,
            CFG.replace(
                "  [[vip.backend]]\n  name = \"b\"\n  address = \"198.18.1.12\"\n  mac = \"02:00:00:00:01:12\"\n",
                "",
            ),
        )
        .expect("write");
        m.handle(&Request::Reload).expect("reload");
        // Still in the snapshot, as draining under its id: pinned flows go on.
        let state = |m: &Manager| m.current().backend(b).map(|x| (x.state, x.name.clone()));
        assert_eq!(state(&m), Some((BackendState::Draining, "b".to_string())));
        assert!(m.current().vips[0].backends.contains(&b));
        // No new flows, and the operator sees it retiring.
        assert!((40000..40064).all(|p| lookup_backend(&mut m, p) == "a"));
        let stats = m.handle(&Request::Stats { json: false }).expect("stats");
        assert!(
            stats
                .lines()
                .any(|l| l.contains(" b ") && l.contains("retiring")),
            "{stats}"
        );

        // Traffic to it keeps it; idle for the established timeout retires it.
        let idle = Duration::from_secs(m.config.flow_table.established_timeout_secs);
        let t0 = Instant::now();
        m.housekeeping(t0 + idle / 2);
        traffic.record(0, b.0, 100, false);
        m.housekeeping(t0 + idle + Duration::from_secs(1));
        assert!(
            m.current().backend(b).is_some(),
            "a packet went to it: not idle"
        );
        m.housekeeping(t0 + idle + idle / 2);
        assert!(m.current().backend(b).is_some());
        m.housekeeping(t0 + 2 * idle + Duration::from_secs(2));
        assert_eq!(state(&m), None, "idle for the established timeout: gone");
        assert!(m.ids.get("b").is_none());

        // Put back while retiring: it is simply configured again.
        std::fs::write(&t.0, CFG).expect("write");
        m.handle(&Request::Reload).expect("reload");
        assert!(m.retiring.is_empty());
    }

    #[test]
    fn a_backend_put_back_during_retirement_is_active_again() {
        let (mut m, t) = manager("unretire");
        let smaller = CFG.replace(
            "  [[vip.backend]]\n  name = \"b\"\n  address = \"198.18.1.12\"\n  mac = \"02:00:00:00:01:12\"\n",
            "",
        );
        std::fs::write(&t.0, smaller).expect("write");
        m.handle(&Request::Reload).expect("reload");
        assert_eq!(m.retiring.len(), 1);
        std::fs::write(&t.0, CFG).expect("write");
        m.handle(&Request::Reload).expect("reload");
        assert!(m.retiring.is_empty());
        let b = m.ids.get("b").expect("id");
        assert_eq!(
            m.current().backend(b).map(|x| x.state),
            Some(BackendState::Active)
        );
        // A backend that is down when removed does not retire: its flows
        // have moved already.
        m.set_health("b", false, "refused").expect("republish");
        std::fs::write(
            &t.0,
            CFG.replace(
                "  [[vip.backend]]\n  name = \"b\"\n  address = \"198.18.1.12\"\n  mac = \"02:00:00:00:01:12\"\n",
                "",
            ),
        )
        .expect("write");
        m.handle(&Request::Reload).expect("reload");
        assert!(m.retiring.is_empty());
        assert!(m.current().backend(b).is_none());
    }
}
