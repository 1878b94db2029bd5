//! A connection whose task panics or vanishes (its runtime shut down) ends, visibly: `closed`
//! resolves with an error and `send` does not hang.

mod common;

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use common::unlimited;
use p2p_mconn::{ChannelDescriptor, Error, MConnection};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::timeout;

const LIMIT: Duration = Duration::from_secs(10);

fn chans() -> [ChannelDescriptor; 1] {
    [ChannelDescriptor::new(1, 1)]
}

/// A reader that panics when polled.
struct PanicRead;

impl AsyncRead for PanicRead {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        _: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        panic!("a bug in the stream (expected by this test)")
    }
}

/// A writer that panics when written to.
struct PanicWrite;

impl AsyncWrite for PanicWrite {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        _: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        panic!("a bug in the stream (expected by this test)")
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[tokio::test]
async fn a_panicking_reader_ends_the_connection() {
    let (x, _y) = tokio::io::duplex(1024);
    let (conn, _rx) = MConnection::spawn(PanicRead, x, &chans(), unlimited()).unwrap();
    let end = timeout(LIMIT, conn.closed())
        .await
        .expect("closed must resolve");
    assert_eq!(end, Err(Error::TaskPanicked { task: "read" }));
    let sent = timeout(LIMIT, conn.send(1, vec![1]))
        .await
        .expect("send must not hang");
    assert!(sent.is_err(), "{sent:?}");
    assert!(!conn.is_running());
}

#[tokio::test]
async fn a_panicking_writer_ends_the_connection() {
    let (x, _y) = tokio::io::duplex(1024);
    let (conn, _rx) = MConnection::spawn(x, PanicWrite, &chans(), unlimited()).unwrap();
    conn.send(1, vec![1]).await.unwrap();
    let end = timeout(LIMIT, conn.closed())
        .await
        .expect("closed must resolve");
    assert_eq!(end, Err(Error::TaskPanicked { task: "write" }));
    let sent = timeout(LIMIT, conn.send(1, vec![1]))
        .await
        .expect("send must not hang");
    assert!(sent.is_err(), "{sent:?}");
}

#[test]
fn a_connection_whose_runtime_shut_down_ends() {
    let doomed = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (conn, _rx, peer) = doomed.block_on(async {
        let (x, y) = tokio::io::duplex(1024);
        let (conn, rx) = MConnection::spawn_stream(x, &chans(), unlimited()).unwrap();
        conn.send(1, vec![1]).await.unwrap();
        (conn, rx, y)
    });
    drop(doomed);
    let observer = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    observer.block_on(async {
        let end = timeout(LIMIT, conn.closed())
            .await
            .expect("closed must resolve");
        assert!(matches!(end, Err(Error::TaskAborted { .. })), "{end:?}");
        let sent = timeout(LIMIT, conn.send(1, vec![1]))
            .await
            .expect("send must not hang");
        assert!(sent.is_err(), "{sent:?}");
        assert!(!conn.is_running());
    });
    drop(peer);
}
