//! What to send and what to expect back: the mix, the VIPs and backends
//! (from mplb's own config parser), and how the flows are split.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use mplb::config::{BackendStateConfig, Config, VipForwarding, VipProtocol};
use mplb::datapath::vip_index::{Protocol, Service, VipIndex};
use mplb::wire::addr;

use crate::flows::MAX_FLOWS;

/// A traffic source of the mix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Class {
    /// MPTCP connections: MP_CAPABLE v1 SYN, third ACK with both keys, DSS data.
    Mptcp,
    /// Plain TCP connections: SYN, ACK, data, (FIN).
    Plain,
    /// MP_JOIN SYNs for MPTCP connections whose keys went through.
    Join,
    /// Spoofed SYNs from random sources.
    Flood,
    /// Spoofed non-SYN ACKs from random sources.
    AckFlood,
    /// Frames the load balancer must drop.
    Malformed,
    /// UDP datagrams to a UDP VIP.
    Udp,
}

impl Class {
    pub const ALL: [Class; 7] = [
        Class::Mptcp,
        Class::Plain,
        Class::Join,
        Class::Flood,
        Class::AckFlood,
        Class::Malformed,
        Class::Udp,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Class::Mptcp => "mptcp",
            Class::Plain => "plain",
            Class::Join => "join",
            Class::Flood => "flood",
            Class::AckFlood => "ackflood",
            Class::Malformed => "malformed",
            Class::Udp => "udp",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    /// Classes whose packets belong to connections of their own (and so
    /// take a share of `--flows`).
    pub fn has_flows(self) -> bool {
        matches!(self, Class::Mptcp | Class::Plain | Class::Udp)
    }
}

/// `--mix`: classes and their weights (shares of the packets sent).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mix {
    pub parts: Vec<(Class, u32)>,
}

impl Mix {
    /// Parses `mptcp`, `mptcp=3,plain=1`, ...
    pub fn parse(s: &str) -> Result<Mix, String> {
        let mut parts: Vec<(Class, u32)> = Vec::new();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (name, weight) = match item.split_once('=') {
                Some((n, w)) => (
                    n.trim(),
                    w.trim()
                        .parse::<u32>()
                        .map_err(|_| format!("--mix: weight of `{n}` is not a number: `{w}`"))?,
                ),
                None => (item, 1),
            };
            let class = Class::ALL
                .into_iter()
                .find(|c| c.name() == name)
                .ok_or_else(|| {
                    format!(
                        "--mix: unknown traffic `{name}` (one of: {})",
                        Class::ALL.map(Class::name).join(", ")
                    )
                })?;
            if weight == 0 || weight > 1000 {
                return Err(format!("--mix: weight of `{name}` must be 1..=1000"));
            }
            if parts.iter().any(|(c, _)| *c == class) {
                return Err(format!("--mix: `{name}` given twice"));
            }
            parts.push((class, weight));
        }
        if parts.is_empty() {
            return Err("--mix: empty".into());
        }
        let has = |c| parts.iter().any(|(p, _)| *p == c);
        if has(Class::Join) && !has(Class::Mptcp) {
            return Err("--mix: `join` needs `mptcp` (joins belong to MPTCP connections)".into());
        }
        Ok(Mix { parts })
    }

    pub fn has(&self, c: Class) -> bool {
        self.parts.iter().any(|(p, _)| *p == c)
    }

    /// Canonical spelling, for the report.
    pub fn spec(&self) -> String {
        if let [(c, _)] = self.parts.as_slice() {
            return c.name().to_string();
        }
        self.parts
            .iter()
            .map(|(c, w)| format!("{}={w}", c.name()))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The order classes send in: a smooth weighted round-robin over one
    /// period (weights interleaved, not in runs).
    pub fn schedule(&self) -> Vec<Class> {
        let total: i64 = self.parts.iter().map(|(_, w)| i64::from(*w)).sum();
        let mut credit = vec![0i64; self.parts.len()];
        let mut out = Vec::with_capacity(total as usize);
        for _ in 0..total {
            for (c, (_, w)) in credit.iter_mut().zip(&self.parts) {
                *c += i64::from(*w);
            }
            let best = credit
                .iter()
                .enumerate()
                .max_by_key(|(i, c)| (**c, -(*i as i64)))
                .map_or(0, |(i, _)| i);
            if let (Some(c), Some((class, _))) = (credit.get_mut(best), self.parts.get(best)) {
                *c -= total;
                out.push(*class);
            }
        }
        out
    }
}

