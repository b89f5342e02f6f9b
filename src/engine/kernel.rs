//! The exception path's kernel interfaces: one `net_tap` per port with
//! `kernel_interface`, made once the data port is configured (it takes that
//! port's MAC), with one queue pair per worker from the same mempool. Once
//! started, the interface gets the port's addresses (with their prefix
//! lengths) and MTU from `ip`. The workers hand it the host's own traffic
//! and send what the kernel sends out of the data port (see
//! [`super::worker`]). It disappears with mplb: net_tap's interfaces are
//! not persistent, so when the process ends, however it ends, so do BGP
//! and BFD sessions over it, and the router withdraws the routes.

use std::net::IpAddr;
use std::process::Command;

use crate::config::{Config, PortConfig};
use crate::dpdk::{Mempool, Port, PortSetup, create_tap};

/// The largest frame one mbuf of the pool holds (its data room): the kernel
/// interface's MTU is kept within it (less the Ethernet header and a VLAN
/// tag), since net_tap receives without scatter. TCP over it (BGP, SSH)
/// then uses segments that fit; the data port's own MTU is unchanged.
const ONE_MBUF: u16 = 2048;
const KERNEL_MTU_MAX: u16 = ONE_MBUF - 18;
/// net_tap reads a frame into this many mbufs chained (its rx
/// "descriptors" are the segments of one frame, each allocated up front):
/// one, as the MTU fits one mbuf.
const TAP_RX_SEGMENTS: u16 = 1;
/// net_tap sends with one `write` per frame; its tx ring size is nominal.
const TAP_TX_DESCRIPTORS: u16 = 64;

/// For each port of the config, its kernel interface's port if it has one.
/// `ports` are the configured data ports, in config order.
pub(super) fn configure(
    config: &Config,
    ports: &[Port],
    pool: &Mempool,
    workers: usize,
) -> Result<Vec<Option<Port>>, String> {
    let queues = u16::try_from(workers).map_err(|_| "too many workers".to_string())?;
    let mut taps = Vec::with_capacity(ports.len());
    for (i, (pc, data)) in config.ports.iter().zip(ports).enumerate() {
        let Some(iface) = &pc.kernel_interface else {
            taps.push(None);
            continue;
        };
        let what = || format!("port {}: kernel interface {iface}", pc.name);
        if std::path::Path::new("/sys/class/net").join(iface).exists() {
            return Err(format!(
                "{}: an interface of that name already exists on this host (in this network namespace)",
                what()
            ));
        }
        let id = create_tap(&format!("net_tap_mplb{i}"), iface, data.mac())
            .map_err(|e| format!("{}: {e}", what()))?;
        let setup = PortSetup {
            rx_queues: queues,
            tx_queues: queues,
            rx_descriptors: TAP_RX_SEGMENTS,
            tx_descriptors: TAP_TX_DESCRIPTORS,
            mtu: None,
            promiscuous: false,
        };
        let tap = Port::configure(id, &setup, pool).map_err(|e| format!("{}: {e}", what()))?;
        taps.push(Some(tap));
    }
    Ok(taps)
}

/// Starts each kernel interface (net_tap brings it up) and gives it its
/// port's addresses and MTU.
pub(super) fn start(config: &Config, ports: &[Port], taps: &[Option<Port>]) -> Result<(), String> {
    for ((pc, data), tap) in config.ports.iter().zip(ports).zip(taps) {
        let (Some(tap), Some(iface)) = (tap, &pc.kernel_interface) else {
            continue;
        };
        tap.start_traffic().map_err(|e| e.to_string())?;
        let mtu = data.mtu().min(KERNEL_MTU_MAX);
        ip(&["link", "set", "dev", iface, "mtu", &mtu.to_string(), "up"])?;
        for args in address_commands(pc, iface) {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            ip(&args)?;
        }
        say!(
            "port {}: kernel interface {iface} ({}), mtu {mtu}, addresses {}",
            pc.name,
            tap.name(),
            if pc.prefixes.is_empty() {
                "none".to_string()
            } else {
                let a: Vec<String> = pc
                    .prefixes
                    .iter()
                    .map(|(a, l)| format!("{a}/{l}"))
                    .collect();
                a.join(" ")
            }
        );
    }
    Ok(())
}

/// `ip address add` for each of the port's addresses. IPv6 ones skip
/// duplicate address detection: the datapath already answers for them on
/// the wire, so waiting for DAD would only delay the interface.
fn address_commands(pc: &PortConfig, iface: &str) -> Vec<Vec<String>> {
    pc.prefixes
        .iter()
        .map(|(a, len)| {
            let mut c: Vec<String> = ["address", "add", &format!("{a}/{len}"), "dev", iface]
                .map(String::from)
                .to_vec();
            if matches!(a, IpAddr::V6(_)) {
                c.push("nodad".into());
            }
            c
        })
        .collect()
}

/// Runs `ip ARGS`; its error output in the error.
fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip").args(args).output().map_err(|e| {
        format!(
            "running `ip {}`: {e} (is iproute2 installed?)",
            args.join(" ")
        )
    })?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "`ip {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_keep_their_prefixes_and_ipv6_skips_dad() {
        let text = "[dpdk]\neal_args = []\n[workers]\nlcores = [1]\n\
                    [[port]]\nname = \"lan\"\ndevice = \"net_null0\"\n\
                    ipv4 = [\"198.18.1.21/24\", \"198.18.2.1\"]\nipv6 = [\"fd00:1::21/64\"]\n\
                    kernel_interface = \"mplb0\"\n";
        let c = Config::parse(text, std::path::Path::new("t.toml")).expect("valid");
        let cmds = address_commands(&c.ports[0], "mplb0");
        let lines: Vec<String> = cmds.iter().map(|c| c.join(" ")).collect();
        assert_eq!(
            lines,
            [
                "address add 198.18.1.21/24 dev mplb0",
                "address add 198.18.2.1/32 dev mplb0",
                "address add fd00:1::21/64 dev mplb0 nodad",
            ]
        );
    }
}
