//! The nodes of a testnet: each a switch over loopback TCP with the PEX reactor (the seed in
//! seed mode) and the gossip reactor, its address book in its own home directory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use p2p_mconn::MConnConfig;
use p2p_pex::{AddrBook, AddrBookConfig, PexConfig, SharedAddrBook, SystemClock};
use p2p_switch::metrics::Metrics;
use p2p_switch::{Switch, SwitchBuilder, SwitchConfig};
use p2p_transport::TcpTransport;
use p2p_types::{NetAddress, NodeId, NodeInfo, NodeKey};
use prometheus_client::registry::Registry;
use tokio::time::Instant;

use super::{GossipReactor, MetricsServer, TestnetConfig, TestnetError};

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

/// One running node.
pub(super) struct Node {
    pub(super) switch: Switch<TcpTransport>,
    pub(super) gossip: Arc<GossipReactor>,
    pub(super) book: SharedAddrBook,
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
    ports: Vec<u16>,
    ids: Vec<NodeId>,
    nodes: Vec<Option<Node>>,
    registries: Registries,
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
        let ports = pick_ports(n, config.base_port)?;
        let ids = (0..n).map(|i| node_key(config.seed, i).node_id()).collect();
        let mut net = Self {
            config: config.clone(),
            home,
            epoch: Instant::now(),
            ports,
            ids,
            nodes: Vec::with_capacity(n),
            registries: Arc::new(RwLock::new(Vec::with_capacity(n))),
        };
        for i in 0..n {
            let (node, registry) = net.build(i)?;
            node.switch
                .start()
                .await
                .map_err(|source| TestnetError::Switch { node: i, source })?;
            net.nodes.push(Some(node));
            net.registries
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .push(registry);
        }
        Ok(net)
    }

    fn build(&self, i: usize) -> Result<(Node, Arc<Registry>), TestnetError> {
        let cfg = &self.config;
        let n = cfg.nodes;
        let key = node_key(cfg.seed, i);
        let port = self.ports.get(i).copied().unwrap_or(0);
        let mut info = NodeInfo::new(
            key.node_id(),
            &cfg.network,
            format!("tcp://127.0.0.1:{port}"),
        );
        info.moniker = format!("node-{i}");
        let mut config = SwitchConfig::default();
        config
            .listen_addr(Some(SocketAddr::from(([127, 0, 0, 1], port))))
            .allow_duplicate_ip(true)
            .max_num_outbound_peers(cfg.outbound_target)
            .max_num_inbound_peers(n + cfg.go_nodes)
            .rng_seed(Some(cfg.seed.wrapping_add(i as u64)));
        let mut mconn = MConnConfig::default();
        mconn.send_rate(cfg.send_rate).recv_rate(cfg.recv_rate);
        config.transport().mconn(mconn);

        // The address book: everyone shares 127.0.0.1, so no per-IP limit and no
        // routability rule; kept in the node's home, loaded again on a restart.
        let dir = node_config_dir(self.home.path(), i);
        std::fs::create_dir_all(&dir).map_err(|source| TestnetError::Io {
            what: format!("creating {}", dir.display()),
            source,
        })?;
        let mut book_config = AddrBookConfig::default();
        book_config
            .routability_strict(false)
            .max_addrs_per_ip(n + cfg.go_nodes);
        let mut book = AddrBook::with_seed(
            book_config,
            cfg.seed.rotate_left(17) ^ i as u64,
            Arc::new(SystemClock),
        );
        book.load_file(dir.join("addrbook.json"))
            .map_err(|source| TestnetError::AddrBook { node: i, source })?;

        let mut pex = p2p_pex::Config::default();
        pex.rng_seed(Some(cfg.seed.rotate_left(31) ^ i as u64));
        short_periods(pex.pex(), cfg.pex_period).max_num_outbound_peers(cfg.outbound_target);
        if i == 0 {
            pex.pex().seed_mode(true);
        } else {
            pex.pex().seeds([self.addr(0)]);
        }
        let pex = p2p_pex::Reactor::new(pex, book);
        let shared = pex.address_book();

        let mut registry = Registry::default();
        let metrics = Metrics::new(&mut registry, "cometbft", true);
        let gossip = Arc::new(GossipReactor::new(self.epoch));
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
        Ok((
            Node {
                switch,
                gossip,
                book: shared,
            },
            Arc::new(registry),
        ))
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

    /// Node `i`'s address, `id@127.0.0.1:port`.
    pub fn addr(&self, i: usize) -> NetAddress {
        let id = self.ids.get(i).copied().unwrap_or(NodeId::new([0; 20]));
        let port = self.ports.get(i).copied().unwrap_or(0);
        NetAddress::new(id, SocketAddr::from(([127, 0, 0, 1], port)))
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
            node.switch.stop().await;
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
        let (node, registry) = self.build(i)?;
        let loaded = node.book.lock().len();
        node.switch
            .start()
            .await
            .map_err(|source| TestnetError::Switch { node: i, source })?;
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
