//! Answers the load balancer gives itself, sent back out the rx port:
//!
//! * ARP requests for the port's own IPv4 addresses and for every IPv4 VIP
//!   (the upstream router must resolve the VIP to us);
//! * IPv6 neighbour solicitations for own and VIP addresses (NA with the
//!   port's MAC, solicited + override flags; to all-nodes for DAD probes);
//! * ICMP / ICMPv6 echo requests to the port's own addresses;
//! * ICMP "fragmentation needed" / ICMPv6 "packet too big" for packets to a
//!   VIP that would exceed the out port's MTU once encapsulated (see
//!   [`too_big`]).
//!
//! Echo requests to a VIP are not answered (nor forwarded): the VIP's
//! service is the backends', and a ping answered by the load balancer would
//! say nothing about them. An 802.1Q tag on a request is kept on its answer.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::wire::ethernet::MacAddr;
use crate::wire::parse::{IpInfo, L4};
use crate::wire::{arp, checksum, icmpv4, icmpv6, ip_proto, ipv4, ipv6};

use super::budget::TokenBucket;
use super::forwarding::{Forwarding, Interface};
use super::frame::Frame;
use super::verdict::{DropReason, Verdict};

const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
const ALL_NODES_MAC: [u8; 6] = [0x33, 0x33, 0, 0, 0, 1];

fn err(e: crate::wire::WireError) -> DropReason {
    match e {
        crate::wire::WireError::Unsupported => DropReason::Unsupported,
        _ => DropReason::Malformed,
    }
}

/// Answers an ARP request for an own address or a VIP.
pub(super) fn arp<F: Frame>(
    iface: &Interface,
    fwd: &Forwarding,
    frame: &mut F,
    l3_offset: usize,
) -> Verdict {
    let Some(body) = frame.get_mut(l3_offset..) else {
        return Verdict::Drop(DropReason::Malformed);
    };
    let mut a = match arp::Packet::new_checked(body) {
        Ok(a) => a,
        Err(e) => return Verdict::Drop(err(e)),
    };
    if !a.is_request() {
        return Verdict::Drop(DropReason::Unsupported);
    }
    let target = a.target_ip();
    if !iface.owns_v4(target) && !fwd.is_vip_addr(IpAddr::V4(target)) {
        return Verdict::Drop(DropReason::NotForUs);
    }
    let requester = a.sender_mac();
    if a.make_reply(MacAddr(iface.mac)).is_err() {
        return Verdict::Drop(DropReason::Unsupported);
    }
    set_macs(frame, requester.0, iface.mac);
    Verdict::Reply
}

/// Whether the ARP packet at `l3_offset` is a reply (to the kernel's
/// question, on a port with an exception path).
pub(super) fn is_arp_reply<F: Frame>(frame: &F, l3_offset: usize) -> bool {
    frame
        .get(l3_offset..)
        .and_then(|b| arp::Packet::new_checked(b).ok())
        .is_some_and(|a| a.operation() == arp::op::REPLY)
}

/// Whether `ip` is an ICMP / ICMPv6 echo request the datapath answers
/// itself (when it is to an own address, see [`echo`]).
pub(super) fn is_echo_request(ip: &IpInfo) -> bool {
    let request = match ip.version {
        4 => icmpv4::msg_type::ECHO_REQUEST,
        _ => icmpv6::msg_type::ECHO_REQUEST,
    };
    ip.fragment.is_none() && matches!(ip.l4, L4::Icmp { ty, .. } if ty == request)
}

/// Whether `ip` is to an address that only means something on this link:
/// IPv6 link-local unicast (fe80::/10) or link-scope multicast (ff02::/16)
/// — router advertisements, MLD, BGP and BFD over link-local addresses —
/// and IPv4's Local Network Control Block (224.0.0.0/24, RFC 5771: OSPF,
/// VRRP, IGMP reports, never forwarded by a router) or the limited
/// broadcast 255.255.255.255.
pub(super) fn is_link_scope(ip: &IpInfo) -> bool {
    match ip.version {
        4 => {
            let [.., a, b, c, d] = ip.dst;
            (a, b, c) == (224, 0, 0) || [a, b, c, d] == [255; 4]
        }
        _ => {
            let [a, b, ..] = ip.dst;
            (a == 0xfe && b & 0xc0 == 0x80) || (a == 0xff && b == 0x02)
        }
    }
}

