//! The switch: reactors, the peer set, accepting, dialing, persistent peers, broadcast.

use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, RwLock, Weak};
use std::time::Duration;

use bytes::Bytes;
use p2p_mconn::{ChannelDescriptor, ChannelReceiver};
use p2p_transport::{Connection, TcpTransport, Transport, TransportConfig};
use p2p_types::{NetAddress, NodeId, NodeInfo, NodeKey, PeerAddress};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::adapt;
use crate::addr_book::AddressBook;
use crate::config::{
    DIAL_RANDOMIZER_INTERVAL, RECONNECT_ATTEMPTS, RECONNECT_BACKOFF_ATTEMPTS, RECONNECT_INTERVAL,
    SwitchConfig, backoff,
};
use crate::error::{AddAddressError, Error, ReactorError, SendError, StopReason};
use crate::metrics::{Metrics, PEER_METRICS_INTERVAL, ReactorSeries};
use crate::peer::{Peer, PeerState};
use crate::reactor::{BoxFuture, Erased, Reactor, Reactors, Registered};

/// How long the accept loop pauses after a transport error that is not a rejection, so that a
/// failing transport does not make it spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// What the peers share with the switch: the reactors and the metrics. Peers hold this, not
/// the switch, so a peer handle never keeps the switch alive.
pub(crate) struct Shared {
    pub(crate) reactors: Reactors,
    pub(crate) metrics: Option<Metrics>,
}

impl Shared {
    /// The metric label of an outgoing message (empty without metrics).
    pub(crate) fn label<M: Any>(&self, channel: u8, message: &M) -> &'static str {
        match self.metrics {
            Some(_) => self.reactors.label(channel, message),
            None => "",
        }
    }

    /// The metric label of encoded bytes sent on `channel` (empty without metrics).
    pub(crate) fn bytes_label(&self, channel: u8) -> &'static str {
        match self.metrics {
            Some(_) => self.reactors.bytes_label(channel),
            None => "",
        }
    }
}

/// A transport without its type.
trait DynTransport: Send + Sync {
    fn listen(&self, addr: SocketAddr) -> BoxFuture<'_, Result<SocketAddr, p2p_transport::Error>>;
    fn accept(&self) -> BoxFuture<'_, Result<Connection, p2p_transport::Error>>;
    fn dial<'a>(
        &'a self,
        addr: &'a NetAddress,
    ) -> BoxFuture<'a, Result<Connection, p2p_transport::Error>>;
    fn cleanup(&self, conn: Connection);
    fn close(&self) -> BoxFuture<'_, ()>;
}

impl<T: Transport> DynTransport for T {
    fn listen(&self, addr: SocketAddr) -> BoxFuture<'_, Result<SocketAddr, p2p_transport::Error>> {
        Box::pin(Transport::listen(self, addr))
    }
    fn accept(&self) -> BoxFuture<'_, Result<Connection, p2p_transport::Error>> {
        Box::pin(Transport::accept(self))
    }
    fn dial<'a>(
        &'a self,
        addr: &'a NetAddress,
    ) -> BoxFuture<'a, Result<Connection, p2p_transport::Error>> {
        Box::pin(Transport::dial(self, addr))
    }
    fn cleanup(&self, conn: Connection) {
        Transport::cleanup(self, conn);
    }
    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(Transport::close(self))
    }
}

const NEW: u8 = 0;
const STARTING: u8 = 1;
const RUNNING: u8 = 2;
const STOPPED: u8 = 3;

pub(crate) struct Core {
    shared: Arc<Shared>,
    config: SwitchConfig,
    node_info: NodeInfo,
    transport: Arc<dyn DynTransport>,
    book: Option<Arc<dyn AddressBook>>,
    lists: Mutex<Lists>,
    persistent: RwLock<Vec<NetAddress>>,
    unconditional: RwLock<HashSet<NodeId>>,
    private: RwLock<HashSet<NodeId>>,
    rng: Mutex<StdRng>,
    state: AtomicU8,
    /// Cancelled when the switch stops: ends the accept loop, dials, redials and peers.
    cancel: CancellationToken,
    tasks: TaskTracker,
    listen_addr: OnceLock<SocketAddr>,
}

#[derive(Default)]
struct Lists {
    peers: HashMap<NodeId, Entry>,
    next_seq: u64,
    dialing: HashSet<NodeId>,
    reconnecting: HashSet<NodeId>,
}

struct Entry {
    peer: Peer,
    seq: u64,
}

