//! The PEX protocol, without I/O.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use p2p_types::{NetAddress, NodeId};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use tracing::{debug, info, warn};

use crate::Error;
use crate::book::AddrBook;
use crate::config::PexConfig;
use crate::message::{PexMessage, Received, decode};
use crate::params::{BIAS_TO_SELECT_NEW_PEERS, BOOK_CAPACITY};

/// Most actions waiting for the driver; beyond it, address answers are dropped (never
/// disconnects, dials or saves, which are bounded by the number of peers and of dials).
pub const MAX_QUEUED_ACTIONS: usize = 1024;
/// A dial not reported back within this time is forgotten, so a driver that loses a result
/// cannot stall dialling.
pub const PENDING_DIAL_TIMEOUT: Duration = Duration::from_secs(60);
/// Crawl records older than this are forgotten (as in the reference).
const CRAWL_RECORD_TTL: Duration = Duration::from_secs(24 * 3600);

/// What the PEX asks of the switch.
pub trait SwitchView {
    /// Connected outbound peers.
    fn num_outbound(&self) -> usize;
    /// Dials in progress (started by anyone).
    fn num_dialing(&self) -> usize;
    /// Whether we are connected to, or dialling, this address (same ID, or same IP when the
    /// switch refuses duplicate IPs).
    fn is_dialing_or_connected(&self, addr: &NetAddress) -> bool;
    /// Whether this is a persistent peer (never banned for failed dials, never disconnected
    /// by a seed).
    fn is_persistent(&self, addr: &NetAddress) -> bool;
}

/// A peer the switch has added.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PexPeer {
    /// Its node ID.
    pub id: NodeId,
    /// Whether we dialled it.
    pub outbound: bool,
    /// Whether it is a persistent peer.
    pub persistent: bool,
    /// The address it says it listens on (from its NodeInfo), if that is usable. It is the
    /// source of every address it tells us.
    pub listen_addr: Option<NetAddress>,
    /// Its ID and the IP and port of the connection (what a ban is filed under).
    pub socket_addr: NetAddress,
}

/// How a dial the PEX asked for ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DialOutcome {
    /// Connected: the peer is (or will be) added.
    Connected,
    /// The switch was already connected to it or dialling it.
    AlreadyConnectedOrDialing,
    /// The remote authenticated as another node ID than the one dialled (the address is
    /// stale or someone else answers there): the address is banned. A handshake that fails
    /// otherwise (cut short, timed out) is [`Failed`](Self::Failed).
    AuthFailure,
    /// Any other failure.
    Failed,
}

/// Why the PEX wants a peer disconnected.
#[derive(Debug)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// It broke the protocol (stop it for this error). If `banned`, its ID was banned too.
    Misbehaved {
        /// What it did.
        error: Error,
        /// Whether it was banned.
        banned: bool,
    },
    /// Seed mode: it got its one answer. Flush the answer, then stop it gracefully.
    SeedAnswered,
    /// Seed mode: it has been connected for the configured wait. Stop it gracefully.
    ConnectedLongEnough,
}

/// Something the PEX asks the driver to do.
#[derive(Debug)]
#[non_exhaustive]
pub enum PexAction {
    /// Send a message on the PEX channel.
    Send {
        /// To whom.
        peer: NodeId,
        /// What ([`PexMessage::encode`] gives the bytes).
        message: PexMessage,
    },
    /// Dial an address; report the outcome with [`PexCore::handle_dial_result`].
    Dial {
        /// Where.
        addr: NetAddress,
    },
    /// Disconnect a peer.
    Disconnect {
        /// Whom.
        peer: NodeId,
        /// Why, and how.
        reason: DisconnectReason,
    },
    /// Save the address book (periodically; also save it when stopping).
    SaveAddrBook,
}

/// Where a peer stands with its requests to us.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RequestClock {
    /// It never asked.
    Never,
    /// It asked once (free).
    Once,
    /// It asked twice or more, the last time then.
    At(Instant),
}

