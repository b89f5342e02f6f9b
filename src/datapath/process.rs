//! The per-packet entry point: frame bytes and `now` in, a verdict (and the
//! rewritten frame) out. No I/O, no clock: the caller passes `now` in
//! nanoseconds of a monotonic clock.
//!
//! Per frame, first the VIP lane (see [`super::brief`]): a TCP or UDP
//! packet of the usual shape (no IP options or extension headers, not a
//! fragment) to a VIP address is read at fixed offsets into a small record
//! and decided and rewritten from it, as below. Every other frame — and a
//! covered one to no VIP address — takes the general path:
//! [`parse_frame`] (one pass over the headers), then
//! * ARP request for an own address or a VIP → ARP reply;
//! * IPv6 neighbour solicitation for an own address or a VIP → NA;
//! * ARP or neighbour advertisement from a backend being resolved → its MAC
//!   recorded (see [`super::neighbours`]) → `Absorbed`;
//! * to an own address: ICMP/ICMPv6 echo → echo reply, anything else dropped
//!   — or, on a port with an exception path ([`Interface::kernel`]), handed
//!   to the host's kernel (`Kernel`), as are ARP replies and neighbour
//!   advertisements (after learning from them), neighbour solicitations the
//!   datapath does not answer, IPv6 to link-local unicast (fe80::/10)
//!   or link-scope multicast (ff02::/16) addresses, and IPv4 to
//!   224.0.0.0/24 (OSPF, VRRP) or 255.255.255.255: what BGP, BFD, SSH and
//!   the kernel's own neighbour discovery need. Within
//!   `[datapath] kernel_rate_pps` per worker; the rest `drop_kernel_limit`;
//! * to a VIP address: TTL / hop limit ≤ 1 → dropped (no time-exceeded is
//!   generated); else the backend is decided (see [`super::decide`]) and
//!   the frame rewritten for it (see [`super::rewrite`]) → `Forward`; a
//!   packet too long for IP-in-IP on the out port gets an ICMP error
//!   instead (see [`super::local::too_big`]) → `Reply`;
//! * anything else is dropped, with one counter per [`DropReason`].
//!
//! TCP/UDP checksums are never verified (offloads and the endpoints do);
//! ICMP checksums are, for the messages answered locally.
//!
//! Nothing here panics on any input bytes: every read is bounds-checked and
//! no arithmetic on input-derived values can overflow.

use std::net::Ipv4Addr;
use std::sync::Arc;

use super::ahead::Ahead;
use super::announce::{self, AnnounceBudget, Pending};
use super::brief::Brief;
use super::budget::RateLimit;
use super::counters::Counters;
use super::decide::{self, Decider, Target};
use super::flow_table::{
    Bucket, BucketMemory, FlowCounters, FlowTable, FlowTableConfig, FlowTableError, SlotHint,
};
use super::forwarding::{Forwarding, ForwardingMode, Interface, Vip};
use super::frame::Frame;
use super::hash::{FlowKey, HashVersion};
use super::local;
use super::neighbours;
use super::rewrite::{self, Inner};
use super::token_table::TokenTable;
use super::traffic::Traffic;
use super::verdict::{DropReason, Verdict};
use crate::wire::ethernet::ethertype;
use crate::wire::ip_proto;
use crate::wire::parse::{L4, Parsed, parse_frame_into};
use crate::wire::{WireError, parse};

/// Frames classified per step of [`Datapath::process_burst`] (stack arrays).
const CHUNK: usize = 32;
/// Frames parsed between prefetching a bucket's metadata line and reading
/// it to prefetch the matching key: ~8 × 25 ns covers a memory access.
/// The VIP index's slot and the VIP are fetched in the same two steps
/// (see [`Ahead`]).
pub(super) const KEY_LAG: usize = 8;
/// [`KEY_LAG`] of a burst that also fetches its frames' VIPs ahead (see
/// [`Ahead`]): its parse loop does more per frame, so the processor's
/// window reaches fewer frames ahead, and a key prefetch that reads a
/// bucket line not yet arrived stalls it. Later, a plain hit at 10 000
/// VIPs with the traffic on two of them took 7 % less time (12: 5 %);
/// spread over all, no change beyond the runs' spread (bench/README.md,
/// sixth round).
pub(super) const STAGED_KEY_LAG: usize = 16;
/// Frames decided between prefetching a VIP's Maglev slot and using it.
/// Where the entries are is in the VIP's line, fetched by the parse loop,
/// so the slot's address is known well before; the slot itself, with a
/// table per VIP, comes from memory.
const SLOT_LEAD: usize = 8;
/// Flow-table buckets swept per [`Datapath::housekeeping`] call.
const HOUSEKEEPING_BUDGET: usize = 64;

