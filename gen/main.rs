//! mplb-gen: mplb's DPDK packet generator. Sends traffic mixes (MPTCP,
//! plain TCP, joins, floods, malformed frames, UDP) on one DPDK port,
//! receives what the device under test sends back on the same port, checks
//! every returned frame and measures latency. See gen/README.md.

#![forbid(unsafe_code)]

mod check;
mod flows;
mod frames;
mod generator;
mod plan;
mod report;
mod run;
mod source;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};

use check::Expect;
use plan::{Mix, Plan};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ExpectArg {
    /// mplb forwards to the VIP's backends (L2 DSR or IP-in-IP, from --lb-config)
    Mplb,
    /// a MAC-swapping reflector (dpdk-testpmd --forward-mode=macswap)
    Macswap,
    /// no checks: count and time what comes back
    None,
}

/// mplb's packet generator: sends traffic mixes on a DPDK port and checks
/// what the device under test returns on the same port.
#[derive(Parser, Debug)]
#[command(name = "mplb-gen", version)]
struct Args {
    /// DPDK device name of the port, e.g. net_memif0
    #[arg(long)]
    port: String,
    /// EAL arguments, split at whitespace, e.g. "--vdev=net_memif0,role=server,socket=/tmp/x.sock,socket-abstract=no --in-memory --no-pci --file-prefix gen1 -l 0"
    #[arg(long, allow_hyphen_values = true)]
    eal: String,
    /// mplb's TOML config: VIPs, backends and forwarding modes (what to send to, what to check).
    /// Without it: VIPs 198.18.0.10 and fd00:18::10, TCP port 80 and UDP port 53.
    #[arg(long)]
    lb_config: Option<PathBuf>,
    /// How returned frames are checked
    #[arg(long, value_enum, default_value = "mplb")]
    expect: ExpectArg,
    /// Traffic: NAME[=WEIGHT],... with NAME one of mptcp, plain, join, flood, ackflood, malformed, udp
    #[arg(long, default_value = "mptcp")]
    mix: String,
    /// Concurrent flows (connections), split among mptcp/plain/udp by weight
    #[arg(long, default_value_t = 1000)]
    flows: u32,
    /// Share of flows to an IPv6 VIP, in percent
    #[arg(long, default_value_t = 0)]
    ipv6: u8,
    /// Target frame size in bytes without FCS, 64..=1500 (data frames are
    /// padded to it; handshakes keep their natural size)
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Offered load in packets per second; 0 = flat out
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Measured seconds (after the warm-up)
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of traffic before measuring
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Write the final report as JSON here (it is also printed as a table)
    #[arg(long)]
    json: Option<PathBuf>,
    /// Seconds between progress lines on stderr; 0 = none
    #[arg(long, default_value_t = 1.0)]
    progress: f64,
    /// Exit with status 3 if any returned frame failed a check
    #[arg(long)]
    strict: bool,
    /// Packets per connection (SYN, ACK, data..., FIN), then the flow slot
    /// opens a new connection; 0 = connections last the whole run
    #[arg(long, default_value_t = 0)]
    conn_packets: u64,
    /// MAC address to send to; default: ARP for the load balancer's address
    /// (--expect mplb), else 02:00:00:00:00:02
    #[arg(long)]
    dut_mac: Option<String>,
    /// After the report: keep the port open (idle) until the device under
    /// test disconnects, at most this many seconds. Stop a memif peer while
    /// mplb-gen lingers: DPDK's memif can crash a side that is polling when
    /// the other disconnects.
    #[arg(long, default_value_t = 0.0)]
    linger: f64,
    /// Rx/tx queue pairs on the port; a flow keeps to one queue. They are
    /// dealt to the EAL's lcores (main first; as many lcores as divide N),
    /// each generating its own flows on its own queues. A memif peer with N
    /// queues (mplb with N workers) needs N here
    #[arg(long, default_value_t = 1)]
    queues: u16,
    /// Packet buffers in the generator's pool [default: 4096 × queues + 4095]
    #[arg(long)]
    mbufs: Option<u32>,
    /// Seconds to wait for the link (a memif server waits for its client),
    /// and then for the load balancer to answer ARP (at least 2)
    #[arg(long, default_value_t = 10.0)]
    link_timeout: f64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run_main(&args) {
        Ok(failed) if failed && args.strict => ExitCode::from(3),
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mplb-gen: {e}");
            ExitCode::from(2)
        }
    }
}

