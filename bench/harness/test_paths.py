"""Checks of bench/paths' parsing and tables (run: cd bench && python3 -m
unittest harness.test_paths). The end-to-end run with the real binaries is
`bench/paths` itself (bench/README.md, "Per path, side by side")."""

import os
import re
import unittest

from . import paths

# Lines as bench/datapath.rs prints them (best_of_batches), with and without PMU.
WITH_PMU = (
    "plain_hit_l2dsr    process_burst ns/pkt min  161.3 p10  163.4 median  214.4 | "
    "restore min  14.9 p10  16.0 median  19.5 | net p10  147.4 | pmu instr/pkt net   868.2 cycles/pkt net p10  402.5"
)
NO_PMU = (
    "mptcp_syn_l2dsr    process_burst ns/pkt min  127.6 p10  129.9 median  164.7 | "
    "restore min  16.0 p10  16.6 median  19.9 | net p10  113.2 | no PMU"
)


class Parse(unittest.TestCase):
    def test_line_with_pmu(self):
        m = paths.LINE.match(WITH_PMU)
        self.assertEqual(m["path"], "plain_hit_l2dsr")
        self.assertEqual((float(m["p10"]), float(m["net_p10"])), (163.4, 147.4))
        pmu = paths.PMU.search(m["tail"])
        self.assertEqual((float(pmu["instr"]), float(pmu["cycles"])), (868.2, 402.5))

    def test_line_without_pmu(self):
        m = paths.LINE.match(NO_PMU)
        self.assertEqual(m["tail"], "no PMU")
        self.assertIsNone(paths.PMU.search(m["tail"]))

    def test_format_strings_match_the_benchmark(self):
        """The parser and bench/datapath.rs's println! agree on the words."""
        with open(os.path.join(paths.REPO, "bench", "datapath.rs")) as f:
            src = re.sub(r"\\\n\s*", "", f.read())
        for words in ("process_burst ns/pkt min", "| restore min", "| net p10", "pmu instr/pkt net", "cycles/pkt net p10", '"no PMU"'):
            self.assertIn(words, src)


ROUNDS = [
    {"min": 1, "p10": 130.0, "median": 1, "restore_p10": 16.0, "net_p10": 114.0, "pmu_instructions_per_packet": 800.0, "pmu_cycles_per_packet": 300.0},
    {"min": 1, "p10": 125.0, "median": 1, "restore_p10": 16.0, "net_p10": 109.0, "pmu_instructions_per_packet": 802.0, "pmu_cycles_per_packet": 320.0},
    {"min": 1, "p10": 140.0, "median": 1, "restore_p10": 16.0, "net_p10": 124.0, "pmu_instructions_per_packet": 801.0, "pmu_cycles_per_packet": 290.0},
]  # fmt: skip


def result(rows, model):
    return {
        "date": "2026-12-05T00:00:00+00:00", "command": "bench/paths", "commit": "abc", "rows": rows, "errors": {},
        "machine": {"model": model, "pmu": False, "clock": {}, "loadavg_1min": 0.5, "loadavg_1min_at_end": 0.7},
        "settings": {"callgrind_packets": 32000, "bench_batches": 400, "bench_rounds": 3, "memory": "heap", "cpu": None},
    }  # fmt: skip


class Combine(unittest.TestCase):
    def test_best_round_and_median_instructions(self):
        row = paths.combine("mptcp_syn_l2dsr", {"instructions_per_packet": 792.8}, ROUNDS)
        self.assertEqual(row["ns_per_packet_net_p10"], 109.0)
        self.assertEqual(row["ns_per_packet_burst_p10"], 125.0)
        self.assertEqual(row["pmu_instructions_per_packet"], 801.0)
        self.assertEqual(row["pmu_cycles_per_packet_net_p10"], 290.0)
        self.assertEqual(row["callgrind_instructions_per_packet"], 792.8)

    def test_no_pmu_is_said_not_zero(self):
        rounds = [{k: v for k, v in r.items() if not k.startswith("pmu_")} | {"pmu": "no PMU"} for r in ROUNDS]
        row = paths.combine("p", None, rounds)
        self.assertNotIn("pmu_instructions_per_packet", row)
        self.assertEqual(row["pmu"], "no PMU")
        table = paths.table(result([row], "X"))
        self.assertIn("no PMU", table.splitlines()[-2])

    def test_compare_gives_ratio_and_no_pmu(self):
        no_pmu = [{k: v for k, v in ROUNDS[0].items() if not k.startswith("pmu_")} | {"pmu": "no PMU"}]
        a = result([paths.combine("p", {"instructions_per_packet": 800.0}, no_pmu)], "A")
        b = result([paths.combine("p", {"instructions_per_packet": 400.0}, ROUNDS[1:2])], "B")
        line = paths.compare_table(a, b, ("here", "there")).splitlines()[-1]
        # per column: here, there, there/here
        self.assertRegex(line, r"^p +800\.0 +400\.0 +0\.50 +114\.0 +109\.0 +0\.96 +no PMU +802\.0 +- +no PMU +320\.0 +-$")


if __name__ == "__main__":
    unittest.main()
