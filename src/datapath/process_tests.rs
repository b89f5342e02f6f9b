//! Unit tests of the datapath core: each decision rule, the local answers
//! and the rewrites, over both IP versions and both forwarding modes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use proptest::prelude::*;

use super::*;
use crate::datapath::flow_table::FlowTimeouts;
use crate::datapath::frame::TestFrame;
use crate::datapath::hash::{HashVersion, flow_hash, tuple3_hash};
use crate::datapath::maglev::BackendId;
use crate::testing::config::{with_backend_state, without_backend};
use crate::testing::frames::flags::{ACK, FIN, RST, SYN};
use crate::testing::frames::{self, opt};
use crate::testing::{self, Tables};
use crate::wire::ethernet::MacAddr;
use crate::wire::{arp, checksum, icmpv6, ipv4, ipv6, mptcp};

const S: u64 = 1_000_000_000;
const PORT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x10];
const GW_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xfe];
const CLIENT_MAC: [u8; 6] = [2, 0, 0, 0, 2, 2];

/// The config of these tests: tests/fixtures/datapath.toml.
fn cfg() -> &'static str {
    testing::fixture("datapath")
}

fn forwarding(text: &str) -> Forwarding {
    testing::forwarding(&testing::parse(text), &[PORT_MAC])
}

/// The config with backend `name`'s state set (in every VIP it serves).
fn with_state(name: &str, state: &str) -> Forwarding {
    forwarding(&with_backend_state(cfg(), name, state))
}

fn v4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}
fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

struct Lab {
    fwd: Forwarding,
    dp: Datapath,
    now: u64,
}

impl Lab {
    fn new() -> Lab {
        Lab::with_tokens(Tables::small(4096).tokens)
    }
    fn with_tokens(tokens: Arc<TokenTable>) -> Lab {
        Lab {
            fwd: forwarding(cfg()),
            dp: Tables::with_tokens(4096, tokens).datapath(),
            now: 1_000 * S,
        }
    }
    fn send(&mut self, bytes: &[u8]) -> (Verdict, Vec<u8>) {
        let mut f = TestFrame::new(bytes);
        let v = self.dp.process(&self.fwd, 0, &mut f, self.now);
        (v, f.to_vec())
    }
    /// Forwards and returns the backend name chosen (by destination MAC in
    /// L2 DSR, by outer destination address with IP-in-IP).
    fn backend(&mut self, bytes: &[u8]) -> String {
        let (v, out) = self.send(bytes);
        assert_eq!(v, Verdict::Forward, "{:?}", self.dp.counters);
        self.backend_of(&out)
    }
    fn backend_of(&self, out: &[u8]) -> String {
        let et = u16::from_be_bytes([out[12], out[13]]);
        let inner_is_ip = match et {
            ethertype::IPV4 => out[14 + 9] == 4 || out[14 + 9] == 41,
            ethertype::IPV6 => out[14 + 6] == 4 || out[14 + 6] == 41,
            _ => false,
        };
        self.fwd
            .backends
            .iter()
            .flatten()
            .find(|b| {
                if inner_is_ip && b.addr.to_string().starts_with(['1', 'f']) {
                    let dst: IpAddr = match et {
                        ethertype::IPV4 => {
                            IpAddr::V4(Ipv4Addr::new(out[30], out[31], out[32], out[33]))
                        }
                        _ => {
                            let mut a = [0u8; 16];
                            a.copy_from_slice(&out[38..54]);
                            IpAddr::V6(a.into())
                        }
                    };
                    b.addr == dst && b.name.starts_with('t')
                } else {
                    b.mac == Some(out[..6].try_into().unwrap())
                }
            })
            .map(|b| b.name.clone())
            .expect("a backend")
    }
    fn id(&self, name: &str) -> BackendId {
        self.fwd
            .backends
            .iter()
            .flatten()
            .find(|b| b.name == name)
            .unwrap()
            .id
    }
    /// The backend Maglev picks for `key` in VIP `vip`.
    fn maglev(&self, vip: &str, key: &FlowKey) -> String {
        let v = self.fwd.vips.iter().find(|v| v.name == vip).unwrap();
        let id = v.maglev.lookup(flow_hash(key)).unwrap();
        self.fwd.backend(id).unwrap().name.clone()
    }
}

// ---- frames (the kit's wire emitters; the golden tests build their own) ----

fn eth(et: u16, payload: &[u8]) -> Vec<u8> {
    frames::eth(PORT_MAC, CLIENT_MAC, et, payload)
}

fn ip4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, ttl: u8, l4: &[u8]) -> Vec<u8> {
    frames::ipv4(src, dst, proto, ttl, 7, l4)
}

fn ip6(src: Ipv6Addr, dst: Ipv6Addr, nh: u8, hop: u8, l4: &[u8]) -> Vec<u8> {
    frames::ipv6(src, dst, nh, hop, l4)
}

fn tcp(sport: u16, dport: u16, flags: u8, opts: &[u8], data: &[u8]) -> Vec<u8> {
    frames::tcp(&frames::tcp_repr(sport, dport, 1000, flags, opts), data)
}

const CLIENT_KEY: u64 = 0x4644_b275_7431_7ce1;
const SERVER_KEY: u64 = 0xd456_6925_ddf7_e962;

fn mpc_syn() -> Vec<u8> {
    opt::mp_capable_syn()
}

fn dss() -> Vec<u8> {
    opt::dss_ack(1)
}

fn third_ack_opts() -> Vec<u8> {
    opt::mp_capable(&[CLIENT_KEY, SERVER_KEY])
}

fn join_opts(token: u32) -> Vec<u8> {
    opt::mp_join(token, 0x0909_0909)
}

fn c4() -> Ipv4Addr {
    v4("198.18.2.2")
}
fn vip4() -> Ipv4Addr {
    v4("198.18.0.10")
}
fn c6() -> Ipv6Addr {
    v6("fd00:18:2::2")
}
fn vip6() -> Ipv6Addr {
    v6("fd00:18::10")
}

fn tcp4(sport: u16, dst: Ipv4Addr, flags: u8, opts: &[u8]) -> Vec<u8> {
    eth(
        ethertype::IPV4,
        &ip4(c4(), dst, 6, 64, &tcp(sport, 80, flags, opts, &[])),
    )
}

fn tcp6(sport: u16, dst: Ipv6Addr, flags: u8, opts: &[u8]) -> Vec<u8> {
    eth(
        ethertype::IPV6,
        &ip6(c6(), dst, 6, 64, &tcp(sport, 80, flags, opts, &[])),
    )
}

fn key4(sport: u16, dst: Ipv4Addr) -> FlowKey {
    FlowKey::new(c4().into(), dst.into(), sport, 80, 6)
}
fn key6(sport: u16, dst: Ipv6Addr) -> FlowKey {
    FlowKey::new(c6().into(), dst.into(), sport, 80, 6)
}

/// A source port whose flow Maglev sends to a backend other than `not`.
fn port_away_from(lab: &Lab, vip: &str, dst: IpAddr, not: &str) -> u16 {
    (30000..40000)
        .find(|p| {
            let k = match dst {
                IpAddr::V4(d) => key4(*p, d),
                IpAddr::V6(d) => key6(*p, d),
            };
            lab.maglev(vip, &k) != not
        })
        .unwrap()
}

// ---- rules 1 and 2: SYNs are stateless ----

