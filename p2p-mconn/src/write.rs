//! The write side's decisions, with no IO and time passed in (in the style of quinn's
//! connection state machine): what goes into the write buffer and when (channel selection,
//! the send rate limit, pings and pongs), when to write, flush or close the stream, and when
//! the connection has failed (pong timeout, or a write that could not get our ping out).
//!
//! The async shell feeds events in (`handle_*`), asks what to do next
//! ([`WriteCore::poll_transmit`]) and sleeps until [`WriteCore::poll_timeout`] at most, even
//! while a write or flush is pending: a stream that stops taking data cannot stop the clock.

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::time::Instant;

use crate::Error;
use crate::keepalive::{Keepalive, KeepaliveAction, ReaderClock};
use crate::limiter::TokenBucket;
use crate::packet::{PING_BYTES, PONG_BYTES};
use crate::scheduler::Scheduler;

/// Size of the write batch while the stream pushes back: packets are handed to the stream in
/// chunks of about this size (at most one packet more). 16 KiB, where the reference buffers
/// 64 KiB (`minWriteBufferSize`): the scheduler picks the channel of each packet when it goes
/// into the batch, so a high-priority message that arrives while the stream is busy waits
/// behind at most one batch of bulk here, a quarter of the reference's (see the crate's
/// `manual`).
pub const WRITE_BUFFER_SIZE: usize = 16 * 1024;

/// Largest write batch: 64 KiB, the reference's buffer. While the stream takes every batch
/// at once (nothing queues on the way: the sender is the bottleneck), the batch doubles up
/// to this, which saves per-write costs; the first write that has to wait for the stream
/// brings it back to [`WRITE_BUFFER_SIZE`], so that when a queue forms downstream the
/// scheduler again chooses late.
pub const MAX_WRITE_BATCH: usize = 64 * 1024;

/// Under a send rate, the write batch is at most what the rate moves in this time (at least
/// one packet): 1 ms. The rate fills the batch, so a batch of `b` bytes holds its first packet
/// back `b / rate` and then enters the link as one burst; at 10 MB/s a 64 KiB batch would
/// cost every packet in it up to 6.5 ms, most of it again as a queue in the link's buffer.
pub const PACED_BATCH_TIME: Duration = Duration::from_millis(1);

/// What a channel's send queue holds when the core asks for its next message.
#[derive(Debug)]
pub(crate) enum Pull {
    /// The next message.
    Msg(Bytes),
    /// Nothing now.
    Empty,
    /// Nothing ever again (the queue was closed for draining and is empty).
    Closed,
}

/// The send queues, by channel index.
pub(crate) trait Source {
    /// The next message of channel `idx`.
    fn pull(&mut self, idx: usize) -> Pull;
}

/// What the shell should do with the stream next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transmit {
    /// Write (a prefix of) [`WriteCore::pending`], then report it with `handle_written`.
    Write,
    /// Flush the stream, then report it with `handle_flushed`.
    Flush,
    /// Everything accepted was written and flushed while draining: close the stream.
    Shutdown,
}

/// Counters since the last [`WriteCore::take_stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct WriteStats {
    /// Bytes queued for writing (data and control packets, framing included).
    pub(crate) bytes: usize,
    /// Messages whose last packet was queued.
    pub(crate) messages: u64,
}

