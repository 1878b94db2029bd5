//! The async connection: a read task and a write task over the two halves of a stream.
//!
//! ```text
//!  send()/try_send() ──► per-channel send queues ──► write task ──► stream
//!                                                      ▲  (scheduler, keepalive,
//!                                 ping seen / pong seen │   flush throttle, send limit)
//!  ChannelReceiver ◄── per-channel receive queues ◄── read task ◄── stream
//!                                                      (codec, reassembly, recv limit)
//! ```
//!
//! The two tasks share nothing but a few flags, so a blocked write (the peer does not read) does
//! not stop reading, and a waiting rate limiter never holds up the keepalive or the other
//! direction. A full receive queue pauses the read task only.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use crate::config::{ChannelDescriptor, MConnConfig, validate_channels};
use crate::keepalive::{Keepalive, KeepaliveAction};
use crate::limiter::{RateMonitor, TokenBucket};
use crate::packet::{PING_BYTES, PONG_BYTES, Packet, PacketCodec, PacketView, parse_canonical};
use crate::recv::{ChannelReceiver, QueueGauge, QueueSender, Reassembly, queue};
use crate::scheduler::Scheduler;
use crate::{Error, status};

/// Size of the write buffer: packets are written to the stream in chunks of this size (the
/// reference's `minWriteBufferSize`).
pub const WRITE_BUFFER_SIZE: usize = 64 * 1024;
/// Size of the reads from the stream while data streams in.
const READ_CHUNK: usize = 64 * 1024;
/// Size of the reads from the stream while it is quiet (an idle connection keeps only this).
const SMALL_READ: usize = 4 * 1024;

/// A multiplexed connection: prioritised channels over one byte stream, with keepalive, flush
/// throttling and rate limits, speaking the CometBFT MConnection protocol.
///
/// Create one with [`MConnection::spawn`] over the two halves of an established stream
/// (usually a `p2p_secretconn::SecretStream`); it runs as two tokio tasks until it is stopped,
/// fails, or every handle is dropped. The handle is cheap to clone.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), p2p_mconn::Error> {
/// use p2p_mconn::{ChannelDescriptor, MConnConfig, MConnection};
///
/// let (a, b) = tokio::io::duplex(64 * 1024);
/// let channels = [ChannelDescriptor::new(0x01, 1), ChannelDescriptor::new(0x02, 5)];
/// let (conn_a, _rx_a) = MConnection::spawn_stream(a, &channels, MConnConfig::default())?;
/// let (conn_b, mut rx_b) = MConnection::spawn_stream(b, &channels, MConnConfig::default())?;
///
/// conn_a.send(0x02, &b"hello"[..]).await?;
/// assert_eq!(rx_b[1].recv().await.unwrap(), &b"hello"[..]);
///
/// conn_a.flush_stop().await?; // everything accepted is sent before the stream is closed
/// assert_eq!(conn_b.closed().await, Err(p2p_mconn::Error::ClosedByPeer));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct MConnection {
    shared: Arc<Shared>,
    _owner: Arc<Owner>,
}

/// Stops the connection when the last handle is dropped.
#[derive(Debug)]
struct Owner(Arc<Shared>);

impl Drop for Owner {
    fn drop(&mut self) {
        self.0.finish(Err(Error::Closed));
    }
}

#[derive(Debug)]
struct ChannelShared {
    desc: ChannelDescriptor,
    tx: mpsc::Sender<Bytes>,
    recently_sent: AtomicU64,
    recv_queue: QueueGauge,
}

#[derive(Debug)]
struct Shared {
    config: MConnConfig,
    channels: Vec<ChannelShared>,
    /// Channel ID → index in `channels`.
    index: [Option<u8>; 256],
    /// Wakes the write task: something was queued, a ping or pong arrived, a rate changed.
    wake_writer: Notify,
    /// The peer pinged; a pong is due.
    pong_due: AtomicBool,
    /// The peer answered our ping.
    pong_seen: AtomicBool,
    send_rate: AtomicU64,
    recv_rate: AtomicU64,
    recv_rate_changed: Notify,
    /// Stops both tasks at once.
    cancel: CancellationToken,
    /// Asks the write task to send what is queued, then close.
    drain: CancellationToken,
    /// Set by `finish` and `flush_stop`: no more sends are accepted (cheaper to read than the
    /// tokens).
    ended: AtomicBool,
    outcome: watch::Sender<Option<Result<(), Error>>>,
    started: Instant,
    send_monitor: Mutex<RateMonitor>,
    recv_monitor: Mutex<RateMonitor>,
    msgs_sent: AtomicU64,
    msgs_recv: AtomicU64,
}

