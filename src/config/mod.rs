//! The configuration file (TOML): parsing, defaults and validation.
//!
//! Every error names the file, the line and column, and the field (as a path
//! such as `port[0].rx_queues`), so an operator can fix it without guessing.
//! Unknown keys are errors: a typo must not silently fall back to a default.
//!
//! Users see plain values only: `parse.rs` deserializes into structs that keep
//! each value's place in the file (`toml::Spanned`), validates them there, so
//! that an error can name line and column, and hands out the plain [`Config`]
//! below. `eal.rs` turns it into DPDK's command line; `memory.rs` says what
//! memory a config needs and what the host has.
//!
//! Validation covers every limit `mplb run` depends on, so that a config
//! `check-config` accepts does not fail later at an allocation. Bounds:
//! * `flow_table.capacity` ≤ 2^35 per worker: a bucket (8 entries) is chosen
//!   by the flow hash's low 32 bits, whose bits 32..40 are the entries' tags;
//! * `token_table.capacity` ≤ 2^32: a token is 32 bits, so a larger table
//!   has sets no token maps to;
//! * `token_table.ttl_secs` within the table's 15-bit clock (~19.5 hours);
//! * `dpdk.mempool_cache` ≤ 512 and ≤ `mempool_size` / 1.5 (DPDK's limits);
//! * at most 65535 distinct backends (16-bit ids), and no more weighted
//!   backends in a VIP than its Maglev `table_size`;
//! * a backend whose MAC is learnt (no `mac`, see [`Config::learns_mac`])
//!   needs an address of its family on the port it is resolved from;
//! * a VIP needs a backend of weight > 0 (one whose backends are all
//!   disabled or draining is accepted, with a warning from `check-config`);
//! * the memory all of it needs must fit the host ([`Config::load`] only;
//!   [`Config::parse`] does not look at the host): see `memory.rs`.

#![forbid(unsafe_code)]

mod eal;
mod fleet;
mod memory;
mod parse;

pub use eal::EalMemory;
pub use fleet::{BgpConfig, DrainConfig, MAX_DRAIN_DEADLINE_SECS, Speaker};
pub use memory::{HostMemory, MemoryNeed, size};

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::datapath::hash::HashVersion;

/// A validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub dpdk: DpdkConfig,
    pub workers: WorkersConfig,
    pub ports: Vec<PortConfig>,
    pub datapath: DatapathConfig,
    pub vips: Vec<VipConfig>,
    pub flow_table: FlowTableSettings,
    pub token_table: TokenTableSettings,
    pub encap: EncapConfig,
    /// Default health check for every backend (a VIP may override it).
    pub health: HealthConfig,
    pub management: ManagementConfig,
    /// Announce the VIPs by BGP (`None`: no announcements).
    pub bgp: Option<BgpConfig>,
    /// How `mplb drain` ends.
    pub drain: DrainConfig,
}

/// How backends are health-checked, through the kernel's network stack to
/// each backend's own address.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthConfig {
    #[serde(default)]
    pub kind: HealthKind,
    /// Port to check; default: the VIP's port.
    pub port: Option<u16>,
    /// HTTP: the path to GET.
    #[serde(default = "default_health_path")]
    pub path: String,
    /// HTTP: the status that means healthy.
    #[serde(default = "default_health_status")]
    pub expect_status: u16,
    #[serde(default = "default_health_interval_ms")]
    pub interval_ms: u64,
    #[serde(default = "default_health_timeout_ms")]
    pub timeout_ms: u64,
    /// Consecutive successes that bring a down backend up.
    #[serde(default = "default_rise")]
    pub rise: u32,
    /// Consecutive failures that take an up backend down.
    #[serde(default = "default_fall")]
    pub fall: u32,
    /// The interface checks leave from (SO_BINDTODEVICE); default: the one
    /// the kernel's routing table picks. On a host whose NIC DPDK owns,
    /// this is the management interface (or the exception path).
    pub interface: Option<String>,
    /// The source address of checks to IPv4 backends; default: the kernel's
    /// choice. Must be an address of this host.
    pub source_v4: Option<Ipv4Addr>,
    /// The same for IPv6 backends.
    pub source_v6: Option<Ipv6Addr>,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            kind: HealthKind::default(),
            port: None,
            path: default_health_path(),
            expect_status: default_health_status(),
            interval_ms: default_health_interval_ms(),
            timeout_ms: default_health_timeout_ms(),
            rise: default_rise(),
            fall: default_fall(),
            interface: None,
            source_v4: None,
            source_v6: None,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthKind {
    /// A TCP connect that completes within the timeout.
    #[default]
    Tcp,
    /// An HTTP/1.1 GET answered with `expect_status` within the timeout.
    Http,
    /// No checks: backends are always up (labs, or an external checker).
    None,
}

