//! Issue #15's scale: 10 000 VIPs and 100 000 backends (10 per VIP from a
//! pool of 50 000 servers; `mplb::testing::scale`), generated at run time.
//! `mplb check-config` accepts the file, the snapshot builds with every VIP
//! and table, and packets to the first, middle and last VIPs (both
//! families, TCP and UDP) reach one of their own VIP's backends. Times are
//! printed, not asserted (figures and their commands: bench/README.md).

use std::collections::HashSet;
use std::net::IpAddr;
use std::process::Command;
use std::time::Instant;

use mplb::datapath::forwarding::Protocol;
use mplb::datapath::verdict::{DropReason, Verdict};
use mplb::testing::frames::first_packet;
use mplb::testing::scale::Scale;
use mplb::testing::{self, Harness, Tables};

const PORT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];

fn client_of(vip: IpAddr, i: u16) -> IpAddr {
    match vip {
        IpAddr::V4(_) => IpAddr::from([198, 18, 2, i as u8]),
        IpAddr::V6(_) => IpAddr::from([0xfd00, 2, 0, 0, 0, 0, 0, i]),
    }
}

#[test]
fn check_config_accepts_ten_thousand_vips_and_the_snapshot_builds() {
    let s = Scale::ISSUE_15;
    let t = Instant::now();
    let text = s.config();
    eprintln!("generated {} bytes in {:?}", text.len(), t.elapsed());
    let path = std::env::temp_dir().join(format!("mplb-scale-{}.toml", std::process::id()));
    std::fs::write(&path, &text).expect("write the config");
    let t = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_mplb"))
        .arg("check-config")
        .arg(&path)
        .output()
        .expect("run mplb check-config");
    let _ = std::fs::remove_file(&path);
    eprintln!("check-config took {:?}", t.elapsed());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "check-config refused it: {}{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("vip vip9999:"),
        "every VIP listed: {stdout:.400}"
    );

    let config = testing::parse(&text);
    let t = Instant::now();
    let fwd = testing::forwarding(&config, &[PORT_MAC]);
    eprintln!("snapshot built in {:?}", t.elapsed());
    assert_eq!(fwd.vips.len(), 10_000);
    let entries: usize = fwd.vips.iter().map(|v| v.backends.len()).sum();
    assert_eq!(entries, 100_000);
    assert_eq!(fwd.backends.iter().flatten().count(), 50_000);
    for v in &fwd.vips {
        assert_eq!(v.maglev.size(), 1021, "{}", v.name);
        assert_eq!(
            v.maglev.shares().len(),
            10,
            "{}: all 10 in the table",
            v.name
        );
    }
}

#[test]
fn packets_to_the_first_middle_and_last_of_ten_thousand_vips_reach_their_backends() {
    let s = Scale::ISSUE_15;
    let config = testing::parse(&s.config());
    let mut h = Harness::build(&config, &[PORT_MAC], Tables::small(1 << 12));
    for i in [0, 1, 2, 3, 4999, 5000, 5001, 9998, 9999] {
        let (addr, port, protocol) = s.vip(i);
        let udp = protocol == Protocol::Udp;
        let own: HashSet<[u8; 6]> = s.vip_backends(i).map(Scale::backend_mac).collect();
        let mut reached = HashSet::new();
        for c in 0..64 {
            let frame = first_packet(
                PORT_MAC,
                (client_of(addr, c), 40_000 + c),
                (addr, port),
                udp,
            );
            let (v, out) = h.send(&frame);
            assert_eq!(v, Verdict::Forward, "vip {i} ({addr}:{port}) client {c}");
            let mac: [u8; 6] = out[..6].try_into().expect("a MAC");
            assert!(
                own.contains(&mac),
                "vip {i}: {mac:02x?} is not one of its backends"
            );
            reached.insert(mac);
        }
        assert!(
            reached.len() > 1,
            "vip {i}: 64 flows spread over its backends"
        );
        // The same address, a port no VIP serves there: no VIP.
        let frame = first_packet(PORT_MAC, (client_of(addr, 1), 40_001), (addr, 9), udp);
        assert_eq!(
            h.send(&frame).0,
            Verdict::Drop(DropReason::NoVip),
            "vip {i}"
        );
    }
    assert_eq!(h.dp.counters.forwarded, 9 * 64);
}
