//! Slow-loris: hundreds of connections that open and send nothing must not keep a good peer
//! out. Every inbound connection is upgraded in its own task, so the good peer's handshake runs
//! beside the silent ones instead of behind them.

mod common;

use common::*;
use p2p_transport::{Error, Transport};
use tokio::net::TcpStream;

/// Silent connections wanted; fewer if the file-descriptor limit cannot be raised enough.
const WANTED: usize = 500;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_do_not_delay_a_good_peer() {
    // Each silent connection takes a descriptor on both ends; keep some for everything else.
    let silent_count = scale_to_fd_limit(WANTED, 2, 128);
    assert!(
        silent_count >= 50,
        "only {silent_count} connections fit the file-descriptor limit"
    );
    // Default handshake timeout (3 s) on both sides. The silent connections all come from
    // 127.0.0.1, so the per-IP handshake rate limit is off: this is about slots, not rates.
    let mut cfg = config();
    cfg.handshake_rate_limit(None);
    let (b, b_addr) = listening(1, "chain", cfg, "127.0.0.1").await;

    let mut silent = Vec::with_capacity(silent_count);
    for _ in 0..silent_count {
        silent.push(TcpStream::connect(b_addr.socket_addr()).await.unwrap());
    }
    // All of them are accepted and being "upgraded" (waiting for a handshake that never comes).
    wait_until("the silent connections to be accepted", || {
        b.stats().incoming >= silent_count
    })
    .await;

    // The good peer connects within its own handshake timeout: its dial would fail with a
    // handshake timeout otherwise.
    let a = transport(2, "chain", config());
    let (out, inb) = tokio::join!(a.dial(&b_addr), accept_ok(&b));
    let out = out.unwrap_or_else(|e| panic!("the good peer could not connect: {e}"));
    assert_eq!(out.node_id(), key(1).node_id());
    assert_eq!(inb.node_id(), key(2).node_id());
    // It works.
    out.mconn().send(0x01, &b"hi"[..]).await.unwrap();
    let mut inb = inb;
    let mut rx = inb.take_receivers();
    assert_eq!(
        soon("message", rx.get_mut(0x01).unwrap().recv())
            .await
            .as_deref(),
        Some(&b"hi"[..])
    );

    // The silent ones end with their handshake timeout and give back everything they held:
    // only the good peer is left.
    wait_until("the silent connections to time out", || {
        b.stats().rejected >= silent_count as u64
    })
    .await;
    let stats = b.stats();
    assert_eq!(stats.incoming, 1, "{stats:?}");
    assert_eq!(stats.tracked, 1, "{stats:?}");
    assert_eq!(stats.upgrading, 0, "{stats:?}");
    // The reports that fit in the accept queue are handshake timeouts.
    match accept_err(&b).await {
        Error::Handshake { source, .. } => assert!(
            matches!(source, p2p_secretconn::Error::HandshakeTimeout { .. }),
            "{source:?}"
        ),
        e => panic!("expected a handshake timeout, got {e:?}"),
    }
    drop(silent);
    a.cleanup(out);
    b.cleanup(inb);
}
