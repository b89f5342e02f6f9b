//! Rewrites a frame for its backend.
//!
//! # Layer-2 DSR
//!
//! Destination MAC = the backend's, source MAC = the MAC of the port the
//! frame leaves by (the backend port of a two-armed setup, see
//! [`super::process::Datapath::set_backend_port`], else the rx port). The IP
//! packet is untouched: no TTL change (this is L2 forwarding), an 802.1Q tag
//! stays as it came (backends on the same VLAN), Ethernet padding stays.
//!
//! # IP-in-IP
//!
//! The outer header's family is the backend address's: IPv4 (protocol 4 for
//! an IPv4 inner packet, 41 for IPv6) or IPv6 (next header 4 or 41). So an
//! IPv4 VIP with IPv4 backends gets IPv4-in-IPv4 and an IPv6 VIP with IPv6
//! backends IPv6-in-IPv6, and mixed families still work (4in6 / 6in4).
//! What is fixed per backend and port is built with the snapshot
//! ([`super::tunnel`]); a packet copies it and fills in its own fields.
//! * Outer source: `encap.source_v4/v6`, else the out port's first address
//!   of that family; none → drop (`drop_no_encap_source`).
//! * Outer TTL / hop limit: `encap.ttl`; outer IPv4 has DF set and a correct
//!   header checksum. The inner packet is unchanged (its TTL too).
//! * Ethernet: destination = the backend's MAC if known, else the out port's
//!   `gateway_mac`, else drop (`drop_no_next_hop`); source = the out port's
//!   MAC; always untagged — an inbound VLAN tag is removed, since the tunnel
//!   is routed and the inbound VLAN says nothing about the backend's.
//! * Inbound Ethernet padding is removed before encapsulating (the inner
//!   packet ends at its IP length).
//! * RSS entropy: the outer addresses are fixed per backend, so the flow's
//!   hash goes into the outer IPv6 flow label (20 bits; many NICs and the
//!   Linux stack hash on it, as do ECMP routers) and into the outer IPv4
//!   identification (harmless with DF set, RFC 6864; NIC RSS does not use it,
//!   so IPv4 backends should spread by the inner header, e.g. with RPS after
//!   decapsulation). All packets of a flow carry the same value, and ICMP
//!   errors carry their flow's value.
//! * No headroom for the new headers → drop (`drop_no_headroom`); an outer
//!   packet over 65535 bytes → drop (`drop_too_big`). An outer packet over
//!   the out port's MTU is never built: the client is sent ICMP
//!   "fragmentation needed" / "packet too big" instead (see
//!   [`super::local::too_big`]). Nothing here fragments; the MTU towards
//!   the backends should exceed the clients' by the 20/40 bytes.

use super::forwarding::{Backend, Interface};
use super::frame::Frame;
use super::tunnel::Outer;
use super::verdict::DropReason;
use crate::wire::ethernet;

/// Layer-2 DSR: new MACs, nothing else.
pub(super) fn l2_dsr<F: Frame>(
    frame: &mut F,
    out: &Interface,
    backend: &Backend,
) -> Result<(), DropReason> {
    // By reference: copied straight from the backend into the frame.
    let mac = backend.mac.as_ref().ok_or(DropReason::NoNextHop)?;
    let h = frame.get_mut(..12).ok_or(DropReason::Malformed)?;
    h[..6].copy_from_slice(mac);
    h[6..12].copy_from_slice(&out.mac);
    Ok(())
}

/// Where the inner IP packet is in the frame.
#[derive(Clone, Copy, Debug)]
pub(super) struct Inner {
    /// Offset of the IP header.
    pub l3_offset: usize,
    /// Offset just past the IP packet.
    pub l3_end: usize,
    /// 4 or 6.
    pub version: u8,
}

/// IP-in-IP to the backend's own address (see the module doc) with the
/// outer headers `outer` (built with the snapshot, see [`super::tunnel`]).
#[inline(always)]
pub(super) fn ipip<F: Frame>(
    frame: &mut F,
    inner: Inner,
    outer: &Outer,
    entropy: u64,
) -> Result<(), DropReason> {
    if inner.l3_end > frame.len() || inner.l3_offset > inner.l3_end {
        return Err(DropReason::Malformed);
    }
    // Over 65535 bytes in all: the IPv6 payload length fails here, the
    // IPv4 total length in `Outer::write`. (The caller's MTU check, see
    // `super::local::too_big`, already keeps such packets away.)
    let inner_len =
        u16::try_from(inner.l3_end - inner.l3_offset).map_err(|_| DropReason::TooBig)?;
    // The frame ends with the inner packet (no Ethernet padding) and grows
    // or shrinks at the front to the outer headers' length.
    let front = ethernet::HEADER_LEN + outer.ip_len();
    frame.truncate(inner.l3_end);
    if front >= inner.l3_offset {
        if !frame.prepend(front - inner.l3_offset) {
            return Err(DropReason::NoHeadroom);
        }
    } else if !frame.trim_front(inner.l3_offset - front) {
        return Err(DropReason::Malformed);
    }
    // Entropy bits independent of the flow table's (low) and Maglev's (high).
    let mix = (entropy >> 24) as u32;
    outer.write(&mut frame[..], inner_len, inner.version, mix)
}
