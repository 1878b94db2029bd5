//! The shaped in-memory pipe under every [`MemoryNetwork`](crate::memory::MemoryNetwork)
//! connection: a duplex byte stream whose two directions are bounded buffers on tokio's
//! clock.
//!
//! Each direction works like one side of a TCP connection seen from the applications:
//!
//! - **Bounded**: at most [`LinkConfig::capacity`] bytes may be written and not yet read; a
//!   writer then waits (`Pending`) until the reader takes some. Backpressure is real: a
//!   reader that stops reading stops the writer.
//! - **Bandwidth**: with a cap of `B` bytes per second, writes are cut into segments of up to
//!   [`SEGMENT`] bytes, each taking `len / B` seconds to "transmit", one after another.
//! - **Latency and jitter**: a segment becomes readable `latency` plus a uniform random extra
//!   of up to `jitter` after its transmission ends, never before an earlier segment (bytes
//!   stay in order). The extra is drawn from a generator seeded per connection and
//!   direction, so it is the same in every run with the same seed.
//! - **Held**: while the direction is partitioned or its reader is stalled, nothing is
//!   readable (not even the end of the stream); the bytes wait, and flow again when the fault
//!   is lifted.
//! - **Reset**: both ends' reads and writes fail with `ConnectionReset`; buffered bytes are
//!   dropped.
//! - **Close**: dropping or shutting down a writer lets the reader read what was sent, then
//!   end of stream; dropping a reader makes the writer fail with `BrokenPipe`.
//!
//! Readable time is tokio's: under a paused clock a 50 ms latency takes 50 ms of virtual time
//! and no wall time. Tokio's timers have millisecond resolution, so a segment due between two
//! milliseconds is read at the later one.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::{Buf as _, Bytes};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt as _, SeedableRng as _};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use crate::trace::{Event, Trace, Way};

/// The largest segment a shaped write is cut into (a typical TCP segment's payload), so that
/// a slow link delivers a large write bit by bit rather than all at its end.
pub const SEGMENT: usize = 1460;

/// How one direction of a link between two hosts behaves. `Default`: no latency, no jitter,
/// no bandwidth cap, and the network's pipe capacity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LinkConfig {
    /// Fixed delay before written bytes become readable.
    pub latency: Duration,
    /// Upper bound of a uniform random extra delay per segment (in order: a later segment
    /// never overtakes an earlier one).
    pub jitter: Duration,
    /// Bytes per second; `None` for no cap.
    pub bandwidth: Option<u64>,
    /// Bytes written and not yet read before a writer must wait; `None` for the network's
    /// pipe capacity.
    pub capacity: Option<usize>,
}

impl LinkConfig {
    /// Sets the latency.
    pub fn latency(&mut self, latency: Duration) -> &mut Self {
        self.latency = latency;
        self
    }

    /// Sets the jitter.
    pub fn jitter(&mut self, jitter: Duration) -> &mut Self {
        self.jitter = jitter;
        self
    }

    /// Sets the bandwidth cap in bytes per second (`None` or 0: no cap).
    pub fn bandwidth(&mut self, bytes_per_sec: Option<u64>) -> &mut Self {
        self.bandwidth = bytes_per_sec.filter(|&b| b > 0);
        self
    }

    /// Sets the buffer capacity in bytes (at least 1).
    pub fn capacity(&mut self, bytes: Option<usize>) -> &mut Self {
        self.capacity = bytes.map(|b| b.max(1));
        self
    }

    fn is_instant(&self) -> bool {
        self.latency.is_zero() && self.jitter.is_zero() && self.bandwidth.is_none()
    }
}

impl fmt::Display for LinkConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "latency {:?} jitter {:?}", self.latency, self.jitter)?;
        match self.bandwidth {
            Some(b) => write!(f, " bandwidth {b} B/s")?,
            None => write!(f, " bandwidth unlimited")?,
        }
        match self.capacity {
            Some(c) => write!(f, " capacity {c} B"),
            None => write!(f, " capacity default"),
        }
    }
}

struct Segment {
    data: Bytes,
    ready_at: Instant,
}

/// One direction of a connection, shared by its writer and its reader.
pub(crate) struct Half {
    conn: u64,
    way: Way,
    trace: Option<Trace>,
    state: Mutex<HalfState>,
}

struct HalfState {
    segments: VecDeque<Segment>,
    buffered: usize,
    shape: LinkConfig,
    capacity: usize,
    rng: Xoshiro256PlusPlus,
    /// When the link finishes transmitting what was written so far (bandwidth).
    tx_free: Option<Instant>,
    /// When the last segment becomes readable (order).
    last_ready: Option<Instant>,
    partitioned: bool,
    stalled: bool,
    reset: bool,
    write_closed: bool,
    read_closed: bool,
    read_waker: Option<Waker>,
    write_waker: Option<Waker>,
}

