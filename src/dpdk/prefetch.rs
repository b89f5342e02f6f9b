//! A software prefetch: start loading cache lines without waiting for them.
//!
//! The datapath (`#![forbid(unsafe_code)]`) cannot issue one: the intrinsic
//! (`_mm_prefetch`, DPDK's `rte_prefetch0`) is an `unsafe` function in Rust.
//! Its memory is reached through the datapath's `BucketMemory` trait,
//! whose engine implementation calls this.
//!
//! Unlike a plain load whose value is discarded, a prefetch retires at once:
//! the CPU does not hold the instructions after it in its reorder buffer
//! until the line arrives, so a burst can have all its bucket misses in
//! flight while it keeps parsing and deciding.

const CACHE_LINE: usize = 64;

/// Prefetches every cache line holding a byte of `bytes` into all cache
/// levels (T0).
#[inline(always)]
pub fn prefetch(bytes: &[u8]) {
    let Some(first) = bytes.first() else {
        return;
    };
    line(first);
    // Offsets of the following line starts within `bytes`.
    let mut off = CACHE_LINE - (bytes.as_ptr() as usize % CACHE_LINE);
    while let Some(b) = bytes.get(off) {
        line(b);
        off += CACHE_LINE;
    }
}

#[inline(always)]
fn line(byte: &u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint: it never faults and changes no memory or
    // register state the program can see; the address is a live reference
    // anyway. `sse` (which the intrinsic requires) is part of the x86-64
    // baseline.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
            (byte as *const u8).cast(),
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    std::hint::black_box(*byte);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefetch_accepts_any_slice() {
        // Nothing observable but that it neither faults nor reads past the
        // slice (Miri/ASan would flag the latter): empty, within one line,
        // straddling lines, many lines, at every alignment.
        let buf = vec![7u8; 1024];
        for start in 0..CACHE_LINE {
            for len in [0, 1, 40, 64, 65, 300] {
                prefetch(&buf[start..start + len]);
            }
        }
        prefetch(&buf[1023..]);
    }
}
