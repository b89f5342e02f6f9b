//! Backend MACs learnt by ARP and IPv6 neighbour discovery.
//!
//! A backend configured without `mac` is resolved from the port that faces
//! it. The management thread decides when to ask (see
//! `crate::control::resolver`); a worker writes the question
//! ([`write_solicit`]: an ARP request, or a neighbour solicitation to the
//! target's solicited-node group) and sends it. Answers come back as
//! ordinary frames: [`Datapath::process`](super::process::Datapath::process)
//! hands ARP packets and neighbour advertisements to [`learn_arp`] /
//! [`learn_na`], which record the sender's MAC in the [`Neighbours`] table
//! of the snapshot if its address is one being watched on that port. The
//! management thread reads the table, and a learnt or changed MAC reaches
//! the workers in the next snapshot, so the per-packet path reads MACs from
//! the snapshot as before and never touches this table.
//!
//! The table is a fixed set of slots, one per watched (port, address),
//! sorted for a binary search; a slot holds atomics only, so a worker records
//! an answer without a lock or an allocation, whatever the management thread
//! is doing.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};

use super::frame::Frame;
use super::verdict::Verdict;
use crate::wire::ethernet::{self, MacAddr, ethertype};
use crate::wire::parse::{IpInfo, L4};
use crate::wire::{arp, icmpv6, ip_proto, ipv6};

/// The longest frame [`write_solicit`] writes (an untagged NS with its
/// source link-layer option).
pub const SOLICIT_MAX_LEN: usize =
    ethernet::HEADER_LEN + ipv6::HEADER_LEN + icmpv6::NS_WITH_SLL_LEN;

/// The shortest Ethernet frame without its FCS: an ARP request is padded to it.
const MIN_FRAME_LEN: usize = 60;

/// A question to send: "who has `target`?" out of port `port`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Solicit {
    pub port: usize,
    pub target: IpAddr,
    /// Ask the MAC known so far directly (a refresh), instead of
    /// broadcasting (ARP) or asking the solicited-node group (ND).
    pub unicast: Option<[u8; 6]>,
}

/// One watched (port, address) and the last answer heard for it.
#[derive(Debug)]
struct Slot {
    port: usize,
    addr: IpAddr,
    /// The MAC in the low 48 bits, bit 48 set once one was heard.
    mac: AtomicU64,
    /// Answers heard (a refresh with the same MAC counts too).
    heard: AtomicU64,
}

const HAVE_MAC: u64 = 1 << 48;

/// What a slot holds, for the management thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Heard {
    /// How many answers were recorded so far.
    pub count: u64,
    /// The MAC of the latest.
    pub mac: Option<[u8; 6]>,
}

/// The (port, address) pairs being resolved and what was heard for them.
#[derive(Debug, Default)]
pub struct Neighbours {
    /// Sorted by (port, address), no duplicates.
    slots: Vec<Slot>,
}

impl Neighbours {
    /// A table watching `wanted` (duplicates are merged).
    pub fn new(wanted: impl IntoIterator<Item = (usize, IpAddr)>) -> Neighbours {
        let mut keys: Vec<(usize, IpAddr)> = wanted.into_iter().collect();
        keys.sort_unstable();
        keys.dedup();
        Neighbours {
            slots: keys
                .into_iter()
                .map(|(port, addr)| Slot {
                    port,
                    addr,
                    mac: AtomicU64::new(0),
                    heard: AtomicU64::new(0),
                })
                .collect(),
        }
    }

    /// The watched pairs, sorted.
    pub fn watched(&self) -> impl Iterator<Item = (usize, IpAddr)> + '_ {
        self.slots.iter().map(|s| (s.port, s.addr))
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    fn slot(&self, port: usize, addr: IpAddr) -> Option<&Slot> {
        self.slots
            .binary_search_by(|s| (s.port, s.addr).cmp(&(port, addr)))
            .ok()
            .and_then(|i| self.slots.get(i))
    }

    /// Records that `addr` on `port` is at `mac`; false (nothing recorded)
    /// if that pair is not watched or `mac` is not a unicast address.
    pub fn record(&self, port: usize, addr: IpAddr, mac: [u8; 6]) -> bool {
        let m = MacAddr(mac);
        if !m.is_unicast() || m == MacAddr::ZERO {
            return false;
        }
        let Some(s) = self.slot(port, addr) else {
            return false;
        };
        let [a, b, c, d, e, f] = mac;
        let v = u64::from_be_bytes([0, 0, a, b, c, d, e, f]) | HAVE_MAC;
        s.mac.store(v, Ordering::Relaxed);
        // Release: whoever sees the new count sees this MAC (or a later one).
        s.heard.fetch_add(1, Ordering::Release);
        true
    }

    /// What was heard for `addr` on `port`; `None` if it is not watched.
    pub fn heard(&self, port: usize, addr: IpAddr) -> Option<Heard> {
        let s = self.slot(port, addr)?;
        let count = s.heard.load(Ordering::Acquire);
        let v = s.mac.load(Ordering::Relaxed);
        let [_, _, a, b, c, d, e, f] = v.to_be_bytes();
        Some(Heard {
            count,
            mac: (v & HAVE_MAC != 0).then_some([a, b, c, d, e, f]),
        })
    }
}

/// What a port asks from: its MAC and the first address of each family
/// (`Interface::asker` in the forwarding snapshot).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Asker {
    pub mac: [u8; 6],
    pub ipv4: Option<Ipv4Addr>,
    pub ipv6: Option<Ipv6Addr>,
}

