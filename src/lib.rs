//! mplb: a kernel-bypass L4 load balancer for Multipath TCP.
//!
//! Data flows one way: the config file is parsed by [`config`], the control
//! plane builds an immutable forwarding snapshot, workers in [`engine`] pick it up
//! between bursts and run every frame through the I/O-free [`datapath`], which
//! reads packets through the zero-copy views in [`wire`].
//!
//! `testing` (the `testing` feature) is the test kit the tests, benchmarks,
//! fuzz target and mplb-gen's checks share: fixture configs, one datapath
//! harness, frame emitters.

pub mod config;
pub mod control;
pub mod datapath;
pub mod host;
pub mod snapshot;
pub mod wire;

#[cfg(any(test, feature = "testing"))]
pub mod testing;

#[cfg(feature = "dpdk")]
pub mod dpdk;
#[cfg(feature = "dpdk")]
pub mod engine;
