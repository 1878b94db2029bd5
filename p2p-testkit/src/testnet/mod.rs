//! A whole testnet in one process: N full nodes on loopback TCP, or each in a network namespace
//! of its own ([netns mode](#netns-mode)) (SecretConnection, MConnection, switch), discovering each other with the PEX reactor through one seed, a flooding gossip
//! reactor, and the measurements a run reports.
//!
//! # How it runs
//!
//! 1. Node 0 is the seed: the PEX reactor in seed mode (it crawls, answers each request once
//!    and hangs up). Nodes 1.. know only the seed (their PEX `seeds`). Every node listens on
//!    `127.0.0.1` (its own port) with `allow_duplicate_ip` on, as everything shares one IP,
//!    and keeps its address book in `node-<i>/config/addrbook.json` under the testnet's home
//!    (a temporary directory unless [`TestnetConfig::home`] is set), so a restarted node
//!    ([`Testnet::restart_node`]) comes back with what it knew.
//! 2. Discovery is the real PEX: a node asks the seed for addresses, dials what it learns,
//!    asks its peers for more, and tops up its outbound peers every [`PEX_PERIOD`] (the
//!    reference's 30 s shortened so that a testnet converges in seconds; the other shortened
//!    periods are in [`short_periods`]).
//! 3. Convergence: every node but the seed holds its *outbound target*,
//!    `min(outbound_target, nodes - 2)` outbound peers (the seed not counted: it hangs up),
//!    or is connected to every other node, so that nobody is left to dial (16 nodes with the
//!    default target of 10 cannot all have 10 outbound peers: 15 nodes have at most 105
//!    connections, so they end in a full mesh). The run records the time until every node has.
//! 4. Gossip: after convergence (or half the run, whichever is first) each node but the seed
//!    originates messages at `rate` per second; each carries origin, sequence and send time,
//!    and every node forwards the first copy it sees to all its other peers.
//! 5. Drain: sending stops at the end of the run; the net gets up to [`DRAIN`] for in-flight
//!    copies, then the run counts what arrived: `delivered` first copies over the nodes but
//!    the seed, and `lost = sent * (nodes - 2) - delivered`.
//!
//! # Reference Go nodes
//!
//! With [`TestnetConfig::go_nodes`] `K > 0`, `K` reference CometBFT nodes join: processes of
//! the Go reference program (`cometbft-shim pex --role node`, built by `cargo xtask shim`; its
//! path in [`TestnetConfig::go_shim`] or `COMETBFT_SHIM`), each knowing only the seed, on
//! loopback with its own port and the same chain ID, started after our nodes and killed (then
//! reaped) at the end, on an error or on Ctrl-C. They run the reference switch and PEX reactor
//! and carry only the PEX channel. Their peers come from the `state` events they print
//! ([`go`] parses them); convergence waits for them too (a Go node converges like ours: the
//! outbound target, or connected to every other node but the seed). Gossip does not reach
//! them (our gossip reactor sends only to peers whose NodeInfo lists its channel), so
//! `sent`, `delivered` and `lost` count our nodes only. [`Summary::go_peers`] holds each Go
//! node's peers and how many of them are ours.
//!
//! # Netns mode
//!
//! With [`TestnetConfig::netns`] set (Linux, root; the binary's `--netns`), every node gets
//! a network namespace of its own with its own IPv4 address (`A.B.x.y/16`, a private subnet
//! that overlaps nothing on the host) on a veth whose other end is a port of one bridge in the
//! root namespace; see [`netns`] for the names, the subnet choice and the cleanup. All nodes
//! listen on [`NETNS_PORT`] (26656, or `base_port`) at their own address, the switches'
//! duplicate-IP filter stays on and the address books keep their per-IP limit, so addresses
//! behave as on a real network (the routability rule stays off: the subnet is private).
//!
//! Each node's switch runs on an OS thread of its own that first enters the node's namespace
//! (`setns`) and then runs a current-thread tokio runtime: every socket the node opens
//! (listener, dials) is made on that thread, inside its namespace. The same code builds the
//! node in both modes (the node's address and a "how to run it" parameter differ); the run
//! loop reaches the nodes through the shared handles (the switch's handle, the gossip
//! reactor, the address book), whose channels work across runtimes. [`Testnet::stop_node`]
//! and [`Testnet::restart_node`] stop and start a node's thread; the namespace stays.
//!
//! [`NetnsOptions`] shape every node's outgoing link with `tc` on its veth: `netem` for a
//! delay and a loss rate (a kernel without `sch_netem` makes the run fail with
//! [`NetnsError::NetemUnavailable`]; nothing is silently skipped), `tbf` for a rate cap.
//! Metrics endpoints stay on the root namespace's 127.0.0.1. Go nodes do not run in netns
//! mode.
//!
//! The [`Scenario::Partition`] scenario (netns mode only) runs after convergence and before
//! gossip: the upper half of the nodes moves to a second bridge (a split: packets are
//! dropped, connections stall until the shortened MConnection pings give up), the network
//! heals after a hold, the run waits for every node to be at its target again, stops and
//! restarts a couple of nodes (their address books reloaded) and waits again; then gossip
//! runs on the recovered network. [`Summary::partition`] reports each step
//! ([`PartitionSummary`]). After a heal both sides of many pairs dial each other at once,
//! and the duplicate-IP filter refuses one of each pair mid-handshake; the dialer's PEX
//! counts that as a failed attempt (it bans an address only when another node answers
//! there), so the pair settles on the connection that got through.
//!
//! [`run`] drives it and returns a [`Summary`]; progress goes to a callback as [`Snapshot`]s.
//! With [`TestnetConfig::metrics_port`] each node's switch metrics are served over HTTP
//! (see [`MetricsServer`]).

