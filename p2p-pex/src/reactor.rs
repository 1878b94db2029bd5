//! The PEX reactor: [`PexCore`] driven over the switch's public API.
//!
//! The reactor owns channel 0x00. Messages, peers coming and going and dial results are fed
//! to the core as they happen; a driver task sleeps until the core's next timeout (on tokio's
//! clock, so a paused test clock drives it) and runs it. Whatever the core asks for is carried
//! out through the switch: messages are queued on the peer's PEX channel, dials go through
//! [`SwitchHandle::dial_peer_with_address`], misbehaving peers are stopped for an error, seed
//! mode stops a peer gracefully once its answer is flushed, and the book is saved every
//! [`PexConfig::save_interval`] and when the switch stops.
//!
//! The book is shared with the switch as a [`SharedAddrBook`], which implements
//! [`p2p_switch::AddressBook`]: pass [`Reactor::address_book`] to
//! [`SwitchBuilder::address_book`](p2p_switch::SwitchBuilder::address_book) so that dials and
//! connections to ourselves teach it.

use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Instant;

use p2p_mconn::ChannelDescriptor;
use p2p_switch::{
    AddAddressError, AddressBook, Envelope, Peer, Raw, ReactorError, StopReason, SwitchHandle,
};
use p2p_types::{NetAddress, NodeId};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use crate::{
    AddrBook, DialOutcome, DisconnectReason, Error, PexAction, PexConfig, PexCore, PexPeer,
    SwitchView, check_seeds,
};

/// The PEX channel.
pub const PEX_CHANNEL: u8 = 0x00;
/// Priority of the PEX channel (the reference's 1).
pub const PEX_CHANNEL_PRIORITY: u32 = 1;
/// Send queue of the PEX channel, in messages (the reference's 10).
pub const PEX_SEND_QUEUE_CAPACITY: usize = 10;
/// Largest PEX message accepted, in bytes (the reference's `maxMsgSize`: 250 addresses of at
/// most 256 bytes each).
pub const PEX_RECV_MESSAGE_CAPACITY: usize = 64_000;

/// The address book, shared between the PEX reactor and the switch.
#[derive(Clone, Debug)]
pub struct SharedAddrBook(Arc<Mutex<AddrBook>>);

impl SharedAddrBook {
    /// Shares `book`.
    pub fn new(book: AddrBook) -> Self {
        Self(Arc::new(Mutex::new(book)))
    }

    /// Locks the book. Keep the guard briefly: the switch and the PEX wait on it.
    pub fn lock(&self) -> MutexGuard<'_, AddrBook> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Saves the book to its file, if it has one; errors are logged.
    pub fn save_now(&self) {
        let book = self.lock();
        if book.file_path().is_some() {
            if let Err(error) = book.save() {
                warn!(%error, "could not save the address book");
            }
        }
    }
}

impl AddressBook for SharedAddrBook {
    fn add_address(&self, addr: &NetAddress, src: &NetAddress) -> Result<(), AddAddressError> {
        match self.lock().add_address(addr, src) {
            Ok(_) => Ok(()),
            Err(Error::PrivateAddress { addr }) => Err(AddAddressError::Private { id: addr.id() }),
            Err(Error::PrivateSource { src }) => Err(AddAddressError::Private { id: src.id() }),
            Err(e) => Err(AddAddressError::Refused {
                reason: e.to_string(),
            }),
        }
    }

    fn remove_address(&self, addr: &NetAddress) {
        self.lock().remove_address(addr);
    }

    fn has_address(&self, addr: &NetAddress) -> bool {
        self.lock().has_address(addr)
    }

    fn add_our_address(&self, addr: &NetAddress) {
        self.lock().add_our_address(addr);
    }

    fn is_our_address(&self, addr: &NetAddress) -> bool {
        self.lock().is_our_address(addr)
    }

    fn mark_good(&self, id: NodeId) {
        self.lock().mark_good(&id);
    }

    fn add_private_ids(&self, ids: &[NodeId]) {
        self.lock().add_private_ids(ids.iter().copied());
    }

