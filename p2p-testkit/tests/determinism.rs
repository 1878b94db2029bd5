//! Determinism at the transport level: 50 nodes dialing each other in a seeded pattern over
//! seeded links, sending seeded messages; the same seed gives the same trace, byte for byte
//! and step for step, another seed another trace.
//!
//! Each run builds its own runtime, whose `select!` generator tokio seeds at random (this is
//! not a `tokio_unstable` build), and its own hash maps with fresh random keys: runs agreeing
//! shows that neither changes what happens.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use p2p_mconn::{ChannelDescriptor, MConnConfig};
use p2p_testkit::sim::{NodeCtx, Sim};
use p2p_testkit::trace::{TraceEvent, TraceHash, first_difference};
use p2p_transport::{Connection, Transport, TransportConfig};
use p2p_types::NetAddress;
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

const NODES: usize = 50;
const DIALS: usize = 3;
const MESSAGES: usize = 12;

fn config(faults: bool) -> TransportConfig {
    let mut c = TransportConfig::default();
    c.channels([
        ChannelDescriptor::new(0x01, 1),
        ChannelDescriptor::new(0x02, 5),
    ]);
    if faults {
        let mut m = MConnConfig::node_default();
        m.ping_interval(Duration::from_secs(2))
            .pong_timeout(Duration::from_secs(1));
        c.mconn(m);
    }
    c
}

struct Run {
    hash: TraceHash,
    events: Vec<TraceEvent>,
    messages: u64,
    virtual_time: Duration,
}

/// Sends seeded messages on `conn` and notes every message received on it.
fn serve(ctx: &NodeCtx, mut conn: Connection, rng: Arc<Mutex<Xoshiro256PlusPlus>>) {
    let peer = conn.node_id();
    let mut receivers = conn.take_receivers();
    for ch in [0x01u8, 0x02] {
        if let Some(mut rx) = receivers.take(ch) {
            let (trace, name) = (ctx.trace().clone(), ctx.name().to_string());
            tokio::spawn(async move {
                while let Some(msg) = rx.recv().await {
                    trace.message(&name, peer, ch, &msg);
                }
            });
        }
    }
    let (trace, name) = (ctx.trace().clone(), ctx.name().to_string());
    tokio::spawn(async move {
        let _receivers = receivers;
        for _ in 0..MESSAGES {
            let (wait, ch, msg) = {
                let mut rng = rng.lock().unwrap();
                let wait = Duration::from_millis(rng.random_range(0..300));
                let ch = if rng.random_bool(0.5) { 0x01 } else { 0x02 };
                let len = rng.random_range(1..3000);
                let msg: Vec<u8> = (0..len).map(|_| rng.random()).collect();
                (wait, ch, msg)
            };
            tokio::time::sleep(wait).await;
            if let Err(e) = conn.mconn().send(ch, msg).await {
                trace.note(&name, format!("send to {peer} failed: {e}"));
                break;
            }
        }
        let outcome = conn.mconn().closed().await;
        trace.note(&name, format!("connection to {peer} ended: {outcome:?}"));
    });
}

#[derive(Clone, Copy)]
struct Options {
    keep_events: bool,
    /// Seeded ephemeral keys (the Sim's way) or the OS's.
    seeded_keys: bool,
    hash_payloads: bool,
    /// Partitions, resets, a stalled reader and a crash with restart during the run, and a
    /// short keepalive so that they end connections.
    faults: bool,
}

const STRICT: Options = Options {
    keep_events: true,
    seeded_keys: true,
    hash_payloads: true,
    faults: false,
};

fn run(seed: u64, keep_events: bool) -> Run {
    run_with(
        seed,
        Options {
            keep_events,
            ..STRICT
        },
    )
}