/// How a VIP's frames reach its backends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    L2Dsr,
    Ipip,
}

#[derive(Clone, Debug)]
pub struct VipPlan {
    pub name: String,
    pub addr: IpAddr,
    pub port: u16,
    pub udp: bool,
    pub mode: Mode,
    pub token_routing: bool,
    /// Indices into [`Plan::backends`] of the backends that may get its
    /// frames (active or draining; not disabled).
    pub backends: Vec<u8>,
}

#[derive(Clone, Debug)]
pub struct BackendPlan {
    pub name: String,
    pub addr: IpAddr,
    pub mac: Option<[u8; 6]>,
}

/// What the load balancer does to frames, from its config.
#[derive(Clone, Debug, Default)]
pub struct Lb {
    /// Its port's own addresses (ARP is asked for the first IPv4 one).
    pub ipv4: Vec<Ipv4Addr>,
    pub ipv6: Vec<Ipv6Addr>,
    pub gateway_mac: Option<[u8; 6]>,
    pub encap_v4: Option<Ipv4Addr>,
    pub encap_v6: Option<Ipv6Addr>,
    pub encap_ttl: u8,
}

/// One class's flows: ids `start .. start + count`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowRange {
    pub start: u32,
    pub count: u32,
}

#[derive(Clone, Debug)]
pub struct Plan {
    pub mix: Mix,
    pub vips: Vec<VipPlan>,
    pub backends: Vec<BackendPlan>,
    pub lb: Lb,
    /// Per class (by [`Class::index`]).
    pub ranges: [FlowRange; 7],
    pub flows: u32,
    pub ipv6_percent: u8,
    /// VIP indices by `[udp][v6]`.
    by_family: [[Vec<usize>; 2]; 2],
    /// The VIPs by address, port and protocol, for the checker to find a
    /// received frame's in constant time (mplb's own index: a run may have
    /// thousands of VIPs), and what it indexes.
    index: VipIndex,
    services: Vec<CheckedVip>,
}

/// What the checker reads of a VIP for each frame that comes back, and what
/// [`Plan::index`] indexes: 64 bytes in a row per VIP, where a [`VipPlan`]
/// has its name and backends elsewhere on the heap (with 20 000 VIPs, two
/// more cache misses a frame).
#[derive(Clone, Debug)]
pub struct CheckedVip {
    addr: IpAddr,
    port: u16,
    udp: bool,
    pub mode: Mode,
    pub token_routing: bool,
    position: usize,
    /// [`VipPlan::backends`] as a bit set.
    backends: [u64; 4],
}

impl CheckedVip {
    fn of(position: usize, v: &VipPlan) -> CheckedVip {
        let mut backends = [0u64; 4];
        for &b in &v.backends {
            backends[usize::from(b / 64)] |= 1 << (b % 64);
        }
        CheckedVip {
            addr: v.addr,
            port: v.port,
            udp: v.udp,
            mode: v.mode,
            token_routing: v.token_routing,
            position,
            backends,
        }
    }

    /// Whether backend `b` (an index into [`Plan::backends`]) may get the
    /// VIP's frames.
    pub fn has_backend(&self, b: u8) -> bool {
        self.backends[usize::from(b / 64)] & (1 << (b % 64)) != 0
    }

    /// Whether this VIP is the one at `addr`:`port` (UDP or TCP).
    pub fn serves(&self, addr: IpAddr, port: u16, udp: bool) -> bool {
        self.addr == addr && self.port == port && self.udp == udp
    }
}

