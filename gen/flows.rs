//! Flow identities: a flow's addresses, ports and keys are derived from its
//! id, and the id is recovered from the headers of a returned frame, so the
//! generator keeps no per-flow table of 5-tuples. The only per-flow memory is
//! [`FlowState`]: two bytes (which backend the flow reached, and for which
//! connection).
//!
//! Layout (documented in gen/README.md):
//! * client address: IPv4 `198.19.H.M`, IPv6 `fd00:19::H:M00`-style — the
//!   flow id's bits 8..24 (`H`, `M`), in the last bytes of the address;
//! * client port: `1024 + (id & 0xff) + 256 × (epoch mod 120)`, bit 15 set for
//!   an MP_JOIN subflow of the connection (an epoch is one connection of the
//!   flow slot; with `--conn-packets` a slot opens a new connection, on a new
//!   port, after that many packets);
//! * spoofed flood sources: `198.18.128.0/17` and `fd00:1a::/64`, random.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicU16, Ordering};

/// Client addresses of generated flows: 198.19.0.0/16.
pub const V4_CLIENT: [u8; 2] = [198, 19];
/// Client addresses of generated IPv6 flows: fd00:19::/96.
pub const V6_CLIENT: [u8; 12] = [0xfd, 0, 0, 0x19, 0, 0, 0, 0, 0, 0, 0, 0];
/// Spoofed flood sources: 198.18.128.0/17 ...
pub const V4_FLOOD: [u8; 2] = [198, 18];
/// ... and fd00:1a::/64.
pub const V6_FLOOD: [u8; 8] = [0xfd, 0, 0, 0x1a, 0, 0, 0, 0];

/// Most flows the id encoding carries (24 bits).
pub const MAX_FLOWS: u32 = 1 << 24;
/// Connections of one flow slot that are told apart (port bits).
pub const EPOCHS: u32 = 120;
/// Lowest client port.
const PORT_BASE: u16 = 1024;
/// Port bit marking an MP_JOIN subflow.
pub const JOIN_BIT: u16 = 0x8000;

/// Who sent a returned frame, from its source address and port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// Flow `id`'s connection `epoch` (mod [`EPOCHS`]); `join`: its MP_JOIN subflow.
    Flow { id: u32, epoch: u8, join: bool },
    /// A spoofed flood source.
    Flood,
}

/// The client IPv4 address of flow `id`.
pub fn client_v4(id: u32) -> Ipv4Addr {
    Ipv4Addr::new(
        V4_CLIENT[0],
        V4_CLIENT[1],
        (id >> 16) as u8,
        (id >> 8) as u8,
    )
}

/// The client IPv6 address of flow `id`.
pub fn client_v6(id: u32) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a[..12].copy_from_slice(&V6_CLIENT);
    a[12..].copy_from_slice(&(id >> 8).to_be_bytes());
    Ipv6Addr::from(a)
}

/// The client port of flow `id`'s connection `epoch` (its join subflow's if `join`).
pub fn client_port(id: u32, epoch: u64, join: bool) -> u16 {
    let e = (epoch % u64::from(EPOCHS)) as u16;
    let port = PORT_BASE + (id & 0xff) as u16 + 256 * e;
    if join { port | JOIN_BIT } else { port }
}

/// Recovers the sender from a returned frame's IPv4 source and port.
pub fn decode_v4(src: [u8; 4], port: u16) -> Option<Source> {
    if src[..2] == V4_CLIENT {
        let high = (u32::from(src[2]) << 16) | (u32::from(src[3]) << 8);
        return decode_port(high, port);
    }
    (src[..2] == V4_FLOOD && src[2] & 0x80 != 0).then_some(Source::Flood)
}

/// Recovers the sender from a returned frame's IPv6 source and port.
pub fn decode_v6(src: [u8; 16], port: u16) -> Option<Source> {
    if src[..12] == V6_CLIENT {
        let high = u32::from_be_bytes([src[12], src[13], src[14], src[15]]);
        if high >= MAX_FLOWS >> 8 {
            return None;
        }
        return decode_port(high << 8, port);
    }
    (src[..8] == V6_FLOOD).then_some(Source::Flood)
}

