//! An in-memory network and transport: no sockets, deterministic addresses, connections over
//! shaped in-memory pipes ([`MemoryStream`]), and faults injected between hosts.
//!
//! # Faults
//!
//! Every fault is deterministic on tokio's clock (and, for jitter, under the network's
//! [seed](MemoryNetwork::with_seed)), and takes effect at once on live connections:
//!
//! - [`link`](MemoryNetwork::link)`(a, b)`: latency, jitter, a bandwidth cap and the buffer
//!   capacity of the link between hosts `a` and `b` (both ways, or one way);
//! - [`partition`](MemoryNetwork::partition)`(&[a..], &[b..])` and
//!   [`heal`](MemoryNetwork::heal): bytes between the two sets of hosts stop flowing (they
//!   wait, as TCP retransmits would, and flow again on heal), and new connections across go
//!   unanswered until the dial timeout;
//! - [`stall_reader`](MemoryNetwork::stall_reader)`(a, b)` and
//!   [`resume_reader`](MemoryNetwork::resume_reader): `b` stops draining what `a` sends, so
//!   `a`'s writes back up;
//! - [`reset_connections`](MemoryNetwork::reset_connections)`(a)`: every connection of host
//!   `a` fails at both ends with `ConnectionReset`;
//! - [`crash_host`](MemoryNetwork::crash_host)`(a)`: resets `a`'s connections, drops its
//!   listeners, and cuts off every transport made for `a` so far (a restarted node makes a
//!   new one).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> std::io::Result<()> {
//! use std::time::Duration;
//! use p2p_testkit::memory::MemoryNetwork;
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! use tokio::time::Instant;
//!
//! let net = MemoryNetwork::with_seed(7);
//! let (a, b) = (net.next_ip(), net.next_ip());
//! net.link(a, b).latency(Duration::from_millis(40));
//! let mut listener = net.listen_raw("10.0.0.2:26656".parse().unwrap())?;
//! let (mut out, _) = net.connect_raw(a, "10.0.0.2:26656".parse().unwrap())?;
//! let mut inb = listener.accept().await?;
//! let sent = Instant::now();
//! out.write_all(b"ping").await?;
//! let mut buf = [0; 4];
//! inb.read_exact(&mut buf).await?;
//! assert_eq!(sent.elapsed(), Duration::from_millis(40));
//!
//! net.partition(&[a], &[b]);
//! out.write_all(b"lost?").await?; // buffered, not delivered
//! assert!(tokio::time::timeout(Duration::from_secs(5), inb.read(&mut buf)).await.is_err());
//! net.heal();
//! inb.read_exact(&mut buf).await?;
//! assert_eq!(&buf, b"lost");
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use p2p_transport::{
    ConnSet, Connection, Error, Inbound, RejectionCounts, Transport, TransportConfig,
    TransportStats, UpgradeConfig, Upgrader,
};
use p2p_types::{NetAddress, NodeId, NodeInfo, NodeKey};
use tokio::sync::mpsc;

use crate::pipe::Half;
pub use crate::pipe::{LinkConfig, MemoryReadHalf, MemoryStream, MemoryWriteHalf};
use crate::trace::{Event, Trace, Way};

/// Default size of each direction's buffer in a connection's pipe.
pub const DEFAULT_PIPE_CAPACITY: usize = 64 * 1024;
/// How many connections may wait for a listener to pick them up (a listen backlog).
pub const BACKLOG: usize = 128;
/// First port handed out for port 0 (the IANA ephemeral range).
const FIRST_EPHEMERAL_PORT: u16 = 49152;

/// A connection arriving at a listener: our end of the pipe and the dialer's address.
#[derive(Debug)]
struct Incoming {
    stream: MemoryStream,
    from: SocketAddr,
}

/// A simulated IP network living in memory. Hosts get the addresses `10.0.0.1`, `10.0.0.2`,
/// ... in the order transports are created (or any IP given to
/// [`transport_at`](Self::transport_at)); ports 0 are assigned from 49152 upwards per host.
/// No sockets and no OS clock are involved, so it runs under tokio's paused clock, and the
/// same program gets the same addresses and ports every time.
///
/// Connections are shaped pipes ([`MemoryStream`]); faults between hosts are injected with
/// the methods listed in the [module docs](self). With a [`Trace`] set, every connection
/// event, delivery and fault is recorded.
///
/// By itself it is not deterministic step for step: the secret handshake draws ephemeral keys
/// from the transport's configured key source (the OS by default), and the order in which
/// tasks run is the runtime's. [`Sim`](crate::sim::Sim) controls both.
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

