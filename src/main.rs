//! The `mplb` command line.

#![forbid(unsafe_code)]

use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use mplb::config::Config;
use mplb::control::socket;
use mplb::engine::{self, RunOptions};
use mplb::host;

#[derive(Parser)]
#[command(
    name = "mplb",
    version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("MPLB_BUILD_INFO"), ")"),
    about = "Kernel-bypass L4 load balancer for Multipath TCP, on DPDK"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the load balancer: EAL, ports, one poll-mode worker per lcore.
    Run {
        /// The configuration file (TOML).
        #[arg(short, long)]
        config: PathBuf,
        /// Stop by itself after this many seconds (default: run until SIGINT/SIGTERM).
        #[arg(long, value_name = "SECONDS")]
        duration: Option<f64>,
        /// Print packet rates every this many seconds.
        #[arg(long, value_name = "SECONDS")]
        stats_interval: Option<f64>,
    },
    /// Parse and validate a configuration file; print a summary.
    CheckConfig {
        /// The configuration file (TOML).
        file: PathBuf,
    },
    /// Say what this host lacks to run a config: hugepages, NICs bound to a
    /// DPDK driver, IOMMU, online and isolated worker CPUs, NUMA placement
    /// of ports and workers; each with the commands that fix it. Exits
    /// non-zero when something mplb needs to start is missing.
    CheckHost {
        /// The configuration file (TOML).
        file: PathBuf,
        /// Reserve the hugepages found missing (writes nr_hugepages; root),
        /// then check again.
        #[arg(long)]
        reserve_hugepages: bool,
    },
    /// Show a running mplb's counters and backend states.
    Stats {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Leave out the table of every VIP's backends (with thousands of
        /// VIPs, most of the output).
        #[arg(long, conflicts_with = "vip")]
        no_backends: bool,
        /// List only the backends of the VIP of this name (as in the
        /// config), with that VIP's traffic.
        #[arg(long, value_name = "NAME")]
        vip: Option<String>,
        #[command(flatten)]
        target: Target,
    },
    /// Drain, disable or enable a backend of a running mplb.
    Backend {
        action: BackendAction,
        /// The backend's name, as in the config.
        name: String,
        #[command(flatten)]
        target: Target,
    },
    /// Make a running mplb re-read its config file (like SIGHUP); a broken
    /// file is rejected and the running config stays.
    Reload {
        #[command(flatten)]
        target: Target,
    },
    /// Take a running mplb out of service: withdraw every VIP from BGP,
    /// keep forwarding, and exit once no packet was forwarded to a VIP for
    /// `[drain] quiet_secs` (or after the deadline). Harmless twice.
    Drain {
        /// Exit after this many seconds even if traffic still comes
        /// (default: `[drain] deadline_secs`).
        #[arg(long, value_name = "SECS")]
        deadline: Option<u64>,
        /// Return only once the process has exited; exit 0 if it drained.
        #[arg(long)]
        wait: bool,
        #[command(flatten)]
        target: Target,
    },
    /// Withdraw every VIP from BGP without a running mplb: empty `[bgp]
    /// routes_file` and have BIRD re-read it. For after an mplb that could
    /// not withdraw them itself (killed, crashed); the Debian package's
    /// unit runs it after every exit (ExecStopPost). Without `[bgp]`,
    /// nothing to do.
    Withdraw {
        /// The configuration file (TOML).
        #[arg(short, long)]
        config: PathBuf,
    },
    /// Which backend a new flow would get from a running mplb.
    Lookup {
        protocol: Proto,
        /// The client's address.
        src: String,
        /// The client's port.
        sport: String,
        /// The VIP.
        dst: String,
        /// The VIP's port.
        dport: String,
        #[command(flatten)]
        target: Target,
    },
}

/// Which running mplb to talk to.
#[derive(Args)]
struct Target {
    /// Its control socket.
    #[arg(long, value_name = "PATH", default_value = "/run/mplb/mplb.sock")]
    socket: PathBuf,
    /// Or its config file, to take the socket path from `[management]`.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum BackendAction {
    /// No new flows; established plain-TCP flows and MPTCP joins stay.
    Drain,
    /// Nothing new at all.
    Disable,
    /// Undo drain or disable.
    Enable,
}

