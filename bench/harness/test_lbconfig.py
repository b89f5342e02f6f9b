"""The benchmark config's VIPs (bench/run --vips): python3 -m unittest harness.test_lbconfig"""

import ipaddress
import tomllib
import unittest

from . import lbconfig


def render(vips):
    return lbconfig.render(
        eal_args=[],
        ports=[("link", "net_memif0")],
        main_lcore=0,
        worker_lcores=[1],
        flow_capacity=4096,
        untrusted_quota_pct=25,
        metrics_port=0,
        control_socket="/tmp/unused.sock",
        mempool_size=16383,
        vips=vips,
    )


class Vips(unittest.TestCase):
    def test_one_of_each_family_by_default(self):
        config = tomllib.loads(render(1))
        self.assertEqual([v["name"] for v in config["vip"]], ["web4", "web6"])

    def test_n_of_each_family_on_their_own_addresses(self):
        n = 300
        vips = tomllib.loads(render(n))["vip"]
        self.assertEqual(len(vips), 2 * n)
        self.assertEqual(len({v["name"] for v in vips}), 2 * n)
        addrs = [ipaddress.ip_address(v["address"]) for v in vips]
        self.assertEqual(len(set(addrs)), 2 * n)
        v4 = [a for a in addrs if a.version == 4]
        v6 = [a for a in addrs if a.version == 6]
        self.assertEqual((len(v4), len(v6)), (n, n))
        fillers4 = [a for a in v4 if a != ipaddress.ip_address(lbconfig.VIP4)]
        self.assertTrue(all(a in ipaddress.ip_network("198.18.64.0/18") for a in fillers4))
        # Last 16 bits apart across the families: mplb's direct index.
        low = lambda a: int(a) & 0xFFFF
        self.assertFalse({low(a) for a in v4} & {low(a) for a in v6})
        # The fillers share their family's backends and forwarding.
        by_name = {v["name"]: v for v in vips}
        for k in (1, n - 1):
            for family, first in ((4, "web4"), (6, "web6")):
                v = by_name[f"vip{family}-{k}"]
                self.assertEqual(v["table_size"], lbconfig.FILLER_TABLE_SIZE)
                self.assertEqual(v["forwarding"], by_name[first]["forwarding"])
                self.assertEqual(v["backend"], by_name[first]["backend"])

    def test_out_of_range_counts_are_refused(self):
        for bad in (0, lbconfig.MAX_VIPS + 1):
            with self.assertRaises(ValueError):
                render(bad)


if __name__ == "__main__":
    unittest.main()
