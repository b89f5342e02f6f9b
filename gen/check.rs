//! Checks every returned frame against what the generator sent and what the
//! device under test should have done to it. Nothing here trusts the frame:
//! every read is bounds-checked, and a frame that is garbage is a counted
//! verdict, never a panic.
//!
//! The generator keeps no copy of what it sent: its frames are built so that
//! they can be checked from themselves. The source address and port give the
//! flow (and so the VIP it was sent to), TTL/hop limit, lengths and both
//! checksums must be exactly as generated, and the TCP/UDP checksum covers
//! the rest of the segment, payload included.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use mplb::wire::checksum;

use crate::flows::{self, FlowState, Seen, Source};
use crate::frames::{ETH, TRAILER, TRAILER_MAGIC, TS_AT, TS_LEAD, TTL};
use crate::plan::{Class, Mode, Plan};

/// How returned frames are checked (`--expect`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// mplb: forwarded to a backend of the VIP, rewritten per its mode.
    Mplb,
    /// A MAC-swapping reflector (testpmd `--forward-mode=macswap`).
    Macswap,
    /// No checks; frames are counted and timed.
    None,
}

/// What a returned frame was judged to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    /// Sent to a backend not in its VIP's set (or no known backend).
    WrongBackend,
    /// A connection's frame at another backend than its earlier frames.
    FlowMoved,
    /// Headers, encapsulation or payload not as expected.
    BadRewrite,
    /// Not a frame the generator expects back (not ours, or one the load
    /// balancer should have dropped).
    Unexpected,
}

/// The judgement of one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub verdict: Verdict,
    /// The class of the frame, if it could be told.
    pub class: Option<Class>,
    /// When it was sent, if readable (and not obviously corrupt).
    pub tsc: Option<u64>,
}

impl Outcome {
    fn new(verdict: Verdict, class: Option<Class>, tsc: Option<u64>) -> Outcome {
        Outcome {
            verdict,
            class,
            tsc,
        }
    }
}

/// The inner IP packet, recognised as one of ours.
struct Inner {
    source: Source,
    class: Class,
    vip: usize,
    tsc: u64,
    /// The third ACK of an MPTCP connection (carries both keys).
    keys: bool,
}

pub struct Checker<'a> {
    plan: &'a Plan,
    expect: Expect,
    /// The generator port's MAC.
    our_mac: [u8; 6],
    /// The MAC frames were sent to (the device under test).
    dut_mac: [u8; 6],
    /// The load balancer's source MAC on forwarded frames; learnt from the
    /// first frame when not known.
    lb_mac: Option<[u8; 6]>,
}

