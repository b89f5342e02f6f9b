//! What a configuration needs in memory, and what the host can give.
//!
//! `mplb run` allocates everything up front: a flow table per worker, the
//! token table, the packet-buffer pool and a Maglev table per VIP. The sizes
//! below are the ones those allocations use, so `check-config` (and `run`,
//! before the EAL starts) can refuse a config that cannot fit instead of
//! letting the allocation abort the process.
//!
//! Decisions:
//! * more than the host's memory (`MemTotal` of `/proc/meminfo`, less the
//!   hugepage pool when the EAL runs with `--no-huge`, which cannot use it) is
//!   an **error**;
//! * a mempool larger than the DPDK memory the EAL arguments themselves fix
//!   (`--no-huge` gets `-m`/`--socket-mem` or DPDK's 64 MiB default) is an
//!   **error**: the pool cannot be created whatever the host;
//! * too few free hugepages is a **warning**: hugepages can be reserved
//!   after the check, the host that checks is not always the one that runs,
//!   and flow tables fall back to ordinary memory (with a `warn` log line).

use super::Config;
use super::eal::EalMemory;

/// Bytes per flow-table entry (a 384-byte bucket holds 8).
pub const FLOW_ENTRY_BYTES: u64 = 48;
/// Bytes per token-table entry.
pub const TOKEN_ENTRY_BYTES: u64 = 8;
/// Bytes per packet buffer: DPDK's mbuf header (128), headroom (128), data
/// room (2048) and the mempool's per-object header, about 2.3 KiB.
pub const MBUF_BYTES: u64 = 2368;
/// Bytes per Maglev table slot (a backend id).
pub const MAGLEV_SLOT_BYTES: u64 = 2;

/// Memory a configuration needs, in bytes, by consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryNeed {
    /// Every worker's flow table.
    pub flow_tables: u64,
    pub token_table: u64,
    /// The packet-buffer pool (always DPDK memory).
    pub mempool: u64,
    /// The VIPs' Maglev tables.
    pub maglev: u64,
}

impl MemoryNeed {
    pub fn total(&self) -> u64 {
        self.flow_tables
            .saturating_add(self.token_table)
            .saturating_add(self.mempool)
            .saturating_add(self.maglev)
    }
}

/// The host's memory, from `/proc/meminfo`, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HostMemory {
    /// `MemTotal`.
    pub total: u64,
    /// `Hugetlb`: memory reserved for hugepages of every size (not usable
    /// by ordinary allocations).
    pub hugetlb: u64,
    /// `HugePages_Free` × `Hugepagesize`: free hugepages of the default size.
    pub hugepages_free: u64,
}

impl HostMemory {
    /// This host's memory; `None` if `/proc/meminfo` cannot be read.
    pub fn probe() -> Option<HostMemory> {
        let text = std::fs::read_to_string("/proc/meminfo").ok()?;
        HostMemory::from_meminfo(&text)
    }

    /// Parses `/proc/meminfo` text; `None` without a `MemTotal` line.
    pub fn from_meminfo(text: &str) -> Option<HostMemory> {
        let field = |name: &str| -> Option<u64> {
            text.lines().find_map(|l| {
                let rest = l.strip_prefix(name)?.strip_prefix(':')?;
                let mut words = rest.split_whitespace();
                let n: u64 = words.next()?.parse().ok()?;
                Some(match words.next() {
                    Some("kB") => n.saturating_mul(1024),
                    _ => n,
                })
            })
        };
        let total = field("MemTotal")?;
        let page = field("Hugepagesize").unwrap_or(0);
        let free_pages = field("HugePages_Free").unwrap_or(0);
        let hugepages_free = free_pages.saturating_mul(page);
        let hugetlb = field("Hugetlb")
            .unwrap_or_else(|| field("HugePages_Total").unwrap_or(0).saturating_mul(page));
        Some(HostMemory {
            total,
            hugetlb,
            hugepages_free,
        })
    }
}

impl Config {
    /// The memory this configuration needs (see the module doc of
    /// `memory.rs` for the sizes).
    pub fn memory_need(&self) -> MemoryNeed {
        memory_need(
            self.workers.lcores.len(),
            self.flow_table.capacity,
            self.token_table.capacity,
            self.dpdk.mempool_size,
            self.vips.iter().map(|v| v.table_size),
        )
    }

    /// Need against what this host has, for `check-config`: one line of
    /// figures, then a line per warning (each starting `warning:`).
    pub fn memory_report(&self, host: Option<&HostMemory>) -> String {
        let need = self.memory_need();
        let eal = self.eal_memory();
        let mut s = format!(
            "memory: needs {} (flow tables {} = {} workers x {} entries x {FLOW_ENTRY_BYTES} B, token table {}, mempool {}, maglev {})",
            size(need.total()),
            size(need.flow_tables),
            self.workers.lcores.len(),
            self.flow_table.capacity,
            size(need.token_table),
            size(need.mempool),
            size(need.maglev),
        );
        match (eal.no_huge, eal.fixed) {
            (true, Some(b)) => s += &format!("; EAL --no-huge with {} of DPDK memory", size(b)),
            (false, Some(b)) => s += &format!("; EAL takes {} of hugepages", size(b)),
            (_, None) => {}
        }
        match host {
            Some(h) => {
                s += &format!(
                    "; host has {} (hugepages {} reserved, {} free)\n",
                    size(h.total),
                    size(h.hugetlb),
                    size(h.hugepages_free)
                );
                for w in hugepage_warnings(&need, eal, h) {
                    s += &format!("warning: {w}\n");
                }
            }
            None => s += "; host memory unknown (no /proc/meminfo)\n",
        }
        s
    }
}