/// The management side: metrics endpoint and control socket.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManagementConfig {
    /// Prometheus metrics at `http://LISTEN/metrics`; loopback by default.
    #[serde(default = "default_metrics_listen")]
    pub listen: std::net::SocketAddr,
    /// The control socket (Unix, mode 0600) for `mplb stats|backend|reload|lookup`.
    #[serde(default = "default_control_socket")]
    pub socket: PathBuf,
}

impl Default for ManagementConfig {
    fn default() -> Self {
        ManagementConfig {
            listen: default_metrics_listen(),
            socket: default_control_socket(),
        }
    }
}

/// A virtual service and its backends.
#[derive(Debug, Clone, PartialEq)]
pub struct VipConfig {
    pub name: String,
    pub address: IpAddr,
    pub port: u16,
    pub protocol: VipProtocol,
    /// `l2-dsr` (backends on the LB's segment) or `ipip` (IP-in-IP to the
    /// backend's own address).
    pub forwarding: VipForwarding,
    /// Maglev lookup table size: a prime, > 100 × the number of backends.
    pub table_size: u32,
    /// Pin each initial MPTCP subflow in the flow table once its handshake
    /// completes (the ACK carrying both keys), so that it keeps its backend
    /// when the backend set changes (default: on). Off: those subflows are
    /// re-hashed on every packet, and a change of the backend set moves
    /// (resets) the connections that have no other subflow.
    pub mptcp_tracking: bool,
    /// Route MP_JOIN SYNs that reach the VIP by their token.
    pub token_routing: bool,
    /// Announce the chosen backend's own address to MPTCP clients on the
    /// backend's behalf (an ADD_ADDR from the VIP once the handshake is
    /// seen complete), so that stock backends without `signal` endpoints
    /// get joined directly (default: off). Needs `mptcp_tracking`.
    pub announce_backend_address: bool,
    /// Overrides the global `[health]` for this VIP's backends.
    pub health: Option<HealthConfig>,
    pub backends: Vec<BackendConfig>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VipProtocol {
    #[default]
    Tcp,
    Udp,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VipForwarding {
    #[default]
    L2Dsr,
    Ipip,
}

/// One backend of a VIP. A backend serving several VIPs appears under each,
/// with the same name and address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendConfig {
    pub name: String,
    /// The backend's own address (not the VIP).
    pub address: IpAddr,
    /// Static MAC: for `l2-dsr` the backend's, for `ipip` the next hop's if
    /// on-link. `None`: learnt by ARP / ND (see [`Config::learns_mac`]), or
    /// for `ipip` the port's `gateway_mac`.
    pub mac: Option<Mac>,
    pub weight: u32,
    pub state: BackendStateConfig,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendStateConfig {
    #[default]
    Active,
    Draining,
    Disabled,
}

/// Per-worker plain-TCP flow table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowTableSettings {
    /// Entries per worker (a power of two); memory is 48 bytes per entry.
    pub capacity: usize,
    /// Share of the table new, unconfirmed flows may fill (flood protection).
    pub untrusted_quota_pct: u8,
    pub established_timeout_secs: u64,
    pub untrusted_timeout_secs: u64,
    pub fin_timeout_secs: u64,
    pub rst_timeout_secs: u64,
}

impl Default for FlowTableSettings {
    fn default() -> Self {
        FlowTableSettings {
            capacity: default_flow_capacity(),
            untrusted_quota_pct: default_untrusted_pct(),
            established_timeout_secs: default_established_secs(),
            untrusted_timeout_secs: default_untrusted_secs(),
            fin_timeout_secs: default_fin_secs(),
            rst_timeout_secs: default_rst_secs(),
        }
    }
}

/// The MPTCP token table shared by all workers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenTableSettings {
    /// Entries (a power of two); 8 bytes each.
    pub capacity: usize,
    /// How long a learnt token routes joins.
    pub ttl_secs: u64,
}

impl Default for TokenTableSettings {
    fn default() -> Self {
        TokenTableSettings {
            capacity: default_token_capacity(),
            ttl_secs: default_token_ttl_secs(),
        }
    }
}

/// Encapsulation (`forwarding = "ipip"`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncapConfig {
    /// Outer IPv4 source; default: the port's first IPv4 address.
    pub source_v4: Option<Ipv4Addr>,
    /// Outer IPv6 source; default: the port's first IPv6 address.
    pub source_v6: Option<Ipv6Addr>,
    #[serde(default = "default_encap_ttl")]
    pub ttl: u8,
}

