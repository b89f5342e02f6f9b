//! The hash contract (`mplb::datapath::hash`, "Version"): a fixed config and
//! a fixed set of flows — IPv4 and IPv6, TCP and UDP, tables of 251, 1021 and
//! 65537 slots, unequal weights, IPv4 fragments — and the backend each one
//! reaches through the datapath, against the golden table
//! `tests/data/hash-contract.txt`. Any change that moves one of them fails
//! here, unless it comes with a bump of `HASH_VERSION`: then
//! `MPLB_WRITE_HASH_CONTRACT=1 cargo test --test hash_contract` rewrites the
//! table, and only for a version above the file's.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use mplb::datapath::hash::HASH_VERSION;
use mplb::datapath::verdict::Verdict;
use mplb::testing::frames::{self, ethertype, first_packet};
use mplb::testing::{Backend, Harness, Tables, Vip, config::null_port, parse};
use mplb::wire::ip_proto;

const PORT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const FILE: &str = "tests/data/hash-contract.txt";

fn backend(n: usize) -> Backend {
    let addr = if n < 6 {
        format!("198.18.1.{}", 20 + n)
    } else {
        format!("fd00:18:1::{}", 20 + n)
    };
    Backend::new(format!("s{n}"), addr).mac(format!("02:00:00:00:02:{:02x}", n))
}

/// Backends s1..s5 (IPv4) and s6..s9 (IPv6); the VIPs of the contract.
fn config() -> String {
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
    null_port("") + &vips.iter().map(|v| v.to_string()).collect::<String>()
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
/// as the datapath decides them now.
fn rows() -> Vec<String> {
    let config = parse(&config());
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

fn header() -> String {
    format!("hash-version {HASH_VERSION}")
}

#[test]
fn flows_reach_the_backends_of_the_golden_table() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(FILE);
    let golden = std::fs::read_to_string(&path).unwrap_or_default();
    let file_version: Option<u32> = golden
        .lines()
        .find_map(|l| l.strip_prefix("hash-version ")?.parse().ok());
    let now = rows();
    if std::env::var_os("MPLB_WRITE_HASH_CONTRACT").is_some() {
        assert!(
            file_version.is_none_or(|v| HASH_VERSION > v),
            "{FILE} is of version {file_version:?}: rewrite it only after bumping HASH_VERSION ({HASH_VERSION})"
        );
        let text = format!(
            "# The hash contract (tests/hash_contract.rs): flow -> backend.\n{}\n{}\n",
            header(),
            now.join("\n")
        );
        std::fs::write(&path, text).expect("write the golden table");
        return;
    }
    assert_eq!(
        file_version,
        Some(HASH_VERSION),
        "{FILE} is for another hash version than HASH_VERSION"
    );
    let want: Vec<&str> = golden
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("hash-version"))
        .collect();
    assert_eq!(want.len(), now.len(), "rows in {FILE}");
    let moved: Vec<String> = want
        .iter()
        .zip(&now)
        .filter(|(w, n)| *w != n)
        .map(|(w, n)| format!("  was {w}\n  now {n}"))
        .collect();
    assert!(
        moved.is_empty(),
        "{} of {} flows moved: a change of the hash contract needs a HASH_VERSION bump\n{}",
        moved.len(),
        now.len(),
        moved.join("\n")
    );
}

#[test]
fn the_golden_table_uses_every_backend() {
    // A table whose flows all hit one backend would not notice a change
    // of the permutation: every backend of every VIP appears.
    let rows = rows();
    for n in 1..=9 {
        let name = format!(" s{n}");
        assert!(rows.iter().any(|r| r.ends_with(&name)), "s{n} in no row");
    }
}