impl Service for CheckedVip {
    fn addr(&self) -> IpAddr {
        self.addr
    }
    fn port(&self) -> u16 {
        self.port
    }
    fn protocol(&self) -> Protocol {
        match self.udp {
            true => Protocol::Udp,
            false => Protocol::Tcp,
        }
    }
    /// Not used by a plan's lookups (they read the position).
    fn id(&self) -> u16 {
        0
    }
}

/// VIPs used when there is no `--lb-config` (macswap and `none` runs).
const DEFAULT_VIPS: [(&str, &str, u16, bool); 4] = [
    ("tcp4", "198.18.0.10", 80, false),
    ("tcp6", "fd00:18::10", 80, false),
    ("udp4", "198.18.0.10", 53, true),
    ("udp6", "fd00:18::10", 53, true),
];

impl Plan {
    /// From mplb's config file (VIPs, backends, encapsulation), or the
    /// default VIPs without one.
    pub fn new(
        config: Option<&Config>,
        mix: Mix,
        flows: u32,
        ipv6_percent: u8,
    ) -> Result<Plan, String> {
        if flows == 0 || flows >= MAX_FLOWS {
            return Err(format!("--flows must be 1..{MAX_FLOWS}"));
        }
        if ipv6_percent > 100 {
            return Err("--ipv6 is a percentage, 0..=100".into());
        }
        let (vips, backends, lb) = match config {
            Some(c) => from_config(c)?,
            None => default_vips(),
        };
        let mut plan = Plan {
            mix,
            vips,
            backends,
            lb,
            ranges: [FlowRange::default(); 7],
            flows,
            ipv6_percent,
            by_family: Default::default(),
            index: VipIndex::default(),
            services: Vec::new(),
        };
        plan.index_vips();
        plan.split_flows()?;
        plan.require_vips()?;
        Ok(plan)
    }

    /// The VIPs by family and by service, from `vips`.
    pub(crate) fn index_vips(&mut self) {
        for udp in [false, true] {
            for v6 in [false, true] {
                self.by_family[usize::from(udp)][usize::from(v6)] = self.vips_of(v6, udp);
            }
        }
        self.services = (self.vips.iter().enumerate())
            .map(|(position, v)| CheckedVip::of(position, v))
            .collect();
        self.index = VipIndex::new(&self.services);
    }

    /// Gives each class with flows a share of `--flows` proportional to its weight.
    fn split_flows(&mut self) -> Result<(), String> {
        let owners: Vec<(Class, u32)> = self
            .mix
            .parts
            .iter()
            .copied()
            .filter(|(c, _)| c.has_flows())
            .collect();
        let total: u64 = owners.iter().map(|(_, w)| u64::from(*w)).sum();
        if owners.len() as u64 > u64::from(self.flows) {
            return Err(format!(
                "--flows {} is fewer than the mix's connection kinds",
                self.flows
            ));
        }
        let mut start = 0u32;
        for (n, (c, w)) in owners.iter().enumerate() {
            // Every class keeps at least one flow for each class after it.
            let later = (owners.len() - n - 1) as u32;
            let count = if later == 0 {
                self.flows - start
            } else {
                let share = (u64::from(self.flows) * u64::from(*w) / total) as u32;
                share.max(1).min(self.flows - start - later)
            };
            self.ranges[c.index()] = FlowRange { start, count };
            start += count;
        }
        Ok(())
    }

    /// Every protocol the mix sends needs a VIP.
    fn require_vips(&self) -> Result<(), String> {
        for (needed, udp, what) in [
            (self.sends_tcp(), false, "TCP"),
            (self.mix.has(Class::Udp), true, "UDP"),
        ] {
            if needed && self.vips_of(false, udp).is_empty() && self.vips_of(true, udp).is_empty() {
                return Err(format!(
                    "the mix sends {what} but no {what} VIP is configured"
                ));
            }
        }
        Ok(())
    }

    fn sends_tcp(&self) -> bool {
        [
            Class::Mptcp,
            Class::Plain,
            Class::Flood,
            Class::AckFlood,
            Class::Malformed,
        ]
        .iter()
        .any(|c| self.mix.has(*c))
    }