impl Default for EncapConfig {
    fn default() -> Self {
        EncapConfig {
            source_v4: None,
            source_v6: None,
            ttl: default_encap_ttl(),
        }
    }
}

/// A MAC address written `02:00:00:00:00:01`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mac(pub [u8; 6]);

/// DPDK's environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpdkConfig {
    /// EAL arguments (devices, memory, file prefix). Lcores are not given
    /// here: mplb derives `-l` and `--main-lcore` from `[workers]`.
    pub eal_args: Vec<String>,
    /// The lcore of the main (management) thread; never runs a worker.
    pub main_lcore: u32,
    /// Packet buffers in the pool; a power of two minus one is most efficient.
    pub mempool_size: u32,
    /// Per-lcore buffer cache of the pool.
    pub mempool_cache: u32,
}

/// What the worker loop does with each frame.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WorkerMode {
    /// The load balancer's datapath.
    #[default]
    Balance,
    /// Swap MAC addresses and send back: the bare rx→tx loop, to measure the
    /// engine's ceiling against `dpdk-testpmd --forward-mode=macswap`.
    Macswap,
}

/// The poll-mode workers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkersConfig {
    /// One worker per lcore, each pinned; (port, rx queue) pairs are dealt
    /// to them round-robin.
    pub lcores: Vec<u32>,
    /// Test mode: the CPU each worker lcore runs on (parallel to `lcores`),
    /// so that several workers can share a CPU (EAL `--lcores=l@cpu,...`).
    /// Empty in production: each lcore runs on the CPU of its own number.
    pub cpus: Vec<u32>,
    pub mode: WorkerMode,
}

impl WorkersConfig {
    /// Whether two workers, or a worker and the main lcore (on CPU
    /// `main_lcore`), share a CPU: the test mode that `cpus` allows.
    pub fn share_cpus(&self, main_lcore: u32) -> bool {
        if self.cpus.is_empty() {
            return false;
        }
        let mut seen = vec![main_lcore];
        for &c in &self.cpus {
            if seen.contains(&c) {
                return true;
            }
            seen.push(c);
        }
        false
    }
}

/// One DPDK port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortConfig {
    /// A name for logs and references (`datapath.backend_port`).
    pub name: String,
    /// The DPDK device name: a vdev (`net_ring0`) or a PCI address.
    pub device: String,
    /// Rx queues (RSS spreads flows over them). Default: one per worker.
    pub rx_queues: Option<u16>,
    pub rx_descriptors: u16,
    pub tx_descriptors: u16,
    /// L3 MTU; default: the device's.
    pub mtu: Option<u16>,
    pub promiscuous: bool,
    /// Own IPv4 addresses (answered for ARP and ICMP echo).
    pub ipv4: Vec<Ipv4Addr>,
    /// Own IPv6 addresses (answered for neighbour discovery and echo).
    pub ipv6: Vec<Ipv6Addr>,
    /// The next hop's MAC for encapsulated traffic to off-link backends.
    pub gateway_mac: Option<Mac>,
    /// The exception path: the name of the kernel interface (a `net_tap`)
    /// that gets the host's own traffic on this port; `None`: no kernel
    /// interface, everything not answered by the datapath is dropped.
    pub kernel_interface: Option<String>,
    /// Each own address (`ipv4` then `ipv6`, in file order) with its prefix
    /// length as written (`/32` or `/128` when none was): what the kernel
    /// interface is given. The datapath only uses the addresses.
    pub prefixes: Vec<(IpAddr, u8)>,
}

/// Datapath settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatapathConfig {
    /// The port that faces the backends (two-armed deployment). Default: the
    /// port a frame came in on (one-armed).
    pub backend_port: Option<String>,
    /// Frames each worker hands to the kernel interfaces a second, at most
    /// (bursts of a tenth of it, at least 32); the rest are dropped and
    /// counted (`drop_kernel_limit`).
    pub kernel_rate_pps: u32,
    /// The version of the hash contract (`datapath::hash`): which backend
    /// each flow gets. Every instance of an ECMP group must use the same;
    /// default 1.
    pub hash_version: HashVersion,
}

impl Default for DatapathConfig {
    fn default() -> Self {
        DatapathConfig {
            backend_port: None,
            kernel_rate_pps: default_kernel_rate_pps(),
            hash_version: HashVersion::default(),
        }
    }
}

