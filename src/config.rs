//! The configuration file (TOML): parsing, defaults and validation.
//!
//! Every error names the file, the line and column, and the field (as a path
//! such as `port[0].rx_queues`), so an operator can fix it without guessing.
//! Unknown keys are errors: a typo must not silently fall back to a default.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
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
}

/// DPDK's environment.
#[derive(Debug, Clone, Deserialize)]
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
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkersConfig {
    /// One worker per lcore, each pinned; (port, rx queue) pairs are dealt
    /// to them round-robin.
    pub lcores: Spanned<Vec<u32>>,
    #[serde(default)]
    pub mode: WorkerMode,
}

/// One DPDK port.
#[derive(Debug, Clone, Deserialize)]
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
}

/// Datapath settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatapathConfig {
    /// The port that faces the backends (two-armed deployment). Default: the
    /// port a frame came in on (one-armed).
    pub backend_port: Option<Spanned<String>>,
}

fn no_eal_args() -> Spanned<Vec<String>> {
    Spanned::new(0..0, Vec::new())
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
        if self.dpdk.mempool_size < 1024 {
            return Err((
                None,
                "dpdk.mempool_size".into(),
                "at least 1024 buffers".into(),
            ));
        }
        Ok(())
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
                "port {}: {} device {} rx queues {} addresses {:?} {:?}\n",
                i,
                p.name.get_ref(),
                p.device,
                self.rx_queues(i),
                p.ipv4,
                p.ipv6
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
