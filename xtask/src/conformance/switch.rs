//! `p2p-switch` against the reference `p2p.Switch` (shim mode `switch`): our switch with a
//! reactor on two shared channels, both dial directions, every message echoed and checked in
//! order per channel, the reactors' life cycle (`add_peer`, `remove_peer` and its reason) on our
//! side, a persistent peer redialed after the reference node restarts, the inbound limit against
//! reference dialers (an unconditional one still admitted), and our metric families against
//! the ones the reference registers (shim mode `metrics`); and the reverse redial: the
//! reference holding our node as a persistent peer redials it after our switch restarts.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, anyhow, ensure};
use bytes::Bytes;
use p2p_mconn::{ChannelDescriptor, MConnConfig};
use p2p_switch::metrics::{Metrics, render};
use p2p_switch::{
    Blame, Envelope, Peer, Raw, Reactor, StopReason, Switch, SwitchBuilder, SwitchConfig,
};
use p2p_transport::TcpTransport;
use p2p_types::{NetAddress, NodeInfo, NodeKey};
use tokio::sync::Notify;

use super::{Case, CaseResult};
use crate::data;
use crate::shim::{Shim, parse_ready};

const EVENT_TIMEOUT: Duration = Duration::from_secs(30);
const RUN_TIMEOUT: Duration = Duration::from_secs(120);
const COUNT: usize = 200;
const MAX_SIZE: usize = 64 * 1024;
const CHANNELS: [(u8, u32); 2] = [(0x01, 1), (0x02, 5)];
const SHIM_CHANNELS: &str = "0x01:1,0x02:5";

pub(super) fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "switch/rust-dials-go",
            run: |bin| Box::pin(rust_dials_go(bin)),
        },
        Case {
            name: "switch/go-dials-rust",
            run: |bin| Box::pin(go_dials_rust(bin)),
        },
        Case {
            name: "switch/persistent-peer-redialed",
            run: |bin| Box::pin(persistent_peer_redialed(bin)),
        },
        Case {
            name: "switch/go-redials-persistent-rust",
            run: |bin| Box::pin(go_redials_persistent_rust(bin)),
        },
        Case {
            name: "switch/inbound-limit-spares-unconditional",
            run: |bin| Box::pin(inbound_limit(bin)),
        },
        Case {
            name: "switch/metric-families-match-reference",
            run: |bin| Box::pin(metric_families(bin)),
        },
    ]
}

/// Our reactor: echoes (or records) raw messages and records the peer life cycle.
#[derive(Default)]
struct Probe {
    echo: bool,
    got: Mutex<Vec<(u8, Bytes)>>,
    added: Mutex<Vec<Peer>>,
    removed: Mutex<Vec<StopReason>>,
    changed: Notify,
}

impl Reactor for Probe {
    type Message = Raw;

    fn channels(&self) -> Vec<ChannelDescriptor> {
        CHANNELS
            .iter()
            .map(|(id, prio)| ChannelDescriptor::new(*id, *prio).send_queue_capacity(100))
            .collect()
    }

    async fn receive(&self, e: Envelope<Raw>) {
        if self.echo {
            let _ = e.src.send(e.channel, &e.message).await;
        }
        if let Ok(mut got) = self.got.lock() {
            got.push((e.channel, e.message.0));
        }
        self.changed.notify_waiters();
    }

    async fn add_peer(&self, peer: &Peer) {
        if let Ok(mut a) = self.added.lock() {
            a.push(peer.clone());
        }
        self.changed.notify_waiters();
    }

    async fn remove_peer(&self, _: &Peer, reason: &StopReason) {
        if let Ok(mut r) = self.removed.lock() {
            r.push(reason.clone());
        }
        self.changed.notify_waiters();
    }
}

impl Probe {
    /// Waits (polling on every change) until `cond` holds.
    async fn until(&self, what: &str, cond: impl Fn(&Self) -> bool) -> anyhow::Result<()> {
        let wait = async {
            loop {
                let changed = self.changed.notified();
                if cond(self) {
                    return;
                }
                let _ = tokio::time::timeout(Duration::from_millis(200), changed).await;
            }
        };
        tokio::time::timeout(RUN_TIMEOUT, wait)
            .await
            .map_err(|_| anyhow!("timed out waiting for {what}"))
    }

