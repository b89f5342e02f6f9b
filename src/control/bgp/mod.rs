//! Announcing the VIPs by BGP, through BIRD 2 (`[bgp]`), and what `stats`
//! and `/metrics` show of it and of `mplb drain`.
//!
//! A VIP's address is announced iff the instance forwards (ports started,
//! first snapshot published, every worker polling), its first health
//! verdicts are in, it is not draining, and one of the VIPs on that
//! address has an active backend (healthy, not drained or disabled, MAC
//! known) of weight > 0 ([`decision`]). mplb writes the addresses as
//! blackhole routes of two static protocols to a file bird.conf includes
//! ([`routes`]) and tells BIRD `configure` over its control socket
//! ([`bird`]) whenever the set changes, and again whenever BIRD is seen
//! back ([`Announcer`]). `mplb withdraw` empties the file for an mplb
//! that could not ([`withdraw_all`]).

mod announcer;
pub mod bird;
pub mod decision;
mod report;
pub mod routes;
mod withdraw;

pub use announcer::Announcer;
pub use decision::Instance;
pub use report::{BgpReport, DrainReport, FleetReport, VipAnnouncement};
pub use withdraw::{Withdrawn, withdraw_all};
