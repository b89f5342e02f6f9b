//! `check-host` on made-up hosts: the example configs against facts built
//! here, and the probe on a small fake `/proc` + `/sys` tree.

use std::path::{Path, PathBuf};

use super::probe::{HostFacts, NodeFacts, PciFacts};
use super::{Reserve, Severity, check, count};
use crate::config::{Config, HostMemory};

const GIB: u64 = 1 << 30;
const PAGE: u64 = 2 << 20;

fn bare_metal() -> Config {
    let text = include_str!("../../configs/bare-metal.toml");
    Config::parse(text, Path::new("bare-metal.toml")).expect("example parses")
}

fn demo() -> Config {
    let text = include_str!("../../configs/demo.toml");
    Config::parse(text, Path::new("demo.toml")).expect("example parses")
}

/// A host ready for configs/bare-metal.toml: its NIC on vfio-pci, an
/// IOMMU, 2 GiB of free hugepages, CPUs 0-7 with 2-5 isolated, one node.
fn ready_host() -> HostFacts {
    HostFacts {
        memory: Some(HostMemory {
            total: 64 * GIB,
            hugetlb: 2 * GIB,
            hugepages_free: 2 * GIB,
        }),
        hugepage_bytes: PAGE,
        hugetlbfs_mounted: true,
        hugepages_total: 1024,
        nodes: vec![NodeFacts {
            id: 0,
            cpus: (0..8).collect(),
            hugepages_total: 1024,
            hugepages_free: 1024,
        }],
        online_cpus: Some((0..8).collect()),
        cmdline: "BOOT_IMAGE=/vmlinuz intel_iommu=on iommu=pt isolcpus=2-5".into(),
        iommu_groups: 40,
        vfio_pci_loaded: true,
        vfio_noiommu: false,
        tun: true,
        pci: vec![PciFacts {
            address: "0000:3b:00.0".into(),
            present: true,
            driver: Some("vfio-pci".into()),
            numa_node: Some(0),
            interfaces: Vec::new(),
        }],
    }
}

fn fixes(findings: &[super::Finding]) -> String {
    findings
        .iter()
        .filter(|f| f.severity != Severity::Ok)
        .map(|f| f.to_string() + "\n")
        .collect()
}

#[test]
fn a_ready_host_has_nothing_missing_and_no_advice() {
    let findings = check(&bare_metal(), &ready_host());
    assert_eq!(
        count(&findings, Severity::Missing),
        0,
        "{}",
        fixes(&findings)
    );
    assert_eq!(
        count(&findings, Severity::Advice),
        0,
        "{}",
        fixes(&findings)
    );
    assert!(super::report(&findings).ends_with("host ready for this config (0 advice)\n"));
}

#[test]
fn a_kernel_interface_needs_the_tun_driver() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/configs/bare-metal.toml"
    ))
    .expect("example")
    .replace("# kernel_interface = ", "kernel_interface = ");
    let config = Config::parse(&text, Path::new("bare-metal.toml")).expect("parses");
    let findings = check(&config, &ready_host());
    assert_eq!(
        count(&findings, Severity::Missing),
        0,
        "{}",
        fixes(&findings)
    );
    let no_tun = HostFacts {
        tun: false,
        ..ready_host()
    };
    let findings = check(&config, &no_tun);
    assert_eq!(count(&findings, Severity::Missing), 1);
    let f = fixes(&findings);
    assert!(
        f.contains("mplb-uplink: no /dev/net/tun") && f.contains("modprobe tun"),
        "{f}"
    );
    // Without an exception path, no word of it.
    let findings = check(&bare_metal(), &no_tun);
    assert_eq!(
        count(&findings, Severity::Missing),
        0,
        "{}",
        fixes(&findings)
    );
}

#[test]
fn an_absent_nic_is_missing() {
    let mut host = ready_host();
    host.pci[0].present = false;
    host.pci[0].driver = None;
    let findings = check(&bare_metal(), &host);
    let text = fixes(&findings);
    assert!(
        text.contains("missing: port uplink: PCI device 0000:3b:00.0 is not on this host"),
        "{text}"
    );
    assert!(super::report(&findings).ends_with("host not ready: 1 missing, 0 advice\n"));
}