    fn removed(&self) -> Vec<StopReason> {
        self.removed.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

fn our_key() -> NodeKey {
    NodeKey::from_seed(*b"p2p-rs conformance switch 000001")
}

fn switch(
    probe: &Arc<Probe>,
    listen: Option<SocketAddr>,
    persistent: Option<NetAddress>,
) -> anyhow::Result<Switch<TcpTransport>> {
    switch_with(probe, listen, persistent, |_| {}, None)
}

fn switch_with(
    probe: &Arc<Probe>,
    listen: Option<SocketAddr>,
    persistent: Option<NetAddress>,
    tune: impl FnOnce(&mut SwitchConfig),
    metrics: Option<Metrics>,
) -> anyhow::Result<Switch<TcpTransport>> {
    let key = our_key();
    let announce = listen.map_or("tcp://127.0.0.1:26656".to_owned(), |l| format!("tcp://{l}"));
    let mut info = NodeInfo::new(key.node_id(), "test-chain", announce);
    info.moniker = "p2p-rs switch conformance".into();
    let mut config = SwitchConfig::default();
    config.listen_addr(listen).allow_duplicate_ip(true);
    if let Some(p) = persistent {
        config.persistent_peers([p]);
    }
    let mut mconn = MConnConfig::default();
    mconn.send_rate(0).recv_rate(0);
    config.transport().mconn(mconn);
    tune(&mut config);
    let mut b = SwitchBuilder::new(key, info, config);
    b.add_reactor_arc("probe", Arc::clone(probe))?;
    if let Some(m) = metrics {
        b.metrics(m);
    }
    Ok(b.build_tcp()?)
}

fn shim_args(extra: &[&str]) -> Vec<String> {
    [
        "--channels",
        SHIM_CHANNELS,
        "--log-level",
        "error",
        "--timeout",
        "100s",
    ]
    .iter()
    .chain(extra)
    .map(|s| s.to_string())
    .collect()
}

fn free_port() -> anyhow::Result<SocketAddr> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?)
}

/// The plan: `COUNT` messages over both channels in turn.
fn plan(seed: u64) -> Vec<(u8, Vec<u8>)> {
    data::messages(seed, COUNT, MAX_SIZE)
        .into_iter()
        .enumerate()
        .map(|(i, m)| (CHANNELS[i % CHANNELS.len()].0, m))
        .collect()
}

async fn rust_dials_go(bin: PathBuf) -> CaseResult {
    let probe = Arc::new(Probe::default());
    let sw = switch(&probe, None, None)?;
    sw.start().await?;
    let mut shim = Shim::spawn(
        &bin,
        "switch",
        &shim_args(&[
            "--listen",
            "127.0.0.1:0",
            "--role",
            "echo",
            "--expect-id",
            &our_key().node_id().to_string(),
        ]),
    )?;
    let ready = parse_ready(&shim.expect("ready", EVENT_TIMEOUT).await?)?;
    let go = NetAddress::new(ready.node_id, ready.addr.parse()?);
    let peer = sw.dial_peer_with_address(&go).await?;
    let ev = shim.expect("peer", EVENT_TIMEOUT).await?;
    ensure!(
        ev["node_info"]["channels"] == serde_json::json!([1, 2]),
        "Go got our channels as {}",
        ev["node_info"]["channels"]
    );
    ensure!(peer.node_info().channels == vec![1, 2] && peer.is_outbound());
    ensure!(
        probe.added.lock().map(|a| a.len()).unwrap_or(0) == 1,
        "add_peer not called once"
    );

    let plan = plan(21);
    let bytes: usize = plan.iter().map(|(_, m)| m.len()).sum();
    let sender = {
        let (peer, plan) = (peer.clone(), plan.clone());
        tokio::spawn(async move {
            for (ch, m) in plan {
                peer.send(ch, &Raw(Bytes::from(m))).await?;
            }
            anyhow::Ok(())
        })
    };
    probe
        .until("every echo", |p| {
            p.got.lock().map(|g| g.len()).unwrap_or(0) == COUNT
        })
        .await?;
    sender.await??;
    // Per channel, in order, byte for byte.
    let got = probe.got.lock().map(|g| g.clone()).unwrap_or_default();
    for (ch, _) in CHANNELS {
        let sent: Vec<&[u8]> = plan
            .iter()
            .filter(|(c, _)| *c == ch)
            .map(|(_, m)| &m[..])
            .collect();
        let echoed: Vec<&[u8]> = got
            .iter()
            .filter(|(c, _)| *c == ch)
            .map(|(_, m)| &m[..])
            .collect();
        ensure!(
            sent == echoed,
            "echoes on channel {ch:#04x} differ from what we sent"
        );
    }
    sw.stop_peer_gracefully(&peer);
    peer.removed().await;
    let done = shim.expect_done(EVENT_TIMEOUT).await?;
    ensure!(
        done["messages"] == COUNT,
        "Go echoed {} messages",
        done["messages"]
    );
    let removed = probe.removed();
    ensure!(
        removed.len() == 1 && matches!(removed[0], StopReason::Graceful),
        "remove_peer calls: {removed:?}"
    );
    sw.stop().await;
    Ok(format!(
        "{COUNT} messages, {bytes} bytes echoed by the reference switch on 2 channels, in order; remove_peer once (graceful)"
    ))
}

