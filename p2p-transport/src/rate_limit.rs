//! The per-source limit on inbound handshakes: a keyed GCRA rate limiter (`governor`) on
//! tokio's clock, so that it follows tokio's paused time in tests.
//!
//! Each inbound handshake costs the listener real CPU (an X25519 key exchange, an Ed25519
//! signature and its check: about 200 µs), and nothing else stops one host from opening
//! connections as fast as it can while staying under the incoming-connection limit (each one
//! is rejected or times out and frees its slot). So before any handshake work, every inbound
//! connection spends one unit of its source's budget; a connection over budget is closed at
//! once ([`Error::HandshakeRateLimited`](crate::Error::HandshakeRateLimited)).
//!
//! Sources are IPv4 addresses (IPv4-mapped IPv6 included) and IPv6 `/64` prefixes (one host
//! usually holds a whole `/64`, so per-address keys would let it spread over 2^64 of them).
//! Keys whose budget is full again are pruned, so memory stays bounded by the sources seen
//! within one refill period, and never exceeds [`MAX_TRACKED_SOURCES`].

use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::ops::Add;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use governor::clock::{Clock, Reference};
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::HashMapStateStore;
use governor::{Quota, RateLimiter};

/// Most sources the limiter remembers at once. Reaching it (after pruning) means more hosts
/// than this are connecting within one refill period, which per-source limiting cannot stop
/// anyway: the limiter then forgets everyone and starts over (the incoming-connection limit
/// still bounds the work), instead of growing without bound.
pub(crate) const MAX_TRACKED_SOURCES: usize = 65_536;

/// How often, at most, keys with a full budget are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(1);

/// A per-source limit on inbound handshakes: each source (IPv4 address or IPv6 `/64`) may
/// start `burst` handshakes at once, and regains one every `interval`. Set it with
/// [`TransportConfig::handshake_rate_limit`](crate::TransportConfig::handshake_rate_limit).
///
/// ```
/// use std::time::Duration;
/// use p2p_transport::HandshakeRateLimit;
///
/// // 20 at once, then 5 per second.
/// let limit = HandshakeRateLimit::new(20, Duration::from_millis(200));
/// assert_eq!(limit.burst(), 20);
/// assert!(!limit.is_off());
/// assert!(HandshakeRateLimit::new(0, Duration::from_secs(1)).is_off());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HandshakeRateLimit {
    burst: u32,
    interval: Duration,
}

impl HandshakeRateLimit {
    /// `burst` handshakes at once per source, then one per `interval`. A `burst` of 0 or a
    /// zero `interval` means no limit.
    pub const fn new(burst: u32, interval: Duration) -> Self {
        Self { burst, interval }
    }

    /// How many handshakes a source may start at once.
    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// How long a source waits for each further handshake once its burst is spent.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Whether this limits nothing (a burst of 0 or a zero interval).
    pub fn is_off(&self) -> bool {
        self.burst == 0 || self.interval.is_zero()
    }

    fn quota(&self) -> Option<Quota> {
        let burst = NonZeroU32::new(self.burst)?;
        Some(Quota::with_period(self.interval)?.allow_burst(burst))
    }
}

/// A point of tokio's clock, as governor wants it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct TokioInstant(tokio::time::Instant);

impl Add<Nanos> for TokioInstant {
    type Output = Self;

    fn add(self, other: Nanos) -> Self {
        Self(self.0 + Duration::from_nanos(other.as_u64()))
    }
}

impl Reference for TokioInstant {
    fn duration_since(&self, earlier: Self) -> Nanos {
        nanos(self.0.saturating_duration_since(earlier.0))
    }

    fn saturating_sub(&self, duration: Nanos) -> Self {
        Self(
            self.0
                .checked_sub(Duration::from_nanos(duration.as_u64()))
                .unwrap_or(self.0),
        )
    }
}

/// `d` in governor's nanoseconds, saturating (governor's own conversion panics beyond 584
/// years).
fn nanos(d: Duration) -> Nanos {
    Nanos::new(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// governor's [`Clock`] over [`tokio::time::Instant`]: follows tokio's paused clock in tests.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct TokioClock;

impl Clock for TokioClock {
    type Instant = TokioInstant;

    fn now(&self) -> TokioInstant {
        TokioInstant(tokio::time::Instant::now())
    }
}

/// What a source is keyed by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Source {
    /// An IPv4 address.
    V4(std::net::Ipv4Addr),
    /// The first 64 bits of an IPv6 address.
    V6Prefix(u64),
}

impl Source {
    pub(crate) fn of(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => Self::V4(v4),
            IpAddr::V6(v6) => Self::V6Prefix(prefix64(v6)),
        }
    }
}

fn prefix64(ip: Ipv6Addr) -> u64 {
    (ip.to_bits() >> 64) as u64
}

type Keyed =
    RateLimiter<Source, HashMapStateStore<Source>, TokioClock, NoOpMiddleware<TokioInstant>>;

/// The limiter an [`Upgrader`](crate::Upgrader) checks each inbound connection with.
pub(crate) struct HandshakeLimiter {
    limit: HandshakeRateLimit,
    quota: Quota,
    state: Mutex<State>,
    max_sources: usize,
}