impl Lists {
    fn visible(&self) -> Vec<Peer> {
        let mut v: Vec<&Entry> = self
            .peers
            .values()
            .filter(|e| matches!(e.peer.state(), PeerState::Running | PeerState::Stopping))
            .collect();
        v.sort_by_key(|e| e.seq);
        v.into_iter().map(|e| e.peer.clone()).collect()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}

/// Builds a [`Switch`]: the reactors first (their channels make the NodeInfo's channel list and
/// the MConnection's channels), then the transport, from the switch's key, NodeInfo and
/// transport settings.
///
/// ```no_run
/// # async fn f(reactor: impl p2p_switch::Reactor) -> Result<(), p2p_switch::Error> {
/// use p2p_switch::{SwitchBuilder, SwitchConfig};
/// use p2p_types::{NodeInfo, NodeKey};
///
/// let key = NodeKey::generate();
/// let info = NodeInfo::new(key.node_id(), "my-chain", "tcp://0.0.0.0:26656");
/// let mut builder = SwitchBuilder::new(key, info, SwitchConfig::default());
/// builder.add_reactor("echo", reactor)?;
/// let switch = builder.build_tcp()?; // or .build(|key, info, config| MyTransport::new(...))
/// switch.start().await?;
/// # Ok(()) }
/// ```
pub struct SwitchBuilder {
    key: NodeKey,
    node_info: NodeInfo,
    config: SwitchConfig,
    reactors: Reactors,
    book: Option<Arc<dyn AddressBook>>,
    metrics: Option<Metrics>,
}

impl std::fmt::Debug for SwitchBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SwitchBuilder")
            .field("node_id", &self.node_info.id)
            .field("config", &self.config)
            .field(
                "reactors",
                &self
                    .reactors
                    .list
                    .iter()
                    .map(|r| &r.name)
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl SwitchBuilder {
    /// A builder for the node with `key`, announcing `node_info` (whose channel list is
    /// replaced by the reactors' channels), with `config`.
    pub fn new(key: NodeKey, node_info: NodeInfo, config: SwitchConfig) -> Self {
        Self {
            key,
            node_info,
            config,
            reactors: Reactors::new(),
            book: None,
            metrics: None,
        }
    }

    /// Registers `reactor` under `name` (the reference's `AddReactor`). Its channels join the
    /// switch's channel list in order; registration order is the MConnection's channel order,
    /// which breaks ties between equally loaded channels. Fails if a channel is already owned
    /// by another reactor, if the name is taken, or if a channel has priority 0.
    pub fn add_reactor<R: Reactor>(&mut self, name: &str, reactor: R) -> Result<&mut Self, Error> {
        self.add_reactor_arc(name, Arc::new(reactor))
    }

    /// Like [`add_reactor`](Self::add_reactor), for a reactor the caller keeps a handle to.
    pub fn add_reactor_arc<R: Reactor>(
        &mut self,
        name: &str,
        reactor: Arc<R>,
    ) -> Result<&mut Self, Error> {
        if self.reactors.list.iter().any(|r| r.name == name) {
            return Err(Error::DuplicateReactor {
                name: name.to_owned(),
            });
        }
        let channels = reactor.channels();
        let index = u8::try_from(self.reactors.list.len())
            .map_err(|_| Error::config("at most 255 reactors"))?;
        let mut seen = HashSet::new();
        for ch in &channels {
            if let Some(owner) = self.reactors.owner(ch.id) {
                return Err(Error::DuplicateChannel {
                    channel: ch.id,
                    first: owner.name.clone(),
                    second: name.to_owned(),
                });
            }
            if !seen.insert(ch.id) {
                return Err(Error::DuplicateChannel {
                    channel: ch.id,
                    first: name.to_owned(),
                    second: name.to_owned(),
                });
            }
            if ch.priority == 0 {
                return Err(Error::config(format!(
                    "reactor {name:?}: channel {:#04x} has priority 0",
                    ch.id
                )));
            }
        }
        for ch in channels {
            self.reactors.by_channel[usize::from(ch.id)] = Some(index);
            self.reactors.channels.push(ch);
        }
        self.reactors.list.push(Registered {
            name: name.to_owned(),
            reactor: Box::new(Erased(reactor)),
        });
        Ok(self)
    }

    /// Sets the address book (without one, the switch learns and forgets no addresses).
    pub fn address_book(&mut self, book: Arc<dyn AddressBook>) -> &mut Self {
        self.book = Some(book);
        self
    }

    /// Records metrics in `metrics` (see [`metrics`](crate::metrics)).
    pub fn metrics(&mut self, metrics: Metrics) -> &mut Self {
        self.metrics = Some(metrics);
        self
    }

    /// The channels registered so far, in order.
    pub fn channels(&self) -> &[ChannelDescriptor] {
        &self.reactors.channels
    }

    /// Builds the switch over the transport `make` returns when given our key, our NodeInfo
    /// (with the reactors' channels) and the transport settings (with the reactors' channels,
    /// `allow_duplicate_ip`, and the incoming limit filled in). Any [`Transport`] plugs in
    /// this way: `TcpTransport::new`, `p2p_testkit`'s `MemoryNetwork::transport`, yours.
    pub fn build<T, F>(self, make: F) -> Result<Switch<T>, Error>
    where
        T: Transport,
        F: FnOnce(NodeKey, NodeInfo, TransportConfig) -> Result<T, p2p_transport::Error>,
    {
        let Self {
            key,
            mut node_info,
            config,
            reactors,
            book,
            metrics,
        } = self;
        if node_info.id != key.node_id() {
            return Err(Error::config(format!(
                "NodeInfo ID {} is not the node key's ID {}",
                node_info.id,
                key.node_id()
            )));
        }
        node_info.channels = reactors.channels.iter().map(|c| c.id).collect();
        let mut tconfig = config.transport.clone();
        tconfig.channels(reactors.channels.iter().cloned());
        tconfig
            .dangerous()
            .allow_duplicate_ip(config.allow_duplicate_ip);
        if tconfig.get_max_incoming_connections() == 0 && config.max_num_inbound_peers > 0 {
            tconfig.max_incoming_connections(
                config.max_num_inbound_peers + config.unconditional_peer_ids.len(),
            );
        }
        let transport = Arc::new(make(key, node_info.clone(), tconfig)?);
        let rng = match config.rng_seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => rand::make_rng(),
        };
        if let Some(book) = &book {
            if !config.private_peer_ids.is_empty() {
                book.add_private_ids(&config.private_peer_ids);
            }
        }
        let core = Arc::new(Core {
            shared: Arc::new(Shared { reactors, metrics }),
            persistent: RwLock::new(config.persistent_peers.clone()),
            unconditional: RwLock::new(config.unconditional_peer_ids.iter().copied().collect()),
            private: RwLock::new(config.private_peer_ids.iter().copied().collect()),
            config,
            node_info,
            transport: Arc::clone(&transport) as Arc<dyn DynTransport>,
            book,
            lists: Mutex::new(Lists::default()),
            rng: Mutex::new(rng),
            state: AtomicU8::new(NEW),
            cancel: CancellationToken::new(),
            tasks: TaskTracker::new(),
            listen_addr: OnceLock::new(),
        });
        Ok(Switch {
            handle: SwitchHandle {
                core: Arc::downgrade(&core),
            },
            core,
            transport,
        })
    }

    /// Builds the switch over a [`TcpTransport`].
    pub fn build_tcp(self) -> Result<Switch<TcpTransport>, Error> {
        self.build(TcpTransport::new)
    }
}

/// The switch (the reference's `Switch`): runs the registered reactors over the peers of a
/// [`Transport`]. Made by a [`SwitchBuilder`]; everything but starting and stopping is on the
/// [`SwitchHandle`] it dereferences to.
///
/// Dropping a switch without [`stop`](Self::stop) cancels its tasks without waiting for them.
pub struct Switch<T> {
    handle: SwitchHandle,
    core: Arc<Core>,
    transport: Arc<T>,
}

impl<T> std::fmt::Debug for Switch<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Switch")
            .field("node_id", &self.core.node_info.id)
            .field("listen_addr", &self.core.listen_addr.get())
            .finish_non_exhaustive()
    }
}

