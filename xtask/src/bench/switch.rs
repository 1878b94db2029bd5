//! Suite `switch`: what the switch adds on top of a bare transport connection.
//!
//! Figures and their reference (all measured in this run, loopback TCP, rates unlimited, one
//! multi-threaded tokio runtime):
//! - `throughput_1k`, `throughput_64k`: MiB/s of 1 KiB and 64 KiB messages from one switch to
//!   another, sent with `Peer::send_bytes` on one channel, counted by the receiving switch's
//!   reactor (a `Raw` reactor, so each message goes through the delivery task, the decoder and
//!   an awaited `receive`). The clock runs from the first send until the reactor has counted the
//!   last byte; setup (switches, dial) is not timed.
//! - Reference `transport_mconn`: the same messages between two bare `TcpTransport`
//!   connections, sent with `MConnection::send` and read straight from the channel receiver.
//!   The ratio is the share of the bare connection's throughput the switch keeps.
//! - `broadcast_100`: broadcasts per second of a 1 KiB message to 100 peers (switches on the
//!   in-memory network of `p2p-testkit`, so the figure is the switch's and not the kernel's),
//!   one after the other, each awaited; the clock stops when every peer's reactor has
//!   counted every message.
//! - Reference `sequential_send`: the same messages sent by awaiting `Peer::send_bytes` to each
//!   peer in turn. The ratio shows what the concurrent broadcast gains or costs.
//! - `broadcast_1k`: the same over loopback TCP to 50 peers, against `sequential_send` over the
//!   same connections, and against `go-cometbft`: the shim's `bench-switch --what broadcast`,
//!   the reference switch broadcasting the same messages to 50 reference switches in one Go
//!   process (its `Broadcast`, not awaited, until every peer counted every message).
//! - `idle_peer_bytes`: heap bytes per idle peer with the full node's channel set and
//!   `MConnConfig::node_default()`, 500 peers on one switch. Counted with the process's
//!   counting allocator: the live heap of a hub and 500 started dialer switches before and after
//!   all 500 connect, divided by the 1000 peer ends (both ends are switch peers). Target: at most
//!   64 KiB (`target_64k`). Reference `go-cometbft`: the shim's `bench-switch --what idle`,
//!   the same 500 + 1 reference switches with the same channels in one Go process, live heap
//!   plus goroutine stacks (after a collection) before and after, per peer end.
//! - `connect_200`: milliseconds until 200 switches that dial one hub at once are all its
//!   peers, against `crypto_bound`: the time the handshake crypto alone takes for the 400
//!   handshake ends, one thread (the secretconn suite's bound).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use bytes::Bytes;
use p2p_mconn::{ChannelDescriptor, MConnConfig};
use p2p_switch::{Envelope, Raw, Reactor, Switch, SwitchBuilder, SwitchConfig};
use p2p_testkit::memory::MemoryNetwork;
use p2p_transport::{TcpTransport, Transport, TransportConfig};
use p2p_types::{NetAddress, NodeInfo, NodeKey};
use tokio::sync::Notify;

use super::{Report, Scale, best, mib_per_s};
use crate::shim::{self, GoStatus};

const SUITE: &str = "switch";
const CH: u8 = 0x01;

