//! The safe DPDK layer: EAL, mempools, mbufs, ports, lcores. It imports
//! nothing from the rest of the crate; the engine (`crate::engine`) builds
//! mplb's workers on it.
//!
//! All `unsafe` of the main crate lives in this module; every block states why
//! it is sound. Above this layer the code is safe Rust.
//!
//! Teardown order is held by the types, not by the caller: [`Eal`],
//! [`Mempool`] and a port's state are shared handles; a mempool holds the
//! EAL, a [`Port`] and each of its [`RxQueue`]s and [`TxQueue`]s hold the
//! port's state, which holds the pool its rx rings use; a DPDK
//! [`TableMemory`] and a [`LaunchedLcore`] hold the EAL. So a port is closed
//! after its last queue, a pool freed after its last port and the EAL
//! cleaned up last, whatever order the handles are dropped in. An [`Mbuf`]
//! stays a bare pointer: a pool is not freed while any of its mbufs is out.

mod eal;
mod error;
mod hugemem;
mod lcore;
mod mbuf;
mod mempool;
mod port;
mod prefetch;
mod tap;
pub use prefetch::{prefetch, prefetch_value};

pub use eal::Eal;
pub use error::DpdkError;
pub use hugemem::{Placement, TableMemory, eal_has_hugepages};
pub use lcore::{LaunchedLcore, launch_on_lcore, tsc_hz, tsc_now};
pub use mbuf::{BURST, Batch, Mbuf};
pub use mempool::Mempool;
pub use port::{LinkStatus, Port, PortSetup, PortStats, PortStatsReader, RxQueue, TxQueue};
pub use tap::create_tap;