struct State {
    keyed: Keyed,
    last_prune: tokio::time::Instant,
}

impl std::fmt::Debug for HandshakeLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandshakeLimiter")
            .field("limit", &self.limit)
            .field("sources", &self.sources())
            .finish_non_exhaustive()
    }
}

impl HandshakeLimiter {
    /// A limiter for `limit`, or `None` if it limits nothing.
    pub(crate) fn new(limit: HandshakeRateLimit) -> Option<Self> {
        Self::with_max_sources(limit, MAX_TRACKED_SOURCES)
    }

    fn with_max_sources(limit: HandshakeRateLimit, max_sources: usize) -> Option<Self> {
        let quota = limit.quota()?;
        Some(Self {
            limit,
            quota,
            state: Mutex::new(State {
                keyed: Self::fresh(quota),
                last_prune: tokio::time::Instant::now(),
            }),
            max_sources: max_sources.max(1),
        })
    }

    fn fresh(quota: Quota) -> Keyed {
        RateLimiter::new(quota, HashMapStateStore::default(), TokioClock)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The limit enforced.
    pub(crate) fn limit(&self) -> HandshakeRateLimit {
        self.limit
    }

    /// Spends one handshake of `ip`'s source: `true` if it had one left.
    pub(crate) fn check(&self, ip: IpAddr) -> bool {
        let mut state = self.lock();
        self.prune_if_due(&mut state);
        state.keyed.check_key(&Source::of(ip)).is_ok()
    }

    /// Number of sources remembered.
    pub(crate) fn sources(&self) -> usize {
        self.lock().keyed.len()
    }

    /// Forgets the sources whose budget is full again, at most once per [`PRUNE_EVERY`] unless
    /// the limiter is at its size bound; starts over if pruning cannot get below it.
    fn prune_if_due(&self, state: &mut State) {
        let now = tokio::time::Instant::now();
        let full = state.keyed.len() >= self.max_sources;
        if !full && now.saturating_duration_since(state.last_prune) < PRUNE_EVERY {
            return;
        }
        state.last_prune = now;
        state.keyed.retain_recent();
        if state.keyed.len() >= self.max_sources {
            tracing::warn!(
                max_sources = self.max_sources,
                "more sources are opening connections than the handshake rate limiter tracks; \
                 it forgets them all and starts over"
            );
            state.keyed = Self::fresh(self.quota);
        } else {
            state.keyed.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn burst_then_one_per_interval_per_source() {
        let l = HandshakeLimiter::new(HandshakeRateLimit::new(3, Duration::from_secs(1))).unwrap();
        let (a, b) = (ip("10.0.0.1"), ip("10.0.0.2"));
        assert!((0..3).all(|_| l.check(a)), "the burst passes");
        assert!(!l.check(a), "over the burst");
        // Another source is not affected.
        assert!(l.check(b));
        // Half an interval later, still nothing; a whole one later, exactly one more.
        tokio::time::advance(Duration::from_millis(500)).await;
        assert!(!l.check(a));
        tokio::time::advance(Duration::from_millis(500)).await;
        assert!(l.check(a));
        assert!(!l.check(a));
        // IPv4-mapped IPv6 is the same source.
        assert!(!l.check(ip("::ffff:10.0.0.1")));
    }

    #[tokio::test(start_paused = true)]
    async fn ipv6_sources_are_slash_64_prefixes() {
        let l = HandshakeLimiter::new(HandshakeRateLimit::new(2, Duration::from_secs(60))).unwrap();
        assert!(l.check(ip("2001:db8:1:2::1")));
        assert!(l.check(ip("2001:db8:1:2::ffff")));
        assert!(!l.check(ip("2001:db8:1:2:abcd::1")), "same /64");
        assert!(l.check(ip("2001:db8:1:3::1")), "another /64");
    }

    #[tokio::test(start_paused = true)]
    async fn sources_with_a_full_budget_are_pruned() {
        let l = HandshakeLimiter::new(HandshakeRateLimit::new(2, Duration::from_secs(1))).unwrap();
        for i in 0..100u8 {
            assert!(l.check(IpAddr::from([10, 0, 1, i])));
        }
        assert_eq!(l.sources(), 100);
        // 2 s refill everyone's burst of 2; the next check prunes them.
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(l.check(ip("10.0.2.1")));
        assert_eq!(l.sources(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn memory_stays_bounded_by_max_sources() {
        let l = HandshakeLimiter::with_max_sources(
            HandshakeRateLimit::new(1, Duration::from_secs(3600)),
            64,
        )
        .unwrap();
        for i in 0..1000u32 {
            l.check(IpAddr::from((0x0a00_0000 + i).to_be_bytes()));
            assert!(l.sources() <= 64, "{} sources after {i}", l.sources());
        }
    }

    #[test]
    fn a_zero_burst_or_interval_is_no_limiter() {
        assert!(
            HandshakeLimiter::new(HandshakeRateLimit::new(0, Duration::from_secs(1))).is_none()
        );
        assert!(HandshakeLimiter::new(HandshakeRateLimit::new(5, Duration::ZERO)).is_none());
    }
}