pub fn run(report: &mut Report, scale: Scale) -> anyhow::Result<()> {
    let go = match shim::build()? {
        GoStatus::Ready(bin) => Some(bin),
        GoStatus::Unavailable(why) => {
            eprintln!(
                "bench: the Go reference is unavailable, its switch lines are skipped: {why}"
            );
            None
        }
    };
    for (name, size, total) in [
        ("throughput_1k", 1024, 32 << 20),
        ("throughput_64k", 64 * 1024, 256 << 20),
    ] {
        let count = scale.bytes(total) / size;
        let ours = best(
            (0..scale.reps())
                .map(|_| switch_throughput(size, count))
                .collect::<anyhow::Result<_>>()?,
        );
        let bare = best(
            (0..scale.reps())
                .map(|_| mconn_throughput(size, count))
                .collect::<anyhow::Result<_>>()?,
        );
        report.line(SUITE, name, ours, "MiB/s", "transport_mconn", bare);
    }
    let rounds = scale.count(200);
    let (mut b, mut s) = (Vec::new(), Vec::new());
    for _ in 0..scale.reps() {
        let (broadcast, sequential) = broadcast_100(rounds)?;
        b.push(broadcast);
        s.push(sequential);
    }
    report.line(
        SUITE,
        "broadcast_100",
        best(b),
        "per_s",
        "sequential_send",
        best(s),
    );
    let rounds = scale.count(500);
    let (mut b, mut s) = (Vec::new(), Vec::new());
    for _ in 0..scale.reps() {
        let (broadcast, sequential) = broadcast_tcp(50, rounds)?;
        b.push(broadcast);
        s.push(sequential);
    }
    let ours_1k = best(b);
    report.line(
        SUITE,
        "broadcast_1k",
        ours_1k,
        "per_s",
        "sequential_send",
        best(s),
    );
    match &go {
        Some(bin) => {
            let theirs = (0..scale.reps())
                .map(|_| {
                    go_bench(
                        bin,
                        &[
                            "--what",
                            "broadcast",
                            "--peers",
                            "50",
                            "--rounds",
                            &rounds.to_string(),
                        ],
                    )
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            report.line(
                SUITE,
                "broadcast_1k",
                ours_1k,
                "per_s",
                "go-cometbft",
                best(theirs),
            );
        }
        None => report.missing(SUITE, "broadcast_1k", "go-cometbft", "no Go toolchain"),
    }
    let idle = idle_peer_bytes(500)?;
    report.line(
        SUITE,
        "idle_peer_bytes",
        idle,
        "bytes",
        "target_64k",
        65536.0,
    );
    match &go {
        Some(bin) => {
            let theirs = go_bench(bin, &["--what", "idle", "--peers", "500"])?;
            report.line(
                SUITE,
                "idle_peer_bytes",
                idle,
                "bytes",
                "go-cometbft",
                theirs,
            );
        }
        None => report.missing(SUITE, "idle_peer_bytes", "go-cometbft", "no Go toolchain"),
    }
    let n = 200;
    let took = (0..scale.reps().min(3))
        .map(|_| connect_many(n))
        .collect::<anyhow::Result<Vec<_>>>()?
        .into_iter()
        .fold(f64::INFINITY, f64::min);
    let bound = 1000.0 * (2 * n) as f64 / super::secretconn::crypto_bound(2 * n);
    report.line(SUITE, "connect_200", took, "ms", "crypto_bound", bound);
    Ok(())
}

/// The shim's `bench-switch`: reference switches in one Go process; the figure it reports.
fn go_bench(bin: &std::path::Path, args: &[&str]) -> anyhow::Result<f64> {
    let out = std::process::Command::new(bin)
        .arg("bench-switch")
        .args(args)
        .output()
        .context("running the Go shim")?;
    let text = String::from_utf8_lossy(&out.stdout);
    ensure!(out.status.success(), "Go switch bench failed: {text}");
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line)?;
        if v["event"] == "bench" {
            return v["per_s"]
                .as_f64()
                .ok_or_else(|| anyhow::anyhow!("no figure in {v}"));
        }
    }
    anyhow::bail!("the Go switch bench printed no result: {text}")
}

/// A reactor that claims the full node's channels and ignores what it receives.
struct FullNode;

impl Reactor for FullNode {
    type Message = Raw;

    fn channels(&self) -> Vec<ChannelDescriptor> {
        p2p_mconn::reference::full_node()
    }

    async fn receive(&self, _e: Envelope<Raw>) {}
}