    /// Checks that each of `parts` generator lcores has flows of every
    /// flow class in the mix (a class with fewer flows than lcores leaves
    /// some lcore nothing to send).
    pub fn check_parts(&self, parts: u32) -> Result<(), String> {
        for c in Class::ALL
            .iter()
            .filter(|c| c.has_flows() && self.mix.has(**c))
        {
            let n = self.ranges[c.index()].count;
            if n < parts {
                return Err(format!(
                    "--flows {} leaves {} flow(s) of class {}, fewer than the {parts} generator lcores: give more flows",
                    self.flows,
                    n,
                    c.name()
                ));
            }
        }
        Ok(())
    }

    /// Where `--ipv6` cannot be followed because a family has no VIP of a
    /// protocol (its flows then go to the other family).
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (needed, udp, what) in [
            (self.sends_tcp(), false, "TCP"),
            (self.mix.has(Class::Udp), true, "UDP"),
        ] {
            if !needed {
                continue;
            }
            if self.ipv6_percent < 100 && self.vips_of(false, udp).is_empty() {
                out.push(format!("no IPv4 {what} VIP: all {what} goes to IPv6 VIPs"));
            }
            if self.ipv6_percent > 0 && self.vips_of(true, udp).is_empty() {
                out.push(format!("no IPv6 {what} VIP: all {what} goes to IPv4 VIPs"));
            }
        }
        out
    }

    /// Indices of the VIPs of a family and protocol.
    pub fn vips_of(&self, v6: bool, udp: bool) -> Vec<usize> {
        self.vips
            .iter()
            .enumerate()
            .filter(|(_, v)| v.addr.is_ipv6() == v6 && v.udp == udp)
            .map(|(i, _)| i)
            .collect()
    }

    /// The class that owns flow `id`, and the flow's index within it.
    pub fn class_of(&self, id: u32) -> Option<(Class, u32)> {
        Class::ALL.into_iter().find_map(|c| {
            let r = self.ranges[c.index()];
            (r.count > 0 && id >= r.start && id - r.start < r.count).then(|| (c, id - r.start))
        })
    }

    /// Whether flow index `i` (within its class) should be IPv6: `--ipv6`
    /// percent of the flows are.
    fn wants_v6(&self, i: u32) -> bool {
        i % 100 < u32::from(self.ipv6_percent)
    }

    /// The VIPs of a family and protocol, or of the other family if it has
    /// none (see [`Plan::warnings`]).
    pub fn family(&self, v6: bool, udp: bool) -> &[usize] {
        let u = usize::from(udp);
        let own = &self.by_family[u][usize::from(v6)];
        if own.is_empty() {
            &self.by_family[u][usize::from(!v6)]
        } else {
            own
        }
    }

    /// The VIP flow index `i` of a class sends to: `--ipv6` percent of the
    /// flows to IPv6 VIPs; of the VIPs of a family, one picked by a hash of
    /// the flow index, so that flows in a row (a burst's) go to many VIPs
    /// where there are many.
    pub fn vip_for(&self, i: u32, udp: bool) -> Option<usize> {
        let list = self.family(self.wants_v6(i), udp);
        let spread = (u64::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as usize;
        list.get(spread % list.len().max(1)).copied()
    }

    /// What the checker reads of VIP `vip`.
    pub fn checked(&self, vip: usize) -> Option<&CheckedVip> {
        self.services.get(vip)
    }

    /// The VIP serving `addr`:`port` (UDP or TCP).
    pub fn vip_at(&self, addr: IpAddr, port: u16, udp: bool) -> Option<usize> {
        let version = if addr.is_ipv4() { 4 } else { 6 };
        let at = self.index.addr(version, &addr::from_ip(addr))?;
        let protocol = if udp { Protocol::Udp } else { Protocol::Tcp };
        let found = self.index.service(&self.services, at, port, protocol)?;
        Some(found.position)
    }

    /// Most backends a plan can tell apart (one byte per flow).
    pub const MAX_BACKENDS: usize = 254;
}

