//! A flood above the incoming-connection limit is refused before any handshake work: excess
//! sockets are closed at once and nothing is kept for them, so the number of tracked
//! connections and of tasks stays bounded by the limit.

mod common;

use std::time::Duration;

use common::*;
use p2p_transport::Transport;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

const LIMIT: usize = 8;
const FLOOD: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flood_over_the_limit_is_refused_at_once() {
    let mut cfg = config();
    // Long enough that the silent connections below keep their slots for the whole test: the
    // flood is refused because of the limit, not because slots free up.
    cfg.max_incoming_connections(LIMIT)
        .handshake_timeout(Duration::from_secs(120))
        // The flood comes from one IP; this test is about the incoming limit alone.
        .handshake_rate_limit(None);
    let (b, b_addr) = listening(1, "chain", cfg, "127.0.0.1").await;
    let metrics = tokio::runtime::Handle::current().metrics();

    // Fill the slots with silent connections.
    let mut holders = Vec::new();
    for _ in 0..LIMIT {
        holders.push(TcpStream::connect(b_addr.socket_addr()).await.unwrap());
    }
    wait_until("the holders to take every slot", || {
        b.stats().incoming == LIMIT
    })
    .await;
    let tasks_before = metrics.num_alive_tasks();

    // The flood: each socket is closed by the transport right after it is accepted (EOF or a
    // reset), long before any timeout of the transport could have closed it.
    for i in 0..FLOOD {
        let mut s = TcpStream::connect(b_addr.socket_addr()).await.unwrap();
        let mut buf = [0u8; 64];
        let read = soon("a refused socket to be closed", s.read(&mut buf)).await;
        assert!(
            matches!(read, Ok(0) | Err(_)),
            "flood socket {i} was not closed: {read:?}"
        );
        let stats = b.stats();
        assert!(stats.incoming <= LIMIT, "{stats:?}");
        assert!(stats.tracked <= LIMIT, "{stats:?}");
    }
    wait_until("every flood socket to be counted as refused", || {
        b.stats().refused == FLOOD as u64
    })
    .await;
    let stats = b.stats();
    assert_eq!(stats.incoming, LIMIT, "{stats:?}");
    assert_eq!(stats.tracked, LIMIT, "{stats:?}");
    assert_eq!(stats.rejected, 0, "nothing was handshaken with: {stats:?}");
    // No task was left behind for the flood (a little slack for the runtime's own).
    let tasks_after = metrics.num_alive_tasks();
    assert!(
        tasks_after <= tasks_before + 2,
        "tasks grew from {tasks_before} to {tasks_after}"
    );

    // Freeing the slots lets a good peer in again.
    drop(holders);
    wait_until("the holders' slots to be released", || {
        b.stats().incoming == 0
    })
    .await;
    let a = transport(2, "chain", config());
    let (out, inb) = tokio::join!(a.dial(&b_addr), accept_ok(&b));
    let out = out.unwrap();
    assert_eq!(b.stats().incoming, 1);
    a.cleanup(out);
    b.cleanup(inb);
    assert_eq!(b.stats().incoming, 0);
    b.close().await;
}
