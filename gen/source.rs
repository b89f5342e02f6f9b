//! The packet source: decides what the next frame is (class, flow, kind and
//! fields) and writes it into a buffer from the templates.
//!
//! Connections advance in rounds: each class walks its flows round-robin,
//! and a flow's `round`-th packet is its SYN (round 0), its third ACK
//! (round 1), then data. With `--conn-packets L` a connection is L packets
//! (SYN, ACK, L-3 data, FIN) and the slot's next connection uses a new port.

use mplb::wire::mptcp::token_v1;

use crate::flows::{self, FlowState, client_port, mix};
use crate::frames::{
    Fields, Kind, MALFORMED_VARIANTS, Template, address_bytes, malformed, stamp_trailer,
};
use crate::plan::{Class, Plan};

#[derive(Clone, Copy, Debug, Default)]
struct Cursor {
    next: u32,
    round: u64,
}

/// What to write next.
#[derive(Clone, Copy, Debug)]
pub enum Build {
    /// Template index and its fields.
    Template(usize, Fields),
    /// Malformed frame index.
    Malformed(usize),
}

/// The next frame: its class and how to build it.
#[derive(Clone, Copy, Debug)]
pub struct Next {
    pub class: Class,
    pub build: Build,
    /// Picks the queue (modulo the queue count): the flow id, so that a
    /// flow keeps to one queue, as RSS would keep it; random otherwise.
    pub lane: u32,
}

/// What a VIP's frames are made of: its templates (the first of the
/// [`Kind::ALL`] in a row, shared by the VIPs of its family, port and
/// protocol) and its address.
#[derive(Clone, Copy, Debug)]
struct Target {
    templates: usize,
    v6: bool,
    dst: [u8; 16],
}

pub struct Source {
    plan: Plan,
    /// [`Kind::ALL`] templates per (family, port, protocol) of the VIPs;
    /// `None` for the kinds of the other protocol.
    templates: Vec<Option<Template>>,
    /// Per VIP (as `plan.vips`).
    targets: Vec<Target>,
    malformed: Vec<Vec<u8>>,
    schedule: Vec<Class>,
    at: usize,
    cursors: [Cursor; 7],
    join_next: u32,
    rng: u64,
    malformed_next: usize,
    conn_packets: u64,
    /// This source sends the flows with id mod `parts` = `part` (one
    /// source per generator lcore); 0 of 1 = all flows.
    part: u32,
    parts: u32,
}

impl Source {
    /// `dst`: the MAC frames are sent to; `src`: the generator port's.
    pub fn new(plan: Plan, dst: [u8; 6], src: [u8; 6], size: usize, conn_packets: u64) -> Source {
        let mut templates = Vec::new();
        let mut groups: Vec<(bool, u16, bool)> = Vec::new();
        let mut targets = Vec::with_capacity(plan.vips.len());
        for v in &plan.vips {
            let v6 = v.addr.is_ipv6();
            let key = (v6, v.port, v.udp);
            let group = match groups.iter().position(|g| *g == key) {
                Some(g) => g,
                None => {
                    for kind in Kind::ALL {
                        let fits = (kind == Kind::Udp) == v.udp;
                        templates
                            .push(fits.then(|| Template::new(kind, v6, v.port, dst, src, size)));
                    }
                    groups.push(key);
                    groups.len() - 1
                }
            };
            targets.push(Target {
                templates: group * Kind::ALL.len(),
                v6,
                dst: address_bytes(v.addr),
            });
        }
        let mut bad = Vec::new();
        for v6 in [false, true] {
            if let Some(&vi) = plan.vips_of(v6, false).first() {
                let vip = &plan.vips[vi];
                let free = free_port(&plan, vip.addr, vip.port);
                bad.extend(
                    (0..MALFORMED_VARIANTS).filter_map(|m| malformed(m, vip, dst, src, free)),
                );
            }
        }
        Source {
            schedule: plan.mix.schedule(),
            plan,
            templates,
            targets,
            malformed: bad,
            at: 0,
            cursors: [Cursor::default(); 7],
            join_next: 0,
            rng: 0x853c_49e6_748f_ea9b,
            malformed_next: 0,
            conn_packets,
            part: 0,
            parts: 1,
        }
    }