/// The write side of a connection.
#[derive(Debug)]
pub(crate) struct WriteCore {
    flush_throttle: Duration,
    pong_timeout: Duration,
    /// Largest packet on the wire, length prefix included.
    max_wire: usize,
    pub(crate) sched: Scheduler,
    keepalive: Keepalive,
    bucket: TokenBucket,
    reader: ReaderClock,
    /// Bytes not yet accepted by the stream. Allocated in full only while data flows.
    buf: BytesMut,
    /// The current batch size, between [`WRITE_BUFFER_SIZE`] and [`MAX_WRITE_BATCH`].
    batch: usize,
    /// Positions in the outgoing byte stream: bytes ever queued, accepted by the stream, and
    /// covered by a completed flush.
    queued: u64,
    written: u64,
    flushed: u64,
    /// A flush is wanted once the stream has accepted the bytes up to here.
    flush_wanted: u64,
    last_flush: Option<Instant>,
    /// When a flush last carried a pong, and whether a pong waits for the next flush.
    last_pong_flush: Option<Instant>,
    pong_waiting: bool,
    /// Where the last pong queued ends: while it is not written yet, pings are answered by it.
    pong_end: Option<u64>,
    /// Where the ping awaiting its pong ends.
    ping_end: Option<u64>,
    /// When the next throttled flush is due, or the rate limit lets data go again.
    flush_at: Option<Instant>,
    limited_until: Option<Instant>,
    draining: bool,
    /// Whether a send queue may still deliver (false once all are closed and empty).
    sources_open: bool,
    shutting_down: bool,
    stats: WriteStats,
}

/// The settings the core needs.
#[derive(Clone, Debug)]
pub(crate) struct WriteSettings {
    pub(crate) flush_throttle: Duration,
    pub(crate) ping_interval: Duration,
    pub(crate) pong_timeout: Duration,
    pub(crate) send_rate: u64,
    pub(crate) max_wire: usize,
}

impl WriteCore {
    pub(crate) fn new(settings: &WriteSettings, sched: Scheduler, now: Instant) -> Self {
        Self {
            flush_throttle: settings.flush_throttle,
            pong_timeout: settings.pong_timeout,
            max_wire: settings.max_wire,
            sched,
            keepalive: Keepalive::new(settings.ping_interval, settings.pong_timeout, now),
            bucket: TokenBucket::new(settings.send_rate, now),
            reader: ReaderClock::default(),
            buf: BytesMut::new(),
            batch: WRITE_BUFFER_SIZE,
            queued: 0,
            written: 0,
            flushed: 0,
            flush_wanted: 0,
            last_flush: None,
            last_pong_flush: None,
            pong_waiting: false,
            pong_end: None,
            ping_end: None,
            flush_at: None,
            limited_until: None,
            draining: false,
            sources_open: true,
            shutting_down: false,
            stats: WriteStats::default(),
        }
    }

    fn push_control(&mut self, bytes: &[u8], now: Instant) {
        self.buf.put_slice(bytes);
        self.queued += bytes.len() as u64;
        // Control packets count toward the rate (as in the reference) but never wait for it.
        self.bucket.consume(bytes.len(), now);
        self.stats.bytes += bytes.len();
    }

    /// The peer pinged: a pong is due. It is flushed at once (the peer's pong timeout may be
    /// shorter than our flush throttle) unless a pong was flushed within the last flush
    /// throttle: then it goes with the next flush. A ping arriving while a pong still waits to
    /// be written is answered by that pong. So a peer flooding pings gets one pong and forces
    /// at most one flush per throttle period.
    pub(crate) fn handle_ping(&mut self, now: Instant) {
        if self.pong_end.is_some_and(|end| end > self.written) {
            return;
        }
        self.push_control(&PONG_BYTES, now);
        self.pong_end = Some(self.queued);
        self.pong_waiting = true;
        if self
            .last_pong_flush
            .is_none_or(|t| now >= t + self.flush_throttle)
        {
            self.flush_wanted = self.queued;
        }
    }

    /// The peer answered our ping.
    pub(crate) fn handle_pong(&mut self) {
        self.keepalive.handle_pong();
        self.ping_end = None;
    }

    /// The application asked to send what is queued, then close. (The shell closes the send
    /// queues, so that they end once empty.)
    pub(crate) fn handle_drain(&mut self) {
        self.draining = true;
    }

    /// The send rate changed (0 = unlimited).
    pub(crate) fn set_send_rate(&mut self, rate: u64, now: Instant) {
        self.bucket.set_rate(rate, now);
    }

    /// The read side's pauses, which the pong timeout does not count.
    pub(crate) fn set_reader_clock(&mut self, clock: ReaderClock) {
        self.reader = clock;
    }

