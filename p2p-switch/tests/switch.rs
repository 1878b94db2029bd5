//! The reference's switch behaviour tests (`p2p/switch_test.go`), ported to the in-memory
//! network on tokio's paused clock, plus the cases where this switch does better.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use p2p_mconn::ChannelDescriptor;
use p2p_switch::metrics::{Metrics, render};
use p2p_switch::{
    Envelope, Error, Peer, Reactor, ReactorError, SendError, StopReason, SwitchBuilder,
    SwitchConfig,
};
use p2p_testkit::memory::MemoryNetwork;
use p2p_transport::peer_filter_fn;
use p2p_types::{NodeInfo, NodeKey};
use prometheus_client::registry::Registry;

const SEC: Duration = Duration::from_secs(1);

fn two_reactors(first: &Arc<Recorder>, second: &Arc<Recorder>) -> impl FnOnce(&mut SwitchBuilder) {
    let (first, second) = (Arc::clone(first), Arc::clone(second));
    move |b| {
        b.add_reactor_arc("foo", first).unwrap();
        b.add_reactor_arc("bar", second).unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn messages_reach_the_reactor_owning_the_channel() {
    let net = MemoryNetwork::new();
    let (foo1, bar1) = (Recorder::new(&[0x00, 0x01]), Recorder::new(&[0x02, 0x03]));
    let (foo2, bar2) = (Recorder::new(&[0x00, 0x01]), Recorder::new(&[0x02, 0x03]));
    let s1 = memory_node(&net, None, 1, |_| {}, two_reactors(&foo1, &bar1));
    let s2 = memory_node(&net, None, 2, |_| {}, two_reactors(&foo2, &bar2));
    s1.start().await.unwrap();
    s2.start().await.unwrap();
    assert_eq!(
        s1.node_info().unwrap().channels,
        vec![0x00, 0x01, 0x02, 0x03]
    );

    s1.dial_peer_with_address(&addr_of(&s2)).await.unwrap();
    eventually("both see one peer", 5 * SEC, || {
        s1.peers().len() == 1 && s2.peers().len() == 1
    })
    .await;
    for (ch, data) in [(0x00, b"zero"), (0x01, b"one!"), (0x02, b"two!")] {
        let report = s1.broadcast(ch, &msg(data)).await;
        assert_eq!(report.len(), 1);
        assert!(report[0].1.is_ok(), "{report:?}");
    }
    eventually("all delivered", 5 * SEC, || {
        foo2.count() == 2 && bar2.count() == 1
    })
    .await;
    assert_eq!(foo2.received_on(0x00), vec![b"zero".to_vec()]);
    assert_eq!(foo2.received_on(0x01), vec![b"one!".to_vec()]);
    assert_eq!(bar2.received_on(0x02), vec![b"two!".to_vec()]);
    assert_eq!(bar2.received_on(0x03), Vec::<Vec<u8>>::new());

    // Reactors are found by name and type.
    assert!(Arc::ptr_eq(&s2.reactor::<Recorder>("foo").unwrap(), &foo2));
    assert!(s2.reactor::<Recorder>("baz").is_none());
    s1.stop().await;
    s2.stop().await;
    assert!(s1.peers().is_empty() && s2.peers().is_empty());
}

#[test]
fn two_reactors_claiming_one_channel_is_an_error() {
    let k = key(1);
    let info = NodeInfo::new(k.node_id(), "c", "tcp://127.0.0.1:26656");
    let mut b = SwitchBuilder::new(k, info, SwitchConfig::default());
    b.add_reactor_arc("a", Recorder::new(&[0x01, 0x02]))
        .unwrap();
    match b.add_reactor_arc("b", Recorder::new(&[0x03, 0x02])) {
        Err(Error::DuplicateChannel {
            channel,
            first,
            second,
        }) => {
            assert_eq!((channel, first.as_str(), second.as_str()), (0x02, "a", "b"));
        }
        other => panic!("expected DuplicateChannel, got {:?}", other.map(|_| ())),
    }
    assert!(matches!(
        b.add_reactor_arc("a", Recorder::new(&[0x09])),
        Err(Error::DuplicateReactor { .. })
    ));
    // The failed registrations left nothing behind.
    assert_eq!(
        b.channels().iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![1, 2]
    );
}

#[tokio::test(start_paused = true)]
async fn inbound_limit_spares_unconditional_peers() {
    const MAX: usize = 5;
    let net = MemoryNetwork::new();
    let unconditional = [key(200).node_id(), key(201).node_id()];
    let rec = Recorder::new(&[0x01]);
    let hub = memory_node(
        &net,
        None,
        1,
        |c| {
            c.max_num_inbound_peers(MAX)
                .unconditional_peer_ids(unconditional);
        },
        {
            let rec = Arc::clone(&rec);
            |b| {
                b.add_reactor_arc("r", rec).unwrap();
            }
        },
    );
    hub.start().await.unwrap();
    let mut others = Vec::new();
    for seed in 10..10 + MAX as u8 {
        let s = memory_node(
            &net,
            None,
            seed,
            |_| {},
            |b| {
                b.add_reactor_arc("r", Recorder::new(&[0x01])).unwrap();
            },
        );
        s.start().await.unwrap();
        s.dial_peer_with_address(&addr_of(&hub)).await.unwrap();
        others.push(s);
    }
    eventually("MAX inbound peers", 5 * SEC, || hub.peers().len() == MAX).await;
    assert_eq!(hub.num_peers(), (0, MAX, 0));

    // One more is refused after its handshake.
    let extra = memory_node(
        &net,
        None,
        99,
        |_| {},
        |b| {
            b.add_reactor_arc("r", Recorder::new(&[0x01])).unwrap();
        },
    );
    extra.start().await.unwrap();
    let _ = extra.dial_peer_with_address(&addr_of(&hub)).await;
    eventually("the extra peer is dropped", 5 * SEC, || {
        extra.peers().is_empty()
    })
    .await;
    tokio::time::sleep(SEC).await;
    assert_eq!(hub.peers().len(), MAX);

    // Unconditional peers get in anyway and are counted in neither direction.
    for seed in [200, 201] {
        let s = memory_node(
            &net,
            None,
            seed,
            |_| {},
            |b| {
                b.add_reactor_arc("r", Recorder::new(&[0x01])).unwrap();
            },
        );
        s.start().await.unwrap();
        s.dial_peer_with_address(&addr_of(&hub)).await.unwrap();
        others.push(s);
    }
    eventually("unconditional peers added", 5 * SEC, || {
        hub.peers().len() == MAX + 2
    })
    .await;
    assert_eq!(hub.num_peers(), (0, MAX, 0));
    hub.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_slow_peer_filter_times_out() {
    let net = MemoryNetwork::new();
    let s1 = memory_node(
        &net,
        None,
        1,
        |c| {
            c.transport()
                .filter_timeout(Duration::from_millis(5))
                .peer_filter(peer_filter_fn("slow", |_| async {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    Ok(())
                }));
        },
        |b| {
            b.add_reactor_arc("r", Recorder::new(&[0x01])).unwrap();
        },
    );
    let s2 = memory_node(
        &net,
        None,
        2,
        |_| {},
        |b| {
            b.add_reactor_arc("r", Recorder::new(&[0x01])).unwrap();
        },
    );
    s1.start().await.unwrap();
    s2.start().await.unwrap();
    let err = s1
        .dial_peer_with_address(&addr_of(&s2))
        .await
        .expect_err("filter should time out");
    let t = err.transport().expect("a transport error");
    assert!(
        matches!(t, p2p_transport::Error::FilterTimeout { .. }),
        "{t}"
    );
    assert!(s1.peers().is_empty());
}

/// A reactor whose `remove_peer` takes a while and which checks that `init_peer` is never
/// called meanwhile (the reference's `TestSwitchInitPeerIsNotCalledBeforeRemovePeer`).
#[derive(Default)]
struct SlowRemove {
    removing: AtomicBool,
    init_during_remove: AtomicBool,
    inits: AtomicUsize,
}

impl Reactor for SlowRemove {
    type Message = Msg;
    fn channels(&self) -> Vec<ChannelDescriptor> {
        vec![ChannelDescriptor::new(0x01, 1)]
    }
    async fn receive(&self, _: Envelope<Msg>) {}
    fn init_peer(&self, _: &Peer) {
        self.inits.fetch_add(1, Ordering::SeqCst);
        if self.removing.load(Ordering::SeqCst) {
            self.init_during_remove.store(true, Ordering::SeqCst);
        }
    }
    async fn remove_peer(&self, _: &Peer, _: &StopReason) {
        self.removing.store(true, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.removing.store(false, Ordering::SeqCst);
    }
}

#[tokio::test(start_paused = true)]
async fn init_peer_never_overlaps_remove_peer_of_the_same_node() {
    let net = MemoryNetwork::new();
    let slow = Arc::new(SlowRemove::default());
    let sw = memory_node(&net, None, 1, |_| {}, {
        let slow = Arc::clone(&slow);
        |b| {
            b.add_reactor_arc("slow", slow).unwrap();
        }
    });
    let remote = memory_node(
        &net,
        None,
        2,
        |_| {},
        |b| {
            b.add_reactor_arc("r", Recorder::new(&[0x01])).unwrap();
        },
    );
    sw.start().await.unwrap();
    remote.start().await.unwrap();
    remote.dial_peer_with_address(&addr_of(&sw)).await.unwrap();
    eventually("peer added", 5 * SEC, || sw.peers().len() == 1).await;
    let old = sw.peers().remove(0);
    sw.stop_peer_for_error(&old, "test");
    // The remote reconnects at once, while our remove_peer still runs.
    let mut reconnected = None;
    for _ in 0..100 {
        match remote.dial_peer_with_address(&addr_of(&sw)).await {
            Ok(p) => {
                reconnected = Some(p);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
    assert!(reconnected.is_some(), "could not reconnect");
    eventually("the new connection is added", 5 * SEC, || {
        sw.peers().iter().any(|p| p.conn_id() != old.conn_id())
    })
    .await;
    assert!(!slow.init_during_remove.load(Ordering::SeqCst));
    assert_eq!(slow.inits.load(Ordering::SeqCst), 2);
    sw.stop().await;
    remote.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_peer_is_removed_exactly_once_whatever_ends_it() {
    let net = MemoryNetwork::new();
    let rec = Recorder::new(&[0x01]);
    let sw = memory_node(&net, None, 1, |_| {}, {
        let rec = Arc::clone(&rec);
        |b| {
            b.add_reactor_arc("r", rec).unwrap();
        }
    });
    let remote = memory_node(
        &net,
        None,
        2,
        |_| {},
        |b| {
            b.add_reactor_arc("r", Recorder::new(&[0x01])).unwrap();
        },
    );
    sw.start().await.unwrap();
    remote.start().await.unwrap();
    let peer = sw.dial_peer_with_address(&addr_of(&remote)).await.unwrap();

    // Everything at once: a reactor's error, a graceful stop, a close, the remote going away.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..10 {
        let (p, h) = (peer.clone(), sw.handle());
        tasks.spawn(async move {
            match i % 3 {
                0 => h.stop_peer_for_error(&p, format!("error {i}")),
                1 => h.stop_peer_gracefully(&p),
                _ => p.close(),
            }
        });
    }
    let rp = remote.peers();
    rp[0].close();
    while tasks.join_next().await.is_some() {}
    peer.removed().await;

    let removes = rec.removes();
    assert_eq!(removes.len(), 1, "{:?}", rec.events());
    assert_eq!(removes[0].1, peer.conn_id());
    // The first reason is the one reported, and the peer reports it too.
    assert_eq!(peer.stop_reason().unwrap().to_string(), removes[0].2);
    // Add came before remove; nothing after.
    let events = rec.events();
    assert!(matches!(events[0], Event::Init(..)));
    assert!(matches!(events[1], Event::Add(..)));
    assert!(matches!(events[2], Event::Remove(..)));
    assert_eq!(events.len(), 3);

    // A stale handle fails cleanly.
    assert_eq!(peer.try_send(0x01, &msg(b"late")), Err(SendError::Stopped));
    peer.stop_for_error("again");
    peer.flush_stop().await;
    assert!(!peer.is_running());
    assert!(sw.peers().is_empty());
    assert_eq!(rec.removes().len(), 1);
    sw.stop().await;
    remote.stop().await;
}

#[tokio::test(start_paused = true)]
async fn stopping_the_switch_removes_every_peer_once() {
    let net = MemoryNetwork::new();
    let rec = Recorder::new(&[0x01]);
    let hub = memory_node(&net, None, 1, |_| {}, {
        let rec = Arc::clone(&rec);
        |b| {
            b.add_reactor_arc("r", rec).unwrap();
        }
    });
    hub.start().await.unwrap();
    let mut others = Vec::new();
    for seed in 2..6 {
        let s = memory_node(
            &net,
            None,
            seed,
            |_| {},
            |b| {
                b.add_reactor_arc("r", Recorder::new(&[0x01])).unwrap();
            },
        );
        s.start().await.unwrap();
        s.dial_peer_with_address(&addr_of(&hub)).await.unwrap();
        others.push(s);
    }
    eventually("4 peers", 5 * SEC, || hub.peers().len() == 4).await;
    hub.stop().await;
    let removes = rec.removes();
    assert_eq!(removes.len(), 4);
    assert!(
        removes
            .iter()
            .all(|r| r.2 == StopReason::SwitchStopping.to_string())
    );
    assert!(hub.peers().is_empty());
    assert!(!hub.is_running());
    assert!(matches!(
        hub.dial_peer_with_address(&addr_of(&others[0])).await,
        Err(Error::NotRunning)
    ));
}

/// A reactor that rejects bytes on one channel before decoding, and counts what it sees.
struct Filtering {
    filtered: AtomicUsize,
    received: AtomicUsize,
}

impl Reactor for Filtering {
    type Message = Msg;
    fn channels(&self) -> Vec<ChannelDescriptor> {
        vec![
            ChannelDescriptor::new(0x05, 1),
            ChannelDescriptor::new(0x06, 1),
        ]
    }
    async fn receive(&self, _: Envelope<Msg>) {
        self.received.fetch_add(1, Ordering::SeqCst);
    }
    fn filter_bytes(&self, channel: u8, _: &Peer, _: &[u8]) -> Result<(), ReactorError> {
        if channel == 0x05 {
            self.filtered.fetch_add(1, Ordering::SeqCst);
            return Err("rejected by filter for test".into());
        }
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn the_bytes_filter_and_undecodable_messages_stop_the_peer() {
    let net = MemoryNetwork::new();
    let f = Arc::new(Filtering {
        filtered: AtomicUsize::new(0),
        received: AtomicUsize::new(0),
    });
    let rec = Recorder::new(&[0x01]);
    let sw = memory_node(&net, None, 1, |_| {}, {
        let (f, rec) = (Arc::clone(&f), Arc::clone(&rec));
        |b| {
            b.add_reactor_arc("filter", f).unwrap();
            b.add_reactor_arc("rec", rec).unwrap();
        }
    });
    let remote = memory_node(
        &net,
        None,
        2,
        |_| {},
        |b| {
            b.add_reactor_arc("filter", Recorder::new(&[0x05, 0x06]))
                .unwrap();
            b.add_reactor_arc("rec", Recorder::new(&[0x01])).unwrap();
        },
    );
    sw.start().await.unwrap();
    remote.start().await.unwrap();

    // A filtered message: dropped before decoding, the peer stopped.
    let p = remote.dial_peer_with_address(&addr_of(&sw)).await.unwrap();
    eventually("added", 5 * SEC, || sw.peers().len() == 1).await;
    p.send(0x05, &msg(b"x")).await.unwrap();
    eventually("peer dropped", 5 * SEC, || sw.peers().is_empty()).await;
    assert_eq!(f.filtered.load(Ordering::SeqCst), 1);
    assert_eq!(f.received.load(Ordering::SeqCst), 0);
    let removes = rec.removes();
    assert!(removes[0].2.contains("rejected by filter"), "{removes:?}");

    // Garbage that is no `Msg` (field 1 announced as a varint): a decode error.
    eventually("remote sees the end", 5 * SEC, || remote.peers().is_empty()).await;
    let p = remote.dial_peer_with_address(&addr_of(&sw)).await.unwrap();
    eventually("added again", 5 * SEC, || sw.peers().len() == 1).await;
    p.send_bytes(0x01, bytes::Bytes::from_static(&[0x0a, 0xff]))
        .await
        .unwrap();
    eventually("peer dropped again", 5 * SEC, || sw.peers().is_empty()).await;
    let removes = rec.removes();
    assert_eq!(removes.len(), 2);
    assert!(removes[1].2.contains("undecodable"), "{removes:?}");
    assert_eq!(rec.count(), 0);
    sw.stop().await;
    remote.stop().await;
}

#[tokio::test(start_paused = true)]
async fn dialing_ourselves_teaches_the_book_our_address() {
    let net = MemoryNetwork::new();
    let book = Arc::new(MockBook::default());
    let k = key(1);
    let ip = net.next_ip();
    let info = NodeInfo::new(k.node_id(), "test-chain", format!("tcp://{ip}:{PORT}"));
    let mut config = test_config((ip, PORT).into());
    // Our own dial and accept share an IP.
    config.allow_duplicate_ip(true);
    let mut b = SwitchBuilder::new(k, info, config);
    b.add_reactor_arc("r", Recorder::new(&[0x01])).unwrap();
    b.address_book(Arc::clone(&book) as _);
    let n2 = net.clone();
    let sw = b
        .build(move |k, i, c| n2.transport_at(ip, k, i, c))
        .unwrap();
    sw.start().await.unwrap();
    let ours = addr_of(&sw);
    let err = sw.dial_peer_with_address(&ours).await.unwrap_err();
    assert!(err.is_self(), "{err}");
    assert!(book.ours.lock().unwrap().contains(&ours));
    assert!(sw.peers().is_empty());
    sw.stop().await;
}

#[tokio::test(start_paused = true)]
async fn dial_peers_async_spreads_the_dials_and_fills_the_book() {
    let net = MemoryNetwork::new();
    let book = Arc::new(MockBook::default());
    let private = key(4).node_id();
    let k = key(1);
    let ip = net.next_ip();
    let info = NodeInfo::new(k.node_id(), "test-chain", format!("tcp://{ip}:{PORT}"));
    let mut config = test_config((ip, PORT).into());
    config.private_peer_ids([private]);
    let mut b = SwitchBuilder::new(k, info, config);
    b.add_reactor_arc("r", Recorder::new(&[0x01])).unwrap();
    b.address_book(Arc::clone(&book) as _);
    let n2 = net.clone();
    let sw = b
        .build(move |k, i, c| n2.transport_at(ip, k, i, c))
        .unwrap();
    sw.start().await.unwrap();
    let mut others = Vec::new();
    for seed in 2..5 {
        let s = memory_node(
            &net,
            None,
            seed,
            |_| {},
            |b| {
                b.add_reactor_arc("r", Recorder::new(&[0x01])).unwrap();
            },
        );
        s.start().await.unwrap();
        others.push(s);
    }
    let start = tokio::time::Instant::now();
    let mut addrs: Vec<_> = others.iter().map(addr_of).collect();
    addrs.push(addr_of(&sw)); // ourselves: skipped
    sw.dial_peers_async(addrs.clone());
    assert_eq!(sw.num_peers(), (0, 0, 0), "dials wait for their jitter");
    eventually("all three connected", 5 * SEC, || sw.peers().len() == 3).await;
    assert!(start.elapsed() < Duration::from_secs(3));
    assert_eq!(sw.num_peers(), (3, 0, 0));
    // The book got the others but not us nor the private peer, and was saved.
    let in_book = book.addrs.lock().unwrap().clone();
    assert_eq!(in_book.len(), 2, "{in_book:?}");
    assert!(!in_book.iter().any(|a| a.id() == private));
    assert_eq!(*book.saves.lock().unwrap(), 1);
    assert!(book.private.lock().unwrap().contains(&private));
    for a in &addrs[..3] {
        assert!(sw.is_dialing_or_existing_address(a));
    }
    sw.mark_peer_as_good(&sw.peers()[0]);
    assert_eq!(book.good.lock().unwrap().len(), 1);
    sw.stop().await;
}

#[tokio::test(start_paused = true)]
async fn sending_checks_the_peers_channels() {
    let net = MemoryNetwork::new();
    let s1 = memory_node(
        &net,
        None,
        1,
        |_| {},
        |b| {
            b.add_reactor_arc("a", Recorder::new(&[0x01, 0x02]))
                .unwrap();
        },
    );
    let s2 = memory_node(
        &net,
        None,
        2,
        |_| {},
        |b| {
            b.add_reactor_arc("a", Recorder::new(&[0x01])).unwrap();
        },
    );
    s1.start().await.unwrap();
    s2.start().await.unwrap();
    let p = s1.dial_peer_with_address(&addr_of(&s2)).await.unwrap();
    assert_eq!(
        p.try_send(0x02, &msg(b"x")),
        Err(SendError::PeerLacksChannel { channel: 0x02 })
    );
    assert_eq!(
        p.send(0x09, &msg(b"x")).await,
        Err(SendError::UnknownChannel { channel: 0x09 })
    );
    assert_eq!(p.try_send(0x01, &msg(b"x")), Ok(()));
    let report = s1.try_broadcast(0x02, &msg(b"y"));
    assert_eq!(
        report,
        vec![(
            s2.node_info().unwrap().id,
            Err(SendError::PeerLacksChannel { channel: 2 })
        )]
    );
    assert_eq!(p.node_info().channels, vec![0x01]);
    assert!(p.is_outbound() && !p.is_persistent());

    // Typed per-peer data.
    struct Score(u32);
    assert!(p.get::<Score>().is_none());
    p.insert(Score(3));
    assert_eq!(p.get::<Score>().unwrap().0, 3);
    assert_eq!(p.get_or_insert_with(|| Score(9)).0, 3);
    assert_eq!(p.remove::<Score>().unwrap().0, 3);
    assert_eq!(p.get_or_insert_with(|| Score(9)).0, 9);
    s1.stop().await;
    s2.stop().await;
}

#[tokio::test(start_paused = true)]
async fn simultaneous_dials_end_with_one_connection() {
    for (sa, sb) in [(1u8, 2u8), (2, 1), (7, 3)] {
        let net = MemoryNetwork::new();
        let (ra, rb) = (Recorder::new(&[0x01]), Recorder::new(&[0x01]));
        let a = memory_node(
            &net,
            None,
            sa,
            |c| {
                c.allow_duplicate_ip(true);
            },
            {
                let ra = Arc::clone(&ra);
                |b| {
                    b.add_reactor_arc("r", ra).unwrap();
                }
            },
        );
        let b = memory_node(
            &net,
            None,
            sb,
            |c| {
                c.allow_duplicate_ip(true);
            },
            {
                let rb = Arc::clone(&rb);
                |b| {
                    b.add_reactor_arc("r", rb).unwrap();
                }
            },
        );
        a.start().await.unwrap();
        b.start().await.unwrap();
        let (to_b, to_a) = (addr_of(&b), addr_of(&a));
        let (x, y) = tokio::join!(
            a.dial_peer_with_address(&to_b),
            b.dial_peer_with_address(&to_a)
        );
        let _ = (x, y);
        tokio::time::sleep(2 * SEC).await;
        let (pa, pb) = (a.peers(), b.peers());
        assert_eq!((pa.len(), pb.len()), (1, 1), "seeds {sa} {sb}");
        // The same connection on both sides: one dialed, the other accepted.
        assert_ne!(pa[0].is_outbound(), pb[0].is_outbound());
        assert!(pa[0].is_running() && pb[0].is_running());
        assert_eq!(a.transport().conn_set().len(), 1);
        assert_eq!(b.transport().conn_set().len(), 1);
        // And it works.
        pa[0].send(0x01, &msg(b"hi")).await.unwrap();
        eventually("delivered", 5 * SEC, || rb.count() == 1).await;
        a.stop().await;
        b.stop().await;
    }
}

#[tokio::test(start_paused = true)]
async fn broadcast_reaches_a_hundred_peers() {
    const N: usize = 100;
    let net = MemoryNetwork::new();
    let hub = memory_node(
        &net,
        None,
        1,
        |c| {
            c.max_num_inbound_peers(N);
        },
        |b| {
            b.add_reactor_arc("r", Recorder::new(&[0x01])).unwrap();
        },
    );
    hub.start().await.unwrap();
    let mut spokes = Vec::new();
    for i in 0..N {
        let rec = Recorder::new(&[0x01]);
        let s = memory_node(&net, None, 10 + i as u8, |_| {}, {
            let rec = Arc::clone(&rec);
            |b| {
                b.add_reactor_arc("r", rec).unwrap();
            }
        });
        s.start().await.unwrap();
        s.dial_peer_with_address(&addr_of(&hub)).await.unwrap();
        spokes.push((s, rec));
    }
    eventually("all connected", 10 * SEC, || hub.peers().len() == N).await;
    let report = hub.broadcast(0x01, &msg(b"to all")).await;
    assert_eq!(report.len(), N);
    assert!(report.iter().all(|(_, r)| r.is_ok()), "{report:?}");
    eventually("all received", 10 * SEC, || {
        spokes.iter().all(|(_, r)| r.count() == 1)
    })
    .await;
    let report = hub.try_broadcast(0x01, &msg(b"again"));
    assert_eq!(report.iter().filter(|(_, r)| r.is_ok()).count(), N);
    hub.stop().await;
}

#[tokio::test(start_paused = true)]
async fn metrics_follow_the_peers() {
    let net = MemoryNetwork::new();
    let mut registry = Registry::default();
    let metrics = Metrics::new(&mut registry, "cometbft", true);
    let sw = memory_node(
        &net,
        None,
        1,
        |_| {},
        |b| {
            b.add_reactor_arc("r", Recorder::new(&[0x01])).unwrap();
            b.metrics(metrics.clone());
        },
    );
    let rec = Recorder::new(&[0x01]);
    let remote = memory_node(&net, None, 2, |_| {}, {
        let rec = Arc::clone(&rec);
        |b| {
            b.add_reactor_arc("r", rec).unwrap();
        }
    });
    sw.start().await.unwrap();
    remote.start().await.unwrap();
    let p = sw.dial_peer_with_address(&addr_of(&remote)).await.unwrap();
    assert_eq!(metrics.peers(), 1);
    p.send(0x01, &msg(&[7; 10])).await.unwrap();
    // Encoded bytes are labelled with the channel's reactor's type, like received ones.
    let encoded = prost::Message::encode_to_vec(&msg(&[9; 5]));
    p.send_bytes(0x01, encoded.into()).await.unwrap();
    remote.peers()[0].send(0x01, &msg(&[8; 20])).await.unwrap();
    eventually("delivered", 5 * SEC, || rec.count() == 2).await;
    tokio::time::sleep(SEC).await;
    metrics.set_num_txs(&p, 5);
    let text = render(&registry);
    let id = remote.node_info().unwrap().id;
    for line in [
        "cometbft_p2p_peers 1".to_owned(),
        format!("cometbft_p2p_peer_send_bytes_total{{peer_id=\"{id}\",chID=\"0x1\"}} 19"),
        format!("cometbft_p2p_peer_receive_bytes_total{{peer_id=\"{id}\",chID=\"0x1\"}} 22"),
        "cometbft_p2p_message_send_bytes_total{message_type=\"common_Msg\"} 19".to_owned(),
        "cometbft_p2p_message_receive_bytes_total{message_type=\"common_Msg\"} 22".to_owned(),
        "# TYPE cometbft_p2p_peer_pending_send_bytes gauge".to_owned(),
        "# TYPE cometbft_p2p_peer_send_queue_size gauge".to_owned(),
        format!("cometbft_p2p_num_txs{{peer_id=\"{id}\"}} 5"),
    ] {
        assert!(text.contains(&line), "missing {line:?} in\n{text}");
    }
    sw.stop_peer_for_error(&p, "some err");
    p.removed().await;
    assert_eq!(metrics.peers(), 0);
    let text = render(&registry);
    assert!(text.contains("cometbft_p2p_peers 0"), "{text}");
    assert!(
        !text.contains(&id.to_string()),
        "per-peer series kept:\n{text}"
    );
    sw.stop().await;

    // Without per-peer series.
    let mut registry = Registry::default();
    let _ = Metrics::new(&mut registry, "cometbft", false);
    let text = render(&registry);
    assert!(!text.contains("peer_receive_bytes") && text.contains("cometbft_p2p_peers"));
}

/// A reactor whose `receive` takes 300 ms (on the paused clock) per message.
struct Slow;

impl Reactor for Slow {
    type Message = Msg;
    fn channels(&self) -> Vec<ChannelDescriptor> {
        vec![ChannelDescriptor::new(0x01, 1)]
    }
    async fn receive(&self, _: Envelope<Msg>) {
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The per-reactor families of v0.40 are live: counted, timed from arrival, in flight while
/// `receive` runs, and one queue of concurrency per connected peer.
#[tokio::test(start_paused = true)]
async fn reactor_metrics_time_the_queue_and_the_receive() {
    let net = MemoryNetwork::new();
    let mut registry = Registry::default();
    let metrics = Metrics::new(&mut registry, "cometbft", false);
    let sw = memory_node(
        &net,
        None,
        1,
        |_| {},
        |b| {
            b.add_reactor("SLOW", Slow).unwrap();
            b.metrics(metrics.clone());
        },
    );
    let remote = memory_node(
        &net,
        None,
        2,
        |_| {},
        |b| {
            b.add_reactor_arc("SLOW", Recorder::new(&[0x01])).unwrap();
        },
    );
    sw.start().await.unwrap();
    remote.start().await.unwrap();
    let p = sw.dial_peer_with_address(&addr_of(&remote)).await.unwrap();
    let series = r#"{message_type="common_Msg",reactor="SLOW"}"#;
    let line = |text: &str, name: &str| -> Option<String> {
        text.lines()
            .find(|l| l.starts_with(name))
            .map(|l| l[name.len()..].trim().to_owned())
    };
    let text = render(&registry);
    assert_eq!(
        line(
            &text,
            r#"cometbft_p2p_message_reactor_queue_concurrency{reactor="SLOW"}"#
        )
        .as_deref(),
        Some("1"),
        "{text}"
    );
    let theirs = remote.peers()[0].clone();
    theirs.send(0x01, &msg(b"one")).await.unwrap();
    theirs.send(0x01, &msg(b"two")).await.unwrap();
    // Both have arrived; the first is inside `receive`.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let text = render(&registry);
    let in_flight = format!("cometbft_p2p_messages_reactor_in_flight{series}");
    assert_eq!(line(&text, &in_flight).as_deref(), Some("1"), "{text}");
    tokio::time::sleep(SEC).await;
    let text = render(&registry);
    assert_eq!(line(&text, &in_flight).as_deref(), Some("0"), "{text}");
    let received = format!("cometbft_p2p_messages_received{series}");
    assert_eq!(line(&text, &received).as_deref(), Some("2"), "{text}");
    assert!(
        text.contains("# TYPE cometbft_p2p_messages_received unknown"),
        "{text}"
    );
    let sum = |name: &str| -> f64 {
        line(&text, &format!("cometbft_p2p_{name}_sum{series}"))
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN)
    };
    // Each `receive` took 300 ms; the second message waited for the first one's 300 ms.
    let receive = sum("message_reactor_receive_duration");
    assert!(
        (receive - 0.6).abs() < 0.01,
        "receive sum {receive}\n{text}"
    );
    let pending = sum("messages_reactor_pending_duration");
    assert!(
        (0.29..0.32).contains(&pending),
        "pending sum {pending}\n{text}"
    );
    // The second one is in the 0.5 s bucket, not in the 0.25 s one.
    let bucket = |le: &str| {
        let name = format!(
            r#"cometbft_p2p_messages_reactor_pending_duration_bucket{{le="{le}",message_type="common_Msg",reactor="SLOW"}}"#
        );
        line(&text, &name)
    };
    assert_eq!(
        (bucket("0.25").as_deref(), bucket("0.5").as_deref()),
        (Some("1"), Some("2")),
        "{text}"
    );
    sw.stop_peer_for_error(&p, "done");
    p.removed().await;
    let text = render(&registry);
    assert_eq!(
        line(
            &text,
            r#"cometbft_p2p_message_reactor_queue_concurrency{reactor="SLOW"}"#
        )
        .as_deref(),
        Some("0"),
        "{text}"
    );
    sw.stop().await;
}

/// A reactor whose `receive` never returns.
struct Stuck;

impl Reactor for Stuck {
    type Message = Msg;
    fn channels(&self) -> Vec<ChannelDescriptor> {
        vec![ChannelDescriptor::new(0x10, 1)]
    }
    async fn receive(&self, _: Envelope<Msg>) {
        std::future::pending::<()>().await;
    }
}

#[tokio::test(start_paused = true)]
async fn stop_is_bounded_even_with_a_stuck_reactor() {
    let net = MemoryNetwork::new();
    let rec = Recorder::new(&[0x11]);
    let sw = memory_node(
        &net,
        None,
        1,
        |c| {
            c.stop_timeout(Duration::from_secs(2));
        },
        {
            let rec = Arc::clone(&rec);
            |b| {
                b.add_reactor("stuck", Stuck).unwrap();
                b.add_reactor_arc("rec", rec).unwrap();
            }
        },
    );
    let remote = memory_node(
        &net,
        None,
        2,
        |_| {},
        |b| {
            b.add_reactor_arc("stuck", Recorder::new(&[0x10])).unwrap();
            b.add_reactor_arc("rec", Recorder::new(&[0x11])).unwrap();
        },
    );
    sw.start().await.unwrap();
    remote.start().await.unwrap();
    let p = remote.dial_peer_with_address(&addr_of(&sw)).await.unwrap();
    p.send(0x10, &msg(b"never handled")).await.unwrap();
    tokio::time::sleep(SEC).await;
    let start = tokio::time::Instant::now();
    sw.stop().await;
    assert!(
        start.elapsed() <= Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(rec.removes().len(), 1);
    assert!(sw.peers().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_switch_starts_once_and_reports_reactor_start_errors() {
    struct Failing;
    impl Reactor for Failing {
        type Message = Msg;
        fn channels(&self) -> Vec<ChannelDescriptor> {
            vec![ChannelDescriptor::new(0x01, 1)]
        }
        async fn receive(&self, _: Envelope<Msg>) {}
        async fn start(&self, _: p2p_switch::SwitchHandle) -> Result<(), ReactorError> {
            Err("no database".into())
        }
    }
    let net = MemoryNetwork::new();
    let sw = memory_node(
        &net,
        None,
        1,
        |_| {},
        |b| {
            b.add_reactor("failing", Failing).unwrap();
        },
    );
    match sw.start().await {
        Err(Error::ReactorStart { name, .. }) => assert_eq!(name, "failing"),
        other => panic!("{other:?}"),
    }
    assert!(!sw.is_running());
    assert!(net.listeners().is_empty(), "listened despite the failure");

    let sw = memory_node(
        &net,
        None,
        2,
        |_| {},
        |b| {
            b.add_reactor_arc("r", Recorder::new(&[0x01])).unwrap();
        },
    );
    sw.start().await.unwrap();
    assert!(matches!(sw.start().await, Err(Error::AlreadyStarted)));
    sw.stop().await;
    sw.stop().await;
}

#[test]
fn the_nodeinfo_must_be_the_keys() {
    let info = NodeInfo::new(key(2).node_id(), "c", "tcp://127.0.0.1:26656");
    let b = SwitchBuilder::new(NodeKey::from_seed([1; 32]), info, SwitchConfig::default());
    assert!(matches!(b.build_tcp(), Err(Error::InvalidConfig { .. })));
}

/// A transport whose `accept` first reports the given errors, then accepts for real.
struct Flaky {
    inner: p2p_testkit::memory::MemoryTransport,
    errors: std::sync::Mutex<Vec<p2p_transport::Error>>,
}

impl p2p_transport::Transport for Flaky {
    async fn listen(
        &self,
        addr: std::net::SocketAddr,
    ) -> Result<std::net::SocketAddr, p2p_transport::Error> {
        self.inner.listen(addr).await
    }
    async fn accept(&self) -> Result<p2p_transport::Connection, p2p_transport::Error> {
        let next = self.errors.lock().unwrap().pop();
        match next {
            Some(e) => Err(e),
            None => self.inner.accept().await,
        }
    }
    async fn dial(
        &self,
        addr: &p2p_types::NetAddress,
    ) -> Result<p2p_transport::Connection, p2p_transport::Error> {
        self.inner.dial(addr).await
    }
    fn cleanup(&self, conn: p2p_transport::Connection) {
        self.inner.cleanup(conn);
    }
    async fn close(&self) {
        self.inner.close().await;
    }
}

#[tokio::test(start_paused = true)]
async fn transport_errors_never_end_accepting() {
    let net = MemoryNetwork::new();
    let book = Arc::new(MockBook::default());
    let k = key(1);
    let ip = net.next_ip();
    let info = NodeInfo::new(k.node_id(), "test-chain", format!("tcp://{ip}:{PORT}"));
    let ours = p2p_types::NetAddress::new(k.node_id(), (ip, 40000).into());
    let addr: std::net::SocketAddr = (ip, 1).into();
    let errors = vec![
        // Popped from the back: a self connection first, then a rejection, a filter timeout,
        // and errors that are no rejection at all (the reference panics on those).
        p2p_transport::Error::InvalidConfig {
            reason: "odd".into(),
        },
        p2p_transport::Error::AlreadyListening { addr },
        p2p_transport::Error::FilterTimeout {
            addr,
            id: None,
            filter: "f".into(),
            timeout: SEC,
        },
        p2p_transport::Error::DuplicateConnection { addr },
        p2p_transport::Error::SelfConnection { addr: ours },
    ];
    let mut b = SwitchBuilder::new(k, info, test_config((ip, PORT).into()));
    b.add_reactor_arc("r", Recorder::new(&[0x01])).unwrap();
    b.address_book(Arc::clone(&book) as _);
    let n2 = net.clone();
    let sw = b
        .build(move |k, i, c| {
            Ok(Flaky {
                inner: n2.transport_at(ip, k, i, c)?,
                errors: std::sync::Mutex::new(errors),
            })
        })
        .unwrap();
    sw.start().await.unwrap();
    let remote = memory_node(
        &net,
        None,
        2,
        |_| {},
        |b| {
            b.add_reactor_arc("r", Recorder::new(&[0x01])).unwrap();
        },
    );
    remote.start().await.unwrap();
    remote.dial_peer_with_address(&addr_of(&sw)).await.unwrap();
    eventually("accepted after the errors", 5 * SEC, || {
        sw.peers().len() == 1
    })
    .await;
    assert!(book.ours.lock().unwrap().contains(&ours));
    sw.stop().await;
    remote.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_graceful_stop_flushes_what_was_queued() {
    let net = MemoryNetwork::new();
    let rec = Recorder::new(&[0x01]);
    let sw = memory_node(
        &net,
        None,
        1,
        |_| {},
        |b| {
            b.add_reactor_arc("r", Recorder::new(&[0x01])).unwrap();
        },
    );
    let remote = memory_node(&net, None, 2, |_| {}, {
        let rec = Arc::clone(&rec);
        |b| {
            b.add_reactor_arc("r", rec).unwrap();
        }
    });
    sw.start().await.unwrap();
    remote.start().await.unwrap();
    let p = sw.dial_peer_with_address(&addr_of(&remote)).await.unwrap();
    let mut queued = 0;
    while p.try_send(0x01, &msg(&[queued as u8; 500])).is_ok() {
        queued += 1;
    }
    assert!(queued >= 50, "{queued}");
    sw.stop_peer_gracefully(&p);
    p.removed().await;
    eventually("everything arrived", 5 * SEC, || rec.count() == queued).await;
    assert_eq!(rec.removes().len(), 1);
    tokio::time::sleep(10 * SEC).await;
    // Not redialed, and the remote saw a clean close.
    assert!(sw.peers().is_empty() && remote.peers().is_empty());
    assert_eq!(p.stop_reason().map(StopReason::is_error), Some(false));
    sw.stop().await;
    remote.stop().await;
}

/// A reactor that never returns from `receive` on a channel with a tiny queue, so its
/// connection soon stops reading.
struct Jammed;

impl Reactor for Jammed {
    type Message = Msg;
    fn channels(&self) -> Vec<ChannelDescriptor> {
        vec![ChannelDescriptor::new(0x01, 1).recv_queue_capacity(64)]
    }
    async fn receive(&self, _: Envelope<Msg>) {
        std::future::pending::<()>().await;
    }
}

#[tokio::test(start_paused = true)]
async fn broadcast_waits_per_peer_up_to_the_send_timeout() {
    let net = MemoryNetwork::new();
    // Small pipes, so a peer that stops reading pushes back quickly.
    net.set_pipe_capacity(4096);
    let hub = memory_node(
        &net,
        None,
        1,
        |c| {
            let mut m = p2p_mconn::MConnConfig::node_default();
            m.send_timeout(Duration::from_secs(2));
            c.transport().mconn(m);
        },
        |b| {
            b.add_reactor_arc(
                "r",
                Recorder::with(vec![ChannelDescriptor::new(0x01, 1).send_queue_capacity(1)]),
            )
            .unwrap();
        },
    );
    hub.start().await.unwrap();
    let good_rec = Recorder::new(&[0x01]);
    let good = memory_node(&net, None, 2, |_| {}, {
        let rec = Arc::clone(&good_rec);
        |b| {
            b.add_reactor_arc("r", rec).unwrap();
        }
    });
    let jammed = memory_node(
        &net,
        None,
        3,
        |_| {},
        |b| {
            b.add_reactor("r", Jammed).unwrap();
        },
    );
    for s in [&good, &jammed] {
        s.start().await.unwrap();
        s.dial_peer_with_address(&addr_of(&hub)).await.unwrap();
    }
    eventually("both connected", 5 * SEC, || hub.peers().len() == 2).await;
    let jammed_id = jammed.node_info().unwrap().id;
    // Fill the jammed peer's pipe and queues.
    let mut timed_out = None;
    for i in 0..200u32 {
        let start = tokio::time::Instant::now();
        let report = hub.broadcast(0x01, &msg(&[0; 1000])).await;
        let jam = report.iter().find(|(id, _)| *id == jammed_id).unwrap();
        if let Err(e) = &jam.1 {
            assert_eq!(
                *e,
                SendError::Timeout {
                    channel: 0x01,
                    timeout: Duration::from_secs(2)
                }
            );
            // The whole broadcast took the send timeout, no more.
            assert!(
                start.elapsed() <= Duration::from_secs(3),
                "{:?}",
                start.elapsed()
            );
            // The good peer's send went through meanwhile.
            let ok = report.iter().find(|(id, _)| *id != jammed_id).unwrap();
            assert!(ok.1.is_ok(), "{report:?}");
            timed_out = Some(i);
            break;
        }
    }
    assert!(timed_out.is_some(), "the jammed peer never pushed back");
    // try_broadcast never waits.
    let start = tokio::time::Instant::now();
    let report = hub.try_broadcast(0x01, &msg(b"quick"));
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert!(
        report
            .iter()
            .any(|(id, r)| *id == jammed_id && *r == Err(SendError::QueueFull { channel: 0x01 }))
    );
    hub.stop().await;
}

/// A reactor that panics on every message.
struct Panicky;

impl Reactor for Panicky {
    type Message = Msg;
    fn channels(&self) -> Vec<ChannelDescriptor> {
        vec![ChannelDescriptor::new(0x02, 1)]
    }
    #[allow(clippy::panic)]
    async fn receive(&self, _: Envelope<Msg>) {
        panic!("reactor bug");
    }
}

#[tokio::test(start_paused = true)]
async fn a_panicking_reactor_stops_only_that_peer() {
    let net = MemoryNetwork::new();
    let rec = Recorder::new(&[0x01]);
    let sw = memory_node(&net, None, 1, |_| {}, {
        let rec = Arc::clone(&rec);
        |b| {
            b.add_reactor_arc("rec", rec).unwrap();
            b.add_reactor("panicky", Panicky).unwrap();
        }
    });
    sw.start().await.unwrap();
    let mut remotes = Vec::new();
    for seed in [2, 3] {
        let r = memory_node(
            &net,
            None,
            seed,
            |_| {},
            |b| {
                b.add_reactor_arc("rec", Recorder::new(&[0x01])).unwrap();
                b.add_reactor_arc("panicky", Recorder::new(&[0x02]))
                    .unwrap();
            },
        );
        r.start().await.unwrap();
        r.dial_peer_with_address(&addr_of(&sw)).await.unwrap();
        remotes.push(r);
    }
    eventually("two peers", 5 * SEC, || sw.peers().len() == 2).await;
    remotes[0].peers()[0]
        .send(0x02, &msg(b"boom"))
        .await
        .unwrap();
    eventually("the sender is dropped", 5 * SEC, || sw.peers().len() == 1).await;
    let removes = rec.removes();
    assert_eq!(removes.len(), 1);
    assert!(removes[0].2.contains("panicked"), "{removes:?}");
    // The other peer is fine.
    remotes[1].peers()[0].send(0x01, &msg(b"ok")).await.unwrap();
    eventually("delivered", 5 * SEC, || rec.count() == 1).await;
    sw.stop().await;
}
