//! The config against the host's facts: hugepages, CPUs, NICs and NUMA
//! placement. No I/O: the facts come from [`super::probe`].

use super::probe::{HostFacts, PciFacts, cmdline_value, cpu_list, pci_address};
use super::{Finding, Reserve};
use crate::config::Config;
use crate::config::size;

/// DPDK memory beyond what mplb allocates itself (rings, ethdev and
/// mempool headers, memzones): a margin for the hugepage count, not a
/// measured figure.
pub const EAL_OVERHEAD_BYTES: u64 = 64 << 20;

/// Drivers a DPDK PMD takes a NIC from.
const DPDK_DRIVERS: [&str; 3] = ["vfio-pci", "uio_pci_generic", "igb_uio"];
/// Kernel drivers whose NICs DPDK shares without rebinding (bifurcated).
const BIFURCATED_DRIVERS: [&str; 2] = ["mlx5_core", "mlx4_core"];

/// Everything `check-host` says about running `config` on this host.
pub fn check(config: &Config, host: &HostFacts) -> Vec<Finding> {
    let mut out = hugepages(config, host);
    out.extend(cpus(config, host));
    out.extend(ports(config, host));
    out.extend(kernel_interfaces(config, host));
    out
}

/// A port's exception path needs the kernel's tun driver (net_tap).
fn kernel_interfaces(config: &Config, host: &HostFacts) -> Vec<Finding> {
    let names: Vec<&str> = (config.ports.iter())
        .filter_map(|p| p.kernel_interface.as_deref())
        .collect();
    if names.is_empty() {
        return Vec::new();
    }
    let what = format!("kernel interface(s) {}", names.join(", "));
    if host.tun {
        return vec![Finding::ok(format!("{what}: /dev/net/tun is there"))];
    }
    vec![Finding::missing(
        format!("{what}: no /dev/net/tun, mplb cannot make them"),
        "modprobe tun\npersist: echo tun > /etc/modules-load.d/tun.conf".into(),
    )]
}

/// The CPU each worker lcore runs on (its own number, or `workers.cpus`).
fn worker_cpus(config: &Config) -> Vec<u32> {
    if config.workers.cpus.is_empty() {
        config.workers.lcores.clone()
    } else {
        config.workers.cpus.clone()
    }
}

fn hugepages(config: &Config, host: &HostFacts) -> Vec<Finding> {
    let eal = config.eal_memory();
    if eal.no_huge {
        return vec![Finding::advice(
            "EAL runs with --no-huge: no hugepages needed (tests and demos; NIC drivers need hugepages for DMA, and flow tables on ordinary pages cost TLB misses)".into(),
            "production: remove --no-huge from [dpdk] eal_args".into(),
        )];
    }
    let page = host.hugepage_bytes;
    if page == 0 {
        return vec![Finding::missing(
            "hugepages: the kernel shows none (no Hugepagesize in /proc/meminfo)".into(),
            "a kernel built with hugetlbfs support (every Debian kernel is)".into(),
        )];
    }
    let mut out = Vec::new();
    if !host.hugetlbfs_mounted {
        out.push(Finding::missing(
            "hugepages: no hugetlbfs is mounted".into(),
            "mkdir -p /dev/hugepages && mount -t hugetlbfs nodev /dev/hugepages\n(systemd mounts it at boot: dev-hugepages.mount)".into(),
        ));
    }
    let need = config.memory_need();
    let (bytes, why) = match eal.fixed {
        Some(f) => (f, "as -m/--socket-mem fix".to_string()),
        None => (
            need.total().saturating_add(EAL_OVERHEAD_BYTES),
            format!(
                "flow tables {}, token table {}, mempool {}, maglev {}, DPDK's own {}",
                size(need.flow_tables),
                size(need.token_table),
                size(need.mempool),
                size(need.maglev),
                size(EAL_OVERHEAD_BYTES)
            ),
        ),
    };
    let pages = bytes.div_ceil(page);
    let free = host.memory.map_or(0, |m| m.hugepages_free) / page;
    let page_size = size(page);
    if free >= pages {
        out.push(Finding::ok(format!(
            "hugepages: {free} of {page_size} free, the config needs {pages} ({why})"
        )));
    } else {
        let target = host.hugepages_total.saturating_add(pages - free);
        let path = host.nr_hugepages_path(None);
        let mut f = Finding::missing(
            format!(
                "hugepages: the config needs {pages} of {page_size} ({}: {why}), {free} are free",
                size(bytes)
            ),
            format!(
                "echo {target} > {}\npersist: echo 'vm.nr_hugepages = {target}' > /etc/sysctl.d/80-mplb-hugepages.conf\nor: mplb check-host --reserve-hugepages CONFIG (what the service runs before mplb)",
                path.display()
            ),
        );
        f.reserve = Some(Reserve {
            path,
            pages: target,
        });
        out.push(f);
    }
    out.extend(socket_mem(config, host, page));
    out
}

