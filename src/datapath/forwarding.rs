//! The immutable forwarding snapshot: everything a worker needs to decide
//! where a frame goes. Built by the control plane from the config (and, later,
//! health state and learnt MACs), published to workers between bursts.

use std::net::{Ipv4Addr, Ipv6Addr};

/// One DPDK port's own identity, as the datapath answers for it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Interface {
    pub mac: [u8; 6],
    pub ipv4: Vec<Ipv4Addr>,
    pub ipv6: Vec<Ipv6Addr>,
}

impl Interface {
    pub fn owns_v4(&self, a: Ipv4Addr) -> bool {
        self.ipv4.contains(&a)
    }
    pub fn owns_v6(&self, a: Ipv6Addr) -> bool {
        self.ipv6.contains(&a)
    }
}

/// A complete forwarding state; workers never see a partial update.
#[derive(Clone, Debug, Default)]
pub struct Forwarding {
    /// Increases with every publication (for logs and metrics).
    pub generation: u64,
    /// Indexed by the port index the worker passes to `process`.
    pub interfaces: Vec<Interface>,
}
