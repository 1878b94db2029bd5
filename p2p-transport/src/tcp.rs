//! The TCP multiplex transport (the reference's `MultiplexTransport`).

use std::net::SocketAddr;

use p2p_types::{NetAddress, NodeInfo, NodeKey};
use tokio::net::{TcpListener, TcpStream};

use crate::{
    ConnSet, Connection, Error, Inbound, Transport, TransportConfig, TransportStats, UpgradeConfig,
    Upgrader,
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

    /// Whether [`close`](Transport::close) was called.
    pub fn is_closed(&self) -> bool {
        self.upgrader.is_closed()
    }
}

async fn accept_loop(inbound: Inbound, listener: TcpListener) {
    while let Some(accepted) = inbound.until_closed(listener.accept()).await {
        match accepted {
            Ok((tcp, remote)) => {
                let _ = tcp.set_nodelay(true);
                inbound.spawn_upgrade(tcp, TcpStream::into_split, remote);
            }
            Err(e) => inbound.pause_after_error(&e).await,
        }
    }
}

impl Transport for TcpTransport {
    async fn listen(&self, addr: SocketAddr) -> Result<SocketAddr, Error> {
        let bind = async move {
            let listener = TcpListener::bind(addr).await?;
            Ok((listener.local_addr()?, listener))
        };
        self.upgrader.listen(addr, bind, accept_loop).await
    }

    async fn accept(&self) -> Result<Connection, Error> {
        self.upgrader.accept().await
    }

    async fn dial(&self, addr: &NetAddress) -> Result<Connection, Error> {
        let remote = addr.socket_addr();
        let connect = async move {
            let tcp = TcpStream::connect(remote).await?;
            let _ = tcp.set_nodelay(true);
            Ok(tcp)
        };
        self.upgrader
            .dial(addr, connect, TcpStream::into_split)
            .await
    }

    fn cleanup(&self, conn: Connection) {
        conn.close();
    }

    async fn close(&self) {
        self.upgrader.close().await;
    }
}
