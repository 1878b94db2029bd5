//! The TCP multiplex transport (the reference's `MultiplexTransport`).

use std::net::SocketAddr;
use std::time::Duration;

use p2p_types::{NetAddress, NodeInfo, NodeKey};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::time::Instant;

use crate::socket::{self, LinkEstimate, SocketTuning};
use crate::{
    ConnSet, Connection, Error, Inbound, RejectionCounts, Transport, TransportConfig,
    TransportStats, UpgradeConfig, Upgrader,
};

/// The TCP transport: TCP, then the shared [`upgrade_with`](crate::upgrade_with) pipeline,
/// with the reference's duplicate checks, filters and timeouts, plus a limit on incoming
/// connections enforced before any handshake work. All but the sockets is the [`Upgrader`]'s,
/// which custom transports share:
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
/// - The listener asks for the system's maximum backlog by default
///   ([`TransportConfig::listen_backlog`]), as Go does, so a burst of connections is queued
///   by the kernel instead of dropped.
/// - `TCP_NODELAY` is set on every socket, as Go does by default.
/// - The kernel's socket buffers are sized for each connection once its secret handshake is
///   done ([`TransportConfig::socket_tuning`], by default from the MConnection's rates and the
///   round-trip time measured while connecting; see [`socket`](crate::socket)), so that a
///   high-priority message does not wait behind megabytes of bulk in the kernel.
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
    upgrader: Upgrader,
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
        Self {
            upgrader: Upgrader::new(upgrade),
        }
    }

    /// The address being listened on, once listening.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.upgrader.local_addr()
    }

    /// Our address, `ourID@ip:port`, once listening (the IP may be unspecified, `0.0.0.0`).
    pub fn net_address(&self) -> Option<NetAddress> {
        self.local_addr()
            .map(|a| NetAddress::new(self.upgrader.upgrade_config().node_id(), a))
    }

    /// The connection set (established and in-progress connections).
    pub fn conn_set(&self) -> &ConnSet {
        self.upgrader.conn_set()
    }

    /// The identity and settings connections are upgraded with.
    pub fn upgrade_config(&self) -> &UpgradeConfig {
        self.upgrader.upgrade_config()
    }

    /// Current counters.
    pub fn stats(&self) -> TransportStats {
        self.upgrader.stats()
    }

    /// Every inbound rejection so far, by kind (see [`Upgrader::rejections`]): what the
    /// switch's metrics export.
    pub fn rejections(&self) -> RejectionCounts {
        self.upgrader.rejections()
    }

    /// Whether [`close`](Transport::close) was called.
    pub fn is_closed(&self) -> bool {
        self.upgrader.is_closed()
    }
}

/// A listening socket on `addr` with `backlog`, with `SO_REUSEADDR` on Unix as
/// `TcpListener::bind` sets it (a restarted node can listen again while old connections linger
/// in `TIME_WAIT`).
fn bind_listener(addr: SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

/// What the socket tuning needs to know of the transport's settings.
#[derive(Clone, Copy, Debug)]
struct Tuner {
    tuning: SocketTuning,
    send_rate: u64,
    recv_rate: u64,
}

impl Tuner {
    fn new(config: &TransportConfig) -> Self {
        Self {
            tuning: config.get_socket_tuning(),
            send_rate: config.get_mconn().send_rate,
            recv_rate: config.get_mconn().recv_rate,
        }
    }

    /// The split given to the upgrade: it runs once the secret handshake is done, so the
    /// time since `connected` is a round trip plus the handshake's computation; `connect`
    /// is the TCP connect's own duration, when we dialed.
    fn split(
        self,
        connected: Instant,
        connect: Option<Duration>,
    ) -> impl FnOnce(TcpStream) -> (OwnedReadHalf, OwnedWriteHalf) + Send + 'static {
        move |tcp| {
            let handshake = connected.elapsed();
            let rtt = connect.map_or(handshake, |c| c.min(handshake));
            let link = LinkEstimate {
                rtt,
                send_rate: self.send_rate,
                recv_rate: self.recv_rate,
                max_recv_buffer: socket::max_recv_buffer(),
            };
            let sizes = self.tuning.sizes(&link);
            match socket::apply(&tcp, &sizes) {
                Ok(()) => tracing::debug!(?rtt, ?sizes, "socket buffers sized"),
                // Best effort: the connection works with the kernel's defaults.
                Err(e) => tracing::debug!(error = %e, ?sizes, "socket buffers not sized"),
            }
            tcp.into_split()
        }
    }
}

