//! Deterministic simulation: a [`MemoryNetwork`] on tokio's paused clock where one seed fixes
//! everything, so that the same seed gives the same [`Trace`].
//!
//! # What is controlled, and how
//!
//! - **Time**: the [`Sim`] owns a current-thread tokio runtime whose clock is paused from the
//!   start. Nothing waits on the OS clock; when every task is idle, tokio jumps to the next
//!   timer. Timestamps in the trace are virtual.
//! - **Scheduling**: one thread, and tokio's current-thread scheduler runs ready tasks in the
//!   order they were woken (it draws no random numbers). Every wake-up comes from this thread,
//!   so the order is a function of the program and the seed.
//! - **Node keys**: each node's key is derived from the seed and the node's number.
//! - **Ephemeral keys**: each node (and each restart of it) gets a seeded
//!   `p2p_secretconn::KeySource` through its transport's `p2p_secretconn::Config`, so every
//!   handshake, and so every byte on the pipes, is the same from run to run.
//! - **Jitter** and any other random choice of the network: drawn under the seed, one stream
//!   per connection and direction.
//! - **Randomness in the layers above**: [`NodeCtx::seed_for`] gives every layer its own seed
//!   (for example the switch's `rng_seed`, the PEX core's and the address book's).
//! - **Wall-clock time**: an address book keeps wall-clock timestamps; give it
//!   [`NodeCtx::wall_clock`], a [`SimClock`] that follows virtual time from a fixed start.
//! - **Hash maps**: the network keeps its tables in `BTreeMap`s; nothing that orders events
//!   iterates a randomly keyed `HashMap`.
//! - **tokio's own randomness**: `tokio::select!` without `biased;` starts polling at a
//!   random branch, and `tokio::sync::watch` spreads its waiters over randomly chosen lists
//!   (so several tasks waiting on one watch wake in a random order). Both draw from a
//!   per-runtime generator that only `tokio_unstable` builds can seed (`Builder::rng_seed`,
//!   which [`Sim`] sets when built with `--cfg tokio_unstable`). The current-thread scheduler
//!   itself draws nothing. In ordinary builds the choices stay random; the unbiased selects
//!   of this workspace choose between branches whose order does not change what happens
//!   next (a wake-up against a timer, a finished loop against a stop), and the determinism
//!   tests, which run in ordinary builds with a fresh generator per run, find no run that
//!   differs. Code of your own that selects between branches with effects should say
//!   `biased;`.
//! - **Threads**: nothing may run off the runtime's thread. `spawn_blocking` (the switch uses
//!   it to resolve host names) finishes at a wall-clock moment; simulated nodes dial IP
//!   addresses only.
//!
//! # Using it
//!
//! Add nodes with a factory: an async function of a [`NodeCtx`] (the node's key, address,
//! directory, seeds), spawned as the node's main task. [`Sim::crash`] aborts that task and
//! crashes the host (its connections reset, its listeners and transports gone);
//! [`Sim::restart`] calls the factory again with the same key, address and directory (files
//! written there, such as an address book, survive). Tasks the node's code spawned itself
//! (connection tasks, say) are not aborted, but a crashed host's transports are cut off from
//! the network, so they cannot talk to anyone. [`Sim::perturb`] applies the end-to-end
//! tests' [`Perturbation`]s (disconnect, kill, pause, restart) to a node.
//!
//! ```
//! use std::time::Duration;
//! use p2p_mconn::{ChannelDescriptor, MConnConfig};
//! use p2p_testkit::sim::Sim;
//! use p2p_transport::{Transport, TransportConfig};
//!
//! fn run(seed: u64) -> p2p_testkit::trace::TraceHash {
//!     let mut sim = Sim::new(seed).unwrap();
//!     let mut config = TransportConfig::default();
//!     config.channels([ChannelDescriptor::new(0x01, 1)]);
//!     let c = config.clone();
//!     let server = sim.node("server", move |ctx| {
//!         let config = c.clone();
//!         async move {
//!             let mut info = ctx.node_info("sim-chain");
//!             info.channels = vec![0x01];
//!             let t = ctx.transport(info, config).unwrap();
//!             t.listen(ctx.listen_addr()).await.unwrap();
//!             while let Ok(mut conn) = t.accept().await {
//!                 let mut rx = conn.take_receivers();
//!                 let trace = ctx.trace().clone();
//!                 let name = ctx.name().to_string();
//!                 tokio::spawn(async move {
//!                     let from = conn.node_id();
//!                     if let Some(ch) = rx.get_mut(0x01) {
//!                         while let Some(msg) = ch.recv().await {
//!                             trace.message(&name, from, 0x01, &msg);
//!                         }
//!                     }
//!                 });
//!             }
//!         }
//!     }).unwrap();
//!     let to = sim.addr(server);
//!     sim.node("client", move |ctx| {
//!         let (config, to) = (config.clone(), to.clone());
//!         async move {
//!             let mut info = ctx.node_info("sim-chain");
//!             info.channels = vec![0x01];
//!             let t = ctx.transport(info, config).unwrap();
//!             let conn = t.dial(&to).await.unwrap();
//!             conn.mconn().send(0x01, &b"hello"[..]).await.unwrap();
//!             std::future::pending::<()>().await;
//!         }
//!     }).unwrap();
//!     sim.run_for(Duration::from_secs(5));
//!     sim.trace_hash()
//! }
//!
//! assert_eq!(run(1), run(1));
//! assert_ne!(run(1), run(2));
//! ```

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use p2p_secretconn::KeySource;
use p2p_transport::TransportConfig;
use p2p_types::{NetAddress, NodeId, NodeInfo, NodeKey};
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