fn run_with(seed: u64, opts: Options) -> Run {
    let mut sim = Sim::new(seed).unwrap();
    sim.trace().keep_events(opts.keep_events);
    sim.trace().hash_payloads(opts.hash_payloads);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let addrs: Arc<OnceLock<Vec<NetAddress>>> = Arc::new(OnceLock::new());
    for i in 0..NODES {
        let plan: Vec<(Duration, usize)> = (0..DIALS)
            .map(|_| {
                let mut to = rng.random_range(0..NODES - 1);
                if to >= i {
                    to += 1;
                }
                (Duration::from_millis(rng.random_range(0..2000)), to)
            })
            .collect();
        let addrs = Arc::clone(&addrs);
        sim.node(&format!("n{i}"), move |ctx| {
            let (plan, addrs) = (plan.clone(), Arc::clone(&addrs));
            async move {
                let rng = Arc::new(Mutex::new(Xoshiro256PlusPlus::seed_from_u64(
                    ctx.seed_for("messages"),
                )));
                let mut info = ctx.node_info("sim-chain");
                info.channels = vec![0x01, 0x02];
                let t = if opts.seeded_keys {
                    ctx.transport(info, config(opts.faults)).unwrap()
                } else {
                    let key = ctx.key().clone();
                    ctx.net()
                        .transport_at(ctx.ip(), key, info, config(opts.faults))
                        .unwrap()
                };
                let t = Arc::new(t);
                t.listen(ctx.listen_addr()).await.unwrap();
                let (acceptor, actx, arng) = (Arc::clone(&t), ctx.clone(), Arc::clone(&rng));
                tokio::spawn(async move {
                    loop {
                        match acceptor.accept().await {
                            Ok(conn) => serve(&actx, conn, Arc::clone(&arng)),
                            Err(p2p_transport::Error::Closed) => break,
                            Err(e) => actx.trace().note(actx.name(), format!("rejected: {e}")),
                        }
                    }
                });
                let addrs = addrs.get().unwrap();
                for (wait, to) in plan {
                    tokio::time::sleep(wait).await;
                    match t.dial(&addrs[to]).await {
                        Ok(conn) => serve(&ctx, conn, Arc::clone(&rng)),
                        Err(e) => ctx.trace().note(ctx.name(), format!("dial n{to}: {e}")),
                    }
                }
                std::future::pending::<()>().await;
            }
        })
        .unwrap();
    }
    // Seeded links: latency, jitter and some bandwidth caps.
    let ips: Vec<_> = sim.nodes().map(|n| sim.ip(n)).collect();
    for (i, a) in ips.iter().enumerate() {
        for b in ips.iter().skip(i + 1) {
            let mut link = sim.net().link(*a, *b);
            link.latency(Duration::from_millis(rng.random_range(1..60)))
                .jitter(Duration::from_millis(rng.random_range(0..10)));
            if rng.random_bool(0.2) {
                link.bandwidth(Some(rng.random_range(20_000..200_000)));
            }
        }
    }
    addrs
        .set(sim.nodes().map(|n| sim.addr(n)).collect())
        .unwrap();
    if opts.faults {
        let ip = |i: usize| ips[i];
        let n30 = sim.nodes().nth(30).unwrap();
        sim.run_for(Duration::from_secs(3));
        sim.net().partition(
            &[ip(0), ip(1), ip(2)],
            &(3..NODES).map(ip).collect::<Vec<_>>(),
        );
        sim.run_for(Duration::from_secs(2));
        sim.net().reset_connections(ip(10));
        // Nobody drains what node 20 sends.
        for i in (0..NODES).filter(|i| *i != 20) {
            sim.net().stall_reader(ip(20), ip(i));
        }
        sim.run_for(Duration::from_secs(2));
        sim.net().heal();
        sim.crash(n30);
        sim.run_for(Duration::from_secs(3));
        sim.restart(n30);
        for i in (0..NODES).filter(|i| *i != 20) {
            sim.net().resume_reader(ip(20), ip(i));
        }
        sim.run_for(Duration::from_secs(20));
    } else {
        sim.run_for(Duration::from_secs(30));
    }
    Run {
        hash: sim.trace_hash(),
        events: sim.trace().events(),
        messages: sim.trace().payload_bytes(),
        virtual_time: sim.now(),
    }
}

#[test]
fn same_seed_same_trace_other_seed_other_trace() {
    let wall = std::time::Instant::now();
    let a = run(42, true);
    let b = run(42, true);
    if let Some((i, x, y)) = first_difference(&a.events, &b.events) {
        panic!("runs part at event {i}:\n  {x:?}\n  {y:?}");
    }
    assert_eq!(a.hash, b.hash);
    assert!(a.events.len() > 10_000, "{} events", a.events.len());
    // Every dial and every message made it.
    let connects = a
        .events
        .iter()
        .filter(|e| e.to_string().contains(" connect "))
        .count();
    assert_eq!(connects, NODES * DIALS);
    let received = a
        .events
        .iter()
        .filter(|e| e.to_string().contains(" bytes") && e.to_string().contains(": from "))
        .count();
    // Dials that lost to a connection the other way (duplicate checks) carry nothing.
    let failed = a
        .events
        .iter()
        .filter(|e| e.to_string().contains(": dial n"))
        .count();
    assert!(failed < NODES * DIALS / 4, "{failed} dials failed");
    assert_eq!(received, (NODES * DIALS - failed) * 2 * MESSAGES);
    // Without the event list the hash is the same.
    assert_eq!(run(42, false).hash, a.hash);
    let c = run(43, false);
    assert_ne!(c.hash, a.hash);
    println!(
        "{} events, {} payload bytes, {:?} virtual, {:?} wall for 4 runs",
        a.events.len(),
        a.messages,
        a.virtual_time,
        wall.elapsed()
    );
}