    fn save(&self) {
        self.save_now();
    }
}

/// Settings of the PEX [`Reactor`].
///
/// ```
/// use std::time::Duration;
/// use p2p_pex::Config;
///
/// let mut config = Config::default();
/// config.seeds("0123456789abcdef0123456789abcdef01234567@seed.example:26656");
/// config.pex().max_num_outbound_peers(5).ensure_peers_period(Duration::from_secs(9));
/// assert_eq!(config.get_pex().min_receive_request_interval(), Duration::from_secs(3));
/// assert!(config.get_seeds().starts_with("0123"));
/// ```
#[derive(Clone, Debug, Default)]
pub struct Config {
    pex: PexConfig,
    seeds: String,
    rng_seed: Option<u64>,
}

impl Config {
    /// The protocol's settings (default [`PexConfig::default`]). Seeds set here are used as
    /// they are, together with those of [`seeds`](Self::seeds).
    pub fn pex(&mut self) -> &mut PexConfig {
        &mut self.pex
    }

    /// Seeds as the reference's comma-separated `seeds` list (`id@host:port`, host a name or
    /// an IP); names are resolved when the reactor starts, and one that does not resolve is
    /// skipped. Default empty.
    pub fn seeds(&mut self, list: impl Into<String>) -> &mut Self {
        self.seeds = list.into();
        self
    }

    /// Seeds the PEX's random generator (for repeatable simulations). Default `None`: seeded
    /// by the operating system.
    pub fn rng_seed(&mut self, seed: Option<u64>) -> &mut Self {
        self.rng_seed = seed;
        self
    }

    /// See [`pex`](Self::pex).
    pub fn get_pex(&self) -> &PexConfig {
        &self.pex
    }

    /// See [`seeds`](Self::seeds).
    pub fn get_seeds(&self) -> &str {
        &self.seeds
    }
}

/// The PEX reactor (the reference's `pex.Reactor`). Register it with
/// [`SwitchBuilder::add_reactor`](p2p_switch::SwitchBuilder::add_reactor) and give the switch
/// its [`address_book`](Self::address_book).
#[derive(Clone, Debug)]
pub struct Reactor {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: Config,
    book: SharedAddrBook,
    core: Mutex<Option<PexCore>>,
    switch: OnceLock<SwitchHandle>,
    wake: Notify,
    cancel: CancellationToken,
    tasks: TaskTracker,
}

/// The switch as the core sees it.
struct View<'a>(&'a SwitchHandle);

impl SwitchView for View<'_> {
    fn num_outbound(&self) -> usize {
        self.0.num_peers().0
    }
    fn num_dialing(&self) -> usize {
        self.0.num_peers().2
    }
    fn is_dialing_or_connected(&self, addr: &NetAddress) -> bool {
        self.0.is_dialing_or_existing_address(addr)
    }
    fn is_persistent(&self, addr: &NetAddress) -> bool {
        self.0.is_peer_persistent(addr)
    }
}

fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

impl Reactor {
    /// A reactor over `book`.
    pub fn new(config: Config, book: AddrBook) -> Self {
        Self {
            inner: Arc::new(Inner {
                config,
                book: SharedAddrBook::new(book),
                core: Mutex::new(None),
                switch: OnceLock::new(),
                wake: Notify::new(),
                cancel: CancellationToken::new(),
                tasks: TaskTracker::new(),
            }),
        }
    }

    /// The book, to hand to the switch and to look at.
    pub fn address_book(&self) -> SharedAddrBook {
        self.inner.book.clone()
    }

    /// What the core did so far (zeros before the reactor started).
    pub fn stats(&self) -> crate::PexStats {
        self.with_core(PexCore::stats).unwrap_or_default()
    }

    /// Seed mode: node IDs dialled to crawl within `window` (0 before the reactor started).
    pub fn crawled_within(&self, window: std::time::Duration) -> usize {
        self.with_core(|c| c.crawled_within(now(), window))
            .unwrap_or(0)
    }

