//! Which backend a packet to a VIP goes to.
//!
//! # TCP (backends answer the client directly, so only client→VIP is seen)
//!
//! 1. SYN with MP_CAPABLE: Maglev on the 5-tuple, no state.
//! 2. SYN without MPTCP option: Maglev, no state, so a SYN flood cannot fill
//!    the flow table.
//! 3. SYN with MP_JOIN: the token table (if the VIP's `token_routing`); a hit
//!    naming a backend of the VIP that is not Down (Draining is fine) routes
//!    the join there and pins its 5-tuple in the flow table
//!    ([`FlowClass::MptcpJoin`]), so that the rest of the subflow follows it
//!    — only a known token creates state. Otherwise Maglev.
//! 4. Other segments with an MPTCP option: flow-table hit among the MPTCP
//!    entries (joins pinned by rule 3, subflows pinned by `mptcp_tracking`;
//!    [`Scope::Mptcp`]: the bucket is read only if the table's MPTCP summary
//!    says it holds one), else Maglev. An
//!    MP_CAPABLE carrying both keys (third ACK, or first data of length
//!    22/24) teaches the token table: token(receiver's key) → the chosen
//!    backend (and, for a VIP with `announce_backend_address`, the segment
//!    that pins the subflow asks for an ADD_ADDR, see [`super::announce`]).
//!    With the VIP's `mptcp_tracking` (the default) a miss also
//!    pins the subflow, as [`FlowClass::MptcpPinned`] — the first segment
//!    after the SYN, normally the third ACK, and again on later segments
//!    until an entry is stored (as rule 5 does for plain TCP: a third ACK
//!    refused by the untrusted quota or lost does not leave the connection
//!    untracked). A SYN never gets that far, so a SYN flood still creates
//!    nothing; a spoofed non-SYN segment gets an untrusted entry, like a
//!    spoofed plain ACK. The connection then keeps its backend when the
//!    backend set changes. A single-path client (one that never joins the
//!    backend's announced address) sends its whole connection this way, and
//!    a re-hash would reset it.
//!    Such a segment does not find a plain entry of its 5-tuple (one made by
//!    a segment without MPTCP option, rule 5): a live MPTCP subflow puts an
//!    MPTCP option on its segments and one that fell back never again (see
//!    [`super::flow_table`]).
//! 5. Other segments without MPTCP option: flow-table hit, else Maglev and a
//!    new (untrusted) entry — plain TCP, or MPTCP that fell back. An RST on a
//!    miss creates no entry; FIN / RST shorten an entry's life.
//!
//! A flow-table hit whose backend is Down or no longer a backend of the VIP
//! is a miss: the entry is removed, the packet re-hashed and re-pinned.
//! Draining backends are out of the Maglev tables (built from active backends
//! only) but keep their pinned flows and their joins.
//!
//! # ICMP errors
//!
//! An error about a VIP flow quotes the packet the backend sent (VIP →
//! client); its reversed 5-tuple is the client's flow: flow table, else
//! Maglev on that tuple — the same place the flow's SYN went. The lookup
//! counts as a packet of the flow for the table (it may promote an untrusted
//! entry; the table has no read-only lookup).
//!
//! # Fragments
//!
//! Every fragment of a datagram to a VIP address — the first one included —
//! is hashed on the 3-tuple (source, destination, protocol) with
//! [`tuple3_hash`] and sent by the Maglev table of the one VIP serving that
//! address and protocol, so all fragments of a datagram reach the same
//! backend, which reassembles it. The first fragment's ports are not used,
//! because the later fragments have none and must land on the same backend.
//! Consequences: a fragment goes nowhere if several VIPs share its address
//! and protocol (ambiguous: dropped, `drop_fragment`), and a fragmented TCP
//! segment may reach a different backend than its connection (TCP stacks set
//! DF and size segments to the path MTU, so this is rare in practice; UDP
//! services get their fragmented datagrams whole). No state is kept.
//!
//! # UDP
//!
//! Maglev on the 5-tuple, stateless.

use std::sync::Arc;