struct NetInner {
    seed: u64,
    hosts: u32,
    /// Transports made so far, to tell whose listener an address is.
    transports: u64,
    /// Each listener's backlog, with the transport it belongs to.
    listeners: BTreeMap<SocketAddr, (u64, mpsc::Sender<Incoming>)>,
    next_port: BTreeMap<IpAddr, u16>,
    pipe_capacity: usize,
    trace: Option<Trace>,
    /// Connections opened so far (their numbers start at 1).
    conns_opened: u64,
    /// Live connections, by number, for applying faults.
    conns: BTreeMap<u64, ConnRecord>,
    /// Per-direction link settings, `(from, to)`.
    links: BTreeMap<(IpAddr, IpAddr), LinkConfig>,
    partitions: Vec<(BTreeSet<IpAddr>, BTreeSet<IpAddr>)>,
    /// `(from, to)`: `to` does not drain what `from` sends.
    stalls: BTreeSet<(IpAddr, IpAddr)>,
    /// How many times each host crashed: transports made before the last crash are cut off.
    epochs: BTreeMap<IpAddr, u64>,
}

impl std::fmt::Debug for NetInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryNetwork")
            .field("seed", &self.seed)
            .field("hosts", &self.hosts)
            .field("listeners", &self.listeners.len())
            .field("connections", &self.conns.len())
            .field("partitions", &self.partitions.len())
            .finish_non_exhaustive()
    }
}

/// A live connection: its ends and its two directions.
struct ConnRecord {
    from: SocketAddr,
    to: SocketAddr,
    forth: Weak<Half>,
    back: Weak<Half>,
}