fn set_macs<F: Frame>(frame: &mut F, dst: [u8; 6], src: [u8; 6]) {
    if let Some(h) = frame.get_mut(..12) {
        h[..6].copy_from_slice(&dst);
        h[6..].copy_from_slice(&src);
    }
}

fn swap_macs<F: Frame>(frame: &mut F) {
    if let Some(h) = frame.get_mut(..12) {
        let (d, s) = h.split_at_mut(6);
        d.swap_with_slice(s);
    }
}

/// Whether `ip` is a neighbour solicitation (answered or dropped by
/// [`neighbor_solicit`], whatever its destination address).
pub(super) fn is_neighbor_solicit(ip: &IpInfo) -> bool {
    ip.version == 6
        && ip.fragment.is_none()
        && matches!(
            ip.l4,
            L4::Icmp {
                ty: icmpv6::msg_type::NEIGHBOR_SOLICIT,
                ..
            }
        )
}

/// Answers a neighbour solicitation for an own address or a VIP with a
/// neighbour advertisement carrying the port's MAC (RFC 4861 §7.2.4).
pub(super) fn neighbor_solicit<F: Frame>(
    iface: &Interface,
    fwd: &Forwarding,
    frame: &mut F,
    l3_offset: usize,
    ip: &IpInfo,
) -> Verdict {
    // is_neighbor_solicit checked that this is IPv6.
    let (src, dst) = (Ipv6Addr::from(ip.src), Ipv6Addr::from(ip.dst));
    let Some(msg) = frame.get(ip.l4_offset..ip.l3_end) else {
        return Verdict::Drop(DropReason::Malformed);
    };
    let m = match icmpv6::Packet::new_checked(msg) {
        Ok(m) => m,
        Err(e) => return Verdict::Drop(err(e)),
    };
    // RFC 4861 §7.1.1 validity: hop limit 255, code 0, checksum, ≥ 24 bytes.
    if ip.ttl != 255 || m.code() != 0 || !m.verify_checksum(&src, &dst) {
        return Verdict::Drop(DropReason::Malformed);
    }
    let Some(target) = m.target_addr() else {
        return Verdict::Drop(DropReason::Malformed);
    };
    if !iface.owns_v6(target) && !fwd.is_vip_addr(IpAddr::V6(target)) {
        return Verdict::Drop(DropReason::NotForUs);
    }
    let Some(requester) = frame.get(6..12).and_then(MacAddr::from_slice) else {
        return Verdict::Drop(DropReason::Malformed);
    };
    let (reply_dst, reply_mac, flags) = if src.is_unspecified() {
        // Duplicate address detection: answer all nodes, not solicited.
        (ALL_NODES, ALL_NODES_MAC, icmpv6::na_flags::OVERRIDE)
    } else {
        (
            src,
            requester.0,
            icmpv6::na_flags::SOLICITED | icmpv6::na_flags::OVERRIDE,
        )
    };

    // Keep the Ethernet header (and its VLAN tag), rebuild the rest.
    let mut l2 = [0u8; 18];
    let Some(hdr) = frame.get(..l3_offset) else {
        return Verdict::Drop(DropReason::Malformed);
    };
    let Some(keep) = l2.get_mut(..l3_offset) else {
        return Verdict::Drop(DropReason::Malformed);
    };
    keep.copy_from_slice(hdr);
    let total = l3_offset + ipv6::HEADER_LEN + icmpv6::NA_WITH_TLL_LEN;
    if frame.len() >= total {
        frame.truncate(total);
    } else if !frame.prepend(total - frame.len()) {
        return Verdict::Drop(DropReason::NoHeadroom);
    }
    let Some(buf) = frame.get_mut(..total) else {
        return Verdict::Drop(DropReason::Malformed);
    };
    let (head, rest) = buf.split_at_mut(l3_offset);
    if let Some(k) = l2.get(..l3_offset) {
        head.copy_from_slice(k);
    }
    let (ip6, na) = rest.split_at_mut(ipv6::HEADER_LEN.min(rest.len()));
    let written = ipv6::emit_header(
        ip6,
        &target,
        &reply_dst,
        crate::wire::ip_proto::ICMPV6,
        icmpv6::NA_WITH_TLL_LEN as u16,
        255,
    )
    .and_then(|()| {
        icmpv6::emit_neighbor_advert(na, &target, MacAddr(iface.mac), flags, &target, &reply_dst)
    });
    if written.is_err() {
        return Verdict::Drop(DropReason::Malformed);
    }
    set_macs(frame, reply_mac, iface.mac);
    Verdict::Reply
}

