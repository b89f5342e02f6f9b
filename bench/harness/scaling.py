"""The scaling part: for each worker count N, testpmd with N forwarding
cores and mplb with N workers, each driven by mplb-gen with N queue pairs
and N generator lcores, flat out, for the MPTCP mix and for plain TCP with
many established flows. Mpps per worker against the single-worker rate
says whether mplb scales; the ratio to testpmd at the same N says what mplb
costs over a bare reflector with the same cores."""

import os

from . import measure, topology
from .scenarios import establish_seconds, gen_row


def cpu_info():
    """The host's CPU model and core layout (for results.json and the table)."""
    model = None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    allowed = sorted(os.sched_getaffinity(0))
    cores, packages, nodes = set(), set(), set()
    for c in allowed:
        t = f"/sys/devices/system/cpu/cpu{c}/topology"
        try:
            with open(f"{t}/physical_package_id") as f:
                pkg = f.read().strip()
            with open(f"{t}/core_id") as f:
                cores.add((pkg, f.read().strip()))
            packages.add(pkg)
        except OSError:
            cores.add(("?", str(c)))
        base = f"/sys/devices/system/cpu/cpu{c}"
        try:
            nodes.update(n for n in os.listdir(base) if n.startswith("node") and n[4:].isdigit())
        except OSError:
            pass
    return {
        "model": model,
        "logical_cpus_online": os.cpu_count(),
        "cpus_allowed": allowed,
        "physical_cores_allowed": len(cores),
        "sockets": len(packages) or None,
        "numa_nodes": len(nodes) or None,
    }


def mixes(quick, size):
    k = 10 if quick else 1
    return [
        ("mptcp", measure.Traffic("mptcp", 100_000 // k, size=size)),
        ("plain-1M" if not quick else "plain-100K", measure.Traffic("plain", 1_000_000 // k, size=size)),
    ]


def per_worker_rx(run):
    """mplb's own per-worker rx counts (`mplb stats --json`, end of run)."""
    stats = run.get("control_stats") or {}
    return [w.get("rx_packets") for w in stats.get("per_worker") or []] or None


def scaling(mplb_bin, gen_bin, tmp, verbose, counts, quick, duration, warmup, size):
    """One row per (N, mix). Returns (rows, commands run)."""
    rows, commands = [], []
    for n in counts:
        layout = topology.Layout(n, share=True)
        bench = measure.Bench(mplb_bin, gen_bin, layout, tmp, verbose)
        bench.log(f"scaling: {n} worker(s): {layout.describe()}")
        rate_est = None
        for name, t in mixes(quick, size):
            plain = "plain" in t.mix
            t.duration = duration
            est = 0.6 * rate_est if rate_est else 300_000 * n
            t.warmup = max(warmup, establish_seconds(t.flows, est, 5 if plain else 3))
            pmd = measure.run(bench, "testpmd", t, label=f"scaling-{n}w-{name}-testpmd")
            lb = measure.run(bench, "mplb", t, label=f"scaling-{n}w-{name}-mplb")
            a, b = gen_row(pmd), gen_row(lb)
            if b["rx_pps"]:
                rate_est = b["rx_pps"] if rate_est is None else min(rate_est, b["rx_pps"])
            rows.append(
                {
                    "workers": n,
                    "mix": name,
                    "traffic": vars(t).copy(),
                    "layout": layout.as_dict(),
                    "testpmd": a,
                    "mplb": b,
                    "mplb_per_worker_pps": b["rx_pps"] / n if b["rx_pps"] else None,
                    "ratio": b["rx_pps"] / a["rx_pps"] if a["rx_pps"] and b["rx_pps"] else None,
                    "generator_lcores": {
                        d: [(l.get("lcore"), l.get("rx_packets")) for l in (r.get("gen") or {}).get("per_lcore", [])]
                        for d, r in (("testpmd", pmd), ("mplb", lb))
                    },
                    "mplb_worker_rx": per_worker_rx(lb),
                    "runs": {"testpmd": pmd, "mplb": lb},
                }
            )
        commands += bench.commands
    # Mpps per worker against the single-worker rate of the same mix.
    base = {r["mix"]: r["mplb_per_worker_pps"] for r in rows if r["workers"] == 1}
    for r in rows:
        one = base.get(r["mix"])
        r["per_worker_vs_1"] = r["mplb_per_worker_pps"] / one if one and r["mplb_per_worker_pps"] else None
    return rows, commands


def _f(x, fmt):
    return format(x, fmt) if x is not None else "-"


def table(rows, cpu):
    head = (
        f"{'workers':>7} {'mix':<11} {'testpmd Mpps':>12} {'mplb Mpps':>9} {'Mpps/worker':>11} {'vs 1':>5} "
        f"{'mplb/testpmd':>12} {'mplb p50/p99 µs':>16}  {'worker rx share':<18} checks"
    )
    lines = [
        "",
        f"Scaling (flat out; Mpps = frames back at the generator; CPU: {cpu.get('model')}, "
        f"{len(cpu.get('cpus_allowed') or [])} CPUs allowed, {cpu.get('physical_cores_allowed')} physical cores)",
        head,
        "-" * len(head),
    ]
    for r in rows:
        b, a = r["mplb"], r["testpmd"]
        lat = f"{_f(b['p50'] and b['p50'] / 1e3, '.1f')}/{_f(b['p99'] and b['p99'] / 1e3, '.1f')}"
        wrx = r.get("mplb_worker_rx") or []
        total = sum(x or 0 for x in wrx)
        share = "/".join(f"{100 * (x or 0) / total:.0f}" for x in wrx) if total else "-"
        if b["error"]:
            checks = "FAILED"
        else:
            checks = f"ok {b['check_ok']}, bad {b['check_bad']}, lost {b['lost']}"
        lines.append(
            f"{r['workers']:>7} {r['mix']:<11} {_f(a['rx_pps'] and a['rx_pps'] / 1e6, '.2f'):>12} "
            f"{_f(b['rx_pps'] and b['rx_pps'] / 1e6, '.2f'):>9} "
            f"{_f(r['mplb_per_worker_pps'] and r['mplb_per_worker_pps'] / 1e6, '.2f'):>11} "
            f"{_f(r['per_worker_vs_1'], '.2f'):>5} {_f(r['ratio'], '.2f'):>12} {lat:>16}  {share:<18} {checks}"
        )
    for n in sorted({r["workers"] for r in rows}):
        lay = next(r["layout"] for r in rows if r["workers"] == n)
        note = " (lcores share CPUs: correctness only, not scaling evidence)" if lay["cpus_shared"] else ""
        lines.append(
            f"  {n} worker(s): DUT main CPU {lay['dut_main_cpu']}, DUT workers on CPUs {lay['dut_worker_cpus']}, "
            f"{lay['generator_lcores']} generator lcore(s) on CPUs {lay['generator_cpus']}{note}"
        )
    lines.append(
        "vs 1 = Mpps/worker over the 1-worker Mpps/worker of the mix (target ≥ 0.9); mplb/testpmd at the same N "
        "(target ≥ 0.9); worker rx share = each mplb worker's % of received frames (mplb stats)"
    )
    return "\n".join(lines) + "\n"
