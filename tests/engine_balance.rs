//! Replays real Linux MPTCP and TCP captures (tests/data) through the real
//! `mplb` binary on DPDK's net_pcap device, and checks what comes out: every
//! client→VIP frame is forwarded by L2 DSR with only its MAC addresses
//! changed, every frame of a connection goes to the same backend, and the
//! MP_JOIN sent to the VIP follows its connection by token.

mod common;

use std::collections::HashMap;
use std::path::Path;

use mplb::testing::{Backend, Vip};

use common::{Scratch, counter, pcap_config, read_pcap, run_for, text, write_config, write_pcap};

const VIP: [u8; 4] = [198, 18, 0, 10];
const BACKEND_MACS: [[u8; 6]; 3] = [
    [0x02, 0, 0, 0, 0x01, 0x11],
    [0x02, 0, 0, 0, 0x01, 0x12],
    [0x02, 0, 0, 0, 0x01, 0x13],
];

/// IPv4 frames (untagged) addressed to the VIP: what a DSR load balancer sees.
fn to_vip(frames: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    frames
        .into_iter()
        .filter(|f| f.len() >= 34 && f[12..14] == [0x08, 0x00] && f[30..34] == VIP)
        .collect()
}

/// (client address, client port): identifies a connection's subflow here.
fn subflow(f: &[u8]) -> ([u8; 4], u16) {
    let ihl = usize::from(f[14] & 0x0f) * 4;
    let sport = u16::from_be_bytes([f[14 + ihl], f[15 + ihl]]);
    ([f[26], f[27], f[28], f[29]], sport)
}

#[test]
fn real_captures_are_balanced_consistently_and_joins_follow_their_token() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut input = to_vip(read_pcap(&data.join("mptcp_join_v4.pcap")));
    let join_frames = input.len();
    input.extend(to_vip(read_pcap(&data.join("tcp_v4.pcap"))));
    input.extend(to_vip(read_pcap(&data.join("mptcp_v4.pcap"))));
    assert!(input.len() > 30, "captures hold client→VIP frames");

    let s = Scratch::new("balance");
    let (inp, outp, cfg) = (s.path("in.pcap"), s.path("out.pcap"), s.path("mplb.toml"));
    write_pcap(&inp, &input);
    let web = Vip::web().backends(BACKEND_MACS.iter().enumerate().map(|(i, m)| {
        Backend::new(format!("be{i}"), format!("198.18.1.{}", 11 + i)).mac_bytes(*m)
    }));
    let vip = format!("[flow_table]\ncapacity = 4096\n[health]\nkind = \"none\"\n{web}");
    write_config(&cfg, &pcap_config(&s, &inp, &outp, &vip));
    let out = run_for(&cfg, "1.5");
    let stdout = text(&out.stdout);
    assert!(out.status.success());
    assert!(stdout.contains("mbufs in use: 0 at start, 0 at end"));

    let got = read_pcap(&outp);
    assert_eq!(
        got.len(),
        input.len(),
        "every client→VIP frame is forwarded"
    );
    let port_mac: [u8; 6] = got[0][6..12].try_into().expect("6 bytes");
    let mut backend_of: HashMap<([u8; 4], u16), [u8; 6]> = HashMap::new();
    for (i, (g, f)) in got.iter().zip(&input).enumerate() {
        // L2 DSR: only the MAC addresses change.
        assert_eq!(g[12..], f[12..], "frame {i}: IP packet changed");
        assert_eq!(g[6..12], port_mac, "frame {i}: source MAC");
        let dst: [u8; 6] = g[0..6].try_into().expect("6 bytes");
        assert!(
            BACKEND_MACS.contains(&dst),
            "frame {i}: not sent to a backend"
        );
        let prev = backend_of.entry(subflow(f)).or_insert(dst);
        assert_eq!(
            *prev,
            dst,
            "frame {i}: subflow {:?} moved backend",
            subflow(f)
        );
    }
    // The join capture's two subflows (initial from the wifi address, join
    // from the cell address) went to the same backend: routed by token.
    let join_capture: Vec<_> = got[..join_frames]
        .iter()
        .map(|g| g[0..6].to_vec())
        .collect();
    assert!(
        join_capture.windows(2).all(|w| w[0] == w[1]),
        "join left its connection's backend"
    );
    let subflows_in_join: std::collections::HashSet<_> =
        input[..join_frames].iter().map(|f| subflow(f)).collect();
    assert_eq!(
        subflows_in_join.len(),
        2,
        "the join capture has an initial subflow and a join"
    );

    assert_eq!(counter(&stdout, "mptcp_syn"), 2);
    assert_eq!(counter(&stdout, "join_token_hit"), 1);
    assert_eq!(counter(&stdout, "join_token_miss"), 0);
    assert!(counter(&stdout, "tokens_learnt") >= 2);
    assert_eq!(counter(&stdout, "plain_syn"), 2);
    assert_eq!(counter(&stdout, "tx_packets"), input.len() as u64);
}
