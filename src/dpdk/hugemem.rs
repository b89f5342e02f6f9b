//! Memory for a worker's large tables (its flow table): DPDK hugepage memory
//! on the worker's NUMA socket, or ordinary memory when hugepages are short.
//!
//! Why: a worker touches its flow table at random, one or two cache lines
//! per packet. On 4 KiB pages a 96 MiB table spans 24576 pages, far more
//! than the TLB holds, so nearly every lookup also pays a page walk (a
//! nested one in a VM); on 2 MiB pages it spans 48.
//!
//! [`TableMemory`] owns an array of `T` either way, so the datapath does not
//! care where it came from. Memory from DPDK must be freed before the EAL is
//! cleaned up: a table in DPDK memory holds an [`Eal`] handle, so the EAL
//! outlives it.

use std::alloc::Layout;
use std::ptr::NonNull;

use super::{DpdkError, Eal};

/// Transparent huge page size on x86-64: heap tables at least this large are
/// aligned to it, so the kernel can back them with huge pages.
const THP_SIZE: usize = 2 << 20;
/// Tables start on a cache line at least.
const CACHE_LINE: usize = 64;

/// An owned, fixed-length array of `T` for a per-worker table. See the
/// module doc.
pub struct TableMemory<T: Copy> {
    ptr: NonNull<T>,
    len: usize,
    origin: Origin,
}

enum Origin {
    /// `rte_zmalloc_socket`; freed with `rte_free` before the EAL handle
    /// goes.
    Dpdk { _eal: Eal },
    /// `std::alloc::alloc` with this layout (not called for size 0).
    Heap(Layout),
}

/// Where a [`TableMemory`] lives (for the start-up log and the benchmark).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// DPDK memory on NUMA `socket`, in pages of `page_size` bytes (4 KiB
    /// when the EAL runs with `--no-huge`).
    Dpdk { socket: i32, page_size: u64 },
    /// Ordinary memory, advised for transparent huge pages
    /// (`MADV_HUGEPAGE`), which the kernel may or may not grant.
    Heap,
}

impl std::fmt::Display for Placement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Placement::Dpdk { socket, page_size } => {
                let size = if *page_size >= 1 << 30 {
                    format!("{} GiB", page_size >> 30)
                } else if *page_size >= 1 << 20 {
                    format!("{} MiB", page_size >> 20)
                } else {
                    format!("{} KiB", page_size >> 10)
                };
                write!(f, "DPDK memory on socket {socket}, {size} pages")
            }
            Placement::Heap => f.write_str("ordinary memory (transparent huge pages if granted)"),
        }
    }
}

/// Whether the EAL was started with hugepages (not `--no-huge`).
pub fn eal_has_hugepages(_eal: &Eal) -> bool {
    // SAFETY: plain query of EAL state; the Eal reference proves it is
    // initialised.
    unsafe { dpdk_sys::rte_eal_has_hugepages() != 0 }
}

impl<T: Copy> TableMemory<T> {
    /// `len` elements set to `fill`, from DPDK's heap on NUMA `socket`
    /// (hugepages unless the EAL runs with `--no-huge`). Fails when DPDK has
    /// not that much memory left on the socket.
    pub fn dpdk(eal: &Eal, len: usize, fill: T, socket: u32) -> Result<Self, DpdkError> {
        const OP: &str = "rte_zmalloc_socket";
        let size = len
            .checked_mul(std::mem::size_of::<T>())
            .filter(|&s| s > 0)
            .ok_or_else(|| DpdkError::other(OP, format!("bad table size: {len} elements")))?;
        let align = u32::try_from(std::mem::align_of::<T>().max(CACHE_LINE))
            .map_err(|_| DpdkError::other(OP, "alignment too large"))?;
        let socket_arg =
            i32::try_from(socket).map_err(|_| DpdkError::other(OP, "bad socket id"))?;
        // SAFETY: the name is a static C string; size and alignment are
        // checked above (align a power of two); the EAL is initialised (the
        // Eal reference proves it). The result is null or a zeroed block of
        // `size` bytes aligned to `align`, which we own until rte_free.
        let raw = unsafe {
            dpdk_sys::rte_zmalloc_socket(c"mplb_table".as_ptr(), size, align, socket_arg)
        };
        let ptr = NonNull::new(raw.cast::<T>()).ok_or_else(|| {
            DpdkError::other(
                OP,
                format!(
                    "no {} MiB of DPDK memory left on socket {socket}",
                    size.div_ceil(1 << 20)
                ),
            )
        })?;
        Ok(TableMemory::filled(
            ptr,
            len,
            fill,
            Origin::Dpdk { _eal: eal.clone() },
        ))
    }

