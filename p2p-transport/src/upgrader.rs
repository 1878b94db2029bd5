//! What every transport does besides moving bytes: admission and upgrade of each connected
//! stream, the bounded accept queue, the incoming limit, the listener's lifetime and close.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use p2p_types::{NetAddress, NodeId};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::rate_limit::HandshakeLimiter;
use crate::rejections::{Reason, RejectionCounts, Rejections};
use crate::{ConnSet, Connection, Error, UpgradeConfig, admit, upgrade_with};

/// How long an accept loop pauses after the OS refuses to accept (e.g. out of file
/// descriptors), so that it does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// The transport-independent half of a [`Transport`](crate::Transport): a transport built on
/// it keeps only how its bytes travel (binding, connecting, accepting streams) and delegates
/// the rest.
///
/// It owns:
///
/// - the admission and upgrade of every connected stream, inbound or outbound:
///   [`admit`] into its [`ConnSet`] for the duplicate checks and connection filters before any handshake
///   work, then [`upgrade_with`], then the connection set entry marked established and held by
///   the [`Connection`] (released on cleanup or drop);
/// - the dial path ([`dial`](Self::dial): the dial timeout around your connect, then the
///   upgrade, abandoned on close);
/// - the inbound path, through the [`Inbound`] handle its accept loop gets: the per-source
///   [handshake rate limit](crate::TransportConfig::handshake_rate_limit) and the
///   [incoming limit](crate::TransportConfig::max_incoming_connections) checked before any
///   handshake work, one upgrade task per stream, results in a bounded queue
///   ([`accept_queue`](crate::TransportConfig::accept_queue)) from which a full queue drops
///   rejection reports (still counted by kind and logged in summaries) while upgraded
///   connections wait for room;
/// - [`accept`](Self::accept) (cancel-safe; [`Error::Closed`] once closed);
/// - the listener: [`listen`](Self::listen) binds once and runs your accept loop in a task,
///   [`close`](Self::close) stops it, abandons upgrades in progress and drops the connections
///   nobody accepted;
/// - the counters of [`stats`](Self::stats) and [`rejections`](Self::rejections).
///
/// So a transport's [`Transport`](crate::Transport) methods are one call each, and it gives
/// the trait's guarantees as long as its accept loop ends once [`Inbound::until_closed`]
/// returns `None` and its listener frees its address when dropped. Dropping the `Upgrader`
/// closes it without waiting (the accept loop and upgrades stop at their next poll).
///
/// A transport over Unix domain sockets, whole (inbound connections get made-up addresses,
/// since a Unix socket has none; all on one IP, so a real deployment would turn the per-source
/// [handshake rate limit](crate::TransportConfig::handshake_rate_limit) off or key its
/// addresses by something meaningful):
///
/// ```no_run
/// use std::net::SocketAddr;
/// use std::path::PathBuf;
/// use p2p_transport::{Connection, Error, Inbound, Transport, Upgrader};
/// use p2p_types::NetAddress;
/// use tokio::net::{UnixListener, UnixStream};
///
/// struct UnixTransport {
///     dir: PathBuf,
///     upgrader: Upgrader, // Upgrader::new(UpgradeConfig::new(key, node_info, config)?)
/// }
///
/// impl UnixTransport {
///     fn path(&self, addr: SocketAddr) -> PathBuf {
///         self.dir.join(format!("{}_{}.sock", addr.ip(), addr.port()))
///     }
/// }
///
/// async fn accept_loop(inbound: Inbound, listener: UnixListener) {
///     let mut n: u16 = 0;
///     while let Some(accepted) = inbound.until_closed(listener.accept()).await {
///         match accepted {
///             Ok((stream, _)) => {
///                 n = n.wrapping_add(1);
///                 let remote = SocketAddr::from(([127, 0, 0, 1], n));
///                 inbound.spawn_upgrade(stream, UnixStream::into_split, remote);
///             }
///             Err(e) => inbound.pause_after_error(&e).await,
///         }
///     }
/// }
///
/// impl Transport for UnixTransport {
///     async fn listen(&self, addr: SocketAddr) -> Result<SocketAddr, Error> {
///         let path = self.path(addr);
///         let bind = async move { Ok((addr, UnixListener::bind(path)?)) };
///         self.upgrader.listen(addr, bind, accept_loop).await
///     }
///
///     async fn accept(&self) -> Result<Connection, Error> {
///         self.upgrader.accept().await
///     }
///
///     async fn dial(&self, addr: &NetAddress) -> Result<Connection, Error> {
///         let connect = UnixStream::connect(self.path(addr.socket_addr()));
///         self.upgrader.dial(addr, connect, UnixStream::into_split).await
///     }
///
///     fn cleanup(&self, conn: Connection) {
///         conn.close();
///     }
///
///     async fn close(&self) {
///         self.upgrader.close().await;
///     }
/// }
/// ```
///
/// This sketch leaves the socket file behind when the listener goes, so the address is not
/// free again after close; `p2p-testkit`'s `examples/unix_transport.rs` is the complete
/// transport (the file removed with the listener, free "ports" for port 0) and runs the
/// conformance suite on it.
#[derive(Debug)]
pub struct Upgrader {
    shared: Arc<Shared>,
}