impl Shared {
    /// Records how the connection ended (the first outcome wins) and stops both tasks.
    fn finish(&self, result: Result<(), Error>) {
        self.decide(result);
        self.cancel.cancel();
    }

    /// Records how the connection ended if nothing was recorded yet, without stopping the tasks.
    fn decide(&self, result: Result<(), Error>) {
        self.ended.store(true, Ordering::Release);
        let first = self.outcome.send_if_modified(|o| {
            if o.is_none() {
                *o = Some(result.clone());
                true
            } else {
                false
            }
        });
        if first {
            match &result {
                Ok(()) => tracing::debug!("mconnection stopped"),
                Err(e) => tracing::debug!(error = %e, "mconnection closed"),
            }
        }
    }

    fn channel(&self, id: u8) -> Result<&ChannelShared, Error> {
        self.index[usize::from(id)]
            .map(|i| &self.channels[usize::from(i)])
            .ok_or(Error::NoSuchChannel { channel: id })
    }

    fn is_ended(&self) -> bool {
        self.ended.load(Ordering::Acquire)
    }
}

impl MConnection {
    /// Starts a connection over a stream's read and write halves, with the given channels (in
    /// registration order, which breaks ties between equally loaded channels) and settings.
    ///
    /// Returns the handle and one [`ChannelReceiver`] per channel, in the order of `channels`.
    /// Must be called within a tokio runtime. Fails if the configuration or the channel list is
    /// invalid (see [`MConnConfig::validate`]; priorities must be positive and IDs unique).
    pub fn spawn<R, W>(
        reader: R,
        writer: W,
        channels: &[ChannelDescriptor],
        config: MConnConfig,
    ) -> Result<(Self, Vec<ChannelReceiver>), Error>
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        config.validate()?;
        let channels = validate_channels(channels)?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::config("MConnection::spawn must be called within a tokio runtime")
        })?;
        let now = Instant::now();

        let mut index = [None; 256];
        let mut shared_channels = Vec::with_capacity(channels.len());
        let mut send_rxs = Vec::with_capacity(channels.len());
        let mut queue_txs = Vec::with_capacity(channels.len());
        let mut receivers = Vec::with_capacity(channels.len());
        let mut reassembly = Vec::with_capacity(channels.len());
        for (i, desc) in channels.iter().enumerate() {
            index[usize::from(desc.id)] = Some(i as u8);
            let (tx, rx) = mpsc::channel(desc.send_queue_capacity);
            send_rxs.push(rx);
            let (qtx, qrx) = queue(desc.id, desc.recv_queue_capacity);
            let recv_queue = qtx.gauge();
            queue_txs.push(qtx);
            receivers.push(qrx);
            reassembly.push(Reassembly::new(
                desc.id,
                desc.recv_message_capacity,
                desc.recv_buffer_capacity,
            ));
            shared_channels.push(ChannelShared {
                desc: desc.clone(),
                tx,
                recently_sent: AtomicU64::new(0),
                recv_queue,
            });
        }
        let shared = Arc::new(Shared {
            send_rate: AtomicU64::new(config.send_rate),
            recv_rate: AtomicU64::new(config.recv_rate),
            config,
            channels: shared_channels,
            index,
            wake_writer: Notify::new(),
            pong_due: AtomicBool::new(false),
            pong_seen: AtomicBool::new(false),
            recv_rate_changed: Notify::new(),
            cancel: CancellationToken::new(),
            drain: CancellationToken::new(),
            ended: AtomicBool::new(false),
            outcome: watch::Sender::new(None),
            started: now,
            send_monitor: Mutex::new(RateMonitor::new(now)),
            recv_monitor: Mutex::new(RateMonitor::new(now)),
            msgs_sent: AtomicU64::new(0),
            msgs_recv: AtomicU64::new(0),
        });

        let s = Arc::clone(&shared);
        runtime.spawn(async move {
            let result = tokio::select! {
                r = write_loop(writer, &s, send_rxs) => r,
                () = s.cancel.cancelled() => Ok(()),
            };
            s.finish(result);
        });
        let s = Arc::clone(&shared);
        runtime.spawn(async move {
            let result = tokio::select! {
                r = read_loop(reader, &s, reassembly, queue_txs) => r,
                () = s.cancel.cancelled() => Ok(()),
            };
            s.finish(result);
        });

        let owner = Arc::new(Owner(Arc::clone(&shared)));
        Ok((
            Self {
                shared,
                _owner: owner,
            },
            receivers,
        ))
    }

    /// Like [`spawn`](Self::spawn) for a stream that is not split into halves (it is split with
    /// `tokio::io::split`, which costs a lock per operation; prefer `spawn` with the stream's
    /// own halves where it has them, e.g. `SecretStream::split_with(TcpStream::into_split)`).
    pub fn spawn_stream<S>(
        stream: S,
        channels: &[ChannelDescriptor],
        config: MConnConfig,
    ) -> Result<(Self, Vec<ChannelReceiver>), Error>
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (r, w) = tokio::io::split(stream);
        Self::spawn(r, w, channels, config)
    }

    /// Queues `msg` on `channel`, waiting up to the configured send timeout (10 s by default)
    /// for room in the channel's queue.
    ///
    /// `Ok` means the message was accepted: it will be sent unless the connection ends first
    /// ([`flush_stop`](Self::flush_stop) sends everything accepted). An empty message is
    /// valid.
    pub async fn send(&self, channel: u8, msg: impl Into<Bytes>) -> Result<(), Error> {
        let ch = self.shared.channel(channel)?;
        if self.shared.is_ended() {
            return Err(Error::Closed);
        }
        // Without a timer when there is room (the common case).
        let msg = match ch.tx.try_send(msg.into()) {
            Ok(()) => {
                self.shared.wake_writer.notify_one();
                return Ok(());
            }
            Err(mpsc::error::TrySendError::Full(msg)) => msg,
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(Error::Closed),
        };
        let timeout = self.shared.config.send_timeout;
        match ch.tx.send_timeout(msg, timeout).await {
            Ok(()) => {
                self.shared.wake_writer.notify_one();
                Ok(())
            }
            Err(mpsc::error::SendTimeoutError::Timeout(_)) => {
                Err(Error::SendTimeout { channel, timeout })
            }
            Err(mpsc::error::SendTimeoutError::Closed(_)) => Err(Error::Closed),
        }
    }

    /// Queues `msg` on `channel` if there is room right now; never waits.
    pub fn try_send(&self, channel: u8, msg: impl Into<Bytes>) -> Result<(), Error> {
        let ch = self.shared.channel(channel)?;
        if self.shared.is_ended() {
            return Err(Error::Closed);
        }
        match ch.tx.try_send(msg.into()) {
            Ok(()) => {
                self.shared.wake_writer.notify_one();
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(_)) => Err(Error::QueueFull { channel }),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(Error::Closed),
        }
    }

    /// Whether `channel` exists and its send queue has room.
    pub fn can_send(&self, channel: u8) -> bool {
        !self.shared.is_ended()
            && self
                .shared
                .channel(channel)
                .is_ok_and(|ch| ch.tx.capacity() > 0)
    }

    /// The channels, in registration order, with defaults filled in.
    pub fn channels(&self) -> impl Iterator<Item = &ChannelDescriptor> {
        self.shared.channels.iter().map(|c| &c.desc)
    }

    /// The settings this connection was started with (the rates may have changed since; see
    /// [`status`](Self::status)).
    pub fn config(&self) -> &MConnConfig {
        &self.shared.config
    }

    /// Changes the send rate limit (bytes per second, 0 = unlimited) from now on.
    pub fn set_send_rate(&self, bytes_per_sec: u64) {
        self.shared
            .send_rate
            .store(bytes_per_sec, Ordering::Relaxed);
        self.shared.wake_writer.notify_one();
    }

    /// Changes the receive rate limit (bytes per second, 0 = unlimited) from now on.
    pub fn set_recv_rate(&self, bytes_per_sec: u64) {
        self.shared
            .recv_rate
            .store(bytes_per_sec, Ordering::Relaxed);
        self.shared.recv_rate_changed.notify_one();
    }

    /// Ends the connection at once: queued messages are dropped, the stream is closed.
    /// [`closed`](Self::closed) then returns `Ok(())` (unless the connection had already
    /// failed).
    pub fn stop(&self) {
        self.shared.finish(Ok(()));
    }

    /// Stops accepting messages, sends every message already accepted by `send`/`try_send`
    /// (still within the send rate), flushes, closes the stream, and returns how the connection
    /// ended: `Ok(())`, or the error that ended it first.
    ///
    /// This waits for the peer to take the data; wrap it in a timeout and call
    /// [`stop`](Self::stop) if the peer may not read.
    pub async fn flush_stop(&self) -> Result<(), Error> {
        self.shared.ended.store(true, Ordering::Release);
        self.shared.drain.cancel();
        self.shared.wake_writer.notify_one();
        self.closed().await
    }

    /// Waits until the connection has ended and returns how: `Ok(())` after
    /// [`stop`](Self::stop) or a completed [`flush_stop`](Self::flush_stop), otherwise the one
    /// error that ended it (the first failure; later consequences of it are not reported).
    /// Every caller gets the same answer.
    pub async fn closed(&self) -> Result<(), Error> {
        let mut rx = self.shared.outcome.subscribe();
        match rx.wait_for(Option::is_some).await {
            Ok(outcome) => outcome.clone().unwrap_or(Err(Error::Closed)),
            // The sender lives in `shared`, which we hold: unreachable, but not worth a panic.
            Err(_) => Err(Error::Closed),
        }
    }

    /// How the connection ended, or `None` while it is running.
    pub fn outcome(&self) -> Option<Result<(), Error>> {
        self.shared.outcome.borrow().clone()
    }

    /// Whether the connection is still running (not stopped, not stopping, not failed).
    pub fn is_running(&self) -> bool {
        !self.shared.is_ended()
    }

    /// Counters and rates of the connection and its channels.
    pub fn status(&self) -> status::ConnectionStatus {
        let now = Instant::now();
        let flow = |m: &Mutex<RateMonitor>, messages: &AtomicU64, limit: &AtomicU64| {
            let mut m = m.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            m.tick(now);
            status::FlowStatus {
                bytes: m.total(),
                messages: messages.load(Ordering::Relaxed),
                cur_rate: m.cur_rate(),
                avg_rate: m.avg_rate(now),
                peak_rate: m.peak_rate(),
                limit: limit.load(Ordering::Relaxed),
            }
        };
        let s = &self.shared;
        status::ConnectionStatus {
            duration: now.saturating_duration_since(s.started),
            send: flow(&s.send_monitor, &s.msgs_sent, &s.send_rate),
            recv: flow(&s.recv_monitor, &s.msgs_recv, &s.recv_rate),
            channels: s
                .channels
                .iter()
                .map(|c| status::ChannelStatus {
                    id: c.desc.id,
                    priority: c.desc.priority,
                    send_queue_capacity: c.desc.send_queue_capacity,
                    send_queue_size: c.tx.max_capacity() - c.tx.capacity(),
                    recently_sent: c.recently_sent.load(Ordering::Relaxed),
                    recv_queue_bytes: c.recv_queue.queued_bytes(),
                })
                .collect(),
        }
    }
}