fn decode_port(high: u32, port: u16) -> Option<Source> {
    let join = port & JOIN_BIT != 0;
    let q = (port & !JOIN_BIT).checked_sub(PORT_BASE)?;
    let epoch = q >> 8;
    if u32::from(epoch) >= EPOCHS {
        return None;
    }
    Some(Source::Flow {
        id: high | u32::from(q & 0xff),
        epoch: epoch as u8,
        join,
    })
}

/// A spoofed IPv4 flood source from 32 random bits.
pub fn flood_v4(r: u64) -> Ipv4Addr {
    Ipv4Addr::new(V4_FLOOD[0], V4_FLOOD[1], 0x80 | (r >> 8) as u8, r as u8)
}

/// A spoofed IPv6 flood source from 64 random bits.
pub fn flood_v6(r: u64) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a[..8].copy_from_slice(&V6_FLOOD);
    a[8..].copy_from_slice(&r.to_be_bytes());
    Ipv6Addr::from(a)
}

/// A 64-bit mix of a flow, its connection and a purpose (splitmix64 finaliser):
/// keys, sequence numbers and nonces, reproducible from the flow id.
pub fn mix(id: u32, epoch: u64, purpose: u64) -> u64 {
    let mut z = (u64::from(id) << 32 ^ epoch.rotate_left(17) ^ purpose.wrapping_mul(0x9e37_79b9))
        .wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// What the checkers learnt about flow slots: per flow, the backend its
/// current connection reached and whether that connection's keys (the third
/// ACK's MP_CAPABLE) came back through the load balancer. Two bytes a flow,
/// shared by the generator's lcores: each lcore sends its own flows, but
/// with RSS on a NIC a frame may come back on another lcore's queue.
pub struct FlowState {
    /// Per flow: low byte 0 = no frame back yet, else 1 + backend index;
    /// high byte the connection's epoch (mod [`EPOCHS`]) | [`LEARNT`].
    slots: Vec<AtomicU16>,
}

/// Tag bit: the connection's keys went through the load balancer.
const LEARNT: u8 = 0x80;

/// What recording a returned frame's backend found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seen {
    /// The connection's first frame back, or the same backend as before.
    Consistent,
    /// The same connection reached another backend before.
    Moved,
    /// A frame of an older connection of the slot, still in flight.
    Stale,
}

fn unpack(v: u16) -> (u8, u8) {
    let [b, t] = v.to_le_bytes();
    (b, t)
}

fn pack(b: u8, t: u8) -> u16 {
    u16::from_le_bytes([b, t])
}

impl FlowState {
    pub fn new(flows: u32) -> FlowState {
        FlowState {
            slots: (0..flows).map(|_| AtomicU16::new(0)).collect(),
        }
    }

    /// Bytes of memory per flow, for the report.
    pub const BYTES_PER_FLOW: usize = 2;

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Records that connection `epoch` of flow `id` reached `backend`. The
    /// common case (the same backend again) only reads; a change is a
    /// compare-and-swap, so two lcores racing on one slot lose nothing.
    pub fn record(&self, id: u32, epoch: u8, backend: u8) -> Seen {
        let Some(slot) = self.slots.get(id as usize) else {
            return Seen::Stale;
        };
        let want = backend.saturating_add(1);
        let mut v = slot.load(Ordering::Relaxed);
        loop {
            let (b, t) = unpack(v);
            let current = t & !LEARNT;
            if b != 0 && !newer(epoch, current) {
                return if epoch != current {
                    Seen::Stale
                } else if b == want {
                    Seen::Consistent
                } else {
                    Seen::Moved
                };
            }
            match slot.compare_exchange_weak(
                v,
                pack(want, epoch),
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Seen::Consistent,
                Err(now) => v = now,
            }
        }
    }

    /// The backend connection `epoch` of flow `id` reached, if known.
    pub fn backend_of(&self, id: u32, epoch: u8) -> Option<u8> {
        let (b, t) = unpack(self.slots.get(id as usize)?.load(Ordering::Relaxed));
        (b != 0 && t & !LEARNT == epoch).then(|| b - 1)
    }

