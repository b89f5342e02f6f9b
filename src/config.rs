//! The configuration file (TOML): parsing, defaults and validation.
//!
//! Every error names the file, the line and column, and the field (as a path
//! such as `port[0].rx_queues`), so an operator can fix it without guessing.
//! Unknown keys are errors: a typo must not silently fall back to a default.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

/// A validated configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub dpdk: DpdkConfig,
    pub workers: WorkersConfig,
    #[serde(rename = "port")]
    pub ports: Vec<PortConfig>,
    #[serde(default)]
    pub datapath: DatapathConfig,
    #[serde(default, rename = "vip")]
    pub vips: Vec<VipConfig>,
    #[serde(default)]
    pub flow_table: FlowTableSettings,
    #[serde(default)]
    pub token_table: TokenTableSettings,
    #[serde(default)]
    pub encap: EncapConfig,
    /// Default health check for every backend (a VIP may override it).
    #[serde(default)]
    pub health: HealthConfig,
    #[serde(default)]
    pub management: ManagementConfig,
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
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VipConfig {
    pub name: Spanned<String>,
    pub address: IpAddr,
    pub port: u16,
    #[serde(default)]
    pub protocol: VipProtocol,
    /// `l2-dsr` (backends on the LB's segment) or `ipip` (IP-in-IP to the
    /// backend's own address).
    #[serde(default)]
    pub forwarding: VipForwarding,
    /// Maglev lookup table size: a prime, > 100 × the number of backends.
    #[serde(default = "default_table_size")]
    pub table_size: Spanned<u32>,
    /// Also pin initial MPTCP subflows in the flow table (default: stateless).
    #[serde(default)]
    pub mptcp_tracking: bool,
    /// Route MP_JOIN SYNs that reach the VIP by their token.
    #[serde(default = "yes")]
    pub token_routing: bool,
    /// Overrides the global `[health]` for this VIP's backends.
    pub health: Option<HealthConfig>,
    #[serde(rename = "backend")]
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
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendConfig {
    pub name: Spanned<String>,
    /// The backend's own address (not the VIP).
    pub address: IpAddr,
    /// Needed for `l2-dsr`; for `ipip`, the next hop's MAC if on-link.
    pub mac: Option<Mac>,
    #[serde(default = "default_weight")]
    pub weight: u32,
    #[serde(default)]
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
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowTableSettings {
    /// Entries per worker (a power of two); memory is 48 bytes per entry.
    #[serde(default = "default_flow_capacity_spanned")]
    pub capacity: Spanned<usize>,
    /// Share of the table new, unconfirmed flows may fill (flood protection).
    #[serde(default = "default_untrusted_pct")]
    pub untrusted_quota_pct: u8,
    #[serde(default = "default_established_secs")]
    pub established_timeout_secs: u64,
    #[serde(default = "default_untrusted_secs")]
    pub untrusted_timeout_secs: u64,
    #[serde(default = "default_fin_secs")]
    pub fin_timeout_secs: u64,
    #[serde(default = "default_rst_secs")]
    pub rst_timeout_secs: u64,
}

impl Default for FlowTableSettings {
    fn default() -> Self {
        FlowTableSettings {
            capacity: Spanned::new(0..0, default_flow_capacity()),
            untrusted_quota_pct: default_untrusted_pct(),
            established_timeout_secs: default_established_secs(),
            untrusted_timeout_secs: default_untrusted_secs(),
            fin_timeout_secs: default_fin_secs(),
            rst_timeout_secs: default_rst_secs(),
        }
    }
}

/// The MPTCP token table shared by all workers.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenTableSettings {
    /// Entries (a power of two); 8 bytes each.
    #[serde(default = "default_token_capacity_spanned")]
    pub capacity: Spanned<usize>,
    /// How long a learnt token routes joins.
    #[serde(default = "default_token_ttl_secs")]
    pub ttl_secs: u64,
}

impl Default for TokenTableSettings {
    fn default() -> Self {
        TokenTableSettings {
            capacity: Spanned::new(0..0, default_token_capacity()),
            ttl_secs: default_token_ttl_secs(),
        }
    }
}

/// Encapsulation (`forwarding = "ipip"`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
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

impl<'de> Deserialize<'de> for Mac {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Mac, D::Error> {
        let s = String::deserialize(d)?;
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for o in out.iter_mut() {
            let part = parts.next().filter(|p| p.len() == 2);
            *o = part
                .and_then(|p| u8::from_str_radix(p, 16).ok())
                .ok_or_else(|| {
                    serde::de::Error::custom(format!(
                        "`{s}` is not a MAC address (aa:bb:cc:dd:ee:ff)"
                    ))
                })?;
        }
        if parts.next().is_some() {
            return Err(serde::de::Error::custom(format!(
                "`{s}` is not a MAC address (aa:bb:cc:dd:ee:ff)"
            )));
        }
        Ok(Mac(out))
    }
}

/// DPDK's environment.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DpdkConfig {
    /// EAL arguments (devices, memory, file prefix). Lcores are not given
    /// here: mplb derives `-l` and `--main-lcore` from `[workers]`.
    #[serde(default = "no_eal_args")]
    pub eal_args: Spanned<Vec<String>>,
    /// The lcore of the main (management) thread; never runs a worker.
    #[serde(default)]
    pub main_lcore: u32,
    /// Packet buffers in the pool; a power of two minus one is most efficient.
    #[serde(default = "default_mempool_size")]
    pub mempool_size: u32,
    /// Per-lcore buffer cache of the pool.
    #[serde(default = "default_mempool_cache")]
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
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkersConfig {
    /// One worker per lcore, each pinned; (port, rx queue) pairs are dealt
    /// to them round-robin.
    pub lcores: Spanned<Vec<u32>>,
    #[serde(default)]
    pub mode: WorkerMode,
}

/// One DPDK port.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortConfig {
    /// A name for logs and references (`datapath.backend_port`).
    pub name: Spanned<String>,
    /// The DPDK device name: a vdev (`net_ring0`) or a PCI address.
    pub device: String,
    /// Rx queues (RSS spreads flows over them). Default: one per worker.
    pub rx_queues: Option<u16>,
    #[serde(default = "default_descriptors")]
    pub rx_descriptors: u16,
    #[serde(default = "default_descriptors")]
    pub tx_descriptors: u16,
    /// L3 MTU; default: the device's.
    pub mtu: Option<u16>,
    #[serde(default)]
    pub promiscuous: bool,
    /// Own IPv4 addresses (answered for ARP and ICMP echo).
    #[serde(default)]
    pub ipv4: Vec<Ipv4Addr>,
    /// Own IPv6 addresses (answered for neighbour discovery and echo).
    #[serde(default)]
    pub ipv6: Vec<Ipv6Addr>,
    /// The next hop's MAC for encapsulated traffic to off-link backends.
    pub gateway_mac: Option<Mac>,
}

