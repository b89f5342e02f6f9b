use std::collections::BTreeSet;
use std::ffi::{CStr, CString, c_char};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use super::{Batch, DpdkError, Mempool};

// RSS hash types (rte_ethdev.h: RTE_ETH_RSS_* = RTE_BIT64(n); a function-like
// macro, so bindgen cannot see them).
const RSS_IPV4: u64 = 1 << 2;
const RSS_FRAG_IPV4: u64 = 1 << 3;
const RSS_NONFRAG_IPV4_TCP: u64 = 1 << 4;
const RSS_NONFRAG_IPV4_UDP: u64 = 1 << 5;
const RSS_IPV6: u64 = 1 << 8;
const RSS_FRAG_IPV6: u64 = 1 << 9;
const RSS_NONFRAG_IPV6_TCP: u64 = 1 << 10;
const RSS_NONFRAG_IPV6_UDP: u64 = 1 << 11;
const RSS_IPV6_EX: u64 = 1 << 15;
const RSS_IPV6_TCP_EX: u64 = 1 << 16;
const RSS_IPV6_UDP_EX: u64 = 1 << 17;

/// What mplb asks of RSS: spread by the full 5-tuple for TCP and UDP (so one
/// connection stays on one worker), by addresses for fragments and the rest.
const RSS_WANTED: u64 = RSS_IPV4
    | RSS_FRAG_IPV4
    | RSS_NONFRAG_IPV4_TCP
    | RSS_NONFRAG_IPV4_UDP
    | RSS_IPV6
    | RSS_FRAG_IPV6
    | RSS_NONFRAG_IPV6_TCP
    | RSS_NONFRAG_IPV6_UDP
    | RSS_IPV6_EX
    | RSS_IPV6_TCP_EX
    | RSS_IPV6_UDP_EX;

/// How to bring a port up.
#[derive(Debug, Clone)]
pub struct PortSetup {
    pub rx_queues: u16,
    pub tx_queues: u16,
    pub rx_descriptors: u16,
    pub tx_descriptors: u16,
    /// L3 MTU; `None` keeps the device default.
    pub mtu: Option<u16>,
    pub promiscuous: bool,
}

/// Link state as the driver reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkStatus {
    pub up: bool,
    pub speed_mbps: u32,
    pub full_duplex: bool,
}

/// Basic port counters (`rte_eth_stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortStats {
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    /// Dropped by the NIC because no rx descriptor was free (workers too slow).
    pub rx_missed: u64,
    pub rx_errors: u64,
    pub tx_errors: u64,
    pub rx_nombuf: u64,
}

/// A configured ethdev port. It is stopped and closed when the `Port` and
/// every queue taken from it are gone: the queues share its state.
pub struct Port {
    inner: Arc<PortInner>,
}

/// What a [`Port`] and its queues share; dropping it stops and closes the
/// port.
struct PortInner {
    id: u16,
    name: String,
    driver: String,
    mac: [u8; 6],
    rx_queues: u16,
    tx_queues: u16,
    rss_hf: u64,
    mtu: u16,
    promiscuous: bool,
    rx_taken: Vec<AtomicBool>,
    tx_taken: Vec<AtomicBool>,
    /// The pool the rx rings take their mbufs from, kept alive while the
    /// port is (the pool holds the EAL in turn).
    _pool: Mempool,
    /// Released after the port is closed.
    _claim: Claim,
}

/// The devices a live [`Port`] (or one of its queues) holds: a second `Port`
/// on the same device would hand out its queues a second time and close it
/// twice.
static CLAIMED: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// One device's entry in [`CLAIMED`], removed on drop.
struct Claim(u16);

impl Claim {
    fn take(id: u16) -> Option<Claim> {
        let fresh = CLAIMED
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id);
        // Built only when fresh: a Claim dropped here would release the
        // live Port's entry.
        fresh.then(|| Claim(id))
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut claimed = CLAIMED.lock().unwrap_or_else(PoisonError::into_inner);
        claimed.remove(&self.0);
    }
}

