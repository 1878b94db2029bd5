//! The receiving side: reassembly of messages from packets, and the bounded per-channel queues
//! between the connection's read task and the application.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;

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
    let epoch = Instant::now();
    (
        QueueSender {
            channel,
            capacity,
            tx,
            space: Arc::clone(&space),
            epoch,
        },
        ChannelReceiver {
            channel,
            rx,
            space,
            epoch,
        },
    )
}

/// A queued message, its cost in permits, and when it arrived.
///
/// The arrival is kept as microseconds since the queue was made, modulo 2^32 (see
/// [`Ticks`]), so a slot is no bigger than the message and its cost alone (40 bytes): the
/// queue's memory is what an idle connection costs.
#[derive(Debug)]
struct Slot {
    msg: Bytes,
    cost: u32,
    arrived: Ticks,
}

/// Microseconds since a queue's epoch, wrapping every 2^32 µs (71 minutes). The difference of
/// two ticks (wrapping) is exact for any wait shorter than that; a message that waited longer
/// is reported as having waited the remainder, which is a bounded error for a metric and
/// never a panic.
#[derive(Clone, Copy, Debug)]
struct Ticks(u32);

impl Ticks {
    fn now(epoch: Instant) -> Self {
        // Truncation is the wrap described above.
        Self(epoch.elapsed().as_micros() as u32)
    }

    fn since(self, epoch: Instant) -> Duration {
        self.until(Self::now(epoch))
    }

    fn until(self, later: Self) -> Duration {
        Duration::from_micros(u64::from(later.0.wrapping_sub(self.0)))
    }
}

/// The connection's end of a channel's receive queue.
#[derive(Debug)]
pub(crate) struct QueueSender {
    channel: u8,
    capacity: usize,
    tx: mpsc::Sender<Slot>,
    space: Arc<Semaphore>,
    epoch: Instant,
}

impl QueueSender {
    fn cost(&self, msg: &Bytes) -> u32 {
        msg.len()
            .saturating_add(MESSAGE_OVERHEAD)
            .min(self.capacity) as u32
    }

    fn dropped(&self) -> Error {
        Error::ReceiverDropped {
            channel: self.channel,
        }
    }

    /// Queues a message if there is room now; gives it back if the queue is full.
    pub(crate) fn try_push(&self, msg: Bytes) -> Result<Result<(), Bytes>, Error> {
        self.try_push_at(msg, Ticks::now(self.epoch))
    }

    fn try_push_at(&self, msg: Bytes, arrived: Ticks) -> Result<Result<(), Bytes>, Error> {
        if self.tx.is_closed() {
            return Err(self.dropped());
        }
        let cost = self.cost(&msg);
        match self.space.try_acquire_many(cost) {
            Ok(permit) => {
                permit.forget();
                self.send(msg, cost, arrived)?;
                Ok(Ok(()))
            }
            Err(_) => Ok(Err(msg)),
        }
    }

    fn send(&self, msg: Bytes, cost: u32, arrived: Ticks) -> Result<(), Error> {
        self.tx
            .try_send(Slot { msg, cost, arrived })
            .map_err(|_| self.dropped())
    }

    /// Queues a message, waiting while the queue is full. A message larger than the whole
    /// queue waits until the queue is empty.
    pub(crate) async fn push(&self, msg: Bytes) -> Result<(), Error> {
        // The message arrived now, however long it then waits for room.
        let arrived = Ticks::now(self.epoch);
        let msg = match self.try_push_at(msg, arrived)? {
            Ok(()) => return Ok(()),
            Err(msg) => msg,
        };
        let cost = self.cost(&msg);
        let permit = tokio::select! {
            p = self.space.acquire_many(cost) => p.map_err(|_| self.dropped())?,
            () = self.tx.closed() => return Err(self.dropped()),
        };
        permit.forget();
        self.send(msg, cost, arrived)
    }

    /// The channel of this queue.
    pub(crate) fn channel(&self) -> u8 {
        self.channel
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
    rx: mpsc::Receiver<Slot>,
    space: Arc<Semaphore>,
    epoch: Instant,
}

impl ChannelReceiver {
    /// The channel this receiver belongs to.
    pub fn channel_id(&self) -> u8 {
        self.channel
    }

    /// The next message, or `None` once the connection has ended and every message received
    /// before the end has been taken. Cancel-safe.
    pub async fn recv(&mut self) -> Option<Bytes> {
        self.recv_timed().await.map(|(msg, _)| msg)
    }

