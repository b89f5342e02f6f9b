//! The datapath's two seams, filled with DPDK parts: a frame is an [`Mbuf`],
//! flow-table buckets live in [`TableMemory`] (hugepages) and are prefetched
//! with a real prefetch instruction. Kept here, not in `dpdk`, so that the
//! DPDK layer knows nothing of the datapath.

use crate::datapath::flow_table::{Bucket, BucketMemory};
use crate::datapath::frame::Frame;
use crate::dpdk::{Mbuf, TableMemory, prefetch, prefetch_value};

impl Frame for Mbuf {
    #[inline]
    fn prepend(&mut self, n: usize) -> bool {
        Mbuf::prepend(self, n)
    }
    #[inline]
    fn trim_front(&mut self, n: usize) -> bool {
        self.adj(n)
    }
    #[inline]
    fn truncate(&mut self, len: usize) {
        Mbuf::truncate(self, len)
    }
}

/// The engine's flow-table memory, with a real prefetch instruction.
impl BucketMemory for TableMemory<Bucket> {
    #[inline(always)]
    fn prefetch(bytes: &[u8]) {
        prefetch(bytes);
    }
    #[inline(always)]
    fn prefetch_value<T>(value: &T) {
        prefetch_value(value);
    }
}