/// Answers an ICMP / ICMPv6 echo request to one of the port's own
/// addresses (`ip.dst` is known to be one); drops anything else sent to them.
pub(super) fn echo<F: Frame>(frame: &mut F, l3_offset: usize, ip: &IpInfo) -> Verdict {
    if ip.fragment.is_some() {
        return Verdict::Drop(DropReason::Unsupported);
    }
    let request = match ip.version {
        4 => icmpv4::msg_type::ECHO_REQUEST,
        _ => icmpv6::msg_type::ECHO_REQUEST,
    };
    if !matches!(ip.l4, L4::Icmp { ty, code: 0, .. } if ty == request) {
        return Verdict::Drop(DropReason::Unsupported);
    }
    let v = match ip.version {
        4 => echo_v4(frame, l3_offset, ip),
        _ => echo_v6(frame, l3_offset, ip, ip.src.into(), ip.dst.into()),
    };
    match v {
        Ok(()) => {
            swap_macs(frame);
            Verdict::Reply
        }
        Err(r) => Verdict::Drop(r),
    }
}

fn echo_v4<F: Frame>(frame: &mut F, l3_offset: usize, ip: &IpInfo) -> Result<(), DropReason> {
    let icmp_at = ip
        .l4_offset
        .checked_sub(l3_offset)
        .ok_or(DropReason::Malformed)?;
    let packet = frame
        .get_mut(l3_offset..ip.l3_end)
        .ok_or(DropReason::Malformed)?;
    let (hdr, msg) = packet.split_at_mut(icmp_at.min(packet.len()));
    if checksum::checksum(msg) != 0 {
        return Err(DropReason::Malformed);
    }
    icmpv4::Packet::new_checked(msg)
        .map_err(err)?
        .make_echo_reply()
        .map_err(err)?;
    let mut h = ipv4::Packet::new_header_checked(hdr).map_err(err)?;
    let (s, d) = (h.src_addr(), h.dst_addr());
    h.set_src_addr(d);
    h.set_dst_addr(s);
    h.set_ttl(64);
    h.fill_checksum();
    Ok(())
}

fn echo_v6<F: Frame>(
    frame: &mut F,
    l3_offset: usize,
    ip: &IpInfo,
    src: Ipv6Addr,
    dst: Ipv6Addr,
) -> Result<(), DropReason> {
    // A reply would have to mirror extension headers: not worth it for ping.
    if ip.l4_offset != l3_offset + ipv6::HEADER_LEN {
        return Err(DropReason::Unsupported);
    }
    let msg = frame
        .get_mut(ip.l4_offset..ip.l3_end)
        .ok_or(DropReason::Malformed)?;
    let mut m = icmpv6::Packet::new_checked(msg).map_err(err)?;
    if !m.verify_checksum(&src, &dst) {
        return Err(DropReason::Malformed);
    }
    // Swapping the addresses leaves the pseudo-header sum unchanged.
    m.make_echo_reply().map_err(err)?;
    let h = frame
        .get_mut(l3_offset..l3_offset + ipv6::HEADER_LEN)
        .ok_or(DropReason::Malformed)?;
    h[7] = 64;
    h[8..24].copy_from_slice(&dst.octets());
    h[24..40].copy_from_slice(&src.octets());
    Ok(())
}