pub mod go;
mod gossip;
mod metrics;
mod net;
pub mod netns;
mod report;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

pub use go::{GoNodes, GoPeers};
pub use gossip::{GOSSIP_CHANNEL, Gossip, GossipReactor};
pub use metrics::{CONNECTION_TIMEOUT, MAX_CONNECTIONS, MetricsServer};
pub use net::{
    ADDRBOOK_SAVE_INTERVAL, BAN_TIME, MIN_TIME_BETWEEN_CRAWLS, NETNS_PORT, PEX_PERIOD,
    SEED_DISCONNECT_WAIT, Testnet, node_config_dir, short_periods,
};
pub use netns::{Netns, NetnsError, NetnsOptions};
pub use report::{peak_rss_bytes, write_report};

/// How long in-flight messages get after sending stops.
pub const DRAIN: Duration = Duration::from_secs(3);

/// Errors of a testnet run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestnetError {
    /// A node's switch could not be built or started.
    #[error("node {node}: switch: {source}")]
    Switch {
        /// Index of the node.
        node: usize,
        /// What the switch reported.
        source: p2p_switch::Error,
    },
    /// A node's address book file could not be read or rewritten.
    #[error("node {node}: address book: {source}")]
    AddrBook {
        /// Index of the node.
        node: usize,
        /// What the address book reported.
        source: p2p_pex::Error,
    },
    /// A file, directory or socket of the testnet failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The configuration cannot run.
    #[error("invalid configuration: {reason}")]
    Config {
        /// What is wrong.
        reason: String,
    },
    /// Writing the report failed.
    #[error("report {path}: {source}")]
    Report {
        /// File being written.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Go nodes were asked for but no Go reference program is at hand.
    #[error(
        "--go-nodes needs the Go reference program (cometbft-shim){}: build it with `cargo xtask \
         shim` and pass the path it prints as --go-shim PATH (or COMETBFT_SHIM=PATH)",
        path.as_ref().map(|p| format!("; {} is not a file", p.display())).unwrap_or_default()
    )]
    GoShimMissing {
        /// The path given, if one was.
        path: Option<PathBuf>,
    },
    /// A Go node could not be started.
    #[error("Go node {node}: {reason}")]
    GoNode {
        /// Index of the Go node (0..go_nodes).
        node: usize,
        /// What went wrong.
        reason: String,
    },
    /// Netns mode's network could not be set up or changed.
    #[error("netns: {0}")]
    Netns(#[from] NetnsError),
    /// Drawing a plot failed.
    #[error("plot {path}: {reason}")]
    Plot {
        /// File being drawn.
        path: String,
        /// What plotters reported.
        reason: String,
    },
}