    /// Runs the timers due at `now`: pings, the pong verdict, the statistics decay.
    ///
    /// Fails with [`Error::WriteStalled`] if our ping was still not handed to the stream when
    /// its pong was due (the peer stopped reading, so our writes cannot proceed), or with
    /// [`Error::PongTimeout`] if it was and no pong came.
    pub(crate) fn handle_timeout(&mut self, now: Instant) -> Result<(), Error> {
        while let Some(action) = self.keepalive.poll(now, &self.reader) {
            match action {
                KeepaliveAction::SendPing => {
                    self.push_control(&PING_BYTES, now);
                    self.ping_end.get_or_insert(self.queued);
                    self.flush_wanted = self.queued;
                }
                KeepaliveAction::TimedOut { sent } => {
                    return Err(if self.ping_end.is_some_and(|end| end > self.flushed) {
                        Error::WriteStalled {
                            waited: now.saturating_duration_since(sent),
                        }
                    } else {
                        Error::PongTimeout {
                            timeout: self.pong_timeout,
                        }
                    });
                }
            }
        }
        self.sched.handle_timeout(now);
        Ok(())
    }

    /// Adds data packets until the buffer is full, nothing is queued, or the limit says wait.
    fn fill(&mut self, now: Instant, src: &mut impl Source) {
        self.limited_until = None;
        let target = self.target();
        while self.buf.len() < target {
            self.sources_open = self.refill(src);
            let Some(idx) = self.sched.pick() else { break };
            if let Some(at) = self.bucket.ready_at(now) {
                self.limited_until = Some(at);
                break;
            }
            if self.buf.capacity() < self.batch {
                // Room for a last packet past the threshold, so the buffer never grows.
                self.buf
                    .reserve(self.batch + self.max_wire - self.buf.len());
            }
            let sent = self.sched.encode_next(idx, &mut self.buf);
            self.queued += sent.wire_len as u64;
            self.bucket.consume(sent.wire_len, now);
            self.stats.bytes += sent.wire_len;
            if sent.eof {
                self.stats.messages += 1;
            }
        }
    }

    /// The size at which the batch is written: `batch`, at most what the send rate
    /// moves in [`PACED_BATCH_TIME`] (and at least one packet).
    fn target(&self) -> usize {
        match self.bucket.rate() {
            0 => self.batch,
            rate => {
                let paced = u128::from(rate) * PACED_BATCH_TIME.as_micros() / 1_000_000;
                usize::try_from(paced)
                    .unwrap_or(usize::MAX)
                    .clamp(1, self.batch)
            }
        }
    }

    /// Loads the next queued message into every idle channel; returns whether any queue may
    /// still deliver.
    fn refill(&mut self, src: &mut impl Source) -> bool {
        let mut open = false;
        for (idx, ch) in self.sched.channels.iter_mut().enumerate() {
            if ch.is_busy() {
                open = true;
                continue;
            }
            match src.pull(idx) {
                Pull::Msg(msg) => {
                    ch.load(msg);
                    open = true;
                }
                Pull::Empty => open = true,
                Pull::Closed => {}
            }
        }
        open
    }

