//! The per-packet entry point: frame bytes and `now` in, a verdict (and the
//! rewritten frame) out.

use std::sync::Arc;

use super::counters::Counters;
use super::flow_table::{FlowTable, FlowTableConfig, FlowTableError};
use super::forwarding::Forwarding;
use super::frame::Frame;
use super::local;
use super::token_table::TokenTable;

/// Why a frame was dropped (each reason has its counter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    Malformed,
    NotForUs,
    Unsupported,
}

/// What the worker does with a frame after [`Datapath::process`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Rewritten for a backend: send out the backend-facing port.
    Forward,
    /// Rewritten as an answer (ARP, ICMP echo): send out the port it came in on.
    Reply,
    /// Free it; the reason's counter was incremented.
    Drop(DropReason),
}

/// One worker's datapath state: its counters, its flow table and a handle on
/// the token table shared by all workers. Owned by exactly one worker.
pub struct Datapath {
    pub counters: Counters,
    flows: FlowTable,
    tokens: Arc<TokenTable>,
}

impl std::fmt::Debug for Datapath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Datapath")
            .field("counters", &self.counters)
            .field("flows", &self.flows.len())
            .finish()
    }
}

impl Datapath {
    /// One per worker; `tokens` is shared by all workers.
    pub fn new(flow: FlowTableConfig, tokens: Arc<TokenTable>) -> Result<Datapath, FlowTableError> {
        Ok(Datapath {
            counters: Counters::default(),
            flows: FlowTable::new(flow)?,
            tokens,
        })
    }

    /// The worker's flow table (for its size and event counters).
    pub fn flow_table(&self) -> &FlowTable {
        &self.flows
    }

    /// The shared token table.
    pub fn token_table(&self) -> &Arc<TokenTable> {
        &self.tokens
    }

    /// Decides what to do with one frame received on port `port`, rewriting
    /// it in place. Never panics, whatever the bytes.
    pub fn process<F: Frame>(
        &mut self,
        fwd: &Forwarding,
        port: usize,
        frame: &mut F,
        _now_ns: u64,
    ) -> Verdict {
        let verdict = match fwd.interfaces.get(port) {
            Some(iface) => local::answer(iface, frame, &mut self.counters),
            None => Verdict::Drop(DropReason::NotForUs),
        };
        match verdict {
            Verdict::Drop(DropReason::Malformed) => self.counters.drop_malformed += 1,
            Verdict::Drop(DropReason::NotForUs) => self.counters.drop_not_for_us += 1,
            Verdict::Drop(DropReason::Unsupported) => self.counters.drop_unsupported += 1,
            _ => {}
        }
        verdict
    }
}
