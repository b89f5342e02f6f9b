//! The management thread's state: the running config, backend health and
//! operator overrides, and the publisher of forwarding snapshots. Every change
//! (reload, health transition, `mplb backend ...`) goes through here and ends
//! in one new snapshot, published to the workers without stopping them.
//!
//! The decisions are made by [`Core`], which does no I/O; [`Manager`] is its
//! edge: it reads the config file, the clock and the workers' counters,
//! publishes the snapshots the core builds and writes the events it returns
//! to the log.

mod core;
mod drain;
mod fleet;
mod liveness;
mod report;
mod request;

use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use crossbeam::channel::Sender;

use self::drain::Drain;
use self::liveness::Liveness;
use super::bgp::Announcer;
use super::health::{HealthEvent, HealthThread, spawn_health_thread, targets_from_config};
use super::log;
use super::metrics::{self, DeviceProbe, MetricsQuery, MetricsSnapshot};
use super::stats::{StatsSlot, total};
use crate::config::Config;
use crate::datapath::counters::Counters;
use crate::datapath::forwarding::{Forwarding, PortFacts};
use crate::datapath::neighbours::Solicit;
use crate::datapath::traffic::Traffic;
use crate::snapshot::{Publisher, Reader};

pub use self::core::{Core, Event, Output};
pub use request::{Backends, Override, Request};

/// The management thread's state: the [`Core`] and what it needs from the
/// outside world.
pub struct Manager {
    path: PathBuf,
    core: Core,
    publisher: Publisher<Forwarding>,
    slots: Vec<Arc<StatsSlot>>,
    traffic: Vec<Arc<Traffic>>,
    health: Option<HealthThread>,
    /// Where ARP requests / neighbour solicitations go for a worker to send.
    solicits: Option<Sender<Solicit>>,
    devices: Option<DeviceProbe>,
    started: Instant,
    /// Announces the VIPs by BGP (with `[bgp]`).
    bgp: Option<Announcer>,
    /// Ports started and the first snapshot published.
    forwarding: bool,
    /// The health thread's first verdicts were seen settled (announce once).
    health_settled_seen: bool,
    /// `mplb drain` under way.
    drain: Option<Drain>,
    /// `mplb drain --wait` clients, answered when the drain ends.
    drain_waiters: Vec<Sender<Result<String, String>>>,
    /// The workers' heartbeats, and which of them stalled (by index).
    liveness: Liveness,
    stalled: Vec<usize>,
}

/// Where a `mplb drain --wait` is answered.
pub type DrainWaiter = Sender<Result<String, String>>;

impl Manager {
    /// Builds the first snapshot from `config` (loaded from `path`).
    /// `ports`: the started ports' MACs and MTUs (or bare MACs), by index.
    pub fn new<P: Into<PortFacts>>(
        path: &Path,
        config: Config,
        ports: Vec<P>,
    ) -> Result<Manager, String> {
        let ports: Vec<PortFacts> = ports.into_iter().map(Into::into).collect();
        let bgp = config.bgp.clone().map(Announcer::new);
        let core = Core::new(config, ports)?;
        let publisher = Publisher::new(Arc::clone(core.current()));
        Ok(Manager {
            path: path.to_path_buf(),
            core,
            publisher,
            slots: Vec::new(),
            traffic: Vec::new(),
            health: None,
            solicits: None,
            devices: None,
            started: Instant::now(),
            bgp,
            forwarding: false,
            health_settled_seen: false,
            drain: None,
            drain_waiters: Vec::new(),
            liveness: Liveness::default(),
            stalled: Vec::new(),
        })
    }

