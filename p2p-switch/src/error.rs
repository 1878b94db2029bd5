//! The error types of this crate: [`Error`] for the switch's operations, [`SendError`] for
//! sending to a peer, [`StopReason`] for why a peer was removed, [`ReactorError`] for what a
//! reactor reports.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use p2p_mconn::Blame;
use p2p_types::{NetAddress, NodeId};

/// What a switch operation can fail with.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Two reactors claim the same channel (the reference panics here).
    #[error("channel {channel:#04x} is claimed by reactor {first:?} and by reactor {second:?}")]
    DuplicateChannel {
        /// The channel ID.
        channel: u8,
        /// The reactor registered first.
        first: String,
        /// The reactor that tried to claim it too.
        second: String,
    },
    /// Two reactors were registered under one name.
    #[error("a reactor named {name:?} is already registered")]
    DuplicateReactor {
        /// The name.
        name: String,
    },
    /// The configuration, NodeInfo or a reactor's channel list is unusable; fix what `reason`
    /// says.
    #[error("invalid switch configuration: {reason}")]
    InvalidConfig {
        /// What is wrong.
        reason: String,
    },
    /// The transport failed or refused the connection (dial errors, rejections, listen errors).
    #[error("transport: {source}")]
    Transport {
        /// The transport's error; ask it `is_self()`, `is_dial()`, `kind()`.
        #[source]
        source: p2p_transport::Error,
    },
    /// A reactor failed to start.
    #[error("reactor {name:?} failed to start: {source}")]
    ReactorStart {
        /// The reactor's name.
        name: String,
        /// Its error.
        #[source]
        source: ReactorError,
    },
    /// The switch is not running (not started yet, or stopped).
    #[error("the switch is not running")]
    NotRunning,
    /// `start` was called on a switch that was already started (a switch starts once).
    #[error("the switch was already started")]
    AlreadyStarted,
    /// We are already dialing this node, are connected to it, or (unless duplicate IPs are
    /// allowed) to a peer at the same IP (the reference's `ErrCurrentlyDialingOrExistingAddress`).
    #[error("already dialing or connected to {addr}")]
    CurrentlyDialingOrExistingAddress {
        /// The address.
        addr: NetAddress,
    },
    /// A peer with this ID is already connected and its connection is kept (the reference's
    /// `ErrRejected{isDuplicate}` / `ErrSwitchDuplicatePeerID`).
    #[error("peer {id} is already connected")]
    DuplicatePeer {
        /// The peer's ID.
        id: NodeId,
    },
    /// The inbound peer limit is reached and the peer is not unconditional.
    #[error("inbound peer {id} refused: already {max} inbound peers")]
    InboundLimit {
        /// The peer's ID.
        id: NodeId,
        /// The configured `max_num_inbound_peers`.
        max: usize,
    },
    /// The peer went away while it was being added (its connection ended or it was stopped).
    #[error("peer {id} stopped while being added: {reason}")]
    PeerStopped {
        /// The peer's ID.
        id: NodeId,
        /// Why it stopped.
        reason: StopReason,
    },
    /// A configured peer address or ID does not parse.
    #[error("invalid peer address or ID #{index} {text:?}: {source}")]
    InvalidPeer {
        /// Its position in the list given.
        index: usize,
        /// The text given.
        text: String,
        /// The parser's error.
        #[source]
        source: p2p_types::Error,
    },
}

impl From<p2p_transport::Error> for Error {
    fn from(source: p2p_transport::Error) -> Self {
        Self::Transport { source }
    }
}

impl Error {
    /// The transport error inside, if this is one.
    pub fn transport(&self) -> Option<&p2p_transport::Error> {
        match self {
            Self::Transport { source } => Some(source),
            _ => None,
        }
    }

    /// Whether the dial reached ourselves (the address is one of ours).
    pub fn is_self(&self) -> bool {
        self.transport().is_some_and(p2p_transport::Error::is_self)
    }

    pub(crate) fn config(reason: impl Into<String>) -> Self {
        Self::InvalidConfig {
            reason: reason.into(),
        }
    }
}

/// Why sending to a peer failed. Nothing of a failed send is queued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The peer did not list the channel in its NodeInfo; the reference sends nothing then.
    #[error("peer does not speak channel {channel:#04x}")]
    PeerLacksChannel {
        /// The channel.
        channel: u8,
    },
    /// No registered reactor owns the channel, so our connections do not have it.
    #[error("channel {channel:#04x} is not one of ours")]
    UnknownChannel {
        /// The channel.
        channel: u8,
    },
    /// The channel's send queue is full (`try_send`, `try_broadcast`).
    #[error("send queue of channel {channel:#04x} is full")]
    QueueFull {
        /// The channel.
        channel: u8,
    },
    /// The channel's send queue stayed full for the whole send timeout (`send`, `broadcast`).
    #[error("send on channel {channel:#04x} timed out after {timeout:?}")]
    Timeout {
        /// The channel.
        channel: u8,
        /// The send timeout.
        timeout: Duration,
    },
    /// The peer is stopped or stopping, or its connection has ended.
    #[error("peer is stopped")]
    Stopped,
}

