//! mplb: a kernel-bypass L4 load balancer for Multipath TCP.
//!
//! Data flows one way: the config file is parsed by [`config`], the control
//! plane builds an immutable forwarding snapshot, workers in [`engine`] pick it up
//! between bursts and run every frame through the I/O-free [`datapath`], which
//! reads packets through the zero-copy views in [`wire`].

pub mod config;
pub mod control;
pub mod datapath;
pub mod snapshot;
pub mod wire;

#[cfg(feature = "dpdk")]
pub mod dpdk;
#[cfg(feature = "dpdk")]
pub mod engine;