/// Loads the next queued message into every idle channel; returns whether any queue may still
/// deliver. (The handle keeps a sender, so a queue only ends once the write task closed it
/// for draining and it is empty with no send in progress, which `try_recv` reports as
/// disconnected.)
fn refill(sched: &mut Scheduler, rxs: &mut [mpsc::Receiver<Bytes>]) -> bool {
    let mut open = false;
    for (ch, rx) in sched.channels.iter_mut().zip(rxs.iter_mut()) {
        if ch.is_busy() {
            open = true;
            continue;
        }
        match rx.try_recv() {
            Ok(msg) => {
                ch.load(msg);
                open = true;
            }
            Err(mpsc::error::TryRecvError::Empty) => open = true,
            Err(mpsc::error::TryRecvError::Disconnected) => {}
        }
    }
    open
}

async fn write_loop<W: AsyncWrite + Unpin>(
    mut io: W,
    shared: &Shared,
    mut rxs: Vec<mpsc::Receiver<Bytes>>,
) -> Result<(), Error> {
    let cfg = &shared.config;
    let start = Instant::now();
    let mut sched = Scheduler::new(
        shared.channels.iter().map(|c| (c.desc.id, c.desc.priority)),
        cfg.max_packet_msg_payload_size,
        start,
    );
    let mut keepalive = Keepalive::new(cfg.ping_interval, cfg.pong_timeout, start);
    let mut bucket = TokenBucket::new(shared.send_rate.load(Ordering::Relaxed), start);
    // Allocated in full only while data flows (an idle connection keeps a few bytes).
    let mut buf = BytesMut::new();
    let max_wire = cfg.max_packet_size() + p2p_types::varint::MAX_VARINT_LEN;
    let mut last_flush: Option<Instant> = None;
    // When a flush last carried a pong, and whether a pong waits for the next flush.
    let mut last_pong_flush: Option<Instant> = None;
    let mut pong_waiting = false;
    // Bytes handed to `io` since its last flush.
    let mut unflushed = false;
    // A pong sits in `buf`: further pings are answered by it.
    let mut pong_in_buf = false;
    let mut draining = false;

    loop {
        let now = Instant::now();
        if !draining && shared.drain.is_cancelled() {
            draining = true;
            for rx in &mut rxs {
                rx.close();
            }
        }

        // Keepalive and pongs.
        let mut flush_now = draining;
        let mut control = 0;
        if shared.pong_seen.swap(false, Ordering::AcqRel) {
            keepalive.handle_pong();
        }
        while let Some(action) = keepalive.poll(now) {
            match action {
                KeepaliveAction::SendPing => {
                    buf.put_slice(&PING_BYTES);
                    control += PING_BYTES.len();
                    flush_now = true;
                }
                KeepaliveAction::TimedOut => {
                    return Err(Error::PongTimeout {
                        timeout: cfg.pong_timeout,
                    });
                }
            }
        }
        // A ping gets a pong, flushed at once (the peer's pong timeout may be shorter than our
        // flush throttle) unless a pong was flushed within the last flush throttle: then it
        // goes with the next flush. Pings arriving while a pong still waits in the buffer are
        // answered by that pong. So a peer flooding pings gets one pong and forces at most one
        // flush per throttle period.
        if shared.pong_due.swap(false, Ordering::AcqRel) && !pong_in_buf {
            buf.put_slice(&PONG_BYTES);
            control += PONG_BYTES.len();
            pong_in_buf = true;
            pong_waiting = true;
            if last_pong_flush.is_none_or(|t| now >= t + cfg.flush_throttle) {
                flush_now = true;
            }
        }
        sched.handle_timeout(now);
        bucket.set_rate(shared.send_rate.load(Ordering::Relaxed), now);

        // Data packets, until the buffer is full, nothing is queued, or the limit says wait.
        let mut limited_until = None;
        let mut data = 0;
        let mut open = true;
        while buf.len() < WRITE_BUFFER_SIZE {
            open = refill(&mut sched, &mut rxs);
            let Some(idx) = sched.pick() else { break };
            if let Some(at) = bucket.ready_at(now) {
                limited_until = Some(at);
                break;
            }
            if buf.capacity() < WRITE_BUFFER_SIZE {
                // Room for a last packet past the threshold, so the buffer never grows.
                buf.reserve(WRITE_BUFFER_SIZE + max_wire - buf.len());
            }
            let sent = sched.encode_next(idx, &mut buf);
            bucket.consume(sent.wire_len, now);
            data += sent.wire_len;
            shared.channels[idx]
                .recently_sent
                .store(sched.channels[idx].recently_sent, Ordering::Relaxed);
            if sent.eof {
                shared.msgs_sent.fetch_add(1, Ordering::Relaxed);
            }
        }
        if control + data > 0 {
            // Control packets count toward the rate (as in the reference) but never wait for it.
            bucket.consume(control, now);
            lock(&shared.send_monitor).update(control + data, now);
        }
        if sched.any_busy() {
            // Keep the per-channel figures fresh even while the decay runs.
            for (c, s) in shared.channels.iter().zip(&sched.channels) {
                c.recently_sent.store(s.recently_sent, Ordering::Relaxed);
            }
        }

        // Output.
        // More to send right away: a message in progress, or the buffer filled up before the
        // queues were looked at again.
        let more = limited_until.is_none() && (sched.any_busy() || buf.len() >= WRITE_BUFFER_SIZE);
        if buf.len() >= WRITE_BUFFER_SIZE {
            io.write_all(&buf).await?;
            buf.clear();
            unflushed = true;
            pong_in_buf = false;
        }
        let mut flush_at = None;
        if (unflushed || !buf.is_empty()) && (flush_now || !more) {
            let due = last_flush.map_or(now, |t| t + cfg.flush_throttle);
            if flush_now || now >= due {
                if !buf.is_empty() {
                    io.write_all(&buf).await?;
                    buf.clear();
                    pong_in_buf = false;
                }
                io.flush().await?;
                unflushed = false;
                last_flush = Some(Instant::now());
                if std::mem::take(&mut pong_waiting) {
                    last_pong_flush = last_flush;
                }
            } else {
                flush_at = Some(due);
            }
        }
        if more {
            continue;
        }
        if draining && !open && !sched.any_busy() && buf.is_empty() && !unflushed {
            // Everything accepted has been handed to the stream: the drain succeeded. Decide
            // that before closing, or the peer's reaction to the close (it closes too) could
            // reach the read task first and be taken for the end of the connection.
            shared.decide(Ok(()));
            io.shutdown().await?;
            return Ok(());
        }

        if buf.is_empty() && !sched.any_busy() && buf.capacity() > 1024 {
            // Going quiet: give the large buffer back.
            buf = BytesMut::new();
        }

        // Wait for work or a deadline.
        let mut deadline = keepalive.poll_timeout().min(sched.poll_timeout());
        for t in [flush_at, limited_until].into_iter().flatten() {
            deadline = deadline.min(t);
        }
        tokio::select! {
            () = shared.wake_writer.notified() => {}
            () = shared.drain.cancelled(), if !draining => {}
            () = sleep_until(deadline) => {}
        }
    }
}