#[test]
fn many_runs_agree() {
    // Each run has its own runtime (so its own random `select!` start branches and `watch`
    // waiter lists) and its own randomly keyed hash maps.
    let first = run(7, false).hash;
    for _ in 0..4 {
        assert_eq!(run(7, false).hash, first);
    }
}

#[test]
fn ephemeral_keys_are_what_the_key_source_fixes() {
    let os = Options {
        keep_events: false,
        seeded_keys: false,
        hash_payloads: true,
        faults: false,
    };
    // With the OS's keys the bytes differ from run to run ...
    assert_ne!(run_with(5, os).hash, run_with(5, os).hash);
    // ... but nothing else does: sizes, timing and order are the same.
    let sizes_only = Options {
        hash_payloads: false,
        ..os
    };
    assert_eq!(run_with(5, sizes_only).hash, run_with(5, sizes_only).hash);
}

#[test]
fn node_keys_follow_the_seed() {
    let ids = |seed| {
        let mut sim = Sim::new(seed).unwrap();
        let nodes: Vec<_> = (0..3)
            .map(|i| sim.node(&format!("n{i}"), |_| async {}).unwrap())
            .collect();
        nodes.iter().map(|n| sim.node_id(*n)).collect::<Vec<_>>()
    };
    assert_eq!(ids(1), ids(1));
    assert_ne!(ids(1), ids(2));
    let distinct: std::collections::BTreeSet<_> = ids(1).into_iter().collect();
    assert_eq!(distinct.len(), 3);
}

#[test]
fn faults_are_deterministic_too() {
    let faults = Options {
        faults: true,
        ..STRICT
    };
    let a = run_with(11, faults);
    for _ in 0..2 {
        let b = run_with(11, faults);
        if let Some((i, x, y)) = first_difference(&a.events, &b.events) {
            panic!("runs part at event {i}:\n  {x:?}\n  {y:?}");
        }
        assert_eq!(a.hash, b.hash);
    }
    let text: Vec<String> = a.events.iter().map(ToString::to_string).collect();
    let count = |pat: &str| text.iter().filter(|e| e.contains(pat)).count();
    // The faults acted: resets, connections ended by the keepalive, a restart.
    assert!(count(" reset") > 0, "no resets");
    assert!(count("ended: Err") > 0, "no connection ended");
    // Node 20's pings go undrained: its connections end without pongs.
    assert!(
        text.iter()
            .any(|e| e.contains("n20: connection to") && e.contains("ended: Err(PongTimeout")),
        "the stall did not act"
    );
    assert!(count("restart n30") == 1);
    assert_ne!(run_with(12, faults).hash, a.hash);
}

/// A node's wall clock follows virtual time from the fixed start, in every incarnation.
#[test]
fn the_wall_clock_follows_virtual_time() {
    use p2p_pex::Clock;
    use p2p_testkit::sim::SIM_WALL_START_UNIX_SECS;
    let start = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(SIM_WALL_START_UNIX_SECS);
    let mut sim = Sim::new(3).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = Arc::clone(&seen);
    let node = sim
        .node("clock", move |ctx| {
            let s = Arc::clone(&s);
            async move {
                let clock = ctx.wall_clock();
                s.lock().unwrap().push(clock.now());
                tokio::time::sleep(Duration::from_secs(90)).await;
                s.lock().unwrap().push(clock.now());
                std::future::pending::<()>().await;
            }
        })
        .unwrap();
    sim.run_for(Duration::from_secs(100));
    sim.restart(node);
    sim.run_for(Duration::from_secs(1));
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![
            start,
            start + Duration::from_secs(90),
            start + Duration::from_secs(100)
        ]
    );
}