use super::counters::Counters;
use super::flow_table::{
    BucketMemory, Evicted, FlowClass, FlowTable, InsertOutcome, Scope, SlotHint,
};
use super::forwarding::{Backend, BackendState, Forwarding, Protocol, Vip, VipAddr};
use super::hash::{FlowKey, HashVersion, tuple3_hash};
use super::maglev::BackendId;
use super::token_table::TokenTable;
use super::verdict::DropReason;
use crate::wire::ip_proto;
use crate::wire::mptcp;
use crate::wire::parse::{IpInfo, L4, MptcpSummary, Quoted};
use crate::wire::tcp::Flags;

/// Where a packet goes: the VIP it belongs to, its backend, and the hash used
/// for encapsulation entropy.
#[derive(Clone, Copy, Debug)]
pub(super) struct Target<'f> {
    pub vip: &'f Vip,
    pub backend: &'f Backend,
    pub hash: u64,
    /// Send the client an ADD_ADDR with the backend's address on its
    /// behalf (see [`super::announce`]): set on the segment with both
    /// MPTCP keys that pinned the initial subflow of a connection to a VIP
    /// with `announce_backend_address`.
    pub announce: bool,
}

/// The flow-table key of a packet and its hash, computed before the
/// decision so that a burst can prefetch its buckets: the 5-tuple of TCP
/// and UDP, the reversed quoted 5-tuple of an ICMP error; `None` for
/// fragments and everything else. Written into `out` (the burst's slot):
/// the key is built where it stays and hashed there, by `version`.
#[inline(always)]
pub(super) fn fill_flow(ip: &IpInfo, out: &mut Option<(FlowKey, u64)>, version: HashVersion) {
    if ip.fragment.is_some() {
        *out = None;
        return;
    }
    let key = match ip.l4 {
        L4::Tcp(t) => FlowKey::from_v6(ip.src, ip.dst, t.src_port, t.dst_port, ip_proto::TCP),
        L4::Udp { src_port, dst_port } => {
            FlowKey::from_v6(ip.src, ip.dst, src_port, dst_port, ip_proto::UDP)
        }
        L4::Icmp {
            quoted:
                Some(Quoted {
                    src,
                    dst,
                    protocol,
                    ports: Some((qsrc_port, qdst_port)),
                }),
            ..
        } => FlowKey::from_v6(dst, src, qdst_port, qsrc_port, protocol),
        _ => {
            *out = None;
            return;
        }
    };
    let (key, hash) = out.insert((key, 0));
    *hash = version.flow(key);
}

/// Whether the flow table is looked at for a TCP segment with these flags
/// and MPTCP options (worth a prefetch), and for which entries. A SYN without MP_JOIN never touches it (rules 1
/// and 2): prefetching its bucket would only add a cache miss to the
/// stateless path. A join SYN inserts (rule 3), so any entry of its bucket
/// matters; other segments with an MPTCP option look for MPTCP entries only
/// (rule 4).
#[inline(always)]
pub(super) fn tcp_table_scope(flags: Flags, m: &MptcpSummary) -> Option<Scope> {
    if flags.syn() && !flags.ack() {
        m.join_syn.is_some().then_some(Scope::Any)
    } else if m.any() {
        Some(Scope::Mptcp)
    } else {
        Some(Scope::Any)
    }
}

/// The per-worker state the decision reads and updates.
pub(super) struct Decider<'a, M> {
    pub flows: &'a mut FlowTable<M>,
    /// Through its `Arc`: dereferenced only by the paths that use it (a
    /// join, a key learnt), not loaded for every packet.
    pub tokens: &'a Arc<TokenTable>,
    pub counters: &'a mut Counters,
    pub now: u64,
    /// Where the burst's key prefetch saw this packet's flow (the lookups
    /// try it first); [`SlotHint::NONE`] off the VIP lane.
    pub hint: SlotHint,
}

/// `id` if it is a backend of `vip` that may receive traffic (not Down).
#[inline(always)]
fn usable<'f>(fwd: &'f Forwarding, vip: &Vip, id: BackendId) -> Option<&'f Backend> {
    let b = fwd.backend(id)?;
    (b.state != BackendState::Down && vip.members.contains(id)).then_some(b)
}

