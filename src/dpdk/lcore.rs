use std::ffi::{c_int, c_void};

use super::DpdkError;

type Job = Box<dyn FnOnce() -> i32 + Send + 'static>;

/// A job running on a worker lcore; [`LaunchedLcore::wait`] joins it.
pub struct LaunchedLcore {
    lcore: u32,
}

impl LaunchedLcore {
    pub fn lcore(&self) -> u32 {
        self.lcore
    }

    /// Blocks until the job returns, and gives its return value.
    pub fn wait(self) -> i32 {
        // SAFETY: the lcore was launched by us and is waited for once (self is
        // consumed).
        unsafe { dpdk_sys::rte_eal_wait_lcore(self.lcore) }
    }
}

extern "C" fn trampoline(arg: *mut c_void) -> c_int {
    // SAFETY: arg came from Box::into_raw(Box<Job>) in launch_on_lcore and is
    // passed to exactly one trampoline call.
    let job: Box<Job> = unsafe { Box::from_raw(arg.cast::<Job>()) };
    // A panic must not unwind into DPDK's C frames.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).unwrap_or(-1)
}

/// Runs `job` on worker lcore `lcore` (which must be enabled, idle and not
/// the main lcore).
pub fn launch_on_lcore(
    lcore: u32,
    job: impl FnOnce() -> i32 + Send + 'static,
) -> Result<LaunchedLcore, DpdkError> {
    let boxed: Box<Job> = Box::new(Box::new(job));
    let arg = Box::into_raw(boxed).cast::<c_void>();
    // SAFETY: trampoline has the C signature DPDK expects and takes ownership
    // of arg; on failure the job never runs and we reclaim arg below.
    let rc = unsafe { dpdk_sys::rte_eal_remote_launch(Some(trampoline), arg, lcore) };
    if rc != 0 {
        // SAFETY: the launch failed, so DPDK did not take arg; free it once.
        drop(unsafe { Box::from_raw(arg.cast::<Job>()) });
        return Err(DpdkError::from_code(
            format!("rte_eal_remote_launch(lcore {lcore})"),
            rc,
        ));
    }
    Ok(LaunchedLcore { lcore })
}

/// The time-stamp counter (cycles since boot), cheap enough per burst.
#[inline]
pub fn tsc_now() -> u64 {
    // SAFETY: reads the CPU's TSC; no memory is touched.
    unsafe { dpdk_sys::rte_rdtsc() }
}

/// TSC ticks per second, as measured by the EAL at start.
pub fn tsc_hz() -> u64 {
    // SAFETY: plain query of EAL state, valid after init.
    unsafe { dpdk_sys::rte_get_tsc_hz() }
}
