//! A third transport, over Unix domain sockets, written the way any user would write a custom
//! transport: move bytes your own way, then hand each connected stream to the shared pipeline
//! of `p2p-transport` (`ConnSet::admit` for the duplicate checks and connection filters,
//! `upgrade_with` for the SecretConnection, the NodeInfo exchange and checks, and the
//! MConnection). Its `main` and its test run the transport conformance suite of `p2p-testkit`.
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
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use p2p_transport::{
    ConnSet, Connection, Error, Transport, TransportConfig, UpgradeConfig, upgrade_with,
};
use p2p_types::{NetAddress, NodeId, NodeInfo, NodeKey};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A transport whose connections are Unix domain sockets in one directory.
struct UnixTransport {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    upgrade: UpgradeConfig,
    conn_set: ConnSet,
    closed: CancellationToken,
    accepted_tx: mpsc::Sender<Result<Connection, Error>>,
    accepted_rx: tokio::sync::Mutex<mpsc::Receiver<Result<Connection, Error>>>,
    listener: Mutex<Option<(PathBuf, Option<JoinHandle<()>>)>>,
    next_port: AtomicU16,
}

impl UnixTransport {
    fn new(
        dir: &Path,
        key: NodeKey,
        info: NodeInfo,
        config: TransportConfig,
    ) -> Result<Self, Error> {
        let upgrade = UpgradeConfig::new(key, info, config)?;
        let (accepted_tx, accepted_rx) =
            mpsc::channel(upgrade.transport_config().get_accept_queue());
        Ok(Self {
            inner: Arc::new(Inner {
                dir: dir.to_owned(),
                upgrade,
                conn_set: ConnSet::new(),
                closed: CancellationToken::new(),
                accepted_tx,
                accepted_rx: tokio::sync::Mutex::new(accepted_rx),
                listener: Mutex::new(None),
                next_port: AtomicU16::new(1),
            }),
        })
    }
}

impl Inner {
    fn path_of(&self, addr: SocketAddr) -> PathBuf {
        self.dir.join(format!("{}_{}.sock", addr.ip(), addr.port()))
    }

    /// The shared pipeline: admission, then the upgrade over the socket's own halves.
    async fn upgrade(
        &self,
        stream: UnixStream,
        remote: SocketAddr,
        dialed: Option<NodeId>,
    ) -> Result<Connection, Error> {
        let reservation = self
            .conn_set
            .admit(remote, vec![remote.ip()], dialed, &self.upgrade)
            .await?;
        let mut conn = upgrade_with(
            stream,
            UnixStream::into_split,
            remote,
            dialed,
            &self.upgrade,
        )
        .await?;
        reservation.set_established();
        conn.hold(reservation);
        Ok(conn)
    }
}

/// Accepts sockets and upgrades each in its own task, so a silent one delays nobody.
async fn accept_loop(inner: Arc<Inner>, listener: UnixListener) {
    loop {
        let stream = tokio::select! {
            () = inner.closed.cancelled() => return,
            r = listener.accept() => match r {
                Ok((stream, _)) => stream,
                Err(_) => {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let port = inner.next_port.fetch_add(1, Ordering::Relaxed);
        let remote = SocketAddr::from(([127, 0, 0, 1], port));
        let inner = Arc::clone(&inner);
        tokio::spawn(async move {
            let result = tokio::select! {
                () = inner.closed.cancelled() => return,
                r = inner.upgrade(stream, remote, None) => r,
            };
            match result {
                Ok(conn) => {
                    tokio::select! {
                        () = inner.closed.cancelled() => {}
                        _ = inner.accepted_tx.send(Ok(conn)) => {}
                    }
                }
                // Rejections are reported while there is room, never queued without bound.
                Err(e) => drop(inner.accepted_tx.try_send(Err(e))),
            }
        });
    }
}

impl Transport for UnixTransport {
    async fn listen(&self, addr: SocketAddr) -> Result<SocketAddr, Error> {
        let inner = &self.inner;
        if inner.closed.is_cancelled() {
            return Err(Error::Closed);
        }
        let mut bound = addr;
        if bound.port() == 0 {
            // Port 0: the first free "port" from 20000 on.
            bound.set_port(20000);
            while inner.path_of(bound).exists() {
                bound.set_port(bound.port().wrapping_add(1).max(20000));
            }
        }
        let path = inner.path_of(bound);
        let mut state = inner
            .listener
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if state.is_some() {
            return Err(Error::AlreadyListening { addr: bound });
        }
        let listener = UnixListener::bind(&path).map_err(|e| Error::Listen {
            addr,
            source: Arc::new(e),
        })?;
        let task = tokio::spawn(accept_loop(Arc::clone(inner), listener));
        *state = Some((path, Some(task)));
        Ok(bound)
    }

    async fn accept(&self) -> Result<Connection, Error> {
        let closed = &self.inner.closed;
        let mut rx = tokio::select! {
            () = closed.cancelled() => return Err(Error::Closed),
            rx = self.inner.accepted_rx.lock() => rx,
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
        let timeout = inner.upgrade.transport_config().get_dial_timeout();
        let work = async {
            let stream =
                match tokio::time::timeout(timeout, UnixStream::connect(inner.path_of(remote)))
                    .await
                {
                    Err(_) => {
                        return Err(Error::DialTimeout {
                            addr: remote,
                            timeout,
                        });
                    }
                    Ok(Err(e)) => {
                        return Err(Error::Dial {
                            addr: remote,
                            source: Arc::new(e),
                        });
                    }
                    Ok(Ok(s)) => s,
                };
            inner.upgrade(stream, remote, Some(addr.id())).await
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
        let inner = &self.inner;
        inner.closed.cancel();
        let state = inner
            .listener
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_mut()
            .map(|(path, task)| (path.clone(), task.take()));
        if let Some((path, task)) = state {
            if let Some(task) = task {
                let _ = task.await;
            }
            let _ = std::fs::remove_file(path);
        }
        let mut rx = inner.accepted_rx.lock().await;
        rx.close();
        while rx.try_recv().is_ok() {}
    }
}

impl Drop for UnixTransport {
    fn drop(&mut self) {
        self.inner.closed.cancel();
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