/// Exclusive right to poll one rx queue. DPDK queues are not thread-safe,
/// so [`Port::rx_queue`] hands each one out once. Keeps the port open.
pub struct RxQueue {
    port: u16,
    queue: u16,
    _owner: Arc<PortInner>,
}

/// Exclusive right to send on one tx queue; handed out once, like [`RxQueue`].
/// Keeps the port open.
pub struct TxQueue {
    port: u16,
    queue: u16,
    _owner: Arc<PortInner>,
}

impl Port {
    /// Finds a probed device by its name (e.g. `net_null0`, `0000:3b:00.0`).
    pub fn id_by_name(name: &str) -> Result<u16, DpdkError> {
        let cname = CString::new(name)
            .map_err(|_| DpdkError::other("rte_eth_dev_get_port_by_name", "name contains NUL"))?;
        let mut id: u16 = 0;
        // SAFETY: cname is a valid C string; id is a valid out-pointer.
        let rc = unsafe { dpdk_sys::rte_eth_dev_get_port_by_name(cname.as_ptr(), &mut id) };
        if rc != 0 {
            return Err(DpdkError::other(
                format!("port {name}"),
                "no such DPDK device (check the EAL arguments: --vdev, -a/--allow, driver binding)",
            ));
        }
        Ok(id)
    }

    /// [`Port::configure`], then [`Port::start_traffic`].
    pub fn start(id: u16, setup: &PortSetup, pool: &Mempool) -> Result<Port, DpdkError> {
        let port = Port::configure(id, setup, pool)?;
        port.start_traffic()?;
        Ok(port)
    }

