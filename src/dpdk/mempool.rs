use std::ffi::CString;
use std::ptr::NonNull;

use super::{Batch, DpdkError};

/// A pool of packet buffers (`rte_pktmbuf_pool_create`). Workers receive into
/// it through the NIC; every [`super::Mbuf`] returns to it when dropped.
pub struct Mempool {
    raw: NonNull<dpdk_sys::rte_mempool>,
    capacity: u32,
}

// SAFETY: a DPDK mempool is designed for concurrent use from many lcores (its
// per-lcore caches are indexed by the calling lcore); the handle is a pointer.
unsafe impl Send for Mempool {}
// SAFETY: as above; the methods here only read counters or are thread-safe.
unsafe impl Sync for Mempool {}

impl Mempool {
    /// Creates a pool of `capacity` mbufs of the default data room (2 KiB plus
    /// headroom) with a per-lcore cache of `cache` buffers, on NUMA `socket`
    /// (`-1` for any).
    pub fn new(name: &str, capacity: u32, cache: u32, socket: i32) -> Result<Mempool, DpdkError> {
        let cname = CString::new(name)
            .map_err(|_| DpdkError::other("rte_pktmbuf_pool_create", "name contains NUL"))?;
        let data_room = u16::try_from(dpdk_sys::RTE_MBUF_DEFAULT_BUF_SIZE)
            .map_err(|_| DpdkError::other("rte_pktmbuf_pool_create", "data room size"))?;
        // SAFETY: cname is a valid C string for the duration of the call; the
        // other arguments are plain integers; DPDK validates them.
        let raw = unsafe {
            dpdk_sys::rte_pktmbuf_pool_create(cname.as_ptr(), capacity, cache, 0, data_room, socket)
        };
        let raw = NonNull::new(raw)
            .ok_or_else(|| DpdkError::from_code(format!("rte_pktmbuf_pool_create({name})"), 0))?;
        Ok(Mempool { raw, capacity })
    }

    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// Buffers currently taken out of the pool (by NIC rings, workers, caches
    /// are counted as available). Used to prove that nothing leaks.
    pub fn in_use(&self) -> u32 {
        // SAFETY: raw is a live mempool owned by self; the call only reads.
        unsafe { dpdk_sys::rte_mempool_in_use_count(self.raw.as_ptr()) }
    }

    /// Takes `n` empty mbufs (length 0, default headroom) from the pool into
    /// `batch`, all or none: false, and nothing taken, if the pool cannot
    /// supply them or the batch has no room for `n` more. Set each frame's
    /// length with [`super::Mbuf::set_len`] and fill its bytes before sending.
    pub fn alloc_into(&self, batch: &mut Batch, n: usize) -> bool {
        let (spare, room) = batch.spare();
        let Ok(n16) = u16::try_from(n) else {
            return false;
        };
        if n16 == 0 || n16 > room {
            return n16 == 0;
        }
        // SAFETY: spare points to `room` ≥ n writable pointer slots of the
        // batch (borrowed mutably); rte_pktmbuf_alloc_bulk writes n valid,
        // reset mbufs there on success (return 0) and nothing on failure.
        // The pool is alive for the call; `filled` then hands ownership of
        // exactly those n mbufs to the batch.
        let rc =
            unsafe { dpdk_sys::rte_pktmbuf_alloc_bulk(self.raw.as_ptr(), spare, u32::from(n16)) };
        if rc != 0 {
            return false;
        }
        batch.filled(n16);
        true
    }

    pub(super) fn as_ptr(&self) -> *mut dpdk_sys::rte_mempool {
        self.raw.as_ptr()
    }
}

impl Drop for Mempool {
    fn drop(&mut self) {
        // SAFETY: ports using this pool are stopped and closed before the pool
        // is dropped (Port borrows nothing, so the caller orders drops: see
        // `dpdk::worker::Engine`), and no Mbuf outlives the workers.
        unsafe { dpdk_sys::rte_mempool_free(self.raw.as_ptr()) }
    }
}