/// What to run. Defaults: 16 nodes for 30 s, 256-byte messages, 10 messages/s per node, Go's
/// `max_num_outbound_peers` (10) as outbound target, MConnection rate limits of Go's
/// `DefaultMConnConfig` (500 KB/s each way), the PEX period [`PEX_PERIOD`] (1 s; Go's is
/// 30 s), free ports picked by the system, a temporary home, no metrics endpoint, seed 1.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct TestnetConfig {
    /// Number of nodes, the seed included.
    pub nodes: usize,
    /// Total run time, discovery included (the drain comes after).
    pub duration: Duration,
    /// Payload bytes per gossip message.
    pub msg_size: usize,
    /// Messages each node originates per second.
    pub rate: f64,
    /// Outbound connections each node aims for (the PEX's `max_num_outbound_peers`).
    pub outbound_target: usize,
    /// MConnection send limit, bytes per second (0 = unlimited).
    pub send_rate: u64,
    /// MConnection receive limit, bytes per second (0 = unlimited).
    pub recv_rate: u64,
    /// The PEX top-up and crawl period.
    pub pex_period: Duration,
    /// Node `i` listens on `base_port + i`; 0 picks free ports.
    pub base_port: u16,
    /// Where the nodes' homes go (kept); `None` for a temporary directory removed afterwards.
    pub home: Option<PathBuf>,
    /// Serve node `i`'s metrics on `127.0.0.1:metrics_port + i` (`Some(0)`: free ports).
    pub metrics_port: Option<u16>,
    /// If set, gossip waits for convergence (however long, within `duration`) and lasts
    /// this long, then the run ends; `duration` becomes the limit of the whole run. If not,
    /// gossip starts at convergence or half-way through `duration`, whichever is first, and
    /// the run lasts `duration`.
    pub gossip_for: Option<Duration>,
    /// Seed of all randomness (keys, PEX, address books, switches).
    pub seed: u64,
    /// Reference Go nodes added to the testnet (see the module docs); 0 by default.
    pub go_nodes: usize,
    /// The Go reference program for [`go_nodes`](Self::go_nodes) (`None`: `COMETBFT_SHIM`).
    pub go_shim: Option<PathBuf>,
    /// The chain ID (NodeInfo `network`) of every node; `testnet` by default.
    pub network: String,
    /// Netns mode (Linux, root): every node in its own network namespace with its own IPv4
    /// address behind a bridge, the duplicate-IP filter on, links shaped by the options (see
    /// [`netns`]). `None` (the default): everyone on 127.0.0.1.
    pub netns: Option<NetnsOptions>,
    /// What happens after convergence, before gossip; [`Scenario::Steady`] by default.
    pub scenario: Scenario,
    /// How long the PEX bans an address it finds bad (a peer that misbehaves, an address
    /// where another node answers); [`BAN_TIME`] by default.
    pub ban_time: Duration,
}

/// What a run does to the network after convergence.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub enum Scenario {
    /// Nothing: gossip starts at convergence.
    #[default]
    Steady,
    /// Netns mode only: split the network in two halves, heal it, stop and restart some
    /// nodes, then gossip (see [`PartitionConfig`]).
    Partition(PartitionConfig),
}

/// The partition scenario: once the testnet has converged, nodes `nodes / 2 ..` move to a
/// second bridge (the seed stays in the first half) for [`hold`](Self::hold); then the
/// network is healed and the run waits (at most [`recover_limit`](Self::recover_limit)) until
/// every node is at its target again; then the last [`restarts`](Self::restarts) nodes are
/// stopped, restarted after [`down`](Self::down) with their address books, and the run waits
/// again; then gossip runs on the recovered network. A split stalls connections without
/// resetting them, so the nodes' MConnections ping every [`ping_interval`](Self::ping_interval)
/// and give up after [`pong_timeout`](Self::pong_timeout) (the reference: 60 s and 45 s).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct PartitionConfig {
    /// How long the split lasts; 8 s by default.
    pub hold: Duration,
    /// How many nodes (the last ones) are stopped and restarted after the heal; 2 by default.
    pub restarts: usize,
    /// How long they stay down; 1 s by default.
    pub down: Duration,
    /// Longest wait for re-convergence after the heal and after the restarts; 30 s.
    pub recover_limit: Duration,
    /// MConnection ping interval; 2 s by default.
    pub ping_interval: Duration,
    /// MConnection pong timeout; 1.5 s by default.
    pub pong_timeout: Duration,
}

impl Default for PartitionConfig {
    fn default() -> Self {
        Self {
            hold: Duration::from_secs(8),
            restarts: 2,
            down: Duration::from_secs(1),
            recover_limit: Duration::from_secs(30),
            ping_interval: Duration::from_secs(2),
            pong_timeout: Duration::from_millis(1500),
        }
    }
}

impl PartitionConfig {
    /// Sets the split's length.
    pub fn hold(&mut self, d: Duration) -> &mut Self {
        self.hold = d;
        self
    }
    /// Sets how many nodes are restarted.
    pub fn restarts(&mut self, n: usize) -> &mut Self {
        self.restarts = n;
        self
    }
    /// Sets how long restarted nodes stay down.
    pub fn down(&mut self, d: Duration) -> &mut Self {
        self.down = d;
        self
    }
    /// Sets the longest wait for re-convergence.
    pub fn recover_limit(&mut self, d: Duration) -> &mut Self {
        self.recover_limit = d;
        self
    }
}

impl Default for TestnetConfig {
    fn default() -> Self {
        Self {
            nodes: 16,
            duration: Duration::from_secs(30),
            msg_size: 256,
            rate: 10.0,
            outbound_target: 10,
            send_rate: 512_000,
            recv_rate: 512_000,
            pex_period: PEX_PERIOD,
            base_port: 0,
            home: None,
            metrics_port: None,
            gossip_for: None,
            seed: 1,
            go_nodes: 0,
            go_shim: None,
            network: "testnet".to_owned(),
            netns: None,
            scenario: Scenario::Steady,
            ban_time: BAN_TIME,
        }
    }
}

