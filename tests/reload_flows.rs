//! A reload that changes the backend set keeps established plain-TCP flows
//! on the backend they were pinned to, while new flows follow the new Maglev
//! table. Runs the real config → Manager → snapshot → Datapath path.

use std::path::PathBuf;
use std::sync::Arc;

use mplb::config::Config;
use mplb::control::datapath_tables;
use mplb::control::manager::{Manager, Request};
use mplb::datapath::frame::TestFrame;
use mplb::datapath::process::Datapath;
use mplb::datapath::token_table::TokenTable;
use mplb::datapath::verdict::Verdict;

const PORT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];

fn config(backends: usize) -> String {
    let mut c = String::from(
        "[dpdk]\neal_args = []\n[workers]\nlcores = [1]\n[[port]]\nname = \"lan\"\ndevice = \"net_null0\"\n\
         [flow_table]\ncapacity = 4096\n[[vip]]\nname = \"web\"\naddress = \"198.18.0.10\"\nport = 80\ntable_size = 1009\n",
    );
    for i in 0..backends {
        c += &format!(
            "  [[vip.backend]]\n  name = \"web-{i}\"\n  address = \"198.18.1.{}\"\n  mac = \"02:00:00:00:01:{:02x}\"\n",
            11 + i,
            i
        );
    }
    c
}

/// A client→VIP TCP segment (no options) as a minimal Ethernet frame.
fn segment(sport: u16, flags: u8) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&PORT_MAC);
    f.extend_from_slice(&[2, 0, 0, 0, 0, 0xc1]);
    f.extend_from_slice(&[0x08, 0x00]);
    let mut ip = vec![
        0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6, 0, 0, 198, 18, 2, 2, 198, 18, 0, 10,
    ];
    let sum = ip
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum::<u32>();
    let sum = (sum & 0xffff) + (sum >> 16);
    let check = !((sum & 0xffff) + (sum >> 16)) as u16;
    ip[10..12].copy_from_slice(&check.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&80u16.to_be_bytes());
    f.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    f
}

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;

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
    let (flow, cap, ttl) = datapath_tables(&cfg);
    let mut m = Manager::new(&path, cfg, vec![PORT_MAC]).expect("manager");
    let tokens = Arc::new(TokenTable::new(cap, ttl).expect("tokens"));
    let mut dp = Datapath::new(flow, tokens).expect("datapath");

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