impl Default for NetInner {
    fn default() -> Self {
        Self {
            seed: 0,
            hosts: 0,
            transports: 0,
            listeners: BTreeMap::new(),
            next_port: BTreeMap::new(),
            pipe_capacity: DEFAULT_PIPE_CAPACITY,
            trace: None,
            conns_opened: 0,
            conns: BTreeMap::new(),
            links: BTreeMap::new(),
            partitions: Vec::new(),
            stalls: BTreeSet::new(),
            epochs: BTreeMap::new(),
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

    fn record(&self, event: Event) {
        if let Some(t) = &self.trace {
            t.record(event);
        }
    }

    fn fault(&self, what: impl FnOnce() -> String) {
        if let Some(t) = &self.trace {
            t.record(Event::Fault { what: what() });
        }
    }

    fn partitioned(&self, a: IpAddr, b: IpAddr) -> bool {
        self.partitions
            .iter()
            .any(|(x, y)| (x.contains(&a) && y.contains(&b)) || (x.contains(&b) && y.contains(&a)))
    }

    fn link_config(&self, from: IpAddr, to: IpAddr) -> LinkConfig {
        self.links.get(&(from, to)).copied().unwrap_or_default()
    }

    fn epoch(&self, ip: IpAddr) -> u64 {
        self.epochs.get(&ip).copied().unwrap_or(0)
    }

    /// Calls `f` with every live direction `(from, to, half)`, dropping dead connections.
    fn each_half(&mut self, mut f: impl FnMut(&Self, IpAddr, IpAddr, &Half)) {
        let mut dead = Vec::new();
        for (id, c) in &self.conns {
            let (forth, back) = (c.forth.upgrade(), c.back.upgrade());
            if forth.is_none() && back.is_none() {
                dead.push(*id);
            }
            if let Some(h) = forth {
                f(self, c.from.ip(), c.to.ip(), &h);
            }
            if let Some(h) = back {
                f(self, c.to.ip(), c.from.ip(), &h);
            }
        }
        for id in dead {
            self.conns.remove(&id);
        }
    }

    /// Brings every live direction's held flags in line with the partitions and stalls.
    fn apply_holds(&mut self) {
        self.each_half(|net, from, to, h| {
            h.set_held(net.partitioned(from, to), net.stalls.contains(&(from, to)))
        });
    }

    /// Opens a connection from host `from` to the listener at `to`.
    fn open(&mut self, from: IpAddr, to: SocketAddr) -> io::Result<(MemoryStream, SocketAddr)> {
        let refuse = |net: &Self, why: &'static str| {
            net.record(Event::Refused { from, to, why });
            Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                format!("{to}: {why}"),
            ))
        };
        let Some((_, listener)) = self.listeners.get(&to).cloned() else {
            return refuse(self, "nothing listens there");
        };
        let permit = match listener.try_reserve_owned() {
            Ok(permit) => permit,
            Err(mpsc::error::TrySendError::Full(_)) => return refuse(self, "backlog full"),
            Err(mpsc::error::TrySendError::Closed(_)) => return refuse(self, "listener closed"),
        };
        let local = SocketAddr::new(from, self.ephemeral_port(from));
        self.conns_opened += 1;
        let conn = self.conns_opened;
        // Prune now and then, so a long run's churn does not pile up records.
        if conn % 1024 == 0 {
            self.each_half(|_, _, _, _| {});
        }
        let half = |net: &Self, way: Way, a: IpAddr, b: IpAddr| {
            let seed = crate::derive::u64(net.seed, "jitter", &[conn, way as u64]);
            let h = Half::new(
                conn,
                way,
                net.link_config(a, b),
                net.pipe_capacity,
                seed,
                net.trace.clone(),
            );
            h.set_held(net.partitioned(a, b), net.stalls.contains(&(a, b)));
            h
        };
        let forth = half(self, Way::Forth, from, to.ip());
        let back = half(self, Way::Back, to.ip(), from);
        self.conns.insert(
            conn,
            ConnRecord {
                from: local,
                to,
                forth: Arc::downgrade(&forth),
                back: Arc::downgrade(&back),
            },
        );
        self.record(Event::Connect {
            conn,
            from: local,
            to,
        });
        let ours = MemoryStream::new(Arc::clone(&back), Arc::clone(&forth), local, to);
        let theirs = MemoryStream::new(forth, back, to, local);
        permit.send(Incoming {
            stream: theirs,
            from: local,
        });
        Ok((ours, local))
    }
}

impl MemoryNetwork {
    /// An empty network with seed 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty network whose random choices (jitter) follow `seed`.
    pub fn with_seed(seed: u64) -> Self {
        let net = Self::default();
        net.lock().seed = seed;
        net
    }

