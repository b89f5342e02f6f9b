//! Builds a [`Forwarding`] snapshot from the config.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::config::{BackendStateConfig, Config, VipForwarding, VipProtocol};
use crate::datapath::flow_table::{FlowTableConfig, FlowTimeouts};
use crate::datapath::forwarding::{
    Backend, BackendState, Encap, Forwarding, ForwardingMode, Interface, PortFacts, Protocol, Vip,
};
use crate::datapath::maglev::{BackendId, MaglevBackend, MaglevTable};

/// Stable small ids by name, across reloads: a name keeps its id as long as
/// it is configured, because datapath state (flow-table and token-table
/// entries, traffic counters) stores ids. A new name takes the next id after
/// the last one handed out (wrapping, skipping ids in use), so a removed
/// name's id is not given to a new one at once, and entries pinned to the old
/// one expire first.
#[derive(Debug, Default, Clone)]
struct NameIds {
    by_name: BTreeMap<String, u16>,
    /// The ids in `by_name`, to find a free one without a scan.
    used: HashSet<u16>,
    next: u16,
}

impl NameIds {
    fn id_for(&mut self, name: &str) -> Option<u16> {
        if let Some(id) = self.by_name.get(name) {
            return Some(*id);
        }
        if self.by_name.len() > usize::from(u16::MAX) {
            return None;
        }
        let mut candidate = self.next;
        while self.used.contains(&candidate) {
            candidate = candidate.wrapping_add(1);
        }
        self.next = candidate.wrapping_add(1);
        self.by_name.insert(name.to_string(), candidate);
        self.used.insert(candidate);
        Some(candidate)
    }

    /// Forgets names that are no longer configured.
    fn retain(&mut self, names: &[&str]) {
        let names: HashSet<&str> = names.iter().copied().collect();
        let used = &mut self.used;
        self.by_name.retain(|n, id| {
            let keep = names.contains(n.as_str());
            if !keep {
                used.remove(id);
            }
            keep
        });
    }
}

/// What a Maglev table is a function of: its size and its active backends
/// (id, name, weight) in config order. The id is there because the table
/// stores it; the name because the permutation is keyed by it (an id freed
/// by one name may later go to another).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct TableKey {
    size: u32,
    backends: Vec<(u16, String, u32)>,
}

/// The stable ids of backends and VIPs; one per running instance, kept by
/// the management thread across reloads. Also keeps the last build's Maglev
/// tables: a rebuild (a health change, an operator command, a reload) builds
/// only the tables whose inputs changed and shares the others, so that with
/// thousands of VIPs it takes milliseconds, not the seconds a full build
/// takes (bench/README.md, "Many VIPs").
#[derive(Debug, Default, Clone)]
pub struct StableIds {
    backends: NameIds,
    vips: NameIds,
    tables: HashMap<TableKey, MaglevTable>,
}

impl StableIds {
    /// The id of a configured backend.
    pub fn get(&self, name: &str) -> Option<BackendId> {
        self.backends.by_name.get(name).copied().map(BackendId)
    }
}

/// An active backend, as a Maglev table's input.
struct TableInput<'c> {
    id: BackendId,
    name: &'c str,
    weight: u32,
}

/// The forwarding snapshot for `config`, with the ports' MACs and MTUs (by
/// port index; a bare MAC means the MTU the config gives, else 1500), every
/// backend in the state its config gives.
pub fn build_forwarding<P: Copy + Into<PortFacts>>(
    config: &Config,
    ports: &[P],
    ids: &mut StableIds,
) -> Result<Forwarding, String> {
    build_forwarding_with(config, ports, ids, &|_, configured| configured)
}