impl<'a> Checker<'a> {
    pub fn new(
        plan: &'a Plan,
        expect: Expect,
        our_mac: [u8; 6],
        dut_mac: [u8; 6],
        lb_mac: Option<[u8; 6]>,
    ) -> Checker<'a> {
        Checker {
            plan,
            expect,
            our_mac,
            dut_mac,
            lb_mac,
        }
    }

    /// Judges one returned frame; `state` learns which backend each flow reached.
    pub fn check(&mut self, frame: &[u8], state: &FlowState) -> Outcome {
        match self.expect {
            Expect::None => {
                let (class, tsc) = match self.inner(frame.get(ETH..).unwrap_or(&[])) {
                    Some(Ok(i)) => {
                        // Keys that came back let joins follow (no backend to check).
                        if let Source::Flow {
                            id,
                            epoch,
                            join: false,
                        } = i.source
                        {
                            state.record(id, epoch, 0);
                            if i.keys {
                                state.set_learnt(id, epoch);
                            }
                        }
                        (Some(i.class), Some(i.tsc))
                    }
                    _ => match trailer(frame) {
                        Some(t) => (Some(Class::Malformed), Some(t)),
                        None => (None, None),
                    },
                };
                Outcome::new(Verdict::Ok, class, tsc)
            }
            Expect::Macswap => {
                let macs_ok = frame.get(..6) == Some(&self.our_mac[..])
                    && frame.get(6..12) == Some(&self.dut_mac[..]);
                let mut out =
                    self.judge_inner(frame.get(ETH..).unwrap_or(&[]), frame, state, |_| Ok(0));
                if !macs_ok && out.verdict == Verdict::Ok {
                    out.verdict = Verdict::BadRewrite;
                }
                // A reflector returns everything, malformed frames included.
                if out.class == Some(Class::Malformed) && out.verdict == Verdict::Unexpected {
                    out.verdict = if macs_ok {
                        Verdict::Ok
                    } else {
                        Verdict::BadRewrite
                    };
                }
                out
            }
            Expect::Mplb => self.check_mplb(frame, state),
        }
    }

    fn check_mplb(&mut self, frame: &[u8], state: &FlowState) -> Outcome {
        let Some(et) = frame.get(12..14).map(|b| u16::from_be_bytes([b[0], b[1]])) else {
            return Outcome::new(Verdict::Unexpected, None, None);
        };
        let outer_proto = match et {
            0x0800 => frame.get(ETH + 9).copied(),
            0x86dd => frame.get(ETH + 6).copied(),
            _ => None,
        };
        let encapsulated = matches!(outer_proto, Some(4 | 41));
        let lb_mac_ok = self.lb_mac_ok(frame);
        if encapsulated {
            let outer_len = if et == 0x0800 { 20 } else { 40 };
            let inner = frame.get(ETH + outer_len..).unwrap_or(&[]);
            let outer = self.outer(frame);
            return self.judge_inner(inner, frame, state, |vip| {
                let vip = self.plan.checked(vip).ok_or(Verdict::BadRewrite)?;
                if vip.mode != Mode::Ipip || !lb_mac_ok {
                    return Err(Verdict::BadRewrite);
                }
                outer
            });
        }
        let dst: Option<[u8; 6]> = frame.get(..6).and_then(|d| d.try_into().ok());
        let backend = dst.and_then(|d| {
            self.plan
                .backends
                .iter()
                .position(|b| b.mac == Some(d))
                .map(|b| b as u8)
        });
        self.judge_inner(frame.get(ETH..).unwrap_or(&[]), frame, state, |vip| {
            let vip = self.plan.checked(vip).ok_or(Verdict::BadRewrite)?;
            if vip.mode != Mode::L2Dsr || !lb_mac_ok {
                return Err(Verdict::BadRewrite);
            }
            backend.ok_or(Verdict::WrongBackend)
        })
    }

    /// The source MAC of a forwarded frame is the load balancer's.
    fn lb_mac_ok(&mut self, frame: &[u8]) -> bool {
        let Some(src) = frame.get(6..12).and_then(|s| <[u8; 6]>::try_from(s).ok()) else {
            return false;
        };
        match self.lb_mac {
            Some(m) => m == src,
            None => {
                self.lb_mac = Some(src);
                true
            }
        }
    }

    /// Validates an IP-in-IP outer header (as mplb writes it) and returns the
    /// backend it is addressed to.
    fn outer(&self, frame: &[u8]) -> Result<u8, Verdict> {
        let bad = Verdict::BadRewrite;
        let lb = &self.plan.lb;
        let et = frame.get(12..14).ok_or(bad)?;
        let outer_len = if et == [0x08, 0x00] { 20 } else { 40 };
        // Protocol 4 carries IPv4, 41 IPv6.
        let inner_version = frame.get(ETH + outer_len).map(|v| v >> 4);
        let dst = if et == [0x08, 0x00] {
            let h = frame.get(ETH..ETH + 20).ok_or(bad)?;
            let total = usize::from(u16::from_be_bytes([h[2], h[3]]));
            let src = Ipv4Addr::new(h[12], h[13], h[14], h[15]);
            let want_src = lb.encap_v4.or_else(|| lb.ipv4.first().copied());
            if h[0] != 0x45
                || h[6..8] != [0x40, 0x00]
                || h[8] != lb.encap_ttl
                || checksum::sum(h) != 0xffff
                || total != frame.len() - ETH
                || want_src.is_some_and(|w| w != src)
                || inner_version != Some(if h[9] == 4 { 4 } else { 6 })
            {
                return Err(bad);
            }
            IpAddr::V4(Ipv4Addr::new(h[16], h[17], h[18], h[19]))
        } else {
            let h = frame.get(ETH..ETH + 40).ok_or(bad)?;
            let payload = usize::from(u16::from_be_bytes([h[4], h[5]]));
            let label = u32::from_be_bytes([0, h[1] & 0x0f, h[2], h[3]]);
            let src = ipv6_at(h, 8).ok_or(bad)?;
            let want_src = lb.encap_v6.or_else(|| lb.ipv6.first().copied());
            if h[0] >> 4 != 6
                || label == 0
                || h[7] != lb.encap_ttl
                || payload != frame.len() - ETH - 40
                || want_src.is_some_and(|w| w != src)
                || inner_version != Some(if h[6] == 4 { 4 } else { 6 })
            {
                return Err(bad);
            }
            IpAddr::V6(ipv6_at(h, 24).ok_or(bad)?)
        };
        let b = self
            .plan
            .backends
            .iter()
            .position(|b| b.addr == dst)
            .ok_or(Verdict::WrongBackend)?;
        // Next hop: the backend's MAC, else the port's gateway.
        let next_hop = self.plan.backends[b].mac.or(lb.gateway_mac);
        if frame.get(..6) != next_hop.as_ref().map(|m| &m[..]) {
            return Err(bad);
        }
        Ok(b as u8)
    }

    /// Recognises the inner packet, then asks `backend` (given the VIP it
    /// was sent to) which backend the frame reached, and checks that
    /// against the VIP's set and the flow's history.
    fn judge_inner(
        &self,
        inner: &[u8],
        frame: &[u8],
        state: &FlowState,
        backend: impl FnOnce(usize) -> Result<u8, Verdict>,
    ) -> Outcome {
        let i = match self.inner(inner) {
            Some(Ok(i)) => i,
            Some(Err(class)) => return Outcome::new(Verdict::BadRewrite, class, None),
            None => {
                return match trailer(frame) {
                    // A malformed frame came back: the load balancer should
                    // have dropped it.
                    Some(t) => Outcome::new(Verdict::Unexpected, Some(Class::Malformed), Some(t)),
                    None => Outcome::new(Verdict::Unexpected, None, None),
                };
            }
        };
        let out = |v| Outcome::new(v, Some(i.class), Some(i.tsc));
        let b = match backend(i.vip) {
            Ok(b) => b,
            Err(v) => return out(v),
        };
        if self.expect == Expect::Mplb
            && !self.plan.checked(i.vip).is_some_and(|v| v.has_backend(b))
        {
            return out(Verdict::WrongBackend);
        }
        if let Source::Flow { id, epoch, join } = i.source {
            if join {
                let routed = self.plan.checked(i.vip).is_some_and(|v| v.token_routing);
                // A join reaches its connection's backend (by token).
                if routed && state.backend_of(id, epoch).is_some_and(|c| c != b) {
                    return out(Verdict::FlowMoved);
                }
            } else {
                if state.record(id, epoch, b) == Seen::Moved {
                    return out(Verdict::FlowMoved);
                }
                if i.keys {
                    state.set_learnt(id, epoch);
                }
            }
        }
        out(Verdict::Ok)
    }

    /// Recognises an IP packet (starting at its IP header) as one the
    /// generator sent, unchanged. `None`: not ours at all; `Some(Err)`: ours
    /// (class if known) but altered.
    fn inner(&self, pkt: &[u8]) -> Option<Result<Inner, Option<Class>>> {
        let version = pkt.first()? >> 4;
        let (l4, proto, src) = match version {
            4 => (20, *pkt.get(9)?, IpAddr::V4(ipv4_at(pkt, 12)?)),
            6 => (40, *pkt.get(6)?, IpAddr::V6(ipv6_at(pkt, 8)?)),
            _ => return None,
        };
        let sport = be16(pkt, l4)?;
        let source = match src {
            IpAddr::V4(a) => flows::decode_v4(a.octets(), sport),
            IpAddr::V6(a) => flows::decode_v6(a.octets(), sport),
        }?;
        // From here on the packet claims to be ours: anything off is an alteration.
        let flow_class = match source {
            Source::Flow { id, .. } => Some(self.plan.class_of(id)),
            Source::Flood => None,
        };
        let known = flow_class.flatten().map(|(c, _)| c);
        Some(
            self.verify(pkt, version, l4, proto, src, source, flow_class)
                .ok_or(known),
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn verify(
        &self,
        pkt: &[u8],
        version: u8,
        l4: usize,
        proto: u8,
        src: IpAddr,
        source: Source,
        flow_class: Option<Option<(Class, u32)>>,
    ) -> Option<Inner> {
        let udp = match proto {
            6 => false,
            17 => true,
            _ => return None,
        };
        let dst = if version == 4 {
            let h = pkt.get(..20)?;
            let total = usize::from(be16(h, 2)?);
            let ok = h[0] == 0x45
                && h[1] == 0
                && total == pkt.len()
                && h[4..8] == [0, 0, 0x40, 0]
                && h[8] == TTL
                && checksum::sum(h) == 0xffff;
            if !ok {
                return None;
            }
            IpAddr::V4(ipv4_at(h, 16)?)
        } else {
            let h = pkt.get(..40)?;
            let ok = h[..4] == [0x60, 0, 0, 0]
                && usize::from(be16(h, 4)?) + 40 == pkt.len()
                && h[7] == TTL;
            if !ok {
                return None;
            }
            IpAddr::V6(ipv6_at(h, 24)?)
        };
        let seg = pkt.get(l4..)?;
        let dport = be16(seg, 2)?;
        // A flow's frame must be to its own VIP (family, protocol, address
        // and port): the one its index picks, compared, not looked up. A
        // flood frame's VIP is looked up; its class comes from its flags.
        let (vip, flow_class) = match (source, flow_class) {
            (Source::Flow { join, .. }, Some(Some((c, i)))) => {
                let want = self.plan.vip_for(i, c == Class::Udp)?;
                let ours = self.plan.checked(want)?.serves(dst, dport, udp);
                if !ours || (join && c != Class::Mptcp) {
                    return None;
                }
                (want, Some(if join { Class::Join } else { c }))
            }
            (Source::Flow { .. }, _) => return None,
            (Source::Flood, _) => (self.plan.vip_at(dst, dport, udp)?, None),
        };
        let seg_sum = checksum::sum(seg);
        let pseudo = match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                checksum::pseudo_header_v4(s, d, proto, u16::try_from(seg.len()).ok()?)
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                checksum::pseudo_header_v6(&s, &d, proto, u32::try_from(seg.len()).ok()?)
            }
            _ => return None,
        };
        if checksum::combine(&[pseudo, seg_sum]) != 0xffff {
            return None;
        }
        let (tsc, keys, flags) = if udp {
            (be64(seg, 8)?, false, 0)
        } else {
            if seg.get(20..24)? != TS_LEAD {
                return None;
            }
            let flags = *seg.get(13)?;
            let keys = flags == 0x10 && seg.get(32..34) == Some(&[30, 20]);
            (be64(seg, TS_AT)?, keys, flags)
        };
        let class = match flow_class {
            Some(c) => c,
            None if udp => return None,
            None if flags == 0x02 => Class::Flood,
            None => Class::AckFlood,
        };
        Some(Inner {
            source,
            class,
            vip,
            tsc,
            keys,
        })
    }
}