impl TestnetConfig {
    /// Sets the number of nodes.
    pub fn nodes(&mut self, n: usize) -> &mut Self {
        self.nodes = n;
        self
    }
    /// Sets the run time.
    pub fn duration(&mut self, d: Duration) -> &mut Self {
        self.duration = d;
        self
    }
    /// Sets the payload size.
    pub fn msg_size(&mut self, bytes: usize) -> &mut Self {
        self.msg_size = bytes;
        self
    }
    /// Sets the per-node origination rate.
    pub fn rate(&mut self, per_sec: f64) -> &mut Self {
        self.rate = per_sec;
        self
    }
    /// Sets the outbound target.
    pub fn outbound_target(&mut self, n: usize) -> &mut Self {
        self.outbound_target = n;
        self
    }
    /// Sets the MConnection send limit.
    pub fn send_rate(&mut self, bytes_per_sec: u64) -> &mut Self {
        self.send_rate = bytes_per_sec;
        self
    }
    /// Sets the MConnection receive limit.
    pub fn recv_rate(&mut self, bytes_per_sec: u64) -> &mut Self {
        self.recv_rate = bytes_per_sec;
        self
    }
    /// Sets the PEX period (at least 3 ms, the PEX's own floor).
    pub fn pex_period(&mut self, period: Duration) -> &mut Self {
        self.pex_period = period;
        self
    }
    /// Sets the first port.
    pub fn base_port(&mut self, port: u16) -> &mut Self {
        self.base_port = port;
        self
    }
    /// Sets the home directory.
    pub fn home(&mut self, dir: Option<PathBuf>) -> &mut Self {
        self.home = dir;
        self
    }
    /// Sets the first metrics port.
    pub fn metrics_port(&mut self, port: Option<u16>) -> &mut Self {
        self.metrics_port = port;
        self
    }
    /// Sets the gossip time after convergence.
    pub fn gossip_for(&mut self, d: Option<Duration>) -> &mut Self {
        self.gossip_for = d;
        self
    }
    /// Sets the seed of randomness.
    pub fn seed(&mut self, seed: u64) -> &mut Self {
        self.seed = seed;
        self
    }
    /// Sets the number of reference Go nodes.
    pub fn go_nodes(&mut self, k: usize) -> &mut Self {
        self.go_nodes = k;
        self
    }
    /// Sets the Go reference program.
    pub fn go_shim(&mut self, path: Option<PathBuf>) -> &mut Self {
        self.go_shim = path;
        self
    }
    /// Sets the chain ID.
    pub fn network(&mut self, id: impl Into<String>) -> &mut Self {
        self.network = id.into();
        self
    }
    /// Sets netns mode (`Some`) with its link shaping, or loopback (`None`).
    pub fn netns(&mut self, options: Option<NetnsOptions>) -> &mut Self {
        self.netns = options;
        self
    }
    /// Sets the scenario.
    pub fn scenario(&mut self, scenario: Scenario) -> &mut Self {
        self.scenario = scenario;
        self
    }
    /// Sets the PEX ban time.
    pub fn ban_time(&mut self, d: Duration) -> &mut Self {
        self.ban_time = d;
        self
    }
    /// The outbound target of every node but the seed: `outbound_target`, capped at
    /// `nodes - 2` (the other nodes but the seed).
    pub fn target(&self) -> usize {
        self.outbound_target.min(self.nodes.saturating_sub(2))
    }

    fn check(&self) -> Result<(), TestnetError> {
        if self.nodes < 3 {
            return Err(TestnetError::Config {
                reason: "at least 3 nodes are needed (a seed and two nodes)".to_owned(),
            });
        }
        if !(self.rate.is_finite() && self.rate > 0.0) {
            return Err(TestnetError::Config {
                reason: "rate must be a positive number".to_owned(),
            });
        }
        if self.outbound_target == 0 {
            return Err(TestnetError::Config {
                reason: "the outbound target must be at least 1".to_owned(),
            });
        }
        if self.netns.is_some() && self.go_nodes > 0 {
            return Err(TestnetError::Config {
                reason: "Go nodes do not run in netns mode".to_owned(),
            });
        }
        if let Scenario::Partition(p) = &self.scenario {
            if self.netns.is_none() {
                return Err(TestnetError::Config {
                    reason: "the partition scenario needs netns mode (--netns)".to_owned(),
                });
            }
            if p.restarts >= self.nodes {
                return Err(TestnetError::Config {
                    reason: format!("{} restarts with {} nodes", p.restarts, self.nodes),
                });
            }
            if p.pong_timeout >= p.ping_interval {
                return Err(TestnetError::Config {
                    reason: "the pong timeout must be under the ping interval".to_owned(),
                });
            }
        }
        if let Some(o) = &self.netns {
            if o.loss_pct.is_some_and(|l| !(0.0..=100.0).contains(&l)) {
                return Err(TestnetError::Config {
                    reason: "the loss must be a percentage (0 to 100)".to_owned(),
                });
            }
        }
        Ok(())
    }
}

