//! Prometheus metrics: a plain model of the numbers (here), its rendering
//! in the text exposition format 0.0.4 ([`render`], in `render.rs`), and a
//! minimal HTTP server for `/metrics` ([`serve_metrics`], in `http.rs`).
//!
//! # Naming and labels
//!
//! Every metric is prefixed `mplb_`; counters end in `_total`. The datapath
//! counters are exposed **per worker only**, with a `worker="N"` label and no
//! unlabelled sum beside them (a sum next to its parts would be counted twice
//! by `sum(...)`; aggregate with `sum without (worker) (...)`). The
//! datapath's `drop_*` counters form one metric, `mplb_drops_total`, with a
//! `reason` label (the counter's name without `drop_`). Backends and VIPs are
//! labelled by name and address; a backend's administrative state is a state
//! set (`mplb_backend_state{state="active|draining|down"}`, exactly one of
//! them 1).
//!
//! # Server
//!
//! [`serve_metrics`] accepts on a non-blocking listener polled every few
//! milliseconds and serves each connection on its own short-lived thread,
//! so a client that never sends cannot hold up others; each connection gets
//! [`REQUEST_TIMEOUT`] to send its whole request head. At most
//! [`MAX_CONNECTIONS`] are served at once; one more closes the connection
//! that has been sending its head the longest, and gets 503 only when none
//! is. One request per connection. `?scope=` picks parts of the page and
//! `?vip=` the VIPs it shows (see [`MetricsQuery`]).

mod http;
mod query;
mod render;

use std::net::IpAddr;
use std::time::Duration;

use crate::control::bgp::FleetReport;
use crate::datapath::counters::Counters;
use crate::datapath::forwarding::{BackendState, Protocol};

pub use crate::control::resolver::ResolverCounters;
pub use http::{MAX_CONNECTIONS, REQUEST_TIMEOUT, serve_metrics};
pub use query::{BadQuery, MetricsQuery, Scopes};
pub use render::{CONTENT_TYPE, escape_label_value, render, render_scoped};

/// Why a scrape gets no page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unanswered {
    /// A `vip=` names no VIP of the running config (404).
    NoSuchVip(String),
    /// The management thread did not answer (503).
    Unavailable(String),
}

/// The values of `mplb_backend_neighbour_state`'s `state` label.
pub const NEIGHBOUR_STATES: [&str; 4] = ["static", "reachable", "stale", "unresolved"];
/// Reads [`DeviceMetrics`] when a page is rendered (the engine's closure
/// over its mempool and ports).
pub type DeviceProbe = Box<dyn Fn() -> DeviceMetrics + Send>;

/// Everything the metrics page shows, collected by the management thread.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricsSnapshot {
    /// Generation of the forwarding snapshot the workers use.
    pub generation: u64,
    /// The hash contract's version the workers hash by (`[datapath]
    /// hash_version`).
    pub hash_version: u32,
    /// Time since the process started.
    pub uptime: Duration,
    /// One entry per worker, in worker order (`worker="0"` first).
    pub workers: Vec<WorkerMetrics>,
    pub vips: Vec<VipMetrics>,
    pub backends: Vec<BackendMetrics>,
    /// The management thread's resolution of backend MACs by ARP / ND.
    pub neighbours: ResolverCounters,
    /// The packet-buffer pool and the NIC ports, read from DPDK by the
    /// engine; `None` where there is none (the control plane's own tests).
    pub devices: Option<DeviceMetrics>,
    /// Draining, and the BGP announcements (with `[bgp]`).
    pub fleet: FleetReport,
}

/// What DPDK itself counts: the mempool's fill and each port's drops
/// before the datapath (no rx descriptor, no mbuf), which an operator needs
/// to see pool exhaustion and overload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceMetrics {
    /// Mbufs out of the pool: in rx rings, in flight, in per-lcore caches.
    pub mempool_in_use: u64,
    /// Mbufs in the pool in all (`dpdk.mempool_size`).
    pub mempool_size: u64,
    pub ports: Vec<PortMetrics>,
}

/// One port's `rte_eth_stats`, by its config name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortMetrics {
    pub name: String,
    pub rx_packets: u64,
    pub tx_packets: u64,
    /// Dropped by the NIC: no free rx descriptor (workers too slow).
    pub rx_missed: u64,
    /// Receive failures for want of an mbuf (the pool ran dry).
    pub rx_nombuf: u64,
    pub rx_errors: u64,
    pub tx_errors: u64,
}

/// One worker's numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerMetrics {
    pub counters: Counters,
    /// The worker's flow table; `None` if it has none (e.g. macswap mode).
    pub flow_table: Option<FlowTableMetrics>,
}

/// A worker's plain-TCP flow table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlowTableMetrics {
    /// Entries in use.
    pub len: u64,
    pub capacity: u64,
    pub inserts: u64,
    pub evictions: u64,
    pub timeouts: u64,
}

/// A virtual service's traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VipMetrics {
    pub name: String,
    pub address: IpAddr,
    pub port: u16,
    pub protocol: Protocol,
    pub packets: u64,
    pub bytes: u64,
    pub new_flows: u64,
}

/// One backend of one VIP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendMetrics {
    /// The VIP's name.
    pub vip: String,
    pub name: String,
    pub address: IpAddr,
    /// The state the forwarding snapshot uses (configuration, operator and
    /// health combined).
    pub state: BackendState,
    /// The health checks' verdict.
    pub healthy: bool,
    /// How its MAC is known: `static`, or `unresolved`, `reachable`,
    /// `stale` when learnt by ARP / ND (see [`NEIGHBOUR_STATES`]).
    pub neighbour: &'static str,
    pub packets: u64,
    pub bytes: u64,
    pub new_flows: u64,
}