/// [`build_forwarding`] where `state(name, configured)` decides each
/// backend's state: the management thread folds in health and operator
/// commands (drain, disable) here. Only `Active` backends enter the Maglev
/// tables.
pub fn build_forwarding_with<P: Copy + Into<PortFacts>>(
    config: &Config,
    ports: &[P],
    ids: &mut StableIds,
    state: &dyn Fn(&str, BackendState) -> BackendState,
) -> Result<Forwarding, String> {
    let interfaces = config
        .ports
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let facts: PortFacts = ports.get(i).map_or([0; 6].into(), |&f| f.into());
            Interface {
                mac: facts.mac,
                ipv4: p.ipv4.clone(),
                ipv6: p.ipv6.clone(),
                gateway_mac: p.gateway_mac.map(|m| m.0),
                // The engine's facts already hold a configured MTU.
                mtu: p.mtu.unwrap_or(facts.mtu),
                kernel: p.kernel_interface.is_some(),
            }
        })
        .collect();

    let names: Vec<&str> = config
        .vips
        .iter()
        .flat_map(|v| v.backends.iter().map(|b| b.name.as_str()))
        .collect();
    ids.backends.retain(&names);
    let vip_names: Vec<&str> = config.vips.iter().map(|v| v.name.as_str()).collect();
    ids.vips.retain(&vip_names);

    let mut backends: Vec<Option<Backend>> = Vec::new();
    let mut vips = Vec::with_capacity(config.vips.len());
    let mut tables: HashMap<TableKey, MaglevTable> = HashMap::new();
    for v in &config.vips {
        let mut members = Vec::with_capacity(v.backends.len());
        let mut table_input = Vec::with_capacity(v.backends.len());
        for b in &v.backends {
            let name = &b.name;
            let id = BackendId(
                ids.backends
                    .id_for(name)
                    .ok_or("more than 65536 backends")?,
            );
            let configured = match b.state {
                BackendStateConfig::Active => BackendState::Active,
                BackendStateConfig::Draining => BackendState::Draining,
                BackendStateConfig::Disabled => BackendState::Down,
            };
            let state = state(name, configured);
            let slot = usize::from(id.0);
            if backends.len() <= slot {
                backends.resize(slot + 1, None);
            }
            backends[slot] = Some(Backend {
                id,
                name: name.clone(),
                addr: b.address,
                mac: b.mac.map(|m| m.0),
                weight: b.weight,
                state,
            });
            members.push(id);
            if state == BackendState::Active {
                // The permutation is keyed by the name: stable across
                // restarts and across independent load balancers.
                table_input.push(TableInput {
                    id,
                    name,
                    weight: b.weight,
                });
            }
        }
        let key = TableKey {
            size: v.table_size,
            backends: table_input
                .iter()
                .map(|b| (b.id.0, b.name.to_string(), b.weight))
                .collect(),
        };
        let maglev = match tables.get(&key).or_else(|| ids.tables.get(&key)) {
            Some(t) => t.clone(),
            None => {
                let input: Vec<MaglevBackend> = table_input
                    .iter()
                    .map(|b| MaglevBackend::new(b.id, b.name.as_bytes(), b.weight))
                    .collect();
                MaglevTable::build(v.table_size, &input)
                    .map_err(|e| format!("vip {}: {e}", v.name))?
            }
        };
        tables.insert(key, maglev.clone());
        let id = ids.vips.id_for(&v.name).ok_or("more than 65536 VIPs")?;
        vips.push(Vip {
            id,
            name: v.name.clone(),
            addr: v.address,
            port: v.port,
            protocol: match v.protocol {
                VipProtocol::Tcp => Protocol::Tcp,
                VipProtocol::Udp => Protocol::Udp,
            },
            mode: match v.forwarding {
                VipForwarding::L2Dsr => ForwardingMode::L2Dsr,
                VipForwarding::Ipip => ForwardingMode::Ipip,
            },
            mptcp_tracking: v.mptcp_tracking,
            token_routing: v.token_routing,
            announce_backend_address: v.announce_backend_address && v.mptcp_tracking,
            backends: members,
            // Filled by `Forwarding::new`.
            members: Default::default(),
            maglev,
        });
    }
    // Only this build's tables are kept: a table no VIP uses any more is
    // freed with the last snapshot holding it.
    ids.tables = tables;
    Ok(Forwarding::new(
        interfaces,
        vips,
        backends,
        Encap {
            source_v4: config.encap.source_v4,
            source_v6: config.encap.source_v6,
            ttl: config.encap.ttl,
        },
    )
    .with_hash(config.datapath.hash_version))
}

