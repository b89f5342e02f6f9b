//! A frame's VIP found ahead of its decision, for a burst of a snapshot of
//! many VIPs (see [`Ahead`] and [`super::process`]).

use super::brief::Brief;
use super::flow_table::BucketMemory;
use super::forwarding::{Forwarding, Vip};
use super::traffic::Traffic;

/// A frame's VIP, found ahead of its decision by a burst of a snapshot with
/// many VIPs, whose state would otherwise miss the cache: the index's slot
/// of its address, the VIP, the VIP's traffic counters and, for a frame
/// Maglev will send, the VIP's Maglev slot, a line each, each prefetched a
/// few frames before it is read, as the flow table's bucket is (the last
/// by the burst's decision loop, from the VIP found here, whose line says
/// where its table's entries are). With few VIP addresses (see
/// `VipIndex::many`) all of it stays in the cache, and the burst does none
/// of this.
///
/// A burst keeps them in an array on its stack, a frame's at its index in
/// the chunk, with [`Ahead::NONE`] past the chunk's end, so that a stage
/// reading a few frames ahead needs no test of where the chunk ends.
#[derive(Clone, Copy)]
pub(super) struct Ahead<'f> {
    /// Where the index's lookup of the destination starts.
    home: u32,
    /// Whether the frame will be sent by Maglev: the flow table will not be
    /// asked about it (a SYN, a stateless MPTCP segment, UDP), or its
    /// bucket holds nothing of its scope. Then its Maglev slot is worth
    /// fetching; a flow-table hit's would be a miss for nothing.
    pub by_maglev: bool,
    /// The VIP, or `None`: the decision looks it up (an address of several
    /// VIPs, or of none, or not a VIP lane frame).
    pub vip: Option<&'f Vip>,
}

impl<'f> Ahead<'f> {
    pub const NONE: Ahead<'f> = Ahead {
        home: 0,
        by_maglev: false,
        vip: None,
    };

    /// First step, as the frame is parsed: prefetches the index's slot of
    /// its destination.
    #[inline(always)]
    pub fn start<M: BucketMemory>(&mut self, fwd: &Forwarding, b: &Brief) {
        if b.covered {
            let index = fwd.vip_index();
            self.home = index.home(b.version, b.key.dst16());
            if let Some(s) = index.slot(self.home) {
                M::prefetch_value(s);
            }
        }
    }

    /// Second step, [`super::process::STAGED_KEY_LAG`] frames later, that slot
    /// most likely in the cache: finds the VIP from it and prefetches the
    /// VIP's first line, what the decision reads (see [`Vip`]), and the
    /// VIP's traffic counters, whose id the slot holds.
    #[inline(always)]
    pub fn find<M: BucketMemory>(&mut self, fwd: &'f Forwarding, traffic: &Traffic, b: &Brief) {
        let found = match b.covered {
            true => fwd.vip_index().sole_from(
                self.home,
                b.version,
                b.key.dst16(),
                b.dst_port,
                b.protocol,
            ),
            false => None,
        };
        self.vip = None;
        if let Some(sole) = found {
            self.vip = fwd.vips.get(usize::from(sole.vip));
            if let Some(v) = self.vip {
                M::prefetch_value(&v.id);
            }
            M::prefetch_value(traffic.vip_cell(sole.id));
        }
        self.by_maglev = b.scope.is_none();
    }

    /// Third step, by the burst's decision loop a few decisions ahead: for
    /// a frame Maglev will send, of a VIP found, prefetches the slot of its
    /// Maglev table for the flow of `frame`, its brief (the VIP's line says
    /// where the table's entries are). `frame` is read only then.
    #[inline(always)]
    pub fn prefetch_maglev<M: BucketMemory>(&self, frame: Option<&Brief>) {
        if let (true, Some(v)) = (self.by_maglev, self.vip) {
            if let Some(slot) = frame.and_then(|b| v.maglev.slot(b.hash)) {
                M::prefetch_value(slot);
            }
        }
    }
}
