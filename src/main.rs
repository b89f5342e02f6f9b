//! The `mplb` command line.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use mplb::config::Config;
use mplb::dpdk::engine::{self, RunOptions};

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig { file } => match Config::load(&file) {
            Ok(config) => {
                print!("{}: ok\n{}", file.display(), config.summary());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Run {
            config,
            duration,
            stats_interval,
        } => {
            let config = match Config::load(&config) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let (duration, stats_interval) = match (
                seconds("--duration", duration),
                seconds("--stats-interval", stats_interval),
            ) {
                (Ok(d), Ok(s)) => (d, s),
                (Err(e), _) | (_, Err(e)) => {
                    eprintln!("error: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match engine::run(
                &config,
                &RunOptions {
                    duration,
                    stats_interval,
                },
            ) {
                Ok(report) => {
                    println!(
                        "mbufs in use: {} at start, {} at end",
                        report.mbufs_in_use_at_start, report.mbufs_in_use_at_end
                    );
                    if report.leaked_mbufs() > 0 {
                        eprintln!("error: {} mbufs leaked", report.leaked_mbufs());
                        return ExitCode::FAILURE;
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
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