#[derive(Clone, Copy, ValueEnum)]
enum Proto {
    Tcp,
    Udp,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig { file } => match Config::load(&file) {
            Ok(config) => output(&format!("{}: ok\n{}", file.display(), config.summary())),
            Err(e) => fail(&e.to_string()),
        },
        Command::CheckHost {
            file,
            reserve_hugepages,
        } => check_host(&file, reserve_hugepages),
        Command::Run {
            config,
            duration,
            stats_interval,
        } => run(&config, duration, stats_interval),
        Command::Stats {
            json,
            no_backends,
            vip,
            target,
        } => {
            let mut request = String::from("stats");
            if json {
                request += " json";
            }
            if no_backends {
                request += " no-backends";
            }
            if let Some(name) = vip {
                // The control socket's requests are words on one line.
                if name.is_empty() || name.contains(char::is_whitespace) {
                    return fail(&format!("--vip `{name}`: a VIP name is one word"));
                }
                request += &format!(" vip {name}");
            }
            client(&target, &request)
        }
        Command::Backend {
            action,
            name,
            target,
        } => {
            let verb = match action {
                BackendAction::Drain => "drain",
                BackendAction::Disable => "disable",
                BackendAction::Enable => "enable",
            };
            client(&target, &format!("backend {verb} {name}"))
        }
        Command::Reload { target } => client(&target, "reload"),
        Command::Drain {
            deadline,
            wait,
            target,
        } => drain(&target, deadline, wait),
        Command::Withdraw { config } => withdraw(&config),
        Command::Lookup {
            protocol,
            src,
            sport,
            dst,
            dport,
            target,
        } => {
            let proto = match protocol {
                Proto::Tcp => "tcp",
                Proto::Udp => "udp",
            };
            client(
                &target,
                &format!("lookup {proto} {src} {sport} {dst} {dport}"),
            )
        }
    }
}

fn withdraw(path: &Path) -> ExitCode {
    use mplb::control::bgp::{Withdrawn, withdraw_all};
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(e) => return fail(&e.to_string()),
    };
    let Some(bgp) = config.bgp else {
        return output(&format!(
            "{}: no [bgp]: nothing announced, nothing to withdraw\n",
            path.display()
        ));
    };
    match withdraw_all(&bgp) {
        Ok(Withdrawn::Told) => output(&format!(
            "every VIP withdrawn: {} emptied, BIRD at {} re-read it\n",
            bgp.routes_file.display(),
            bgp.control_socket.display()
        )),
        Ok(Withdrawn::SpeakerAbsent) => output(&format!(
            "{} emptied; BIRD is not running (no {}), so it announces nothing when it starts\n",
            bgp.routes_file.display(),
            bgp.control_socket.display()
        )),
        Err(e) => fail(&format!("VIPs may still be announced: {e}")),
    }
}

/// Writes `text` to stdout. A reader that went away (`mplb stats | head -1`,
/// `| true`) is not an error: there is nobody left to tell, so the command
/// ends quietly with success. The Rust runtime ignores SIGPIPE, which stays
/// so: a closed pipe must never kill `mplb run` (its workers, hugepage files
/// and control socket would be left behind), and the CLI commands see it as
/// this error instead.
fn output(text: &str) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            drop(out);
            fail(&format!("writing output: {e}"))
        }
    }
}

fn fail(message: &str) -> ExitCode {
    // Not `eprintln!`: it panics when stderr is closed.
    let _ = writeln!(std::io::stderr(), "error: {message}");
    ExitCode::FAILURE
}

