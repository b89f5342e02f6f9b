//! The control plane: turns the configuration (with health state, operator
//! overrides and backend MACs learnt by ARP / ND) into forwarding snapshots for the workers.

#![forbid(unsafe_code)]

pub mod bgp;
mod build;
pub mod health;
pub mod log;
pub mod manager;
pub mod metrics;
pub mod resolver;
pub mod sd_notify;
pub mod socket;
pub mod stats;

pub use build::{StableIds, build_forwarding, build_forwarding_with, datapath_tables};
