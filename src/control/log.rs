//! Structured logs: one `logfmt` line per event on stderr, e.g.
//! `ts=1732450000.123 level=info event=backend_state backend=web-1 to=down`.

use std::fmt::Display;
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

/// Logs `event` with key/value fields at `level`.
/// A closed stderr loses the line; it never panics (not `eprintln!`).
pub fn event(level: &str, event: &str, fields: &[(&str, &dyn Display)]) {
    let _ = writeln!(std::io::stderr(), "{}", line(level, event, fields));
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
}
