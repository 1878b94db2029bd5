//! The nodes of a testnet: each a switch over TCP with the PEX reactor (the seed in seed
//! mode) and the gossip reactor, its address book in its own home directory. On loopback
//! every switch runs on the caller's runtime; in netns mode each runs on a thread of its own
//! inside its namespace ([`Spawn`]); the same [`build`] makes both.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use p2p_mconn::MConnConfig;
use p2p_pex::{AddrBook, AddrBookConfig, PexConfig, SharedAddrBook, SystemClock};
use p2p_switch::metrics::Metrics;
use p2p_switch::{Switch, SwitchBuilder, SwitchConfig, SwitchHandle};
use p2p_transport::TcpTransport;
use p2p_types::{NetAddress, NodeId, NodeInfo, NodeKey};
use prometheus_client::registry::Registry;
use tokio::time::Instant;

use tokio::sync::oneshot;

use super::netns::Netns;
use super::{GossipReactor, MetricsServer, Scenario, TestnetConfig, TestnetError};

/// The port every node listens on in netns mode unless `base_port` is set (the reference's
/// P2P port).
pub const NETNS_PORT: u16 = 26656;

/// The PEX period of a testnet: how often a node tops up its outbound peers and how often the
/// seed crawls (the reference's 30 s for both), so that a testnet converges in seconds.
pub const PEX_PERIOD: Duration = Duration::from_secs(1);
/// How long the seed stays connected to a peer it dialled to crawl (the reference: 28 h).
pub const SEED_DISCONNECT_WAIT: Duration = Duration::from_secs(5);
/// The least time between two crawls of one peer by the seed (the reference: 2 min).
pub const MIN_TIME_BETWEEN_CRAWLS: Duration = Duration::from_secs(5);
/// How often each node saves its address book (the reference: 2 min; 1 s is the least).
pub const ADDRBOOK_SAVE_INTERVAL: Duration = Duration::from_secs(1);
/// How long a peer the PEX finds misbehaving is banned (the reference: 24 h), so that a
/// false alarm on a loaded machine costs seconds, not the run.
pub const BAN_TIME: Duration = Duration::from_secs(30);

/// Puts the testnet's short periods into `pex` (see [`PEX_PERIOD`] and the constants next to
/// it), with `period` as the top-up and crawl period. Everything else keeps the reference's
/// defaults. The simulations in this crate's tests use it too.
pub fn short_periods(pex: &mut PexConfig, period: Duration) -> &mut PexConfig {
    pex.ensure_peers_period(period)
        .crawl_period(period)
        .seed_disconnect_wait_period(SEED_DISCONNECT_WAIT)
        .min_time_between_crawls(MIN_TIME_BETWEEN_CRAWLS)
        .save_interval(ADDRBOOK_SAVE_INTERVAL)
        .ban_time(BAN_TIME)
}

/// Where node `i` keeps its files under `home`: `home/node-<i>/config`.
pub fn node_config_dir(home: &Path, i: usize) -> PathBuf {
    home.join(format!("node-{i}")).join("config")
}

/// The deterministic key of node `i` under `seed`.
pub(super) fn node_key(seed: u64, i: usize) -> NodeKey {
    let mut key_seed = [0u8; 32];
    key_seed[..8].copy_from_slice(&seed.to_le_bytes());
    key_seed[8..16].copy_from_slice(&(i as u64).to_le_bytes());
    NodeKey::from_seed(key_seed)
}

/// One running node. Its switch runs on the testnet's runtime, or (netns mode) on a thread
/// of its own inside its namespace; either way the rest of the testnet sees it through the
/// switch's handle.
pub(super) struct Node {
    pub(super) switch: SwitchHandle,
    pub(super) gossip: Arc<GossipReactor>,
    pub(super) book: SharedAddrBook,
    runner: Runner,
}

/// Where a node's switch runs.
enum Runner {
    /// On the caller's runtime.
    Local(Switch<TcpTransport>),
    /// On its own thread (netns mode): told to stop by `stop`, says it is done on `done`.
    Thread {
        stop: Option<oneshot::Sender<()>>,
        done: oneshot::Receiver<()>,
    },
}

impl Node {
    /// Stops the switch (and its thread) and waits for it.
    async fn stop(self) {
        match self.runner {
            Runner::Local(switch) => switch.stop().await,
            Runner::Thread { mut stop, done } => {
                if let Some(tx) = stop.take() {
                    let _ = tx.send(());
                }
                let _ = done.await;
            }
        }
    }
}

