//! Counting and reporting inbound rejections so that an operator sees a flood without the
//! log being flooded: every rejection is counted by kind (atomics, read as one
//! [`RejectionCounts`] snapshot), and logged at info level at most once per kind per
//! [`SUMMARY_PERIOD`], each line with the number since the previous one.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::{Error, ErrorKind};

/// At most one info line per rejection kind per this period.
pub const SUMMARY_PERIOD: Duration = Duration::from_secs(10);

/// Inbound connections rejected since the transport was made, by reason: what a metrics
/// exporter reads (see [`Upgrader::rejections`](crate::Upgrader::rejections)). Outbound
/// failures are returned to the dialer and not counted here.
///
/// ```
/// use p2p_transport::RejectionCounts;
///
/// let counts = RejectionCounts::default();
/// assert_eq!(counts.total(), 0);
/// for (label, n) in counts.iter() {
///     // e.g. a `p2p_transport_rejected_total{reason="..."}` counter
///     assert!(!label.is_empty() && n == 0);
/// }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct RejectionCounts {
    /// The secret handshake or the NodeInfo exchange failed or timed out, or the NodeInfo's
    /// ID is not the authenticated one ([`ErrorKind::AuthFailure`]).
    pub auth_failure: u64,
    /// The peer's NodeInfo is invalid ([`ErrorKind::InvalidNodeInfo`]).
    pub invalid_node_info: u64,
    /// The peer is incompatible ([`ErrorKind::Incompatible`]).
    pub incompatible: u64,
    /// We connected to ourselves ([`ErrorKind::SelfConnection`]).
    pub self_connection: u64,
    /// A duplicate connection or IP ([`ErrorKind::Duplicate`]).
    pub duplicate: u64,
    /// Refused by a filter or a filter timed out ([`ErrorKind::Filtered`]).
    pub filtered: u64,
    /// Closed before any handshake work: the source was over the handshake rate limit
    /// ([`ErrorKind::RateLimited`]).
    pub rate_limited: u64,
    /// Closed before any handshake work: the incoming-connection limit was reached (no error
    /// is reported to `accept` for these).
    pub incoming_limit: u64,
    /// Failed for a local reason (the MConnection could not be started).
    pub other: u64,
}

/// The reasons, in the order of [`RejectionCounts::iter`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reason {
    AuthFailure,
    InvalidNodeInfo,
    Incompatible,
    SelfConnection,
    Duplicate,
    Filtered,
    RateLimited,
    IncomingLimit,
    Other,
}

const REASONS: usize = 9;

impl Reason {
    const ALL: [Self; REASONS] = [
        Self::AuthFailure,
        Self::InvalidNodeInfo,
        Self::Incompatible,
        Self::SelfConnection,
        Self::Duplicate,
        Self::Filtered,
        Self::RateLimited,
        Self::IncomingLimit,
        Self::Other,
    ];

    pub(crate) fn of(e: &Error) -> Self {
        match e.kind() {
            ErrorKind::AuthFailure => Self::AuthFailure,
            ErrorKind::InvalidNodeInfo => Self::InvalidNodeInfo,
            ErrorKind::Incompatible => Self::Incompatible,
            ErrorKind::SelfConnection => Self::SelfConnection,
            ErrorKind::Duplicate => Self::Duplicate,
            ErrorKind::Filtered => Self::Filtered,
            ErrorKind::RateLimited => Self::RateLimited,
            ErrorKind::Dial | ErrorKind::Closed | ErrorKind::Other => Self::Other,
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    /// The label of this reason (snake case, stable: metrics use it).
    fn label(self) -> &'static str {
        match self {
            Self::AuthFailure => "auth_failure",
            Self::InvalidNodeInfo => "invalid_node_info",
            Self::Incompatible => "incompatible",
            Self::SelfConnection => "self_connection",
            Self::Duplicate => "duplicate",
            Self::Filtered => "filtered",
            Self::RateLimited => "rate_limited",
            Self::IncomingLimit => "incoming_limit",
            Self::Other => "other",
        }
    }
}

impl RejectionCounts {
    /// All inbound rejections.
    pub fn total(&self) -> u64 {
        self.iter().map(|(_, n)| n).sum()
    }

