//! Counters and rates of a connection, as [`MConnection::status`](crate::MConnection::status)
//! reports them (what the switch exports as metrics).

use std::time::Duration;

/// A snapshot of a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionStatus {
    /// Time since the connection started.
    pub duration: Duration,
    /// The outgoing direction.
    pub send: FlowStatus,
    /// The incoming direction.
    pub recv: FlowStatus,
    /// Each channel, in registration order.
    pub channels: Vec<ChannelStatus>,
}

/// One direction of a connection. Byte counts include packet framing, pings and pongs.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FlowStatus {
    /// Bytes moved.
    pub bytes: u64,
    /// Complete messages moved.
    pub messages: u64,
    /// Current rate in bytes per second (moving average over about a second).
    pub cur_rate: u64,
    /// Average rate since the start, in bytes per second.
    pub avg_rate: u64,
    /// Highest rate of a 100 ms sample, in bytes per second.
    pub peak_rate: u64,
    /// The configured limit in bytes per second (0 = unlimited).
    pub limit: u64,
}

/// One channel of a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChannelStatus {
    /// The channel ID.
    pub id: u8,
    /// Its priority.
    pub priority: u32,
    /// Capacity of its send queue, in messages.
    pub send_queue_capacity: usize,
    /// Messages waiting in its send queue (not counting one being sent).
    pub send_queue_size: usize,
    /// Recently sent bytes, the scheduler's measure (decays by 20 % every 2 s).
    pub recently_sent: u64,
    /// Bytes of received messages waiting for the channel's receiver.
    pub recv_queue_bytes: usize,
}