impl<T> Deref for Switch<T> {
    type Target = SwitchHandle;

    fn deref(&self) -> &SwitchHandle {
        &self.handle
    }
}

impl<T> Drop for Switch<T> {
    fn drop(&mut self) {
        self.core.cancel.cancel();
    }
}

impl<T: Transport> Switch<T> {
    /// Starts the reactors (in registration order; an error stops the ones started and is
    /// returned), then listens on the configured address, accepts in a task of its own, and
    /// dials the configured persistent peers ([`dial_peers_async`](SwitchHandle::dial_peers_async)).
    /// A switch starts once.
    pub async fn start(&self) -> Result<(), Error> {
        let core = &self.core;
        if core
            .state
            .compare_exchange(NEW, STARTING, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Err(Error::AlreadyStarted);
        }
        let reactors = &core.shared.reactors.list;
        for (i, r) in reactors.iter().enumerate() {
            if let Err(source) = r.reactor.start(self.handle.clone()).await {
                for started in reactors.iter().take(i) {
                    started.reactor.stop().await;
                }
                core.state.store(STOPPED, Ordering::Release);
                core.cancel.cancel();
                return Err(Error::ReactorStart {
                    name: r.name.clone(),
                    source,
                });
            }
        }
        if let Some(addr) = core.config.listen_addr {
            match core.transport.listen(addr).await {
                Ok(bound) => {
                    let _ = core.listen_addr.set(bound);
                }
                Err(e) => {
                    for r in reactors {
                        r.reactor.stop().await;
                    }
                    core.state.store(STOPPED, Ordering::Release);
                    core.cancel.cancel();
                    return Err(e.into());
                }
            }
        }
        core.state.store(RUNNING, Ordering::Release);
        let c = Arc::clone(core);
        core.tasks.spawn(async move { c.accept_loop().await });
        let persistent = read(&core.persistent).clone();
        if !persistent.is_empty() {
            core.dial_peers_async(persistent);
        }
        tracing::info!(node = %core.node_info.id, listen = ?core.listen_addr.get(), "switch started");
        Ok(())
    }

    /// Stops: no more accepting or dialing, every peer stopped and removed (reactors'
    /// `remove_peer` with [`StopReason::SwitchStopping`]), then the reactors stopped. Waits at
    /// most twice the configured stop timeout for the peers (a reactor's `receive` still
    /// running after one stop timeout is abandoned); a second call does nothing.
    pub async fn stop(&self) {
        let core = &self.core;
        let prev = core.state.swap(STOPPED, Ordering::AcqRel);
        if prev == STOPPED {
            return;
        }
        core.cancel.cancel();
        if tokio::time::timeout(core.config.stop_timeout, core.transport.close())
            .await
            .is_err()
        {
            tracing::warn!("switch stop: the transport did not close within the stop timeout");
        }
        for peer in core.all_peers() {
            peer.request_stop(StopReason::SwitchStopping);
        }
        core.tasks.close();
        // A peer's removal takes at most the stop timeout (for its reactors' last `receive`)
        // plus its `remove_peer` calls.
        let bound = core.config.stop_timeout.saturating_mul(2);
        if tokio::time::timeout(bound, core.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                left = core.tasks.len(),
                "switch stop: tasks still running after the stop timeout"
            );
        }
        if prev != NEW {
            for r in &core.shared.reactors.list {
                r.reactor.stop().await;
            }
        }
        tracing::info!(node = %core.node_info.id, "switch stopped");
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// A handle to the switch, for reactors and other tasks.
    pub fn handle(&self) -> SwitchHandle {
        self.handle.clone()
    }
}

/// What reactors and other tasks use of a switch: peers, dialing, broadcast. Cheap to clone;
/// it does not keep the switch alive, and once the switch is gone its methods report
/// [`Error::NotRunning`] or nothing.
#[derive(Clone)]
pub struct SwitchHandle {
    core: Weak<Core>,
}

impl std::fmt::Debug for SwitchHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SwitchHandle").finish_non_exhaustive()
    }
}

/// The result of a broadcast: each peer's ID and what its send returned.
pub type BroadcastReport = Vec<(NodeId, Result<(), SendError>)>;

impl SwitchHandle {
    fn core(&self) -> Option<Arc<Core>> {
        self.core.upgrade()
    }

    fn with<T>(&self, default: T, f: impl FnOnce(&Arc<Core>) -> T) -> T {
        match self.core() {
            Some(c) => f(&c),
            None => default,
        }
    }

    /// Whether the switch is running (started, not stopped).
    pub fn is_running(&self) -> bool {
        self.with(false, |c| c.is_running())
    }

    /// Our NodeInfo, with the reactors' channels.
    pub fn node_info(&self) -> Option<NodeInfo> {
        self.core().map(|c| c.node_info.clone())
    }

    /// Our address, `ourID@ip:port`, once listening (the IP may be unspecified).
    pub fn net_address(&self) -> Option<NetAddress> {
        self.core().and_then(|c| c.our_address())
    }

    /// The reactor registered under `name`, if it is an `R`.
    pub fn reactor<R: Reactor>(&self, name: &str) -> Option<Arc<R>> {
        let core = self.core()?;
        let r = core.shared.reactors.list.iter().find(|r| r.name == name)?;
        r.reactor.as_any().downcast::<R>().ok()
    }

    /// The names of the registered reactors, in registration order.
    pub fn reactor_names(&self) -> Vec<String> {
        self.with(Vec::new(), |c| {
            c.shared
                .reactors
                .list
                .iter()
                .map(|r| r.name.clone())
                .collect()
        })
    }

    /// The switch's channels, in registration order.
    pub fn channels(&self) -> Vec<ChannelDescriptor> {
        self.with(Vec::new(), |c| c.shared.reactors.channels.clone())
    }