/// The default of `[datapath] kernel_rate_pps`: far more than BGP, BFD
/// (20 packets a second per session at 50 ms), SSH and health checks need,
/// while each frame to the kernel is a `write` on the tap (~1-2 µs), so a
/// flood to an own address costs a worker at most a few percent of its time.
pub(crate) const fn default_kernel_rate_pps() -> u32 {
    10_000
}

fn yes() -> bool {
    true
}
fn default_table_size() -> u32 {
    65537
}
fn default_weight() -> u32 {
    1
}
fn default_flow_capacity() -> usize {
    1 << 20
}
fn default_untrusted_pct() -> u8 {
    25
}
fn default_established_secs() -> u64 {
    300
}
fn default_untrusted_secs() -> u64 {
    5
}
fn default_fin_secs() -> u64 {
    10
}
fn default_rst_secs() -> u64 {
    2
}
fn default_token_capacity() -> usize {
    1 << 18
}
fn default_token_ttl_secs() -> u64 {
    3600
}
fn default_encap_ttl() -> u8 {
    64
}
fn default_health_path() -> String {
    "/".to_string()
}
fn default_health_status() -> u16 {
    200
}
fn default_health_interval_ms() -> u64 {
    1000
}
fn default_health_timeout_ms() -> u64 {
    500
}
fn default_rise() -> u32 {
    2
}
fn default_fall() -> u32 {
    3
}
fn default_metrics_listen() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], 9100))
}
fn default_control_socket() -> PathBuf {
    PathBuf::from("/run/mplb/mplb.sock")
}
fn default_mempool_size() -> u32 {
    16383
}
fn default_mempool_cache() -> u32 {
    256
}
fn default_descriptors() -> u16 {
    1024
}

/// The largest config file read: far above any real one (65535 backends
/// take about 6 MiB).
pub const MAX_FILE_BYTES: u64 = 64 << 20;

/// The text of a config file: a regular file of at most [`MAX_FILE_BYTES`].
/// The type is checked before the file is opened, and again on the open file
/// (opened non-blocking, so a path swapped for a FIFO in between does not
/// block either).
fn read_file(path: &Path) -> Result<String, String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;

    let regular = |meta: &std::fs::Metadata| {
        if meta.is_file() {
            Ok(())
        } else {
            Err(format!(
                "cannot read: not a regular file ({})",
                file_kind(&meta.file_type())
            ))
        }
    };
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read: {e}"))?;
    regular(&meta)?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| format!("cannot read: {e}"))?;
    let meta = file.metadata().map_err(|e| format!("cannot read: {e}"))?;
    regular(&meta)?;
    let too_big = || format!("cannot read: larger than {MAX_FILE_BYTES} bytes");
    if meta.len() > MAX_FILE_BYTES {
        return Err(too_big());
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read: {e}"))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_big());
    }
    String::from_utf8(bytes).map_err(|e| format!("cannot read: not UTF-8 text ({e})"))
}

fn file_kind(t: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else {
        "not a file"
    }
}

