//! What the datapath decides for a frame: [`Verdict`], and for a drop its
//! [`DropReason`]. One declaration below produces the reasons, the names of
//! their counters (`drop_<reason>`, see [`super::counters::Counters`]) and the
//! help text of those counters' metric (the doc comment of each reason).

/// What the worker does with a frame after
/// [`Datapath::process`](super::process::Datapath::process).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Rewritten for a backend: send out the backend-facing port.
    Forward,
    /// Rewritten as an answer (ARP, ND, ICMP echo): send out the port it came
    /// in on.
    Reply,
    /// Taken in by the load balancer (a neighbour's ARP or neighbour
    /// advertisement whose MAC was recorded, see [`super::neighbours`]):
    /// free it, nothing is wrong with it.
    Absorbed,
    /// The host's own traffic on a port with an exception path (see
    /// [`super::forwarding::Interface::kernel`]): hand it, unchanged, to the
    /// port's kernel interface.
    Kernel,
    /// Free it; the reason's counter was incremented.
    Drop(DropReason),
}

macro_rules! drop_reasons {
    ($( $(#[doc = $doc:literal])* $reason:ident = $name:literal, )*) => {
        /// Why a frame was dropped. Each reason has its counter,
        /// `drop_<name>`, whose help text is the reason's doc comment.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum DropReason {
            $( $(#[doc = $doc])* $reason, )*
        }

        impl DropReason {
            /// Every reason, in the order of their counters.
            pub const ALL: [DropReason; Self::COUNT] = [$( DropReason::$reason ),*];
            /// How many reasons there are.
            pub const COUNT: usize = [$( $name ),*].len();
            /// Each reason's counter name, in [`DropReason::ALL`] order.
            pub const COUNTER_NAMES: [&'static str; Self::COUNT] =
                [$( concat!("drop_", $name) ),*];
            const DOCS: [&'static str; Self::COUNT] = [$( concat!($($doc, "\n",)* "") ),*];

            /// The reason's short name (`no_backend`): the metrics' `reason` label.
            pub const fn name(self) -> &'static str {
                match self {
                    $( DropReason::$reason => $name, )*
                }
            }

            /// The reason's position in [`DropReason::ALL`].
            #[inline]
            pub const fn index(self) -> usize {
                self as usize
            }

            /// The reason's doc comment as one line: its counter's help text.
            pub fn help(self) -> String {
                Self::DOCS[self.index()].split_whitespace().collect::<Vec<_>>().join(" ")
            }
        }
    };
}

drop_reasons! {
    /// Dropped: malformed or truncated headers (or a bad ICMP checksum on a
    /// message the load balancer would answer).
    Malformed = "malformed",
    /// Dropped: not addressed to us or a VIP.
    NotForUs = "not_for_us",
    /// Dropped: a protocol or message type the load balancer does not handle
    /// (e.g. echo to a VIP, ICMP redirects, non-ARP/IP EtherTypes).
    Unsupported = "unsupported",
    /// Dropped: to a VIP address, but no VIP for this port and protocol.
    NoVip = "no_vip",
    /// Dropped: the VIP has no active backend.
    NoBackend = "no_backend",
    /// Dropped: a fragment that cannot be matched to exactly one VIP.
    Fragment = "fragment",
    /// Dropped: TTL / hop limit of 0 or 1 on a packet to forward.
    Ttl = "ttl",
    /// Dropped: no MAC to send to (backend MAC unknown and no gateway MAC).
    NoNextHop = "no_next_hop",
    /// Dropped: no headroom in the buffer for the encapsulation headers (or
    /// for growing a reply).
    NoHeadroom = "no_headroom",
    /// Dropped: IP-in-IP without an outer source address of the backend's
    /// family (no `encap.source_v4/v6` and no port address).
    NoEncapSource = "no_encap_source",
    /// Dropped: an ICMP error was due, but the worker had sent its budget
    /// (1000 a second, bursts of 50).
    IcmpLimit = "icmp_limit",
    /// Dropped: too long for IP-in-IP on the out port, with no ICMP error to
    /// send (IPv4 without DF, itself an ICMP error, a source that is not one
    /// host, a later IPv4 fragment), or over 65535 bytes encapsulated.
    TooBig = "too_big",
    /// Dropped: for the kernel interface, but the worker had handed it its
    /// budget (`[datapath] kernel_rate_pps`).
    KernelLimit = "kernel_limit",
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_name_their_counters_in_order() {
        assert_eq!(DropReason::COUNT, DropReason::ALL.len());
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
            assert_eq!(DropReason::COUNTER_NAMES[i], format!("drop_{}", r.name()));
            assert!(r.help().starts_with("Dropped: "), "{r:?} has no help");
        }
        assert_eq!(DropReason::NoBackend.name(), "no_backend");
        assert_eq!(
            DropReason::NoBackend.help(),
            "Dropped: the VIP has no active backend."
        );
    }
}
