//! The few places where the switch touches the MConnection and the transport's `Connection`
//! directly, so that changes to their APIs stay in one file.

use std::time::Duration;

use bytes::Bytes;
use p2p_mconn::{Blame, ChannelReceiver, ConnectionId, MConnection, SendFailure};
use p2p_transport::Connection;

use crate::error::SendError;

/// The connection's channel receivers, with their channel IDs.
pub(crate) fn take_receivers(conn: &mut Connection) -> Vec<(u8, ChannelReceiver)> {
    conn.take_receivers()
        .into_iter()
        .map(|rx| (rx.channel_id(), rx))
        .collect()
}

/// The next message of a channel with how long it waited in the connection's queue; `None`
/// once the connection ended and the queue is drained.
pub(crate) async fn recv_timed(rx: &mut ChannelReceiver) -> Option<(Bytes, Duration)> {
    rx.recv_timed().await
}

/// Queues `msg`, waiting up to the MConnection's send timeout.
pub(crate) async fn send(mconn: &MConnection, channel: u8, msg: Bytes) -> Result<(), SendError> {
    mconn.send(channel, msg).await.map_err(send_error)
}

/// Queues `msg` if there is room right now.
pub(crate) fn try_send(mconn: &MConnection, channel: u8, msg: Bytes) -> Result<(), SendError> {
    mconn.try_send(channel, msg).map_err(send_error)
}

fn send_error(e: p2p_mconn::SendError) -> SendError {
    match e.reason {
        SendFailure::QueueFull { channel } => SendError::QueueFull { channel },
        SendFailure::Timeout { channel, timeout } => SendError::Timeout { channel, timeout },
        SendFailure::NoSuchChannel { channel } => SendError::UnknownChannel { channel },
        _ => SendError::Stopped,
    }
}

/// Who is to blame for the MConnection ending with `error`.
pub(crate) fn blame_of(error: &p2p_mconn::Error) -> Blame {
    error.blame()
}

/// The connection's identity.
pub(crate) fn conn_id(conn: &Connection) -> ConnectionId {
    conn.id()
}

/// Sum of the messages waiting in the connection's send queues (the reference's
/// `peer_pending_send_bytes`, which despite its name counts messages).
pub(crate) fn pending_send(mconn: &MConnection) -> i64 {
    let n: usize = mconn
        .status()
        .channels
        .iter()
        .map(|c| c.send_queue_size)
        .sum();
    i64::try_from(n).unwrap_or(i64::MAX)
}