/// Flow-table parameters and token-table (capacity, ttl ns) from the config.
pub fn datapath_tables(config: &Config) -> (FlowTableConfig, usize, u64) {
    const S: u64 = 1_000_000_000;
    let f = &config.flow_table;
    let flow = FlowTableConfig {
        capacity: f.capacity,
        timeouts: FlowTimeouts {
            untrusted: f.untrusted_timeout_secs.saturating_mul(S),
            established: f.established_timeout_secs.saturating_mul(S),
            fin: f.fin_timeout_secs.saturating_mul(S),
            rst: f.rst_timeout_secs.saturating_mul(S),
        },
        untrusted_quota_pct: f.untrusted_quota_pct,
    };
    let t = &config.token_table;
    (flow, t.capacity, t.ttl_secs.saturating_mul(S))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::config::{Backend, Vip, null_port, without_backend};
    use std::path::Path;

    /// No started ports: every interface gets a zero MAC.
    const NO_PORTS: &[PortFacts] = &[];

    /// VIP `web` with `b`, `a` (weight 2) and `c` (draining); `b` has a MAC
    /// only when `b_mac`.
    fn config_text(b_mac: bool) -> String {
        let mut b = Backend::new("b", "198.18.1.12");
        if b_mac {
            b = b.mac("02:00:00:00:01:12");
        }
        let vip = Vip::web()
            .option("table_size", 251)
            .backend(b)
            .backend(
                Backend::new("a", "198.18.1.11")
                    .mac("02:00:00:00:01:11")
                    .weight(2),
            )
            .backend(
                Backend::new("c", "198.18.1.13")
                    .mac("02:00:00:00:01:13")
                    .state("draining"),
            );
        null_port("") + &vip.to_string()
    }

    fn parse(text: &str) -> Config {
        Config::parse(text, Path::new("t.toml")).expect("valid")
    }

    #[test]
    fn interface_mtu_from_the_config_else_the_port_else_1500() {
        let config = parse(&config_text(true));
        let mut ids = StableIds::default();
        let mtu = |f: Forwarding| f.interfaces[0].mtu;
        let facts = PortFacts {
            mac: [2, 0, 0, 0, 0, 1],
            mtu: 9000,
        };
        assert_eq!(
            mtu(build_forwarding(&config, &[facts], &mut ids).unwrap()),
            9000
        );
        assert_eq!(
            mtu(build_forwarding(&config, &[[2, 0, 0, 0, 0, 1]], &mut ids).unwrap()),
            1500
        );
        let text = config_text(true).replace(
            "device = \"net_null0\"",
            "device = \"net_null0\"\nmtu = 1400",
        );
        let config = parse(&text);
        assert_eq!(
            mtu(build_forwarding(&config, &[facts], &mut ids).unwrap()),
            1400
        );
    }

    #[test]
    fn builds_vips_backends_and_tables() {
        let config = parse(&config_text(true));
        let mut ids = StableIds::default();
        let f = build_forwarding(&config, &[[2, 0, 0, 0, 0, 1]], &mut ids).expect("builds");
        assert_eq!(f.interfaces[0].mac, [2, 0, 0, 0, 0, 1]);
        let vip = f
            .vip("198.18.0.10".parse().unwrap(), 80, Protocol::Tcp)
            .expect("vip");
        assert_eq!(vip.backends.len(), 3);
        assert_eq!(vip.mode, ForwardingMode::L2Dsr);
        // Both MPTCP options are on by default.
        assert!(vip.token_routing && vip.mptcp_tracking);
        // The draining backend is out of the table; weights are honoured.
        let shares = vip.maglev.shares();
        let share = |n: &str| {
            let id = f
                .backends
                .iter()
                .flatten()
                .find(|b| b.name == n)
                .expect("backend")
                .id;
            shares.iter().find(|(i, _)| *i == id).map_or(0, |(_, s)| *s)
        };
        assert_eq!(share("c"), 0);
        assert!(share("a") > share("b") * 19 / 10, "weight 2 vs 1");
        assert!(
            f.vip("198.18.0.10".parse().unwrap(), 81, Protocol::Tcp)
                .is_none()
        );
        assert!(f.is_vip_addr("198.18.0.10".parse().unwrap()));
    }

    #[test]
    fn backend_ids_are_stable_across_rebuilds() {
        let config = parse(&config_text(true));
        let mut ids = StableIds::default();
        let f1 = build_forwarding(&config, NO_PORTS, &mut ids).expect("builds");
        // Remove backend "b": "a" and "c" keep their ids.
        let config2 = parse(&without_backend(&config_text(true), "b"));
        let f2 = build_forwarding(&config2, NO_PORTS, &mut ids).expect("builds");
        for name in ["a", "c"] {
            let id = |f: &Forwarding| {
                f.backends
                    .iter()
                    .flatten()
                    .find(|b| b.name == name)
                    .map(|b| b.id)
            };
            assert_eq!(id(&f1), id(&f2), "{name} kept its id");
        }
        assert_eq!(f2.backends.iter().flatten().count(), 2);
        // Adding a backend back does not reuse the removed one's id at once.
        let f3 = build_forwarding(&config, NO_PORTS, &mut ids).expect("builds");
        let id = |f: &Forwarding, n: &str| {
            f.backends
                .iter()
                .flatten()
                .find(|b| b.name == n)
                .map(|b| b.id)
        };
        assert_ne!(id(&f3, "b"), id(&f1, "b"));
    }

    #[test]
    fn state_hook_takes_backends_out_of_the_table() {
        let config = parse(&config_text(true));
        let mut ids = StableIds::default();
        let f = build_forwarding_with(&config, NO_PORTS, &mut ids, &|name, s| {
            if name == "a" { BackendState::Down } else { s }
        })
        .expect("builds");
        let a = ids.get("a").expect("id");
        assert_eq!(f.backend(a).map(|b| b.state), Some(BackendState::Down));
        let vip = &f.vips[0];
        assert!(
            vip.maglev
                .shares()
                .iter()
                .all(|(id, n)| *id != a || *n == 0)
        );
    }

    #[test]
    fn a_rebuild_shares_the_tables_whose_backends_did_not_change() {
        // web and web2 have the same backends; api has its own.
        let api = Vip::new("api", "198.18.0.11", 80)
            .option("table_size", 251)
            .backend(Backend::new("x", "198.18.1.21").mac("02:00:00:00:01:21"));
        let web2 = Vip::new("web2", "198.18.0.10", 81)
            .option("table_size", 251)
            .backend(Backend::new("a", "198.18.1.11").mac("02:00:00:00:01:11"))
            .backend(Backend::new("b", "198.18.1.12").mac("02:00:00:00:01:12"));
        let text =
            null_port("") + &Vip::web_a_b().to_string() + &web2.to_string() + &api.to_string();
        let config = parse(&text);
        let mut ids = StableIds::default();
        let f1 = build_forwarding(&config, NO_PORTS, &mut ids).expect("builds");
        let table = |f: &Forwarding, name: &str| {
            f.vips
                .iter()
                .find(|v| v.name == name)
                .expect("vip")
                .maglev
                .clone()
        };
        assert!(
            table(&f1, "web").same(&table(&f1, "web2")),
            "same backends, one table"
        );
        // A backend of web goes down: web's and web2's tables are rebuilt
        // (and equal a build from scratch), api's is the one built before.
        let f2 = build_forwarding_with(&config, NO_PORTS, &mut ids, &|name, s| {
            if name == "a" { BackendState::Down } else { s }
        })
        .expect("builds");
        assert!(table(&f1, "api").same(&table(&f2, "api")));
        assert!(!table(&f1, "web").same(&table(&f2, "web")));
        let b = ids.get("b").expect("b");
        let only_b = MaglevTable::build(251, &[MaglevBackend::new(b, "b", 1)]).expect("table");
        assert_eq!(table(&f2, "web"), only_b);
        // Back up: the same table as the first build's, built again (only
        // the last build's tables are kept).
        let f3 = build_forwarding(&config, NO_PORTS, &mut ids).expect("builds");
        assert_eq!(table(&f3, "web"), table(&f1, "web"));
        assert!(!table(&f3, "web").same(&table(&f1, "web")));
        assert!(table(&f3, "api").same(&table(&f1, "api")));
    }

    #[test]
    fn every_one_of_65535_backends_gets_its_own_id() {
        let mut ids = NameIds::default();
        let names: Vec<String> = (0..65535).map(|i| format!("b{i}")).collect();
        let mut got: Vec<u16> = names.iter().map(|n| ids.id_for(n).expect("id")).collect();
        got.sort_unstable();
        got.dedup();
        assert_eq!(got.len(), 65535);
        // Half of them go; the others keep their ids; new names get free ones.
        let kept: Vec<&str> = names.iter().step_by(2).map(String::as_str).collect();
        let before: Vec<u16> = kept.iter().map(|n| ids.id_for(n).expect("id")).collect();
        ids.retain(&kept);
        let after: Vec<u16> = kept.iter().map(|n| ids.id_for(n).expect("id")).collect();
        assert_eq!(before, after);
        let fresh = ids.id_for("new").expect("a free id");
        assert!(!after.contains(&fresh));
    }

    #[test]
    fn a_learnt_mac_needs_an_address_of_its_family_on_the_port() {
        // null_port owns 198.18.0.1: an IPv4 backend without `mac` is learnt.
        parse(&config_text(false));
        let v6 = null_port("")
            + &Vip::new("web6", "fd00::10", 80)
                .backend(Backend::new("b", "fd00:1::12"))
                .to_string();
        let e = Config::parse(&v6, Path::new("t.toml")).expect_err("no IPv6 on the port");
        assert_eq!(e.field, "vip[0].backend[0].mac", "{e}");
        let name_line = v6.lines().position(|l| l == "  name = \"b\"").expect("b") + 1;
        assert_eq!(e.line, name_line, "{e}");
        assert!(
            e.to_string()
                .contains("neighbour discovery on port `lan` (port[0])")
                && e.to_string().contains("port[0].ipv6"),
            "{e}"
        );
        // With a static MAC, or an IPv6 address on the port, it is fine.
        parse(&v6.replace(
            "  address = \"fd00:1::12\"",
            "  address = \"fd00:1::12\"\n  mac = \"02:00:00:00:01:12\"",
        ));
        parse(&v6.replace(
            "ipv4 = [\"198.18.0.1\"]",
            "ipv4 = [\"198.18.0.1\"]\nipv6 = [\"fd00::1\"]",
        ));
        // IP-in-IP through a gateway needs nothing learnt.
        let ipip = v6.replace("port = 80", "port = 80\nforwarding = \"ipip\"");
        assert!(
            Config::parse(&ipip, Path::new("t.toml")).is_err(),
            "on-link: learnt"
        );
        parse(&ipip.replace(
            "ipv4 = [\"198.18.0.1\"]",
            "ipv4 = [\"198.18.0.1\"]\ngateway_mac = \"02:00:00:00:00:fe\"",
        ));
    }
}
