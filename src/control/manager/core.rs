//! The management core: the running config, backend health and operator
//! overrides, and the forwarding snapshot they make. It reads no file, no
//! clock and writes no log: the caller passes a parsed config, health
//! verdicts, the workers' traffic counters and `now`; the core answers, and
//! queues what to publish to the workers and what to log as [`Output`]s,
//! which the caller takes with [`Core::drain`] and carries out in order.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::request::Override;
use crate::config::{BackendConfig, BackendStateConfig, Config, HealthKind, Mac};
use crate::control::build::{StableIds, build_forwarding_with};
use crate::control::resolver::{Happened, Report, Resolution, Resolver, ResolverCounters, Want};
use crate::datapath::forwarding::{BackendState, Forwarding, PortFacts, Protocol};
use crate::datapath::hash::FlowKey;
use crate::datapath::neighbours::Solicit;
use crate::datapath::traffic::Traffic;

/// What the core asks its caller to do, in order.
#[derive(Debug)]
pub enum Output {
    /// Hand this snapshot to the workers; it becomes generation `generation`.
    Publish {
        generation: u64,
        snapshot: Arc<Forwarding>,
    },
    /// Write this event to the log.
    Log(Event),
    /// Have a worker send this ARP request / neighbour solicitation.
    Solicit(Solicit),
}

/// Something worth a log line, as a value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A reload was applied (`Ok`: the reply) or rejected (`Err`: why).
    Reload(Result<String, String>),
    /// A health check moved a backend up or down.
    BackendHealth {
        backend: String,
        up: bool,
        reason: String,
    },
    /// An operator drained, disabled or enabled a backend.
    BackendOverride { backend: String, to: &'static str },
    /// A reload removed a backend that may still have pinned flows.
    BackendRetiring { backend: String, vip: String },
    /// A retiring backend was idle long enough and is gone.
    BackendRetired { backend: String, vip: String },
    SnapshotPublished {
        generation: u64,
        cause: &'static str,
    },
    /// A new snapshot could not be built; the workers keep the last one.
    SnapshotBuildFailed { error: String },
    /// The resolution of a backend's MAC by ARP / ND moved on.
    Neighbour(Report),
}

impl Event {
    pub fn level(&self) -> &'static str {
        match self {
            Event::Reload(Err(_)) | Event::SnapshotBuildFailed { .. } => "error",
            Event::BackendHealth { up: false, .. } => "warn",
            Event::Neighbour(r)
                if matches!(r.what, Happened::NoAnswer { .. } | Happened::Stale { .. }) =>
            {
                "warn"
            }
            _ => "info",
        }
    }

    /// The `event=` of the log line.
    pub fn name(&self) -> &'static str {
        match self {
            Event::Reload(_) => "reload",
            Event::BackendHealth { .. } => "backend_health",
            Event::BackendOverride { .. } => "backend_override",
            Event::BackendRetiring { .. } => "backend_retiring",
            Event::BackendRetired { .. } => "backend_retired",
            Event::SnapshotPublished { .. } => "snapshot_published",
            Event::SnapshotBuildFailed { .. } => "snapshot_build",
            Event::Neighbour(r) => match r.what {
                Happened::Resolved { .. } => "neighbour_resolved",
                Happened::Reachable { .. } => "neighbour_reachable",
                Happened::Changed { .. } => "neighbour_changed",
                Happened::NoAnswer { .. } => "neighbour_unresolved",
                Happened::Stale { .. } => "neighbour_stale",
            },
        }
    }

    /// The key/value fields of the log line, in order.
    pub fn fields(&self) -> Vec<(&'static str, &dyn fmt::Display)> {
        match self {
            Event::Reload(Ok(detail)) => vec![("result", &"applied"), ("detail", detail)],
            Event::Reload(Err(error)) => vec![("result", &"rejected"), ("error", error)],
            Event::BackendHealth {
                backend,
                up,
                reason,
            } => vec![
                ("backend", backend),
                ("to", if *up { &"up" } else { &"down" }),
                ("reason", reason),
            ],
            Event::BackendOverride { backend, to } => vec![("backend", backend), ("to", to)],
            Event::BackendRetiring { backend, vip } | Event::BackendRetired { backend, vip } => {
                vec![("backend", backend), ("vip", vip)]
            }
            Event::SnapshotPublished { generation, cause } => {
                vec![("generation", generation), ("cause", cause)]
            }
            Event::SnapshotBuildFailed { error } => vec![("error", error)],
            Event::Neighbour(r) => neighbour_fields(r),
        }
    }
}

