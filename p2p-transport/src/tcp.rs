//! The TCP multiplex transport (the reference's `MultiplexTransport`).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use p2p_types::{NetAddress, NodeId, NodeInfo, NodeKey};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{ConnSet, Connection, Error, Transport, TransportConfig, UpgradeConfig, upgrade_with};

/// How long the accept loop pauses after the OS refuses to accept (e.g. out of file
/// descriptors), so that it does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// The TCP transport: TCP, then the shared [`upgrade_with`] pipeline, with the reference's
/// duplicate checks, filters and timeouts, plus a limit on incoming connections enforced before
/// any handshake work.
///
/// - Every accepted socket is upgraded in its own task, so a slow or silent connection never
///   delays the others; results reach [`accept`](Transport::accept) through a bounded queue
///   ([`TransportConfig::accept_queue`]).
/// - Above [`TransportConfig::max_incoming_connections`] (connections being upgraded plus
///   established inbound ones not yet cleaned up), a socket is closed right after `accept(2)`,
///   before any handshake work, and counted in [`TransportStats::refused`].
/// - Every connection, inbound or outbound, is admitted into the [`ConnSet`] first (duplicate
///   `ip:port`, duplicate IP unless allowed, connection filters), and its entry lives until the
///   connection is cleaned up or dropped.
/// - `TCP_NODELAY` is set on every socket, as Go does by default.
///
/// ```no_run
/// use p2p_mconn::ChannelDescriptor;
/// use p2p_transport::{TcpTransport, Transport, TransportConfig};
/// use p2p_types::{NodeInfo, NodeKey};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let key = NodeKey::generate();
/// let mut info = NodeInfo::new(key.node_id(), "my-chain", "tcp://0.0.0.0:26656");
/// info.channels = vec![0x01];
/// let mut config = TransportConfig::default();
/// config.channels([ChannelDescriptor::new(0x01, 1)]);
/// let transport = TcpTransport::new(key, info, config)?;
/// transport.listen("0.0.0.0:26656".parse()?).await?;
/// let peer = transport.dial(&"f00d...@1.2.3.4:26656".parse()?).await?;
/// peer.mconn().send(0x01, &b"hello"[..]).await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct TcpTransport {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    upgrade: UpgradeConfig,
    conn_set: ConnSet,
    closed: CancellationToken,
    accept_tx: mpsc::Sender<Result<Connection, Error>>,
    accept_rx: tokio::sync::Mutex<mpsc::Receiver<Result<Connection, Error>>>,
    listener: Mutex<ListenerState>,
    incoming: Arc<AtomicUsize>,
    upgrading: Arc<AtomicUsize>,
    refused: AtomicU64,
    rejected: AtomicU64,
}

#[derive(Debug, Default)]
struct ListenerState {
    addr: Option<SocketAddr>,
    task: Option<JoinHandle<()>>,
}

/// Counters of a [`TcpTransport`], for monitoring and tests.
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
    /// Inbound upgrades that failed (rejections).
    pub rejected: u64,
}

/// Decrements a counter when dropped.
#[derive(Debug)]
struct CountGuard(Arc<AtomicUsize>);

impl CountGuard {
    fn new(counter: &Arc<AtomicUsize>) -> Self {
        counter.fetch_add(1, Ordering::AcqRel);
        Self(Arc::clone(counter))
    }
}

impl Drop for CountGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl TcpTransport {
    /// A transport for the node with `key` announcing `node_info`; see [`UpgradeConfig::new`]
    /// for what is checked. It neither listens nor dials until asked.
    pub fn new(key: NodeKey, node_info: NodeInfo, config: TransportConfig) -> Result<Self, Error> {
        Ok(Self::with_upgrade(UpgradeConfig::new(
            key, node_info, config,
        )?))
    }