/// `--socket-mem` asks each NUMA node for its share.
fn socket_mem(config: &Config, host: &HostFacts, page: u64) -> Vec<Finding> {
    if host.nodes.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (node, bytes) in config.socket_mem().into_iter().enumerate() {
        let Ok(node) = u32::try_from(node) else {
            break;
        };
        if bytes == 0 {
            continue;
        }
        let Some(n) = host.nodes.iter().find(|n| n.id == node) else {
            out.push(Finding::missing(
                format!(
                    "--socket-mem asks NUMA node {node} for {}, this host has no node {node}",
                    size(bytes)
                ),
                "one --socket-mem entry per node of this host (lscpu shows them)".into(),
            ));
            continue;
        };
        let pages = bytes.div_ceil(page);
        if n.hugepages_free < pages {
            let target = n.hugepages_total.saturating_add(pages - n.hugepages_free);
            let path = host.nr_hugepages_path(Some(node));
            let mut f = Finding::missing(
                format!(
                    "hugepages on NUMA node {node}: --socket-mem asks {pages}, {} are free there",
                    n.hugepages_free
                ),
                format!("echo {target} > {}", path.display()),
            );
            f.reserve = Some(Reserve {
                path,
                pages: target,
            });
            out.push(f);
        }
    }
    out
}

fn cpus(config: &Config, host: &HostFacts) -> Vec<Finding> {
    let mut out = Vec::new();
    let main = config.dpdk.main_lcore;
    let workers = worker_cpus(config);
    if let Some(online) = &host.online_cpus {
        let offline: Vec<u32> = std::iter::once(main)
            .chain(workers.iter().copied())
            .filter(|c| !online.contains(c))
            .collect();
        if offline.is_empty() {
            out.push(Finding::ok(format!(
                "CPUs: main lcore {main} and workers on CPUs {} are online",
                list(&workers)
            )));
        } else {
            out.push(Finding::missing(
                format!(
                    "CPUs {} of the config are not online on this host (online: {})",
                    list(&offline),
                    list(online)
                ),
                "choose [workers] lcores and [dpdk] main_lcore among the online CPUs (lscpu -e)"
                    .into(),
            ));
        }
    }
    if config.workers.share_cpus(main) {
        out.push(Finding::advice(
            "[workers] cpus: test mode, workers share CPUs".into(),
            "production: remove `cpus`, one dedicated core per worker".into(),
        ));
        return out;
    }
    let isolated = cmdline_value(&host.cmdline, "isolcpus").map_or(Vec::new(), cpu_list);
    let not_isolated: Vec<u32> = workers
        .iter()
        .copied()
        .filter(|c| !isolated.contains(c))
        .collect();
    if not_isolated.is_empty() {
        out.push(Finding::ok(format!(
            "CPU isolation: workers' CPUs {} are in isolcpus",
            list(&workers)
        )));
    } else {
        let l = list(&workers);
        out.push(Finding::advice(
            format!(
                "CPU isolation: workers' CPUs {} share their cores with the kernel's other work (not in isolcpus)",
                list(&not_isolated)
            ),
            format!(
                "add `isolcpus={l} nohz_full={l} rcu_nocbs={l}` to GRUB_CMDLINE_LINUX in /etc/default/grub, then update-grub and reboot"
            ),
        ));
    }
    out
}

fn ports(config: &Config, host: &HostFacts) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut needs_vfio = false;
    for p in &config.ports {
        let Some(address) = pci_address(&p.device) else {
            if p.device.starts_with("net_") {
                out.push(Finding::ok(format!(
                    "port {}: {} is a DPDK virtual device, no NIC needed",
                    p.name, p.device
                )));
            } else {
                out.push(Finding::advice(
                    format!(
                        "port {}: cannot check device {:?} (neither a PCI address nor a net_ vdev)",
                        p.name, p.device
                    ),
                    "see `dpdk-devbind.py --status`".into(),
                ));
            }
            continue;
        };
        let Some(pci) = host.pci.iter().find(|f| f.address == address) else {
            continue;
        };
        if !pci.present {
            out.push(Finding::missing(
                format!("port {}: PCI device {address} is not on this host", p.name),
                "`dpdk-devbind.py --status` lists the NICs; put one's address in [[port]] device and the EAL's -a"
                    .into(),
            ));
            continue;
        }
        let (finding, vfio) = driver(&p.name, pci);
        needs_vfio |= vfio;
        out.push(finding);
        out.extend(numa(config, host, &p.name, pci));
    }
    if needs_vfio {
        out.extend(vfio(host));
    }
    out
}

