"""One generator run against one device under test (see topology.py), with
the results collected: the generator's JSON report, the DUT's own counters,
and (for mplb) metrics and memory sampled while it runs."""

import os
import re
import shlex
import tempfile
import time

from . import lbconfig, observe, procs, topology
from .procs import Child, wait_for


class Traffic:
    """What the generator sends in one measurement."""

    def __init__(self, mix, flows, ipv6=0, size=64, rate=0, duration=5.0, warmup=2.0):
        self.mix = mix
        self.flows = flows
        self.ipv6 = ipv6
        self.size = size
        self.rate = rate
        self.duration = duration
        self.warmup = warmup

    def with_rate(self, rate):
        return Traffic(self.mix, self.flows, self.ipv6, self.size, rate, self.duration, self.warmup)


class Bench:
    """What every measurement shares: binaries, core layout, scratch space."""

    def __init__(self, mplb, gen, layout, tmp_root, verbose=False, vips=1):
        self.mplb = mplb
        # VIPs of each family in the configs (see lbconfig).
        self.vips = vips
        self.gen = topology.Gen(gen, layout)
        self.layout = layout
        self.tmp_root = tmp_root
        self.verbose = verbose
        self.commands = []  # every command line run, for the report

    def scratch(self, label):
        return tempfile.mkdtemp(prefix=re.sub(r"[^\w.-]", "_", label) + "-", dir=self.tmp_root)

    def log(self, msg):
        print(msg, flush=True)

    def note_command(self, argv):
        line = shlex.join(procs.wrap(argv))
        self.commands.append(line)
        if self.verbose:
            self.log("  $ " + line)


# Seconds the generator keeps its link open after its report, waiting for
# the DUT to disconnect (mplb-gen --linger).
LINGER = 30


def setup_allowance(flows):
    """Seconds the generator and mplb may need before traffic flows: EAL and
    memif start, flow state for `flows` connections, the flow table."""
    return 15.0 + flows / 250_000


def run(bench, dut, traffic, *, flow_capacity=None, flow_table=None, sample_every=None, label=None):
    """Runs `traffic` through `dut` ("testpmd" or "mplb"); returns a result
    dict. Never raises for a failed run: the error is in result["error"].
    `flow_table`: overrides of mplb's [flow_table] (untrusted_quota_pct,
    untrusted_timeout_secs)."""
    label = label or f"{dut}-{traffic.mix}"
    tmp = bench.scratch(label)
    sock = os.path.join(tmp, "gen.sock")
    gen_prefix = topology.unique_prefix("gen")
    json_path = os.path.join(tmp, "gen.json")
    n = bench.layout.workers
    capacity = flow_capacity or lbconfig.flow_capacity_for(max(traffic.flows, 1), n)
    mplb = None
    if dut == "mplb":
        mplb = topology.MplbDut(
            bench.mplb,
            bench.layout,
            tmp,
            [("link", "net_memif0", topology.memif_vdev(0, "client", sock))],
            capacity,
            **(flow_table or {}),
            vips=bench.vips,
        )
        lb_config = mplb.config_path
    else:
        # testpmd needs no config, but the generator still takes the VIPs
        # and backends from one: the same file mplb would use.
        lb_config = os.path.join(tmp, "lb.toml")
        with open(lb_config, "w") as f:
            f.write(
                lbconfig.render(
                    eal_args=[],
                    ports=[("link", "net_memif0")],
                    main_lcore=bench.layout.dut_main,
                    worker_lcores=bench.layout.dut_worker_lcores,
                    flow_capacity=capacity,
                    untrusted_quota_pct=25,
                    metrics_port=0,
                    control_socket=os.path.join(tmp, "unused.sock"),
                    mempool_size=16383,
                    vips=bench.vips,
                )
            )
    gen_argv = bench.gen.argv(
        vdev=topology.memif_vdev(0, "server", sock),
        port="net_memif0",
        prefix=gen_prefix,
        lb_config=lb_config,
        expect="mplb" if dut == "mplb" else "macswap",
        mix=traffic.mix,
        flows=traffic.flows,
        ipv6=traffic.ipv6,
        size=traffic.size,
        rate=traffic.rate,
        duration=traffic.duration,
        warmup=traffic.warmup,
        json_path=json_path,
    )
    if mplb:
        dut_argv = mplb.argv()
        dut_prefix = mplb.prefix
    else:
        dut_prefix = topology.unique_prefix("testpmd")
        dut_argv = topology.testpmd_argv(
            bench.layout, dut_prefix, topology.memif_vdev(0, "client", sock)
        )
    result = {
        "dut": dut,
        "label": label,
        "traffic": vars(traffic).copy(),
        "flow_capacity": capacity if mplb else None,
        "flow_table_overrides": flow_table if mplb else None,
        "commands": {"gen": gen_argv, "dut": dut_argv},
        "scratch": tmp,
        "samples": [],
        "error": None,
    }
    gen = dut_child = None
    started = time.monotonic()
    limit = setup_allowance(traffic.flows) + traffic.warmup + traffic.duration + 10
    try:
        bench.note_command(gen_argv)
        gen = Child("mplb-gen", gen_argv, os.path.join(tmp, "gen.log"))
        wait_for(lambda: os.path.exists(sock), 20, "the generator's memif socket", [gen])
        bench.note_command(dut_argv)
        dut_child = Child(dut, dut_argv, os.path.join(tmp, f"{dut}.log"))
        if mplb:
            wait_for(mplb.ready, setup_allowance(traffic.flows), "mplb's metrics endpoint", [dut_child])
        next_sample = time.monotonic()
        # The generator writes its report, then lingers with the link open
        # and idle until the DUT disconnects: the DUT is stopped while the
        # generator is not polling (memif can crash a poller whose peer
        # disconnects under it).
        while topology.read_json(json_path) is None:
            if not gen.alive():
                raise RuntimeError(f"the generator (status {gen.proc.returncode}) wrote no report:\n{gen.tail()}")
            if time.monotonic() - started > limit:
                raise RuntimeError(f"the generator did not finish within {limit:.0f} s")
            if not dut_child.alive():
                raise RuntimeError(f"{dut} exited early:\n{dut_child.tail()}")
            if mplb and sample_every and time.monotonic() >= next_sample:
                result["samples"].append(sample_mplb(mplb, dut_child.pid, started))
                next_sample += sample_every
            time.sleep(0.05)
        result["gen"] = topology.read_json(json_path)
        if mplb:
            # Final state, before it stops: what the generator left behind.
            result["final"] = sample_mplb(mplb, dut_child.pid, started)
            try:
                result["control_stats"] = observe.control_stats(bench.mplb, mplb.control_socket)
            except (RuntimeError, OSError, ValueError) as e:
                result["control_stats_error"] = str(e)
        result["window"] = window(result["samples"], result.get("final"), traffic.duration)
        result["dut_status"] = dut_child.stop()
        result["gen_status"] = gen.wait(LINGER + 5)
        if result["dut_status"] != 0:
            # mplb exits non-zero on a failed worker or leaked mbufs.
            raise RuntimeError(f"{dut} exited with status {result['dut_status']}:\n{dut_child.tail()}")
    except RuntimeError as e:
        result["error"] = str(e)
    finally:
        if dut_child:
            if dut_child.alive():
                result["dut_status"] = dut_child.stop()
            result["dut_output_tail"] = dut_child.tail(25)
            if dut == "testpmd":
                result["dut_counters"] = testpmd_totals(dut_child.output())
            else:
                result["dut_counters"] = mplb_totals(dut_child.output())
        if gen:
            gen.stop()
            result["gen_output_tail"] = gen.tail(25)
        topology.remove_runtime_dir(gen_prefix)
        topology.remove_runtime_dir(dut_prefix)
    if result["error"]:
        bench.log(f"  ! {label}: {result['error']} (logs in {tmp})")
    return result