    pub fn config(&self) -> &Config {
        self.core.config()
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

    /// The queue a worker takes ARP requests / neighbour solicitations from;
    /// without one (tests) the core's questions are not sent.
    pub fn set_solicit_queue(&mut self, queue: Sender<Solicit>) {
        self.solicits = Some(queue);
    }

    /// Where the metrics page reads the mempool and the ports from.
    pub fn set_device_probe(&mut self, probe: DeviceProbe) {
        self.devices = Some(probe);
    }

    /// Starts health-checking the configured backends (until `stop`).
    pub fn start_health(&mut self, stop: Arc<AtomicBool>) -> Result<(), String> {
        let thread = spawn_health_thread(targets_from_config(self.core.config()), stop)
            .map_err(|e| format!("starting health checks: {e}"))?;
        self.health = Some(thread);
        self.core.set_checking(true);
        Ok(())
    }

    /// Applies the health transitions reported since the last call.
    pub fn poll_health(&mut self) {
        let events: Vec<HealthEvent> = match &self.health {
            Some(h) => h.events().try_iter().collect(),
            None => return,
        };
        for e in events {
            self.core.health_result(&e.name, e.up, &e.reason);
            self.carry_out();
        }
        // The first verdicts at start may settle without a transition (a
        // success agreeing with the initial "up"): announce then.
        let settled = self.health.as_ref().is_some_and(|h| h.settled());
        if settled && !self.health_settled_seen {
            self.health_settled_seen = true;
            self.announce();
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

    /// Publishes the snapshots and writes the log lines the core asked for.
    /// A new snapshot also recomputes the announcements.
    fn carry_out(&mut self) {
        let mut republished = false;
        for out in self.core.drain() {
            match out {
                Output::Publish {
                    generation,
                    snapshot,
                } => {
                    let published = self.publisher.publish(snapshot);
                    debug_assert_eq!(published, generation, "core and publisher agree");
                    republished = true;
                }
                Output::Log(e) => write_log(&e),
                Output::Solicit(q) => {
                    // A full queue (a burst of questions the worker has not
                    // sent yet): the resolver asks again on its next retry.
                    if let Some(tx) = &self.solicits {
                        let _ = tx.try_send(q);
                    }
                }
            }
        }
        if republished {
            self.announce();
        }
    }

    /// Answers one request.
    pub fn handle(&mut self, req: &Request) -> Result<String, String> {
        let uptime = self.started.elapsed();
        let answer = match req {
            Request::Metrics(query) => self
                .metrics_of(query)
                .map(|m| metrics::render_scoped(&m, query.scopes)),
            Request::Stats { json, backends } => {
                let stats = match json {
                    true => report::stats_json,
                    false => report::stats_text,
                };
                stats(
                    &self.core,
                    &self.slots,
                    &self.traffic,
                    uptime,
                    &self.fleet(),
                    backends,
                )
            }
            Request::DrainInstance { deadline_secs } => Ok(self.start_drain(*deadline_secs)),
            // The management loop keeps the client for the answer
            // (`wait_drained`); here, without a way back, only say where.
            Request::WaitDrained => match &self.drain {
                Some(_) => Ok("draining\n".to_string()),
                None => Err("not draining: run `mplb drain` first".to_string()),
            },
            Request::Reload => return self.reload(),
            Request::Drain(n) => self.core.set_override(n, Some(Override::Drain)),
            Request::Disable(n) => self.core.set_override(n, Some(Override::Disable)),
            Request::Enable(n) => self.core.set_override(n, None),
            Request::Lookup {
                protocol,
                src,
                sport,
                dst,
                dport,
            } => self.core.lookup(*protocol, *src, *sport, *dst, *dport),
        };
        self.carry_out();
        answer
    }

    /// Re-reads the config file. A broken file, or one that changes what
    /// needs a restart, is rejected and the running config stays.
    pub fn reload(&mut self) -> Result<String, String> {
        let loaded = Config::load(&self.path).map_err(|e| e.to_string());
        let result = self
            .core
            .reload(&self.path, loaded, Instant::now(), &self.traffic);
        if result.is_ok() {
            // Re-aim the checks.
            if let Some(h) = &self.health {
                h.replace_targets(targets_from_config(self.core.config()));
            }
            if self.drain.is_some() && self.bgp.is_some() {
                log::event(
                    "info",
                    "reload_during_drain",
                    &[(
                        "message",
                        &"applied to forwarding; the VIPs stay withdrawn while draining",
                    )],
                );
            }
        }
        self.carry_out();
        result
    }

    /// A health check's verdict on backend `name`.
    pub fn set_health(&mut self, name: &str, up: bool, reason: &str) -> Result<(), String> {
        let result = self.core.set_health(name, up, reason);
        self.carry_out();
        result
    }

    /// Periodic work: frees snapshots no worker holds any more, forgets
    /// retiring backends that have been idle for the established timeout,
    /// takes in learnt MACs and asks for those due.
    pub fn housekeeping(&mut self, now: Instant) {
        self.publisher.reap();
        self.core.housekeeping(now, &self.traffic);
        self.core.poll_neighbours(now);
        self.carry_out();
        if let Some(b) = &mut self.bgp {
            b.check(now);
        }
        self.observe_drain(now);
        self.watch_workers(now);
    }

    /// Everything the metrics page shows.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.metrics_of(&MetricsQuery::ALL).unwrap_or_default()
    }

    /// [`Manager::metrics`] of the parts and VIPs `query` names (the other
    /// parts empty); an error for a VIP name of no VIP.
    fn metrics_of(&self, query: &MetricsQuery) -> Result<MetricsSnapshot, String> {
        report::metrics(
            &self.core,
            &self.slots,
            &self.traffic,
            self.started.elapsed(),
            self.devices.as_ref().map(|probe| probe()),
            self.fleet(),
            query,
        )
    }
}

/// Writes one of the core's events as a log line.
fn write_log(e: &Event) {
    let fields: Vec<(&str, &dyn Display)> = e.fields();
    log::event(e.level(), e.name(), &fields);
}

#[cfg(test)]
mod tests {
    use crate::testing::config::{Backend, Vip, null_port, web_a_b, without_backend};
    use std::time::Duration;

    use super::*;
    use crate::control::metrics::Scopes;
    use crate::datapath::forwarding::BackendState;

    struct Tmp(PathBuf);
    impl Drop for Tmp {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn manager(name: &str) -> (Manager, Tmp) {
        let path =
            std::env::temp_dir().join(format!("mplb-manager-{name}-{}.toml", std::process::id()));
        std::fs::write(&path, web_a_b()).expect("write config");
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
        std::fs::write(&t.0, web_a_b().replace("port = 80", "port = \"eighty\"")).expect("write");
        let e = m.handle(&Request::Reload).expect_err("broken file");
        assert!(e.contains("field `vip[0].port`"), "{e}");
        assert_eq!(m.publisher.generation(), gen_before);
        // A change that needs a restart is refused too.
        std::fs::write(&t.0, web_a_b().replace("lcores = [1]", "lcores = [2]")).expect("write");
        assert!(
            m.handle(&Request::Reload)
                .expect_err("restart")
                .contains("[workers] changed")
        );
        // A good change is applied.
        std::fs::write(&t.0, web_a_b().replace("name = \"b\"", "name = \"c\"")).expect("write");
        m.handle(&Request::Reload).expect("applied");
        assert!(m.current().backends.iter().flatten().any(|b| b.name == "c"));
        let stats = m
            .handle(&Request::Stats {
                json: true,
                backends: Backends::Every,
            })
            .expect("stats");
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
        let rows = names.len();
        // Without the backends (`mplb stats --no-backends`): the rest, as is.
        let mut brief = |json| {
            m.handle(&Request::Stats {
                json,
                backends: Backends::Omitted,
            })
            .expect("stats")
        };
        let v: serde_json::Value = serde_json::from_str(&brief(true)).expect("json");
        assert!(v.get("backends").is_none(), "{v}");
        assert!(v["counters"]["rx_packets"].is_u64(), "{v}");
        assert!(v["flow_table"]["capacity"].is_u64(), "{v}");
        let text = brief(false);
        let full = m
            .handle(&Request::Stats {
                json: false,
                backends: Backends::Every,
            })
            .expect("stats");
        let table = |t: &str| t.lines().filter(|l| l.starts_with("web ")).count();
        assert_eq!((table(&text), table(&full)), (0, rows), "{text}\n{full}");
        assert!(
            text.contains("flow tables:") && text.contains("rx_packets"),
            "{text}"
        );
    }

    /// A second VIP beside web_a_b's `web`: `db`, 198.18.0.11:5432, with
    /// one backend `d`.
    fn db() -> Vip {
        Vip::new("db", "198.18.0.11", 5432)
            .backend(Backend::new("d", "198.18.1.21").mac("02:00:00:00:01:21"))
    }

    /// Reloads `m` from web_a_b's config with the VIPs `more` added.
    fn reload_with(m: &mut Manager, t: &Tmp, more: &[Vip]) {
        let config = more.iter().fold(web_a_b(), |c, v| c + &v.to_string());
        std::fs::write(&t.0, config).expect("write");
        m.handle(&Request::Reload).expect("reload");
    }

    #[test]
    fn stats_of_one_vip_lists_its_backends_alone() {
        let (mut m, t) = manager("stats-vip");
        reload_with(&mut m, &t, &[db()]);
        // Two workers' traffic: db's sums; web's is not db's.
        let workers = [Arc::new(Traffic::new()), Arc::new(Traffic::new())];
        m.set_workers(Vec::new(), workers.to_vec());
        let id = |m: &Manager, name: &str| {
            let v = m
                .current()
                .vips
                .iter()
                .find(|v| v.name == name)
                .map(|v| v.id);
            v.expect("a VIP")
        };
        let (db, web) = (id(&m, "db"), id(&m, "web"));
        workers[0].record(db, 0, 100, true);
        workers[1].record(db, 0, 60, false);
        workers[1].record(web, 0, 1000, true);
        let stats = |m: &mut Manager, json, vip: &str| {
            let backends = Backends::OfVip(vip.to_string());
            m.handle(&Request::Stats { json, backends })
        };
        let text = stats(&mut m, false, "db").expect("stats");
        let rows: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("web ") || l.starts_with("db "))
            .collect();
        assert_eq!(rows.len(), 1, "{text}");
        assert!(
            rows[0].starts_with("db ") && rows[0].contains(" d "),
            "{text}"
        );
        assert!(text.contains("rx_packets"), "the counters too: {text}");
        assert!(
            text.contains("vip db (198.18.0.11 port 5432 tcp): 2 packets, 160 bytes, 1 new flows"),
            "{text}"
        );
        let v: serde_json::Value =
            serde_json::from_str(&stats(&mut m, true, "web").expect("stats")).expect("json");
        assert_eq!(
            (&v["vip"]["name"], &v["vip"]["packets"], &v["vip"]["bytes"]),
            (&"web".into(), &1.into(), &1000.into()),
            "{v}"
        );
        let listed: Vec<(&str, &str)> = (v["backends"].as_array().expect("backends").iter())
            .filter_map(|b| Some((b["vip"].as_str()?, b["name"].as_str()?)))
            .collect();
        assert_eq!(listed, [("web", "a"), ("web", "b")], "{v}");
        // Without --vip, no VIP line or key.
        let every = Backends::Every;
        let all = m
            .handle(&Request::Stats {
                json: true,
                backends: every,
            })
            .expect("stats");
        let v: serde_json::Value = serde_json::from_str(&all).expect("json");
        assert!(v.get("vip").is_none(), "{v}");
        // An unknown name is an error, not an empty table.
        let e = stats(&mut m, false, "nope").expect_err("unknown VIP");
        assert!(e.contains("no VIP named `nope`"), "{e}");
    }

    #[test]
    fn a_backend_removed_by_reload_retires_once_idle() {
        let (mut m, t) = manager("retire");
        let traffic = Arc::new(Traffic::new());
        m.set_workers(Vec::new(), vec![Arc::clone(&traffic)]);
        let b = m.core.ids().get("b").expect("id");
        std::fs::write(&t.0, without_backend(&web_a_b(), "b")).expect("write");
        m.handle(&Request::Reload).expect("reload");
        // Still in the snapshot, as draining under its id: pinned flows go on.
        let state = |m: &Manager| m.current().backend(b).map(|x| (x.state, x.name.clone()));
        assert_eq!(state(&m), Some((BackendState::Draining, "b".to_string())));
        assert!(m.current().vips[0].backends.contains(&b));
        // No new flows, and the operator sees it retiring.
        assert!((40000..40064).all(|p| lookup_backend(&mut m, p) == "a"));
        let stats = m
            .handle(&Request::Stats {
                json: false,
                backends: Backends::Every,
            })
            .expect("stats");
        assert!(
            stats
                .lines()
                .any(|l| l.contains(" b ") && l.contains("retiring")),
            "{stats}"
        );

        // Traffic to it keeps it; idle for the established timeout retires it.
        let idle = Duration::from_secs(m.config().flow_table.established_timeout_secs);
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
        assert!(m.core.ids().get("b").is_none());

        // Put back while retiring: it is simply configured again.
        std::fs::write(&t.0, web_a_b()).expect("write");
        m.handle(&Request::Reload).expect("reload");
        assert_eq!(m.core.retiring_len(), 0);
    }

    #[test]
    fn a_backend_put_back_during_retirement_is_active_again() {
        let (mut m, t) = manager("unretire");
        let smaller = without_backend(&web_a_b(), "b");
        std::fs::write(&t.0, smaller).expect("write");
        m.handle(&Request::Reload).expect("reload");
        assert_eq!(m.core.retiring_len(), 1);
        std::fs::write(&t.0, web_a_b()).expect("write");
        m.handle(&Request::Reload).expect("reload");
        assert_eq!(m.core.retiring_len(), 0);
        let b = m.core.ids().get("b").expect("id");
        assert_eq!(
            m.current().backend(b).map(|x| x.state),
            Some(BackendState::Active)
        );
        // A backend that is down when removed does not retire: its flows
        // have moved already.
        m.set_health("b", false, "refused").expect("republish");
        std::fs::write(&t.0, without_backend(&web_a_b(), "b")).expect("write");
        m.handle(&Request::Reload).expect("reload");
        assert_eq!(m.core.retiring_len(), 0);
        assert!(m.current().backend(b).is_none());
    }

    #[test]
    fn drain_withdraws_stays_withdrawn_across_a_reload_and_ends_once_quiet() {
        let dir = std::env::temp_dir().join(format!("mplb-manager-drain-{}", std::process::id()));
        let routes = dir.join("vips.conf");
        let text = format!(
            "{}\n[bgp]\ncontrol_socket = \"{}\"\nroutes_file = \"{}\"\n[drain]\nquiet_secs = 2\ndeadline_secs = 10\n",
            web_a_b(),
            dir.join("no-bird.ctl").display(),
            routes.display()
        );
        let path = dir.join("mplb.toml");
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(&path, &text).expect("write config");
        let _t = Tmp(path.clone());
        let config = Config::load(&path).expect("valid");
        let mut m = Manager::new(&path, config, vec![[2, 0, 0, 0, 0, 1]]).expect("builds");
        let file = || std::fs::read_to_string(&routes).expect("routes file");
        m.start_bgp();
        assert!(!file().contains("route "), "empty at start: {}", file());
        m.set_forwarding();
        assert!(
            file().contains("route 198.18.0.10/32 blackhole;"),
            "{}",
            file()
        );

        let (tx, rx) = crossbeam::channel::bounded(1);
        m.wait_drained(tx);
        assert!(
            rx.try_recv().expect("answered").is_err(),
            "not draining yet"
        );
        let drain = Request::DrainInstance {
            deadline_secs: None,
        };
        let said = m.handle(&drain).expect("drain");
        assert!(
            said.contains("draining (pid") && said.contains("2 s"),
            "{said}"
        );
        assert!(!file().contains("route "), "withdrawn: {}", file());
        assert!(
            m.handle(&drain)
                .expect("again")
                .contains("already draining")
        );
        m.handle(&Request::Reload).expect("reload");
        assert!(!file().contains("route "), "still withdrawn after a reload");
        assert!(metrics::render(&m.metrics()).contains("\nmplb_draining 1\n"));
        let json = m
            .handle(&Request::Stats {
                json: true,
                backends: Backends::Every,
            })
            .expect("stats");
        let v: serde_json::Value = serde_json::from_str(&json).expect("json");
        assert_eq!(v["drain"]["draining"], true, "{json}");
        assert_eq!(v["bgp"]["vips"][0]["reason"], "draining", "{json}");

        let (tx, rx) = crossbeam::channel::bounded(1);
        m.wait_drained(tx);
        let t0 = Instant::now();
        m.housekeeping(t0 + Duration::from_secs(1));
        assert!(!m.drained() && rx.try_recv().is_err(), "quiet for 1 s of 2");
        m.housekeeping(t0 + Duration::from_secs(3));
        assert!(m.drained());
        let answer = rx.try_recv().expect("answered").expect("drained");
        assert!(answer.starts_with("drained: no packet"), "{answer}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn stats_show_a_weight_0_backend_takes_no_new_flows() {
        let (mut m, t) = manager("weight0");
        let weighted = null_port("")
            + &Vip::web()
                .option("table_size", 251)
                .backend(Backend::new("a", "198.18.1.11").mac("02:00:00:00:01:11"))
                .backend(
                    Backend::new("b", "198.18.1.12")
                        .mac("02:00:00:00:01:12")
                        .weight(0),
                )
                .to_string();
        std::fs::write(&t.0, weighted).expect("write");
        m.handle(&Request::Reload).expect("reload");
        assert!((40000..40064).all(|p| lookup_backend(&mut m, p) == "a"));
        let stats = m
            .handle(&Request::Stats {
                json: false,
                backends: Backends::Every,
            })
            .expect("stats");
        let row = |name: &str| {
            stats
                .lines()
                .find(|l| l.split_whitespace().nth(1) == Some(name))
                .unwrap_or_else(|| panic!("no row for {name}: {stats}"))
                .to_string()
        };
        assert!(row("b").ends_with("0 (no new flows)"), "{stats}");
        assert!(row("a").ends_with(" 1"), "{stats}");
        let json = m
            .handle(&Request::Stats {
                json: true,
                backends: Backends::Every,
            })
            .expect("stats");
        let v: serde_json::Value = serde_json::from_str(&json).expect("stats json parses");
        assert_eq!(v["backends"][1]["weight"], 0, "{json}");
    }

    #[test]
    fn a_worker_that_stops_publishing_shows_as_stalled_until_it_publishes() {
        let (mut m, _t) = manager("stalled");
        let slots: Vec<Arc<StatsSlot>> = (0..2).map(|_| Arc::new(StatsSlot::default())).collect();
        m.set_workers(slots.clone(), Vec::new());
        let t0 = Instant::now();
        // Not watched before forwarding (ports may still be starting).
        m.housekeeping(t0);
        m.housekeeping(t0 + Duration::from_secs(5));
        assert_eq!(m.fleet().stalled_workers, 0);
        m.set_forwarding();
        m.housekeeping(t0 + Duration::from_secs(5));
        // Worker 0 goes on publishing, worker 1 stops.
        slots[0].publish(&Counters::default());
        m.housekeeping(t0 + Duration::from_secs(6));
        slots[0].publish(&Counters::default());
        m.housekeeping(t0 + Duration::from_secs(7));
        assert_eq!(m.fleet().stalled_workers, 1);
        let page = metrics::render(&m.metrics());
        assert!(
            page.lines().any(|l| l == "mplb_workers_stalled 1"),
            "{page}"
        );
        slots[1].publish(&Counters::default());
        slots[0].publish(&Counters::default());
        m.housekeeping(t0 + Duration::from_secs(8));
        assert_eq!(m.fleet().stalled_workers, 0);
    }

    #[test]
    fn a_scoped_scrape_collects_only_its_parts_and_shows_what_the_whole_page_does() {
        let (mut m, _t) = manager("scoped");
        m.set_workers(Vec::new(), vec![Arc::new(Traffic::new())]);
        let whole = m.metrics();
        assert!(!whole.vips.is_empty() && !whole.backends.is_empty());
        for (global, vip, backend) in [
            (true, false, false),
            (false, true, false),
            (false, false, true),
            (true, true, false),
        ] {
            let query = MetricsQuery {
                scopes: Scopes {
                    global,
                    vip,
                    backend,
                },
                vips: Vec::new(),
            };
            let part = m.metrics_of(&query).expect("collects");
            assert_eq!(
                (part.vips.is_empty(), part.backends.is_empty()),
                (!vip, !backend)
            );
            let page = m.handle(&Request::Metrics(query.clone())).expect("page");
            assert_eq!(
                steady(&page),
                steady(&metrics::render_scoped(&whole, query.scopes)),
                "{query:?}"
            );
        }
    }

    /// Uptime differs between two pages; everything else is equal.
    fn steady(page: &str) -> Vec<String> {
        page.lines()
            .filter(|l| !l.starts_with("mplb_uptime_seconds "))
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn a_scrape_of_named_vips_shows_their_series_alone() {
        let (mut m, t) = manager("scrape-vip");
        let dns = Vip::new("dns", "198.18.0.12", 53)
            .backend(Backend::new("n", "198.18.1.31").mac("02:00:00:00:01:31"));
        reload_with(&mut m, &t, &[db(), dns]);
        m.set_workers(Vec::new(), vec![Arc::new(Traffic::new())]);
        let query = |scopes: &[&str], vips: &[&str]| {
            let mut q: Vec<String> = scopes.iter().map(|s| format!("scope={s}")).collect();
            q.extend(vips.iter().map(|v| format!("vip={v}")));
            MetricsQuery::parse(Some(&q.join("&"))).expect("valid")
        };
        // The labels of a page's per-VIP and per-backend samples.
        let vips_of = |page: &str, metric: &str| -> Vec<String> {
            let mut v: Vec<String> = page
                .lines()
                .filter(|l| l.starts_with(metric))
                .filter_map(|l| Some(l.split("vip=\"").nth(1)?.split('"').next()?.to_string()))
                .collect();
            v.dedup();
            v
        };
        let whole = m
            .handle(&Request::Metrics(MetricsQuery::ALL))
            .expect("page");
        assert_eq!(
            vips_of(&whole, "mplb_vip_packets_total"),
            ["web", "db", "dns"]
        );
        let two = m
            .handle(&Request::Metrics(query(&[], &["dns", "web"])))
            .expect("page");
        assert_eq!(vips_of(&two, "mplb_vip_packets_total"), ["web", "dns"]);
        assert_eq!(vips_of(&two, "mplb_backend_state"), ["web", "dns"]);
        assert_eq!(
            vips_of(&two, "mplb_backend_neighbour_state"),
            ["web", "dns"]
        );
        // The instance's own series are not cut: the same as the whole page's.
        let global = |p: &str| -> Vec<String> {
            steady(p)
                .into_iter()
                .filter(|l| !l.contains("vip=\""))
                .collect()
        };
        assert_eq!(global(&two), global(&whole));
        // With `scope=`, the named VIPs' part alone.
        let part = m
            .handle(&Request::Metrics(query(&["backend"], &["db"])))
            .expect("page");
        assert_eq!(vips_of(&part, "mplb_backend_state"), ["db"]);
        assert!(
            vips_of(&part, "mplb_vip_packets_total").is_empty(),
            "{part}"
        );
        assert!(!part.contains("mplb_uptime_seconds"), "{part}");
        // A name of no VIP is an error, even beside good ones.
        let e = m
            .handle(&Request::Metrics(query(&["vip"], &["web", "nope"])))
            .expect_err("no such VIP");
        assert!(e.contains("no VIP named `nope`"), "{e}");
    }

    #[test]
    fn stats_show_every_worker_with_its_share() {
        let (mut m, _t) = manager("per-worker");
        let slots: Vec<Arc<StatsSlot>> = (0..2).map(|_| Arc::new(StatsSlot::default())).collect();
        let mut busy = Counters {
            rx_packets: 300,
            tx_packets: 290,
            tx_dropped: 4,
            ..Counters::default()
        };
        busy.drops[crate::datapath::verdict::DropReason::Ttl] = 6;
        slots[0].publish(&busy);
        slots[1].publish(&Counters {
            rx_packets: 100,
            tx_packets: 100,
            ..Counters::default()
        });
        slots[1].publish_flow_table(metrics::FlowTableMetrics {
            len: 7,
            capacity: 64,
            ..Default::default()
        });
        m.set_workers(slots, Vec::new());
        let text = m
            .handle(&Request::Stats {
                json: false,
                backends: Backends::Every,
            })
            .expect("stats");
        let row = |w: &str| -> Vec<String> {
            text.lines()
                .skip_while(|l| !l.starts_with("worker "))
                .find(|l| l.split_whitespace().next() == Some(w))
                .unwrap_or_else(|| panic!("no row for worker {w}: {text}"))
                .split_whitespace()
                .map(str::to_string)
                .collect()
        };
        assert_eq!(row("0")[..5], ["0", "300", "75.0%", "290", "10"], "{text}");
        assert_eq!(row("1")[..5], ["1", "100", "25.0%", "100", "0"], "{text}");
        assert!(text.contains("7 of 64"), "{text}");
        let json = m
            .handle(&Request::Stats {
                json: true,
                backends: Backends::Every,
            })
            .expect("stats");
        let v: serde_json::Value = serde_json::from_str(&json).expect("stats json parses");
        let w = v["per_worker"].as_array().expect("per_worker");
        assert_eq!(w.len(), 2, "{json}");
        assert_eq!(w[0]["drops"], 10, "{json}");
        assert_eq!(w[1]["rx_packets"], 100, "{json}");
        assert_eq!(w[1]["flow_entries"], 7, "{json}");
        assert_eq!(w[1]["flow_capacity"], 64, "{json}");
    }
}
