//! What `mplb stats` and the metrics page show: the core's state next to
//! the workers' counters.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use super::Backends;
use super::core::Core;
use crate::control::bgp::FleetReport;
use crate::control::metrics::{
    BackendMetrics, DeviceMetrics, FlowTableMetrics, MetricsQuery, MetricsSnapshot, VipMetrics,
    WorkerMetrics,
};
use crate::control::resolver::Resolution;
use crate::control::stats::{StatsSlot, total};
use crate::datapath::counters::Counters;
use crate::datapath::forwarding::{BackendState, Forwarding, Vip};
use crate::datapath::traffic::{Traffic, TrafficTotals};
use crate::wire::MacAddr;

/// What the metrics page shows of the parts and VIPs `query` names: the
/// VIPs' and the backends' entries are collected only for a page that
/// shows them (with 20 000 VIPs of 4 backends, collecting the backends'
/// takes tens of milliseconds, the rest well under one), and only of the
/// VIPs it names. A name of no VIP is an error.
pub fn metrics(
    core: &Core,
    slots: &[Arc<StatsSlot>],
    traffic: &[Arc<Traffic>],
    uptime: Duration,
    devices: Option<DeviceMetrics>,
    mut fleet: FleetReport,
    query: &MetricsQuery,
) -> Result<MetricsSnapshot, String> {
    let fwd = core.current();
    for name in &query.vips {
        vip_named(fwd, name)?;
    }
    // The VIPs of the page: those the query names (all by default), or
    // none.
    let shown = |part: bool| {
        fwd.vips
            .iter()
            .filter(move |v| part && query.shows_vip(&v.name))
    };
    let vips = shown(query.scopes.vip)
        .map(|v| vip_metrics(v, traffic))
        .collect();
    let mut backends = Vec::new();
    for v in shown(query.scopes.backend) {
        for id in &v.backends {
            if let Some(b) = fwd.backend(*id) {
                let t = summed(traffic, |w| w.backend(id.0));
                backends.push(BackendMetrics {
                    vip: v.name.clone(),
                    name: b.name.clone(),
                    address: b.addr,
                    state: b.state,
                    healthy: core.is_healthy(&b.name),
                    neighbour: neighbour_state(core, &b.name),
                    packets: t.packets,
                    bytes: t.bytes,
                    new_flows: t.new_flows,
                });
            }
        }
    }
    if let Some(bgp) = &mut fleet.bgp {
        bgp.vips.retain(|a| query.shows_vip(&a.name));
    }
    Ok(MetricsSnapshot {
        generation: core.generation(),
        hash_version: fwd.hash.number(),
        uptime,
        workers: slots
            .iter()
            .map(|s| WorkerMetrics {
                counters: s.read(),
                flow_table: Some(s.read_flow_table()),
            })
            .collect(),
        vips,
        backends,
        neighbours: core.resolver_counters(),
        devices,
        fleet,
    })
}

/// How backend `name`'s MAC is known: `static` (from the config, or the
/// gateway's for IP-in-IP), or its resolution's state.
fn neighbour_state(core: &Core, name: &str) -> &'static str {
    core.resolution(name).map_or("static", Resolution::name)
}

/// One backend of one VIP, as `stats` shows it.
struct BackendRow {
    vip: String,
    name: String,
    addr: String,
    state: &'static str,
    healthy: bool,
    /// The MAC frames to it are sent to (`-`: none, or the gateway's).
    mac: String,
    /// How that MAC is known, see [`neighbour_state`].
    neighbour: &'static str,
    /// 0: up and active, yet given no new flows (Maglev skips it).
    weight: u32,
}

/// Per backend of each VIP `backends` names (none for
/// [`Backends::Omitted`]).
fn backend_rows(core: &Core, backends: &Backends) -> Vec<BackendRow> {
    let fwd = core.current();
    let mut rows = Vec::new();
    let shown = |name: &str| match backends {
        Backends::Every => true,
        Backends::Omitted => false,
        Backends::OfVip(n) => n == name,
    };
    for v in fwd.vips.iter().filter(|v| shown(&v.name)) {
        for id in &v.backends {
            if let Some(b) = fwd.backend(*id) {
                let unresolved = core.resolution(&b.name) == Some(Resolution::Unresolved);
                let state = match b.state {
                    BackendState::Down if unresolved => "unresolved",
                    BackendState::Active => "active",
                    BackendState::Draining if core.is_retiring(&b.name) => "retiring",
                    BackendState::Draining => "draining",
                    BackendState::Down => "down",
                };
                rows.push(BackendRow {
                    vip: v.name.clone(),
                    name: b.name.clone(),
                    addr: b.addr.to_string(),
                    state,
                    healthy: core.is_healthy(&b.name),
                    mac: b
                        .mac
                        .map_or_else(|| "-".to_string(), |m| MacAddr(m).to_string()),
                    neighbour: neighbour_state(core, &b.name),
                    weight: b.weight,
                });
            }
        }
    }
    rows
}