/// The quote in an ICMPv4 error: the error as a whole within 576 bytes
/// (RFC 1812 4.3.2.3).
const QUOTE_V4: usize = 576 - ipv4::MIN_HEADER_LEN - 8;
/// The quote in an ICMPv6 error: the error within the minimum MTU (RFC
/// 4443 2.4).
const QUOTE_V6: usize = 1280 - ipv6::HEADER_LEN - 8;

/// A packet to a VIP whose IP-in-IP encapsulation would exceed the out
/// port's MTU: `room` is the longest packet that fits. Sending it anyway
/// would lose it on the first link (or NIC) that enforces the MTU, and the
/// client would retransmit the same size forever. Instead the client gets
/// what a router on the path would send — ICMP "fragmentation needed" with
/// next-hop MTU `room` for IPv4 with DF, ICMPv6 "packet too big" with MTU
/// `room` for IPv6 — from the VIP, quoting the packet, out the port it came
/// in on; its path-MTU discovery then lowers the connection's segment size
/// (RFC 1191, RFC 8201). Not fragmented and dropped (`drop_too_big`): IPv4
/// without DF (rare: TCP sets DF), ICMP errors (no error about an error),
/// packets from a broadcast, multicast or unspecified source, and IPv4
/// fragments other than the first. The caller spends one token of the worker's [`IcmpBudget`] per
/// error sent. An IPv6 `room` below 1280 is sent as it is; hosts go no lower
/// than 1280, so such a port MTU cannot carry those packets.
pub(super) fn too_big<F: Frame>(
    iface: &Interface,
    frame: &mut F,
    l3_offset: usize,
    ip: &IpInfo,
    room: usize,
) -> Verdict {
    let is_error = match ip.l4 {
        L4::Icmp { ty, .. } if ip.version == 4 => icmpv4::is_error_type(ty),
        L4::Icmp { ty, .. } => icmpv6::is_error_type(ty),
        _ => false,
    };
    // RFC 1122 3.2.2 / RFC 4443 2.4: no error to a source that is not one
    // host, nor (IPv4) about a fragment other than the first.
    let unicast_source = match ip.version {
        4 => {
            let [.., a, b, c, d] = ip.src;
            let a = Ipv4Addr::new(a, b, c, d);
            !(a.is_unspecified() || a.is_broadcast() || a.is_multicast())
        }
        _ => {
            let a = Ipv6Addr::from(ip.src);
            !(a.is_unspecified() || a.is_multicast())
        }
    };
    let later_fragment = ip.version == 4 && ip.fragment.is_some_and(|f| !f.is_first());
    let Some(&[s0, s1, s2, s3, s4, s5]) = frame.get(6..12) else {
        return Verdict::Drop(DropReason::Malformed);
    };
    let built = match ip.version {
        _ if is_error || !unicast_source || later_fragment => Err(DropReason::TooBig),
        4 => too_big_v4(frame, l3_offset, ip, room),
        _ => too_big_v6(frame, l3_offset, ip, room),
    };
    match built {
        Ok(()) => {
            set_macs(frame, [s0, s1, s2, s3, s4, s5], iface.mac);
            Verdict::Reply
        }
        Err(r) => Verdict::Drop(r),
    }
}

/// Makes room for an error's `header` bytes (IP and ICMP headers) in front
/// of the IP packet at `l3` by growing the frame at the front: the packet
/// stays where it is and becomes the error's quote, cut to `max` bytes; the
/// Ethernet header (with its tag) moves to the new front. The quote's
/// length.
fn make_error_room<F: Frame>(
    frame: &mut F,
    l3: usize,
    ip: &IpInfo,
    max: usize,
    header: usize,
) -> Result<usize, DropReason> {
    let quote = ip.l3_end.saturating_sub(l3).min(max);
    if !frame.prepend(header) {
        return Err(DropReason::NoHeadroom);
    }
    let end = l3 + header + quote;
    if frame.len() < end {
        return Err(DropReason::Malformed);
    }
    // header + l3 <= end <= len: both ranges are in bounds.
    frame.copy_within(header..header + l3, 0);
    frame.truncate(end);
    Ok(quote)
}