#[test]
fn mptcp_and_plain_syn_use_maglev_and_create_no_state() {
    for version in [4, 6] {
        let mut lab = Lab::new();
        for (i, opts) in [&mpc_syn()[..], &[]].iter().enumerate() {
            for port in 40000..40050u16 {
                let (f, k, vip) = if version == 4 {
                    (tcp4(port, vip4(), SYN, opts), key4(port, vip4()), "web4")
                } else {
                    (tcp6(port, vip6(), SYN, opts), key6(port, vip6()), "web6")
                };
                let expect = lab.maglev(vip, &k);
                assert_eq!(lab.backend(&f), expect);
            }
            assert_eq!(lab.dp.flow_table().len(), 0, "v{version} case {i}");
        }
        let c = lab.dp.counters;
        assert_eq!((c.mptcp_syn, c.plain_syn), (50, 50));
        assert_eq!((c.maglev_forwarded, c.forwarded_l2), (100, 100));
        assert_eq!(c.flow_inserted, 0);
    }
}

#[test]
fn syn_flood_does_not_fill_the_flow_table() {
    let mut lab = Lab::new();
    for i in 0..5000u32 {
        let src = Ipv4Addr::from(0x0a00_0000 + i);
        let f = eth(
            ethertype::IPV4,
            &ip4(src, vip4(), 6, 64, &tcp(1234, 80, SYN, &[], &[])),
        );
        assert_eq!(lab.send(&f).0, Verdict::Forward);
    }
    assert_eq!(lab.dp.flow_table().len(), 0);
}

// ---- rules 3 and 4: token learning and join routing ----

#[test]
fn third_ack_teaches_the_token_and_the_join_follows_it() {
    for version in [4u8, 6] {
        let mut lab = Lab::new();
        let (vip, vip_addr): (&str, IpAddr) = if version == 4 {
            ("web4", vip4().into())
        } else {
            ("web6", vip6().into())
        };
        let mk = |port: u16, flags: u8, opts: &[u8]| match vip_addr {
            IpAddr::V4(d) => tcp4(port, d, flags, opts),
            IpAddr::V6(d) => tcp6(port, d, flags, opts),
        };
        let first = lab.backend(&mk(40002, SYN, &mpc_syn()));
        assert_eq!(lab.backend(&mk(40002, ACK, &third_ack_opts())), first);
        assert_eq!(lab.dp.counters.tokens_learnt, 1);
        assert_eq!(
            lab.dp.flow_table().len(),
            1,
            "the SYN made no entry; the third ACK tracks the initial subflow"
        );
        let token = mptcp::token_v1(SERVER_KEY);
        assert_eq!(token, 0xa119_08e9);
        assert_eq!(
            lab.dp.token_table().lookup(token, lab.now),
            Some(lab.id(&first))
        );

        // A join from a 5-tuple Maglev would send elsewhere.
        let jp = port_away_from(&lab, vip, vip_addr, &first);
        assert_eq!(lab.backend(&mk(jp, SYN, &join_opts(token))), first);
        assert_eq!(lab.dp.counters.join_token_hit, 1);
        assert_eq!(lab.dp.flow_table().len(), 2, "the join is pinned");
        // Its later packets follow it, with DSS or (TIME_WAIT ACK) without.
        assert_eq!(lab.backend(&mk(jp, ACK, &dss())), first);
        assert_eq!(lab.backend(&mk(jp, ACK, &[])), first);
        assert_eq!(lab.dp.counters.flow_hit, 2);
        // An unknown token: Maglev, counted.
        let (v, out) = lab.send(&mk(jp + 1, SYN, &join_opts(token ^ 1)));
        assert_eq!(v, Verdict::Forward);
        let k = match vip_addr {
            IpAddr::V4(d) => key4(jp + 1, d),
            IpAddr::V6(d) => key6(jp + 1, d),
        };
        assert_eq!(lab.backend_of(&out), lab.maglev(vip, &k));
        assert_eq!(lab.dp.counters.join_token_miss, 1);
        assert_eq!(lab.dp.flow_table().len(), 2, "a miss creates no state");
    }
}

#[test]
fn first_data_with_two_keys_also_teaches_the_token() {
    let mut lab = Lab::new();
    let mut o = vec![30, 24, 0x01, 0x01];
    o.extend_from_slice(&CLIENT_KEY.to_be_bytes());
    o.extend_from_slice(&SERVER_KEY.to_be_bytes());
    o.extend_from_slice(&[0x01, 0x2c, 0, 0]); // data-level length 300, DSS checksum (len 24)
    let b = lab.backend(&tcp4(40002, vip4(), ACK, &o));
    assert_eq!(lab.dp.counters.tokens_learnt, 1);
    assert_eq!(
        lab.dp.token_table().lookup(0xa119_08e9, lab.now),
        Some(lab.id(&b))
    );
}

#[test]
fn join_to_a_draining_backend_is_honoured_but_not_to_a_down_one() {
    let tokens = Tables::small(1024).tokens;
    let mut lab = Lab::with_tokens(tokens.clone());
    let first = lab.backend(&tcp4(40002, vip4(), ACK, &third_ack_opts()));
    let token = mptcp::token_v1(SERVER_KEY);
    lab.fwd = with_state(&first, "draining");
    let jp = 50000;
    assert_eq!(
        lab.backend(&tcp4(jp, vip4(), SYN, &join_opts(token))),
        first
    );
    assert_eq!(lab.dp.counters.join_token_hit, 1);

    let mut lab = Lab::with_tokens(tokens);
    lab.fwd = with_state(&first, "disabled");
    let b = lab.backend(&tcp4(jp, vip4(), SYN, &join_opts(token)));
    assert_ne!(b, first);
    assert_eq!(lab.dp.counters.join_token_miss, 1);
}

#[test]
fn token_routing_off_sends_joins_by_maglev() {
    let mut lab = Lab::new();
    let d = v4("198.18.0.40");
    let first = lab.backend(&tcp4(40002, d, ACK, &third_ack_opts()));
    let jp = port_away_from(&lab, "notoken", d.into(), &first);
    let b = lab.backend(&tcp4(jp, d, SYN, &join_opts(mptcp::token_v1(SERVER_KEY))));
    assert_eq!(b, lab.maglev("notoken", &key4(jp, d)));
    assert_ne!(b, first);
    assert_eq!(
        (
            lab.dp.counters.join_token_hit,
            lab.dp.counters.join_token_miss
        ),
        (0, 1)
    );
    assert_eq!(
        lab.dp.flow_table().len(),
        1,
        "the tracked initial subflow; the join routed by Maglev made no entry"
    );
}

#[test]
fn a_token_of_another_vip_is_not_used() {
    // Learnt for web4 (backend a/b/c); a join to "amb443" (only b) with it
    // must not go to a backend outside that VIP.
    let mut lab = Lab::new();
    let d = v4("198.18.0.50");
    // Find a connection whose learnt backend is not "b".
    let port = (40000..41000)
        .find(|p| lab.maglev("web4", &key4(*p, vip4())) != "b")
        .unwrap();
    lab.backend(&tcp4(port, vip4(), ACK, &third_ack_opts()));
    let f = eth(
        ethertype::IPV4,
        &ip4(
            c4(),
            d,
            6,
            64,
            &tcp(5555, 443, SYN, &join_opts(mptcp::token_v1(SERVER_KEY)), &[]),
        ),
    );
    assert_eq!(lab.backend(&f), "b");
    assert_eq!(lab.dp.counters.join_token_miss, 1);
}

