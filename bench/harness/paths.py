"""Per datapath path, side by side: instructions per packet counted by
callgrind (`bench/callgrind_datapath.rs`, only inside `measured_burst`) and
ns per packet timed by the datapath benchmark (`bench/datapath.rs` in its
best-of-batches mode), plus hardware instructions and cycles per packet
where the CPU has a PMU; with the machine, the commit and the command, so
two machines' runs compare (`compare_table`). Used by `bench/paths` and
`bench/run --parts paths`; see bench/README.md ("Per path, side by side")."""

import concurrent.futures
import datetime
import glob
import json
import os
import platform
import re
import shlex
import subprocess
import time

from . import scaling

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# One result line of the benchmark's best-of-batches mode (bench/datapath.rs).
LINE = re.compile(
    r"^(?P<path>\S+)\s+process_burst ns/pkt min\s+(?P<min>[-\d.]+) p10\s+(?P<p10>[-\d.]+) median\s+(?P<median>[-\d.]+)"
    r" \| restore min\s+[-\d.]+ p10\s+(?P<restore_p10>[-\d.]+) median\s+[-\d.]+ \| net p10\s+(?P<net_p10>[-\d.]+)"
    r"(?: \| (?P<tail>.*))?$"
)
PMU = re.compile(r"pmu instr/pkt net\s+(?P<instr>[-\d.]+) cycles/pkt net p10\s+(?P<cycles>[-\d.]+)")


class Failed(Exception):
    """A step that produced no figures; the message says which and why."""


def build(target):
    """Builds the callgrind example and the datapath benchmark (release);
    returns their paths."""
    env = {**os.environ, "CARGO_TARGET_DIR": target}
    run = lambda cmd: subprocess.run(cmd, cwd=REPO, env=env, check=True, capture_output=True, text=True)  # noqa: E731
    print("building: cargo build --release --example callgrind_datapath; cargo bench --bench datapath --no-run", flush=True)
    run(["cargo", "build", "--release", "--quiet", "--example", "callgrind_datapath"])
    out = run(["cargo", "bench", "--bench", "datapath", "--no-run", "--message-format=json"]).stdout
    bench = None
    for line in out.splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if msg.get("reason") == "compiler-artifact" and msg.get("target", {}).get("name") == "datapath" and msg.get("executable"):
            bench = msg["executable"]
    if bench is None:
        raise Failed("cargo bench --no-run named no datapath executable")
    return os.path.join(target, "release", "examples", "callgrind_datapath"), bench


def built(target):
    """The binaries of an earlier build: the example, the newest benchmark."""
    benches = [p for p in glob.glob(os.path.join(target, "release", "deps", "datapath-*")) if "." not in os.path.basename(p)]
    if not benches:
        raise Failed(f"no datapath benchmark in {target}/release/deps (build it: cargo bench --bench datapath --no-run)")
    return os.path.join(target, "release", "examples", "callgrind_datapath"), max(benches, key=os.path.getmtime)


def clock():
    """What is known of the clock: cpufreq's maximum, the current MHz."""
    info = {}
    try:
        with open("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq") as f:
            info["max_mhz"] = int(f.read()) // 1000
    except (OSError, ValueError):
        pass
    try:
        with open("/proc/cpuinfo") as f:
            mhz = [float(line.split(":")[1]) for line in f if line.startswith("cpu MHz")]
        if mhz:
            info["cpuinfo_mhz"] = round(max(mhz))
    except (OSError, ValueError):
        pass
    return info


def has_pmu():
    """A core PMU perf can use (hybrid Intel parts name it cpu_core)."""
    base = "/sys/bus/event_source/devices"
    return any(os.path.isdir(os.path.join(base, d)) for d in ("cpu", "cpu_core", "armv8_pmuv3_0"))


def machine():
    cpu = scaling.cpu_info()
    flags = ""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "")
    except OSError:
        pass
    return {
        **cpu,
        "clock": clock(),
        "virtual_machine": " hypervisor" in flags,
        "pmu": has_pmu(),
        "kernel": platform.release(),
        "loadavg_1min": os.getloadavg()[0],
    }


