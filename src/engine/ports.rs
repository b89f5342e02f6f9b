//! The ports: configured from the config, started once the workers are
//! ready, described at start and summed up at the end.

use crate::config::Config;
use crate::datapath::forwarding::PortFacts;
use crate::dpdk::{Mempool, Port, PortSetup};

/// Configures every port of the config, with rx rings from `pool` and one tx
/// queue per worker; they are started by [`start`] once the workers are
/// ready, so that a port's link never comes up before mplb forwards (zeroing
/// large flow tables takes a while).
pub(super) fn configure(
    config: &Config,
    pool: &Mempool,
    workers: usize,
) -> Result<Vec<Port>, String> {
    let tx_queues = u16::try_from(workers).map_err(|_| "too many workers".to_string())?;
    let mut ports = Vec::with_capacity(config.ports.len());
    for (i, pc) in config.ports.iter().enumerate() {
        let id = Port::id_by_name(&pc.device).map_err(|e| e.to_string())?;
        let setup = PortSetup {
            rx_queues: config.rx_queues(i),
            tx_queues,
            rx_descriptors: pc.rx_descriptors,
            tx_descriptors: pc.tx_descriptors,
            mtu: pc.mtu,
            promiscuous: pc.promiscuous,
        };
        let port = Port::configure(id, &setup, pool)
            .map_err(|e| format!("port {} ({}): {e}", pc.name, pc.device))?;
        ports.push(port);
    }
    Ok(ports)
}

/// What the control plane needs to know of each port.
pub(super) fn facts(ports: &[Port]) -> Vec<PortFacts> {
    ports
        .iter()
        .map(|p| PortFacts {
            mac: p.mac(),
            mtu: p.mtu(),
        })
        .collect()
}

/// Starts every port (the link comes up) and prints what it is.
pub(super) fn start(ports: &[Port]) -> Result<(), String> {
    for p in ports {
        p.start_traffic().map_err(|e| e.to_string())?;
        say!("{}", describe(p));
    }
    Ok(())
}

fn describe(p: &Port) -> String {
    let m = p.mac();
    let link = p.link();
    format!(
        "port {} (id {}, driver {}): mac {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}, rx queues {}, tx queues {}, rss {}, mtu {}, link {}",
        p.name(),
        p.id(),
        p.driver(),
        m[0],
        m[1],
        m[2],
        m[3],
        m[4],
        m[5],
        p.rx_queues(),
        p.tx_queues(),
        if p.rss_enabled() { "on" } else { "off" },
        p.mtu(),
        if link.up {
            format!("up {} Mb/s", link.speed_mbps)
        } else {
            "down".to_string()
        }
    )
}

/// Prints each port's counters, and its non-zero extended counters.
pub(super) fn print_stats(ports: &[Port]) {
    for p in ports {
        let s = p.stats();
        say!(
            "port {}: rx {} tx {} missed {} rx-errors {} tx-errors {} no-mbuf {}",
            p.name(),
            s.rx_packets,
            s.tx_packets,
            s.rx_missed,
            s.rx_errors,
            s.tx_errors,
            s.rx_nombuf
        );
        let xstats: Vec<String> = p
            .xstats()
            .into_iter()
            .filter(|(_, v)| *v != 0)
            .map(|(n, v)| format!("{n}={v}"))
            .collect();
        if !xstats.is_empty() {
            say!("port {} xstats: {}", p.name(), xstats.join(" "));
        }
    }
}
