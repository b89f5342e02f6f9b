//! From TOML text to a validated [`Config`].
//!
//! The file is deserialized into the structs below, which keep the place of
//! the values an error may point at (`Spanned`); they are validated here,
//! and only then turned into the plain types of the parent module. Spans go
//! no further than this file. Each struct tells serde to call it by its plain
//! type's name, as messages did before ("expected struct PortConfig").

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::eal::sets_lcores;
use super::*;

/// What validation reports: where (if known), which field, what is wrong.
type Invalid = (Option<Range<usize>>, String, String);

/// Parses and validates config text; `path` is used in errors only.
pub(super) fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
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
    let config: RawConfig = serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        let field = if field == "." { String::new() } else { field };
        located(inner.span(), field, inner.message().trim().to_string())
    })?;
    config
        .validate()
        .map_err(|(span, field, message)| located(span, field, message))?;
    Ok(config.into_plain())
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "struct Config")]
struct RawConfig {
    dpdk: RawDpdk,
    workers: RawWorkers,
    #[serde(rename = "port")]
    ports: Vec<RawPort>,
    #[serde(default)]
    datapath: RawDatapath,
    #[serde(default, rename = "vip")]
    vips: Vec<RawVip>,
    #[serde(default)]
    flow_table: RawFlowTable,
    #[serde(default)]
    token_table: RawTokenTable,
    #[serde(default)]
    encap: EncapConfig,
    #[serde(default)]
    health: HealthConfig,
    #[serde(default)]
    management: ManagementConfig,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "struct VipConfig")]
struct RawVip {
    name: Spanned<String>,
    address: IpAddr,
    port: u16,
    #[serde(default)]
    protocol: VipProtocol,
    #[serde(default)]
    forwarding: VipForwarding,
    #[serde(default = "default_table_size_spanned")]
    table_size: Spanned<u32>,
    #[serde(default)]
    mptcp_tracking: bool,
    #[serde(default = "yes")]
    token_routing: bool,
    health: Option<HealthConfig>,
    #[serde(rename = "backend")]
    backends: Vec<RawBackend>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "struct BackendConfig")]
struct RawBackend {
    name: Spanned<String>,
    address: IpAddr,
    mac: Option<Mac>,
    #[serde(default = "default_weight")]
    weight: u32,
    #[serde(default)]
    state: BackendStateConfig,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "struct FlowTableSettings")]
struct RawFlowTable {
    #[serde(default = "default_flow_capacity_spanned")]
    capacity: Spanned<usize>,
    #[serde(default = "default_untrusted_pct")]
    untrusted_quota_pct: u8,
    #[serde(default = "default_established_secs")]
    established_timeout_secs: u64,
    #[serde(default = "default_untrusted_secs")]
    untrusted_timeout_secs: u64,
    #[serde(default = "default_fin_secs")]
    fin_timeout_secs: u64,
    #[serde(default = "default_rst_secs")]
    rst_timeout_secs: u64,
}

impl Default for RawFlowTable {
    fn default() -> Self {
        let d = FlowTableSettings::default();
        RawFlowTable {
            capacity: Spanned::new(0..0, d.capacity),
            untrusted_quota_pct: d.untrusted_quota_pct,
            established_timeout_secs: d.established_timeout_secs,
            untrusted_timeout_secs: d.untrusted_timeout_secs,
            fin_timeout_secs: d.fin_timeout_secs,
            rst_timeout_secs: d.rst_timeout_secs,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "struct TokenTableSettings")]
struct RawTokenTable {
    #[serde(default = "default_token_capacity_spanned")]
    capacity: Spanned<usize>,
    #[serde(default = "default_token_ttl_secs")]
    ttl_secs: u64,
}

impl Default for RawTokenTable {
    fn default() -> Self {
        let d = TokenTableSettings::default();
        RawTokenTable {
            capacity: Spanned::new(0..0, d.capacity),
            ttl_secs: d.ttl_secs,
        }
    }
}

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "struct DpdkConfig")]
struct RawDpdk {
    #[serde(default = "no_eal_args")]
    eal_args: Spanned<Vec<String>>,
    #[serde(default)]
    main_lcore: u32,
    #[serde(default = "default_mempool_size")]
    mempool_size: u32,
    #[serde(default = "default_mempool_cache")]
    mempool_cache: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "struct WorkersConfig")]
struct RawWorkers {
    lcores: Spanned<Vec<u32>>,
    #[serde(default)]
    mode: WorkerMode,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "struct PortConfig")]
struct RawPort {
    name: Spanned<String>,
    device: String,
    rx_queues: Option<u16>,
    #[serde(default = "default_descriptors")]
    rx_descriptors: u16,
    #[serde(default = "default_descriptors")]
    tx_descriptors: u16,
    mtu: Option<u16>,
    #[serde(default)]
    promiscuous: bool,
    #[serde(default)]
    ipv4: Vec<Ipv4Addr>,
    #[serde(default)]
    ipv6: Vec<Ipv6Addr>,
    gateway_mac: Option<Mac>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "struct DatapathConfig")]
struct RawDatapath {
    backend_port: Option<Spanned<String>>,
}