    /// `len` elements set to `fill`, in ordinary memory: aligned to 2 MiB and
    /// advised for transparent huge pages when at least that large. Fails,
    /// without aborting, when the size overflows or the allocation is refused.
    pub fn heap(len: usize, fill: T) -> Result<Self, DpdkError> {
        const OP: &str = "table allocation";
        let layout = Layout::array::<T>(len)
            .and_then(|l| {
                let align = if l.size() >= THP_SIZE {
                    THP_SIZE
                } else {
                    CACHE_LINE
                };
                l.align_to(align)
            })
            .map_err(|_| {
                DpdkError::other(OP, format!("{len} elements overflow the address space"))
            })?;
        if layout.size() == 0 {
            return Ok(TableMemory {
                ptr: NonNull::dangling(),
                len,
                origin: Origin::Heap(layout),
            });
        }
        // SAFETY: the layout has a non-zero size (checked above).
        let raw = unsafe { std::alloc::alloc(layout) };
        let ptr = NonNull::new(raw.cast::<T>()).ok_or_else(|| {
            DpdkError::other(
                OP,
                format!(
                    "no {} MiB of ordinary memory for {len} elements",
                    layout.size().div_ceil(1 << 20)
                ),
            )
        })?;
        if layout.align() == THP_SIZE {
            // SAFETY: advice on a range we own, page aligned (2 MiB); it
            // changes how the kernel backs the pages, not their contents.
            // Failure (THP disabled) only means 4 KiB pages: ignored.
            unsafe {
                libc::madvise(raw.cast(), layout.size(), libc::MADV_HUGEPAGE);
            }
        }
        Ok(TableMemory::filled(ptr, len, fill, Origin::Heap(layout)))
    }

    // Writes `fill` into each of the `len` elements at `ptr` (a fresh block
    // of at least len * size_of::<T>() bytes, aligned for T): touching every
    // page now, not on the first packets.
    fn filled(ptr: NonNull<T>, len: usize, fill: T, origin: Origin) -> Self {
        for i in 0..len {
            // SAFETY: i < len, inside the block the caller allocated for len
            // elements of T; T is Copy, so nothing is dropped by overwriting.
            unsafe { ptr.as_ptr().add(i).write(fill) };
        }
        TableMemory { ptr, len, origin }
    }

    /// Where the memory lives.
    pub fn placement(&self) -> Placement {
        match self.origin {
            Origin::Heap(_) => Placement::Heap,
            Origin::Dpdk { .. } => {
                // SAFETY: ptr is a live block from rte_zmalloc_socket; a null
                // list asks DPDK to look the segment up itself. The returned
                // memseg (if any) is DPDK's and is only read here.
                let seg = unsafe {
                    dpdk_sys::rte_mem_virt2memseg(self.ptr.as_ptr().cast(), std::ptr::null())
                };
                // SAFETY: a non-null memseg pointer stays valid while the EAL
                // runs (self holds it); we copy two plain fields.
                match unsafe { seg.as_ref() } {
                    Some(s) => Placement::Dpdk {
                        socket: s.socket_id,
                        page_size: s.hugepage_sz,
                    },
                    None => Placement::Dpdk {
                        socket: -1,
                        page_size: 0,
                    },
                }
            }
        }
    }
}

impl<T: Copy> std::ops::Deref for TableMemory<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: ptr points to len initialised elements (written by
        // `filled`, or none for a dangling zero-size block) that self owns.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Copy> std::ops::DerefMut for TableMemory<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in deref; &mut self gives exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Copy> Drop for TableMemory<T> {
    fn drop(&mut self) {
        match self.origin {
            // SAFETY: the block came from rte_zmalloc_socket and is freed
            // once; the EAL is still running (the origin holds a handle to
            // it, dropped after this).
            Origin::Dpdk { .. } => unsafe { dpdk_sys::rte_free(self.ptr.as_ptr().cast()) },
            Origin::Heap(layout) if layout.size() > 0 => {
                // SAFETY: allocated by std::alloc::alloc with this layout,
                // freed once.
                unsafe { std::alloc::dealloc(self.ptr.as_ptr().cast(), layout) }
            }
            Origin::Heap(_) => {}
        }
    }
}

// SAFETY: TableMemory owns its elements exclusively (like a Box<[T]>); the
// DPDK heap may be freed from any thread.
unsafe impl<T: Copy + Send> Send for TableMemory<T> {}
// SAFETY: shared access only hands out &[T].
unsafe impl<T: Copy + Sync> Sync for TableMemory<T> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heap_memory_is_filled_aligned_and_writable() {
        let mut m = TableMemory::heap(3, 7u64).expect("3 elements");
        assert_eq!(&*m, &[7, 7, 7]);
        assert_eq!(m.as_ptr() as usize % CACHE_LINE, 0);
        m[1] = 9;
        assert_eq!(&*m, &[7, 9, 7]);
        assert_eq!(m.placement(), Placement::Heap);

        let big = TableMemory::heap(THP_SIZE / 8 + 1, 1u64).expect("2 MiB");
        assert_eq!(big.as_ptr() as usize % THP_SIZE, 0);
        assert!(big.iter().all(|&x| x == 1));

        let empty = TableMemory::heap(0, 0u8).expect("empty");
        assert!(empty.is_empty());

        // Too large for the address space: an error, not a panic.
        assert!(TableMemory::heap(usize::MAX / 8, 0u64).is_err());
    }
}