    /// Restricts the source to the flows with id mod `parts` = `part`, so
    /// that `parts` sources (one per lcore) send disjoint flows between
    /// them; the lanes it picks are ≡ `part` (mod `parts`) as well. Its
    /// random choices (flood sources, malformed lanes) get their own seed.
    pub fn for_part(mut self, part: u32, parts: u32) -> Source {
        self.parts = parts.max(1);
        self.part = part % self.parts;
        for class in Class::ALL {
            self.cursors[class.index()].next = self.first_of(class);
        }
        self.join_next = self.first_of(Class::Mptcp);
        self.rng ^= u64::from(self.part).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        if self.rng == 0 {
            self.rng = 1;
        }
        self
    }

    /// The first class-local index of this part's flows of `class` (at or
    /// beyond the class's count if the part has none).
    fn first_of(&self, class: Class) -> u32 {
        let start = self.plan.ranges[class.index()].start;
        (self.part + self.parts - start % self.parts) % self.parts
    }

    /// A lane for a frame of no flow: random, within this part's lanes.
    fn random_lane(&mut self) -> u32 {
        (self.random() >> 40) as u32 * self.parts + self.part
    }

    /// The next frame to send. `state` says which connections' keys went
    /// through (joins are sent only for those).
    pub fn next(&mut self, state: &FlowState) -> Option<Next> {
        let class = *self.schedule.get(self.at)?;
        self.at = (self.at + 1) % self.schedule.len();
        let (build, lane) = match class {
            Class::Mptcp | Class::Plain | Class::Udp => self.flow_packet(class),
            Class::Join => match self.join_packet(state) {
                Some(b) => Some(b),
                // No connection ready to join yet: keep the rate with MPTCP.
                None => {
                    return self.flow_packet(Class::Mptcp).map(|(build, lane)| Next {
                        class: Class::Mptcp,
                        build,
                        lane,
                    });
                }
            },
            Class::Flood | Class::AckFlood => self.flood_packet(class == Class::AckFlood),
            Class::Malformed => {
                let n = self.malformed.len();
                self.malformed_next = (self.malformed_next + 1) % n.max(1);
                let lane = self.random_lane();
                (n > 0).then_some((Build::Malformed(self.malformed_next), lane))
            }
        }?;
        Some(Next { class, build, lane })
    }

    /// Frame length of a build.
    pub fn len(&self, b: &Build) -> usize {
        match b {
            Build::Template(t, _) => self
                .templates
                .get(*t)
                .and_then(Option::as_ref)
                .map_or(0, Template::len),
            Build::Malformed(m) => self.malformed.get(*m).map_or(0, Vec::len),
        }
    }

    /// Writes a build into `buf` (of [`Source::len`] bytes), stamped with `tsc`.
    #[inline]
    pub fn write(&self, b: &Build, buf: &mut [u8], tsc: u64) -> bool {
        match b {
            Build::Template(t, f) => self
                .templates
                .get(*t)
                .and_then(Option::as_ref)
                .is_some_and(|t| t.write(buf, f, tsc)),
            Build::Malformed(m) => match self.malformed.get(*m) {
                Some(bytes) if bytes.len() == buf.len() => {
                    buf.copy_from_slice(bytes);
                    stamp_trailer(buf, tsc);
                    true
                }
                _ => false,
            },
        }
    }

    fn template(&self, vip: usize, kind: Kind) -> Option<(usize, &Template)> {
        let k = Kind::ALL.iter().position(|x| *x == kind)?;
        let i = self.targets.get(vip)?.templates + k;
        Some((i, self.templates.get(i)?.as_ref()?))
    }

