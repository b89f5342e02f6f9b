"""Plain-text tables of a harness run."""


def _mpps(pps):
    return f"{pps / 1e6:.2f}" if pps is not None else "-"


def _us(ns):
    return f"{ns / 1e3:.1f}" if ns is not None else "-"


def _lat(row):
    return "/".join(_us(row[q]) for q in ("p50", "p99", "p999"))


def _checks(row):
    if row["error"]:
        return "FAILED"
    if row["check_ok"] is None:
        return "-"
    return f"ok {row['check_ok']}, bad {row['check_bad']}, lost {row['lost']}"


def side_table(rows):
    head = f"{'mix':<12} {'testpmd Mpps':>12} {'mplb Mpps':>10} {'ratio':>6}  {'testpmd p50/p99/p99.9 µs':>26}  {'mplb p50/p99/p99.9 µs':>24}  {'hit%':>5}  mplb checks"
    rounds = rows[0].get("rounds", 1) if rows else 1
    title = "Side by side (flat out, one worker core each; Mpps = frames back at the generator"
    title += f"; medians of {rounds} rounds)" if rounds > 1 else ")"
    lines = ["", title, head, "-" * len(head)]
    for r in rows:
        ratio = f"{r['ratio']:.2f}" if r["ratio"] is not None else "-"
        lines.append(
            f"{r['mix']:<12} {_mpps(r['testpmd']['rx_pps']):>12} {_mpps(r['mplb']['rx_pps']):>10} {ratio:>6}  "
            f"{_lat(r['testpmd']):>26}  {_lat(r['mplb']):>24}  {_hits(r.get('mplb_window')):>5}  {_checks(r['mplb'])}"
        )
    if rounds > 1:
        for r in rows:
            per = lambda d: " ".join(_mpps(x) for x in r[d].get("rounds_rx_pps", []))
            lines.append(f"  {r['mix']}: testpmd rounds {per('testpmd')}; mplb rounds {per('mplb')}")
    lines.append("hit% = mplb's flow-table lookups that hit, in the measured window (plain TCP ≈ 100; MPTCP is stateless: 0)")
    return "\n".join(lines) + "\n"


def _hits(w):
    if not w or w.get("flow_hit_share") is None:
        return "-"
    return f"{100 * w['flow_hit_share']:.1f}"


def saturation(side_rows, mix):
    """mplb's flat-out rate for `mix` from the side-by-side rows, if measured."""
    for r in side_rows or []:
        if r["traffic"]["mix"] == mix and r["mplb"]["rx_pps"]:
            return r["mplb"]["rx_pps"]
    return None


def sweep_table(s):
    head = f"{'load':>5} {'offered Mpps':>12} {'testpmd Mpps':>12} {'mplb Mpps':>10}  {'testpmd p50/p99/p99.9 µs':>26}  {'mplb p50/p99/p99.9 µs':>24}"
    lines = [
        "",
        f"Offered-load sweep ({s['mix']}, {s['flows']} flows; 100% = mplb's saturation {s['saturation_pps'] / 1e6:.2f} Mpps)",
        head,
        "-" * len(head),
    ]
    for p in s["points"]:
        lines.append(
            f"{p['fraction']:>5.0%} {_mpps(p['offered_pps']):>12} {_mpps(p['testpmd']['rx_pps']):>12} "
            f"{_mpps(p['mplb']['rx_pps']):>10}  {_lat(p['testpmd']):>26}  {_lat(p['mplb']):>24}"
        )
    added = s["added_p99_ns_at_80pct"]
    lines.append(
        f"added p99 at 80% of saturation (mplb p99 - testpmd p99 at the same load): "
        f"{_us(added)} µs" if added is not None else "added p99 at 80%: not measured"
    )
    return "\n".join(lines) + "\n"


def _mib(b):
    return f"{b / 2**20:.0f}" if b is not None else "-"


def scale_table(s):
    head = f"{'flows':>10} {'capacity':>10} {'entries':>10} {'hit%':>5} {'table MiB':>9} {'process MiB':>11} {'over base MiB':>13} {'Mpps':>6} {'p99 µs':>7}  checks"
    lines = ["", "Flow-table scale (plain TCP through mplb; process = RSS + hugetlb pages at peak)", head, "-" * len(head)]
    for p in s["points"]:
        lines.append(
            f"{p['flows']:>10} {p['flow_capacity'] or '-':>10} {p['entries_max'] or '-':>10} {_hits(p.get('window')):>5} {_mib(p['table_bytes']):>9} "
            f"{_mib(p['process_bytes']):>11} {_mib(p['process_bytes_over_baseline']):>13} {_mpps(p['gen']['rx_pps']):>6} "
            f"{_us(p['gen']['p99']):>7}  {_checks(p['gen'])}"
        )
    lines.append(f"baseline mplb (4096-entry table): {_mib(s['baseline_process_bytes'])} MiB; "
                 f"flow-table overrides for these runs: {s.get('flow_table_overrides')}")
    return "\n".join(lines) + "\n"


def flood_table(f):
    lines = ["", f"Flood (established: {f['established_flows']} plain-TCP flows at {f['clients_rate_pps']} pps on their own link)"]
    head = (f"{'phase':<10} {'entries min..max':>18} {'inserts':>9} {'rejected':>9} {'SYNs (no state)':>15} "
            f"{'rx':>10} {'tx dropped':>10} {'clients ok':>10} {'bad':>4}")  # fmt: skip
    lines += [head, "-" * len(head)]
    for p in f["summary"]:
        bad = sum(p.get("clients_" + k, 0) for k in ("wrong_backend", "flow_moved", "bad_rewrite", "unexpected"))
        lines.append(
            f"{p['phase']:<10} {str(p['entries_min']) + '..' + str(p['entries_max']):>18} {p['inserts']:>9} "
            f"{p['insert_rejected']:>9} {p['plain_syn']:>15} {p['rx_packets']:>10} {p['tx_dropped']:>10} "
            f"{p.get('clients_ok', '-'):>10} {bad:>4}"
        )
    for ph in f["phases"]:
        g = ph.get("gen") or {}
        lines.append(f"flood phase {ph['name']}: sent {g.get('tx_packets', '-')} at {_mpps(g.get('tx_pps'))} Mpps")
    lines.append(
        "entries = flow-table size; inserts/rejected = new entries and refused ones (quota, full bucket); "
        "clients ok = the established flows' frames back at their generator and correct; bad = wrong backend, "
        "moved flow, bad rewrite or unexpected frame"
    )
    c = f.get("clients") or {}
    check = c.get("check") or {}
    lines.append(
        f"established flows over the whole run: sent {c.get('tx_packets', '-')}, lost {c.get('lost', '-')}, "
        f"checks {check}"
    )
    if f["error"]:
        lines.append(f"FAILED: {f['error']}")
    return "\n".join(lines) + "\n"
