//! DPDK's EAL command line, derived from `[dpdk]` and `[workers]`.

use super::Config;

impl Config {
    /// The full EAL command line: program name, lcores, then the configured args.
    pub fn eal_command_line(&self) -> Vec<String> {
        let mut lcores = vec![self.dpdk.main_lcore];
        lcores.extend(self.workers.lcores.iter().copied());
        let list: Vec<String> = lcores.iter().map(u32::to_string).collect();
        let mut args = vec![
            "mplb".to_string(),
            "-l".to_string(),
            list.join(","),
            "--main-lcore".to_string(),
            self.dpdk.main_lcore.to_string(),
        ];
        args.extend(self.dpdk.eal_args.iter().cloned());
        args
    }
}

/// Whether `arg` sets the lcores, which come from `[workers]` and
/// `dpdk.main_lcore` instead.
pub(super) fn sets_lcores(arg: &str) -> bool {
    let flag = arg.split('=').next().unwrap_or(arg);
    matches!(flag, "-l" | "-c" | "--lcores" | "--main-lcore")
        || arg.starts_with("-l") && arg.len() > 2 && !arg.starts_with("--")
}
