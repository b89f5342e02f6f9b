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

/// Prefetches every cache line of `value` (T0): its first byte's line and
/// each one after it up to its last byte's.
#[inline(always)]
pub fn prefetch_value<T>(value: &T) {
    let start = (value as *const T).cast::<u8>();
    let size = std::mem::size_of::<T>();
    // Compile-time: a value aligned to its size, of at most a line, lies
    // within one line.
    if size <= std::mem::align_of::<T>() && size <= CACHE_LINE {
        at(start);
        return;
    }
    let mut off = 0;
    while off < size {
        at(start.wrapping_add(off));
        off += CACHE_LINE;
    }
    // The last byte's line, where `value` does not start a line.
    if size > 0 {
        at(start.wrapping_add(size - 1));
    }
}

#[inline(always)]
fn line(byte: &u8) {
    at(byte as *const u8);
}

#[inline(always)]
fn at(address: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint: it never faults and changes no memory or
    // register state the program can see; the address is anyway within (or
    // the first byte of) a live value. `sse` (which the intrinsic requires) is part of the x86-64
    // baseline.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(address.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = address;
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

    #[test]
    fn prefetch_value_accepts_any_value() {
        // As above: values of no, one and several lines, at every offset.
        let words = vec![3u64; 64];
        for w in &words {
            prefetch_value(w);
        }
        prefetch_value(&[1u64; 8]);
        prefetch_value(&[[0u8; 100]; 3]);
        prefetch_value(&());
    }
}