impl HalfState {
    fn wake_reader(&mut self) {
        if let Some(w) = self.read_waker.take() {
            w.wake();
        }
    }

    fn wake_writer(&mut self) {
        if let Some(w) = self.write_waker.take() {
            w.wake();
        }
    }

    fn wake_both(&mut self) {
        self.wake_reader();
        self.wake_writer();
    }

    fn held(&self) -> bool {
        self.partitioned || self.stalled
    }

    fn push(&mut self, data: &[u8], now: Instant) {
        if self.shape.is_instant() {
            let ready_at = self.last_ready.map_or(now, |last| last.max(now));
            self.last_ready = Some(ready_at);
            self.segments.push_back(Segment {
                data: Bytes::copy_from_slice(data),
                ready_at,
            });
            return;
        }
        for chunk in data.chunks(SEGMENT) {
            let start = self.tx_free.map_or(now, |free| free.max(now));
            let done = match self.shape.bandwidth {
                Some(bw) => {
                    let nanos = (chunk.len() as u128 * 1_000_000_000).div_ceil(u128::from(bw));
                    start + Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
                }
                None => start,
            };
            self.tx_free = Some(done);
            let jitter_nanos = u64::try_from(self.shape.jitter.as_nanos()).unwrap_or(u64::MAX);
            let extra = if jitter_nanos == 0 {
                Duration::ZERO
            } else {
                Duration::from_nanos(self.rng.random_range(0..=jitter_nanos))
            };
            let arrive = done + self.shape.latency + extra;
            let ready_at = self.last_ready.map_or(arrive, |last| last.max(arrive));
            self.last_ready = Some(ready_at);
            self.segments.push_back(Segment {
                data: Bytes::copy_from_slice(chunk),
                ready_at,
            });
        }
    }
}

impl Half {
    pub(crate) fn new(
        conn: u64,
        way: Way,
        shape: LinkConfig,
        default_capacity: usize,
        seed: u64,
        trace: Option<Trace>,
    ) -> Arc<Self> {
        Arc::new(Self {
            conn,
            way,
            trace,
            state: Mutex::new(HalfState {
                segments: VecDeque::new(),
                buffered: 0,
                capacity: shape.capacity.unwrap_or(default_capacity).max(1),
                shape,
                rng: Xoshiro256PlusPlus::seed_from_u64(seed),
                tx_free: None,
                last_ready: None,
                partitioned: false,
                stalled: false,
                reset: false,
                write_closed: false,
                read_closed: false,
                read_waker: None,
                write_waker: None,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, HalfState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies a new shape to bytes written from now on (and a new capacity at once).
    pub(crate) fn set_shape(&self, shape: LinkConfig, default_capacity: usize) {
        let mut st = self.lock();
        st.shape = shape;
        st.capacity = shape.capacity.unwrap_or(default_capacity).max(1);
        // More room may let a waiting writer go on.
        st.wake_writer();
    }

    /// Sets whether the direction is held by a partition or a stalled reader.
    pub(crate) fn set_held(&self, partitioned: bool, stalled: bool) {
        let mut st = self.lock();
        let was = st.held();
        st.partitioned = partitioned;
        st.stalled = stalled;
        if was && !st.held() {
            st.wake_reader();
        }
    }

    /// Resets the direction: both ends fail from now on. Returns whether it was live.
    pub(crate) fn reset(&self) -> bool {
        let mut st = self.lock();
        let gone = st.read_closed && st.write_closed;
        let live = !st.reset && !gone;
        st.reset = true;
        st.segments.clear();
        st.buffered = 0;
        st.wake_both();
        live
    }

    fn close_write(&self) {
        let mut st = self.lock();
        if st.write_closed {
            return;
        }
        st.write_closed = true;
        let reset = st.reset;
        st.wake_reader();
        drop(st);
        if !reset && let Some(t) = &self.trace {
            t.record(Event::Close {
                conn: self.conn,
                way: self.way,
            });
        }
    }

    fn close_read(&self) {
        let mut st = self.lock();
        st.read_closed = true;
        st.segments.clear();
        st.buffered = 0;
        st.wake_writer();
    }
}

fn reset_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionReset,
        "connection reset (fault injected by the memory network)",
    )
}

fn broken_pipe() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the peer closed its end")
}

/// The reading half of a [`MemoryStream`] (see [`MemoryStream::into_split`]).
pub struct MemoryReadHalf {
    half: Arc<Half>,
    sleep: Option<Pin<Box<Sleep>>>,
    local: SocketAddr,
    peer: SocketAddr,
}

/// The writing half of a [`MemoryStream`] (see [`MemoryStream::into_split`]).
pub struct MemoryWriteHalf {
    half: Arc<Half>,
    local: SocketAddr,
    peer: SocketAddr,
}

/// One end of an in-memory connection (see the [module docs](self) for how it behaves).
/// Reads and writes of the two directions are independent; [`into_split`](Self::into_split)
/// gives owned halves without a lock between them.
pub struct MemoryStream {
    read: MemoryReadHalf,
    write: MemoryWriteHalf,
}

impl fmt::Debug for MemoryStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStream")
            .field("conn", &self.read.half.conn)
            .field("local", &self.read.local)
            .field("peer", &self.read.peer)
            .finish()
    }
}

