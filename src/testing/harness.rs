//! One constructor for a datapath under test: config text → [`Config`] →
//! forwarding snapshot ([`build_forwarding`]) → flow and token tables →
//! [`Datapath`].

use std::path::Path;
use std::sync::Arc;

use crate::config::Config;
use crate::control::{StableIds, build_forwarding, datapath_tables};
use crate::datapath::flow_table::FlowTableConfig;
use crate::datapath::forwarding::Forwarding;
use crate::datapath::frame::TestFrame;
use crate::datapath::process::Datapath;
use crate::datapath::token_table::TokenTable;
use crate::datapath::verdict::Verdict;

const S: u64 = 1_000_000_000;

/// Parses a config; panics with the error if it is not valid.
pub fn parse(text: &str) -> Config {
    Config::parse(text, Path::new("test.toml")).unwrap_or_else(|e| panic!("test config: {e}"))
}

/// The forwarding snapshot of `config` on ports with these MACs (fresh
/// backend ids).
pub fn forwarding(config: &Config, port_macs: &[[u8; 6]]) -> Forwarding {
    build_forwarding(config, port_macs, &mut StableIds::default())
        .unwrap_or_else(|e| panic!("test snapshot: {e}"))
}

/// A datapath's flow-table config and token table.
pub struct Tables {
    pub flow: FlowTableConfig,
    pub tokens: Arc<TokenTable>,
}

impl Tables {
    /// As the config's `[flow_table]` and `[token_table]` say (what the
    /// engine builds).
    pub fn of(config: &Config) -> Tables {
        let (flow, capacity, ttl) = datapath_tables(config);
        Tables {
            flow,
            tokens: Arc::new(TokenTable::new(capacity, ttl).expect("token table")),
        }
    }

    /// `flows` flow entries (default timeouts, 25% untrusted quota) and
    /// 1024 tokens kept for an hour.
    pub fn small(flows: usize) -> Tables {
        Tables {
            flow: FlowTableConfig::with_capacity(flows),
            tokens: Arc::new(TokenTable::new(1024, 3600 * S).expect("token table")),
        }
    }

    /// The same size as [`Tables::small`], sharing `tokens`.
    pub fn with_tokens(flows: usize, tokens: Arc<TokenTable>) -> Tables {
        Tables {
            flow: FlowTableConfig::with_capacity(flows),
            tokens,
        }
    }

    pub fn datapath(self) -> Datapath {
        Datapath::new(self.flow, self.tokens).expect("datapath")
    }
}

/// A snapshot and a datapath, with a clock.
pub struct Harness {
    pub fwd: Forwarding,
    pub dp: Datapath,
    /// Nanoseconds; [`Harness::send`] does not move it.
    pub now: u64,
}

impl Harness {
    /// `text`'s snapshot on ports with `port_macs`, and a datapath with the
    /// config's own tables.
    pub fn new(text: &str, port_macs: &[[u8; 6]]) -> Harness {
        let config = parse(text);
        Harness::build(&config, port_macs, Tables::of(&config))
    }

    pub fn build(config: &Config, port_macs: &[[u8; 6]], tables: Tables) -> Harness {
        Harness {
            fwd: forwarding(config, port_macs),
            dp: tables.datapath(),
            now: 1_000 * S,
        }
    }

    /// Runs one frame (on port 0); the verdict and the frame as it is after.
    pub fn send(&mut self, frame: &[u8]) -> (Verdict, Vec<u8>) {
        let mut f = TestFrame::new(frame);
        let v = self.dp.process(&self.fwd, 0, &mut f, self.now);
        (v, f.to_vec())
    }
}