use crate::Error;
use crate::memory::{MemoryNetwork, MemoryTransport};
use crate::trace::{Trace, TraceHash};

/// The port every simulated node listens on (the reference's default P2P port).
pub const NODE_PORT: u16 = 26656;

type NodeFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;
type Factory = Box<dyn FnMut(NodeCtx) -> NodeFuture>;

/// A node of a [`Sim`]: its number, in order of [`Sim::node`] calls from 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Node(usize);

impl Node {
    /// The node's number.
    pub fn index(self) -> usize {
        self.0
    }
}

struct Slot {
    name: String,
    ip: IpAddr,
    key: NodeKey,
    dir: PathBuf,
    factory: Factory,
    task: Option<JoinHandle<()>>,
    incarnation: u64,
}

enum RootDir {
    Temp(tempfile::TempDir),
    Kept(PathBuf),
}

impl RootDir {
    fn path(&self) -> &Path {
        match self {
            Self::Temp(d) => d.path(),
            Self::Kept(p) => p,
        }
    }
}

/// A deterministic simulated network (see the [module docs](self)).
///
/// Methods taking a [`Node`] panic if it belongs to another `Sim`.
pub struct Sim {
    seed: u64,
    runtime: Runtime,
    net: MemoryNetwork,
    trace: Trace,
    root: RootDir,
    nodes: Vec<Slot>,
    wall_start: std::time::Instant,
}

impl fmt::Debug for Sim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sim")
            .field("seed", &self.seed)
            .field("nodes", &self.nodes.len())
            .field("trace", &self.trace)
            .finish_non_exhaustive()
    }
}

impl Sim {
    /// A simulation with no nodes, its clock at zero, its files in a fresh temporary directory
    /// (removed when the `Sim` is dropped).
    pub fn new(seed: u64) -> Result<Self, Error> {
        Self::build(seed, None)
    }

    /// Like [`new`](Self::new) with the nodes' directories under `root` (kept afterwards).
    pub fn with_root(seed: u64, root: &Path) -> Result<Self, Error> {
        Self::build(seed, Some(root))
    }