    /// As [`recv`](Self::recv), with how long the message waited in this queue: from the
    /// moment its last packet was read off the connection to now (on tokio's clock, so a
    /// paused clock in tests gives exact figures). Exact for waits under 71 minutes (the
    /// arrival is kept in 32 bits of microseconds to keep the queue small). This is the
    /// figure behind a switch's "pending" metrics: how far its consumer lags the network.
    /// Cancel-safe.
    pub async fn recv_timed(&mut self) -> Option<(Bytes, Duration)> {
        let slot = self.rx.recv().await?;
        Some(self.take(slot))
    }

    fn take(&self, slot: Slot) -> (Bytes, Duration) {
        self.space.add_permits(slot.cost as usize);
        (slot.msg, slot.arrived.since(self.epoch))
    }

    /// Polls for the next message: `Ready(None)` once the connection has ended and every
    /// message was taken. (The receiver is also a `futures_core::Stream` of messages, so a
    /// switch can select over many.)
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(slot)) => Poll::Ready(Some(self.take(slot).0)),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    /// The next message if one is waiting; `Ok(None)` if none is waiting; `Err(Closed)` if the
    /// connection has ended and everything was taken.
    pub fn try_recv(&mut self) -> Result<Option<Bytes>, Error> {
        match self.rx.try_recv() {
            Ok(slot) => Ok(Some(self.take(slot).0)),
            Err(mpsc::error::TryRecvError::Empty) => Ok(None),
            Err(mpsc::error::TryRecvError::Disconnected) => Err(Error::Closed),
        }
    }
}

impl futures_core::Stream for ChannelReceiver {
    type Item = Bytes;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        self.get_mut().poll_recv(cx)
    }
}

/// The receivers of a connection's channels, addressed by channel ID, as
/// [`MConnection::spawn`](crate::MConnection::spawn) returns them.
///
/// Take each out with [`take`](Self::take) (or iterate: in registration order) and keep it
/// as long as the connection runs.
#[derive(Debug, Default)]
pub struct Receivers {
    /// In registration order; `None` once taken.
    slots: Vec<Option<ChannelReceiver>>,
}

impl Receivers {
    pub(crate) fn new(receivers: Vec<ChannelReceiver>) -> Self {
        Self {
            slots: receivers.into_iter().map(Some).collect(),
        }
    }

    /// Takes out the receiver of `channel`; `None` if the connection has no such channel or
    /// it was taken already.
    pub fn take(&mut self, channel: u8) -> Option<ChannelReceiver> {
        self.slots
            .iter_mut()
            .find(|s| s.as_ref().is_some_and(|r| r.channel == channel))?
            .take()
    }

    /// The receiver of `channel`, if it is still here.
    pub fn get_mut(&mut self, channel: u8) -> Option<&mut ChannelReceiver> {
        self.iter_mut().find(|r| r.channel == channel)
    }

    /// The receivers still here, in registration order.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut ChannelReceiver> {
        self.slots.iter_mut().flatten()
    }

    /// The channels whose receivers are still here, in registration order.
    pub fn channel_ids(&self) -> impl Iterator<Item = u8> + '_ {
        self.slots.iter().flatten().map(|r| r.channel)
    }

    /// How many receivers are still here.
    pub fn len(&self) -> usize {
        self.slots.iter().flatten().count()
    }

    /// Whether every receiver was taken.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl IntoIterator for Receivers {
    type Item = ChannelReceiver;
    type IntoIter = std::iter::Flatten<std::vec::IntoIter<Option<ChannelReceiver>>>;

    /// The receivers still here, in registration order.
    fn into_iter(self) -> Self::IntoIter {
        self.slots.into_iter().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn recv_timed_reports_the_wait_from_arrival() {
        let (tx, mut rx) = queue(1, 100);
        tx.push(Bytes::from_static(&[1; 40])).await.unwrap();
        tokio::time::sleep(Duration::from_millis(250)).await;
        // The second arrives now but must wait for room until the first is taken.
        let second = tokio::spawn(async move {
            tx.push(Bytes::from_static(&[2; 40])).await.unwrap();
            tx
        });
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (first, waited) = rx.recv_timed().await.unwrap();
        assert_eq!((first[0], waited), (1, Duration::from_millis(350)));
        let _tx = second.await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        let (second, waited) = rx.recv_timed().await.unwrap();
        // Its wait counts from its arrival, before it found room.
        assert_eq!((second[0], waited), (2, Duration::from_millis(105)));
    }

    #[test]
    fn ticks_wrap_without_error_for_short_waits() {
        // Arrived 10 µs before the wrap, taken 9 µs after it.
        assert_eq!(
            Ticks(u32::MAX - 10).until(Ticks(9)),
            Duration::from_micros(20)
        );
        assert_eq!(Ticks(7).until(Ticks(7)), Duration::ZERO);
        assert_eq!(
            Ticks(0).until(Ticks(u32::MAX)),
            Duration::from_micros(u64::from(u32::MAX))
        );
    }

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
