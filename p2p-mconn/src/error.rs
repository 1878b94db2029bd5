//! The error type of this crate.

use std::io;

use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;

/// Everything that can end a multiplexed connection or keep it from starting: a bad
/// configuration, a peer breaking the protocol, the peer or the network going away, or our
/// own side failing.
///
/// A connection ends with exactly one of these (see [`MConnection::closed`]); `send` and
/// `try_send` report theirs as a [`SendError`], which does not end the connection.
///
/// # Who is to blame
///
/// [`Error::blame`] sorts every error into what a switch or an address book can act on:
///
/// | [`Blame`] | errors | meaning | what to do |
/// |---|---|---|---|
/// | [`Peer`](Blame::Peer) | `PacketTooLarge`, `MalformedPacket`, `UnknownPacket`, `UnknownChannel`, `MessageTooLarge`, `StreamViolation` | the peer broke the protocol, at this layer or the stream's (a forged or corrupted secret-connection frame, an oversize frame) | punishable: mark the peer bad |
/// | [`Gone`](Blame::Gone) | `ClosedByPeer`, `UnexpectedEof`, `Io`, `PongTimeout`, `WriteStalled` | the peer closed or reset the connection, stopped answering or stopped reading, or the network failed | not punishable: the peer may come back; reconnect with backoff |
/// | [`Local`](Blame::Local) | `InvalidConfig`, `ReceiverStalled`, `ReceiverDropped`, `TaskPanicked`, `TaskAborted`, `Closed` | our own side: a bad setting, a consumer too slow or gone, a bug, a runtime shutting down, every handle dropped | never held against the peer |
///
/// [`MConnection::closed`]: crate::MConnection::closed
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration or a channel descriptor is unusable. Fix the value named in `reason`.
    #[error("invalid configuration: {reason}")]
    InvalidConfig {
        /// What is wrong.
        reason: String,
    },
    /// The peer announced a packet longer than the maximum packet size (which follows from the
    /// maximum payload size both peers must agree on).
    #[error("packet of {len} bytes exceeds the maximum of {max} bytes")]
    PacketTooLarge {
        /// The announced length.
        len: u64,
        /// The limit.
        max: usize,
    },
    /// A packet could not be decoded as the protobuf `Packet`. The peer does not speak this
    /// protocol.
    #[error("malformed packet: {reason}")]
    MalformedPacket {
        /// The decoder's complaint.
        reason: String,
    },
    /// A packet decoded but carried none of ping, pong or message.
    #[error("unknown packet type")]
    UnknownPacket,
    /// The peer sent a message on a channel this connection does not have.
    #[error("message on unknown channel {channel}")]
    UnknownChannel {
        /// The channel ID as sent (it may be outside 0..=255).
        channel: i32,
    },
    /// A message grew beyond the receiving channel's `recv_message_capacity`.
    #[error("message on channel {channel:#04x} exceeds the channel's capacity of {max} bytes")]
    MessageTooLarge {
        /// The channel.
        channel: u8,
        /// The channel's `recv_message_capacity`.
        max: usize,
    },
    /// The peer did not answer a ping within the pong timeout: it is gone or overloaded.
    #[error("pong timeout: no pong within {timeout:?}")]
    PongTimeout {
        /// The configured pong timeout.
        timeout: Duration,
    },
    /// Our ping could not even be handed to the stream within the pong timeout: the stream
    /// stopped taking our data, because the peer stopped reading (or the network stalled).
    /// Counted from when the ping was queued behind the data already waiting.
    #[error(
        "writes stalled: our ping could not be written within {waited:?}; the peer stopped reading"
    )]
    WriteStalled {
        /// How long the ping waited to be written.
        waited: Duration,
    },
    /// The peer closed the connection (end of stream on a packet boundary).
    #[error("connection closed by the peer")]
    ClosedByPeer,
    /// The peer closed the connection in the middle of a packet.
    #[error("connection closed by the peer in the middle of a packet")]
    UnexpectedEof,
    /// Our own consumer stalled: the receive queue of `channel` stayed full for `waited` (the
    /// pong timeout), so the connection stopped reading, and could no longer see the peer's
    /// pongs or answer its pings. Not the peer's fault: take messages from every
    /// [`ChannelReceiver`](crate::ChannelReceiver) promptly, or give the channel a larger
    /// `recv_queue_capacity`.
    #[error(
        "the receiver of channel {channel:#04x} took no message for {waited:?} (its queue stayed full; our consumer is too slow)"
    )]
    ReceiverStalled {
        /// The channel whose queue was full.
        channel: u8,
        /// How long the read side waited for room.
        waited: Duration,
    },
    /// The stream below reported a protocol violation by the peer: it returned an I/O error
    /// of kind `InvalidData`, which a secret connection does for a frame that fails to
    /// authenticate (corrupted or forged ciphertext) or announces more than 1024 bytes. The
    /// stream's own error is the source (for a `p2p_secretconn::SecretStream`, a
    /// `p2p_secretconn::Error` inside the `io::Error`).
    #[error("the stream reported a protocol violation: {source}")]
    StreamViolation {
        /// The stream's error.
        #[source]
        source: Arc<io::Error>,
    },
    /// The underlying stream failed.
    #[error("I/O error: {0}")]
    Io(#[source] Arc<io::Error>),
    /// The receiver of a channel was dropped while the peer still sent on that channel, so its
    /// messages could not be delivered. Keep every [`ChannelReceiver`] until the connection
    /// ends.
    ///
    /// [`ChannelReceiver`]: crate::ChannelReceiver
    #[error("the receiver of channel {channel:#04x} was dropped")]
    ReceiverDropped {
        /// The channel.
        channel: u8,
    },
    /// One of the connection's tasks panicked (a bug, here or in the stream it runs over);
    /// the other was stopped.
    #[error("the connection's {task} task panicked")]
    TaskPanicked {
        /// Which task: "read" or "write".
        task: &'static str,
    },
    /// One of the connection's tasks was dropped before it finished, normally because its
    /// tokio runtime shut down; the other was stopped.
    #[error("the connection's {task} task was dropped (its runtime shut down)")]
    TaskAborted {
        /// Which task: "read" or "write".
        task: &'static str,
    },
    /// The connection was closed by dropping every handle to it; also what
    /// [`ChannelReceiver::try_recv`](crate::ChannelReceiver::try_recv) reports once the
    /// connection has ended and every message was taken.
    #[error("connection is closed")]
    Closed,
}

