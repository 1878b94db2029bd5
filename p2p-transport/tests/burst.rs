//! A burst of connections from many addresses at once: every one is accepted (it reaches the
//! handshake or gets a typed rejection) and a good peer dialing in the middle of it connects
//! within its dial timeout. With a small listen backlog the kernel drops SYNs while the queue
//! is full (the dialer retries after a second, past its dial timeout) and leaves connections
//! unaccepted; the transport listens with the system's maximum backlog, as Go does.
//!
//! Linux only: the sources are spread over 127.0.x.y, which Linux routes to loopback (all of
//! 127.0.0.0/8) while other systems only have 127.0.0.1 unless configured, and the SYN-drop
//! behaviour of a full listen queue is Linux's.
#![cfg(target_os = "linux")]

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use p2p_transport::Transport;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpSocket, TcpStream};

const BURST: usize = 2000;

/// The `i`-th burst source: 127.0.1.1, 127.0.1.2, ..., 127.0.1.250, 127.0.2.1, ...
fn source(i: usize) -> Ipv4Addr {
    let (hi, lo) = (1 + i / 250, 1 + i % 250);
    Ipv4Addr::new(127, 0, hi as u8, lo as u8)
}

async fn connect_from(from: Ipv4Addr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((from, 0)))?;
    socket.connect(to).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_is_accepted_and_a_good_peer_connects_during_it() {
    // Each burst connection takes a descriptor on both ends.
    let burst = scale_to_fd_limit(BURST, 2, 256);
    let (b, b_addr) = listening(1, "chain", config(), "127.0.0.1").await;
    let at = b_addr.socket_addr();

    let started = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..burst {
        let started = Arc::clone(&started);
        tasks.spawn(async move {
            started.fetch_add(1, Ordering::Relaxed);
            let mut s = soon("a burst connect", connect_from(source(i), at))
                .await
                .unwrap_or_else(|e| panic!("burst connect {i} failed: {e}"));
            // The listener's first handshake message, or the connection closed by a rejection.
            let mut buf = [0u8; 1];
            let handshaking =
                matches!(soon("a burst socket's fate", s.read(&mut buf)).await, Ok(1));
            (handshaking, s)
        });
    }
    // The good peer dials in the middle of the burst, with the default 1 s dial timeout.
    wait_until("half the burst to be under way", || {
        started.load(Ordering::Relaxed) >= burst / 2
    })
    .await;
    let a = transport(2, "chain", config());
    let (out, inb) = tokio::join!(a.dial(&b_addr), accept_ok(&b));
    let out =
        out.unwrap_or_else(|e| panic!("the good peer could not connect during the burst: {e}"));
    assert_eq!(out.node_id(), b_addr.id());
    assert_eq!(inb.node_id(), key(2).node_id());

    let mut handshaking = 0;
    let mut held = Vec::with_capacity(burst);
    while let Some(r) = tasks.join_next().await {
        let (h, s) = r.expect("a burst task");
        handshaking += usize::from(h);
        held.push(s);
    }
    let stats = b.stats();
    let typed = stats.rate_limited + stats.refused;
    assert_eq!(
        handshaking as u64 + typed,
        burst as u64,
        "every burst connection reached the handshake or a typed rejection: {stats:?}"
    );
    drop(held);
    a.cleanup(out);
    b.cleanup(inb);
    b.close().await;
}
