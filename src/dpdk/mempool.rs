use std::ffi::CString;
use std::ptr::NonNull;
use std::sync::Arc;

use super::{Batch, DpdkError, Eal};

/// A handle to a pool of packet buffers (`rte_pktmbuf_pool_create`). Workers
/// receive into it through the NIC; every [`super::Mbuf`] returns to it when
/// dropped. Cheap to clone: each port set up from the pool holds a handle,
/// and the pool is freed when the last one goes (and only if no mbuf is still
/// out, see the `Drop` of its inner state).
#[derive(Clone)]
pub struct Mempool {
    /// The pool itself, copied out of `inner` so that allocating costs no
    /// extra indirection.
    raw: NonNull<dpdk_sys::rte_mempool>,
    inner: Arc<PoolInner>,
}

struct PoolInner {
    raw: NonNull<dpdk_sys::rte_mempool>,
    capacity: u32,
    /// Keeps the EAL (whose memory holds the pool) alive while the pool is.
    eal: Eal,
}

// SAFETY: a DPDK mempool is designed for concurrent use from many lcores (its
// per-lcore caches are indexed by the calling lcore); the handle is a pointer
// and an Arc over the same.
unsafe impl Send for Mempool {}
// SAFETY: as above; the methods here only read counters or are thread-safe.
unsafe impl Sync for Mempool {}
// SAFETY: the inner state is the pool pointer, plain integers and an Eal
// handle; see Mempool's Send.
unsafe impl Send for PoolInner {}
// SAFETY: as above; shared access only reads it.
unsafe impl Sync for PoolInner {}

impl Mempool {
    /// Creates a pool of `capacity` mbufs of the default data room (2 KiB plus
    /// headroom) with a per-lcore cache of `cache` buffers, on NUMA `socket`
    /// (`-1` for any).
    pub fn new(
        eal: &Eal,
        name: &str,
        capacity: u32,
        cache: u32,
        socket: i32,
    ) -> Result<Mempool, DpdkError> {
        let cname = CString::new(name)
            .map_err(|_| DpdkError::other("rte_pktmbuf_pool_create", "name contains NUL"))?;
        let data_room = u16::try_from(dpdk_sys::RTE_MBUF_DEFAULT_BUF_SIZE)
            .map_err(|_| DpdkError::other("rte_pktmbuf_pool_create", "data room size"))?;
        // SAFETY: cname is a valid C string for the duration of the call; the
        // other arguments are plain integers; DPDK validates them. The EAL is
        // initialised (the Eal handle proves it).
        let raw = unsafe {
            dpdk_sys::rte_pktmbuf_pool_create(cname.as_ptr(), capacity, cache, 0, data_room, socket)
        };
        let raw = NonNull::new(raw)
            .ok_or_else(|| DpdkError::from_code(format!("rte_pktmbuf_pool_create({name})"), 0))?;
        Ok(Mempool {
            raw,
            inner: Arc::new(PoolInner {
                raw,
                capacity,
                eal: eal.clone(),
            }),
        })
    }

    pub fn capacity(&self) -> u32 {
        self.inner.capacity
    }

    /// Buffers currently taken out of the pool (by NIC rings, workers, caches
    /// are counted as available). Used to prove that nothing leaks.
    pub fn in_use(&self) -> u32 {
        self.inner.in_use()
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
        // The pool is alive (self holds it); `filled` then hands ownership of
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

impl PoolInner {
    fn in_use(&self) -> u32 {
        // SAFETY: raw is a live mempool (self is not yet dropped); the call
        // only reads.
        unsafe { dpdk_sys::rte_mempool_in_use_count(self.raw.as_ptr()) }
    }
}

impl Drop for PoolInner {
    fn drop(&mut self) {
        // An Mbuf holds no handle to its pool (a reference count per packet
        // would cost on every frame), so it can outlive the last Mempool
        // handle. Each mbuf still out counts as in use here: ports set up
        // from the pool are closed already (each holds a handle), so what is
        // left is mbufs held by Mbuf or Batch values, or sent on a port of
        // another pool. Freeing the pool under them would turn their drop
        // into a use after free, so the pool is leaked instead, and with it a
        // reference to the EAL (which holds the pool's memory), which is
        // therefore never cleaned up. (The count cannot see a free that is
        // still inside DPDK's code on another thread at this very moment:
        // Mbuf is Send, so that thread must have been handed the mbuf; the
        // engine and the generator join such threads before they drop their
        // last pool handle.)
        let out = self.in_use();
        if out != 0 {
            std::mem::forget(self.eal.clone());
            return;
        }
        // SAFETY: this is the last handle to the pool, and no mbuf of it is
        // out (checked above): every port set up from it is closed (a port
        // holds a handle) and no Mbuf or Batch holds one of its buffers, so
        // nothing refers to the pool any more (up to the concurrent free
        // noted above). The EAL is alive (self.eal).
        unsafe { dpdk_sys::rte_mempool_free(self.raw.as_ptr()) }
    }
}
