//! CometBFT's end-to-end perturbations (disconnect, kill, pause, restart) on the deterministic
//! simulator ([`Sim::perturb`]), each followed by the checks of what must hold:
//!
//! - **Persistent peers come back.** Every node lists every other as a persistent peer (as
//!   the end-to-end testnets do); after each perturbation every node is connected to every
//!   other again.
//! - **Traffic flows again**: a message the perturbed node sends afterwards reaches every
//!   node, and it receives one from a neighbour.
//! - **A short pause loses nothing**: a pause shorter than the keepalive (ping interval plus
//!   pong timeout) ends no connection, and what was sent during it arrives afterwards.
//! - **`flush_stop` loses nothing**: every message `send` accepted before a peer's
//!   `flush_stop` is delivered before the connection ends.
//!
//! Each node is a `p2p_switch::Switch` over the in-memory transport, with a short
//! MConnection keepalive ([`PING`], [`PONG`]) so that lost connections are noticed within
//! seconds of simulated time.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use p2p_mconn::ChannelDescriptor;
use p2p_switch::{Envelope, Raw, Reactor, ReactorError, SwitchBuilder, SwitchConfig, SwitchHandle};
use p2p_testkit::sim::{Node, NodeCtx, Perturbation, Sim};
use p2p_types::{NetAddress, NodeId};

/// MConnection ping interval (the reference's is 60 s).
const PING: Duration = Duration::from_secs(5);
/// MConnection pong timeout (the reference's is 45 s).
const PONG: Duration = Duration::from_secs(3);
/// The channel the probes travel on.
const PROBE: u8 = 0x71;
/// How long the network gets to be whole again after a perturbation (simulated). Persistent
/// peers are redialed every 5 s plus up to 3 s of jitter for the first 20 attempts.
const RECOVERY: Duration = Duration::from_secs(60);

/// Records every probe it receives: `origin (2 bytes) | number (4 bytes) | payload`.
#[derive(Default)]
struct Probes {
    got: Mutex<BTreeSet<(u16, u32)>>,
    switch: OnceLock<SwitchHandle>,
}

impl Probes {
    fn has(&self, origin: usize, number: u32) -> bool {
        self.got.lock().unwrap().contains(&(origin as u16, number))
    }

    fn count_from(&self, origin: usize) -> usize {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|(o, _)| *o == origin as u16)
            .count()
    }
}

impl Reactor for Probes {
    type Message = Raw;

    fn channels(&self) -> Vec<ChannelDescriptor> {
        vec![ChannelDescriptor::new(PROBE, 1).send_queue_capacity(16)]
    }

    async fn start(&self, switch: SwitchHandle) -> Result<(), ReactorError> {
        let _ = self.switch.set(switch);
        Ok(())
    }

    async fn receive(&self, e: Envelope<Raw>) {
        let m = e.message.0;
        if let (Some(o), Some(n)) = (m.get(0..2), m.get(2..6)) {
            let key = (
                u16::from_be_bytes([o[0], o[1]]),
                u32::from_be_bytes([n[0], n[1], n[2], n[3]]),
            );
            self.got.lock().unwrap().insert(key);
        }
    }
}

fn probe(origin: usize, number: u32, payload: usize) -> Bytes {
    let mut m = Vec::with_capacity(6 + payload);
    m.extend_from_slice(&(origin as u16).to_be_bytes());
    m.extend_from_slice(&number.to_be_bytes());
    m.resize(6 + payload, 0xa5);
    Bytes::from(m)
}

type Slots<T> = Arc<Mutex<Vec<Option<T>>>>;

/// `n` nodes, each listing every other as a persistent peer.
struct Net {
    sim: Sim,
    nodes: Vec<Node>,
    ids: Vec<NodeId>,
    switches: Slots<SwitchHandle>,
    probes: Slots<Arc<Probes>>,
}

impl Net {
    fn new(seed: u64, n: usize) -> Self {
        let mut sim = Sim::new(seed).unwrap();
        let switches: Slots<SwitchHandle> = Arc::new(Mutex::new(vec![None; n]));
        let probes: Slots<Arc<Probes>> = Arc::new(Mutex::new(vec![None; n]));
        let addrs: Arc<OnceLock<Vec<NetAddress>>> = Arc::new(OnceLock::new());
        let mut nodes = Vec::with_capacity(n);
        for i in 0..n {
            let (switches, probes, addrs) = (
                Arc::clone(&switches),
                Arc::clone(&probes),
                Arc::clone(&addrs),
            );
            let node = sim
                .node(&format!("n{i}"), move |ctx| {
                    node(
                        ctx,
                        i,
                        Arc::clone(&addrs),
                        Arc::clone(&switches),
                        Arc::clone(&probes),
                    )
                })
                .unwrap();
            nodes.push(node);
        }
        let all: Vec<NetAddress> = nodes.iter().map(|x| sim.addr(*x)).collect();
        let ids = all.iter().map(|a| a.id()).collect();
        addrs.set(all).unwrap();
        Self {
            sim,
            nodes,
            ids,
            switches,
            probes,
        }
    }

