//! Keepalive, with time passed in: a ping every `ping_interval`; after each ping a pong must
//! arrive within `pong_timeout` (which is shorter than the interval, so at most one ping is
//! outstanding).

use std::time::Duration;

use tokio::time::Instant;

/// What the keepalive asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeepaliveAction {
    /// Send a ping now (and flush it).
    SendPing,
    /// The outstanding ping was not answered in time.
    TimedOut,
}

#[derive(Debug, Clone)]
pub(crate) struct Keepalive {
    interval: Duration,
    timeout: Duration,
    next_ping: Instant,
    pong_deadline: Option<Instant>,
}

impl Keepalive {
    pub(crate) fn new(interval: Duration, timeout: Duration, now: Instant) -> Self {
        Self {
            interval,
            timeout,
            next_ping: now + interval,
            pong_deadline: None,
        }
    }

    /// A pong arrived.
    pub(crate) fn handle_pong(&mut self) {
        self.pong_deadline = None;
    }

    /// What to do at `now`, if anything. Call again until it returns `None`.
    pub(crate) fn poll(&mut self, now: Instant) -> Option<KeepaliveAction> {
        if self.pong_deadline.is_some_and(|d| now >= d) {
            return Some(KeepaliveAction::TimedOut);
        }
        if now >= self.next_ping {
            // Skip missed periods rather than sending a burst of pings.
            while self.next_ping <= now {
                self.next_ping += self.interval;
            }
            self.pong_deadline.get_or_insert(now + self.timeout);
            return Some(KeepaliveAction::SendPing);
        }
        None
    }

    /// When [`poll`](Self::poll) has something to do next.
    pub(crate) fn poll_timeout(&self) -> Instant {
        match self.pong_deadline {
            Some(d) => d.min(self.next_ping),
            None => self.next_ping,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_pong_cycle() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut k = Keepalive::new(10 * s, 4 * s, t0);
        assert_eq!(k.poll(t0), None);
        assert_eq!(k.poll_timeout(), t0 + 10 * s);
        assert_eq!(k.poll(t0 + 10 * s), Some(KeepaliveAction::SendPing));
        assert_eq!(k.poll(t0 + 10 * s), None);
        assert_eq!(k.poll_timeout(), t0 + 14 * s);
        k.handle_pong();
        assert_eq!(k.poll(t0 + 15 * s), None);
        assert_eq!(k.poll_timeout(), t0 + 20 * s);
        assert_eq!(k.poll(t0 + 20 * s), Some(KeepaliveAction::SendPing));
        assert_eq!(k.poll(t0 + 24 * s - Duration::from_nanos(1)), None);
        assert_eq!(k.poll(t0 + 24 * s), Some(KeepaliveAction::TimedOut));
    }

    #[test]
    fn late_wakeup_sends_one_ping() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut k = Keepalive::new(10 * s, 4 * s, t0);
        assert_eq!(k.poll(t0 + 35 * s), Some(KeepaliveAction::SendPing));
        assert_eq!(k.poll(t0 + 35 * s), None);
        assert_eq!(k.poll_timeout(), t0 + 39 * s);
    }
}
