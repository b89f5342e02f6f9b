//! Commands whose stdout is a pipe nobody reads any more
//! (`mplb check-config f | true`, `mplb stats | head -0`, `mplb run | head`): they end with
//! success or a clean error, never a panic or a signal.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{Scratch, mplb, text};

/// Runs mplb with `args`, its stdout a pipe whose reading end is already
/// closed: `mplb ARGS | true`, with `true` sure to be gone first.
fn run_into_closed_pipe(args: &[&str]) -> Output {
    let mut reader = Command::new("true")
        .stdin(Stdio::piped())
        .spawn()
        .expect("spawn true");
    let writer = reader.stdin.take().expect("pipe to true");
    reader.wait().expect("true ends");
    let out = mplb()
        .args(args)
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .output()
        .expect("spawn mplb");
    eprintln!(
        "--- mplb {args:?} exit {:?}\n{}",
        out.status,
        text(&out.stderr)
    );
    out
}

fn assert_clean(out: &Output) {
    let stderr = text(&out.stderr);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "exit 0 or 1, not a signal or a panic: {:?}\n{stderr}",
        out.status
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn check_config_into_a_closed_pipe_ends_cleanly() {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/demo.toml");
    let out = run_into_closed_pipe(&["check-config", demo.to_str().expect("utf-8")]);
    assert_clean(&out);
}

#[test]
fn stats_into_a_closed_pipe_ends_cleanly() {
    // A stand-in for a running mplb: answers one request with a page of
    // stats, as the control socket does.
    let s = Scratch::new("cli-pipe");
    let sock = s.path("ctl.sock");
    let listener = UnixListener::bind(&sock).expect("bind");
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().expect("accept");
        let mut line = String::new();
        BufReader::new(&stream)
            .read_line(&mut line)
            .expect("request");
        assert_eq!(line, "stats\n");
        let body = "rx_packets 0\n".repeat(1000);
        let _ = (&stream).write_all(format!("ok\n{body}").as_bytes());
    });
    let out = run_into_closed_pipe(&["stats", "--socket", sock.to_str().expect("utf-8")]);
    server.join().expect("stand-in server");
    assert_clean(&out);
}

#[test]
fn run_into_a_closed_pipe_keeps_forwarding_and_ends_cleanly() {
    // `mplb run … | head -1`: the engine prints its ports, workers and
    // counters to a pipe nobody reads; it must run its duration and stop
    // as usual (exit 0), not abort on the first line.
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/demo.toml");
    let out = run_into_closed_pipe(&[
        "run",
        "--config",
        demo.to_str().expect("utf-8"),
        "--duration",
        "1",
    ]);
    assert_clean(&out);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}
