//! The same core switch tests over three transports: TCP on loopback, the in-memory network
//! and the Unix-socket transport of `p2p-testkit`. A custom transport plugs in through
//! `SwitchBuilder::build` with no other change.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use p2p_switch::{StopReason, Switch, SwitchBuilder};
use p2p_transport::{TcpTransport, Transport, TransportConfig};
use p2p_types::{NodeInfo, NodeKey};

const LIMIT: Duration = Duration::from_secs(20);

/// Builds node `seed` over the transport `make` returns.
fn node<T, F>(seed: u8, listen: SocketAddr, make: F) -> (Switch<T>, Arc<Recorder>, Arc<Recorder>)
where
    T: Transport,
    F: FnOnce(NodeKey, NodeInfo, TransportConfig) -> Result<T, p2p_transport::Error>,
{
    let k = key(seed);
    let info = NodeInfo::new(k.node_id(), "test-chain", "tcp://127.0.0.1:26656");
    let mut config = test_config(listen);
    config.allow_duplicate_ip(true);
    let (a, b) = (Recorder::new(&[0x01, 0x02]), Recorder::new(&[0x03]));
    let mut builder = SwitchBuilder::new(k, info, config);
    builder.add_reactor_arc("a", Arc::clone(&a)).unwrap();
    builder.add_reactor_arc("b", Arc::clone(&b)).unwrap();
    (builder.build(make).unwrap(), a, b)
}

/// A hub and two spokes: dialing, routing by channel, broadcast, stop for error, stop.
async fn core_suite<T: Transport>(
    mut make: impl FnMut(u8) -> (Switch<T>, Arc<Recorder>, Arc<Recorder>),
) {
    let (hub, hub_a, hub_b) = make(1);
    let (s1, a1, b1) = make(2);
    let (s2, a2, _b2) = make(3);
    for s in [&hub, &s1, &s2] {
        s.start().await.unwrap();
    }
    let hub_addr = addr_of(&hub);
    s1.dial_peer_with_address(&hub_addr).await.unwrap();
    s2.dial_peer_with_address(&hub_addr).await.unwrap();
    eventually("hub has both", LIMIT, || hub.peers().len() == 2).await;
    assert_eq!(hub.num_peers(), (0, 2, 0));
    assert_eq!(s1.num_peers(), (1, 0, 0));
    assert!(s1.is_dialing_or_existing_address(&hub_addr));

    // Routing: each channel to its reactor.
    let to_hub = s1.peers().remove(0);
    to_hub.send(0x02, &msg(b"for a")).await.unwrap();
    to_hub.send(0x03, &msg(b"for b")).await.unwrap();
    eventually("routed", LIMIT, || hub_a.count() == 1 && hub_b.count() == 1).await;
    assert_eq!(hub_a.received_on(0x02), vec![b"for a".to_vec()]);
    assert_eq!(hub_b.received_on(0x03), vec![b"for b".to_vec()]);

    // Order on one channel.
    for i in 0..50u8 {
        to_hub.send(0x01, &msg(&[i])).await.unwrap();
    }
    eventually("50 in", LIMIT, || hub_a.received_on(0x01).len() == 50).await;
    assert!(
        hub_a
            .received_on(0x01)
            .iter()
            .enumerate()
            .all(|(i, m)| m == &[i as u8])
    );

    // Broadcast.
    let report = hub.broadcast(0x01, &msg(b"all")).await;
    assert_eq!(report.len(), 2);
    assert!(report.iter().all(|(_, r)| r.is_ok()), "{report:?}");
    eventually("both got it", LIMIT, || {
        a1.received_on(0x01).len() == 1 && a2.received_on(0x01).len() == 1
    })
    .await;

    // Stop one peer for an error: removed once, on both sides.
    let p = hub.peer(s1.node_info().unwrap().id).unwrap();
    hub.stop_peer_for_error(&p, "misbehaved");
    p.removed().await;
    eventually("spoke sees it", LIMIT, || s1.peers().is_empty()).await;
    assert_eq!(hub_a.removes().len(), 1);
    assert!(hub_a.removes()[0].2.contains("misbehaved"));
    assert_eq!(b1.removes().len(), 1);
    assert_eq!(hub.peers().len(), 1);

    for s in [&hub, &s1, &s2] {
        s.stop().await;
    }
    assert_eq!(hub_a.removes().len(), 2);
    assert_eq!(hub_a.removes()[1].2, StopReason::SwitchStopping.to_string());
}

#[tokio::test(start_paused = true)]
async fn core_suite_over_the_in_memory_network() {
    let net = p2p_testkit::memory::MemoryNetwork::new();
    core_suite(|seed| {
        let net = net.clone();
        node(seed, "0.0.0.0:26656".parse().unwrap(), move |k, i, c| {
            net.transport(k, i, c)
        })
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_suite_over_tcp() {
    core_suite(|seed| node(seed, "127.0.0.1:0".parse().unwrap(), TcpTransport::new)).await;
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_suite_over_unix_sockets() {
    use p2p_testkit::unix::UnixTransport;
    let dir = std::env::temp_dir().join(format!("p2p-switch-unix-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let d = dir.clone();
    core_suite(move |seed| {
        let d = d.clone();
        node(seed, "127.0.0.1:0".parse().unwrap(), move |k, i, c| {
            UnixTransport::new(&d, k, i, c)
        })
    })
    .await;
    let _ = std::fs::remove_dir_all(&dir);
}