/// How a node is run: where its switch lives.
#[derive(Clone, Debug)]
pub(super) enum Spawn {
    /// On the caller's runtime (loopback mode).
    Here,
    /// On a new OS thread that first enters the network namespace at this path (`setns`),
    /// then runs a current-thread runtime for the switch, so every socket is in it.
    InNamespace(PathBuf),
}

/// Everything needed to build node `i`, owned, so a node thread can take it.
#[derive(Clone, Debug)]
struct NodeSpec {
    i: usize,
    cfg: TestnetConfig,
    dir: PathBuf,
    epoch: Instant,
    addr: SocketAddr,
    seed: NetAddress,
    /// Netns mode: every node has its own IP, so the duplicate-IP filter stays on and the
    /// address book keeps its per-IP limit.
    own_ip: bool,
}

/// What a built node hands back: its switch (not started) and the shared parts.
type Built = (
    Switch<TcpTransport>,
    Arc<GossipReactor>,
    SharedAddrBook,
    Arc<Registry>,
);

fn build(spec: &NodeSpec) -> Result<Built, TestnetError> {
    let cfg = &spec.cfg;
    let i = spec.i;
    let n = cfg.nodes;
    let key = node_key(cfg.seed, i);
    let mut info = NodeInfo::new(key.node_id(), &cfg.network, format!("tcp://{}", spec.addr));
    info.moniker = format!("node-{i}");
    let mut config = SwitchConfig::default();
    config
        .listen_addr(Some(spec.addr))
        .allow_duplicate_ip(!spec.own_ip)
        .max_num_outbound_peers(cfg.outbound_target)
        .max_num_inbound_peers(n + cfg.go_nodes)
        .rng_seed(Some(cfg.seed.wrapping_add(i as u64)));
    let mut mconn = MConnConfig::default();
    mconn.send_rate(cfg.send_rate).recv_rate(cfg.recv_rate);
    if let Scenario::Partition(p) = &cfg.scenario {
        // A split stalls connections without resetting them: the pings notice.
        mconn
            .ping_interval(p.ping_interval)
            .pong_timeout(p.pong_timeout);
    }
    config.transport().mconn(mconn);

    // The address book: kept in the node's home, loaded again on a restart. On loopback
    // everyone shares 127.0.0.1, so no per-IP limit; no routability rule either way (the
    // addresses are loopback or private).
    let dir = &spec.dir;
    std::fs::create_dir_all(dir).map_err(|source| TestnetError::Io {
        what: format!("creating {}", dir.display()),
        source,
    })?;
    let mut book_config = AddrBookConfig::default();
    book_config.routability_strict(false);
    if !spec.own_ip {
        book_config.max_addrs_per_ip(n + cfg.go_nodes);
    }
    let mut book = AddrBook::with_seed(
        book_config,
        cfg.seed.rotate_left(17) ^ i as u64,
        Arc::new(SystemClock),
    );
    book.load_file(dir.join("addrbook.json"))
        .map_err(|source| TestnetError::AddrBook { node: i, source })?;

    let mut pex = p2p_pex::Config::default();
    pex.rng_seed(Some(cfg.seed.rotate_left(31) ^ i as u64));
    short_periods(pex.pex(), cfg.pex_period)
        .max_num_outbound_peers(cfg.outbound_target)
        .ban_time(cfg.ban_time);
    if i == 0 {
        pex.pex().seed_mode(true);
    } else {
        pex.pex().seeds([spec.seed]);
    }
    let pex = p2p_pex::Reactor::new(pex, book);
    let shared = pex.address_book();

    let mut registry = Registry::default();
    let metrics = Metrics::new(&mut registry, "cometbft", true);
    let gossip = Arc::new(GossipReactor::new(spec.epoch));
    let mut builder = SwitchBuilder::new(key, info, config);
    builder
        .add_reactor("pex", pex)
        .map_err(|source| TestnetError::Switch { node: i, source })?;
    builder
        .add_reactor_arc("gossip", Arc::clone(&gossip))
        .map_err(|source| TestnetError::Switch { node: i, source })?;
    builder
        .address_book(Arc::new(shared.clone()))
        .metrics(metrics);
    let switch = builder
        .build_tcp()
        .map_err(|source| TestnetError::Switch { node: i, source })?;
    Ok((switch, gossip, shared, Arc::new(registry)))
}

