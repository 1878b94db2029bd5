//! Connection and peer filters: composable, asynchronous vetoes with typed reasons.
//!
//! A **connection filter** ([`ConnFilter`]) sees a new connection before any handshake work:
//! its remote address, its resolved IPs and a read-only view of the transport's connection set
//! ([`ConnSetView`]). A **peer filter**
//! ([`PeerFilter`]) sees the peer after the NodeInfo exchange and all protocol checks: its
//! authenticated ID, its NodeInfo and its address. Filters of one kind run concurrently, each
//! bounded by the filter timeout (5 s by default, as in the reference); the first refusal (or
//! timeout) rejects the connection with [`Error::Filtered`] or
//! [`Error::FilterTimeout`].
//!
//! The reference's duplicate-IP filter is built into the connection set (see
//! [`TransportConfig::dangerous`](crate::TransportConfig::dangerous)); it reports
//! [`Error::DuplicateIp`] like the reference.
//!
//! ```
//! use p2p_transport::{Denied, TransportConfig, conn_filter_fn, peer_filter_fn};
//!
//! let mut config = TransportConfig::default();
//! // At most 100 connections from any one IP (the set holds this connection too).
//! config.conn_filter(conn_filter_fn("per-ip-limit", |conn| {
//!     let n = conn.conn_set().count_ip(conn.remote().ip());
//!     async move {
//!         if n > 100 { Err(Denied::new("per-ip-limit", "too many connections")) } else { Ok(()) }
//!     }
//! }));
//! // Only peers that announce the mempool channel.
//! config.peer_filter(peer_filter_fn("mempool-only", |peer| {
//!     let ok = peer.node_info().has_channel(0x30);
//!     async move { if ok { Ok(()) } else { Err(Denied::new("mempool-only", "no mempool")) } }
//! }));
//! ```

use std::collections::HashSet;
use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use p2p_types::{NetAddress, NodeId, NodeInfo};

pub use crate::error::Denied;
use crate::{ConnSetView, Direction, Error};

/// The future a filter returns: `Ok(())` lets the connection through.
pub type FilterFuture = Pin<Box<dyn Future<Output = Result<(), Denied>> + Send + 'static>>;

/// A new connection as a connection filter sees it, before any handshake.
#[derive(Clone, Debug)]
pub struct PendingConn {
    remote: SocketAddr,
    ips: Vec<IpAddr>,
    direction: Direction,
    dialed: Option<NodeId>,
    conn_set: ConnSetView,
}

impl PendingConn {
    pub(crate) fn new(
        remote: SocketAddr,
        ips: Vec<IpAddr>,
        dialed: Option<NodeId>,
        conn_set: ConnSetView,
    ) -> Self {
        Self {
            remote,
            ips,
            direction: Direction::from_dialed(dialed),
            dialed,
            conn_set,
        }
    }

    /// The remote socket address.
    pub fn remote(&self) -> SocketAddr {
        self.remote
    }

    /// The remote host's resolved IPs (for IP transports, the one IP of the socket).
    pub fn ips(&self) -> &[IpAddr] {
        &self.ips
    }

    /// Whether we dialed or accepted the connection.
    pub fn direction(&self) -> Direction {
        self.direction
    }

    /// The node ID we dialed (outbound only; not yet authenticated).
    pub fn dialed_id(&self) -> Option<NodeId> {
        self.dialed
    }

    /// The transport's connection set, read-only. It already holds this connection's entry.
    pub fn conn_set(&self) -> &ConnSetView {
        &self.conn_set
    }
}

/// An upgraded peer as a peer filter sees it: authenticated, NodeInfo checked, MConnection not
/// yet started.
#[derive(Clone, Debug)]
pub struct PendingPeer {
    pub(crate) node_info: Arc<NodeInfo>,
    pub(crate) addr: NetAddress,
    pub(crate) direction: Direction,
}

impl PendingPeer {
    /// The peer's NodeInfo (its ID is the authenticated one).
    pub fn node_info(&self) -> &NodeInfo {
        &self.node_info
    }

    /// The peer's authenticated ID.
    pub fn id(&self) -> NodeId {
        self.addr.id()
    }

    /// The peer's address: authenticated ID at the remote socket address.
    pub fn addr(&self) -> &NetAddress {
        &self.addr
    }

    /// Whether we dialed or accepted the connection.
    pub fn direction(&self) -> Direction {
        self.direction
    }
}

/// A veto on new connections, run before any handshake work (the reference's
/// `ConnFilterFunc`).
pub trait ConnFilter: Send + Sync + 'static {
    /// A name for logs and errors.
    fn name(&self) -> &str {
        std::any::type_name::<Self>()
    }

    /// Lets the connection through (`Ok`) or refuses it. Take what you need from `conn`; the
    /// future must not borrow it.
    fn check(&self, conn: &PendingConn) -> FilterFuture;
}

/// A veto on upgraded peers, run after the NodeInfo checks (the reference's `PeerFilterFunc`,
/// which its switch runs; here the transport runs it, so a refused peer never gets an
/// MConnection).
pub trait PeerFilter: Send + Sync + 'static {
    /// A name for logs and errors.
    fn name(&self) -> &str {
        std::any::type_name::<Self>()
    }

    /// Lets the peer through (`Ok`) or refuses it.
    fn check(&self, peer: &PendingPeer) -> FilterFuture;
}

