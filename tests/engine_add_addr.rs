//! The real `mplb` binary on DPDK's net_pcap device sends the ADD_ADDR of a
//! VIP with `announce_backend_address`: the worker takes the datapath's
//! announcement after the burst, copies it into a buffer of its pool and
//! sends it out of the port the third ACK came in on — once, although the
//! third ACK comes twice — and frees every buffer it took.

mod common;

use mplb::testing::config::{Backend, Vip};
use mplb::testing::frames::{self, ethertype, flags, opt};
use mplb::wire::mptcp::MptcpOption;
use mplb::wire::{add_addr, parse_frame, tcp};

use common::{
    Scratch, counter, pcap_config, read_pcap, run_for, stopped_cleanly, write_config, write_pcap,
};

const ROUTER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0xc1];
const BACKEND_MAC: [u8; 6] = [0x02, 0, 0, 0, 1, 0x11];
const CLIENT_KEY: u64 = 0x1111_2222_3333_4444;
const SERVER_KEY: u64 = 0x5555_6666_7777_8888;

fn segment(dst_mac: [u8; 6], f: u8, opts: &[u8]) -> Vec<u8> {
    let repr = tcp::Repr {
        src_port: 40001,
        dst_port: 80,
        seq_number: 7001,
        ack_number: 9001,
        flags: tcp::Flags(f),
        window: 501,
        options: opts,
    };
    let seg = frames::tcp(&repr, &[]);
    let ip = frames::ipv4(
        [198, 18, 2, 2].into(),
        [198, 18, 0, 10].into(),
        frames::TCP,
        64,
        7,
        &seg,
    );
    frames::eth(dst_mac, ROUTER_MAC, ethertype::IPV4, &ip)
}

#[test]
fn the_worker_sends_one_add_addr_per_connection() {
    let s = Scratch::new("addaddr");
    let lb_mac_guess = [0x02, 0x70, 0x63, 0x61, 0x70, 0x00];
    let third_ack = segment(
        lb_mac_guess,
        flags::ACK,
        &opt::mp_capable(&[CLIENT_KEY, SERVER_KEY]),
    );
    let input = vec![
        segment(lb_mac_guess, flags::SYN, &opt::mp_capable_syn()),
        third_ack.clone(),
        third_ack,
        segment(lb_mac_guess, flags::ACK, &opt::dss_ack(1)),
    ];
    let vip = Vip::web()
        .option("table_size", 251)
        .option("announce_backend_address", true)
        .backend(Backend::new("a", "198.18.1.11").mac("02:00:00:00:01:11"));
    let (inp, outp, cfg) = (s.path("in.pcap"), s.path("out.pcap"), s.path("mplb.toml"));
    write_pcap(&inp, &input);
    write_config(&cfg, &pcap_config(&s, &inp, &outp, &vip.to_string()));
    let (stdout, _) = stopped_cleanly(&run_for(&cfg, "1.5"));

    let got = read_pcap(&outp);
    assert_eq!(got.len(), 5, "4 forwarded + 1 announcement");
    let forwarded = got.iter().filter(|f| f[..6] == BACKEND_MAC).count();
    assert_eq!(forwarded, 4);
    let announcements: Vec<_> = got.iter().filter(|f| f[..6] == ROUTER_MAC).collect();
    assert_eq!(announcements.len(), 1);
    let a = announcements[0];
    let ip = parse_frame(a).expect("parses").ip.expect("IP");
    assert_eq!(ip.src_addr().to_string(), "198.18.0.10");
    assert_eq!(ip.dst_addr().to_string(), "198.18.2.2");
    let seg = tcp::Packet::new_checked(&a[ip.l4_offset..ip.l3_end]).expect("TCP");
    assert!(seg.verify_checksum_v4([198, 18, 0, 10].into(), [198, 18, 2, 2].into()));
    assert_eq!((seg.src_port(), seg.dst_port()), (80, 40001));
    assert_eq!((seg.seq_number(), seg.ack_number()), (9001, 7001));
    let backend = "198.18.1.11".parse().unwrap();
    let hmac = add_addr::hmac_v1(SERVER_KEY, CLIENT_KEY, 200, backend, 0);
    let opts: Vec<_> = seg.options_iter().collect();
    match opts.as_slice() {
        [Ok(tcp::TcpOption::Mptcp(MptcpOption::AddAddr(o)))] => {
            assert_eq!((o.addr_id, o.addr, o.hmac), (200, backend, Some(hmac)));
        }
        o => panic!("{o:?}"),
    }
    assert_eq!(counter(&stdout, "add_addr_sent"), 1);
    assert_eq!(counter(&stdout, "add_addr_skipped_duplicate"), 1);
    assert_eq!(counter(&stdout, "tx_packets"), 5);
}
