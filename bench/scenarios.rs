//! Workloads for the datapath benchmarks (`bench/datapath.rs`, criterion) and
//! the instruction counts (`bench/callgrind_datapath.rs`, callgrind).
//!
//! Frames are the real client→VIP frames of `tests/data/*.pcap`, copied for
//! many flows: each flow gets its own source address and port (and its own
//! MPTCP keys or token), with valid IPv4 and TCP checksums. A workload's
//! frames are laid out in one flat buffer in the order they are sent, which
//! is a fixed-seed random order of its flows; a burst takes the next 32, so
//! the frames of a burst belong to different flows. Restoring a frame is a
//! copy into one of 32 reused [`TestFrame`]s: nothing allocates per packet.

// Each of the two users (the benchmark, the callgrind runner) uses a part.
#![allow(dead_code)]

use std::net::Ipv4Addr;
use std::path::Path;

use mplb::datapath::counters::Counters;
use mplb::datapath::flow_table::Bucket;
use mplb::datapath::forwarding::Forwarding;
use mplb::datapath::frame::TestFrame;
use mplb::datapath::process::Datapath;
use mplb::datapath::verdict::{DropReason, Verdict};
use mplb::dpdk::{Eal, TableMemory};
use mplb::engine::worker::WorkerDatapath;
use mplb::testing::{self, Tables};
use mplb::wire::mptcp;
use mplb::wire::parse::{L4, parse_frame};
use mplb::wire::{ipv4, tcp};

/// Frames per burst, as the DPDK worker receives them.
pub const BURST: usize = 32;

/// The VIP of the captures: L2 DSR.
const VIP_DSR: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 10);
/// Same backends, IP-in-IP.
const VIP_IPIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 11);
/// Same backends, L2 DSR, `mptcp_tracking = false`.
const VIP_STATELESS: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 12);
/// The VIP with `announce_backend_address` (token_learn_announce).
const VIP_ANNOUNCE: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 13);
/// Frames of the token_learn_announce workload: within the per-worker burst
/// of announcements, so that the first pass announces every one.
const ANNOUNCE_FRAMES: usize = 992;

/// The measured paths. Names are the benchmark ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// SYN with MP_CAPABLE to the L2 DSR VIP: Maglev, no state.
    MptcpSynL2,
    /// The same SYNs to the IP-in-IP VIP: Maglev, IPv4-in-IPv4.
    MptcpSynIpip,
    /// MPTCP data (DSS) to a VIP with `mptcp_tracking = false`: a flow-table
    /// miss, then Maglev; nothing inserted.
    MptcpDss,
    /// MPTCP data (DSS) of connections whose third ACK was seen, so their
    /// initial subflow is tracked (the default): a flow-table hit on an MPTCP
    /// entry.
    MptcpDssTracked,
    /// Plain-TCP ACKs of established flows: a flow-table hit.
    PlainHit,
    /// Plain-TCP hit to the IP-in-IP VIP.
    PlainHitIpip,
    /// MP_CAPABLE third ACK with both keys: flow-table miss, Maglev, SHA-256
    /// of the server key, token-table learn.
    TokenLearn,
    /// MP_JOIN SYN whose token was learnt: token-table hit, flow-table pin.
    JoinByToken,
    /// The token-learn third ACKs to a VIP with `announce_backend_address`.
    /// Its workload (992 frames, within the worker's burst of 1 000
    /// announcements) is checked to announce every one when first sent;
    /// sent again (the measured loop) each hits its pin: the retransmitted
    /// third ACK, `add_addr_skipped_duplicate`. The announcing first pass
    /// is measured with `PACKETS=0` (bench/README.md).
    TokenLearnAnnounce,
}

impl Scenario {
    pub const ALL: [Scenario; 9] = [
        Scenario::MptcpSynL2,
        Scenario::MptcpSynIpip,
        Scenario::MptcpDss,
        Scenario::MptcpDssTracked,
        Scenario::PlainHit,
        Scenario::PlainHitIpip,
        Scenario::TokenLearn,
        Scenario::JoinByToken,
        Scenario::TokenLearnAnnounce,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::MptcpSynL2 => "mptcp_syn_l2dsr",
            Scenario::MptcpSynIpip => "mptcp_syn_ipip",
            Scenario::MptcpDss => "mptcp_dss_miss",
            Scenario::MptcpDssTracked => "mptcp_dss_tracked",
            Scenario::PlainHit => "plain_hit_l2dsr",
            Scenario::PlainHitIpip => "plain_hit_ipip",
            Scenario::TokenLearn => "token_learn",
            Scenario::JoinByToken => "join_by_token",
            Scenario::TokenLearnAnnounce => "token_learn_announce",
        }
    }

    pub fn from_name(name: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|p| p.name() == name)
    }
}