    fn lock(&self) -> MutexGuard<'_, NetInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.lock().seed
    }

    /// Records every connection event, delivery and fault from now on into `trace`.
    pub fn set_trace(&self, trace: Trace) {
        self.lock().trace = Some(trace);
    }

    /// The trace being recorded into, if any.
    pub fn trace(&self) -> Option<Trace> {
        self.lock().trace.clone()
    }

    /// Sets the buffer size of each direction of later connections' pipes (default
    /// [`DEFAULT_PIPE_CAPACITY`]) where the link sets none; a small one makes writers wait
    /// for readers, like a slow network.
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
    /// handling). It works until the host next [crashes](Self::crash_host).
    pub fn transport_at(
        &self,
        ip: IpAddr,
        key: NodeKey,
        node_info: NodeInfo,
        config: TransportConfig,
    ) -> Result<MemoryTransport, Error> {
        let upgrade = UpgradeConfig::new(key, node_info, config)?;
        let (owner, epoch) = {
            let mut inner = self.lock();
            inner.transports += 1;
            (inner.transports, inner.epoch(ip))
        };
        Ok(MemoryTransport {
            network: self.clone(),
            ip,
            owner,
            epoch,
            upgrader: Upgrader::new(upgrade),
        })
    }

    /// The addresses being listened on, sorted.
    pub fn listeners(&self) -> Vec<SocketAddr> {
        self.lock().listeners.keys().copied().collect()
    }

    /// How many connections have at least one end open.
    pub fn live_connections(&self) -> usize {
        let mut inner = self.lock();
        inner.each_half(|_, _, _, _| {});
        inner.conns.len()
    }

    /// Opens a raw connection from host `from` to the listener at `to`, at once (no round
    /// trip, even on a link with latency): returns the dialer's end of the pipe and its
    /// address (a fresh port on `from`). Nothing is sent; what the listener's transport does
    /// with it is up to the caller's bytes (this is how tests play misbehaving peers).
    ///
    /// Fails with `ConnectionRefused` if nothing listens at `to` or its backlog is full, and
    /// with `TimedOut` if `from` and `to` are partitioned.
    pub fn connect_raw(
        &self,
        from: IpAddr,
        to: SocketAddr,
    ) -> io::Result<(MemoryStream, SocketAddr)> {
        let mut inner = self.lock();
        if inner.partitioned(from, to.ip()) {
            inner.record(Event::Refused {
                from,
                to,
                why: "partitioned",
            });
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{to}: no answer across a partition"),
            ));
        }
        inner.open(from, to)
    }

    /// Connects like a TCP dial from a transport of host `from` made in crash epoch `epoch`:
    /// refused at once if the host crashed since or nothing listens; across a partition no
    /// answer ever comes (the dialer's timeout ends the wait); otherwise the connection opens
    /// after one round trip of the link's latency.
    async fn connect(&self, from: IpAddr, epoch: u64, to: SocketAddr) -> io::Result<MemoryStream> {
        // Ok(None): no answer will come.
        let check = |net: &NetInner, why: &'static str| -> io::Result<Option<Duration>> {
            if net.epoch(from) != epoch {
                net.record(Event::Refused {
                    from,
                    to,
                    why: "the dialing host crashed",
                });
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    format!("host {from} crashed; its transport is gone"),
                ));
            }
            if net.partitioned(from, to.ip()) {
                net.record(Event::Refused { from, to, why });
                return Ok(None);
            }
            Ok(Some(
                net.link_config(from, to.ip()).latency + net.link_config(to.ip(), from).latency,
            ))
        };
        let rtt = check(&self.lock(), "partitioned: no answer")?;
        let Some(rtt) = rtt else {
            return std::future::pending().await;
        };
        if !rtt.is_zero() {
            tokio::time::sleep(rtt).await;
        }
        let opened = {
            let mut inner = self.lock();
            check(&inner, "partitioned while connecting")?
                .map(|_| inner.open(from, to).map(|(stream, _)| stream))
        };
        match opened {
            Some(result) => result,
            None => std::future::pending().await,
        }
    }

    /// Listens at `addr` without a transport: connections arrive as raw
    /// [`MemoryStream`]s from [`RawListener::accept`]. Port 0 takes the next free port.
    pub fn listen_raw(&self, addr: SocketAddr) -> io::Result<RawListener> {
        let owner = {
            let mut inner = self.lock();
            inner.transports += 1;
            inner.transports
        };
        Ok(RawListener {
            bound: self.bind(addr, owner)?,
        })
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

    /// The settings of the link between hosts `a` and `b`, both ways, to change with the
    /// returned [`Link`]'s setters (each applies at once, to live connections too: the
    /// capacity at once, the rest to bytes written from then on).
    pub fn link(&self, a: IpAddr, b: IpAddr) -> Link {
        Link {
            net: self.clone(),
            ways: vec![(a, b), (b, a)],
        }
    }

    /// Like [`link`](Self::link) for the direction from `a` to `b` only.
    pub fn link_one_way(&self, a: IpAddr, b: IpAddr) -> Link {
        Link {
            net: self.clone(),
            ways: vec![(a, b)],
        }
    }

    /// The settings of the direction from `a` to `b`.
    pub fn link_config(&self, a: IpAddr, b: IpAddr) -> LinkConfig {
        self.lock().link_config(a, b)
    }

    fn update_link(&self, ways: &[(IpAddr, IpAddr)], f: impl Fn(&mut LinkConfig)) {
        let mut inner = self.lock();
        for way in ways {
            let c = inner.links.entry(*way).or_default();
            f(c);
            let c = *c;
            inner.fault(|| format!("link {} -> {}: {c}", way.0, way.1));
        }
        let cap = inner.pipe_capacity;
        inner.each_half(|net, from, to, h| {
            if ways.contains(&(from, to)) {
                h.set_shape(net.link_config(from, to), cap);
            }
        });
    }

    /// Cuts the hosts in `a` off from the hosts in `b` (both ways) until [`heal`](Self::heal):
    /// bytes already sent or sent later wait in the pipes (a writer fills its buffer, then
    /// waits), and new connections between them go unanswered. Partitions add up.
    pub fn partition(&self, a: &[IpAddr], b: &[IpAddr]) {
        let mut inner = self.lock();
        let (a, b): (BTreeSet<_>, BTreeSet<_>) =
            (a.iter().copied().collect(), b.iter().copied().collect());
        inner.fault(|| format!("partition {a:?} | {b:?}"));
        inner.partitions.push((a, b));
        inner.apply_holds();
    }

    /// Lifts every partition: the bytes that waited flow on (after the links' latency).
    pub fn heal(&self) {
        let mut inner = self.lock();
        inner.fault(|| "heal".to_string());
        inner.partitions.clear();
        inner.apply_holds();
    }

    /// Lifts the partitions made by [`partition`](Self::partition)`(a, b)` (the same two sets,
    /// either way round) and leaves any other in place. Returns whether there was one.
    pub fn unpartition(&self, a: &[IpAddr], b: &[IpAddr]) -> bool {
        let mut inner = self.lock();
        let (a, b): (BTreeSet<_>, BTreeSet<_>) =
            (a.iter().copied().collect(), b.iter().copied().collect());
        inner.fault(|| format!("unpartition {a:?} | {b:?}"));
        let before = inner.partitions.len();
        inner
            .partitions
            .retain(|(x, y)| !((*x == a && *y == b) || (*x == b && *y == a)));
        let lifted = inner.partitions.len() != before;
        inner.apply_holds();
        lifted
    }

    /// Whether hosts `a` and `b` are partitioned.
    pub fn is_partitioned(&self, a: IpAddr, b: IpAddr) -> bool {
        self.lock().partitioned(a, b)
    }

    /// Host `to` stops draining what host `from` sends on their connections (now and later):
    /// the bytes wait in the pipe, whose writer at `from` fills its buffer, then waits, as
    /// with a peer whose application stopped reading. Until
    /// [`resume_reader`](Self::resume_reader).
    pub fn stall_reader(&self, from: IpAddr, to: IpAddr) {
        let mut inner = self.lock();
        inner.fault(|| format!("stall reader {from} -> {to}"));
        inner.stalls.insert((from, to));
        inner.apply_holds();
    }

    /// Undoes [`stall_reader`](Self::stall_reader)`(from, to)`.
    pub fn resume_reader(&self, from: IpAddr, to: IpAddr) {
        let mut inner = self.lock();
        inner.fault(|| format!("resume reader {from} -> {to}"));
        inner.stalls.remove(&(from, to));
        inner.apply_holds();
    }

    /// Resets every live connection with an end on host `host`: reads and writes at both ends
    /// fail with `ConnectionReset` from now on. Returns how many were reset.
    pub fn reset_connections(&self, host: IpAddr) -> usize {
        let mut inner = self.lock();
        inner.fault(|| format!("reset connections of {host}"));
        reset_locked(&mut inner, |from, to| from == host || to == host)
    }

    /// Resets every live connection between hosts `a` and `b`. Returns how many were reset.
    pub fn reset_between(&self, a: IpAddr, b: IpAddr) -> usize {
        let mut inner = self.lock();
        inner.fault(|| format!("reset connections between {a} and {b}"));
        reset_locked(&mut inner, |from, to| {
            (from == a && to == b) || (from == b && to == a)
        })
    }

    /// Crashes host `host`: its connections are reset, its listeners dropped, and every
    /// transport made for it so far is cut off for good (dials and listens fail). A transport
    /// made afterwards on the same address (a restart) works.
    pub fn crash_host(&self, host: IpAddr) {
        let mut inner = self.lock();
        inner.fault(|| format!("crash {host}"));
        *inner.epochs.entry(host).or_insert(0) += 1;
        inner.listeners.retain(|addr, _| addr.ip() != host);
        reset_locked(&mut inner, |from, to| from == host || to == host);
    }
}

