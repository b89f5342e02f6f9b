//! What `mplb stats` and the metrics page show of the fleet side: whether
//! the instance drains, the speaker, its sessions, and each VIP announced
//! or why not.

use std::fmt::Write as _;
use std::net::IpAddr;

/// The fleet side of `stats` and `/metrics`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FleetReport {
    /// Workers that stopped polling (no VIP announced while any has).
    pub stalled_workers: usize,
    /// `Some` once `mplb drain` ran.
    pub drain: Option<DrainReport>,
    /// `Some` with `[bgp]`.
    pub bgp: Option<BgpReport>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DrainReport {
    pub elapsed_secs: f64,
    /// Since the last packet forwarded to a VIP (or the drain's start).
    pub quiet_secs: f64,
    pub quiet_needed_secs: u64,
    pub deadline_secs: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BgpReport {
    pub speaker: String,
    pub speaker_up: bool,
    /// Why the speaker is not up (the last error), if it is not.
    pub speaker_error: Option<String>,
    /// Each BGP protocol of the speaker: (name, established, BIRD's info).
    pub sessions: Vec<(String, bool, String)>,
    pub vips: Vec<VipAnnouncement>,
    pub configure_failures: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VipAnnouncement {
    pub name: String,
    pub address: IpAddr,
    pub announced: bool,
    /// `announced`, or why not.
    pub reason: String,
}

impl FleetReport {
    pub fn draining(&self) -> bool {
        self.drain.is_some()
    }

    /// The lines at the end of `mplb stats`.
    pub fn text(&self) -> String {
        let mut s = String::new();
        match &self.drain {
            None => s += "\ndraining: no\n",
            Some(d) => {
                let _ = writeln!(
                    s,
                    "\ndraining: yes, for {:.0} s; no packet to a VIP for {:.1} s (exits at {} s quiet, or at {} s)",
                    d.elapsed_secs, d.quiet_secs, d.quiet_needed_secs, d.deadline_secs
                );
            }
        }
        let Some(b) = &self.bgp else {
            s += "bgp: off\n";
            return s;
        };
        let _ = writeln!(
            s,
            "bgp: speaker {} {}{}; {} configure failure(s)",
            b.speaker,
            if b.speaker_up { "up" } else { "down" },
            b.speaker_error
                .as_ref()
                .map_or(String::new(), |e| format!(" ({e})")),
            b.configure_failures
        );
        for (name, up, info) in &b.sessions {
            let _ = writeln!(
                s,
                "  session {name}: {} ({info})",
                if *up { "established" } else { "down" }
            );
        }
        let _ = writeln!(s, "  {:<16} {:<40} announced", "vip", "address");
        for v in &b.vips {
            let _ = writeln!(
                s,
                "  {:<16} {:<40} {}",
                v.name,
                v.address,
                match (v.announced, v.reason.as_str()) {
                    (true, "announced") => "yes".to_string(),
                    (true, why) => format!("yes ({why})"),
                    (false, why) => format!("no ({why})"),
                }
            );
        }
        s
    }

    /// `draining` and `bgp` of `mplb stats --json`.
    pub fn json(&self) -> (serde_json::Value, serde_json::Value) {
        let drain = match &self.drain {
            None => serde_json::json!({ "draining": false }),
            Some(d) => serde_json::json!({
                "draining": true, "elapsed_seconds": d.elapsed_secs,
                "quiet_seconds": d.quiet_secs, "quiet_needed_seconds": d.quiet_needed_secs,
                "deadline_seconds": d.deadline_secs,
            }),
        };
        let bgp = match &self.bgp {
            None => serde_json::Value::Null,
            Some(b) => serde_json::json!({
                "speaker": b.speaker, "speaker_up": b.speaker_up,
                "speaker_error": b.speaker_error,
                "configure_failures": b.configure_failures,
                "sessions": b.sessions.iter().map(|(n, up, info)| serde_json::json!({
                    "protocol": n, "established": up, "info": info,
                })).collect::<Vec<_>>(),
                "vips": b.vips.iter().map(|v| serde_json::json!({
                    "name": v.name, "address": v.address, "announced": v.announced,
                    "reason": v.reason,
                })).collect::<Vec<_>>(),
            }),
        };
        (drain, bgp)
    }
}
