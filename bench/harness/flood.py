"""Flood: established plain-TCP flows keep forwarding through mplb while a
spoofed flood arrives on other links, and the flow table does not fill.

    gen "clients"   (memif server A)    ──► mplb port "clients" (client of A)
    gen "flood-syn" (memif client of B) ──► mplb port "flood-syn" (server B)
    gen "flood-ack" (memif client of C) ──► mplb port "flood-ack" (server C)

mplb forwards out the port a frame came in on, so each generator gets its own
traffic back and checks it. The flood generators connect to mplb (mplb is the
memif server of their links), so they can start in the middle of the run;
each has a link of its own and, its flood sent, stays connected and idle
(`--linger`) until mplb stops: a memif peer that disconnects while the other
side polls can crash it.

Phases (mplb's flow-table metrics are sampled every half second throughout):
  opening — the clients' generator opens its flows (its warm-up);
  before  — only the established flows;
  syn     — a spoofed-SYN flood at full rate: SYNs create no state in mplb
            (they are routed by Maglev), so the table must not grow;
  ack     — spoofed non-SYN ACKs (mplb-gen's ackflood) at full rate: each
            enters the table as an *untrusted* entry, at most
            `untrusted_quota_pct` of the capacity, never evicting a trusted
            flow, and expires after `untrusted_timeout_secs` (5 s);
  after   — the flood gone, untrusted entries expired.
The clients' generator report covers the whole run: losses and wrong or moved
backends of the established flows during the floods."""

import os
import re
import time

from . import observe, topology
from .measure import LINGER, sample_mplb
from .procs import Child, wait_for


def run(bench, quick, established_flows, clients_rate, flood_phases):
    """`flood_phases`: list of (name, mix, extra generator args)."""
    tmp = bench.scratch("flood")
    sock_a = os.path.join(tmp, "clients.sock")
    flood_socks = [os.path.join(tmp, f"flood-{name}.sock") for name, _, _ in flood_phases]
    flood_secs = 2.0 if quick else 5.0
    settle = 3.0 if quick else 5.0
    after = 7.0  # past the 5 s untrusted timeout
    warmup = 2.0
    total = settle + len(flood_phases) * (flood_secs + 4.0) + after + 6.0
    ports = [("clients", "net_memif0", topology.memif_vdev(0, "client", sock_a))]
    for i, ((name, _, _), sock) in enumerate(zip(flood_phases, flood_socks), start=1):
        ports.append((f"flood-{name}", f"net_memif{i}", topology.memif_vdev(i, "server", sock)))
    mplb = topology.MplbDut(
        bench.mplb, bench.layout, tmp, ports,
        flow_capacity=max(4096, 1 << (established_flows * 2 - 1).bit_length()), vips=bench.vips,
    )  # fmt: skip
    prefixes = []
    clients_prefix = topology.unique_prefix("gen-clients")
    prefixes.append(clients_prefix)
    clients_json = os.path.join(tmp, "clients.json")
    clients_argv = bench.gen.argv(
        vdev=topology.memif_vdev(0, "server", sock_a), port="net_memif0", prefix=clients_prefix,
        lb_config=mplb.config_path, expect="mplb", mix="plain", flows=established_flows, ipv6=0,
        size=64, rate=clients_rate, duration=total, warmup=warmup, json_path=clients_json,
        linger=LINGER,
    )  # fmt: skip
    result = {
        "established_flows": established_flows,
        "clients_rate_pps": clients_rate,
        "commands": {"clients": clients_argv, "mplb": mplb.argv()},
        "scratch": tmp,
        "phases": [],
        "samples": [],
        "error": None,
    }
    children = []
    t0 = time.monotonic()

    def sample_for(seconds, phase):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            s = sample_mplb(mplb, lb.pid, t0)
            s["phase"] = phase
            result["samples"].append(s)
            for c in children:
                if not c.alive():
                    raise RuntimeError(f"{c.name} exited during the flood run:\n{c.tail()}")
            time.sleep(0.5)

    try:
        bench.note_command(clients_argv)
        clients = Child("clients", clients_argv, os.path.join(tmp, "clients.log"))
        children.append(clients)
        wait_for(lambda: os.path.exists(sock_a), 20, "the clients' memif socket", [clients])
        bench.note_command(mplb.argv())
        lb = Child("mplb", mplb.argv(), os.path.join(tmp, "mplb.log"))
        children.append(lb)
        prefixes.append(mplb.prefix)
        wait_for(mplb.ready, 30, "mplb's metrics endpoint", [lb])
        # The clients' generator starts its clock when the link comes up,
        # about now: its progress lines are placed on the harness's clock
        # with this offset (to within a few hundred ms).
        result["clients_clock_offset_s"] = round(time.monotonic() - t0, 2)
        for sock in flood_socks:
            wait_for(lambda: os.path.exists(sock), 10, "mplb's flood sockets", [lb])
        sample_for(warmup, "opening")
        sample_for(settle, "before")
        for (name, mix, extra), sock in zip(flood_phases, flood_socks):
            prefix = topology.unique_prefix("gen-flood")
            prefixes.append(prefix)
            fj = os.path.join(tmp, f"flood-{name}.json")
            # Each flood generator has a link of its own and stays connected
            # (idle, --linger) until mplb stops: no memif peer disconnects
            # while mplb polls it.
            argv = bench.gen.argv(
                vdev=topology.memif_vdev(0, "client", sock), port="net_memif0", prefix=prefix,
                lb_config=mplb.config_path, expect="mplb", mix=mix, flows=1_000_000, ipv6=0,
                size=64, rate=0, duration=flood_secs, warmup=0.5, json_path=fj, linger=LINGER,
                extra=extra,
            )  # fmt: skip
            bench.log(f"flood: {name} phase ({mix} {' '.join(extra)})".rstrip())
            bench.note_command(argv)
            f = Child(f"flood-{name}", argv, os.path.join(tmp, f"flood-{name}.log"))
            children.append(f)
            phase_start = time.monotonic() - t0
            while topology.read_json(fj) is None:
                if time.monotonic() - t0 - phase_start > flood_secs + 30:
                    raise RuntimeError(f"flood generator {name} wrote no report")
                sample_for(0.5, name)
            result["phases"].append({
                "name": name, "mix": mix, "extra": list(extra), "command": argv,
                "start_s": round(phase_start, 2), "end_s": round(time.monotonic() - t0, 2),
                "gen": topology.read_json(fj),
            })  # fmt: skip
            sample_for(2.0, f"{name}-gap")
        sample_for(after, "after")
        deadline = time.monotonic() + total + 30
        while topology.read_json(clients_json) is None:
            if time.monotonic() > deadline:
                raise RuntimeError("the clients' generator did not finish")
            sample_for(0.5, "after")
        result["clients"] = topology.read_json(clients_json)
        result["final"] = sample_mplb(mplb, lb.pid, t0)
        try:
            result["control_stats"] = observe.control_stats(bench.mplb, mplb.control_socket)
        except (RuntimeError, OSError, ValueError) as e:
            result["control_stats_error"] = str(e)
    except RuntimeError as e:
        result["error"] = str(e)
        bench.log(f"  ! flood: {e} (logs in {tmp})")
    finally:
        # mplb first: the generators linger idle until it disconnects.
        statuses = {}
        for c in [c for c in children if c.name == "mplb"] + [c for c in children if c.name != "mplb"]:
            statuses[c.name] = c.stop() if c.name == "mplb" else (c.wait(LINGER + 5) if c.alive() else c.proc.returncode)
            if statuses[c.name] is None:
                statuses[c.name] = c.stop()
            result.setdefault("output_tails", {})[c.name] = c.tail(20)
        result["exit_status"] = statuses
        if children:
            result["clients_progress"] = progress_lines(children[0].output())
        for p in prefixes:
            topology.remove_runtime_dir(p)
    result["summary"] = summarize(result)
    add_client_losses(result)
    return result