/// Builds and starts node `spec.i` as `how` says.
async fn launch(spec: NodeSpec, how: &Spawn) -> Result<(Node, Arc<Registry>), TestnetError> {
    let i = spec.i;
    match how {
        Spawn::Here => {
            let (switch, gossip, book, registry) = build(&spec)?;
            switch
                .start()
                .await
                .map_err(|source| TestnetError::Switch { node: i, source })?;
            let node = Node {
                switch: switch.handle(),
                gossip,
                book,
                runner: Runner::Local(switch),
            };
            Ok((node, registry))
        }
        Spawn::InNamespace(path) => {
            let path = path.clone();
            let (ready_tx, ready_rx) = oneshot::channel();
            let (stop_tx, stop_rx) = oneshot::channel::<()>();
            let (done_tx, done_rx) = oneshot::channel::<()>();
            std::thread::Builder::new()
                .name(format!("testnet-node-{i}"))
                .spawn(move || node_thread(spec, &path, ready_tx, stop_rx, done_tx))
                .map_err(|source| TestnetError::Io {
                    what: format!("node {i}: starting its thread"),
                    source,
                })?;
            let (handle, gossip, book, registry) =
                ready_rx.await.map_err(|_| TestnetError::Config {
                    reason: format!("node {i}: its thread ended before starting the switch"),
                })??;
            let node = Node {
                switch: handle,
                gossip,
                book,
                runner: Runner::Thread {
                    stop: Some(stop_tx),
                    done: done_rx,
                },
            };
            Ok((node, registry))
        }
    }
}

/// What a node thread reports once its switch runs.
type Ready = Result<
    (
        SwitchHandle,
        Arc<GossipReactor>,
        SharedAddrBook,
        Arc<Registry>,
    ),
    TestnetError,
>;

/// A netns node's thread: enters the namespace, then builds, starts and runs the switch on a
/// current-thread runtime until told to stop (or the testnet is dropped).
fn node_thread(
    spec: NodeSpec,
    ns: &Path,
    ready: oneshot::Sender<Ready>,
    stop: oneshot::Receiver<()>,
    done: oneshot::Sender<()>,
) {
    let i = spec.i;
    if let Err(e) = super::netns::enter(ns) {
        let _ = ready.send(Err(e.into()));
        return;
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(source) => {
            let _ = ready.send(Err(TestnetError::Io {
                what: format!("node {i}: its runtime"),
                source,
            }));
            return;
        }
    };
    rt.block_on(async move {
        let (switch, gossip, book, registry) = match build(&spec) {
            Ok(b) => b,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        if let Err(source) = switch.start().await {
            let _ = ready.send(Err(TestnetError::Switch { node: i, source }));
            return;
        }
        if ready
            .send(Ok((switch.handle(), gossip, book, registry)))
            .is_ok()
        {
            // A stop, or the sender dropped with the testnet: stop either way.
            let _ = stop.await;
        }
        switch.stop().await;
    });
    drop(rt);
    let _ = done.send(());
}

/// The testnet's home: a temporary directory removed at the end, or one kept.
#[derive(Debug)]
enum Home {
    Temp(tempfile::TempDir),
    Kept(PathBuf),
}

impl Home {
    fn path(&self) -> &Path {
        match self {
            Self::Temp(t) => t.path(),
            Self::Kept(p) => p,
        }
    }
}

/// The metrics registries of every node, as the metrics endpoint reads them (a restarted node
/// gets a fresh registry).
pub(super) type Registries = Arc<RwLock<Vec<Arc<Registry>>>>;

/// A running testnet: node 0 the seed (seed mode), nodes 1.. knowing only the seed.
///
/// [`run`](super::run) drives one through discovery and gossip; tests can drive one
/// themselves (stop and restart nodes, look at peers and address books).
pub struct Testnet {
    config: TestnetConfig,
    home: Home,
    epoch: Instant,
    listen: Vec<SocketAddr>,
    ids: Vec<NodeId>,
    nodes: Vec<Option<Node>>,
    registries: Registries,
    /// Netns mode's network; last, so that it is deleted after the nodes are dropped.
    netns: Option<Netns>,
}

impl std::fmt::Debug for Testnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Testnet")
            .field("nodes", &self.nodes.len())
            .field("home", &self.home.path())
            .finish_non_exhaustive()
    }
}