pub(super) fn memory_need(
    workers: usize,
    flow_capacity: usize,
    token_capacity: usize,
    mempool_size: u32,
    table_sizes: impl Iterator<Item = u32>,
) -> MemoryNeed {
    let n = |x: usize| u64::try_from(x).unwrap_or(u64::MAX);
    MemoryNeed {
        flow_tables: n(workers)
            .saturating_mul(n(flow_capacity))
            .saturating_mul(FLOW_ENTRY_BYTES),
        token_table: n(token_capacity).saturating_mul(TOKEN_ENTRY_BYTES),
        mempool: u64::from(mempool_size).saturating_mul(MBUF_BYTES),
        maglev: table_sizes.fold(0u64, |a, t| {
            a.saturating_add(u64::from(t).saturating_mul(MAGLEV_SLOT_BYTES))
        }),
    }
}

/// Ordinary memory the process can use: all of it, less the hugepage pool
/// when the EAL cannot use hugepages.
pub(super) fn usable(host: &HostMemory, eal: EalMemory) -> u64 {
    if eal.no_huge {
        host.total.saturating_sub(host.hugetlb)
    } else {
        host.total
    }
}

/// What the process takes in all: with `--no-huge` the EAL maps its whole
/// fixed amount of ordinary memory, which holds the mempool.
pub(super) fn total_need(need: &MemoryNeed, eal: EalMemory) -> u64 {
    match (eal.no_huge, eal.fixed) {
        (true, Some(fixed)) => need
            .total()
            .saturating_sub(need.mempool)
            .saturating_add(fixed.max(need.mempool)),
        _ => need.total(),
    }
}

/// Warnings when the EAL uses hugepages and they are short.
fn hugepage_warnings(need: &MemoryNeed, eal: EalMemory, host: &HostMemory) -> Vec<String> {
    if eal.no_huge {
        return Vec::new();
    }
    let have = eal
        .fixed
        .map_or(host.hugepages_free, |f| f.min(host.hugepages_free));
    let mut out = Vec::new();
    if need.mempool > have {
        out.push(format!(
            "dpdk.mempool_size: the mempool needs {} of hugepages, {} are free: `mplb run` fails unless more are reserved",
            size(need.mempool),
            size(have)
        ));
    } else if need.mempool.saturating_add(need.flow_tables) > have {
        out.push(format!(
            "flow_table.capacity: the flow tables need {} of hugepages beside the mempool's {}, {} are free: they fall back to ordinary memory (more TLB misses per packet)",
            size(need.flow_tables),
            size(need.mempool),
            size(have)
        ));
    }
    if let Some(f) = eal.fixed {
        if f > host.hugepages_free {
            out.push(format!(
                "dpdk.eal_args: the EAL asks for {} of hugepages, {} are free",
                size(f),
                size(host.hugepages_free)
            ));
        }
    }
    out
}

/// Bytes for people: `48 MiB`, `1.5 TiB`.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 || v >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0} {}", UNITS[u])
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_is_parsed_in_bytes() {
        let h = HostMemory::from_meminfo(
            "MemTotal:       24683784 kB\nHugePages_Total:    1536\nHugePages_Free:     1024\nHugepagesize:       2048 kB\nHugetlb:         3145728 kB\n",
        )
        .expect("parses");
        assert_eq!(h.total, 24683784 * 1024);
        assert_eq!(h.hugepages_free, 1024 * 2048 * 1024);
        assert_eq!(h.hugetlb, 3 << 30);
        assert_eq!(HostMemory::from_meminfo("Hugetlb: 0 kB\n"), None);
    }

    #[test]
    fn need_is_entries_times_entry_size() {
        let n = memory_need(4, 1 << 20, 1 << 18, 16383, [65537u32].into_iter());
        assert_eq!(n.flow_tables, 4 * (1 << 20) * 48);
        assert_eq!(n.token_table, (1 << 18) * 8);
        assert_eq!(n.mempool, 16383 * MBUF_BYTES);
        assert_eq!(n.maglev, 65537 * 2);
        // No overflow, whatever the figures.
        let huge = memory_need(usize::MAX, usize::MAX, usize::MAX, u32::MAX, [].into_iter());
        assert_eq!(huge.total(), u64::MAX);
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(size(48 << 20), "48 MiB");
        assert_eq!(size(3 << 39), "1.5 TiB");
        assert_eq!(size(100), "100 B");
    }
}
