//! A third transport, over Unix domain sockets, written the way any user would write a custom
//! transport: bind, connect and accept your own way, and leave the rest to an `Upgrader` of
//! `p2p-transport` (the duplicate checks and connection filters, the SecretConnection, the
//! NodeInfo exchange and checks, the MConnection, the incoming limit, the accept queue and
//! close). Its `main` and its test run the transport conformance suite of `p2p-testkit`.
//!
//! ```sh
//! cargo run -p p2p-testkit --example unix_transport
//! ```
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
struct UnixTransport {
    dir: PathBuf,
    upgrader: Upgrader,
}

impl UnixTransport {
    fn new(
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

/// Runs the conformance suite against the Unix-socket transport in a fresh directory.
async fn run_suite() -> Result<p2p_testkit::conformance::Report, Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("p2p-unix-transport-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = p2p_testkit::conformance::run("127.0.0.1:0".parse()?, |key, info, config| {
        let dir = dir.clone();
        async move { UnixTransport::new(&dir, key, info, config) }
    })
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(result?)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let report = run_suite().await?;
    println!("Unix-socket transport: {report}");
    Ok(())
}

#[cfg(test)]
mod tests {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unix_transport_passes_the_suite() {
        let report = super::run_suite().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(report.passed.len(), 8, "{report}");
    }
}
