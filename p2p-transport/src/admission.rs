//! Admission of a new connection, before any handshake work (the reference's `filterConn`):
//! an entry in the [`ConnSet`] (the duplicate checks), then the connection filters, each
//! within the filter timeout.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use p2p_types::NodeId;

use crate::filter::{ConnFilter, PendingConn, run_filters};
use crate::{ConnSet, Direction, Error, Reservation};

/// What [`admit`] checks a new connection against: whether several connections may share an
/// IP, the connection filters and their timeout. Borrowed from a
/// [`TransportConfig`](crate::TransportConfig) with
/// [`admission`](crate::TransportConfig::admission), or made with [`new`](Self::new).
#[derive(Clone, Copy)]
pub struct Admission<'a> {
    allow_duplicate_ip: bool,
    conn_filters: &'a [Arc<dyn ConnFilter>],
    filter_timeout: Duration,
}

impl fmt::Debug for Admission<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Admission")
            .field("allow_duplicate_ip", &self.allow_duplicate_ip)
            .field(
                "conn_filters",
                &self
                    .conn_filters
                    .iter()
                    .map(|c| c.name())
                    .collect::<Vec<_>>(),
            )
            .field("filter_timeout", &self.filter_timeout)
            .finish()
    }
}

impl<'a> Admission<'a> {
    /// Rules allowing duplicate IPs or not, with `conn_filters` each bounded by
    /// `filter_timeout`.
    pub fn new(
        allow_duplicate_ip: bool,
        conn_filters: &'a [Arc<dyn ConnFilter>],
        filter_timeout: Duration,
    ) -> Self {
        Self {
            allow_duplicate_ip,
            conn_filters,
            filter_timeout,
        }
    }
}

/// Admits a new connection from or to `addr` (resolved to `ips`) into `set`: reserves its
/// entry (refusing a duplicate connection and, unless `rules` allow it, a duplicate IP:
/// checked and inserted atomically), then runs the connection filters concurrently, each
/// within the filter timeout. On any refusal the entry is removed again.
///
/// `dialed` is the ID we dialed for an outbound connection, `None` for an inbound one.
/// Custom transports with their own machinery call this before
/// [`upgrade_with`](crate::upgrade_with) and keep the reservation in the connection with
/// [`Connection::hold`](crate::Connection::hold); the [`Upgrader`](crate::Upgrader) does it
/// for the others.
///
/// ```
/// # async fn f() -> Result<(), p2p_transport::Error> {
/// use p2p_transport::{ConnSet, TransportConfig, admit};
///
/// let config = TransportConfig::default();
/// let set = ConnSet::new();
/// let remote = "10.0.0.7:41000".parse().unwrap();
/// let reservation = admit(&set, remote, vec![remote.ip()], None, config.admission()).await?;
/// assert!(set.contains(&remote));
/// drop(reservation);
/// assert!(set.is_empty());
/// # Ok(()) }
/// ```
pub async fn admit(
    set: &ConnSet,
    addr: SocketAddr,
    ips: Vec<IpAddr>,
    dialed: Option<NodeId>,
    rules: Admission<'_>,
) -> Result<Reservation, Error> {
    let direction = Direction::from_dialed(dialed);
    if rules.conn_filters.is_empty() {
        return set.reserve(addr, ips, direction, rules.allow_duplicate_ip);
    }
    let reservation = set.reserve(addr, ips.clone(), direction, rules.allow_duplicate_ip)?;
    let pending = PendingConn::new(addr, ips, dialed, set.view());
    let checks = rules
        .conn_filters
        .iter()
        .map(|f| (f.name().to_owned(), f.check(&pending)))
        .collect();
    run_filters(checks, rules.filter_timeout, addr, dialed).await?;
    Ok(reservation)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Denied, TransportConfig, conn_filter_fn};

    #[tokio::test(start_paused = true)]
    async fn reserve_then_filters_and_release_on_refusal() {
        let mut config = TransportConfig::default();
        config.conn_filter(conn_filter_fn("two-per-ip", |c| {
            // The view already holds this connection.
            let n = c.conn_set().count_ip(c.remote().ip());
            async move {
                if n > 2 {
                    Err(Denied::new("two-per-ip", "too many"))
                } else {
                    Ok(())
                }
            }
        }));
        config.dangerous().allow_duplicate_ip(true);
        let set = ConnSet::new();
        let addr = |p: u16| SocketAddr::from(([10, 0, 0, 1], p));
        let admit_at = |p: u16| admit(&set, addr(p), vec![addr(p).ip()], None, config.admission());
        let r1 = admit_at(1).await.unwrap();
        let _r2 = admit_at(2).await.unwrap();
        let e = admit_at(3).await.unwrap_err();
        assert!(matches!(&e, Error::Filtered { denied, .. } if denied.filter == "two-per-ip"));
        assert_eq!(set.len(), 2, "the refused connection's entry is gone");
        assert!(matches!(
            admit_at(1).await,
            Err(Error::DuplicateConnection { .. })
        ));
        drop(r1);
        admit_at(3).await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_stuck_filter_times_out() {
        let filters: Vec<Arc<dyn ConnFilter>> = vec![Arc::new(conn_filter_fn("stuck", |_| {
            std::future::pending()
        }))];
        let rules = Admission::new(false, &filters, Duration::from_secs(5));
        let set = ConnSet::new();
        let a = SocketAddr::from(([10, 0, 0, 1], 1));
        let e = admit(&set, a, vec![a.ip()], None, rules).await.unwrap_err();
        assert!(
            matches!(&e, Error::FilterTimeout { filter, timeout, .. }
                if filter == "stuck" && *timeout == Duration::from_secs(5)),
            "{e:?}"
        );
        assert!(set.is_empty());
    }
}
