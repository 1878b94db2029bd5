//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use bytes::BytesMut;
use p2p_mconn::{
    ChannelDescriptor, ChannelReceiver, MConnConfig, MConnection, Packet, PacketCodec,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

/// A config with rate limits off (the defaults limit to 512 kB/s).
pub fn unlimited() -> MConnConfig {
    let mut c = MConnConfig::default();
    c.send_rate(0).recv_rate(0);
    c
}

/// Two connected MConnections over an in-memory pipe, with their receivers in registration
/// order.
pub fn pair(
    channels: &[ChannelDescriptor],
    a: MConnConfig,
    b: MConnConfig,
) -> (
    MConnection,
    Vec<ChannelReceiver>,
    MConnection,
    Vec<ChannelReceiver>,
) {
    let (x, y) = tokio::io::duplex(256 * 1024);
    let (ca, ra) = MConnection::spawn_stream(x, channels, a).unwrap();
    let (cb, rb) = MConnection::spawn_stream(y, channels, b).unwrap();
    (ca, ra.into_iter().collect(), cb, rb.into_iter().collect())
}

/// An MConnection facing a raw peer that the test drives packet by packet.
pub fn with_raw_peer(
    channels: &[ChannelDescriptor],
    config: MConnConfig,
) -> (MConnection, Vec<ChannelReceiver>, RawPeer) {
    let (x, y) = tokio::io::duplex(256 * 1024);
    let (c, r) = MConnection::spawn_stream(x, channels, config).unwrap();
    (c, r.into_iter().collect(), RawPeer::new(y))
}

/// The far end of a connection, speaking packets by hand.
pub struct RawPeer {
    pub io: DuplexStream,
    codec: PacketCodec,
    buf: BytesMut,
}

impl RawPeer {
    pub fn new(io: DuplexStream) -> Self {
        Self {
            io,
            codec: PacketCodec::new(usize::MAX),
            buf: BytesMut::new(),
        }
    }

    pub async fn send(&mut self, p: &Packet) {
        self.io.write_all(&p.to_bytes()).await.unwrap();
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.io.write_all(bytes).await.unwrap();
    }

    /// The next packet, or `None` at the end of the stream.
    pub async fn recv(&mut self) -> Option<Packet> {
        loop {
            if let Some(p) = self.codec.decode_packet(&mut self.buf).unwrap() {
                return Some(p);
            }
            self.buf.reserve(64 * 1024);
            if self.io.read_buf(&mut self.buf).await.unwrap_or(0) == 0 {
                return None;
            }
        }
    }

    /// Wire size of the packet last returned by `recv`.
    pub fn last_len(&self) -> usize {
        self.codec.last_len()
    }
}