/// Who caused an [`Error`] (see the table in [`Error`]'s docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Blame {
    /// The peer broke the protocol: punishable.
    Peer,
    /// The peer went away, stopped answering or reading, or the network failed: not
    /// punishable.
    Gone,
    /// Our own side: never held against the peer.
    Local,
}

impl Error {
    /// Who caused the error: the peer misbehaved, the peer or the network went away, or our
    /// side failed. See the table in [`Error`]'s docs.
    pub fn blame(&self) -> Blame {
        match self {
            Self::PacketTooLarge { .. }
            | Self::MalformedPacket { .. }
            | Self::UnknownPacket
            | Self::UnknownChannel { .. }
            | Self::MessageTooLarge { .. }
            | Self::StreamViolation { .. } => Blame::Peer,
            Self::PongTimeout { .. }
            | Self::WriteStalled { .. }
            | Self::ClosedByPeer
            | Self::UnexpectedEof
            | Self::Io(_) => Blame::Gone,
            Self::InvalidConfig { .. }
            | Self::ReceiverStalled { .. }
            | Self::ReceiverDropped { .. }
            | Self::TaskPanicked { .. }
            | Self::TaskAborted { .. }
            | Self::Closed => Blame::Local,
        }
    }

    /// The stream's own error, for [`Error::Io`] and [`Error::StreamViolation`] (for a
    /// secret connection, `io_error()?.get_ref()?.downcast_ref::<p2p_secretconn::Error>()`
    /// tells what failed).
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            Self::Io(e) | Self::StreamViolation { source: e } => Some(e),
            _ => None,
        }
    }

    /// Whether the peer broke the protocol ([`Blame::Peer`]).
    pub fn is_protocol_violation(&self) -> bool {
        self.blame() == Blame::Peer
    }

    /// Whether the peer or the network ended the connection without breaking the protocol
    /// ([`Blame::Gone`]): closed, reset, unresponsive, not reading.
    pub fn is_disconnect(&self) -> bool {
        self.blame() == Blame::Gone
    }

    /// Classifies an error reading the stream: `InvalidData` is the stream layer's protocol
    /// violation (see [`Error::StreamViolation`]), the rest as for any I/O error.
    pub(crate) fn from_read(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::InvalidData {
            Self::StreamViolation {
                source: Arc::new(e),
            }
        } else {
            e.into()
        }
    }

    pub(crate) fn config(reason: impl Into<String>) -> Self {
        Self::InvalidConfig {
            reason: reason.into(),
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::UnexpectedEof => Self::UnexpectedEof,
            _ => Self::Io(Arc::new(e)),
        }
    }
}

