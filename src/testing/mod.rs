//! The test kit: what the tests, the benchmarks, the fuzz target and
//! mplb-gen's own tests share instead of each writing it again (Katran's one
//! `prepareLbData` and one `PacketBuilder`).
//!
//! - [`config`]: the configs, as fixture files in `tests/fixtures/` and a
//!   small builder for the ones a test generates;
//! - [`harness`]: config → forwarding snapshot → token table → [`Datapath`],
//!   in one place;
//! - [`frames`]: whole frames from the emitters in [`crate::wire`].
//!
//! Compiled for the crate's own unit tests and behind the `testing` feature;
//! the `mplb` binary never uses it.
//!
//! [`Datapath`]: crate::datapath::process::Datapath
#![forbid(unsafe_code)]

pub mod config;
pub mod frames;
pub mod harness;
pub mod scale;

pub use config::{Backend, Vip, fixture};
pub use harness::{Harness, Tables, forwarding, parse};
