"""One measurement: a generator and a device under test joined by a memif
link, started, watched and taken down.

    mplb-gen (memif server) ──net_memif── DUT (memif client)
                           ◄── reflected / forwarded ──

The generator owns the link's listening socket (role=server); the device under
test — `dpdk-testpmd --forward-mode=macswap` or `mplb run` in balance mode —
connects to it (role=client) and sends everything back on the same link. A
memif client connects once, at port start, and does not reconnect, so every
measurement starts a fresh pair: generator first, then the DUT once the
generator's socket exists.

Every DPDK process gets a unique `--file-prefix` and `--in-memory` (no
runtime files, hugepages mapped without files; memif logs "Failed to register
mp action callback" under it and works), like the repository's other
benchmarks."""

import json
import os
import shutil
import socket
import subprocess

from . import lbconfig, observe

_serial = 0


def unique_prefix(role):
    global _serial
    _serial += 1
    return f"mplbbench-{os.getpid()}-{_serial}-{role}"


def free_tcp_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def memif_vdev(index, role, sock_path):
    # socket-abstract=no: a socket file (DPDK 22.11 defaults to the abstract
    # namespace), so the harness can wait for the server's socket to appear.
    return f"--vdev=net_memif{index},role={role},socket={sock_path},socket-abstract=no"


def common_eal(prefix):
    return [f"--file-prefix={prefix}", "--in-memory", "--no-pci", "--log-level=lib.eal:error"]


class Layout:
    """Which CPUs do what. The DUT gets a main lcore (management: idle most of
    the time) and `workers` worker lcores; the generator gets `workers` lcores
    of its own if the host has them (one per queue pair: mplb-gen runs a
    generator per lcore), else it shares the DUT's main lcore (on a 2-core
    machine: DUT main + generator on CPU 0, DUT worker on CPU 1).

    `share`: when the host has fewer than 1 + 2 × workers CPUs, map lcores
    onto shared CPUs instead (EAL --lcores; mplb's `[workers] cpus` test
    mode), so that N DUT workers and N generator lcores still run, for
    correctness: DUT workers round-robin over the CPUs after the first,
    generator lcores over the CPUs left after the DUT's, else on the first.
    Figures from a shared layout say nothing about scaling."""

    def __init__(self, workers, cpus=None, share=False):
        cpus = sorted(cpus if cpus is not None else os.sched_getaffinity(0))
        self.workers = workers
        self.cpus = cpus
        self.dut_main = cpus[0]
        self.lcore_cpus = None  # lcore id -> CPU, for every DPDK process, when shared
        if len(cpus) >= 1 + 2 * workers or (not share and len(cpus) >= 1 + workers):
            self.dut_workers = cpus[1 : 1 + workers]
            self.dut_worker_lcores = self.dut_workers
            spare = cpus[1 + workers :]
            if len(spare) >= workers:
                self.gen_lcores = spare[:workers]
                self.shared = False
            else:
                self.gen_lcores = [cpus[0]]
                self.shared = True
            self.gen_cpus = self.gen_lcores
            self.oversubscribed = False
        elif share:
            others = cpus[1:] or cpus[:1]
            self.dut_workers = [others[i % len(others)] for i in range(workers)]
            # Lcore ids above the main lcore's, each mapped to its CPU.
            self.dut_worker_lcores = [self.dut_main + 1 + i for i in range(workers)]
            spare = cpus[1 + workers :] or cpus[:1]
            self.gen_cpus = [spare[i % len(spare)] for i in range(workers)]
            self.gen_lcores = list(range(workers))
            self.shared = True
            self.oversubscribed = True
        else:
            raise SystemExit(
                f"--workers {workers} needs at least {1 + workers} CPUs (have {len(cpus)}: {cpus})"
            )

    def gen_eal(self):
        """The generator's lcore arguments."""
        if self.oversubscribed:
            return ["--lcores", ",".join(f"{l}@{c}" for l, c in zip(self.gen_lcores, self.gen_cpus))]
        return ["-l", ",".join(str(c) for c in self.gen_lcores)]

    def testpmd_eal(self):
        """testpmd's lcore arguments: main, then the forwarding lcores."""
        if self.oversubscribed:
            pairs = [(self.dut_main, self.dut_main), *zip(self.dut_worker_lcores, self.dut_workers)]
            return ["--lcores", ",".join(f"{l}@{c}" for l, c in pairs), "--main-lcore", str(self.dut_main)]
        lcores = ",".join(str(c) for c in [self.dut_main, *self.dut_workers])
        return ["-l", lcores, "--main-lcore", str(self.dut_main)]

    def as_dict(self):
        """Which CPUs each process used, for results.json."""
        return {
            "workers": self.workers,
            "cpus_available": self.cpus,
            "dut_main_cpu": self.dut_main,
            "dut_worker_cpus": self.dut_workers,
            "generator_cpus": self.gen_cpus,
            "generator_lcores": len(self.gen_lcores),
            "cpus_shared": self.shared,
        }

    def describe(self):
        s = (
            f"DUT main lcore {self.dut_main}, DUT workers on CPUs {self.dut_workers}, "
            f"generator lcores on CPUs {self.gen_cpus}"
        )
        if self.oversubscribed:
            s += " (test mode: lcores share CPUs; correctness only, not scaling evidence)"
        elif self.shared:
            s += " (the generator shares the DUT's main lcore: not enough CPUs for both)"
        return s