    /// What to do with the stream now, if anything; `None` means wait for an event or
    /// [`poll_timeout`](Self::poll_timeout).
    pub(crate) fn poll_transmit(
        &mut self,
        now: Instant,
        src: &mut impl Source,
    ) -> Option<Transmit> {
        self.flush_at = None;
        if self.shutting_down {
            return Some(Transmit::Shutdown);
        }
        self.fill(now, src);
        if self.draining {
            self.flush_wanted = self.queued;
        }
        // A flush was asked for (a ping, a pong, draining): write up to that point, flush.
        if self.flush_wanted > self.flushed {
            return Some(if self.written >= self.flush_wanted {
                Transmit::Flush
            } else {
                Transmit::Write
            });
        }
        // A full buffer goes out whatever the throttle.
        if self.buf.len() >= self.target() {
            return Some(Transmit::Write);
        }
        // Nothing more to add now (idle or rate-limited): flush what there is, at most once
        // per throttle period.
        if !self.buf.is_empty() || self.written > self.flushed {
            let due = self.last_flush.map_or(now, |t| t + self.flush_throttle);
            if now >= due {
                return Some(if self.buf.is_empty() {
                    Transmit::Flush
                } else {
                    Transmit::Write
                });
            }
            self.flush_at = Some(due);
            return None;
        }
        if self.draining && !self.sources_open && !self.sched.any_busy() {
            self.shutting_down = true;
            return Some(Transmit::Shutdown);
        }
        if !self.sched.any_busy() && self.buf.capacity() > 1024 {
            // Going quiet: give the large buffer back.
            self.buf = BytesMut::new();
        }
        None
    }

    /// The bytes to write for [`Transmit::Write`].
    pub(crate) fn pending(&self) -> &[u8] {
        &self.buf
    }

    /// The stream accepted the first `n` bytes of [`pending`](Self::pending).
    ///
    /// `waited` says whether the stream made the write wait (it was not ready at once): see
    /// [`handle_pushback`](Self::handle_pushback). A full batch taken at once doubles the
    /// batch, up to [`MAX_WRITE_BATCH`].
    pub(crate) fn handle_written(&mut self, n: usize, waited: bool, now: Instant) {
        let full = self.buf.len() >= self.target();
        let n = n.min(self.buf.len());
        self.buf.advance(n);
        self.written += n as u64;
        if waited {
            self.handle_pushback(now);
        } else if full && self.buf.is_empty() {
            self.batch = (self.batch * 2).min(MAX_WRITE_BATCH);
        }
    }

    /// The stream made a write wait (whether or not it has taken the bytes yet): a queue is
    /// forming downstream. The batch goes back to [`WRITE_BUFFER_SIZE`], and the send-rate
    /// credit earned while waiting is given up, so that the rate limit does not make up for
    /// the wait with a burst into that queue.
    pub(crate) fn handle_pushback(&mut self, now: Instant) {
        self.batch = WRITE_BUFFER_SIZE;
        self.bucket.forgo_credit(now);
    }

    /// A flush of the stream completed.
    pub(crate) fn handle_flushed(&mut self, now: Instant) {
        self.flushed = self.written;
        self.last_flush = Some(now);
        if std::mem::take(&mut self.pong_waiting) {
            self.last_pong_flush = self.last_flush;
        }
    }

    /// When the core must be looked at again at the latest (while waiting, and while a write
    /// or flush is pending).
    pub(crate) fn poll_timeout(&self, now: Instant) -> Instant {
        let mut deadline = self
            .keepalive
            .poll_timeout(now, &self.reader)
            .min(self.sched.poll_timeout());
        for t in [self.flush_at, self.limited_until].into_iter().flatten() {
            deadline = deadline.min(t);
        }
        deadline
    }

    /// Counters since the last call.
    pub(crate) fn take_stats(&mut self) -> WriteStats {
        std::mem::take(&mut self.stats)
    }

    /// Whether the core is closing the stream (the drain succeeded).
    #[cfg(test)]
    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutting_down
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::msg_packet_len;
    use std::collections::VecDeque;

    struct Queues(Vec<VecDeque<Bytes>>, bool);

    impl Source for Queues {
        fn pull(&mut self, idx: usize) -> Pull {
            match self.0[idx].pop_front() {
                Some(m) => Pull::Msg(m),
                None if self.1 => Pull::Closed,
                None => Pull::Empty,
            }
        }
    }

    const S: Duration = Duration::from_secs(1);

    fn core(now: Instant, rate: u64) -> WriteCore {
        let settings = WriteSettings {
            flush_throttle: Duration::from_millis(100),
            ping_interval: 10 * S,
            pong_timeout: 5 * S,
            send_rate: rate,
            max_wire: 1040,
        };
        WriteCore::new(&settings, Scheduler::new([(1, 1)], 1024, now), now)
    }

