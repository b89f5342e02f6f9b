use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

/// Frames handled per rx/tx call. 32 is DPDK's customary burst: large enough
/// to amortise the call, small enough to stay in L1.
pub const BURST: usize = 32;

/// One received frame in a DPDK mbuf (single segment: mplb does not enable
/// scatter, so a frame never spans buffers). Derefs to the frame bytes and
/// returns to its mempool when dropped.
///
/// `repr(transparent)` over a non-null pointer: a run of owned mbuf pointers
/// can be viewed as `[Mbuf]` (see [`Batch::frames_mut`]). It holds no handle
/// to its pool (no reference count per packet); instead a pool whose last
/// handle goes while any of its mbufs is out is never freed (see
/// [`super::Mempool`]), so an `Mbuf` cannot outlive its pool's memory.
#[repr(transparent)]
pub struct Mbuf {
    raw: NonNull<dpdk_sys::rte_mbuf>,
}

// SAFETY: an mbuf is owned by exactly one Mbuf value; moving it to another
// thread moves that ownership. Freeing from any lcore is allowed by DPDK.
unsafe impl Send for Mbuf {}

impl Mbuf {
    /// Takes ownership of a raw mbuf.
    ///
    /// # Safety
    /// `raw` must be a valid single-owner mbuf that nothing else will free.
    unsafe fn from_raw(raw: NonNull<dpdk_sys::rte_mbuf>) -> Mbuf {
        Mbuf { raw }
    }

    fn into_raw(self) -> *mut dpdk_sys::rte_mbuf {
        let raw = self.raw.as_ptr();
        std::mem::forget(self);
        raw
    }

    fn header(&self) -> &dpdk_sys::rte_mbuf {
        // SAFETY: raw points to a live mbuf owned by self.
        unsafe { self.raw.as_ref() }
    }

    fn header_mut(&mut self) -> &mut dpdk_sys::rte_mbuf {
        // SAFETY: raw points to a live mbuf owned exclusively by self.
        unsafe { self.raw.as_mut() }
    }

    /// Grows the frame at the front by `n` bytes (uninitialised contents from
    /// the buffer's headroom). Returns false, changing nothing, if there is no room.
    pub fn prepend(&mut self, n: usize) -> bool {
        let Ok(n16) = u16::try_from(n) else {
            return false;
        };
        let h = self.header_mut();
        if h.data_off < n16 {
            return false;
        }
        h.data_off -= n16;
        h.data_len += n16;
        h.pkt_len += u32::from(n16);
        true
    }

    /// Removes `n` bytes from the front of the frame. False if it is shorter.
    pub fn adj(&mut self, n: usize) -> bool {
        let Ok(n16) = u16::try_from(n) else {
            return false;
        };
        let h = self.header_mut();
        if h.data_len < n16 {
            return false;
        }
        h.data_off += n16;
        h.data_len -= n16;
        h.pkt_len -= u32::from(n16);
        true
    }

    /// Sets the frame's length to `len` bytes, growing or shrinking it at the
    /// tail (new bytes hold whatever the buffer held: fill them). False,
    /// changing nothing, if the buffer has no room for `len` bytes after its
    /// headroom. For frames built from scratch in a freshly allocated mbuf.
    pub fn set_len(&mut self, len: usize) -> bool {
        let h = self.header_mut();
        let room = usize::from(h.buf_len).saturating_sub(usize::from(h.data_off));
        let Ok(len16) = u16::try_from(len) else {
            return false;
        };
        // Single segment: the packet is this buffer's data and nothing else.
        if len > room || h.nb_segs != 1 {
            return false;
        }
        h.data_len = len16;
        h.pkt_len = u32::from(len16);
        true
    }

    /// Cuts the frame to `len` bytes (no-op if already shorter).
    pub fn truncate(&mut self, len: usize) {
        let h = self.header_mut();
        if let Ok(len16) = u16::try_from(len) {
            if len16 < h.data_len {
                h.pkt_len -= u32::from(h.data_len - len16);
                h.data_len = len16;
            }
        }
    }
}

impl Deref for Mbuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        let h = self.header();
        // SAFETY: buf_addr + data_off is the start of data_len initialised
        // bytes inside the mbuf's buffer (DPDK's invariant for a received or
        // prepended single-segment mbuf); self owns the buffer.
        unsafe {
            std::slice::from_raw_parts(
                h.buf_addr.cast::<u8>().add(usize::from(h.data_off)),
                usize::from(h.data_len),
            )
        }
    }
}

impl DerefMut for Mbuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        let h = self.header();
        let (addr, off, len) = (h.buf_addr, h.data_off, h.data_len);
        // SAFETY: as in deref, and self is the only owner, so no other
        // reference to these bytes exists.
        unsafe {
            std::slice::from_raw_parts_mut(
                addr.cast::<u8>().add(usize::from(off)),
                usize::from(len),
            )
        }
    }
}

