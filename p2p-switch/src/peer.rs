//! The peer handle reactors work with.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use bytes::Bytes;
use p2p_mconn::status::ConnectionStatus;
use p2p_mconn::{ConnectionId, MConnection};
use p2p_types::{NetAddress, NodeId, NodeInfo};
use tokio_util::sync::CancellationToken;

use crate::adapt;
use crate::error::{ReactorError, SendError, StopReason};
use crate::metrics::PeerCounters;
use crate::switch::Shared;

/// Where a peer is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PeerState {
    /// Being added: reactors' `init_peer` / `add_peer` are running.
    Adding,
    /// In the peer set, messages flowing.
    Running,
    /// Stopping: its `remove_peer` calls are running or about to.
    Stopping,
    /// Removed from the switch; the handle is stale.
    Removed,
}

const ADDING: u8 = 0;
const RUNNING: u8 = 1;
const STOPPING: u8 = 2;
const REMOVED: u8 = 3;

/// A connected peer (the reference's `Peer`): its identity and connection, typed sending, and
/// data reactors attach to it.
///
/// Cheap to clone (a shared handle). A handle outlives the peer harmlessly: once the peer is
/// removed, sending fails with [`SendError::Stopped`], stopping does nothing, and its data
/// stays readable.
///
/// ```no_run
/// # async fn f(peer: p2p_switch::Peer) {
/// use p2p_types::proto::p2p::{Message, PexRequest, message::Sum};
///
/// struct Greeted(bool);
/// peer.insert(Greeted(true));
/// assert!(peer.get::<Greeted>().is_some_and(|g| g.0));
///
/// let msg = Message { sum: Some(Sum::PexRequest(PexRequest {})) };
/// if let Err(e) = peer.send(0x00, &msg).await {
///     println!("{} did not take it: {e}", peer.id());
/// }
/// # }
/// ```
#[derive(Clone)]
pub struct Peer {
    pub(crate) inner: Arc<PeerInner>,
}

pub(crate) struct PeerInner {
    pub(crate) id: NodeId,
    /// The peer ID as a metric label, made once.
    pub(crate) id_label: String,
    pub(crate) conn_id: ConnectionId,
    pub(crate) node_info: NodeInfo,
    pub(crate) addr: NetAddress,
    pub(crate) outbound: bool,
    pub(crate) persistent: bool,
    pub(crate) mconn: MConnection,
    pub(crate) counters: PeerCounters,
    pub(crate) shared: Arc<Shared>,
    state: AtomicU8,
    /// Asks the peer's task to stop; `reason` is set first.
    pub(crate) stop: CancellationToken,
    pub(crate) reason: OnceLock<StopReason>,
    /// Cancelled once the peer is out of the peer set and every `remove_peer` returned.
    pub(crate) removed: CancellationToken,
    data: Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
}

impl fmt::Debug for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        f.debug_struct("Peer")
            .field("addr", &i.addr)
            .field("outbound", &i.outbound)
            .field("persistent", &i.persistent)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dir = if self.inner.outbound { "out" } else { "in" };
        write!(f, "Peer{{{} {dir}}}", self.inner.addr)
    }
}

