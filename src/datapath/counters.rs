//! Per-worker counters. The worker owns a plain [`Counters`] (no atomics on
//! the per-packet path) and copies it into its shared slot between bursts,
//! where the management thread reads and aggregates it.

macro_rules! counters {
    ($( $(#[doc = $doc:literal])* $name:ident ),* $(,)?) => {
        /// Plain per-worker counters; every field counts packets unless its
        /// name says otherwise.
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct Counters {
            $( $(#[doc = $doc])* pub $name: u64, )*
        }

        impl Counters {
            /// Counter names, in the order of [`Counters::values`].
            pub const NAMES: &'static [&'static str] = &[$( stringify!($name) ),*];
            /// How many counters there are.
            pub const LEN: usize = Self::NAMES.len();
            /// Each counter's doc comment, in [`Counters::NAMES`] order (the
            /// help text of the exported metrics; see [`Counters::help`]).
            const DOCS: &'static [&'static str] = &[$( concat!($($doc, "\n",)* "") ),*];

            /// The doc comment of counter `i` as one line of text (empty if
            /// there is no such counter).
            pub fn help(i: usize) -> String {
                let doc = Self::DOCS.get(i).copied().unwrap_or("");
                doc.split_whitespace().collect::<Vec<_>>().join(" ")
            }

            /// All values, in the order of [`Counters::NAMES`].
            pub fn values(&self) -> [u64; Self::LEN] {
                [$( self.$name ),*]
            }

            /// Builds counters back from [`Counters::values`] order.
            pub fn from_values(v: &[u64; Self::LEN]) -> Counters {
                let mut it = v.iter().copied();
                Counters { $( $name: it.next().unwrap_or(0), )* }
            }

            /// Adds another worker's counters to these.
            pub fn add(&mut self, other: &Counters) {
                $( self.$name = self.$name.wrapping_add(other.$name); )*
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
    /// Dropped: malformed or truncated headers.
    drop_malformed,
    /// Dropped: not addressed to us or a VIP.
    drop_not_for_us,
    /// Dropped: a protocol or message type the load balancer does not handle
    /// (e.g. echo to a VIP, ICMP redirects, non-ARP/IP EtherTypes).
    drop_unsupported,
    /// Dropped: to a VIP address, but no VIP for this port and protocol.
    drop_no_vip,
    /// Dropped: the VIP has no active backend.
    drop_no_backend,
    /// Dropped: a fragment that cannot be matched to exactly one VIP.
    drop_fragment,
    /// Dropped: TTL / hop limit of 0 or 1 on a packet to forward.
    drop_ttl,
    /// Dropped: no MAC to send to (backend MAC unknown and no gateway MAC).
    drop_no_next_hop,
    /// Dropped: no headroom in the buffer for the encapsulation headers.
    drop_no_headroom,
    /// Dropped: IP-in-IP without an outer source address of the backend's
    /// family (no `encap.source_v4/v6` and no port address).
    drop_no_encap_source,
    /// Dropped: an ICMP error was due, but the worker had sent its budget
    /// (1000 a second, bursts of 50).
    drop_icmp_limit,
    /// Dropped: too long for IP-in-IP on the out port, with no ICMP error
    /// to send (IPv4 without DF, itself an ICMP error, a source that is not
    /// one host, a later IPv4 fragment), or over 65535 bytes encapsulated.
    drop_too_big,
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
        a.add(&b);
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
    }
}
