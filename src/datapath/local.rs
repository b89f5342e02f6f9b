//! Answers for the load balancer's own addresses: ARP requests and ICMP echo.
//! Both are turned around in place and sent back out the port they came in on.

use crate::wire::ethernet::{self, MacAddr, ethertype};
use crate::wire::{checksum, ipv4};

use super::counters::Counters;
use super::forwarding::Interface;
use super::frame::Frame;
use super::process::{DropReason, Verdict};

// ARP for Ethernet/IPv4 (RFC 826), offsets from the start of the ARP header.
const ARP_LEN: usize = 28;
const ARP_OP: usize = 6;
const ARP_SHA: usize = 8;
const ARP_SPA: usize = 14;
const ARP_THA: usize = 18;
const ARP_TPA: usize = 24;
const ARP_REQUEST: u16 = 1;
const ARP_REPLY: u16 = 2;
const ARP_FIXED_HEADER: [u8; 6] = [0, 1, 0x08, 0x00, 6, 4];

const ICMP_ECHO_REPLY: u8 = 0;
const ICMP_ECHO_REQUEST: u8 = 8;
const IPPROTO_ICMP: u8 = 1;

/// Answers ARP and ICMP echo addressed to `iface`; drops the rest.
pub(super) fn answer<F: Frame>(
    iface: &Interface,
    frame: &mut F,
    counters: &mut Counters,
) -> Verdict {
    let Ok(eth) = ethernet::Frame::new_checked(&mut frame[..]) else {
        return Verdict::Drop(DropReason::Malformed);
    };
    match eth.ethertype() {
        ethertype::ARP => {
            let v = arp_reply(iface, eth);
            counters.arp_replies += u64::from(v == Verdict::Reply);
            v
        }
        ethertype::IPV4 => {
            let v = icmp_echo_reply(iface, eth);
            counters.icmp_echo_replies += u64::from(v == Verdict::Reply);
            v
        }
        _ => Verdict::Drop(DropReason::Unsupported),
    }
}

fn arp_reply(iface: &Interface, mut eth: ethernet::Frame<&mut [u8]>) -> Verdict {
    let arp = eth.payload_mut();
    let Some(arp) = arp.get_mut(..ARP_LEN) else {
        return Verdict::Drop(DropReason::Malformed);
    };
    if arp[..6] != ARP_FIXED_HEADER {
        return Verdict::Drop(DropReason::Unsupported);
    }
    if u16::from_be_bytes([arp[ARP_OP], arp[ARP_OP + 1]]) != ARP_REQUEST {
        return Verdict::Drop(DropReason::Unsupported);
    }
    let target = std::net::Ipv4Addr::new(
        arp[ARP_TPA],
        arp[ARP_TPA + 1],
        arp[ARP_TPA + 2],
        arp[ARP_TPA + 3],
    );
    if !iface.owns_v4(target) {
        return Verdict::Drop(DropReason::NotForUs);
    }
    // Reply: we become the sender, the requester the target.
    let mut requester = [0u8; 10];
    requester.copy_from_slice(&arp[ARP_SHA..ARP_SHA + 10]);
    arp[ARP_OP..ARP_OP + 2].copy_from_slice(&ARP_REPLY.to_be_bytes());
    arp[ARP_SHA..ARP_SHA + 6].copy_from_slice(&iface.mac);
    arp[ARP_SPA..ARP_SPA + 4].copy_from_slice(&target.octets());
    arp[ARP_THA..ARP_THA + 10].copy_from_slice(&requester);
    let dst = MacAddr::from_slice(&requester[..6]).unwrap_or(MacAddr::BROADCAST);
    eth.set_dst_addr(dst);
    eth.set_src_addr(MacAddr(iface.mac));
    Verdict::Reply
}

fn icmp_echo_reply(iface: &Interface, mut eth: ethernet::Frame<&mut [u8]>) -> Verdict {
    let Ok(mut ip) = ipv4::Packet::new_checked(eth.payload_mut()) else {
        return Verdict::Drop(DropReason::Malformed);
    };
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    if !iface.owns_v4(dst) {
        return Verdict::Drop(DropReason::NotForUs);
    }
    if ip.protocol() != IPPROTO_ICMP || ip.is_fragment() {
        return Verdict::Drop(DropReason::Unsupported);
    }
    let icmp = ip.payload_mut();
    if icmp.len() < 8 || icmp[0] != ICMP_ECHO_REQUEST || icmp[1] != 0 {
        return Verdict::Drop(DropReason::Unsupported);
    }
    if checksum::checksum(icmp) != 0 {
        return Verdict::Drop(DropReason::Malformed);
    }
    // Type 8 → 0 changes one 16-bit word of the checksummed data.
    let old_check = u16::from_be_bytes([icmp[2], icmp[3]]);
    let new_check = checksum::update16(
        old_check,
        u16::from(ICMP_ECHO_REQUEST) << 8,
        u16::from(ICMP_ECHO_REPLY) << 8,
    );
    icmp[0] = ICMP_ECHO_REPLY;
    icmp[2..4].copy_from_slice(&new_check.to_be_bytes());
    ip.set_src_addr(dst);
    ip.set_dst_addr(src);
    ip.set_ttl(64);
    ip.fill_checksum();
    eth.swap_addrs();
    Verdict::Reply
}