    /// The peers in the peer set, in the order they were added (including peers being
    /// stopped, until their removal completes, as in the reference).
    pub fn peers(&self) -> Vec<Peer> {
        self.with(Vec::new(), |c| lock(&c.lists).visible())
    }

    /// The peer with `id`, if it is in the peer set.
    pub fn peer(&self, id: NodeId) -> Option<Peer> {
        let core = self.core()?;
        let lists = lock(&core.lists);
        lists
            .peers
            .get(&id)
            .map(|e| e.peer.clone())
            .filter(|p| matches!(p.state(), PeerState::Running | PeerState::Stopping))
    }

    /// `(outbound, inbound, dialing)`: peers we dialed and peers that dialed us, unconditional
    /// peers counted in neither, and dials in progress (the reference's `NumPeers`).
    pub fn num_peers(&self) -> (usize, usize, usize) {
        self.with((0, 0, 0), |c| c.num_peers())
    }

    /// The configured `max_num_outbound_peers`, for the reactors that dial.
    pub fn max_num_outbound_peers(&self) -> usize {
        self.with(0, |c| c.config.max_num_outbound_peers)
    }

    /// The configured `max_num_inbound_peers`.
    pub fn max_num_inbound_peers(&self) -> usize {
        self.with(0, |c| c.config.max_num_inbound_peers)
    }

    /// Dials `addr` and adds the peer (the reference's `DialPeerWithAddress`). Fails with
    /// [`Error::CurrentlyDialingOrExistingAddress`] if we are dialing it or connected to it
    /// (or, unless duplicate IPs are allowed, to its IP). A failed dial of a persistent peer
    /// starts its redials. A dial that reaches ourselves teaches the address book our address.
    pub async fn dial_peer_with_address(&self, addr: &NetAddress) -> Result<Peer, Error> {
        let core = self.core().ok_or(Error::NotRunning)?;
        core.dial(addr).await
    }

    /// Dials `addrs` in random order, each in a task of its own after a random delay of up to
    /// 3 s, skipping our own address (the reference's `DialPeersAsync`). With an address book,
    /// each address (but ours and private peers') is first added to it with our address as
    /// the source, and the book is saved. Errors are logged.
    pub fn dial_peers_async(&self, addrs: impl IntoIterator<Item = NetAddress>) {
        if let Some(c) = self.core() {
            c.dial_peers_async(addrs.into_iter().collect());
        }
    }

    /// Whether we are dialing `addr`'s node, are connected to it, or (unless duplicate IPs are
    /// allowed) to a peer at its IP.
    pub fn is_dialing_or_existing_address(&self, addr: &NetAddress) -> bool {
        self.with(false, |c| c.is_dialing_or_existing(&lock(&c.lists), addr))
    }

    /// Adds persistent peers (compared by their full `id@ip:port`).
    pub fn add_persistent_peers(&self, addrs: impl IntoIterator<Item = NetAddress>) {
        if let Some(c) = self.core() {
            write(&c.persistent).extend(addrs);
        }
    }

    /// Whether `addr` is a persistent peer's address.
    pub fn is_peer_persistent(&self, addr: &NetAddress) -> bool {
        self.with(false, |c| c.is_persistent(addr))
    }

    /// Adds unconditional peer IDs (exempt from the inbound limit, not counted in
    /// [`num_peers`](Self::num_peers)). Set them in the config before building to raise the
    /// transport's incoming limit too.
    pub fn add_unconditional_peer_ids(&self, ids: impl IntoIterator<Item = NodeId>) {
        if let Some(c) = self.core() {
            write(&c.unconditional).extend(ids);
        }
    }

    /// Whether `id` is an unconditional peer.
    pub fn is_peer_unconditional(&self, id: NodeId) -> bool {
        self.with(false, |c| c.is_unconditional(id))
    }

    /// Adds private peer IDs: never handed to the address book (and passed to it, so it
    /// refuses them from others too).
    pub fn add_private_peer_ids(&self, ids: impl IntoIterator<Item = NodeId>) {
        if let Some(c) = self.core() {
            let ids: Vec<NodeId> = ids.into_iter().collect();
            write(&c.private).extend(ids.iter().copied());
            if let Some(book) = &c.book {
                book.add_private_ids(&ids);
            }
        }
    }

    /// Whether `id` is a private peer.
    pub fn is_peer_private(&self, id: NodeId) -> bool {
        self.with(false, |c| read(&c.private).contains(&id))
    }

    /// Stops `peer` for an error (the reference's `StopPeerForError`): its reactors'
    /// `remove_peer` get [`StopReason::Error`], and a persistent peer is redialed. Returns at
    /// once (await [`Peer::removed`] to wait).
    pub fn stop_peer_for_error(&self, peer: &Peer, error: impl Into<ReactorError>) {
        peer.stop_for_error(error);
    }

    /// Stops `peer` gracefully (the reference's `StopPeerGracefully`, with a flush first):
    /// what is queued for it is sent (within the stop timeout), then it is closed and removed,
    /// not redialed. Returns at once (await [`Peer::removed`] to wait).
    pub fn stop_peer_gracefully(&self, peer: &Peer) {
        peer.request_stop(StopReason::Graceful);
    }

    /// Tells the address book that `peer` did something useful (the reference's
    /// `MarkPeerAsGood`).
    pub fn mark_peer_as_good(&self, peer: &Peer) {
        if let Some(book) = self.core().and_then(|c| c.book.clone()) {
            book.mark_good(peer.id());
        }
    }

    /// The address book, if one was set.
    pub fn address_book(&self) -> Option<Arc<dyn AddressBook>> {
        self.core().and_then(|c| c.book.clone())
    }

    /// The metrics, if set.
    pub fn metrics(&self) -> Option<Metrics> {
        self.core().and_then(|c| c.shared.metrics.clone())
    }

