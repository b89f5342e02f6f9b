//! Which VIPs this instance announces, from the forwarding snapshot the
//! workers use (health, operator overrides and learnt MACs already folded
//! into each backend's state) and the instance's own state. No I/O.

use std::collections::BTreeSet;
use std::net::IpAddr;

use crate::datapath::forwarding::{BackendState, Forwarding};

/// Why a VIP is announced or not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Announce,
    /// Ports not started or no snapshot published yet.
    NotForwarding,
    /// A worker has stopped polling (see `manager::liveness`): this
    /// instance may be dropping its share of the traffic.
    WorkerStalled,
    /// `mplb drain` ran: every VIP is withdrawn.
    Draining,
    /// The first health checks of the backends at start have not all
    /// given their verdict: a backend is taken as up until checked, which
    /// is right for forwarding at once, not for attracting a fleet's
    /// traffic.
    HealthPending,
    /// No backend is active (healthy, not drained or disabled by the
    /// operator, MAC known) with a weight above 0.
    NoHealthyBackend,
}

impl Verdict {
    /// The words `stats` and the log use.
    pub fn reason(self) -> &'static str {
        match self {
            Verdict::Announce => "announced",
            Verdict::NotForwarding => "not forwarding yet",
            Verdict::WorkerStalled => "a worker stopped polling",
            Verdict::Draining => "draining",
            Verdict::HealthPending => "first health checks pending",
            Verdict::NoHealthyBackend => "no healthy backend",
        }
    }
}

/// One VIP's verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VipVerdict {
    pub name: String,
    pub address: IpAddr,
    pub verdict: Verdict,
}

/// The instance's state the decision depends on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Instance {
    /// Ports started and the first snapshot published.
    pub forwarding: bool,
    /// Every worker polls (none stalled).
    pub workers_polling: bool,
    pub draining: bool,
    /// The first verdicts on the backends at start are in.
    pub health_settled: bool,
}

/// Each VIP of `fwd`, in its order, with its verdict.
pub fn decide(fwd: &Forwarding, instance: Instance) -> Vec<VipVerdict> {
    fwd.vips
        .iter()
        .map(|v| {
            let serving = v.backends.iter().any(|&id| {
                fwd.backend(id)
                    .is_some_and(|b| b.state == BackendState::Active && b.weight > 0)
            });
            let verdict = if !instance.forwarding {
                Verdict::NotForwarding
            } else if !instance.workers_polling {
                Verdict::WorkerStalled
            } else if instance.draining {
                Verdict::Draining
            } else if !instance.health_settled {
                Verdict::HealthPending
            } else if !serving {
                Verdict::NoHealthyBackend
            } else {
                Verdict::Announce
            };
            VipVerdict {
                name: v.name.clone(),
                address: v.addr,
                verdict,
            }
        })
        .collect()
}

