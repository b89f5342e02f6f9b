//! Per-worker counters. The worker owns a plain [`Counters`] (no atomics on
//! the per-packet path) and copies it into its shared slot between bursts,
//! where the management thread reads and aggregates it.

use std::ops::{Index, IndexMut};

use super::verdict::DropReason;

/// Drops by reason: one counter per [`DropReason`] (named
/// [`DropReason::COUNTER_NAMES`], documented by the reason itself).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Drops([u64; DropReason::COUNT]);

impl Drops {
    /// Every reason's count, in [`DropReason::ALL`] order.
    pub fn values(&self) -> &[u64; DropReason::COUNT] {
        &self.0
    }

    /// All drops, whatever the reason.
    pub fn total(&self) -> u64 {
        self.0.iter().fold(0, |a, v| a.wrapping_add(*v))
    }
}

impl Index<DropReason> for Drops {
    type Output = u64;
    #[inline]
    fn index(&self, r: DropReason) -> &u64 {
        &self.0[r.index()]
    }
}

impl IndexMut<DropReason> for Drops {
    #[inline]
    fn index_mut(&mut self, r: DropReason) -> &mut u64 {
        &mut self.0[r.index()]
    }
}

/// `a` then `b`, as one array of `N = a.len() + b.len()` names (in a const).
const fn joined<const N: usize>(a: &[&'static str], b: &[&'static str]) -> [&'static str; N] {
    let mut out = [""; N];
    let mut i = 0;
    while i < a.len() {
        out[i] = a[i];
        i += 1;
    }
    let mut j = 0;
    while j < b.len() {
        out[a.len() + j] = b[j];
        j += 1;
    }
    out
}

