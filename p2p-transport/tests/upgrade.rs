//! The shared upgrade pipeline over in-memory pipes, in virtual time where timing matters.

mod common;

use std::time::Duration;

use common::*;
use p2p_secretconn::SecretStream;
use p2p_transport::{Direction, Error, UpgradeConfig, upgrade};
use tokio::io::AsyncWriteExt;

fn upgrade_config(seed: u8, moniker_len: usize) -> UpgradeConfig {
    let k = key(seed);
    let mut i = info(&k, "chain");
    i.moniker = "m".repeat(moniker_len);
    UpgradeConfig::new(k, i, config()).unwrap()
}

#[tokio::test]
async fn exchange_is_concurrent_even_on_a_tiny_pipe() {
    // Each NodeInfo is ~8 KB and the pipe holds 64 bytes: if either side wrote before reading,
    // both would block forever.
    let (x, y) = tokio::io::duplex(64);
    let (a, b) = (upgrade_config(1, 8000), upgrade_config(2, 8000));
    let ra = "10.0.0.2:26656".parse().unwrap();
    let rb = "10.0.0.1:40000".parse().unwrap();
    let (out, inb) = tokio::join!(
        upgrade(x, ra, Some(key(2).node_id()), &a),
        upgrade(y, rb, None, &b)
    );
    let (out, mut inb) = (out.unwrap(), inb.unwrap());
    assert_eq!(out.node_info(), b.node_info());
    assert_eq!(inb.node_info(), a.node_info());
    assert_eq!(out.direction(), Direction::Outbound);
    assert_eq!(inb.direction(), Direction::Inbound);
    assert_eq!(out.remote_addr().socket_addr(), ra);
    assert_eq!(inb.remote_addr().socket_addr(), rb);
    // Bytes sent right after the NodeInfo belong to the MConnection, not lost in a buffer.
    out.mconn().send(0x02, vec![7u8; 5000]).await.unwrap();
    let mut rx = inb.take_receivers();
    assert_eq!(rx.get_mut(0x02).unwrap().recv().await.unwrap().len(), 5000);
}

#[tokio::test(start_paused = true)]
async fn handshake_timeout_in_virtual_time() {
    let (x, _silent) = tokio::io::duplex(1024);
    let a = upgrade_config(1, 8);
    let start = tokio::time::Instant::now();
    let e = upgrade(x, "10.0.0.2:1".parse().unwrap(), None, &a)
        .await
        .unwrap_err();
    assert!(
        matches!(
            &e,
            Error::Handshake {
                source: p2p_secretconn::Error::HandshakeTimeout { .. },
                ..
            }
        ),
        "{e:?}"
    );
    // The default 3 s, exactly, in virtual time.
    assert_eq!(start.elapsed(), Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn node_info_exchange_gets_a_fresh_deadline() {
    // The peer takes 2.5 s for the secret handshake and 2.5 s more for its NodeInfo: 5 s in
    // all, more than one 3 s timeout, but each phase is within its own deadline (as in the
    // reference, which resets its deadline between the two).
    let (x, y) = tokio::io::duplex(64 * 1024);
    let a = upgrade_config(1, 8);
    let peer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let mut s = SecretStream::handshake(y, &key(2)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(2500)).await;
        s.write_all(&info(&key(2), "chain").encode_delimited())
            .await
            .unwrap();
        s.flush().await.unwrap();
        s
    });
    let start = tokio::time::Instant::now();
    let conn = upgrade(x, "10.0.0.2:1".parse().unwrap(), Some(key(2).node_id()), &a)
        .await
        .unwrap();
    assert!(start.elapsed() >= Duration::from_secs(5));
    assert_eq!(conn.node_id(), key(2).node_id());
    drop(peer.await.unwrap());

    // 3.5 s for the NodeInfo is too long.
    let (x, y) = tokio::io::duplex(64 * 1024);
    let _peer = tokio::spawn(async move {
        let mut s = SecretStream::handshake(y, &key(2)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(3500)).await;
        let _ = s
            .write_all(&info(&key(2), "chain").encode_delimited())
            .await;
        let _ = s.flush().await;
        s
    });
    let e = upgrade(x, "10.0.0.2:1".parse().unwrap(), None, &a)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::NodeInfoTimeout { .. }), "{e:?}");
}

#[test]
fn a_reference_full_node_configuration_is_accepted() {
    let k = key(1);
    let mut i = info(&k, "chain");
    i.channels = p2p_types::channels::V0_38_FULL_NODE.to_vec();
    let mut c = p2p_transport::TransportConfig::default();
    c.channels(p2p_mconn::reference::full_node());
    UpgradeConfig::new(k, i, c).unwrap();
}
