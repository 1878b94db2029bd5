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
//! direction. A full receive queue pauses the read task only. The write task is a thin shell
//! around the IO-free [`WriteCore`]: it races every write and flush against the core's
//! deadline, so a write that never completes still ends in a verdict.

use bytes::{Buf, Bytes, BytesMut};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::config::{ChannelDescriptor, MConnConfig, validate_channels};
use crate::keepalive::ReaderClock;
use crate::limiter::{RateMonitor, TokenBucket};
use crate::packet::{Packet, PacketCodec, PacketView, parse_canonical};
use crate::recv::{QueueGauge, QueueSender, Reassembly, Receivers, queue};
use crate::scheduler::Scheduler;
use crate::write::{Pull, Source, Transmit, WriteCore, WriteSettings};
use crate::{Error, SendError, SendFailure, status};
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
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use p2p_mconn::{ChannelDescriptor, MConnConfig, MConnection};
///
/// let (a, b) = tokio::io::duplex(64 * 1024);
/// let channels = [ChannelDescriptor::new(0x01, 1), ChannelDescriptor::new(0x02, 5)];
/// let (conn_a, _rx_a) = MConnection::spawn_stream(a, &channels, MConnConfig::default())?;
/// let (conn_b, mut rx_b) = MConnection::spawn_stream(b, &channels, MConnConfig::default())?;
/// let mut hello = rx_b.take(0x02).unwrap();
///
/// conn_a.send(0x02, &b"hello"[..]).await?;
/// assert_eq!(hello.recv().await.unwrap(), &b"hello"[..]);
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
        // No handle is left to carry traffic.
        self.0.release_attachments();
    }
}

/// A connection's identity, unique in the process (a counter from 1), for logs, metrics and
/// telling connections to the same peer apart. It is in the tracing span of both tasks of
/// the connection (`mconn{conn=7}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(u64);

impl ConnectionId {
    fn next() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Self(NEXT.fetch_add(1, Ordering::Relaxed))
    }

    /// The number.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl std::fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A value kept alive by a connection (see [`MConnection::attach`]).
type Attachment = Box<dyn std::any::Any + Send + Sync>;

/// What the handles can watch of the tasks.
#[derive(Debug)]
struct State {
    /// How the connection ended (the first outcome recorded).
    outcome: Option<Result<(), Error>>,
    /// Tasks not finished yet (read and write).
    tasks: u8,
}

/// Owned by each task (moved into its future before it first runs). However the task ends,
/// by returning, by panicking, or by being dropped unfinished (its runtime shut down), the
/// guard's drop records an outcome, stops the other task, and counts the task as finished.
#[derive(Debug)]
struct TaskGuard {
    shared: Arc<Shared>,
    task: &'static str,
    finished: bool,
}

impl TaskGuard {
    fn new(shared: &Arc<Shared>, task: &'static str) -> Self {
        Self {
            shared: Arc::clone(shared),
            task,
            finished: false,
        }
    }