/// The fields of a [`Event::Neighbour`] line: the backends, their address
/// and port, then what happened in words.
fn neighbour_fields(r: &Report) -> Vec<(&'static str, &dyn fmt::Display)> {
    let mut f: Vec<(&'static str, &dyn fmt::Display)> = vec![
        ("backend", &r.backends),
        ("address", &r.addr),
        ("port", &r.port_name),
    ];
    match &r.what {
        Happened::Resolved { mac, .. } | Happened::Reachable { mac } | Happened::Stale { mac } => {
            f.push(("mac", mac));
        }
        Happened::Changed { from, to } => {
            f.push(("from", from));
            f.push(("to", to));
        }
        Happened::NoAnswer { .. } => {}
    }
    let message: &dyn fmt::Display = match r.what {
        Happened::Resolved { .. } => &"MAC learnt; the backend can take traffic",
        Happened::Reachable { .. } => &"answers again",
        Happened::Changed { .. } => &"MAC changed; traffic follows it",
        Happened::NoAnswer { .. } => {
            &"no answer to ARP / neighbour solicitation; the backend gets no traffic until it answers (still asking, less often)"
        }
        Happened::Stale { .. } => {
            &"stopped answering ARP / neighbour solicitation; still sending to its last MAC while asking"
        }
    };
    f.push(("message", message));
    f
}

/// The management state, without I/O.
pub struct Core {
    config: Config,
    ports: Vec<PortFacts>,
    ids: StableIds,
    /// The last snapshot built (the one the caller was told to publish).
    current: Arc<Forwarding>,
    generation: u64,
    overrides: BTreeMap<String, Override>,
    /// Backends whose health check says down (absent = up).
    unhealthy: BTreeMap<String, String>,
    /// Whether health checks run: a backend new to a reload then waits for
    /// them before it gets traffic.
    checking: bool,
    /// Backends a reload removed while they may still have pinned flows.
    retiring: Vec<Retiring>,
    /// Resolves the MACs of backends configured without one.
    resolver: Resolver,
    /// Backends whose MAC is learnt: name → (port, address) resolved.
    learnt: BTreeMap<String, (usize, IpAddr)>,
    outputs: Vec<Output>,
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

impl Core {
    /// Builds the first snapshot (generation 0) from `config`. `ports`: the
    /// started ports' MACs and MTUs, by index.
    pub fn new(config: Config, ports: Vec<PortFacts>) -> Result<Core, String> {
        let mut core = Core {
            config,
            ports,
            ids: StableIds::default(),
            current: Arc::new(Forwarding::default()),
            generation: 0,
            overrides: BTreeMap::new(),
            unhealthy: BTreeMap::new(),
            checking: false,
            retiring: Vec::new(),
            resolver: Resolver::default(),
            learnt: BTreeMap::new(),
            outputs: Vec::new(),
        };
        let mut ids = StableIds::default();
        core.current = Arc::new(core.build(&mut ids)?);
        core.ids = ids;
        Ok(core)
    }

    /// What to publish and log since the last call, in order.
    pub fn drain(&mut self) -> Vec<Output> {
        std::mem::take(&mut self.outputs)
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The last snapshot built.
    pub fn current(&self) -> &Arc<Forwarding> {
        &self.current
    }

    /// Generation of [`Core::current`] (0 = the first).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn ids(&self) -> &StableIds {
        &self.ids
    }