/// Live state, handed to the progress callback about twice a second.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct Snapshot {
    /// Seconds since the start.
    pub elapsed_s: f64,
    /// Peers (outbound + inbound, the seed left out) per node; the seed's own entry counts
    /// all its peers.
    pub peers: Vec<usize>,
    /// Nodes (the seed left out) that reached their outbound target.
    pub converged_nodes: usize,
    /// Number of nodes, the seed included.
    pub nodes: usize,
    /// Whether gossip has started.
    pub gossiping: bool,
    /// First copies delivered over all nodes so far.
    pub delivered: u64,
    /// Delivered messages per second over the last interval.
    pub msgs_per_s: f64,
    /// Delivered bytes per second over the last interval.
    pub bytes_per_s: f64,
    /// Each Go node's peers (empty without Go nodes).
    pub go_peers: Vec<GoPeers>,
}

/// One sample of the peers-over-time series (the seed left out).
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct PeerSample {
    /// Seconds since the start.
    pub t_s: f64,
    /// Fewest peers of any node.
    pub min: usize,
    /// Mean peers.
    pub mean: f64,
    /// Most peers of any node.
    pub max: usize,
}

/// The result of a run. Counts leave the seed out unless said otherwise.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct Summary {
    /// Number of nodes, the seed included.
    pub nodes: usize,
    /// Whether every node reached its outbound target.
    pub converged: bool,
    /// Seconds until every node had (None if never).
    pub convergence_s: Option<f64>,
    /// Outbound target per node ([`TestnetConfig::target`]).
    pub outbound_target: usize,
    /// The PEX period, seconds.
    pub pex_period_s: f64,
    /// Fewest outbound peers of any node at the end.
    pub outbound_min: usize,
    /// Most outbound peers of any node at the end.
    pub outbound_max: usize,
    /// Fewest peers (both directions) of any node at the end.
    pub peers_min: usize,
    /// Fewest addresses in any node's address book at the end.
    pub addrbook_min: usize,
    /// Messages originated over all nodes.
    pub sent: u64,
    /// First copies received over all nodes.
    pub delivered: u64,
    /// `sent * (nodes - 2) - delivered`.
    pub lost: u64,
    /// Forwards that failed.
    pub forward_failures: u64,
    /// Seconds of gossip (first send to end of drain).
    pub gossip_s: f64,
    /// Delivered messages per second over the gossip time.
    pub msgs_per_s: f64,
    /// Delivered bytes per second over the gossip time.
    pub bytes_per_s: f64,
    /// Median delivery latency, milliseconds.
    pub latency_p50_ms: f64,
    /// 99th percentile delivery latency, milliseconds.
    pub latency_p99_ms: f64,
    /// Largest delivery latency, milliseconds.
    pub latency_max_ms: f64,
    /// Peak resident set of the process (VmHWM), bytes.
    pub peak_rss_bytes: u64,
    /// Whether the run was stopped early.
    pub interrupted: bool,
    /// Reference Go nodes in the run (not in `nodes`; their peers in `go_peers`).
    pub go_nodes: usize,
    /// Each Go node's peers at the end (outbound, inbound, how many are ours).
    pub go_peers: Vec<GoPeers>,
    /// The chain ID every node used.
    pub network: String,
    /// Netns mode's network (`None` on loopback).
    pub netns: Option<NetnsSummary>,
    /// The partition scenario's course and recovery (`None` without it).
    pub partition: Option<PartitionSummary>,
    /// Peers over time.
    #[serde(skip)]
    pub peer_series: Vec<PeerSample>,
    /// Every latency sample, microseconds, sorted.
    #[serde(skip)]
    pub latencies_us: Vec<u64>,
    /// Final topology: (from, to) for every outbound connection (the seed's included).
    #[serde(skip)]
    pub edges: Vec<(usize, usize)>,
}

/// Netns mode's network, for the summary.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct NetnsSummary {
    /// The nodes' subnet (`A.B.0.0/16`; node `i` is host `i + 1`).
    pub subnet: String,
    /// The run tag in the names of the namespaces, veths and bridges.
    pub tag: String,
    /// Whether the switches' duplicate-IP filter was on (always, in netns mode).
    pub duplicate_ip_filter: bool,
    /// Added one-way delay, milliseconds.
    pub delay_ms: Option<u32>,
    /// Added loss, percent.
    pub loss_pct: Option<f64>,
    /// Rate cap (`tc` syntax).
    pub rate: Option<String>,
}