#[derive(Debug)]
struct PeerState {
    peer: PexPeer,
    connected_at: Instant,
    /// We asked it for addresses and it has not answered.
    request_outstanding: bool,
    requests: RequestClock,
    /// Seed mode: it asked and got its one answer.
    seed_answered: bool,
    /// We asked the driver to disconnect it.
    disconnecting: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DialKind {
    Book,
    Crawl,
    Seed,
}

#[derive(Clone, Copy, Debug)]
struct DialRecord {
    attempts: u32,
    last: Instant,
}

/// Counters of what a [`PexCore`] did since it was made, for status reports and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PexStats {
    /// Address requests answered (in seed mode: inbound peers given their one answer).
    pub requests_served: u64,
    /// Address answers received from peers we asked.
    pub answers_received: u64,
    /// Dials asked for to crawl (seed mode).
    pub crawl_dials: u64,
}

#[derive(Debug)]
struct SeedDial {
    order: Vec<NetAddress>,
    next: usize,
}

/// The PEX protocol state machine. It holds the protocol's state and decides; a driver (the
/// PEX reactor over the switch, or a simulation) feeds it events and carries out what it asks
/// for:
///
/// - inputs: [`handle_peer_added`](Self::handle_peer_added),
///   [`handle_peer_removed`](Self::handle_peer_removed),
///   [`handle_message`](Self::handle_message) (bytes from channel 0x00),
///   [`handle_dial_result`](Self::handle_dial_result) and
///   [`handle_timeout`](Self::handle_timeout), each with the current [`Instant`];
/// - outputs: [`poll_action`](Self::poll_action) (send, dial, disconnect, save the book) and
///   [`poll_timeout`](Self::poll_timeout) (when to call `handle_timeout` next).
///
/// The address book is the driver's and is lent to each call; what the switch knows (peers
/// connected and being dialled, persistent peers) is asked through a [`SwitchView`]. The
/// [`manual`](crate::manual) describes the protocol and where this differs from the
/// reference.
#[derive(Debug)]
pub struct PexCore {
    config: PexConfig,
    rng: StdRng,
    created: Instant,
    started: bool,
    next_tick: Option<Instant>,
    fast_dial_at: Option<Instant>,
    next_save: Instant,
    peers: BTreeMap<NodeId, PeerState>,
    dial_records: BTreeMap<SocketAddr, DialRecord>,
    crawl_records: BTreeMap<NodeId, Instant>,
    pending_dials: BTreeMap<NetAddress, (DialKind, Instant)>,
    seed_dial: Option<SeedDial>,
    actions: VecDeque<PexAction>,
    stats: PexStats,
}

/// The reference's start-up rule: if seeds were configured, none could be resolved and the
/// book is empty, the node cannot find anybody and should not start.
pub fn check_seeds(configured: usize, resolved: usize, book: &AddrBook) -> Result<(), Error> {
    if configured > 0 && resolved == 0 && book.is_empty() {
        return Err(Error::NoPeersToStart { configured });
    }
    Ok(())
}

impl PexCore {
    /// A core with a generator seeded by the operating system.
    pub fn new(config: PexConfig, now: Instant) -> Self {
        Self::with_rng(config, now, rand::make_rng::<StdRng>())
    }

    /// A core with a seeded generator (for simulations and tests).
    pub fn with_seed(config: PexConfig, now: Instant, seed: u64) -> Self {
        Self::with_rng(config, now, StdRng::seed_from_u64(seed))
    }