    /// Whether backend `name` passes its health checks.
    pub fn is_healthy(&self, name: &str) -> bool {
        !self.unhealthy.contains_key(name)
    }

    /// Whether backend `name` is retiring (removed by a reload, still draining).
    pub fn is_retiring(&self, name: &str) -> bool {
        self.retiring.iter().any(|r| r.backend.name == name)
    }

    /// Backends retiring now.
    pub fn retiring_len(&self) -> usize {
        self.retiring.len()
    }

    /// Health checks run from now on (see [`Core::reload`]).
    pub fn set_checking(&mut self, checking: bool) {
        self.checking = checking;
    }

    fn log(&mut self, e: Event) {
        self.outputs.push(Output::Log(e));
    }

    /// Replaces the running config by `loaded`, the outcome of reading
    /// `file` (named in the reply). A broken file, or one that changes what
    /// needs a restart, is rejected and the running config stays.
    pub fn reload(
        &mut self,
        file: &Path,
        loaded: Result<Config, String>,
        now: Instant,
        traffic: &[Arc<Traffic>],
    ) -> Result<String, String> {
        let result = loaded.and_then(|new| self.apply(file, new, now, traffic));
        self.log(Event::Reload(result.clone()));
        result
    }

    fn apply(
        &mut self,
        file: &Path,
        new: Config,
        now: Instant,
        traffic: &[Arc<Traffic>],
    ) -> Result<String, String> {
        if let Some(why) = self.config.reload_blocker(&new) {
            return Err(format!("{}: {why}; that needs a restart", file.display()));
        }
        // A backend new to this instance gets traffic only once its
        // health checks pass (the checker reports it up after `rise`).
        let fresh: Vec<String> = new
            .vips
            .iter()
            .enumerate()
            .filter(|(i, _)| self.checking && new.health_for(*i).kind != HealthKind::None)
            .flat_map(|(_, v)| v.backends.iter().map(|b| b.name.clone()))
            .filter(|n| self.ids.get(n).is_none())
            .collect();
        let retiring_before = self.retiring.len();
        self.retire_removed(&new, now, traffic);
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
        // Forget backends no longer configured.
        let names = self.known_names();
        self.unhealthy.retain(|n, _| names.contains(n));
        self.overrides.retain(|n, _| names.contains(n));
        Ok(format!(
            "reloaded {} (generation {})",
            file.display(),
            self.generation
        ))
    }

    /// Backends configured or retiring.
    fn known_names(&self) -> Vec<String> {
        self.config
            .vips
            .iter()
            .flat_map(|v| v.backends.iter().map(|b| b.name.clone()))
            .chain(self.retiring.iter().map(|r| r.backend.name.clone()))
            .collect()
    }

    /// A health check's verdict on backend `name`; a failed snapshot build
    /// is logged.
    pub fn health_result(&mut self, name: &str, up: bool, reason: &str) {
        if let Err(error) = self.set_health(name, up, reason) {
            self.log(Event::SnapshotBuildFailed { error });
        }
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
            self.log(Event::BackendHealth {
                backend: name.to_string(),
                up,
                reason: reason.to_string(),
            });
            self.republish("health")?;
        }
        Ok(())
    }