/// `mplb stats`; `backends`: which VIPs' backends the table lists (no
/// table for [`Backends::Omitted`]; an error for a VIP name no VIP has).
pub fn stats_text(
    core: &Core,
    slots: &[Arc<StatsSlot>],
    traffic: &[Arc<Traffic>],
    uptime: Duration,
    fleet: &FleetReport,
    backends: &Backends,
) -> Result<String, String> {
    let vip = named_vip(core, traffic, backends)?;
    let c = total(slots);
    let mut s = format!(
        "uptime {:.0}s, snapshot generation {}, {} worker(s)\n\n",
        uptime.as_secs_f64(),
        core.generation(),
        slots.len()
    );
    let f = flow_table_total(slots);
    let _ = writeln!(
        s,
        "flow tables: {} of {} entries in use ({} inserted, {} evicted, {} timed out)\n",
        f.len, f.capacity, f.inserts, f.evictions, f.timeouts
    );
    let _ = writeln!(s, "{:<28} {:>20}", "counter", "value");
    for (name, v) in Counters::NAMES.iter().zip(c.values()) {
        let _ = writeln!(s, "{name:<28} {v:>20}");
    }
    per_worker_text(&mut s, slots);
    let n = core.resolver_counters();
    let _ = writeln!(
        s,
        "\nbackend MACs by ARP / ND: {} asked, {} resolved, {} changed, {} failed",
        n.requested, n.resolved, n.mac_changes, n.failures
    );
    if let Some(v) = vip {
        let _ = writeln!(
            s,
            "\nvip {} ({} port {} {}): {} packets, {} bytes, {} new flows",
            v.name,
            v.address,
            v.port,
            v.protocol.name(),
            v.packets,
            v.bytes,
            v.new_flows
        );
    }
    if *backends != Backends::Omitted {
        backend_table(&mut s, core, backends);
    }
    s += &fleet.text();
    Ok(s)
}

/// `mplb stats`' table of the backends of the VIPs `backends` names.
fn backend_table(s: &mut String, core: &Core, backends: &Backends) {
    let _ = writeln!(
        s,
        "\n{:<16} {:<16} {:<40} {:<10} {:<6} {:<17} {:<10} weight",
        "vip", "backend", "address", "state", "health", "mac", "mac from"
    );
    for r in backend_rows(core, backends) {
        let _ = writeln!(
            s,
            "{:<16} {:<16} {:<40} {:<10} {:<6} {:<17} {:<10} {}{}",
            r.vip,
            r.name,
            r.addr,
            r.state,
            if r.healthy { "up" } else { "down" },
            r.mac,
            r.neighbour,
            r.weight,
            if r.weight == 0 { " (no new flows)" } else { "" }
        );
    }
}

/// `mplb stats --json`; `backends`: which VIPs' backends the `backends`
/// list holds (no such key for [`Backends::Omitted`], which an empty list
/// would read as "no backends"; an error for a VIP name no VIP has).
pub fn stats_json(
    core: &Core,
    slots: &[Arc<StatsSlot>],
    traffic: &[Arc<Traffic>],
    uptime: Duration,
    fleet: &FleetReport,
    backends: &Backends,
) -> Result<String, String> {
    let vip = named_vip(core, traffic, backends)?;
    let c = total(slots);
    let counters: serde_json::Map<String, serde_json::Value> = Counters::NAMES
        .iter()
        .zip(c.values())
        .map(|(n, v)| ((*n).to_string(), v.into()))
        .collect();
    let f = flow_table_total(slots);
    let mut report = serde_json::json!({
        "uptime_seconds": uptime.as_secs_f64(),
        "generation": core.generation(),
        "workers": slots.len(),
        "counters": counters,
        "flow_table": {
            "entries": f.len, "capacity": f.capacity, "inserts": f.inserts,
            "evictions": f.evictions, "timeouts": f.timeouts,
        },
        "per_worker": per_worker(slots).iter().map(|w| serde_json::json!({
            "worker": w.worker, "rx_packets": w.rx_packets, "tx_packets": w.tx_packets,
            "drops": w.drops, "flow_entries": w.flow_entries, "flow_capacity": w.flow_capacity,
        })).collect::<Vec<_>>(),
        "neighbours": neighbours_json(core),
        "drain": fleet.json().0,
        "bgp": fleet.json().1,
    });
    if *backends != Backends::Omitted {
        let rows: Vec<serde_json::Value> = backend_rows(core, backends)
            .into_iter()
            .map(|r| {
                serde_json::json!({
                    "vip": r.vip, "name": r.name, "address": r.addr, "state": r.state,
                    "healthy": r.healthy, "weight": r.weight,
                    "mac": r.mac, "mac_from": r.neighbour,
                })
            })
            .collect();
        report["backends"] = rows.into();
    }
    if let Some(v) = vip {
        report["vip"] = serde_json::json!({
            "name": v.name, "address": v.address.to_string(), "port": v.port,
            "protocol": v.protocol.name(), "packets": v.packets,
            "bytes": v.bytes, "new_flows": v.new_flows,
        });
    }
    Ok(format!("{report}\n"))
}

