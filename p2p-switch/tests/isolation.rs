//! A slow reactor holds up only its own channels, up to their bounded receive queues; other
//! reactors and the keepalive go on (cometbft#2685, #3199). What happens once the queue is
//! full is what the `Reactor` docs say: the connection stops reading, and a queue that stays
//! full for the pong timeout ends the connection (blamed on us, not the peer).

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use p2p_mconn::ChannelDescriptor;
use p2p_switch::{Envelope, Reactor};
use p2p_testkit::memory::MemoryNetwork;
use tokio::sync::Semaphore;

const SEC: Duration = Duration::from_secs(1);
const SLOW: u8 = 0x10;
const FAST: u8 = 0x11;

/// A reactor whose `receive` waits for a permit per message.
struct Gated {
    gate: Semaphore,
    queue_bytes: usize,
    got: Mutex<Vec<Vec<u8>>>,
}

impl Reactor for Gated {
    type Message = Msg;
    fn channels(&self) -> Vec<ChannelDescriptor> {
        vec![ChannelDescriptor::new(SLOW, 1).recv_queue_capacity(self.queue_bytes)]
    }
    async fn receive(&self, e: Envelope<Msg>) {
        if let Ok(p) = self.gate.acquire().await {
            p.forget();
        }
        self.got.lock().unwrap().push(e.message.data);
    }
}

struct Setup {
    sw: p2p_switch::Switch<p2p_testkit::memory::MemoryTransport>,
    remote: p2p_switch::Switch<p2p_testkit::memory::MemoryTransport>,
    slow: Arc<Gated>,
    fast: Arc<Recorder>,
}

async fn setup(queue_bytes: usize) -> Setup {
    let net = MemoryNetwork::new();
    let slow = Arc::new(Gated {
        gate: Semaphore::new(0),
        queue_bytes,
        got: Mutex::new(Vec::new()),
    });
    let fast = Recorder::new(&[FAST]);
    let sw = memory_node(&net, None, 1, |_| {}, {
        let (slow, fast) = (Arc::clone(&slow), Arc::clone(&fast));
        |b| {
            b.add_reactor_arc("slow", slow).unwrap();
            b.add_reactor_arc("fast", fast).unwrap();
        }
    });
    let remote = memory_node(
        &net,
        None,
        2,
        |_| {},
        |b| {
            b.add_reactor_arc("slow", Recorder::new(&[SLOW])).unwrap();
            b.add_reactor_arc("fast", Recorder::new(&[FAST])).unwrap();
        },
    );
    sw.start().await.unwrap();
    remote.start().await.unwrap();
    remote.dial_peer_with_address(&addr_of(&sw)).await.unwrap();
    eventually("connected", 5 * SEC, || sw.peers().len() == 1).await;
    Setup {
        sw,
        remote,
        slow,
        fast,
    }
}

#[tokio::test(start_paused = true)]
async fn a_slow_reactor_holds_up_neither_other_reactors_nor_the_keepalive() {
    let s = setup(64 * 1024).await;
    let out = s.remote.peers().remove(0);
    for i in 0..3u8 {
        out.send(SLOW, &msg(&[i; 100])).await.unwrap();
    }
    for i in 0..5u8 {
        out.send(FAST, &msg(&[i; 10])).await.unwrap();
    }
    eventually("the fast reactor got everything", 5 * SEC, || {
        s.fast.count() == 5
    })
    .await;
    assert!(s.slow.got.lock().unwrap().is_empty());

    // Five minutes of pings (every 60 s, pong timeout 45 s) while the slow one is stuck.
    tokio::time::sleep(Duration::from_secs(300)).await;
    assert_eq!(s.sw.peers().len(), 1, "the connection did not survive");
    assert!(s.fast.removes().is_empty());
    let status = s.sw.peers()[0].status();
    assert!(status.recv.bytes > 0);
    assert!(
        status
            .channels
            .iter()
            .any(|c| c.id == SLOW && c.recv_queue_bytes > 0),
        "the slow channel's messages should wait in its queue"
    );

    // Let it go: everything arrives, in order.
    s.slow.gate.add_permits(3);
    eventually("the slow reactor caught up", 5 * SEC, || {
        s.slow.got.lock().unwrap().len() == 3
    })
    .await;
    let got = s.slow.got.lock().unwrap().clone();
    assert_eq!(got, vec![vec![0; 100], vec![1; 100], vec![2; 100]]);
    out.send(FAST, &msg(b"after")).await.unwrap();
    eventually("still flowing", 5 * SEC, || s.fast.count() == 6).await;
    s.sw.stop().await;
    s.remote.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_full_queue_pauses_the_connection_and_a_stuck_reactor_loses_it() {
    // A 1 KiB queue: a handful of 200-byte messages fill it.
    let s = setup(1024).await;
    let out = s.remote.peers().remove(0);
    for i in 0..20u8 {
        out.send(SLOW, &msg(&[i; 200])).await.unwrap();
    }
    // Let them go out first (the sender's scheduler would otherwise put the fast one ahead).
    tokio::time::sleep(SEC).await;
    out.send(FAST, &msg(b"behind the slow ones")).await.unwrap();
    // The read side waits for room in the slow queue, so the fast message waits too.
    tokio::time::sleep(10 * SEC).await;
    assert_eq!(s.fast.count(), 0);
    assert_eq!(s.sw.peers().len(), 1);

    // A queue full for longer than the pong timeout ends the connection, blamed on us.
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert!(s.sw.peers().is_empty(), "still connected");
    let removes = s.fast.removes();
    assert_eq!(removes.len(), 1);
    assert!(
        removes[0].2.contains("channel 0x10") && removes[0].2.contains("too slow"),
        "{removes:?}"
    );
    s.sw.stop().await;
    s.remote.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_full_queue_drains_without_loss_once_the_reactor_catches_up() {
    let s = setup(1024).await;
    let out = s.remote.peers().remove(0);
    for i in 0..20u8 {
        out.send(SLOW, &msg(&[i; 200])).await.unwrap();
    }
    // Let them go out first (the sender's scheduler would otherwise put the fast one ahead).
    tokio::time::sleep(SEC).await;
    out.send(FAST, &msg(b"behind")).await.unwrap();
    tokio::time::sleep(10 * SEC).await;
    assert_eq!(s.fast.count(), 0);
    // Within the pong timeout the reactor catches up: nothing was dropped, order kept.
    s.slow.gate.add_permits(20);
    eventually("all delivered", 10 * SEC, || {
        s.slow.got.lock().unwrap().len() == 20 && s.fast.count() == 1
    })
    .await;
    let got = s.slow.got.lock().unwrap().clone();
    assert!(got.iter().enumerate().all(|(i, m)| m[0] == i as u8));
    tokio::time::sleep(Duration::from_secs(300)).await;
    assert_eq!(s.sw.peers().len(), 1);
    s.sw.stop().await;
    s.remote.stop().await;
}