/// The addresses to announce: those of the VIPs announced (several VIPs
/// on one address, other ports or protocols: any one of them is enough).
pub fn addresses(verdicts: &[VipVerdict]) -> BTreeSet<IpAddr> {
    verdicts
        .iter()
        .filter(|v| v.verdict == Verdict::Announce)
        .map(|v| v.address)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::control::build_forwarding;
    use crate::datapath::forwarding::BackendState::{Active, Down};
    use crate::testing::config::{Backend, Vip, null_port};

    /// Two VIPs on one address (ports 80 and 443) and one on another, each
    /// with two backends; `states`: the six backends' states in that order,
    /// `weights` likewise (set in the snapshot: the config needs a
    /// weighted backend per VIP).
    fn snapshot(states: [BackendState; 6], weights: [u32; 6]) -> Forwarding {
        let vip = |name: &str, addr: &str, port: u16, first: usize| {
            let mut v = Vip::new(name, addr, port).option("table_size", 251);
            for i in first..first + 2 {
                let own = if addr.contains(':') {
                    format!("fd00::1:{}", 10 + i)
                } else {
                    format!("198.18.1.{}", 10 + i)
                };
                v = v.backend(
                    Backend::new(format!("b{i}"), own)
                        .mac(format!("02:00:00:00:01:{:02x}", 10 + i)),
                );
            }
            v.to_string()
        };
        let text = null_port("")
            + &vip("web", "198.18.0.10", 80, 0)
            + &vip("tls", "198.18.0.10", 443, 2)
            + &vip("v6", "fd00::10", 80, 4);
        let config = Config::parse(&text, std::path::Path::new("t.toml")).expect("valid");
        let mut ids = crate::control::StableIds::default();
        let mut fwd = build_forwarding(&config, &[[2, 0, 0, 0, 0, 1]], &mut ids).expect("builds");
        for b in fwd.backends.iter_mut().flatten() {
            let i: usize = b.name[1..].parse().expect("b<i>");
            b.state = states[i];
            b.weight = weights[i];
        }
        fwd
    }

    const UP: Instance = Instance {
        forwarding: true,
        workers_polling: true,
        draining: false,
        health_settled: true,
    };

    fn verdicts(fwd: &Forwarding, instance: Instance) -> Vec<(String, Verdict)> {
        decide(fwd, instance)
            .into_iter()
            .map(|v| (v.name, v.verdict))
            .collect()
    }

    #[test]
    fn each_case_of_the_rule() {
        use Verdict::*;
        let all_up = snapshot([Active; 6], [1; 6]);
        let cases: [(&str, Forwarding, Instance, [Verdict; 3]); 8] = [
            ("all up", all_up.clone(), UP, [Announce; 3]),
            (
                "not forwarding yet",
                all_up.clone(),
                Instance {
                    forwarding: false,
                    ..UP
                },
                [NotForwarding; 3],
            ),
            (
                "a worker stopped polling",
                all_up.clone(),
                Instance {
                    workers_polling: false,
                    ..UP
                },
                [WorkerStalled; 3],
            ),
            (
                "draining",
                all_up.clone(),
                Instance {
                    draining: true,
                    ..UP
                },
                [Draining; 3],
            ),
            (
                "one of two down is enough",
                snapshot([Down, Active, Active, Down, Active, Active], [1; 6]),
                UP,
                [Announce; 3],
            ),
            (
                "both down",
                snapshot([Down, Down, Active, Active, Active, Active], [1; 6]),
                UP,
                [NoHealthyBackend, Announce, Announce],
            ),
            (
                "drained by the operator does not count",
                snapshot(
                    [
                        BackendState::Draining,
                        Down,
                        Active,
                        Active,
                        BackendState::Draining,
                        BackendState::Draining,
                    ],
                    [1; 6],
                ),
                UP,
                [NoHealthyBackend, Announce, NoHealthyBackend],
            ),
            (
                "weight 0 does not count",
                snapshot([Active; 6], [0, 1, 1, 1, 0, 0]),
                UP,
                [Announce, Announce, NoHealthyBackend],
            ),
        ];
        for (what, fwd, instance, want) in cases {
            let got: Vec<Verdict> = verdicts(&fwd, instance).into_iter().map(|v| v.1).collect();
            assert_eq!(got, want, "{what}");
        }
    }

    #[test]
    fn an_address_is_announced_if_any_of_its_vips_qualifies() {
        let fwd = snapshot([Down, Down, Active, Active, Down, Down], [1; 6]);
        let d = decide(&fwd, UP);
        let want: BTreeSet<IpAddr> = ["198.18.0.10".parse().expect("addr")].into();
        assert_eq!(addresses(&d), want, "web is down but tls keeps the address");
        let none = snapshot([Down; 6], [1; 6]);
        assert!(addresses(&decide(&none, UP)).is_empty());
        assert!(
            addresses(&decide(
                &fwd,
                Instance {
                    draining: true,
                    ..UP
                }
            ))
            .is_empty()
        );
    }
}
