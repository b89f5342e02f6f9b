use std::ffi::CStr;
use std::fmt;

/// A failed DPDK call: which operation, and DPDK's own explanation.
#[derive(Debug, Clone)]
pub struct DpdkError {
    pub op: String,
    pub code: i32,
    pub message: String,
}

impl DpdkError {
    /// Builds an error from a negative return code (`-errno`) or, when `code`
    /// is not negative, from `rte_errno`.
    pub fn from_code(op: impl Into<String>, code: i32) -> Self {
        let errno = if code < 0 {
            -code
        } else {
            // SAFETY: reads DPDK's per-thread errno through a C helper; no
            // arguments, no shared state.
            unsafe { dpdk_sys::mplb_rte_errno() }
        };
        // SAFETY: rte_strerror returns a pointer to a static or thread-local
        // NUL-terminated string for any errno value.
        let message = unsafe { CStr::from_ptr(dpdk_sys::rte_strerror(errno)) }
            .to_string_lossy()
            .into_owned();
        DpdkError {
            op: op.into(),
            code: errno,
            message,
        }
    }

    /// An error detected by our own checks before calling into DPDK.
    pub fn other(op: impl Into<String>, message: impl Into<String>) -> Self {
        DpdkError {
            op: op.into(),
            code: 0,
            message: message.into(),
        }
    }
}

impl fmt::Display for DpdkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.code != 0 {
            write!(f, "{}: {} (errno {})", self.op, self.message, self.code)
        } else {
            write!(f, "{}: {}", self.op, self.message)
        }
    }
}

impl std::error::Error for DpdkError {}
