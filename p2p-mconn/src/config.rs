//! Channel descriptors and connection settings, with the reference's defaults.

use std::time::Duration;

use crate::Error;
use crate::packet::max_packet_size;

/// Default `send_queue_capacity` of a channel: 1 message (the reference's `FillDefaults`).
pub const DEFAULT_SEND_QUEUE_CAPACITY: usize = 1;
/// Default `recv_buffer_capacity` of a channel: 4096 bytes (the reference's `FillDefaults`).
pub const DEFAULT_RECV_BUFFER_CAPACITY: usize = 4096;
/// Default `recv_message_capacity` of a channel: 22020096 bytes, 21 MiB (the reference's
/// `FillDefaults`).
pub const DEFAULT_RECV_MESSAGE_CAPACITY: usize = 22_020_096;
/// Default `recv_queue_capacity` of a channel: 1 MiB of delivered, not yet consumed messages.
/// (No reference equivalent: the reference delivers synchronously and has no queue.)
pub const DEFAULT_RECV_QUEUE_CAPACITY: usize = 1 << 20;

/// One logical channel of a connection.
///
/// Both peers must register a channel for messages to flow on it; which channels a peer has is
/// announced in its `NodeInfo`. The channel with the lowest ratio of recently sent bytes to
/// priority sends next, so a channel of priority 10 gets ten times the bandwidth of a channel
/// of priority 1 when both are saturated.
///
/// ```
/// use p2p_mconn::ChannelDescriptor;
///
/// let votes = ChannelDescriptor::new(0x22, 7)
///     .send_queue_capacity(100)
///     .recv_message_capacity(1 << 20);
/// assert_eq!(votes.id, 0x22);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChannelDescriptor {
    /// The channel ID, unique per connection. IDs below 0x80 are recommended (see
    /// [`manual`](crate::manual)).
    pub id: u8,
    /// Relative share of the bandwidth; must be positive.
    pub priority: u32,
    /// How many messages `send`/`try_send` can queue before waiting or failing.
    /// Default [`DEFAULT_SEND_QUEUE_CAPACITY`].
    pub send_queue_capacity: usize,
    /// Initial allocation, in bytes, for reassembling a message that spans several packets (an
    /// allocation hint, as in the reference). Default [`DEFAULT_RECV_BUFFER_CAPACITY`].
    pub recv_buffer_capacity: usize,
    /// The largest message accepted on this channel; a larger one ends the connection.
    /// Default [`DEFAULT_RECV_MESSAGE_CAPACITY`].
    pub recv_message_capacity: usize,
    /// How many bytes of received messages may wait for the channel's
    /// [`ChannelReceiver`](crate::ChannelReceiver) before the connection stops reading
    /// (back-pressure; nothing is dropped). A message larger than this is still delivered once
    /// the queue is empty. Each message counts 32 bytes more than its length.
    /// Default [`DEFAULT_RECV_QUEUE_CAPACITY`].
    pub recv_queue_capacity: usize,
}

impl ChannelDescriptor {
    /// A channel with the given ID and priority and the reference's defaults for the rest.
    pub fn new(id: u8, priority: u32) -> Self {
        Self {
            id,
            priority,
            send_queue_capacity: DEFAULT_SEND_QUEUE_CAPACITY,
            recv_buffer_capacity: DEFAULT_RECV_BUFFER_CAPACITY,
            recv_message_capacity: DEFAULT_RECV_MESSAGE_CAPACITY,
            recv_queue_capacity: DEFAULT_RECV_QUEUE_CAPACITY,
        }
    }

    /// Sets `send_queue_capacity` (0 means the default, as in the reference).
    #[must_use]
    pub fn send_queue_capacity(mut self, messages: usize) -> Self {
        self.send_queue_capacity = messages;
        self
    }

    /// Sets `recv_buffer_capacity` (0 means the default).
    #[must_use]
    pub fn recv_buffer_capacity(mut self, bytes: usize) -> Self {
        self.recv_buffer_capacity = bytes;
        self
    }

    /// Sets `recv_message_capacity` (0 means the default).
    #[must_use]
    pub fn recv_message_capacity(mut self, bytes: usize) -> Self {
        self.recv_message_capacity = bytes;
        self
    }

    /// Sets `recv_queue_capacity` (0 means the default).
    #[must_use]
    pub fn recv_queue_capacity(mut self, bytes: usize) -> Self {
        self.recv_queue_capacity = bytes;
        self
    }

