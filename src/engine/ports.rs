//! The ports: configured from the config, started once the workers are
//! ready, described at start and summed up at the end.

use crate::config::Config;
use crate::control::metrics::{DeviceMetrics, DeviceProbe, PortMetrics};
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

/// What the metrics page reads from DPDK: the pool's fill and each port's
/// counters, under the port's name in the config.
pub(super) fn device_probe(config: &Config, ports: &[Port], pool: &Mempool) -> DeviceProbe {
    let pool = pool.clone();
    let readers: Vec<(String, _)> = (config.ports.iter())
        .zip(ports)
        .map(|(pc, p)| (pc.name.clone(), p.stats_reader()))
        .collect();
    Box::new(move || DeviceMetrics {
        mempool_in_use: u64::from(pool.in_use()),
        mempool_size: u64::from(pool.capacity()),
        ports: readers
            .iter()
            .map(|(name, r)| {
                let s = r.stats();
                PortMetrics {
                    name: name.clone(),
                    rx_packets: s.rx_packets,
                    tx_packets: s.tx_packets,
                    rx_missed: s.rx_missed,
                    rx_nombuf: s.rx_nombuf,
                    rx_errors: s.rx_errors,
                    tx_errors: s.tx_errors,
                }
            })
            .collect(),
    })
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
pub(super) fn print_stats<'a>(ports: impl IntoIterator<Item = &'a Port>) {
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
