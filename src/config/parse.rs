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
use super::fleet;
use super::memory::{self, HostMemory, size};
use super::*;
use crate::datapath::token_table::{MAX_TTL_TICKS, TICK_NS};

/// What validation reports: where (if known), which field, what is wrong.
type Invalid = (Option<Range<usize>>, String, String);

/// Parses and validates config text; `path` is used in errors only. With
/// `host`, also checks that the memory the config needs fits it.
pub(super) fn parse(
    text: &str,
    path: &Path,
    host: Option<&HostMemory>,
) -> Result<Config, ConfigError> {
    let located = |span: Option<Range<usize>>, field: String, message: String| {
        // A value's own place; else the line that names the field, or its
        // section (values left at their default have the place 0..0, none).
        let (line, column) = match span.filter(|s| *s != (0..0)) {
            Some(s) => line_col(text, s.start),
            None => place_of_field(text, &field).map_or((0, 0), |o| line_col(text, o)),
        };
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
        let field = field_path(&e.path().to_string());
        let inner = e.into_inner();
        let span = inner.span();
        // A syntax error has no path: name the field written where it is.
        let field = match (&span, field.is_empty()) {
            (Some(s), true) => field_at(text, s.start),
            _ => field,
        };
        let field = missing_field(inner.message(), field);
        let message = inner
            .message()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        located(span, field, message)
    })?;
    config
        .validate(host)
        .map_err(|(span, field, message)| located(span, field, message))?;
    Ok(config.into_plain())
}

/// For "missing field `x`", the missing field's own path: under the table
/// serde was in, or at the top for a section (serde's path then still names
/// the last section it read).
fn missing_field(message: &str, path: String) -> String {
    let Some(name) = message
        .strip_prefix("missing field `")
        .and_then(|m| m.split('`').next())
    else {
        return path;
    };
    let top = ["dpdk", "workers", "port"];
    if path.is_empty() || (!path.contains(['.', '[']) && top.contains(&name)) {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// serde's path, without its root `.` and the private field `Spanned`
/// deserializes through (`workers.lcores.$__serde_spanned_private_value`).
fn field_path(path: &str) -> String {
    if path == "." {
        return String::new();
    }
    path.split('.')
        .filter(|seg| !seg.starts_with("$__"))
        .collect::<Vec<_>>()
        .join(".")
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// A table header or `key = value` line of the text (or a continuation
/// line of a multi-line value).
struct Place {
    /// Byte offset where the line's text starts.
    at: usize,
    /// The field the line defines (`vip[0].backend[1].weight`, `port[0]`).
    path: String,
    /// The table in effect there.
    table: String,
    /// A multi-line value continues after this line.
    open: bool,
}

/// Each table header and `key = value` line of the text, in order. A plain
/// line scan, for errors only: it is what places syntax errors (which have
/// no path) and errors on values without a place of their own.
fn places(text: &str) -> Vec<Place> {
    let mut out = Vec::new();
    // Elements so far of each array of tables, by its indexed path.
    let mut arrays: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut table = String::new();
    let mut offset = 0;
    let mut depth = 0i32;
    let mut key_path = String::new();
    for raw in text.split_inclusive('\n') {
        let start = offset;
        offset += raw.len();
        let line = raw.trim_start();
        let at = start + (raw.len() - line.len());
        let line = line.trim_end();
        if depth > 0 {
            depth += bracket_balance(line);
            out.push(Place {
                at,
                path: key_path.clone(),
                table: table.clone(),
                open: depth > 0,
            });
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(header) = line.strip_prefix('[') {
            let (array, header) = match header.strip_prefix('[') {
                Some(h) => (true, h.split("]]").next().unwrap_or(h)),
                None => (false, header.split(']').next().unwrap_or(header)),
            };
            let segs = key_segments(header);
            let mut path = String::new();
            for (i, seg) in segs.iter().enumerate() {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(seg);
                let count = arrays.get(&path).copied();
                if array && i + 1 == segs.len() {
                    let n = count.unwrap_or(0);
                    arrays.insert(path.clone(), n + 1);
                    path = format!("{path}[{n}]");
                } else if let Some(n) = count {
                    path = format!("{path}[{}]", n.saturating_sub(1));
                }
            }
            table = path;
            out.push(Place {
                at,
                path: table.clone(),
                table: table.clone(),
                open: false,
            });
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if !is_key(key) {
            continue;
        }
        let key = key_segments(key).join(".");
        key_path = if table.is_empty() {
            key
        } else {
            format!("{table}.{key}")
        };
        depth = bracket_balance(value).max(0);
        out.push(Place {
            at,
            path: key_path.clone(),
            table: table.clone(),
            open: depth > 0,
        });
    }
    out
}

/// `[` minus `]` outside strings and comments.
fn bracket_balance(s: &str) -> i32 {
    let mut n = 0;
    let mut quote = None;
    for c in s.chars() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '#') => break,
            (None, '[') => n += 1,
            (None, ']') => n -= 1,
            _ => {}
        }
    }
    n
}

/// A bare or quoted (dotted) key, as written before `=`.
fn is_key(key: &str) -> bool {
    let key = key.trim();
    !key.is_empty()
        && key.matches('"').count() % 2 == 0
        && key.matches('\'').count() % 2 == 0
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ' ' | '"' | '\''))
}

