//! The I/O-free per-packet core. Owned by the datapath work; see issue 3.
#![forbid(unsafe_code)]

pub mod flow_table;
pub mod hash;
pub mod maglev;
pub mod token_table;