    /// The (epoch, position) of a flow's `round`-th packet.
    fn epoch_pos(&self, round: u64) -> (u64, u64) {
        match self.conn_packets {
            0 => (0, round),
            l => (round / l, round % l),
        }
    }

    fn flow_packet(&mut self, class: Class) -> Option<(Build, u32)> {
        let range = self.plan.ranges[class.index()];
        let first = self.first_of(class);
        let parts = self.parts;
        let c = &mut self.cursors[class.index()];
        let (i, round) = (c.next, c.round);
        if i >= range.count {
            return None; // this part has no flow of the class
        }
        c.next += parts;
        if c.next >= range.count {
            c.next = first;
            c.round += 1;
        }
        let id = range.start + i;
        let udp = class == Class::Udp;
        let vip = self.plan.vip_for(i, udp)?;
        let target = *self.targets.get(vip)?;
        let (epoch, pos) = self.epoch_pos(round);
        let mut f = Fields {
            src: src_of(id, target.v6),
            dst: target.dst,
            sport: client_port(id, epoch, false),
            ..Fields::default()
        };
        if udp {
            let (t, _) = self.template(vip, Kind::Udp)?;
            return Some((Build::Template(t, f), id));
        }
        let mptcp = class == Class::Mptcp;
        let last = self.conn_packets > 0 && pos + 1 == self.conn_packets;
        let kind = match (pos, mptcp, last) {
            (0, true, _) => Kind::MptcpSyn,
            (0, false, _) => Kind::PlainSyn,
            (1, true, _) => Kind::MptcpKeys,
            (1, false, _) => Kind::PlainAck,
            (_, true, true) => Kind::MptcpFin,
            (_, false, true) => Kind::PlainFin,
            (_, true, false) => Kind::MptcpData,
            (_, false, false) => Kind::PlainData,
        };
        let data = if mptcp {
            Kind::MptcpData
        } else {
            Kind::PlainData
        };
        let payload = self.template(vip, data).map_or(0, |(_, t)| t.payload) as u32;
        let (t, _) = self.template(vip, kind)?;
        let isn = mix(id, epoch, 1) as u32;
        let server_isn = mix(id, epoch, 2) as u32;
        // Data bytes sent before this packet.
        let sent = (pos.saturating_sub(2) as u32).wrapping_mul(payload);
        f.seq = if pos == 0 {
            isn
        } else {
            isn.wrapping_add(1).wrapping_add(sent)
        };
        f.ack = if pos == 0 {
            0
        } else {
            server_isn.wrapping_add(1)
        };
        match kind {
            Kind::MptcpKeys => {
                f.extra[..8].copy_from_slice(&client_key(id, epoch).to_be_bytes());
                f.extra[8..].copy_from_slice(&server_key(id, epoch).to_be_bytes());
            }
            Kind::MptcpData | Kind::MptcpFin => {
                // Data ACK, DSN, subflow sequence (relative). The DSN space
                // starts at a per-connection value (not the key's SHA-256:
                // a load balancer never checks it).
                let dack = (mix(id, epoch, 5) as u32).wrapping_add(1);
                let dsn = (mix(id, epoch, 6) as u32)
                    .wrapping_add(1)
                    .wrapping_add(sent);
                f.extra[..4].copy_from_slice(&dack.to_be_bytes());
                f.extra[4..8].copy_from_slice(&dsn.to_be_bytes());
                f.extra[8..12].copy_from_slice(&1u32.wrapping_add(sent).to_be_bytes());
            }
            _ => {}
        }
        Some((Build::Template(t, f), id))
    }

