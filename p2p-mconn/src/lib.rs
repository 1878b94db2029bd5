//! The CometBFT multiplexed connection (MConnection): many prioritised logical channels over
//! one byte stream, with keepalive, flush throttling and send/receive rate limits. This is the
//! layer above the secret connection in the p2p stack; it is generic over any tokio
//! `AsyncRead`/`AsyncWrite`, so it runs as well over in-memory pipes.
//!
//! # How to drive it
//!
//! Start an [`MConnection`] over an established stream with the channels both peers announced,
//! then send with [`MConnection::send`] and receive from each channel's [`ChannelReceiver`]:
//!
//! ```no_run
//! use p2p_mconn::{ChannelDescriptor, MConnConfig, MConnection};
//! use p2p_secretconn::SecretStream;
//!
//! # async fn run(key: p2p_types::NodeKey) -> Result<(), Box<dyn std::error::Error>> {
//! let tcp = tokio::net::TcpStream::connect("127.0.0.1:26656").await?;
//! let secret = SecretStream::handshake(tcp, &key).await?;
//! let (r, w) = secret.split_with(tokio::net::TcpStream::into_split);
//! let channels = [ChannelDescriptor::new(0x20, 6).send_queue_capacity(100)];
//! let (conn, mut receivers) = MConnection::spawn(r, w, &channels, MConnConfig::node_default())?;
//! let mut consensus = receivers.take(0x20).expect("registered above");
//! conn.send(0x20, b"hello".to_vec()).await?;
//! while let Some(msg) = consensus.recv().await {
//!     println!("{} bytes on channel 0x20", msg.len());
//! }
//! println!("connection ended: {:?}", conn.closed().await);
//! # Ok(()) }
//! ```
//!
//! # Protocol in brief
//!
//! Everything on the wire is a varint-length-delimited protobuf [`Packet`]: a ping, a pong, or
//! a piece of a message (`PacketMsg { channel_id, eof, data }`). Messages are cut into pieces of
//! at most `max_packet_msg_payload_size` bytes (1024 by default; both peers must agree) and
//! reassembled by the receiver until the piece marked `eof`. Pieces of different channels
//! interleave; the next piece comes from the channel that sent the fewest bytes recently
//! relative to its priority. Each side pings at an interval and closes the connection if the
//! pong does not come in time. The details, and where this implementation departs from the
//! reference (always in ways the peer cannot see), are in the [`manual`].
//!
//! # Layers
//!
//! - [`PacketCodec`] and [`Packet`]: the framing, usable alone (it implements
//!   `tokio_util::codec::{Decoder, Encoder}`).
//! - [`MConnection`]: the connection, driven by two tokio tasks. Its decisions (channel
//!   selection, keepalive, flushing, rate limiting) are made by IO-free state machines with
//!   injected time (the write side's in one core, asked what to write next and when it must
//!   be looked at again, even while a write is pending), so tests run them on tokio's paused
//!   clock and a stalled stream cannot stop the clock.
//! - [`Error`]: how a connection ended, with [`Error::blame`] telling a peer's protocol
//!   violation from a disconnect and from our own failure; [`SendError`] for a message that
//!   could not be queued (given back).

#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![warn(clippy::exhaustive_enums, clippy::exhaustive_structs)]

mod config;
mod connection;
mod error;
mod keepalive;
mod limiter;
pub mod manual;
mod packet;
mod recv;
mod scheduler;
pub mod status;
mod write;

pub use config::{
    ChannelDescriptor, DEFAULT_RECV_BUFFER_CAPACITY, DEFAULT_RECV_MESSAGE_CAPACITY,
    DEFAULT_RECV_QUEUE_CAPACITY, DEFAULT_SEND_QUEUE_CAPACITY, MConnConfig, reference,
};
pub use connection::ConnectionId;
pub use connection::MConnection;
pub use error::{Blame, Error, SendError, SendFailure};
pub use packet::{
    PING_BYTES, PONG_BYTES, Packet, PacketCodec, PacketMsg, encode_msg, max_packet_size,
    max_piece_len, msg_packet_len,
};
pub use recv::{ChannelReceiver, Receivers};
pub use scheduler::STATS_DECAY_INTERVAL;
pub use status::{ChannelStatus, ConnectionStatus, FlowStatus};
pub use write::{MAX_WRITE_BATCH, PACED_BATCH_TIME, WRITE_BUFFER_SIZE};