    fn switch(&self, i: usize) -> SwitchHandle {
        self.switches.lock().unwrap()[i].clone().unwrap()
    }

    fn probes(&self, i: usize) -> Arc<Probes> {
        Arc::clone(self.probes.lock().unwrap()[i].as_ref().unwrap())
    }

    /// The other nodes `i` has a running peer for.
    fn peers_of(&self, i: usize) -> BTreeSet<usize> {
        let Some(h) = self.switches.lock().unwrap()[i].clone() else {
            return BTreeSet::new();
        };
        h.peers()
            .iter()
            .filter(|p| p.is_running())
            .filter_map(|p| self.ids.iter().position(|id| *id == p.id()))
            .collect()
    }

    /// Whether every node is connected to every other.
    fn whole(&self) -> bool {
        let n = self.nodes.len();
        (0..n).all(|i| self.sim.is_running(self.nodes[i]) && self.peers_of(i).len() == n - 1)
    }

    /// Runs until the network is whole; returns the simulated time it took.
    fn run_until_whole(&mut self, what: &str) -> Duration {
        let start = self.sim.now();
        while self.sim.now() - start < RECOVERY {
            if self.whole() {
                return self.sim.now() - start;
            }
            self.sim.run_for(Duration::from_millis(250));
        }
        let missing: Vec<_> = (0..self.nodes.len())
            .map(|i| (i, self.peers_of(i)))
            .collect();
        panic!("{what}: not whole after {RECOVERY:?} simulated; peers: {missing:?}");
    }

    /// The connections the other nodes have to node `i` (by their connection IDs, which
    /// their own transports number).
    fn conns_to(&self, i: usize) -> BTreeSet<(usize, p2p_switch::ConnectionId)> {
        (0..self.nodes.len())
            .filter(|&j| j != i)
            .filter_map(|j| {
                let h = self.switches.lock().unwrap()[j].clone()?;
                Some((j, h.peer(self.ids[i])?.conn_id()))
            })
            .collect()
    }

    /// Runs until the network is whole and every connection to node `i` differs from
    /// `before`: each was lost and made again.
    fn run_until_replaced(
        &mut self,
        i: usize,
        before: &BTreeSet<(usize, p2p_switch::ConnectionId)>,
        what: &str,
    ) -> Duration {
        let start = self.sim.now();
        while self.sim.now() - start < RECOVERY {
            if self.whole() && self.conns_to(i).is_disjoint(before) {
                return self.sim.now() - start;
            }
            self.sim.run_for(Duration::from_millis(250));
        }
        panic!(
            "{what}: after {RECOVERY:?} simulated, connections to node {i} {:?} (before {before:?}), whole: {}",
            self.conns_to(i),
            self.whole()
        );
    }

    /// Node `origin` sends probe `number` to each of its peers (waiting for room in the send
    /// queues); the simulation runs until the sends are accepted.
    fn send_probe(&mut self, origin: usize, number: u32) {
        let h = self.switch(origin);
        let msg = probe(origin, number, 100);
        let task = self.sim.spawn(async move {
            for p in h.peers() {
                p.send(PROBE, &Raw(msg.clone())).await.unwrap();
            }
        });
        self.sim.block_on(task).unwrap();
    }

    /// Asserts every node but `origin` got probe `number` within 2 simulated seconds.
    fn assert_everyone_got(&mut self, origin: usize, number: u32, what: &str) {
        self.sim.run_for(Duration::from_secs(2));
        for i in (0..self.nodes.len()).filter(|&i| i != origin) {
            assert!(
                self.probes(i).has(origin, number),
                "{what}: node {i} did not get probe {number} of node {origin}"
            );
        }
    }
}

