"""Reading a running mplb: its Prometheus metrics, its control socket and its
memory as the kernel accounts it."""

import json
import re
import subprocess
import urllib.request

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)$')
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def scrape(port, timeout=3.0, scopes=()):
    """The metrics page as {name: [(labels dict, value)]}; `scopes`: only
    those parts of it (mplb's `?scope=`: global, vip, backend)."""
    query = "&".join(f"scope={s}" for s in scopes)
    url = f"http://127.0.0.1:{port}/metrics" + (f"?{query}" if query else "")
    with urllib.request.urlopen(url, timeout=timeout) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if not m:
            continue
        labels = dict(_LABEL.findall(m.group(3) or ""))
        try:
            value = float(m.group(4))
        except ValueError:
            continue
        out.setdefault(m.group(1), []).append((labels, value))
    return out


def metric_sum(metrics, name, **match):
    """Sum of a metric over its samples whose labels include `match`."""
    return sum(
        v for labels, v in metrics.get(name, []) if all(labels.get(k) == x for k, x in match.items())
    )


def flow_table(metrics):
    """Flow-table figures summed over workers."""
    return {
        "entries": int(metric_sum(metrics, "mplb_flow_table_entries")),
        "capacity": int(metric_sum(metrics, "mplb_flow_table_capacity")),
        "inserts": int(metric_sum(metrics, "mplb_flow_table_inserts_total")),
        "evictions": int(metric_sum(metrics, "mplb_flow_table_evictions_total")),
        "timeouts": int(metric_sum(metrics, "mplb_flow_table_timeouts_total")),
        "insert_rejected": int(metric_sum(metrics, "mplb_flow_insert_rejected_total")),
        "flow_hit": int(metric_sum(metrics, "mplb_flow_hit_total")),
        "flow_miss": int(metric_sum(metrics, "mplb_flow_miss_total")),
        "plain_syn": int(metric_sum(metrics, "mplb_plain_syn_total")),
        "mptcp_syn": int(metric_sum(metrics, "mplb_mptcp_syn_total")),
        "forwarded": int(metric_sum(metrics, "mplb_forwarded_total")),
        "rx_packets": int(metric_sum(metrics, "mplb_rx_packets_total")),
        "tx_dropped": int(metric_sum(metrics, "mplb_tx_dropped_total")),
        "drops": int(metric_sum(metrics, "mplb_drops_total")),
    }


def control_stats(mplb_bin, socket_path, timeout=5.0):
    """`mplb stats --json` over the control socket: the real client."""
    r = subprocess.run(
        [mplb_bin, "stats", "--json", "--socket", socket_path],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if r.returncode != 0:
        raise RuntimeError(f"mplb stats: {r.stderr.strip()}")
    return json.loads(r.stdout)


def process_memory(pid):
    """Resident memory of a process in bytes: ordinary pages (VmRSS) and
    hugetlb pages it has mapped (HugetlbPages; DPDK memory). None if gone."""
    fields = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "HugetlbPages", "VmHWM"):
                    fields[key] = int(rest.split()[0]) * 1024
    except OSError:
        return None
    return {
        "rss": fields.get("VmRSS", 0),
        "rss_peak": fields.get("VmHWM", 0),
        "hugetlb": fields.get("HugetlbPages", 0),
    }