    /// Sends `message` on `channel` to every peer at once, each send waiting up to the send
    /// timeout, and returns when all are done with each peer's result (peers lacking the
    /// channel report [`SendError::PeerLacksChannel`]). The message is encoded once.
    pub async fn broadcast<M: prost::Message + 'static>(
        &self,
        channel: u8,
        message: &M,
    ) -> BroadcastReport {
        let Some(core) = self.core() else {
            return Vec::new();
        };
        let label = core.shared.label(channel, message);
        let bytes = Bytes::from(message.encode_to_vec());
        let peers = lock(&core.lists).visible();
        drop(core);
        // Queue at once where there is room; wait (concurrently) only where there is none.
        let mut report = Vec::with_capacity(peers.len());
        let mut sends = JoinSet::new();
        for peer in peers {
            match peer.try_send_encoded(channel, bytes.clone(), label) {
                Err(SendError::QueueFull { .. }) => {
                    let bytes = bytes.clone();
                    sends.spawn(async move {
                        let r = peer.send_encoded(channel, bytes, label).await;
                        (peer.id(), r)
                    });
                }
                r => report.push((peer.id(), r)),
            }
        }
        while let Some(done) = sends.join_next().await {
            if let Ok(r) = done {
                report.push(r);
            }
        }
        report
    }

    /// Queues `message` on `channel` for every peer that has room right now, never waiting
    /// (CometBFT v1's `TryBroadcast`); each peer's result.
    pub fn try_broadcast<M: prost::Message + 'static>(
        &self,
        channel: u8,
        message: &M,
    ) -> BroadcastReport {
        let Some(core) = self.core() else {
            return Vec::new();
        };
        let label = core.shared.label(channel, message);
        let bytes = Bytes::from(message.encode_to_vec());
        let peers = lock(&core.lists).visible();
        peers
            .into_iter()
            .map(|p| (p.id(), p.try_send_encoded(channel, bytes.clone(), label)))
            .collect()
    }
}

impl Core {
    fn is_running(&self) -> bool {
        self.state.load(Ordering::Acquire) == RUNNING && !self.cancel.is_cancelled()
    }

    fn our_address(&self) -> Option<NetAddress> {
        self.listen_addr
            .get()
            .map(|a| NetAddress::new(self.node_info.id, *a))
    }

    fn is_persistent(&self, addr: &NetAddress) -> bool {
        read(&self.persistent).iter().any(|a| a == addr)
    }

    fn is_unconditional(&self, id: NodeId) -> bool {
        read(&self.unconditional).contains(&id)
    }

    fn is_private(&self, id: NodeId) -> bool {
        read(&self.private).contains(&id)
    }

    fn all_peers(&self) -> Vec<Peer> {
        lock(&self.lists)
            .peers
            .values()
            .map(|e| e.peer.clone())
            .collect()
    }

    fn num_peers(&self) -> (usize, usize, usize) {
        let unconditional = read(&self.unconditional);
        let lists = lock(&self.lists);
        let (mut out, mut inb) = (0, 0);
        for e in lists.peers.values() {
            if unconditional.contains(&e.peer.id()) {
                continue;
            }
            if e.peer.is_outbound() {
                out += 1;
            } else {
                inb += 1;
            }
        }
        (out, inb, lists.dialing.len())
    }

    fn is_dialing_or_existing(&self, lists: &Lists, addr: &NetAddress) -> bool {
        lists.dialing.contains(&addr.id())
            || lists.peers.contains_key(&addr.id())
            || (!self.config.allow_duplicate_ip
                && lists
                    .peers
                    .values()
                    .any(|e| e.peer.remote_ip() == addr.ip()))
    }

    /// A random delay in `[0, 3 s)`, from the switch's generator.
    fn jitter(&self) -> Duration {
        let max = DIAL_RANDOMIZER_INTERVAL.as_millis() as u64;
        Duration::from_millis(lock(&self.rng).random_range(0..max))
    }

    /// Sleeps `d`; false if the switch stopped meanwhile.
    async fn sleep(&self, d: Duration) -> bool {
        tokio::select! {
            () = self.cancel.cancelled() => false,
            () = tokio::time::sleep(d) => true,
        }
    }

    /// What the address book learns when a connection reached ourselves.
    fn learn_self(&self, addr: &NetAddress) {
        tracing::info!(%addr, "connection to ourselves: this is one of our addresses");
        if let Some(book) = &self.book {
            book.remove_address(addr);
            book.add_our_address(addr);
        }
    }

    async fn accept_loop(self: Arc<Self>) {
        loop {
            let accepted = tokio::select! {
                () = self.cancel.cancelled() => break,
                r = self.transport.accept() => r,
            };
            match accepted {
                Ok(conn) => {
                    let id = conn.node_id();
                    if !self.is_unconditional(id) {
                        let (_, inbound, _) = self.num_peers();
                        let max = self.config.max_num_inbound_peers;
                        if inbound >= max {
                            tracing::info!(peer = %conn.remote_addr(), have = inbound, max,
                                "ignoring inbound connection: already have enough inbound peers");
                            self.transport.cleanup(conn);
                            continue;
                        }
                    }
                    let core = Arc::clone(&self);
                    self.tasks.spawn(async move {
                        if let Err(e) = core.add_peer(conn).await {
                            tracing::info!(error = %e, "ignoring inbound connection");
                        }
                    });
                }
                Err(e) if e.is_closed() => {
                    tracing::debug!("accept routine ended: transport closed");
                    break;
                }
                Err(e) if e.is_self() => {
                    if let Some(addr) = e.self_addr() {
                        self.learn_self(addr);
                    }
                }
                Err(e) if e.is_rejection() => {
                    tracing::info!(error = %e, "inbound peer rejected");
                }
                Err(e) => {
                    // The reference panics here; accepting goes on instead.
                    tracing::error!(error = %e, "accept on transport failed");
                    if !self.sleep(ACCEPT_ERROR_PAUSE).await {
                        break;
                    }
                }
            }
        }
    }

