//! Helpers shared by the integration tests that run the real `mplb` binary on
//! DPDK virtual devices.
#![allow(dead_code)]

pub mod generator;

use std::fs::File;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use pcap_file::pcap::{PcapPacket, PcapReader, PcapWriter};

/// A scratch directory per test, removed on drop.
pub struct Scratch {
    pub dir: PathBuf,
}

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "mplb-test-{}-{}-{}",
            name,
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch { dir }
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// A unique DPDK --file-prefix for a process of this test.
    pub fn file_prefix(&self) -> String {
        self.dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "mplb-test".into())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs a command (`args[0]` with the rest), which must succeed; its
/// output trimmed. For the setup of namespaces, veths and the like.
pub fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

pub fn mplb() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mplb"))
}

pub fn write_config(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write config");
}

pub fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}

/// Runs mplb and returns its output, printing it when the test fails.
pub fn run(args: &[&str]) -> Output {
    let out = mplb().args(args).output().expect("spawn mplb");
    eprintln!(
        "--- mplb {args:?} exit {:?}\n{}\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}

/// The `total:` counters line of a run, as (name, value) pairs.
pub fn totals(stdout: &str) -> Vec<(String, u64)> {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("total: "))
        .map(|l| {
            l.split_whitespace()
                .filter_map(|kv| {
                    let (k, v) = kv.split_once('=')?;
                    Some((k.to_string(), v.parse().ok()?))
                })
                .collect()
        })
        .unwrap_or_default()
}

pub fn counter(stdout: &str, name: &str) -> u64 {
    totals(stdout)
        .into_iter()
        .find(|(k, _)| k == name)
        .map_or(0, |(_, v)| v)
}

/// Writes frames to a classic pcap file, one millisecond apart.
pub fn write_pcap(path: &Path, frames: &[Vec<u8>]) {
    let mut w = PcapWriter::new(File::create(path).expect("create pcap")).expect("pcap header");
    for (i, f) in frames.iter().enumerate() {
        let len = u32::try_from(f.len()).expect("frame length");
        w.write_packet(&PcapPacket::new(Duration::from_millis(i as u64), len, f))
            .expect("write frame");
    }
}

/// Every frame of a classic pcap file.
pub fn read_pcap(path: &Path) -> Vec<Vec<u8>> {
    let mut r = PcapReader::new(File::open(path).expect("pcap exists")).expect("pcap header");
    let mut out = Vec::new();
    while let Some(p) = r.next_packet() {
        out.push(p.expect("valid record").data.into_owned());
    }
    out
}

/// The sections every config of these tests starts with: `[dpdk]` with
/// `eal_args` (then this scratch dir's `--file-prefix`) and a mempool of
/// `mempool` mbufs (and cache), `[workers]` with one worker (plus `workers`
/// lines), and `[management]` with the scratch dir's control socket and a
/// metrics listener on `listen`.
pub fn head(s: &Scratch, eal: &[&str], mempool: (u32, u32), workers: &str, listen: &str) -> String {
    let mut args: Vec<String> = eal.iter().map(|a| format!("{a:?}")).collect();
    args.push(format!("\"--file-prefix={}\"", s.file_prefix()));
    format!(
        "[dpdk]\neal_args = [{}]\nmempool_size = {}\nmempool_cache = {}\n\
         [workers]\nlcores = [1]\n{workers}[management]\nsocket = \"{}\"\nlisten = \"{listen}\"\n",
        args.join(", "),
        mempool.0,
        mempool.1,
        s.path("ctl.sock").display(),
    )
}

/// A `[[port]]` section: its `name` and `device`, then `lines` (TOML).
pub fn port(name: &str, device: &str, lines: &str) -> String {
    format!("[[port]]\nname = \"{name}\"\ndevice = \"{device}\"\n{lines}")
}

/// A config running one worker on a `net_pcap` port named `lan` (own address
/// 198.18.0.1) that reads `input` and writes `output`, with this scratch
/// dir's control socket; `extra` is appended (VIPs, tables).
pub fn pcap_config(s: &Scratch, input: &Path, output: &Path, extra: &str) -> String {
    let vdev = format!(
        "--vdev=net_pcap0,rx_pcap={},tx_pcap={}",
        input.display(),
        output.display()
    );
    let eal = ["--no-huge", "--no-shconf", "--no-pci", &vdev];
    format!(
        "{}{}{extra}",
        head(s, &eal, (2047, 32), "", "127.0.0.1:0"),
        port("lan", "net_pcap0", "ipv4 = [\"198.18.0.1\"]\n"),
    )
}

/// Runs `mplb run` on `cfg` for `seconds` and returns its output.
pub fn run_for(cfg: &Path, seconds: &str) -> Output {
    let cfg = cfg.to_str().expect("utf-8 path");
    run(&["run", "--config", cfg, "--duration", seconds])
}

/// `mplb run` exited 0 and freed every mbuf it took; its (stdout, stderr).
pub fn stopped_cleanly(out: &Output) -> (String, String) {
    const NO_LEAK: &str = "mbufs in use: 0 at start, 0 at end";
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    let clean = out.status.success() && stdout.contains(NO_LEAK);
    let status = out.status;
    assert!(
        clean,
        "mplb: {status:?}, wanted 0 and `{NO_LEAK}`:\n{stdout}\n{stderr}"
    );
    (stdout, stderr)
}

/// Starts `mplb run` on `cfg`, its output piped.
pub fn spawn(cfg: &Path) -> Child {
    spawn_with(cfg, &[])
}

/// Starts `mplb run` on `cfg` with more `args` (e.g. `--duration`), its
/// output piped.
pub fn spawn_with(cfg: &Path, args: &[&str]) -> Child {
    mplb()
        .args(["run", "--config", cfg.to_str().expect("utf-8 path")])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn mplb")
}

/// `mplb COMMAND --socket` the scratch dir's control socket (`reload`,
/// `stats`): the CLI does not read the config, so a broken file on disk
/// reaches the running mplb.
pub fn control(s: &Scratch, command: &str) -> Output {
    run(&[
        command,
        "--socket",
        s.path("ctl.sock").to_str().expect("utf-8 path"),
    ])
}

/// A running `mplb`, killed if the test fails before stopping it.
pub struct Running(pub Option<Child>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Running {
    /// Sends it `signal` (a name `kill -s` takes).
    pub fn signal(&self, signal: &str) {
        let pid = self.0.as_ref().expect("still running").id().to_string();
        let st = Command::new("kill")
            .args(["-s", signal, &pid])
            .status()
            .expect("run kill");
        assert!(st.success(), "kill -s {signal} {pid}");
    }

    /// Stops it with SIGINT (a clean drain) and returns its output.
    pub fn interrupt(&mut self) -> Output {
        self.signal("INT");
        let child = self.0.take().expect("still running");
        child.wait_with_output().expect("wait")
    }
}

/// Which backend the mplb behind `sock` would give a new TCP flow from
/// 198.18.2.2:`sport` to the VIP 198.18.0.10:80 (`mplb lookup`).
pub fn new_flow_backend(sock: &Path, sport: u16) -> Result<String, String> {
    let out = run(&[
        "lookup",
        "tcp",
        "198.18.2.2",
        &sport.to_string(),
        "198.18.0.10",
        "80",
        "--socket",
        sock.to_str().expect("utf-8 path"),
    ]);
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    if !out.status.success() {
        return Err(all);
    }
    all.split("-> backend ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .map(str::to_string)
        .ok_or(all)
}

/// Runs `promtool check metrics` on `page`: whether it passed, and what it
/// said (stdout then stderr; empty when the page has no lint complaints).
pub fn promtool_check(page: &str) -> (bool, String) {
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) if e.kind() == ErrorKind::NotFound => panic!(
            "promtool is not installed; this test needs it. Install it with: \
             DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus"
        ),
        Err(e) => panic!("running promtool: {e}"),
    };
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(page.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool");
    (
        out.status.success(),
        format!("{}{}", text(&out.stdout), text(&out.stderr)),
    )
}

/// A TCP port on 127.0.0.1 that nothing listens on right now (for mplb's
/// metrics endpoint in a test).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The body of `GET /metrics` from mplb's endpoint on 127.0.0.1:`port`.
pub fn scrape(port: u16) -> String {
    scrape_target(port, "/metrics").1
}

/// `GET target` from the metrics endpoint on `port`: (status line, body).
#[allow(dead_code)]
pub fn scrape_target(port: u16, target: &str) -> (String, String) {
    use std::io::Read;
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).expect("metrics endpoint");
    c.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    c.write_all(
        format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .expect("send");
    let mut r = String::new();
    c.read_to_string(&mut r).expect("read");
    let (head, body) = r.split_once("\r\n\r\n").expect("HTTP head and body");
    let status = head.lines().next().unwrap_or_default().to_string();
    (status, body.to_string())
}