/// The full parse of a frame, for the general path: the frames the VIP
/// lane's parse ([`Brief`]) does not cover, and covered ones to no VIP.
struct Full {
    parsed: Result<Parsed, WireError>,
    flow: Option<(FlowKey, u64)>,
}

impl Full {
    #[inline(always)]
    fn of(frame: &[u8], hash: HashVersion) -> Full {
        let mut full = Full {
            parsed: Err(WireError::Truncated),
            flow: None,
        };
        parse_frame_into(frame, &mut full.parsed);
        if let Ok(Parsed { ip: Some(ip), .. }) = &full.parsed {
            decide::fill_flow(ip, &mut full.flow, hash);
        }
        full
    }
}

/// The port a frame came in on and the one it leaves by if forwarded (the
/// backend port of a two-armed setup, else the same).
#[derive(Clone, Copy)]
pub(super) struct Link<'f> {
    port: usize,
    rx: &'f Interface,
    out_port: usize,
    out: &'f Interface,
}

/// One worker's datapath state: its counters, its flow table and a handle on
/// the token table shared by all workers. Owned by exactly one worker. `M` is
/// the flow table's memory (see [`BucketMemory`]): the heap by default.
pub struct Datapath<M = Box<[Bucket]>> {
    pub counters: Counters,
    flows: FlowTable<M>,
    tokens: Arc<TokenTable>,
    backend_port: Option<usize>,
    traffic: Arc<Traffic>,
    /// [`Datapath::process_burst`]'s per-frame briefs, allocated once
    /// (`CHUNK` entries) and reused by every burst.
    pre: Vec<Brief>,
    /// Frames a burst found the VIP of ahead of the decision (see
    /// [`Ahead`]), for the tests to know they took that path.
    #[cfg(test)]
    pub(super) found_ahead: u64,
    /// Rate limit of the ICMP errors this worker generates.
    icmp_budget: local::IcmpBudget,
    /// ADD_ADDRs to send on backends' behalf, for the caller to take after
    /// the burst ([`Datapath::announcements`]), and their rate limit.
    announcements: Pending,
    announce_budget: AnnounceBudget,
    /// Rate limit of the frames handed to the kernel interfaces.
    kernel_budget: RateLimit,
}

impl<M: BucketMemory> std::fmt::Debug for Datapath<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Datapath")
            .field("counters", &self.counters)
            .field("flows", &self.flows.len())
            .field("backend_port", &self.backend_port)
            .finish()
    }
}

impl Datapath {
    /// One per worker, its flow table on the heap; `tokens` is shared by all
    /// workers.
    pub fn new(flow: FlowTableConfig, tokens: Arc<TokenTable>) -> Result<Datapath, FlowTableError> {
        let n = flow.buckets()?;
        Datapath::with_memory(flow, vec![Bucket::EMPTY; n].into_boxed_slice(), tokens)
    }
}

impl<M: BucketMemory> Datapath<M> {
    /// [`Datapath::new`] with the flow table in the caller's memory (see
    /// [`FlowTable::with_memory`]).
    pub fn with_memory(
        flow: FlowTableConfig,
        memory: M,
        tokens: Arc<TokenTable>,
    ) -> Result<Datapath<M>, FlowTableError> {
        Ok(Datapath {
            counters: Counters::default(),
            flows: FlowTable::with_memory(flow, memory)?,
            tokens,
            backend_port: None,
            traffic: Arc::new(Traffic::new()),
            pre: vec![Brief::EMPTY; CHUNK],
            #[cfg(test)]
            found_ahead: 0,
            icmp_budget: local::IcmpBudget::default(),
            announcements: Pending::default(),
            announce_budget: AnnounceBudget::default(),
            kernel_budget: kernel_budget(crate::config::default_kernel_rate_pps()),
        })
    }

    /// Two-armed deployments: the index of the port `Verdict::Forward`
    /// frames leave by. Its MAC becomes their source MAC, and its addresses
    /// and gateway MAC are used for encapsulation. `None` (the default): the
    /// port the frame came in on.
    pub fn set_backend_port(&mut self, port: Option<usize>) {
        self.backend_port = port;
    }