#[test]
fn a_pinned_join_keeps_its_dss_across_a_backend_change_until_it_expires() {
    let mut lab = Lab::new();
    let first = lab.backend(&tcp4(40002, vip4(), ACK, &third_ack_opts()));
    let token = mptcp::token_v1(SERVER_KEY);
    let jp = port_away_from(&lab, "web4", vip4().into(), &first);
    assert_eq!(
        lab.backend(&tcp4(jp, vip4(), SYN, &join_opts(token))),
        first
    );
    // The backend set changes: Maglev no longer has `first` at all.
    lab.fwd = with_state(&first, "draining");
    assert_ne!(lab.maglev("web4", &key4(jp, vip4())), first);
    for _ in 0..3 {
        assert_eq!(lab.backend(&tcp4(jp, vip4(), ACK, &dss())), first);
    }
    assert_eq!(lab.dp.counters.flow_hit, 3);
    // Idle past the established timeout: the sweep drops the pin, and the
    // join's DSS goes by Maglev (the summary bit went with the entry), which
    // pins it again there (tracking, the default).
    lab.now += FlowTimeouts::default().established + S;
    for _ in 0..lab.dp.flow_table().capacity() / 8 / 64 {
        lab.dp.housekeeping(lab.now);
    }
    assert_eq!(lab.dp.flow_table().len(), 0);
    let want = lab.maglev("web4", &key4(jp, vip4()));
    assert_eq!(lab.backend(&tcp4(jp, vip4(), ACK, &dss())), want);
    assert_eq!(lab.dp.flow_table().len(), 1, "re-pinned where it went");
}

#[test]
fn a_segment_with_an_mptcp_option_does_not_find_a_plain_entry() {
    // The one semantic consequence of the MPTCP summary (see decide rule 4):
    // a plain entry pins the 5-tuple's option-less segments, not its MPTCP
    // ones.
    let mut lab = Lab::new();
    let p = 40010;
    let first = lab.backend(&tcp4(p, vip4(), ACK, &[]));
    assert_eq!(lab.dp.flow_table().len(), 1);
    lab.fwd = with_state(&first, "draining");
    let want = lab.maglev("web4", &key4(p, vip4()));
    assert_ne!(want, first);
    assert_eq!(lab.backend(&tcp4(p, vip4(), ACK, &dss())), want);
    assert_eq!(lab.backend(&tcp4(p, vip4(), ACK, &[])), first);
}

/// A DSS segment whose connection has no entry (its third ACK was refused
/// by the untrusted quota, or lost, or mplb restarted): Maglev, and tracked
/// from then on, as a plain flow is from its second packet. A VIP with
/// `mptcp_tracking = false` stays stateless.
#[test]
fn dss_without_entry_goes_by_maglev_and_is_tracked_unless_the_vip_is_stateless() {
    let mut lab = Lab::new();
    let ports = 40000..40020;
    let first: Vec<String> = ports
        .clone()
        .map(|p| {
            let b = lab.backend(&tcp6(p, vip6(), ACK, &dss()));
            assert_eq!(b, lab.maglev("web6", &key6(p, vip6())));
            b
        })
        .collect();
    assert_eq!(lab.dp.flow_table().len(), 20);
    assert_eq!(lab.dp.flow_table().untrusted_len(), 20);
    assert_eq!(lab.dp.counters.flow_miss, 20);
    // The next segments hit (and promote) the entries.
    for (p, b) in ports.zip(&first) {
        assert_eq!(&lab.backend(&tcp6(p, vip6(), ACK, &dss())), b);
    }
    assert_eq!(lab.dp.counters.flow_hit, 20);
    assert_eq!(lab.dp.flow_table().untrusted_len(), 0);
    // An RST on a miss creates nothing.
    lab.backend(&tcp6(40100, vip6(), RST | ACK, &dss()));
    assert_eq!(lab.dp.flow_table().len(), 20);

    let d = v4("198.18.0.31");
    for p in 41000..41020 {
        let b = lab.backend(&tcp4(p, d, ACK, &dss()));
        assert_eq!(b, lab.maglev("stateless", &key4(p, d)));
    }
    lab.backend(&tcp4(41000, d, ACK, &third_ack_opts()));
    assert_eq!(lab.dp.flow_table().len(), 20, "stateless VIP: no entry");
}

#[test]
fn mptcp_tracking_pins_the_initial_subflow() {
    let mut lab = Lab::new();
    let d = v4("198.18.0.30");
    let first = lab.backend(&tcp4(40001, d, SYN, &mpc_syn()));
    assert_eq!(lab.dp.flow_table().len(), 0);
    assert_eq!(lab.backend(&tcp4(40001, d, ACK, &third_ack_opts())), first);
    assert_eq!(lab.dp.flow_table().len(), 1);
    // The pin holds when the backend starts draining (Maglev would move it).
    let mut fwd = with_state(&first, "draining");
    std::mem::swap(&mut lab.fwd, &mut fwd);
    for _ in 0..3 {
        assert_eq!(lab.backend(&tcp4(40001, d, ACK, &dss())), first);
    }
    assert_eq!(lab.dp.counters.flow_hit, 3);
}

/// The case of issue 12: single-path MPTCP connections (a client that never
/// joins the announced address) under the default config, then a reload
/// that adds a backend. Maglev moves about a third of the flows to the new
/// backend; the tracked connections all stay.
#[test]
fn by_default_mptcp_connections_keep_their_backend_when_one_is_added() {
    use crate::control::{StableIds, build_forwarding};
    let mut ids = StableIds::default();
    let mut snapshot = |text: &str| {
        build_forwarding(&testing::parse(text), &[PORT_MAC], &mut ids).expect("snapshot")
    };
    let before = snapshot(&without_backend(cfg(), "c"));
    let after = snapshot(cfg());
    let mut lab = Lab::new();
    lab.fwd = before;
    let ports = 40000..40300;
    let mut first = Vec::new();
    for p in ports.clone() {
        let b = lab.backend(&tcp4(p, vip4(), SYN, &mpc_syn()));
        assert_eq!(lab.backend(&tcp4(p, vip4(), ACK, &third_ack_opts())), b);
        first.push(b);
    }
    assert_eq!(lab.dp.flow_table().len(), 300, "one tracked entry each");
    lab.fwd = after;
    let moved_by_maglev = ports
        .clone()
        .zip(&first)
        .filter(|(p, b)| lab.maglev("web4", &key4(*p, vip4())) != **b)
        .count();
    assert!(
        moved_by_maglev > 50,
        "the new backend takes a share ({moved_by_maglev})"
    );
    for (p, b) in ports.zip(&first) {
        assert_eq!(&lab.backend(&tcp4(p, vip4(), ACK, &dss())), b, "port {p}");
    }
    assert_eq!(lab.dp.counters.flow_hit, 300);
    assert_eq!(lab.dp.counters.flow_backend_gone, 0);
}

// ---- rule 5: plain TCP ----

#[test]
fn plain_tcp_is_pinned_and_survives_draining() {
    for version in [4, 6] {
        let mut lab = Lab::new();
        let f = |flags| {
            if version == 4 {
                tcp4(40003, vip4(), flags, &[])
            } else {
                tcp6(40003, vip6(), flags, &[])
            }
        };
        let first = lab.backend(&f(SYN));
        assert_eq!(lab.backend(&f(ACK)), first);
        assert_eq!(lab.dp.counters.flow_inserted, 1);
        assert_eq!(lab.dp.flow_table().len(), 1);
        lab.fwd = with_state(&first, "draining");
        assert_eq!(lab.backend(&f(ACK)), first);
        assert_eq!(lab.dp.counters.flow_hit, 1);
        // Down: re-hashed, re-pinned, counted.
        lab.fwd = with_state(&first, "disabled");
        let second = lab.backend(&f(ACK));
        assert_ne!(second, first);
        assert_eq!(lab.dp.counters.flow_backend_gone, 1);
        assert_eq!(lab.dp.counters.flow_inserted, 2);
        assert_eq!(lab.backend(&f(ACK)), second);
    }
}

#[test]
fn backend_removed_from_the_config_is_a_miss() {
    let mut lab = Lab::new();
    // Pick a connection pinned to "c", then remove "c" from the config.
    let port = (40000..41000)
        .find(|p| lab.maglev("web4", &key4(*p, vip4())) == "c")
        .unwrap();
    assert_eq!(lab.backend(&tcp4(port, vip4(), ACK, &[])), "c");
    let text = without_backend(cfg(), "c");
    lab.fwd = forwarding(&text);
    assert_ne!(lab.backend(&tcp4(port, vip4(), ACK, &[])), "c");
    assert_eq!(lab.dp.counters.flow_backend_gone, 1);
}