    /// A transport over an already checked [`UpgradeConfig`].
    pub fn with_upgrade(upgrade: UpgradeConfig) -> Self {
        let (accept_tx, accept_rx) = mpsc::channel(upgrade.transport_config().accept_queue);
        Self {
            inner: Arc::new(Inner {
                upgrade,
                conn_set: ConnSet::new(),
                closed: CancellationToken::new(),
                accept_tx,
                accept_rx: tokio::sync::Mutex::new(accept_rx),
                listener: Mutex::new(ListenerState::default()),
                incoming: Arc::new(AtomicUsize::new(0)),
                upgrading: Arc::new(AtomicUsize::new(0)),
                refused: AtomicU64::new(0),
                rejected: AtomicU64::new(0),
            }),
        }
    }

    /// The address being listened on, once listening.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.inner.listener().addr
    }

    /// Our address, `ourID@ip:port`, once listening (the IP may be unspecified, `0.0.0.0`).
    pub fn net_address(&self) -> Option<NetAddress> {
        self.local_addr()
            .map(|a| NetAddress::new(self.inner.upgrade.node_id(), a))
    }

    /// The connection set (established and in-progress connections).
    pub fn conn_set(&self) -> &ConnSet {
        &self.inner.conn_set
    }

    /// The identity and settings connections are upgraded with.
    pub fn upgrade_config(&self) -> &UpgradeConfig {
        &self.inner.upgrade
    }

    /// Current counters.
    pub fn stats(&self) -> TransportStats {
        let i = &self.inner;
        TransportStats {
            incoming: i.incoming.load(Ordering::Acquire),
            upgrading: i.upgrading.load(Ordering::Acquire),
            tracked: i.conn_set.len(),
            refused: i.refused.load(Ordering::Relaxed),
            rejected: i.rejected.load(Ordering::Relaxed),
        }
    }

    /// Whether [`close`](Transport::close) was called.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.is_cancelled()
    }
}

impl Drop for TcpTransport {
    fn drop(&mut self) {
        // Stops the accept loop and the upgrades in progress, which hold `inner` too.
        self.inner.closed.cancel();
    }
}

impl Inner {
    fn listener(&self) -> std::sync::MutexGuard<'_, ListenerState> {
        self.listener.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Admission, then the upgrade. The caller bounds it by the transport's closing.
    async fn upgrade(
        &self,
        tcp: TcpStream,
        remote: SocketAddr,
        dialed: Option<NodeId>,
    ) -> Result<Connection, Error> {
        let _upgrading = CountGuard::new(&self.upgrading);
        let reservation = self
            .conn_set
            .admit(remote, vec![remote.ip()], dialed, &self.upgrade)
            .await?;
        let mut conn =
            upgrade_with(tcp, TcpStream::into_split, remote, dialed, &self.upgrade).await?;
        reservation.set_established();
        conn.hold(reservation);
        Ok(conn)
    }
}

async fn accept_loop(inner: Arc<Inner>, listener: TcpListener) {
    let limit = inner.upgrade.transport_config().max_incoming_connections;
    loop {
        let accepted = tokio::select! {
            () = inner.closed.cancelled() => break,
            r = listener.accept() => r,
        };
        let (tcp, remote) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // Unlike the reference, an accept error never ends the loop (its switch panics
                // then); the usual cause is running out of file descriptors, which passes.
                tracing::warn!(error = %e, "accepting a TCP connection failed");
                tokio::select! {
                    () = inner.closed.cancelled() => break,
                    () = tokio::time::sleep(ACCEPT_ERROR_PAUSE) => continue,
                }
            }
        };
        // Only this task takes slots, so the check and the increment cannot race with another
        // taker; releases only lower the count.
        if limit > 0 && inner.incoming.load(Ordering::Acquire) >= limit {
            inner.refused.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%remote, limit, "incoming connection limit reached, closing");
            drop(tcp);
            continue;
        }
        let slot = CountGuard::new(&inner.incoming);
        let _ = tcp.set_nodelay(true);
        tokio::spawn(handle_inbound(Arc::clone(&inner), tcp, remote, slot));
    }
    tracing::debug!("transport listener stopped");
}

