//! The error type of this crate.

use std::io;
use std::sync::Arc;
use std::time::Duration;

/// Everything that can go wrong with a multiplexed connection: a bad configuration, a peer
/// breaking the protocol, the transport failing, or a send that could not be queued.
///
/// A connection ends with exactly one of these (see [`MConnection::closed`]); `send` and
/// `try_send` report theirs to the caller without ending the connection.
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
    /// The peer closed the connection (end of stream on a packet boundary).
    #[error("connection closed by the peer")]
    ClosedByPeer,
    /// The peer closed the connection in the middle of a packet.
    #[error("connection closed by the peer in the middle of a packet")]
    UnexpectedEof,
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
    /// `send` or `try_send` named a channel this connection does not have.
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
    /// `send` waited for queue space for longer than the configured send timeout.
    #[error("send on channel {channel:#04x} timed out after {timeout:?}")]
    SendTimeout {
        /// The channel.
        channel: u8,
        /// The configured send timeout.
        timeout: Duration,
    },
    /// The connection is stopped, stopping, or ended; nothing more can be sent.
    #[error("connection is closed")]
    Closed,
}

impl Error {
    /// Whether the peer (or the network) ended the connection, as opposed to a protocol
    /// violation or a local decision.
    pub fn is_disconnect(&self) -> bool {
        matches!(
            self,
            Self::ClosedByPeer | Self::UnexpectedEof | Self::Io(_) | Self::PongTimeout { .. }
        )
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
    /// Structural equality; two I/O errors are equal when their kinds are.
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
            (ClosedByPeer, ClosedByPeer) | (UnexpectedEof, UnexpectedEof) => true,
            (Io(a), Io(b)) => a.kind() == b.kind(),
            (ReceiverDropped { channel: a }, ReceiverDropped { channel: b }) => a == b,
            (NoSuchChannel { channel: a }, NoSuchChannel { channel: b }) => a == b,
            (QueueFull { channel: a }, QueueFull { channel: b }) => a == b,
            (
                SendTimeout {
                    channel: a,
                    timeout: s,
                },
                SendTimeout {
                    channel: b,
                    timeout: t,
                },
            ) => a == b && s == t,
            (Closed, Closed) => true,
            _ => false,
        }
    }
}