    /// At most `pps` frames a second (bursts of a tenth of it, at least 32)
    /// get `Verdict::Kernel`; the rest are dropped (`drop_kernel_limit`).
    pub fn set_kernel_rate(&mut self, pps: u32) {
        self.kernel_budget = kernel_budget(pps);
    }

    /// The worker's flow table (size, capacity).
    pub fn flow_table(&self) -> &FlowTable<M> {
        &self.flows
    }

    /// The flow table's event counters (evictions, timeouts, promotions...).
    pub fn flow_counters(&self) -> &FlowCounters {
        self.flows.counters()
    }

    /// This worker's per-VIP and per-backend counters (shared for reading).
    pub fn traffic(&self) -> &Arc<Traffic> {
        &self.traffic
    }

    /// The ADD_ADDR frames recorded by the frames processed since they were
    /// last drained (see [`super::announce`]): the caller sends each out of
    /// its `port` and drains them, after every burst.
    pub fn announcements(&mut self) -> &mut Pending {
        &mut self.announcements
    }

    /// The shared token table.
    pub fn token_table(&self) -> &Arc<TokenTable> {
        &self.tokens
    }

    /// Decides what to do with one frame received on port `port`, rewriting
    /// it in place. Never panics, whatever the bytes.
    pub fn process<F: Frame>(
        &mut self,
        fwd: &Forwarding,
        port: usize,
        frame: &mut F,
        now_ns: u64,
    ) -> Verdict {
        let mut brief = Brief::EMPTY;
        brief.fill(frame, fwd.hash);
        let link = self.link(fwd, port);
        self.finish::<F, false>(fwd, port, link, frame, &brief, None, now_ns)
    }

    /// [`Datapath::process`] by the general path alone (no VIP lane): what
    /// the lane is tested and fuzzed against. Same verdicts, bytes and
    /// state, at the general path's cost.
    pub fn process_general<F: Frame>(
        &mut self,
        fwd: &Forwarding,
        port: usize,
        frame: &mut F,
        now_ns: u64,
    ) -> Verdict {
        self.finish::<F, false>(fwd, port, None, frame, &Brief::EMPTY, None, now_ns)
    }

    /// [`Datapath::process`] for a burst: parses and hashes every frame and
    /// prefetches its flow-table bucket first (see [`BucketMemory::prefetch`])
    /// — and, in a snapshot of many VIPs, its VIP's state (see `Ahead`) —
    /// then decides and rewrites each, so the cache misses overlap each
    /// other and the parsing. `verdicts[i]` is frame `i`'s verdict; only
    /// the first `min(frames.len(), verdicts.len())` frames are processed.
    /// Same results as `process` frame by frame.
    pub fn process_burst<F: Frame>(
        &mut self,
        fwd: &Forwarding,
        port: usize,
        frames: &mut [F],
        verdicts: &mut [Verdict],
        now_ns: u64,
    ) {
        // A burst loop per hash version, each compiled with its version a
        // constant: the packet path does not test it.
        // And one with the VIPs' state prefetched, for a snapshot of many
        // VIPs: with a few, it stays in the cache and the prefetch would
        // only add work.
        match (fwd.hash, fwd.many_vips()) {
            (HashVersion::V1, false) => {
                self.burst::<F, 1, false>(fwd, port, frames, verdicts, now_ns)
            }
            (HashVersion::V2, false) => {
                self.burst::<F, 2, false>(fwd, port, frames, verdicts, now_ns)
            }
            (HashVersion::V1, true) => {
                self.burst::<F, 1, true>(fwd, port, frames, verdicts, now_ns)
            }
            (HashVersion::V2, true) => {
                self.burst::<F, 2, true>(fwd, port, frames, verdicts, now_ns)
            }
        }
    }

