//! Persistent peers: redialed after any disconnect, on the reference's schedule (checked on
//! tokio's paused clock), or forever with a capped period.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use p2p_switch::{Switch, SwitchBuilder, SwitchConfig};
use p2p_testkit::memory::{MemoryNetwork, MemoryTransport};
use p2p_transport::{Connection, Error, Transport};
use p2p_types::{NetAddress, NodeInfo};
use tokio::time::Instant;

const SEC: Duration = Duration::from_secs(1);

/// A transport that records when it dials.
struct Recording {
    inner: MemoryTransport,
    dials: Arc<Mutex<Vec<Instant>>>,
}

impl Transport for Recording {
    async fn listen(&self, addr: SocketAddr) -> Result<SocketAddr, Error> {
        self.inner.listen(addr).await
    }
    async fn accept(&self) -> Result<Connection, Error> {
        self.inner.accept().await
    }
    async fn dial(&self, addr: &NetAddress) -> Result<Connection, Error> {
        self.dials.lock().unwrap().push(Instant::now());
        self.inner.dial(addr).await
    }
    fn cleanup(&self, conn: Connection) {
        self.inner.cleanup(conn);
    }
    async fn close(&self) {
        self.inner.close().await;
    }
}

type Dials = Arc<Mutex<Vec<Instant>>>;

/// Node 1 on the network, with `persistent` as its persistent peer and the given config.
fn dialer(
    net: &MemoryNetwork,
    persistent: NetAddress,
    setup: impl FnOnce(&mut SwitchConfig),
) -> (Switch<Recording>, Dials) {
    let ip = net.next_ip();
    let k = key(1);
    let info = NodeInfo::new(k.node_id(), "test-chain", format!("tcp://{ip}:{PORT}"));
    let mut config = test_config(SocketAddr::new(ip, PORT));
    config.persistent_peers([persistent]);
    setup(&mut config);
    let mut b = SwitchBuilder::new(k, info, config);
    b.add_reactor_arc("r", Recorder::new(&[0x01])).unwrap();
    let dials = Dials::default();
    let (net, d) = (net.clone(), Arc::clone(&dials));
    let sw = b
        .build(move |k, i, c| {
            Ok(Recording {
                inner: net.transport_at(ip, k, i, c)?,
                dials: d,
            })
        })
        .unwrap();
    (sw, dials)
}

fn gaps(dials: &Dials) -> Vec<Duration> {
    let d = dials.lock().unwrap();
    d.windows(2).map(|w| w[1] - w[0]).collect()
}

#[tokio::test(start_paused = true)]
async fn unreachable_persistent_peer_is_redialed_on_the_reference_schedule() {
    let net = MemoryNetwork::new();
    let absent_ip = net.next_ip();
    let absent = NetAddress::new(key(2).node_id(), SocketAddr::new(absent_ip, PORT));
    let (sw, dials) = dialer(&net, absent, |_| {});
    sw.start().await.unwrap();
    // A day and more: the reference's whole schedule.
    tokio::time::sleep(Duration::from_secs(200_000)).await;
    let g = gaps(&dials);
    // The start's dial, then the redials: 20 at 5 s + up to 3 s, then 10 with backoff.
    assert_eq!(dials.lock().unwrap().len(), 1 + 1 + 29, "{g:?}");
    // The first redial follows the failed start dial at once.
    assert_eq!(g[0], Duration::ZERO);
    for (i, gap) in g[1..20].iter().enumerate() {
        assert!(
            (5 * SEC..8 * SEC).contains(gap),
            "fixed redial {i} after {gap:?}"
        );
    }
    // After the 20th: its 5 s wait, then the first backoff of 3 s (each + up to 3 s).
    assert!((8 * SEC..14 * SEC).contains(&g[20]), "{:?}", g[20]);
    for (i, gap) in g[21..].iter().enumerate() {
        let base = Duration::from_secs(3u64.pow(i as u32 + 2));
        assert!(
            (base..base + 3 * SEC).contains(gap),
            "backoff redial {} after {gap:?}",
            i + 2
        );
    }
    assert!(sw.peers().is_empty());
    sw.stop().await;
}

#[tokio::test(start_paused = true)]
async fn with_a_max_dial_period_persistent_peers_are_redialed_forever() {
    let net = MemoryNetwork::new();
    let absent_ip = net.next_ip();
    let absent = NetAddress::new(key(2).node_id(), SocketAddr::new(absent_ip, PORT));
    let cap = Duration::from_secs(60);
    let (sw, dials) = dialer(&net, absent, |c| {
        c.persistent_peers_max_dial_period(cap);
    });
    sw.start().await.unwrap();
    tokio::time::sleep(Duration::from_secs(3 * 24 * 3600)).await;
    let g = gaps(&dials);
    assert!(g.iter().all(|gap| *gap <= cap), "a wait exceeded the cap");
    // Three days of redials at most a minute apart, long after the reference gives up.
    assert!(g.len() > 3 * 24 * 60, "{} redials", g.len());
    let last = *dials.lock().unwrap().last().unwrap();
    assert!(Instant::now() - last <= cap);

    // The peer comes up: the next redial connects.
    let peer = memory_node(
        &net,
        Some(absent_ip),
        2,
        |_| {},
        |b| {
            b.add_reactor_arc("r", Recorder::new(&[0x01])).unwrap();
        },
    );
    peer.start().await.unwrap();
    eventually("connected", cap + SEC, || sw.peers().len() == 1).await;
    assert!(sw.peers()[0].is_persistent());
    let n = dials.lock().unwrap().len();
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(
        dials.lock().unwrap().len(),
        n,
        "redials went on after connecting"
    );
    sw.stop().await;
    peer.stop().await;
}