class Gen:
    """How to run mplb-gen for one measurement (the CLI contract of gen).

    With N workers the link has N queue pairs, as a NIC with RSS would: mplb
    sends on its own tx queue per worker on every port, and a memif link only
    comes up when both ends have the same number of rings, so the generator
    must open N queue pairs and spread its flows over them (`--queues N`)."""

    def __init__(self, binary, layout):
        self.binary = binary
        self.layout = layout
        if layout.workers > 1 and "--queues" not in self.help():
            raise SystemExit(
                f"--workers {layout.workers}: this mplb-gen opens one queue pair per link and has no "
                "--queues option; mplb with N workers sends on N tx queues per port, and a memif client "
                "with more rings than its server never comes up. Use --workers 1, or a generator with --queues."
            )

    def help(self):
        r = subprocess.run([self.binary, "--help"], capture_output=True, text=True, timeout=10)
        return r.stdout

    def argv(
        self,
        *,
        vdev,
        port,
        prefix,
        lb_config,
        expect,
        mix,
        flows,
        ipv6,
        size,
        rate,
        duration,
        warmup,
        json_path,
        linger=30,
        extra=(),
    ):
        eal = " ".join([vdev, *common_eal(prefix), *self.layout.gen_eal()])
        return [
            self.binary,
            "--port", port,
            "--eal", eal,
            "--lb-config", lb_config,
            "--expect", expect,
            "--mix", mix,
            "--flows", str(flows),
            "--ipv6", str(ipv6),
            "--size", str(size),
            "--rate", str(int(rate)),
            "--duration", f"{duration:g}",
            "--warmup", f"{warmup:g}",
            "--json", json_path,
            "--progress", "1",
            "--linger", str(linger),
            *(["--queues", str(self.layout.workers)] if self.layout.workers > 1 else []),
            *extra,
        ]  # fmt: skip


def testpmd_argv(layout, prefix, vdev):
    n = layout.workers
    return [
        "dpdk-testpmd",
        *layout.testpmd_eal(),
        *common_eal(prefix), vdev,
        "--",
        "--forward-mode=macswap", f"--nb-cores={n}", f"--rxq={n}", f"--txq={n}",
        "--rxd=1024", "--txd=1024", "--burst=32",
        "--auto-start", "--stats-period", "1",
    ]  # fmt: skip


class MplbDut:
    """mplb as the device under test: its config, command and observers."""

    def __init__(
        self, binary, layout, tmp, ports, flow_capacity, untrusted_quota_pct=25, untrusted_timeout_secs=None, vips=1
    ):
        self.binary = binary
        self.tmp = tmp
        self.prefix = unique_prefix("mplb")
        self.metrics_port = free_tcp_port()
        self.control_socket = os.path.join(tmp, "mplb.sock")
        self.config_path = os.path.join(tmp, "mplb.toml")
        eal = [*common_eal(self.prefix), *(vdev for _, _, vdev in ports)]
        n = layout.workers
        text = lbconfig.render(
            eal_args=eal,
            ports=[(name, dev) for name, dev, _ in ports],
            main_lcore=layout.dut_main,
            worker_lcores=layout.dut_worker_lcores,
            worker_cpus=layout.dut_workers if layout.oversubscribed else None,
            flow_capacity=flow_capacity,
            untrusted_quota_pct=untrusted_quota_pct,
            untrusted_timeout_secs=untrusted_timeout_secs,
            metrics_port=self.metrics_port,
            control_socket=self.control_socket,
            mempool_size=max(16383, 8192 * n * len(ports) - 1),
            vips=vips,
        )
        with open(self.config_path, "w") as f:
            f.write(text)

    def argv(self):
        return [self.binary, "run", "--config", self.config_path, "--stats-interval", "1"]

    def ready(self):
        """Whether the metrics endpoint accepts connections: mplb opens it
        once its workers run. A connection, not a scrape: a scrape of many
        VIPs' page takes longer than a poll may wait, and a scrape given up
        on is still rendered, by the management thread, on the CPUs the
        run measures."""
        try:
            with socket.create_connection(("127.0.0.1", self.metrics_port), timeout=1.0):
                return True
        except OSError:
            return False

    def metrics(self):
        """The instance's own series (`?scope=global`): what the samples
        read, whatever the number of VIPs (whose series, with thousands,
        are tens of MB)."""
        return observe.scrape(self.metrics_port, scopes=("global",))


def remove_runtime_dir(prefix):
    """DPDK makes /var/run/dpdk/PREFIX for its telemetry sockets even under
    --in-memory and leaves the directory behind; remove it."""
    shutil.rmtree(os.path.join("/var/run/dpdk", prefix), ignore_errors=True)


def read_json(path):
    """A JSON file, or None while it is missing or not yet completely written."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None