    /// [`Datapath::process_burst`] hashing by version `HASH`; `STAGED`:
    /// prefetching each frame's VIP state too.
    #[inline(never)]
    fn burst<F: Frame, const HASH: u32, const STAGED: bool>(
        &mut self,
        fwd: &Forwarding,
        port: usize,
        frames: &mut [F],
        verdicts: &mut [Verdict],
        now_ns: u64,
    ) {
        let hash = HashVersion::from_number(HASH).unwrap_or_default();
        let lag = if STAGED { STAGED_KEY_LAG } else { KEY_LAG };
        // Taken out of `self` for the burst (no allocation: an empty Vec is
        // left behind) so that `finish` can borrow `self` mutably.
        let mut pre = std::mem::take(&mut self.pre);
        let link = self.link(fwd, port);
        // `STAGED`: the frames' VIPs found ahead, a chunk's and then
        // nothing (see `Ahead`).
        let mut ahead = [Ahead::NONE; CHUNK + SLOT_LEAD];
        if pre.len() < CHUNK {
            pre.resize(CHUNK, Brief::EMPTY);
        }
        for (fs, vs) in frames.chunks_mut(CHUNK).zip(verdicts.chunks_mut(CHUNK)) {
            // Parse each frame and prefetch its bucket's metadata line as
            // soon as its hash is known, so the misses overlap the parsing
            // of the following frames. KEY_LAG frames later, when that line
            // has most likely arrived, prefetch the key its tag points to
            // (a hit's second line) and keep that slot in the brief: the
            // decision's lookup compares it first (see `SlotHint`).
            // `STAGED`, the frame's VIP likewise: the index's slot of its
            // destination, then the VIP (see `Ahead`).
            let n = fs.len();
            if STAGED && n < CHUNK {
                // The chunk's end: nothing to fetch past it (entries of an
                // earlier chunk of the burst may be there).
                ahead[n..CHUNK].fill(Ahead::NONE);
            }
            for i in 0..n {
                let (Some(f), Some(p)) = (fs.get(i), pre.get_mut(i)) else {
                    break;
                };
                p.fill(f, hash);
                if STAGED {
                    ahead[i % CHUNK].start::<M>(fwd, p);
                }
                // Skipped by the table for an MPTCP lookup in a bucket its
                // summary says holds no MPTCP entry.
                if let Some((h, scope)) = p.table_hash() {
                    if !self.flows.prefetch(h, scope) {
                        // Nothing to read there now: no key to prefetch.
                        // (The lookup checks again: the table may change
                        // before it.)
                        (p.scope, p.hint) = (None, SlotHint::NONE);
                    }
                }
                if let Some(j) = i.checked_sub(lag) {
                    if let Some(q) = pre.get_mut(j) {
                        if let Some((h, _)) = q.table_hash() {
                            q.hint = self.flows.prefetch_key(h);
                        }
                        if STAGED {
                            ahead[j % CHUNK].find::<M>(fwd, &self.traffic, q);
                        }
                    }
                }
            }
            for j in n.saturating_sub(lag)..n {
                if let Some(p) = pre.get_mut(j) {
                    if let Some((h, _)) = p.table_hash() {
                        p.hint = self.flows.prefetch_key(h);
                    }
                    if STAGED {
                        ahead[j % CHUNK].find::<M>(fwd, &self.traffic, p);
                    }
                }
            }
            if !STAGED {
                for ((f, v), p) in fs.iter_mut().zip(vs.iter_mut()).zip(pre.iter()) {
                    *v = self.finish::<F, false>(fwd, port, link, f, p, None, now_ns);
                }
                continue;
            }
            // For a frame that will be sent by Maglev, the VIP's Maglev
            // slot, a few frames ahead of its decision: the VIP's line,
            // fetched above, says where the table's entries are. (With one
            // table for many VIPs it is a cache hit; with a table each, a
            // SYN's miss.)
            for (a, q) in ahead.iter().zip(pre.iter()).take(SLOT_LEAD) {
                a.prefetch_maglev::<M>(Some(q));
            }
            for (j, ((f, v), p)) in fs.iter_mut().zip(vs.iter_mut()).zip(pre.iter()).enumerate() {
                if let Some(a) = ahead.get(j + SLOT_LEAD) {
                    a.prefetch_maglev::<M>(pre.get(j + SLOT_LEAD));
                }
                let vip = ahead.get(j).and_then(|a| a.vip);
                #[cfg(test)]
                {
                    self.found_ahead += u64::from(vip.is_some());
                }
                *v = self.finish::<F, true>(fwd, port, link, f, p, vip, now_ns);
            }
        }
        self.pre = pre;
    }

    /// Background work between bursts when idle: sweeps a few flow-table
    /// buckets for expired entries.
    pub fn housekeeping(&mut self, now_ns: u64) {
        self.flows.expire_some(now_ns, HOUSEKEEPING_BUDGET);
    }