/// A [`ConnFilter`] made of a name and a closure; see [`conn_filter_fn`].
pub struct FnConnFilter<F> {
    name: String,
    f: F,
}

/// A [`PeerFilter`] made of a name and a closure; see [`peer_filter_fn`].
pub struct FnPeerFilter<F> {
    name: String,
    f: F,
}

impl<F> fmt::Debug for FnConnFilter<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FnConnFilter")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<F> fmt::Debug for FnPeerFilter<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FnPeerFilter")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// A connection filter from a closure returning a future.
pub fn conn_filter_fn<F, Fut>(name: impl Into<String>, f: F) -> FnConnFilter<F>
where
    F: Fn(&PendingConn) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), Denied>> + Send + 'static,
{
    FnConnFilter {
        name: name.into(),
        f,
    }
}

/// A peer filter from a closure returning a future.
pub fn peer_filter_fn<F, Fut>(name: impl Into<String>, f: F) -> FnPeerFilter<F>
where
    F: Fn(&PendingPeer) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), Denied>> + Send + 'static,
{
    FnPeerFilter {
        name: name.into(),
        f,
    }
}

impl<F, Fut> ConnFilter for FnConnFilter<F>
where
    F: Fn(&PendingConn) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), Denied>> + Send + 'static,
{
    fn name(&self) -> &str {
        &self.name
    }

    fn check(&self, conn: &PendingConn) -> FilterFuture {
        Box::pin((self.f)(conn))
    }
}

impl<F, Fut> PeerFilter for FnPeerFilter<F>
where
    F: Fn(&PendingPeer) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), Denied>> + Send + 'static,
{
    fn name(&self) -> &str {
        &self.name
    }

    fn check(&self, peer: &PendingPeer) -> FilterFuture {
        Box::pin((self.f)(peer))
    }
}

/// A filter with a bypass set: the listed peers get through without asking the wrapped filter
/// (for the reference's unconditional peers; libp2p's `bypass_peer_id`). Make one with
/// [`bypass`].
///
/// A connection filter knows the peer's ID only when we dial (the dialed ID); inbound
/// connections are unauthenticated at that point and are always checked.
pub struct Bypass<F> {
    inner: F,
    ids: HashSet<NodeId>,
}

impl<F> fmt::Debug for Bypass<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bypass")
            .field("ids", &self.ids)
            .finish_non_exhaustive()
    }
}

/// Wraps a connection or peer filter so that the peers in `ids` bypass it.
///
/// ```
/// use p2p_transport::{Denied, TransportConfig, filter::bypass, peer_filter_fn};
/// # let friend = p2p_types::NodeKey::from_seed([1; 32]).node_id();
/// let deny_all = peer_filter_fn("closed-club", |_| async { Err(Denied::new("closed-club", "members only")) });
/// let mut config = TransportConfig::default();
/// config.peer_filter(bypass(deny_all, [friend]));
/// ```
pub fn bypass<F>(inner: F, ids: impl IntoIterator<Item = NodeId>) -> Bypass<F> {
    Bypass {
        inner,
        ids: ids.into_iter().collect(),
    }
}

impl<F: ConnFilter> ConnFilter for Bypass<F> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn check(&self, conn: &PendingConn) -> FilterFuture {
        match conn.dialed_id() {
            Some(id) if self.ids.contains(&id) => Box::pin(std::future::ready(Ok(()))),
            _ => self.inner.check(conn),
        }
    }
}

impl<F: PeerFilter> PeerFilter for Bypass<F> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn check(&self, peer: &PendingPeer) -> FilterFuture {
        if self.ids.contains(&peer.id()) {
            Box::pin(std::future::ready(Ok(())))
        } else {
            self.inner.check(peer)
        }
    }
}

/// Runs filters concurrently, each within `timeout`; the first refusal or timeout wins.
pub(crate) async fn run_filters(
    checks: Vec<(String, FilterFuture)>,
    timeout: Duration,
    addr: SocketAddr,
    id: Option<NodeId>,
) -> Result<(), Error> {
    let verdict = |name: String, r: Result<Result<(), Denied>, tokio::time::error::Elapsed>| match r
    {
        Ok(Ok(())) => Ok(()),
        Ok(Err(denied)) => Err(Error::Filtered { addr, id, denied }),
        Err(_) => Err(Error::FilterTimeout {
            addr,
            id,
            filter: name,
            timeout,
        }),
    };
    if checks.is_empty() {
        return Ok(());
    }
    // Each filter runs as its own task, so a panicking filter rejects the connection (as in the
    // reference) instead of unwinding the upgrade.
    let mut set = tokio::task::JoinSet::new();
    for (name, fut) in checks {
        set.spawn(async move { (name, tokio::time::timeout(timeout, fut).await) });
    }
    // Dropping the set aborts the filters still running once one has refused.
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((name, r)) => verdict(name, r)?,
            Err(e) => {
                return Err(Error::Filtered {
                    addr,
                    id,
                    denied: Denied::new("filter", format!("filter task failed: {e}")),
                });
            }
        }
    }
    Ok(())
}