    // `tokio_unstable` is tokio's own cfg, set by whoever builds with it.
    #[allow(unexpected_cfgs)]
    fn build(seed: u64, root: Option<&Path>) -> Result<Self, Error> {
        let mut builder = tokio::runtime::Builder::new_current_thread();
        builder.enable_time().start_paused(true);
        #[cfg(tokio_unstable)]
        builder.rng_seed(tokio::runtime::RngSeed::from_bytes(&crate::derive::bytes(
            seed,
            "tokio",
            &[],
        )));
        let runtime = builder.build().map_err(|e| Error::Runtime {
            source: Arc::new(e),
        })?;
        let root = match root {
            Some(root) => std::fs::create_dir_all(root)
                .map(|()| RootDir::Kept(root.to_path_buf()))
                .map_err(|e| (root.to_path_buf(), e)),
            None => tempfile::Builder::new()
                .prefix("p2p-sim-")
                .tempdir()
                .map(RootDir::Temp)
                .map_err(|e| (std::env::temp_dir(), e)),
        }
        .map_err(|(path, e)| Error::Dir {
            path,
            source: Arc::new(e),
        })?;
        let (net, trace) = {
            let _enter = runtime.enter();
            let net = MemoryNetwork::with_seed(seed);
            let trace = Trace::new();
            net.set_trace(trace.clone());
            (net, trace)
        };
        Ok(Self {
            seed,
            runtime,
            net,
            trace,
            root,
            nodes: Vec::new(),
            wall_start: std::time::Instant::now(),
        })
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The network, for faults ([`MemoryNetwork::link`], [`MemoryNetwork::partition`], ...).
    pub fn net(&self) -> &MemoryNetwork {
        &self.net
    }

    /// The trace everything is recorded into.
    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    /// The hash of the trace so far.
    pub fn trace_hash(&self) -> TraceHash {
        self.trace.hash()
    }

    /// The directory holding the nodes' directories.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// Adds a node called `name` (ASCII letters, digits, `-`, `_`; unique) on the next host
    /// address, with a key derived from the seed and a directory `root()/name`, and starts
    /// its main task: `factory(ctx)`. The factory is called again on every
    /// [`restart`](Self::restart).
    pub fn node<F, Fut>(&mut self, name: &str, factory: F) -> Result<Node, Error>
    where
        F: FnMut(NodeCtx) -> Fut + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let bad = |reason| Error::NodeName {
            name: name.to_string(),
            reason,
        };
        if name.is_empty() {
            return Err(bad("empty"));
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(bad("only ASCII letters, digits, '-' and '_' are allowed"));
        }
        if self.nodes.iter().any(|n| n.name == name) {
            return Err(bad("another node has it"));
        }
        let index = self.nodes.len();
        let dir = self.root.path().join(name);
        std::fs::create_dir_all(&dir).map_err(|e| Error::Dir {
            path: dir.clone(),
            source: Arc::new(e),
        })?;
        let key = NodeKey::from_seed(crate::derive::bytes(self.seed, "node-key", &[index as u64]));
        let mut factory = factory;
        self.nodes.push(Slot {
            name: name.to_string(),
            ip: self.net.next_ip(),
            key,
            dir,
            factory: Box::new(move |ctx| Box::pin(factory(ctx))),
            task: None,
            incarnation: 0,
        });
        let node = Node(index);
        self.start(node);
        Ok(node)
    }

    fn slot(&self, node: Node) -> &Slot {
        // Nodes are only made by `node`, which pushes their slot.
        &self.nodes[node.0]
    }

    fn start(&mut self, node: Node) {
        let ctx = self.ctx(node);
        let slot = &mut self.nodes[node.0];
        let fut = (slot.factory)(ctx);
        let _enter = self.runtime.enter();
        slot.task = Some(tokio::spawn(fut));
    }

    /// What the node's factory gets in its current incarnation (for driving a node from the
    /// test itself, inside [`block_on`](Self::block_on)).
    pub fn ctx(&self, node: Node) -> NodeCtx {
        let slot = self.slot(node);
        NodeCtx {
            node,
            name: slot.name.clone(),
            ip: slot.ip,
            key: slot.key.clone(),
            dir: slot.dir.clone(),
            incarnation: slot.incarnation,
            seed: self.seed,
            net: self.net.clone(),
            trace: self.trace.clone(),
        }
    }