#[test]
fn rst_on_a_miss_creates_no_entry_and_fin_shortens_life() {
    let mut lab = Lab::new();
    lab.backend(&tcp4(40004, vip4(), RST | ACK, &[]));
    assert_eq!(lab.dp.flow_table().len(), 0);

    // Two flows, established; one sees a FIN. After the FIN timeout (10 s)
    // and before the established one (300 s) only the FIN'd one is gone.
    for p in [40005, 40006] {
        lab.backend(&tcp4(p, vip4(), ACK, &[]));
        lab.backend(&tcp4(p, vip4(), ACK, &[]));
    }
    lab.backend(&tcp4(40005, vip4(), FIN | ACK, &[]));
    lab.now += 20 * S;
    let hits = lab.dp.counters.flow_hit;
    lab.backend(&tcp4(40006, vip4(), ACK, &[]));
    assert_eq!(lab.dp.counters.flow_hit, hits + 1);
    lab.backend(&tcp4(40005, vip4(), ACK, &[]));
    assert_eq!(lab.dp.counters.flow_hit, hits + 1, "FIN'd entry expired");
}

#[test]
fn housekeeping_expires_idle_entries() {
    let mut lab = Lab::new();
    for p in 40000..40100 {
        lab.backend(&tcp4(p, vip4(), ACK, &[]));
    }
    assert_eq!(lab.dp.flow_table().len(), 100);
    // Untrusted entries live 5 s.
    for _ in 0..(4096 / 8 / 64 + 1) {
        lab.dp.housekeeping(lab.now + 6 * S);
    }
    assert_eq!(lab.dp.flow_table().len(), 0);
    assert_eq!(lab.dp.flow_counters().timeouts, 100);
}

#[test]
fn spoofed_non_syn_flood_does_not_push_out_established_flows() {
    let tokens = Tables::small(1024).tokens;
    let mut lab = Lab::with_tokens(tokens.clone());
    lab.dp = Tables::with_tokens(1024, tokens).datapath();
    // 200 real flows, two packets each (trusted): 100 plain, 100 MPTCP
    // connections tracked from their third ACK, then a DSS.
    let mut real = Vec::new();
    for p in 20000..20200u16 {
        let (first, later) = if p % 2 == 0 {
            (tcp4(p, vip4(), ACK, &[]), tcp4(p, vip4(), ACK, &[]))
        } else {
            (
                tcp4(p, vip4(), ACK, &third_ack_opts()),
                tcp4(p, vip4(), ACK, &dss()),
            )
        };
        let b = lab.backend(&first);
        assert_eq!(lab.backend(&later), b);
        real.push((later, b));
    }
    assert_eq!(lab.dp.flow_table().untrusted_len(), 0);
    // 20 000 spoofed one-packet flows from random sources: plain ACKs and
    // MPTCP DSS segments, each of which a tracked VIP pins (untrusted).
    let mut x = 0x1234_5678u32;
    for n in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let opts = if n % 2 == 0 { Vec::new() } else { dss() };
        let f = eth(
            ethertype::IPV4,
            &ip4(
                Ipv4Addr::from(x),
                vip4(),
                6,
                64,
                &tcp(x as u16, 80, ACK, &opts, &[]),
            ),
        );
        assert_eq!(lab.send(&f).0, Verdict::Forward);
        lab.now += 1000;
    }
    assert!(lab.dp.counters.flow_insert_rejected > 0);
    // Every real flow is still pinned: with all of its backends draining
    // except one, Maglev would move them, the table must not.
    let hits = lab.dp.counters.flow_hit;
    for b in ["a", "b", "c"] {
        let mut fwd = with_state(b, "draining");
        std::mem::swap(&mut lab.fwd, &mut fwd);
        for (f, expect) in real.iter().filter(|(_, e)| e == b) {
            assert_eq!(&lab.backend(f), expect);
        }
        std::mem::swap(&mut lab.fwd, &mut fwd);
    }
    assert_eq!(lab.dp.counters.flow_hit, hits + 200);
}

// ---- ICMP errors ----

fn frag_needed_v4(vip: Ipv4Addr, client: Ipv4Addr, vport: u16, cport: u16) -> Vec<u8> {
    let mut quoted = ip4(vip, client, 6, 63, &tcp(vport, cport, ACK, &[], &[0; 1400]));
    quoted.truncate(28);
    let m = frames::icmpv4(3, 4, [0, 0, 0x05, 0x78], &quoted);
    eth(ethertype::IPV4, &ip4(v4("203.0.113.1"), vip, 1, 60, &m))
}

fn ptb_v6(vip: Ipv6Addr, client: Ipv6Addr, vport: u16, cport: u16) -> Vec<u8> {
    let quoted = ip6(vip, client, 6, 63, &tcp(vport, cport, ACK, &[], &[0; 64]));
    let mut m = vec![2, 0, 0, 0, 0, 0, 0x05, 0x00];
    m.extend_from_slice(&quoted);
    eth(ethertype::IPV6, &ip6(v6("2001:db8::1"), vip, 58, 60, &m))
}

#[test]
fn icmp_errors_reach_the_flows_backend() {
    let mut lab = Lab::new();
    // Stateless flow (an MPTCP SYN): the error follows Maglev on the
    // reversed quoted tuple, i.e. where the SYN went.
    for p in 40000..40020 {
        let syn = lab.backend(&tcp4(p, vip4(), SYN, &mpc_syn()));
        assert_eq!(lab.backend(&frag_needed_v4(vip4(), c4(), 80, p)), syn);
        let syn6 = lab.backend(&tcp6(p, vip6(), SYN, &mpc_syn()));
        assert_eq!(lab.backend(&ptb_v6(vip6(), c6(), 80, p)), syn6);
    }
    // Pinned flow whose backend Maglev no longer picks.
    let first = lab.backend(&tcp4(41000, vip4(), ACK, &[]));
    lab.backend(&tcp4(41000, vip4(), ACK, &[]));
    lab.fwd = with_state(&first, "draining");
    assert_eq!(lab.backend(&frag_needed_v4(vip4(), c4(), 80, 41000)), first);
    assert_eq!(lab.dp.counters.icmp_errors_forwarded, 41);
    // An error quoting a port that is no VIP: dropped.
    assert_eq!(
        lab.send(&frag_needed_v4(vip4(), c4(), 8080, 1)).0,
        Verdict::Drop(DropReason::NoVip)
    );
}

// ---- fragments and UDP ----

fn frag4(dst: Ipv4Addr, proto: u8, offset8: u16, more: bool, body: &[u8]) -> Vec<u8> {
    let mut ip = ip4(c4(), dst, proto, 64, body);
    let mut p = ipv4::Packet::new_checked(&mut ip[..]).unwrap();
    p.set_flags_frag(false, more, offset8 * 8);
    p.fill_checksum();
    eth(ethertype::IPV4, &ip)
}

fn frag6(dst: Ipv6Addr, proto: u8, offset8: u16, more: bool, body: &[u8]) -> Vec<u8> {
    let mut fh = vec![proto, 0];
    fh.extend_from_slice(&((offset8 << 3) | u16::from(more)).to_be_bytes());
    fh.extend_from_slice(&77u32.to_be_bytes());
    fh.extend_from_slice(body);
    eth(ethertype::IPV6, &ip6(c6(), dst, 44, 64, &fh))
}

