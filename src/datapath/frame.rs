//! The frame buffer the datapath rewrites: DPDK mbufs in production, a plain
//! byte buffer with headroom in tests, fuzzing and benchmarks.

use std::ops::DerefMut;

/// A frame whose bytes can be rewritten in place and which can grow at the
/// front (for encapsulation) or shrink.
pub trait Frame: DerefMut<Target = [u8]> {
    /// Grows the frame by `n` bytes at the front. The new bytes are
    /// unspecified. False, and nothing changed, if there is no headroom.
    fn prepend(&mut self, n: usize) -> bool;
    /// Removes `n` bytes from the front. False if the frame is shorter.
    fn trim_front(&mut self, n: usize) -> bool;
    /// Cuts the frame to `len` bytes (no-op if already shorter).
    fn truncate(&mut self, len: usize);
}

/// Headroom of a [`TestFrame`], like DPDK's default mbuf headroom.
pub const TEST_HEADROOM: usize = 128;

/// A heap frame with DPDK-like headroom, for tests, fuzzing and benchmarks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestFrame {
    buf: Vec<u8>,
    start: usize,
}

impl TestFrame {
    pub fn new(bytes: &[u8]) -> TestFrame {
        let mut buf = vec![0; TEST_HEADROOM];
        buf.extend_from_slice(bytes);
        TestFrame {
            buf,
            start: TEST_HEADROOM,
        }
    }

    /// Resets the frame to `bytes` without allocating when capacity allows
    /// (benchmarks reuse one frame).
    pub fn reset(&mut self, bytes: &[u8]) {
        self.buf.truncate(TEST_HEADROOM);
        self.buf.resize(TEST_HEADROOM, 0);
        self.buf.extend_from_slice(bytes);
        self.start = TEST_HEADROOM;
    }

    /// [`TestFrame::reset`] to the concatenation of `head` and `tail`.
    pub fn reset_parts(&mut self, head: &[u8], tail: &[u8]) {
        self.reset(head);
        self.buf.extend_from_slice(tail);
    }
}

impl std::ops::Deref for TestFrame {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.buf.get(self.start..).unwrap_or(&[])
    }
}

impl DerefMut for TestFrame {
    fn deref_mut(&mut self) -> &mut [u8] {
        let start = self.start;
        self.buf.get_mut(start..).unwrap_or(&mut [])
    }
}

impl Frame for TestFrame {
    fn prepend(&mut self, n: usize) -> bool {
        match self.start.checked_sub(n) {
            Some(s) => {
                self.start = s;
                true
            }
            None => false,
        }
    }
    fn trim_front(&mut self, n: usize) -> bool {
        if n > self.len() {
            return false;
        }
        self.start += n;
        true
    }
    fn truncate(&mut self, len: usize) {
        self.buf.truncate(self.start.saturating_add(len));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepend_and_trim_move_the_start() {
        let mut f = TestFrame::new(&[1, 2, 3]);
        assert!(f.prepend(2));
        assert_eq!(f.len(), 5);
        f[0] = 9;
        assert!(f.trim_front(2));
        assert_eq!(&f[..], &[1, 2, 3]);
        assert!(!f.prepend(TEST_HEADROOM + 1));
        assert!(!f.trim_front(4));
        f.truncate(1);
        assert_eq!(&f[..], &[1]);
        f.reset_parts(&[4, 5], &[6]);
        assert_eq!(&f[..], &[4, 5, 6]);
    }
}