/// A configuration error, located in its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based; 0 when the error is not tied to a place (e.g. unreadable file).
    pub line: usize,
    pub column: usize,
    /// The field, as a path (`port[0].rx_queues`); empty when not known.
    pub field: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        if !self.field.is_empty() {
            write!(f, ": field `{}`", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads, parses and validates a config file, and checks that the
    /// memory it needs fits this host. Only regular files are read (a FIFO
    /// or a device could block or never end), of at most
    /// [`MAX_FILE_BYTES`].
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = read_file(path).map_err(|message| ConfigError {
            file: path.to_path_buf(),
            line: 0,
            column: 0,
            field: String::new(),
            message,
        })?;
        parse::parse(&text, path, HostMemory::probe().as_ref())
    }

    /// Parses and validates config text; `path` is used in errors only. The
    /// host's memory is not looked at (see [`Config::parse_for_host`]).
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        parse::parse(text, path, None)
    }

    /// [`Config::parse`], and the memory the config needs checked against
    /// `host`.
    pub fn parse_for_host(
        text: &str,
        path: &Path,
        host: &HostMemory,
    ) -> Result<Config, ConfigError> {
        parse::parse(text, path, Some(host))
    }

    /// Why `new` cannot replace `self` by a reload (sections that shape the
    /// engine itself need a restart); `None` if it can.
    pub fn reload_blocker(&self, new: &Config) -> Option<&'static str> {
        if self.dpdk != new.dpdk {
            Some("[dpdk] changed")
        } else if self.workers != new.workers {
            Some("[workers] changed")
        } else if self.ports != new.ports {
            Some("[[port]] changed")
        } else if self.datapath != new.datapath {
            Some("[datapath] changed")
        } else if self.flow_table != new.flow_table {
            Some("[flow_table] changed")
        } else if self.token_table != new.token_table {
            Some("[token_table] changed")
        } else if self.management != new.management {
            Some("[management] changed")
        } else if self.bgp != new.bgp {
            Some("[bgp] changed")
        } else {
            None
        }
    }

    /// The health check for backends of VIP `vip`.
    pub fn health_for(&self, vip: usize) -> &HealthConfig {
        self.vips
            .get(vip)
            .and_then(|v| v.health.as_ref())
            .unwrap_or(&self.health)
    }

    pub fn port_index(&self, name: &str) -> Option<usize> {
        self.ports.iter().position(|p| p.name == name)
    }

    /// The port backends are reached from, where their MACs are learnt:
    /// `[datapath] backend_port`, else the first port (one-armed).
    pub fn neighbour_port(&self) -> usize {
        self.datapath
            .backend_port
            .as_ref()
            .and_then(|n| self.port_index(n))
            .unwrap_or(0)
    }

    /// Whether backend `b` of `vip` has its MAC learnt by ARP / ND: no
    /// `mac` in the file, and either L2 DSR or IP-in-IP with no
    /// `gateway_mac` on the port (the backend is then the on-link next hop).
    pub fn learns_mac(&self, vip: &VipConfig, b: &BackendConfig) -> bool {
        b.mac.is_none()
            && match vip.forwarding {
                VipForwarding::L2Dsr => true,
                VipForwarding::Ipip => self
                    .ports
                    .get(self.neighbour_port())
                    .is_none_or(|p| p.gateway_mac.is_none()),
            }
    }

    /// Rx queues of port `i` (default: one per worker).
    pub fn rx_queues(&self, i: usize) -> u16 {
        let workers = u16::try_from(self.workers.lcores.len()).unwrap_or(u16::MAX);
        self.ports
            .get(i)
            .and_then(|p| p.rx_queues)
            .unwrap_or(workers)
    }

    /// A few lines describing the configuration, for `check-config`.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "workers: {} on lcores {:?}{} (mode {:?}), main lcore {}\n",
            self.workers.lcores.len(),
            self.workers.lcores,
            if self.workers.cpus.is_empty() {
                String::new()
            } else {
                format!(
                    " on CPUs {:?} (test mode{})",
                    self.workers.cpus,
                    if self.workers.share_cpus(self.dpdk.main_lcore) {
                        ": workers share CPUs"
                    } else {
                        ""
                    }
                )
            },
            self.workers.mode,
            self.dpdk.main_lcore
        );
        s += &format!(
            "hash version {} (every instance of the ECMP group must use the same)\n",
            self.datapath.hash_version
        );
        for (i, p) in self.ports.iter().enumerate() {
            s += &format!(
                "port {}: {} device {} rx queues {} mtu {} addresses {:?} {:?}\n",
                i,
                p.name,
                p.device,
                self.rx_queues(i),
                p.mtu
                    .map_or("(the device's)".to_string(), |m| m.to_string()),
                p.ipv4,
                p.ipv6
            );
            if let Some(k) = &p.kernel_interface {
                let addrs: Vec<String> =
                    p.prefixes.iter().map(|(a, l)| format!("{a}/{l}")).collect();
                s += &format!(
                    "port {}: kernel interface {} (addresses {}; the host's own traffic, at most {} frames/s per worker)\n",
                    i,
                    k,
                    if addrs.is_empty() {
                        "none".to_string()
                    } else {
                        addrs.join(" ")
                    },
                    self.datapath.kernel_rate_pps
                );
            }
        }
        for v in &self.vips {
            s += &format!(
                "vip {}: {} {} ({:?}, {:?}){} backends {}\n",
                v.name,
                match v.protocol {
                    VipProtocol::Tcp => "tcp",
                    VipProtocol::Udp => "udp",
                },
                std::net::SocketAddr::new(v.address, v.port),
                v.forwarding,
                v.table_size,
                if v.announce_backend_address {
                    ", announces backend addresses (ADD_ADDR)"
                } else {
                    ""
                },
                v.backends
                    .iter()
                    .map(|b| backend_summary(b, self.learns_mac(v, b)))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        let learnt: std::collections::BTreeSet<IpAddr> = self
            .vips
            .iter()
            .flat_map(|v| v.backends.iter().filter(|b| self.learns_mac(v, b)))
            .map(|b| b.address)
            .collect();
        if !learnt.is_empty() {
            let port = self.neighbour_port();
            s += &format!(
                "backend MACs: {} address(es) learnt by ARP / ND on port {} (each backend without `mac`; no traffic to one until it answers)\n",
                learnt.len(),
                self.ports.get(port).map_or("?", |p| p.name.as_str()),
            );
        }
        s += &format!("mempool: {} buffers\n", self.dpdk.mempool_size);
        s += &self.memory_report(HostMemory::probe().as_ref());
        s += &fleet::summary(self.bgp.as_ref(), &self.drain);
        for v in &self.vips {
            let serving = v
                .backends
                .iter()
                .any(|b| b.weight > 0 && b.state == BackendStateConfig::Active);
            if !serving {
                s += &format!(
                    "warning: vip {}: no backend takes new flows (each is disabled, draining or of weight 0): `mplb lookup` finds none\n",
                    v.name
                );
            }
        }
        s
    }
}