/// Datapath settings.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatapathConfig {
    /// The port that faces the backends (two-armed deployment). Default: the
    /// port a frame came in on (one-armed).
    pub backend_port: Option<Spanned<String>>,
}

fn no_eal_args() -> Spanned<Vec<String>> {
    Spanned::new(0..0, Vec::new())
}
fn yes() -> bool {
    true
}
fn default_table_size() -> Spanned<u32> {
    Spanned::new(0..0, 65537)
}
fn default_weight() -> u32 {
    1
}
fn default_flow_capacity() -> usize {
    1 << 20
}
fn default_flow_capacity_spanned() -> Spanned<usize> {
    Spanned::new(0..0, default_flow_capacity())
}
fn default_token_capacity_spanned() -> Spanned<usize> {
    Spanned::new(0..0, default_token_capacity())
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
    /// Reads, parses and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_path_buf(),
            line: 0,
            column: 0,
            field: String::new(),
            message: format!("cannot read: {e}"),
        })?;
        Config::parse(&text, path)
    }

    /// Parses and validates config text; `path` is used in errors only.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let located = |span: Option<Range<usize>>, field: String, message: String| {
            let (line, column) = span.map(|s| line_col(text, s.start)).unwrap_or((0, 0));
            ConfigError {
                file: path.to_path_buf(),
                line,
                column,
                field,
                message,
            }
        };
        let de = toml::Deserializer::new(text);
        let config: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let field = e.path().to_string();
            let inner = e.into_inner();
            let field = if field == "." { String::new() } else { field };
            located(inner.span(), field, inner.message().trim().to_string())
        })?;
        config
            .validate()
            .map_err(|(span, field, message)| located(span, field, message))?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), (Option<Range<usize>>, String, String)> {
        let lcores = &self.workers.lcores;
        if lcores.get_ref().is_empty() {
            return Err((
                Some(lcores.span()),
                "workers.lcores".into(),
                "at least one worker lcore is needed".into(),
            ));
        }
        let mut seen = Vec::new();
        for &l in lcores.get_ref() {
            if l == self.dpdk.main_lcore {
                return Err((
                    Some(lcores.span()),
                    "workers.lcores".into(),
                    format!("lcore {l} is the main (management) lcore; workers need their own"),
                ));
            }
            if seen.contains(&l) {
                return Err((
                    Some(lcores.span()),
                    "workers.lcores".into(),
                    format!("lcore {l} listed twice"),
                ));
            }
            seen.push(l);
        }
        let eal = &self.dpdk.eal_args;
        if let Some(a) = eal.get_ref().iter().find(|a| {
            let flag = a.split('=').next().unwrap_or(a);
            matches!(flag, "-l" | "-c" | "--lcores" | "--main-lcore")
                || a.starts_with("-l") && a.len() > 2 && !a.starts_with("--")
        }) {
            return Err((
                Some(eal.span()),
                "dpdk.eal_args".into(),
                format!(
                    "`{a}`: lcores come from workers.lcores and dpdk.main_lcore, not from EAL arguments"
                ),
            ));
        }
        if self.ports.is_empty() {
            return Err((
                None,
                "port".into(),
                "at least one [[port]] is needed".into(),
            ));
        }
        if self.ports.len() > 64 {
            return Err((None, "port".into(), "at most 64 ports".into()));
        }
        for (i, p) in self.ports.iter().enumerate() {
            if self.ports[..i]
                .iter()
                .any(|q| q.name.get_ref() == p.name.get_ref())
            {
                return Err((
                    Some(p.name.span()),
                    format!("port[{i}].name"),
                    format!("port name `{}` used twice", p.name.get_ref()),
                ));
            }
            if p.rx_queues == Some(0) {
                return Err((
                    Some(p.name.span()),
                    format!("port[{i}].rx_queues"),
                    "must be at least 1".into(),
                ));
            }
            if p.rx_descriptors == 0 || p.tx_descriptors == 0 {
                return Err((
                    Some(p.name.span()),
                    format!("port[{i}].rx_descriptors"),
                    "descriptor counts must be at least 1".into(),
                ));
            }
        }
        if let Some(bp) = &self.datapath.backend_port {
            if self.port_index(bp.get_ref()).is_none() {
                return Err((
                    Some(bp.span()),
                    "datapath.backend_port".into(),
                    format!("no port named `{}`", bp.get_ref()),
                ));
            }
        }
        self.validate_vips()?;
        for (field, h) in std::iter::once(("health".to_string(), &self.health)).chain(
            self.vips
                .iter()
                .enumerate()
                .filter_map(|(i, v)| v.health.as_ref().map(|h| (format!("vip[{i}].health"), h))),
        ) {
            if h.rise == 0 || h.fall == 0 {
                return Err((
                    None,
                    format!("{field}.rise"),
                    "rise and fall must be at least 1".into(),
                ));
            }
            if h.interval_ms == 0 || h.timeout_ms == 0 || h.timeout_ms > h.interval_ms {
                return Err((
                    None,
                    format!("{field}.timeout_ms"),
                    "need 0 < timeout_ms <= interval_ms".into(),
                ));
            }
            if h.kind == HealthKind::Http && !h.path.starts_with('/') {
                return Err((
                    None,
                    format!("{field}.path"),
                    "an HTTP path starts with /".into(),
                ));
            }
        }
        let cap = &self.flow_table.capacity;
        if !cap.get_ref().is_power_of_two() || *cap.get_ref() < 8 {
            return Err((
                Some(cap.span()),
                "flow_table.capacity".into(),
                "must be a power of two, at least 8".into(),
            ));
        }
        if !(1..=100).contains(&self.flow_table.untrusted_quota_pct) {
            return Err((
                None,
                "flow_table.untrusted_quota_pct".into(),
                "must be 1..=100".into(),
            ));
        }
        let tcap = &self.token_table.capacity;
        if !tcap.get_ref().is_power_of_two() || *tcap.get_ref() < 4 {
            return Err((
                Some(tcap.span()),
                "token_table.capacity".into(),
                "must be a power of two, at least 4".into(),
            ));
        }
        if self.dpdk.mempool_size < 1024 {
            return Err((
                None,
                "dpdk.mempool_size".into(),
                "at least 1024 buffers".into(),
            ));
        }
        Ok(())
    }

    fn validate_vips(&self) -> Result<(), (Option<Range<usize>>, String, String)> {
        // A backend name means one server: same address wherever it appears.
        let mut seen: Vec<(&str, IpAddr)> = Vec::new();
        for (i, v) in self.vips.iter().enumerate() {
            let f = |field: &str| format!("vip[{i}].{field}");
            if self.vips[..i]
                .iter()
                .any(|o| o.name.get_ref() == v.name.get_ref())
            {
                return Err((
                    Some(v.name.span()),
                    f("name"),
                    format!("VIP name `{}` used twice", v.name.get_ref()),
                ));
            }
            if self.vips[..i]
                .iter()
                .any(|o| o.address == v.address && o.port == v.port && o.protocol == v.protocol)
            {
                return Err((
                    Some(v.name.span()),
                    f("address"),
                    format!(
                        "{} defined twice",
                        std::net::SocketAddr::new(v.address, v.port)
                    ),
                ));
            }
            let size = *v.table_size.get_ref();
            if !crate::datapath::maglev::is_prime(size)
                || size > crate::datapath::maglev::MAX_TABLE_SIZE
            {
                return Err((
                    Some(v.table_size.span()),
                    f("table_size"),
                    format!(
                        "{size} is not a prime ≤ {}",
                        crate::datapath::maglev::MAX_TABLE_SIZE
                    ),
                ));
            }
            if v.backends.is_empty() {
                return Err((
                    Some(v.name.span()),
                    f("backend"),
                    "a VIP needs at least one backend".into(),
                ));
            }
            for (j, b) in v.backends.iter().enumerate() {
                let bf = |field: &str| format!("vip[{i}].backend[{j}].{field}");
                let name = b.name.get_ref().as_str();
                if v.backends[..j].iter().any(|o| o.name.get_ref() == name) {
                    return Err((
                        Some(b.name.span()),
                        bf("name"),
                        format!("backend `{name}` listed twice in this VIP"),
                    ));
                }
                match seen.iter().find(|(n, _)| *n == name) {
                    Some((_, addr)) if *addr != b.address => {
                        return Err((
                            Some(b.name.span()),
                            bf("address"),
                            format!("backend `{name}` has address {addr} elsewhere"),
                        ));
                    }
                    Some(_) => {}
                    None => seen.push((name, b.address)),
                }
                if v.forwarding == VipForwarding::L2Dsr && b.mac.is_none() {
                    return Err((
                        Some(b.name.span()),
                        bf("mac"),
                        "l2-dsr forwarding needs the backend's MAC".into(),
                    ));
                }
                if v.forwarding == VipForwarding::Ipip && b.address.is_ipv4() != v.address.is_ipv4()
                {
                    return Err((
                        Some(b.name.span()),
                        bf("address"),
                        "ipip needs a backend address of the VIP's IP version".into(),
                    ));
                }
            }
        }
        if seen.len() > usize::from(u16::MAX) {
            return Err((None, "vip".into(), "too many backends".into()));
        }
        Ok(())
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
        self.ports.iter().position(|p| p.name.get_ref() == name)
    }

    /// Rx queues of port `i` (default: one per worker).
    pub fn rx_queues(&self, i: usize) -> u16 {
        let workers = u16::try_from(self.workers.lcores.get_ref().len()).unwrap_or(u16::MAX);
        self.ports
            .get(i)
            .and_then(|p| p.rx_queues)
            .unwrap_or(workers)
    }

    /// The full EAL command line: program name, lcores, then the configured args.
    pub fn eal_command_line(&self) -> Vec<String> {
        let mut lcores = vec![self.dpdk.main_lcore];
        lcores.extend(self.workers.lcores.get_ref().iter().copied());
        let list: Vec<String> = lcores.iter().map(u32::to_string).collect();
        let mut args = vec![
            "mplb".to_string(),
            "-l".to_string(),
            list.join(","),
            "--main-lcore".to_string(),
            self.dpdk.main_lcore.to_string(),
        ];
        args.extend(self.dpdk.eal_args.get_ref().iter().cloned());
        args
    }

    /// A few lines describing the configuration, for `check-config`.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "workers: {} on lcores {:?} (mode {:?}), main lcore {}\n",
            self.workers.lcores.get_ref().len(),
            self.workers.lcores.get_ref(),
            self.workers.mode,
            self.dpdk.main_lcore
        );
        for (i, p) in self.ports.iter().enumerate() {
            s += &format!(
                "port {}: {} device {} rx queues {} mtu {} addresses {:?} {:?}\n",
                i,
                p.name.get_ref(),
                p.device,
                self.rx_queues(i),
                p.mtu
                    .map_or("(the device's)".to_string(), |m| m.to_string()),
                p.ipv4,
                p.ipv6
            );
        }
        for v in &self.vips {
            s += &format!(
                "vip {}: {} {} ({:?}, {:?}) backends {}\n",
                v.name.get_ref(),
                match v.protocol {
                    VipProtocol::Tcp => "tcp",
                    VipProtocol::Udp => "udp",
                },
                std::net::SocketAddr::new(v.address, v.port),
                v.forwarding,
                v.table_size.get_ref(),
                v.backends
                    .iter()
                    .map(|b| b.name.get_ref().as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        s += &format!("mempool: {} buffers\n", self.dpdk.mempool_size);
        s
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
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
    fn missing_section_is_reported() {
        let e = parse("[dpdk]\n").expect_err("missing workers");
        assert!(e.message.contains("workers"), "{e}");
    }
}