fn reset_locked(inner: &mut NetInner, which: impl Fn(IpAddr, IpAddr) -> bool) -> usize {
    inner.each_half(|_, _, _, _| {});
    let mut n = 0;
    for (id, c) in &inner.conns {
        if !which(c.from.ip(), c.to.ip()) {
            continue;
        }
        let mut live = false;
        for h in [c.forth.upgrade(), c.back.upgrade()].into_iter().flatten() {
            live |= h.reset();
        }
        if live {
            n += 1;
            inner.record(Event::Reset { conn: *id });
        }
    }
    n
}

/// Settings of a link, from [`MemoryNetwork::link`]: each setter applies at once.
#[derive(Debug)]
pub struct Link {
    net: MemoryNetwork,
    ways: Vec<(IpAddr, IpAddr)>,
}

impl Link {
    /// Fixed one-way delay.
    pub fn latency(&mut self, latency: Duration) -> &mut Self {
        self.net.update_link(&self.ways, |c| {
            c.latency(latency);
        });
        self
    }

    /// Uniform random extra delay per segment, up to `jitter` (drawn under the network's seed).
    pub fn jitter(&mut self, jitter: Duration) -> &mut Self {
        self.net.update_link(&self.ways, |c| {
            c.jitter(jitter);
        });
        self
    }

