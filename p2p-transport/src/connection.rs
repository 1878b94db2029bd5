//! The output of a transport: an authenticated, checked, multiplexed connection.

use std::any::Any;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use p2p_mconn::{ChannelReceiver, MConnection};
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
/// when done with the peer; dropping it also releases what the transport holds for it, but
/// the MConnection only stops once every clone of its handle is gone.
///
/// Take the channel receivers out with [`take_receivers`](Self::take_receivers) to consume
/// messages; keep them alive as long as the connection runs (a dropped receiver ends the
/// connection when the peer sends on its channel).
pub struct Connection {
    node_info: Arc<NodeInfo>,
    addr: NetAddress,
    direction: Direction,
    mconn: MConnection,
    receivers: Vec<ChannelReceiver>,
    holds: Vec<Box<dyn Any + Send + Sync>>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
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
        receivers: Vec<ChannelReceiver>,
    ) -> Self {
        Self {
            node_info,
            addr,
            direction,
            mconn,
            receivers,
            holds: Vec::new(),
        }
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

    /// The receivers of the channels not yet taken, in the order of the transport's channel
    /// list.
    pub fn receivers_mut(&mut self) -> &mut [ChannelReceiver] {
        &mut self.receivers
    }

    /// Takes the channel receivers out, one per channel in the order of the transport's
    /// channel list; later calls return an empty list.
    pub fn take_receivers(&mut self) -> Vec<ChannelReceiver> {
        std::mem::take(&mut self.receivers)
    }

    /// Keeps `value` alive as long as this connection: transports attach what they hold for a
    /// connection (a [`Reservation`](crate::Reservation) in their connection set, a slot of
    /// the incoming limit), so that it is released on cleanup or when the connection is
    /// dropped.
    pub fn hold(&mut self, value: impl Any + Send + Sync) {
        self.holds.push(Box::new(value));
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