macro_rules! counters {
    ($( $(#[doc = $doc:literal])* $name:ident ),* $(,)?) => {
        /// Plain per-worker counters; every field counts packets unless its
        /// name says otherwise. The drop counters, one per [`DropReason`],
        /// are in [`Counters::drops`].
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct Counters {
            $( $(#[doc = $doc])* pub $name: u64, )*
            /// Frames dropped, by reason.
            pub drops: Drops,
        }

        impl Counters {
            const EVENT_NAMES: &'static [&'static str] = &[$( stringify!($name) ),*];
            const EVENTS: usize = Self::EVENT_NAMES.len();
            /// How many counters there are (drops included).
            pub const LEN: usize = Self::EVENTS + DropReason::COUNT;
            const ALL_NAMES: [&'static str; Self::LEN] =
                joined(Self::EVENT_NAMES, &DropReason::COUNTER_NAMES);
            /// Counter names, in the order of [`Counters::values`]: the events
            /// above, then `drop_<reason>` for every [`DropReason`].
            pub const NAMES: &'static [&'static str] = &Self::ALL_NAMES;
            /// Each event counter's doc comment (the drops' help comes from
            /// [`DropReason::help`]); see [`Counters::help`].
            const DOCS: &'static [&'static str] = &[$( concat!($($doc, "\n",)* "") ),*];

            /// The doc comment of counter `i` as one line of text (empty if
            /// there is no such counter): the exported metric's help.
            pub fn help(i: usize) -> String {
                if let Some(r) = i.checked_sub(Self::EVENTS).and_then(|d| DropReason::ALL.get(d)) {
                    return r.help();
                }
                let doc = Self::DOCS.get(i).copied().unwrap_or("");
                doc.split_whitespace().collect::<Vec<_>>().join(" ")
            }

            /// All values, in the order of [`Counters::NAMES`].
            pub fn values(&self) -> [u64; Self::LEN] {
                let mut out = [0u64; Self::LEN];
                let events = [$( self.$name ),*];
                let (head, tail) = out.split_at_mut(Self::EVENTS);
                head.copy_from_slice(&events);
                tail.copy_from_slice(self.drops.values());
                out
            }

            /// Builds counters back from [`Counters::values`] order.
            pub fn from_values(v: &[u64; Self::LEN]) -> Counters {
                let mut it = v.iter().copied();
                let mut c = Counters { $( $name: it.next().unwrap_or(0), )* drops: Drops::default() };
                for (d, v) in c.drops.0.iter_mut().zip(it) {
                    *d = v;
                }
                c
            }

            /// Adds another worker's counters to these.
            pub fn add(&mut self, other: &Counters) {
                $( self.$name = self.$name.wrapping_add(other.$name); )*
                for (d, o) in self.drops.0.iter_mut().zip(other.drops.0.iter()) {
                    *d = d.wrapping_add(*o);
                }
            }
        }
    };
}

counters! {
    /// Frames received.
    rx_packets,
    /// Bytes received.
    rx_bytes,
    /// Frames handed to a tx queue and accepted by it.
    tx_packets,
    /// Frames the tx queue did not accept (ring full); freed.
    tx_dropped,
    /// ARP requests for our addresses or VIPs answered.
    arp_replies,
    /// IPv6 neighbour solicitations answered.
    nd_replies,
    /// ARP requests and IPv6 neighbour solicitations sent to resolve
    /// backends configured without `mac`.
    neighbour_solicits_sent,
    /// ARP packets and neighbour advertisements from a backend being
    /// resolved whose MAC was recorded.
    neighbour_learnt,
    /// ICMP/ICMPv6 echo requests to our addresses answered.
    icmp_echo_replies,
    /// Packets to an IP-in-IP VIP too long for the out port's MTU once
    /// encapsulated, answered with ICMP "fragmentation needed" / ICMPv6
    /// "packet too big".
    icmp_too_big_sent,
    /// Frames rewritten and handed out for a backend (all modes).
    forwarded,
    /// ... of which by layer-2 DSR (MAC rewrite).
    forwarded_l2,
    /// ... of which IP-in-IP encapsulated.
    forwarded_ipip,
    /// TCP SYNs to a VIP carrying MP_CAPABLE (routed by Maglev, no state).
    mptcp_syn,
    /// TCP SYNs to a VIP without any MPTCP option (Maglev, no state).
    plain_syn,
    /// MP_JOIN SYNs whose token named a usable backend of the VIP.
    join_token_hit,
    /// MP_JOIN SYNs routed by Maglev: unknown token, unusable backend, or
    /// token routing off for the VIP.
    join_token_miss,
    /// Server tokens learnt (or refreshed) from an MP_CAPABLE with both keys.
    tokens_learnt,
    /// Flow-table lookups that found a usable backend.
    flow_hit,
    /// Flow-table lookups that found nothing usable.
    flow_miss,
    /// Flow-table hits whose backend is down or no longer configured: the
    /// entry was removed and the packet re-hashed (counted in `flow_miss` too).
    flow_backend_gone,
    /// New flow-table entries.
    flow_inserted,
    /// New entries stored in place of an untrusted entry that never saw a
    /// second packet (the first victims: likely spoofed flows).
    flow_evicted_untrusted,
    /// New entries stored in place of a flow closed by RST.
    flow_evicted_reset,
    /// New entries stored in place of a tracked initial MPTCP subflow (the
    /// last victims, only in a table full of trusted entries: that
    /// connection moves if its backend set then changes).
    flow_evicted_tracked,
    /// Flow-table inserts refused (untrusted quota or bucket full of
    /// protected entries); the packet still goes out by Maglev.
    flow_insert_rejected,
    /// Packets whose backend was chosen by a Maglev lookup.
    maglev_forwarded,
    /// ICMP/ICMPv6 errors about a VIP flow, sent to that flow's backend.
    icmp_errors_forwarded,
    /// IP fragments to a VIP forwarded (3-tuple hash; first and later ones).
    fragments_forwarded,
    /// UDP datagrams to a VIP forwarded.
    udp_forwarded,
    /// ADD_ADDRs built on a backend's behalf (VIPs with
    /// `announce_backend_address`) and handed to the worker to send.
    add_addr_sent,
    /// ... not sent: a later segment with both keys (a retransmitted third
    /// ACK, or the first data's MP_CAPABLE) of a subflow already pinned —
    /// its announcement went out with the segment that pinned it.
    add_addr_skipped_duplicate,
    /// ... not sent: the subflow could not be pinned (flow table full or
    /// untrusted quota), so a retransmission could not be told apart.
    add_addr_skipped_unpinned,
    /// ... not sent: over the worker's announcement rate limit.
    add_addr_skipped_rate_limit,
    /// ... not sent: no buffer for it (the burst's list or the mempool).
    add_addr_skipped_no_buffer,
    /// Frames handed to a port's kernel interface (the exception path) and
    /// accepted by its queue.
    to_kernel,
    /// Frames for a kernel interface its queue did not accept (full); freed.
    to_kernel_dropped,
    /// Frames the kernel sent through its interface, received by the
    /// worker to send out the data port.
    from_kernel,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_add() {
        let mut a = Counters {
            rx_packets: 3,
            tx_dropped: 2,
            ..Counters::default()
        };
        let b = Counters::from_values(&a.values());
        assert_eq!(a, b);
        a.drops[DropReason::Ttl] = 5;
        let b = Counters::from_values(&a.values());
        assert_eq!(a, b);
        a.add(&b);
        assert_eq!(a.drops[DropReason::Ttl], 10);
        assert_eq!(a.rx_packets, 6);
        assert_eq!(a.tx_dropped, 4);
        assert_eq!(Counters::NAMES[0], "rx_packets");
        assert_eq!(Counters::LEN, a.values().len());
    }

    #[test]
    fn every_counter_has_its_doc_as_help() {
        assert_eq!(Counters::help(0), "Frames received.");
        let flow_insert_rejected = Counters::NAMES
            .iter()
            .position(|n| *n == "flow_insert_rejected")
            .expect("counter exists");
        assert_eq!(
            Counters::help(flow_insert_rejected),
            "Flow-table inserts refused (untrusted quota or bucket full of protected \
             entries); the packet still goes out by Maglev."
        );
        for i in 0..Counters::LEN {
            assert!(
                !Counters::help(i).is_empty(),
                "{} has no doc",
                Counters::NAMES[i]
            );
        }
        assert_eq!(Counters::help(Counters::LEN), "");
        assert_eq!(Counters::NAMES[Counters::LEN - 1], "drop_kernel_limit");
        assert_eq!(
            Counters::help(Counters::LEN - 1),
            DropReason::KernelLimit.help()
        );
    }
}