#[test]
fn a_nic_on_its_kernel_driver_gets_the_binding_commands() {
    let mut host = ready_host();
    host.pci[0].driver = Some("ice".into());
    host.pci[0].interfaces = vec!["ens2f0".into()];
    host.vfio_pci_loaded = false;
    let text = fixes(&check(&bare_metal(), &host));
    assert!(
        text.contains("is bound to the kernel's ice (interface ens2f0), not to a DPDK driver"),
        "{text}"
    );
    for fix in [
        "fix: ip link set ens2f0 down",
        "fix: dpdk-devbind.py --bind=vfio-pci 0000:3b:00.0",
        "missing: vfio-pci is not loaded",
        "fix: modprobe vfio-pci",
    ] {
        assert!(text.contains(fix), "{fix} not in:\n{text}");
    }
}

#[test]
fn no_iommu_is_missing_unless_vfio_runs_without_one() {
    let mut host = ready_host();
    host.iommu_groups = 0;
    let text = fixes(&check(&bare_metal(), &host));
    assert!(text.contains("missing: no IOMMU in use"), "{text}");
    assert!(text.contains("intel_iommu=on iommu=pt"), "{text}");
    host.vfio_noiommu = true;
    assert_eq!(fixes(&check(&bare_metal(), &host)), "");
}

#[test]
fn short_hugepages_say_how_many_to_reserve() {
    let mut host = ready_host();
    // --socket-mem=2048 wants 1024 pages of 2 MiB; 1000 are free of 1024.
    host.memory = host.memory.map(|m| HostMemory {
        hugepages_free: 1000 * PAGE,
        ..m
    });
    host.nodes[0].hugepages_free = 1000;
    let findings = check(&bare_metal(), &host);
    let text = fixes(&findings);
    assert!(
        text.contains("missing: hugepages: the config needs 1024 of 2 MiB (2 GiB: as -m/--socket-mem fix), 1000 are free"),
        "{text}"
    );
    assert!(
        text.contains("fix: echo 1048 > /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"),
        "{text}"
    );
    let reserves: Vec<&Reserve> = findings.iter().filter_map(|f| f.reserve.as_ref()).collect();
    assert_eq!(
        reserves,
        [
            &Reserve {
                path: PathBuf::from("/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"),
                pages: 1048
            },
            &Reserve {
                path: PathBuf::from(
                    "/sys/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages"
                ),
                pages: 1048
            },
        ]
    );
}

#[test]
fn without_socket_mem_the_need_is_what_mplb_allocates() {
    let text = include_str!("../../configs/bare-metal.toml").replace("\"--socket-mem=2048\",", "");
    let config = Config::parse(&text, Path::new("x.toml")).expect("parses");
    let need = config.memory_need().total() + super::checks::EAL_OVERHEAD_BYTES;
    let mut host = ready_host();
    host.memory = host.memory.map(|m| HostMemory {
        hugepages_free: 0,
        ..m
    });
    host.hugepages_total = 0;
    let findings = check(&config, &host);
    let pages = need.div_ceil(PAGE);
    assert_eq!(
        findings
            .iter()
            .find_map(|f| f.reserve.clone())
            .map(|r| r.pages),
        Some(pages)
    );
}

#[test]
fn workers_away_from_their_nic_and_not_isolated_get_advice() {
    let mut host = ready_host();
    host.nodes = vec![
        NodeFacts {
            id: 0,
            cpus: (0..4).collect(),
            hugepages_total: 512,
            hugepages_free: 512,
        },
        NodeFacts {
            id: 1,
            cpus: (4..8).collect(),
            hugepages_total: 512,
            hugepages_free: 512,
        },
    ];
    host.pci[0].numa_node = Some(1);
    host.cmdline = "intel_iommu=on".into();
    let findings = check(&bare_metal(), &host);
    // --socket-mem=2048 asks node 0 for 1024 pages: 512 are there.
    assert_eq!(
        count(&findings, Severity::Missing),
        1,
        "{}",
        fixes(&findings)
    );
    let text = fixes(&findings);
    assert!(
        text.contains(
            "advice: NUMA: port uplink (0000:3b:00.0) is on node 1, workers on CPUs 2,3 are not"
        ),
        "{text}"
    );
    assert!(
        text.contains("[workers] lcores from node 1 (CPUs 4,5,6,7)"),
        "{text}"
    );
    assert!(
        text.contains("isolcpus=2,3,4,5 nohz_full=2,3,4,5 rcu_nocbs=2,3,4,5"),
        "{text}"
    );
}

