//! Rate limiting and rate measurement, with time passed in.
//!
//! The reference limits with a sampling monitor (`libs/flowrate`: 100 ms samples, block while the
//! current sample is over budget). Here a token bucket does the limiting: tokens accrue at the
//! configured rate up to a burst of 100 ms worth, a packet may be sent whenever the bucket is
//! not in debt, and sending takes its size out (possibly into debt). A burst after idleness is
//! at most 100 ms worth plus one packet, and the rate can change at any time without losing
//! the accumulated state. Credit earned while something downstream held the sender back is
//! given up ([`TokenBucket::forgo_credit`]): the limit is a cap, and catching up on that time
//! would send faster than the rate, into whatever queue made the sender wait.

use std::time::Duration;

use tokio::time::Instant;

const NANOS_PER_SEC: i128 = 1_000_000_000;

/// A token bucket counting bytes. Rate 0 means unlimited.
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    rate: u64,
    /// Bytes × 10⁹ (so that refills are exact integers).
    tokens: i128,
    last: Instant,
}

impl TokenBucket {
    pub(crate) fn new(rate: u64, now: Instant) -> Self {
        let mut b = Self {
            rate,
            tokens: 0,
            last: now,
        };
        b.tokens = b.burst();
        b
    }

    /// 100 ms worth of tokens, at least one byte.
    fn burst(&self) -> i128 {
        (i128::from(self.rate) * NANOS_PER_SEC / 10).max(NANOS_PER_SEC)
    }

    pub(crate) fn rate(&self) -> u64 {
        self.rate
    }

    fn refill(&mut self, now: Instant) {
        if now > self.last {
            let elapsed = i128::try_from((now - self.last).as_nanos()).unwrap_or(i128::MAX / 4);
            self.tokens = self
                .tokens
                .saturating_add(elapsed.saturating_mul(i128::from(self.rate)))
                .min(self.burst());
            self.last = now;
        }
    }

    /// Changes the rate from `now` on.
    pub(crate) fn set_rate(&mut self, rate: u64, now: Instant) {
        if rate == self.rate {
            return;
        }
        self.refill(now);
        self.rate = rate;
        self.last = now;
        self.tokens = self.tokens.min(self.burst());
    }

    /// `None` if a packet may be sent at `now`, else when it may.
    pub(crate) fn ready_at(&mut self, now: Instant) -> Option<Instant> {
        if self.rate == 0 {
            return None;
        }
        self.refill(now);
        if self.tokens >= 0 {
            return None;
        }
        let rate = i128::from(self.rate);
        let nanos = (-self.tokens + rate - 1) / rate;
        let nanos = u64::try_from(nanos).unwrap_or(u64::MAX);
        Some(now + Duration::from_nanos(nanos))
    }

    /// Gives up the credit earned up to `now`, keeping any debt: for a sender that was held
    /// back by something other than the bucket (the stream pushed back), so that the time it
    /// waited is not made up for later with a burst above the rate. On a link slower than
    /// the rate this changes nothing; on a link just faster than the rate it keeps the link's
    /// queue empty (a burst of 100 ms worth would queue up to 100 ms in front of every
    /// later packet, whatever its priority).
    pub(crate) fn forgo_credit(&mut self, now: Instant) {
        if self.rate == 0 {
            return;
        }
        self.refill(now);
        self.tokens = self.tokens.min(0);
    }

    /// Takes `bytes` out of the bucket.
    pub(crate) fn consume(&mut self, bytes: usize, now: Instant) {
        if self.rate == 0 {
            return;
        }
        self.refill(now);
        self.tokens = self
            .tokens
            .saturating_sub(i128::try_from(bytes).unwrap_or(i128::MAX / 4) * NANOS_PER_SEC);
    }
}

/// Sample period of [`RateMonitor`] (the reference's flowrate sample, 100 ms).
const SAMPLE: Duration = Duration::from_millis(100);
/// Averaging window of the current rate (the reference's 1 s).
const WINDOW_SECS: f64 = 1.0;

/// Measures a byte flow: total, current rate (exponential moving average over 1 s of 100 ms
/// samples, as the reference's flowrate monitor does) and peak.
#[derive(Debug, Clone)]
pub(crate) struct RateMonitor {
    start: Instant,
    sample_start: Instant,
    sample_bytes: u64,
    total: u64,
    cur_rate: f64,
    peak_rate: f64,
}