    async fn dial(self: &Arc<Self>, addr: &NetAddress) -> Result<Peer, Error> {
        if !self.is_running() {
            return Err(Error::NotRunning);
        }
        {
            let mut lists = lock(&self.lists);
            if self.is_dialing_or_existing(&lists, addr) {
                return Err(Error::CurrentlyDialingOrExistingAddress { addr: *addr });
            }
            lists.dialing.insert(addr.id());
        }
        let _dialing = DialingGuard {
            core: self,
            id: addr.id(),
        };
        tracing::debug!(%addr, "dialing peer");
        let dialed = tokio::select! {
            () = self.cancel.cancelled() => return Err(Error::NotRunning),
            r = self.transport.dial(addr) => r,
        };
        match dialed {
            Err(e) => {
                if e.is_self() {
                    self.learn_self(addr);
                } else if self.is_persistent(addr) {
                    self.spawn_reconnect(*addr);
                }
                Err(e.into())
            }
            Ok(conn) => self.add_peer(conn).await,
        }
    }

    fn dial_peers_async(self: &Arc<Self>, mut addrs: Vec<NetAddress>) {
        let ours = self.our_address();
        if let Some(book) = &self.book {
            let src = ours.unwrap_or_else(|| {
                NetAddress::new(self.node_info.id, SocketAddr::from(([0, 0, 0, 0], 0)))
            });
            for addr in &addrs {
                if ours.is_some_and(|o| addr.same(&o)) || self.is_private(addr.id()) {
                    continue;
                }
                match book.add_address(addr, &src) {
                    Ok(()) => {}
                    Err(e @ AddAddressError::Private { .. }) => {
                        tracing::debug!(%addr, error = %e, "address not added to the book");
                    }
                    Err(e) => tracing::warn!(%addr, error = %e, "address not added to the book"),
                }
            }
            book.save();
        }
        addrs.shuffle(&mut *lock(&self.rng));
        for addr in addrs {
            if ours.is_some_and(|o| addr.same(&o)) || addr.id() == self.node_info.id {
                tracing::debug!(%addr, "not dialing ourselves");
                continue;
            }
            let core = Arc::clone(self);
            self.tasks.spawn(async move {
                let delay = core.jitter();
                if !core.sleep(delay).await {
                    return;
                }
                match core.dial(&addr).await {
                    Ok(_) => {}
                    Err(
                        e @ (Error::CurrentlyDialingOrExistingAddress { .. }
                        | Error::DuplicatePeer { .. }),
                    ) => tracing::debug!(%addr, error = %e, "not dialing peer"),
                    Err(e) if e.is_self() => tracing::debug!(%addr, "dialed ourselves"),
                    Err(e) => tracing::warn!(%addr, error = %e, "dialing peer failed"),
                }
            });
        }
    }

    fn spawn_reconnect(self: &Arc<Self>, addr: NetAddress) {
        if !self.is_running() || !lock(&self.lists).reconnecting.insert(addr.id()) {
            return;
        }
        let core = Arc::clone(self);
        self.tasks.spawn(async move {
            core.reconnect(&addr).await;
            lock(&core.lists).reconnecting.remove(&addr.id());
        });
    }

    /// Whether a redial ends the redials: it worked, or the node is connected or being dialed.
    async fn redial(self: &Arc<Self>, addr: &NetAddress, attempt: u32) -> bool {
        match self.dial(addr).await {
            Ok(_) => true,
            Err(Error::CurrentlyDialingOrExistingAddress { .. } | Error::NotRunning) => true,
            Err(e) => {
                tracing::info!(%addr, attempt, error = %e, "redialing persistent peer failed");
                false
            }
        }
    }

    /// The reference's `reconnectToPeer`: 20 redials 5 s (+ up to 3 s) apart, then 10 with
    /// backoff `3^i` s (+ up to 3 s); with `persistent_peers_max_dial_period` set, the backoff
    /// redials go on forever and no wait exceeds the period.
    async fn reconnect(self: &Arc<Self>, addr: &NetAddress) {
        let cap = self.config.persistent_peers_max_dial_period;
        let capped = |d: Duration| if cap.is_zero() { d } else { d.min(cap) };
        let start = Instant::now();
        tracing::info!(%addr, "reconnecting to persistent peer");
        for attempt in 0..RECONNECT_ATTEMPTS {
            if !self.is_running() || self.redial(addr, attempt).await {
                return;
            }
            let wait = capped(RECONNECT_INTERVAL + self.jitter());
            if !self.sleep(wait).await {
                return;
            }
        }
        tracing::warn!(%addr, elapsed = ?start.elapsed(), "persistent peer still unreachable, backing off");
        let mut i: u32 = 1;
        while !cap.is_zero() || i <= RECONNECT_BACKOFF_ATTEMPTS {
            if !self.is_running() {
                return;
            }
            let wait = capped(backoff(i).saturating_add(self.jitter()));
            if !self.sleep(wait).await {
                return;
            }
            if self.redial(addr, RECONNECT_ATTEMPTS + i - 1).await {
                return;
            }
            i = i.saturating_add(1);
        }
        tracing::error!(%addr, elapsed = ?start.elapsed(), "giving up on persistent peer");
    }

