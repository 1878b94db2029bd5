//! CPU griefing at the handshake: one IP opening connections as fast as it can gets its
//! burst of handshakes and no more (the rest are closed before any crypto, with a typed
//! rejection), while a peer from another IP connects at once.
//!
//! Linux only: the second source address is 127.0.0.2, which Linux routes to loopback like
//! all of 127.0.0.0/8; other systems only have 127.0.0.1 unless configured.
#![cfg(target_os = "linux")]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use p2p_transport::{Error, HandshakeRateLimit, Transport, UpgradeConfig, upgrade};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpSocket, TcpStream};

const BURST: u32 = 5;
const FLOOD: usize = 200;

/// Connects to `to` from `from` (port 0).
async fn connect_from(from: &str, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(format!("{from}:0").parse().expect("an address"))?;
    socket.connect(to).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_ip_gets_its_burst_and_another_ip_still_connects() {
    let mut cfg = config();
    // One more handshake per hour after the burst: within this test, exactly the burst passes.
    cfg.handshake_rate_limit(Some(HandshakeRateLimit::new(
        BURST,
        Duration::from_secs(3600),
    )));
    let (b, b_addr) = listening(1, "chain", cfg, "127.0.0.1").await;
    let at = b_addr.socket_addr();

    // The flood, all from 127.0.0.1 at once. Each socket either gets the listener's first
    // handshake message (its ephemeral key) or is closed with nothing sent.
    let mut flood = tokio::task::JoinSet::new();
    for _ in 0..FLOOD {
        flood.spawn(async move {
            let mut s = TcpStream::connect(at).await.expect("connect");
            let mut buf = [0u8; 1];
            let handshaking =
                matches!(soon("a flood socket's fate", s.read(&mut buf)).await, Ok(1));
            (handshaking, s)
        });
    }

    // Meanwhile a good peer from 127.0.0.2 upgrades over its own socket.
    let good_key = key(2);
    let good = UpgradeConfig::new(good_key.clone(), info(&good_key, "chain"), config()).unwrap();
    let dial = async {
        let tcp = connect_from("127.0.0.2", at)
            .await
            .expect("connect from 127.0.0.2");
        upgrade(tcp, at, Some(b_addr.id()), &good).await
    };
    let accepting = async {
        let mut rate_limited = 0usize;
        loop {
            match b.accept().await {
                Ok(c) => return (c, rate_limited),
                Err(Error::HandshakeRateLimited {
                    addr,
                    burst,
                    interval,
                }) => {
                    assert_eq!(addr.ip(), at.ip(), "only the flooding IP is limited");
                    assert_eq!((burst, interval), (BURST, Duration::from_secs(3600)));
                    rate_limited += 1;
                }
                Err(e) => panic!("unexpected accept result {e:?}"),
            }
        }
    };
    let (out, (inb, reported)) =
        soon("the good peer", async { tokio::join!(dial, accepting) }).await;
    let out = out.unwrap_or_else(|e| panic!("the good peer could not connect: {e}"));
    assert_eq!(out.node_id(), b_addr.id());
    assert_eq!(inb.node_id(), good_key.node_id());
    assert_eq!(inb.socket_addr().ip().to_string(), "127.0.0.2");

    let mut handshaking = 0;
    let mut held = Vec::new();
    while let Some(r) = flood.join_next().await {
        let (h, s) = r.expect("flood task");
        handshaking += usize::from(h);
        held.push(s);
    }
    assert_eq!(
        handshaking, BURST as usize,
        "exactly the burst reached the handshake"
    );
    let stats = b.stats();
    assert_eq!(
        stats.rate_limited,
        (FLOOD - BURST as usize) as u64,
        "{stats:?}"
    );
    // Rate-limited connections took no slot and no connection-set entry: the burst's and the
    // good peer's are all there is.
    assert!(stats.tracked <= BURST as usize + 1, "{stats:?}");
    assert!(reported <= FLOOD - BURST as usize);
    drop(held);
    b.cleanup(inb);
    drop(out);
    b.close().await;
}
