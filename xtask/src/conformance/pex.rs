//! `p2p-pex` against the reference `p2p/pex` (shim mode `pex`): `addrbook.json` read and
//! written both ways, our PEX reactor answering the reference's request, a request flood
//! punished as the reference punishes it, and discovery through a seed of either kind.
//!
//! Everything runs on 127.0.0.1, so both sides allow duplicate IPs, the books are not
//! routability-strict when nodes take part, and our per-IP limit is raised.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail, ensure};
use p2p_pex::{AddrBook, AddrBookConfig, BucketKind, Config, Reactor, SharedAddrBook, SystemClock};
use p2p_switch::{Switch, SwitchBuilder, SwitchConfig};
use p2p_transport::TcpTransport;
use p2p_types::{NetAddress, NodeId, NodeInfo, NodeKey};
use serde_json::Value;

use super::{Case, CaseResult};
use crate::shim::{Shim, parse_ready};

const EVENT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a discovery may take (each case stays well under a minute).
pub(super) const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(40);
/// The ensure-peers period of every node in the discovery cases (the reference's is settable
/// through `SetEnsurePeersPeriod`; ours through `PexConfig::ensure_peers_period`).
const ENSURE_PEERS: Duration = Duration::from_secs(2);
pub(super) const ENSURE_PEERS_ARG: &str = "2s";
/// Addresses in the books of the file cases.
const BOOK_COUNT: usize = 40;
/// How many of them are marked good (moved to old buckets).
const BOOK_GOOD: usize = 12;

pub(super) fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "pex/go-addrbook-loads-in-rust",
            run: |bin| Box::pin(go_addrbook_loads_in_rust(bin)),
        },
        Case {
            name: "pex/rust-addrbook-loads-in-go",
            run: |bin| Box::pin(rust_addrbook_loads_in_go(bin)),
        },
        Case {
            name: "pex/rust-answers-go-request",
            run: |bin| Box::pin(rust_answers_go_request(bin)),
        },
        Case {
            name: "pex/go-request-flood-disconnected",
            run: |bin| Box::pin(go_request_flood_disconnected(bin)),
        },
        Case {
            name: "pex/rust-seed-go-nodes-discover",
            run: |bin| Box::pin(rust_seed_go_nodes_discover(bin)),
        },
        Case {
            name: "pex/go-seed-rust-nodes-discover",
            run: |bin| Box::pin(go_seed_rust_nodes_discover(bin)),
        },
    ]
}

// ---- helpers ---------------------------------------------------------------------------------

/// A scratch directory, removed on drop.
pub(super) struct Scratch(PathBuf);

impl Scratch {
    pub(super) fn new(case: &str) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("xtask-pex-{}-{case}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Self(dir))
    }

    pub(super) fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    pub(super) fn arg(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn key(n: u8) -> NodeKey {
    let mut seed = *b"p2p-rs conformance pex node 0000";
    seed[31] = n;
    NodeKey::from_seed(seed)
}

pub(super) fn free_port() -> anyhow::Result<SocketAddr> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?)
}

/// A book for nodes on one machine: not routability-strict, many IDs per IP allowed.
fn loopback_book(seed: u64) -> AddrBook {
    let mut c = AddrBookConfig::default();
    c.routability_strict(false).max_addrs_per_ip(64);
    AddrBook::with_seed(c, seed, Arc::new(SystemClock))
}

/// One of our nodes: a TCP switch with our PEX reactor.
struct RustNode {
    switch: Switch<TcpTransport>,
    book: SharedAddrBook,
    addr: NetAddress,
}

