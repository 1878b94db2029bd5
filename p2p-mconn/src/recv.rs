//! The receiving side: reassembly of messages from packets, and the bounded per-channel queues
//! between the connection's read task and the application.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::sync::{Semaphore, mpsc};

use crate::Error;

/// Bytes each queued message counts in addition to its length (its bookkeeping).
pub(crate) const MESSAGE_OVERHEAD: usize = 32;

/// Reassembles one channel's messages from their pieces.
#[derive(Debug)]
pub(crate) struct Reassembly {
    channel: u8,
    buf: BytesMut,
    max: usize,
    hint: usize,
}

impl Reassembly {
    pub(crate) fn new(channel: u8, max: usize, hint: usize) -> Self {
        Self {
            channel,
            buf: BytesMut::new(),
            max,
            hint: hint.min(max),
        }
    }

    /// Adds a piece; returns the message when `eof` completes it. A message growing past the
    /// channel's capacity is an error (checked before anything is copied).
    pub(crate) fn push(&mut self, data: &[u8], eof: bool) -> Result<Option<Bytes>, Error> {
        if self.buf.len().saturating_add(data.len()) > self.max {
            return Err(Error::MessageTooLarge {
                channel: self.channel,
                max: self.max,
            });
        }
        if eof && self.buf.is_empty() {
            // Single-piece message: one copy, sized exactly (it must not keep the read buffer
            // alive while it waits in a queue).
            return Ok(Some(Bytes::copy_from_slice(data)));
        }
        if self.buf.capacity() == 0 {
            self.buf.reserve(self.hint.max(data.len()));
        }
        self.buf.extend_from_slice(data);
        if eof {
            Ok(Some(self.buf.split().freeze()))
        } else {
            Ok(None)
        }
    }

    /// Bytes of the message in progress.
    #[cfg(test)]
    pub(crate) fn pending(&self) -> usize {
        self.buf.len()
    }
}

/// Creates a channel's receive queue holding at most `capacity` bytes (see
/// [`ChannelDescriptor::recv_queue_capacity`](crate::ChannelDescriptor)).
pub(crate) fn queue(channel: u8, capacity: usize) -> (QueueSender, ChannelReceiver) {
    let capacity = capacity.clamp(MESSAGE_OVERHEAD, u32::MAX as usize);
    let space = Arc::new(Semaphore::new(capacity));
    // Every message holds at least MESSAGE_OVERHEAD permits, so this many slots never fill;
    // tokio allocates them lazily.
    let (tx, rx) = mpsc::channel(capacity / MESSAGE_OVERHEAD + 1);
    (
        QueueSender {
            channel,
            capacity,
            tx,
            space: Arc::clone(&space),
        },
        ChannelReceiver { channel, rx, space },
    )
}

/// The connection's end of a channel's receive queue.
#[derive(Debug)]
pub(crate) struct QueueSender {
    channel: u8,
    capacity: usize,
    tx: mpsc::Sender<(Bytes, u32)>,
    space: Arc<Semaphore>,
}

impl QueueSender {
    /// Queues a message, waiting while the queue is full. A message larger than the whole
    /// queue waits until the queue is empty.
    pub(crate) async fn push(&self, msg: Bytes) -> Result<(), Error> {
        let cost = msg
            .len()
            .saturating_add(MESSAGE_OVERHEAD)
            .min(self.capacity) as u32;
        let dropped = Error::ReceiverDropped {
            channel: self.channel,
        };
        if let Ok(permit) = self.space.try_acquire_many(cost) {
            permit.forget();
            return self.tx.try_send((msg, cost)).map_err(|_| dropped);
        }
        let permit = tokio::select! {
            p = self.space.acquire_many(cost) => p.map_err(|_| dropped.clone())?,
            () = self.tx.closed() => return Err(dropped),
        };
        permit.forget();
        self.tx.try_send((msg, cost)).map_err(|_| dropped)
    }

    /// A view of how full the queue is.
    pub(crate) fn gauge(&self) -> QueueGauge {
        QueueGauge {
            capacity: self.capacity,
            space: Arc::clone(&self.space),
        }
    }
}

/// How full a receive queue is, readable from anywhere.
#[derive(Debug)]
pub(crate) struct QueueGauge {
    capacity: usize,
    space: Arc<Semaphore>,
}

