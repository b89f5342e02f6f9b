//! DPDK's EAL command line, derived from `[dpdk]` and `[workers]`.

use super::Config;

impl Config {
    /// The full EAL command line: program name, lcores, then the configured
    /// args. Production: `-l main,workers...`, each lcore on the CPU of its
    /// number. Test mode (`workers.cpus`): `--lcores=main@main,l@cpu,...`,
    /// which lets several worker lcores share a CPU.
    pub fn eal_command_line(&self) -> Vec<String> {
        let main = self.dpdk.main_lcore;
        let (flag, list) = if self.workers.cpus.is_empty() {
            let mut lcores = vec![main];
            lcores.extend(self.workers.lcores.iter().copied());
            let list: Vec<String> = lcores.iter().map(u32::to_string).collect();
            ("-l".to_string(), list.join(","))
        } else {
            let mut list = vec![format!("{main}@{main}")];
            list.extend(
                (self.workers.lcores.iter())
                    .zip(&self.workers.cpus)
                    .map(|(l, c)| format!("{l}@{c}")),
            );
            ("--lcores".to_string(), list.join(","))
        };
        let mut args = vec![
            "mplb".to_string(),
            flag,
            list,
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

/// Where DPDK's memory comes from, from the EAL arguments: `--no-huge`, and
/// the amount `-m MB` or `--socket-mem MB,MB,...` fixes (DPDK's default of
/// 64 MiB with `--no-huge` and neither).
/// DPDK memory of an EAL started with `--no-huge` and no `-m` (DPDK's
/// `MEMSIZE_IF_NO_HUGE_PAGE`).
pub const NO_HUGE_DEFAULT_BYTES: u64 = 64 << 20;

/// Where DPDK's memory comes from, as the EAL arguments say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EalMemory {
    /// `--no-huge`: ordinary memory, a fixed amount.
    pub no_huge: bool,
    /// Bytes fixed by `-m` or `--socket-mem` (or DPDK's default with
    /// `--no-huge`); `None`: as many free hugepages as there are.
    pub fixed: Option<u64>,
}

impl Config {
    /// Where DPDK's memory comes from.
    pub fn eal_memory(&self) -> EalMemory {
        eal_memory(&self.dpdk.eal_args)
    }

    /// The hugepage memory `--socket-mem` asks of each NUMA node, in bytes,
    /// node 0 first; empty without `--socket-mem`.
    pub fn socket_mem(&self) -> Vec<u64> {
        socket_mem(&self.dpdk.eal_args)
    }
}

pub(super) fn socket_mem(args: &[String]) -> Vec<u64> {
    let mut out = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let value = if a == "--socket-mem" {
            it.next().map(String::as_str)
        } else {
            a.strip_prefix("--socket-mem=")
        };
        if let Some(v) = value {
            out = v
                .split(',')
                .map(|mb| {
                    mb.trim()
                        .parse::<u64>()
                        .unwrap_or(0)
                        .saturating_mul(1 << 20)
                })
                .collect();
        }
    }
    out
}

pub(super) fn eal_memory(args: &[String]) -> EalMemory {
    let mut no_huge = false;
    let mut fixed: Option<u64> = None;
    let mib = |v: &str| -> Option<u64> {
        v.split(',')
            .map(|p| p.trim().parse::<u64>().ok())
            .try_fold(0u64, |a, p| Some(a.saturating_add(p?)))
            .map(|m| m.saturating_mul(1 << 20))
    };
    let mut it = args.iter().peekable();
    while let Some(a) = it.next() {
        let value = |flag: &str, it: &mut std::iter::Peekable<std::slice::Iter<'_, String>>| {
            if a == flag {
                it.next().cloned()
            } else {
                a.strip_prefix(flag)
                    .map(|v| v.strip_prefix('=').unwrap_or(v).to_string())
            }
        };
        if a == "--no-huge" {
            no_huge = true;
        } else if a.starts_with("--socket-mem") {
            if let Some(v) = value("--socket-mem", &mut it) {
                fixed = mib(&v).or(fixed);
            }
        } else if a.starts_with("-m") && !a.starts_with("--") {
            if let Some(v) = value("-m", &mut it) {
                fixed = mib(&v).or(fixed);
            }
        }
    }
    if no_huge && fixed.is_none() {
        fixed = Some(NO_HUGE_DEFAULT_BYTES);
    }
    EalMemory { no_huge, fixed }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mem(args: &[&str]) -> (bool, Option<u64>) {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let m = eal_memory(&args);
        (m.no_huge, m.fixed)
    }

    #[test]
    fn eal_memory_from_the_arguments() {
        assert_eq!(mem(&["--no-pci"]), (false, None));
        assert_eq!(mem(&["--no-huge"]), (true, Some(64 << 20)));
        assert_eq!(mem(&["--no-huge", "-m", "512"]), (true, Some(512 << 20)));
        assert_eq!(mem(&["-m512", "--no-huge"]), (true, Some(512 << 20)));
        assert_eq!(mem(&["--socket-mem=1024,1024"]), (false, Some(2048 << 20)));
        assert_eq!(mem(&["--socket-mem", "256"]), (false, Some(256 << 20)));
    }

    #[test]
    fn socket_mem_per_node() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(socket_mem(&args(&["--socket-mem=0,2048"])), [0, 2048 << 20]);
        assert_eq!(socket_mem(&args(&["--socket-mem", "512"])), [512 << 20]);
        assert_eq!(socket_mem(&args(&["-m", "512"])), Vec::<u64>::new());
    }
}