/// ICMP error types forwarded to the flow's backend: destination
/// unreachable (incl. fragmentation needed), time exceeded, parameter
/// problem; for ICMPv6 also packet too big.
fn is_forwarded_error(version: u8, ty: u8) -> bool {
    match version {
        4 => matches!(ty, 3 | 11 | 12),
        _ => matches!(ty, 1..=4),
    }
}

impl<M: BucketMemory> Decider<'_, M> {
    /// Decides the backend of a packet addressed to a VIP address: `at` is
    /// [`Forwarding::vip_addr`] of `ip.dst`, `flow` is what [`fill_flow`] wrote for `ip`.
    #[inline(always)]
    pub fn decide<'f>(
        &mut self,
        fwd: &'f Forwarding,
        at: VipAddr<'_>,
        ip: &IpInfo,
        flow: Option<&(FlowKey, u64)>,
    ) -> Result<Target<'f>, DropReason> {
        if ip.fragment.is_some() {
            return self.fragment(fwd, at, ip);
        }
        match &ip.l4 {
            // Always Some for TCP and UDP that is not a fragment.
            L4::Tcp(t) => {
                let &(ref key, hash) = flow.ok_or(DropReason::Malformed)?;
                let tcp = Some((t.flags, &t.mptcp));
                self.segment(fwd, Err(at), t.dst_port, (key, hash), tcp)
            }
            L4::Udp { dst_port, .. } => {
                let &(ref key, hash) = flow.ok_or(DropReason::Malformed)?;
                self.segment(fwd, Err(at), *dst_port, (key, hash), None)
            }
            L4::Icmp { ty, quoted, .. } => {
                let Some(q) = quoted.filter(|_| is_forwarded_error(ip.version, *ty)) else {
                    // Echo and informational messages to a VIP, redirects,
                    // source quench: not ours to answer or forward.
                    return Err(DropReason::Unsupported);
                };
                let protocol = match q.protocol {
                    ip_proto::TCP => Protocol::Tcp,
                    ip_proto::UDP => Protocol::Udp,
                    _ => return Err(DropReason::Unsupported),
                };
                let (vip_port, _) = q.ports.ok_or(DropReason::Unsupported)?;
                // The quoted packet left from the VIP this error is sent to.
                if q.src != ip.dst {
                    return Err(DropReason::NoVip);
                }
                let vip = fwd
                    .vip_at(at, vip_port, protocol)
                    .ok_or(DropReason::NoVip)?;
                let &(ref key, hash) = flow.ok_or(DropReason::Unsupported)?;
                let backend = match protocol {
                    Protocol::Tcp => match self.lookup(fwd, vip, key, hash, Scope::Any) {
                        Some(b) => b,
                        None => self.maglev(fwd, vip, hash)?,
                    },
                    Protocol::Udp => self.maglev(fwd, vip, hash)?,
                };
                self.counters.icmp_errors_forwarded += 1;
                Ok(Target {
                    vip,
                    backend,
                    hash,
                    announce: false,
                })
            }
            L4::NonFirstFragment | L4::Other => Err(DropReason::Unsupported),
        }
    }

    /// A TCP segment (`tcp`: its flags and MPTCP options) or a UDP
    /// datagram (`None`) to a VIP address, not a fragment: rules 1–5, or
    /// Maglev for UDP. Both paths end here: [`Decider::decide`] and the
    /// VIP lane (`super::brief`). `vip`: the VIP where the caller found it
    /// ahead (a burst of many VIPs), else the VIP address to look it up at.
    #[inline(always)]
    pub fn segment<'f>(
        &mut self,
        fwd: &'f Forwarding,
        vip: Result<&'f Vip, VipAddr<'_>>,
        dst_port: u16,
        (key, hash): (&FlowKey, u64),
        tcp: Option<(Flags, &MptcpSummary)>,
    ) -> Result<Target<'f>, DropReason> {
        let service = |protocol| match vip {
            Ok(vip) => Ok(vip),
            Err(at) => fwd.vip_at(at, dst_port, protocol).ok_or(DropReason::NoVip),
        };
        let (vip, backend, announce) = match tcp {
            Some((flags, m)) => {
                let vip = service(Protocol::Tcp)?;
                let (backend, announce) = self.tcp(fwd, vip, key, hash, flags, m)?;
                (vip, backend, announce)
            }
            None => {
                let vip = service(Protocol::Udp)?;
                let backend = self.maglev(fwd, vip, hash)?;
                self.counters.udp_forwarded += 1;
                (vip, backend, false)
            }
        };
        Ok(Target {
            vip,
            backend,
            hash,
            announce,
        })
    }

    fn fragment<'f>(
        &mut self,
        fwd: &'f Forwarding,
        at: VipAddr<'_>,
        ip: &IpInfo,
    ) -> Result<Target<'f>, DropReason> {
        let protocol = match ip.protocol {
            ip_proto::TCP => Protocol::Tcp,
            ip_proto::UDP => Protocol::Udp,
            _ => return Err(DropReason::Fragment),
        };
        let vip = fwd.fragment_vip(at, protocol).ok_or(DropReason::Fragment)?;
        let hash = tuple3_hash(&ip.src, &ip.dst, ip.protocol);
        let backend = self.maglev(fwd, vip, hash)?;
        self.counters.fragments_forwarded += 1;
        Ok(Target {
            vip,
            backend,
            hash,
            announce: false,
        })
    }

    #[inline(always)]
    fn maglev<'f>(
        &mut self,
        fwd: &'f Forwarding,
        vip: &Vip,
        hash: u64,
    ) -> Result<&'f Backend, DropReason> {
        // The table holds only the VIP's own active backends (it is built
        // from them), so no membership or state check is needed.
        let b = vip
            .maglev
            .lookup(hash)
            .and_then(|id| fwd.backend(id))
            .ok_or(DropReason::NoBackend)?;
        debug_assert!(usable(fwd, vip, b.id).is_some());
        self.counters.maglev_forwarded += 1;
        Ok(b)
    }

    /// Flow-table lookup among the entries of `scope`; an entry whose
    /// backend is gone or Down is removed and reported as a miss.
    #[inline(always)]
    fn lookup<'f>(
        &mut self,
        fwd: &'f Forwarding,
        vip: &Vip,
        key: &FlowKey,
        hash: u64,
        scope: Scope,
    ) -> Option<&'f Backend> {
        let found = self
            .flows
            .lookup_hinted(key, hash, self.now, scope, self.hint);
        match found {
            Some(id) => match usable(fwd, vip, id) {
                Some(b) => {
                    self.counters.flow_hit += 1;
                    Some(b)
                }
                None => {
                    self.flows.remove(key, hash);
                    self.counters.flow_backend_gone += 1;
                    self.counters.flow_miss += 1;
                    None
                }
            },
            None => {
                self.counters.flow_miss += 1;
                None
            }
        }
    }

    /// Stores an entry; true if this call stored it.
    #[inline(always)]
    fn pin(&mut self, key: &FlowKey, hash: u64, backend: BackendId, class: FlowClass) -> bool {
        match self.flows.insert(key, hash, backend, class, self.now) {
            InsertOutcome::Inserted => {
                self.counters.flow_inserted += 1;
                true
            }
            InsertOutcome::InsertedEvicting(evicted) => {
                self.counters.flow_inserted += 1;
                match evicted {
                    Evicted::Untrusted => self.counters.flow_evicted_untrusted += 1,
                    Evicted::Reset => self.counters.flow_evicted_reset += 1,
                    Evicted::Tracked => self.counters.flow_evicted_tracked += 1,
                }
                true
            }
            InsertOutcome::AlreadyPresent(_) => false,
            InsertOutcome::RejectedQuota | InsertOutcome::RejectedFull => {
                self.counters.flow_insert_rejected += 1;
                false
            }
        }
    }

    #[inline(always)]
    fn note_close(&mut self, key: &FlowKey, hash: u64, flags: Flags) {
        if flags.rst() {
            self.flows.note_rst(key, hash, self.now);
        } else if flags.fin() {
            self.flows.note_fin(key, hash, self.now);
        }
    }

    /// Rule 4 for a segment whose MPTCP options were seen; the bool asks
    /// for an announcement (see [`Target::announce`]).
    #[inline(always)]
    fn tcp_mptcp<'f>(
        &mut self,
        fwd: &'f Forwarding,
        vip: &Vip,
        key: &FlowKey,
        hash: u64,
        flags: Flags,
        m: &MptcpSummary,
    ) -> Result<(&'f Backend, bool), DropReason> {
        let (b, hit) = match self.lookup(fwd, vip, key, hash, Scope::Mptcp) {
            Some(b) => (b, true),
            None => (self.maglev(fwd, vip, hash)?, false),
        };
        let keys = m
            .capable
            .and_then(|c| c.receiver_key().map(|k| (c.version, k)));
        if let Some(k) = keys {
            self.tokens.learn(mptcp::token(k.0, k.1), b.id, self.now);
            self.counters.tokens_learnt += 1;
        }
        // Tested only where it matters, so that the other paths pay nothing
        // for it.
        let announce = || vip.announce_backend_address && keys.is_some();
        if hit {
            self.note_close(key, hash, flags);
            if announce() && !flags.rst() {
                self.counters.add_addr_skipped_duplicate += 1;
            }
            return Ok((b, false));
        }
        if vip.mptcp_tracking && !flags.rst() {
            // Tracked from the first segment after the SYN — the third
            // ACK, normally — and, like a plain flow, again on every
            // later segment until an entry is stored: a third ACK
            // refused by the untrusted quota or lost on the way does
            // not leave the connection untracked. A spoofed segment
            // gets an untrusted entry, as a plain one does.
            let pinned = self.pin(key, hash, b.id, FlowClass::MptcpPinned);
            if !announce() {
                return Ok((b, false));
            }
            self.counters.add_addr_skipped_unpinned += u64::from(!pinned);
            return Ok((b, pinned));
        }
        Ok((b, false))
    }

    #[inline(always)]
    fn tcp<'f>(
        &mut self,
        fwd: &'f Forwarding,
        vip: &Vip,
        key: &FlowKey,
        hash: u64,
        flags: Flags,
        m: &MptcpSummary,
    ) -> Result<(&'f Backend, bool), DropReason> {
        if flags.syn() && !flags.ack() {
            // Rule 3: MP_JOIN.
            if let Some(join) = m.join_syn {
                if vip.token_routing {
                    let hit = self
                        .tokens
                        .lookup(join.token, self.now)
                        .and_then(|id| usable(fwd, vip, id));
                    if let Some(b) = hit {
                        self.counters.join_token_hit += 1;
                        self.pin(key, hash, b.id, FlowClass::MptcpJoin);
                        return Ok((b, false));
                    }
                }
                self.counters.join_token_miss += 1;
                return Ok((self.maglev(fwd, vip, hash)?, false));
            }
            // Rules 1 and 2: stateless.
            if m.any() {
                self.counters.mptcp_syn += 1;
            } else {
                self.counters.plain_syn += 1;
            }
            return Ok((self.maglev(fwd, vip, hash)?, false));
        }

        if m.any() {
            // Rule 4: an MPTCP subflow (or its first ACK).
            return self.tcp_mptcp(fwd, vip, key, hash, flags, m);
        }

        // Rule 5: plain TCP (or MPTCP fallen back, or a join's last ACK).
        if let Some(b) = self.lookup(fwd, vip, key, hash, Scope::Any) {
            self.note_close(key, hash, flags);
            return Ok((b, false));
        }
        let b = self.maglev(fwd, vip, hash)?;
        if !flags.rst() {
            self.pin(key, hash, b.id, FlowClass::Plain);
            self.note_close(key, hash, flags);
        }
        Ok((b, false))
    }
}