    /// The ports a frame received on `port` comes in and leaves by: the
    /// same for a whole burst. `None` for a port that does not exist.
    #[inline(always)]
    pub(super) fn link<'f>(&self, fwd: &'f Forwarding, port: usize) -> Option<Link<'f>> {
        let rx = fwd.interfaces.get(port)?;
        let (out_port, out) = self
            .backend_port
            .and_then(|i| Some((i, fwd.interfaces.get(i)?)))
            .unwrap_or((port, rx));
        Some(Link {
            port,
            rx,
            out_port,
            out,
        })
    }

    /// `link` is [`Datapath::link`] of `port` (`None`: the VIP lane is not
    /// taken); `STAGED`: `vip` is the VIP the burst found ahead of the
    /// decision, if it did (see [`Ahead`]).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn finish<'f, F: Frame, const STAGED: bool>(
        &mut self,
        fwd: &'f Forwarding,
        port: usize,
        link: Option<Link<'_>>,
        frame: &mut F,
        brief: &Brief,
        vip: Option<&'f Vip>,
        now_ns: u64,
    ) -> Verdict {
        let lane = match (brief.covered, link) {
            (true, Some(link)) => self.vip_lane::<F, STAGED>(fwd, link, frame, brief, vip, now_ns),
            _ => None,
        };
        let v = match lane {
            Some(v) => v,
            None => self.general(fwd, port, frame, now_ns),
        };
        // `forwarded` is counted where a frame is sent (`send`).
        if let Verdict::Drop(r) = v {
            self.counters.drops[r] += 1;
        }
        v
    }

    /// The VIP lane: a TCP or UDP packet its parse covered, to a VIP
    /// address — decided and rewritten from the brief record. `None` if the
    /// destination is no VIP address: the general path's (the host's own
    /// traffic, link-scope, or nothing of ours). A VIP is never an own
    /// address (the config refuses it), so taking VIPs first changes no
    /// verdict.
    ///
    /// `STAGED`: `vip` is the VIP the burst found ahead, if it did (see
    /// [`Ahead`]).
    #[inline(always)]
    pub(super) fn vip_lane<'f, F: Frame, const STAGED: bool>(
        &mut self,
        fwd: &'f Forwarding,
        link: Link<'_>,
        frame: &mut F,
        b: &Brief,
        vip: Option<&'f Vip>,
        now: u64,
    ) -> Option<Verdict> {
        let found = match STAGED {
            true => vip,
            false => None,
        };
        let vip = match found {
            Some(vip) => Ok(vip),
            None => Err(fwd.vip_addr(b.version, b.key.dst16())?),
        };
        if b.ttl <= 1 {
            return Some(Verdict::Drop(DropReason::Ttl));
        }
        let mut d = Decider {
            flows: &mut self.flows,
            tokens: &self.tokens,
            counters: &mut self.counters,
            now,
            hint: b.hint,
        };
        let tcp = (b.protocol == ip_proto::TCP).then_some((b.flags, &b.mptcp));
        let target = match d.segment(fwd, vip, b.dst_port, (&b.key, b.hash), tcp) {
            Ok(t) => t,
            Err(r) => return Some(Verdict::Drop(r)),
        };
        // Read only for IP-in-IP.
        let inner = || Inner {
            l3_offset: b.l3_offset,
            l3_end: b.l3_end,
            version: b.version,
        };
        let new_flow = b.flags.syn() && !b.flags.ack();
        Some(self.send(fwd, link, frame, &target, inner, new_flow, now))
    }

    /// Every frame the VIP lane did not take: parsed in full, then
    /// [`Datapath::handle`]. Out of line: the lane's code stays compact.
    #[inline(never)]
    fn general<F: Frame>(
        &mut self,
        fwd: &Forwarding,
        port: usize,
        frame: &mut F,
        now: u64,
    ) -> Verdict {
        let Some(link) = self.link(fwd, port) else {
            return Verdict::Drop(DropReason::NotForUs);
        };
        let full = Full::of(frame, fwd.hash);
        self.handle(fwd, link, frame, &full, now)
    }

    #[inline(always)]
    fn handle<F: Frame>(
        &mut self,
        fwd: &Forwarding,
        link: Link<'_>,
        frame: &mut F,
        full: &Full,
        now: u64,
    ) -> Verdict {
        let (iface, port) = (link.rx, link.port);
        let p = match &full.parsed {
            Ok(p) => p,
            Err(WireError::Unsupported) => return Verdict::Drop(DropReason::Unsupported),
            Err(_) => return Verdict::Drop(DropReason::Malformed),
        };
        let Some(ip) = &p.ip else {
            if p.ethertype == ethertype::ARP {
                let learnt = neighbours::learn_arp(&fwd.neighbours, port, frame, p.l3_offset);
                self.counters.neighbour_learnt += u64::from(learnt);
                let v = match local::arp(iface, fwd, frame, p.l3_offset) {
                    // An answer, perhaps to the kernel's own question.
                    Verdict::Drop(DropReason::Unsupported)
                        if iface.kernel && local::is_arp_reply(frame, p.l3_offset) =>
                    {
                        self.hand_to_kernel(now)
                    }
                    // A backend's answer or announcement, taken in.
                    Verdict::Drop(_) if learnt => Verdict::Absorbed,
                    v => v,
                };
                self.counters.arp_replies += u64::from(v == Verdict::Reply);
                return v;
            }
            return Verdict::Drop(DropReason::Unsupported);
        };
        if neighbours::is_neighbor_advert(ip) {
            let v = neighbours::learn_na(&fwd.neighbours, port, frame, ip);
            self.counters.neighbour_learnt += u64::from(v == Verdict::Absorbed);
            // Learnt or not, a valid advertisement may answer the kernel.
            if iface.kernel && v != Verdict::Drop(DropReason::Malformed) {
                return self.hand_to_kernel(now);
            }
            return v;
        }
        if local::is_neighbor_solicit(ip) {
            neighbours::learn_ns(&fwd.neighbours, port, frame, ip);
            let v = local::neighbor_solicit(iface, fwd, frame, p.l3_offset, ip);
            self.counters.nd_replies += u64::from(v == Verdict::Reply);
            // Not for an own address or a VIP: perhaps for the kernel's
            // link-local address.
            if iface.kernel && v == Verdict::Drop(DropReason::NotForUs) {
                return self.hand_to_kernel(now);
            }
            return v;
        }
        let own = match ip.version {
            4 => {
                let [.., a, b, c, d] = ip.dst;
                iface.owns_v4(Ipv4Addr::new(a, b, c, d))
            }
            _ => iface.owns_v6(ip.dst.into()),
        };
        if own {
            if iface.kernel && !local::is_echo_request(ip) {
                return self.hand_to_kernel(now);
            }
            let v = local::echo(frame, p.l3_offset, ip);
            self.counters.icmp_echo_replies += u64::from(v == Verdict::Reply);
            return v;
        }
        let Some(at) = fwd.vip_addr(ip.version, &ip.dst) else {
            return self.not_for_a_vip(iface, ip, now);
        };
        if ip.ttl <= 1 {
            return Verdict::Drop(DropReason::Ttl);
        }
        let mut d = Decider {
            flows: &mut self.flows,
            tokens: &self.tokens,
            counters: &mut self.counters,
            now,
            hint: SlotHint::NONE,
        };
        let target = match d.decide(fwd, at, ip, full.flow.as_ref()) {
            Ok(t) => t,
            Err(r) => return Verdict::Drop(r),
        };
        // A new flow: a TCP SYN (plain, MPTCP or join) being placed.
        let new_flow = matches!(&ip.l4, L4::Tcp(t) if t.flags.syn() && !t.flags.ack());
        self.send(fwd, link, frame, &target, || inner(p, ip), new_flow, now)
    }

    /// Announces if asked, rewrites `frame` for the target's backend (or
    /// answers a packet too big for IP-in-IP) and counts it: the end of
    /// both paths to a VIP.
    #[allow(clippy::too_many_arguments)] // the frame's parts, unbundled
    #[inline(always)]
    fn send<F: Frame>(
        &mut self,
        fwd: &Forwarding,
        Link {
            port,
            rx,
            out_port,
            out,
        }: Link<'_>,
        frame: &mut F,
        target: &Target<'_>,
        inner: impl FnOnce() -> Inner,
        new_flow: bool,
        now: u64,
    ) -> Verdict {
        if target.announce {
            self.announce(rx, port, frame, target.backend.addr, now);
        }
        let done = match target.vip.mode {
            ForwardingMode::L2Dsr => rewrite::l2_dsr(frame, out, target.backend)
                .map(|()| self.counters.forwarded_l2 += 1),
            ForwardingMode::Ipip => match fwd.tunnel(target.backend, out_port) {
                Ok(outer) => {
                    let room = outer.room();
                    let at = inner();
                    if at.l3_end.saturating_sub(at.l3_offset) > room {
                        return self.too_big(rx, frame, room, now);
                    }
                    rewrite::ipip(frame, at, outer, target.hash)
                        .map(|()| self.counters.forwarded_ipip += 1)
                }
                Err(r) => Err(r),
            },
        };
        match done {
            Ok(()) => {
                self.counters.forwarded += 1;
                self.traffic.record(
                    target.vip.id,
                    target.backend.id.0,
                    frame.len() as u64,
                    new_flow,
                );
                Verdict::Forward
            }
            Err(r) => Verdict::Drop(r),
        }
    }
}