impl QueueGauge {
    /// Bytes queued and not yet received (each message counted with its overhead).
    pub(crate) fn queued_bytes(&self) -> usize {
        self.capacity.saturating_sub(self.space.available_permits())
    }
}

/// Receives the messages of one channel, in order.
///
/// Messages wait here until taken; while the channel's queue is full (its
/// `recv_queue_capacity`), the connection stops reading from the peer, which holds back every
/// channel of this connection (and, eventually, the peer's keepalive) until this receiver
/// catches up. Nothing is dropped. Dropping the receiver while the peer still sends on the
/// channel ends the connection with [`Error::ReceiverDropped`].
#[derive(Debug)]
pub struct ChannelReceiver {
    channel: u8,
    rx: mpsc::Receiver<(Bytes, u32)>,
    space: Arc<Semaphore>,
}

impl ChannelReceiver {
    /// The channel this receiver belongs to.
    pub fn channel_id(&self) -> u8 {
        self.channel
    }

    /// The next message, or `None` once the connection has ended and every message received
    /// before the end has been taken. Cancel-safe.
    pub async fn recv(&mut self) -> Option<Bytes> {
        let (msg, cost) = self.rx.recv().await?;
        self.space.add_permits(cost as usize);
        Some(msg)
    }

    /// The next message if one is waiting; `Ok(None)` if none is waiting; `Err(Closed)` if the
    /// connection has ended and everything was taken.
    pub fn try_recv(&mut self) -> Result<Option<Bytes>, Error> {
        match self.rx.try_recv() {
            Ok((msg, cost)) => {
                self.space.add_permits(cost as usize);
                Ok(Some(msg))
            }
            Err(mpsc::error::TryRecvError::Empty) => Ok(None),
            Err(mpsc::error::TryRecvError::Disconnected) => Err(Error::Closed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn reassembles_and_enforces_capacity() {
        let mut r = Reassembly::new(5, 10, 4096);
        assert_eq!(r.push(b"abc", false).unwrap(), None);
        assert_eq!(r.pending(), 3);
        assert_eq!(r.push(b"defg", true).unwrap().unwrap(), &b"abcdefg"[..]);
        assert_eq!(r.pending(), 0);
        assert_eq!(r.push(b"", true).unwrap().unwrap(), &b""[..]);
        assert_eq!(r.push(b"0123456789", true).unwrap().unwrap().len(), 10);
        r.push(b"012345", false).unwrap();
        assert_eq!(
            r.push(b"01234", false),
            Err(Error::MessageTooLarge {
                channel: 5,
                max: 10
            })
        );
    }

    #[tokio::test(start_paused = true)]
    async fn queue_applies_back_pressure_and_keeps_order() {
        let (tx, mut rx) = queue(1, 100);
        let gauge = tx.gauge();
        tx.push(Bytes::from_static(&[1; 40])).await.unwrap(); // costs 72
        assert_eq!(gauge.queued_bytes(), 72);
        // The next one does not fit until the first is taken.
        let blocked = tokio::time::timeout(
            Duration::from_secs(1),
            tx.push(Bytes::from_static(&[2; 40])),
        );
        assert!(blocked.await.is_err());
        assert_eq!(rx.recv().await.unwrap()[0], 1);
        tx.push(Bytes::from_static(&[2; 40])).await.unwrap();
        // A message larger than the queue passes once the queue is empty.
        let big = tokio::spawn({
            let tx = tx;
            async move {
                tx.push(Bytes::from(vec![3; 1000])).await.unwrap();
                tx
            }
        });
        assert_eq!(rx.recv().await.unwrap()[0], 2);
        let tx = big.await.unwrap();
        assert_eq!(rx.recv().await.unwrap().len(), 1000);
        assert_eq!(rx.try_recv().unwrap(), None);
        assert_eq!(gauge.queued_bytes(), 0);
        drop(tx);
        assert_eq!(rx.recv().await, None);
        assert_eq!(rx.try_recv(), Err(Error::Closed));
    }

    #[tokio::test]
    async fn dropped_receiver_is_an_error_even_while_waiting() {
        let (tx, rx) = queue(9, 64);
        tx.push(Bytes::from_static(&[0; 32])).await.unwrap();
        let waiting = tokio::spawn(async move { tx.push(Bytes::from_static(&[0; 32])).await });
        tokio::task::yield_now().await;
        drop(rx);
        assert_eq!(
            waiting.await.unwrap(),
            Err(Error::ReceiverDropped { channel: 9 })
        );
    }
}