    /// An MP_JOIN SYN for the next MPTCP connection whose keys went through.
    fn join_packet(&mut self, state: &FlowState) -> Option<(Build, u32)> {
        let range = self.plan.ranges[Class::Mptcp.index()];
        let cursor = self.cursors[Class::Mptcp.index()];
        let first = self.first_of(Class::Mptcp);
        for _ in 0..8 {
            let i = self.join_next;
            if i >= range.count {
                return None;
            }
            self.join_next += self.parts;
            if self.join_next >= range.count {
                self.join_next = first;
            }
            // Packets flow i has sent so far; its current connection is the
            // one its last packet belonged to.
            let sent = cursor.round + u64::from(i < cursor.next);
            if sent == 0 {
                continue;
            }
            let (epoch, _) = self.epoch_pos(sent - 1);
            let id = range.start + i;
            if !state.learnt(id, (epoch % u64::from(flows::EPOCHS)) as u8) {
                continue;
            }
            let vip = self.plan.vip_for(i, false)?;
            let target = *self.targets.get(vip)?;
            let (t, _) = self.template(vip, Kind::JoinSyn)?;
            let mut f = Fields {
                src: src_of(id, target.v6),
                dst: target.dst,
                sport: client_port(id, epoch, true),
                seq: mix(id, epoch, 7) as u32,
                ..Fields::default()
            };
            f.extra[..4].copy_from_slice(&token_v1(server_key(id, epoch)).to_be_bytes());
            f.extra[4..8].copy_from_slice(&(mix(id, epoch, 8) as u32).to_be_bytes());
            // A join is another 5-tuple, which RSS hashes on its own: it goes
            // out on the next queue of this generator lcore after its
            // connection's (lane + parts: same lcore, queue + 1 when the
            // lcore has several), so that with several queues per lcore every
            // join reaches another worker than the one that learnt its token.
            return Some((Build::Template(t, f), id.wrapping_add(self.parts)));
        }
        None
    }

    fn flood_packet(&mut self, ack: bool) -> Option<(Build, u32)> {
        let r = self.random();
        let v6 = (r % 100) < u64::from(self.plan.ipv6_percent);
        let vips = self.plan.family(v6, false);
        let vip = *vips.get((r >> 8) as usize % vips.len().max(1))?;
        let kind = if ack { Kind::FloodAck } else { Kind::FloodSyn };
        let (t, _) = self.template(vip, kind)?;
        // The VIP's family: a family without VIPs falls back to the other.
        let target = *self.targets.get(vip)?;
        let a = self.random();
        let src = match target.v6 {
            true => flows::flood_v6(a).into(),
            false => flows::flood_v4(a >> 32).into(),
        };
        let f = Fields {
            src: address_bytes(src),
            dst: target.dst,
            sport: 1024 + (r >> 16) as u16 % 64_000,
            seq: (r >> 32) as u32,
            ack: if ack { a as u32 } else { 0 },
            ..Fields::default()
        };
        Some((Build::Template(t, f), self.random_lane()))
    }

