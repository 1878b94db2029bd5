//! An in-memory network and transport: no sockets, deterministic addresses, connections over
//! `tokio::io::duplex` pipes.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use p2p_transport::{
    ConnSet, Connection, Error, Transport, TransportConfig, UpgradeConfig, upgrade_with,
};
use p2p_types::{NetAddress, NodeId, NodeInfo, NodeKey};
use tokio::io::DuplexStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Default size of each direction's buffer in a connection's pipe.
pub const DEFAULT_PIPE_CAPACITY: usize = 64 * 1024;
/// How many connections may wait for a listener to pick them up (a listen backlog).
pub const BACKLOG: usize = 128;
/// First port handed out for port 0 (the IANA ephemeral range).
const FIRST_EPHEMERAL_PORT: u16 = 49152;

/// A connection arriving at a listener: our end of the pipe and the dialer's address.
#[derive(Debug)]
struct Incoming {
    stream: DuplexStream,
    from: SocketAddr,
}

/// A simulated IP network living in memory. Hosts get the addresses `10.0.0.1`, `10.0.0.2`,
/// ... in the order transports are created (or any IP given to
/// [`transport_at`](Self::transport_at)); ports 0 are assigned from 49152 upwards per host.
/// Nothing depends on the OS, the clock or randomness, so the same program builds the same
/// network every time, and it runs under tokio's paused clock.
///
/// Cheap to clone: clones are the same network.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), p2p_transport::Error> {
/// use p2p_testkit::memory::MemoryNetwork;
/// use p2p_transport::{Transport, TransportConfig};
/// use p2p_types::{NetAddress, NodeInfo, NodeKey};
///
/// let net = MemoryNetwork::new();
/// let node = |seed: u8| {
///     let key = NodeKey::from_seed([seed; 32]);
///     let info = NodeInfo::new(key.node_id(), "sim", "tcp://10.0.0.1:26656");
///     net.transport(key, info, TransportConfig::default())
/// };
/// let (a, b) = (node(1)?, node(2)?);
/// let at = b.listen("0.0.0.0:26656".parse().unwrap()).await?; // 10.0.0.2:26656
/// let to = NetAddress::new(b.node_id(), at);
/// let (out, inb) = tokio::join!(a.dial(&to), b.accept());
/// assert_eq!(out?.node_id(), b.node_id());
/// assert_eq!(inb?.remote_addr().ip(), a.ip());
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Default)]
pub struct MemoryNetwork {
    inner: Arc<Mutex<NetInner>>,
}

#[derive(Debug)]
struct NetInner {
    hosts: u32,
    listeners: HashMap<SocketAddr, mpsc::Sender<Incoming>>,
    next_port: HashMap<IpAddr, u16>,
    pipe_capacity: usize,
}

impl Default for NetInner {
    fn default() -> Self {
        Self {
            hosts: 0,
            listeners: HashMap::new(),
            next_port: HashMap::new(),
            pipe_capacity: DEFAULT_PIPE_CAPACITY,
        }
    }
}

impl NetInner {
    /// The next port of `ip` not listened on (ports wrap around within the ephemeral range).
    fn ephemeral_port(&mut self, ip: IpAddr) -> u16 {
        let next = self.next_port.entry(ip).or_insert(FIRST_EPHEMERAL_PORT);
        loop {
            let port = *next;
            *next = if port == u16::MAX {
                FIRST_EPHEMERAL_PORT
            } else {
                port + 1
            };
            if !self.listeners.contains_key(&SocketAddr::new(ip, port)) {
                return port;
            }
        }
    }
}

impl MemoryNetwork {
    /// An empty network.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, NetInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sets the buffer size of each direction of later connections' pipes (default
    /// [`DEFAULT_PIPE_CAPACITY`]); a small one makes writers wait for readers, like a slow
    /// network.
    pub fn set_pipe_capacity(&self, bytes: usize) {
        self.lock().pipe_capacity = bytes.max(1);
    }

