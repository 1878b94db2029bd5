//! Determinism over switches: 200 simulated nodes, each a `p2p_switch::Switch` over the
//! in-memory transport with a gossip reactor, dialing a seeded set of peers over seeded links
//! and flooding seeded messages. Two runs with the same seed give the same trace; every node
//! gets every message. Prints simulated time, wall time and peak memory.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use p2p_mconn::ChannelDescriptor;
use p2p_switch::{Envelope, Raw, Reactor, ReactorError, SwitchBuilder, SwitchConfig, SwitchHandle};
use p2p_testkit::sim::{NodeCtx, Sim};
use p2p_testkit::trace::{Trace, TraceEvent, TraceHash, first_difference};
use p2p_types::NetAddress;
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

const GOSSIP: u8 = 0x70;

/// Floods every message it has not seen to all its peers but the sender. A message is
/// `origin (2 bytes) | number (2 bytes) | payload`.
struct Gossip {
    name: String,
    trace: Trace,
    seen: Mutex<BTreeSet<(u16, u16)>>,
    switch: OnceLock<SwitchHandle>,
}

impl Gossip {
    fn new(ctx: &NodeCtx) -> Self {
        Self {
            name: ctx.name().to_string(),
            trace: ctx.trace().clone(),
            seen: Mutex::new(BTreeSet::new()),
            switch: OnceLock::new(),
        }
    }

    /// Records `msg` and floods it unless seen; `from` is excluded.
    fn spread(&self, msg: Bytes, from: Option<p2p_types::NodeId>) {
        let (Some(o), Some(n)) = (msg.get(0..2), msg.get(2..4)) else {
            return;
        };
        let id = (
            u16::from_be_bytes([o[0], o[1]]),
            u16::from_be_bytes([n[0], n[1]]),
        );
        if !self.seen.lock().unwrap().insert(id) {
            return;
        }
        match from {
            Some(from) => self.trace.message(&self.name, from, GOSSIP, &msg),
            None => self.trace.note(&self.name, format!("originates {id:?}")),
        }
        let Some(switch) = self.switch.get() else {
            return;
        };
        let peers: Vec<_> = switch
            .peers()
            .into_iter()
            .filter(|p| Some(p.id()) != from)
            .collect();
        tokio::spawn(async move {
            for p in peers {
                let _ = p.send(GOSSIP, &Raw(msg.clone())).await;
            }
        });
    }

