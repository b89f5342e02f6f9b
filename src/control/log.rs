//! Structured logs: one `logfmt` line per event on stderr, e.g.
//! `ts=1732450000.123 level=info event=backend_state backend=web-1 to=down`.
//!
//! Under systemd, when stderr goes to the journal (`JOURNAL_STREAM` names
//! it), each line starts with its syslog priority (`<4>` for `warn`), which
//! journald takes as the entry's priority and strips: `journalctl -u mplb
//! -p warning` then shows the warnings and errors only.

use std::fmt::Display;
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

/// Logs `event` with key/value fields at `level`.
/// A closed stderr loses the line; it never panics (not `eprintln!`).
pub fn event(level: &str, event: &str, fields: &[(&str, &dyn Display)]) {
    let prefix = if to_journal() { priority(level) } else { "" };
    let _ = writeln!(std::io::stderr(), "{prefix}{}", line(level, event, fields));
}

/// Whether stderr is the journal stream systemd names in `JOURNAL_STREAM`
/// (`device:inode`; checked once). Not just the variable's presence: a
/// child of a service inherits it while its stderr may go elsewhere.
fn to_journal() -> bool {
    use std::os::unix::fs::MetadataExt;
    static JOURNAL: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *JOURNAL.get_or_init(|| {
        let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
            return false;
        };
        let Ok(stderr) = std::fs::metadata("/proc/self/fd/2") else {
            return false;
        };
        stream.to_string_lossy() == format!("{}:{}", stderr.dev(), stderr.ino())
    })
}

/// The `sd-daemon` priority prefix journald reads for `level`.
fn priority(level: &str) -> &'static str {
    match level {
        "error" => "<3>",
        "warn" => "<4>",
        "info" => "<6>",
        _ => "<7>",
    }
}

fn line(level: &str, event: &str, fields: &[(&str, &dyn Display)]) -> String {
    let ts = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let mut out = format!("ts={ts:.3} level={level} event={event}");
    for (k, v) in fields {
        out.push(' ');
        out.push_str(k);
        out.push('=');
        out.push_str(&quote(&v.to_string()));
    }
    out
}

/// Values with spaces, quotes or `=` are quoted, with `"` and `\` escaped.
fn quote(v: &str) -> String {
    if !v.is_empty()
        && !v.contains(|c: char| c.is_whitespace() || c == '"' || c == '=' || c == '\\')
    {
        return v.to_string();
    }
    let escaped: String = v
        .chars()
        .flat_map(|c| match c {
            '"' => vec!['\\', '"'],
            '\\' => vec!['\\', '\\'],
            '\n' => vec!['\\', 'n'],
            c => vec![c],
        })
        .collect();
    format!("\"{escaped}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_logfmt_and_quoted_when_needed() {
        let l = line(
            "info",
            "reload",
            &[("file", &"a b.toml"), ("n", &3), ("msg", &"x=\"y\"")],
        );
        assert!(
            l.contains(" level=info event=reload file=\"a b.toml\" n=3 msg=\"x=\\\"y\\\"\""),
            "{l}"
        );
        assert!(l.starts_with("ts="));
    }

    #[test]
    fn journal_priorities_follow_the_level() {
        assert_eq!(priority("error"), "<3>");
        assert_eq!(priority("warn"), "<4>");
        assert_eq!(priority("info"), "<6>");
        assert_eq!(priority("debug"), "<7>");
    }
}