/// Sizes of a benchmark setup.
#[derive(Clone, Copy, Debug)]
pub struct Sizes {
    /// Flow-table capacity (a power of two).
    pub flow_capacity: usize,
    /// Plain-TCP flows established in the table before measuring.
    pub established: usize,
    /// Distinct flows of each of the other workloads.
    pub flows_per_path: usize,
    /// VIPs in the snapshot, at least 2 (the captures' two); see
    /// [`filler_vips`].
    pub vips: usize,
    /// Backends of each of the captures' VIPs, at least their 4; see
    /// [`widened`].
    pub backends: usize,
}

impl Sizes {
    /// The benchmark's: 1M established flows in a 2M table.
    pub const FULL: Sizes = Sizes {
        flow_capacity: 1 << 21,
        established: 1 << 20,
        flows_per_path: 1 << 18,
        vips: 2,
        backends: 4,
    };

    /// `MPLB_BENCH_VIPS=N`: `N` VIPs instead of 2 (see [`filler_vips`]);
    /// `MPLB_BENCH_BACKENDS=N`: `N` backends in each of the captures' VIPs
    /// instead of 4 (see [`widened`]).
    pub fn with_env(self) -> Sizes {
        let var = |name: &str, default: usize| match std::env::var(name) {
            Ok(n) => n.parse().unwrap_or_else(|_| panic!("{name}: a number")),
            Err(_) => default,
        };
        Sizes {
            vips: var("MPLB_BENCH_VIPS", self.vips),
            backends: var("MPLB_BENCH_BACKENDS", self.backends),
            ..self
        }
    }
}