    fn with_rng(config: PexConfig, now: Instant, rng: StdRng) -> Self {
        let next_save = now + config.save_interval;
        Self {
            config,
            rng,
            created: now,
            started: false,
            next_tick: None,
            fast_dial_at: None,
            next_save,
            peers: BTreeMap::new(),
            dial_records: BTreeMap::new(),
            crawl_records: BTreeMap::new(),
            pending_dials: BTreeMap::new(),
            seed_dial: None,
            actions: VecDeque::new(),
            stats: PexStats::default(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &PexConfig {
        &self.config
    }

    /// The next action for the driver.
    pub fn poll_action(&mut self) -> Option<PexAction> {
        self.actions.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if !self.started {
            return Some(self.created);
        }
        [self.next_tick, self.fast_dial_at, Some(self.next_save)]
            .into_iter()
            .flatten()
            .min()
    }

    /// How many failed dials of `addr` the PEX remembers (0 after a success).
    pub fn dial_attempts(&self, addr: &NetAddress) -> u32 {
        self.dial_records
            .get(&addr.socket_addr())
            .map_or(0, |r| r.attempts)
    }

    /// Whether we asked `peer` for addresses and wait for its answer.
    pub fn is_request_outstanding(&self, peer: &NodeId) -> bool {
        self.peers.get(peer).is_some_and(|p| p.request_outstanding)
    }

    /// Whether the core tracks request timing (or anything else) for `peer`.
    pub fn knows_peer(&self, peer: &NodeId) -> bool {
        self.peers.contains_key(peer)
    }

    /// What the core did so far.
    pub fn stats(&self) -> PexStats {
        self.stats
    }

    /// Seed mode: how many node IDs were dialled to crawl within `window` before `now`
    /// (crawl records are kept for 24 hours).
    pub fn crawled_within(&self, now: Instant, window: Duration) -> usize {
        self.crawl_records
            .values()
            .filter(|at| now.saturating_duration_since(**at) <= window)
            .count()
    }

    /// Number of dials asked for and not yet reported back.
    pub fn pending_dials(&self) -> usize {
        self.pending_dials.len()
    }

    fn push(&mut self, action: PexAction) {
        if self.actions.len() >= MAX_QUEUED_ACTIONS && matches!(action, PexAction::Send { .. }) {
            warn!("PEX action queue full, dropping a message");
            return;
        }
        self.actions.push_back(action);
    }

    fn send(&mut self, peer: NodeId, message: PexMessage) {
        self.push(PexAction::Send { peer, message });
    }

    fn disconnect(&mut self, peer: NodeId, reason: DisconnectReason) {
        if let Some(state) = self.peers.get_mut(&peer) {
            state.disconnecting = true;
        }
        self.push(PexAction::Disconnect { peer, reason });
    }

    /// Disconnects a misbehaving peer, banning it if `ban`.
    fn punish(&mut self, peer: NodeId, error: Error, ban: bool, book: &mut AddrBook) {
        warn!(%peer, %error, ban, "disconnecting PEX peer");
        if ban {
            if let Some(state) = self.peers.get(&peer) {
                book.mark_bad(&state.peer.socket_addr, self.config.ban_time);
            }
        }
        self.disconnect(peer, DisconnectReason::Misbehaved { error, banned: ban });
    }

    // ---- peers -----------------------------------------------------------------------------

    /// The switch added a peer. An outbound peer is asked for addresses if the book needs
    /// some (always by a seed, which also files it as vetted); an inbound peer's self-reported
    /// address is added to the book with itself as the source.
    pub fn handle_peer_added(&mut self, peer: PexPeer, now: Instant, book: &mut AddrBook) {
        let id = peer.id;
        let outbound = peer.outbound;
        let listen = peer.listen_addr;
        self.peers.insert(
            id,
            PeerState {
                peer,
                connected_at: now,
                request_outstanding: false,
                requests: RequestClock::Never,
                seed_answered: false,
                disconnecting: false,
            },
        );
        if outbound {
            if self.config.seed_mode {
                // A seed only dials to crawl: it connected, so the address works.
                book.mark_good(&id);
                self.request_addrs(&id);
            } else if book.need_more_addrs() {
                self.request_addrs(&id);
            }
        } else {
            match listen {
                Some(addr) => {
                    if let Err(e) = book.add_address(&addr, &addr) {
                        debug!(%addr, error = %e, "inbound peer's address not added");
                    }
                }
                None => debug!(peer = %id, "inbound peer has no usable address"),
            }
        }
    }

    /// The switch removed a peer: everything about its requests is forgotten (so a peer that
    /// reconnects starts afresh, tendermint#3338).
    pub fn handle_peer_removed(&mut self, peer: &NodeId) {
        self.peers.remove(peer);
    }

    fn request_addrs(&mut self, peer: &NodeId) {
        let Some(state) = self.peers.get_mut(peer) else {
            return;
        };
        if state.request_outstanding {
            return;
        }
        state.request_outstanding = true;
        debug!(%peer, "asking for addresses");
        self.send(*peer, PexMessage::Request);
    }

    // ---- messages --------------------------------------------------------------------------

    /// A message arrived from `peer` on the PEX channel.
    pub fn handle_message(
        &mut self,
        peer: &NodeId,
        bytes: &[u8],
        now: Instant,
        book: &mut AddrBook,
    ) {
        let Some(state) = self.peers.get(peer) else {
            debug!(%peer, "PEX message from a peer that was not added");
            return;
        };
        if state.disconnecting {
            return;
        }
        match decode(peer, bytes) {
            Ok(Received::Request) => self.on_request(peer, now, book),
            Ok(Received::Addrs { addrs, skipped }) => {
                if skipped > 0 {
                    debug!(%peer, skipped, "addresses with invalid IDs skipped");
                }
                self.on_addrs(peer, &addrs, now, book);
            }
            Ok(Received::Unknown) => debug!(%peer, "unknown PEX message"),
            Err(error) => {
                // Unparsable addresses and oversized lists are abuse; a message that is not
                // PEX at all ends the connection, as a decoding failure does in the reference.
                let ban = matches!(
                    error,
                    Error::InvalidAddrs { .. } | Error::TooManyAddrs { .. }
                );
                self.punish(*peer, error, ban, book);
            }
        }
    }

    fn on_request(&mut self, peer: &NodeId, now: Instant, book: &mut AddrBook) {
        let Some(state) = self.peers.get_mut(peer) else {
            return;
        };
        if self.config.seed_mode && !state.peer.outbound {
            // Answer once, then disconnect.
            if state.seed_answered {
                return;
            }
            state.seed_answered = true;
            let selection = book.get_selection_with_bias(BIAS_TO_SELECT_NEW_PEERS);
            self.stats.requests_served += 1;
            self.send(*peer, PexMessage::Addrs(selection));
            self.disconnect(*peer, DisconnectReason::SeedAnswered);
            return;
        }
        let min = self.config.min_receive_request_interval();
        state.requests = match state.requests {
            RequestClock::Never => RequestClock::Once,
            RequestClock::Once => RequestClock::At(now),
            RequestClock::At(last) => {
                let elapsed = now.saturating_duration_since(last);
                if elapsed < min {
                    let error = Error::RequestTooSoon {
                        peer: *peer,
                        elapsed,
                        min,
                    };
                    self.punish(*peer, error, true, book);
                    return;
                }
                RequestClock::At(now)
            }
        };
        let selection = book.get_selection();
        self.stats.requests_served += 1;
        self.send(*peer, PexMessage::Addrs(selection));
    }

    fn on_addrs(&mut self, peer: &NodeId, addrs: &[NetAddress], now: Instant, book: &mut AddrBook) {
        let Some(state) = self.peers.get_mut(peer) else {
            return;
        };
        if !state.request_outstanding {
            self.punish(*peer, Error::UnsolicitedAddrs { peer: *peer }, true, book);
            return;
        }
        state.request_outstanding = false;
        self.stats.answers_received += 1;
        let Some(src) = state.peer.listen_addr else {
            self.punish(*peer, Error::NoSelfAddress { peer: *peer }, false, book);
            return;
        };
        let mut added = 0;
        for addr in addrs {
            match book.add_address(addr, &src) {
                Ok(_) => added += 1,
                Err(e) => debug!(%addr, error = %e, "gossiped address not added"),
            }
        }
        debug!(%peer, received = addrs.len(), added, "addresses received");
        // An answer from a seed: dial what it told us right away (the reference's #2093).
        if self.config.seeds.contains(&src) && !self.config.seed_mode {
            self.fast_dial_at = Some(now);
        }
    }

    // ---- dialling --------------------------------------------------------------------------

    /// A dial the core asked for ended.
    pub fn handle_dial_result(
        &mut self,
        addr: &NetAddress,
        outcome: DialOutcome,
        now: Instant,
        book: &mut AddrBook,
        view: &dyn SwitchView,
    ) {
        let Some((kind, _)) = self.pending_dials.remove(addr) else {
            debug!(%addr, "result of a dial the PEX did not ask for");
            return;
        };
        if kind == DialKind::Seed {
            match outcome {
                DialOutcome::Connected | DialOutcome::AlreadyConnectedOrDialing => {
                    self.seed_dial = None;
                }
                DialOutcome::AuthFailure | DialOutcome::Failed => {
                    warn!(seed = %addr, "cannot connect to seed");
                    self.advance_seed_dial(now, view);
                }
            }
            return;
        }
        let key = addr.socket_addr();
        match outcome {
            DialOutcome::Connected => {
                self.dial_records.remove(&key);
            }
            DialOutcome::AlreadyConnectedOrDialing => {}
            DialOutcome::AuthFailure => {
                book.mark_bad(addr, self.config.ban_time);
                self.dial_records.remove(&key);
            }
            DialOutcome::Failed => {
                book.mark_attempt(addr);
                let attempts = self.dial_attempts(addr).saturating_add(1);
                self.record_dial(
                    key,
                    DialRecord {
                        attempts,
                        last: now,
                    },
                );
            }
        }
    }

    fn record_dial(&mut self, key: SocketAddr, record: DialRecord) {
        if !self.dial_records.contains_key(&key) && self.dial_records.len() >= BOOK_CAPACITY {
            let oldest = self
                .dial_records
                .iter()
                .min_by_key(|(_, r)| r.last)
                .map(|(k, _)| *k);
            if let Some(oldest) = oldest {
                self.dial_records.remove(&oldest);
            }
        }
        self.dial_records.insert(key, record);
    }

    /// Room for more outbound connections: the limit minus connected, dialling and asked-for
    /// dials (counted twice while the switch already counts them: conservative, so the limit
    /// is never exceeded).
    fn dial_budget(&self, view: &dyn SwitchView) -> usize {
        self.config
            .max_num_outbound_peers
            .saturating_sub(view.num_outbound() + view.num_dialing() + self.pending_dials.len())
    }

    /// Dials `addr` unless it failed too often (then it is banned) or too recently.
    fn dial_peer(
        &mut self,
        addr: &NetAddress,
        kind: DialKind,
        now: Instant,
        book: &mut AddrBook,
        view: &dyn SwitchView,
    ) -> bool {
        let key = addr.socket_addr();
        let persistent = view.is_persistent(addr);
        if let Some(record) = self.dial_records.get(&key).copied() {
            if !persistent && record.attempts > self.config.max_attempts_to_dial {
                info!(%addr, attempts = record.attempts, "too many failed dials, banning");
                book.mark_bad(addr, self.config.ban_time);
                self.dial_records.remove(&key);
                return false;
            }
            if record.attempts > 0 {
                let jitter = Duration::from_nanos(self.rng.random_range(0..1_000_000_000));
                let base = 1u64.checked_shl(record.attempts).unwrap_or(u64::MAX);
                let mut backoff = Duration::from_secs(base).saturating_add(jitter);
                let cap = self.config.persistent_peers_max_dial_period;
                if persistent && !cap.is_zero() {
                    backoff = backoff.min(cap);
                }
                if now.saturating_duration_since(record.last) < backoff {
                    debug!(%addr, ?backoff, "too early to dial");
                    return false;
                }
            }
        }
        self.pending_dials.insert(*addr, (kind, now));
        self.push(PexAction::Dial { addr: *addr });
        true
    }

    fn dial_seeds(&mut self, now: Instant, view: &dyn SwitchView) {
        if self.config.seeds.is_empty() || self.seed_dial.is_some() {
            return;
        }
        let mut order = self.config.seeds.clone();
        for i in (1..order.len()).rev() {
            let j = self.rng.random_range(0..=i);
            order.swap(i, j);
        }
        self.seed_dial = Some(SeedDial { order, next: 0 });
        self.advance_seed_dial(now, view);
    }

    /// Dials the next seed in the random order, until one connects or all failed.
    fn advance_seed_dial(&mut self, now: Instant, view: &dyn SwitchView) {
        let budget = self.dial_budget(view);
        let Some(dial) = &mut self.seed_dial else {
            return;
        };
        let Some(seed) = dial.order.get(dial.next).copied() else {
            warn!("cannot connect to any seed");
            self.seed_dial = None;
            return;
        };
        dial.next += 1;
        if view.is_dialing_or_connected(&seed) || self.pending_dials.contains_key(&seed) {
            // Connected (or about to be) to a seed already: done.
            self.seed_dial = None;
            return;
        }
        if budget == 0 {
            // No room for another outbound connection: try again at the next round.
            self.seed_dial = None;
            return;
        }
        info!(%seed, "dialling seed");
        self.pending_dials.insert(seed, (DialKind::Seed, now));
        self.push(PexAction::Dial { addr: seed });
    }

    // ---- timers ----------------------------------------------------------------------------

    /// Runs what is due at `now`: the first round after start, the periodic top-up (or crawl,
    /// in seed mode), a top-up after a seed's answer, the periodic save.
    pub fn handle_timeout(&mut self, now: Instant, book: &mut AddrBook, view: &dyn SwitchView) {
        self.pending_dials
            .retain(|_, (_, at)| now.saturating_duration_since(*at) < PENDING_DIAL_TIMEOUT);
        if !self.started {
            self.started = true;
            self.start(now, book, view);
        }
        if self.fast_dial_at.is_some_and(|t| t <= now) {
            self.fast_dial_at = None;
            self.ensure_peers(false, now, book, view);
        }
        if self.next_tick.is_some_and(|t| t <= now) {
            if self.config.seed_mode {
                self.next_tick = Some(now + self.config.crawl_period);
                self.attempt_disconnects(now);
                self.crawl(now, book, view);
                self.crawl_records
                    .retain(|_, at| now.saturating_duration_since(*at) <= CRAWL_RECORD_TTL);
            } else {
                self.next_tick = Some(now + self.config.ensure_peers_period);
                self.ensure_peers(true, now, book, view);
            }
        }
        if self.next_save <= now {
            self.next_save = now + self.config.save_interval;
            self.push(PexAction::SaveAddrBook);
        }
    }

    fn start(&mut self, now: Instant, book: &mut AddrBook, view: &dyn SwitchView) {
        if self.config.seed_mode {
            if self.config.seeds.is_empty() {
                self.crawl(now, book, view);
            } else {
                self.dial_seeds(now, view);
            }
            self.next_tick = Some(now + self.config.crawl_period);
            return;
        }
        let busy = view.num_outbound() + view.num_dialing() + self.peers.len() > 0;
        if busy {
            // Spread the first round of nodes that restart together.
            let period =
                u64::try_from(self.config.ensure_peers_period.as_nanos()).unwrap_or(u64::MAX);
            let jitter = Duration::from_nanos(self.rng.random_range(0..period.max(1)));
            self.next_tick = Some(now + jitter);
        } else {
            // Nobody yet: dial (or ask the seeds) at once.
            self.ensure_peers(true, now, book, view);
            self.next_tick = Some(now + self.config.ensure_peers_period);
        }
    }

    /// Tops up the outbound peers.
    fn ensure_peers(
        &mut self,
        period_elapsed: bool,
        now: Instant,
        book: &mut AddrBook,
        view: &dyn SwitchView,
    ) {
        let out = view.num_outbound();
        let budget = self.dial_budget(view);
        debug!(out, dialing = view.num_dialing(), budget, "ensure peers");
        if budget == 0 {
            return;
        }
        // Prefer vetted addresses while we have few connections.
        let bias = (out.min(8) * 10 + 10) as u8;
        let mut to_dial: BTreeMap<NodeId, NetAddress> = BTreeMap::new();
        for _ in 0..budget * 3 {
            if to_dial.len() >= budget {
                break;
            }
            let Some(addr) = book.pick_address(bias) else {
                continue;
            };
            if to_dial.contains_key(&addr.id())
                || view.is_dialing_or_connected(&addr)
                || self.pending_dials.contains_key(&addr)
            {
                continue;
            }
            to_dial.insert(addr.id(), addr);
        }
        for addr in to_dial.values() {
            self.dial_peer(addr, DialKind::Book, now, book, view);
        }

        if book.need_more_addrs() {
            book.reinstate_bad_peers();
        }
        if book.need_more_addrs() {
            let candidates: Vec<NodeId> = self
                .peers
                .iter()
                .filter(|(_, p)| !p.disconnecting)
                .map(|(id, _)| *id)
                .collect();
            if period_elapsed && !candidates.is_empty() {
                let pick = candidates.get(self.rng.random_range(0..candidates.len()));
                if let Some(peer) = pick.copied() {
                    self.request_addrs(&peer);
                }
            }
            // Seeds only on the periodic round: out of turn (right after a seed's answer)
            // the seed has just hung up, and redialing it at once would loop as fast as it
            // answers whenever the answer held nothing new.
            if to_dial.is_empty() && period_elapsed {
                self.dial_seeds(now, view);
            }
        }
    }

    /// Seed mode: disconnects non-persistent peers connected for the configured wait.
    fn attempt_disconnects(&mut self, now: Instant) {
        let wait = self.config.seed_disconnect_wait_period;
        let due: Vec<NodeId> = self
            .peers
            .iter()
            .filter(|(_, p)| {
                !p.disconnecting
                    && !p.peer.persistent
                    && now.saturating_duration_since(p.connected_at) >= wait
            })
            .map(|(id, _)| *id)
            .collect();
        for peer in due {
            info!(%peer, "connected long enough, disconnecting");
            self.disconnect(peer, DisconnectReason::ConnectedLongEnough);
        }
    }

    /// Seed mode: dials addresses from the book not crawled recently, within the dial budget.
    fn crawl(&mut self, now: Instant, book: &mut AddrBook, view: &dyn SwitchView) {
        let min = self.config.min_time_between_crawls;
        for addr in book.get_selection() {
            if self
                .crawl_records
                .get(&addr.id())
                .is_some_and(|at| now.saturating_duration_since(*at) < min)
            {
                continue;
            }
            if self.dial_budget(view) == 0 {
                break;
            }
            if self.crawl_records.len() >= BOOK_CAPACITY {
                self.crawl_records
                    .retain(|_, at| now.saturating_duration_since(*at) < min);
            }
            self.crawl_records.insert(addr.id(), now);
            if view.is_dialing_or_connected(&addr) || self.pending_dials.contains_key(&addr) {
                continue;
            }
            if self.dial_peer(&addr, DialKind::Crawl, now, book, view) {
                self.stats.crawl_dials += 1;
            }
        }
    }
}