async fn go_dials_rust(bin: PathBuf) -> CaseResult {
    let probe = Arc::new(Probe {
        echo: true,
        ..Probe::default()
    });
    let listen = free_port()?;
    let sw = switch(&probe, Some(listen), None)?;
    sw.start().await?;
    let ours = NetAddress::new(our_key().node_id(), listen);
    let mut shim = Shim::spawn(
        &bin,
        "switch",
        &shim_args(&[
            "--dial",
            &ours.to_string(),
            "--role",
            "drive",
            "--count",
            &COUNT.to_string(),
            "--max-size",
            &MAX_SIZE.to_string(),
            "--seed",
            "9",
            "--expect-id",
            &ours.id().to_string(),
        ]),
    )?;
    let ready = parse_ready(&shim.expect("ready", EVENT_TIMEOUT).await?)?;
    shim.expect("peer", EVENT_TIMEOUT).await?;
    let done = shim.expect_done(RUN_TIMEOUT).await?;
    ensure!(
        done["messages"] == COUNT,
        "Go verified {} echoes",
        done["messages"]
    );
    // Go flush-stopped and removed us gracefully: here the connection was closed by the peer.
    probe
        .until("remove_peer", |p| !p.removed().is_empty())
        .await?;
    let removed = probe.removed();
    ensure!(removed.len() == 1, "remove_peer calls: {removed:?}");
    ensure!(
        removed[0].blame() == Blame::Gone,
        "the reference's graceful stop reached us as {:?}",
        removed[0]
    );
    let added = probe.added.lock().map(|a| a.clone()).unwrap_or_default();
    ensure!(added.len() == 1 && !added[0].is_outbound() && added[0].id() == ready.node_id);
    // The peer leaves the set once every `remove_peer` has returned (as in the reference:
    // the set is updated last), a moment after the probe saw the call.
    tokio::time::timeout(EVENT_TIMEOUT, added[0].removed())
        .await
        .context("the peer's removal did not finish")?;
    ensure!(sw.peers().is_empty(), "the peer is still in the peer set");
    sw.stop().await;
    Ok(format!(
        "the reference switch verified {} echoes ({} bytes) from our switch; remove_peer once ({})",
        done["messages"], done["bytes"], removed[0]
    ))
}