fn full_node_switch(seed: u64, max_inbound: usize) -> anyhow::Result<Switch<TcpTransport>> {
    let k = key(seed);
    let info = NodeInfo::new(k.node_id(), "bench-chain", "tcp://127.0.0.1:26656");
    let mut c = SwitchConfig::default();
    c.listen_addr(Some("127.0.0.1:0".parse()?))
        .allow_duplicate_ip(true)
        .max_num_inbound_peers(max_inbound);
    // Every spoke dials from 127.0.0.1: the per-IP handshake rate limit (there to stop one
    // host from burning our CPU) would refuse all but its burst of 32.
    c.transport()
        .mconn(MConnConfig::node_default())
        .handshake_rate_limit(None);
    let mut b = SwitchBuilder::new(k, info, c);
    b.add_reactor("full", FullNode)?;
    Ok(b.build_tcp()?)
}

async fn until_peers(hub: &Switch<TcpTransport>, n: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    while hub.peers().len() < n {
        ensure!(
            Instant::now() < deadline,
            "only {} of {n} peers connected",
            hub.peers().len()
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(())
}

/// Heap bytes per idle peer end, `n` peers on one hub (see the module docs).
fn idle_peer_bytes(n: usize) -> anyhow::Result<f64> {
    use stats_alloc::Region;
    let live = |r: &Region<std::alloc::System>| {
        let c = r.change();
        c.bytes_allocated as f64 - c.bytes_deallocated as f64 + c.bytes_reallocated as f64
    };
    runtime()?.block_on(async move {
        let hub = full_node_switch(0, n + 10)?;
        hub.start().await?;
        let hub_addr = hub
            .net_address()
            .ok_or_else(|| anyhow::anyhow!("not listening"))?;
        let mut spokes = Vec::with_capacity(n);
        for i in 1..=n as u64 {
            let s = full_node_switch(i, 10)?;
            s.start().await?;
            spokes.push(s);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let region = Region::new(super::mconn::GLOBAL);
        for s in &spokes {
            s.dial_peer_with_address(&hub_addr).await?;
        }
        until_peers(&hub, n).await?;
        // Let every task park and every handshake buffer go.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let bytes = live(&region);
        ensure!(hub.peers().len() == n, "a peer dropped");
        hub.stop().await;
        for s in &spokes {
            s.stop().await;
        }
        Ok(bytes / (2 * n) as f64)
    })
}

/// Milliseconds until `n` switches dialing one hub at once are all its peers.
fn connect_many(n: usize) -> anyhow::Result<f64> {
    runtime()?.block_on(async move {
        let hub = full_node_switch(0, n + 10)?;
        hub.start().await?;
        let hub_addr = hub
            .net_address()
            .ok_or_else(|| anyhow::anyhow!("not listening"))?;
        let mut spokes = Vec::with_capacity(n);
        for i in 1..=n as u64 {
            let s = Arc::new(full_node_switch(i, 10)?);
            s.start().await?;
            spokes.push(s);
        }
        let start = Instant::now();
        let dials: Vec<_> = spokes
            .iter()
            .map(|s| {
                let (s, a) = (Arc::clone(s), hub_addr);
                tokio::spawn(async move { s.dial_peer_with_address(&a).await.map(|_| ()) })
            })
            .collect();
        for d in dials {
            d.await??;
        }
        until_peers(&hub, n).await?;
        let took = start.elapsed().as_secs_f64() * 1000.0;
        hub.stop().await;
        for s in &spokes {
            s.stop().await;
        }
        Ok(took)
    })
}

/// Broadcasts and sequential sends per second of 1 KiB to `peers` TCP peers.
fn broadcast_tcp(peers: usize, rounds: usize) -> anyhow::Result<(f64, f64)> {
    runtime()?.block_on(async move {
        let hub = tcp_switch(0, &Arc::new(Counter::default()))?;
        hub.start().await?;
        let hub_addr = hub
            .net_address()
            .ok_or_else(|| anyhow::anyhow!("not listening"))?;
        let mut spokes = Vec::with_capacity(peers);
        for i in 1..=peers as u64 {
            let c = Arc::new(Counter::default());
            let s = tcp_switch(i, &c)?;
            s.start().await?;
            s.dial_peer_with_address(&hub_addr).await?;
            spokes.push((s, c));
        }
        until_peers(&hub, peers).await?;
        broadcast_vs_sequential(&hub, &spokes, rounds).await
    })
}

/// Broadcasts per second of 1 KiB from `hub` to its `spokes` (each awaited, until every
/// spoke's reactor counted every message), then the same messages sent to each peer in turn.
/// Stops every switch.
async fn broadcast_vs_sequential<T: Transport>(
    hub: &Switch<T>,
    spokes: &[(Switch<T>, Arc<Counter>)],
    rounds: usize,
) -> anyhow::Result<(f64, f64)> {
    let msg = Raw(payload(1024));
    let all_got = |n: u64| async move {
        for (_, c) in spokes {
            c.until_messages(n).await;
        }
    };

    let start = Instant::now();
    for _ in 0..rounds {
        let report = hub.broadcast(CH, &msg).await;
        ensure!(report.iter().all(|(_, r)| r.is_ok()), "a broadcast failed");
    }
    all_got(rounds as u64).await;
    let broadcast = rounds as f64 / start.elapsed().as_secs_f64();

    let list = hub.peers();
    let start = Instant::now();
    for _ in 0..rounds {
        for p in &list {
            p.send_bytes(CH, msg.0.clone()).await?;
        }
    }
    all_got(2 * rounds as u64).await;
    let sequential = rounds as f64 / start.elapsed().as_secs_f64();

    hub.stop().await;
    for (s, _) in spokes {
        s.stop().await;
    }
    Ok((broadcast, sequential))
}

/// Counts the bytes it receives and wakes a waiter on every message.
#[derive(Default)]
struct Counter {
    bytes: AtomicU64,
    messages: AtomicU64,
    changed: Notify,
}

impl Reactor for Counter {
    type Message = Raw;

    fn channels(&self) -> Vec<ChannelDescriptor> {
        vec![ChannelDescriptor::new(CH, 1).send_queue_capacity(100)]
    }

    async fn receive(&self, e: Envelope<Raw>) {
        self.bytes
            .fetch_add(e.message.0.len() as u64, Ordering::AcqRel);
        self.messages.fetch_add(1, Ordering::AcqRel);
        self.changed.notify_waiters();
    }
}

impl Counter {
    async fn until_messages(&self, n: u64) {
        loop {
            let changed = self.changed.notified();
            if self.messages.load(Ordering::Acquire) >= n {
                return;
            }
            let _ = tokio::time::timeout(Duration::from_millis(50), changed).await;
        }
    }
}

fn key(seed: u64) -> NodeKey {
    let mut s = [0u8; 32];
    s[..8].copy_from_slice(&seed.to_be_bytes());
    s[8..].copy_from_slice(b"p2p-rs bench switch !!!!");
    NodeKey::from_seed(s)
}

fn mconn_config() -> MConnConfig {
    let mut m = MConnConfig::default();
    m.send_rate(0).recv_rate(0);
    m
}

fn switch_config(listen: &str) -> anyhow::Result<SwitchConfig> {
    let mut c = SwitchConfig::default();
    c.listen_addr(Some(listen.parse()?))
        .allow_duplicate_ip(true)
        .max_num_inbound_peers(200);
    // All peers dial from 127.0.0.1 (see `full_node_switch`).
    c.transport()
        .mconn(mconn_config())
        .handshake_rate_limit(None);
    Ok(c)
}

fn tcp_switch(seed: u64, counter: &Arc<Counter>) -> anyhow::Result<Switch<TcpTransport>> {
    let k = key(seed);
    let info = NodeInfo::new(k.node_id(), "bench-chain", "tcp://127.0.0.1:26656");
    let mut b = SwitchBuilder::new(k, info, switch_config("127.0.0.1:0")?);
    b.add_reactor_arc("count", Arc::clone(counter))?;
    Ok(b.build_tcp()?)
}

fn payload(size: usize) -> Bytes {
    let mut rng = crate::data::Rng(size as u64);
    Bytes::from(rng.bytes(size))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn switch_throughput(size: usize, count: usize) -> anyhow::Result<f64> {
    runtime()?.block_on(async move {
        let (ca, cb) = (Arc::new(Counter::default()), Arc::new(Counter::default()));
        let (a, b) = (tcp_switch(1, &ca)?, tcp_switch(2, &cb)?);
        a.start().await?;
        b.start().await?;
        let to_b = b
            .net_address()
            .ok_or_else(|| anyhow::anyhow!("not listening"))?;
        let peer = a.dial_peer_with_address(&to_b).await?;
        let msg = payload(size);
        let start = Instant::now();
        let sender = tokio::spawn(async move {
            for _ in 0..count {
                peer.send_bytes(CH, msg.clone()).await?;
            }
            anyhow::Ok(())
        });
        cb.until_messages(count as u64).await;
        let took = start.elapsed();
        sender.await??;
        ensure!(cb.bytes.load(Ordering::Acquire) == (size * count) as u64);
        a.stop().await;
        b.stop().await;
        Ok(mib_per_s(size * count, took))
    })
}

fn bare(seed: u64) -> anyhow::Result<TcpTransport> {
    let k = key(seed);
    let mut info = NodeInfo::new(k.node_id(), "bench-chain", "tcp://127.0.0.1:26656");
    info.channels = vec![CH];
    let mut config = TransportConfig::default();
    config
        .channels([ChannelDescriptor::new(CH, 1).send_queue_capacity(100)])
        .mconn(mconn_config());
    config.dangerous().allow_duplicate_ip(true);
    Ok(TcpTransport::new(k, info, config)?)
}

fn mconn_throughput(size: usize, count: usize) -> anyhow::Result<f64> {
    runtime()?.block_on(async move {
        let (a, b) = (bare(1)?, bare(2)?);
        let bound = b.listen("127.0.0.1:0".parse()?).await?;
        let to_b = NetAddress::new(b.upgrade_config().node_id(), bound);
        let (out, inb) = tokio::join!(a.dial(&to_b), b.accept());
        let (out, mut inb) = (out?, inb?);
        let mut rx = inb
            .take_receivers()
            .take(CH)
            .ok_or_else(|| anyhow::anyhow!("no receiver"))?;
        let msg = payload(size);
        let mconn = out.mconn().clone();
        let start = Instant::now();
        let sender = tokio::spawn(async move {
            for _ in 0..count {
                mconn.send(CH, msg.clone()).await?;
            }
            anyhow::Ok(())
        });
        let mut bytes = 0;
        for _ in 0..count {
            let m = rx
                .recv()
                .await
                .ok_or_else(|| anyhow::anyhow!("connection ended"))?;
            bytes += m.len();
        }
        let took = start.elapsed();
        sender.await??;
        ensure!(bytes == size * count);
        a.cleanup(out);
        b.cleanup(inb);
        b.close().await;
        Ok(mib_per_s(bytes, took))
    })
}

/// Broadcasts and sequential sends per second to 100 in-memory peers.
fn broadcast_100(rounds: usize) -> anyhow::Result<(f64, f64)> {
    const PEERS: usize = 100;
    runtime()?.block_on(async move {
        let net = MemoryNetwork::new();
        let make = |seed: u64, counter: &Arc<Counter>| -> anyhow::Result<Switch<_>> {
            let k = key(seed);
            let info = NodeInfo::new(k.node_id(), "bench-chain", "tcp://10.0.0.1:26656");
            let mut b = SwitchBuilder::new(k, info, switch_config("0.0.0.0:26656")?);
            b.add_reactor_arc("count", Arc::clone(counter))?;
            let net = net.clone();
            Ok(b.build(move |k, i, c| net.transport(k, i, c))?)
        };
        let hub = make(0, &Arc::new(Counter::default()))?;
        hub.start().await?;
        let hub_addr = hub
            .net_address()
            .ok_or_else(|| anyhow::anyhow!("not listening"))?;
        let mut spokes = Vec::with_capacity(PEERS);
        for i in 1..=PEERS as u64 {
            let c = Arc::new(Counter::default());
            let s = make(i, &c)?;
            s.start().await?;
            s.dial_peer_with_address(&hub_addr).await?;
            spokes.push((s, c));
        }
        while hub.peers().len() < PEERS {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        broadcast_vs_sequential(&hub, &spokes, rounds).await
    })
}