    fn seen(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

impl Reactor for Gossip {
    type Message = Raw;

    fn channels(&self) -> Vec<ChannelDescriptor> {
        vec![ChannelDescriptor::new(GOSSIP, 1).send_queue_capacity(64)]
    }

    async fn start(&self, switch: SwitchHandle) -> Result<(), ReactorError> {
        let _ = self.switch.set(switch);
        Ok(())
    }

    async fn receive(&self, e: Envelope<Raw>) {
        self.spread(e.message.0, Some(e.src.id()));
    }
}

struct Run {
    hash: TraceHash,
    events: Vec<TraceEvent>,
    seen: Vec<usize>,
    virtual_time: Duration,
    wall: Duration,
    trace_events: u64,
}

fn run(seed: u64, nodes: usize, dials: usize, originals: usize, keep: bool) -> Run {
    let mut sim = Sim::new(seed).unwrap();
    sim.trace().keep_events(keep);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let addrs: Arc<OnceLock<Vec<NetAddress>>> = Arc::new(OnceLock::new());
    let reactors: Arc<Mutex<Vec<Option<Arc<Gossip>>>>> = Arc::new(Mutex::new(vec![None; nodes]));
    for i in 0..nodes {
        let targets: Vec<usize> = (0..dials)
            .map(|_| {
                let to = rng.random_range(0..nodes - 1);
                if to >= i { to + 1 } else { to }
            })
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let plan: Vec<(Duration, Bytes)> = (0..originals)
            .map(|k| {
                let at = Duration::from_millis(rng.random_range(3_000..20_000));
                let len = rng.random_range(4..600);
                let mut m: Vec<u8> = (0..len).map(|_| rng.random()).collect();
                m[0..2].copy_from_slice(&(i as u16).to_be_bytes());
                m[2..4].copy_from_slice(&(k as u16).to_be_bytes());
                (at, Bytes::from(m))
            })
            .collect();
        let (addrs, reactors) = (Arc::clone(&addrs), Arc::clone(&reactors));
        sim.node(&format!("n{i}"), move |ctx| {
            let (targets, plan, addrs, reactors) = (
                targets.clone(),
                plan.clone(),
                Arc::clone(&addrs),
                Arc::clone(&reactors),
            );
            async move {
                let gossip = Arc::new(Gossip::new(&ctx));
                reactors.lock().unwrap()[i] = Some(Arc::clone(&gossip));
                let mut config = SwitchConfig::default();
                config.rng_seed(Some(ctx.seed_for("switch")));
                let mut b = SwitchBuilder::new(ctx.key().clone(), ctx.node_info("gossip"), config);
                b.add_reactor_arc("gossip", Arc::clone(&gossip)).unwrap();
                let switch = b
                    .build(|key, info, tconfig| ctx.make_transport(key, info, tconfig))
                    .unwrap();
                switch.start().await.unwrap();
                let all = addrs.get().unwrap();
                switch
                    .handle()
                    .dial_peers_async(targets.iter().map(|t| all[*t]));
                let mut plan = plan;
                plan.sort_by_key(|(at, _)| *at);
                let start = tokio::time::Instant::now();
                for (at, msg) in plan {
                    tokio::time::sleep_until(start + at).await;
                    gossip.spread(msg, None);
                }
                std::future::pending::<()>().await;
                drop(switch);
            }
        })
        .unwrap();
    }
    let ips: Vec<_> = sim.nodes().map(|n| sim.ip(n)).collect();
    for (i, a) in ips.iter().enumerate() {
        for b in ips.iter().skip(i + 1) {
            sim.net()
                .link(*a, *b)
                .latency(Duration::from_millis(rng.random_range(5..80)))
                .jitter(Duration::from_millis(rng.random_range(0..5)));
        }
    }
    addrs
        .set(sim.nodes().map(|n| sim.addr(n)).collect())
        .unwrap();
    sim.run_for(Duration::from_secs(40));
    let seen = reactors
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.as_ref().map_or(0, |g| g.seen()))
        .collect();
    Run {
        hash: sim.trace_hash(),
        events: sim.trace().events(),
        seen,
        virtual_time: sim.now(),
        wall: sim.wall_elapsed(),
        trace_events: sim.trace().len(),
    }
}

/// Peak resident memory of this process so far, in MiB (Linux; `None` elsewhere).
fn peak_rss_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

#[test]
fn small_gossip_networks_agree_event_for_event() {
    let a = run(9, 30, 3, 2, true);
    let b = run(9, 30, 3, 2, true);
    if let Some((i, x, y)) = first_difference(&a.events, &b.events) {
        panic!("runs part at event {i}:\n  {x:?}\n  {y:?}");
    }
    assert_eq!(a.hash, b.hash);
    assert!(a.seen.iter().all(|s| *s == 60), "{:?}", a.seen);
    assert_ne!(run(10, 30, 3, 2, false).hash, a.hash);
}

#[test]
fn two_hundred_switches_twice_the_same_and_another_seed_differs() {
    let (nodes, originals) = (200, 1);
    let a = run(2026, nodes, 4, originals, false);
    let b = run(2026, nodes, 4, originals, false);
    let c = run(2027, nodes, 4, originals, false);
    for (seed, r) in [(2026, &a), (2026, &b), (2027, &c)] {
        println!(
            "{nodes} switches, seed {seed}: trace {}, {} trace events, {:?} simulated in {:?} \
             wall, peak RSS {} MiB",
            r.hash,
            r.trace_events,
            r.virtual_time,
            r.wall,
            peak_rss_mib().map_or("?".into(), |m| m.to_string())
        );
    }
    assert_eq!(a.hash, b.hash);
    assert_eq!(a.trace_events, b.trace_events);
    assert_ne!(a.hash, c.hash, "another seed gave the same trace");
    // The flood reached everyone.
    assert!(
        a.seen.iter().all(|s| *s == nodes * originals),
        "{:?}",
        a.seen
    );
}