impl Drop for Mbuf {
    fn drop(&mut self) {
        // SAFETY: self owns the mbuf; it is freed exactly once, here. Its
        // pool is alive: a pool with mbufs out is never freed (Mempool).
        unsafe { dpdk_sys::rte_pktmbuf_free(self.raw.as_ptr()) }
    }
}

/// Up to [`BURST`] owned mbufs, as filled by an rx burst or gathered for a tx
/// burst. Whatever is still in a batch when it is cleared or dropped goes
/// back to its pool, so a buffer cannot leak.
pub struct Batch {
    ptrs: [*mut dpdk_sys::rte_mbuf; BURST],
    len: usize,
}

// SAFETY: the batch owns its mbufs exactly as Mbuf does.
unsafe impl Send for Batch {}

impl Default for Batch {
    fn default() -> Self {
        Batch::new()
    }
}

impl Batch {
    pub const fn new() -> Batch {
        Batch {
            ptrs: [std::ptr::null_mut(); BURST],
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds a frame; hands it back if the batch is full.
    pub fn push(&mut self, m: Mbuf) -> Result<(), Mbuf> {
        match self.ptrs.get_mut(self.len) {
            Some(slot) => {
                *slot = m.into_raw();
                self.len += 1;
                Ok(())
            }
            None => Err(m),
        }
    }

    /// The held frames, to process in place as one burst.
    pub fn frames_mut(&mut self) -> &mut [Mbuf] {
        let len = self.len.min(BURST);
        // SAFETY: the first len pointers are non-null mbufs owned by the
        // batch, and Mbuf is repr(transparent) over NonNull<rte_mbuf>, which
        // has the layout of *mut rte_mbuf. The slice borrows the batch
        // mutably, so nothing else can free or move them meanwhile; no Mbuf
        // can be moved out of a &mut slice (no Default/Clone), so ownership
        // stays with the batch.
        unsafe { std::slice::from_raw_parts_mut(self.ptrs.as_mut_ptr().cast::<Mbuf>(), len) }
    }

    /// Takes every frame out, in order.
    pub fn drain(&mut self) -> Drain<'_> {
        let len = std::mem::replace(&mut self.len, 0);
        Drain {
            ptrs: &self.ptrs[..len],
            next: 0,
        }
    }

    /// Frees every frame still held.
    pub fn clear(&mut self) {
        if self.len > 0 {
            // SAFETY: the first len pointers are valid mbufs owned by the
            // batch, whose pools are alive (a pool with mbufs out is never
            // freed); len fits in u32 (≤ BURST). They are forgotten right after.
            unsafe { dpdk_sys::rte_pktmbuf_free_bulk(self.ptrs.as_mut_ptr(), self.len as u32) };
            self.len = 0;
        }
    }

    /// Where an rx burst may write, and how many it may write.
    pub(super) fn spare(&mut self) -> (*mut *mut dpdk_sys::rte_mbuf, u16) {
        let spare = BURST - self.len;
        // BURST ≤ u16::MAX, so the cast cannot truncate.
        (self.ptrs[self.len..].as_mut_ptr(), spare as u16)
    }

    /// Records that an rx burst filled `n` of the spare slots.
    pub(super) fn filled(&mut self, n: u16) {
        self.len = (self.len + usize::from(n)).min(BURST);
    }

    /// The frames for a tx burst.
    pub(super) fn as_tx(&mut self) -> (*mut *mut dpdk_sys::rte_mbuf, u16) {
        (self.ptrs.as_mut_ptr(), self.len as u16)
    }

    /// After a tx burst sent the first `sent` frames (now owned by the driver),
    /// keeps the unsent ones at the front.
    pub(super) fn sent(&mut self, sent: u16) {
        let sent = usize::from(sent).min(self.len);
        self.ptrs.copy_within(sent..self.len, 0);
        self.len -= sent;
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        self.clear();
    }
}

/// Iterator returned by [`Batch::drain`]; frees what it did not yield.
pub struct Drain<'a> {
    ptrs: &'a [*mut dpdk_sys::rte_mbuf],
    next: usize,
}

impl Iterator for Drain<'_> {
    type Item = Mbuf;
    fn next(&mut self) -> Option<Mbuf> {
        let raw = *self.ptrs.get(self.next)?;
        self.next += 1;
        // SAFETY: the batch owned this pointer and gave up ownership (its len
        // was reset by drain), so it is yielded exactly once.
        NonNull::new(raw).map(|p| unsafe { Mbuf::from_raw(p) })
    }
}

impl Drop for Drain<'_> {
    fn drop(&mut self) {
        for m in self.by_ref() {
            drop(m);
        }
    }
}
