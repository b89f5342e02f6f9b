//! Announcing a backend's own address to an MPTCP client on the backend's
//! behalf (VIPs with `announce_backend_address`), so that stock backends —
//! no `signal` endpoint, default limits — still get joined directly and the
//! rest of the connection bypasses mplb.
//!
//! The client's third ACK (or first data, MP_CAPABLE of length 22/24) carries
//! both keys; with them mplb writes what the backend would have sent: one
//! TCP segment from VIP:port to the client, ACK only, no data, a single
//! option — ADD_ADDR with the backend's address (v1: truncated HMAC keyed
//! server key ‖ client key; v0: no HMAC, see [`crate::wire::add_addr`]).
//! Its sequence number is the client segment's acknowledgement number (the
//! server's next byte), its acknowledgement number the client segment's
//! sequence number plus its payload: exactly what the client expects from
//! the server at that moment, so its TCP takes the segment in. No timestamp
//! option (a copied one is stale: PAWS drops it); the window field is the
//! client's own, a stand-in for the server's that a stock server's next
//! segment replaces. It leaves by the port the client's segment came in on,
//! to that segment's source MAC (the client or its router), from the port's
//! MAC, VLAN tag kept.
//!
//! Once per connection: the decision (`decide`, rule 4) asks for it only on
//! the segment that pins the initial subflow in the flow table; a
//! retransmitted third ACK then hits the entry and is counted
//! `add_addr_skipped_duplicate`. A connection that fell back to TCP never
//! gets one: its third ACK carries no MP_CAPABLE, so rule 4 never sees it.
//! A per-worker token bucket bounds what spoofed third ACKs can make mplb
//! send ([`AnnounceBudget`]).
//!
//! Address ID [`ADDRESS_ID`]: a Linux backend that announces itself as
//! well numbers its `signal` endpoints from 1 up, so a high fixed ID does
//! not name a different address of the same backend in the client's view
//! (a REMOVE_ADDR of one of the backend's own IDs cannot remove ours). If
//! both announce the same address, the client opens one subflow only (Linux
//! does not join an address it already has a subflow to) and echoes both.
//!
//! The datapath only records announcements ([`Pending`], fixed capacity, no
//! allocation); the worker copies them into fresh buffers after the burst
//! and sends them with the burst's other frames.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::budget::TokenBucket;
use super::forwarding::Interface;
use crate::wire::parse::{IpInfo, L4};
use crate::wire::tcp::{self, Flags};
use crate::wire::{add_addr, checksum, ip_proto, ipv4, ipv6};

/// The address ID of every announcement (see the module docs).
pub const ADDRESS_ID: u8 = 200;
/// Longest announcement frame: VLAN-tagged Ethernet, IPv6, TCP with a v1
/// IPv6 ADD_ADDR (18 + 40 + 20 + 28 = 106).
pub const FRAME_MAX: usize = 112;
/// Announcements one burst can hold (a burst of third ACKs at most).
pub const PENDING_MAX: usize = 64;
/// TTL / hop limit of the segment (Linux's default).
const TTL: u8 = 64;

/// One frame to send: built by the datapath, sent by the worker.
#[derive(Clone, Copy, Debug)]
pub struct Announcement {
    /// The port the client's segment came in on, and this frame leaves by.
    pub port: usize,
    len: usize,
    bytes: [u8; FRAME_MAX],
}

