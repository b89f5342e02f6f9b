//! Configs of many VIPs and backends, generated at run time (a 10 000-VIP
//! file is megabytes: not one to check in): for the scale tests and the
//! snapshot-build benchmark.
//!
//! VIP `i` sits on address `i / vips_per_addr` — IPv4 in 198.19.0.0/16 for
//! even addresses, IPv6 in fd00:5::/64 for odd ones — port `80 + k` for
//! `k = i % vips_per_addr`, TCP when `k` is even, UDP when odd; it is L2 DSR
//! with `backends_per_vip` backends taken in turn from a pool of
//! `distinct_backends` (so each serves several VIPs, as a server does in
//! a large deployment). Backend `j` is `be{j}`, 198.18.128.0/17 for the
//! first 32768, fd00:be::/64 after, MAC 02:be:…:j.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::config::{Backend, Vip, null_port};
use crate::datapath::forwarding::Protocol;

/// The shape of a generated config.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scale {
    pub vips: usize,
    pub backends_per_vip: usize,
    pub distinct_backends: usize,
    /// Every VIP's Maglev table size (a prime).
    pub table_size: u32,
    pub vips_per_addr: usize,
}

impl Scale {
    /// Issue #15's: 10 000 VIPs, 100 000 backends (10 per VIP, from 50 000
    /// servers), two VIPs per address, tables of 1021 (a prime over 100 x
    /// 10 backends).
    pub const ISSUE_15: Scale = Scale {
        vips: 10_000,
        backends_per_vip: 10,
        distinct_backends: 50_000,
        table_size: 1021,
        vips_per_addr: 2,
    };

    /// VIP `i`'s name.
    pub fn vip_name(&self, i: usize) -> String {
        format!("vip{i}")
    }

    /// VIP `i`'s address, port and protocol.
    pub fn vip(&self, i: usize) -> (IpAddr, u16, Protocol) {
        let a = i / self.vips_per_addr.max(1);
        let k = i % self.vips_per_addr.max(1);
        assert!(
            a < 1 << 17 && k < 1000,
            "too many VIPs for the address plan"
        );
        let addr = if a % 2 == 0 {
            IpAddr::V4(Ipv4Addr::new(198, 19, (a >> 9) as u8, (a >> 1) as u8))
        } else {
            IpAddr::V6(Ipv6Addr::new(0xfd00, 5, 0, 0, 0, 0, 0, (a >> 1) as u16))
        };
        let protocol = if k % 2 == 0 {
            Protocol::Tcp
        } else {
            Protocol::Udp
        };
        (addr, 80 + k as u16, protocol)
    }

    /// The pool indices of VIP `i`'s backends.
    pub fn vip_backends(&self, i: usize) -> impl Iterator<Item = usize> + use<> {
        let (n, pool) = (self.backends_per_vip, self.distinct_backends.max(1));
        (0..n).map(move |j| (i * n + j) % pool)
    }

    /// Backend `j`'s name.
    pub fn backend_name(j: usize) -> String {
        format!("be{j}")
    }

    /// Backend `j`'s MAC.
    pub fn backend_mac(j: usize) -> [u8; 6] {
        let [.., b2, b3, b4, b5] = (j as u64).to_be_bytes();
        [0x02, 0xbe, b2, b3, b4, b5]
    }

    fn backend_addr(j: usize) -> IpAddr {
        if j < 1 << 15 {
            IpAddr::V4(Ipv4Addr::new(198, 18, 128 + (j >> 8) as u8, j as u8))
        } else {
            IpAddr::V6(Ipv6Addr::from((0xfd00_00be_u128 << 96) | j as u128))
        }
    }

    /// The config: one `net_null0` port owning 198.18.0.1, then the VIPs.
    pub fn config(&self) -> String {
        let mut out = null_port("");
        out.reserve(self.vips * (100 + self.backends_per_vip * 90));
        for i in 0..self.vips {
            let (addr, port, protocol) = self.vip(i);
            let mut v = Vip::new(self.vip_name(i), addr.to_string(), port)
                .option("table_size", self.table_size);
            if protocol == Protocol::Udp {
                v = v.option("protocol", "\"udp\"");
            }
            for j in self.vip_backends(i) {
                v = v.backend(
                    Backend::new(Self::backend_name(j), Self::backend_addr(j).to_string())
                        .mac_bytes(Self::backend_mac(j)),
                );
            }
            out += &v.to_string();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_scale_config_parses_with_what_it_says() {
        let s = Scale {
            vips: 40,
            backends_per_vip: 3,
            distinct_backends: 50,
            table_size: 307,
            vips_per_addr: 4,
        };
        let config = crate::testing::parse(&s.config());
        assert_eq!(config.vips.len(), 40);
        let names: std::collections::HashSet<&str> = config
            .vips
            .iter()
            .flat_map(|v| v.backends.iter().map(|b| b.name.as_str()))
            .collect();
        assert_eq!(names.len(), 50, "120 entries over a pool of 50");
        for (i, v) in config.vips.iter().enumerate() {
            let (addr, port, protocol) = s.vip(i);
            assert_eq!((v.address, v.port), (addr, port), "vip {i}");
            assert_eq!(
                v.protocol == crate::config::VipProtocol::Udp,
                protocol == Protocol::Udp
            );
            assert_eq!(v.table_size, 307);
        }
        // Four VIPs per address, both families.
        assert_eq!(config.vips[3].address, config.vips[0].address);
        assert_ne!(config.vips[4].address, config.vips[0].address);
        assert!(config.vips[0].address.is_ipv4() && config.vips[4].address.is_ipv6());
    }
}