#[tokio::test(start_paused = true)]
async fn outbound_persistent_peer_is_redialed_after_a_disconnect() {
    let net = MemoryNetwork::new();
    let b_ip = net.next_ip();
    let b_addr = NetAddress::new(key(2).node_id(), SocketAddr::new(b_ip, PORT));
    let b = memory_node(
        &net,
        Some(b_ip),
        2,
        |_| {},
        |b| {
            b.add_reactor_arc("r", Recorder::new(&[0x01])).unwrap();
        },
    );
    b.start().await.unwrap();
    let (a, dials) = dialer(&net, b_addr, |_| {});
    a.start().await.unwrap();
    eventually("connected at start", 5 * SEC, || a.peers().len() == 1).await;
    let first = a.peers().remove(0);
    assert!(first.is_outbound() && first.is_persistent());

    // The remote drops us: we redial at once.
    let before = dials.lock().unwrap().len();
    b.peers()[0].close();
    first.removed().await;
    eventually("reconnected", 5 * SEC, || {
        a.peers().len() == 1 && a.peers()[0].conn_id() != first.conn_id()
    })
    .await;
    assert!(!first.is_running());
    assert_eq!(dials.lock().unwrap().len(), before + 1);

    // A graceful stop of our own is not redialed.
    let second = a.peers().remove(0);
    a.stop_peer_gracefully(&second);
    second.removed().await;
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(a.peers().is_empty());
    assert_eq!(dials.lock().unwrap().len(), before + 1);
    a.stop().await;
    b.stop().await;
}

#[tokio::test(start_paused = true)]
async fn inbound_persistent_peer_is_redialed_at_its_self_reported_address() {
    let net = MemoryNetwork::new();
    let b_ip = net.next_ip();
    // B reports tcp://b_ip:26656 in its NodeInfo (memory_node does), which A lists.
    let b_addr = NetAddress::new(key(2).node_id(), SocketAddr::new(b_ip, PORT));
    let (a, dials) = dialer(&net, b_addr, |_| {});
    let b = memory_node(
        &net,
        Some(b_ip),
        2,
        |_| {},
        |b| {
            b.add_reactor_arc("r", Recorder::new(&[0x01])).unwrap();
        },
    );
    b.start().await.unwrap();
    // A starts, its own first dial of B is racing B's dial of A; wait for one connection.
    a.start().await.unwrap();
    let _ = b.dial_peer_with_address(&addr_of(&a)).await;
    eventually("connected", 5 * SEC, || a.peers().len() == 1).await;
    tokio::time::sleep(5 * SEC).await;
    // Make sure the surviving connection is B's inbound one, then cut it.
    let p = a.peers().remove(0);
    if p.is_outbound() {
        a.stop_peer_gracefully(&p);
        p.removed().await;
        b.dial_peer_with_address(&addr_of(&a)).await.unwrap();
        eventually("inbound", 5 * SEC, || a.peers().len() == 1).await;
    }
    let p = a.peers().remove(0);
    assert!(!p.is_outbound() && p.is_persistent());
    let before = dials.lock().unwrap().len();
    b.peers()[0].close();
    p.removed().await;
    eventually("redialed", 10 * SEC, || {
        a.peers().first().is_some_and(|q| q.is_outbound())
    })
    .await;
    assert!(dials.lock().unwrap().len() > before);
    a.stop().await;
    b.stop().await;
}

/// The dial times of node 1 redialing an absent peer for 10 minutes, relative to its start.
async fn redial_times(seed: u64) -> Vec<Duration> {
    let net = MemoryNetwork::new();
    let absent_ip = net.next_ip();
    let absent = NetAddress::new(key(2).node_id(), SocketAddr::new(absent_ip, PORT));
    let (sw, dials) = dialer(&net, absent, |c| {
        c.rng_seed(Some(seed));
    });
    let start = Instant::now();
    sw.start().await.unwrap();
    tokio::time::sleep(Duration::from_secs(600)).await;
    sw.stop().await;
    let d = dials.lock().unwrap();
    d.iter().map(|t| *t - start).collect()
}

#[tokio::test(start_paused = true)]
async fn the_seeded_generator_makes_the_schedule_repeatable() {
    let a = redial_times(7).await;
    let b = redial_times(7).await;
    let c = redial_times(8).await;
    assert!(a.len() > 20);
    assert_eq!(a, b, "same seed, different jitter");
    assert_ne!(a, c, "different seeds, same jitter");
}
