//! Keepalive, with time passed in: a ping every `ping_interval`; after each ping a pong must
//! arrive within `pong_timeout` (which is shorter than the interval, so at most one ping is
//! outstanding).
//!
//! Time during which our own read side was paused (a channel's receive queue full, so the
//! peer's pong may sit unread in the stream) does not count toward the pong timeout: the
//! verdict would otherwise blame the peer for our slow consumer. The read side has its own
//! limit on such pauses.

use std::time::Duration;

use tokio::time::Instant;

/// What the keepalive asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeepaliveAction {
    /// Send a ping now (and flush it).
    SendPing,
    /// The outstanding ping, sent at `sent`, was not answered in time.
    TimedOut {
        /// When the unanswered ping was queued.
        sent: Instant,
    },
}

/// How long our read side has been paused, as the read task reports it: the total of the
/// pauses that ended, and the start of the current one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ReaderClock {
    /// Sum of the pauses that are over.
    pub(crate) paused_total: Duration,
    /// When the current pause began, if the reader is paused now.
    pub(crate) paused_since: Option<Instant>,
}

impl ReaderClock {
    /// Total paused time up to `now`.
    pub(crate) fn paused(&self, now: Instant) -> Duration {
        self.paused_total
            + self
                .paused_since
                .map_or(Duration::ZERO, |s| now.saturating_duration_since(s))
    }

    /// Whether the reader is paused now.
    pub(crate) fn is_paused(&self) -> bool {
        self.paused_since.is_some()
    }
}

#[derive(Debug, Clone, Copy)]
struct Outstanding {
    sent: Instant,
    /// The reader's paused time when the ping was sent.
    paused_at_sent: Duration,
}

#[derive(Debug, Clone)]
pub(crate) struct Keepalive {
    interval: Duration,
    timeout: Duration,
    next_ping: Instant,
    outstanding: Option<Outstanding>,
}

impl Keepalive {
    pub(crate) fn new(interval: Duration, timeout: Duration, now: Instant) -> Self {
        Self {
            interval,
            timeout,
            next_ping: now + interval,
            outstanding: None,
        }
    }

    /// A pong arrived.
    pub(crate) fn handle_pong(&mut self) {
        self.outstanding = None;
    }

    /// How long the outstanding ping has waited, not counting the reader's pauses.
    fn waited(o: &Outstanding, now: Instant, reader: &ReaderClock) -> Duration {
        let paused = reader.paused(now).saturating_sub(o.paused_at_sent);
        now.saturating_duration_since(o.sent).saturating_sub(paused)
    }

    /// What to do at `now`, if anything. Call again until it returns `None`.
    pub(crate) fn poll(&mut self, now: Instant, reader: &ReaderClock) -> Option<KeepaliveAction> {
        if let Some(o) = &self.outstanding {
            if !reader.is_paused() && Self::waited(o, now, reader) >= self.timeout {
                return Some(KeepaliveAction::TimedOut { sent: o.sent });
            }
        }
        if now >= self.next_ping {
            // Skip missed periods rather than sending a burst of pings.
            while self.next_ping <= now {
                self.next_ping += self.interval;
            }
            self.outstanding.get_or_insert(Outstanding {
                sent: now,
                paused_at_sent: reader.paused(now),
            });
            return Some(KeepaliveAction::SendPing);
        }
        None
    }

    /// When [`poll`](Self::poll) has something to do next, as seen at `now` (the reader's
    /// state may move the pong deadline later).
    pub(crate) fn poll_timeout(&self, now: Instant, reader: &ReaderClock) -> Instant {
        match &self.outstanding {
            Some(o) if !reader.is_paused() => {
                let left = self.timeout.saturating_sub(Self::waited(o, now, reader));
                (now + left).min(self.next_ping)
            }
            _ => self.next_ping,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AWAKE: ReaderClock = ReaderClock {
        paused_total: Duration::ZERO,
        paused_since: None,
    };

    #[test]
    fn ping_pong_cycle() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut k = Keepalive::new(10 * s, 4 * s, t0);
        let r = &AWAKE;
        assert_eq!(k.poll(t0, r), None);
        assert_eq!(k.poll_timeout(t0, r), t0 + 10 * s);
        assert_eq!(k.poll(t0 + 10 * s, r), Some(KeepaliveAction::SendPing));
        assert_eq!(k.poll(t0 + 10 * s, r), None);
        assert_eq!(k.poll_timeout(t0 + 10 * s, r), t0 + 14 * s);
        k.handle_pong();
        assert_eq!(k.poll(t0 + 15 * s, r), None);
        assert_eq!(k.poll_timeout(t0 + 15 * s, r), t0 + 20 * s);
        assert_eq!(k.poll(t0 + 20 * s, r), Some(KeepaliveAction::SendPing));
        assert_eq!(k.poll(t0 + 24 * s - Duration::from_nanos(1), r), None);
        assert_eq!(
            k.poll(t0 + 24 * s, r),
            Some(KeepaliveAction::TimedOut { sent: t0 + 20 * s })
        );
    }

    #[test]
    fn late_wakeup_sends_one_ping() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut k = Keepalive::new(10 * s, 4 * s, t0);
        assert_eq!(k.poll(t0 + 35 * s, &AWAKE), Some(KeepaliveAction::SendPing));
        assert_eq!(k.poll(t0 + 35 * s, &AWAKE), None);
        assert_eq!(k.poll_timeout(t0 + 35 * s, &AWAKE), t0 + 39 * s);
    }

    #[test]
    fn reader_pauses_do_not_count() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut k = Keepalive::new(10 * s, 4 * s, t0);
        assert_eq!(k.poll(t0 + 10 * s, &AWAKE), Some(KeepaliveAction::SendPing));
        // Paused from 11 s: no verdict while paused, however long.
        let paused = ReaderClock {
            paused_total: Duration::ZERO,
            paused_since: Some(t0 + 11 * s),
        };
        assert_eq!(k.poll(t0 + 19 * s, &paused), None);
        assert_eq!(k.poll_timeout(t0 + 19 * s, &paused), t0 + 20 * s);
        // Resumed at 14 s after 3 s paused: the deadline moved from 14 s to 17 s.
        let resumed = ReaderClock {
            paused_total: 3 * s,
            paused_since: None,
        };
        assert_eq!(k.poll_timeout(t0 + 14 * s, &resumed), t0 + 17 * s);
        assert_eq!(
            k.poll(t0 + 17 * s - Duration::from_nanos(1), &resumed),
            None
        );
        assert_eq!(
            k.poll(t0 + 17 * s, &resumed),
            Some(KeepaliveAction::TimedOut { sent: t0 + 10 * s })
        );
    }
}