impl PartialEq for Error {
    /// Structural equality; two I/O errors (or two stream violations) are equal when their kinds
    /// are.
    fn eq(&self, other: &Self) -> bool {
        use Error::*;
        match (self, other) {
            (InvalidConfig { reason: a }, InvalidConfig { reason: b }) => a == b,
            (PacketTooLarge { len: a, max: m }, PacketTooLarge { len: b, max: n }) => {
                a == b && m == n
            }
            (MalformedPacket { reason: a }, MalformedPacket { reason: b }) => a == b,
            (UnknownPacket, UnknownPacket) => true,
            (UnknownChannel { channel: a }, UnknownChannel { channel: b }) => a == b,
            (MessageTooLarge { channel: a, max: m }, MessageTooLarge { channel: b, max: n }) => {
                a == b && m == n
            }
            (PongTimeout { timeout: a }, PongTimeout { timeout: b }) => a == b,
            (WriteStalled { waited: a }, WriteStalled { waited: b }) => a == b,
            (ClosedByPeer, ClosedByPeer) | (UnexpectedEof, UnexpectedEof) => true,
            (Io(a), Io(b)) | (StreamViolation { source: a }, StreamViolation { source: b }) => {
                a.kind() == b.kind()
            }
            (ReceiverDropped { channel: a }, ReceiverDropped { channel: b }) => a == b,
            (
                ReceiverStalled {
                    channel: a,
                    waited: s,
                },
                ReceiverStalled {
                    channel: b,
                    waited: t,
                },
            ) => a == b && s == t,
            (TaskPanicked { task: a }, TaskPanicked { task: b })
            | (TaskAborted { task: a }, TaskAborted { task: b }) => a == b,
            (Closed, Closed) => true,
            _ => false,
        }
    }
}

/// A message that [`MConnection::send`](crate::MConnection::send) or
/// [`try_send`](crate::MConnection::try_send) could not queue, given back to the caller with
/// the reason (as tokio's `mpsc::error::SendError` gives back its value). A failed send does
/// not end the connection; when the reason is [`SendFailure::Closed`], the error that ended
/// it is what [`MConnection::closed`](crate::MConnection::closed) returns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("message of {} bytes not queued: {reason}", message.len())]
#[non_exhaustive]
pub struct SendError {
    /// The message, untouched.
    pub message: Bytes,
    /// Why it was not queued.
    pub reason: SendFailure,
}

impl SendError {
    pub(crate) fn new(message: Bytes, reason: SendFailure) -> Self {
        Self { message, reason }
    }

    /// The message, to retry or drop.
    pub fn into_message(self) -> Bytes {
        self.message
    }
}

/// Why a message was not queued (see [`SendError`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendFailure {
    /// The channel is not registered on this connection.
    #[error("channel {channel:#04x} is not registered on this connection")]
    NoSuchChannel {
        /// The channel.
        channel: u8,
    },
    /// `try_send` found the channel's send queue full. Retry later or use `send`.
    #[error("send queue of channel {channel:#04x} is full")]
    QueueFull {
        /// The channel.
        channel: u8,
    },
    /// `send` waited for room in the queue for longer than the configured send timeout.
    #[error("send on channel {channel:#04x} timed out after {timeout:?}")]
    Timeout {
        /// The channel.
        channel: u8,
        /// The configured send timeout.
        timeout: Duration,
    },
    /// The connection is stopped, stopping (`flush_stop`), or ended.
    #[error("connection is closed")]
    Closed,
}