#[test]
fn all_fragments_of_a_datagram_go_to_one_backend() {
    let mut lab = Lab::new();
    let udp = [0x13, 0x88, 0, 53, 0, 40, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8];
    let first = lab.backend(&frag4(vip4(), 17, 0, true, &udp));
    let later = lab.backend(&frag4(vip4(), 17, 2, false, &[0xaa; 16]));
    assert_eq!(first, later);
    let h = tuple3_hash(
        &c4().to_ipv6_mapped().octets(),
        &vip4().to_ipv6_mapped().octets(),
        17,
    );
    let v = lab.fwd.vips.iter().find(|v| v.name == "dns4").unwrap();
    let expect = lab.fwd.backend(v.maglev.lookup(h).unwrap()).unwrap();
    assert_eq!(first, expect.name);

    let seg = tcp(40000, 80, ACK, &[], &[0; 8]);
    let f6 = lab.backend(&frag6(vip6(), 6, 0, true, &seg));
    assert_eq!(lab.backend(&frag6(vip6(), 6, 4, false, &[0; 8])), f6);
    assert_eq!(lab.dp.counters.fragments_forwarded, 4);
    assert_eq!(lab.dp.flow_table().len(), 0);

    // Two TCP VIPs on 198.18.0.50: a fragment cannot be told apart.
    assert_eq!(
        lab.send(&frag4(v4("198.18.0.50"), 6, 2, false, &[0; 8])).0,
        Verdict::Drop(DropReason::Fragment)
    );
    assert_eq!(lab.dp.counters.drops[DropReason::Fragment], 1);
}

#[test]
fn udp_goes_by_maglev_without_state() {
    let mut lab = Lab::new();
    for p in 5000..5020u16 {
        let mut u = vec![0u8; 8];
        u[..2].copy_from_slice(&p.to_be_bytes());
        u[2..4].copy_from_slice(&53u16.to_be_bytes());
        u[4..6].copy_from_slice(&8u16.to_be_bytes());
        let b = lab.backend(&eth(ethertype::IPV4, &ip4(c4(), vip4(), 17, 64, &u)));
        let k = FlowKey::new(c4().into(), vip4().into(), p, 53, 17);
        assert_eq!(b, lab.maglev("dns4", &k));
    }
    assert_eq!(lab.dp.counters.udp_forwarded, 20);
    assert_eq!(lab.dp.flow_table().len(), 0);
    // UDP to the TCP-only port: no VIP.
    let u = [0x13, 0x88, 0, 80, 0, 8, 0, 0];
    assert_eq!(
        lab.send(&eth(ethertype::IPV4, &ip4(c4(), vip4(), 17, 64, &u)))
            .0,
        Verdict::Drop(DropReason::NoVip)
    );
}

// ---- drops ----

#[test]
fn drops_are_counted_by_reason() {
    let mut lab = Lab::new();
    let ttl1 = eth(
        ethertype::IPV4,
        &ip4(c4(), vip4(), 6, 1, &tcp(1, 80, SYN, &[], &[])),
    );
    assert_eq!(lab.send(&ttl1).0, Verdict::Drop(DropReason::Ttl));
    let hop1 = eth(
        ethertype::IPV6,
        &ip6(c6(), vip6(), 6, 1, &tcp(1, 80, SYN, &[], &[])),
    );
    assert_eq!(lab.send(&hop1).0, Verdict::Drop(DropReason::Ttl));
    assert_eq!(lab.dp.counters.drops[DropReason::Ttl], 2);
    assert_eq!(
        lab.send(&tcp4(1, v4("198.18.9.9"), SYN, &[])).0,
        Verdict::Drop(DropReason::NotForUs)
    );
    let wrong_port = eth(
        ethertype::IPV4,
        &ip4(c4(), vip4(), 6, 64, &tcp(1, 81, SYN, &[], &[])),
    );
    assert_eq!(lab.send(&wrong_port).0, Verdict::Drop(DropReason::NoVip));
    assert_eq!(lab.send(&[1, 2, 3]).0, Verdict::Drop(DropReason::Malformed));
    assert_eq!(
        lab.send(&eth(0x88cc, &[0; 40])).0,
        Verdict::Drop(DropReason::Unsupported)
    );
    // GRE to a VIP.
    assert_eq!(
        lab.send(&eth(ethertype::IPV4, &ip4(c4(), vip4(), 47, 64, &[0; 8])))
            .0,
        Verdict::Drop(DropReason::Unsupported)
    );
    // All backends down.
    let mut text = cfg().to_string();
    for n in ["a", "b", "c"] {
        let needle = format!("name = \"{n}\"\n");
        text = text.replace(&needle, &format!("{needle}  state = \"disabled\"\n"));
    }
    lab.fwd = forwarding(&text);
    assert_eq!(
        lab.send(&tcp4(1, vip4(), SYN, &[])).0,
        Verdict::Drop(DropReason::NoBackend)
    );
    let c = lab.dp.counters;
    assert_eq!(
        (
            c.drops[DropReason::NotForUs],
            c.drops[DropReason::NoVip],
            c.drops[DropReason::Malformed],
            c.drops[DropReason::Unsupported],
            c.drops[DropReason::NoBackend]
        ),
        (1, 1, 1, 2, 1)
    );
    // Frames from an unknown port.
    let mut f = TestFrame::new(&tcp4(1, vip4(), SYN, &[]));
    assert_eq!(
        lab.dp.process(&lab.fwd, 3, &mut f, lab.now),
        Verdict::Drop(DropReason::NotForUs)
    );
}

// ---- local answers ----

fn arp_request(target: Ipv4Addr) -> Vec<u8> {
    let mut a = vec![0u8; 28];
    arp::emit(
        &mut a,
        arp::op::REQUEST,
        (MacAddr(CLIENT_MAC), c4()),
        (MacAddr::ZERO, target),
    )
    .unwrap();
    let mut f = eth(ethertype::ARP, &a);
    f[..6].copy_from_slice(&[0xff; 6]);
    f
}

#[test]
fn arp_for_vips_and_own_addresses() {
    let mut lab = Lab::new();
    for t in ["198.18.0.10", "198.18.0.1", "198.18.0.20"] {
        let (v, out) = lab.send(&arp_request(v4(t)));
        assert_eq!(v, Verdict::Reply, "{t}");
        let a = arp::Packet::new_checked(&out[14..]).unwrap();
        assert_eq!(a.operation(), arp::op::REPLY);
        assert_eq!((a.sender_mac().0, a.sender_ip()), (PORT_MAC, v4(t)));
        assert_eq!((a.target_mac().0, a.target_ip()), (CLIENT_MAC, c4()));
        assert_eq!(&out[..6], &CLIENT_MAC);
        assert_eq!(&out[6..12], &PORT_MAC);
    }
    assert_eq!(
        lab.send(&arp_request(v4("198.18.0.99"))).0,
        Verdict::Drop(DropReason::NotForUs)
    );
    assert_eq!(lab.dp.counters.arp_replies, 3);
}

fn ns(src: Ipv6Addr, target: Ipv6Addr, hop: u8) -> Vec<u8> {
    let o = target.octets();
    let dst = Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(o[13]),
        u16::from_be_bytes([o[14], o[15]]),
    );
    let mut m = vec![135, 0, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(&o);
    if !src.is_unspecified() {
        m.extend_from_slice(&[1, 1]);
        m.extend_from_slice(&CLIENT_MAC);
    }
    let mut p = icmpv6::Packet::new_checked(&mut m[..]).unwrap();
    p.fill_checksum(&src, &dst).unwrap();
    eth(ethertype::IPV6, &ip6(src, dst, 58, hop, &m))
}

