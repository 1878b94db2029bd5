//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use p2p_mconn::{ChannelDescriptor, MConnConfig};
use p2p_secretconn::SecretStream;
use p2p_transport::{Connection, Error, TcpTransport, Transport, TransportConfig};
use p2p_types::{NetAddress, NodeInfo, NodeKey};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Generous bound for anything that should happen "soon" (never a timing assertion: only a
/// guard against hanging).
pub const SOON: Duration = Duration::from_secs(30);

pub fn key(seed: u8) -> NodeKey {
    NodeKey::from_seed([seed; 32])
}

/// A valid NodeInfo for `key` on `network` with channels 0x01 and 0x02.
pub fn info(key: &NodeKey, network: &str) -> NodeInfo {
    let mut info = NodeInfo::new(key.node_id(), network, "tcp://127.0.0.1:26656");
    info.channels = vec![0x01, 0x02];
    info.moniker = format!("node-{}", &key.node_id().to_string()[..6]);
    info
}

/// Channels 0x01 and 0x02, no rate limits, duplicate IPs allowed (everything is on loopback).
pub fn config() -> TransportConfig {
    let mut mconn = MConnConfig::default();
    mconn.send_rate(0).recv_rate(0);
    let mut c = TransportConfig::default();
    c.channels([
        ChannelDescriptor::new(0x01, 1),
        ChannelDescriptor::new(0x02, 5),
    ])
    .mconn(mconn);
    c.dangerous().allow_duplicate_ip(true);
    c
}

pub fn transport(seed: u8, network: &str, config: TransportConfig) -> TcpTransport {
    let k = key(seed);
    let i = info(&k, network);
    TcpTransport::new(k, i, config).unwrap()
}

/// A transport listening on `ip:0`, and its dialable address.
pub async fn listening(
    seed: u8,
    network: &str,
    config: TransportConfig,
    ip: &str,
) -> (TcpTransport, NetAddress) {
    let t = transport(seed, network, config);
    let bound = t.listen(format!("{ip}:0").parse().unwrap()).await.unwrap();
    let addr = NetAddress::new(key(seed).node_id(), bound);
    (t, addr)
}

/// `fut`, or a panic naming `what` if it takes longer than [`SOON`].
pub async fn soon<O>(what: &str, fut: impl Future<Output = O>) -> O {
    tokio::time::timeout(SOON, fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing after {SOON:?}"))
}

/// The next accept result, which must be an error.
pub async fn accept_err(t: &TcpTransport) -> Error {
    match soon("accept", t.accept()).await {
        Ok(c) => panic!("expected a rejection, accepted {c:?}"),
        Err(e) => e,
    }
}

/// The next accepted connection, skipping rejections.
pub async fn accept_ok(t: &TcpTransport) -> Connection {
    soon("accept", async {
        loop {
            match t.accept().await {
                Ok(c) => return c,
                Err(e) if e.is_rejection() => continue,
                Err(e) => panic!("accept failed: {e}"),
            }
        }
    })
    .await
}

/// Polls `cond` until it holds (panics after [`SOON`]).
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    soon(what, async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

/// A hand-driven peer: connects to `to`, runs the secret handshake as `key`, then sends `wire`
/// as its NodeInfo (whatever it is). Returns the stream so the caller decides when it closes.
pub async fn raw_peer(to: SocketAddr, key: &NodeKey, wire: &[u8]) -> SecretStream<TcpStream> {
    let tcp = TcpStream::connect(to).await.unwrap();
    let mut s = SecretStream::handshake(tcp, key).await.unwrap();
    s.write_all(wire).await.unwrap();
    s.flush().await.unwrap();
    s
}

/// Raises the soft limit on open file descriptors to the hard limit and returns how many
/// `per_unit`-descriptor units fit under it (at most `wanted`), keeping `reserve` descriptors
/// for the test binary and the runtime. Prints the count when it had to scale down.
pub fn scale_to_fd_limit(wanted: usize, per_unit: usize, reserve: usize) -> usize {
    let limit = rlimit::increase_nofile_limit(u64::MAX)
        .map(|l| usize::try_from(l).unwrap_or(usize::MAX))
        .unwrap_or(1024);
    let fits = limit.saturating_sub(reserve) / per_unit.max(1);
    if fits < wanted {
        println!("file-descriptor limit {limit}: {fits} of {wanted} wanted");
    }
    fits.min(wanted)
}