    /// Configures queues, RSS and MTU and sets up the rings from `pool`; the
    /// port stays stopped (no link, nothing received) until
    /// [`Port::start_traffic`]. Fails if a `Port` on this device is still
    /// alive (or a queue of it).
    pub fn configure(id: u16, setup: &PortSetup, pool: &Mempool) -> Result<Port, DpdkError> {
        let name = port_name(id);
        let op = |what: &str| format!("port {name}: {what}");
        let claim = Claim::take(id)
            .ok_or_else(|| DpdkError::other(op("configure"), "already in use by another Port"))?;
        let mut info = dpdk_sys::rte_eth_dev_info::default();
        // SAFETY: info is a valid out-structure; id is checked by DPDK.
        let rc = unsafe { dpdk_sys::rte_eth_dev_info_get(id, &mut info) };
        if rc != 0 {
            return Err(DpdkError::from_code(op("rte_eth_dev_info_get"), rc));
        }
        let driver = if info.driver_name.is_null() {
            String::from("?")
        } else {
            // SAFETY: DPDK fills driver_name with a static NUL-terminated string.
            unsafe { CStr::from_ptr(info.driver_name) }
                .to_string_lossy()
                .into_owned()
        };
        let queues = |what: &str, requested: u16, max: u16| {
            if requested == 0 || requested > max {
                let detail = format!("{requested} requested, device supports 1..={max}");
                return Err(DpdkError::other(op(what), detail));
            }
            Ok(())
        };
        queues("rx queues", setup.rx_queues, info.max_rx_queues)?;
        queues("tx queues", setup.tx_queues, info.max_tx_queues)?;

        let mut conf = dpdk_sys::rte_eth_conf::default();
        let rss_hf = RSS_WANTED & info.flow_type_rss_offloads;
        if setup.rx_queues > 1 && rss_hf != 0 {
            conf.rxmode.mq_mode = dpdk_sys::RTE_ETH_MQ_RX_RSS;
            // A null key makes the driver use its default key.
            conf.rx_adv_conf.rss_conf.rss_hf = rss_hf;
        }
        if let Some(mtu) = setup.mtu {
            if mtu < info.min_mtu || mtu > info.max_mtu {
                return Err(DpdkError::other(
                    op("mtu"),
                    format!(
                        "{mtu} outside the device's range {}..={}",
                        info.min_mtu, info.max_mtu
                    ),
                ));
            }
            conf.rxmode.mtu = u32::from(mtu);
        }
        // SAFETY: conf is a fully initialised configuration; queue counts are
        // within the device's limits (checked above).
        let rc =
            unsafe { dpdk_sys::rte_eth_dev_configure(id, setup.rx_queues, setup.tx_queues, &conf) };
        if rc != 0 {
            return Err(DpdkError::from_code(op("rte_eth_dev_configure"), rc));
        }
        let (mut nb_rx, mut nb_tx) = (setup.rx_descriptors, setup.tx_descriptors);
        // SAFETY: valid out-pointers; clamps descriptor counts to device limits.
        let rc = unsafe { dpdk_sys::rte_eth_dev_adjust_nb_rx_tx_desc(id, &mut nb_rx, &mut nb_tx) };
        if rc != 0 {
            return Err(DpdkError::from_code(
                op("rte_eth_dev_adjust_nb_rx_tx_desc"),
                rc,
            ));
        }
        // SAFETY: plain query; -1 (SOCKET_ID_ANY) is a valid answer and argument.
        let socket = unsafe { dpdk_sys::rte_eth_dev_socket_id(id) };
        let socket = u32::try_from(socket).unwrap_or(u32::MAX);
        for q in 0..setup.rx_queues {
            // SAFETY: the port is configured with rx_queues queues; a null
            // rx_conf asks for the driver defaults; the pool outlives the
            // port (the port holds a handle to it, below).
            let rc = unsafe {
                dpdk_sys::rte_eth_rx_queue_setup(
                    id,
                    q,
                    nb_rx,
                    socket,
                    std::ptr::null(),
                    pool.as_ptr(),
                )
            };
            if rc != 0 {
                return Err(DpdkError::from_code(op(&format!("rx queue {q} setup")), rc));
            }
        }
        for q in 0..setup.tx_queues {
            // SAFETY: as for rx; a null tx_conf asks for the driver defaults.
            let rc =
                unsafe { dpdk_sys::rte_eth_tx_queue_setup(id, q, nb_tx, socket, std::ptr::null()) };
            if rc != 0 {
                return Err(DpdkError::from_code(op(&format!("tx queue {q} setup")), rc));
            }
        }
        let mut mac = dpdk_sys::rte_ether_addr::default();
        // SAFETY: mac is a valid out-structure.
        unsafe { dpdk_sys::rte_eth_macaddr_get(id, &mut mac) };
        let mut mtu = 0u16;
        // SAFETY: valid out-pointer.
        unsafe { dpdk_sys::rte_eth_dev_get_mtu(id, &mut mtu) };
        Ok(Port {
            inner: Arc::new(PortInner {
                id,
                name,
                driver,
                mac: mac.addr_bytes,
                rx_queues: setup.rx_queues,
                tx_queues: setup.tx_queues,
                rss_hf: conf.rx_adv_conf.rss_conf.rss_hf,
                mtu,
                promiscuous: setup.promiscuous,
                rx_taken: (0..setup.rx_queues)
                    .map(|_| AtomicBool::new(false))
                    .collect(),
                tx_taken: (0..setup.tx_queues)
                    .map(|_| AtomicBool::new(false))
                    .collect(),
                _pool: pool.clone(),
                _claim: claim,
            }),
        })
    }