/// Writes an ICMP / ICMPv6 header (type, code, zero checksum, the 4 bytes
/// after it) at the front of `msg`.
fn icmp_header(msg: &mut [u8], ty: u8, code: u8, rest: [u8; 4]) -> Result<(), DropReason> {
    let [r0, r1, r2, r3] = rest;
    msg.get_mut(..8)
        .ok_or(DropReason::Malformed)?
        .copy_from_slice(&[ty, code, 0, 0, r0, r1, r2, r3]);
    Ok(())
}

fn too_big_v4<F: Frame>(
    frame: &mut F,
    l3: usize,
    ip: &IpInfo,
    room: usize,
) -> Result<(), DropReason> {
    let h = frame.get(l3..ip.l4_offset).ok_or(DropReason::Malformed)?;
    if !ipv4::Packet::new_header_checked(h)
        .map_err(err)?
        .dont_frag()
    {
        return Err(DropReason::TooBig);
    }
    const HEADER: usize = ipv4::MIN_HEADER_LEN + 8;
    let quote = make_error_room(frame, l3, ip, QUOTE_V4, HEADER)?;
    // At least the packet's IP header and its first 8 payload bytes (RFC 792).
    if quote < ip.l4_offset.saturating_sub(l3) + 8 {
        return Err(DropReason::Malformed);
    }
    let [.., c0, c1, c2, c3] = ip.src;
    let [.., v0, v1, v2, v3] = ip.dst;
    let end = l3 + HEADER + quote;
    let out = frame.get_mut(l3..end).ok_or(DropReason::Malformed)?;
    ipv4::emit_header(
        out,
        [v0, v1, v2, v3].into(),
        [c0, c1, c2, c3].into(),
        ip_proto::ICMP,
        (8 + quote) as u16,
        64,
        0,
    )
    .map_err(err)?;
    let msg = out
        .get_mut(ipv4::MIN_HEADER_LEN..)
        .ok_or(DropReason::Malformed)?;
    let [m0, m1] = u16::try_from(room).unwrap_or(u16::MAX).to_be_bytes();
    icmp_header(
        msg,
        icmpv4::msg_type::DEST_UNREACHABLE,
        icmpv4::CODE_FRAG_NEEDED,
        [0, 0, m0, m1],
    )?;
    icmpv4::Packet::new_checked(msg)
        .map_err(err)?
        .fill_checksum();
    Ok(())
}

fn too_big_v6<F: Frame>(
    frame: &mut F,
    l3: usize,
    ip: &IpInfo,
    room: usize,
) -> Result<(), DropReason> {
    const HEADER: usize = ipv6::HEADER_LEN + 8;
    let quote = make_error_room(frame, l3, ip, QUOTE_V6, HEADER)?;
    if quote < ipv6::HEADER_LEN + 8 {
        return Err(DropReason::Malformed);
    }
    let (vip, client) = (Ipv6Addr::from(ip.dst), Ipv6Addr::from(ip.src));
    let end = l3 + HEADER + quote;
    let out = frame.get_mut(l3..end).ok_or(DropReason::Malformed)?;
    ipv6::emit_header(out, &vip, &client, ip_proto::ICMPV6, (8 + quote) as u16, 64).map_err(err)?;
    let msg = out
        .get_mut(ipv6::HEADER_LEN..)
        .ok_or(DropReason::Malformed)?;
    let mtu = u32::try_from(room).unwrap_or(u32::MAX).to_be_bytes();
    icmp_header(msg, icmpv6::msg_type::PACKET_TOO_BIG, 0, mtu)?;
    icmpv6::Packet::new_checked(msg)
        .map_err(err)?
        .fill_checksum(&vip, &client)
        .map_err(err)?;
    Ok(())
}

/// A worker's budget for the ICMP errors it generates: Linux's defaults
/// (`net.ipv4.icmp_msgs_per_sec` 1000, `icmp_msgs_burst` 50), so that a
/// flood of oversized packets, perhaps from spoofed sources, cannot make the
/// load balancer a source of unbounded ICMP traffic.
pub(super) type IcmpBudget = TokenBucket<1000, 50>;