/// The handle an accept loop works with: hands each accepted stream to the [`Upgrader`]
/// ([`spawn_upgrade`](Self::spawn_upgrade)) and tells the loop when to stop
/// ([`until_closed`](Self::until_closed)). Cheap to clone; holding one does not keep the
/// transport open.
#[derive(Clone, Debug)]
pub struct Inbound {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    upgrade: UpgradeConfig,
    conn_set: ConnSet,
    closed: CancellationToken,
    accept_tx: mpsc::Sender<Result<Connection, Error>>,
    accept_rx: tokio::sync::Mutex<mpsc::Receiver<Result<Connection, Error>>>,
    listener: Mutex<Option<Listening>>,
    incoming: Arc<AtomicUsize>,
    upgrading: Arc<AtomicUsize>,
    handshake_limiter: Option<HandshakeLimiter>,
    rejections: Rejections,
    reports_dropped: AtomicU64,
}

#[derive(Debug)]
struct Listening {
    addr: SocketAddr,
    task: Option<JoinHandle<()>>,
}

/// Counters of an [`Upgrader`] (and so of [`TcpTransport`](crate::TcpTransport) and any
/// transport built on one), for monitoring and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TransportStats {
    /// Inbound connections holding a slot of the incoming limit: being upgraded, waiting for
    /// `accept`, or established and not yet cleaned up.
    pub incoming: usize,
    /// Connections (inbound and outbound) whose upgrade is in progress.
    pub upgrading: usize,
    /// Entries in the connection set.
    pub tracked: usize,
    /// Inbound connections closed at once because the incoming limit was reached.
    pub refused: u64,
    /// Inbound connections closed at once because their source was over the
    /// [handshake rate limit](crate::TransportConfig::handshake_rate_limit).
    pub rate_limited: u64,
    /// Inbound upgrades that failed (rejections).
    pub rejected: u64,
    /// Rejection reports that found the accept queue full and were dropped (they are counted
    /// in [`Upgrader::rejections`] all the same).
    pub reports_dropped: u64,
}

/// Decrements a counter when dropped.
#[derive(Debug)]
struct CountGuard(Arc<AtomicUsize>);

impl CountGuard {
    fn new(counter: &Arc<AtomicUsize>) -> Self {
        counter.fetch_add(1, Ordering::AcqRel);
        Self(Arc::clone(counter))
    }

    /// Takes one unit of `counter` unless it is at `limit` (0: no limit), atomically, so
    /// concurrent takers never overshoot.
    fn try_new(counter: &Arc<AtomicUsize>, limit: usize) -> Option<Self> {
        if limit == 0 {
            return Some(Self::new(counter));
        }
        counter
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .ok()
            .map(|_| Self(Arc::clone(counter)))
    }
}

impl Drop for CountGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Upgrader {
    /// An upgrader for connections upgraded with `upgrade` (our identity and the
    /// [`TransportConfig`](crate::TransportConfig)), neither listening nor closed.
    pub fn new(upgrade: UpgradeConfig) -> Self {
        let cfg = upgrade.transport_config();
        let (accept_tx, accept_rx) = mpsc::channel(cfg.accept_queue);
        let handshake_limiter = cfg.handshake_rate_limit.and_then(HandshakeLimiter::new);
        Self {
            shared: Arc::new(Shared {
                upgrade,
                conn_set: ConnSet::new(),
                closed: CancellationToken::new(),
                accept_tx,
                accept_rx: tokio::sync::Mutex::new(accept_rx),
                listener: Mutex::new(None),
                incoming: Arc::new(AtomicUsize::new(0)),
                upgrading: Arc::new(AtomicUsize::new(0)),
                handshake_limiter,
                rejections: Rejections::default(),
                reports_dropped: AtomicU64::new(0),
            }),
        }
    }