    /// Replaces zeros by the defaults, as the reference's `FillDefaults` does.
    pub(crate) fn filled(&self) -> Self {
        let or = |v: usize, d: usize| if v == 0 { d } else { v };
        Self {
            id: self.id,
            priority: self.priority,
            send_queue_capacity: or(self.send_queue_capacity, DEFAULT_SEND_QUEUE_CAPACITY),
            recv_buffer_capacity: or(self.recv_buffer_capacity, DEFAULT_RECV_BUFFER_CAPACITY),
            recv_message_capacity: or(self.recv_message_capacity, DEFAULT_RECV_MESSAGE_CAPACITY),
            recv_queue_capacity: or(self.recv_queue_capacity, DEFAULT_RECV_QUEUE_CAPACITY),
        }
    }
}

/// The channels of the reference's reactors (CometBFT v0.38), with their priorities and
/// capacities, in the order a v0.38 node registers them (which decides ties between channels).
pub mod reference {
    use super::ChannelDescriptor;

    /// Mempool (0x30): priority 5, defaults otherwise; the message capacity is the encoded size
    /// of a mempool `Message` holding one transaction of the default `max_tx_bytes` (1 MiB),
    /// 1048584 bytes.
    pub fn mempool() -> ChannelDescriptor {
        ChannelDescriptor::new(0x30, 5).recv_message_capacity((1 << 20) + 8)
    }
    /// Blocksync (0x40): priority 5, queue 1000, buffer 200 KiB, maximum block size + 5.
    pub fn blocksync() -> ChannelDescriptor {
        ChannelDescriptor::new(0x40, 5)
            .send_queue_capacity(1000)
            .recv_buffer_capacity(204_800)
            .recv_message_capacity(104_857_605)
    }
    /// Consensus state (0x20): priority 6, queue 100, 1 MiB messages.
    pub fn consensus_state() -> ChannelDescriptor {
        ChannelDescriptor::new(0x20, 6)
            .send_queue_capacity(100)
            .recv_message_capacity(1_048_576)
    }
    /// Consensus data (0x21): priority 10, queue 100, buffer 200 KiB, 1 MiB messages.
    pub fn consensus_data() -> ChannelDescriptor {
        ChannelDescriptor::new(0x21, 10)
            .send_queue_capacity(100)
            .recv_buffer_capacity(204_800)
            .recv_message_capacity(1_048_576)
    }
    /// Consensus votes (0x22): priority 7, queue 100, buffer 10000, 1 MiB messages.
    pub fn consensus_vote() -> ChannelDescriptor {
        ChannelDescriptor::new(0x22, 7)
            .send_queue_capacity(100)
            .recv_buffer_capacity(10_000)
            .recv_message_capacity(1_048_576)
    }
    /// Consensus vote-set bits (0x23): priority 1, queue 2, buffer 1024, 1 MiB messages.
    pub fn consensus_vote_set_bits() -> ChannelDescriptor {
        ChannelDescriptor::new(0x23, 1)
            .send_queue_capacity(2)
            .recv_buffer_capacity(1024)
            .recv_message_capacity(1_048_576)
    }
    /// Evidence (0x38): priority 6, 1 MiB messages.
    pub fn evidence() -> ChannelDescriptor {
        ChannelDescriptor::new(0x38, 6).recv_message_capacity(1_048_576)
    }
    /// State-sync snapshots (0x60): priority 5, queue 10, 4 MB messages.
    pub fn statesync_snapshot() -> ChannelDescriptor {
        ChannelDescriptor::new(0x60, 5)
            .send_queue_capacity(10)
            .recv_message_capacity(4_000_000)
    }
    /// State-sync chunks (0x61): priority 3, queue 10, 16 MB messages.
    pub fn statesync_chunk() -> ChannelDescriptor {
        ChannelDescriptor::new(0x61, 3)
            .send_queue_capacity(10)
            .recv_message_capacity(16_000_000)
    }
    /// Peer exchange (0x00): priority 1, queue 10, 64000-byte messages.
    pub fn pex() -> ChannelDescriptor {
        ChannelDescriptor::new(0x00, 1)
            .send_queue_capacity(10)
            .recv_message_capacity(64_000)
    }