/// The TSC of a malformed frame's trailer, if the frame ends with one.
fn trailer(frame: &[u8]) -> Option<u64> {
    let n = frame.len();
    let t = frame.get(n.checked_sub(TRAILER)?..)?;
    (t[..8] == TRAILER_MAGIC).then(|| be64(t, 8)).flatten()
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at + 2)?;
    Some(u16::from_be_bytes([s[0], s[1]]))
}

fn be64(b: &[u8], at: usize) -> Option<u64> {
    b.get(at..at + 8)?.try_into().ok().map(u64::from_be_bytes)
}

fn ipv4_at(b: &[u8], at: usize) -> Option<Ipv4Addr> {
    let s: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
    Some(Ipv4Addr::from(s))
}

fn ipv6_at(b: &[u8], at: usize) -> Option<Ipv6Addr> {
    let s: [u8; 16] = b.get(at..at + 16)?.try_into().ok()?;
    Some(Ipv6Addr::from(s))
}

#[cfg(test)]
mod tests {
    //! Frames from the generator's own source, through mplb's real datapath
    //! (the code the `mplb` binary runs), into the checker.
    use mplb::datapath::forwarding::Forwarding;
    use mplb::datapath::frame::TestFrame;
    use mplb::datapath::process::Datapath;
    use mplb::datapath::verdict::Verdict as DpVerdict;
    use mplb::testing::{self, Harness, Tables};

