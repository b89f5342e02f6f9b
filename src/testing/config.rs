//! Configs for tests: the fixture files of `tests/fixtures/` (compiled in, so
//! the fuzz crate and mplb-gen read the same text), and a builder for the VIP
//! and backend sections a test generates (a number of backends, a state per
//! backend).

use core::fmt;

/// The text of `tests/fixtures/<name>.toml`. Panics on an unknown name.
pub fn fixture(name: &str) -> &'static str {
    match name {
        "datapath" => include_str!("../../tests/fixtures/datapath.toml"),
        "golden" => include_str!("../../tests/fixtures/golden.toml"),
        "bench" => include_str!("../../tests/fixtures/bench.toml"),
        "fuzz" => include_str!("../../tests/fixtures/fuzz.toml"),
        "gen" => include_str!("../../tests/fixtures/gen.toml"),
        "gen_vips" => include_str!("../../tests/fixtures/gen_vips.toml"),
        _ => panic!("no fixture tests/fixtures/{name}.toml"),
    }
}

/// `text` with a `state = "<state>"` line under every backend called `name`
/// (in every VIP it serves).
pub fn with_backend_state(text: &str, name: &str, state: &str) -> String {
    let needle = format!("name = \"{name}\"\n");
    text.replace(&needle, &format!("{needle}  state = \"{state}\"\n"))
}

/// `text` without the backend sections called `name` (in every VIP).
pub fn without_backend(text: &str, name: &str) -> String {
    let named = format!("name = \"{name}\"");
    let mut out = String::new();
    let mut section = String::new();
    let flush = |section: &mut String, out: &mut String| {
        let is_backend = section.trim_start().starts_with("[[vip.backend]]");
        if !(is_backend && section.lines().any(|l| l.trim() == named)) {
            out.push_str(section);
        }
        section.clear();
    };
    for line in text.split_inclusive('\n') {
        if line.trim_start().starts_with('[') {
            flush(&mut section, &mut out);
        }
        section.push_str(line);
    }
    flush(&mut section, &mut out);
    out
}

/// The head of a config with one worker and one `net_null0` port named
/// `lan`, owning 198.18.0.1; `extra` lines follow the port's.
pub fn null_port(extra: &str) -> String {
    format!(
        "[dpdk]\neal_args = []\n[workers]\nlcores = [1]\n[[port]]\nname = \"lan\"\n\
         device = \"net_null0\"\nipv4 = [\"198.18.0.1\"]\n{extra}"
    )
}

/// The config the control unit tests share: [`null_port`], then the VIP
/// `web` (Maglev table of 251) with backends `a` (198.18.1.11) and `b`
/// (198.18.1.12), each with a MAC.
pub fn web_a_b() -> String {
    null_port("") + &Vip::web_a_b().to_string()
}

/// A backend section (`[[vip.backend]]`).
#[derive(Clone, Debug)]
pub struct Backend {
    name: String,
    address: String,
    mac: Option<String>,
    weight: Option<u32>,
    state: Option<String>,
}

impl Backend {
    pub fn new(name: impl Into<String>, address: impl Into<String>) -> Backend {
        Backend {
            name: name.into(),
            address: address.into(),
            mac: None,
            weight: None,
            state: None,
        }
    }

    pub fn mac(mut self, mac: impl Into<String>) -> Backend {
        self.mac = Some(mac.into());
        self
    }

    pub fn mac_bytes(self, m: [u8; 6]) -> Backend {
        self.mac(crate::wire::MacAddr(m).to_string())
    }

    /// Whether this is the backend named `name`.
    pub fn is(&self, name: &str) -> bool {
        self.name == name
    }

    pub fn weight(mut self, weight: u32) -> Backend {
        self.weight = Some(weight);
        self
    }

    pub fn state(mut self, state: impl Into<String>) -> Backend {
        self.state = Some(state.into());
        self
    }
}

/// A VIP section (`[[vip]]`) with its backends; written as TOML by
/// `Display`.
#[derive(Clone, Debug)]
pub struct Vip {
    name: String,
    address: String,
    port: u16,
    options: Vec<(String, String)>,
    backends: Vec<Backend>,
}

impl Vip {
    pub fn new(name: impl Into<String>, address: impl Into<String>, port: u16) -> Vip {
        Vip {
            name: name.into(),
            address: address.into(),
            port,
            options: Vec::new(),
            backends: Vec::new(),
        }
    }