impl RateMonitor {
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            start: now,
            sample_start: now,
            sample_bytes: 0,
            total: 0,
            cur_rate: 0.0,
            peak_rate: 0.0,
        }
    }

    /// Records `bytes` moved at `now`.
    pub(crate) fn update(&mut self, bytes: usize, now: Instant) {
        self.sample_bytes += bytes as u64;
        self.total += bytes as u64;
        self.tick(now);
    }

    /// Closes the current sample if it is old enough.
    pub(crate) fn tick(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.sample_start);
        if elapsed < SAMPLE {
            return;
        }
        let secs = elapsed.as_secs_f64();
        let sample = self.sample_bytes as f64 / secs;
        let decay = (-secs / WINDOW_SECS).exp();
        self.cur_rate = sample + decay * (self.cur_rate - sample);
        self.peak_rate = self.peak_rate.max(sample);
        self.sample_bytes = 0;
        self.sample_start = now;
    }

    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    pub(crate) fn cur_rate(&self) -> u64 {
        self.cur_rate.round() as u64
    }

    pub(crate) fn peak_rate(&self) -> u64 {
        self.peak_rate.round() as u64
    }

    pub(crate) fn avg_rate(&self, now: Instant) -> u64 {
        let secs = now.saturating_duration_since(self.start).as_secs_f64();
        if secs <= 0.0 {
            0
        } else {
            (self.total as f64 / secs).round() as u64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unlimited() {
        let now = Instant::now();
        let mut b = TokenBucket::new(0, now);
        b.consume(1 << 30, now);
        assert_eq!(b.ready_at(now), None);
    }

    #[test]
    fn average_is_the_rate() {
        // Send 1034-byte packets as fast as allowed for 5 virtual seconds.
        let t0 = Instant::now();
        let rate = 512_000;
        let mut b = TokenBucket::new(rate, t0);
        let mut now = t0;
        let mut sent = 0u64;
        let end = t0 + Duration::from_secs(5);
        while now < end {
            match b.ready_at(now) {
                None => {
                    b.consume(1034, now);
                    sent += 1034;
                }
                Some(t) => now = t,
            }
        }
        let expected = rate * 5;
        let err = (sent as f64 - expected as f64).abs() / expected as f64;
        assert!(err < 0.03, "sent {sent}, expected {expected}");
    }

    #[test]
    fn rate_change_takes_effect() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(1000, t0);
        b.consume(100 + 1000, t0); // burst spent, one second in debt
        let at = b.ready_at(t0).unwrap();
        assert_eq!(at, t0 + Duration::from_secs(1));
        b.set_rate(2000, t0);
        assert_eq!(b.ready_at(t0).unwrap(), t0 + Duration::from_millis(500));
        b.set_rate(0, t0);
        assert_eq!(b.ready_at(t0), None);
        assert_eq!(b.rate(), 0);
    }

    #[test]
    fn credit_earned_while_held_back_is_given_up_but_debt_is_kept() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(1000, t0); // burst 100 bytes
        b.consume(100, t0);
        // The stream held the sender back for a second: a full burst was earned meanwhile.
        let t1 = t0 + Duration::from_secs(1);
        b.forgo_credit(t1);
        assert_eq!(b.ready_at(t1), None, "not in debt: one packet may go");
        b.consume(10, t1);
        assert_eq!(b.ready_at(t1), Some(t1 + Duration::from_millis(10)));
        // Debt stays debt.
        b.forgo_credit(t1);
        assert_eq!(b.ready_at(t1), Some(t1 + Duration::from_millis(10)));
        // Without it, the same second buys a burst of 100 bytes at once.
        let mut kept = TokenBucket::new(1000, t0);
        kept.consume(100, t0);
        kept.consume(100, t1);
        assert_eq!(kept.ready_at(t1), None);
        // Unlimited stays unlimited.
        let mut free = TokenBucket::new(0, t0);
        free.forgo_credit(t1);
        assert_eq!(free.ready_at(t1), None);
    }

    #[test]
    fn monitor_tracks_rate() {
        let t0 = Instant::now();
        let mut m = RateMonitor::new(t0);
        for i in 1..=50 {
            m.update(10_000, t0 + Duration::from_millis(100 * i));
        }
        let now = t0 + Duration::from_secs(5);
        assert_eq!(m.total(), 500_000);
        assert_eq!(m.avg_rate(now), 100_000);
        let cur = m.cur_rate();
        assert!((95_000..=105_000).contains(&cur), "{cur}");
        assert!(m.peak_rate() >= cur);
    }
}