/// Whether the NIC is on a driver DPDK can use; and whether vfio matters.
fn driver(port: &str, pci: &PciFacts) -> (Finding, bool) {
    let address = &pci.address;
    match pci.driver.as_deref() {
        Some("vfio-pci") => (
            Finding::ok(format!("port {port}: {address} is bound to vfio-pci")),
            true,
        ),
        Some(d) if DPDK_DRIVERS.contains(&d) => (
            Finding::advice(
                format!(
                    "port {port}: {address} is bound to {d}, which gives the NIC no IOMMU protection"
                ),
                format!("dpdk-devbind.py --bind=vfio-pci {address}"),
            ),
            false,
        ),
        Some(d) if BIFURCATED_DRIVERS.contains(&d) => (
            Finding::ok(format!(
                "port {port}: {address} stays on {d} (DPDK's mlx PMDs share it with the kernel)"
            )),
            false,
        ),
        other => {
            let what = match other {
                Some(d) => format!("bound to the kernel's {d}"),
                None => "bound to no driver".to_string(),
            };
            let down: String = (pci.interfaces.iter())
                .map(|i| format!("ip link set {i} down\n"))
                .collect();
            let on = if pci.interfaces.is_empty() {
                String::new()
            } else {
                format!(" (interface {})", pci.interfaces.join(", "))
            };
            (
                Finding::missing(
                    format!("port {port}: {address} is {what}{on}, not to a DPDK driver"),
                    format!(
                        "{down}modprobe vfio-pci\ndpdk-devbind.py --bind=vfio-pci {address}\npersist: driverctl set-override {address} vfio-pci"
                    ),
                ),
                true,
            )
        }
    }
}

/// The port's NUMA node against its workers' CPUs.
fn numa(config: &Config, host: &HostFacts, port: &str, pci: &PciFacts) -> Option<Finding> {
    let node = pci.numa_node?;
    if host.nodes.len() < 2 {
        return None;
    }
    let far: Vec<u32> = worker_cpus(config)
        .into_iter()
        .filter(|&c| host.node_of_cpu(c).is_some_and(|n| n != node))
        .collect();
    if far.is_empty() {
        return Some(Finding::ok(format!(
            "NUMA: port {port} and its workers are on node {node}"
        )));
    }
    let local = host
        .nodes
        .iter()
        .find(|n| n.id == node)
        .map_or(String::new(), |n| list(&n.cpus));
    Some(Finding::advice(
        format!(
            "NUMA: port {port} ({}) is on node {node}, workers on CPUs {} are not: every packet crosses the interconnect",
            pci.address,
            list(&far)
        ),
        format!(
            "[workers] lcores from node {node} (CPUs {local}), and --socket-mem with memory on node {node}"
        ),
    ))
}

fn vfio(host: &HostFacts) -> Vec<Finding> {
    let mut out = Vec::new();
    if !host.vfio_pci_loaded {
        out.push(Finding::missing(
            "vfio-pci is not loaded".into(),
            "modprobe vfio-pci\npersist: echo vfio-pci > /etc/modules-load.d/vfio-pci.conf".into(),
        ));
    }
    if host.iommu_groups == 0 && !host.vfio_noiommu {
        out.push(Finding::missing(
            "no IOMMU in use (/sys/kernel/iommu_groups is empty): vfio-pci cannot take a NIC".into(),
            "enable VT-d / AMD-Vi in the firmware and add `intel_iommu=on iommu=pt` (or `amd_iommu=on iommu=pt`) to the kernel command line\nwithout an IOMMU (some VMs): echo 1 > /sys/module/vfio/parameters/enable_unsafe_noiommu_mode (no DMA protection)".into(),
        ));
    }
    out
}

/// `2,3,4` for people.
fn list(cpus: &[u32]) -> String {
    let v: Vec<String> = cpus.iter().map(u32::to_string).collect();
    v.join(",")
}
