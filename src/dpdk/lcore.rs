use std::ffi::{c_int, c_void};

use super::{DpdkError, Eal};

type Job = Box<dyn FnOnce() -> i32 + Send + 'static>;

/// A job running on a worker lcore; [`LaunchedLcore::wait`] joins it, and so
/// does dropping it (a job cannot be left running behind its handle). Holds
/// the EAL, and stays on the main lcore, the only one that may wait.
pub struct LaunchedLcore {
    lcore: u32,
    waited: bool,
    _eal: Eal,
    /// Not Send: `rte_eal_wait_lcore` must run on the main lcore.
    _main_only: std::marker::PhantomData<*const ()>,
}

impl LaunchedLcore {
    pub fn lcore(&self) -> u32 {
        self.lcore
    }

    /// Blocks until the job returns, and gives its return value.
    pub fn wait(mut self) -> i32 {
        self.waited = true;
        self.join()
    }

    fn join(&self) -> i32 {
        // SAFETY: the lcore was launched by us from the main lcore, and this
        // value never left it (not Send); it is waited for once: by `wait`,
        // which consumes self and marks it waited, or else by drop. The EAL
        // is alive (self._eal).
        unsafe { dpdk_sys::rte_eal_wait_lcore(self.lcore) }
    }
}

impl Drop for LaunchedLcore {
    fn drop(&mut self) {
        if !self.waited {
            self.join();
        }
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
/// the main lcore). Call from the main lcore (the thread that initialised
/// the EAL); elsewhere it fails. The job holds an EAL handle as well, so the
/// EAL outlives it even if its [`LaunchedLcore`] is forgotten.
pub fn launch_on_lcore(
    eal: &Eal,
    lcore: u32,
    job: impl FnOnce() -> i32 + Send + 'static,
) -> Result<LaunchedLcore, DpdkError> {
    if !eal.on_main_thread() {
        return Err(DpdkError::other(
            format!("rte_eal_remote_launch(lcore {lcore})"),
            "not called from the main lcore",
        ));
    }
    let job_eal = eal.clone();
    let job = move || {
        let rc = job();
        drop(job_eal);
        rc
    };
    let boxed: Box<Job> = Box::new(Box::new(job));
    let arg = Box::into_raw(boxed).cast::<c_void>();
    // SAFETY: trampoline has the C signature DPDK expects and takes ownership
    // of arg; on failure the job never runs and we reclaim arg below. We are
    // on the main lcore (checked above), the only one allowed to launch.
    let rc = unsafe { dpdk_sys::rte_eal_remote_launch(Some(trampoline), arg, lcore) };
    if rc != 0 {
        // SAFETY: the launch failed, so DPDK did not take arg; free it once.
        drop(unsafe { Box::from_raw(arg.cast::<Job>()) });
        return Err(DpdkError::from_code(
            format!("rte_eal_remote_launch(lcore {lcore})"),
            rc,
        ));
    }
    Ok(LaunchedLcore {
        lcore,
        waited: false,
        _eal: eal.clone(),
        _main_only: std::marker::PhantomData,
    })
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