/// The partition scenario's course, for the summary. Times count from the event (the heal,
/// the restarts); `None` where the run ended (or the wait hit the limit) first.
#[derive(Clone, Debug, Default, Serialize)]
#[non_exhaustive]
pub struct PartitionSummary {
    /// Seconds of the split.
    pub hold_s: f64,
    /// The nodes moved to the second bridge.
    pub second_half: Vec<usize>,
    /// Fewest peers (both directions, the seed left out) of any node at the end of the split.
    pub peers_min_split: Option<usize>,
    /// Connections still crossing the split at its end (stalled, not yet timed out).
    pub cross_connections_at_heal: Option<usize>,
    /// Seconds from the heal until every node was at its target again.
    pub heal_reconverge_s: Option<f64>,
    /// Nodes (the seed left out) at their target when the post-heal wait ended.
    pub nodes_at_target_after_heal: usize,
    /// The nodes stopped and restarted.
    pub restarted: Vec<usize>,
    /// Addresses each restarted node loaded from its address book file.
    pub restarted_loaded: Vec<usize>,
    /// Seconds from the restarts until every node was at its target again.
    pub restart_reconverge_s: Option<f64>,
    /// Nodes (the seed left out) at their target when the post-restart wait ended.
    pub nodes_at_target_after_restart: usize,
    /// Whether the scenario ran to its end (before the run did).
    pub completed: bool,
}

/// Where the partition scenario is.
enum Phase {
    /// Waiting for the first convergence.
    Converging,
    /// Split until then.
    Split(Instant),
    /// Healed at then; waiting for re-convergence.
    Healed(Instant),
    /// The restarted nodes are down until then.
    Down(Instant),
    /// Restarted at then; waiting for re-convergence.
    Restarted(Instant),
    /// Over (or no scenario).
    Done,
}

/// Connections (counted once per direction a node sees them) between a node in `second` and
/// one outside it.
fn cross_connections(net: &Testnet, second: &[usize]) -> usize {
    let ids = net.ids();
    net.running()
        .map(|(i, nd)| {
            nd.switch
                .peers()
                .iter()
                .filter_map(|p| ids.iter().position(|id| *id == p.id()))
                .filter(|j| second.contains(&i) != second.contains(j))
                .count()
        })
        .sum()
}