async fn handle_inbound(inner: Arc<Inner>, tcp: TcpStream, remote: SocketAddr, slot: CountGuard) {
    let result = tokio::select! {
        () = inner.closed.cancelled() => return,
        r = inner.upgrade(tcp, remote, None) => r,
    };
    match result {
        Ok(mut conn) => {
            conn.hold(slot);
            tokio::select! {
                () = inner.closed.cancelled() => {}
                // If `accept` is never called, the connection waits here with its slot.
                _ = inner.accept_tx.send(Ok(conn)) => {}
            }
        }
        Err(e) => {
            drop(slot);
            inner.rejected.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(error = %e, "inbound connection rejected");
            if let Err(mpsc::error::TrySendError::Full(_)) = inner.accept_tx.try_send(Err(e)) {
                tracing::debug!(%remote, "accept queue full, rejection report dropped");
            }
        }
    }
}

impl Transport for TcpTransport {
    async fn listen(&self, addr: SocketAddr) -> Result<SocketAddr, Error> {
        if self.is_closed() {
            return Err(Error::Closed);
        }
        if let Some(bound) = self.local_addr() {
            return Err(Error::AlreadyListening { addr: bound });
        }
        let listener = TcpListener::bind(addr).await.map_err(|e| Error::Listen {
            addr,
            source: Arc::new(e),
        })?;
        let bound = listener.local_addr().map_err(|e| Error::Listen {
            addr,
            source: Arc::new(e),
        })?;
        let mut state = self.inner.listener();
        if let Some(existing) = state.addr {
            // Another `listen` won the race; ours is dropped.
            return Err(Error::AlreadyListening { addr: existing });
        }
        if self.is_closed() {
            return Err(Error::Closed);
        }
        state.addr = Some(bound);
        state.task = Some(tokio::spawn(accept_loop(Arc::clone(&self.inner), listener)));
        tracing::info!(addr = %bound, "transport listening");
        Ok(bound)
    }

    async fn accept(&self) -> Result<Connection, Error> {
        let closed = &self.inner.closed;
        if closed.is_cancelled() {
            return Err(Error::Closed);
        }
        let mut rx = tokio::select! {
            () = closed.cancelled() => return Err(Error::Closed),
            rx = self.inner.accept_rx.lock() => rx,
        };
        tokio::select! {
            biased;
            () = closed.cancelled() => Err(Error::Closed),
            item = rx.recv() => item.unwrap_or(Err(Error::Closed)),
        }
    }

    async fn dial(&self, addr: &NetAddress) -> Result<Connection, Error> {
        let inner = &self.inner;
        if inner.closed.is_cancelled() {
            return Err(Error::Closed);
        }
        let remote = addr.socket_addr();
        let id = addr.id();
        let work = async {
            let timeout = inner.upgrade.transport_config().dial_timeout;
            let tcp = match tokio::time::timeout(timeout, TcpStream::connect(remote)).await {
                Err(_) => {
                    return Err(Error::DialTimeout {
                        addr: remote,
                        timeout,
                    });
                }
                Ok(Err(e)) => return Err(Error::dial(remote, e)),
                Ok(Ok(tcp)) => tcp,
            };
            let _ = tcp.set_nodelay(true);
            inner.upgrade(tcp, remote, Some(id)).await
        };
        tokio::select! {
            () = inner.closed.cancelled() => Err(Error::Closed),
            r = work => r,
        }
    }

    fn cleanup(&self, conn: Connection) {
        conn.close();
    }

    async fn close(&self) {
        self.inner.closed.cancel();
        let task = self.inner.listener().task.take();
        if let Some(task) = task {
            // The loop ends at its next poll and drops the listener socket.
            let _ = task.await;
        }
        // Upgraded connections nobody accepted are dropped now (releasing their slots).
        let mut rx = self.inner.accept_rx.lock().await;
        rx.close();
        while rx.try_recv().is_ok() {}
    }
}