    /// Every channel of a v0.38 full node with PEX, in registration order (mempool, blocksync,
    /// consensus, evidence, statesync, PEX).
    pub fn full_node() -> Vec<ChannelDescriptor> {
        vec![
            mempool(),
            blocksync(),
            consensus_state(),
            consensus_data(),
            consensus_vote(),
            consensus_vote_set_bits(),
            evidence(),
            statesync_snapshot(),
            statesync_chunk(),
            pex(),
        ]
    }
}

/// Settings of a connection. The defaults are the reference's `DefaultMConnConfig`; a node's
/// `config.toml` defaults differ for the rates (see [`MConnConfig::node_default`]).
///
/// ```
/// use std::time::Duration;
/// use p2p_mconn::MConnConfig;
///
/// let mut config = MConnConfig::default();
/// config.send_rate(0).recv_rate(0).flush_throttle(Duration::from_millis(10));
/// config.validate().unwrap();
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MConnConfig {
    /// Bytes per second this side sends at most (packet framing included); 0 is unlimited.
    /// Default 512000 (the reference's conn default).
    ///
    /// Priorities act only on what waits in this connection's queues. When a link is slower
    /// than what the connection can send, bulk queues in the link's buffer instead, and an
    /// urgent message waits behind it; a send rate a little below the path's rate (about
    /// 85 % of the link, what the secret connection and TCP framing leave of 90 %) keeps the
    /// queue here, where the scheduler orders it.
    pub send_rate: u64,
    /// Bytes per second this side reads at most; 0 is unlimited. Default 512000.
    pub recv_rate: u64,
    /// Data bytes per packet; **must be the same on both peers** (a peer with a smaller value
    /// rejects our full packets as too large). Default 1024.
    pub max_packet_msg_payload_size: usize,
    /// Buffered packets are flushed to the stream at most once per this period unless the
    /// buffer fills (pings are flushed at once). Default 100 ms (the reference v1 uses 10 ms).
    pub flush_throttle: Duration,
    /// How often a ping is sent. Default 60 s.
    pub ping_interval: Duration,
    /// How long a pong may take before the connection is closed; must be below
    /// `ping_interval`. Default 45 s.
    pub pong_timeout: Duration,
    /// How long `send` waits for room in a channel's queue. Default 10 s.
    pub send_timeout: Duration,
}

/// The reference's `DefaultMConnConfig` values.
impl Default for MConnConfig {
    fn default() -> Self {
        Self {
            send_rate: 512_000,
            recv_rate: 512_000,
            max_packet_msg_payload_size: 1024,
            flush_throttle: Duration::from_millis(100),
            ping_interval: Duration::from_secs(60),
            pong_timeout: Duration::from_secs(45),
            send_timeout: Duration::from_secs(10),
        }
    }
}

impl MConnConfig {
    /// What a reference node runs with out of the box (`config.toml` defaults): like
    /// [`Default`] but with send and receive rates of 5120000 bytes per second.
    pub fn node_default() -> Self {
        Self {
            send_rate: 5_120_000,
            recv_rate: 5_120_000,
            ..Self::default()
        }
    }

    /// Sets `send_rate` in bytes per second (0 = unlimited).
    pub fn send_rate(&mut self, bytes_per_sec: u64) -> &mut Self {
        self.send_rate = bytes_per_sec;
        self
    }
    /// Sets `recv_rate` in bytes per second (0 = unlimited).
    pub fn recv_rate(&mut self, bytes_per_sec: u64) -> &mut Self {
        self.recv_rate = bytes_per_sec;
        self
    }
    /// Sets `max_packet_msg_payload_size`.
    pub fn max_packet_msg_payload_size(&mut self, bytes: usize) -> &mut Self {
        self.max_packet_msg_payload_size = bytes;
        self
    }
    /// Sets `flush_throttle`.
    pub fn flush_throttle(&mut self, period: Duration) -> &mut Self {
        self.flush_throttle = period;
        self
    }
    /// Sets `ping_interval`.
    pub fn ping_interval(&mut self, interval: Duration) -> &mut Self {
        self.ping_interval = interval;
        self
    }
    /// Sets `pong_timeout`.
    pub fn pong_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.pong_timeout = timeout;
        self
    }
    /// Sets `send_timeout`.
    pub fn send_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.send_timeout = timeout;
        self
    }

    /// The largest packet (protobuf body, without its length prefix) accepted from the peer:
    /// 1034 bytes for the default payload size, as in the reference.
    pub fn max_packet_size(&self) -> usize {
        max_packet_size(self.max_packet_msg_payload_size)
    }

    /// Checks the settings: the pong timeout must be below the ping interval, the ping interval
    /// positive, and the payload size between 2 bytes and 16 MiB.
    pub fn validate(&self) -> Result<(), Error> {
        if self.ping_interval.is_zero() {
            return Err(Error::config("ping_interval must be positive"));
        }
        if self.pong_timeout >= self.ping_interval {
            return Err(Error::config(format!(
                "pong_timeout ({:?}) must be less than ping_interval ({:?})",
                self.pong_timeout, self.ping_interval
            )));
        }
        if !(2..=MAX_PAYLOAD).contains(&self.max_packet_msg_payload_size) {
            return Err(Error::config(format!(
                "max_packet_msg_payload_size ({}) must be between 2 and {MAX_PAYLOAD}",
                self.max_packet_msg_payload_size
            )));
        }
        Ok(())
    }
}