/// Node `i`: a switch with the probe reactor and every other node as a persistent peer.
async fn node(
    ctx: NodeCtx,
    i: usize,
    addrs: Arc<OnceLock<Vec<NetAddress>>>,
    switches: Slots<SwitchHandle>,
    probes: Slots<Arc<Probes>>,
) {
    let reactor = Arc::new(Probes::default());
    let mut config = SwitchConfig::default();
    let others: Vec<NetAddress> = addrs
        .get()
        .unwrap()
        .iter()
        .enumerate()
        .filter(|(j, _)| *j != i)
        .map(|(_, a)| *a)
        .collect();
    config
        .listen_addr(Some(ctx.listen_addr()))
        .rng_seed(Some(ctx.seed_for("switch")))
        .persistent_peers(others);
    let mut mconn = p2p_mconn::MConnConfig::node_default();
    mconn.ping_interval(PING).pong_timeout(PONG);
    config.transport().mconn(mconn);
    let mut b = SwitchBuilder::new(ctx.key().clone(), ctx.node_info("perturb"), config);
    b.add_reactor_arc("probes", Arc::clone(&reactor)).unwrap();
    let switch = b
        .build(|key, info, tconfig| ctx.make_transport(key, info, tconfig))
        .unwrap();
    switch.start().await.unwrap();
    switches.lock().unwrap()[i] = Some(switch.handle());
    probes.lock().unwrap()[i] = Some(reactor);
    std::future::pending::<()>().await;
    drop(switch);
}

const N: usize = 6;

#[test]
fn the_network_recovers_from_every_perturbation() {
    let mut net = Net::new(11, N);
    let t = net.run_until_whole("start");
    println!("whole after {t:?}");
    let mut number = 0;
    let long_pause = PING + PONG + Duration::from_secs(10);
    let plan = [
        (1, Perturbation::Disconnect),
        (
            2,
            Perturbation::Kill {
                down: Duration::from_secs(20),
            },
        ),
        (3, Perturbation::Pause { length: long_pause }),
        (4, Perturbation::Restart),
        (
            0,
            Perturbation::Kill {
                down: Duration::from_secs(90),
            },
        ),
    ];
    for (i, p) in plan {
        let what = format!("{p:?} of node {i}");
        let before = net.conns_to(i);
        assert_eq!(before.len(), N - 1);
        net.sim.perturb(net.nodes[i], p);
        let t = net.run_until_replaced(i, &before, &what);
        println!("{what}: whole again after {t:?}");
        number += 1;
        net.send_probe(i, number);
        net.assert_everyone_got(i, number, &what);
        let neighbour = (i + 1) % N;
        net.send_probe(neighbour, number);
        net.assert_everyone_got(neighbour, number, &what);
    }
}

#[test]
fn a_pause_shorter_than_the_keepalive_ends_nothing_and_loses_nothing() {
    let mut net = Net::new(12, N);
    net.run_until_whole("start");
    let before = net.conns_to(0);
    // Node 0 pauses for less than ping + pong; node 1 sends to it meanwhile.
    let paused = net.nodes[0];
    let others: Vec<_> = net.nodes[1..].iter().map(|x| net.sim.ip(*x)).collect();
    let ip = net.sim.ip(paused);
    net.sim.net().partition(&[ip], &others);
    net.send_probe(1, 1);
    net.sim.run_for(PING - Duration::from_secs(1));
    assert!(
        !net.probes(0).has(1, 1),
        "the probe arrived during the pause"
    );
    net.sim.net().unpartition(&[ip], &others);
    net.assert_everyone_got(1, 1, "after the pause");
    assert_eq!(before, net.conns_to(0), "a connection was replaced");

    // The same through `Sim::perturb`.
    net.sim.perturb(
        paused,
        Perturbation::Pause {
            length: PING - Duration::from_secs(1),
        },
    );
    net.send_probe(0, 2);
    net.assert_everyone_got(0, 2, "after the second pause");
    assert_eq!(before, net.conns_to(0), "a connection was replaced");
}

#[test]
fn flush_stop_delivers_everything_send_accepted_and_the_peer_comes_back() {
    let mut net = Net::new(13, 2);
    net.run_until_whole("start");
    const COUNT: u32 = 300;
    let h = net.switch(0);
    let to = net.ids[1];
    let before = h.peer(to).unwrap().conn_id();
    let task = net.sim.spawn(async move {
        let peer = h.peer(to).unwrap();
        let mut accepted = 0;
        for k in 0..COUNT {
            if peer.send(PROBE, &Raw(probe(0, k, 4096))).await.is_ok() {
                accepted += 1;
            }
        }
        peer.flush_stop().await;
        accepted
    });
    let accepted = net.sim.block_on(task).unwrap();
    assert_eq!(accepted, COUNT);
    net.sim.run_for(Duration::from_secs(1));
    let got = net.probes(1).count_from(0);
    assert_eq!(got, COUNT as usize, "messages lost on flush_stop");
    // Persistent peers: they reconnect, over a new connection.
    let t = net.run_until_whole("after flush_stop");
    let after = net.switch(0).peer(to).unwrap().conn_id();
    assert_ne!(before, after, "the connection survived flush_stop");
    println!("reconnected after {t:?}");
}