impl<M: BucketMemory> Datapath<M> {
    /// `Kernel` for a frame of the host's own, within the worker's budget
    /// (else dropped, `drop_kernel_limit`). Out of line: not the VIP path.
    #[cold]
    #[inline(never)]
    fn hand_to_kernel(&mut self, now: u64) -> Verdict {
        if self.kernel_budget.take(now) {
            Verdict::Kernel
        } else {
            Verdict::Drop(DropReason::KernelLimit)
        }
    }

    /// IP to neither an own address nor a VIP: the kernel's if it is
    /// link-scope and the port has an exception path, else dropped. Out of
    /// line, so that the VIP path's code stays as it was.
    #[cold]
    #[inline(never)]
    fn not_for_a_vip(&mut self, iface: &Interface, ip: &parse::IpInfo, now: u64) -> Verdict {
        if iface.kernel && local::is_link_scope(ip) {
            return self.hand_to_kernel(now);
        }
        Verdict::Drop(DropReason::NotForUs)
    }

    /// Records the ADD_ADDR announcing `backend` to the sender of `frame`
    /// (still as received), within the rate limit. The frame is parsed in
    /// full here (the VIP lane's record lacks the sequence numbers): once a
    /// connection, next to an HMAC.
    #[cold]
    fn announce(
        &mut self,
        iface: &Interface,
        port: usize,
        frame: &[u8],
        backend: std::net::IpAddr,
        now: u64,
    ) {
        let c = &mut self.counters;
        if !self.announce_budget.take(now) {
            c.add_addr_skipped_rate_limit += 1;
            return;
        }
        let built = match parse::parse_frame(frame) {
            Ok(Parsed {
                l3_offset,
                ip: Some(ip),
                ..
            }) => announce::build(frame, l3_offset, &ip, (iface, port), backend),
            _ => None,
        };
        match built {
            Some(a) if self.announcements.push(a) => c.add_addr_sent += 1,
            _ => c.add_addr_skipped_no_buffer += 1,
        }
    }