#[test]
fn neighbour_solicitations_for_vips_and_own_addresses() {
    let mut lab = Lab::new();
    for t in ["fd00:18::10", "fd00:18::1"] {
        let (v, out) = lab.send(&ns(c6(), v6(t), 255));
        assert_eq!(v, Verdict::Reply, "{t}");
        assert_eq!(out.len(), 14 + 40 + 32);
        assert_eq!((&out[..6], &out[6..12]), (&CLIENT_MAC[..], &PORT_MAC[..]));
        let ip = ipv6::Packet::new_checked(&out[14..]).unwrap();
        assert_eq!((ip.src_addr(), ip.dst_addr()), (v6(t), c6()));
        assert_eq!(ip.hop_limit(), 255);
        let m = icmpv6::Packet::new_checked(&out[54..]).unwrap();
        assert!(m.verify_checksum(&v6(t), &c6()));
        assert_eq!(m.msg_type(), 136);
        assert_eq!(m.target_addr(), Some(v6(t)));
        assert_eq!(m.target_link_addr(), Some(MacAddr(PORT_MAC)));
        assert_eq!(m.na_flags(), 0x60);
    }
    // DAD probe (no source link-layer option: the frame grows).
    let (v, out) = lab.send(&ns(Ipv6Addr::UNSPECIFIED, vip6(), 255));
    assert_eq!(v, Verdict::Reply);
    assert_eq!(&out[..6], &[0x33, 0x33, 0, 0, 0, 1]);
    let m = icmpv6::Packet::new_checked(&out[54..]).unwrap();
    assert!(m.verify_checksum(&vip6(), &v6("ff02::1")));
    assert_eq!(m.na_flags(), 0x20);
    // Hop limit not 255, or someone else's address: dropped.
    assert_eq!(
        lab.send(&ns(c6(), vip6(), 64)).0,
        Verdict::Drop(DropReason::Malformed)
    );
    assert_eq!(
        lab.send(&ns(c6(), v6("fd00:18::99"), 255)).0,
        Verdict::Drop(DropReason::NotForUs)
    );
    assert_eq!(lab.dp.counters.nd_replies, 3);
}

fn echo4(dst: Ipv4Addr) -> Vec<u8> {
    let m = frames::icmpv4(8, 0, [0x12, 0x34, 0, 1], b"hi");
    eth(ethertype::IPV4, &ip4(c4(), dst, 1, 64, &m))
}

fn echo6(dst: Ipv6Addr) -> Vec<u8> {
    let m = frames::icmpv6(&c6(), &dst, 128, 0, [0x12, 0x34, 0, 1], b"hi");
    eth(ethertype::IPV6, &ip6(c6(), dst, 58, 64, &m))
}

#[test]
fn echo_to_own_addresses_only() {
    let mut lab = Lab::new();
    let (v, out) = lab.send(&echo4(v4("198.18.0.1")));
    assert_eq!(v, Verdict::Reply);
    let ip = ipv4::Packet::new_checked(&out[14..]).unwrap();
    assert_eq!((ip.src_addr(), ip.dst_addr()), (v4("198.18.0.1"), c4()));
    assert!(ip.verify_checksum());
    assert_eq!(checksum::checksum(&out[34..]), 0);
    assert_eq!(out[34], 0);
    assert_eq!((&out[..6], &out[6..12]), (&CLIENT_MAC[..], &PORT_MAC[..]));

    let (v, out) = lab.send(&echo6(v6("fd00:18::1")));
    assert_eq!(v, Verdict::Reply);
    let m = icmpv6::Packet::new_checked(&out[54..]).unwrap();
    assert_eq!(m.msg_type(), 129);
    assert!(m.verify_checksum(&v6("fd00:18::1"), &c6()));
    assert_eq!(lab.dp.counters.icmp_echo_replies, 2);

    for f in [echo4(vip4()), echo6(vip6())] {
        assert_eq!(lab.send(&f).0, Verdict::Drop(DropReason::Unsupported));
    }
    // A bad checksum is not answered.
    let mut bad = echo4(v4("198.18.0.1"));
    bad[40] ^= 1;
    assert_eq!(lab.send(&bad).0, Verdict::Drop(DropReason::Malformed));
}

// ---- rewrites ----

#[test]
fn l2_dsr_changes_only_the_macs() {
    let mut lab = Lab::new();
    let mut input = tcp4(40001, vip4(), SYN, &mpc_syn());
    input.extend_from_slice(&[0; 6]); // Ethernet padding stays too
    let (v, out) = lab.send(&input);
    assert_eq!(v, Verdict::Forward);
    assert_eq!(&out[6..12], &PORT_MAC);
    assert_eq!(&out[12..], &input[12..]);
    let name = lab.backend_of(&out);
    let mac = lab.fwd.backend(lab.id(&name)).unwrap().mac.unwrap();
    assert_eq!(&out[..6], &mac);
}

#[test]
fn two_armed_source_mac_is_the_backend_ports() {
    let mut lab = Lab::new();
    lab.fwd.interfaces.push(Interface {
        mac: [2, 0, 0, 0, 0, 0x20],
        ..Interface::default()
    });
    lab.fwd = std::mem::take(&mut lab.fwd).rebuilt();
    lab.dp.set_backend_port(Some(1));
    let (_, out) = lab.send(&tcp4(40001, vip4(), SYN, &[]));
    assert_eq!(&out[6..12], &[2, 0, 0, 0, 0, 0x20]);
}

#[test]
fn ipip_v4_outer_header() {
    let mut lab = Lab::new();
    let d = v4("198.18.0.20");
    // VLAN-tagged input with padding: both removed.
    let mut input = tcp4(40001, d, SYN, &mpc_syn());
    let inner = input[14..].to_vec();
    input.splice(12..12, [0x81, 0x00, 0x00, 0x2a]);
    input.extend_from_slice(&[0; 8]);
    for p in 40001..40040u16 {
        let mut f = input.clone();
        f[18 + 20..18 + 22].copy_from_slice(&p.to_be_bytes());
        let mut inner = inner.clone();
        inner[20..22].copy_from_slice(&p.to_be_bytes());
        let (v, out) = lab.send(&f);
        assert_eq!(v, Verdict::Forward);
        assert_eq!(out.len(), 14 + 20 + inner.len());
        assert_eq!(&out[34..], &inner[..]);
        assert_eq!(&out[12..14], &[0x08, 0x00]);
        assert_eq!(&out[6..12], &PORT_MAC);
        let o = ipv4::Packet::new_checked(&out[14..]).unwrap();
        assert!(o.verify_checksum());
        assert_eq!(o.protocol(), 4);
        assert_eq!(o.ttl(), 33);
        assert_eq!(usize::from(o.total_len()), 20 + inner.len());
        assert_eq!(o.src_addr(), v4("198.18.0.2"));
        assert_eq!(out[20] & 0x40, 0x40, "DF");
        let name = lab.backend_of(&out);
        let b = lab.fwd.backend(lab.id(&name)).unwrap();
        assert_eq!(IpAddr::V4(o.dst_addr()), b.addr);
        // t1 has a MAC; t2 has none: the gateway's.
        let want = b.mac.unwrap_or(GW_MAC);
        assert_eq!(&out[..6], &want);
    }
    assert_eq!(lab.dp.counters.forwarded_ipip, 39);
}