/// The captures' VIPs of `fixture` (bench.toml, four backends each) with
/// `backends - 4` more each, on 198.18.2.0 upwards: a large VIP, where a
/// flow-table hit checks that its backend is still the VIP's.
fn widened(fixture: &str, backends: usize) -> String {
    let mut extra = String::new();
    for k in 0..backends.saturating_sub(4) {
        assert!(k < 250 * 62, "at most 15504 backends a VIP");
        let (hi, lo) = (2 + k / 250, 1 + k % 250);
        extra += &testing::Backend::new(format!("x{k}"), format!("198.18.{hi}.{lo}"))
            .mac(format!("02:00:00:00:{hi:02x}:{lo:02x}"))
            .to_string();
    }
    // Each VIP's text runs to the next `[[vip]]`: appended there, the
    // backends are that VIP's (TOML's array of tables).
    fixture
        .split("\n[[vip]]")
        .enumerate()
        .map(|(i, part)| {
            if i == 0 {
                part.to_string()
            } else {
                format!("{part}\n{extra}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n[[vip]]")
}

/// The hash version of the benchmarks' config: 2, what the example configs
/// give a new fleet (`configs/`), or `MPLB_BENCH_HASH_VERSION` (1: every
/// flow hashed over the 37-byte key, the default of a config without it).
fn hash_version() -> u32 {
    match std::env::var("MPLB_BENCH_HASH_VERSION") {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("MPLB_BENCH_HASH_VERSION: a number")),
        Err(_) => 2,
    }
}

/// Maglev table size of the filler VIPs: a prime over 100 x their 4
/// backends, so that 10 000 of them take 20 MB (the captures' VIPs keep
/// 65537).
const FILLER_TABLE_SIZE: u32 = 1021;

/// The address of filler VIP `k`: 198.18.64.0 upwards (clear of the port's,
/// the captures' VIPs and the backends), at most 49152 of them.
fn filler_addr(k: usize) -> Ipv4Addr {
    assert!(k < 192 * 256, "at most 49152 filler VIPs");
    Ipv4Addr::new(198, 18, 64 + (k >> 8) as u8, k as u8)
}

/// `n - 2` VIPs beside the captures' two, on their own addresses, port 80,
/// the same four backends; even ones L2 DSR, odd ones IP-in-IP. The flows of
/// every workload are spread over the VIPs of their forwarding mode (see
/// [`Bench::vip_of`]), so with many VIPs each burst touches many VIPs, as
/// traffic to a large deployment does. The VIPs share one Maglev table (the
/// same backends), unless `MPLB_BENCH_TABLES=per-vip`: then the first two
/// backends' weights differ from VIP to VIP, which gives each its own table,
/// as distinct backend sets would (10 000 tables of 1021 slots: 20 MiB).
/// Their addresses, in a row, get the VIP index's direct table from about
/// 5 000 VIPs (fewer do not fill enough of the span from the captures' VIPs:
/// hashed); `MPLB_BENCH_INDEX=hashed` adds an idle IPv6 VIP whose last four
/// bytes are the first filler's, which no direct table parts from it, so
/// that the addresses are hashed, as scattered ones would be, and
/// `MPLB_BENCH_INDEX=direct` checks that they were not.
fn filler_vips(n: usize) -> String {
    let per_vip = std::env::var("MPLB_BENCH_TABLES").is_ok_and(|t| t == "per-vip");
    let hashed = std::env::var("MPLB_BENCH_INDEX").is_ok_and(|t| t == "hashed");
    let mut out = String::new();
    if hashed && n > 2 {
        let [_, _, c, d] = filler_addr(0).octets();
        let twin = format!("fd00::c612:{:x}", u16::from_be_bytes([c, d]));
        let a = testing::Backend::new("a", "198.18.1.11").mac("02:00:00:00:01:11");
        out += &testing::Vip::new("twin", twin, 80).backend(a).to_string();
    }
    for k in 0..n.saturating_sub(2) {
        let mut v = testing::Vip::new(format!("filler{k}"), filler_addr(k).to_string(), 80)
            .option("table_size", FILLER_TABLE_SIZE);
        if k % 2 == 1 {
            v = v.option("forwarding", "\"ipip\"");
        }
        for (i, (name, last)) in [("a", 11), ("b", 12), ("c", 13), ("d", 14)]
            .into_iter()
            .enumerate()
        {
            let b = testing::Backend::new(name, format!("198.18.1.{last}"))
                .mac(format!("02:00:00:00:01:{last}"));
            v = v.backend(match (per_vip, i) {
                (true, 0) => b.weight(100 + (k % 100) as u32),
                (true, 1) => b.weight(100 + (k / 100 % 100) as u32),
                _ => b,
            });
        }
        out += &v.to_string();
    }
    out
}

/// Bytes of each frame stored per flow: all its headers (Ethernet, IP, TCP
/// with options: at most 94 bytes in these IPv4 workloads). The datapath
/// reads and rewrites nothing beyond them.
const HEAD: usize = 128;

/// Frames in sending order: each frame's first [`HEAD`] bytes in one flat
/// buffer, and the rest — the payload, the same for every frame of a
/// workload — once. A NIC writes a frame's payload without the CPU reading
/// it; copying every payload out of a buffer of hundreds of MB would make
/// the harness, not the datapath, the cost measured (366-byte DSS frames
/// of 262144 flows: 24.5 of 70.8 ns/packet).
pub struct Frames {
    heads: Vec<u8>,
    spans: Vec<(usize, usize)>,
    /// Bytes past `HEAD` of every frame (all frames have the same length).
    tail: Vec<u8>,
    next: usize,
}

impl Frames {
    fn with_capacity(frames: usize, frame_len: usize) -> Frames {
        Frames {
            heads: Vec::with_capacity(frames * frame_len.min(HEAD)),
            spans: Vec::with_capacity(frames),
            tail: Vec::new(),
            next: 0,
        }
    }

    /// Appends `frame`; panics if its payload differs from the first
    /// frame's (a per-flow field past `HEAD` would be lost).
    fn push(&mut self, frame: &[u8]) {
        let (head, tail) = frame.split_at(frame.len().min(HEAD));
        if self.spans.is_empty() {
            self.tail = tail.to_vec();
        }
        assert_eq!(
            tail,
            &self.tail[..],
            "frames differ past their first {HEAD} bytes"
        );
        self.spans.push((self.heads.len(), head.len()));
        self.heads.extend_from_slice(head);
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Bytes the workload streams through the cache per pass (the heads;
    /// the shared tail stays cached).
    pub fn total_bytes(&self) -> usize {
        self.heads.len()
    }

    /// Copies the next `pool.len()` frames into `pool`, wrapping around.
    #[inline]
    fn load(&mut self, pool: &mut [TestFrame]) {
        for f in pool {
            let (off, len) = self.spans[self.next];
            f.reset_parts(&self.heads[off..off + len], &self.tail);
            self.next += 1;
            if self.next == self.spans.len() {
                self.next = 0;
            }
        }
    }
}

/// Where the flow table lives.
#[derive(Clone, Copy)]
pub enum Memory<'e> {
    /// DPDK memory from the EAL's hugepages, as the engine's workers get it.
    Dpdk(&'e Eal),
    /// The engine's fallback: ordinary memory advised for transparent huge
    /// pages.
    Heap,
}

/// EAL arguments of the benchmark: hugepages, nothing shared on disk, no
/// devices, the main thread on lcore 0.
pub fn eal_args() -> Vec<String> {
    [
        "mplb-bench",
        "--in-memory",
        &format!("--file-prefix=mplb-bench-{}", std::process::id()),
        "--no-pci",
        "--no-telemetry",
        "-l",
        "0",
        "--log-level=lib.eal:error",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// One benchmark's state: the forwarding snapshot and a worker's datapath
/// (the engine's type, flow table in [`TableMemory`]) with its tables
/// filled, plus the 32 reused frames of a burst.
pub struct Bench {
    pub fwd: Forwarding,
    pub dp: WorkerDatapath,
    /// The clock passed to the datapath; advances 50 ns per frame.
    pub now: u64,
    pub sizes: Sizes,
    templates: Templates,
    /// Established plain flows: (flow index, to the IP-in-IP VIP).
    established: Vec<(usize, bool)>,
    /// The VIPs of each forwarding mode, the captures' first; only that
    /// first one gets traffic with `MPLB_BENCH_SPREAD=0`.
    vips_dsr: Vec<Ipv4Addr>,
    vips_ipip: Vec<Ipv4Addr>,
    pool: Vec<TestFrame>,
    verdicts: [Verdict; BURST],
}

/// A workload: its frames in sending order.
pub struct Workload {
    pub scenario: Scenario,
    pub frames: Frames,
}

// Deterministic pseudo-random numbers (splitmix64).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }
}

/// The client→VIP frames used as templates, from the real captures.
struct Templates {
    mptcp_syn: Vec<u8>,
    third_ack: Vec<u8>,
    dss_data: Vec<u8>,
    join_syn: Vec<u8>,
    plain_ack: Vec<u8>,
}

/// The captures' folder: `MPLB_BENCH_DATA` if set (a benchmark binary run
/// away from its build tree, e.g. from the devbench bundle), else the
/// repository's `tests/data`.
fn data_dir() -> std::path::PathBuf {
    match std::env::var_os("MPLB_BENCH_DATA") {
        Some(d) => d.into(),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data"),
    }
}

fn read_pcap(name: &str) -> Vec<Vec<u8>> {
    let path = data_dir().join(name);
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut reader = pcap_file::pcap::PcapReader::new(file).expect("pcap header");
    let mut frames = Vec::new();
    while let Some(p) = reader.next_packet() {
        frames.push(p.expect("pcap packet").data.into_owned());
    }
    frames
}

/// The first client→VIP:80 TCP frame of `capture` that `want` accepts.
fn find(capture: &str, want: impl Fn(&mptcp_view::Seg) -> bool) -> Vec<u8> {
    read_pcap(capture)
        .into_iter()
        .find(|f| mptcp_view::Seg::of(f).is_some_and(|s| s.dst_port == 80 && want(&s)))
        .unwrap_or_else(|| panic!("{capture}: no such frame"))
}

mod mptcp_view {
    use super::*;

    /// What the templates are picked by.
    pub struct Seg {
        pub dst_port: u16,
        pub syn: bool,
        pub ack: bool,
        pub payload: usize,
        pub capable_keys: bool,
        pub join: bool,
        pub dss: bool,
        pub any_mptcp: bool,
    }

    impl Seg {
        pub fn of(frame: &[u8]) -> Option<Seg> {
            let p = parse_frame(frame).ok()?;
            let ip = p.ip?;
            let L4::Tcp(t) = ip.l4 else { return None };
            let payload = ip.l3_end - ip.l4_offset - usize::from(t.header_len);
            Some(Seg {
                dst_port: t.dst_port,
                syn: t.flags.syn(),
                ack: t.flags.ack(),
                payload,
                capable_keys: t.mptcp.capable.is_some_and(|c| c.receiver_key().is_some()),
                join: t.mptcp.join_syn.is_some(),
                dss: t.mptcp.has_dss(),
                any_mptcp: t.mptcp.any(),
            })
        }
    }
}

impl Templates {
    fn load() -> Templates {
        Templates {
            mptcp_syn: find("mptcp_v4.pcap", |s| s.syn && !s.ack && s.any_mptcp),
            third_ack: find("mptcp_v4.pcap", |s| {
                !s.syn && s.capable_keys && s.payload == 0
            }),
            dss_data: find("mptcp_v4.pcap", |s| !s.syn && s.dss && s.payload > 0),
            join_syn: find("mptcp_join_v4.pcap", |s| s.syn && s.join),
            plain_ack: find("tcp_v4.pcap", |s| {
                !s.syn && s.ack && s.payload == 0 && !s.any_mptcp
            }),
        }
    }
}

/// Offsets of a v4 TCP frame: (l4 offset, TCP header length, l3 end).
fn offsets(frame: &[u8]) -> (usize, usize, usize) {
    let p = parse_frame(frame).expect("template parses");
    let ip = p.ip.expect("IP");
    let L4::Tcp(t) = ip.l4 else {
        panic!("template is not TCP")
    };
    (ip.l4_offset, usize::from(t.header_len), ip.l3_end)
}

/// Offset in `frame` of the first MPTCP option (kind 30).
fn mptcp_option(frame: &[u8]) -> usize {
    let (l4, hlen, _) = offsets(frame);
    let mut i = l4 + 20;
    while i < l4 + hlen {
        match frame[i] {
            0 => break,
            1 => i += 1,
            30 => return i,
            _ => i += usize::from(frame[i + 1]),
        }
    }
    panic!("template has no MPTCP option")
}

/// Sets the IPv4 source, destination and TCP source port of a template
/// and recomputes both checksums.
fn retarget(frame: &mut [u8], src: Ipv4Addr, dst: Ipv4Addr, sport: u16) {
    let (l4, _, l3_end) = offsets(frame);
    let mut ip = ipv4::Packet::new_checked(&mut frame[14..l3_end]).expect("IPv4");
    ip.set_src_addr(src);
    ip.set_dst_addr(dst);
    tcp::Packet::new_checked(&mut frame[l4..l3_end])
        .expect("TCP")
        .set_src_port(sport);
    fix_checksums(frame);
    debug_assert_eq!(offsets(frame).2, l3_end);
}

fn fix_checksums(frame: &mut [u8]) {
    let (l4, _, l3_end) = offsets(frame);
    let mut ip = ipv4::Packet::new_checked(&mut frame[14..l3_end]).expect("IPv4");
    ip.fill_checksum();
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    tcp::Packet::new_checked(&mut frame[l4..l3_end])
        .expect("TCP")
        .fill_checksum_v4(src, dst)
        .expect("segment length");
}

/// The client address and port of flow `i` of a workload; `space` keeps the
/// workloads' flows apart (a different source port range each).
fn client(space: u16, i: usize) -> (Ipv4Addr, u16) {
    let hi = (i >> 16) as u16;
    assert!(hi < 64, "at most 4M flows per workload");
    let a = Ipv4Addr::new(198, 19, (i >> 8) as u8, i as u8);
    (a, 1024 + space * 64 + hi)
}

/// The server key of connection `i` of the MPTCP workloads.
fn server_key(i: usize) -> u64 {
    Rng::new(0x6b65_7973 ^ i as u64).next_u64()
}

/// Nanoseconds the clock advances per frame.
const NS_PER_FRAME: u64 = 50;

impl Bench {
    /// Builds the snapshot and the datapath, then establishes
    /// `sizes.established` plain-TCP flows, alternately to the L2 DSR and the
    /// IP-in-IP VIP (each sent an ACK twice: the first inserts an untrusted
    /// entry, the second promotes it). Flows whose bucket is already full
    /// are skipped, so exactly that many are in the table.
    pub fn new(sizes: Sizes, memory: Memory) -> Bench {
        // The burst's frames first, into a fresh heap: in a row at one
        // stride, as a mempool's mbufs are, whatever the snapshot allocates
        // and frees after. Made after it, they landed in its holes, apart by
        // strides that depend on the VIP count (16.7 KB at 10 000 VIPs,
        // 22 KB with a table per VIP, 2.2 KB at 2), and at 10 000 VIPs
        // callgrind's L1 lost 28 of every 32 frames between their restore
        // and their parse: two L1 misses a packet that were the bench's own.
        let pool: Vec<TestFrame> = (0..BURST).map(|_| TestFrame::new(&[0; 2048])).collect();
        // tests/fixtures/bench.toml: the VIPs of the captures, L2 DSR and
        // IP-in-IP, with this run's table sizes and hash version.
        let text = format!(
            "{}{}[datapath]\nhash_version = {}\n[flow_table]\ncapacity = {}\n[token_table]\ncapacity = {}\n",
            widened(testing::fixture("bench"), sizes.backends),
            filler_vips(sizes.vips),
            hash_version(),
            sizes.flow_capacity,
            (sizes.flows_per_path * 4).next_power_of_two(),
        );
        // MPLB_BENCH_SPREAD=0: the flows go to the captures' two VIPs only,
        // the others are configured but idle (the VIP lookup's cost alone,
        // without the other VIPs' state in the cache).
        let spread = std::env::var("MPLB_BENCH_SPREAD").map_or(true, |s| s != "0");
        let fillers = 0..if spread {
            sizes.vips.saturating_sub(2)
        } else {
            0
        };
        let vips_dsr = std::iter::once(VIP_DSR)
            .chain(fillers.clone().filter(|k| k % 2 == 0).map(filler_addr))
            .collect();
        let vips_ipip = std::iter::once(VIP_IPIP)
            .chain(fillers.filter(|k| k % 2 == 1).map(filler_addr))
            .collect();
        let config = testing::parse(&text);
        let fwd = testing::forwarding(&config, &[[2, 0, 0, 0, 0, 1]]);
        if sizes.vips > 2 {
            // The table asked for (`MPLB_BENCH_INDEX=direct|hashed`), or
            // whichever the fillers get (below about 5 000 they are too few
            // for the span from the captures' VIPs: hashed), said.
            let got = match fwd.vip_index().hashed() {
                true => "hashed",
                false => "direct",
            };
            match std::env::var("MPLB_BENCH_INDEX") {
                Ok(want) => assert_eq!(got, want, "MPLB_BENCH_INDEX"),
                Err(_) => eprintln!("VIP index: {} VIPs, {got} table", sizes.vips),
            }
        }
        let Tables { flow, tokens } = Tables::of(&config);
        let buckets = flow.buckets().expect("flow table config");
        let table = match memory {
            Memory::Dpdk(eal) => TableMemory::dpdk(
                eal,
                buckets,
                Bucket::EMPTY,
                eal.lcore_socket(0),
            )
            .expect(
                "hugepage memory for the flow table (reserve hugepages, or MPLB_BENCH_MEMORY=heap)",
            ),
            Memory::Heap => {
                TableMemory::heap(buckets, Bucket::EMPTY).expect("heap memory for the flow table")
            }
        };
        let dp = Datapath::with_memory(flow, table, tokens).expect("flow table");
        let mut b = Bench {
            fwd,
            dp,
            // A clock that has been running for a day.
            now: 86_400 * 1_000_000_000,
            sizes,
            templates: Templates::load(),
            established: Vec::with_capacity(sizes.established),
            vips_dsr,
            vips_ipip,
            pool,
            verdicts: [Verdict::Drop(DropReason::Malformed); BURST],
        };
        b.establish();
        b
    }

    /// The VIP flow `i` of a workload goes to, among those of its mode
    /// (pairs of flows per VIP, so the alternating established flows reach
    /// every VIP).
    fn vip_of(&self, ipip: bool, i: usize) -> Ipv4Addr {
        let group = if ipip {
            &self.vips_ipip
        } else {
            &self.vips_dsr
        };
        group[(i >> 1) % group.len()]
    }

    fn establish(&mut self) {
        let mut frame = self.templates.plain_ack.clone();
        let mut tf = TestFrame::new(&[0; 2048]);
        let mut i = 0;
        while self.established.len() < self.sizes.established {
            let ipip = i % 2 == 1;
            let (src, sport) = client(0, i);
            retarget(&mut frame, src, self.vip_of(ipip, i), sport);
            let before = self.dp.flow_table().len();
            for _ in 0..2 {
                tf.reset(&frame);
                let v = self.dp.process(&self.fwd, 0, &mut tf, self.now);
                assert_eq!(v, Verdict::Forward, "establishing flow {i}");
                self.now += NS_PER_FRAME;
            }
            if self.dp.flow_table().len() > before {
                self.established.push((i, ipip));
            }
            i += 1;
        }
        assert_eq!(self.dp.flow_table().untrusted_len(), 0);
    }

    /// Builds a workload's frames (and, for joins, first teaches the token
    /// table the tokens they carry), then sends it once and checks that
    /// every frame took the path it is meant to measure.
    pub fn workload(&mut self, scenario: Scenario) -> Workload {
        let n = self.sizes.flows_per_path;
        let mut rng = Rng::new(0x6d70_6c62_0000 + scenario as u64);
        let mut order: Vec<usize> = match scenario {
            Scenario::PlainHit | Scenario::PlainHitIpip => {
                let ipip = scenario == Scenario::PlainHitIpip;
                self.established
                    .iter()
                    .filter(|(_, v)| *v == ipip)
                    .map(|(i, _)| *i)
                    .collect()
            }
            Scenario::TokenLearnAnnounce => (0..n.min(ANNOUNCE_FRAMES)).collect(),
            _ => (0..n).collect(),
        };
        rng.shuffle(&mut order);
        if scenario == Scenario::MptcpDssTracked {
            // The third ACKs of these connections (the token-learn workload,
            // sent once when built) track them.
            self.workload(Scenario::TokenLearn);
        }
        if scenario == Scenario::JoinByToken {
            // Learn every connection's token, then keep the joins whose token
            // the table kept (a full 4-way set overwrites its oldest entry).
            // Building the learn workload sends it once.
            self.workload(Scenario::TokenLearn);
            let tokens = self.dp.token_table().clone();
            order.retain(|&i| {
                tokens
                    .lookup(mptcp::token_v1(server_key(i)), self.now)
                    .is_some()
            });
        }
        let t = &self.templates;
        let (template, space, ipip) = match scenario {
            Scenario::MptcpSynL2 => (&t.mptcp_syn, 1, false),
            Scenario::MptcpSynIpip => (&t.mptcp_syn, 1, true),
            Scenario::MptcpDss => (&t.dss_data, 2, false),
            Scenario::MptcpDssTracked => (&t.dss_data, 3, false),
            Scenario::PlainHit => (&t.plain_ack, 0, false),
            Scenario::PlainHitIpip => (&t.plain_ack, 0, true),
            Scenario::TokenLearn => (&t.third_ack, 3, false),
            Scenario::TokenLearnAnnounce => (&t.third_ack, 5, false),
            Scenario::JoinByToken => (&t.join_syn, 4, false),
        };
        let mut frame = template.clone();
        let opt = match scenario {
            Scenario::TokenLearn | Scenario::TokenLearnAnnounce | Scenario::JoinByToken => {
                mptcp_option(&frame)
            }
            _ => 0,
        };
        let mut frames = Frames::with_capacity(order.len(), frame.len());
        for &i in &order {
            match scenario {
                Scenario::TokenLearn | Scenario::TokenLearnAnnounce => {
                    // MP_CAPABLE len 20: sender key at +4, receiver key at +12.
                    let client_key = Rng::new(0x636c_6e74 ^ i as u64).next_u64();
                    frame[opt + 4..opt + 12].copy_from_slice(&client_key.to_be_bytes());
                    frame[opt + 12..opt + 20].copy_from_slice(&server_key(i).to_be_bytes());
                }
                Scenario::JoinByToken => {
                    // MP_JOIN SYN: the receiver's token at +4.
                    let token = mptcp::token_v1(server_key(i));
                    frame[opt + 4..opt + 8].copy_from_slice(&token.to_be_bytes());
                }
                _ => {}
            }
            let (src, sport) = client(space, i);
            // The stateless DSS path and the announcing third ACKs have
            // VIPs of their own (tracking off; announce_backend_address).
            let vip = match scenario {
                Scenario::MptcpDss => VIP_STATELESS,
                Scenario::TokenLearnAnnounce => VIP_ANNOUNCE,
                _ => self.vip_of(ipip, i),
            };
            retarget(&mut frame, src, vip, sport);
            frames.push(&frame);
        }
        let mut w = Workload { scenario, frames };
        self.check(&mut w);
        w
    }

    /// Sends the whole workload once; panics unless every frame is
    /// forwarded by the intended path.
    fn check(&mut self, w: &mut Workload) {
        let before = self.dp.counters;
        let flows_before = self.dp.flow_table().len();
        let bursts = w.frames.len() / BURST;
        for _ in 0..bursts {
            self.burst(w);
            assert!(
                self.verdicts.iter().all(|v| *v == Verdict::Forward),
                "{}: {:?}",
                w.scenario.name(),
                self.verdicts
            );
        }
        w.frames.next = 0;
        let sent = (bursts * BURST) as u64;
        let c = self.dp.counters;
        let d = |f: fn(&Counters) -> u64| f(&c) - f(&before);
        let name = w.scenario.name();
        assert_eq!(d(|c| c.forwarded), sent, "{name}: forwarded");
        match w.scenario {
            Scenario::MptcpSynL2 | Scenario::MptcpSynIpip => {
                assert_eq!(d(|c| c.mptcp_syn), sent, "{name}");
                assert_eq!(d(|c| c.maglev_forwarded), sent, "{name}");
            }
            Scenario::MptcpDss => {
                assert_eq!(d(|c| c.flow_miss), sent, "{name}");
                assert_eq!(d(|c| c.maglev_forwarded), sent, "{name}");
                assert_eq!(
                    self.dp.flow_table().len(),
                    flows_before,
                    "{name}: no insert"
                );
            }
            Scenario::PlainHit | Scenario::PlainHitIpip | Scenario::MptcpDssTracked => {
                assert_eq!(d(|c| c.flow_hit), sent, "{name}");
            }
            Scenario::TokenLearn => assert_eq!(d(|c| c.tokens_learnt), sent, "{name}"),
            Scenario::TokenLearnAnnounce => {
                assert_eq!(d(|c| c.tokens_learnt), sent, "{name}");
                assert_eq!(d(|c| c.add_addr_sent), sent, "{name}: announced");
            }
            Scenario::JoinByToken => assert_eq!(d(|c| c.join_token_hit), sent, "{name}"),
        }
        let ipip = matches!(w.scenario, Scenario::MptcpSynIpip | Scenario::PlainHitIpip);
        let by_mode = if ipip {
            d(|c| c.forwarded_ipip)
        } else {
            d(|c| c.forwarded_l2)
        };
        assert_eq!(by_mode, sent, "{name}: forwarding mode");
    }

    /// One burst of the workload's next 32 frames through `process_burst`.
    #[inline]
    pub fn burst(&mut self, w: &mut Workload) -> Verdict {
        self.load(w);
        self.dp
            .process_burst(&self.fwd, 0, &mut self.pool, &mut self.verdicts, self.now);
        self.now += BURST as u64 * NS_PER_FRAME;
        self.verdicts[BURST - 1]
    }

    /// The first half of [`Bench::burst`]: restores the next 32 frames.
    #[inline]
    pub fn load(&mut self, w: &mut Workload) {
        // The worker sends what the last burst announced (none on all but
        // token_learn_announce's paths) before the next rx burst.
        if !self.dp.announcements().is_empty() {
            self.dp.announcements().drain(|a| {
                std::hint::black_box(a.frame());
            });
        }
        w.frames.load(&mut self.pool);
    }

    /// The second half of [`Bench::burst`]: `process_burst` on the
    /// restored frames.
    #[inline]
    pub fn process_loaded(&mut self) -> Verdict {
        self.dp
            .process_burst(&self.fwd, 0, &mut self.pool, &mut self.verdicts, self.now);
        self.now += BURST as u64 * NS_PER_FRAME;
        self.verdicts[BURST - 1]
    }

    /// The same 32 frames through `process`, one at a time.
    #[inline]
    pub fn burst_by_frame(&mut self, w: &mut Workload) -> Verdict {
        w.frames.load(&mut self.pool);
        for (f, v) in self.pool.iter_mut().zip(self.verdicts.iter_mut()) {
            *v = self.dp.process(&self.fwd, 0, f, self.now);
        }
        self.now += BURST as u64 * NS_PER_FRAME;
        self.verdicts[BURST - 1]
    }

    /// Only the frame restore of [`Bench::burst`] (the harness's own cost).
    #[inline]
    pub fn load_only(&mut self, w: &mut Workload) -> usize {
        w.frames.load(&mut self.pool);
        self.pool[BURST - 1].len()
    }
}
