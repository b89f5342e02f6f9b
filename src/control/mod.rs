//! The control plane: turns the configuration (and, later, health state and
//! learnt addresses) into forwarding snapshots for the workers.

#![forbid(unsafe_code)]

mod build;
pub mod health;
pub mod log;
pub mod manager;
pub mod metrics;
pub mod sd_notify;
pub mod socket;
pub mod stats;

pub use build::{StableIds, build_forwarding, build_forwarding_with, datapath_tables};