impl Announcement {
    /// The whole Ethernet frame.
    pub fn frame(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// The announcements recorded since the worker last took them; never grows
/// past [`PENDING_MAX`] (allocated once).
#[derive(Debug)]
pub struct Pending(Vec<Announcement>);

impl Default for Pending {
    fn default() -> Pending {
        Pending(Vec::with_capacity(PENDING_MAX))
    }
}

impl Pending {
    /// False (nothing recorded) when full.
    pub(super) fn push(&mut self, a: Announcement) -> bool {
        let room = self.0.len() < PENDING_MAX;
        if room {
            self.0.push(a);
        }
        room
    }

    /// Hands each recorded announcement to `send`, oldest first, and
    /// forgets them.
    pub fn drain(&mut self, send: impl FnMut(&Announcement)) {
        self.0.iter().for_each(send);
        self.0.clear();
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Rate limit of one worker's announcements: 10 000 a second, bursts of
/// 1 000 — far above what one worker sees of real new MPTCP connections
/// per millisecond, low enough that a flood of spoofed third ACKs cannot
/// turn mplb into a large source of segments to spoofed addresses.
pub(super) type AnnounceBudget = TokenBucket<10_000, 1_000>;

/// Builds the announcement of `backend` answering the client segment
/// `frame` (not yet rewritten; `l3_offset`, `ip` its parse), a TCP segment
/// whose MP_CAPABLE carries both keys, received on port `port`
/// (`iface`). `None` if it is not such a segment or the frame is not what
/// its parse says.
pub(super) fn build(
    frame: &[u8],
    l3_offset: usize,
    ip: &IpInfo,
    (iface, port): (&Interface, usize),
    backend: IpAddr,
) -> Option<Announcement> {
    let L4::Tcp(t) = &ip.l4 else {
        return None;
    };
    let capable = t.mptcp.capable.as_ref()?;
    let client_key = capable.sender_key()?;
    let server_key = capable.receiver_key()?;
    let mut opt = [0u8; add_addr::MAX_LEN];
    let opt_len = if capable.version == 0 {
        add_addr::emit_v0(&mut opt, ADDRESS_ID, backend).ok()?
    } else {
        let hmac = add_addr::hmac_v1(server_key, client_key, ADDRESS_ID, backend, 0);
        add_addr::emit_v1(&mut opt, ADDRESS_ID, backend, hmac).ok()?
    };
    let payload = ip
        .l3_end
        .checked_sub(ip.l4_offset)?
        .checked_sub(usize::from(t.header_len))?;
    let seg = tcp::Repr {
        src_port: t.dst_port,
        dst_port: t.src_port,
        seq_number: t.ack,
        ack_number: t.seq.wrapping_add(payload as u32),
        flags: Flags(Flags::ACK),
        window: t.window,
        options: opt.get(..opt_len)?,
    };
    let mut a = Announcement {
        port,
        len: 0,
        bytes: [0; FRAME_MAX],
    };
    let b = &mut a.bytes;
    // Ethernet (and VLAN tag) as received, addresses turned around.
    let l2 = frame.get(..l3_offset)?;
    b.get_mut(..l3_offset)?.copy_from_slice(l2);
    b.copy_within(6..12, 0);
    b[6..12].copy_from_slice(&iface.mac);
    let seg_len = seg.header_len();
    let l4 = match ip.version {
        4 => {
            let (vip, client) = (v4(&ip.dst), v4(&ip.src));
            let l4 = l3_offset + ipv4::MIN_HEADER_LEN;
            ipv4::emit_header(
                b.get_mut(l3_offset..)?,
                vip,
                client,
                ip_proto::TCP,
                seg_len as u16,
                TTL,
                0,
            )
            .ok()?;
            let s = b.get_mut(l4..l4 + seg_len)?;
            seg.emit(s).ok()?;
            checksum::fill(s, 16..18, |m| {
                checksum::upper_layer_v4(vip, client, ip_proto::TCP, m)
            })
            .ok()?;
            l4
        }
        _ => {
            let (vip, client) = (Ipv6Addr::from(ip.dst), Ipv6Addr::from(ip.src));
            let l4 = l3_offset + ipv6::HEADER_LEN;
            ipv6::emit_header(
                b.get_mut(l3_offset..)?,
                &vip,
                &client,
                ip_proto::TCP,
                seg_len as u16,
                TTL,
            )
            .ok()?;
            let s = b.get_mut(l4..l4 + seg_len)?;
            seg.emit(s).ok()?;
            checksum::fill(s, 16..18, |m| {
                checksum::upper_layer_v6(&vip, &client, ip_proto::TCP, m)
            })
            .ok()?;
            l4
        }
    };
    a.len = l4 + seg_len;
    Some(a)
}

fn v4(a: &[u8; 16]) -> Ipv4Addr {
    Ipv4Addr::new(a[12], a[13], a[14], a[15])
}

#[cfg(test)]
#[path = "announce_tests.rs"]
mod tests;
