//! The output of a transport: an authenticated, checked, multiplexed connection.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use p2p_mconn::{ConnectionId, MConnection, Receivers};
use p2p_types::{NetAddress, NodeId, NodeInfo};

/// Whether we dialed a connection or accepted it.
// Two directions, forever.
#[allow(clippy::exhaustive_enums)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// The peer dialed us.
    Inbound,
    /// We dialed the peer.
    Outbound,
}

impl Direction {
    /// Whether we dialed.
    pub fn is_outbound(self) -> bool {
        self == Self::Outbound
    }

    pub(crate) fn from_dialed(dialed: Option<NodeId>) -> Self {
        if dialed.is_some() {
            Self::Outbound
        } else {
            Self::Inbound
        }
    }
}

/// An upgraded peer connection: the secret handshake done, the peer's NodeInfo received and
/// checked (valid, ID equal to the authenticated key's, not ourselves, compatible, through the
/// peer filters), and an [`MConnection`] running over it with the transport's channels.
///
/// Only the [`upgrade`](crate::upgrade()) pipeline makes one, so every transport's connections
/// carry the same guarantees. Hand it back to [`Transport::cleanup`](crate::Transport::cleanup)
/// when done with the peer. What the transport holds for it (its connection-set entry, its
/// incoming slot) is attached to the MConnection and released when the MConnection has
/// actually ended: dropping this struct while a clone of the MConnection handle still
/// carries traffic releases nothing; the MConnection stops once every clone is gone.
///
/// Take the channel receivers out with [`take_receivers`](Self::take_receivers) to consume
/// messages; keep them alive as long as the connection runs (a dropped receiver ends the
/// connection when the peer sends on its channel).
pub struct Connection {
    node_info: Arc<NodeInfo>,
    addr: NetAddress,
    direction: Direction,
    mconn: MConnection,
    receivers: Receivers,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("id", &self.mconn.id())
            .field("addr", &self.addr)
            .field("direction", &self.direction)
            .field("moniker", &self.node_info.moniker)
            .field("running", &self.mconn.is_running())
            .finish_non_exhaustive()
    }
}

impl Connection {
    pub(crate) fn new(
        node_info: Arc<NodeInfo>,
        addr: NetAddress,
        direction: Direction,
        mconn: MConnection,
        receivers: Receivers,
    ) -> Self {
        Self {
            node_info,
            addr,
            direction,
            mconn,
            receivers,
        }
    }

    /// The MConnection's identity, unique in the process (for logs, metrics, and telling
    /// two connections to the same peer apart).
    pub fn id(&self) -> ConnectionId {
        self.mconn.id()
    }

    /// The NodeInfo the peer sent (checked; its ID is [`node_id`](Self::node_id)).
    pub fn node_info(&self) -> &NodeInfo {
        &self.node_info
    }

    /// The peer's ID, proven by the secret handshake.
    pub fn node_id(&self) -> NodeId {
        self.addr.id()
    }

    /// The peer's address: its authenticated ID at the remote socket address
    /// (`id@ip:port`). For an outbound connection this is the address dialed; for an inbound
    /// one the port is the peer's outgoing port, not where it listens (see
    /// `node_info().listen_addr` for that, unauthenticated).
    pub fn remote_addr(&self) -> &NetAddress {
        &self.addr
    }

    /// The remote socket address.
    pub fn socket_addr(&self) -> SocketAddr {
        self.addr.socket_addr()
    }

    /// Whether we dialed or accepted.
    pub fn direction(&self) -> Direction {
        self.direction
    }

    /// Whether we dialed the peer.
    pub fn is_outbound(&self) -> bool {
        self.direction.is_outbound()
    }

    /// The multiplexed connection: send with [`MConnection::send`], watch it end with
    /// [`MConnection::closed`].
    pub fn mconn(&self) -> &MConnection {
        &self.mconn
    }

    /// Whether the peer listed `channel` in its NodeInfo (the reference only sends on those).
    pub fn peer_has_channel(&self, channel: u8) -> bool {
        self.node_info.has_channel(channel)
    }

    /// The receivers of the channels not yet taken, by channel ID.
    pub fn receivers_mut(&mut self) -> &mut Receivers {
        &mut self.receivers
    }

    /// Takes the channel receivers out (by channel ID; iterating gives them in the order of
    /// the transport's channel list); later calls return an empty collection.
    pub fn take_receivers(&mut self) -> Receivers {
        std::mem::take(&mut self.receivers)
    }

    /// Keeps `value` alive as long as the connection runs: transports attach what they hold
    /// for a connection (a [`Reservation`](crate::Reservation) in their connection set, a
    /// slot of the incoming limit). It is attached to the MConnection
    /// ([`MConnection::attach`]), so it is released when the MConnection ends (cleanup, a
    /// failure, the last handle dropped), not when this struct is dropped while a clone of
    /// the handle still runs.
    pub fn hold(&mut self, value: impl Send + Sync + 'static) {
        self.mconn.attach(value);
    }

    /// Stops the MConnection (queued messages are dropped, the stream is closed) and releases
    /// everything held for the connection. This is what [`Transport::cleanup`] does for the
    /// transports of this workspace.
    ///
    /// [`Transport::cleanup`]: crate::Transport::cleanup
    pub fn close(self) {
        self.mconn.stop();
        drop(self);
    }
}