    use super::*;
    use crate::plan::Mix;
    use crate::source::Source;

    const LB_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x10];
    const GEN_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x20];

    struct Lb {
        fwd: Forwarding,
        dp: Datapath,
    }

    fn setup(mix: &str, flows: u32, ipv6: u8, conn: u64) -> (Plan, Source, Lb) {
        // tests/fixtures/gen.toml: L2 DSR and IP-in-IP VIPs, a disabled backend.
        let config = testing::parse(testing::fixture("gen"));
        let Harness { fwd, dp, .. } = Harness::build(&config, &[LB_MAC], Tables::of(&config));
        let plan =
            Plan::new(Some(&config), Mix::parse(mix).expect("mix"), flows, ipv6).expect("plan");
        let source = Source::new(plan.clone(), LB_MAC, GEN_MAC, 128, conn);
        (plan, source, Lb { fwd, dp })
    }

    /// Sends `n` frames through the datapath; returns (class, forwarded frame) pairs.
    fn pass(
        source: &mut Source,
        lb: &mut Lb,
        state: &FlowState,
        n: usize,
    ) -> Vec<(Class, Option<Vec<u8>>)> {
        (0..n)
            .map(|k| {
                let next = source.next(state).expect("next");
                let mut b = vec![0u8; source.len(&next.build)];
                assert!(source.write(&next.build, &mut b, 1000 + k as u64));
                let mut f = TestFrame::new(&b);
                let v = lb.dp.process(&lb.fwd, 0, &mut f, 1_000_000 + k as u64);
                (next.class, (v == DpVerdict::Forward).then(|| f.to_vec()))
            })
            .collect()
    }

    #[test]
    fn everything_mplb_forwards_passes_every_check() {
        let (plan, mut source, mut lb) = setup(
            "mptcp=4,plain=2,join=1,flood=1,ackflood=1,udp=1,malformed=1",
            300,
            30,
            7,
        );
        let state = FlowState::new(plan.flows);
        let mut checker = Checker::new(&plan, Expect::Mplb, GEN_MAC, LB_MAC, Some(LB_MAC));
        let mut seen = [0u64; 7];
        let mut joins = 0;
        for _ in 0..20 {
            for (class, out) in pass(&mut source, &mut lb, &state, 500) {
                let Some(out) = out else {
                    assert_eq!(class, Class::Malformed, "mplb dropped a {class:?} frame");
                    continue;
                };
                assert_ne!(class, Class::Malformed, "mplb forwarded a malformed frame");
                let o = checker.check(&out, &state);
                assert_eq!(o.verdict, Verdict::Ok, "{class:?}: {o:?}");
                assert_eq!(o.class, Some(class));
                assert!(o.tsc.is_some_and(|t| (1000..11_000).contains(&t)));
                seen[class.index()] += 1;
                joins += u64::from(class == Class::Join);
            }
        }
        assert!(
            joins > 50,
            "joins were sent once keys went through ({joins})"
        );
        for c in [
            Class::Mptcp,
            Class::Plain,
            Class::Flood,
            Class::AckFlood,
            Class::Udp,
        ] {
            assert!(seen[c.index()] > 0, "{c:?} came back");
        }
        // The datapath learnt tokens and routed joins by them.
        let dc = &lb.dp.counters;
        assert!(dc.values().iter().any(|v| *v > 0));
    }

    #[test]
    fn alterations_are_caught() {
        let (plan, mut source, mut lb) = setup("mptcp=1,udp=1", 300, 50, 0);
        let state = FlowState::new(plan.flows);
        let mut checker = Checker::new(&plan, Expect::Mplb, GEN_MAC, LB_MAC, Some(LB_MAC));
        let frames: Vec<Vec<u8>> = pass(&mut source, &mut lb, &state, 1200)
            .into_iter()
            .filter_map(|(_, f)| f)
            .collect();
        for f in &frames {
            assert_eq!(checker.check(f, &state).verdict, Verdict::Ok);
        }
        let l2 = frames
            .iter()
            .find(|f| f[12..14] == [0x08, 0x00] && f[23] == 6)
            .expect("an L2 DSR frame");
        let ipip4 = frames
            .iter()
            .find(|f| f[12..14] == [0x08, 0x00] && f[23] == 4)
            .expect("a 4in4 frame");
        let ipip6 = frames
            .iter()
            .find(|f| f[12..14] == [0x86, 0xdd])
            .expect("a 6in6 frame");
        let mut check = |f: &[u8]| checker.check(f, &state).verdict;
        let edit = |f: &Vec<u8>, at: usize, v: u8| {
            let mut g = f.clone();
            g[at] = v;
            g
        };
        // Payload byte, TTL, source MAC, a TTL fixed up with its checksum.
        assert_eq!(
            check(&edit(l2, l2.len() - 1, l2[l2.len() - 1] ^ 1)),
            Verdict::BadRewrite
        );
        assert_eq!(check(&edit(l2, 22, 63)), Verdict::BadRewrite);
        assert_eq!(check(&edit(l2, 11, 0x99)), Verdict::BadRewrite);
        // To another port of the VIP's address, checksum kept right (RFC
        // 1624's update): not the flow's VIP.
        let mut to_other_port = l2.clone();
        let (port_at, sum_at) = (ETH + 20 + 2, ETH + 20 + 16);
        let old_port = u16::from_be_bytes([l2[port_at], l2[port_at + 1]]);
        let new_port = old_port ^ 0x0100;
        let old_sum = u16::from_be_bytes([l2[sum_at], l2[sum_at + 1]]);
        let mut sum = u32::from(!old_sum) + u32::from(!old_port) + u32::from(new_port);
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        to_other_port[port_at..port_at + 2].copy_from_slice(&new_port.to_be_bytes());
        to_other_port[sum_at..sum_at + 2].copy_from_slice(&(!(sum as u16)).to_be_bytes());
        let ip = mplb::wire::ipv4::Packet::new_checked(&to_other_port[ETH..]).expect("v4");
        let seg = mplb::wire::tcp::Packet::new_checked(&to_other_port[ETH + 20..]).expect("tcp");
        assert!(seg.verify_checksum_v4(ip.src_addr(), ip.dst_addr()));
        assert_eq!(check(&to_other_port), Verdict::BadRewrite);
        // Another backend of the VIP: the flow moved. A disabled one, or an
        // unknown MAC: wrong backend.
        let mut moved = l2.clone();
        moved[5] = if l2[5] == 0x11 { 0x12 } else { 0x11 };
        assert_eq!(check(&moved), Verdict::FlowMoved);
        assert_eq!(check(&edit(l2, 5, 0x14)), Verdict::WrongBackend);
        assert_eq!(check(&edit(l2, 5, 0x77)), Verdict::WrongBackend);
        // Outer headers: TTL, DF, checksum, destination, flow label.
        assert_eq!(check(&edit(ipip4, 22, 64)), Verdict::BadRewrite);
        assert_eq!(check(&edit(ipip4, 20, 0)), Verdict::BadRewrite);
        assert_eq!(check(&edit(ipip4, 24, ipip4[24] ^ 1)), Verdict::BadRewrite);
        let mut elsewhere = ipip4.clone();
        elsewhere[33] = 99;
        assert_eq!(
            check(&elsewhere),
            Verdict::BadRewrite,
            "checksum no longer matches"
        );
        let mut label0 = ipip6.clone();
        label0[15..18].copy_from_slice(&[0, 0, 0]);
        assert_eq!(check(&label0), Verdict::BadRewrite);
        // The inner packet of an encapsulated frame.
        assert_eq!(check(&edit(ipip6, ipip6.len() - 1, 0)), Verdict::BadRewrite);
        // Garbage and truncations: counted, no panic.
        assert_eq!(check(&[]), Verdict::Unexpected);
        assert_eq!(check(&[0u8; 60]), Verdict::Unexpected);
        for cut in 0..l2.len() {
            assert_ne!(check(&l2[..cut]), Verdict::Ok, "cut at {cut}");
        }
        for cut in 0..ipip6.len() {
            assert_ne!(check(&ipip6[..cut]), Verdict::Ok, "cut at {cut}");
        }
    }

    #[test]
    fn a_join_at_another_backend_is_a_moved_flow() {
        let (plan, mut source, mut lb) = setup("mptcp=1,join=1", 50, 0, 0);
        let state = FlowState::new(plan.flows);
        let mut checker = Checker::new(&plan, Expect::Mplb, GEN_MAC, LB_MAC, Some(LB_MAC));
        let mut join = None;
        for _ in 0..10 {
            for (class, f) in pass(&mut source, &mut lb, &state, 100) {
                let f = f.expect("forwarded");
                assert_eq!(checker.check(&f, &state).verdict, Verdict::Ok);
                if class == Class::Join {
                    join = Some(f);
                }
            }
        }
        let mut j = join.expect("a join was sent");
        j[5] = if j[5] == 0x11 { 0x12 } else { 0x11 };
        assert_eq!(checker.check(&j, &state).verdict, Verdict::FlowMoved);
    }

    #[test]
    fn macswap_expectations() {
        let (plan, mut source, _) = setup("plain=1,malformed=1", 10, 0, 0);
        let state = FlowState::new(plan.flows);
        let mut checker = Checker::new(&plan, Expect::Macswap, GEN_MAC, LB_MAC, None);
        for k in 0..40u64 {
            let n = source.next(&state).expect("next");
            let mut b = vec![0u8; source.len(&n.build)];
            assert!(source.write(&n.build, &mut b, k));
            let mut swapped = b.clone();
            swapped[..6].copy_from_slice(&b[6..12]);
            swapped[6..12].copy_from_slice(&b[..6]);
            let o = checker.check(&swapped, &state);
            assert_eq!(
                (o.verdict, o.class, o.tsc),
                (Verdict::Ok, Some(n.class), Some(k))
            );
            assert_eq!(
                checker.check(&b, &state).verdict,
                Verdict::BadRewrite,
                "not swapped"
            );
        }
    }
}
