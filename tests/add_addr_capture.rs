//! Golden check of the ADD_ADDR that mplb sends on a backend's behalf
//! against a real Linux stack: in tests/data/mptcp_v4.pcap and mptcp_v6.pcap
//! the backend (a stock Linux 6.18 with `signal` endpoints) announced its
//! own addresses itself. From the keys of the client's third ACK in the same
//! capture, `wire::add_addr` must give exactly the option bytes — HMAC
//! included — that Linux put on the wire. (v0: no Linux stack speaks it;
//! its layout is checked against RFC 6824 in `wire::add_addr`'s tests.)

use std::path::Path;

use mplb::wire::add_addr;
use mplb::wire::mptcp::{CapableForm, MptcpOption};
use mplb::wire::parse_frame;
use mplb::wire::tcp::{self, TcpOption};
use pcap_file::pcap::PcapReader;

/// Every kind-30 option of every frame, with the frame's MPTCP options raw.
fn frames(name: &str) -> Vec<Vec<Vec<u8>>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut r = PcapReader::new(file).expect("pcap");
    let mut out = Vec::new();
    while let Some(p) = r.next_packet() {
        let p = p.expect("packet");
        let ip = parse_frame(&p.data).expect("parses").ip.expect("ip");
        let seg = tcp::Packet::new_checked(&p.data[ip.l4_offset..ip.l3_end]).expect("tcp");
        let mut opts = Vec::new();
        let raw = seg.options();
        let mut at = 0;
        // Walk the raw options to keep each kind-30 option's bytes.
        while at < raw.len() {
            match raw[at] {
                0 => break,
                1 => at += 1,
                _ => {
                    let len = usize::from(raw[at + 1]);
                    if raw[at] == 30 {
                        opts.push(raw[at..at + len].to_vec());
                    }
                    at += len;
                }
            }
        }
        assert_eq!(
            opts.len(),
            seg.options_iter()
                .filter(|o| matches!(o, Ok(TcpOption::Mptcp(_))))
                .count()
        );
        out.push(opts);
    }
    out
}

fn check(name: &str) {
    let frames = frames(name);
    let (client_key, server_key) = frames
        .iter()
        .flatten()
        .find_map(|o| match MptcpOption::parse(o) {
            MptcpOption::MpCapable(c) => match c.form {
                CapableForm::TwoKeys {
                    sender_key,
                    receiver_key,
                } => Some((sender_key, receiver_key)),
                _ => None,
            },
            _ => None,
        })
        .expect("third ACK with both keys");
    let mut announced = 0;
    for o in frames.iter().flatten() {
        let MptcpOption::AddAddr(a) = MptcpOption::parse(o) else {
            continue;
        };
        if a.echo {
            continue;
        }
        let hmac = add_addr::hmac_v1(server_key, client_key, a.addr_id, a.addr, 0);
        assert_eq!(Some(hmac), a.hmac, "{name}: {a:?}");
        let mut buf = [0u8; add_addr::MAX_LEN];
        let n = add_addr::emit_v1(&mut buf, a.addr_id, a.addr, hmac).expect("emit");
        assert_eq!(&buf[..n], o.as_slice(), "{name}: byte for byte");
        // The client's key first is what a Linux client rejects.
        assert_ne!(
            Some(add_addr::hmac_v1(
                client_key, server_key, a.addr_id, a.addr, 0
            )),
            a.hmac
        );
        announced += 1;
    }
    // The backend announced its IPv4 and its IPv6 address.
    assert_eq!(announced, 2, "{name}");
}

#[test]
fn linux_backends_add_addr_hmac_is_reproduced_v4() {
    check("mptcp_v4.pcap");
}

#[test]
fn linux_backends_add_addr_hmac_is_reproduced_v6() {
    check("mptcp_v6.pcap");
}

/// The announcement mplb builds from the capture's real third ACK has the
/// ports, sequence and acknowledgement numbers of the ADD_ADDR the real
/// backend sent right after it: what the client's TCP expects from the
/// server at that moment.
fn same_numbers_as_linux(name: &str, vip: &str, backend: &str) {
    use mplb::datapath::frame::TestFrame;
    use mplb::datapath::verdict::Verdict;
    use mplb::testing::config::{Backend, Vip, null_port};
    use mplb::testing::{self, Tables};

    let text = null_port("ipv6 = [\"fd00:18::1\"]\n")
        + &Vip::new("web", vip, 80)
            .option("table_size", 251)
            .option("announce_backend_address", true)
            .backend(Backend::new("be0", backend).mac("02:00:00:00:01:11"))
            .to_string();
    let fwd = testing::forwarding(&testing::parse(&text), &[[2, 0, 0, 0, 2, 1]]);
    let mut dp = Tables::small(1024).datapath();
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    let mut r = PcapReader::new(std::fs::File::open(&path).expect("pcap")).expect("pcap");
    let vip: std::net::IpAddr = vip.parse().unwrap();
    let mut ours = None;
    let mut linux = None;
    while let Some(p) = r.next_packet() {
        let data = p.expect("packet").data.into_owned();
        let ip = parse_frame(&data).expect("parses").ip.expect("ip");
        let seg = tcp::Packet::new_checked(&data[ip.l4_offset..ip.l3_end]).expect("tcp");
        let numbers = (
            seg.src_port(),
            seg.dst_port(),
            seg.seq_number(),
            seg.ack_number(),
        );
        if ip.dst_addr() == vip && ours.is_none() {
            let mut f = TestFrame::new(&data);
            assert_eq!(dp.process(&fwd, 0, &mut f, 1 << 40), Verdict::Forward);
            dp.announcements().drain(|a| {
                let ip = parse_frame(a.frame()).unwrap().ip.unwrap();
                let s = tcp::Packet::new_checked(&a.frame()[ip.l4_offset..ip.l3_end]).unwrap();
                ours = Some((s.src_port(), s.dst_port(), s.seq_number(), s.ack_number()));
            });
        } else if ip.src_addr() == vip
            && linux.is_none()
            && seg
                .options_iter()
                .any(|o| matches!(o, Ok(TcpOption::Mptcp(MptcpOption::AddAddr(a))) if !a.echo))
        {
            linux = Some(numbers);
        }
    }
    assert!(ours.is_some(), "{name}: mplb announced");
    assert_eq!(
        ours, linux,
        "{name}: (ports, seq, ack) as the real backend's ADD_ADDR"
    );
}

#[test]
fn the_announcement_carries_the_real_backends_sequence_numbers_v4() {
    same_numbers_as_linux("mptcp_v4.pcap", "198.18.0.10", "198.18.1.11");
}

#[test]
fn the_announcement_carries_the_real_backends_sequence_numbers_v6() {
    same_numbers_as_linux("mptcp_v6.pcap", "fd00:18::10", "fd00:18:1::11");
}