    /// Marks that connection `epoch`'s keys came back (the load balancer has
    /// seen them, so it knows the connection's token).
    pub fn set_learnt(&self, id: u32, epoch: u8) {
        if let Some(slot) = self.slots.get(id as usize) {
            // Only while the slot still holds that connection.
            let _ = slot.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                let (b, t) = unpack(v);
                (b != 0 && t & !LEARNT == epoch).then(|| pack(b, t | LEARNT))
            });
        }
    }

    /// Whether connection `epoch`'s keys came back.
    pub fn learnt(&self, id: u32, epoch: u8) -> bool {
        self.slots
            .get(id as usize)
            .is_some_and(|s| unpack(s.load(Ordering::Relaxed)).1 == epoch | LEARNT)
    }
}

/// Whether epoch `a` is after `b`, modulo [`EPOCHS`] (within half the ring).
fn newer(a: u8, b: u8) -> bool {
    let d = (u32::from(a) + EPOCHS - u32::from(b)) % EPOCHS;
    d != 0 && d < EPOCHS / 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_ids_round_trip_through_addresses_and_ports() {
        for id in [
            0u32,
            1,
            255,
            256,
            65_535,
            1_000_000,
            9_999_999,
            MAX_FLOWS - 1,
        ] {
            for epoch in [0u64, 1, 119, 120, 12_345] {
                for join in [false, true] {
                    let port = client_port(id, epoch, join);
                    let want = Source::Flow {
                        id,
                        epoch: (epoch % 120) as u8,
                        join,
                    };
                    assert_eq!(decode_v4(client_v4(id).octets(), port), Some(want));
                    assert_eq!(decode_v6(client_v6(id).octets(), port), Some(want));
                }
            }
        }
    }

    #[test]
    fn foreign_sources_do_not_decode_as_flows() {
        assert_eq!(decode_v4([198, 18, 0, 10], 2000), None);
        assert_eq!(decode_v4([198, 19, 0, 1], 80), None, "port below the base");
        assert_eq!(
            decode_v4(flood_v4(0x1234).octets(), 80),
            Some(Source::Flood)
        );
        assert_eq!(decode_v4([198, 18, 1, 11], 80), None, "backend range");
        assert_eq!(decode_v6(flood_v6(7).octets(), 1), Some(Source::Flood));
        assert_eq!(
            decode_v6("fd00:18::10".parse::<Ipv6Addr>().unwrap().octets(), 2000),
            None
        );
    }

    #[test]
    fn state_detects_a_moved_connection_and_forgets_old_ones() {
        let s = FlowState::new(4);
        assert_eq!(s.record(1, 0, 3), Seen::Consistent);
        assert_eq!(s.record(1, 0, 3), Seen::Consistent);
        assert_eq!(s.record(1, 0, 2), Seen::Moved);
        assert_eq!(s.backend_of(1, 0), Some(3));
        // The slot's next connection may go elsewhere; late frames of the
        // old one are not held against it.
        assert_eq!(s.record(1, 1, 2), Seen::Consistent);
        assert_eq!(s.record(1, 0, 3), Seen::Stale);
        assert_eq!(s.record(1, 1, 2), Seen::Consistent);
        // Epochs wrap.
        assert_eq!(s.record(2, 119, 0), Seen::Consistent);
        assert_eq!(s.record(2, 0, 1), Seen::Consistent);
        assert_eq!(s.record(2, 119, 0), Seen::Stale);
        assert_eq!(
            s.record(9, 0, 0),
            Seen::Stale,
            "out of range is not a panic"
        );
    }

    #[test]
    fn learnt_is_per_connection() {
        let s = FlowState::new(2);
        s.set_learnt(0, 0);
        assert!(!s.learnt(0, 0), "nothing recorded yet");
        s.record(0, 0, 1);
        s.set_learnt(0, 0);
        assert!(s.learnt(0, 0));
        assert!(!s.learnt(0, 1));
        s.record(0, 1, 1);
        assert!(!s.learnt(0, 1), "a new connection starts unlearnt");
    }
}
