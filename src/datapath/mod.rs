//! The I/O-free per-packet core: frame bytes and `now` in, a verdict and the
//! rewritten frame out. Usable and testable without DPDK.
#![forbid(unsafe_code)]

mod ahead;
pub mod announce;
mod brief;
mod budget;
pub mod counters;
mod decide;
pub mod flow_table;
pub mod forwarding;
pub mod frame;
pub mod hash;
mod local;
pub mod maglev;
pub mod neighbours;
pub mod process;
mod rewrite;
pub mod token_table;
pub mod traffic;
pub mod tunnel;
pub mod verdict;
pub mod vip_index;