fn key_segments(key: &str) -> Vec<String> {
    key.split('.')
        .map(|s| s.trim().trim_matches(|c| c == '"' || c == '\'').to_string())
        .collect()
}

/// The field written at `offset` (a syntax error's place): the key or table
/// header on its line, the key of a multi-line value it is in, or else the
/// table it is in; a broken header names what it says.
fn field_at(text: &str, offset: usize) -> String {
    let line_start = text
        .get(..offset)
        .and_then(|b| b.rfind('\n'))
        .map_or(0, |i| i + 1);
    let line = text
        .get(line_start..)
        .and_then(|l| l.lines().next())
        .unwrap_or("")
        .trim();
    let places = places(text);
    let last = places.iter().rev().find(|p| p.at <= offset);
    match last {
        Some(p) if p.at >= line_start => p.path.clone(),
        _ if line.starts_with('[') => line
            .trim_start_matches('[')
            .split(']')
            .next()
            .map_or(String::new(), |h| key_segments(h).join(".")),
        Some(p) if p.open => p.path.clone(),
        Some(p) => p.table.clone(),
        None => String::new(),
    }
}

/// Where the text names `field`, or else the nearest enclosing table (for a
/// value left at its default): a byte offset.
fn place_of_field(text: &str, field: &str) -> Option<usize> {
    if field.is_empty() {
        return None;
    }
    let places = places(text);
    if let Some(p) = places.iter().find(|p| p.path == field) {
        return Some(p.at);
    }
    places
        .iter()
        .filter(|p| {
            field
                .strip_prefix(p.path.as_str())
                .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
        })
        .max_by_key(|p| p.path.len())
        .map(|p| p.at)
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
    bgp: Option<BgpConfig>,
    #[serde(default)]
    drain: DrainConfig,
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
    #[serde(default = "yes")]
    mptcp_tracking: bool,
    #[serde(default = "yes")]
    token_routing: bool,
    announce_backend_address: Option<Spanned<bool>>,
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
    #[serde(default = "default_weight_spanned")]
    weight: Spanned<u32>,
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
    cpus: Option<Spanned<Vec<u32>>>,
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
    ipv4: Vec<Prefixed<Ipv4Addr>>,
    #[serde(default)]
    ipv6: Vec<Prefixed<Ipv6Addr>>,
    gateway_mac: Option<Mac>,
    kernel_interface: Option<Spanned<String>>,
}

/// An own address written `a` or `a/len`: the datapath uses the address, the
/// kernel interface gets the prefix too (default: the whole address).
struct Prefixed<A> {
    addr: A,
    len: u8,
}