    /// Runs `f` on the core (`None` before the reactor started).
    pub fn with_core<T>(&self, f: impl FnOnce(&PexCore) -> T) -> Option<T> {
        self.inner.core_lock().as_ref().map(f)
    }
}

impl Inner {
    fn core_lock(&self) -> MutexGuard<'_, Option<PexCore>> {
        self.core.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the core and the book, then carries out what the core asks for.
    fn drive(self: &Arc<Self>, f: impl FnOnce(&mut PexCore, &mut AddrBook, &dyn SwitchView)) {
        let Some(switch) = self.switch.get() else {
            return;
        };
        let mut actions = Vec::new();
        {
            let mut core = self.core_lock();
            let Some(core) = core.as_mut() else {
                return;
            };
            let mut book = self.book.lock();
            f(core, &mut book, &View(switch));
            while let Some(a) = core.poll_action() {
                actions.push(a);
            }
        }
        self.wake.notify_one();
        for action in actions {
            self.execute(switch, action);
        }
    }

    fn execute(self: &Arc<Self>, switch: &SwitchHandle, action: PexAction) {
        match action {
            PexAction::Send { peer, message } => {
                let Some(p) = switch.peer(peer) else {
                    debug!(%peer, "PEX message for a peer that is gone");
                    return;
                };
                if let Err(error) = p.try_send_bytes(PEX_CHANNEL, message.encode().into()) {
                    debug!(%peer, %error, "PEX message not queued");
                }
            }
            PexAction::Dial { addr } => {
                let inner = Arc::clone(self);
                let switch = switch.clone();
                self.tasks.spawn(async move {
                    let outcome = tokio::select! {
                        () = inner.cancel.cancelled() => return,
                        r = switch.dial_peer_with_address(&addr) => outcome_of(&r),
                    };
                    inner.drive(|core, book, view| {
                        core.handle_dial_result(&addr, outcome, now(), book, view);
                    });
                });
            }
            PexAction::Disconnect { peer, reason } => {
                let Some(p) = switch.peer(peer) else {
                    return;
                };
                match reason {
                    DisconnectReason::Misbehaved { error, .. } => {
                        p.stop_for_error(ReactorError::new(error));
                    }
                    DisconnectReason::SeedAnswered => {
                        // Not awaited here: this may run inside the peer's `receive`.
                        self.tasks.spawn(async move { p.flush_stop().await });
                    }
                    DisconnectReason::ConnectedLongEnough => switch.stop_peer_gracefully(&p),
                }
            }
            PexAction::SaveAddrBook => self.book.save_now(),
        }
    }

    /// Runs the core's timers until the switch stops.
    async fn run(self: Arc<Self>) {
        loop {
            let deadline = self.core_lock().as_ref().and_then(PexCore::poll_timeout);
            let sleep = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = self.cancel.cancelled() => return,
                () = self.wake.notified() => continue,
                () = sleep => {}
            }
            self.drive(|core, book, view| core.handle_timeout(now(), book, view));
        }
    }
}

fn outcome_of(result: &Result<Peer, p2p_switch::Error>) -> DialOutcome {
    match result {
        Ok(_) => DialOutcome::Connected,
        Err(
            p2p_switch::Error::CurrentlyDialingOrExistingAddress { .. }
            | p2p_switch::Error::DuplicatePeer { .. },
        ) => DialOutcome::AlreadyConnectedOrDialing,
        // Only proof that someone else answers at the address bans it. A handshake or
        // NodeInfo exchange cut short (the listener refusing a duplicate IP or a source over
        // its handshake rate, a timeout, a reset) is a failed attempt, as in the reference.
        Err(e)
            if e.transport().is_some_and(|t| {
                matches!(
                    t,
                    p2p_transport::Error::DialedIdMismatch { .. }
                        | p2p_transport::Error::NodeInfoIdMismatch { .. }
                )
            }) =>
        {
            DialOutcome::AuthFailure
        }
        Err(_) => DialOutcome::Failed,
    }
}