    /// Writes and flushes everything the core asks for; returns the bytes.
    fn run(c: &mut WriteCore, now: Instant, q: &mut Queues) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            match c.poll_transmit(now, q) {
                Some(Transmit::Write) => {
                    out.extend_from_slice(c.pending());
                    let n = c.pending().len();
                    c.handle_written(n, false, now);
                }
                Some(Transmit::Flush) => c.handle_flushed(now),
                Some(Transmit::Shutdown) | None => return out,
            }
        }
    }

    #[test]
    fn a_stalled_write_cannot_stop_the_clock() {
        let t0 = Instant::now();
        let mut c = core(t0, 0);
        let mut q = Queues(vec![VecDeque::from([Bytes::from(vec![0; 200_000])])], false);
        assert_eq!(c.poll_transmit(t0, &mut q), Some(Transmit::Write));
        // The stream takes nothing. The ping is queued behind the data at 10 s...
        c.handle_timeout(t0 + 10 * S).unwrap();
        assert_eq!(c.poll_transmit(t0 + 10 * S, &mut q), Some(Transmit::Write));
        // (The statistics decay wakes the core every 2 s meanwhile.)
        assert_eq!(c.poll_timeout(t0 + 10 * S), t0 + 12 * S);
        c.handle_timeout(t0 + 14 * S).unwrap();
        assert_eq!(c.poll_timeout(t0 + 14 * S), t0 + 15 * S);
        // ... and its pong is due at 15 s: the ping never left, so the writes stalled.
        assert_eq!(
            c.handle_timeout(t0 + 15 * S),
            Err(Error::WriteStalled { waited: 5 * S })
        );
    }

    #[test]
    fn a_ping_that_left_and_got_no_answer_is_a_pong_timeout() {
        let t0 = Instant::now();
        let mut c = core(t0, 0);
        let mut q = Queues(vec![VecDeque::new()], false);
        c.handle_timeout(t0 + 10 * S).unwrap();
        assert_eq!(run(&mut c, t0 + 10 * S, &mut q), PING_BYTES);
        c.handle_timeout(t0 + 14 * S).unwrap();
        assert_eq!(c.poll_timeout(t0 + 14 * S), t0 + 15 * S);
        assert_eq!(
            c.handle_timeout(t0 + 15 * S),
            Err(Error::PongTimeout { timeout: 5 * S })
        );
        // Answered in time, no verdict.
        let mut c = core(t0, 0);
        c.handle_timeout(t0 + 10 * S).unwrap();
        run(&mut c, t0 + 10 * S, &mut q);
        c.handle_pong();
        assert_eq!(c.handle_timeout(t0 + 15 * S), Ok(()));
    }

    #[test]
    fn flushes_are_throttled_and_pongs_coalesced() {
        let t0 = Instant::now();
        let mut c = core(t0, 0);
        let mut q = Queues(vec![VecDeque::from([Bytes::from_static(b"a")])], false);
        let one = msg_packet_len(1, true, 1) + 1;
        // Idle link: the first message goes at once.
        assert_eq!(run(&mut c, t0, &mut q).len(), one);
        // The next one waits for the throttle.
        q.0[0].push_back(Bytes::from_static(b"b"));
        let t1 = t0 + Duration::from_millis(10);
        assert_eq!(c.poll_transmit(t1, &mut q), None);
        assert_eq!(c.poll_timeout(t1), t0 + Duration::from_millis(100));
        // A ping from the peer forces a flush, with the pending data before the pong.
        c.handle_ping(t1);
        c.handle_ping(t1); // answered by the same pong
        let out = run(&mut c, t1, &mut q);
        assert_eq!(out.len(), one + 3);
        assert_eq!(out[one..], PONG_BYTES);
        // Another ping within the throttle: its pong waits for the next flush.
        let t2 = t1 + Duration::from_millis(20);
        c.handle_ping(t2);
        assert_eq!(c.poll_transmit(t2, &mut q), None);
        assert_eq!(c.poll_timeout(t2), t1 + Duration::from_millis(100));
        assert_eq!(
            run(&mut c, t1 + Duration::from_millis(100), &mut q),
            PONG_BYTES
        );
    }

    #[test]
    fn drain_sends_everything_then_shuts_down() {
        let t0 = Instant::now();
        let mut c = core(t0, 0);
        let msgs: VecDeque<Bytes> = (0..100).map(|_| Bytes::from(vec![1; 3000])).collect();
        let mut q = Queues(vec![msgs], true);
        c.handle_drain();
        let out = run(&mut c, t0, &mut q);
        let per_msg = 2 * (msg_packet_len(1, false, 1024) + 2) + msg_packet_len(1, true, 952) + 2;
        assert_eq!(out.len(), 100 * per_msg);
        assert_eq!(c.poll_transmit(t0, &mut q), Some(Transmit::Shutdown));
        assert!(c.is_shutting_down());
        assert_eq!(c.take_stats().messages, 100);
    }

    #[test]
    fn a_high_priority_message_waits_behind_one_batch_at_most() {
        let t0 = Instant::now();
        let settings = WriteSettings {
            flush_throttle: Duration::from_millis(100),
            ping_interval: 10 * S,
            pong_timeout: 5 * S,
            send_rate: 0,
            max_wire: 1040,
        };
        let sched = Scheduler::new([(1, 1), (2, 10)], 1024, t0);
        let mut c = WriteCore::new(&settings, sched, t0);
        let bulk = (0..64).map(|_| Bytes::from(vec![1; 64 << 10])).collect();
        let mut q = Queues(vec![bulk, VecDeque::new()], false);
        // The stream is slow: it takes 1000 bytes per write.
        assert_eq!(c.poll_transmit(t0, &mut q), Some(Transmit::Write));
        assert!(c.pending().len() <= WRITE_BUFFER_SIZE + 1040);
        for _ in 0..100 {
            c.handle_written(1000, true, t0);
            assert_eq!(c.poll_transmit(t0, &mut q), Some(Transmit::Write));
        }
        // The vote arrives: it goes out after what is batched already, no later.
        q.0[1].push_back(Bytes::from_static(b"vote"));
        let ahead = c.pending().len();
        assert!(ahead <= WRITE_BUFFER_SIZE + 1040, "{ahead}");
        assert_eq!(c.poll_transmit(t0, &mut q), Some(Transmit::Write));
        let vote = msg_packet_len(2, true, 4) + 1;
        let mut out = Vec::new();
        while out.len() < ahead + vote {
            out.extend_from_slice(&c.pending()[..1000.min(c.pending().len())]);
            c.handle_written(1000, true, t0);
            c.poll_transmit(t0, &mut q);
        }
        assert_eq!(&out[ahead + vote - 4..ahead + vote], b"vote");
    }

    #[test]
    fn the_batch_grows_while_the_stream_keeps_up_and_shrinks_when_it_pushes_back() {
        let t0 = Instant::now();
        let mut c = core(t0, 0);
        let bulk = (0..64).map(|_| Bytes::from(vec![1; 64 << 10])).collect();
        let mut q = Queues(vec![bulk], false);
        let batch = |c: &mut WriteCore, q: &mut Queues| {
            assert_eq!(c.poll_transmit(t0, q), Some(Transmit::Write));
            c.pending().len()
        };
        let first = batch(&mut c, &mut q);
        assert!((WRITE_BUFFER_SIZE..WRITE_BUFFER_SIZE + 1040).contains(&first));
        // Every batch taken whole and at once: 16, 32, 64 KiB, then no more.
        let mut sizes = vec![first];
        for _ in 0..4 {
            let n = c.pending().len();
            c.handle_written(n, false, t0);
            sizes.push(batch(&mut c, &mut q));
        }
        let kib: Vec<usize> = sizes.iter().map(|n| n >> 10).collect();
        assert_eq!(kib, [16, 32, 64, 64, 64], "{sizes:?}");
        assert!(sizes.iter().all(|&n| n < MAX_WRITE_BATCH + 1040));
        // A write that had to wait: the next batch is small again.
        let n = c.pending().len();
        c.handle_written(n, true, t0);
        assert_eq!(batch(&mut c, &mut q) >> 10, 16);
        // A partial write taken at once does not grow it either (the stream is filling up).
        c.handle_written(100, false, t0);
        assert_eq!(batch(&mut c, &mut q) >> 10, 16);
    }

    #[test]
    fn under_a_send_rate_the_batch_is_what_the_rate_moves_in_a_millisecond() {
        let t0 = Instant::now();
        // 10 MB/s: 10 kB per millisecond.
        let mut c = core(t0, 10_000_000);
        let bulk = (0..64).map(|_| Bytes::from(vec![1; 64 << 10])).collect();
        let mut q = Queues(vec![bulk], false);
        let mut now = t0;
        let mut sizes = Vec::new();
        // Every batch taken whole and at once, which would grow an unpaced batch to 64 KiB.
        while sizes.len() < 200 {
            match c.poll_transmit(now, &mut q) {
                Some(Transmit::Write) => {
                    let n = c.pending().len();
                    sizes.push(n);
                    c.handle_written(n, false, now);
                }
                Some(Transmit::Flush) => c.handle_flushed(now),
                _ => now = c.poll_timeout(now),
            }
        }
        assert!(sizes.iter().all(|&n| n < 10_000 + 1040), "{sizes:?}");
        // Past the first 100 ms of burst, the batches are gathered at the rate, about 1 ms
        // each (a flush-throttle deadline now and then writes a partial one).
        assert!(now > t0 + Duration::from_millis(100), "{now:?}");
        let whole = sizes[150..].iter().filter(|&&n| n >= 10_000).count();
        assert!(whole >= 45, "{sizes:?}");
    }

    #[test]
    fn time_the_stream_made_a_paced_write_wait_is_not_made_up_with_a_burst() {
        let t0 = Instant::now();
        // Rate 1 MB/s: a burst of 100 kB, batches of 1 kB (one packet).
        let burst_after_a_wait = |waited: bool| {
            let mut c = core(t0, 1_000_000);
            let bulk = (0..8).map(|_| Bytes::from(vec![1; 64 << 10])).collect();
            let mut q = Queues(vec![bulk], false);
            // The first batch; the stream takes it after a second.
            assert_eq!(c.poll_transmit(t0, &mut q), Some(Transmit::Write));
            let t1 = t0 + S;
            c.handle_written(c.pending().len(), waited, t1);
            // Everything that may go at once at t1.
            let mut sent = 0;
            while c.poll_transmit(t1, &mut q) == Some(Transmit::Write) {
                let n = c.pending().len();
                sent += n;
                c.handle_written(n, false, t1);
            }
            sent
        };
        // Held back by the stream: one packet now, the rest at the rate.
        let paced = burst_after_a_wait(true);
        assert!(paced <= 1040, "{paced}");
        // Taken at once, then a second without data waiting on the stream: a burst was earned.
        let idle = burst_after_a_wait(false);
        assert!(idle >= 100_000, "{idle}");
    }

    #[test]
    fn the_rate_limit_delays_data_but_not_pongs() {
        let t0 = Instant::now();
        let mut c = core(t0, 10_000); // burst 1000 bytes
        let mut q = Queues(vec![VecDeque::from([Bytes::from(vec![0; 5000])])], false);
        let first = run(&mut c, t0, &mut q);
        assert!(first.len() < 2500, "{}", first.len());
        let wait = c.poll_timeout(t0);
        assert!(wait > t0 && wait < t0 + S, "{wait:?}");
        c.handle_ping(t0);
        assert_eq!(run(&mut c, t0, &mut q), PONG_BYTES);
    }
}