    /// The identity and settings connections are upgraded with.
    pub fn upgrade_config(&self) -> &UpgradeConfig {
        &self.shared.upgrade
    }

    /// The connection set (established and in-progress connections).
    pub fn conn_set(&self) -> &ConnSet {
        &self.shared.conn_set
    }

    /// Current counters.
    pub fn stats(&self) -> TransportStats {
        let s = &self.shared;
        let rejections = s.rejections.snapshot();
        TransportStats {
            incoming: s.incoming.load(Ordering::Acquire),
            upgrading: s.upgrading.load(Ordering::Acquire),
            tracked: s.conn_set.len(),
            refused: rejections.incoming_limit,
            rate_limited: rejections.rate_limited,
            rejected: rejections.upgrade_failures(),
            reports_dropped: s.reports_dropped.load(Ordering::Relaxed),
        }
    }

    /// Every inbound rejection so far, counted by kind, including those closed before any
    /// handshake work and those whose report to `accept` was dropped because the accept queue
    /// was full: a cheap snapshot of atomic counters, for metrics.
    ///
    /// Rejections are also logged at info level, at most one line per kind per
    /// [`SUMMARY_PERIOD`](crate::SUMMARY_PERIOD) with the count since the previous line (the
    /// first of a quiet kind at once, the rest by a timer that runs while listening, and
    /// what is left at close), so a flood shows in the log without flooding it. Each
    /// rejection is logged on its own at debug level.
    pub fn rejections(&self) -> RejectionCounts {
        self.shared.rejections.snapshot()
    }

