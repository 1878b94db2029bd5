//! What a switch needs from a connection: receivers by channel ID that can be selected over,
//! a stable identity, and values released when the connection has actually ended.

mod common;

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
use std::time::Duration;

use common::unlimited;
use futures_core::Stream;
use p2p_mconn::{ChannelDescriptor, ChannelReceiver, MConnection};
use tokio::time::timeout;

const LIMIT: Duration = Duration::from_secs(10);

fn chans() -> [ChannelDescriptor; 3] {
    [
        ChannelDescriptor::new(0x20, 1).send_queue_capacity(10),
        ChannelDescriptor::new(0x01, 1).send_queue_capacity(10),
        ChannelDescriptor::new(0x30, 1).send_queue_capacity(10),
    ]
}

#[tokio::test]
async fn receivers_are_addressed_by_channel_id() {
    let (x, y) = tokio::io::duplex(64 * 1024);
    let (a, _ra) = MConnection::spawn_stream(x, &chans(), unlimited()).unwrap();
    let (_b, mut rb) = MConnection::spawn_stream(y, &chans(), unlimited()).unwrap();
    assert_eq!(rb.len(), 3);
    assert_eq!(rb.channel_ids().collect::<Vec<_>>(), [0x20, 0x01, 0x30]);
    let mut one = rb.take(0x01).unwrap();
    assert_eq!(one.channel_id(), 0x01);
    assert!(rb.take(0x01).is_none(), "taken twice");
    assert!(rb.take(0x77).is_none(), "no such channel");
    assert_eq!(rb.channel_ids().collect::<Vec<_>>(), [0x20, 0x30]);
    a.send(0x01, &b"one"[..]).await.unwrap();
    a.send(0x30, &b"thirty"[..]).await.unwrap();
    assert_eq!(one.recv().await.unwrap(), &b"one"[..]);
    assert_eq!(
        rb.get_mut(0x30).unwrap().recv().await.unwrap(),
        &b"thirty"[..]
    );
    let rest: Vec<ChannelReceiver> = rb.into_iter().collect();
    assert_eq!(
        rest.iter()
            .map(ChannelReceiver::channel_id)
            .collect::<Vec<_>>(),
        [0x20, 0x30]
    );
}

#[tokio::test]
async fn receivers_can_be_selected_over_as_streams() {
    let (x, y) = tokio::io::duplex(64 * 1024);
    let (a, _ra) = MConnection::spawn_stream(x, &chans(), unlimited()).unwrap();
    let (_b, rb) = MConnection::spawn_stream(y, &chans(), unlimited()).unwrap();
    let mut all: Vec<ChannelReceiver> = rb.into_iter().collect();
    for (i, ch) in [0x30u8, 0x20, 0x01, 0x30].into_iter().enumerate() {
        a.send(ch, vec![i as u8]).await.unwrap();
    }
    // A hand-written select over every receiver, through the Stream impl.
    let mut got = Vec::new();
    while got.len() < 4 {
        let (ch, msg) = timeout(
            LIMIT,
            std::future::poll_fn(|cx| {
                for rx in &mut all {
                    if let Poll::Ready(Some(m)) = Pin::new(&mut *rx).poll_next(cx) {
                        return Poll::Ready((rx.channel_id(), m));
                    }
                }
                Poll::Pending
            }),
        )
        .await
        .unwrap();
        got.push((ch, msg[0]));
    }
    got.sort_unstable();
    assert_eq!(got, [(0x01, 2), (0x20, 1), (0x30, 0), (0x30, 3)]);
}

#[tokio::test]
async fn every_connection_has_its_own_id() {
    let (x, y) = tokio::io::duplex(1024);
    let (a, _ra) = MConnection::spawn_stream(x, &chans(), unlimited()).unwrap();
    let (b, _rb) = MConnection::spawn_stream(y, &chans(), unlimited()).unwrap();
    assert_ne!(a.id(), b.id());
    assert_eq!(a.clone().id(), a.id());
    assert_eq!(a.id().to_string(), a.id().get().to_string());
}

/// Sets a flag when dropped.
struct Released(Arc<AtomicBool>);

impl Drop for Released {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn attached_values_live_as_long_as_the_connection_not_the_handle() {
    let (x, _y) = tokio::io::duplex(1024);
    let (conn, _rx) = MConnection::spawn_stream(x, &chans(), unlimited()).unwrap();
    let released = Arc::new(AtomicBool::new(false));
    conn.attach(Released(Arc::clone(&released)));
    let clone = conn.clone();
    drop(conn);
    tokio::task::yield_now().await;
    assert!(clone.is_running());
    assert!(
        !released.load(Ordering::SeqCst),
        "released while a clone runs"
    );
    clone.stop();
    // Released by `stop` itself: nothing is carried after it.
    assert!(released.load(Ordering::SeqCst));
    assert_eq!(timeout(LIMIT, clone.closed()).await.unwrap(), Ok(()));
    // Attaching to an ended connection drops the value at once.
    let late = Arc::new(AtomicBool::new(false));
    clone.attach(Released(Arc::clone(&late)));
    assert!(late.load(Ordering::SeqCst));
}

#[tokio::test]
async fn attached_values_are_released_when_the_connection_fails() {
    let (x, y) = tokio::io::duplex(1024);
    let (conn, _rx) = MConnection::spawn_stream(x, &chans(), unlimited()).unwrap();
    let released = Arc::new(AtomicBool::new(false));
    conn.attach(Released(Arc::clone(&released)));
    drop(y); // the peer goes away
    assert!(timeout(LIMIT, conn.closed()).await.unwrap().is_err());
    // Both tasks finished, and the value with them, before `closed` returned.
    assert!(released.load(Ordering::SeqCst));
}

#[tokio::test]
async fn attached_values_are_released_when_the_last_handle_goes() {
    let (x, _y) = tokio::io::duplex(1024);
    let (conn, _rx) = MConnection::spawn_stream(x, &chans(), unlimited()).unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    conn.attach(tx);
    drop(conn);
    // The sender is dropped with the connection's end: the receiver sees it.
    assert!(timeout(LIMIT, rx).await.unwrap().is_err());
}