/// The VIP `backends` names and its traffic (`mplb stats --vip NAME`);
/// `None` for the other choices, an error for a name no VIP has.
fn named_vip(
    core: &Core,
    traffic: &[Arc<Traffic>],
    backends: &Backends,
) -> Result<Option<VipMetrics>, String> {
    let Backends::OfVip(name) = backends else {
        return Ok(None);
    };
    Ok(Some(vip_metrics(vip_named(core.current(), name)?, traffic)))
}

/// The VIP of this name in `fwd`, or the error for a name no VIP has.
fn vip_named<'f>(fwd: &'f Forwarding, name: &str) -> Result<&'f Vip, String> {
    (fwd.vips.iter().find(|v| v.name == name))
        .ok_or_else(|| format!("no VIP named `{name}` (mplb stats lists them)"))
}

/// The workers' counters of one VIP or backend (`of` picks them), summed.
fn summed(traffic: &[Arc<Traffic>], of: impl Fn(&Traffic) -> TrafficTotals) -> TrafficTotals {
    let mut t = TrafficTotals::default();
    for w in traffic {
        t += of(w);
    }
    t
}

/// A VIP and its traffic, summed over the workers.
fn vip_metrics(v: &Vip, traffic: &[Arc<Traffic>]) -> VipMetrics {
    let t = summed(traffic, |w| w.vip(v.id));
    VipMetrics {
        name: v.name.clone(),
        address: v.addr,
        port: v.port,
        protocol: v.protocol,
        packets: t.packets,
        bytes: t.bytes,
        new_flows: t.new_flows,
    }
}

/// The resolver's totals (the workers' `neighbour_*` counters are with the
/// other counters).
fn neighbours_json(core: &Core) -> serde_json::Value {
    let n = core.resolver_counters();
    serde_json::json!({
        "requested": n.requested, "resolved": n.resolved,
        "mac_changes": n.mac_changes, "failures": n.failures,
    })
}

/// The flow tables of all workers, summed.
fn flow_table_total(slots: &[Arc<StatsSlot>]) -> FlowTableMetrics {
    slots
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

/// One worker's share of the traffic, as `stats` shows it: enough to see
/// an RSS imbalance (one queue taking most flows) at a glance.
struct WorkerRow {
    worker: usize,
    rx_packets: u64,
    tx_packets: u64,
    /// Datapath drops of every reason plus frames the tx queues (data
    /// ports and kernel interfaces) refused.
    drops: u64,
    flow_entries: u64,
    flow_capacity: u64,
}

fn per_worker(slots: &[Arc<StatsSlot>]) -> Vec<WorkerRow> {
    slots
        .iter()
        .enumerate()
        .map(|(worker, slot)| {
            let c = slot.read();
            let f = slot.read_flow_table();
            WorkerRow {
                worker,
                rx_packets: c.rx_packets,
                tx_packets: c.tx_packets,
                drops: c.drops.total() + c.tx_dropped + c.to_kernel_dropped,
                flow_entries: f.len,
                flow_capacity: f.capacity,
            }
        })
        .collect()
}

/// The per-worker table of `stats`, with each worker's share of all
/// received frames.
fn per_worker_text(s: &mut String, slots: &[Arc<StatsSlot>]) {
    let rows = per_worker(slots);
    let rx_all: u64 = rows.iter().map(|r| r.rx_packets).sum();
    let _ = writeln!(
        s,
        "\n{:<7} {:>16} {:>7} {:>16} {:>12} {:>24}",
        "worker", "rx_packets", "rx %", "tx_packets", "drops", "flow table"
    );
    for r in rows {
        let share = if rx_all == 0 {
            0.0
        } else {
            100.0 * r.rx_packets as f64 / rx_all as f64
        };
        let fill = format!("{} of {}", r.flow_entries, r.flow_capacity);
        let _ = writeln!(
            s,
            "{:<7} {:>16} {:>6.1}% {:>16} {:>12} {:>24}",
            r.worker, r.rx_packets, share, r.tx_packets, r.drops, fill
        );
    }
}