/// Largest payload size accepted in a configuration.
const MAX_PAYLOAD: usize = 16 << 20;

/// Checks a channel list (each channel with a positive priority and a unique ID) and returns
/// the descriptors with defaults filled in.
pub(crate) fn validate_channels(
    channels: &[ChannelDescriptor],
) -> Result<Vec<ChannelDescriptor>, Error> {
    let mut seen = [false; 256];
    let mut out = Vec::with_capacity(channels.len());
    for ch in channels {
        if ch.priority == 0 {
            return Err(Error::config(format!(
                "channel {:#04x} has priority 0; priorities must be positive",
                ch.id
            )));
        }
        if std::mem::replace(&mut seen[usize::from(ch.id)], true) {
            return Err(Error::config(format!(
                "channel {:#04x} is registered twice",
                ch.id
            )));
        }
        out.push(ch.filled());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_reference() {
        let c = MConnConfig::default();
        assert_eq!((c.send_rate, c.recv_rate), (512_000, 512_000));
        assert_eq!(c.max_packet_msg_payload_size, 1024);
        assert_eq!(c.flush_throttle, Duration::from_millis(100));
        assert_eq!(c.ping_interval, Duration::from_secs(60));
        assert_eq!(c.pong_timeout, Duration::from_secs(45));
        assert_eq!(c.send_timeout, Duration::from_secs(10));
        assert_eq!(c.max_packet_size(), 1034);
        c.validate().unwrap();
        assert_eq!(MConnConfig::node_default().send_rate, 5_120_000);
    }

    #[test]
    fn invalid_configs_are_errors() {
        let mut c = MConnConfig::default();
        c.pong_timeout(Duration::from_secs(60));
        assert!(matches!(c.validate(), Err(Error::InvalidConfig { .. })));
        let mut c = MConnConfig::default();
        c.ping_interval(Duration::ZERO).pong_timeout(Duration::ZERO);
        assert!(c.validate().is_err());
        let mut c = MConnConfig::default();
        c.max_packet_msg_payload_size(1);
        assert!(c.validate().is_err());
        c.max_packet_msg_payload_size(usize::MAX);
        assert!(c.validate().is_err());
    }

    #[test]
    fn channel_checks() {
        let e = validate_channels(&[ChannelDescriptor::new(1, 0)]).unwrap_err();
        assert!(e.to_string().contains("priority 0"), "{e}");
        let e = validate_channels(&[ChannelDescriptor::new(1, 1), ChannelDescriptor::new(1, 2)])
            .unwrap_err();
        assert!(e.to_string().contains("twice"), "{e}");
        let filled = validate_channels(&[ChannelDescriptor::new(7, 1)
            .send_queue_capacity(0)
            .recv_message_capacity(0)])
        .unwrap();
        assert_eq!(filled[0].send_queue_capacity, 1);
        assert_eq!(
            filled[0].recv_message_capacity,
            DEFAULT_RECV_MESSAGE_CAPACITY
        );
        let ids: Vec<u8> = reference::full_node().iter().map(|c| c.id).collect();
        assert_eq!(
            ids,
            [0x30, 0x40, 0x20, 0x21, 0x22, 0x23, 0x38, 0x60, 0x61, 0x00]
        );
        validate_channels(&reference::full_node()).unwrap();
    }
}
