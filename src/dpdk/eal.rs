use std::ffi::{CString, c_char};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::ThreadId;

use super::DpdkError;

/// EAL initialisation can happen once per process; a second `Eal` would be a
/// programming error, reported instead of crashing inside DPDK.
static EAL_STARTED: AtomicBool = AtomicBool::new(false);

/// A handle to the initialised DPDK environment. Cheap to clone: every
/// mempool, port, DPDK table and launched lcore holds one, so the EAL is
/// cleaned up (`rte_eal_cleanup`) only when the last of them is gone.
#[derive(Clone)]
pub struct Eal {
    inner: Arc<EalInner>,
}

struct EalInner {
    /// The thread that ran `rte_eal_init`: the main lcore. Only it may
    /// launch and wait for worker lcores, and only it cleans the EAL up.
    main_thread: ThreadId,
}

impl Eal {
    /// Initialises the EAL with `args` (program name first, as on a command line).
    pub fn init(args: &[String]) -> Result<Eal, DpdkError> {
        if EAL_STARTED.swap(true, Ordering::SeqCst) {
            return Err(DpdkError::other("rte_eal_init", "EAL already initialised"));
        }
        let owned: Vec<CString> = args
            .iter()
            .map(|a| CString::new(a.as_str()))
            .collect::<Result<_, _>>()
            .map_err(|_| DpdkError::other("rte_eal_init", "argument contains a NUL byte"))?;
        // rte_eal_init may permute argv; give it its own array of pointers into
        // `owned`, which outlives the call.
        let mut argv: Vec<*mut c_char> = owned.iter().map(|c| c.as_ptr().cast_mut()).collect();
        let argc = i32::try_from(argv.len())
            .map_err(|_| DpdkError::other("rte_eal_init", "too many arguments"))?;
        // SAFETY: argv holds argc valid NUL-terminated strings that live until
        // after the call; EAL init runs once per process (checked above).
        let rc = unsafe { dpdk_sys::rte_eal_init(argc, argv.as_mut_ptr()) };
        if rc < 0 {
            return Err(DpdkError::from_code("rte_eal_init", rc));
        }
        Ok(Eal {
            inner: Arc::new(EalInner {
                main_thread: std::thread::current().id(),
            }),
        })
    }

    /// Whether the calling thread is the main lcore (the one that ran init).
    pub(super) fn on_main_thread(&self) -> bool {
        std::thread::current().id() == self.inner.main_thread
    }

    /// The lcore the calling (main) thread runs on.
    pub fn main_lcore(&self) -> u32 {
        // SAFETY: plain query of EAL state, valid after init.
        unsafe { dpdk_sys::rte_get_main_lcore() }
    }

    /// Whether `lcore` was enabled by the EAL arguments (`-l`/`--lcores`).
    pub fn lcore_enabled(&self, lcore: u32) -> bool {
        // SAFETY: plain query of EAL state; out-of-range ids return 0.
        unsafe { dpdk_sys::rte_lcore_is_enabled(lcore) != 0 }
    }

    /// The enabled lcores other than the main one, in id order.
    pub fn worker_lcores(&self) -> Vec<u32> {
        let mut out = Vec::new();
        let mut id = u32::MAX;
        loop {
            // SAFETY: iterates EAL's lcore list; skip_main=1, wrap=0 ends with
            // RTE_MAX_LCORE.
            id = unsafe { dpdk_sys::rte_get_next_lcore(id, 1, 0) };
            if id >= dpdk_sys::RTE_MAX_LCORE {
                return out;
            }
            out.push(id);
        }
    }

    /// The NUMA socket of `lcore` (0 on single-socket hosts).
    pub fn lcore_socket(&self, lcore: u32) -> u32 {
        // SAFETY: plain query of EAL state.
        unsafe { dpdk_sys::rte_lcore_to_socket_id(lcore) }
    }
}

impl Drop for EalInner {
    fn drop(&mut self) {
        if std::thread::current().id() != self.main_thread {
            // The last handle went away on another thread (a job on a worker
            // lcore whose LaunchedLcore was forgotten): cleaning up from there
            // would pull memory from under the main lcore. Leave the EAL as
            // it is; the process exit reclaims it.
            return;
        }
        // SAFETY: this is the last handle to the EAL: every mempool, port,
        // queue, DPDK table and launched lcore holds one, so all of them are
        // gone (a pool with mbufs still out keeps its handle forever, see
        // Mempool). We are on the main lcore (checked above).
        unsafe {
            dpdk_sys::rte_eal_cleanup();
        }
    }
}