    /// Starts the configured port: the link comes up and frames arrive in
    /// its rx rings.
    pub fn start_traffic(&self) -> Result<(), DpdkError> {
        // SAFETY: the port is configured and all its queues are set up
        // (`configure`); starting a started port is an error DPDK reports.
        let rc = unsafe { dpdk_sys::rte_eth_dev_start(self.inner.id) };
        if rc != 0 {
            return Err(DpdkError::from_code(
                format!("port {}: rte_eth_dev_start", self.inner.name),
                rc,
            ));
        }
        if self.inner.promiscuous {
            // SAFETY: the port is started. Failure is not fatal (some vdevs
            // have no such mode); frames to our own MAC still arrive.
            unsafe { dpdk_sys::rte_eth_promiscuous_enable(self.inner.id) };
        }
        Ok(())
    }

    pub fn id(&self) -> u16 {
        self.inner.id
    }
    pub fn name(&self) -> &str {
        &self.inner.name
    }
    pub fn driver(&self) -> &str {
        &self.inner.driver
    }
    /// The pool the port's rx rings take their mbufs from.
    pub fn pool(&self) -> &Mempool {
        &self.inner._pool
    }
    pub fn mac(&self) -> [u8; 6] {
        self.inner.mac
    }
    pub fn rx_queues(&self) -> u16 {
        self.inner.rx_queues
    }
    pub fn tx_queues(&self) -> u16 {
        self.inner.tx_queues
    }
    pub fn mtu(&self) -> u16 {
        self.inner.mtu
    }
    /// Whether RSS spreads flows over the rx queues (false with one queue or
    /// when the device hashes none of the wanted packet types).
    pub fn rss_enabled(&self) -> bool {
        self.inner.rss_hf != 0
    }

    /// The right to poll rx queue `q`; `None` if out of range or already taken.
    pub fn rx_queue(&self, q: u16) -> Option<RxQueue> {
        let taken = self.inner.rx_taken.get(usize::from(q))?;
        (!taken.swap(true, Ordering::SeqCst)).then(|| RxQueue {
            port: self.inner.id,
            queue: q,
            _owner: Arc::clone(&self.inner),
        })
    }

    /// The right to send on tx queue `q`; `None` if out of range or already taken.
    pub fn tx_queue(&self, q: u16) -> Option<TxQueue> {
        let taken = self.inner.tx_taken.get(usize::from(q))?;
        (!taken.swap(true, Ordering::SeqCst)).then(|| TxQueue {
            port: self.inner.id,
            queue: q,
            _owner: Arc::clone(&self.inner),
        })
    }

    pub fn link(&self) -> LinkStatus {
        let mut link = dpdk_sys::rte_eth_link::default();
        // SAFETY: valid out-structure; the nowait variant does not block.
        unsafe { dpdk_sys::rte_eth_link_get_nowait(self.inner.id, &mut link) };
        LinkStatus {
            up: u32::from(link.link_status()) == dpdk_sys::RTE_ETH_LINK_UP,
            speed_mbps: link.link_speed,
            full_duplex: u32::from(link.link_duplex()) == dpdk_sys::RTE_ETH_LINK_FULL_DUPLEX,
        }
    }

    pub fn stats(&self) -> PortStats {
        stats_of(self.inner.id)
    }

    /// A handle that reads this port's counters from another thread (the
    /// metrics page). It keeps the port open, like a queue.
    pub fn stats_reader(&self) -> PortStatsReader {
        PortStatsReader {
            inner: Arc::clone(&self.inner),
        }
    }

    /// The driver's extended statistics, by name.
    pub fn xstats(&self) -> Vec<(String, u64)> {
        // SAFETY: a null array asks for the number of entries.
        let n =
            unsafe { dpdk_sys::rte_eth_xstats_get_names(self.inner.id, std::ptr::null_mut(), 0) };
        let Ok(n) = u32::try_from(n) else {
            return Vec::new();
        };
        let mut names = vec![dpdk_sys::rte_eth_xstat_name::default(); n as usize];
        let mut values = vec![dpdk_sys::rte_eth_xstat::default(); n as usize];
        // SAFETY: both arrays hold n entries, as the calls are told.
        let got_names =
            unsafe { dpdk_sys::rte_eth_xstats_get_names(self.inner.id, names.as_mut_ptr(), n) };
        // SAFETY: as above.
        let got_values =
            unsafe { dpdk_sys::rte_eth_xstats_get(self.inner.id, values.as_mut_ptr(), n) };
        let valid = got_names.min(got_values).clamp(0, n as i32) as usize;
        values
            .iter()
            .take(valid)
            .filter_map(|v| {
                let name = names.get(usize::try_from(v.id).ok()?)?;
                Some((c_name(&name.name), v.value))
            })
            .collect()
    }
}