    /// The task returned with `result`.
    fn done(mut self, result: Result<(), Error>) {
        self.shared.finish(result);
        self.finished = true;
    }
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        if !self.finished {
            let task = self.task;
            self.shared.finish(Err(if std::thread::panicking() {
                Error::TaskPanicked { task }
            } else {
                Error::TaskAborted { task }
            }));
        }
        if self.shared.running.fetch_sub(1, Ordering::AcqRel) == 1 {
            // The last task: the connection has really ended. Release what was attached to
            // it before `closed` can return.
            self.shared.release_attachments();
        }
        self.shared.state.send_modify(|st| {
            st.tasks = st.tasks.saturating_sub(1);
        });
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
    id: ConnectionId,
    config: MConnConfig,
    channels: Vec<ChannelShared>,
    /// Channel ID → index in `channels`.
    index: [Option<u8>; 256],
    /// Wakes the write task: something was queued.
    wake_writer: Notify,
    /// Wakes the write task even while a write is pending: a ping or pong arrived, a rate
    /// changed, a drain was asked for.
    wake_control: Notify,
    /// The peer pinged; a pong is due.
    pong_due: AtomicBool,
    /// The peer answered our ping.
    pong_seen: AtomicBool,
    send_rate: AtomicU64,
    recv_rate: AtomicU64,
    recv_rate_changed: Notify,
    /// The read side's pauses (full receive queues), for the keepalive; changed rarely, and
    /// `reader_epoch` counts the changes so that the write task looks only then.
    reader_clock: Mutex<ReaderClock>,
    reader_epoch: AtomicU64,
    /// Stops both tasks at once.
    cancel: CancellationToken,
    /// Asks the write task to send what is queued, then close.
    drain: CancellationToken,
    /// Set by `finish` and `flush_stop`: no more sends are accepted (cheaper to read than the
    /// tokens).
    ended: AtomicBool,
    /// How the connection ended, and how many of its tasks still run.
    state: watch::Sender<State>,
    /// Tasks still running (decides which task is the last one).
    running: std::sync::atomic::AtomicU8,
    /// Values dropped when the connection has ended; `None` once it has.
    attachments: Mutex<Option<Vec<Attachment>>>,
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
        let first = self.state.send_if_modified(|st| {
            if st.outcome.is_none() {
                st.outcome = Some(result.clone());
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

    fn channel(&self, id: u8) -> Option<&ChannelShared> {
        self.index[usize::from(id)].and_then(|i| self.channels.get(usize::from(i)))
    }

    /// Drops what was attached to the connection; later attachments are dropped at once.
    fn release_attachments(&self) {
        let attached = lock(&self.attachments).take();
        drop(attached);
    }

    /// The read task stopped reading: a receive queue is full.
    fn reader_paused(&self, now: Instant) {
        lock(&self.reader_clock).paused_since = Some(now);
        self.reader_epoch.fetch_add(1, Ordering::Release);
        self.wake_control.notify_one();
    }

    /// The read task reads again.
    fn reader_resumed(&self, now: Instant) {
        {
            let mut clock = lock(&self.reader_clock);
            if let Some(since) = clock.paused_since.take() {
                clock.paused_total += now.saturating_duration_since(since);
            }
        }
        self.reader_epoch.fetch_add(1, Ordering::Release);
        self.wake_control.notify_one();
    }

    fn is_ended(&self) -> bool {
        self.ended.load(Ordering::Acquire)
    }
}

impl MConnection {
    /// Starts a connection over a stream's read and write halves, with the given channels (in
    /// registration order, which breaks ties between equally loaded channels) and settings.
    ///
    /// Returns the handle and the [`Receivers`], one [`ChannelReceiver`](crate::ChannelReceiver) per channel,
    /// addressed by channel ID.
    /// Must be called within a tokio runtime. Fails if the configuration or the channel list is
    /// invalid (see [`MConnConfig::validate`]; priorities must be positive and IDs unique).
    pub fn spawn<R, W>(
        reader: R,
        writer: W,
        channels: &[ChannelDescriptor],
        config: MConnConfig,
    ) -> Result<(Self, Receivers), Error>
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
        let id = ConnectionId::next();
        let shared = Arc::new(Shared {
            id,
            running: std::sync::atomic::AtomicU8::new(2),
            attachments: Mutex::new(Some(Vec::new())),
            send_rate: AtomicU64::new(config.send_rate),
            recv_rate: AtomicU64::new(config.recv_rate),
            config,
            channels: shared_channels,
            index,
            wake_writer: Notify::new(),
            wake_control: Notify::new(),
            pong_due: AtomicBool::new(false),
            pong_seen: AtomicBool::new(false),
            recv_rate_changed: Notify::new(),
            reader_clock: Mutex::new(ReaderClock::default()),
            reader_epoch: AtomicU64::new(0),
            cancel: CancellationToken::new(),
            drain: CancellationToken::new(),
            ended: AtomicBool::new(false),
            state: watch::Sender::new(State {
                outcome: None,
                tasks: 2,
            }),
            started: now,
            send_monitor: Mutex::new(RateMonitor::new(now)),
            recv_monitor: Mutex::new(RateMonitor::new(now)),
            msgs_sent: AtomicU64::new(0),
            msgs_recv: AtomicU64::new(0),
        });

        let guard = TaskGuard::new(&shared, "write");
        let span = tracing::debug_span!("mconn", conn = %id, task = "write");
        runtime.spawn(
            async move {
                let s = Arc::clone(&guard.shared);
                let result = tokio::select! {
                    r = write_loop(writer, &s, send_rxs) => r,
                    () = s.cancel.cancelled() => Ok(()),
                };
                guard.done(result);
            }
            .instrument(span),
        );
        let guard = TaskGuard::new(&shared, "read");
        let span = tracing::debug_span!("mconn", conn = %id, task = "read");
        runtime.spawn(
            async move {
                let s = Arc::clone(&guard.shared);
                let result = tokio::select! {
                    r = read_loop(reader, &s, reassembly, queue_txs) => r,
                    () = s.cancel.cancelled() => Ok(()),
                };
                guard.done(result);
            }
            .instrument(span),
        );

        let owner = Arc::new(Owner(Arc::clone(&shared)));
        Ok((
            Self {
                shared,
                _owner: owner,
            },
            Receivers::new(receivers),
        ))
    }

    /// Like [`spawn`](Self::spawn) for a stream that is not split into halves (it is split with
    /// `tokio::io::split`, which costs a lock per operation; prefer `spawn` with the stream's
    /// own halves where it has them, e.g. `SecretStream::split_with(TcpStream::into_split)`).
    pub fn spawn_stream<S>(
        stream: S,
        channels: &[ChannelDescriptor],
        config: MConnConfig,
    ) -> Result<(Self, Receivers), Error>
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
    /// valid. On failure the message comes back in the [`SendError`], with the reason: no such
    /// channel, the send timeout, or the connection closed (whose cause
    /// [`closed`](Self::closed) tells).
    pub async fn send(&self, channel: u8, msg: impl Into<Bytes>) -> Result<(), SendError> {
        let msg = msg.into();
        let Some(ch) = self.shared.channel(channel) else {
            return Err(SendError::new(msg, SendFailure::NoSuchChannel { channel }));
        };
        if self.shared.is_ended() {
            return Err(SendError::new(msg, SendFailure::Closed));
        }
        // Without a timer when there is room (the common case).
        let msg = match ch.tx.try_send(msg) {
            Ok(()) => {
                self.shared.wake_writer.notify_one();
                return Ok(());
            }
            Err(mpsc::error::TrySendError::Full(msg)) => msg,
            Err(mpsc::error::TrySendError::Closed(msg)) => {
                return Err(SendError::new(msg, SendFailure::Closed));
            }
        };
        let timeout = self.shared.config.send_timeout;
        match ch.tx.send_timeout(msg, timeout).await {
            Ok(()) => {
                self.shared.wake_writer.notify_one();
                Ok(())
            }
            Err(mpsc::error::SendTimeoutError::Timeout(msg)) => Err(SendError::new(
                msg,
                SendFailure::Timeout { channel, timeout },
            )),
            Err(mpsc::error::SendTimeoutError::Closed(msg)) => {
                Err(SendError::new(msg, SendFailure::Closed))
            }
        }
    }

    /// Queues `msg` on `channel` if there is room right now; never waits. On failure the
    /// message comes back in the [`SendError`], with the reason: no such channel, the queue
    /// full, or the connection closed.
    pub fn try_send(&self, channel: u8, msg: impl Into<Bytes>) -> Result<(), SendError> {
        let msg = msg.into();
        let Some(ch) = self.shared.channel(channel) else {
            return Err(SendError::new(msg, SendFailure::NoSuchChannel { channel }));
        };
        if self.shared.is_ended() {
            return Err(SendError::new(msg, SendFailure::Closed));
        }
        match ch.tx.try_send(msg) {
            Ok(()) => {
                self.shared.wake_writer.notify_one();
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(msg)) => {
                Err(SendError::new(msg, SendFailure::QueueFull { channel }))
            }
            Err(mpsc::error::TrySendError::Closed(msg)) => {
                Err(SendError::new(msg, SendFailure::Closed))
            }
        }
    }

    /// This connection's identity, unique in the process.
    pub fn id(&self) -> ConnectionId {
        self.shared.id
    }

    /// Keeps `value` alive until the connection can carry no more traffic, then drops it: when
    /// [`stop`](Self::stop) is called or the last handle is dropped (at once), or else when
    /// both tasks of the connection have finished (after a failure, a completed
    /// [`flush_stop`](Self::flush_stop), a panic, a runtime shutdown); at once if that has
    /// happened already. This is where to hang what must be released with the connection (an
    /// entry in a connection set, a slot of an incoming limit): it stays as long as any clone
    /// of the handle keeps the connection running, not just as long as the struct that
    /// attached it, and it is released by the time [`closed`](Self::closed) returns.
    pub fn attach(&self, value: impl Send + Sync + 'static) {
        let value: Attachment = Box::new(value);
        let mut attachments = lock(&self.shared.attachments);
        match attachments.as_mut() {
            Some(list) => list.push(value),
            None => {
                drop(attachments);
                drop(value);
            }
        }
    }

    /// Whether `channel` exists and its send queue has room.
    pub fn can_send(&self, channel: u8) -> bool {
        !self.shared.is_ended()
            && self
                .shared
                .channel(channel)
                .is_some_and(|ch| ch.tx.capacity() > 0)
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
        self.shared.wake_control.notify_one();
    }

    /// Changes the receive rate limit (bytes per second, 0 = unlimited) from now on.
    pub fn set_recv_rate(&self, bytes_per_sec: u64) {
        self.shared
            .recv_rate
            .store(bytes_per_sec, Ordering::Relaxed);
        self.shared.recv_rate_changed.notify_one();
    }

    /// Ends the connection at once: queued messages are dropped, the stream is closed, and
    /// what was [attached](Self::attach) is dropped before this returns.
    /// [`closed`](Self::closed) then returns `Ok(())` (unless the connection had already
    /// failed).
    pub fn stop(&self) {
        self.shared.finish(Ok(()));
        // Nothing is sent or delivered after this: what was attached goes now.
        self.shared.release_attachments();
    }

    /// Stops accepting messages, sends every message already accepted by `send`/`try_send`
    /// (still within the send rate), flushes, closes the stream, and returns how the connection
    /// ended: `Ok(())`, or the error that ended it first.
    ///
    /// This waits for the peer to take the data. A peer that stops reading makes it fail
    /// with [`Error::WriteStalled`] within about `ping_interval + pong_timeout`; wrap it in a
    /// shorter timeout and call [`stop`](Self::stop) to give up sooner.
    pub async fn flush_stop(&self) -> Result<(), Error> {
        self.shared.ended.store(true, Ordering::Release);
        self.shared.drain.cancel();
        self.shared.wake_control.notify_one();
        self.closed().await
    }

    /// Waits until the connection has ended and returns how: `Ok(())` after
    /// [`stop`](Self::stop) or a completed [`flush_stop`](Self::flush_stop), otherwise the one
    /// error that ended it (the first failure; later consequences of it are not reported).
    /// Every caller gets the same answer.
    ///
    /// It returns once both tasks of the connection have finished, so the stream has been
    /// dropped by then. If a task panics or is dropped (its runtime shut down), the connection
    /// ends with [`Error::TaskPanicked`] or [`Error::TaskAborted`]: it never stays half alive.
    pub async fn closed(&self) -> Result<(), Error> {
        let mut rx = self.shared.state.subscribe();
        match rx.wait_for(|st| st.tasks == 0).await {
            Ok(st) => st.outcome.clone().unwrap_or(Err(Error::Closed)),
            // The sender lives in `shared`, which we hold: unreachable, but not worth a panic.
            Err(_) => Err(Error::Closed),
        }
    }

    /// How the connection ended, or `None` while it is running. (It may be `Some` slightly
    /// before [`closed`](Self::closed) returns: the tasks are finishing.)
    pub fn outcome(&self) -> Option<Result<(), Error>> {
        self.shared.state.borrow().outcome.clone()
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

/// The send queues as the write core sees them.
struct Queues<'a>(&'a mut [mpsc::Receiver<Bytes>]);

impl Source for Queues<'_> {
    /// (The handle keeps a sender, so a queue only ends once the write task closed it for
    /// draining and it is empty with no send in progress, which `try_recv` reports as
    /// disconnected.)
    fn pull(&mut self, idx: usize) -> Pull {
        match self.0.get_mut(idx).map(mpsc::Receiver::try_recv) {
            Some(Ok(msg)) => Pull::Msg(msg),
            Some(Err(mpsc::error::TryRecvError::Empty)) => Pull::Empty,
            Some(Err(mpsc::error::TryRecvError::Disconnected)) | None => Pull::Closed,
        }
    }
}

/// The write task: feeds events to the [`WriteCore`] and carries out what it asks, racing
/// every write and flush against the core's deadline (so a peer that stops reading cannot
/// stop the keepalive) and against control events (a pong, a ping, a drain request).
async fn write_loop<W: AsyncWrite + Unpin>(
    mut io: W,
    shared: &Shared,
    mut rxs: Vec<mpsc::Receiver<Bytes>>,
) -> Result<(), Error> {
    let cfg = &shared.config;
    let start = Instant::now();
    let sched = Scheduler::new(
        shared.channels.iter().map(|c| (c.desc.id, c.desc.priority)),
        cfg.max_packet_msg_payload_size,
        start,
    );
    let settings = WriteSettings {
        flush_throttle: cfg.flush_throttle,
        ping_interval: cfg.ping_interval,
        pong_timeout: cfg.pong_timeout,
        send_rate: shared.send_rate.load(Ordering::Relaxed),
        max_wire: cfg.max_packet_size() + p2p_types::varint::MAX_VARINT_LEN,
    };
    let mut core = WriteCore::new(&settings, sched, start);
    let mut draining = false;
    let mut reader_epoch = 0;

    loop {
        let now = Instant::now();
        // Events.
        if !draining && shared.drain.is_cancelled() {
            draining = true;
            for rx in &mut rxs {
                rx.close();
            }
            core.handle_drain();
        }
        if shared.pong_seen.swap(false, Ordering::AcqRel) {
            core.handle_pong();
        }
        if shared.pong_due.swap(false, Ordering::AcqRel) {
            core.handle_ping(now);
        }
        core.set_send_rate(shared.send_rate.load(Ordering::Relaxed), now);
        let epoch = shared.reader_epoch.load(Ordering::Acquire);
        if epoch != reader_epoch {
            reader_epoch = epoch;
            core.set_reader_clock(*lock(&shared.reader_clock));
        }
        core.handle_timeout(now)?;

        let transmit = core.poll_transmit(now, &mut Queues(&mut rxs));
        publish(shared, &mut core, now);
        let deadline = core.poll_timeout(now);

        match transmit {
            Some(Transmit::Write) => {
                // Whether the stream was not ready at once (see `handle_written`).
                let mut waited = false;
                let pending = core.pending();
                let write = std::future::poll_fn(|cx| {
                    let r = Pin::new(&mut io).poll_write(cx, pending);
                    waited |= r.is_pending();
                    r
                });
                let written = tokio::select! {
                    biased;
                    r = write => Some(r?),
                    () = shared.wake_control.notified() => None,
                    () = sleep_until(deadline) => None,
                };
                match written {
                    Some(0) => return Err(io::Error::from(io::ErrorKind::WriteZero).into()),
                    Some(n) => core.handle_written(n, waited, Instant::now()),
                    // Left unfinished for something more urgent, after the stream made it wait.
                    None if waited => core.handle_pushback(Instant::now()),
                    None => {}
                }
            }
            Some(Transmit::Flush) => tokio::select! {
                biased;
                r = io.flush() => {
                    r?;
                    core.handle_flushed(Instant::now());
                }
                () = shared.wake_control.notified() => {}
                () = sleep_until(deadline) => {}
            },
            Some(Transmit::Shutdown) => {
                // Everything accepted has been handed to the stream: the drain succeeded.
                // Decide that before closing, or the peer's reaction to the close (it closes
                // too) could reach the read task first and be taken for the end of the
                // connection.
                shared.decide(Ok(()));
                tokio::select! {
                    biased;
                    r = io.shutdown() => {
                        r?;
                        return Ok(());
                    }
                    () = shared.wake_control.notified() => {}
                    () = sleep_until(deadline) => {}
                }
            }
            None => tokio::select! {
                () = shared.wake_writer.notified() => {}
                () = shared.wake_control.notified() => {}
                () = shared.drain.cancelled(), if !draining => {}
                () = sleep_until(deadline) => {}
            },
        }
    }
}

/// Publishes the write core's counters to the handle.
fn publish(shared: &Shared, core: &mut WriteCore, now: Instant) {
    let stats = core.take_stats();
    if stats.bytes > 0 {
        lock(&shared.send_monitor).update(stats.bytes, now);
        shared
            .msgs_sent
            .fetch_add(stats.messages, Ordering::Relaxed);
    }
    if stats.bytes > 0 || core.sched.any_busy() {
        // Keep the per-channel figures fresh even while the decay runs.
        for (c, s) in shared.channels.iter().zip(&core.sched.channels) {
            c.recently_sent.store(s.recently_sent, Ordering::Relaxed);
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
            let n = io.read_buf(&mut buf).await.map_err(Error::from_read)?;
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
                    shared.wake_control.notify_one();
                    None
                }
                PacketView::Pong => {
                    shared.pong_seen.store(true, Ordering::Release);
                    shared.wake_control.notify_one();
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
            if let Err(msg) = queues[idx].try_push(msg)? {
                deliver_when_room(shared, &queues[idx], msg).await?;
            }
            shared.msgs_recv.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Waits for room in a full receive queue, with the read side marked paused meanwhile (the
/// keepalive does not count that time: the peer's pong may be waiting behind). A pause longer
/// than the pong timeout ends the connection with [`Error::ReceiverStalled`]: by then the peer
/// has given up on our pongs too, and the fault is ours, not the peer's.
async fn deliver_when_room(shared: &Shared, queue: &QueueSender, msg: Bytes) -> Result<(), Error> {
    let limit = shared.config.pong_timeout;
    shared.reader_paused(Instant::now());
    let result = tokio::time::timeout(limit, queue.push(msg)).await;
    shared.reader_resumed(Instant::now());
    result.map_err(|_| Error::ReceiverStalled {
        channel: queue.channel(),
        waited: limit,
    })?
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
