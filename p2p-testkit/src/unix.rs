//! A transport over Unix domain sockets, written the way any user would write a custom
//! transport: bind, connect and accept your own way, and leave the rest to an `Upgrader` of
//! `p2p-transport` (the duplicate checks and connection filters, the SecretConnection, the
//! NodeInfo exchange and checks, the MConnection, the incoming limit, the accept queue and
//! close). `examples/unix_transport.rs` runs the conformance suite on it.
//!
//! Addresses: peers are dialed by `id@ip:port` like everywhere in the protocol; this transport
//! maps `ip:port` to the socket file `<dir>/<ip>_<port>.sock`. A Unix socket carries no peer
//! address, so each inbound connection is named `127.0.0.1:<n>` with `n` counting up: the
//! duplicate-IP check means nothing here, so allow duplicate IPs with this transport.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use p2p_transport::{
    Connection, Error, Inbound, Transport, TransportConfig, UpgradeConfig, Upgrader,
};
use p2p_types::{NetAddress, NodeInfo, NodeKey};
use tokio::net::{UnixListener, UnixStream};

/// A transport whose connections are Unix domain sockets in one directory.
#[derive(Debug)]
pub struct UnixTransport {
    dir: PathBuf,
    upgrader: Upgrader,
}

impl UnixTransport {
    /// A transport for the node with `key` announcing `info`, its sockets in `dir`.
    pub fn new(
        dir: &Path,
        key: NodeKey,
        info: NodeInfo,
        config: TransportConfig,
    ) -> Result<Self, Error> {
        Ok(Self {
            dir: dir.to_owned(),
            upgrader: Upgrader::new(UpgradeConfig::new(key, info, config)?),
        })
    }

    fn path_of(&self, addr: SocketAddr) -> PathBuf {
        self.dir.join(format!("{}_{}.sock", addr.ip(), addr.port()))
    }
}

/// A bound socket; dropping it removes its file, freeing the address.
#[derive(Debug)]
struct Listener {
    socket: UnixListener,
    path: PathBuf,
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Accepts sockets and hands each to the upgrader, which upgrades it in its own task. A Unix
/// socket has no peer address: the `n`th inbound one is named `127.0.0.1:n`.
async fn accept_loop(inbound: Inbound, listener: Listener) {
    let mut port = 0u16;
    while let Some(accepted) = inbound.until_closed(listener.socket.accept()).await {
        match accepted {
            Ok((stream, _)) => {
                port = port.wrapping_add(1).max(1);
                let remote = SocketAddr::from(([127, 0, 0, 1], port));
                inbound.spawn_upgrade(stream, UnixStream::into_split, remote);
            }
            Err(e) => inbound.pause_after_error(&e).await,
        }
    }
}

impl Transport for UnixTransport {
    async fn listen(&self, addr: SocketAddr) -> Result<SocketAddr, Error> {
        let bind = async {
            let mut bound = addr;
            if bound.port() == 0 {
                // Port 0: the first free "port" from 20000 on.
                bound.set_port(20000);
                while self.path_of(bound).exists() {
                    bound.set_port(bound.port().wrapping_add(1).max(20000));
                }
            }
            let path = self.path_of(bound);
            let socket = UnixListener::bind(&path)?;
            Ok((bound, Listener { socket, path }))
        };
        self.upgrader.listen(addr, bind, accept_loop).await
    }

    async fn accept(&self) -> Result<Connection, Error> {
        self.upgrader.accept().await
    }

    async fn dial(&self, addr: &NetAddress) -> Result<Connection, Error> {
        let connect = UnixStream::connect(self.path_of(addr.socket_addr()));
        self.upgrader
            .dial(addr, connect, UnixStream::into_split)
            .await
    }

    fn cleanup(&self, conn: Connection) {
        conn.close();
    }

    async fn close(&self) {
        self.upgrader.close().await;
    }
}