/// Reads a port's counters from any thread; see [`Port::stats_reader`].
#[derive(Clone)]
pub struct PortStatsReader {
    inner: Arc<PortInner>,
}

impl PortStatsReader {
    pub fn stats(&self) -> PortStats {
        stats_of(self.inner.id)
    }
}

fn stats_of(id: u16) -> PortStats {
    let mut s = dpdk_sys::rte_eth_stats::default();
    // SAFETY: valid out-structure; reading a port's counters is safe
    // from any thread while its queues are polled.
    unsafe { dpdk_sys::rte_eth_stats_get(id, &mut s) };
    PortStats {
        rx_packets: s.ipackets,
        tx_packets: s.opackets,
        rx_bytes: s.ibytes,
        tx_bytes: s.obytes,
        rx_missed: s.imissed,
        rx_errors: s.ierrors,
        tx_errors: s.oerrors,
        rx_nombuf: s.rx_nombuf,
    }
}

impl Drop for PortInner {
    fn drop(&mut self) {
        // SAFETY: this is the last handle to the port: the Port and every
        // RxQueue and TxQueue taken from it hold one, so nothing polls or
        // sends on it any more. The pool its rx rings use is still alive
        // (self._pool is dropped after this), so the driver can return the
        // ring's mbufs to it.
        unsafe {
            dpdk_sys::rte_eth_dev_stop(self.id);
            dpdk_sys::rte_eth_dev_close(self.id);
        }
    }
}

impl RxQueue {
    pub fn port(&self) -> u16 {
        self.port
    }
    pub fn queue(&self) -> u16 {
        self.queue
    }

    /// Receives up to the batch's free space.
    #[inline]
    pub fn rx_burst(&mut self, batch: &mut Batch) -> usize {
        let (ptr, room) = batch.spare();
        // SAFETY: ptr has room for `room` mbuf pointers; this RxQueue is the
        // only poller of the queue (handed out once, used through &mut self),
        // and the port is open (self holds it).
        let n = unsafe { dpdk_sys::rte_eth_rx_burst(self.port, self.queue, ptr, room) };
        batch.filled(n);
        usize::from(n)
    }
}

impl TxQueue {
    /// Sends the batch's frames; the unsent ones stay in it.
    #[inline]
    pub fn tx_burst(&mut self, batch: &mut Batch) -> usize {
        let (ptr, len) = batch.as_tx();
        if len == 0 {
            return 0;
        }
        // SAFETY: ptr holds len owned mbufs; the driver takes ownership of the
        // first n it returns, which `sent` removes from the batch. This TxQueue
        // is the queue's only user, and the port is open (self holds it).
        let n = unsafe { dpdk_sys::rte_eth_tx_burst(self.port, self.queue, ptr, len) };
        batch.sent(n);
        usize::from(n)
    }
}

fn port_name(id: u16) -> String {
    let mut buf = [0 as c_char; 64];
    // SAFETY: buf is a writable array of 64 chars (RTE_ETH_NAME_MAX_LEN).
    let rc = unsafe { dpdk_sys::rte_eth_dev_get_name_by_port(id, buf.as_mut_ptr()) };
    if rc != 0 {
        return format!("port{id}");
    }
    c_name(&buf)
}

fn c_name(buf: &[c_char]) -> String {
    let bytes: Vec<u8> = buf
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}