def commit():
    try:
        r = subprocess.run(["git", "-C", REPO, "describe", "--always", "--dirty", "--abbrev=10"], capture_output=True, text=True, timeout=10)
        return r.stdout.strip() or None
    except (OSError, subprocess.TimeoutExpired):
        return None


def list_paths(callgrind):
    r = subprocess.run(callgrind + ["--list"], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise Failed(f"{shlex.join(callgrind)} --list: status {r.returncode}: {r.stderr.strip()[-300:]}")
    return r.stdout.split()


def callgrind_one(valgrind, callgrind, path, packets, out, env):
    """Instructions per packet of one path, collected in measured_burst only."""
    cg = os.path.join(out, f"callgrind.out.{path}")
    cmd = valgrind + ["--tool=callgrind", f"--callgrind-out-file={cg}", "--collect-atstart=no",
                      "--toggle-collect=*measured_burst*"] + callgrind + [path, str(packets)]  # fmt: skip
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    if r.returncode != 0:
        raise Failed(f"callgrind of {path}: status {r.returncode}: {r.stderr.strip()[-400:]}")
    sent = re.search(r"packets=(\d+)", r.stdout)
    try:
        with open(cg) as f:
            ir = next(int(line.split()[1]) for line in f if line.startswith(("summary:", "totals:")))
    except (OSError, StopIteration, ValueError, IndexError) as e:
        raise Failed(f"callgrind of {path}: no instruction total in {cg} ({e})") from None
    if not sent or int(sent.group(1)) == 0:
        raise Failed(f"callgrind of {path}: the example printed no packet count")
    return {"instructions_per_packet": round(ir / int(sent.group(1)), 1), "packets": int(sent.group(1)), "command": shlex.join(cmd)}


def callgrind_all(valgrind, callgrind, paths, packets, out, jobs, env):
    results, errors = {}, {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(callgrind_one, valgrind, callgrind, p, packets, out, env): p for p in paths}
        for fut in concurrent.futures.as_completed(futures):
            p = futures[fut]
            try:
                results[p] = fut.result()
            except (Failed, OSError, subprocess.TimeoutExpired) as e:
                errors[p] = str(e)
    return results, errors


def bench_rounds(bench, paths, batches, rounds, memory, cpu, env, log):
    """The datapath benchmark, `rounds` times over all paths; per path the
    parsed line of every round."""
    env = {**env, "MPLB_BENCH_BATCHES": str(batches), "MPLB_BENCH_PATHS": ",".join(paths)}
    if memory == "heap":
        env["MPLB_BENCH_MEMORY"] = "heap"
    cmd = bench + ["--bench"]
    pin = (lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None
    per_path, notes = {p: [] for p in paths}, []
    for r in range(rounds):
        t = time.monotonic()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, preexec_fn=pin)
        if proc.returncode != 0:
            raise Failed(f"datapath bench round {r + 1}: status {proc.returncode}: {proc.stderr.strip()[-400:]}")
        for line in proc.stdout.splitlines():
            m = LINE.match(line)
            if m and m["path"] in per_path:
                row = {k: float(m[k]) for k in ("min", "p10", "median", "restore_p10", "net_p10")}
                pmu = PMU.search(m["tail"] or "")
                if pmu:
                    row["pmu_instructions_per_packet"] = float(pmu["instr"])
                    row["pmu_cycles_per_packet"] = float(pmu["cycles"])
                else:
                    row["pmu"] = (m["tail"] or "no PMU").strip()
                per_path[m["path"]].append(row)
        notes = [line for line in proc.stderr.splitlines() if line.startswith(("no PMU", "flow table memory", "setup:"))]
        log(f"datapath bench round {r + 1}/{rounds}: {time.monotonic() - t:.1f} s")
    missing = [p for p, rows in per_path.items() if len(rows) != rounds]
    if missing:
        raise Failed(f"datapath bench printed no line for {missing}")
    printable = " ".join(f"{k}={v}" for k, v in env.items() if k.startswith("MPLB_BENCH_"))
    command = f"{printable} {shlex.join(cmd)}" + (f"  (pinned to CPU {cpu})" if cpu is not None else "")
    return per_path, notes, command


def combine(path, cg, rounds):
    """One table row: callgrind's count and the best of the rounds."""
    row = {"path": path}
    if cg:
        row["callgrind_instructions_per_packet"] = cg["instructions_per_packet"]
    if rounds:
        row["ns_per_packet_net_p10"] = min(r["net_p10"] for r in rounds)
        row["ns_per_packet_burst_p10"] = min(r["p10"] for r in rounds)
        row["ns_per_packet_net_p10_rounds"] = [r["net_p10"] for r in rounds]
        with_pmu = [r for r in rounds if "pmu_instructions_per_packet" in r]
        if with_pmu:
            instr = sorted(r["pmu_instructions_per_packet"] for r in with_pmu)
            row["pmu_instructions_per_packet"] = instr[len(instr) // 2]
            row["pmu_cycles_per_packet_net_p10"] = min(r["pmu_cycles_per_packet"] for r in with_pmu)
        else:
            row["pmu"] = rounds[0].get("pmu", "no PMU")
    return row


def run(*, callgrind, bench, valgrind, paths=None, packets=32000, batches=400, rounds=3, memory="heap", cpu=None,
        jobs=None, out, data=None, commit_id=None, argv=None, log=print):  # fmt: skip
    """Everything, as a dict for JSON (rows, machine, commit, commands)."""
    os.makedirs(out, exist_ok=True)
    env = {**os.environ, "MPLB_BENCH_DATA": data or os.path.join(REPO, "tests", "data")}
    started = time.monotonic()
    available = list_paths(callgrind)
    paths = paths or available
    unknown = [p for p in paths if p not in available]
    if unknown:
        raise Failed(f"unknown path(s) {unknown}; the example knows {available}")
    result = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": shlex.join(argv) if argv else None,
        "commit": commit_id or commit(),
        "machine": machine(),
        "settings": {"callgrind_packets": packets, "bench_batches": batches, "bench_rounds": rounds, "memory": memory, "cpu": cpu},
    }  # fmt: skip
    jobs = jobs or max(1, min(len(paths), len(os.sched_getaffinity(0)) // 2))
    log(f"callgrind: {len(paths)} path(s), {packets} packets each, {jobs} at a time")
    t = time.monotonic()
    cg, errors = callgrind_all(valgrind, callgrind, paths, packets, out, jobs, env)
    log(f"callgrind: {time.monotonic() - t:.0f} s")
    log(f"datapath bench: {rounds} round(s) of {batches} batches per path, memory {memory}")
    try:
        timed, notes, command = bench_rounds(bench, paths, batches, rounds, memory, cpu, env, log)
    except (Failed, OSError, subprocess.TimeoutExpired) as e:
        timed, notes, command = {}, [], None
        errors["datapath bench"] = str(e)
    result["rows"] = [combine(p, cg.get(p), timed.get(p)) for p in paths]
    result["commands"] = {
        "callgrind": {p: c["command"] for p, c in cg.items()},
        "datapath_bench": command,
    }
    result["bench_notes"] = notes
    result["errors"] = errors
    result["machine"]["loadavg_1min_at_end"] = os.getloadavg()[0]
    result["elapsed_s"] = round(time.monotonic() - started, 1)
    return result


def describe_machine(m):
    clock = m.get("clock", {})
    mhz = ", ".join(f"{k.replace('_mhz', '')} {v} MHz" for k, v in clock.items()) or "clock unknown"
    return (f"{m.get('model')}; {m.get('logical_cpus_online')} logical CPUs, {m.get('physical_cores_allowed')} physical cores allowed, "
            f"{m.get('sockets')} socket(s); {mhz}; {'VM' if m.get('virtual_machine') else 'no hypervisor flag'}; "
            f"PMU: {'yes' if m.get('pmu') else 'no'}; kernel {m.get('kernel')}")  # fmt: skip


def fmt(v, width, digits=1):
    return f"{v:>{width}.{digits}f}" if isinstance(v, (int, float)) else f"{v if v is not None else '-':>{width}}"


def table(result):
    s = result["settings"]
    lines = [
        f"Per path, side by side ({result['date']})",
        f"machine: {describe_machine(result['machine'])}",
        f"commit:  {result['commit']}",
        f"command: {result['command']}",
        f"callgrind: {s['callgrind_packets']} packets per path, 64K flows in a 128K table (same load as the bench's 1M in 2M);"
        f" bench: best of {s['bench_rounds']} round(s) of {s['bench_batches']} batches, memory {s['memory']}, 1M flows in 2M entries",
        f"load average (1 min) at start {result['machine']['loadavg_1min']:.2f}, at end {result['machine']['loadavg_1min_at_end']:.2f}",
        "",
        f"{'path':<22} {'instr/pkt':>10} {'ns/pkt':>8} {'ns/pkt':>8} {'hw instr':>9} {'cycles':>8}",
        f"{'':<22} {'callgrind':>10} {'net p10':>8} {'p10':>8} {'/pkt':>9} {'/pkt':>8}",
    ]
    for r in result["rows"]:
        if "pmu_instructions_per_packet" in r:
            hw = fmt(r["pmu_instructions_per_packet"], 9) + " " + fmt(r["pmu_cycles_per_packet_net_p10"], 8)
        else:
            hw = f"{r.get('pmu', 'no PMU') if 'ns_per_packet_net_p10' in r else '-':>18}"
        lines.append(
            f"{r['path']:<22} {fmt(r.get('callgrind_instructions_per_packet'), 10)} {fmt(r.get('ns_per_packet_net_p10'), 8)} "
            f"{fmt(r.get('ns_per_packet_burst_p10'), 8)} {hw}"
        )
    lines.append("net p10 = p10 of process_burst − p10 of the frame restore alone (ns); cycles: net p10 too; hw instr: median, net")
    for what, err in result.get("errors", {}).items():
        lines.append(f"FAILED {what}: {err}")
    return "\n".join(lines)


def compare_table(a, b, names=("A", "B")):
    """Two runs' figures per path, and B / A."""
    lines = [f"{c} = {n}: {describe_machine(r['machine'])}; commit {r['commit']}; {r['date']}" for c, n, r in zip("AB", names, (a, b))]
    cols = [
        ("callgrind_instructions_per_packet", "instr/pkt"),
        ("ns_per_packet_net_p10", "ns/pkt"),
        ("pmu_instructions_per_packet", "hw instr"),
        ("pmu_cycles_per_packet_net_p10", "cycles"),
    ]
    head = f"{'path':<22}" + "".join(f" {label + ' A':>12} {label + ' B':>12} {'B/A':>6}" for _, label in cols)
    lines += ["", head]
    rows_b = {r["path"]: r for r in b["rows"]}
    for ra in a["rows"]:
        rb = rows_b.get(ra["path"], {})
        cells = ""
        for key, _ in cols:
            va, vb = ra.get(key), rb.get(key)
            ratio = vb / va if isinstance(va, (int, float)) and isinstance(vb, (int, float)) and va > 0 else None
            # A row timed without counters says why ("no PMU"), not zeros.
            shown = [v if v is not None or not key.startswith("pmu") else r.get("pmu") for v, r in ((va, ra), (vb, rb))]
            cells += f" {fmt(shown[0], 12)} {fmt(shown[1], 12)} {fmt(ratio, 6, 2)}"
        lines.append(f"{ra['path']:<22}{cells}")
    only_b = [p for p in rows_b if p not in {r["path"] for r in a["rows"]}]
    if only_b:
        lines.append(f"only in {names[1]}: {', '.join(only_b)}")
    return "\n".join(lines)