fn run(path: &Path, duration: Option<f64>, stats_interval: Option<f64>) -> ExitCode {
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(e) => return fail(&e.to_string()),
    };
    let (duration, stats_interval) = match (
        seconds("--duration", duration),
        seconds("--stats-interval", stats_interval),
    ) {
        (Ok(d), Ok(s)) => (d, s),
        (Err(e), _) | (_, Err(e)) => return fail(&e),
    };
    match engine::run(
        path,
        &config,
        &RunOptions {
            duration,
            stats_interval,
        },
    ) {
        Ok(report) => {
            // Stdout gone (`mplb run | head`) does not turn a clean stop
            // into a failure.
            let _ = output(&format!(
                "mbufs in use: {} at start, {} at end\n",
                report.mbufs_in_use_at_start, report.mbufs_in_use_at_end
            ));
            if report.leaked_mbufs() > 0 {
                return fail(&format!("{} mbufs leaked", report.leaked_mbufs()));
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

fn check_host(path: &Path, reserve: bool) -> ExitCode {
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(e) => return fail(&e.to_string()),
    };
    let mut findings = host::check_this_host(&config);
    let mut text = String::new();
    if reserve {
        let done = host::reserve_hugepages(&findings);
        if !done.is_empty() {
            text = done.join("\n") + "\n";
            findings = host::check_this_host(&config);
        }
    }
    text += &host::report(&findings);
    let status = output(&text);
    if host::count(&findings, host::Severity::Missing) > 0 {
        ExitCode::FAILURE
    } else {
        status
    }
}

fn socket_path(target: &Target) -> Result<PathBuf, String> {
    match &target.config {
        Some(file) => Config::load(file)
            .map(|c| c.management.socket)
            .map_err(|e| e.to_string()),
        None => Ok(target.socket.clone()),
    }
}

fn client(target: &Target, request: &str) -> ExitCode {
    let socket_path = match socket_path(target) {
        Ok(p) => p,
        Err(e) => return fail(&e),
    };
    match socket::call(&socket_path, request) {
        Ok(mut body) => {
            if !body.is_empty() && !body.ends_with('\n') {
                body.push('\n');
            }
            output(&body)
        }
        Err(e) => fail(&e),
    }
}

/// `mplb drain`: asks for the drain, prints the answer; with `wait`, waits
/// for the drain's end and then for the process to exit.
fn drain(target: &Target, deadline: Option<u64>, wait: bool) -> ExitCode {
    let socket_path = match socket_path(target) {
        Ok(p) => p,
        Err(e) => return fail(&e),
    };
    let request = match deadline {
        Some(s) => format!("drain deadline {s}"),
        None => "drain".to_string(),
    };
    let started = match socket::call(&socket_path, &request) {
        Ok(body) => body,
        Err(e) => return fail(&e),
    };
    let status = output(&started);
    if !wait {
        return status;
    }
    let ended = match socket::call(&socket_path, "drain wait") {
        Ok(body) => body,
        Err(e) => return fail(&format!("waiting for the drain: {e}")),
    };
    let _ = output(&ended);
    // The pid the first answer names: wait for that process to be gone.
    let pid = started
        .split("(pid ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .and_then(|p| p.parse::<u32>().ok());
    let Some(pid) = pid else {
        return fail(&format!("no pid in mplb's answer: {started:?}"));
    };
    let limit = std::time::Instant::now() + Duration::from_secs(120);
    while running(pid) {
        if std::time::Instant::now() > limit {
            return fail(&format!(
                "mplb (pid {pid}) drained but has not exited after 120 s"
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    output(&format!("mplb (pid {pid}) exited\n"))
}

/// Whether process `pid` runs: exists and is not a zombie (exited, not yet
/// reaped by its parent).
fn running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name, which is in parentheses.
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_none_or(|(_, rest)| !rest.starts_with(['Z', 'X'])),
        Err(_) => false,
    }
}

fn seconds(flag: &str, value: Option<f64>) -> Result<Option<Duration>, String> {
    match value {
        None => Ok(None),
        Some(s) if s.is_finite() && s > 0.0 && s < 1e9 => Ok(Some(Duration::from_secs_f64(s))),
        Some(s) => Err(format!(
            "{flag} must be a positive number of seconds, not {s}"
        )),
    }
}