impl<'de, A> Deserialize<'de> for Prefixed<A>
where
    A: std::str::FromStr + Into<IpAddr> + Copy,
{
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s.as_str(), None),
        };
        let addr: A = addr.parse().map_err(|_| {
            serde::de::Error::custom(format!(
                "`{s}` is not an address (or address/prefix length)"
            ))
        })?;
        let max = if addr.into().is_ipv4() { 32 } else { 128 };
        let len = match len {
            None => max,
            Some(l) => l
                .parse::<u8>()
                .ok()
                .filter(|l| (1..=max).contains(l))
                .ok_or_else(|| {
                    serde::de::Error::custom(format!("`{s}`: the prefix length must be 1 to {max}"))
                })?,
        };
        Ok(Prefixed { addr, len })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "struct DatapathConfig")]
struct RawDatapath {
    backend_port: Option<Spanned<String>>,
    #[serde(default = "default_kernel_rate_pps_spanned")]
    kernel_rate_pps: Spanned<u32>,
    hash_version: Option<Spanned<u32>>,
}

impl Default for RawDatapath {
    fn default() -> Self {
        RawDatapath {
            backend_port: None,
            kernel_rate_pps: default_kernel_rate_pps_spanned(),
            hash_version: None,
        }
    }
}

fn default_kernel_rate_pps_spanned() -> Spanned<u32> {
    Spanned::new(0..0, default_kernel_rate_pps())
}

/// Largest `[datapath] kernel_rate_pps`: well past what a tap's `write`
/// per frame can carry.
const MAX_KERNEL_RATE_PPS: u32 = 10_000_000;
/// Linux's `IFNAMSIZ` less the terminating NUL.
const MAX_IFNAME_LEN: usize = 15;