    /// Adds an upgraded connection as a peer: duplicate check (keeping, of two connections
    /// between the same nodes, the one the lower ID dialed), the inbound limit, `init_peer`,
    /// then the peer's task (insertion, `add_peer`, delivery, removal). Returns once every
    /// reactor's `add_peer` returned.
    async fn add_peer(self: &Arc<Self>, mut conn: Connection) -> Result<Peer, Error> {
        let id = conn.node_id();
        let outbound = conn.is_outbound();
        let persistent = if outbound {
            self.is_persistent(conn.remote_addr())
        } else {
            conn.node_info()
                .peer_address()
                .ok()
                .and_then(|a| a.to_net_address())
                .is_some_and(|a| self.is_persistent(&a))
        };
        let unconditional = self.is_unconditional(id);
        let wait_until = Instant::now() + self.config.transport.get_filter_timeout();
        let peer = loop {
            if !self.is_running() {
                self.transport.cleanup(conn);
                return Err(Error::NotRunning);
            }
            let waiting_for = {
                let mut lists = lock(&self.lists);
                match lists.peers.get(&id).map(|e| e.peer.clone()) {
                    None => {
                        if !outbound && !unconditional {
                            let unconditional = read(&self.unconditional);
                            let inbound = lists
                                .peers
                                .values()
                                .filter(|e| {
                                    !e.peer.is_outbound() && !unconditional.contains(&e.peer.id())
                                })
                                .count();
                            let max = self.config.max_num_inbound_peers;
                            if inbound >= max {
                                drop(unconditional);
                                drop(lists);
                                self.transport.cleanup(conn);
                                return Err(Error::InboundLimit { id, max });
                            }
                        }
                        let peer = Peer::new(
                            adapt::conn_id(&conn),
                            conn.node_info().clone(),
                            *conn.remote_addr(),
                            outbound,
                            persistent,
                            conn.mconn().clone(),
                            Arc::clone(&self.shared),
                        );
                        let seq = lists.next_seq;
                        lists.next_seq += 1;
                        lists.peers.insert(
                            id,
                            Entry {
                                peer: peer.clone(),
                                seq,
                            },
                        );
                        break peer;
                    }
                    Some(existing) => match existing.state() {
                        PeerState::Stopping | PeerState::Removed => existing,
                        PeerState::Adding | PeerState::Running => {
                            if self.prefer_new(outbound, &existing) {
                                tracing::debug!(peer = %id, "replacing a connection by the one the lower ID dialed");
                                existing.request_stop(StopReason::Replaced);
                                existing
                            } else {
                                drop(lists);
                                self.transport.cleanup(conn);
                                return Err(Error::DuplicatePeer { id });
                            }
                        }
                    },
                }
            };
            // The old connection of this node is being removed: wait for its `remove_peer`
            // calls to finish, so `init_peer` never overlaps them.
            tokio::select! {
                () = waiting_for.removed() => {}
                () = tokio::time::sleep_until(wait_until) => {
                    self.transport.cleanup(conn);
                    return Err(Error::DuplicatePeer { id });
                }
                () = self.cancel.cancelled() => {
                    self.transport.cleanup(conn);
                    return Err(Error::NotRunning);
                }
            }
        };
        for r in &self.shared.reactors.list {
            r.reactor.init_peer(&peer);
        }
        let receivers = adapt::take_receivers(&mut conn);
        let (added_tx, added_rx) = tokio::sync::oneshot::channel();
        let core = Arc::clone(self);
        let p = peer.clone();
        self.tasks.spawn(async move {
            core.run_peer(p, conn, receivers, added_tx).await;
        });
        let _ = added_rx.await;
        Ok(peer)
    }

    /// Whether a new connection (`outbound` or not) to the node of `existing` should replace
    /// it: only when they go opposite ways and the new one is the one the lower node ID dialed,
    /// so both nodes keep the same connection.
    fn prefer_new(&self, outbound: bool, existing: &Peer) -> bool {
        if outbound == existing.is_outbound() {
            return false;
        }
        let ours = self.node_info.id.as_bytes();
        let theirs = existing.id();
        let theirs = theirs.as_bytes();
        if outbound {
            ours < theirs
        } else {
            theirs < ours
        }
    }

    /// A peer's whole life after `init_peer`.
    async fn run_peer(
        self: Arc<Self>,
        peer: Peer,
        conn: Connection,
        receivers: Vec<(u8, ChannelReceiver)>,
        added: tokio::sync::oneshot::Sender<()>,
    ) {
        let shared = Arc::clone(&self.shared);
        peer.set_state(PeerState::Running);
        if let Some(m) = &shared.metrics {
            m.peer_added();
        }
        tracing::debug!(peer = %peer, "peer added");

        // `add_peer` on each reactor, then delivery of its channels.
        let mut by_reactor: Vec<Vec<(u8, ChannelReceiver)>> =
            shared.reactors.list.iter().map(|_| Vec::new()).collect();
        for (ch, rx) in receivers {
            if let Some(i) = shared.reactors.by_channel[usize::from(ch)] {
                if let Some(list) = by_reactor.get_mut(usize::from(i)) {
                    list.push((ch, rx));
                }
            }
        }
        let deliver_stop = CancellationToken::new();
        let mut delivery = JoinSet::new();
        let mut owners = HashMap::new();
        for (i, r) in shared.reactors.list.iter().enumerate() {
            r.reactor.add_peer(&peer).await;
            for (ch, rx) in by_reactor
                .get_mut(i)
                .map(std::mem::take)
                .unwrap_or_default()
            {
                let task = delivery.spawn(deliver(
                    Arc::clone(&shared),
                    peer.clone(),
                    i,
                    ch,
                    rx,
                    deliver_stop.clone(),
                ));
                owners.insert(task.id(), (r.name.clone(), ch));
            }
        }
        let _ = added.send(());

        // Until something ends it.
        let mconn = conn.mconn().clone();
        let mut ticker = tokio::time::interval(PEER_METRICS_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = peer.inner.stop.cancelled() => break,
                () = self.cancel.cancelled() => {
                    peer.request_stop(StopReason::SwitchStopping);
                    break;
                }
                outcome = mconn.closed() => {
                    peer.request_stop(match outcome {
                        Ok(()) => StopReason::Graceful,
                        Err(error) => StopReason::Connection { error },
                    });
                    break;
                }
                Some(done) = delivery.join_next(), if !delivery.is_empty() => {
                    // A delivery task ends on its own only after a bad message (the peer is
                    // stopping then) or when its reactor's `receive` panicked.
                    if let Err(e) = done {
                        if e.is_panic() {
                            let (name, ch) = owners.get(&e.id()).cloned().unwrap_or_default();
                            tracing::error!(peer = %peer, reactor = %name, channel = ch, "a reactor's receive panicked");
                            peer.request_stop(StopReason::Error {
                                error: ReactorError::msg(format!(
                                    "reactor {name:?} panicked on a message of channel {ch:#04x}"
                                )),
                            });
                            break;
                        }
                    }
                }
                _ = ticker.tick() => {
                    if let Some(g) = &peer.inner.counters.pending {
                        g.set(adapt::pending_send(&mconn));
                    }
                }
            }
        }
        let reason = peer
            .stop_reason()
            .cloned()
            .unwrap_or(StopReason::SwitchStopping);
        peer.set_state(PeerState::Stopping);
        if reason.is_error() {
            tracing::info!(peer = %peer, %reason, "stopping peer");
        } else {
            tracing::debug!(peer = %peer, %reason, "stopping peer");
        }
        let bound = self.config.stop_timeout;
        if matches!(reason, StopReason::Graceful)
            && mconn.is_running()
            && tokio::time::timeout(bound, mconn.flush_stop())
                .await
                .is_err()
        {
            tracing::debug!(peer = %peer, "flush did not finish within the stop timeout");
        }

