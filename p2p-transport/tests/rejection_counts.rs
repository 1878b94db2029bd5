//! Every inbound rejection is counted by kind, even when its report finds the accept queue
//! full and is dropped, and even when it never becomes a report (the incoming limit).
//!
//! Linux only: the connections come from several loopback addresses (127.0.0.1 to
//! 127.0.0.4), which Linux routes like all of 127.0.0.0/8; other systems only have
//! 127.0.0.1 unless configured.
#![cfg(target_os = "linux")]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use p2p_transport::{HandshakeRateLimit, RejectionCounts, TcpTransport, Transport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

async fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    socket.connect(to).await.unwrap()
}

/// Waits until `b`'s counts satisfy `cond`.
async fn counted(b: &TcpTransport, what: &str, cond: impl Fn(&RejectionCounts) -> bool) {
    wait_until(what, || cond(&b.rejections())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejections_are_counted_by_kind_even_when_their_reports_are_dropped() {
    let mut c = config();
    // Nobody accepts until the end and the queue holds one report: all but the first report
    // are dropped. Four handshakes per IP, then none for an hour. Two slots.
    c.accept_queue(1)
        .max_incoming_connections(2)
        .handshake_timeout(Duration::from_secs(120))
        .handshake_rate_limit(Some(HandshakeRateLimit::new(4, Duration::from_secs(3600))));
    let (b, b_addr) = listening(1, "chain", c, "127.0.0.1").await;
    let at = b_addr.socket_addr();
    assert_eq!(b.rejections(), RejectionCounts::default());

    // Three auth failures from 127.0.0.1: garbage instead of a handshake.
    for n in 1..=3 {
        let mut tcp = TcpStream::connect(at).await.unwrap();
        tcp.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        tcp.shutdown().await.unwrap();
        counted(&b, "an auth failure", |r| r.auth_failure == n).await;
    }
    // One incompatible peer from 127.0.0.1 (its fourth handshake).
    let other = transport(2, "other-chain", config());
    assert!(other.dial(&b_addr).await.is_err());
    counted(&b, "an incompatible peer", |r| r.incompatible == 1).await;
    // 127.0.0.1 has spent its burst: the next three are closed before any handshake work.
    for n in 1..=3 {
        let mut tcp = TcpStream::connect(at).await.unwrap();
        let mut buf = Vec::new();
        let _ = soon("a rate-limited socket to close", tcp.read_to_end(&mut buf)).await;
        assert!(
            buf.is_empty(),
            "no handshake bytes for a rate-limited connection"
        );
        counted(&b, "a rate-limited connection", |r| r.rate_limited == n).await;
    }
    // Two silent connections from other IPs take both slots; a third IP is refused.
    let _silent = [
        connect_from("127.0.0.2", at).await,
        connect_from("127.0.0.3", at).await,
    ];
    wait_until("both slots to be taken", || b.stats().incoming == 2).await;
    let _refused = connect_from("127.0.0.4", at).await;
    counted(&b, "an incoming-limit refusal", |r| r.incoming_limit == 1).await;

    let r = b.rejections();
    assert_eq!(
        r.iter().collect::<Vec<_>>(),
        vec![
            ("auth_failure", 3),
            ("invalid_node_info", 0),
            ("incompatible", 1),
            ("self_connection", 0),
            ("duplicate", 0),
            ("filtered", 0),
            ("rate_limited", 3),
            ("incoming_limit", 1),
            ("other", 0),
        ]
    );
    assert_eq!(r.total(), 8);
    let stats = b.stats();
    assert_eq!(
        (stats.rejected, stats.rate_limited, stats.refused),
        (4, 3, 1),
        "{stats:?}"
    );
    // Seven reports (the incoming limit makes none), one of which fits in the queue.
    assert_eq!(stats.reports_dropped, 6, "{stats:?}");
    // The one that fit is the first, and accept goes on.
    assert!(accept_err(&b).await.is_auth_failure());
    b.close().await;
}