/// Two-armed: the outer headers are those of the backend port (its MAC,
/// its address as the source, its gateway), not of the port the frame came
/// in on.
#[test]
fn two_armed_ipip_leaves_by_the_backend_port() {
    let mut lab = Lab::new();
    const BACKEND_PORT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x20];
    const BACKEND_GW: [u8; 6] = [2, 0, 0, 0, 0, 0x2e];
    lab.fwd.interfaces.push(Interface {
        mac: BACKEND_PORT_MAC,
        ipv4: vec![v4("198.18.7.2")],
        gateway_mac: Some(BACKEND_GW),
        ..Interface::default()
    });
    // No configured outer source: the out port's first address.
    lab.fwd.encap.source_v4 = None;
    lab.fwd = std::mem::take(&mut lab.fwd).rebuilt();
    lab.dp.set_backend_port(Some(1));
    let d = v4("198.18.0.20");
    let mut seen = std::collections::BTreeSet::new();
    for p in 40001..40040u16 {
        let (v, out) = lab.send(&tcp4(p, d, SYN, &[]));
        assert_eq!(v, Verdict::Forward);
        assert_eq!(&out[6..12], &BACKEND_PORT_MAC);
        let o = ipv4::Packet::new_checked(&out[14..]).unwrap();
        assert!(o.verify_checksum());
        assert_eq!(o.src_addr(), v4("198.18.7.2"));
        let name = lab.backend_of(&out);
        let b = lab.fwd.backend(lab.id(&name)).unwrap();
        assert_eq!(&out[..6], &b.mac.unwrap_or(BACKEND_GW));
        seen.insert(name);
    }
    assert_eq!(
        seen.len(),
        2,
        "both backends, with and without a MAC: {seen:?}"
    );
}

#[test]
fn ipip_v6_outer_header_and_flow_label() {
    let mut lab = Lab::new();
    let d = v6("fd00:18::20");
    let input = tcp6(40001, d, ACK, &dss());
    let (v, out) = lab.send(&input);
    assert_eq!(v, Verdict::Forward);
    assert_eq!(&out[..6], &[2, 0, 0, 0, 0x0a, 0x61]);
    assert_eq!(&out[12..14], &[0x86, 0xdd]);
    let o = ipv6::Packet::new_checked(&out[14..]).unwrap();
    assert_eq!(o.next_header(), 41);
    assert_eq!(o.hop_limit(), 33);
    assert_eq!(usize::from(o.payload_len()), input.len() - 14);
    // No encap.source_v6: the port's first IPv6 address.
    assert_eq!(o.src_addr(), v6("fd00:18::1"));
    assert_eq!(o.dst_addr(), v6("fd00:10::1"));
    assert_eq!(&out[54..], &input[14..]);
    let label = u32::from_be_bytes([0, out[15] & 0x0f, out[16], out[17]]);
    assert_ne!(label, 0);
    // Same flow, same label; other flows spread.
    let (_, again) = lab.send(&input);
    assert_eq!(&again[15..18], &out[15..18]);
    let labels: std::collections::HashSet<[u8; 3]> = (40000..40032u16)
        .map(|p| {
            let (_, o) = lab.send(&tcp6(p, d, ACK, &dss()));
            [o[15], o[16], o[17]]
        })
        .collect();
    assert!(labels.len() > 16);
}

struct NoHeadroom(Vec<u8>);
impl std::ops::Deref for NoHeadroom {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}
impl std::ops::DerefMut for NoHeadroom {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
}
impl Frame for NoHeadroom {
    fn prepend(&mut self, _: usize) -> bool {
        false
    }
    fn trim_front(&mut self, n: usize) -> bool {
        n <= self.0.len() && {
            self.0.drain(..n);
            true
        }
    }
    fn truncate(&mut self, len: usize) {
        self.0.truncate(len)
    }
}

#[test]
fn ipip_drops_without_headroom_next_hop_or_source() {
    let mut lab = Lab::new();
    let mut f = NoHeadroom(tcp4(40001, v4("198.18.0.20"), SYN, &[]));
    assert_eq!(
        lab.dp.process(&lab.fwd, 0, &mut f, lab.now),
        Verdict::Drop(DropReason::NoHeadroom)
    );
    // No gateway MAC: the MAC-less backend t2 is unreachable.
    lab.fwd.interfaces[0].gateway_mac = None;
    lab.fwd = std::mem::take(&mut lab.fwd).rebuilt();
    let port = (40000..41000)
        .find(|p| lab.maglev("tun4", &key4(*p, v4("198.18.0.20"))) == "t2")
        .unwrap();
    assert_eq!(
        lab.send(&tcp4(port, v4("198.18.0.20"), SYN, &[])).0,
        Verdict::Drop(DropReason::NoNextHop)
    );
    // No IPv6 source anywhere.
    lab.fwd.interfaces[0].ipv6.clear();
    lab.fwd = std::mem::take(&mut lab.fwd).rebuilt();
    assert_eq!(
        lab.send(&tcp6(1, v6("fd00:18::20"), SYN, &[])).0,
        Verdict::Drop(DropReason::NoEncapSource)
    );
    let c = lab.dp.counters;
    assert_eq!(
        (
            c.drops[DropReason::NoHeadroom],
            c.drops[DropReason::NoNextHop],
            c.drops[DropReason::NoEncapSource]
        ),
        (1, 1, 1)
    );
}

#[test]
fn ipip_over_the_port_mtu_answers_the_client_keeping_the_vlan_tag() {
    let mut lab = Lab::new();
    lab.fwd.interfaces[0].mtu = 600;
    lab.fwd = std::mem::take(&mut lab.fwd).rebuilt();
    let d = v4("198.18.0.20");
    let big = |sport| {
        let mut f = eth(
            0x0800,
            &ip4(c4(), d, 6, 64, &tcp(sport, 80, ACK, &[], &[7; 560])),
        );
        f.splice(12..12, [0x81, 0x00, 0x00, 0x2a]);
        f
    };
    let (v, out) = lab.send(&big(40001));
    assert_eq!(v, Verdict::Reply);
    // Tagged like the request, from the port to the sender, from the VIP.
    assert_eq!(&out[..6], &CLIENT_MAC);
    assert_eq!(&out[6..12], &PORT_MAC);
    assert_eq!(&out[12..18], &[0x81, 0x00, 0x00, 0x2a, 0x08, 0x00]);
    let ip = ipv4::Packet::new_checked(&out[18..]).unwrap();
    assert!(ip.verify_checksum());
    assert_eq!((ip.src_addr(), ip.dst_addr()), (d, c4()));
    let icmp = crate::wire::icmpv4::Packet::new_checked(ip.payload()).unwrap();
    assert!(icmp.verify_checksum());
    assert_eq!(icmp.next_hop_mtu(), Some(580));
    assert_eq!(icmp.data(), &big(40001)[18..18 + 548]);
    // A request whose frame has no headroom to grow is dropped.
    let mut f = NoHeadroom(big(40002));
    assert_eq!(
        lab.dp.process(&lab.fwd, 0, &mut f, lab.now),
        Verdict::Drop(DropReason::NoHeadroom)
    );
    let c = lab.dp.counters;
    assert_eq!(
        (
            c.icmp_too_big_sent,
            c.forwarded_ipip,
            c.drops[DropReason::NoHeadroom]
        ),
        (1, 0, 1)
    );
    // The ICMP budget: a burst of 50, then 1 per ms (the first reply took
    // one token).
    let mut sent = 1;
    for port in 40010..40100 {
        sent += u64::from(lab.send(&big(port)).0 == Verdict::Reply);
    }
    assert_eq!(sent, 50);
    assert_eq!(lab.dp.counters.drops[DropReason::IcmpLimit], 90 - 49);
    lab.now += 5_000_000;
    let replies = (40100..40110)
        .filter(|&p| lab.send(&big(p)).0 == Verdict::Reply)
        .count();
    assert_eq!(replies, 5);
    // No error to a source that is not one host.
    let from = |src| {
        eth(
            0x0800,
            &ip4(src, d, 6, 64, &tcp(40200, 80, ACK, &[], &[7; 560])),
        )
    };
    for src in [v4("224.0.0.9"), v4("255.255.255.255"), v4("0.0.0.0")] {
        lab.now += 1_000_000_000;
        assert_eq!(
            lab.send(&from(src)).0,
            Verdict::Drop(DropReason::TooBig),
            "{src}"
        );
    }
    // Through L2 DSR nothing grows: no MTU check.
    let (v, _) = lab.send(&eth(
        0x0800,
        &ip4(c4(), vip4(), 6, 64, &tcp(40003, 80, ACK, &[], &[7; 900])),
    ));
    assert_eq!(v, Verdict::Forward);
}