fn rust_node(n: u8, book: AddrBook, setup: impl FnOnce(&mut Config)) -> anyhow::Result<RustNode> {
    let k = key(n);
    let listen = free_port()?;
    let addr = NetAddress::new(k.node_id(), listen);
    let mut info = NodeInfo::new(k.node_id(), "test-chain", format!("tcp://{listen}"));
    info.moniker = format!("p2p-rs pex conformance {n}");
    let mut sc = SwitchConfig::default();
    sc.listen_addr(Some(listen)).allow_duplicate_ip(true);
    let mut config = Config::default();
    config.rng_seed(Some(u64::from(n)));
    config.pex().ensure_peers_period(ENSURE_PEERS);
    setup(&mut config);
    let reactor = Reactor::new(config, book);
    let shared = reactor.address_book();
    shared.lock().add_our_address(&addr);
    let mut b = SwitchBuilder::new(k, info, sc);
    b.add_reactor("pex", reactor)?;
    b.address_book(Arc::new(shared.clone()));
    Ok(RustNode {
        switch: b.build_tcp()?,
        book: shared,
        addr,
    })
}

impl RustNode {
    /// Whether this node has `id` among its peers or in its book.
    fn knows(&self, other: &NetAddress) -> bool {
        self.switch.peer(other.id()).is_some() || self.book.lock().has_address(other)
    }
}

/// A reference node (shim mode `pex`, role `node`) and its address.
pub(super) async fn go_node(
    bin: &Path,
    seed: u64,
    extra: &[&str],
) -> anyhow::Result<(Shim, NetAddress)> {
    let mut args: Vec<String> = [
        "--role",
        "node",
        "--seed",
        &seed.to_string(),
        "--log-level",
        "error",
        "--timeout",
        "150s",
        "--state-every",
        "300ms",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    let mut shim = Shim::spawn(bin, "pex", &args)?;
    let ready = parse_ready(&shim.expect("ready", EVENT_TIMEOUT).await?)?;
    let addr = NetAddress::new(ready.node_id, ready.addr.parse()?);
    Ok((shim, addr))
}

/// The IDs in a `state` event's peer set and book.
pub(super) fn known_ids(state: &Value) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for list in ["peers", "book"] {
        for e in state[list].as_array().into_iter().flatten() {
            if let Some(id) = e["id"].as_str() {
                ids.insert(id.to_owned());
            }
        }
    }
    ids
}

/// Reads `state` events until `cond` holds for one; returns it.
pub(super) async fn until_state(
    shim: &mut Shim,
    what: &str,
    limit: Duration,
    cond: impl Fn(&Value) -> bool,
) -> anyhow::Result<Value> {
    let deadline = tokio::time::Instant::now() + limit;
    let mut last = Value::Null;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            bail!("timed out waiting for {what}; last state {last}");
        }
        let ev = match shim.next_event(left).await {
            Ok(ev) => ev,
            Err(e) => bail!("{e:#} while waiting for {what}; last state {last}"),
        };
        match ev["event"].as_str() {
            Some("state") => {
                if cond(&ev) {
                    return Ok(ev);
                }
                last = ev;
            }
            Some("error") => bail!("the reference node failed: {}", ev["error"]),
            _ => {}
        }
    }
}

/// The entries of a `book` event by ID.
fn go_entries(ev: &Value) -> anyhow::Result<Vec<&Value>> {
    ev["entries"]
        .as_array()
        .map(|v| v.iter().collect())
        .ok_or_else(|| anyhow!("book event without entries: {ev}"))
}