/// Ports for `n` nodes: `base, base + 1, ...`, or (base 0) free ports picked by the system.
fn pick_ports(n: usize, base: u16) -> Result<Vec<u16>, TestnetError> {
    if base != 0 {
        return (0..n)
            .map(|i| {
                u16::try_from(i)
                    .ok()
                    .and_then(|i| base.checked_add(i))
                    .ok_or_else(|| TestnetError::Config {
                        reason: format!("base port {base} + {n} nodes passes 65535"),
                    })
            })
            .collect();
    }
    // Hold every listener until all are picked, so no port is handed out twice.
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        let l =
            std::net::TcpListener::bind(("127.0.0.1", 0)).map_err(|source| TestnetError::Io {
                what: "picking a free port".to_owned(),
                source,
            })?;
        held.push(l);
    }
    held.iter()
        .map(|l| {
            l.local_addr()
                .map(|a| a.port())
                .map_err(|source| TestnetError::Io {
                    what: "picking a free port".to_owned(),
                    source,
                })
        })
        .collect()
}

impl Testnet {
    /// Builds and starts every node (the seed first); returns at once, before discovery.
    pub async fn start(config: &TestnetConfig) -> Result<Self, TestnetError> {
        config.check()?;
        let n = config.nodes;
        let home = match &config.home {
            Some(dir) => Home::Kept(dir.clone()),
            None => Home::Temp(
                tempfile::Builder::new()
                    .prefix("p2p-testnet-")
                    .tempdir()
                    .map_err(|source| TestnetError::Io {
                        what: "creating the temporary home".to_owned(),
                        source,
                    })?,
            ),
        };
        // Netns mode: every node on its own address, all on one port (the reference's
        // 26656 unless given); otherwise everyone on 127.0.0.1, each on its own port.
        let (netns, listen) = match &config.netns {
            Some(options) => {
                let netns = Netns::create(n, options)?;
                let port = match config.base_port {
                    0 => NETNS_PORT,
                    p => p,
                };
                let listen = (0..n)
                    .map(|i| SocketAddr::from((netns.ip(i), port)))
                    .collect();
                (Some(netns), listen)
            }
            None => {
                let ports = pick_ports(n, config.base_port)?;
                let listen = ports
                    .into_iter()
                    .map(|p| SocketAddr::from(([127, 0, 0, 1], p)))
                    .collect();
                (None, listen)
            }
        };
        let ids = (0..n).map(|i| node_key(config.seed, i).node_id()).collect();
        let mut net = Self {
            config: config.clone(),
            home,
            epoch: Instant::now(),
            listen,
            ids,
            nodes: Vec::with_capacity(n),
            registries: Arc::new(RwLock::new(Vec::with_capacity(n))),
            netns,
        };
        for i in 0..n {
            let (node, registry) = launch(net.spec(i), &net.spawn(i)).await?;
            net.nodes.push(Some(node));
            net.registries
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .push(registry);
        }
        Ok(net)
    }

    /// What node `i` is built from.
    fn spec(&self, i: usize) -> NodeSpec {
        NodeSpec {
            i,
            cfg: self.config.clone(),
            dir: node_config_dir(self.home.path(), i),
            epoch: self.epoch,
            addr: self.listen_addr(i),
            seed: self.addr(0),
            own_ip: self.netns.is_some(),
        }
    }

    /// How node `i` is run: in its namespace (netns mode) or here.
    fn spawn(&self, i: usize) -> Spawn {
        match &self.netns {
            Some(netns) => Spawn::InNamespace(netns.namespace_path(i)),
            None => Spawn::Here,
        }
    }