impl Peer {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        conn_id: ConnectionId,
        node_info: NodeInfo,
        addr: NetAddress,
        outbound: bool,
        persistent: bool,
        mconn: MConnection,
        shared: Arc<Shared>,
    ) -> Self {
        let id_label = addr.id().to_string();
        let counters = match &shared.metrics {
            Some(m) => {
                let channels: Vec<u8> = shared.reactors.channels.iter().map(|c| c.id).collect();
                m.peer_counters(&id_label, &channels)
            }
            None => PeerCounters::default(),
        };
        Self {
            inner: Arc::new(PeerInner {
                id: addr.id(),
                id_label,
                counters,
                conn_id,
                node_info,
                addr,
                outbound,
                persistent,
                mconn,
                shared,
                state: AtomicU8::new(ADDING),
                stop: CancellationToken::new(),
                reason: OnceLock::new(),
                removed: CancellationToken::new(),
                data: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The peer's node ID, proven by the secret handshake.
    pub fn id(&self) -> NodeId {
        self.inner.id
    }

    /// The identity of this connection, unique in the process (a node that reconnects gets a
    /// new one); it is in the connection's tracing span.
    pub fn conn_id(&self) -> ConnectionId {
        self.inner.conn_id
    }

    /// The NodeInfo the peer sent.
    pub fn node_info(&self) -> &NodeInfo {
        &self.inner.node_info
    }

    /// The remote IP of the connection.
    pub fn remote_ip(&self) -> IpAddr {
        self.inner.addr.ip()
    }

    /// The remote socket address of the connection.
    pub fn remote_addr(&self) -> SocketAddr {
        self.inner.addr.socket_addr()
    }

    /// The peer's ID at the remote socket address: for an outbound peer the address dialed,
    /// for an inbound one the peer's outgoing port (its self-reported listen address is in
    /// [`node_info`](Self::node_info)).
    pub fn socket_addr(&self) -> &NetAddress {
        &self.inner.addr
    }

    /// Whether we dialed the peer.
    pub fn is_outbound(&self) -> bool {
        self.inner.outbound
    }

    /// Whether the peer is persistent (redialed when its connection ends).
    pub fn is_persistent(&self) -> bool {
        self.inner.persistent
    }

    /// Where the peer is in its life.
    pub fn state(&self) -> PeerState {
        match self.inner.state.load(Ordering::Acquire) {
            ADDING => PeerState::Adding,
            RUNNING => PeerState::Running,
            STOPPING => PeerState::Stopping,
            _ => PeerState::Removed,
        }
    }

    /// Whether the peer is being added or running, and its connection has not ended.
    pub fn is_running(&self) -> bool {
        matches!(self.state(), PeerState::Adding | PeerState::Running)
            && self.inner.mconn.is_running()
    }

    /// The connection's counters and rates.
    pub fn status(&self) -> ConnectionStatus {
        self.inner.mconn.status()
    }

    /// Why the peer stopped, once it is stopping.
    pub fn stop_reason(&self) -> Option<&StopReason> {
        self.inner.reason.get()
    }

    /// Sends `message` on `channel`, waiting up to the send timeout (10 s by default) for room
    /// in the channel's queue. Fails at once if the peer did not list the channel in its
    /// NodeInfo, if no reactor of ours owns it, or if the peer is stopped.
    pub async fn send<M: prost::Message + 'static>(
        &self,
        channel: u8,
        message: &M,
    ) -> Result<(), SendError> {
        self.check_channel(channel)?;
        let label = self.inner.shared.label(channel, message);
        self.send_encoded(channel, Bytes::from(message.encode_to_vec()), label)
            .await
    }

    /// Like [`send`](Self::send) but never waits: [`SendError::QueueFull`] if the channel's
    /// queue has no room.
    pub fn try_send<M: prost::Message + 'static>(
        &self,
        channel: u8,
        message: &M,
    ) -> Result<(), SendError> {
        self.check_channel(channel)?;
        let label = self.inner.shared.label(channel, message);
        self.try_send_encoded(channel, Bytes::from(message.encode_to_vec()), label)
    }

    /// Sends an already encoded message (e.g. one encoded once for many peers), waiting like
    /// [`send`](Self::send). Its `message_type` metric label is the channel's reactor's message
    /// type (the one its bytes decode as on the other side), as for received messages of a
    /// type without a [`message_label`](crate::Reactor::message_label).
    pub async fn send_bytes(&self, channel: u8, bytes: Bytes) -> Result<(), SendError> {
        let label = self.inner.shared.bytes_label(channel);
        self.send_encoded(channel, bytes, label).await
    }

    /// Sends an already encoded message without waiting, like [`try_send`](Self::try_send).
    pub fn try_send_bytes(&self, channel: u8, bytes: Bytes) -> Result<(), SendError> {
        let label = self.inner.shared.bytes_label(channel);
        self.try_send_encoded(channel, bytes, label)
    }

    pub(crate) async fn send_encoded(
        &self,
        channel: u8,
        bytes: Bytes,
        label: &'static str,
    ) -> Result<(), SendError> {
        self.check_channel(channel)?;
        let len = bytes.len();
        adapt::send(&self.inner.mconn, channel, bytes).await?;
        self.sent(channel, label, len);
        Ok(())
    }

    pub(crate) fn try_send_encoded(
        &self,
        channel: u8,
        bytes: Bytes,
        label: &'static str,
    ) -> Result<(), SendError> {
        self.check_channel(channel)?;
        let len = bytes.len();
        adapt::try_send(&self.inner.mconn, channel, bytes)?;
        self.sent(channel, label, len);
        Ok(())
    }

    fn check_channel(&self, channel: u8) -> Result<(), SendError> {
        if !matches!(self.state(), PeerState::Adding | PeerState::Running) {
            return Err(SendError::Stopped);
        }
        if self.inner.shared.reactors.owner(channel).is_none() {
            return Err(SendError::UnknownChannel { channel });
        }
        if !self.inner.node_info.has_channel(channel) {
            return Err(SendError::PeerLacksChannel { channel });
        }
        Ok(())
    }

    fn sent(&self, channel: u8, label: &'static str, len: usize) {
        if let Some(m) = &self.inner.shared.metrics {
            m.sent(&self.inner.counters, channel, label, len);
        }
    }

    /// Stops the peer for an error (the reference's `StopPeerForError`): it is removed, and
    /// redialed if persistent. Returns at once; await [`removed`](Self::removed) to wait for
    /// the removal. Does nothing if the peer is already stopping.
    pub fn stop_for_error(&self, error: impl Into<ReactorError>) {
        self.request_stop(StopReason::Error {
            error: error.into(),
        });
    }

    /// Sends everything queued for the peer (waiting at most the switch's stop timeout), then
    /// closes the connection and removes the peer, without redialing it (the reference's
    /// `FlushStop` followed by `StopPeerGracefully`). Returns once the peer is removed.
    ///
    /// Removal waits for the peer's running `receive` calls, so do not await this from one of
    /// them (it would wait for itself until the stop timeout); call
    /// [`SwitchHandle::stop_peer_gracefully`](crate::SwitchHandle::stop_peer_gracefully) there.
    pub async fn flush_stop(&self) {
        self.request_stop(StopReason::Graceful);
        self.removed().await;
    }

    /// Closes the connection at once, dropping whatever is queued, and removes the peer
    /// without redialing it. Returns at once.
    pub fn close(&self) {
        if self.request_stop(StopReason::Graceful) {
            self.inner.mconn.stop();
        }
    }

    /// Waits until the peer is out of the peer set and every reactor's `remove_peer` has
    /// returned. Returns at once for a removed peer.
    pub async fn removed(&self) {
        self.inner.removed.cancelled().await;
    }

    /// Attaches `value` to the peer, replacing (and returning) an earlier value of the same
    /// type. Reactors keep their per-peer state here, typically set in `init_peer`; use a
    /// type of your own so reactors do not collide.
    pub fn insert<T: Any + Send + Sync>(&self, value: T) -> Option<Arc<T>> {
        self.data()
            .insert(TypeId::of::<T>(), Arc::new(value))
            .and_then(|old| old.downcast::<T>().ok())
    }

    /// The value of type `T` attached to the peer.
    pub fn get<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        self.data()
            .get(&TypeId::of::<T>())
            .cloned()
            .and_then(|v| v.downcast::<T>().ok())
    }

    /// The value of type `T`, attaching `make()` first if there is none.
    pub fn get_or_insert_with<T: Any + Send + Sync>(&self, make: impl FnOnce() -> T) -> Arc<T> {
        let mut data = self.data();
        let existing = data
            .get(&TypeId::of::<T>())
            .cloned()
            .and_then(|v| v.downcast::<T>().ok());
        if let Some(v) = existing {
            return v;
        }
        let v = Arc::new(make());
        data.insert(
            TypeId::of::<T>(),
            Arc::clone(&v) as Arc<dyn Any + Send + Sync>,
        );
        v
    }

    /// Removes the value of type `T`.
    pub fn remove<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        self.data()
            .remove(&TypeId::of::<T>())
            .and_then(|v| v.downcast::<T>().ok())
    }

    fn data(&self) -> MutexGuard<'_, HashMap<TypeId, Arc<dyn Any + Send + Sync>>> {
        self.inner
            .data
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Records `reason` (the first one wins) and wakes the peer's task; whether this call was
    /// the first.
    pub(crate) fn request_stop(&self, reason: StopReason) -> bool {
        if self.inner.removed.is_cancelled() {
            return false;
        }
        let first = self.inner.reason.set(reason).is_ok();
        self.inner.stop.cancel();
        first
    }

    pub(crate) fn set_state(&self, state: PeerState) {
        let v = match state {
            PeerState::Adding => ADDING,
            PeerState::Running => RUNNING,
            PeerState::Stopping => STOPPING,
            PeerState::Removed => REMOVED,
        };
        self.inner.state.store(v, Ordering::Release);
    }

    pub(crate) fn same(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}