fn buckets_of(e: &Value) -> Vec<u64> {
    let mut b: Vec<u64> = e["buckets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_u64)
        .collect();
    b.sort_unstable();
    b
}

// ---- the cases -------------------------------------------------------------------------------

async fn go_addrbook_loads_in_rust(bin: PathBuf) -> CaseResult {
    let dir = Scratch::new("go-book")?;
    let file = dir.arg("addrbook.json");
    let shim = Shim::spawn(
        &bin,
        "pex",
        &[
            "--role",
            "book-write",
            "--file",
            &file,
            "--count",
            &BOOK_COUNT.to_string(),
            "--good",
            &BOOK_GOOD.to_string(),
            "--log-level",
            "error",
        ]
        .map(str::to_owned),
    )?;
    let (ok, events) = shim.finish(EVENT_TIMEOUT).await?;
    let ev = events
        .iter()
        .find(|e| e["event"] == "book")
        .ok_or_else(|| anyhow!("no book event (success={ok}): {events:?}"))?;
    ensure!(ok, "the reference book-write failed: {events:?}");
    let entries = go_entries(ev)?;
    ensure!(
        entries.len() == BOOK_COUNT && ev["size"] == BOOK_COUNT,
        "the reference book holds {} entries (size {}), expected {BOOK_COUNT}",
        entries.len(),
        ev["size"]
    );
    let go_old = entries.iter().filter(|e| e["old"] == true).count();
    ensure!(
        go_old == BOOK_GOOD,
        "the reference moved {go_old} to old buckets"
    );

    // Our book, with the default (strict) settings, the reference's default too.
    let mut book = AddrBook::new(AddrBookConfig::default());
    let report = book.load_file(dir.path("addrbook.json"))?;
    ensure!(
        !report.is_damaged(),
        "our loader found damage in the reference's file: {:?}",
        report.issues()
    );
    ensure!(
        book.len() == BOOK_COUNT,
        "we loaded {} of {BOOK_COUNT} entries ({:?})",
        book.len(),
        report.issues()
    );
    ensure!(
        Some(book.key()) == ev["key"].as_str(),
        "bucket key {} read as {}",
        ev["key"],
        book.key()
    );
    let mut same_buckets = 0;
    for e in &entries {
        let addr: NetAddress = e["addr"].as_str().unwrap_or_default().parse()?;
        let src: NetAddress = e["src"].as_str().unwrap_or_default().parse()?;
        let ours = book
            .get(&addr.id())
            .ok_or_else(|| anyhow!("{addr} missing from our book"))?;
        ensure!(*ours.addr() == addr, "{addr} loaded as {}", ours.addr());
        ensure!(
            *ours.src() == src,
            "{addr}: source {src} loaded as {}",
            ours.src()
        );
        let old = e["old"] == true;
        ensure!(
            (ours.kind() == BucketKind::Old) == old && book.is_good(&addr) == old,
            "{addr}: old={old} in the reference, {:?} here",
            ours.kind()
        );
        let mut b: Vec<u64> = ours.buckets().iter().map(|b| u64::from(*b)).collect();
        b.sort_unstable();
        ensure!(
            b == buckets_of(e),
            "{addr}: buckets {:?} in the reference, {b:?} here",
            buckets_of(e)
        );
        same_buckets += 1;
    }
    book.verify_consistency().map_err(|e| anyhow!("{e}"))?;
    Ok(format!(
        "{BOOK_COUNT} entries of a reference book ({BOOK_GOOD} old) loaded with the same IDs, \
         addresses, sources, old/new state and {same_buckets} identical bucket lists"
    ))
}

async fn rust_addrbook_loads_in_go(bin: PathBuf) -> CaseResult {
    let dir = Scratch::new("rust-book")?;
    let mut book = AddrBook::with_seed(AddrBookConfig::default(), 5, Arc::new(SystemClock));
    let srcs: Vec<NetAddress> = (0..4u8)
        .map(|i| NetAddress::new(key(200 + i).node_id(), ([40 + i, 9, 9, 9], 26656).into()))
        .collect();
    let mut addrs = Vec::new();
    for i in 0..BOOK_COUNT + 3 {
        let n = u8::try_from(i)?;
        let a = NetAddress::new(
            key(100 + n).node_id(),
            ([50 + n % 8, 1 + n / 8, 7, 1 + n], 26656 + u16::from(n)).into(),
        );
        book.add_address(&a, &srcs[i % srcs.len()])?;
        addrs.push(a);
    }
    for a in &addrs[..BOOK_GOOD] {
        book.mark_good(&a.id());
    }
    // Three bans: saved in our extra `bans` list, which the reference must ignore.
    let banned = &addrs[BOOK_COUNT..];
    for a in banned {
        book.mark_bad(a, Duration::from_secs(3600));
    }
    ensure!(book.len() == BOOK_COUNT && book.num_old() == BOOK_GOOD);
    let path = dir.path("addrbook.json");
    book.save_to(&path)?;
    let text = std::fs::read_to_string(&path)?;
    ensure!(
        text.contains("\"bans\""),
        "our file has no bans list to test"
    );

    let shim = Shim::spawn(
        &bin,
        "pex",
        &[
            "--role",
            "book-read",
            "--file",
            &dir.arg("addrbook.json"),
            "--log-level",
            "error",
        ]
        .map(str::to_owned),
    )?;
    let (ok, events) = shim.finish(EVENT_TIMEOUT).await?;
    let ev = events
        .iter()
        .find(|e| e["event"] == "book")
        .ok_or_else(|| anyhow!("no book event (success={ok}): {events:?}"))?;
    ensure!(ok, "the reference book-read failed: {events:?}");
    ensure!(
        ev["key"].as_str() == Some(book.key()),
        "the reference read key {} for our {}",
        ev["key"],
        book.key()
    );
    let entries = go_entries(ev)?;
    ensure!(
        entries.len() == BOOK_COUNT && ev["size"] == BOOK_COUNT,
        "the reference holds {} entries (size {}) of our {BOOK_COUNT}",
        entries.len(),
        ev["size"]
    );
    for ours in book.entries() {
        let id = ours.addr().id().to_string();
        let e = entries
            .iter()
            .find(|e| e["id"] == id.as_str())
            .ok_or_else(|| anyhow!("{} missing from the reference's book", ours.addr()))?;
        ensure!(
            e["addr"].as_str() == Some(ours.addr().to_string().as_str()),
            "{} read as {}",
            ours.addr(),
            e["addr"]
        );
        ensure!(
            e["src"].as_str() == Some(ours.src().to_string().as_str()),
            "{}: source {} read as {}",
            ours.addr(),
            ours.src(),
            e["src"]
        );
        let old = ours.kind() == BucketKind::Old;
        ensure!(
            e["old"] == old && e["good"] == old,
            "{}: old={old} here, old={} good={} in the reference",
            ours.addr(),
            e["old"],
            e["good"]
        );
        let mut b: Vec<u64> = ours.buckets().iter().map(|b| u64::from(*b)).collect();
        b.sort_unstable();
        ensure!(
            b == buckets_of(e),
            "{}: buckets {b:?} here, {:?} in the reference",
            ours.addr(),
            buckets_of(e)
        );
    }
    for a in banned {
        ensure!(
            !entries
                .iter()
                .any(|e| e["id"] == a.id().to_string().as_str()),
            "the banned {a} is in the reference's book"
        );
    }
    Ok(format!(
        "the reference loaded our {BOOK_COUNT} entries ({BOOK_GOOD} old) with the same addresses, \
         sources, old/new state and buckets, and ignored our {} bans",
        banned.len()
    ))
}

/// Addresses on loopback IPs where nobody listens (the reference may dial what it learns).
fn loopback_addrs(count: u8) -> Vec<NetAddress> {
    (0..count)
        .map(|n| NetAddress::new(key(150 + n).node_id(), ([127, 0, 10, 1 + n], 9).into()))
        .collect()
}

async fn rust_answers_go_request(bin: PathBuf) -> CaseResult {
    let node = rust_node(1, loopback_book(1), |_| {})?;
    let told = loopback_addrs(20);
    {
        let mut book = node.book.lock();
        for a in &told {
            book.add_address(a, &node.addr)?;
        }
    }
    node.switch.start().await?;
    let dir = Scratch::new("answer")?;
    let (mut go, go_addr) = go_node(
        &bin,
        11,
        &[
            "--file",
            &dir.arg("addrbook.json"),
            "--dial",
            &node.addr.to_string(),
        ],
    )
    .await?;
    let state = until_state(
        &mut go,
        "the reference book holding our addresses",
        EVENT_TIMEOUT,
        |s| {
            let ids = known_ids(s);
            told.iter().all(|a| ids.contains(&a.id().to_string()))
        },
    )
    .await;
    let peer = node.switch.peer(go_addr.id());
    node.switch.stop().await;
    let state = state?;
    ensure!(
        peer.is_some_and(|p| !p.is_outbound()),
        "the reference node is not our inbound peer"
    );
    // Each as we told it, with us as the source.
    let book = state["book"].as_array().cloned().unwrap_or_default();
    for a in &told {
        let e = book
            .iter()
            .find(|e| e["id"] == a.id().to_string().as_str())
            .ok_or_else(|| anyhow!("{a} only among the reference's peers"))?;
        ensure!(
            e["addr"].as_str() == Some(a.to_string().as_str()),
            "{a} stored as {}",
            e["addr"]
        );
        ensure!(
            e["src"].as_str() == Some(node.addr.to_string().as_str()),
            "{a} stored with source {}",
            e["src"]
        );
    }
    Ok(format!(
        "the reference node asked on connect and filed all {} addresses of our answer, with us as the source",
        told.len()
    ))
}

/// Runs the flooder against `target`; returns its node ID and its `done` event.
async fn flood(bin: &Path, target: &NetAddress, seed: u64) -> anyhow::Result<(NodeId, Value)> {
    let mut shim = Shim::spawn(
        bin,
        "pex",
        &[
            "--role",
            "flood",
            "--dial",
            &target.to_string(),
            "--seed",
            &seed.to_string(),
            "--requests",
            "12",
            "--interval",
            "400ms",
            "--log-level",
            "error",
        ]
        .map(str::to_owned),
    )?;
    let id = parse_ready(&shim.expect("ready", EVENT_TIMEOUT).await?)?.node_id;
    Ok((id, shim.expect_done(EVENT_TIMEOUT).await?))
}

async fn go_request_flood_disconnected(bin: PathBuf) -> CaseResult {
    // The reference's verdict first: the same flood against its own PEX reactor.
    let dir = Scratch::new("flood")?;
    let (go, go_addr) = go_node(&bin, 21, &["--file", &dir.arg("addrbook.json")]).await?;
    let (_, theirs) = flood(&bin, &go_addr, 22).await?;
    drop(go);
    ensure!(
        theirs["removed"] == true,
        "the reference did not disconnect the flooder: {theirs}"
    );

    let node = rust_node(2, loopback_book(2), |_| {})?;
    node.switch.start().await?;
    let ours = flood(&bin, &node.addr, 23).await;
    let flooder_id = ours.as_ref().map(|(id, _)| *id).unwrap_or(key(0).node_id());
    let banned = node
        .book
        .lock()
        .is_banned(&NetAddress::new(flooder_id, ([127, 0, 0, 1], 1).into()));
    let still = node.switch.peer(flooder_id).is_some();
    node.switch.stop().await;
    let (_, ours) = ours?;
    ensure!(
        ours["removed"] == true,
        "we did not disconnect the flooder: {ours}"
    );
    ensure!(!still, "the flooder is still our peer");
    ensure!(banned, "we disconnected the flooder but did not ban it");
    ensure!(
        ours["answers"] == theirs["answers"],
        "we answered {} requests before the disconnect, the reference {}",
        ours["answers"],
        theirs["answers"]
    );
    ensure!(
        ours["answers"] == 2,
        "{} answers: the reference's rule is two free requests, then one per 10 s",
        ours["answers"]
    );
    Ok(format!(
        "requests 400 ms apart: {} answered, then disconnected and banned (the reference: {} \
         answered, disconnected after {} requests; we after {})",
        ours["answers"], theirs["answers"], theirs["requests"], ours["requests"]
    ))
}

async fn rust_seed_go_nodes_discover(bin: PathBuf) -> CaseResult {
    let seed = rust_node(3, loopback_book(3), |c| {
        c.pex()
            .seed_mode(true)
            .crawl_period(ENSURE_PEERS)
            .min_time_between_crawls(Duration::from_secs(5));
    })?;
    seed.switch.start().await?;
    let seeds = seed.addr.to_string();
    let dir = Scratch::new("rust-seed")?;
    let mut nodes = Vec::new();
    for i in 0..3u64 {
        let file = dir.arg(&format!("addrbook-{i}.json"));
        nodes.push(
            go_node(
                &bin,
                31 + i,
                &[
                    "--file",
                    &file,
                    "--seeds",
                    &seeds,
                    "--ensure-peers-period",
                    ENSURE_PEERS_ARG,
                ],
            )
            .await?,
        );
    }
    let ids: Vec<String> = nodes.iter().map(|(_, a)| a.id().to_string()).collect();
    let started = tokio::time::Instant::now();
    let mut result = Ok(());
    for (i, (shim, addr)) in nodes.iter_mut().enumerate() {
        let others: Vec<&String> = ids
            .iter()
            .filter(|id| **id != addr.id().to_string())
            .collect();
        let r = until_state(
            shim,
            &format!("reference node {i} finding the others"),
            DISCOVERY_TIMEOUT,
            |s| {
                let known = known_ids(s);
                others.iter().all(|o| known.contains(*o))
            },
        )
        .await;
        if let Err(e) = r {
            result = Err(e);
            break;
        }
    }
    let took = started.elapsed();
    let seed_knew = seed.book.lock().len();
    seed.switch.stop().await;
    drop(nodes);
    result?;
    Ok(format!(
        "3 reference nodes knowing only our seed found each other in {:.1} s (our seed's book: {seed_knew})",
        took.as_secs_f64()
    ))
}

async fn go_seed_rust_nodes_discover(bin: PathBuf) -> CaseResult {
    let dir = Scratch::new("go-seed")?;
    let (mut go, go_addr) = go_node(
        &bin,
        41,
        &["--file", &dir.arg("addrbook.json"), "--seed-mode"],
    )
    .await?;
    let seeds = go_addr.to_string();
    let mut nodes = Vec::new();
    for n in 0..3u8 {
        let node = rust_node(50 + n, loopback_book(u64::from(n)), |c| {
            c.seeds(seeds.clone());
        })?;
        node.switch.start().await?;
        nodes.push(node);
    }
    let started = tokio::time::Instant::now();
    let done = |nodes: &[RustNode]| {
        nodes.iter().all(|x| {
            nodes
                .iter()
                .filter(|y| y.addr != x.addr)
                .all(|y| x.knows(&y.addr))
        })
    };
    let deadline = started + DISCOVERY_TIMEOUT;
    while !done(&nodes) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let ok = done(&nodes);
    let took = started.elapsed();
    let summary: Vec<String> = nodes
        .iter()
        .map(|x| {
            format!(
                "{} peers, {} in book",
                x.switch.peers().len(),
                x.book.lock().len()
            )
        })
        .collect();
    // The reference seed saw us all.
    let seed_state = until_state(&mut go, "the reference seed's book", EVENT_TIMEOUT, |_| {
        true
    })
    .await;
    for x in &nodes {
        x.switch.stop().await;
    }
    drop(go);
    ensure!(
        ok,
        "not every node found the others within {DISCOVERY_TIMEOUT:?}: {summary:?}"
    );
    let seed_ids = known_ids(&seed_state?);
    ensure!(
        nodes
            .iter()
            .all(|x| seed_ids.contains(&x.addr.id().to_string())),
        "the reference seed does not know all our nodes"
    );
    Ok(format!(
        "3 of our nodes knowing only the reference seed found each other in {:.1} s ({})",
        took.as_secs_f64(),
        summary.join("; ")
    ))
}