impl Summary {
    /// The summary as one line of JSON.
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

/// Peers per node (the seed's all, the others' without the seed).
fn peer_counts(net: &Testnet) -> Vec<usize> {
    (0..net.len())
        .map(|i| {
            if i == 0 {
                net.node(0).map_or(0, |n| n.switch.peers().len())
            } else {
                net.peers(i).map_or(0, |(_, all)| all)
            }
        })
        .collect()
}

/// Runs a testnet until `config.duration` passes or `stop` completes, then drains and
/// summarizes. `progress` gets a [`Snapshot`] about every 500 ms. With
/// [`TestnetConfig::metrics_port`] set, `on_metrics` is told where the endpoints are.
pub async fn run(
    config: &TestnetConfig,
    stop: impl Future<Output = ()>,
    on_metrics: impl FnOnce(&MetricsServer),
    mut progress: impl FnMut(&Snapshot),
) -> Result<Summary, TestnetError> {
    config.check()?;
    let mut config = config.clone();
    let shim = match config.go_nodes {
        0 => None,
        _ => {
            let shim = go::resolve_shim(config.go_shim.as_deref())?;
            config.network = go::network_for(&shim, &config.network).await?;
            Some(shim)
        }
    };
    let config = &config;
    let mut net = Testnet::start(config).await?;
    let mut go = match &shim {
        Some(shim) => GoNodes::start(config, shim, &net).await?,
        None => GoNodes::default(),
    };
    let _metrics = match config.metrics_port {
        Some(port) => {
            let server = net.serve_metrics(port).await?;
            on_metrics(&server);
            Some(server)
        }
        None => None,
    };
    let n = net.len();
    let epoch = net.epoch();
    let gossipers = n - 1;

    tokio::pin!(stop);
    let mut end = epoch + config.duration;
    let gossip_deadline = match config.gossip_for {
        Some(_) => end,
        None => epoch + config.duration / 2,
    };
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut convergence: Option<Duration> = None;
    let mut gossip_start: Option<Instant> = None;
    let mut next_seq = vec![0u64; n];
    let send_period = Duration::from_secs_f64(1.0 / config.rate);
    let mut next_send = vec![epoch; n];
    let mut series = Vec::new();
    let mut last_snap = epoch;
    let mut last_delivered = 0u64;
    let mut last_bytes = 0u64;
    let mut interrupted = false;
    let payload = bytes::Bytes::from(vec![0xA5u8; config.msg_size]);
    let mut sends = tokio::task::JoinSet::new();
    let scenario = match &config.scenario {
        Scenario::Partition(p) => Some(p.clone()),
        Scenario::Steady => None,
    };
    let mut phase = match scenario {
        Some(_) => Phase::Converging,
        None => Phase::Done,
    };
    let mut partition = scenario.as_ref().map(|p| PartitionSummary {
        hold_s: p.hold.as_secs_f64(),
        second_half: (n / 2..n).collect(),
        restarted: (n - p.restarts..n).collect(),
        ..PartitionSummary::default()
    });
    let delivered_now = |net: &Testnet| -> (u64, u64) {
        net.running()
            .filter(|(i, _)| *i != 0)
            .fold((0, 0), |(m, b), (_, nd)| {
                (m + nd.gossip.delivered(), b + nd.gossip.delivered_bytes())
            })
    };

    loop {
        tokio::select! {
            () = &mut stop => { interrupted = true; break; }
            _ = tick.tick() => {}
        }
        let now = Instant::now();
        if now >= end {
            break;
        }
        let converged_nodes = net.converged_nodes();
        let go_converged = go.converged(&net);
        if convergence.is_none() && converged_nodes == gossipers && go_converged == go.len() {
            convergence = Some(now - epoch);
        }
        if let (Some(p), Some(ps)) = (&scenario, &mut partition) {
            let at_target = converged_nodes == gossipers;
            match phase {
                Phase::Converging if convergence.is_some() => {
                    tracing::info!(second = ?ps.second_half, "partition: splitting the network");
                    net.partition(&ps.second_half)?;
                    phase = Phase::Split(now + p.hold);
                }
                Phase::Split(until) if now >= until => {
                    let peers = peer_counts(&net);
                    ps.peers_min_split = peers.get(1..).and_then(|p| p.iter().copied().min());
                    ps.cross_connections_at_heal = Some(cross_connections(&net, &ps.second_half));
                    tracing::info!("partition: healing");
                    net.heal()?;
                    phase = Phase::Healed(now);
                }
                Phase::Healed(since) if at_target || now - since >= p.recover_limit => {
                    if at_target {
                        ps.heal_reconverge_s = Some((now - since).as_secs_f64());
                    }
                    ps.nodes_at_target_after_heal = converged_nodes;
                    tracing::info!(restarted = ?ps.restarted, "partition: stopping nodes");
                    for &i in &ps.restarted {
                        net.stop_node(i).await;
                    }
                    phase = Phase::Down(Instant::now() + p.down);
                }
                Phase::Down(until) if now >= until => {
                    for &i in &ps.restarted {
                        ps.restarted_loaded.push(net.restart_node(i).await?);
                    }
                    phase = Phase::Restarted(Instant::now());
                }
                Phase::Restarted(since) if at_target || now - since >= p.recover_limit => {
                    if at_target {
                        ps.restart_reconverge_s = Some((now - since).as_secs_f64());
                    }
                    ps.nodes_at_target_after_restart = converged_nodes;
                    ps.completed = true;
                    tracing::info!("partition: scenario over, gossip next");
                    phase = Phase::Done;
                }
                _ => {}
            }
        }
        let scenario_done = matches!(phase, Phase::Done);
        let may_gossip = match scenario {
            Some(_) => scenario_done,
            None => convergence.is_some() || now >= gossip_deadline,
        };
        if gossip_start.is_none() && may_gossip {
            gossip_start = Some(now);
            next_send.fill(now);
            if let Some(g) = config.gossip_for {
                end = end.min(now + g);
            }
        }
        if gossip_start.is_some() {
            for (i, node) in net.running().filter(|(i, _)| *i != 0) {
                let (Some(next), Some(seq)) = (next_send.get_mut(i), next_seq.get_mut(i)) else {
                    continue;
                };
                while *next <= now {
                    *next += send_period;
                    let msg = Gossip {
                        origin: u32::try_from(i).unwrap_or(u32::MAX),
                        seq: *seq,
                        sent_us: node.gossip.now_us(),
                        payload: payload.clone(),
                    };
                    *seq += 1;
                    let g = Arc::clone(&node.gossip);
                    sends.spawn(async move { g.originate(msg).await });
                }
            }
            while sends.try_join_next().is_some() {}
        }
        if now - last_snap >= Duration::from_millis(500) {
            let peers = peer_counts(&net);
            let (delivered, bytes) = delivered_now(&net);
            let dt = (now - last_snap).as_secs_f64();
            let t_s = (now - epoch).as_secs_f64();
            series.push(peer_sample(t_s, peers.get(1..).unwrap_or(&[])));
            progress(&Snapshot {
                elapsed_s: t_s,
                peers,
                converged_nodes: converged_nodes + go_converged,
                nodes: n,
                gossiping: gossip_start.is_some(),
                delivered,
                msgs_per_s: delivered.saturating_sub(last_delivered) as f64 / dt,
                bytes_per_s: bytes.saturating_sub(last_bytes) as f64 / dt,
                go_peers: go.peers(&net),
            });
            last_snap = now;
            last_delivered = delivered;
            last_bytes = bytes;
        }
    }

    // Drain: let originations finish and in-flight copies land.
    let sent: u64 = next_seq.iter().sum();
    let expected = sent * (gossipers as u64 - 1);
    let drain_end = Instant::now() + DRAIN;
    while Instant::now() < drain_end {
        while sends.try_join_next().is_some() {}
        if sends.is_empty() && delivered_now(&net).0 >= expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sends.abort_all();
    let finished = Instant::now();

    let (delivered, delivered_bytes) = delivered_now(&net);
    let mut forward_failures = 0;
    let mut latencies: Vec<u64> = Vec::new();
    let mut edges = Vec::new();
    let mut outbound = Vec::new();
    let mut books = Vec::new();
    for (i, nd) in net.running() {
        forward_failures += nd.gossip.forward_failures();
        for p in nd.switch.peers() {
            if p.is_outbound() {
                if let Some(j) = net.ids().iter().position(|id| *id == p.id()) {
                    edges.push((i, j));
                }
            }
        }
        if i != 0 {
            latencies.extend(nd.gossip.take_latencies());
            outbound.push(net.peers(i).map_or(0, |(o, _)| o));
            books.push(net.addrbook_len(i).unwrap_or(0));
        }
    }
    latencies.sort_unstable();
    let peers = peer_counts(&net);
    let non_seed = peers.get(1..).unwrap_or(&[]);
    series.push(peer_sample((finished - epoch).as_secs_f64(), non_seed));
    let peers_min = non_seed.iter().copied().min().unwrap_or(0);
    let go_peers = go.peers(&net);
    let netns_summary = net.netns().map(|ns| NetnsSummary {
        subnet: ns.subnet_str(),
        tag: ns.tag().to_owned(),
        duplicate_ip_filter: true,
        delay_ms: config.netns.as_ref().and_then(|o| o.delay_ms),
        loss_pct: config.netns.as_ref().and_then(|o| o.loss_pct),
        rate: config.netns.as_ref().and_then(|o| o.rate.clone()),
    });
    go.stop().await;
    net.stop().await;
    let gossip_s = gossip_start.map_or(0.0, |s| (finished - s).as_secs_f64());
    let per_s = |x: u64| {
        if gossip_s > 0.0 {
            x as f64 / gossip_s
        } else {
            0.0
        }
    };
    Ok(Summary {
        nodes: n,
        converged: convergence.is_some(),
        convergence_s: convergence.map(|d| d.as_secs_f64()),
        outbound_target: config.target(),
        pex_period_s: config.pex_period.as_secs_f64(),
        outbound_min: outbound.iter().copied().min().unwrap_or(0),
        outbound_max: outbound.iter().copied().max().unwrap_or(0),
        peers_min,
        addrbook_min: books.iter().copied().min().unwrap_or(0),
        sent,
        delivered,
        lost: expected.saturating_sub(delivered),
        forward_failures,
        gossip_s,
        msgs_per_s: per_s(delivered),
        bytes_per_s: per_s(delivered_bytes),
        latency_p50_ms: percentile_ms(&latencies, 0.50),
        latency_p99_ms: percentile_ms(&latencies, 0.99),
        latency_max_ms: latencies.last().map_or(0.0, |&v| v as f64 / 1000.0),
        peak_rss_bytes: peak_rss_bytes().unwrap_or(0),
        interrupted,
        go_nodes: go_peers.len(),
        go_peers,
        network: config.network.clone(),
        netns: netns_summary,
        partition,
        peer_series: series,
        latencies_us: latencies,
        edges,
    })
}

fn peer_sample(t_s: f64, peers: &[usize]) -> PeerSample {
    PeerSample {
        t_s,
        min: peers.iter().copied().min().unwrap_or(0),
        mean: peers.iter().sum::<usize>() as f64 / peers.len().max(1) as f64,
        max: peers.iter().copied().max().unwrap_or(0),
    }
}

/// The `q` quantile of sorted microsecond samples, in milliseconds (nearest rank).
pub fn percentile_ms(sorted_us: &[u64], q: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted_us.len() as f64).ceil() as usize).clamp(1, sorted_us.len());
    sorted_us.get(rank - 1).map_or(0.0, |&v| v as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<u64> = (1..=100).map(|x| x * 1000).collect();
        assert_eq!(percentile_ms(&v, 0.5), 50.0);
        assert_eq!(percentile_ms(&v, 0.99), 99.0);
        assert_eq!(percentile_ms(&[], 0.5), 0.0);
    }
}
