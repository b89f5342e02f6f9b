//! `mplb check-config` refuses what `mplb run` could not do, and every error
//! names file:line and the field: table capacities past their bounds, memory
//! the host does not have, VIPs no backend can serve, errors in `[health]`,
//! `[dpdk]` and `[flow_table]`, TOML syntax errors, too many backends, and
//! files that are not regular files (a FIFO would block the reader).
//!
//! Self-contained: runs the built `mplb` binary on files it writes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use mplb::testing::config::{Backend, Vip};

/// The start of every config below: lines 1 to 7.
const BASE: &str = "[dpdk]
eal_args = [\"--no-huge\"]
[workers]
lcores = [1]
[[port]]
name = \"lan\"
device = \"net_null0\"
";

/// The VIP `web` from line 8, backends `a` and `b` each changed by `edit`
/// (its first backend's last line, 16, is the key `edit` adds).
fn vip(edit: impl Fn(Backend) -> Backend) -> String {
    Vip::web()
        .backend(edit(
            Backend::new("a", "198.18.1.11").mac("02:00:00:00:01:11"),
        ))
        .backend(edit(
            Backend::new("b", "198.18.1.12").mac("02:00:00:00:01:12"),
        ))
        .to_string()
}

struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("mplb-limits-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("scratch dir");
        Dir(d)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn mplb() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mplb"))
}

/// Runs `mplb check-config file`, killed after `limit`.
fn check(file: &Path, stdin: Stdio, limit: Duration) -> (Output, Duration) {
    let start = Instant::now();
    let mut child = mplb()
        .arg("check-config")
        .arg(file)
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn mplb");
    // A piped stdin is closed at once: nobody writes to it.
    drop(child.stdin.take());
    while child.try_wait().expect("wait").is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "check-config {} still running after {limit:?}: {}",
                file.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    (child.wait_with_output().expect("output"), start.elapsed())
}

/// `mplb check-config` on `text`, written as `name` in `dir`.
fn checked(dir: &Dir, name: &str, text: &str) -> (PathBuf, Output) {
    let file = dir.0.join(name);
    std::fs::write(&file, text).expect("write config");
    let (out, _) = check(&file, Stdio::null(), Duration::from_secs(60));
    (file, out)
}

/// `text` (as `name`) is accepted. Returns stdout.
fn accepted(dir: &Dir, name: &str, text: &str) -> String {
    let (_, out) = checked(dir, name, text);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `text` is refused, and the error starts `FILE:LINE:` and names `field`.
fn refused_at(dir: &Dir, text: &str, line: usize, field: &str) -> String {
    let (file, out) = checked(dir, "c.toml", text);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "accepted, wanted an error at line {line} on `{field}`:\n{text}"
    );
    let place = format!("error: {}:{line}:", file.display());
    assert!(
        stderr.starts_with(&place),
        "wanted `{place}` in: {stderr}for:\n{text}"
    );
    let named = format!("field `{field}`: ");
    assert!(stderr.contains(&named), "wanted {named} in: {stderr}");
    stderr
}

#[test]
fn table_capacities_past_their_bounds_are_refused() {
    let d = Dir::new("caps");
    for cap in ["1099511627776", "4611686018427387904"] {
        for table in ["flow_table", "token_table"] {
            let text = format!("{BASE}[{table}]\ncapacity = {cap}\n");
            let e = refused_at(&d, &text, 9, &format!("{table}.capacity"));
            assert!(e.contains("must be a power of two"), "{e}");
        }
    }
}

#[test]
fn memory_beyond_the_host_is_refused() {
    // 2^35 entries (the bound) x 48 B x 8 workers: 12 TiB.
    let d = Dir::new("mem");
    let text = format!(
        "{}[flow_table]\ncapacity = 34359738368\n",
        BASE.replace("lcores = [1]", "lcores = [1, 2, 3, 4, 5, 6, 7, 8]")
    );
    let e = refused_at(&d, &text, 9, "flow_table.capacity");
    assert!(e.contains("but this host has"), "{e}");
    // A mempool larger than the 64 MiB of DPDK memory --no-huge gives.
    let text = BASE.replace("[workers]", "mempool_size = 65535\n[workers]");
    let e = refused_at(&d, &text, 3, "dpdk.mempool_size");
    assert!(e.contains("64 MiB"), "{e}");
    let text = BASE.replace("[workers]", "mempool_cache = 1024\n[workers]");
    refused_at(&d, &text, 3, "dpdk.mempool_cache");
}

#[test]
fn a_vip_no_backend_can_serve_is_refused() {
    let d = Dir::new("weights");
    let e = refused_at(
        &d,
        &format!("{BASE}{}", vip(|b| b.weight(0))),
        16,
        "vip[0].backend[0].weight",
    );
    assert!(e.contains("every backend has weight 0"), "{e}");
    // Every backend disabled: an operator's choice, accepted with a warning
    // that says what `mplb lookup` will say.
    let stdout = accepted(
        &d,
        "disabled.toml",
        &format!("{BASE}{}", vip(|b| b.state("disabled"))),
    );
    assert!(stdout.contains("a (disabled), b (disabled)"), "{stdout}");
    assert!(
        stdout.contains("warning: vip web: no backend takes new flows"),
        "{stdout}"
    );
    // One backend with weight 0 beside a weighted one is fine, and shown so.
    let text = format!(
        "{BASE}{}",
        vip(|b| if b.is("a") { b.weight(0) } else { b.weight(1) })
    );
    let stdout = accepted(&d, "ok.toml", &text);
    assert!(stdout.contains("a (weight 0: no new flows), b"), "{stdout}");
}

#[test]
fn errors_in_values_name_their_line() {
    let d = Dir::new("values");
    let cases: &[(&str, usize, &str)] = &[
        ("[health]\nrise = 0\n", 9, "health.rise"),
        ("[health]\ntimeout_ms = 5000\n", 9, "health.timeout_ms"),
        (
            "[health]\nkind = \"http\"\npath = \"x\"\n",
            10,
            "health.path",
        ),
        (
            "[flow_table]\nuntrusted_quota_pct = 0\n",
            9,
            "flow_table.untrusted_quota_pct",
        ),
        ("[token_table]\nttl_secs = 0\n", 9, "token_table.ttl_secs"),
    ];
    for (extra, line, field) in cases {
        refused_at(&d, &format!("{BASE}{extra}"), *line, field);
    }
    let text = BASE.replace("[workers]", "mempool_size = 10\n[workers]");
    refused_at(&d, &text, 3, "dpdk.mempool_size");
    let text = format!(
        "{BASE}{}",
        vip(|b| b.weight(1)).replace("port = 80\n", "port = 80\n  [vip.health]\n  fall = 0\n")
    );
    refused_at(&d, &text, 13, "vip[0].health.fall");
}

#[test]
fn a_wrong_type_names_the_field_not_serde_internals() {
    let d = Dir::new("type");
    let e = refused_at(
        &d,
        &BASE.replace("lcores = [1]", "lcores = \"1\""),
        4,
        "workers.lcores",
    );
    assert!(!e.contains("$__"), "{e}");
}

#[test]
fn syntax_errors_name_line_column_and_field() {
    let d = Dir::new("syntax");
    let cases: &[(&str, usize, &str)] = &[
        ("mtu = \n", 8, "port[0].mtu"),
        ("mtu = 15 00\n", 8, "port[0].mtu"),
        ("[port\n", 8, "port[0]"),
        ("name = \"x\n", 8, "port[0].name"),
        ("x.y = 1\nx = 2\n", 9, "port[0].x"),
        ("= 3\n", 8, "port[0]"),
        ("ipv4 = [\"198.18.0.1\",\n", 9, "port[0].ipv4"),
        ("mtu = 1\nmtu = 2\n", 9, "port[0].mtu"),
        ("[workers]\n", 8, "workers"),
        ("promiscuous = tru\n", 8, "port[0].promiscuous"),
    ];
    for (extra, line, field) in cases {
        let e = refused_at(&d, &format!("{BASE}{extra}"), *line, field);
        // FILE:LINE:COLUMN: field
        let rest = e.split(&format!(".toml:{line}:")).nth(1).unwrap_or("");
        assert!(
            rest.split(':')
                .next()
                .is_some_and(|c| c.parse::<usize>().is_ok()),
            "no column in: {e}"
        );
    }
}

#[test]
fn too_many_backends_names_the_first_one_too_many() {
    let d = Dir::new("many");
    let mut text = String::from(BASE);
    // 66 VIPs of 1000 backends: 66000 distinct backends, 65535 allowed.
    for v in 0..66 {
        let backends = (0..1000).map(|b| {
            Backend::new(format!("b{v}-{b}"), format!("10.1.{v}.{}", b % 250))
                .mac("02:00:00:00:00:01")
        });
        text += &Vip::new(format!("v{v}"), format!("10.0.{v}.1"), 80)
            .backends(backends)
            .to_string();
    }
    let file = d.0.join("many.toml");
    std::fs::write(&file, &text).expect("write");
    // A sanity bound, far above the time it takes (bench/README.md).
    let (out, took) = check(&file, Stdio::null(), Duration::from_secs(300));
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Backend 65535 (0-based) is the 536th of VIP 65: its name is on line
    // 7 + 65 * (4 + 4000) + 4 + 535 * 4 + 2.
    let line = 7 + 65 * 4004 + 4 + 535 * 4 + 2;
    let place = format!("{}:{line}:", file.display());
    assert!(stderr.contains(&place), "wanted {place} in {stderr}");
    assert!(
        stderr.contains("field `vip[65].backend[535].name`: too many backends"),
        "{stderr}"
    );
    eprintln!("66000 backends refused in {took:?}");
}

#[test]
fn a_fifo_is_refused_at_once() {
    let d = Dir::new("fifo");
    let fifo = d.0.join("config.fifo");
    let status = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(status.success());
    // Nobody writes to it: a reader that opens it blocks for ever.
    let (out, took) = check(&fifo, Stdio::null(), Duration::from_secs(10));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("not a regular file (a FIFO)"), "{stderr}");
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[test]
fn a_closed_pipe_is_refused() {
    // /dev/stdin is a pipe whose writer is gone.
    let (out, _) = check(
        Path::new("/dev/stdin"),
        Stdio::piped(),
        Duration::from_secs(10),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("not a regular file"), "{stderr}");
}