fn default_vips() -> (Vec<VipPlan>, Vec<BackendPlan>, Lb) {
    let vips = DEFAULT_VIPS
        .iter()
        .map(|(name, addr, port, udp)| VipPlan {
            name: (*name).to_string(),
            addr: addr.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            port: *port,
            udp: *udp,
            mode: Mode::L2Dsr,
            token_routing: true,
            backends: Vec::new(),
        })
        .collect();
    (
        vips,
        Vec::new(),
        Lb {
            encap_ttl: 64,
            ..Lb::default()
        },
    )
}

fn from_config(c: &Config) -> Result<(Vec<VipPlan>, Vec<BackendPlan>, Lb), String> {
    let mut backends: Vec<BackendPlan> = Vec::new();
    let mut vips = Vec::with_capacity(c.vips.len());
    for v in &c.vips {
        let mut members = Vec::new();
        for b in &v.backends {
            let name = &b.name;
            let idx = match backends.iter().position(|p| &p.name == name) {
                // A backend under several VIPs: like mplb, the last entry's
                // MAC is the backend's.
                Some(i) => {
                    backends[i].mac = b.mac.map(|m| m.0);
                    i
                }
                None => {
                    backends.push(BackendPlan {
                        name: name.clone(),
                        addr: b.address,
                        mac: b.mac.map(|m| m.0),
                    });
                    backends.len() - 1
                }
            };
            if idx >= Plan::MAX_BACKENDS {
                return Err(format!(
                    "more than {} backends: mplb-gen cannot tell them apart",
                    Plan::MAX_BACKENDS
                ));
            }
            if b.state != BackendStateConfig::Disabled {
                members.push(idx as u8);
            }
        }
        vips.push(VipPlan {
            name: v.name.clone(),
            addr: v.address,
            port: v.port,
            udp: v.protocol == VipProtocol::Udp,
            mode: match v.forwarding {
                VipForwarding::L2Dsr => Mode::L2Dsr,
                VipForwarding::Ipip => Mode::Ipip,
            },
            token_routing: v.token_routing,
            backends: members,
        });
    }
    // mplb-gen sits on the load balancer's first port (one-armed).
    let port = c.ports.first();
    let lb = Lb {
        ipv4: port.map(|p| p.ipv4.clone()).unwrap_or_default(),
        ipv6: port.map(|p| p.ipv6.clone()).unwrap_or_default(),
        gateway_mac: port.and_then(|p| p.gateway_mac).map(|m| m.0),
        encap_v4: c.encap.source_v4,
        encap_v6: c.encap.source_v6,
        encap_ttl: c.encap.ttl,
    };
    Ok((vips, backends, lb))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_parses_weights_and_rejects_nonsense() {
        let m = Mix::parse("mptcp=3, plain").expect("valid");
        assert_eq!(m.parts, vec![(Class::Mptcp, 3), (Class::Plain, 1)]);
        assert_eq!(m.spec(), "mptcp=3,plain=1");
        assert_eq!(Mix::parse("udp").expect("valid").spec(), "udp");
        assert!(Mix::parse("tcp").is_err());
        assert!(Mix::parse("mptcp=0").is_err());
        assert!(Mix::parse("mptcp=x").is_err());
        assert!(Mix::parse("join").is_err(), "join without mptcp");
        assert!(Mix::parse("mptcp,mptcp").is_err());
        assert!(Mix::parse("").is_err());
    }

    #[test]
    fn schedule_interleaves_by_weight() {
        let m = Mix::parse("mptcp=3,plain=1").expect("valid");
        let s = m.schedule();
        assert_eq!(s.len(), 4);
        assert_eq!(s.iter().filter(|c| **c == Class::Plain).count(), 1);
        let m = Mix::parse("mptcp=1,plain=1").expect("valid");
        assert_eq!(m.schedule(), vec![Class::Mptcp, Class::Plain]);
    }

    #[test]
    fn flows_are_split_by_weight_and_found_again() {
        let mix = Mix::parse("mptcp=3,plain=1,flood=5").expect("valid");
        let p = Plan::new(None, mix, 1000, 10).expect("plan");
        assert_eq!(
            p.ranges[Class::Mptcp.index()],
            FlowRange {
                start: 0,
                count: 750
            }
        );
        assert_eq!(
            p.ranges[Class::Plain.index()],
            FlowRange {
                start: 750,
                count: 250
            }
        );
        assert_eq!(p.ranges[Class::Flood.index()].count, 0);
        assert_eq!(p.class_of(0), Some((Class::Mptcp, 0)));
        assert_eq!(p.class_of(751), Some((Class::Plain, 1)));
        assert_eq!(p.class_of(1000), None);
        assert!(p.wants_v6(5) && !p.wants_v6(10) && p.wants_v6(105));
        let v6 = |i| p.vips[p.vip_for(i, false).expect("vip")].addr.is_ipv6();
        assert!(v6(5) && !v6(10) && v6(105));
        // Tiny flow counts: every class still gets a flow.
        let p = Plan::new(
            None,
            Mix::parse("mptcp=1000,plain=1,udp=1").expect("valid"),
            3,
            0,
        )
        .expect("plan");
        for c in [Class::Mptcp, Class::Plain, Class::Udp] {
            assert_eq!(p.ranges[c.index()].count, 1, "{c:?}");
        }
    }

    #[test]
    fn flows_in_a_row_go_to_many_vips_and_each_is_found() {
        let mut p = Plan::new(None, Mix::parse("mptcp").expect("valid"), 100_000, 0).expect("plan");
        let template = p.vips[0].clone();
        p.vips = (0..10_000u32)
            .map(|k| VipPlan {
                name: format!("v{k}"),
                addr: IpAddr::V4(Ipv4Addr::from(0xc612_4000 + k)),
                ..template.clone()
            })
            .collect();
        p.vips.push(VipPlan {
            port: 443,
            ..template.clone()
        });
        p.index_vips();
        for (i, v) in p.vips.iter().enumerate() {
            assert_eq!(p.vip_at(v.addr, v.port, v.udp), Some(i), "{}", v.addr);
            assert_eq!(p.vip_at(v.addr, 81, v.udp), None);
            assert_eq!(p.vip_at(v.addr, v.port, !v.udp), None);
        }
        // A burst's worth of flows in a row: as many VIPs, nearly.
        for start in [0u32, 5_000, 77_777] {
            let vips: std::collections::HashSet<usize> = (start..start + 32)
                .filter_map(|i| p.vip_for(i, false))
                .collect();
            assert!(vips.len() >= 28, "{} VIPs of 32 flows", vips.len());
        }
        // Every VIP gets flows, none many more than its share (10).
        let mut per_vip = vec![0u32; p.vips.len()];
        for i in 0..100_000 {
            per_vip[p.vip_for(i, false).expect("a VIP")] += 1;
        }
        assert!(
            per_vip.iter().all(|&n| (1..=40).contains(&n)),
            "{:?}",
            per_vip.iter().max()
        );
    }

    #[test]
    fn missing_vips_are_reported() {
        let mut p = Plan::new(None, Mix::parse("udp").expect("valid"), 10, 50).expect("plan");
        assert!(p.warnings().is_empty());
        p.vips.retain(|v| !v.udp || v.addr.is_ipv4());
        assert_eq!(p.warnings().len(), 1);
        assert!(p.require_vips().is_ok());
        p.vips.retain(|v| !v.udp);
        assert!(p.require_vips().is_err());
        let p = Plan::new(None, Mix::parse("udp").expect("valid"), 300, 50).expect("plan");
        let v = p.vip_for(1, true).expect("vip");
        assert!(p.vips[v].udp && p.vips[v].addr.is_ipv6());
        assert_eq!(p.vip_at(p.vips[v].addr, 53, true), Some(v));
        assert_eq!(p.vip_at(p.vips[v].addr, 54, true), None);
    }
}