def window(samples, final, seconds):
    """mplb's own view of the measured window (the last `seconds` before the
    generator stopped): share of flow-table lookups that hit, rx rate."""
    if not final or "flow_table" not in final:
        return None
    start = next(
        (s for s in reversed(samples) if "flow_table" in s and s["t"] <= final["t"] - seconds), None
    )
    if not start:
        return None
    a, b = start["flow_table"], final["flow_table"]
    hits, misses = b["flow_hit"] - a["flow_hit"], b["flow_miss"] - a["flow_miss"]
    dt = final["t"] - start["t"]
    return {
        "seconds": round(dt, 2),
        "rx_pps": (b["rx_packets"] - a["rx_packets"]) / dt if dt > 0 else None,
        "flow_hit_share": hits / (hits + misses) if hits + misses else None,
        "tx_dropped": b["tx_dropped"] - a["tx_dropped"],
        "entries_at_start": a["entries"],
        "entries": b["entries"],
    }


def sample_mplb(mplb, pid, t0):
    s = {"t": round(time.monotonic() - t0, 2), "memory": observe.process_memory(pid)}
    try:
        s["flow_table"] = observe.flow_table(mplb.metrics())
    except OSError as e:
        s["flow_table_error"] = str(e)
    return s


def testpmd_totals(out):
    """testpmd's port counters: the largest RX/TX-packets of its periodic
    "NIC statistics" blocks. (Its final "Forward statistics" are relative to
    a start snapshot, and memif resets the port counters when the generator
    disconnects, so they come out negative.)"""
    def largest(name):
        vals = [int(v) for v in re.findall(name + r":\s+(\d+)", out) if int(v) < 2**62]
        return max(vals) if vals else None

    return {"rx_packets": largest("RX-packets"), "tx_packets": largest("TX-packets")}


def mplb_totals(out):
    """mplb's final `total:` counter line as a dict."""
    lines = [l for l in out.splitlines() if l.startswith("total: ")]
    if not lines:
        return {}
    return {
        k: int(v)
        for k, v in (kv.split("=", 1) for kv in lines[-1][len("total: ") :].split() if "=" in kv)
    }
