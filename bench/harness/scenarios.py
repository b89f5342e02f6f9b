"""The four parts of a harness run: side by side, offered-load sweep,
flow-table scale and flood. Each returns a JSON-ready dict."""

from . import measure
from .measure import Traffic


def gen_row(r):
    """The figures of one measurement the tables use (None where missing)."""
    g = (r or {}).get("gen") or {}
    lat = g.get("latency_ns") or {}
    check = g.get("check") or {}
    bad = sum(v for k, v in check.items() if k != "ok" and isinstance(v, (int, float)))
    return {
        "rx_pps": g.get("rx_pps"),
        "tx_pps": g.get("tx_pps"),
        "p50": lat.get("p50"),
        "p99": lat.get("p99"),
        "p999": lat.get("p999"),
        "lost": g.get("lost"),
        "check_ok": check.get("ok"),
        "check_bad": bad if check else None,
        "error": (r or {}).get("error"),
    }


def mixes(quick):
    """The traffic mixes compared side by side."""
    k = 10 if quick else 1
    return [
        ("mptcp", Traffic("mptcp", 100_000 // k)),
        ("plain-1M" if not quick else "plain-100K", Traffic("plain", 1_000_000 // k)),
        ("ipv6-50%", Traffic("mptcp=1,plain=1", 100_000 // k, ipv6=50)),
    ]


def side_by_side(bench, quick, duration, warmup):
    rows = []
    for name, t in mixes(quick):
        t.duration, t.warmup = duration, warmup
        bench.log(f"side by side: {name} ({t.mix}, {t.flows} flows, {t.ipv6}% IPv6)")
        pmd = measure.run(bench, "testpmd", t, label=f"side-{name}-testpmd")
        lb = measure.run(bench, "mplb", t, label=f"side-{name}-mplb", sample_every=1.0)
        a, b = gen_row(pmd), gen_row(lb)
        ratio = b["rx_pps"] / a["rx_pps"] if a["rx_pps"] and b["rx_pps"] is not None else None
        rows.append(
            {"mix": name, "traffic": vars(t), "testpmd": a, "mplb": b, "ratio": ratio,
             "runs": {"testpmd": pmd, "mplb": lb}}
        )  # fmt: skip
    return rows


def sweep(bench, quick, duration, warmup, traffic, saturation_pps):
    """Throughput and latency of both DUTs at fractions of mplb's saturation
    rate, the same absolute offered load for both: testpmd at that load is
    the baseline mplb's added latency is measured against."""
    fractions = [0.2, 0.5, 0.8, 1.0] if quick else [0.1, 0.3, 0.5, 0.7, 0.8, 0.9, 1.0]
    points = []
    for f in fractions:
        rate = int(saturation_pps * f)
        t = traffic.with_rate(rate)
        t.duration, t.warmup = duration, warmup
        bench.log(f"sweep: {f:.0%} of {saturation_pps / 1e6:.2f} Mpps = {rate / 1e6:.3f} Mpps offered")
        pmd = measure.run(bench, "testpmd", t, label=f"sweep-{int(f * 100)}-testpmd")
        lb = measure.run(bench, "mplb", t, label=f"sweep-{int(f * 100)}-mplb")
        points.append(
            {"fraction": f, "offered_pps": rate, "testpmd": gen_row(pmd), "mplb": gen_row(lb),
             "runs": {"testpmd": pmd, "mplb": lb}}
        )  # fmt: skip
    at80 = next((p for p in points if abs(p["fraction"] - 0.8) < 1e-9), None)
    added = None
    if at80 and at80["mplb"]["p99"] is not None and at80["testpmd"]["p99"] is not None:
        added = at80["mplb"]["p99"] - at80["testpmd"]["p99"]
    return {
        "mix": traffic.mix,
        "flows": traffic.flows,
        "saturation_pps": saturation_pps,
        "baseline": "dpdk-testpmd --forward-mode=macswap at the same offered load, same link and generator",
        "added_p99_ns_at_80pct": added,
        "points": points,
    }


def scale(bench, quick, duration, warmup):
    """Plain TCP over 1M and 10M concurrent flows through mplb: throughput,
    flow-table occupancy and memory. Memory is the process's resident pages
    (ordinary + hugetlb, /proc/PID/status) at its peak, and the difference
    to a baseline mplb whose flow table has the minimum 4096 entries under
    the same kind of traffic; the table's own size is capacity x 48 bytes
    (src/datapath/flow_table.rs), capacity from mplb's metrics."""
    bench.log("flow scale: baseline (4096-entry flow table, 1000 flows)")
    base = measure.run(
        bench, "mplb", Traffic("plain", 1000, duration=min(duration, 3), warmup=warmup),
        flow_capacity=4096, sample_every=1.0, label="scale-baseline",
    )  # fmt: skip
    base_mem = peak_memory(base)
    points = []
    for flows in [100_000, 1_000_000] if quick else [1_000_000, 10_000_000]:
        # Opening the flows takes a few packets each before the steady state.
        t = Traffic("plain", flows, duration=duration, warmup=max(warmup, flows / 1_000_000 * 2))
        bench.log(f"flow scale: {flows} plain-TCP flows")
        r = measure.run(bench, "mplb", t, sample_every=1.0, label=f"scale-{flows}")
        ft = [s["flow_table"] for s in r["samples"] + [r.get("final") or {}] if s.get("flow_table")]
        capacity = ft[-1]["capacity"] if ft else None
        mem = peak_memory(r)
        points.append({
            "flows": flows,
            "flow_capacity": capacity,
            "entries_max": max((f["entries"] for f in ft), default=None),
            "entries_end": ft[-1]["entries"] if ft else None,
            "insert_rejected": ft[-1]["insert_rejected"] if ft else None,
            "table_bytes": capacity * 48 if capacity else None,
            "process_bytes": mem,
            "process_bytes_over_baseline": mem - base_mem if mem and base_mem else None,
            "gen": gen_row(r),
            "run": r,
        })  # fmt: skip
    return {"baseline_process_bytes": base_mem, "baseline": base, "points": points}


def peak_memory(r):
    """Largest ordinary + hugetlb resident memory seen in a run's samples."""
    best = None
    for s in (r.get("samples") or []) + [r.get("final") or {}]:
        m = s.get("memory")
        if m:
            total = m["rss"] + m["hugetlb"]
            best = total if best is None else max(best, total)
    return best
