//! What a transport holds for a connection (its connection-set entry, its incoming slot) is
//! released when the MConnection has actually ended, not when the `Connection` struct is
//! dropped while a clone of the MConnection still carries traffic.

mod common;

use common::{accept_ok, config, listening, soon, transport};
use p2p_transport::Transport as _;

#[tokio::test]
async fn held_resources_follow_the_mconnection_not_the_struct() {
    let (b, b_addr) = listening(2, "chain", config(), "127.0.0.1").await;
    let a = transport(1, "chain", config());
    let (out, inb) = tokio::join!(a.dial(&b_addr), accept_ok(&b));
    let out = out.unwrap();
    let mut inb = inb;
    assert_eq!(b.stats().incoming, 1);
    assert_eq!(b.conn_set().len(), 1);
    assert_eq!(a.conn_set().len(), 1);
    assert_ne!(out.id(), inb.id());

    // Keep a clone of the MConnection and the receivers, drop the struct.
    let id = inb.id();
    let mconn = inb.mconn().clone();
    let mut rx = inb.take_receivers();
    drop(inb);
    assert_eq!(mconn.id(), id);
    // The connection still carries traffic, and its entry and slot are still held.
    out.mconn().send(0x01, &b"still here"[..]).await.unwrap();
    let got = soon("message", rx.get_mut(0x01).unwrap().recv()).await;
    assert_eq!(got.as_deref(), Some(&b"still here"[..]));
    assert_eq!(b.stats().incoming, 1, "incoming slot released too early");
    assert_eq!(
        b.conn_set().len(),
        1,
        "connection-set entry released too early"
    );

    // The connection ends: both are released by the time `closed` returns.
    mconn.stop();
    assert_eq!(soon("closed", mconn.closed()).await, Ok(()));
    assert_eq!(b.stats().incoming, 0);
    assert_eq!(b.conn_set().len(), 0);
    // The dialer's connection ends with it (the peer closed), releasing its entry even
    // though its `Connection` struct is still alive.
    assert!(soon("closed", out.mconn().closed()).await.is_err());
    assert_eq!(a.conn_set().len(), 0);
    drop(out);
}