    /// The VIP most tests use: `web`, 198.18.0.10, port 80.
    pub fn web() -> Vip {
        Vip::new("web", "198.18.0.10", 80)
    }

    /// [`Vip::web`] with a Maglev table of 251 and backends `a`
    /// (198.18.1.11) and `b` (198.18.1.12), each with a MAC.
    pub fn web_a_b() -> Vip {
        Vip::a_b("web", "198.18.0.10")
    }

    /// A VIP on port 80 of `address`, as [`Vip::web_a_b`] (many of them
    /// make a config of many VIPs).
    pub fn a_b(name: impl Into<String>, address: impl Into<String>) -> Vip {
        Vip::new(name, address, 80)
            .option("table_size", 251)
            .backend(Backend::new("a", "198.18.1.11").mac("02:00:00:00:01:11"))
            .backend(Backend::new("b", "198.18.1.12").mac("02:00:00:00:01:12"))
    }

    /// A `key = value` line; `value` is TOML (quote strings yourself).
    pub fn option(mut self, key: &str, value: impl fmt::Display) -> Vip {
        self.options.push((key.into(), value.to_string()));
        self
    }

    pub fn backend(mut self, b: Backend) -> Vip {
        self.backends.push(b);
        self
    }

    pub fn backends(mut self, bs: impl IntoIterator<Item = Backend>) -> Vip {
        self.backends.extend(bs);
        self
    }
}

impl fmt::Display for Vip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "[[vip]]")?;
        writeln!(f, "name = \"{}\"", self.name)?;
        writeln!(f, "address = \"{}\"", self.address)?;
        writeln!(f, "port = {}", self.port)?;
        for (k, v) in &self.options {
            writeln!(f, "{k} = {v}")?;
        }
        for b in &self.backends {
            write!(f, "{b}")?;
        }
        Ok(())
    }
}

/// The section alone: it belongs to the `[[vip]]` written before it.
impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "  [[vip.backend]]")?;
        writeln!(f, "  name = \"{}\"", self.name)?;
        writeln!(f, "  address = \"{}\"", self.address)?;
        if let Some(m) = &self.mac {
            writeln!(f, "  mac = \"{m}\"")?;
        }
        if let Some(w) = self.weight {
            writeln!(f, "  weight = {w}")?;
        }
        if let Some(s) = &self.state {
            writeln!(f, "  state = \"{s}\"")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fixture_parses() {
        for name in ["datapath", "bench", "fuzz", "gen"] {
            crate::testing::parse(fixture(name));
        }
        let golden = fixture("golden")
            .replace("{A}", "active")
            .replace("{B}", "draining");
        crate::testing::parse(&golden);
        // As the generator tests use it: IP-in-IP backends without `mac` go
        // through the gateway.
        let gateway = null_port("gateway_mac = \"02:00:00:00:00:fe\"\n");
        crate::testing::parse(&(gateway + fixture("gen_vips")));
        crate::testing::parse(&web_a_b());
    }

    #[test]
    fn a_backend_is_removed_from_every_vip() {
        let vip = |name: &str, port: u16| {
            Vip::new(name, "198.18.0.10", port)
                .backend(Backend::new("a", "198.18.1.11").mac_bytes([2, 0, 0, 0, 1, 0x11]))
                .backend(Backend::new("b", "198.18.1.12").mac_bytes([2, 0, 0, 0, 1, 0x12]))
                .to_string()
        };
        let text = null_port("") + &vip("one", 80) + &vip("two", 81);
        let config = crate::testing::parse(&without_backend(&text, "a"));
        assert_eq!(config.vips.len(), 2);
        for v in &config.vips {
            assert_eq!(v.backends.len(), 1);
            assert_eq!(v.backends[0].name, "b");
        }
    }

    #[test]
    fn builder_writes_what_the_parser_reads() {
        let vip = Vip::new("web", "198.18.0.10", 80)
            .option("table_size", 251)
            .option("forwarding", "\"ipip\"")
            .backend(Backend::new("a", "198.18.1.11").mac("02:00:00:00:01:11"))
            .backend(Backend::new("b", "198.18.1.12").weight(3).state("draining"));
        let config = crate::testing::parse(&(null_port("") + &vip.to_string()));
        assert_eq!(config.vips.len(), 1);
        assert_eq!(config.vips[0].backends.len(), 2);
        assert_eq!(config.vips[0].backends[1].weight, 3);
        assert_eq!(config.vips[0].port, 80);
    }
}