    /// xorshift64*: cheap randomness for spoofed sources.
    fn random(&mut self) -> u64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// The client's MPTCP key of connection `epoch` of flow `id`.
pub fn client_key(id: u32, epoch: u64) -> u64 {
    mix(id, epoch, 3)
}

/// The server's MPTCP key (whose token the joins carry).
pub fn server_key(id: u32, epoch: u64) -> u64 {
    mix(id, epoch, 4)
}

fn src_of(id: u32, v6: bool) -> [u8; 16] {
    address_bytes(match v6 {
        true => flows::client_v6(id).into(),
        false => flows::client_v4(id).into(),
    })
}

/// A TCP port on `addr` that no VIP serves (for the "no VIP" malformed frame).
fn free_port(plan: &Plan, addr: std::net::IpAddr, near: u16) -> u16 {
    (1..=u16::MAX)
        .map(|d| near.wrapping_add(d))
        .find(|p| *p != 0 && plan.vip_at(addr, *p, false).is_none())
        .unwrap_or(9)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Mix;
    use mplb::wire::parse_frame;

    fn source(mix: &str, flows: u32, ipv6: u8, conn: u64) -> Source {
        let plan = Plan::new(None, Mix::parse(mix).expect("mix"), flows, ipv6).expect("plan");
        Source::new(plan, [2; 6], [4; 6], 64, conn)
    }

    fn frame(s: &Source, n: &Next) -> Vec<u8> {
        let mut b = vec![0u8; s.len(&n.build)];
        assert!(s.write(&n.build, &mut b, 7));
        b
    }

    #[test]
    fn many_vips_share_templates_and_each_frame_goes_to_its_flows_vip() {
        use crate::plan::VipPlan;
        use mplb::wire::{ipv4, ipv6, tcp};
        use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
        let mut plan =
            Plan::new(None, Mix::parse("mptcp,plain").expect("mix"), 4000, 50).expect("plan");
        let tcp4 = plan.vips[plan.vips_of(false, false)[0]].clone();
        let tcp6 = plan.vips[plan.vips_of(true, false)[0]].clone();
        let mut vips: Vec<VipPlan> = (0..1000u32)
            .flat_map(|k| {
                let v4 = VipPlan {
                    addr: IpAddr::V4(Ipv4Addr::from(0xc612_4000 + k)),
                    ..tcp4.clone()
                };
                let v6 = VipPlan {
                    addr: IpAddr::V6(Ipv6Addr::from(0xfd00_0018_0040_u128 << 80 | u128::from(k))),
                    ..tcp6.clone()
                };
                [v4, v6]
            })
            .collect();
        vips.push(VipPlan {
            port: 443,
            ..tcp4.clone()
        });
        plan.vips = vips;
        plan.index_vips();
        let mut s = Source::new(plan.clone(), [2; 6], [4; 6], 64, 0);
        // TCP templates of three (family, port) pairs, not of 2001 VIPs.
        assert_eq!(s.templates.len(), 3 * Kind::ALL.len());
        let st = FlowState::new(4000);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..3000 {
            let n = s.next(&st).expect("next");
            let b = frame(&s, &n);
            let p = parse_frame(&b).expect("parses");
            let ip = p.ip.expect("ip");
            let t = *p.tcp().expect("tcp");
            let (_, i) = plan.class_of(n.lane).expect("a flow's frame");
            let want = plan.vip_for(i, false).expect("a VIP");
            assert_eq!(plan.vip_at(ip.dst_addr(), t.dst_port, false), Some(want));
            seen.insert(want);
            let seg = &b[ip.l4_offset..];
            let ok = match (ip.src_addr(), ip.dst_addr()) {
                (IpAddr::V4(src), IpAddr::V4(dst)) => {
                    ipv4::Packet::new_checked(&b[14..])
                        .expect("v4")
                        .verify_checksum()
                        && tcp::Packet::new_checked(seg)
                            .expect("tcp")
                            .verify_checksum_v4(src, dst)
                }
                (IpAddr::V6(src), IpAddr::V6(dst)) => {
                    ipv6::Packet::new_checked(&b[14..]).is_ok()
                        && tcp::Packet::new_checked(seg)
                            .expect("tcp")
                            .verify_checksum_v6(&src, &dst)
                }
                _ => false,
            };
            assert!(ok, "checksums of a frame to {}", ip.dst_addr());
        }
        assert!(seen.len() > 1000, "{} VIPs reached", seen.len());
    }

    #[test]
    fn connections_go_syn_keys_data_fin() {
        let mut s = source("mptcp", 2, 0, 5);
        let st = FlowState::new(2);
        let mut flags = Vec::new();
        for _ in 0..12 {
            let n = s.next(&st).expect("next");
            let b = frame(&s, &n);
            let p = parse_frame(&b).expect("parses");
            let t = *p.tcp().expect("tcp");
            flags.push((
                t.src_port,
                t.flags.0,
                t.mptcp.has_capable(),
                t.mptcp.has_dss(),
            ));
        }
        // Two flows in turn; connection of 5: SYN, keys, data, data, FIN.
        assert_eq!(flags[0].1, 0x02);
        assert!(flags[0].2);
        assert_eq!(flags[2].1, 0x10);
        assert!(flags[2].2);
        assert!(flags[4].3 && flags[4].1 == 0x18);
        assert_eq!(flags[8].1, 0x11, "FIN");
        assert!(flags[8].3);
        // The slot's next connection: a SYN from a new port.
        assert_eq!(flags[10].1, 0x02);
        assert_ne!(flags[10].0, flags[0].0);
        assert_eq!(flags[0].0, flags[2].0);
    }

    #[test]
    fn joins_wait_for_learnt_keys_and_carry_the_server_token() {
        let mut s = source("mptcp=1,join=1", 4, 0, 0);
        let st = FlowState::new(4);
        // Before any keys came back, join slots fall back to MPTCP.
        for _ in 0..16 {
            assert_eq!(s.next(&st).expect("next").class, Class::Mptcp);
        }
        st.record(2, 0, 0);
        st.set_learnt(2, 0);
        let join = (0..4)
            .map(|_| s.next(&st).expect("next"))
            .find(|n| n.class == Class::Join)
            .expect("a join");
        let b = frame(&s, &join);
        let p = parse_frame(&b).expect("parses");
        let t = p.tcp().expect("tcp");
        assert_eq!(
            t.mptcp.join_syn.map(|j| j.token),
            Some(token_v1(server_key(2, 0)))
        );
        assert_eq!(t.src_port, client_port(2, 0, true));
        // Not on its connection's lane (flow 2): the next one, so that with
        // two queues the join reaches the other worker.
        assert_eq!(join.lane, 3);
    }

    #[test]
    fn ipv6_share_and_flood_and_malformed() {
        let mut s = source("plain=1,flood=1,malformed=1", 100, 30, 0);
        let st = FlowState::new(100);
        let (mut v6, mut total, mut bad) = (0, 0, 0);
        for _ in 0..300 {
            let n = s.next(&st).expect("next");
            let b = frame(&s, &n);
            match n.class {
                Class::Plain => {
                    total += 1;
                    if b[12..14] == [0x86, 0xdd] {
                        v6 += 1;
                    }
                }
                Class::Malformed => bad += 1,
                _ => {}
            }
        }
        assert_eq!(total, 100);
        assert_eq!(v6, 30);
        assert_eq!(bad, 100);
    }

    #[test]
    fn parts_send_disjoint_flows_on_their_own_lanes() {
        let plan = Plan::new(
            None,
            Mix::parse("mptcp=2,plain=1,flood=1").expect("mix"),
            10,
            0,
        )
        .expect("plan");
        let st = FlowState::new(10);
        let mut seen = [0u32; 10];
        for part in 0..2u32 {
            let mut s = Source::new(plan.clone(), [2; 6], [4; 6], 64, 0).for_part(part, 2);
            for _ in 0..400 {
                let n = s.next(&st).expect("next");
                assert_eq!(n.lane % 2, part, "{n:?}");
                if n.class != Class::Flood {
                    // Flow frames: the lane is the flow id.
                    seen[n.lane as usize] += 1;
                }
            }
        }
        // Every flow is sent, each by the one part that owns it (above).
        assert!(seen.iter().all(|&n| n > 0), "{seen:?}");
    }

    #[test]
    fn a_part_without_flows_of_a_class_is_refused_up_front() {
        let plan =
            Plan::new(None, Mix::parse("mptcp=1,plain=1").expect("mix"), 3, 0).expect("plan");
        assert!(plan.check_parts(1).is_ok());
        let e = plan.check_parts(4).expect_err("too few flows");
        assert!(e.contains("generator lcores"), "{e}");
    }
}