    fn listen_addr(&self, i: usize) -> SocketAddr {
        self.listen
            .get(i)
            .copied()
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Netns mode's network (`None` on loopback).
    pub fn netns(&self) -> Option<&Netns> {
        self.netns.as_ref()
    }

    /// Netns mode: splits the network, the nodes in `second` on one side, the others on the
    /// other (see [`Netns::partition`]).
    pub fn partition(&mut self, second: &[usize]) -> Result<(), TestnetError> {
        match &mut self.netns {
            Some(netns) => Ok(netns.partition(second)?),
            None => Err(TestnetError::Config {
                reason: "a partition needs netns mode".to_owned(),
            }),
        }
    }

    /// Netns mode: ends a [`partition`](Self::partition).
    pub fn heal(&mut self) -> Result<(), TestnetError> {
        match &mut self.netns {
            Some(netns) => Ok(netns.heal()?),
            None => Err(TestnetError::Config {
                reason: "a partition needs netns mode".to_owned(),
            }),
        }
    }

    /// Number of nodes, the seed included.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether there are no nodes (never, once started).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The configuration.
    pub fn config(&self) -> &TestnetConfig {
        &self.config
    }

    /// The directory holding the nodes' homes (`node-<i>/config/addrbook.json`).
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// When the testnet started (gossip timestamps count from here).
    pub fn epoch(&self) -> Instant {
        self.epoch
    }

    /// Node `i`'s address, `id@127.0.0.1:port` (netns mode: `id@<its IP>:port`).
    pub fn addr(&self, i: usize) -> NetAddress {
        let id = self.ids.get(i).copied().unwrap_or(NodeId::new([0; 20]));
        NetAddress::new(id, self.listen_addr(i))
    }

    /// The node IDs, by index.
    pub fn ids(&self) -> &[NodeId] {
        &self.ids
    }

    /// The outbound peers every node but the seed aims for: the configured target, capped at
    /// `nodes - 2` (the other nodes; the seed hangs up once it has answered).
    pub fn target(&self) -> usize {
        self.config.target()
    }

    /// Node `i`'s peers, leaving out the seed: (outbound, all). `None` if it is stopped.
    pub fn peers(&self, i: usize) -> Option<(usize, usize)> {
        let node = self.node(i)?;
        let seed = self.ids.first().copied();
        let mut out = 0;
        let mut all = 0;
        for p in node.switch.peers() {
            if Some(p.id()) == seed {
                continue;
            }
            all += 1;
            if p.is_outbound() {
                out += 1;
            }
        }
        Some((out, all))
    }

    /// Whether node `i` reached its outbound target: [`target`](Self::target) outbound peers,
    /// or connections to every other node (nobody left to dial). The seed has no target and
    /// counts as converged while running.
    pub fn is_converged(&self, i: usize) -> bool {
        if i == 0 {
            return self.node(0).is_some();
        }
        // Everyone but itself and the seed, the Go nodes included (they count in `peers`).
        let others = (self.len() + self.config.go_nodes).saturating_sub(2);
        self.peers(i)
            .is_some_and(|(out, all)| out >= self.target() || all >= others)
    }

    /// How many nodes, the seed left out, reached their outbound target.
    pub fn converged_nodes(&self) -> usize {
        (1..self.len()).filter(|&i| self.is_converged(i)).count()
    }

    /// Whether every node reached its outbound target.
    pub fn is_fully_converged(&self) -> bool {
        (0..self.len()).all(|i| self.is_converged(i))
    }

    /// Addresses in node `i`'s address book (`None` if it is stopped).
    pub fn addrbook_len(&self, i: usize) -> Option<usize> {
        self.node(i).map(|n| n.book.lock().len())
    }

    /// Node `i`'s metrics in the Prometheus text format (`None` if it is stopped).
    pub fn metrics_text(&self, i: usize) -> Option<String> {
        self.node(i)?;
        let regs = self
            .registries
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        regs.get(i).map(|r| p2p_switch::metrics::render(r))
    }

    /// Serves node `i`'s switch metrics at `http://127.0.0.1:<port + i>/metrics` (port 0:
    /// free ports, see [`MetricsServer::addrs`]) until the server is dropped. A restarted
    /// node's fresh metrics are served from then on.
    pub async fn serve_metrics(&self, port: u16) -> Result<MetricsServer, TestnetError> {
        super::metrics::start(port, self.len(), Arc::clone(&self.registries)).await
    }

    pub(super) fn node(&self, i: usize) -> Option<&Node> {
        self.nodes.get(i).and_then(Option::as_ref)
    }

    pub(super) fn running(&self) -> impl Iterator<Item = (usize, &Node)> {
        self.nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| n.as_ref().map(|n| (i, n)))
    }

    /// Stops node `i` (its switch stops, the PEX saves its address book). Its gossip counts
    /// are dropped with it.
    pub async fn stop_node(&mut self, i: usize) {
        if let Some(node) = self.nodes.get_mut(i).and_then(Option::take) {
            node.stop().await;
        }
    }

    /// Starts node `i` again (stopping it first if it runs): the same key, port and home, so
    /// its address book is loaded from its file. Returns how many addresses it loaded.
    pub async fn restart_node(&mut self, i: usize) -> Result<usize, TestnetError> {
        if i >= self.len() {
            return Err(TestnetError::Config {
                reason: format!("no node {i}"),
            });
        }
        self.stop_node(i).await;
        let (node, registry) = launch(self.spec(i), &self.spawn(i)).await?;
        let loaded = node.book.lock().len();
        if let Some(slot) = self
            .registries
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(i)
        {
            *slot = registry;
        }
        if let Some(slot) = self.nodes.get_mut(i) {
            *slot = Some(node);
        }
        Ok(loaded)
    }

    /// Stops every node.
    pub async fn stop(mut self) {
        for i in 0..self.nodes.len() {
            self.stop_node(i).await;
        }
    }
}