    /// Whether [`close`](Self::close) (or [`close_now`](Self::close_now)) was called.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.is_cancelled()
    }

    /// The address [`listen`](Self::listen) bound, once listening (kept after close).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.shared.listener().as_ref().map(|l| l.addr)
    }

    /// A handle for an accept loop that [`listen`](Self::listen) does not start (`listen`
    /// hands one to the loop it spawns).
    pub fn inbound(&self) -> Inbound {
        Inbound {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Listens, once: fails with [`Error::Closed`] after close and with
    /// [`Error::AlreadyListening`] when listening already (both checked before and after
    /// `bind`), else awaits `bind`, which yields the address actually bound and the listener
    /// ([`Error::Listen`] for its error, carrying `addr`), and spawns
    /// `accept_loop(inbound, listener)`.
    ///
    /// The accept loop hands every stream it accepts to [`Inbound::spawn_upgrade`] and must end
    /// once [`Inbound::until_closed`] returns `None`; the listener must free its address when
    /// dropped (when the loop ends, or at once if another `listen` won a race), since
    /// [`close`](Self::close) waits for the loop to end.
    pub async fn listen<L, B, A, AF>(
        &self,
        addr: SocketAddr,
        bind: B,
        accept_loop: A,
    ) -> Result<SocketAddr, Error>
    where
        B: Future<Output = io::Result<(SocketAddr, L)>>,
        A: FnOnce(Inbound, L) -> AF,
        AF: Future<Output = ()> + Send + 'static,
    {
        self.can_listen()?;
        let (bound, listener) = bind.await.map_err(|e| Error::Listen {
            addr,
            source: Arc::new(e),
        })?;
        let mut state = self.shared.listener();
        // A `listen` that raced ours may have won; our listener is dropped then.
        self.can_listen_locked(&state)?;
        let accept_loop = accept_loop(self.inbound(), listener);
        let shared = Arc::clone(&self.shared);
        let task = tokio::spawn(async move {
            tokio::select! {
                () = accept_loop => {}
                () = shared.rejections.summaries() => {}
            }
            shared.rejections.flush(true);
            tracing::debug!("transport listener stopped");
        });
        *state = Some(Listening {
            addr: bound,
            task: Some(task),
        });
        tracing::info!(addr = %bound, "transport listening");
        Ok(bound)
    }

    fn can_listen(&self) -> Result<(), Error> {
        self.can_listen_locked(&self.shared.listener())
    }

    fn can_listen_locked(&self, state: &Option<Listening>) -> Result<(), Error> {
        if self.is_closed() {
            return Err(Error::Closed);
        }
        match state {
            Some(l) => Err(Error::AlreadyListening { addr: l.addr }),
            None => Ok(()),
        }
    }

    /// The next upgraded inbound connection or inbound rejection, or [`Error::Closed`] once
    /// closed; waits while nothing comes in. Cancel-safe: a result that was ready when the
    /// future was dropped is returned by the next call. Concurrent calls take turns.
    pub async fn accept(&self) -> Result<Connection, Error> {
        let closed = &self.shared.closed;
        if closed.is_cancelled() {
            return Err(Error::Closed);
        }
        let mut rx = tokio::select! {
            () = closed.cancelled() => return Err(Error::Closed),
            rx = self.shared.accept_rx.lock() => rx,
        };
        tokio::select! {
            biased;
            () = closed.cancelled() => Err(Error::Closed),
            item = rx.recv() => item.unwrap_or(Err(Error::Closed)),
        }
    }

    /// Dials `addr`: [`Error::Closed`] if closed, else `connect` (a lazy future: an `async` fn
    /// or block opening a stream to `addr`) within the
    /// [dial timeout](crate::TransportConfig::dial_timeout) ([`Error::DialTimeout`],
    /// [`Error::Dial`]), then admission and [`upgrade_with`] (with `split`) expecting the peer
    /// to be `addr.id()`. Close abandons it ([`Error::Closed`]); so does dropping the future,
    /// releasing what it held. Counted in [`TransportStats::upgrading`] from admission on.
    pub async fn dial<C, S, F, R, W>(
        &self,
        addr: &NetAddress,
        connect: C,
        split: F,
    ) -> Result<Connection, Error>
    where
        C: Future<Output = io::Result<S>>,
        S: AsyncRead + AsyncWrite + Unpin,
        F: FnOnce(S) -> (R, W),
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let s = &self.shared;
        if s.closed.is_cancelled() {
            return Err(Error::Closed);
        }
        let remote = addr.socket_addr();
        let work = async {
            let timeout = s.upgrade.transport_config().dial_timeout;
            let stream = match tokio::time::timeout(timeout, connect).await {
                Err(_) => {
                    return Err(Error::DialTimeout {
                        addr: remote,
                        timeout,
                    });
                }
                Ok(Err(e)) => return Err(Error::dial(remote, e)),
                Ok(Ok(stream)) => stream,
            };
            s.upgrade(stream, split, remote, Some(addr.id())).await
        };
        until_closed(&s.closed, work)
            .await
            .unwrap_or(Err(Error::Closed))
    }

    /// Closes: pending and later [`accept`](Self::accept) and [`dial`](Self::dial) calls
    /// return [`Error::Closed`], later [`listen`](Self::listen) calls too, upgrades in progress
    /// are abandoned; then waits for the accept loop to end (its listener dropped) and drops
    /// the upgraded connections nobody accepted (releasing their slots). Established
    /// connections are left to their owner. Closing twice is harmless.
    pub async fn close(&self) {
        let s = &self.shared;
        s.closed.cancel();
        let task = s.listener().as_mut().and_then(|l| l.task.take());
        if let Some(task) = task {
            // The loop ends at its next poll and drops the listener.
            let _ = task.await;
        }
        let mut rx = s.accept_rx.lock().await;
        rx.close();
        while rx.try_recv().is_ok() {}
    }

    /// Closes without waiting, as dropping the `Upgrader` does: the accept loop and the
    /// upgrades in progress stop at their next poll.
    pub fn close_now(&self) {
        self.shared.closed.cancel();
    }
}

impl Drop for Upgrader {
    fn drop(&mut self) {
        // Stops the accept loop and the upgrades in progress, which hold `shared` too.
        self.shared.closed.cancel();
    }
}