/// Writes the frame that asks for `s.target` out of the port `from`
/// describes into the start of `buf`: an ARP request from its IPv4 address
/// (padded to 60 bytes), or a neighbour solicitation from its IPv6 address
/// with its MAC as source link-layer option. Returns the frame's length;
/// `None` if the port has no address of the target's family or `buf` is too
/// short.
pub fn write_solicit(buf: &mut [u8], s: &Solicit, from: &Asker) -> Option<usize> {
    let us = MacAddr(from.mac);
    match s.target {
        IpAddr::V4(target) => {
            let src = from.ipv4?;
            let frame = buf.get_mut(..MIN_FRAME_LEN)?;
            frame.fill(0);
            let dst = s.unicast.map_or(MacAddr::BROADCAST, MacAddr);
            ethernet::emit_header(frame, dst, us, ethertype::ARP).ok()?;
            let body = frame.get_mut(ethernet::HEADER_LEN..)?;
            arp::emit(body, arp::op::REQUEST, (us, src), (MacAddr::ZERO, target)).ok()?;
            Some(MIN_FRAME_LEN)
        }
        IpAddr::V6(target) => {
            let src = from.ipv6?;
            let (dst_ip, dst_mac) = match s.unicast {
                Some(mac) => (target, MacAddr(mac)),
                None => {
                    let group = icmpv6::solicited_node(&target);
                    (group, icmpv6::multicast_mac(&group))
                }
            };
            let frame = buf.get_mut(..SOLICIT_MAX_LEN)?;
            ethernet::emit_header(frame, dst_mac, us, ethertype::IPV6).ok()?;
            let (_, rest) = frame.split_at_mut(ethernet::HEADER_LEN);
            let (ip, ns) = rest.split_at_mut(ipv6::HEADER_LEN);
            ipv6::emit_header(
                ip,
                &src,
                &dst_ip,
                ip_proto::ICMPV6,
                icmpv6::NS_WITH_SLL_LEN as u16,
                255,
            )
            .ok()?;
            icmpv6::emit_neighbor_solicit(ns, &target, us, &src, &dst_ip).ok()?;
            Some(SOLICIT_MAX_LEN)
        }
    }
}

/// An ARP packet received on `port`: if its sender is a watched address,
/// records the sender's MAC (a reply to our request, a gratuitous
/// announcement, or the backend asking for us). Whatever it returns, the
/// caller still answers a request for one of our addresses.
pub(super) fn learn_arp<F: Frame>(
    table: &Neighbours,
    port: usize,
    frame: &F,
    l3_offset: usize,
) -> bool {
    if table.is_empty() {
        return false;
    }
    let Some(a) = frame
        .get(l3_offset..)
        .and_then(|b| arp::Packet::new_checked(b).ok())
    else {
        return false;
    };
    let sender: Ipv4Addr = a.sender_ip();
    table.record(port, IpAddr::V4(sender), a.sender_mac().0)
}

/// Whether `ip` is an IPv6 neighbour advertisement (for [`learn_na`]).
pub(super) fn is_neighbor_advert(ip: &IpInfo) -> bool {
    ip.version == 6
        && ip.fragment.is_none()
        && matches!(
            ip.l4,
            L4::Icmp {
                ty: icmpv6::msg_type::NEIGHBOR_ADVERT,
                ..
            }
        )
}

/// A neighbour advertisement received on `port` (RFC 4861 §7.1.2 validity:
/// hop limit 255, code 0, checksum): records the target's MAC if the target
/// is watched there — from the target link-layer option, or, without one
/// (allowed in an answer to a unicast solicitation), the frame's source.
/// `Absorbed` if recorded; a valid advertisement for anything else is not
/// for us.
pub(super) fn learn_na<F: Frame>(
    table: &Neighbours,
    port: usize,
    frame: &F,
    ip: &IpInfo,
) -> Verdict {
    use super::verdict::DropReason;
    let (src, dst) = (Ipv6Addr::from(ip.src), Ipv6Addr::from(ip.dst));
    let Some(m) = frame
        .get(ip.l4_offset..ip.l3_end)
        .and_then(|b| icmpv6::Packet::new_checked(b).ok())
    else {
        return Verdict::Drop(DropReason::Malformed);
    };
    if ip.ttl != 255 || m.code() != 0 || !m.verify_checksum(&src, &dst) {
        return Verdict::Drop(DropReason::Malformed);
    }
    let Some(target) = m.target_addr() else {
        return Verdict::Drop(DropReason::Malformed);
    };
    let mac = match m.target_link_addr() {
        Some(mac) => mac,
        None => match frame.get(6..12).and_then(MacAddr::from_slice) {
            Some(mac) => mac,
            None => return Verdict::Drop(DropReason::Malformed),
        },
    };
    if table.record(port, IpAddr::V6(target), mac.0) {
        Verdict::Absorbed
    } else {
        Verdict::Drop(DropReason::NotForUs)
    }
}

/// A neighbour solicitation received on `port` from a watched address with
/// a source link-layer option (the backend resolving us): records that
/// MAC, as a host does for the sender of a solicitation (RFC 4861 §7.2.3).
/// The caller answers the solicitation as before.
pub(super) fn learn_ns<F: Frame>(table: &Neighbours, port: usize, frame: &F, ip: &IpInfo) {
    if table.is_empty() || ip.ttl != 255 {
        return;
    }
    let (src, dst) = (Ipv6Addr::from(ip.src), Ipv6Addr::from(ip.dst));
    let Some(m) = frame
        .get(ip.l4_offset..ip.l3_end)
        .and_then(|b| icmpv6::Packet::new_checked(b).ok())
    else {
        return;
    };
    if m.code() != 0 || !m.verify_checksum(&src, &dst) {
        return;
    }
    if let Some(mac) = m.source_link_addr() {
        table.record(port, IpAddr::V6(src), mac.0);
    }
}

#[cfg(test)]
#[path = "neighbours_tests.rs"]
mod tests;