/// A backend's name, and what keeps it from new flows if anything: the
/// same view as `mplb lookup`, which only picks active backends of weight > 0;
/// then how its MAC is found when it is `learnt`.
fn backend_summary(b: &BackendConfig, learnt: bool) -> String {
    let mut s = match (b.state, b.weight) {
        (BackendStateConfig::Disabled, _) => format!("{} (disabled)", b.name),
        (BackendStateConfig::Draining, _) => format!("{} (draining: no new flows)", b.name),
        (BackendStateConfig::Active, 0) => format!("{} (weight 0: no new flows)", b.name),
        (BackendStateConfig::Active, _) => b.name.clone(),
    };
    if learnt {
        s += if b.address.is_ipv4() {
            " (MAC by ARP)"
        } else {
            " (MAC by ND)"
        };
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[dpdk]
eal_args = ["--no-huge", "--vdev=net_null0"]

[workers]
lcores = [1]

[[port]]
name = "lan"
device = "net_null0"
ipv4 = ["198.18.0.1"]
"#;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("test.toml"))
    }

    #[test]
    fn announce_backend_address_is_off_by_default_and_needs_tracking_and_tcp() {
        let vip = |extra: &str| {
            format!(
                "{GOOD}[[vip]]\nname = \"w\"\naddress = \"198.18.0.10\"\nport = 80\n{extra}\n\
                 [[vip.backend]]\nname = \"a\"\naddress = \"198.18.1.11\"\nmac = \"02:00:00:00:01:11\"\n"
            )
        };
        let off = parse(&vip("")).expect("valid");
        assert!(!off.vips[0].announce_backend_address);
        assert!(!off.summary().contains("ADD_ADDR"));
        let on = parse(&vip("announce_backend_address = true")).expect("valid");
        assert!(on.vips[0].announce_backend_address);
        assert!(
            on.summary()
                .contains("announces backend addresses (ADD_ADDR)"),
            "{}",
            on.summary()
        );
        let e = parse(&vip(
            "announce_backend_address = true\nmptcp_tracking = false",
        ))
        .expect_err("needs tracking");
        assert_eq!(e.field, "vip[0].announce_backend_address", "{e}");
        assert!(e.to_string().contains("mptcp_tracking"), "{e}");
        let e = parse(&vip("announce_backend_address = true\nprotocol = \"udp\""))
            .expect_err("needs TCP");
        assert!(e.to_string().contains("TCP VIP"), "{e}");
    }

    #[test]
    fn good_config_gets_defaults() {
        let c = parse(GOOD).expect("valid");
        assert_eq!(c.dpdk.mempool_size, 16383);
        assert_eq!(c.rx_queues(0), 1);
        assert_eq!(c.workers.mode, WorkerMode::Balance);
        assert_eq!(
            c.eal_command_line(),
            [
                "mplb",
                "-l",
                "0,1",
                "--main-lcore",
                "0",
                "--no-huge",
                "--vdev=net_null0"
            ]
        );
    }

    #[test]
    fn kernel_interface_and_address_prefixes() {
        let c = parse(GOOD).expect("valid");
        assert_eq!(c.ports[0].kernel_interface, None);
        assert_eq!(c.ports[0].prefixes, [("198.18.0.1".parse().unwrap(), 32)]);
        assert_eq!(c.datapath.kernel_rate_pps, 10_000);
        let with = GOOD.replace(
            "ipv4 = [\"198.18.0.1\"]",
            "ipv4 = [\"198.18.0.1/24\"]\nipv6 = [\"fd00::1\", \"fd00:1::1/64\"]\nkernel_interface = \"mplb-up.0\"",
        );
        let c = parse(&format!("{with}[datapath]\nkernel_rate_pps = 500\n")).expect("valid");
        let p = &c.ports[0];
        assert_eq!(p.kernel_interface.as_deref(), Some("mplb-up.0"));
        // The datapath sees the addresses; the kernel gets their prefixes.
        assert_eq!(p.ipv4, [Ipv4Addr::new(198, 18, 0, 1)]);
        assert_eq!(p.ipv6.len(), 2);
        let lens: Vec<u8> = p.prefixes.iter().map(|(_, l)| *l).collect();
        assert_eq!(lens, [24, 128, 64]);
        assert_eq!(c.datapath.kernel_rate_pps, 500);
        assert!(c.summary().contains(
            "port 0: kernel interface mplb-up.0 (addresses 198.18.0.1/24 fd00::1/128 fd00:1::1/64; "
        ));
        let bad = |from: &str, to: &str| parse(&with.replace(from, to)).expect_err(to);
        for (from, to, line, field) in [
            ("198.18.0.1/24", "198.18.0.1/33", 11, "port[0].ipv4[0]"),
            ("198.18.0.1/24", "198.18.0.1/", 11, "port[0].ipv4[0]"),
            ("fd00:1::1/64", "fd00:1::1/129", 12, "port[0].ipv6[1]"),
            (
                "mplb-up.0",
                "a-name-too-long-16",
                13,
                "port[0].kernel_interface",
            ),
            ("mplb-up.0", "up/0", 13, "port[0].kernel_interface"),
            ("mplb-up.0", "..", 13, "port[0].kernel_interface"),
            ("mplb-up.0", "", 13, "port[0].kernel_interface"),
        ] {
            let e = bad(from, to);
            assert_eq!((e.line, e.field.as_str()), (line, field), "{to}: {e}");
        }
        let two = format!(
            "{with}[[port]]\nname = \"b\"\ndevice = \"net_null1\"\nkernel_interface = \"mplb-up.0\"\n"
        );
        let e = parse(&two).expect_err("one interface, two ports");
        assert_eq!(
            (e.line, e.field.as_str()),
            (17, "port[1].kernel_interface"),
            "{e}"
        );
        assert!(e.message.contains("used by two ports"), "{e}");
        let e = parse(&format!("{GOOD}[datapath]\nkernel_rate_pps = 0\n")).expect_err("zero");
        assert_eq!(
            (e.line, e.field.as_str()),
            (13, "datapath.kernel_rate_pps"),
            "{e}"
        );
    }

    #[test]
    fn hash_version_is_1_unless_set_and_needs_a_restart() {
        let c = parse(GOOD).expect("valid");
        assert_eq!(c.datapath.hash_version, HashVersion::V1);
        assert!(c.summary().contains("hash version 1 "), "{}", c.summary());
        let v2 = parse(&format!("{GOOD}[datapath]\nhash_version = 2\n")).expect("valid");
        assert_eq!(v2.datapath.hash_version, HashVersion::V2);
        assert!(v2.summary().contains("hash version 2 "));
        // The flow table is placed by the hash: not a reload.
        assert_eq!(c.reload_blocker(&v2), Some("[datapath] changed"));
        for bad in ["0", "3", "-1"] {
            let e = parse(&format!("{GOOD}[datapath]\nhash_version = {bad}\n")).expect_err(bad);
            assert_eq!(
                (e.line, e.field.as_str()),
                (13, "datapath.hash_version"),
                "{e}"
            );
        }
        let e = parse(&format!("{GOOD}[datapath]\nhash_version = 3\n")).expect_err("3");
        assert!(e.message.contains("must be one of 1, 2"), "{e}");
    }

    #[test]
    fn test_mode_maps_several_worker_lcores_onto_one_cpu() {
        let c = parse(&GOOD.replace("lcores = [1]", "lcores = [1, 2, 3]\ncpus = [1, 1, 0]"))
            .expect("valid");
        assert_eq!(c.rx_queues(0), 3);
        assert!(c.workers.share_cpus(0));
        assert_eq!(
            c.eal_command_line()[1..5],
            ["--lcores", "0@0,1@1,2@1,3@0", "--main-lcore", "0"]
        );
        let own =
            parse(&GOOD.replace("lcores = [1]", "lcores = [1, 2]\ncpus = [2, 1]")).expect("valid");
        assert!(!own.workers.share_cpus(0), "each on a CPU of its own");
        assert!(!parse(GOOD).expect("valid").workers.share_cpus(0));
        let e = parse(&GOOD.replace("lcores = [1]", "lcores = [1, 2]\ncpus = [1]"))
            .expect_err("one CPU per lcore");
        assert_eq!((e.line, e.field.as_str()), (7, "workers.cpus"), "{e}");
        let e = parse(&GOOD.replace("lcores = [1]", "lcores = [1]\ncpus = [4096]"))
            .expect_err("no such CPU");
        assert_eq!((e.line, e.field.as_str()), (7, "workers.cpus"), "{e}");
    }

    #[test]
    fn unknown_key_names_line_and_field() {
        let text = GOOD.replace(
            "device = \"net_null0\"",
            "device = \"net_null0\"\nrx_queus = 2",
        );
        let e = parse(&text).expect_err("unknown key");
        assert_eq!(e.line, 11, "{e}");
        assert!(e.message.contains("rx_queus"), "{e}");
        assert!(
            e.to_string()
                .starts_with("test.toml:11:1: field `port[0].rx_queus`"),
            "{e}"
        );
    }

    #[test]
    fn bad_value_names_the_field_path() {
        let text = GOOD.replace("ipv4 = [\"198.18.0.1\"]", "ipv4 = [\"198.18.0.300\"]");
        let e = parse(&text).expect_err("bad address");
        assert_eq!(e.line, 11, "{e}");
        assert!(e.field.starts_with("port[0].ipv4"), "{e}");
    }

    #[test]
    fn wrong_type_names_the_field_path() {
        let text = GOOD.replace("lcores = [1]", "lcores = [1]\nmode = 3");
        let e = parse(&text).expect_err("bad type");
        assert_eq!(e.field, "workers.mode", "{e}");
        assert_eq!(e.line, 7, "{e}");
    }

    #[test]
    fn semantic_errors_are_located() {
        let e = parse(&GOOD.replace("lcores = [1]", "lcores = [0]")).expect_err("main lcore");
        assert_eq!((e.line, e.field.as_str()), (6, "workers.lcores"), "{e}");
        let e = parse(&GOOD.replace("--no-huge", "-l 0-1")).expect_err("lcores in eal");
        assert_eq!(e.field, "dpdk.eal_args", "{e}");
        let text = format!("{GOOD}\n[datapath]\nbackend_port = \"wan\"\n");
        let e = parse(&text).expect_err("unknown port");
        assert_eq!(
            (e.line, e.field.as_str()),
            (14, "datapath.backend_port"),
            "{e}"
        );
    }

    #[test]
    fn a_vip_address_is_no_own_address() {
        let vip = |addr: &str| {
            format!(
                "{GOOD}ipv6 = [\"fd00::1\"]\n[[vip]]\nname = \"w\"\naddress = \"{addr}\"\nport = 80\n\
                 [[vip.backend]]\nname = \"a\"\naddress = \"198.18.1.11\"\nmac = \"02:00:00:00:01:11\"\n"
            )
        };
        parse(&vip("198.18.0.10")).expect("valid");
        for own in ["198.18.0.1", "fd00::1"] {
            let e = parse(&vip(own)).expect_err(own);
            assert_eq!((e.line, e.field.as_str()), (14, "vip[0].address"), "{e}");
            assert!(e.message.contains("own address of port `lan`"), "{e}");
        }
    }

    #[test]
    fn one_backend_name_is_one_address_across_vips() {
        let vip = |name: &str, addr: &str, backend: &str| {
            format!(
                "\n[[vip]]\nname = \"{name}\"\naddress = \"{addr}\"\nport = 80\nforwarding = \"ipip\"\n  [[vip.backend]]\n  name = \"be1\"\n  address = \"{backend}\"\n  mac = \"02:00:00:00:01:11\"\n"
            )
        };
        let text = format!(
            "{GOOD}{}{}",
            vip("web", "198.18.0.10", "198.18.1.11"),
            vip("web6", "fd00:18::10", "fd00:18:1::11")
        );
        let e = parse(&text).expect_err("one name, two addresses");
        assert_eq!(e.field, "vip[1].backend[0].address", "{e}");
        assert!(e.message.contains("its own name"), "{e}");
        // Under two names it is fine.
        parse(&text.replacen(
            "name = \"be1\"\n  address = \"fd00",
            "name = \"be1-v6\"\n  address = \"fd00",
            1,
        ))
        .expect("two names");
    }

    #[test]
    fn missing_section_is_reported() {
        let e = parse("[dpdk]\n").expect_err("missing workers");
        assert!(e.message.contains("workers"), "{e}");
    }
}