/// Runs and reports; true if a check failed.
fn run_main(args: &Args) -> Result<bool, String> {
    let settings = settings(args)?;
    let mix = Mix::parse(&args.mix)?;
    let expect = settings.expect;
    if expect == Expect::Mplb && args.lb_config.is_none() {
        return Err("--expect mplb needs --lb-config (which backends to expect)".into());
    }
    let config = match &args.lb_config {
        Some(p) => Some(mplb::config::Config::load(p).map_err(|e| e.to_string())?),
        None => None,
    };
    let plan = Plan::new(config.as_ref(), mix, args.flows, args.ipv6)?;
    for w in plan.warnings() {
        eprintln!("mplb-gen: warning: {w}");
    }
    if expect == Expect::Mplb {
        for v in plan.vips.iter().filter(|v| v.backends.is_empty()) {
            eprintln!(
                "mplb-gen: warning: VIP {} has no enabled backend; its frames will be dropped",
                v.name
            );
        }
    }
    let report = run::run(&settings, plan, |report| {
        print!("{}", report.table());
        if let Some(path) = &args.json {
            let text = serde_json::to_string_pretty(report).map_err(|e| e.to_string())?;
            std::fs::write(path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))?;
        }
        Ok(())
    })?;
    let c = &report.check;
    Ok(c.wrong_backend + c.flow_moved + c.bad_rewrite + c.unexpected > 0)
}

fn settings(a: &Args) -> Result<run::Settings, String> {
    if !(64..=1500).contains(&a.size) {
        return Err("--size must be 64..=1500".into());
    }
    if !(a.duration > 0.0 && a.duration <= 86_400.0) {
        return Err("--duration must be > 0 s (and at most a day)".into());
    }
    if !(0.0..=3600.0).contains(&a.warmup) || !(0.0..=3600.0).contains(&a.progress) {
        return Err("--warmup and --progress must be 0..=3600 s".into());
    }
    if !(0.0..=600.0).contains(&a.link_timeout) || !(0.0..=600.0).contains(&a.linger) {
        return Err("--link-timeout and --linger must be 0..=600 s".into());
    }
    if a.conn_packets != 0 && a.conn_packets < 4 {
        return Err("--conn-packets must be 0 or at least 4 (SYN, ACK, data, FIN)".into());
    }
    if !(1..=64).contains(&a.queues) {
        return Err("--queues must be 1..=64".into());
    }
    // Each queue pair can hold a ring of rx and one of tx buffers.
    let mbufs = a.mbufs.unwrap_or(4096 * u32::from(a.queues) + 4095);
    if mbufs < 1024 {
        return Err("--mbufs must be at least 1024".into());
    }
    let dut_mac = a.dut_mac.as_deref().map(parse_mac).transpose()?;
    Ok(run::Settings {
        port: a.port.clone(),
        eal: a.eal.split_whitespace().map(str::to_string).collect(),
        expect: match a.expect {
            ExpectArg::Mplb => Expect::Mplb,
            ExpectArg::Macswap => Expect::Macswap,
            ExpectArg::None => Expect::None,
        },
        size: a.size,
        rate: a.rate,
        duration: a.duration,
        warmup: a.warmup,
        progress: a.progress,
        conn_packets: a.conn_packets,
        mbufs,
        link_timeout: a.link_timeout,
        dut_mac,
        linger: a.linger,
        queues: a.queues,
    })
}

fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    let bad = || format!("--dut-mac: `{s}` is not a MAC address (aa:bb:cc:dd:ee:ff)");
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut m = [0u8; 6];
    for (o, p) in m.iter_mut().zip(parts) {
        if p.len() != 2 {
            return Err(bad());
        }
        *o = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    Ok(m)
}
