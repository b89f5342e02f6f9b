//! A reload that changes the backend set keeps established plain-TCP flows
//! on the backend they were pinned to, while new flows follow the new Maglev
//! table. Runs the real config → Manager → snapshot → Datapath path.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use mplb::config::Config;
use mplb::control::manager::{Manager, Request};
use mplb::datapath::frame::TestFrame;
use mplb::datapath::process::Datapath;
use mplb::datapath::verdict::Verdict;
use mplb::testing::frames::flags::{ACK, SYN};
use mplb::testing::frames::{self, ethertype};
use mplb::testing::{Backend, Tables, Vip};
use mplb::wire::tcp;

const PORT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];

fn config(backends: usize) -> String {
    let vip = Vip::new("web", "198.18.0.10", 80)
        .option("table_size", 1009)
        .backends((0..backends).map(|i| {
            Backend::new(format!("web-{i}"), format!("198.18.1.{}", 11 + i))
                .mac(format!("02:00:00:00:01:{i:02x}"))
        }));
    format!(
        "[dpdk]\neal_args = []\n[workers]\nlcores = [1]\n[[port]]\nname = \"lan\"\n\
         device = \"net_null0\"\n[flow_table]\ncapacity = 4096\n{vip}"
    )
}

/// A client→VIP TCP segment (no options) as a minimal Ethernet frame.
fn segment(sport: u16, flags: u8) -> Vec<u8> {
    let (client, vip) = (Ipv4Addr::new(198, 18, 2, 2), Ipv4Addr::new(198, 18, 0, 10));
    let seg = tcp::Repr {
        src_port: sport,
        dst_port: 80,
        seq_number: 1,
        ack_number: 1,
        flags: tcp::Flags(flags),
        window: 0xffff,
        options: &[],
    };
    let ip = frames::ipv4(client, vip, frames::TCP, 64, 1, &frames::tcp(&seg, &[]));
    frames::eth(PORT_MAC, [2, 0, 0, 0, 0, 0xc1], ethertype::IPV4, &ip)
}

/// The backend (last MAC byte) a segment is sent to.
fn send(dp: &mut Datapath, m: &Manager, sport: u16, flags: u8, now: u64) -> u8 {
    let mut frame = TestFrame::new(&segment(sport, flags));
    let fwd = m.current();
    assert_eq!(dp.process(&fwd, 0, &mut frame, now), Verdict::Forward);
    frame[5]
}

#[test]
fn reload_keeps_established_flows_and_moves_new_ones() {
    let path = std::env::temp_dir().join(format!("mplb-reload-flows-{}.toml", std::process::id()));
    struct Rm(PathBuf);
    impl Drop for Rm {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let _rm = Rm(path.clone());
    std::fs::write(&path, config(2)).expect("write");
    let cfg = Config::load(&path).expect("valid");
    let mut dp = Tables::of(&cfg).datapath();
    let mut m = Manager::new(&path, cfg, vec![PORT_MAC]).expect("manager");

    // 64 plain-TCP connections: SYN (stateless), then ACKs (pinned, trusted).
    let ports: Vec<u16> = (41000..41064).collect();
    let mut pinned = Vec::new();
    for (t, &p) in ports.iter().enumerate() {
        let now = t as u64 * 1000;
        let b = send(&mut dp, &m, p, SYN, now);
        assert_eq!(send(&mut dp, &m, p, ACK, now + 1), b);
        assert_eq!(send(&mut dp, &m, p, ACK, now + 2), b);
        pinned.push(b);
    }

    // Add a third backend and reload.
    std::fs::write(&path, config(3)).expect("write");
    m.handle(&Request::Reload).expect("reload applied");

    // New connections with the same tuples would now partly go to web-2 ...
    let fresh: Vec<u8> = ports
        .iter()
        .map(|&p| send(&mut dp, &m, p, SYN, 1_000_000))
        .collect();
    let moved = fresh.iter().zip(&pinned).filter(|(a, b)| a != b).count();
    assert!(
        moved > 0,
        "the new table must send some new flows elsewhere for this test to mean anything"
    );
    assert!(fresh.contains(&2));
    // ... but every established flow stays on its backend.
    for (&p, &b) in ports.iter().zip(&pinned) {
        assert_eq!(
            send(&mut dp, &m, p, ACK, 2_000_000),
            b,
            "flow from port {p} moved"
        );
    }
}
