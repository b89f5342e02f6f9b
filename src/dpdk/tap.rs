//! Kernel interfaces made at run time: a `net_tap` virtual device per port
//! with an exception path (see the README's "Exception path"). The device
//! is hot-plugged once the data port is configured, so that it can take
//! the data port's MAC; it is then configured and started as any
//! [`Port`](super::Port). net_tap's interface is not persistent: it goes
//! away with the device's file descriptors, when the port is closed or the
//! process dies, however it dies.

use std::ffi::CString;

use super::DpdkError;

/// Creates the `net_tap` device `device` (its DPDK name, which must start
/// with `net_tap`) whose kernel interface is `iface`, with MAC `mac`, and
/// returns its port id. Runs on the main lcore before the workers start.
pub fn create_tap(device: &str, iface: &str, mac: [u8; 6]) -> Result<u16, DpdkError> {
    let op = format!("kernel interface {iface} ({device})");
    if !device.starts_with("net_tap") {
        return Err(DpdkError::other(
            op,
            "the device name must start with net_tap",
        ));
    }
    let [a, b, c, d, e, f] = mac;
    let args = format!("iface={iface},mac={a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{f:02x}");
    let nul = |_| DpdkError::other(op.clone(), "name contains NUL");
    let (bus, dev, args) = (
        CString::new("vdev").map_err(nul)?,
        CString::new(device).map_err(nul)?,
        CString::new(args).map_err(nul)?,
    );
    // SAFETY: three valid NUL-terminated strings that outlive the call; the
    // EAL is initialised (a Port id is only asked for afterwards) and this
    // runs on the main thread, which DPDK's hotplug expects.
    let rc = unsafe { dpdk_sys::rte_eal_hotplug_add(bus.as_ptr(), dev.as_ptr(), args.as_ptr()) };
    if rc != 0 {
        return Err(DpdkError::from_code(
            format!("{op}: rte_eal_hotplug_add (is the net_tap driver there, and /dev/net/tun?)"),
            rc,
        ));
    }
    super::Port::id_by_name(device)
}
