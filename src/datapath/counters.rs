//! Per-worker counters. The worker owns a plain [`Counters`] (no atomics on
//! the per-packet path) and copies it into its shared slot between bursts,
//! where the management thread reads and aggregates it.

macro_rules! counters {
    ($( $(#[$doc:meta])* $name:ident ),* $(,)?) => {
        /// Plain per-worker counters; every field counts packets unless its
        /// name says otherwise.
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct Counters {
            $( $(#[$doc])* pub $name: u64, )*
        }

        impl Counters {
            /// Counter names, in the order of [`Counters::values`].
            pub const NAMES: &'static [&'static str] = &[$( stringify!($name) ),*];
            /// How many counters there are.
            pub const LEN: usize = Self::NAMES.len();

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
    /// Dropped: malformed or truncated headers.
    drop_malformed,
    /// Dropped: not addressed to us or a VIP.
    drop_not_for_us,
    /// Dropped: a protocol or message type the load balancer does not handle.
    drop_unsupported,
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
}