async fn persistent_peer_redialed(bin: PathBuf) -> CaseResult {
    let go_listen = free_port()?;
    let args = shim_args(&[
        "--listen",
        &go_listen.to_string(),
        "--role",
        "echo",
        "--seed",
        "7",
    ]);
    let mut first = Shim::spawn(&bin, "switch", &args)?;
    let ready = parse_ready(&first.expect("ready", EVENT_TIMEOUT).await?)?;
    let go = NetAddress::new(ready.node_id, go_listen);
    let probe = Arc::new(Probe::default());
    let sw = switch(&probe, None, Some(go))?;
    // Start dials the persistent peer (after up to 3 s).
    sw.start().await?;
    first.expect("peer", EVENT_TIMEOUT).await?;
    probe
        .until("the first connection", |p| {
            p.added.lock().map(|a| a.len()).unwrap_or(0) == 1
        })
        .await?;

    // The reference node dies.
    drop(first);
    probe
        .until("the removal", |p| !p.removed().is_empty())
        .await?;
    let reason = probe.removed()[0].clone();
    ensure!(
        reason.is_error(),
        "removed for {reason:?}, expected an error"
    );

    // It comes back at the same address: our redials (every 5 to 8 s) find it.
    let started = tokio::time::Instant::now();
    let mut second = Shim::spawn(&bin, "switch", &args)?;
    second.expect("ready", EVENT_TIMEOUT).await?;
    second.expect("peer", EVENT_TIMEOUT).await?;
    probe
        .until("the second connection", |p| {
            p.added.lock().map(|a| a.len()).unwrap_or(0) == 2
        })
        .await?;
    let took = started.elapsed();
    let peers = sw.peers();
    ensure!(peers.len() == 1 && peers[0].is_persistent() && peers[0].is_outbound());
    sw.stop().await;
    drop(second);
    Ok(format!(
        "removed for \"{reason}\", redialed the restarted reference {:.1} s after it came back",
        took.as_secs_f64()
    ))
}

/// The node ID the shim derives from `--seed` (its `nodeKey`: an ed25519 key whose secret is
/// SHA-256 of a fixed tag and the seed, big-endian).
fn shim_node_id(seed: u64) -> p2p_types::NodeId {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    h.update(b"cometbft-shim/node-key");
    h.update(seed.to_be_bytes());
    NodeKey::from_seed(h.finalize().into()).node_id()
}

/// `max_num_inbound_peers = 1` on our side: the first reference dialer is admitted, the second
/// is refused after its upgrade (as the reference's `acceptRoutine` refuses, so the dialer's
/// connection just ends), and a third whose ID is unconditional is admitted over the limit.
async fn inbound_limit(bin: PathBuf) -> CaseResult {
    let (first_seed, refused_seed, unconditional_seed) = (31, 32, 33);
    let unconditional = shim_node_id(unconditional_seed);
    let probe = Arc::new(Probe::default());
    let listen = free_port()?;
    let sw = switch_with(
        &probe,
        Some(listen),
        None,
        |c| {
            c.max_num_inbound_peers(1)
                .unconditional_peer_ids([unconditional]);
        },
        None,
    )?;
    sw.start().await?;
    let ours = NetAddress::new(our_key().node_id(), listen).to_string();
    let dialer = |seed: u64| {
        shim_args(&[
            "--dial",
            &ours,
            "--role",
            "echo",
            "--seed",
            &seed.to_string(),
        ])
    };
    let added = |p: &Probe| p.added.lock().map(|a| a.len()).unwrap_or(0);

    let mut first = Shim::spawn(&bin, "switch", &dialer(first_seed))?;
    first.expect("peer", EVENT_TIMEOUT).await?;
    probe
        .until("the first inbound peer", |p| added(p) == 1)
        .await?;

    // Over the limit: the handshake completes, then we close. The reference dialer sees its
    // new peer go (or its dial fail) and exits.
    let refused = Shim::spawn(&bin, "switch", &dialer(refused_seed))?;
    let (_, events) = refused.finish(EVENT_TIMEOUT).await?;
    let seen: Vec<String> = events
        .iter()
        .filter_map(|e| e["event"].as_str().map(str::to_owned))
        .collect();
    ensure!(
        added(&probe) == 1,
        "the dialer over the inbound limit was added as a peer"
    );
    ensure!(
        !sw.peers()
            .iter()
            .any(|p| p.id() == shim_node_id(refused_seed)),
        "the refused dialer is in our peer set"
    );

    // Unconditional: admitted although the limit is reached.
    let mut third = Shim::spawn(&bin, "switch", &dialer(unconditional_seed))?;
    third.expect("peer", EVENT_TIMEOUT).await?;
    probe
        .until("the unconditional peer", |p| added(p) == 2)
        .await?;
    let ids: Vec<_> = sw.peers().iter().map(|p| p.id()).collect();
    ensure!(
        ids.len() == 2 && ids.contains(&shim_node_id(first_seed)) && ids.contains(&unconditional),
        "peer set {ids:?}"
    );
    ensure!(
        sw.num_peers().1 == 1,
        "the unconditional peer counted against the inbound limit: {:?}",
        sw.num_peers()
    );
    sw.stop().await;
    drop((first, third));
    Ok(format!(
        "limit 1: first reference dialer admitted, second refused (it saw {seen:?}), unconditional one admitted over the limit"
    ))
}