/// Why `name` cannot be a kernel interface's name, if it cannot. Stricter
/// than Linux (which takes any byte but `/`, `:` and white space): names
/// that need no quoting in `ip` commands and logs.
fn bad_ifname(name: &str) -> Option<String> {
    if name.is_empty() || name.len() > MAX_IFNAME_LEN {
        return Some(format!(
            "`{name}`: an interface name is 1 to {MAX_IFNAME_LEN} characters"
        ));
    }
    if name == "." || name == ".." {
        return Some(format!("`{name}` is not an interface name"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Some(format!(
            "`{name}`: an interface name takes letters, digits, `-`, `_` and `.` only"
        ));
    }
    None
}

/// Largest `flow_table.capacity`: 2^32 buckets of 8 entries (the bucket
/// index is the flow hash's low 32 bits; bits 32..40 are the entries' tags).
/// The CPUs EAL's `--lcores` can name (glibc's `CPU_SETSIZE`).
const MAX_CPU: u32 = 1024;
const MAX_FLOW_CAPACITY: u64 = 1 << 35;
/// Largest `token_table.capacity`: a token is 32 bits.
const MAX_TOKEN_CAPACITY: u64 = 1 << 32;
/// DPDK's `RTE_MEMPOOL_CACHE_MAX_SIZE`.
const MAX_MEMPOOL_CACHE: u32 = 512;
/// Distinct backends: ids are 16 bits.
const MAX_BACKENDS: usize = u16::MAX as usize;

fn no_eal_args() -> Spanned<Vec<String>> {
    Spanned::new(0..0, Vec::new())
}
fn default_weight_spanned() -> Spanned<u32> {
    Spanned::new(0..0, default_weight())
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
    fn validate(&self, host: Option<&HostMemory>) -> Result<(), Invalid> {
        self.validate_lcores()?;
        self.validate_ports()?;
        self.validate_vips()?;
        for (field, h) in self.health_sections() {
            validate_health(&field, h)?;
        }
        self.validate_tables()?;
        self.validate_mempool()?;
        if let Some(b) = &self.bgp {
            fleet::validate_bgp(b).map_err(|(field, message)| (None, field, message))?;
        }
        fleet::validate_drain(&self.drain).map_err(|(field, message)| (None, field, message))?;
        if let Some(host) = host {
            self.validate_memory(host)?;
            let made = self.made_at_start();
            for (field, h) in self.health_sections() {
                validate_health_path(&field, h, &made)?;
            }
        }
        Ok(())
    }

    /// The kernel interfaces mplb makes at start (exception paths) and
    /// their addresses: health checks may leave through them, though they
    /// do not exist before mplb runs.
    fn made_at_start(&self) -> MadeAtStart<'_> {
        let ports = self.ports.iter().filter(|p| p.kernel_interface.is_some());
        MadeAtStart {
            interfaces: ports
                .clone()
                .filter_map(|p| p.kernel_interface.as_ref().map(|k| k.get_ref().as_str()))
                .collect(),
            addresses: ports
                .flat_map(|p| {
                    (p.ipv4.iter().map(|a| IpAddr::V4(a.addr)))
                        .chain(p.ipv6.iter().map(|a| IpAddr::V6(a.addr)))
                })
                .collect(),
        }
    }

    /// `[health]` and every `[vip.health]`, with their field names.
    fn health_sections(&self) -> impl Iterator<Item = (String, &HealthConfig)> {
        std::iter::once(("health".to_string(), &self.health)).chain(
            self.vips
                .iter()
                .enumerate()
                .filter_map(|(i, v)| v.health.as_ref().map(|h| (format!("vip[{i}].health"), h))),
        )
    }

    /// `dpdk.mempool_size` and `dpdk.mempool_cache`, as DPDK checks them
    /// (`rte_mempool_create`), and against the DPDK memory the EAL arguments
    /// fix.
    fn validate_mempool(&self) -> Result<(), Invalid> {
        let n = self.dpdk.mempool_size;
        if n < 1024 {
            return Err((
                None,
                "dpdk.mempool_size".into(),
                "at least 1024 buffers".into(),
            ));
        }
        let cache = self.dpdk.mempool_cache;
        if cache > MAX_MEMPOOL_CACHE || u64::from(cache) * 3 / 2 > u64::from(n) {
            return Err((
                None,
                "dpdk.mempool_cache".into(),
                format!(
                    "{cache}: DPDK takes at most {MAX_MEMPOOL_CACHE}, and at most mempool_size / 1.5 ({})",
                    u64::from(n) * 2 / 3
                ),
            ));
        }
        let eal = super::eal::eal_memory(self.dpdk.eal_args.get_ref());
        let need = u64::from(n).saturating_mul(memory::MBUF_BYTES);
        match eal.fixed {
            Some(fixed) if need > fixed => Err((
                None,
                "dpdk.mempool_size".into(),
                format!(
                    "{n} buffers need {} of DPDK memory (about {} each), but the EAL arguments give DPDK {}{}",
                    size(need),
                    size(memory::MBUF_BYTES),
                    size(fixed),
                    if eal.no_huge {
                        " (--no-huge: `-m MB` sets it, 64 MiB by default)"
                    } else {
                        " (-m or --socket-mem)"
                    }
                ),
            )),
            _ => Ok(()),
        }
    }

    /// The memory the whole config needs against what `host` has: see
    /// `memory.rs`. The error names the largest consumer.
    fn validate_memory(&self, host: &HostMemory) -> Result<(), Invalid> {
        let workers = self.workers.lcores.get_ref().len();
        let need = memory::memory_need(
            workers,
            *self.flow_table.capacity.get_ref(),
            *self.token_table.capacity.get_ref(),
            self.dpdk.mempool_size,
            self.vips.iter().map(|v| *v.table_size.get_ref()),
        );
        let eal = super::eal::eal_memory(self.dpdk.eal_args.get_ref());
        let total = memory::total_need(&need, eal);
        let have = memory::usable(host, eal);
        if total <= have {
            return Ok(());
        }
        let biggest_vip = self
            .vips
            .iter()
            .enumerate()
            .max_by_key(|(_, v)| *v.table_size.get_ref());
        let mut candidates: Vec<(u64, Option<Range<usize>>, String)> = vec![
            (
                need.flow_tables,
                Some(self.flow_table.capacity.span()),
                "flow_table.capacity".into(),
            ),
            (
                need.token_table,
                Some(self.token_table.capacity.span()),
                "token_table.capacity".into(),
            ),
            (need.mempool, None, "dpdk.mempool_size".into()),
        ];
        if let Some((i, v)) = biggest_vip {
            candidates.push((
                need.maglev,
                Some(v.table_size.span()),
                format!("vip[{i}].table_size"),
            ));
        }
        let (_, span, field) = candidates
            .into_iter()
            .max_by_key(|(b, _, _)| *b)
            .unwrap_or((0, None, String::new()));
        Err((
            span,
            field,
            format!(
                "the config needs {} of memory (flow tables {} = {workers} workers x {} entries x {} B, token table {}, mempool {}, maglev tables {}), but this host has {}{}",
                size(total),
                size(need.flow_tables),
                self.flow_table.capacity.get_ref(),
                memory::FLOW_ENTRY_BYTES,
                size(need.token_table),
                size(need.mempool),
                size(need.maglev),
                size(have),
                if eal.no_huge {
                    format!(
                        " (MemTotal {} less {} of hugepages, which --no-huge does not use)",
                        size(host.total),
                        size(host.hugetlb)
                    )
                } else {
                    " (MemTotal)".to_string()
                }
            ),
        ))
    }

    /// `[workers]` lcores and cpus, and EAL arguments that would set them.
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
        if let Some(cpus) = &self.workers.cpus {
            let n = lcores.get_ref().len();
            if cpus.get_ref().len() != n {
                return Err((
                    Some(cpus.span()),
                    "workers.cpus".into(),
                    format!(
                        "{} CPUs for {n} worker lcores: give one CPU per entry of workers.lcores",
                        cpus.get_ref().len()
                    ),
                ));
            }
            if let Some(&c) = cpus.get_ref().iter().find(|&&c| c >= MAX_CPU) {
                return Err((
                    Some(cpus.span()),
                    "workers.cpus".into(),
                    format!("CPU {c}: EAL --lcores names CPUs 0 to {}", MAX_CPU - 1),
                ));
            }
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
        if let Some(p) = self.ports.get(64) {
            return Err((
                Some(p.name.span()),
                "port[64]".into(),
                "at most 64 ports".into(),
            ));
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
            if let Some(k) = &p.kernel_interface {
                let field = format!("port[{i}].kernel_interface");
                if let Some(why) = bad_ifname(k.get_ref()) {
                    return Err((Some(k.span()), field, why));
                }
                let twice = self.ports[..i].iter().any(|q| {
                    q.kernel_interface
                        .as_ref()
                        .is_some_and(|o| o.get_ref() == k.get_ref())
                });
                if twice {
                    return Err((
                        Some(k.span()),
                        field,
                        format!("kernel interface `{}` used by two ports", k.get_ref()),
                    ));
                }
            }
        }
        let rate = &self.datapath.kernel_rate_pps;
        if !(1..=MAX_KERNEL_RATE_PPS).contains(rate.get_ref()) {
            return Err((
                Some(rate.span()),
                "datapath.kernel_rate_pps".into(),
                format!("must be 1 to {MAX_KERNEL_RATE_PPS}"),
            ));
        }
        if let Some(v) = &self.datapath.hash_version {
            if HashVersion::from_number(*v.get_ref()).is_none() {
                let known: Vec<String> = HashVersion::ALL.iter().map(|v| v.to_string()).collect();
                return Err((
                    Some(v.span()),
                    "datapath.hash_version".into(),
                    format!(
                        "must be one of {} (this build's hash versions)",
                        known.join(", ")
                    ),
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
        let c = *cap.get_ref() as u64;
        if !c.is_power_of_two() || !(8..=MAX_FLOW_CAPACITY).contains(&c) {
            return Err((
                Some(cap.span()),
                "flow_table.capacity".into(),
                format!(
                    "{c}: must be a power of two from 8 to 2^35 = {MAX_FLOW_CAPACITY} (a bucket is chosen by 32 bits of the flow hash)"
                ),
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
        let t = *tcap.get_ref() as u64;
        if !t.is_power_of_two() || !(4..=MAX_TOKEN_CAPACITY).contains(&t) {
            return Err((
                Some(tcap.span()),
                "token_table.capacity".into(),
                format!(
                    "{t}: must be a power of two from 4 to 2^32 = {MAX_TOKEN_CAPACITY} (tokens are 32 bits)"
                ),
            ));
        }
        let ttl = self.token_table.ttl_secs;
        let ticks = ttl.saturating_mul(1_000_000_000).div_ceil(TICK_NS);
        if ticks == 0 || ticks > MAX_TTL_TICKS {
            return Err((
                None,
                "token_table.ttl_secs".into(),
                format!(
                    "{ttl}: must be 1 to {} seconds (the table's clock)",
                    MAX_TTL_TICKS * TICK_NS / 1_000_000_000
                ),
            ));
        }
        Ok(())
    }

    /// The `[[vip]]`s and their backends. Linear in their number (sets by
    /// name), so that a huge file is judged in moments.
    fn validate_vips(&self) -> Result<(), Invalid> {
        use std::collections::{HashMap, HashSet};
        // A backend name means one server: same address wherever it appears.
        let mut seen: HashMap<&str, IpAddr> = HashMap::new();
        let mut vip_names: HashSet<&str> = HashSet::new();
        let mut services: HashSet<(IpAddr, u16, bool)> = HashSet::new();
        for (i, v) in self.vips.iter().enumerate() {
            let f = |field: &str| format!("vip[{i}].{field}");
            if !vip_names.insert(v.name.get_ref()) {
                return Err((
                    Some(v.name.span()),
                    f("name"),
                    format!("VIP name `{}` used twice", v.name.get_ref()),
                ));
            }
            if !services.insert((v.address, v.port, v.protocol == VipProtocol::Tcp)) {
                return Err((
                    Some(v.name.span()),
                    f("address"),
                    format!(
                        "{} defined twice",
                        std::net::SocketAddr::new(v.address, v.port)
                    ),
                ));
            }
            // The datapath takes a packet to a VIP address for the VIP
            // before looking at the host's own addresses.
            let own = self.ports.iter().find(|p| {
                let v4 = p.ipv4.iter().map(|a| IpAddr::V4(a.addr));
                v4.chain(p.ipv6.iter().map(|a| IpAddr::V6(a.addr)))
                    .any(|a| a == v.address)
            });
            if let Some(p) = own {
                return Err((
                    Some(v.name.span()),
                    f("address"),
                    format!(
                        "{} is an own address of port `{}`: a VIP needs an address of its own",
                        v.address,
                        p.name.get_ref()
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
            let mut names: HashSet<&str> = HashSet::with_capacity(v.backends.len());
            for (j, b) in v.backends.iter().enumerate() {
                let bf = |field: &str| format!("vip[{i}].backend[{j}].{field}");
                let name = b.name.get_ref().as_str();
                if !names.insert(name) {
                    return Err((
                        Some(b.name.span()),
                        bf("name"),
                        format!("backend `{name}` listed twice in this VIP"),
                    ));
                }
                match seen.get(name) {
                    Some(addr) if *addr != b.address => {
                        return Err((
                            Some(b.name.span()),
                            bf("address"),
                            format!(
                                "backend `{name}` has address {addr} elsewhere: a backend name is one server address across all VIPs (its health, state and flows go by name); give this address its own name, e.g. `{name}-v6` for an IPv6 VIP"
                            ),
                        ));
                    }
                    Some(_) => {}
                    None => {
                        if seen.len() == MAX_BACKENDS {
                            return Err((
                                Some(b.name.span()),
                                bf("name"),
                                format!(
                                    "too many backends: `{name}` would be number {}, at most {MAX_BACKENDS} distinct backends (16-bit ids)",
                                    MAX_BACKENDS + 1
                                ),
                            ));
                        }
                        seen.insert(name, b.address);
                    }
                }
                if b.mac.is_none() {
                    self.validate_learnt_mac(v, b, &bf("mac"))?;
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
            validate_weights(i, v)?;
            validate_announce(i, v)?;
        }
        Ok(())
    }

    /// A backend without `mac` whose MAC is learnt (L2 DSR, or IP-in-IP
    /// with no gateway MAC) is asked for from the backend-facing port, from
    /// an address of the backend's family: the port must have one.
    fn validate_learnt_mac(&self, v: &RawVip, b: &RawBackend, field: &str) -> Result<(), Invalid> {
        let index = self
            .datapath
            .backend_port
            .as_ref()
            .and_then(|n| {
                self.ports
                    .iter()
                    .position(|p| p.name.get_ref() == n.get_ref())
            })
            .unwrap_or(0);
        let Some(port) = self.ports.get(index) else {
            return Ok(());
        };
        if v.forwarding == VipForwarding::Ipip && port.gateway_mac.is_some() {
            return Ok(());
        }
        let (has, family, key) = match b.address {
            IpAddr::V4(_) => (!port.ipv4.is_empty(), "IPv4", "ipv4"),
            IpAddr::V6(_) => (!port.ipv6.is_empty(), "IPv6", "ipv6"),
        };
        if has {
            return Ok(());
        }
        let how = if family == "IPv4" {
            "ARP"
        } else {
            "neighbour discovery"
        };
        Err((
            Some(b.name.span()),
            field.to_string(),
            format!(
                "no `mac`: mplb learns it by {how} on port `{}` (port[{index}]), which has no {family} address to ask from; add one to port[{index}].{key} or give the backend's `mac`",
                port.name.get_ref()
            ),
        ))
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
                cpus: self
                    .workers
                    .cpus
                    .map(Spanned::into_inner)
                    .unwrap_or_default(),
                mode: self.workers.mode,
            },
            ports: self.ports.into_iter().map(RawPort::into_plain).collect(),
            datapath: DatapathConfig {
                backend_port: self.datapath.backend_port.map(Spanned::into_inner),
                kernel_rate_pps: self.datapath.kernel_rate_pps.into_inner(),
                hash_version: self
                    .datapath
                    .hash_version
                    .and_then(|v| HashVersion::from_number(v.into_inner()))
                    .unwrap_or_default(),
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
            bgp: self.bgp,
            drain: self.drain,
        }
    }
}

/// A VIP's weights: some backend must have weight > 0, or the VIP answers
/// nothing while every backend looks configured and up (no command raises a
/// weight; a VIP whose weighted backends are all disabled or draining is an
/// operator's choice, which `check-config` warns about); and its Maglev table
/// must have a slot for each weighted backend.
/// `announce_backend_address` sends one ADD_ADDR per connection, on the
/// segment that pins its initial subflow: only a TCP VIP with
/// `mptcp_tracking` can tell that segment from a retransmission of it.
fn validate_announce(i: usize, v: &RawVip) -> Result<(), Invalid> {
    let Some(on) = v.announce_backend_address.as_ref().filter(|a| *a.get_ref()) else {
        return Ok(());
    };
    let why = if v.protocol != VipProtocol::Tcp {
        "needs a TCP VIP (MPTCP runs over TCP)"
    } else if !v.mptcp_tracking {
        "needs `mptcp_tracking = true`: the announcement is sent on the segment that pins the connection's first subflow, so that a retransmitted third ACK does not send a second one"
    } else {
        return Ok(());
    };
    Err((
        Some(on.span()),
        format!("vip[{i}].announce_backend_address"),
        why.into(),
    ))
}

fn validate_weights(i: usize, v: &RawVip) -> Result<(), Invalid> {
    if v.backends.iter().all(|b| *b.weight.get_ref() == 0) {
        return Err((
            v.backends.first().map(|b| b.weight.span()),
            format!("vip[{i}].backend[0].weight"),
            format!(
                "VIP `{}`: every backend has weight 0, so none can take traffic",
                v.name.get_ref()
            ),
        ));
    }
    let weighted = v
        .backends
        .iter()
        .filter(|b| *b.weight.get_ref() > 0)
        .count();
    let size = *v.table_size.get_ref();
    if weighted > size as usize {
        return Err((
            Some(v.table_size.span()),
            format!("vip[{i}].table_size"),
            format!(
                "{weighted} backends with weight > 0 do not fit a Maglev table of {size} slots (a prime > 100 x backends is advised)"
            ),
        ));
    }
    Ok(())
}

/// Checks one `[health]` section (`field` names it: `health` or `vip[i].health`).
fn validate_health(field: &str, h: &HealthConfig) -> Result<(), Invalid> {
    if h.rise == 0 || h.fall == 0 {
        return Err((
            None,
            format!("{field}.{}", if h.rise == 0 { "rise" } else { "fall" }),
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
    if let Some(name) = &h.interface {
        // IFNAMSIZ is 16 with the terminating NUL.
        if name.is_empty() || name.len() > 15 || name.contains(['/', ' ', '\0']) {
            return Err((
                None,
                format!("{field}.interface"),
                format!("{name:?} is not an interface name (1 to 15 bytes, no '/' or space)"),
            ));
        }
    }
    Ok(())
}

/// Whether the way out a section's checks name exists on this host: the
/// interface, and the source addresses as local addresses (a bind to them
/// succeeds). Checked when a config is loaded to run (and by check-config),
/// so a typo is an error at start or reload, not a backend silently down.
/// What exists once mplb runs though not before (see
/// [`RawConfig::made_at_start`]).
struct MadeAtStart<'a> {
    interfaces: Vec<&'a str>,
    addresses: Vec<IpAddr>,
}

fn validate_health_path(field: &str, h: &HealthConfig, made: &MadeAtStart) -> Result<(), Invalid> {
    if let Some(name) = &h.interface {
        let made_by_mplb = made.interfaces.contains(&name.as_str());
        if !made_by_mplb && !Path::new("/sys/class/net").join(name).exists() {
            return Err((
                None,
                format!("{field}.interface"),
                format!(
                    "no interface `{name}` on this host (`ip link` lists them): health checks could not leave from it"
                ),
            ));
        }
    }
    let sources = [
        h.source_v4.map(|a| ("source_v4", IpAddr::V4(a))),
        h.source_v6.map(|a| ("source_v6", IpAddr::V6(a))),
    ];
    for (key, addr) in sources.into_iter().flatten() {
        if made.addresses.contains(&addr) {
            continue;
        }
        if let Err(e) = std::net::UdpSocket::bind((addr, 0)) {
            return Err((
                None,
                format!("{field}.{key}"),
                format!(
                    "{addr} is not an address of this host ({e}): health checks could not leave from it"
                ),
            ));
        }
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
            ipv4: self.ipv4.iter().map(|p| p.addr).collect(),
            ipv6: self.ipv6.iter().map(|p| p.addr).collect(),
            prefixes: (self.ipv4.iter().map(|p| (IpAddr::V4(p.addr), p.len)))
                .chain(self.ipv6.iter().map(|p| (IpAddr::V6(p.addr), p.len)))
                .collect(),
            gateway_mac: self.gateway_mac,
            kernel_interface: self.kernel_interface.map(Spanned::into_inner),
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
            announce_backend_address: self
                .announce_backend_address
                .is_some_and(|a| a.into_inner()),
            health: self.health,
            backends: self
                .backends
                .into_iter()
                .map(|b| BackendConfig {
                    name: b.name.into_inner(),
                    address: b.address,
                    mac: b.mac,
                    weight: b.weight.into_inner(),
                    state: b.state,
                })
                .collect(),
        }
    }
}
