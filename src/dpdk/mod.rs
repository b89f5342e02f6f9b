//! The safe DPDK layer: EAL, mempools, mbufs, ports, lcores, and the
//! poll-mode worker loop built on them.
//!
//! All `unsafe` of the main crate lives in this module; every block states why
//! it is sound. Above this layer the code is safe Rust.

mod eal;
pub mod engine;
mod error;
mod hugemem;
mod lcore;
mod mbuf;
mod mempool;
mod port;
mod prefetch;
pub mod worker;

pub use eal::Eal;
pub use error::DpdkError;
pub use hugemem::{Placement, TableMemory, eal_has_hugepages};
pub use lcore::{LaunchedLcore, launch_on_lcore, tsc_hz, tsc_now};
pub use mbuf::{BURST, Batch, Mbuf};
pub use mempool::Mempool;
pub use port::{LinkStatus, Port, PortSetup, PortStats, RxQueue, TxQueue};