/// A family of metrics: its full name (counters with their `_total`), type and label names.
type Families = std::collections::BTreeMap<String, (String, std::collections::BTreeSet<String>)>;

/// Reads the families, and the label names their samples carry, from OpenMetrics text.
fn parse_families(text: &str) -> Families {
    let mut types = std::collections::BTreeMap::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if let (Some("#"), Some("TYPE"), Some(name), Some(kind)) =
            (words.next(), words.next(), words.next(), words.next())
        {
            types.insert(name.to_owned(), kind.to_owned());
        }
    }
    let mut families = Families::new();
    for (name, kind) in &types {
        let full = if kind == "counter" && !name.ends_with("_total") {
            format!("{name}_total")
        } else {
            name.clone()
        };
        families.insert(full, (kind.clone(), Default::default()));
    }
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((name, rest)) = line.split_once('{') else {
            continue;
        };
        let Some((labels, _)) = rest.split_once('}') else {
            continue;
        };
        // A histogram's samples are `_bucket` (with `le`), `_sum` and `_count`.
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .filter_map(|suffix| name.strip_suffix(suffix))
            .find(|base| families.get(*base).is_some_and(|(k, _)| k == "histogram"))
            .unwrap_or(name);
        if let Some((kind, names)) = families.get_mut(family) {
            for pair in labels.split(',') {
                if let Some((k, _)) = pair.split_once('=') {
                    let k = k.trim();
                    if !(kind == "histogram" && k == "le") {
                        names.insert(k.to_owned());
                    }
                }
            }
        }
    }
    families
}

