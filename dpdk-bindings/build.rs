//! Generates the DPDK bindings with bindgen and compiles C wrappers for
//! DPDK's static inline API (rx/tx burst, mbuf alloc/free, ...), which has no
//! symbol in the shared libraries.
//!
//! Nothing generated is committed: both files land in OUT_DIR.

use std::env;
use std::path::PathBuf;

/// Poll-mode drivers linked into a static build. Virtual devices for labs and
/// tests, plus common server NICs whose drivers need no extra system library.
const STATIC_DRIVERS: &[&str] = &[
    "bus_pci",
    "bus_vdev",
    "mempool_ring",
    "mempool_stack",
    "net_null",
    "net_ring",
    "net_memif",
    "net_af_packet",
    "net_tap",
    "net_pcap",
    "net_virtio",
    "net_vmxnet3",
    "net_e1000",
    "net_ixgbe",
    "net_i40e",
    "net_iavf",
    "common_iavf",
    "net_ice",
];

/// DPDK libraries a static build needs, in link order (dependents first).
const STATIC_LIBS: &[&str] = &[
    "gso",
    "stack",
    "security",
    "cryptodev",
    "hash",
    "ethdev",
    "meter",
    "net",
    "mbuf",
    "mempool",
    "rcu",
    "ring",
    "pci",
    "eal",
    "telemetry",
    "kvargs",
];

/// Shared system libraries the static DPDK archives need.
const SYSTEM_LIBS: &[&str] = &[
    "pcap", "numa", "bsd", "elf", "z", "dl", "m", "pthread", "atomic",
];

fn main() {
    println!("cargo:rerun-if-changed=wrapper.h");
    println!("cargo:rerun-if-changed=shim.c");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");

    let is_static = env::var_os("CARGO_FEATURE_STATIC").is_some();
    let dpdk = match pkg_config::Config::new()
        .atleast_version("22.11")
        .cargo_metadata(!is_static)
        .probe("libdpdk")
    {
        Ok(lib) => lib,
        Err(e) => {
            // A clear message beats bindgen's missing-header errors.
            panic!(
                "DPDK 22.11 development files not found ({e}).\n\
                 Install them with scripts/setup-host.sh (Debian: apt-get install dpdk-dev libdpdk-dev pkg-config clang libclang-dev)."
            );
        }
    };

    // `pkg-config --cflags` carries `-include rte_config.h -march=...`; both the
    // C wrappers and bindgen must see exactly the same flags.
    let cflags = pkg_config_cflags();
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let wrappers_c = out.join("dpdk_static_wrappers.c");

    let bindings = bindgen::Builder::default()
        .header("wrapper.h")
        .clang_args(&cflags)
        .allowlist_function("rte_(eal|eth|pktmbuf|mbuf|mempool|lcore|ring|socket|strerror|get|rdtsc|delay|exit|thread|pause).*")
        .allowlist_function("rte_(zmalloc_socket|free|mem_virt2memseg)")
        .allowlist_function("mplb_.*")
        .allowlist_var("RTE_(ETH|MBUF|PKTMBUF|MAX_ETHPORTS|MAX_LCORE|ETHER|MEMPOOL|LCORE).*")
        .allowlist_type("rte_(eth|mbuf|mempool|ether|ipv4|ipv6|tcp|udp|lcore|ring|memseg).*")
        .opaque_type("rte_l2tpv2_.*")
        .opaque_type("rte_gtp_.*")
        .opaque_type("rte_arp_hdr")
        .derive_default(true)
        .derive_debug(false)
        .layout_tests(false)
        .generate_comments(false)
        .prepend_enum_name(false)
        .wrap_unsafe_ops(true)
        .wrap_static_fns(true)
        .wrap_static_fns_path(&wrappers_c)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .generate()
        .expect("bindgen failed on the DPDK headers");
    bindings
        .write_to_file(out.join("bindings.rs"))
        .expect("write bindings.rs");

    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let mut cc = cc::Build::new();
    cc.file(&wrappers_c)
        .file(manifest.join("shim.c"))
        .include(&manifest)
        .opt_level(3)
        .warnings(false);
    for flag in &cflags {
        cc.flag(flag);
    }
    for path in &dpdk.include_paths {
        cc.include(path);
    }
    cc.compile("mplb_dpdk_wrappers");

    if is_static {
        link_static();
    }
}

/// The flags as pkg-config prints them, split the way a shell would (DPDK's
/// flags contain no quoting).
fn pkg_config_cflags() -> Vec<String> {
    let output = std::process::Command::new("pkg-config")
        .args(["--cflags", "libdpdk"])
        .output()
        .expect("run pkg-config --cflags libdpdk");
    assert!(
        output.status.success(),
        "pkg-config --cflags libdpdk failed"
    );
    let text = String::from_utf8(output.stdout).expect("pkg-config prints UTF-8");
    let mut flags = Vec::new();
    let mut words = text.split_whitespace();
    while let Some(word) = words.next() {
        if word == "-include" {
            if let Some(file) = words.next() {
                flags.push(format!("-include{file}"));
            }
        } else {
            flags.push(word.to_string());
        }
    }
    flags
}

/// Static DPDK: drivers register themselves from constructors, so they must be
/// linked whole or the linker drops them and no device is ever found.
/// `rustc-link-lib` (unlike `rustc-link-arg`) reaches the final link of the
/// binaries that depend on this crate; `-bundle` leaves the archives to that
/// link instead of copying them into this rlib.
fn link_static() {
    let libdir = std::process::Command::new("pkg-config")
        .args(["--variable=libdir", "libdpdk"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "/usr/lib/x86_64-linux-gnu".to_string());
    println!("cargo:rustc-link-search=native={libdir}");
    for d in STATIC_DRIVERS {
        println!("cargo:rustc-link-lib=static:+whole-archive,-bundle=rte_{d}");
    }
    for l in STATIC_LIBS {
        println!("cargo:rustc-link-lib=static:-bundle=rte_{l}");
    }
    // System libraries the static DPDK code calls into.
    for sys in SYSTEM_LIBS {
        println!("cargo:rustc-link-lib=dylib={sys}");
    }
}