fn no_eal_args() -> Spanned<Vec<String>> {
    Spanned::new(0..0, Vec::new())
}
fn default_table_size_spanned() -> Spanned<u32> {
    Spanned::new(0..0, default_table_size())
}
fn default_flow_capacity_spanned() -> Spanned<usize> {
    Spanned::new(0..0, default_flow_capacity())
}
fn default_token_capacity_spanned() -> Spanned<usize> {
    Spanned::new(0..0, default_token_capacity())
}

impl RawConfig {
    fn validate(&self) -> Result<(), Invalid> {
        self.validate_lcores()?;
        self.validate_ports()?;
        self.validate_vips()?;
        for (field, h) in std::iter::once(("health".to_string(), &self.health)).chain(
            self.vips
                .iter()
                .enumerate()
                .filter_map(|(i, v)| v.health.as_ref().map(|h| (format!("vip[{i}].health"), h))),
        ) {
            validate_health(&field, h)?;
        }
        self.validate_tables()?;
        if self.dpdk.mempool_size < 1024 {
            return Err((
                None,
                "dpdk.mempool_size".into(),
                "at least 1024 buffers".into(),
            ));
        }
        Ok(())
    }

    /// `[workers]` lcores, and EAL arguments that would set them.
    fn validate_lcores(&self) -> Result<(), Invalid> {
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
        if let Some(a) = eal.get_ref().iter().find(|a| sets_lcores(a)) {
            return Err((
                Some(eal.span()),
                "dpdk.eal_args".into(),
                format!(
                    "`{a}`: lcores come from workers.lcores and dpdk.main_lcore, not from EAL arguments"
                ),
            ));
        }
        Ok(())
    }

    /// The `[[port]]`s and `datapath.backend_port`.
    fn validate_ports(&self) -> Result<(), Invalid> {
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
            if !self.ports.iter().any(|p| p.name.get_ref() == bp.get_ref()) {
                return Err((
                    Some(bp.span()),
                    "datapath.backend_port".into(),
                    format!("no port named `{}`", bp.get_ref()),
                ));
            }
        }
        Ok(())
    }

    /// `[flow_table]` and `[token_table]`.
    fn validate_tables(&self) -> Result<(), Invalid> {
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
        Ok(())
    }

    fn validate_vips(&self) -> Result<(), Invalid> {
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

    /// The validated values without their places in the file.
    fn into_plain(self) -> Config {
        Config {
            dpdk: DpdkConfig {
                eal_args: self.dpdk.eal_args.into_inner(),
                main_lcore: self.dpdk.main_lcore,
                mempool_size: self.dpdk.mempool_size,
                mempool_cache: self.dpdk.mempool_cache,
            },
            workers: WorkersConfig {
                lcores: self.workers.lcores.into_inner(),
                mode: self.workers.mode,
            },
            ports: self.ports.into_iter().map(RawPort::into_plain).collect(),
            datapath: DatapathConfig {
                backend_port: self.datapath.backend_port.map(Spanned::into_inner),
            },
            vips: self.vips.into_iter().map(RawVip::into_plain).collect(),
            flow_table: FlowTableSettings {
                capacity: self.flow_table.capacity.into_inner(),
                untrusted_quota_pct: self.flow_table.untrusted_quota_pct,
                established_timeout_secs: self.flow_table.established_timeout_secs,
                untrusted_timeout_secs: self.flow_table.untrusted_timeout_secs,
                fin_timeout_secs: self.flow_table.fin_timeout_secs,
                rst_timeout_secs: self.flow_table.rst_timeout_secs,
            },
            token_table: TokenTableSettings {
                capacity: self.token_table.capacity.into_inner(),
                ttl_secs: self.token_table.ttl_secs,
            },
            encap: self.encap,
            health: self.health,
            management: self.management,
        }
    }
}

/// Checks one `[health]` section (`field` names it: `health` or `vip[i].health`).
fn validate_health(field: &str, h: &HealthConfig) -> Result<(), Invalid> {
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
    Ok(())
}

impl RawPort {
    fn into_plain(self) -> PortConfig {
        PortConfig {
            name: self.name.into_inner(),
            device: self.device,
            rx_queues: self.rx_queues,
            rx_descriptors: self.rx_descriptors,
            tx_descriptors: self.tx_descriptors,
            mtu: self.mtu,
            promiscuous: self.promiscuous,
            ipv4: self.ipv4,
            ipv6: self.ipv6,
            gateway_mac: self.gateway_mac,
        }
    }
}

impl RawVip {
    fn into_plain(self) -> VipConfig {
        VipConfig {
            name: self.name.into_inner(),
            address: self.address,
            port: self.port,
            protocol: self.protocol,
            forwarding: self.forwarding,
            table_size: self.table_size.into_inner(),
            mptcp_tracking: self.mptcp_tracking,
            token_routing: self.token_routing,
            health: self.health,
            backends: self
                .backends
                .into_iter()
                .map(|b| BackendConfig {
                    name: b.name.into_inner(),
                    address: b.address,
                    mac: b.mac,
                    weight: b.weight,
                    state: b.state,
                })
                .collect(),
        }
    }
}