async fn accept_loop(inbound: Inbound, listener: TcpListener, tuner: Tuner) {
    while let Some(accepted) = inbound.until_closed(listener.accept()).await {
        match accepted {
            Ok((tcp, remote)) => {
                let _ = tcp.set_nodelay(true);
                let split = tuner.split(Instant::now(), None);
                inbound.spawn_upgrade(tcp, split, remote);
            }
            Err(e) => inbound.pause_after_error(&e).await,
        }
    }
}

impl Transport for TcpTransport {
    async fn listen(&self, addr: SocketAddr) -> Result<SocketAddr, Error> {
        let backlog = self
            .upgrader
            .upgrade_config()
            .transport_config()
            .effective_listen_backlog();
        let bind = async move {
            let listener = bind_listener(addr, backlog)?;
            Ok((listener.local_addr()?, listener))
        };
        let tuner = Tuner::new(self.upgrader.upgrade_config().transport_config());
        self.upgrader
            .listen(addr, bind, move |inbound, listener| {
                accept_loop(inbound, listener, tuner)
            })
            .await
    }

    async fn accept(&self) -> Result<Connection, Error> {
        self.upgrader.accept().await
    }

    async fn dial(&self, addr: &NetAddress) -> Result<Connection, Error> {
        let remote = addr.socket_addr();
        let tuner = Tuner::new(self.upgrader.upgrade_config().transport_config());
        // When the TCP connect completed and how long it took, for the split.
        let timing = std::sync::Arc::new(std::sync::OnceLock::new());
        let timed = std::sync::Arc::clone(&timing);
        let connect = async move {
            let started = Instant::now();
            let tcp = TcpStream::connect(remote).await?;
            let _ = timed.set((Instant::now(), started.elapsed()));
            let _ = tcp.set_nodelay(true);
            Ok(tcp)
        };
        let split = move |tcp| {
            let (connected, connect) = timing
                .get()
                .map_or((Instant::now(), None), |&(at, took)| (at, Some(took)));
            tuner.split(connected, connect)(tcp)
        };
        self.upgrader.dial(addr, connect, split).await
    }

    fn cleanup(&self, conn: Connection) {
        conn.close();
    }

    async fn close(&self) {
        self.upgrader.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SocketSizes;

    async fn loopback_pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (dialed, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
        (dialed.unwrap(), accepted.unwrap().0)
    }

    fn read_back(half: &OwnedReadHalf) -> (usize, u32) {
        let sock = socket2::SockRef::from(half.as_ref());
        (
            sock.recv_buffer_size().unwrap(),
            sock.tcp_notsent_lowat().unwrap(),
        )
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn the_split_applies_the_sizes_of_the_link() {
        let (dialed, accepted) = loopback_pair().await;
        let config = TransportConfig::default();
        let tuner = Tuner::new(&config);
        // A dialed loopback connection: a short connect, the minimum buffer.
        let (r, _w) = tuner.split(Instant::now(), Some(Duration::from_micros(50)))(dialed);
        let (rcvbuf, lowat) = read_back(&r);
        // Linux reports twice what was set (its bookkeeping share).
        assert_eq!(rcvbuf, 2 * socket::MIN_RECV_BUFFER);
        assert_eq!(lowat, socket::MIN_NOTSENT_LOWAT);
        // An accepted one measured from the accept; a handshake that took 50 ms at the
        // default 5.12 MB/s asks for 512 kB where the kernel allows it.
        let connected = Instant::now() - Duration::from_millis(50);
        let (r, _w) = tuner.split(connected, None)(accepted);
        let expected = socket::size_socket(&LinkEstimate {
            rtt: Duration::from_millis(50),
            send_rate: config.get_mconn().send_rate,
            recv_rate: config.get_mconn().recv_rate,
            max_recv_buffer: socket::max_recv_buffer(),
        });
        let (rcvbuf, _) = read_back(&r);
        match expected.recv_buffer {
            // (The handshake measured a little longer than 50 ms by now.)
            Some(set) => assert!(rcvbuf >= 2 * set && rcvbuf < 2 * set + 20_000, "{rcvbuf}"),
            None => assert!(rcvbuf > 0),
        }
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn fixed_kernel_sizes_leave_the_socket_alone() {
        let (dialed, _accepted) = loopback_pair().await;
        let before = {
            let s = socket2::SockRef::from(&dialed);
            (
                s.recv_buffer_size().unwrap(),
                s.tcp_notsent_lowat().unwrap(),
            )
        };
        let mut config = TransportConfig::default();
        config.socket_tuning(SocketTuning::Fixed(SocketSizes::KERNEL));
        let (r, _w) = Tuner::new(&config).split(Instant::now(), None)(dialed);
        assert_eq!(read_back(&r), before);
    }
}