fn pex_peer(peer: &Peer) -> PexPeer {
    PexPeer {
        id: peer.id(),
        outbound: peer.is_outbound(),
        persistent: peer.is_persistent(),
        listen_addr: peer
            .node_info()
            .peer_address()
            .ok()
            .and_then(|a| a.to_net_address()),
        socket_addr: *peer.socket_addr(),
    }
}

impl p2p_switch::Reactor for Reactor {
    type Message = Raw;

    fn channels(&self) -> Vec<ChannelDescriptor> {
        vec![
            ChannelDescriptor::new(PEX_CHANNEL, PEX_CHANNEL_PRIORITY)
                .send_queue_capacity(PEX_SEND_QUEUE_CAPACITY)
                .recv_message_capacity(PEX_RECV_MESSAGE_CAPACITY),
        ]
    }

    async fn receive(&self, e: Envelope<Raw>) {
        let id = e.src.id();
        self.inner.drive(|core, book, _| {
            core.handle_message(&id, &e.message.0, now(), book);
        });
    }

    async fn start(&self, switch: SwitchHandle) -> Result<(), ReactorError> {
        let list = self.inner.config.seeds.as_str();
        let configured = p2p_switch::parse_peer_list(list)
            .map_err(ReactorError::new)?
            .len();
        let resolved = p2p_switch::resolve_peer_list(list)
            .await
            .map_err(ReactorError::new)?;
        let mut pex = self.inner.config.pex.clone();
        let mut seeds: Vec<NetAddress> = pex.seed_addrs().to_vec();
        let configured = configured + seeds.len();
        seeds.extend(resolved);
        check_seeds(configured, seeds.len(), &self.inner.book.lock()).map_err(ReactorError::new)?;
        pex.seeds(seeds);
        let core = match self.inner.config.rng_seed {
            Some(seed) => PexCore::with_seed(pex, now(), seed),
            None => PexCore::new(pex, now()),
        };
        *self.inner.core_lock() = Some(core);
        if self.inner.switch.set(switch).is_err() {
            return Err(ReactorError::msg("the PEX reactor was started twice"));
        }
        let inner = Arc::clone(&self.inner);
        self.inner.tasks.spawn(inner.run());
        Ok(())
    }

    async fn stop(&self) {
        self.inner.cancel.cancel();
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
        self.inner.book.save_now();
    }

    async fn add_peer(&self, peer: &Peer) {
        let p = pex_peer(peer);
        self.inner
            .drive(|core, book, _| core.handle_peer_added(p, now(), book));
    }

    async fn remove_peer(&self, peer: &Peer, _reason: &StopReason) {
        let id = peer.id();
        self.inner.drive(|core, _, _| core.handle_peer_removed(&id));
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::time::Duration;

    use p2p_types::NodeKey;

    use super::*;

    fn dial_error(e: p2p_transport::Error) -> Result<Peer, p2p_switch::Error> {
        Err(p2p_switch::Error::from(e))
    }

    #[test]
    fn only_another_node_answering_is_an_auth_failure() {
        let addr: SocketAddr = "10.0.0.1:26656".parse().unwrap();
        let a = NodeKey::from_seed([1; 32]).node_id();
        let b = NodeKey::from_seed([2; 32]).node_id();
        let mismatch = [
            p2p_transport::Error::DialedIdMismatch {
                addr,
                dialed: a,
                authenticated: b,
            },
            p2p_transport::Error::NodeInfoIdMismatch {
                addr,
                authenticated: a,
                claimed: b,
            },
        ];
        for e in mismatch {
            assert_eq!(outcome_of(&dial_error(e)), DialOutcome::AuthFailure);
        }
        // Cut short or slow: the reference's auth-failure kind, but no proof of anything.
        let cut_short = [
            p2p_transport::Error::NodeInfoIo {
                addr,
                id: a,
                source: Arc::new(std::io::ErrorKind::UnexpectedEof.into()),
            },
            p2p_transport::Error::NodeInfoTimeout {
                addr,
                id: a,
                timeout: Duration::from_secs(20),
            },
        ];
        for e in cut_short {
            assert!(e.is_auth_failure());
            assert_eq!(outcome_of(&dial_error(e)), DialOutcome::Failed);
        }
    }
}
