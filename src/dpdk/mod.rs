//! The safe DPDK layer: EAL, mempools, mbufs, ports, lcores. It imports
//! nothing from the rest of the crate; the engine (`crate::engine`) builds
//! mplb's workers on it.
//!
//! All `unsafe` of the main crate lives in this module; every block states why
//! it is sound. Above this layer the code is safe Rust.

mod eal;
mod error;
mod hugemem;
mod lcore;
mod mbuf;
mod mempool;
mod port;
mod prefetch;
pub use prefetch::prefetch;

pub use eal::Eal;
pub use error::DpdkError;
pub use hugemem::{Placement, TableMemory, eal_has_hugepages};
pub use lcore::{LaunchedLcore, launch_on_lcore, tsc_hz, tsc_now};
pub use mbuf::{BURST, Batch, Mbuf};
pub use mempool::Mempool;
pub use port::{LinkStatus, Port, PortSetup, PortStats, RxQueue, TxQueue};