impl Inbound {
    /// Takes over a newly accepted stream from `remote` (a non-IP transport makes an address
    /// up). Must be called within a tokio runtime.
    ///
    /// - If `remote`'s source is over the
    ///   [handshake rate limit](crate::TransportConfig::handshake_rate_limit), the stream is
    ///   dropped at once, before any handshake work, counted in
    ///   [`TransportStats::rate_limited`], reported to `accept` as
    ///   [`Error::HandshakeRateLimited`] if the queue has room, and this returns `false`.
    /// - At the [incoming limit](crate::TransportConfig::max_incoming_connections), the stream
    ///   is dropped at once, before any handshake work, counted in
    ///   [`TransportStats::refused`], and this returns `false`.
    /// - Otherwise it takes a slot of the limit and is admitted and upgraded (see [`Upgrader`])
    ///   in a task of its own, so a slow or silent stream delays no other; close abandons it.
    /// - An upgraded connection holds the slot until it is cleaned up or dropped, and waits for
    ///   room in the accept queue.
    /// - A rejection frees the slot, is counted in [`TransportStats::rejected`], and is
    ///   reported to `accept` only if the queue has room (otherwise it is logged and dropped),
    ///   so rejections never pile up.
    pub fn spawn_upgrade<S, F, R, W>(&self, stream: S, split: F, remote: SocketAddr) -> bool
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
        F: FnOnce(S) -> (R, W) + Send + 'static,
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let s = &self.shared;
        if let Some(limiter) = &s.handshake_limiter {
            if !limiter.check(remote.ip()) {
                let limit = limiter.limit();
                let e = Error::HandshakeRateLimited {
                    addr: remote,
                    burst: limit.burst(),
                    interval: limit.interval(),
                };
                // Counted before the close, so whoever sees the close also sees the count.
                s.reject(remote, e);
                drop(stream);
                return false;
            }
        }
        let limit = s.upgrade.transport_config().max_incoming_connections;
        let Some(slot) = CountGuard::try_new(&s.incoming, limit) else {
            tracing::debug!(%remote, limit, "incoming connection limit reached, closing");
            s.rejections.record(
                Reason::IncomingLimit,
                &format_args!("{remote}: incoming connection limit {limit} reached"),
            );
            drop(stream);
            return false;
        };
        tokio::spawn(upgrade_inbound(Arc::clone(s), stream, split, remote, slot));
        true
    }

    /// `fut`'s output, or `None` once the transport is closed (checked first): wrap each
    /// accept of an accept loop in it and end the loop on `None`.
    pub async fn until_closed<T>(&self, fut: impl Future<Output = T>) -> Option<T> {
        until_closed(&self.shared.closed, fut).await
    }

    /// What an accept loop does when accepting fails: logs `error` and pauses briefly (less if
    /// the transport closes meanwhile), so that the loop neither spins nor ends. Unlike the
    /// reference, an accept error never ends accepting (its switch panics then); the usual
    /// cause is running out of file descriptors, which passes.
    pub async fn pause_after_error(&self, error: &io::Error) {
        tracing::warn!(%error, "accepting a connection failed");
        let _ = self
            .until_closed(tokio::time::sleep(ACCEPT_ERROR_PAUSE))
            .await;
    }

    /// Whether the transport is closed.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.is_cancelled()
    }
}

impl Shared {
    /// Counts and logs an inbound rejection, and reports it to `accept` if the queue has room
    /// (drops the report otherwise).
    fn reject(&self, remote: SocketAddr, e: Error) {
        tracing::debug!(error = %e, "inbound connection rejected");
        self.rejections.record(Reason::of(&e), &e);
        if let Err(mpsc::error::TrySendError::Full(_)) = self.accept_tx.try_send(Err(e)) {
            self.reports_dropped.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%remote, "accept queue full, rejection report dropped");
        }
    }

    fn listener(&self) -> MutexGuard<'_, Option<Listening>> {
        self.listener.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Admission, then the upgrade. The callers bound it by closing.
    async fn upgrade<S, F, R, W>(
        &self,
        stream: S,
        split: F,
        remote: SocketAddr,
        dialed: Option<NodeId>,
    ) -> Result<Connection, Error>
    where
        S: AsyncRead + AsyncWrite + Unpin,
        F: FnOnce(S) -> (R, W),
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let _upgrading = CountGuard::new(&self.upgrading);
        let rules = self.upgrade.transport_config().admission();
        let reservation = admit(&self.conn_set, remote, vec![remote.ip()], dialed, rules).await?;
        let mut conn = upgrade_with(stream, split, remote, dialed, &self.upgrade).await?;
        reservation.set_established();
        conn.hold(reservation);
        Ok(conn)
    }
}

