//! Reads what `check-host` compares with the config from `/proc` and
//! `/sys`, below a root directory (`/` for the real host). A file that
//! cannot be read is a fact too (absent, empty): probing never fails.

use std::path::{Path, PathBuf};

use crate::config::HostMemory;

/// The most CPUs a list in `/sys` or on the kernel command line may name;
/// a larger range is cut there (a damaged file must not allocate without
/// bound).
const MAX_CPUS: u32 = 8192;

/// What the host offers DPDK.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostFacts {
    /// `/proc/meminfo`; `None` if unreadable.
    pub memory: Option<HostMemory>,
    /// The default hugepage size, bytes (`Hugepagesize`); 0 if unknown.
    pub hugepage_bytes: u64,
    /// A hugetlbfs is mounted (`/proc/mounts`).
    pub hugetlbfs_mounted: bool,
    /// Hugepages of the default size reserved in all (`nr_hugepages`).
    pub hugepages_total: u64,
    /// NUMA nodes (`/sys/devices/system/node/node*`); empty if the kernel
    /// shows none.
    pub nodes: Vec<NodeFacts>,
    /// Online CPUs (`/sys/devices/system/cpu/online`); `None` if unreadable.
    pub online_cpus: Option<Vec<u32>>,
    /// `/proc/cmdline`.
    pub cmdline: String,
    /// Entries in `/sys/kernel/iommu_groups` (0: no IOMMU in use).
    pub iommu_groups: usize,
    /// The `vfio-pci` driver is loaded (`/sys/bus/pci/drivers/vfio-pci`).
    pub vfio_pci_loaded: bool,
    /// vfio's no-IOMMU mode is on
    /// (`/sys/module/vfio/parameters/enable_unsafe_noiommu_mode`).
    pub vfio_noiommu: bool,
    /// `/dev/net/tun` exists: kernel interfaces (exception paths) can be
    /// made.
    pub tun: bool,
    /// The PCI devices the config names, in its order.
    pub pci: Vec<PciFacts>,
}

/// One NUMA node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeFacts {
    pub id: u32,
    pub cpus: Vec<u32>,
    /// Hugepages of the default size reserved on this node.
    pub hugepages_total: u64,
    pub hugepages_free: u64,
}

/// One PCI device the config names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PciFacts {
    /// Full address, `0000:3b:00.0`.
    pub address: String,
    /// `/sys/bus/pci/devices/ADDRESS` exists.
    pub present: bool,
    /// The bound driver's name; `None` if unbound.
    pub driver: Option<String>,
    /// `numa_node`; `None` if unknown or -1 (no NUMA).
    pub numa_node: Option<u32>,
    /// Kernel network interfaces on it (`net/`), e.g. `eth2`.
    pub interfaces: Vec<String>,
}

impl HostFacts {
    /// Reads the facts below `root` for the PCI `addresses` (full form).
    pub fn probe(root: &Path, addresses: &[String]) -> HostFacts {
        let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap_or_default();
        let meminfo = read("proc/meminfo");
        let hugepage_bytes = meminfo_kib(&meminfo, "Hugepagesize").saturating_mul(1024);
        let size_dir = format!("hugepages-{}kB", hugepage_bytes / 1024);
        HostFacts {
            memory: HostMemory::from_meminfo(&meminfo),
            hugepage_bytes,
            hugetlbfs_mounted: read("proc/mounts")
                .lines()
                .any(|l| l.split_whitespace().nth(2) == Some("hugetlbfs")),
            hugepages_total: number(&read(&format!(
                "sys/kernel/mm/hugepages/{size_dir}/nr_hugepages"
            ))),
            nodes: nodes(root, &size_dir),
            online_cpus: std::fs::read_to_string(root.join("sys/devices/system/cpu/online"))
                .ok()
                .map(|s| cpu_list(&s)),
            cmdline: read("proc/cmdline").trim().to_string(),
            iommu_groups: std::fs::read_dir(root.join("sys/kernel/iommu_groups"))
                .map(|d| d.count())
                .unwrap_or(0),
            vfio_pci_loaded: root.join("sys/bus/pci/drivers/vfio-pci").is_dir(),
            vfio_noiommu: matches!(
                read("sys/module/vfio/parameters/enable_unsafe_noiommu_mode").trim(),
                "Y" | "1"
            ),
            tun: root.join("dev/net/tun").exists(),
            pci: addresses.iter().map(|a| pci(root, a)).collect(),
        }
    }

    /// The NUMA node of `cpu`, if the kernel shows nodes.
    pub fn node_of_cpu(&self, cpu: u32) -> Option<u32> {
        self.nodes
            .iter()
            .find(|n| n.cpus.contains(&cpu))
            .map(|n| n.id)
    }

    /// Where the hugepage count of the default size is set: for the whole
    /// host, or for one NUMA node.
    pub fn nr_hugepages_path(&self, node: Option<u32>) -> PathBuf {
        let size_dir = format!("hugepages-{}kB", self.hugepage_bytes / 1024);
        match node {
            None => PathBuf::from(format!("/sys/kernel/mm/hugepages/{size_dir}/nr_hugepages")),
            Some(n) => PathBuf::from(format!(
                "/sys/devices/system/node/node{n}/hugepages/{size_dir}/nr_hugepages"
            )),
        }
    }
}