    /// Rejections after the connection was taken on (an upgrade that failed), leaving out
    /// the ones closed before any handshake work (`rate_limited`, `incoming_limit`).
    pub fn upgrade_failures(&self) -> u64 {
        self.total() - self.rate_limited - self.incoming_limit
    }

    /// `(label, count)` for every reason, labels being the field names (`"auth_failure"`,
    /// ..., `"other"`), in a fixed order: made for exporting as one labelled counter.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + use<> {
        let c = *self;
        Reason::ALL.into_iter().map(move |r| (r.label(), c.get(r)))
    }

    fn get(&self, r: Reason) -> u64 {
        match r {
            Reason::AuthFailure => self.auth_failure,
            Reason::InvalidNodeInfo => self.invalid_node_info,
            Reason::Incompatible => self.incompatible,
            Reason::SelfConnection => self.self_connection,
            Reason::Duplicate => self.duplicate,
            Reason::Filtered => self.filtered,
            Reason::RateLimited => self.rate_limited,
            Reason::IncomingLimit => self.incoming_limit,
            Reason::Other => self.other,
        }
    }
}

/// When each reason was last logged, and its count then.
#[derive(Clone, Copy, Debug, Default)]
struct Logged {
    count: u64,
    at: Option<Instant>,
}

/// The counters and the summary-line state of one transport.
#[derive(Debug, Default)]
pub(crate) struct Rejections {
    counts: [AtomicU64; REASONS],
    logged: Mutex<[Logged; REASONS]>,
}

impl Rejections {
    /// Counts one rejection for `reason` and logs a summary line if this reason has had none
    /// for [`SUMMARY_PERIOD`] (with `example` as the latest case).
    pub(crate) fn record(&self, reason: Reason, example: &dyn fmt::Display) {
        if let Some(count) = self.note(reason, Instant::now()) {
            tracing::info!(
                reason = reason.label(),
                count,
                latest = %example,
                "inbound connections rejected"
            );
        }
    }

    /// Counts one rejection; returns the count to log now, if a line is due.
    fn note(&self, reason: Reason, now: Instant) -> Option<u64> {
        let total = self.counts[reason.index()].fetch_add(1, Ordering::Relaxed) + 1;
        self.due(reason, total, now)
    }

    fn due(&self, reason: Reason, total: u64, now: Instant) -> Option<u64> {
        let mut logged = self.logged.lock().unwrap_or_else(PoisonError::into_inner);
        let l = &mut logged[reason.index()];
        let quiet =
            l.at.is_none_or(|at| now.saturating_duration_since(at) >= SUMMARY_PERIOD);
        if !quiet || total <= l.count {
            return None;
        }
        let since = total - l.count;
        *l = Logged {
            count: total,
            at: Some(now),
        };
        Some(since)
    }

    /// Logs the rejections not yet in a line, for the reasons whose last line is at least
    /// [`SUMMARY_PERIOD`] old (all of them if `all`, when closing).
    pub(crate) fn flush(&self, all: bool) {
        for (reason, count) in self.pending(Instant::now(), all) {
            tracing::info!(
                reason = reason.label(),
                count,
                "inbound connections rejected"
            );
        }
    }

    fn pending(&self, now: Instant, all: bool) -> Vec<(Reason, u64)> {
        let mut lines = Vec::new();
        for reason in Reason::ALL {
            let total = self.counts[reason.index()].load(Ordering::Relaxed);
            let due = if all {
                let mut logged = self.logged.lock().unwrap_or_else(PoisonError::into_inner);
                let l = &mut logged[reason.index()];
                let since = total.saturating_sub(l.count);
                l.count = total;
                l.at = Some(now);
                (since > 0).then_some(since)
            } else {
                self.due(reason, total, now)
            };
            if let Some(n) = due {
                lines.push((reason, n));
            }
        }
        lines
    }