    /// The next host address: `10.0.0.1`, `10.0.0.2`, ... (`10.x.y.z` beyond 254 hosts).
    pub fn next_ip(&self) -> IpAddr {
        let mut inner = self.lock();
        inner.hosts += 1;
        IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + inner.hosts))
    }

    /// A transport on the next host address (see [`next_ip`](Self::next_ip)).
    pub fn transport(
        &self,
        key: NodeKey,
        node_info: NodeInfo,
        config: TransportConfig,
    ) -> Result<MemoryTransport, Error> {
        self.transport_at(self.next_ip(), key, node_info, config)
    }

    /// A transport on host `ip` (several transports may share one, e.g. to test duplicate-IP
    /// handling).
    pub fn transport_at(
        &self,
        ip: IpAddr,
        key: NodeKey,
        node_info: NodeInfo,
        config: TransportConfig,
    ) -> Result<MemoryTransport, Error> {
        let upgrade = UpgradeConfig::new(key, node_info, config)?;
        let (accept_tx, accept_rx) = mpsc::channel(upgrade.transport_config().get_accept_queue());
        Ok(MemoryTransport {
            inner: Arc::new(Inner {
                network: self.clone(),
                ip,
                upgrade,
                conn_set: ConnSet::new(),
                closed: CancellationToken::new(),
                accept_tx,
                accept_rx: tokio::sync::Mutex::new(accept_rx),
                listener: Mutex::new(None),
                incoming: Arc::new(AtomicUsize::new(0)),
            }),
        })
    }

    /// The addresses being listened on, sorted.
    pub fn listeners(&self) -> Vec<SocketAddr> {
        let mut v: Vec<_> = self.lock().listeners.keys().copied().collect();
        v.sort();
        v
    }

    /// Opens a raw connection from host `from` to the listener at `to`: returns the dialer's
    /// end of the pipe and its address (a fresh port on `from`). Nothing is sent; what the
    /// listener's transport does with it is up to the caller's bytes (this is how tests play
    /// misbehaving peers).
    ///
    /// Fails with `ConnectionRefused` if nothing listens at `to` or its backlog is full.
    pub fn connect_raw(
        &self,
        from: IpAddr,
        to: SocketAddr,
    ) -> io::Result<(DuplexStream, SocketAddr)> {
        let mut inner = self.lock();
        let Some(listener) = inner.listeners.get(&to).cloned() else {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                format!("nothing listens at {to}"),
            ));
        };
        let local = SocketAddr::new(from, inner.ephemeral_port(from));
        let (ours, theirs) = tokio::io::duplex(inner.pipe_capacity);
        drop(inner);
        listener
            .try_send(Incoming {
                stream: theirs,
                from: local,
            })
            .map_err(|e| {
                let why = match e {
                    mpsc::error::TrySendError::Full(_) => "backlog full",
                    mpsc::error::TrySendError::Closed(_) => "listener closed",
                };
                io::Error::new(io::ErrorKind::ConnectionRefused, format!("{to}: {why}"))
            })?;
        Ok((ours, local))
    }

    fn bind(&self, addr: SocketAddr) -> io::Result<(SocketAddr, mpsc::Receiver<Incoming>)> {
        let mut inner = self.lock();
        let addr = if addr.port() == 0 {
            SocketAddr::new(addr.ip(), inner.ephemeral_port(addr.ip()))
        } else {
            addr
        };
        if inner.listeners.contains_key(&addr) {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("{addr} is in use"),
            ));
        }
        let (tx, rx) = mpsc::channel(BACKLOG);
        inner.listeners.insert(addr, tx);
        Ok((addr, rx))
    }

    fn unbind(&self, addr: SocketAddr) {
        self.lock().listeners.remove(&addr);
    }
}

/// A [`Transport`] over a [`MemoryNetwork`]: bytes travel through in-memory pipes, everything
/// else is the shared pipeline of `p2p-transport` ([`ConnSet::admit`], then [`upgrade_with`]),
/// so its connections are exactly as checked as TCP ones.
///
/// It honours the whole [`TransportConfig`] (handshake and filter timeouts, duplicate checks,
/// filters, the incoming limit, the accept queue) except the dial timeout: connecting in
/// memory is instant, and refused at once when nothing listens.
#[derive(Debug)]
pub struct MemoryTransport {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    network: MemoryNetwork,
    ip: IpAddr,
    upgrade: UpgradeConfig,
    conn_set: ConnSet,
    closed: CancellationToken,
    accept_tx: mpsc::Sender<Result<Connection, Error>>,
    accept_rx: tokio::sync::Mutex<mpsc::Receiver<Result<Connection, Error>>>,
    listener: Mutex<Option<(SocketAddr, Option<JoinHandle<()>>)>>,
    incoming: Arc<AtomicUsize>,
}

/// Decrements a counter when dropped.
#[derive(Debug)]
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl MemoryTransport {
    /// This transport's host address.
    pub fn ip(&self) -> IpAddr {
        self.inner.ip
    }

    /// Our node ID.
    pub fn node_id(&self) -> NodeId {
        self.inner.upgrade.node_id()
    }

    /// The address being listened on, once listening.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.inner.listener_state().as_ref().map(|(a, _)| *a)
    }

    /// The connection set.
    pub fn conn_set(&self) -> &ConnSet {
        &self.inner.conn_set
    }

    /// Inbound connections being upgraded, waiting for `accept`, or established and not yet
    /// cleaned up.
    pub fn incoming(&self) -> usize {
        self.inner.incoming.load(Ordering::Acquire)
    }

    /// The network this transport is on.
    pub fn network(&self) -> &MemoryNetwork {
        &self.inner.network
    }
}