// ---- burst API ----

fn mixed_frames() -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    for p in 40000..40030u16 {
        v.push(tcp4(p, vip4(), SYN, &mpc_syn()));
        v.push(tcp4(p, vip4(), ACK, &third_ack_opts()));
        v.push(tcp4(p + 1000, vip4(), ACK, &[]));
        v.push(tcp6(p, vip6(), ACK, &[]));
        v.push(tcp4(p, v4("198.18.0.20"), ACK, &[]));
        v.push(tcp6(
            p,
            v6("fd00:18::20"),
            SYN,
            &join_opts(mptcp::token_v1(SERVER_KEY)),
        ));
    }
    v.push(arp_request(vip4()));
    v.push(ns(c6(), vip6(), 255));
    v.push(echo4(v4("198.18.0.1")));
    v.push(frag_needed_v4(vip4(), c4(), 80, 41000));
    v.push(vec![0; 5]);
    v
}

/// `frames` through `process` one by one (the first lab) and through one
/// `process_burst` (the second), both on `fwd`: the same verdicts, bytes,
/// counters and flow table. Returns the two labs and the first's results.
fn burst_against_process(
    fwd: &Forwarding,
    frames: &[Vec<u8>],
) -> (Lab, Lab, Vec<(Verdict, Vec<u8>)>) {
    let (mut a, mut b) = (Lab::new(), Lab::new());
    a.fwd = fwd.clone();
    b.fwd = fwd.clone();
    let one: Vec<(Verdict, Vec<u8>)> = frames.iter().map(|f| a.send(f)).collect();
    let mut burst: Vec<TestFrame> = frames.iter().map(|f| TestFrame::new(f)).collect();
    let mut verdicts = vec![Verdict::Drop(DropReason::Malformed); burst.len()];
    b.dp.process_burst(&b.fwd, 0, &mut burst, &mut verdicts, b.now);
    let version = fwd.hash;
    for (i, ((v, out), (bv, bf))) in one.iter().zip(verdicts.iter().zip(&burst)).enumerate() {
        assert_eq!(v, bv, "{version}: frame {i}");
        assert_eq!(&out[..], &bf[..], "{version}: frame {i}");
    }
    assert_eq!(a.dp.counters, b.dp.counters);
    assert_eq!(a.dp.flow_table().len(), b.dp.flow_table().len());
    (a, b, one)
}

#[test]
fn process_burst_matches_process() {
    // In every hash version (the burst loop is compiled once per version).
    let mut sent = Vec::new();
    for version in HashVersion::ALL {
        let fwd = forwarding(cfg()).with_hash(version);
        let (a, _, one) = burst_against_process(&fwd, &mixed_frames());
        assert!(a.dp.counters.forwarded > 150);
        sent.push(one);
    }
    // The versions send some IPv4 flows to other backends.
    assert_ne!(sent[0], sent[1]);
}

/// The fixture and `n` more VIPs (198.18.100.0 upwards, port 80, of the
/// fixture's backends), more addresses than stay in the cache: bursts then
/// find each frame's VIP ahead and prefetch its state (see `Ahead`).
fn many_vips(n: u16) -> String {
    let mut text = cfg().to_string();
    for k in 0..n {
        let addr = Ipv4Addr::new(198, 18, 100 + (k / 250) as u8, (k % 250) as u8 + 1);
        let mut v = testing::Vip::a_b(format!("many{k}"), addr.to_string());
        if k % 3 == 1 {
            v = v.option("forwarding", "\"ipip\"");
        }
        if k % 5 == 2 {
            v = v.option("mptcp_tracking", true);
        }
        text += &v.to_string();
    }
    text
}

#[test]
fn process_burst_matches_process_with_many_vips() {
    // The filler addresses in a row get the direct index; an IPv6 VIP that
    // ends as the first of them makes it hashed.
    let twin = testing::Vip::a_b("twin", "fd00::c612:6401").to_string();
    for (text, hashed) in [(many_vips(300), false), (many_vips(300) + &twin, true)] {
        let fwd = forwarding(&text);
        assert!(fwd.many_vips(), "the test needs the burst's VIP stages");
        assert_eq!(fwd.vip_index().hashed(), hashed);
        burst_matches_process_with_many_vips(&fwd);
    }
}

fn burst_matches_process_with_many_vips(fwd: &Forwarding) {
    let mut frames = mixed_frames();
    for k in 0..300u16 {
        let vip = Ipv4Addr::new(198, 18, 100 + (k / 250) as u8, (k % 250) as u8 + 1);
        let p = 30000 + k;
        frames.push(tcp4(p, vip, SYN, &mpc_syn()));
        frames.push(tcp4(p, vip, ACK, &third_ack_opts()));
        frames.push(tcp4(p + 1000, vip, ACK, &[]));
        // No service on that port, a TTL that ends here, no VIP at all.
        let mut stray = tcp4(p, vip, ACK, &[]);
        stray[14 + 22..14 + 24].copy_from_slice(&8080u16.to_be_bytes());
        frames.push(stray);
        let mut last_hop = tcp4(p, vip, ACK, &[]);
        last_hop[14 + 8] = 1;
        frames.push(last_hop);
        frames.push(tcp4(p, v4("198.18.99.1"), ACK, &[]));
    }
    for version in HashVersion::ALL {
        let (a, b, _) = burst_against_process(&fwd.clone().with_hash(version), &frames);
        // The burst found ahead the VIP of every frame to a filler VIP's
        // service (the SYN, third ACK, plain ACK and TTL-1 frame of each),
        // so the test exercises that path.
        assert!(
            b.dp.found_ahead >= 1200,
            "found ahead: {}",
            b.dp.found_ahead
        );
        let c = &b.dp.counters;
        assert!(c.forwarded > 900, "{c:?}");
        assert!(c.drops[DropReason::NoVip] >= 300, "{c:?}");
        assert!(c.drops[DropReason::Ttl] >= 300, "{c:?}");
        for id in [0, 150, 299] {
            let vip = b.fwd.vips.iter().find(|v| v.name == format!("many{id}"));
            let totals = b.dp.traffic().vip(vip.expect("filler VIP").id);
            assert_eq!(totals, a.dp.traffic().vip(vip.expect("filler VIP").id));
            assert_eq!(totals.packets, 3, "many{id}");
        }
    }
}

// ---- panic freedom ----

proptest! {
    #[test]
    fn any_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut lab = Lab::new();
        let _ = lab.send(&data);
    }

    #[test]
    fn mutated_frames_never_panic(
        which in 0usize..8,
        flips in proptest::collection::vec((0usize..200, any::<u8>()), 1..6),
        cut in 0usize..200,
    ) {
        let mut lab = Lab::new();
        let mut f = match which {
            0 => tcp4(1, vip4(), ACK, &third_ack_opts()),
            1 => tcp6(1, v6("fd00:18::20"), SYN, &join_opts(1)),
            2 => ns(c6(), vip6(), 255),
            3 => echo6(v6("fd00:18::1")),
            4 => frag_needed_v4(vip4(), c4(), 80, 1),
            5 => ptb_v6(vip6(), c6(), 80, 1),
            6 => frag6(vip6(), 6, 3, false, &[1; 8]),
            _ => arp_request(vip4()),
        };
        for (at, x) in flips {
            let at = at % f.len();
            f[at] ^= x;
        }
        let _ = lab.send(&f);
        f.truncate(cut.min(f.len()));
        let _ = lab.send(&f);
        let mut nh = NoHeadroom(f);
        let _ = lab.dp.process(&lab.fwd, 0, &mut nh, lab.now);
    }
}