impl fmt::Debug for MemoryReadHalf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryReadHalf")
            .field("conn", &self.half.conn)
            .field("local", &self.local)
            .field("peer", &self.peer)
            .finish()
    }
}

impl fmt::Debug for MemoryWriteHalf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryWriteHalf")
            .field("conn", &self.half.conn)
            .field("local", &self.local)
            .field("peer", &self.peer)
            .finish()
    }
}

impl MemoryStream {
    /// The end that reads `incoming` and writes `outgoing`.
    pub(crate) fn new(
        incoming: Arc<Half>,
        outgoing: Arc<Half>,
        local: SocketAddr,
        peer: SocketAddr,
    ) -> Self {
        Self {
            read: MemoryReadHalf {
                half: incoming,
                sleep: None,
                local,
                peer,
            },
            write: MemoryWriteHalf {
                half: outgoing,
                local,
                peer,
            },
        }
    }

    /// Our address.
    pub fn local_addr(&self) -> SocketAddr {
        self.read.local
    }

    /// The other end's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.read.peer
    }

    /// The connection's number in its network (as in the trace).
    pub fn conn(&self) -> u64 {
        self.read.half.conn
    }

    /// Owned read and write halves.
    pub fn into_split(self) -> (MemoryReadHalf, MemoryWriteHalf) {
        (self.read, self.write)
    }
}

impl AsyncRead for MemoryReadHalf {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            let now = Instant::now();
            let mut st = this.half.lock();
            if st.reset {
                return Poll::Ready(Err(reset_error()));
            }
            if buf.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            if !st.held() {
                match st.segments.front() {
                    Some(head) if head.ready_at <= now => {
                        let start = buf.filled().len();
                        while buf.remaining() > 0 {
                            let Some(seg) = st.segments.front_mut() else {
                                break;
                            };
                            if seg.ready_at > now {
                                break;
                            }
                            let k = seg.data.len().min(buf.remaining());
                            buf.put_slice(seg.data.get(..k).unwrap_or_default());
                            seg.data.advance(k);
                            if seg.data.is_empty() {
                                st.segments.pop_front();
                            }
                        }
                        let delivered = buf.filled().get(start..).unwrap_or_default();
                        st.buffered = st.buffered.saturating_sub(delivered.len());
                        st.wake_writer();
                        drop(st);
                        if let Some(t) = &this.half.trace {
                            t.record_with(
                                Event::Deliver {
                                    conn: this.half.conn,
                                    way: this.half.way,
                                    len: delivered.len(),
                                },
                                delivered,
                            );
                        }
                        return Poll::Ready(Ok(()));
                    }
                    Some(head) => {
                        let at = head.ready_at;
                        st.read_waker = Some(cx.waker().clone());
                        drop(st);
                        let sleep = match &mut this.sleep {
                            Some(s) => {
                                s.as_mut().reset(at);
                                s
                            }
                            none => none.insert(Box::pin(tokio::time::sleep_until(at))),
                        };
                        if sleep.as_mut().poll(cx).is_ready() {
                            continue;
                        }
                        return Poll::Pending;
                    }
                    None if st.write_closed => return Poll::Ready(Ok(())),
                    None => {}
                }
            }
            st.read_waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
    }
}

impl AsyncWrite for MemoryWriteHalf {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut st = self.half.lock();
        if st.reset {
            return Poll::Ready(Err(reset_error()));
        }
        if st.read_closed || st.write_closed {
            return Poll::Ready(Err(broken_pipe()));
        }
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let space = st.capacity.saturating_sub(st.buffered);
        if space == 0 {
            st.write_waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = space.min(buf.len());
        let was_empty = st.segments.is_empty();
        st.push(buf.get(..n).unwrap_or_default(), Instant::now());
        st.buffered += n;
        if was_empty {
            st.wake_reader();
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let st = self.half.lock();
        if st.reset {
            return Poll::Ready(Err(reset_error()));
        }
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.half.lock().reset {
            return Poll::Ready(Err(reset_error()));
        }
        self.half.close_write();
        Poll::Ready(Ok(()))
    }
}

impl Drop for MemoryReadHalf {
    fn drop(&mut self) {
        self.half.close_read();
    }
}

impl Drop for MemoryWriteHalf {
    fn drop(&mut self) {
        self.half.close_write();
    }
}

impl AsyncRead for MemoryStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().read).poll_read(cx, buf)
    }
}

impl AsyncWrite for MemoryStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().write).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().write).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().write).poll_shutdown(cx)
    }
}