async fn read_loop<R: AsyncRead + Unpin>(
    mut io: R,
    shared: &Shared,
    mut reassembly: Vec<Reassembly>,
    queues: Vec<QueueSender>,
) -> Result<(), Error> {
    let codec = PacketCodec::new(shared.config.max_packet_size());
    let mut buf = BytesMut::new();
    // Whether the last read filled the buffer: then reads are large.
    let mut streaming = false;
    let mut bucket = TokenBucket::new(shared.recv_rate.load(Ordering::Relaxed), Instant::now());
    // Bytes decoded but not yet counted by the monitor: without a limit, the monitor (and the
    // clock) are updated once per read rather than once per packet.
    let mut uncounted = 0;
    loop {
        // The receive limit: wait before taking the next packet.
        loop {
            let rate = shared.recv_rate.load(Ordering::Relaxed);
            if rate == 0 && bucket.rate() == 0 {
                break;
            }
            let now = Instant::now();
            bucket.set_rate(rate, now);
            let Some(at) = bucket.ready_at(now) else {
                break;
            };
            tokio::select! {
                () = sleep_until(at) => {}
                () = shared.recv_rate_changed.notified() => {}
            }
        }

        let (prefix, len) = loop {
            if let Some(frame) = codec.frame(&buf)? {
                break frame;
            }
            if uncounted > 0 {
                lock(&shared.recv_monitor).update(std::mem::take(&mut uncounted), Instant::now());
            }
            let size = if streaming { READ_CHUNK } else { SMALL_READ };
            if buf.is_empty() && buf.capacity() > 2 * size {
                // Quiet again: give the large buffer back.
                buf = BytesMut::new();
            }
            if buf.capacity() - buf.len() < size / 4 {
                buf.reserve(size);
            }
            let spare = buf.capacity() - buf.len();
            let n = io.read_buf(&mut buf).await?;
            if n == 0 {
                return Err(if buf.is_empty() {
                    Error::ClosedByPeer
                } else {
                    Error::UnexpectedEof
                });
            }
            streaming = n == spare;
        };
        let wire_len = prefix + len;
        if bucket.rate() == 0 {
            uncounted += wire_len;
        } else {
            let now = Instant::now();
            bucket.consume(wire_len, now);
            lock(&shared.recv_monitor).update(wire_len, now);
        }

        // Handle the packet where it lies in the buffer; only a completed message is copied out.
        let delivered = {
            let body = &buf[prefix..wire_len];
            let general;
            let packet = match parse_canonical(body) {
                Some(view) => view,
                None => {
                    general = Packet::decode_body(Bytes::copy_from_slice(body))?;
                    general.view()
                }
            };
            match packet {
                PacketView::Ping => {
                    shared.pong_due.store(true, Ordering::Release);
                    shared.wake_writer.notify_one();
                    None
                }
                PacketView::Pong => {
                    shared.pong_seen.store(true, Ordering::Release);
                    shared.wake_writer.notify_one();
                    None
                }
                PacketView::Msg {
                    channel_id,
                    eof,
                    data,
                } => {
                    let idx = u8::try_from(channel_id)
                        .ok()
                        .and_then(|id| shared.index[usize::from(id)])
                        .map(usize::from)
                        .ok_or(Error::UnknownChannel {
                            channel: channel_id,
                        })?;
                    reassembly[idx].push(data, eof)?.map(|msg| (idx, msg))
                }
            }
        };
        buf.advance(wire_len);
        if let Some((idx, msg)) = delivered {
            queues[idx].push(msg).await?;
            shared.msgs_recv.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