    /// The ICMP error for a packet too long for IP-in-IP on the out port
    /// (`room` bytes), within the rate limit. Parses the frame in full.
    #[cold]
    #[inline(never)]
    fn too_big<F: Frame>(
        &mut self,
        iface: &Interface,
        frame: &mut F,
        room: usize,
        now: u64,
    ) -> Verdict {
        let Ok(Parsed {
            l3_offset,
            ip: Some(ip),
            ..
        }) = parse::parse_frame(frame)
        else {
            return Verdict::Drop(DropReason::Malformed);
        };
        let v = local::too_big(iface, frame, l3_offset, &ip, room);
        if v == Verdict::Reply {
            if !self.icmp_budget.take(now) {
                return Verdict::Drop(DropReason::IcmpLimit);
            }
            self.counters.icmp_too_big_sent += 1;
        }
        v
    }
}

/// The budget for frames to the kernel: `pps` a second, bursts of a tenth
/// of a second's worth (at least 32: a BGP update's segments, an ND
/// exchange).
fn kernel_budget(pps: u32) -> RateLimit {
    let pps = u64::from(pps);
    RateLimit::new(pps, (pps / 10).max(32))
}

fn inner(p: &Parsed, ip: &parse::IpInfo) -> Inner {
    Inner {
        l3_offset: p.l3_offset,
        l3_end: ip.l3_end,
        version: ip.version,
    }
}

#[cfg(test)]
#[path = "process_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "kernel_path_tests.rs"]
mod kernel_path_tests;