impl Drop for MemoryTransport {
    fn drop(&mut self) {
        self.inner.closed.cancel();
        if let Some((addr, _)) = self.inner.listener_state().take() {
            self.inner.network.unbind(addr);
        }
    }
}

impl Inner {
    fn listener_state(&self) -> MutexGuard<'_, Option<(SocketAddr, Option<JoinHandle<()>>)>> {
        self.listener.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn upgrade(
        &self,
        stream: DuplexStream,
        remote: SocketAddr,
        dialed: Option<NodeId>,
    ) -> Result<Connection, Error> {
        let reservation = self
            .conn_set
            .admit(remote, vec![remote.ip()], dialed, &self.upgrade)
            .await?;
        // `DuplexStream` has no owned halves; `tokio::io::split` is the general fallback.
        let mut conn =
            upgrade_with(stream, tokio::io::split, remote, dialed, &self.upgrade).await?;
        reservation.set_established();
        conn.hold(reservation);
        Ok(conn)
    }
}

async fn listen_loop(inner: Arc<Inner>, mut rx: mpsc::Receiver<Incoming>) {
    let limit = inner
        .upgrade
        .transport_config()
        .get_max_incoming_connections();
    loop {
        let incoming = tokio::select! {
            () = inner.closed.cancelled() => break,
            i = rx.recv() => match i { Some(i) => i, None => break },
        };
        if limit > 0 && inner.incoming.load(Ordering::Acquire) >= limit {
            tracing::debug!(from = %incoming.from, "incoming limit reached, closing");
            continue;
        }
        inner.incoming.fetch_add(1, Ordering::AcqRel);
        let slot = Slot(Arc::clone(&inner.incoming));
        let inner = Arc::clone(&inner);
        tokio::spawn(async move {
            let result = tokio::select! {
                () = inner.closed.cancelled() => return,
                r = inner.upgrade(incoming.stream, incoming.from, None) => r,
            };
            match result {
                Ok(mut conn) => {
                    conn.hold(slot);
                    tokio::select! {
                        () = inner.closed.cancelled() => {}
                        _ = inner.accept_tx.send(Ok(conn)) => {}
                    }
                }
                Err(e) => {
                    drop(slot);
                    tracing::debug!(error = %e, "inbound connection rejected");
                    let _ = inner.accept_tx.try_send(Err(e));
                }
            }
        });
    }
}

impl Transport for MemoryTransport {
    async fn listen(&self, addr: SocketAddr) -> Result<SocketAddr, Error> {
        let inner = &self.inner;
        if inner.closed.is_cancelled() {
            return Err(Error::Closed);
        }
        let ip = if addr.ip().is_unspecified() {
            inner.ip
        } else if addr.ip() == inner.ip {
            addr.ip()
        } else {
            return Err(Error::Listen {
                addr,
                source: Arc::new(io::Error::new(
                    io::ErrorKind::AddrNotAvailable,
                    format!("this host is {}", inner.ip),
                )),
            });
        };
        let mut state = inner.listener_state();
        if let Some((bound, _)) = state.as_ref() {
            return Err(Error::AlreadyListening { addr: *bound });
        }
        let (bound, rx) = inner
            .network
            .bind(SocketAddr::new(ip, addr.port()))
            .map_err(|e| Error::Listen {
                addr,
                source: Arc::new(e),
            })?;
        let task = tokio::spawn(listen_loop(Arc::clone(inner), rx));
        *state = Some((bound, Some(task)));
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
        let (stream, _local) =
            inner
                .network
                .connect_raw(inner.ip, remote)
                .map_err(|e| Error::Dial {
                    addr: remote,
                    source: Arc::new(e),
                })?;
        tokio::select! {
            () = inner.closed.cancelled() => Err(Error::Closed),
            r = inner.upgrade(stream, remote, Some(addr.id())) => r,
        }
    }

    fn cleanup(&self, conn: Connection) {
        conn.close();
    }

    async fn close(&self) {
        let inner = &self.inner;
        inner.closed.cancel();
        let state = inner.listener_state().as_mut().map(|(a, t)| (*a, t.take()));
        if let Some((addr, task)) = state {
            inner.network.unbind(addr);
            if let Some(task) = task {
                let _ = task.await;
            }
        }
        let mut rx = inner.accept_rx.lock().await;
        rx.close();
        while rx.try_recv().is_ok() {}
    }
}