fn nodes(root: &Path, size_dir: &str) -> Vec<NodeFacts> {
    let dir = root.join("sys/devices/system/node");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut nodes: Vec<NodeFacts> = entries
        .filter_map(|e| {
            let name = e.ok()?.file_name();
            let id: u32 = name.to_str()?.strip_prefix("node")?.parse().ok()?;
            let node = dir.join(format!("node{id}"));
            let read = |p: &str| std::fs::read_to_string(node.join(p)).unwrap_or_default();
            Some(NodeFacts {
                id,
                cpus: cpu_list(&read("cpulist")),
                hugepages_total: number(&read(&format!("hugepages/{size_dir}/nr_hugepages"))),
                hugepages_free: number(&read(&format!("hugepages/{size_dir}/free_hugepages"))),
            })
        })
        .collect();
    nodes.sort_by_key(|n| n.id);
    nodes
}

fn pci(root: &Path, address: &str) -> PciFacts {
    let dev = root.join("sys/bus/pci/devices").join(address);
    let driver = std::fs::read_link(dev.join("driver"))
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
    let numa_node = std::fs::read_to_string(dev.join("numa_node"))
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .and_then(|n| u32::try_from(n).ok());
    let mut interfaces: Vec<String> = std::fs::read_dir(dev.join("net"))
        .map(|d| {
            d.filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().into_owned()))
                .collect()
        })
        .unwrap_or_default();
    interfaces.sort();
    PciFacts {
        address: address.to_string(),
        present: dev.exists(),
        driver,
        numa_node,
        interfaces,
    }
}

/// The full PCI address a DPDK device name stands for (`0000:3b:00.0`,
/// `3b:00.0`, either with `,devargs`), or `None` for a vdev or other name.
pub fn pci_address(device: &str) -> Option<String> {
    let name = device.split(',').next().unwrap_or(device);
    let full = if name.len() == 7 {
        format!("0000:{name}")
    } else {
        name.to_string()
    };
    let b = full.as_bytes();
    let hex = |r: std::ops::Range<usize>| {
        b.get(r)
            .is_some_and(|s| s.iter().all(u8::is_ascii_hexdigit))
    };
    let shape = b.len() == 12
        && hex(0..4)
        && b[4] == b':'
        && hex(5..7)
        && b[7] == b':'
        && hex(8..10)
        && b[10] == b'.'
        && (b'0'..=b'7').contains(&b[11]);
    shape.then(|| full.to_ascii_lowercase())
}

/// `0-3,8,10-11` → `[0, 1, 2, 3, 8, 10, 11]`; words that are not CPU
/// numbers or ranges (`isolcpus=domain,managed_irq,2-5`) are skipped.
pub fn cpu_list(text: &str) -> Vec<u32> {
    let mut cpus = Vec::new();
    for part in text.trim().split(',') {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (a.trim().parse::<u32>(), b.trim().parse::<u32>()),
            None => (part.trim().parse::<u32>(), part.trim().parse::<u32>()),
        };
        if let (Ok(lo), Ok(hi)) = (lo, hi) {
            cpus.extend(lo..=hi.max(lo).min(MAX_CPUS));
        }
    }
    cpus.sort_unstable();
    cpus.dedup();
    cpus
}

/// The value of `key=` on a kernel command line (the last one wins).
pub fn cmdline_value<'a>(cmdline: &'a str, key: &str) -> Option<&'a str> {
    cmdline
        .split_whitespace()
        .filter_map(|w| w.strip_prefix(key)?.strip_prefix('='))
        .next_back()
}

fn meminfo_kib(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| {
            let rest = l.strip_prefix(key)?.strip_prefix(':')?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .unwrap_or(0)
}

fn number(text: &str) -> u64 {
    text.trim().parse().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pci_addresses_are_told_from_vdevs() {
        assert_eq!(pci_address("0000:3B:00.0").as_deref(), Some("0000:3b:00.0"));
        assert_eq!(pci_address("3b:00.1").as_deref(), Some("0000:3b:00.1"));
        assert_eq!(
            pci_address("0000:3b:00.0,rxq_cqe_comp_en=1").as_deref(),
            Some("0000:3b:00.0")
        );
        for vdev in [
            "net_pcap0",
            "net_null0,copy=1",
            "0000:3b:00.8",
            "",
            "zz:00.0",
        ] {
            assert_eq!(pci_address(vdev), None, "{vdev}");
        }
    }

    #[test]
    fn cpu_lists_with_ranges_flags_and_junk() {
        assert_eq!(cpu_list("0-3,8,10-11\n"), [0, 1, 2, 3, 8, 10, 11]);
        assert_eq!(cpu_list("domain,managed_irq,2-3"), [2, 3]);
        assert_eq!(cpu_list(""), Vec::<u32>::new());
        assert_eq!(cpu_list("5-2"), [5]);
        // A damaged range is cut, not allocated.
        assert_eq!(cpu_list("0-4294967295").len(), MAX_CPUS as usize + 1);
    }

    #[test]
    fn command_line_values() {
        let c = "BOOT_IMAGE=/vmlinuz isolcpus=2-5 intel_iommu=on iommu=pt isolcpus=2-7";
        assert_eq!(cmdline_value(c, "isolcpus"), Some("2-7"));
        assert_eq!(cmdline_value(c, "intel_iommu"), Some("on"));
        assert_eq!(cmdline_value(c, "nohz_full"), None);
    }
}