    /// The nodes, in order.
    pub fn nodes(&self) -> impl Iterator<Item = Node> + '_ {
        (0..self.nodes.len()).map(Node)
    }

    /// A node's name.
    pub fn name(&self, node: Node) -> &str {
        &self.slot(node).name
    }

    /// A node's host address.
    pub fn ip(&self, node: Node) -> IpAddr {
        self.slot(node).ip
    }

    /// A node's key.
    pub fn key(&self, node: Node) -> &NodeKey {
        &self.slot(node).key
    }

    /// A node's ID.
    pub fn node_id(&self, node: Node) -> NodeId {
        self.slot(node).key.node_id()
    }

    /// Where a node listens if it follows the convention of [`NodeCtx::listen_addr`]:
    /// `id@ip:26656`.
    pub fn addr(&self, node: Node) -> NetAddress {
        NetAddress::new(
            self.node_id(node),
            SocketAddr::new(self.ip(node), NODE_PORT),
        )
    }

    /// A node's directory.
    pub fn dir(&self, node: Node) -> &Path {
        &self.slot(node).dir
    }

    /// Whether a node's main task is running (not crashed, not finished).
    pub fn is_running(&self, node: Node) -> bool {
        self.slot(node)
            .task
            .as_ref()
            .is_some_and(|t| !t.is_finished())
    }

    /// Runs the simulation for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        // Made inside the runtime: a sleep needs its timer.
        self.runtime
            .block_on(async move { tokio::time::sleep(d).await });
    }

    /// Runs the simulation until `fut` completes, returning its output.
    pub fn block_on<F: Future>(&mut self, fut: F) -> F::Output {
        self.runtime.block_on(fut)
    }

    /// Runs the simulation until `cond` holds, checking every `step` of virtual time, for at
    /// most `limit`. Returns whether it held.
    pub fn run_until(
        &mut self,
        step: Duration,
        limit: Duration,
        mut cond: impl FnMut() -> bool,
    ) -> bool {
        let step = step.max(Duration::from_millis(1));
        let end = self.now() + limit;
        loop {
            if cond() {
                return true;
            }
            if self.now() >= end {
                return false;
            }
            self.run_for(step);
        }
    }

    /// Spawns a task on the simulation's runtime (it runs when the simulation does).
    pub fn spawn<F>(&self, fut: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.runtime.spawn(fut)
    }

    /// Crashes a node: aborts its main task (dropping what it owned), and crashes its host
    /// (see [`MemoryNetwork::crash_host`]). Its directory stays.
    pub fn crash(&mut self, node: Node) {
        let ip = self.ip(node);
        self.net.crash_host(ip);
        if let Some(task) = self.nodes[node.0].task.take() {
            task.abort();
            // Let the abort take effect (the task's future is dropped) before going on.
            let _ = self.runtime.block_on(task);
        }
    }

    /// Starts a crashed (or finished) node again: the factory is called with the same key,
    /// address and directory and the next incarnation number. A running node is crashed
    /// first.
    pub fn restart(&mut self, node: Node) {
        if self.is_running(node) {
            self.crash(node);
        }
        self.nodes[node.0].incarnation += 1;
        self.trace.record(crate::trace::Event::Fault {
            what: format!("restart {}", self.name(node)),
        });
        self.start(node);
    }

    /// Applies one of CometBFT's end-to-end perturbations to `node` and runs the simulation
    /// through it (see [`Perturbation`]); returns when the node is back, with the simulation
    /// left running from there.
    pub fn perturb(&mut self, node: Node, perturbation: Perturbation) {
        let ip = self.ip(node);
        match perturbation {
            Perturbation::Disconnect => {
                self.net.reset_connections(ip);
            }
            Perturbation::Kill { down } => {
                self.crash(node);
                self.run_for(down);
                self.restart(node);
            }
            Perturbation::Pause { length } => {
                let others: Vec<IpAddr> = (0..self.nodes.len())
                    .filter(|&i| i != node.0)
                    .map(|i| self.nodes[i].ip)
                    .collect();
                self.net.partition(&[ip], &others);
                self.run_for(length);
                self.net.unpartition(&[ip], &others);
            }
            Perturbation::Restart => self.restart(node),
        }
    }

    /// Virtual time since the simulation started.
    pub fn now(&self) -> Duration {
        self.trace.elapsed()
    }

    /// Wall-clock time since the simulation was made (for reports only; nothing in the
    /// simulation depends on it).
    pub fn wall_elapsed(&self) -> Duration {
        self.wall_start.elapsed()
    }
}

/// The perturbations of CometBFT's end-to-end tests, for [`Sim::perturb`], on a simulated
/// node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Perturbation {
    /// Every connection of the node is reset at once (both ends see `ConnectionReset`); the
    /// node keeps running.
    Disconnect,
    /// The node crashes ([`Sim::crash`]), stays down for `down`, and starts again
    /// ([`Sim::restart`]) with its key, address and directory.
    Kill {
        /// How long the node stays down.
        down: Duration,
    },
    /// For `length`, every byte to and from the node waits (its links are partitioned from
    /// every other node; nothing is lost, new connections go unanswered), as its peers see a
    /// stopped process. Unlike a stopped process, the node's own timers keep running, so when
    /// the pause outlasts the MConnection's ping interval plus pong timeout both ends give
    /// up on their connections.
    Pause {
        /// How long the pause lasts.
        length: Duration,
    },
    /// The node crashes and starts again at once (the end-to-end tests' restart stops the
    /// process and starts it again).
    Restart,
}

/// The wall-clock time a simulation starts at, as its nodes' [`SimClock`]s report it:
/// 2024-01-01T00:00:00Z.
pub const SIM_WALL_START_UNIX_SECS: u64 = 1_704_067_200;