    /// Bandwidth cap in bytes per second (`None`: none).
    pub fn bandwidth(&mut self, bytes_per_sec: Option<u64>) -> &mut Self {
        self.net.update_link(&self.ways, |c| {
            c.bandwidth(bytes_per_sec);
        });
        self
    }

    /// Buffer capacity of each direction in bytes (`None`: the network's pipe capacity).
    pub fn capacity(&mut self, bytes: Option<usize>) -> &mut Self {
        self.net.update_link(&self.ways, |c| {
            c.capacity(bytes);
        });
        self
    }

    /// Replaces the whole configuration.
    pub fn set(&mut self, config: LinkConfig) -> &mut Self {
        self.net.update_link(&self.ways, |c| *c = config);
        self
    }
}

/// A listener made with [`MemoryNetwork::listen_raw`]. Dropping it frees the address.
#[derive(Debug)]
pub struct RawListener {
    bound: Bound,
}

impl RawListener {
    /// The address listened on.
    pub fn local_addr(&self) -> SocketAddr {
        self.bound.addr
    }

    /// The next connection; fails with `ConnectionAborted` once the listener is gone (its
    /// host crashed).
    pub async fn accept(&mut self) -> io::Result<MemoryStream> {
        match self.bound.backlog.recv().await {
            Some(incoming) => Ok(incoming.stream),
            None => Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the listener is gone",
            )),
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
/// else is the shared machinery of `p2p-transport` (an [`Upgrader`]: [`admit`](p2p_transport::admit), then
/// `upgrade_with`, the incoming limit, the accept queue, close), so its connections are exactly
/// as checked as TCP ones.
///
/// It honours the whole [`TransportConfig`] (dial, handshake and filter timeouts, duplicate
/// checks, filters, the incoming limit, the accept queue). A dial takes one round trip of the
/// link's latency, is refused at once when nothing listens, and goes unanswered (until the
/// dial timeout) across a partition.
#[derive(Debug)]
pub struct MemoryTransport {
    network: MemoryNetwork,
    ip: IpAddr,
    /// Tells this transport's listener from a later one on the same address.
    owner: u64,
    /// The host's crash count when this transport was made.
    epoch: u64,
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

    /// Every inbound rejection so far, by kind.
    pub fn rejections(&self) -> RejectionCounts {
        self.upgrader.rejections()
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
        inbound.spawn_upgrade(incoming.stream, MemoryStream::into_split, incoming.from);
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
            if self.network.lock().epoch(self.ip) != self.epoch {
                return Err(io::Error::new(
                    io::ErrorKind::AddrNotAvailable,
                    format!("host {} crashed; this transport is gone", self.ip),
                ));
            }
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
        let connect = self.network.connect(self.ip, self.epoch, remote);
        self.upgrader
            .dial(addr, connect, MemoryStream::into_split)
            .await
    }

    fn cleanup(&self, conn: Connection) {
        conn.close();
    }

    async fn close(&self) {
        self.upgrader.close().await;
    }
}
