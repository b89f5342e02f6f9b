//! Settings for running in a fleet: `[bgp]` (which VIPs this instance
//! announces to the routers, through a BGP speaker) and `[drain]` (how
//! `mplb drain` takes the instance out of service).

use std::path::PathBuf;

use serde::Deserialize;

/// The BGP speakers mplb can drive.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Speaker {
    /// BIRD 2: mplb writes a file of static routes that bird.conf includes
    /// and tells BIRD `configure` over its control socket.
    #[default]
    Bird,
}

/// `[bgp]`: announce this instance's VIPs through a BGP speaker. Absent: no
/// announcements at all.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BgpConfig {
    #[serde(default)]
    pub speaker: Speaker,
    /// The speaker's control socket (BIRD's `-s`).
    #[serde(default = "default_bird_socket")]
    pub control_socket: PathBuf,
    /// The file of routes mplb writes; the speaker's config includes it.
    #[serde(default = "default_routes_file")]
    pub routes_file: PathBuf,
    /// How often the speaker and its sessions are looked at.
    #[serde(default = "default_check_interval_ms")]
    pub check_interval_ms: u64,
}

/// `[drain]`: `mplb drain` withdraws every VIP, keeps forwarding, and exits
/// once no packet was forwarded to a VIP for `quiet_secs`, or after
/// `deadline_secs` in any case.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrainConfig {
    #[serde(default = "default_quiet_secs")]
    pub quiet_secs: u64,
    #[serde(default = "default_deadline_secs")]
    pub deadline_secs: u64,
}

impl Default for DrainConfig {
    fn default() -> Self {
        DrainConfig {
            quiet_secs: default_quiet_secs(),
            deadline_secs: default_deadline_secs(),
        }
    }
}

/// The longest drain deadline accepted: a day. A drain that has not gone
/// quiet by then is not going to.
pub const MAX_DRAIN_DEADLINE_SECS: u64 = 86_400;

fn default_bird_socket() -> PathBuf {
    PathBuf::from("/run/bird/bird.ctl")
}
fn default_routes_file() -> PathBuf {
    PathBuf::from("/run/mplb/bird-vips.conf")
}
fn default_check_interval_ms() -> u64 {
    1000
}
fn default_quiet_secs() -> u64 {
    5
}
fn default_deadline_secs() -> u64 {
    120
}

/// Checks `[bgp]`: (field, message) of the first problem.
pub(super) fn validate_bgp(b: &BgpConfig) -> Result<(), (String, String)> {
    for (field, path) in [
        ("bgp.control_socket", &b.control_socket),
        ("bgp.routes_file", &b.routes_file),
    ] {
        if !path.is_absolute() || path.file_name().is_none() {
            return Err((
                field.into(),
                format!("{} is not an absolute path to a file", path.display()),
            ));
        }
        // BIRD reads the include as a quoted string: a quote or a newline
        // in the path would end it early.
        if path.to_str().is_none_or(|s| s.contains(['"', '\n', '\\'])) {
            return Err((
                field.into(),
                "the path must be UTF-8 without quotes, backslashes or newlines".into(),
            ));
        }
    }
    if !(100..=60_000).contains(&b.check_interval_ms) {
        return Err((
            "bgp.check_interval_ms".into(),
            "must be 100 to 60000 ms".into(),
        ));
    }
    Ok(())
}

/// Checks `[drain]`: (field, message) of the first problem.
pub(super) fn validate_drain(d: &DrainConfig) -> Result<(), (String, String)> {
    if d.quiet_secs == 0 {
        return Err((
            "drain.quiet_secs".into(),
            "must be at least 1 s: a drain that ends at once would cut the flows still arriving"
                .into(),
        ));
    }
    if d.deadline_secs < d.quiet_secs || d.deadline_secs > MAX_DRAIN_DEADLINE_SECS {
        return Err((
            "drain.deadline_secs".into(),
            format!(
                "must be quiet_secs ({}) to {MAX_DRAIN_DEADLINE_SECS} s",
                d.quiet_secs
            ),
        ));
    }
    Ok(())
}

/// The `check-config` lines for `[bgp]` and `[drain]`, with a warning when
/// the speaker's control socket is not there (not an error: the speaker may
/// start after mplb, and mplb keeps forwarding without it).
pub(super) fn summary(bgp: Option<&BgpConfig>, drain: &DrainConfig) -> String {
    let mut s = match bgp {
        None => "bgp: off (no [bgp]: this instance announces nothing)\n".to_string(),
        Some(b) => format!(
            "bgp: BIRD at {}, routes written to {}, checked every {} ms\n",
            b.control_socket.display(),
            b.routes_file.display(),
            b.check_interval_ms
        ),
    };
    s += &format!(
        "drain: exits once no packet went to a VIP for {} s, or after {} s\n",
        drain.quiet_secs, drain.deadline_secs
    );
    if let Some(b) = bgp {
        if !b.control_socket.exists() {
            s += &format!(
                "warning: bgp: no BIRD control socket at {} (is bird running?): mplb forwards, but announces nothing until it appears\n",
                b.control_socket.display()
            );
        }
    }
    s
}