    /// An operator's `backend drain|disable|enable NAME` (`None`: enable).
    pub fn set_override(&mut self, name: &str, ov: Option<Override>) -> Result<String, String> {
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
        self.log(Event::BackendOverride {
            backend: name.to_string(),
            to: what,
        });
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

    fn republish(&mut self, cause: &'static str) -> Result<(), String> {
        let mut ids = self.ids.clone();
        let next = self.build(&mut ids)?;
        self.ids = ids;
        self.current = Arc::new(next);
        self.generation += 1;
        self.outputs.push(Output::Publish {
            generation: self.generation,
            snapshot: Arc::clone(&self.current),
        });
        self.log(Event::SnapshotPublished {
            generation: self.generation,
            cause,
        });
        Ok(())
    }

    /// The next snapshot: the effective config with the MACs learnt so far
    /// filled in; a backend whose MAC is learnt but not known yet is down
    /// (out of the Maglev tables). Points the resolver at the addresses of
    /// these backends.
    fn build(&mut self, ids: &mut StableIds) -> Result<Forwarding, String> {
        let mut config = self.effective_config();
        let port = config.neighbour_port();
        let port_name = config
            .ports
            .get(port)
            .map_or_else(String::new, |p| p.name.clone());
        let mut wants: BTreeMap<IpAddr, Vec<String>> = BTreeMap::new();
        let mut learnt = BTreeMap::new();
        for v in &config.vips {
            for b in &v.backends {
                if config.learns_mac(v, b) {
                    let names = wants.entry(b.address).or_default();
                    if !names.contains(&b.name) {
                        names.push(b.name.clone());
                    }
                    learnt.insert(b.name.clone(), (port, b.address));
                }
            }
        }
        self.resolver.watch(
            wants
                .into_iter()
                .map(|(addr, backends)| Want {
                    port,
                    port_name: port_name.clone(),
                    addr,
                    backends,
                })
                .collect(),
        );
        let mut unresolved = std::collections::BTreeSet::new();
        for v in &mut config.vips {
            for b in &mut v.backends {
                if let Some(&(port, addr)) = learnt.get(&b.name) {
                    b.mac = self.resolver.mac(port, addr).map(Mac);
                    if b.mac.is_none() {
                        unresolved.insert(b.name.clone());
                    }
                }
            }
        }
        self.learnt = learnt;
        let state = |n: &str, s| {
            if unresolved.contains(n) {
                BackendState::Down
            } else {
                self.state_of(n, s)
            }
        };
        let next = build_forwarding_with(&config, &self.ports, ids, &state)?;
        Ok(next.with_neighbours(Arc::clone(self.resolver.table())))
    }

    /// Takes in the ARP / ND answers the workers recorded and asks for the
    /// MACs due at `now` ([`Output::Solicit`]); a MAC learnt or changed is
    /// published in a new snapshot.
    pub fn poll_neighbours(&mut self, now: Instant) {
        let (mut ask, mut reports) = (Vec::new(), Vec::new());
        let changed = self.resolver.poll(now, &mut ask, &mut reports);
        self.outputs.extend(ask.into_iter().map(Output::Solicit));
        for r in reports {
            self.log(Event::Neighbour(r));
        }
        if changed {
            if let Err(error) = self.republish("neighbour") {
                self.log(Event::SnapshotBuildFailed { error });
            }
        }
    }

    /// How backend `name`'s MAC is known: `None` if it is static (from the
    /// config, or the gateway's for IP-in-IP), else the resolution's state.
    pub fn resolution(&self, name: &str) -> Option<Resolution> {
        let &(port, addr) = self.learnt.get(name)?;
        self.resolver.resolution(port, addr)
    }

    /// The resolver's totals.
    pub fn resolver_counters(&self) -> ResolverCounters {
        self.resolver.counters()
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
    fn retire_removed(&mut self, new: &Config, now: Instant, traffic: &[Arc<Traffic>]) {
        let listed = |name: &str| {
            new.vips
                .iter()
                .any(|v| v.backends.iter().any(|b| b.name == name))
        };
        let vip_stays = |vip: &str| new.vips.iter().any(|v| v.name == vip);
        self.retiring
            .retain(|r| !listed(&r.backend.name) && vip_stays(&r.vip));
        let mut started = Vec::new();
        for v in &self.config.vips {
            if !vip_stays(&v.name) {
                continue;
            }
            for b in &v.backends {
                let name = &b.name;
                let down = self
                    .ids
                    .get(name)
                    .and_then(|id| self.current.backend(id))
                    .is_none_or(|b| b.state == BackendState::Down);
                if listed(name) || down {
                    continue;
                }
                started.push(Retiring {
                    vip: v.name.clone(),
                    backend: b.clone(),
                    packets: self.backend_packets(name, traffic),
                    idle_since: now,
                });
            }
        }
        for r in started {
            self.log(Event::BackendRetiring {
                backend: r.backend.name.clone(),
                vip: r.vip.clone(),
            });
            self.retiring.push(r);
        }
    }

    /// Packets forwarded to backend `name` so far, all workers.
    fn backend_packets(&self, name: &str, traffic: &[Arc<Traffic>]) -> u64 {
        self.ids.get(name).map_or(0, |id| {
            traffic.iter().map(|t| t.backend(id.0).packets).sum()
        })
    }

    /// Periodic work: forgets retiring backends that have been idle for the
    /// established timeout (as `traffic` shows at `now`).
    pub fn housekeeping(&mut self, now: Instant, traffic: &[Arc<Traffic>]) {
        let idle_for = Duration::from_secs(self.config.flow_table.established_timeout_secs);
        let mut retired = Vec::new();
        for i in 0..self.retiring.len() {
            let packets = self.backend_packets(&self.retiring[i].backend.name, traffic);
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
            self.log(Event::BackendRetired {
                backend: r.backend.name,
                vip: r.vip,
            });
        }
        let names = self.known_names();
        self.overrides.retain(|n, _| names.contains(n));
        if let Err(error) = self.republish("backend retired") {
            self.log(Event::SnapshotBuildFailed { error });
        }
    }

    /// Which backend a new flow would get (an operator's simulator; pinned
    /// plain-TCP flows keep the backend they already have).
    pub fn lookup(
        &self,
        protocol: Protocol,
        src: IpAddr,
        sport: u16,
        dst: IpAddr,
        dport: u16,
    ) -> Result<String, String> {
        let fwd = &self.current;
        let vip = fwd
            .vip(dst, dport, protocol)
            .ok_or_else(|| format!("no VIP serves {dst} port {dport}/{protocol:?}"))?;
        let key = FlowKey::new(src, dst, sport, dport, protocol.number());
        let id = vip
            .maglev
            .lookup(fwd.hash.flow(&key))
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
            self.generation
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::config::{Backend, Vip, null_port, web_a_b, without_backend};
    use crate::wire::MacAddr;

    fn config(text: &str) -> Config {
        Config::parse(text, Path::new("t.toml")).expect("valid")
    }

    fn core() -> Core {
        Core::new(
            config(&web_a_b()),
            vec![PortFacts::from([2, 0, 0, 0, 0, 1])],
        )
        .expect("builds")
    }

    /// The outputs as lines: `publish N`, or `LEVEL EVENT k=v ...`.
    fn lines(core: &mut Core) -> Vec<String> {
        core.drain()
            .into_iter()
            .map(|o| match o {
                Output::Publish {
                    generation,
                    snapshot,
                } => {
                    if generation == core.generation() {
                        assert!(
                            Arc::ptr_eq(&snapshot, core.current()),
                            "the newest is current"
                        );
                    }
                    format!("publish {generation}")
                }
                Output::Solicit(q) => format!("ask {} {:?}", q.target, q.unicast.map(MacAddr)),
                Output::Log(e) => {
                    let mut l = format!("{} {}", e.level(), e.name());
                    for (k, v) in e.fields() {
                        l += &format!(" {k}={v}");
                    }
                    l
                }
            })
            .collect()
    }

    fn state(core: &Core, name: &str) -> Option<BackendState> {
        let id = core.ids().get(name)?;
        core.current().backend(id).map(|b| b.state)
    }

    /// Which backend new flows from ports 40000..40064 get.
    fn picks(core: &Core) -> Vec<String> {
        (40000..40064)
            .map(|sport| {
                let out = core
                    .lookup(
                        Protocol::Tcp,
                        "198.18.2.2".parse().expect("ip"),
                        sport,
                        "198.18.0.10".parse().expect("ip"),
                        80,
                    )
                    .expect("lookup");
                out.split("-> backend ")
                    .nth(1)
                    .and_then(|s| s.split(' ').next())
                    .expect("backend name")
                    .to_string()
            })
            .collect()
    }

    #[test]
    fn lookup_names_the_backend_the_datapath_picks_in_each_hash_version() {
        use crate::datapath::hash::HashVersion;
        use crate::testing::{Harness, Tables, frames::first_packet};
        let port_mac = [2, 0, 0, 0, 0, 1];
        let mut answers = Vec::new();
        for version in HashVersion::ALL {
            let text = null_port(&format!("[datapath]\nhash_version = {version}\n"))
                + &Vip::web_a_b().to_string();
            let c = Core::new(config(&text), vec![PortFacts::from(port_mac)]).expect("builds");
            assert_eq!(picks(&c).len(), 64);
            let mut h = Harness::build(&config(&text), &[port_mac], Tables::small(1 << 10));
            let src = "198.18.2.2".parse().expect("ip");
            let vip = "198.18.0.10".parse().expect("ip");
            let by_mac = |mac: &[u8]| match mac.last() {
                Some(0x11) => "a",
                Some(0x12) => "b",
                _ => "none",
            };
            let sent: Vec<String> = (40000..40064)
                .map(|sport| {
                    let (_, out) = h.send(&first_packet(port_mac, (src, sport), (vip, 80), false));
                    by_mac(out.get(..6).unwrap_or(&[])).to_string()
                })
                .collect();
            assert_eq!(picks(&c), sent, "hash version {version}");
            answers.push(sent);
        }
        assert_ne!(
            answers[0], answers[1],
            "the versions place some flows apart"
        );
    }

    #[test]
    fn the_first_snapshot_is_generation_0_and_nothing_is_queued() {
        let mut c = core();
        assert_eq!(c.generation(), 0);
        assert!(lines(&mut c).is_empty());
        assert_eq!(state(&c, "a"), Some(BackendState::Active));
    }

    #[test]
    fn reload_publishes_the_new_config_and_logs_in_order() {
        let mut c = core();
        let t0 = Instant::now();
        let reply = c
            .reload(
                Path::new("t.toml"),
                Ok(config(&web_a_b().replace("name = \"b\"", "name = \"c\""))),
                t0,
                &[],
            )
            .expect("applied");
        assert_eq!(reply, "reloaded t.toml (generation 1)");
        assert_eq!(
            lines(&mut c),
            [
                "info backend_retiring backend=b vip=web",
                "publish 1",
                "info snapshot_published generation=1 cause=reload",
                "info reload result=applied detail=reloaded t.toml (generation 1)",
            ]
        );
        assert_eq!(state(&c, "c"), Some(BackendState::Active), "no checks run");
        assert_eq!(state(&c, "b"), Some(BackendState::Draining), "retiring");
        assert!(c.is_retiring("b"));
    }

    #[test]
    fn a_rejected_reload_publishes_nothing() {
        let mut c = core();
        let e = c
            .reload(
                Path::new("t.toml"),
                Err("t.toml:3:1: bad".into()),
                Instant::now(),
                &[],
            )
            .expect_err("broken");
        assert_eq!(e, "t.toml:3:1: bad");
        assert_eq!(
            lines(&mut c),
            ["error reload result=rejected error=t.toml:3:1: bad"]
        );
        let e = c
            .reload(
                Path::new("t.toml"),
                Ok(config(&web_a_b().replace("lcores = [1]", "lcores = [2]"))),
                Instant::now(),
                &[],
            )
            .expect_err("restart");
        assert_eq!(e, "t.toml: [workers] changed; that needs a restart");
        assert_eq!(lines(&mut c).len(), 1, "only the log line");
        assert_eq!(c.generation(), 0);
        assert_eq!(c.config().workers.lcores, [1]);
    }

    #[test]
    fn a_new_backend_waits_for_its_health_checks() {
        let mut c = core();
        c.set_checking(true);
        let c_backend = Backend::new("c", "198.18.1.13").mac("02:00:00:00:01:13");
        let more = null_port("") + &Vip::web_a_b().backend(c_backend).to_string();
        c.reload(Path::new("t.toml"), Ok(config(&more)), Instant::now(), &[])
            .expect("applied");
        lines(&mut c);
        assert_eq!(state(&c, "c"), Some(BackendState::Down));
        assert!(!c.is_healthy("c"));

        c.health_result("c", true, "ok");
        assert_eq!(
            lines(&mut c),
            [
                "info backend_health backend=c to=up reason=ok",
                "publish 2",
                "info snapshot_published generation=2 cause=health",
            ]
        );
        assert_eq!(state(&c, "c"), Some(BackendState::Active));
        // The same verdict again changes nothing.
        c.health_result("c", true, "ok");
        assert!(lines(&mut c).is_empty());
    }

    #[test]
    fn a_health_transition_moves_new_flows_and_back() {
        let mut c = core();
        let before = picks(&c);
        assert!(before.iter().any(|b| b == "a") && before.iter().any(|b| b == "b"));
        c.health_result("a", false, "connect refused");
        assert_eq!(
            lines(&mut c),
            [
                "warn backend_health backend=a to=down reason=connect refused",
                "publish 1",
                "info snapshot_published generation=1 cause=health",
            ]
        );
        assert!(picks(&c).iter().all(|b| b == "b"));
        c.health_result("a", true, "ok");
        assert_eq!(lines(&mut c).len(), 3);
        assert_eq!(picks(&c), before, "Maglev gives the same answers again");
    }

    #[test]
    fn drain_keeps_the_backend_but_gives_it_no_new_flows() {
        let mut c = core();
        assert_eq!(
            c.set_override("a", Some(Override::Drain)),
            Ok("backend a draining".to_string())
        );
        assert_eq!(
            lines(&mut c),
            [
                "publish 1",
                "info snapshot_published generation=1 cause=operator",
                "info backend_override backend=a to=draining",
            ]
        );
        assert_eq!(state(&c, "a"), Some(BackendState::Draining));
        assert!(picks(&c).iter().all(|b| b == "b"));
        // The override outlives a reload; a health verdict of down wins.
        c.reload(
            Path::new("t.toml"),
            Ok(config(&web_a_b())),
            Instant::now(),
            &[],
        )
        .expect("applied");
        assert_eq!(state(&c, "a"), Some(BackendState::Draining));
        c.health_result("a", false, "refused");
        assert_eq!(state(&c, "a"), Some(BackendState::Down));
        lines(&mut c);

        assert!(c.set_override("nobody", None).is_err());
        assert!(lines(&mut c).is_empty());
    }

    #[test]
    fn a_retiring_backend_goes_once_idle_for_the_established_timeout() {
        let mut c = core();
        let traffic = vec![Arc::new(Traffic::new())];
        let b = c.ids().get("b").expect("id");
        let t0 = Instant::now();
        c.reload(
            Path::new("t.toml"),
            Ok(config(&without_backend(&web_a_b(), "b"))),
            t0,
            &traffic,
        )
        .expect("applied");
        lines(&mut c);
        let idle = Duration::from_secs(c.config().flow_table.established_timeout_secs);

        c.housekeeping(t0 + idle / 2, &traffic);
        traffic[0].record(0, b.0, 100, false);
        c.housekeeping(t0 + idle + Duration::from_secs(1), &traffic);
        assert!(lines(&mut c).is_empty(), "a packet went to it: not idle");
        c.housekeeping(t0 + 2 * idle + Duration::from_secs(2), &traffic);
        assert_eq!(
            lines(&mut c),
            [
                "info backend_retired backend=b vip=web",
                "publish 2",
                "info snapshot_published generation=2 cause=backend retired",
            ]
        );
        assert_eq!(state(&c, "b"), None);
        assert!(!c.is_retiring("b"));
    }

    /// `web` with `a` (static MAC) and `b` learnt by ARP.
    fn learnt_b() -> Core {
        let text = null_port("")
            + &Vip::web()
                .option("table_size", 251)
                .backend(Backend::new("a", "198.18.1.11").mac("02:00:00:00:01:11"))
                .backend(Backend::new("b", "198.18.1.12"))
                .to_string();
        Core::new(config(&text), vec![PortFacts::from([2, 0, 0, 0, 0, 1])]).expect("builds")
    }

    #[test]
    fn a_backend_without_mac_gets_traffic_once_it_answers() {
        let mut c = learnt_b();
        let b = c.ids().get("b").expect("id");
        let b_addr: IpAddr = "198.18.1.12".parse().expect("ip");
        assert_eq!(state(&c, "b"), Some(BackendState::Down), "unresolved");
        assert_eq!(c.resolution("b"), Some(Resolution::Unresolved));
        assert_eq!(c.resolution("a"), None, "static");
        assert!(picks(&c).iter().all(|n| n == "a"));
        let watched: Vec<_> = c.current().neighbours.watched().collect();
        assert_eq!(watched, [(0, b_addr)], "only b is resolved, on port 0");

        let t0 = Instant::now();
        c.poll_neighbours(t0);
        assert_eq!(lines(&mut c), ["ask 198.18.1.12 None"]);
        // A worker records b's answer in the snapshot's table.
        assert!(
            c.current()
                .neighbours
                .record(0, b_addr, [2, 0, 0, 0, 1, 0x12])
        );
        c.poll_neighbours(t0 + Duration::from_millis(20));
        assert_eq!(
            lines(&mut c),
            [
                "info neighbour_resolved backend=b address=198.18.1.12 port=lan mac=02:00:00:00:01:12 \
                 message=MAC learnt; the backend can take traffic",
                "publish 1",
                "info snapshot_published generation=1 cause=neighbour",
            ]
        );
        assert_eq!(state(&c, "b"), Some(BackendState::Active));
        assert_eq!(
            c.current().backend(b).and_then(|x| x.mac),
            Some([2, 0, 0, 0, 1, 0x12])
        );
        assert!(picks(&c).iter().any(|n| n == "b"));

        // A reload keeps what was learnt: no new question, same table.
        let table = Arc::clone(&c.current().neighbours);
        let text = null_port("")
            + &Vip::web()
                .option("table_size", 251)
                .backend(Backend::new("b", "198.18.1.12").weight(2))
                .backend(Backend::new("a", "198.18.1.11").mac("02:00:00:00:01:11"))
                .to_string();
        c.reload(Path::new("t.toml"), Ok(config(&text)), t0, &[])
            .expect("applied");
        assert!(Arc::ptr_eq(&table, &c.current().neighbours));
        assert_eq!(state(&c, "b"), Some(BackendState::Active));
        lines(&mut c);
        c.poll_neighbours(t0 + Duration::from_secs(1));
        assert!(lines(&mut c).is_empty());
    }

    #[test]
    fn a_backend_that_never_answers_is_logged_once_by_name_address_and_port() {
        let mut c = learnt_b();
        let t0 = Instant::now();
        let mut warns = Vec::new();
        for tick in 0..(120 * 50) {
            c.poll_neighbours(t0 + Duration::from_millis(20 * tick));
            warns.extend(lines(&mut c).into_iter().filter(|l| l.starts_with("warn")));
        }
        assert_eq!(
            warns,
            [
                "warn neighbour_unresolved backend=b address=198.18.1.12 port=lan \
              message=no answer to ARP / neighbour solicitation; the backend gets no traffic \
              until it answers (still asking, less often)"
            ]
        );
        assert_eq!(c.resolver_counters().failures, 1);
        assert_eq!(state(&c, "b"), Some(BackendState::Down));
    }
}