    /// Logs pending summaries every [`SUMMARY_PERIOD`]; never ends (run it beside the accept
    /// loop).
    pub(crate) async fn summaries(&self) {
        let mut tick = tokio::time::interval(SUMMARY_PERIOD);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.flush(false);
        }
    }

    /// The counts now.
    pub(crate) fn snapshot(&self) -> RejectionCounts {
        let n = |r: Reason| self.counts[r.index()].load(Ordering::Relaxed);
        RejectionCounts {
            auth_failure: n(Reason::AuthFailure),
            invalid_node_info: n(Reason::InvalidNodeInfo),
            incompatible: n(Reason::Incompatible),
            self_connection: n(Reason::SelfConnection),
            duplicate: n(Reason::Duplicate),
            filtered: n(Reason::Filtered),
            rate_limited: n(Reason::RateLimited),
            incoming_limit: n(Reason::IncomingLimit),
            other: n(Reason::Other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_counter() {
        let r = Rejections::default();
        let now = Instant::now();
        for (i, reason) in Reason::ALL.into_iter().enumerate() {
            for _ in 0..=i {
                r.note(reason, now);
            }
        }
        let c = r.snapshot();
        assert_eq!(
            c.iter().collect::<Vec<_>>(),
            vec![
                ("auth_failure", 1),
                ("invalid_node_info", 2),
                ("incompatible", 3),
                ("self_connection", 4),
                ("duplicate", 5),
                ("filtered", 6),
                ("rate_limited", 7),
                ("incoming_limit", 8),
                ("other", 9),
            ]
        );
        assert_eq!(c.total(), 45);
        assert_eq!(c.upgrade_failures(), 45 - 7 - 8);
        let addr = "1.2.3.4:5".parse().unwrap();
        assert_eq!(
            Reason::of(&Error::DuplicateConnection { addr }),
            Reason::Duplicate
        );
        assert_eq!(
            Reason::of(&Error::HandshakeRateLimited {
                addr,
                burst: 1,
                interval: Duration::from_secs(1)
            }),
            Reason::RateLimited
        );
    }

    #[tokio::test(start_paused = true)]
    async fn one_line_per_kind_per_period_with_the_count_since_the_last() {
        let r = Rejections::default();
        let t0 = Instant::now();
        // The first rejection of a quiet kind is logged at once.
        assert_eq!(r.note(Reason::AuthFailure, t0), Some(1));
        // A flood within the period: counted, not logged.
        for _ in 0..99 {
            assert_eq!(
                r.note(Reason::AuthFailure, t0 + Duration::from_secs(1)),
                None
            );
        }
        // Another kind has its own line.
        assert_eq!(
            r.note(Reason::RateLimited, t0 + Duration::from_secs(2)),
            Some(1)
        );
        // The periodic flush says nothing before the period is over...
        assert!(r.pending(t0 + Duration::from_secs(9), false).is_empty());
        // ...and then the count since the last line, for the kinds that have one pending.
        assert_eq!(
            r.pending(t0 + SUMMARY_PERIOD, false),
            vec![(Reason::AuthFailure, 99)]
        );
        assert!(r.pending(t0 + Duration::from_secs(15), false).is_empty());
        // A rejection within the new period waits for the next flush.
        assert_eq!(
            r.note(Reason::AuthFailure, t0 + Duration::from_secs(15)),
            None
        );
        assert_eq!(
            r.pending(t0 + Duration::from_secs(20), false),
            vec![(Reason::AuthFailure, 1)]
        );
        // Closing flushes whatever is left, due or not.
        let t21 = t0 + Duration::from_secs(21);
        assert_eq!(r.note(Reason::RateLimited, t21), Some(1), "quiet for 19 s");
        assert_eq!(r.note(Reason::RateLimited, t21), None);
        assert_eq!(
            r.pending(t0 + Duration::from_secs(21), true),
            vec![(Reason::RateLimited, 1)]
        );
        assert_eq!(r.snapshot().auth_failure, 101);
        assert_eq!(r.snapshot().rate_limited, 3);
        assert!(r.pending(t21, true).is_empty(), "nothing left");
    }
}