#[test]
fn offline_cpus_are_missing() {
    let mut host = ready_host();
    host.online_cpus = Some(vec![0, 1]);
    let text = fixes(&check(&bare_metal(), &host));
    assert!(
        text.contains(
            "missing: CPUs 2,3,4,5 of the config are not online on this host (online: 0,1)"
        ),
        "{text}"
    );
}

#[test]
fn the_demo_needs_no_nic_and_no_hugepages() {
    let host = HostFacts {
        online_cpus: Some(vec![0, 1]),
        ..HostFacts::default()
    };
    let findings = check(&demo(), &host);
    assert_eq!(
        count(&findings, Severity::Missing),
        0,
        "{}",
        fixes(&findings)
    );
    let all = super::report(&findings);
    assert!(
        all.contains("ok: port lan: net_pcap0 is a DPDK virtual device"),
        "{all}"
    );
    assert!(all.contains("advice: EAL runs with --no-huge"), "{all}");
}

#[test]
fn the_probe_reads_a_fake_tree() {
    let root = std::env::temp_dir().join(format!("mplb-host-probe-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let w = |p: &str, text: &str| {
        let path = root.join(p);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    };
    w(
        "proc/meminfo",
        "MemTotal: 8388608 kB\nHugePages_Total: 512\nHugePages_Free: 500\nHugepagesize: 2048 kB\nHugetlb: 1048576 kB\n",
    );
    w(
        "proc/mounts",
        "nodev /dev/hugepages hugetlbfs rw,relatime,pagesize=2M 0 0\n",
    );
    w("proc/cmdline", "ro isolcpus=1\n");
    w(
        "sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages",
        "512\n",
    );
    w("sys/devices/system/cpu/online", "0-3\n");
    w("sys/devices/system/node/node0/cpulist", "0-3\n");
    w(
        "sys/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages",
        "512\n",
    );
    w(
        "sys/devices/system/node/node0/hugepages/hugepages-2048kB/free_hugepages",
        "500\n",
    );
    w("sys/kernel/iommu_groups/7/type", "DMA\n");
    w("sys/bus/pci/drivers/vfio-pci/bind", "");
    w("sys/bus/pci/devices/0000:3b:00.0/numa_node", "-1\n");
    w("sys/bus/pci/devices/0000:3b:00.0/net/eth2/mtu", "1500\n");
    std::os::unix::fs::symlink(
        "../../../bus/pci/drivers/ixgbe",
        root.join("sys/bus/pci/devices/0000:3b:00.0/driver"),
    )
    .expect("symlink");
    let facts = HostFacts::probe(&root, &["0000:3b:00.0".into(), "0000:af:00.0".into()]);
    let _ = std::fs::remove_dir_all(&root);
    assert_eq!(facts.hugepage_bytes, PAGE);
    assert_eq!(facts.memory.map(|m| m.hugepages_free), Some(500 * PAGE));
    assert!(facts.hugetlbfs_mounted);
    assert_eq!(facts.hugepages_total, 512);
    assert_eq!(facts.online_cpus, Some(vec![0, 1, 2, 3]));
    assert_eq!(facts.cmdline, "ro isolcpus=1");
    assert_eq!(facts.iommu_groups, 1);
    assert!(facts.vfio_pci_loaded && !facts.vfio_noiommu);
    assert_eq!(
        facts.nodes,
        [NodeFacts {
            id: 0,
            cpus: vec![0, 1, 2, 3],
            hugepages_total: 512,
            hugepages_free: 500
        }]
    );
    assert_eq!(
        facts.pci,
        [
            PciFacts {
                address: "0000:3b:00.0".into(),
                present: true,
                driver: Some("ixgbe".into()),
                numa_node: None,
                interfaces: vec!["eth2".into()],
            },
            PciFacts {
                address: "0000:af:00.0".into(),
                present: false,
                driver: None,
                numa_node: None,
                interfaces: Vec::new(),
            }
        ]
    );
}
