//! Runs the real `mplb` binary on DPDK's net_pcap virtual device: frames go
//! in from a pcap file, mplb's output is captured to another, and the test
//! compares what came out with what must come out.

mod common;

use mplb::testing::frames::{self, ethertype};

use common::{
    Scratch, counter, pcap_config, read_pcap, run_for, stopped_cleanly, write_config, write_pcap,
};

const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0xc1];
const LB_IP: [u8; 4] = [198, 18, 0, 1];
const CLIENT_IP: [u8; 4] = [198, 18, 0, 2];

/// An ARP packet in a minimum-size (60-byte) Ethernet frame; requests are
/// broadcast.
fn arp(op: u16, sha: [u8; 6], spa: [u8; 4], tha: [u8; 6], tpa: [u8; 4]) -> Vec<u8> {
    let dst = if op == 1 { [0xff; 6] } else { tha };
    let body = frames::arp(op, (sha, spa.into()), (tha, tpa.into()));
    let mut f = frames::eth(dst, sha, ethertype::ARP, &body);
    f.resize(60, 0);
    f
}

fn icmp_echo(
    kind: u8,
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    src: [u8; 4],
    dst: [u8; 4],
    ttl: u8,
    seq: u16,
) -> Vec<u8> {
    let [s0, s1] = seq.to_be_bytes();
    let icmp = frames::icmpv4(kind, 0, [0x12, 0x34, s0, s1], b"integration-test");
    let ip = frames::ipv4(src.into(), dst.into(), frames::ICMP, ttl, 7, &icmp);
    frames::eth(dst_mac, src_mac, ethertype::IPV4, &ip)
}

/// The MAC net_pcap gives port 0 (it is derived from the driver name).
fn port_mac(stdout: &str) -> [u8; 6] {
    let mac = stdout
        .split("mac ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .expect("mplb prints the port's MAC");
    let mut out = [0u8; 6];
    for (o, h) in out.iter_mut().zip(mac.split(':')) {
        *o = u8::from_str_radix(h, 16).expect("hex MAC");
    }
    out
}

#[test]
fn answers_arp_and_ping_and_drops_the_rest() {
    let s = Scratch::new("pcap");
    let lb_mac_guess = [0x02, 0x70, 0x63, 0x61, 0x70, 0x00];
    let input = vec![
        arp(1, CLIENT_MAC, CLIENT_IP, [0; 6], LB_IP),
        icmp_echo(8, lb_mac_guess, CLIENT_MAC, CLIENT_IP, LB_IP, 64, 1),
        arp(1, CLIENT_MAC, CLIENT_IP, [0; 6], [198, 18, 0, 77]), // not ours
        icmp_echo(
            8,
            lb_mac_guess,
            CLIENT_MAC,
            CLIENT_IP,
            [198, 18, 0, 77],
            64,
            2,
        ), // not ours
        vec![0u8; 10],                                           // runt: malformed
        vec![0u8; 20],                                           // ethertype 0: unsupported
        icmp_echo(8, lb_mac_guess, CLIENT_MAC, CLIENT_IP, LB_IP, 9, 3),
    ];
    let (inp, outp, cfg) = (s.path("in.pcap"), s.path("out.pcap"), s.path("mplb.toml"));
    write_pcap(&inp, &input);
    write_config(&cfg, &pcap_config(&s, &inp, &outp, ""));
    let (stdout, _) = stopped_cleanly(&run_for(&cfg, "1.5"));
    assert!(
        stdout.contains("port net_pcap0 (id 0, driver net_pcap)"),
        "port line missing"
    );
    assert!(
        stdout.contains("worker 0 on lcore 1"),
        "worker line missing"
    );

    let mac = port_mac(&stdout);
    let expected = vec![
        arp(2, mac, LB_IP, CLIENT_MAC, CLIENT_IP),
        icmp_echo(0, CLIENT_MAC, mac, LB_IP, CLIENT_IP, 64, 1),
        icmp_echo(0, CLIENT_MAC, mac, LB_IP, CLIENT_IP, 64, 3),
    ];
    let got = read_pcap(&outp);
    assert_eq!(got.len(), expected.len(), "frames out");
    for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
        assert_eq!(g, e, "frame {i} differs");
    }
    assert_eq!(counter(&stdout, "rx_packets"), 7);
    assert_eq!(counter(&stdout, "tx_packets"), 3);
    assert_eq!(counter(&stdout, "arp_replies"), 1);
    assert_eq!(counter(&stdout, "icmp_echo_replies"), 2);
    assert_eq!(counter(&stdout, "drop_not_for_us"), 2);
    assert_eq!(counter(&stdout, "drop_malformed"), 1);
    assert_eq!(counter(&stdout, "drop_unsupported"), 1);
}