/// Our switch's metric families, as a CometBFT node labels them (`chain_id`), after a real
/// exchange with a reference node (so every series exists), against the families the
/// reference's `p2p.PrometheusMetrics` registers: every reference family is ours with the same
/// name, type and label names. Families a line has removed (v1.0 dropped the per-peer byte
/// counters) are reported, not failed: extra series break no dashboard.
async fn metric_families(bin: PathBuf) -> CaseResult {
    let shim = Shim::spawn(
        &bin,
        "metrics",
        &["--namespace".to_owned(), "cometbft".to_owned()],
    )?;
    let (ok, events) = shim.finish(EVENT_TIMEOUT).await?;
    ensure!(ok, "the shim's metrics mode failed: {events:?}");
    let mut go = Families::new();
    for e in events.iter().filter(|e| e["event"] == "family") {
        let name = e["name"].as_str().unwrap_or_default().to_owned();
        let kind = e["type"].as_str().unwrap_or_default().to_owned();
        let labels = e["labels"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|l| l.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        go.insert(name, (kind, labels));
    }
    ensure!(!go.is_empty(), "the reference listed no metric family");

    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = Metrics::with_labels(
        &mut registry,
        "cometbft",
        true,
        [("chain_id", "test-chain")],
    );
    let probe = Arc::new(Probe::default());
    let sw = switch_with(&probe, None, None, |_| {}, Some(metrics.clone()))?;
    sw.start().await?;
    let mut peer_shim = Shim::spawn(
        &bin,
        "switch",
        &shim_args(&["--listen", "127.0.0.1:0", "--role", "echo"]),
    )?;
    let ready = parse_ready(&peer_shim.expect("ready", EVENT_TIMEOUT).await?)?;
    let peer = sw
        .dial_peer_with_address(&NetAddress::new(ready.node_id, ready.addr.parse()?))
        .await?;
    for (ch, _) in CHANNELS {
        peer.send(ch, &Raw(Bytes::from_static(b"metrics"))).await?;
    }
    probe
        .until("the echoes", |p| {
            p.got.lock().map(|g| g.len()).unwrap_or(0) == CHANNELS.len()
        })
        .await?;
    // The mempool reactor's per-peer gauge, as a mempool would set it.
    metrics.set_num_txs(&peer, 0);
    let ours = parse_families(&render(&registry));
    sw.stop().await;
    drop(peer_shim);

    let mut problems = Vec::new();
    for (name, (kind, labels)) in &go {
        match ours.get(name) {
            None => problems.push(format!("missing {name} ({kind})")),
            // OpenMetrics has no counter without `_total`: such a family is written untyped
            // under the reference's exact name (what queries see).
            Some((k, l))
                if kind == "counter"
                    && k == "unknown"
                    && !name.ends_with("_total")
                    && l == labels => {}
            Some((k, l)) if k != kind || l != labels => problems.push(format!(
                "{name}: ours {k} {l:?}, the reference's {kind} {labels:?}"
            )),
            Some(_) => {}
        }
    }
    ensure!(problems.is_empty(), "{}", problems.join("; "));
    let extra: Vec<&String> = ours.keys().filter(|n| !go.contains_key(*n)).collect();
    let module = crate::shim::reference()
        .map(|r| r.module.clone())
        .unwrap_or_default();
    Ok(if extra.is_empty() {
        format!(
            "{} families, same names, types and labels as {module}",
            go.len()
        )
    } else {
        format!(
            "{} reference families matched (names, types, labels); ours also has {extra:?}, which {module} does not register",
            go.len()
        )
    })
}

/// The reverse of `persistent-peer-redialed`: the reference switch holds our node as a
/// persistent peer (`AddPersistentPeers`); our switch stops and a new one starts at the same
/// address with the same key; the reference's reconnect routine finds it on its own.
async fn go_redials_persistent_rust(bin: PathBuf) -> CaseResult {
    let listen = free_port()?;
    let first_probe = Arc::new(Probe::default());
    let first = switch(&first_probe, Some(listen), None)?;
    first.start().await?;
    let ours = NetAddress::new(our_key().node_id(), listen).to_string();
    let mut shim = Shim::spawn(
        &bin,
        "switch",
        &shim_args(&[
            "--dial",
            &ours,
            "--persistent",
            "--role",
            "echo",
            "--seed",
            "51",
        ]),
    )?;
    shim.expect("peer", EVENT_TIMEOUT).await?;
    first_probe
        .until("the first connection", |p| {
            p.added.lock().map(|a| a.len()).unwrap_or(0) == 1
        })
        .await?;

    // We go away: our stop closes the connection, which the reference takes as the peer's
    // error and so starts redialing its persistent peer.
    first.stop().await;
    let removed = shim.expect("removed", EVENT_TIMEOUT).await?;
    let started = tokio::time::Instant::now();
    let second_probe = Arc::new(Probe::default());
    let second = switch(&second_probe, Some(listen), None)?;
    second.start().await?;
    shim.expect("peer", Duration::from_secs(60)).await?;
    second_probe
        .until("the reference's redial", |p| {
            p.added.lock().map(|a| a.len()).unwrap_or(0) == 1
        })
        .await?;
    let took = started.elapsed();
    let peers = second.peers();
    ensure!(
        peers.len() == 1 && !peers[0].is_outbound() && peers[0].id() == shim_node_id(51),
        "our new switch's peers: {peers:?}"
    );
    second.stop().await;
    drop(shim);
    Ok(format!(
        "the reference removed us ({}) and redialed our restarted switch on its own, {:.1} s after it came back",
        removed["reason"],
        took.as_secs_f64()
    ))
}