/// A wall clock that follows the simulation's virtual time:
/// [`SIM_WALL_START_UNIX_SECS`] plus [`Sim::now`]. Hand it to an address book
/// (`p2p_pex::AddrBook::with_seed`) so the timestamps it keeps and writes to
/// `addrbook.json` (last attempt, last success, ban ends) are the same in every run of a
/// seed, and move with simulated time: a ban of 24 h ends after 24 simulated hours.
#[derive(Clone, Debug)]
pub struct SimClock {
    trace: Trace,
}

impl p2p_pex::Clock for SimClock {
    fn now(&self) -> std::time::SystemTime {
        std::time::SystemTime::UNIX_EPOCH
            + Duration::from_secs(SIM_WALL_START_UNIX_SECS)
            + self.trace.elapsed()
    }
}

/// What a node's factory is given: everything that identifies the node, derived from the
/// simulation's seed. Cheap to clone.
#[derive(Clone)]
pub struct NodeCtx {
    node: Node,
    name: String,
    ip: IpAddr,
    key: NodeKey,
    dir: PathBuf,
    incarnation: u64,
    seed: u64,
    net: MemoryNetwork,
    trace: Trace,
}

impl fmt::Debug for NodeCtx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeCtx")
            .field("node", &self.node)
            .field("name", &self.name)
            .field("ip", &self.ip)
            .field("incarnation", &self.incarnation)
            .finish_non_exhaustive()
    }
}

impl NodeCtx {
    /// The node.
    pub fn node(&self) -> Node {
        self.node
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its host address.
    pub fn ip(&self) -> IpAddr {
        self.ip
    }

    /// Its key (the same in every incarnation).
    pub fn key(&self) -> &NodeKey {
        &self.key
    }

    /// Its ID.
    pub fn node_id(&self) -> NodeId {
        self.key.node_id()
    }

    /// Its directory (the same in every incarnation; files survive crashes).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// 0 for the first start, then 1, 2, ... for each restart.
    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    /// The network.
    pub fn net(&self) -> &MemoryNetwork {
        &self.net
    }

    /// The simulation's trace, for noting what the node sees ([`Trace::message`]).
    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    /// The simulation's wall clock (see [`SimClock`]), for the node's address book.
    pub fn wall_clock(&self) -> Arc<SimClock> {
        Arc::new(SimClock {
            trace: self.trace.clone(),
        })
    }

    /// A seed for `label` (e.g. `"switch"`, `"pex"`, `"addrbook"`), different per node, per
    /// incarnation and per label, fixed by the simulation's seed.
    pub fn seed_for(&self, label: &str) -> u64 {
        crate::derive::u64(self.seed, label, &[self.node.0 as u64, self.incarnation])
    }

    /// The node's ephemeral-key source for this incarnation: seeded, shared by all its
    /// handshakes.
    pub fn key_source(&self) -> KeySource {
        KeySource::from_seed(crate::derive::bytes(
            self.seed,
            "ephemeral-keys",
            &[self.node.0 as u64, self.incarnation],
        ))
    }

    /// `config` with [`key_source`](Self::key_source) in its SecretConnection settings (the
    /// rest kept).
    pub fn seeded(&self, mut config: TransportConfig) -> TransportConfig {
        let mut secret = config.get_secret().clone();
        secret.key_source(self.key_source());
        config.secret(secret);
        config
    }

    /// Where the node listens by convention: its address, port [`NODE_PORT`].
    pub fn listen_addr(&self) -> SocketAddr {
        SocketAddr::new(self.ip, NODE_PORT)
    }

    /// A NodeInfo for this node on `network`: its ID, the moniker its name, listening at
    /// [`listen_addr`](Self::listen_addr), no channels (set them).
    pub fn node_info(&self, network: &str) -> NodeInfo {
        let mut info = NodeInfo::new(
            self.node_id(),
            network,
            format!("tcp://{}", self.listen_addr()),
        );
        info.moniker = self.name.clone();
        info
    }

    /// A transport for this node with its key, on its address, with the seeded key source
    /// put into `config`.
    pub fn transport(
        &self,
        node_info: NodeInfo,
        config: TransportConfig,
    ) -> Result<MemoryTransport, p2p_transport::Error> {
        self.make_transport(self.key.clone(), node_info, config)
    }

    /// Like [`transport`](Self::transport) with the key given, in the shape of a transport
    /// factory (e.g. the one a switch builder takes).
    pub fn make_transport(
        &self,
        key: NodeKey,
        node_info: NodeInfo,
        config: TransportConfig,
    ) -> Result<MemoryTransport, p2p_transport::Error> {
        self.net
            .transport_at(self.ip, key, node_info, self.seeded(config))
    }
}
