"""The mplb configuration of a benchmark run, written as TOML.

The same file is the device under test's config and the generator's
`--lb-config` (the generator takes the VIPs, backends and forwarding modes
from it: what to send to and what to expect back). The services:

* `web4`, 198.18.0.10:80, layer-2 DSR to four backends (198.18.1.11-14);
* `web6`, [fd00:18::10]:80, IPv6-in-IPv6 to four backends (fd00:18:1::11-14),
  so the IPv6 share also exercises encapsulation.

With `vips` N > 1 (`bench/run --vips`), N - 1 more of each: `vip4-K` on
198.18.64.0 upwards and `vip6-K` on fd00:18:40::8000 upwards (K = 1..N-1),
the same backends and forwarding as `web4` and `web6`, a Maglev table of
1021 slots shared by each family's (as the datapath benchmark's filler VIPs,
`bench/scenarios.rs`). The generator spreads its flows over a family's VIPs
by a hash of the flow index, so that a burst reaches many of them.

Backends carry MACs (layer 2 needs them; IP-in-IP uses them as the next hop).
Health checks are off: the backends are not hosts, only addresses the
generator checks for."""

VIP4 = "198.18.0.10"
VIP6 = "fd00:18::10"
VIP_PORT = 80
OWN4 = "198.18.0.2"
OWN6 = "fd00:18::2"
BACKENDS = 4
# VIPs of each family at most (`vips`): the IPv4 ones stay in
# 198.18.64.0/18, and the two families' addresses differ in their last 16
# bits, which keeps mplb's direct VIP index.
MAX_VIPS = 16384
# Maglev table size of the VIPs past the first of a family (a prime).
FILLER_TABLE_SIZE = 1021


def _backends(vip, family):
    out = []
    for i in range(1, BACKENDS + 1):
        addr = f"198.18.1.{10 + i}" if family == 4 else f"fd00:18:1::{10 + i}"
        mac = f"02:00:00:00:{family:02x}:{10 + i:02x}"
        out.append(
            f'  [[vip.backend]]\n  name = "{vip}-{i}"\n  address = "{addr}"\n  mac = "{mac}"\n'
        )
    return "\n".join(out)


def _fillers(vips):
    """VIPs 1..vips-1 of each family (see the module doc)."""
    if not 1 <= vips <= MAX_VIPS:
        raise ValueError(f"vips: 1..{MAX_VIPS} of each family")
    out = []
    for k in range(1, vips):
        a4 = f"198.18.{64 + (k >> 8)}.{k & 0xFF}"
        a6 = f"fd00:18:40::{0x8000 + k:x}"
        for name, addr, mode, family in ((f"vip4-{k}", a4, "l2-dsr", 4), (f"vip6-{k}", a6, "ipip", 6)):
            out.append(
                f'[[vip]]\nname = "{name}"\naddress = "{addr}"\nport = {VIP_PORT}\nprotocol = "tcp"\n'
                f'forwarding = "{mode}"\ntable_size = {FILLER_TABLE_SIZE}\n\n{_backends(f"web{family}", family)}'
            )
    return "\n".join(out)


def _toml_list(items):
    return "[" + ", ".join(f'"{s}"' for s in items) + "]"


def render(
    *,
    eal_args,
    ports,
    main_lcore,
    worker_lcores,
    flow_capacity,
    untrusted_quota_pct,
    metrics_port,
    control_socket,
    mempool_size,
    untrusted_timeout_secs=None,
    worker_cpus=None,
    vips=1,
):
    """`ports`: list of (name, DPDK device name). `eal_args` must create the
    devices (`--vdev=...`) and give the file prefix. `untrusted_timeout_secs`:
    None for mplb's default (5 s). `worker_cpus`: the CPU of each worker
    lcore when they share CPUs (mplb's `[workers] cpus` test mode). `vips`:
    VIPs of each family (see the module doc)."""
    port_sections = "\n".join(
        f'[[port]]\nname = "{name}"\ndevice = "{device}"\nipv4 = ["{OWN4}"]\nipv6 = ["{OWN6}"]\n'
        for name, device in ports
    )
    lcores = ", ".join(str(c) for c in worker_lcores)
    return f"""# Written by bench/run for one benchmark run; not meant to be edited.
[dpdk]
eal_args = {_toml_list(eal_args)}
main_lcore = {main_lcore}
mempool_size = {mempool_size}
mempool_cache = 256

[workers]
lcores = [{lcores}]
{f"cpus = [{', '.join(str(c) for c in worker_cpus)}]" if worker_cpus else ""}
mode = "balance"

{port_sections}
[datapath]
hash_version = 2

[flow_table]
capacity = {flow_capacity}
untrusted_quota_pct = {untrusted_quota_pct}
{f"untrusted_timeout_secs = {untrusted_timeout_secs}" if untrusted_timeout_secs else ""}

[token_table]
capacity = 1048576

[health]
kind = "none"

[management]
listen = "127.0.0.1:{metrics_port}"
socket = "{control_socket}"

[[vip]]
name = "web4"
address = "{VIP4}"
port = {VIP_PORT}
protocol = "tcp"
forwarding = "l2-dsr"

{_backends("web4", 4)}
[[vip]]
name = "web6"
address = "{VIP6}"
port = {VIP_PORT}
protocol = "tcp"
forwarding = "ipip"

{_backends("web6", 6)}
{_fillers(vips)}"""


def flow_capacity_for(flows, workers):
    """Per-worker table size for `flows` concurrent plain flows spread over
    `workers`: the smallest power of two that keeps the load at or under
    62.5% (8-slot buckets refuse new flows when full; at 50-60% load a few
    buckets overflow, and those flows are forwarded by Maglev instead), and
    at least 4096."""
    per_worker = -(-flows // max(1, workers))
    cap = 4096
    while cap * 5 < per_worker * 8:
        cap *= 2
    return cap
