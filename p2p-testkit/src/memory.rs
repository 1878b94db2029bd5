//! An in-memory network and transport: no sockets, deterministic addresses, connections over
//! `tokio::io::duplex` pipes.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use p2p_transport::{
    ConnSet, Connection, Error, Inbound, Transport, TransportConfig, TransportStats, UpgradeConfig,
    Upgrader,
};
use p2p_types::{NetAddress, NodeId, NodeInfo, NodeKey};
use tokio::io::DuplexStream;
use tokio::sync::mpsc;

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
    /// Transports made so far, to tell whose listener an address is.
    transports: u64,
    /// Each listener's backlog, with the transport it belongs to.
    listeners: HashMap<SocketAddr, (u64, mpsc::Sender<Incoming>)>,
    next_port: HashMap<IpAddr, u16>,
    pipe_capacity: usize,
}

impl Default for NetInner {
    fn default() -> Self {
        Self {
            hosts: 0,
            transports: 0,
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
        let owner = {
            let mut inner = self.lock();
            inner.transports += 1;
            inner.transports
        };
        Ok(MemoryTransport {
            network: self.clone(),
            ip,
            owner,
            upgrader: Upgrader::new(upgrade),
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
        let Some((_, listener)) = inner.listeners.get(&to).cloned() else {
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

    /// Binds `addr` (port 0: the next free port of its IP) for transport `owner`.
    fn bind(&self, addr: SocketAddr, owner: u64) -> io::Result<Bound> {
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
        inner.listeners.insert(addr, (owner, tx));
        Ok(Bound {
            network: self.clone(),
            addr,
            owner,
            backlog: rx,
        })
    }

    /// Frees `addr` if transport `owner` listens there.
    fn unbind(&self, addr: SocketAddr, owner: u64) {
        let mut inner = self.lock();
        if inner.listeners.get(&addr).is_some_and(|(o, _)| *o == owner) {
            inner.listeners.remove(&addr);
        }
    }
}

/// A bound listener: its backlog. Dropping it frees the address.
#[derive(Debug)]
struct Bound {
    network: MemoryNetwork,
    addr: SocketAddr,
    owner: u64,
    backlog: mpsc::Receiver<Incoming>,
}

impl Drop for Bound {
    fn drop(&mut self) {
        self.network.unbind(self.addr, self.owner);
    }
}

/// A [`Transport`] over a [`MemoryNetwork`]: bytes travel through in-memory pipes, everything
/// else is the shared machinery of `p2p-transport` (an [`Upgrader`]: [`ConnSet::admit`], then
/// `upgrade_with`, the incoming limit, the accept queue, close), so its connections are exactly
/// as checked as TCP ones.
///
/// It honours the whole [`TransportConfig`] (handshake and filter timeouts, duplicate checks,
/// filters, the incoming limit, the accept queue) except the dial timeout: connecting in
/// memory is instant, and refused at once when nothing listens.
#[derive(Debug)]
pub struct MemoryTransport {
    network: MemoryNetwork,
    ip: IpAddr,
    /// Tells this transport's listener from a later one on the same address.
    owner: u64,
    upgrader: Upgrader,
}

impl MemoryTransport {
    /// This transport's host address.
    pub fn ip(&self) -> IpAddr {
        self.ip
    }

    /// Our node ID.
    pub fn node_id(&self) -> NodeId {
        self.upgrader.upgrade_config().node_id()
    }

    /// The address being listened on, once listening.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.upgrader.local_addr()
    }

    /// The connection set.
    pub fn conn_set(&self) -> &ConnSet {
        self.upgrader.conn_set()
    }

    /// Inbound connections being upgraded, waiting for `accept`, or established and not yet
    /// cleaned up.
    pub fn incoming(&self) -> usize {
        self.stats().incoming
    }

    /// Current counters.
    pub fn stats(&self) -> TransportStats {
        self.upgrader.stats()
    }

    /// The network this transport is on.
    pub fn network(&self) -> &MemoryNetwork {
        &self.network
    }
}

impl Drop for MemoryTransport {
    fn drop(&mut self) {
        // Free the address at once, not when the listen loop notices (the upgrader's drop
        // stops it).
        if let Some(addr) = self.local_addr() {
            self.network.unbind(addr, self.owner);
        }
    }
}

async fn listen_loop(inbound: Inbound, mut bound: Bound) {
    while let Some(Some(incoming)) = inbound.until_closed(bound.backlog.recv()).await {
        // `DuplexStream` has no owned halves; `tokio::io::split` is the general fallback.
        inbound.spawn_upgrade(incoming.stream, tokio::io::split, incoming.from);
    }
}

impl Transport for MemoryTransport {
    async fn listen(&self, addr: SocketAddr) -> Result<SocketAddr, Error> {
        let bind = async {
            let ip = if addr.ip().is_unspecified() {
                self.ip
            } else if addr.ip() == self.ip {
                addr.ip()
            } else {
                return Err(io::Error::new(
                    io::ErrorKind::AddrNotAvailable,
                    format!("this host is {}", self.ip),
                ));
            };
            let bound = self
                .network
                .bind(SocketAddr::new(ip, addr.port()), self.owner)?;
            Ok((bound.addr, bound))
        };
        self.upgrader.listen(addr, bind, listen_loop).await
    }

    async fn accept(&self) -> Result<Connection, Error> {
        self.upgrader.accept().await
    }

    async fn dial(&self, addr: &NetAddress) -> Result<Connection, Error> {
        let remote = addr.socket_addr();
        let connect = async {
            let (stream, _local) = self.network.connect_raw(self.ip, remote)?;
            Ok(stream)
        };
        self.upgrader.dial(addr, connect, tokio::io::split).await
    }

    fn cleanup(&self, conn: Connection) {
        conn.close();
    }

    async fn close(&self) {
        self.upgrader.close().await;
    }
}