/// One inbound stream's task: the upgrade, then the accept queue.
async fn upgrade_inbound<S, F, R, W>(
    shared: Arc<Shared>,
    stream: S,
    split: F,
    remote: SocketAddr,
    slot: CountGuard,
) where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(S) -> (R, W),
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let upgrade = shared.upgrade(stream, split, remote, None);
    let Some(result) = until_closed(&shared.closed, upgrade).await else {
        return;
    };
    match result {
        Ok(mut conn) => {
            conn.hold(slot);
            // If `accept` is never called, the connection waits here with its slot.
            let _ = until_closed(&shared.closed, shared.accept_tx.send(Ok(conn))).await;
        }
        Err(e) => {
            drop(slot);
            shared.reject(remote, e);
        }
    }
}

/// `fut`'s output, or `None` once `closed` is cancelled (checked first).
async fn until_closed<T>(closed: &CancellationToken, fut: impl Future<Output = T>) -> Option<T> {
    tokio::select! {
        biased;
        () = closed.cancelled() => None,
        r = fut => Some(r),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TransportConfig;
    use p2p_types::{NodeInfo, NodeKey};

    fn upgrader() -> Upgrader {
        let key = NodeKey::from_seed([1; 32]);
        let info = NodeInfo::new(key.node_id(), "chain", "tcp://127.0.0.1:26656");
        Upgrader::new(UpgradeConfig::new(key, info, TransportConfig::default()).unwrap())
    }

    /// An accept loop that accepts nothing until closed.
    async fn idle<L>(inbound: Inbound, listener: L) {
        inbound.until_closed(std::future::pending::<()>()).await;
        drop(listener);
    }

    #[tokio::test]
    async fn listen_once_and_close() {
        let u = upgrader();
        let (a, b): (SocketAddr, SocketAddr) =
            ("10.0.0.1:1".parse().unwrap(), "10.0.0.1:2".parse().unwrap());
        let (lost, won) = (Arc::new(()), Arc::new(()));
        let (lost_weak, won_weak) = (Arc::downgrade(&lost), Arc::downgrade(&won));
        // The first `listen` is still binding when the second one finishes.
        let slow = async move {
            tokio::task::yield_now().await;
            Ok((b, lost))
        };
        let (r1, r2) = tokio::join!(
            u.listen(b, slow, idle),
            u.listen(a, async move { Ok((a, won)) }, idle),
        );
        assert!(matches!(r1, Err(Error::AlreadyListening { addr }) if addr == a));
        assert_eq!(r2.unwrap(), a);
        assert!(
            lost_weak.upgrade().is_none(),
            "the losing listener was kept"
        );
        assert_eq!(u.local_addr(), Some(a));
        assert!(won_weak.upgrade().is_some());

        u.close().await;
        assert!(
            won_weak.upgrade().is_none(),
            "close left the listener alive"
        );
        assert!(matches!(u.accept().await, Err(Error::Closed)));
        let to = NetAddress::new(NodeKey::from_seed([2; 32]).node_id(), b);
        let never = std::future::pending::<io::Result<tokio::io::DuplexStream>>();
        assert!(matches!(
            u.dial(&to, never, tokio::io::split).await,
            Err(Error::Closed)
        ));
        let bind = async move { Ok((b, ())) };
        assert!(matches!(u.listen(b, bind, idle).await, Err(Error::Closed)));
        u.close().await;
    }

    #[test]
    fn slots_stop_at_the_limit() {
        let counter = Arc::new(AtomicUsize::new(0));
        let a = CountGuard::try_new(&counter, 2).unwrap();
        let _b = CountGuard::try_new(&counter, 2).unwrap();
        assert!(CountGuard::try_new(&counter, 2).is_none());
        drop(a);
        assert_eq!(counter.load(Ordering::Acquire), 1);
        let _c = CountGuard::try_new(&counter, 2).unwrap();
        let _unlimited = CountGuard::try_new(&counter, 0).unwrap();
        assert_eq!(counter.load(Ordering::Acquire), 3);
    }
}
