//! The transport seam: what the switch needs from any way of moving bytes between nodes.

use std::future::Future;
use std::net::SocketAddr;

use p2p_types::NetAddress;

use crate::{Connection, Error};

/// A way to reach peers and be reached by them, yielding authenticated, checked, multiplexed
/// [`Connection`]s. The switch is generic over it; [`TcpTransport`](crate::TcpTransport) is the
/// default, and a custom transport (in-memory, Unix sockets, QUIC streams, ...) implements it
/// by moving bytes its own way and leaving the rest to an [`Upgrader`](crate::Upgrader), which
/// runs the shared [`upgrade_with`](crate::upgrade_with) pipeline on them and gives the
/// guarantees below.
///
/// Addresses are the protocol's: peers are dialed by `id@ip:port` ([`NetAddress`], what
/// address books and PEX exchange) and listen on an `ip:port`. A transport whose endpoints are
/// not IP sockets maps these onto its own (see `p2p-testkit`'s in-memory transport and its Unix
/// socket example).
///
/// All methods take `&self` and may be called concurrently from several tasks (the switch
/// accepts in one task while dialing in others); share a transport with `Arc`.
///
/// # What an implementation must guarantee
///
/// `p2p_testkit::conformance` checks these for any implementation.
///
/// 1. **Only upgraded peers come out.** `accept` and `dial` return a `Connection` only after
///    the whole upgrade succeeded: secret handshake, dialed-ID check (outbound), NodeInfo
///    exchange and checks, self check, compatibility, filters, MConnection started. Using
///    [`upgrade_with`](crate::upgrade_with) gives exactly this.
/// 2. **Correct metadata.** A connection's `node_id` is the authenticated ID, its
///    `node_info` what the peer sent, its `remote_addr` that ID at the remote socket address,
///    its direction `Outbound` for `dial` and `Inbound` for `accept`.
/// 3. **Typed rejections that never end accept.** A failed inbound upgrade is reported by
///    `accept` as an `Err` for which [`Error::is_rejection`] holds (a transport may drop such
///    reports when too many wait unaccepted, but never queues them without bound), and the
///    next `accept` call works as before. Only [`Error::Closed`] means accept is over.
///    `dial` reports its failures the same way ([`Error::is_dial`] for connecting).
/// 4. **Close.** After [`close`](Self::close) returns, the listener is gone (its address is
///    free again), upgrades in progress are abandoned, pending and later `accept` calls and
///    later `dial` calls return [`Error::Closed`]. Established connections are left to their
///    owner (the switch stops its peers). Closing twice is harmless.
/// 5. **Cleanup releases everything.** [`cleanup`](Self::cleanup) stops the connection's
///    MConnection (closing its stream) and releases every resource the transport keeps for it
///    (connection set entry, incoming slot), so the same peer can connect again at once.
///    Dropping a `Connection` releases them too.
/// 6. **Cancel safety.** Dropping an `accept` future (e.g. in a `select!`) loses no
///    connection: one that was ready is returned by the next call. Dropping a `dial` future
///    abandons that dial and releases what it held.
/// 7. **Boundedness.** Every queue has a cap; a peer can make the transport hold at most a
///    bounded amount of memory and tasks per connection, and each upgrade ends within its
///    timeouts.
///
/// Implementations should also upgrade inbound connections concurrently, so that one slow or
/// silent connection never delays the others (as the [`Upgrader`](crate::Upgrader) does).
///
/// # Example: the switch's side
///
/// ```no_run
/// use p2p_transport::Transport;
///
/// async fn accept_loop<T: Transport>(transport: &T) {
///     loop {
///         match transport.accept().await {
///             Ok(conn) => println!("new peer {}", conn.remote_addr()),
///             Err(e) if e.is_closed() => break,
///             Err(e) => println!("rejected: {e}"), // and keep accepting
///         }
///     }
/// }
/// ```
pub trait Transport: Send + Sync + 'static {
    /// Starts listening on `addr` (port 0 picks a free port) and returns the address actually
    /// bound. A transport listens at most once ([`Error::AlreadyListening`]); a closed one
    /// fails with [`Error::Closed`].
    fn listen(&self, addr: SocketAddr) -> impl Future<Output = Result<SocketAddr, Error>> + Send;

    /// The next upgraded inbound connection, or the next inbound rejection, or
    /// [`Error::Closed`]. Waits while nothing comes in (also before `listen`). Cancel-safe.
    fn accept(&self) -> impl Future<Output = Result<Connection, Error>> + Send;

    /// Connects to `addr` and upgrades the connection, checking that the peer is `addr.id()`.
    fn dial(&self, addr: &NetAddress) -> impl Future<Output = Result<Connection, Error>> + Send;

    /// Stops the connection and releases what the transport holds for it. Must not block.
    fn cleanup(&self, conn: Connection);

    /// Stops listening and abandons upgrades in progress; afterwards `accept` and `dial` return
    /// [`Error::Closed`]. Resolves once the listener is gone.
    fn close(&self) -> impl Future<Output = ()> + Send;
}