        // No `receive` of this peer runs past this point (a stuck one is abandoned after the
        // stop timeout).
        deliver_stop.cancel();
        let drained = tokio::time::timeout(bound, async {
            while delivery.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(peer = %peer, "a reactor's receive did not return within the stop timeout; abandoned");
            delivery.abort_all();
        }
        self.transport.cleanup(conn);
        for r in &shared.reactors.list {
            r.reactor.remove_peer(&peer, &reason).await;
        }
        {
            let mut lists = lock(&self.lists);
            if lists
                .peers
                .get(&peer.id())
                .is_some_and(|e| e.peer.same(&peer))
            {
                lists.peers.remove(&peer.id());
            }
        }
        if let Some(m) = &shared.metrics {
            let channels: Vec<u8> = shared.reactors.channels.iter().map(|c| c.id).collect();
            m.peer_removed(&peer.inner.id_label, &channels);
        }
        peer.set_state(PeerState::Removed);
        peer.inner.removed.cancel();
        tracing::debug!(peer = %peer, "peer removed");

        if reason.is_error() && peer.is_persistent() && self.is_running() {
            self.reconnect_to(&peer).await;
        }
    }

    /// Starts the redials of a persistent peer that went away: at the dialed address for an
    /// outbound peer, at the self-reported one for an inbound peer.
    async fn reconnect_to(self: &Arc<Self>, peer: &Peer) {
        let addr = if peer.is_outbound() {
            Some(*peer.socket_addr())
        } else {
            match peer.node_info().peer_address() {
                Ok(a) => resolve(a).await,
                Err(e) => {
                    tracing::warn!(peer = %peer, error = %e, "cannot redial inbound persistent peer: bad self-reported address");
                    None
                }
            }
        };
        if let Some(addr) = addr {
            self.spawn_reconnect(addr);
        }
    }
}

struct DialingGuard<'a> {
    core: &'a Core,
    id: NodeId,
}

impl Drop for DialingGuard<'_> {
    fn drop(&mut self) {
        lock(&self.core.lists).dialing.remove(&self.id);
    }
}

/// Delivers one channel of one peer to its reactor, in order, until stopped.
async fn deliver(
    shared: Arc<Shared>,
    peer: Peer,
    reactor: usize,
    channel: u8,
    mut rx: ChannelReceiver,
    stop: CancellationToken,
) {
    let Some(r) = shared.reactors.list.get(reactor) else {
        return;
    };
    let _queue = shared.metrics.as_ref().map(|m| m.reactor_queue(&r.name));
    // The per-reactor series of each message type seen on this queue (a reactor has few).
    let mut series: Vec<ReactorSeries> = Vec::new();
    loop {
        let (bytes, waited) = tokio::select! {
            biased;
            () = stop.cancelled() => break,
            m = adapt::recv_timed(&mut rx) => match m {
                Some(m) => m,
                None => break,
            },
        };
        let taken = Instant::now();
        let len = bytes.len();
        match r.reactor.deliver(&r.name, channel, &peer, bytes) {
            Ok((receive, label)) => {
                let Some(m) = &shared.metrics else {
                    receive.await;
                    continue;
                };
                m.received(&peer.inner.counters, channel, label, len);
                let i = match series.iter().position(|s| s.label == label) {
                    Some(i) => i,
                    None => {
                        series.push(m.reactor_message(&r.name, label));
                        series.len() - 1
                    }
                };
                let _in_flight = series
                    .get(i)
                    .map(|s| s.start(waited.saturating_add(taken.elapsed())));
                receive.await;
            }
            Err(reason) => {
                tracing::info!(peer = %peer, %reason, "bad message, stopping peer");
                peer.request_stop(reason);
                break;
            }
        }
    }
}

/// `addr` as a dialable address: an IP literal as is, a DNS name looked up on a blocking
/// thread (`None`, logged, if the lookup fails).
pub(crate) async fn resolve(addr: PeerAddress) -> Option<NetAddress> {
    if let Some(a) = addr.to_net_address() {
        return Some(a);
    }
    let shown = addr.to_string();
    match tokio::task::spawn_blocking(move || addr.resolve()).await {
        Ok(Ok(a)) => Some(a),
        Ok(Err(e)) => {
            tracing::warn!(addr = %shown, error = %e, "cannot resolve peer address");
            None
        }
        Err(_) => None,
    }
}

/// Parses a comma-separated peer list (`id@host:port,...`, the reference's `persistent_peers`
/// form) without resolving anything; empty entries are skipped. A malformed entry is an error
/// ([`Error::InvalidPeer`]).
pub fn parse_peer_list(list: &str) -> Result<Vec<PeerAddress>, Error> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .enumerate()
        .map(|(index, text)| {
            text.parse().map_err(|source| Error::InvalidPeer {
                index,
                text: text.to_owned(),
                source,
            })
        })
        .collect()
}

/// Parses a peer list like [`parse_peer_list`] and resolves DNS names on a blocking thread; a
/// name that does not resolve is logged and skipped, as the reference does.
pub async fn resolve_peer_list(list: &str) -> Result<Vec<NetAddress>, Error> {
    let mut out = Vec::new();
    for addr in parse_peer_list(list)? {
        if let Some(a) = resolve(addr).await {
            out.push(a);
        }
    }
    Ok(out)
}

/// Parses a comma-separated list of node IDs (the reference's `unconditional_peer_ids` and
/// `private_peer_ids` form).
pub fn parse_peer_ids(list: &str) -> Result<Vec<NodeId>, Error> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .enumerate()
        .map(|(index, text)| {
            text.parse().map_err(|source| Error::InvalidPeer {
                index,
                text: text.to_owned(),
                source,
            })
        })
        .collect()
}