/// Why a peer was stopped and removed, as reactors' `remove_peer` see it. The first reason
/// wins: later stop requests for a peer that is already stopping change nothing.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StopReason {
    /// The connection ended by itself: the peer closed it, the network failed, the pong did
    /// not come, or the peer broke the MConnection protocol.
    #[error("connection ended: {error}")]
    Connection {
        /// How the MConnection ended.
        error: p2p_mconn::Error,
    },
    /// A message did not decode as its reactor's message type (a peer error, as in the
    /// reference).
    #[error("undecodable message on channel {channel:#04x} for reactor {reactor:?}: {error}")]
    Decode {
        /// The channel.
        channel: u8,
        /// The reactor owning the channel.
        reactor: String,
        /// The decoder's error.
        error: prost::DecodeError,
    },
    /// A reactor's raw-bytes filter rejected a message.
    #[error("message on channel {channel:#04x} rejected by reactor {reactor:?}: {error}")]
    Filtered {
        /// The channel.
        channel: u8,
        /// The reactor owning the channel.
        reactor: String,
        /// The filter's reason.
        error: ReactorError,
    },
    /// `stop_peer_for_error` was called (typically by a reactor).
    #[error("stopped for error: {error}")]
    Error {
        /// The reason given.
        error: ReactorError,
    },
    /// `stop_peer_gracefully` or `Peer::flush_stop` was called, or the connection was stopped
    /// locally without an error.
    #[error("stopped gracefully")]
    Graceful,
    /// Another connection to the same node replaced this one (simultaneous dials).
    #[error("replaced by another connection to the same node")]
    Replaced,
    /// The switch is stopping.
    #[error("the switch is stopping")]
    SwitchStopping,
}

impl StopReason {
    /// Whether the reference would pass a non-nil reason (everything but a graceful stop, a
    /// replacement and the switch stopping). Persistent peers are redialed after these.
    pub fn is_error(&self) -> bool {
        !matches!(self, Self::Graceful | Self::Replaced | Self::SwitchStopping)
    }

    /// Who is to blame, for deciding whether to punish the peer (mark it bad, ban it): the
    /// peer for a protocol violation, a bad message or a reactor's complaint; nobody
    /// ([`Blame::Gone`]) when it or the network went away; us ([`Blame::Local`]) for our own
    /// decisions and failures.
    pub fn blame(&self) -> Blame {
        match self {
            Self::Connection { error } => crate::adapt::blame_of(error),
            Self::Decode { .. } | Self::Filtered { .. } | Self::Error { .. } => Blame::Peer,
            Self::Graceful | Self::Replaced | Self::SwitchStopping => Blame::Local,
        }
    }
}

/// An error a reactor reports: why it refused to start, why a filter rejected a message, why a
/// peer is stopped. Wraps any error or message; cheap to clone.
#[derive(Clone)]
pub struct ReactorError {
    inner: Arc<dyn std::error::Error + Send + Sync>,
}

impl ReactorError {
    /// An error with just a message.
    pub fn msg(message: impl fmt::Display) -> Self {
        Self {
            inner: Arc::new(Message(message.to_string())),
        }
    }

    /// Wraps an error.
    pub fn new(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self {
            inner: Arc::new(error),
        }
    }

    /// The wrapped error.
    pub fn get_ref(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.inner
    }
}

impl fmt::Debug for ReactorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.inner, f)
    }
}

impl fmt::Display for ReactorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.inner, f)
    }
}

impl std::error::Error for ReactorError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner.source()
    }
}

impl From<&str> for ReactorError {
    fn from(s: &str) -> Self {
        Self::msg(s)
    }
}

impl From<String> for ReactorError {
    fn from(s: String) -> Self {
        Self::msg(s)
    }
}

impl From<prost::DecodeError> for ReactorError {
    fn from(e: prost::DecodeError) -> Self {
        Self::new(e)
    }
}

#[derive(Debug)]
struct Message(String);

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Message {}

/// What an address book may answer when asked to add an address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddAddressError {
    /// The address or its source belongs to a private peer (logged at debug level only).
    #[error("{id} is a private peer")]
    Private {
        /// The private ID.
        id: NodeId,
    },
    /// The book refused the address for another reason.
    #[error("address refused: {reason}")]
    Refused {
        /// Why.
        reason: String,
    },
}