_PROGRESS = re.compile(r"^\[\s*([\d.]+)s\s+(\w+)\](.*)$")


def progress_lines(output):
    """The generator's progress lines ("[  2.0s    run] tx ... lost N  ok N
    wrong_backend N ...") as dicts of their time and counters."""
    out = []
    for line in output.splitlines():
        m = _PROGRESS.match(line.strip())
        if not m:
            continue
        row = {"t": float(m.group(1)), "stage": m.group(2)}
        for name, value in re.findall(r"(lost|ok|wrong_backend|flow_moved|bad_rewrite|unexpected) (\d+)", m.group(3)):
            row[name] = int(value)
        out.append(row)
    return out


def add_client_losses(result):
    """Adds to each phase of the summary the established flows' losses and
    failed checks during it, from the clients' progress lines (cumulative
    counters) placed on the harness clock."""
    lines = result.get("clients_progress") or []
    offset = result.get("clients_clock_offset_s")
    if not lines or offset is None:
        return
    bounds = {}
    for s in result["samples"]:
        b = bounds.setdefault(s["phase"], [s["t"], s["t"]])
        b[1] = s["t"]

    def at(t):
        """Cumulative counters of the last progress line before harness time t."""
        best = None
        for row in lines:
            if row["t"] + offset <= t:
                best = row
        return best or {}

    prev_end = None
    for p in result["summary"]:
        start, end = bounds.get(p["phase"], (None, None))
        if start is None:
            continue
        a, b = at(prev_end if prev_end is not None else start), at(end)
        # (Their "lost" counts frames still in flight, so it is not split by phase.)
        for k in ("wrong_backend", "flow_moved", "bad_rewrite", "unexpected", "ok"):
            if k in b:
                p["clients_" + k] = b[k] - a.get(k, 0)
        prev_end = end


def summarize(result):
    """Per phase, in order: flow-table entries (min/max over its samples) and
    what happened since the previous phase's last sample: inserts, rejected
    inserts, SYNs routed without state, packets received and forwarded."""
    phases = []
    for s in result["samples"]:
        if "flow_table" not in s:
            continue
        if not phases or phases[-1][0] != s["phase"]:
            phases.append((s["phase"], []))
        phases[-1][1].append(s["flow_table"])
    out = []
    prev = None
    for phase, ft in phases:
        first = prev or ft[0]
        last = ft[-1]
        delta = {k: last[k] - first[k] for k in
                 ("inserts", "insert_rejected", "plain_syn", "rx_packets", "forwarded", "timeouts", "tx_dropped")}
        out.append({"phase": phase, "entries_min": min(f["entries"] for f in ft),
                    "entries_max": max(f["entries"] for f in ft), "entries_end": last["entries"], **delta})
        prev = last
    return out


# The flood phases: (name, generator mix, extra generator arguments).
PHASES = [
    ("syn", "flood", []),
    ("ack", "ackflood", []),
]
