//! The hash contract (`mplb::datapath::hash`, "Version"): a fixed config and
//! a fixed set of flows — IPv4 and IPv6, TCP and UDP, tables of 251, 1021 and
//! 65537 slots, unequal weights, IPv4 fragments — and the backend each one
//! reaches through the datapath, in every hash version (`[datapath]
//! hash_version`), against that version's golden table
//! `tests/data/hash-contract-vN.txt`. Any change that moves one of them fails
//! here: a change of the contract is a new `HashVersion`, whose table
//! `MPLB_WRITE_HASH_CONTRACT=1 cargo test --test hash_contract` writes once
//! (a version's existing table is never rewritten).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use mplb::datapath::hash::HashVersion;
use mplb::datapath::verdict::Verdict;
use mplb::testing::frames::{self, ethertype, first_packet};
use mplb::testing::{Backend, Harness, Tables, Vip, config::null_port, parse};
use mplb::wire::ip_proto;

const PORT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
/// The golden table of `version`.
fn file(version: HashVersion) -> String {
    format!("tests/data/hash-contract-v{version}.txt")
}

fn backend(n: usize) -> Backend {
    let addr = if n < 6 {
        format!("198.18.1.{}", 20 + n)
    } else {
        format!("fd00:18:1::{}", 20 + n)
    };
    Backend::new(format!("s{n}"), addr).mac(format!("02:00:00:00:02:{:02x}", n))
}

/// Backends s1..s5 (IPv4) and s6..s9 (IPv6); the VIPs of the contract,
/// hashed by `version`.
fn config(version: HashVersion) -> String {
    let vips = [
        Vip::new("c4t", "198.18.0.20", 80)
            .backends((1..=5).map(|n| backend(n).weight([1, 1, 2, 1, 3][n - 1]))),
        Vip::new("c4u", "198.18.0.20", 53)
            .option("protocol", "\"udp\"")
            .option("table_size", 251)
            .backends((1..=3).map(backend)),
        Vip::new("c6t", "fd00:20::20", 443).backends((6..=9).map(backend)),
        Vip::new("c6u", "fd00:20::20", 53)
            .option("protocol", "\"udp\"")
            .option("table_size", 1021)
            .backends((6..=8).map(|n| backend(n).weight(n as u32))),
    ];
    let datapath = format!("[datapath]\nhash_version = {version}\n");
    null_port(&datapath) + &vips.iter().map(|v| v.to_string()).collect::<String>()
}

/// Client `i` of a family: spread over addresses and ports.
fn client(v6: bool, i: u16) -> (IpAddr, u16) {
    let port = 1024 + i.wrapping_mul(7919) % 60000;
    let addr = if v6 {
        IpAddr::from([0xfd00, 0x19, 0, 0, 0, 0, i / 7, i])
    } else {
        IpAddr::from([198, 19, (i / 5) as u8, (i * 37) as u8])
    };
    (addr, port)
}

/// A first IPv4 fragment (MF set) of a UDP datagram, 3-tuple hashed.
fn fragment(src: Ipv4Addr, dst: Ipv4Addr, ident: u16) -> Vec<u8> {
    let payload = frames::udp(5000, 53, &[0; 24]);
    let ip = frames::ipv4_full(src, dst, (ip_proto::UDP, 64, ident, 0x2000), &payload);
    frames::eth(PORT_MAC, [2, 0, 0, 0, 0xc1, 0x1e], ethertype::IPV4, &ip)
}

/// The contract's rows, each `VIP PROTO CLIENT -> VIP-ADDRESS BACKEND`,
/// as the datapath decides them now in `version`.
fn rows(version: HashVersion) -> Vec<String> {
    let config = parse(&config(version));
    assert_eq!(config.datapath.hash_version, version);
    let names: HashMap<[u8; 6], String> = config
        .vips
        .iter()
        .flat_map(|v| &v.backends)
        .filter_map(|b| Some((b.mac?.0, b.name.clone())))
        .collect();
    let mut h = Harness::build(&config, &[PORT_MAC], Tables::small(1 << 12));
    let mut send = |frame: Vec<u8>, what: String| {
        let (v, out) = h.send(&frame);
        assert_eq!(v, Verdict::Forward, "{what}");
        let mac: [u8; 6] = out[..6].try_into().expect("a MAC");
        format!("{what} {}", names[&mac])
    };
    let mut rows = Vec::new();
    for v in &config.vips {
        let v6 = v.address.is_ipv6();
        let udp = v.protocol == mplb::config::VipProtocol::Udp;
        for i in 0..24 {
            let (src, sport) = client(v6, i);
            let frame = first_packet(PORT_MAC, (src, sport), (v.address, v.port), udp);
            let proto = if udp { "udp" } else { "tcp" };
            let to = std::net::SocketAddr::new(v.address, v.port);
            let from = std::net::SocketAddr::new(src, sport);
            rows.push(send(frame, format!("{} {proto} {from} -> {to}", v.name)));
        }
    }
    let vip = Ipv4Addr::new(198, 18, 0, 20);
    for i in 0..8 {
        let IpAddr::V4(src) = client(false, 100 + i).0 else {
            unreachable!("an IPv4 client")
        };
        rows.push(send(
            fragment(src, vip, i),
            format!("c4u udp-fragment {src} -> {vip}"),
        ));
    }
    rows
}

#[test]
fn flows_reach_the_backends_of_the_golden_tables() {
    for version in HashVersion::ALL {
        check(version);
    }
}

fn check(version: HashVersion) {
    let name = file(version);
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(&name);
    let golden = std::fs::read_to_string(&path).ok();
    let now = rows(version);
    let header = format!("hash-version {version}");
    let Some(golden) = golden else {
        assert!(
            std::env::var_os("MPLB_WRITE_HASH_CONTRACT").is_some(),
            "{name} is missing: a new hash version's table is written by \
             MPLB_WRITE_HASH_CONTRACT=1 cargo test --test hash_contract"
        );
        let text = format!(
            "# The hash contract (tests/hash_contract.rs): flow -> backend.\n{header}\n{}\n",
            now.join("\n")
        );
        std::fs::write(&path, text).expect("write the golden table");
        return;
    };
    assert!(
        golden.lines().any(|l| l == header),
        "{name} is not the table of hash version {version}"
    );
    let want: Vec<&str> = golden
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("hash-version"))
        .collect();
    assert_eq!(want.len(), now.len(), "rows in {name}");
    let moved: Vec<String> = want
        .iter()
        .zip(&now)
        .filter(|(w, n)| *w != n)
        .map(|(w, n)| format!("  was {w}\n  now {n}"))
        .collect();
    assert!(
        moved.is_empty(),
        "hash version {version}: {} of {} flows moved; a change of the hash contract is a new HashVersion\n{}",
        moved.len(),
        now.len(),
        moved.join("\n")
    );
}

#[test]
fn the_golden_table_uses_every_backend() {
    // A table whose flows all hit one backend would not notice a change
    // of the permutation: every backend of every VIP appears.
    for version in HashVersion::ALL {
        let rows = rows(version);
        for n in 1..=9 {
            let name = format!(" s{n}");
            assert!(
                rows.iter().any(|r| r.ends_with(&name)),
                "version {version}: s{n} in no row"
            );
        }
    }
}
