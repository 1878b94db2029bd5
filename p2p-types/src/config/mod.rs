//! A node's p2p settings as CometBFT keeps them in `config.toml`, with the reference's defaults.
//!
//! A CometBFT node reads one TOML file, `<home>/config/config.toml`. Its top level holds the
//! node-wide settings and each subsystem has a section (`[rpc]`, `[p2p]`, `[mempool]`,
//! `[consensus]`, ...). A p2p node needs the `[p2p]` section and a few top-level keys; they are
//! held in [`NodeConfig`] and [`P2PConfig`], plain structs with public fields, setters and
//! `Default`s equal to what CometBFT v0.38's `config.DefaultConfig()` produces. Files written by
//! CometBFT v0.37, v0.38 and v1.0 all read (their `[p2p]` sections have the same keys; v1.0's
//! default file only lowers `flush_throttle_timeout` to 10 ms), and with the `config` feature
//! `NodeConfig::from_toml` reads such a file and `NodeConfig::to_toml` writes one in the
//! reference's layout.
//!
//! # Value formats
//!
//! - **Durations** are strings in Go's syntax, e.g. `"100ms"`, `"3s"`, `"1m30s"`, `"0s"`; see
//!   [`GoDuration`]. Negative durations are refused.
//! - **Peer lists** (`seeds`, `persistent_peers`) are one string of comma-separated
//!   `id@host:port` entries, e.g. `"<40 hex>@seed.example.com:26656,<40 hex>@1.2.3.4:26656"`.
//!   Spaces around entries and empty entries are dropped, as the reference does. A host may be
//!   a DNS name; it is kept as a name ([`PeerAddress`]) and looked up when dialled.
//! - **ID lists** (`unconditional_peer_ids`, `private_peer_ids`) are comma-separated node IDs.
//! - **Paths** (`addr_book_file`, `node_key_file`, `genesis_file`) are relative to the home
//!   directory unless absolute.
//! - **Counts and rates** are non-negative integers.
//!
//! # Top-level keys
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `moniker` | the host name (here: `"anonymous"`) | the node's human-readable name, sent in its NodeInfo |
//! | `genesis_file` | `"config/genesis.json"` | the chain's genesis document; a p2p node reads its `chain_id` (the network name in NodeInfo) |
//! | `node_key_file` | `"config/node_key.json"` | the node's ed25519 key, which determines its node ID |
//! | `log_level` | `"info"` | verbosity, in the reference's syntax (`"info"`, or per module `"p2p:debug,*:info"`) |
//! | `log_format` | `"plain"` | `"plain"` or `"json"` |
//!
//! Every other top-level key and section of the reference is accepted without a warning and
//! left alone: those settings belong to the parts of a full node a p2p node does not have.
//!
//! # The `[p2p]` section
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `laddr` | `"tcp://0.0.0.0:26656"` | where to accept connections; the scheme is ignored (always TCP) |
//! | `external_address` | `""` | the `host:port` to advertise to peers instead of `laddr`; empty means `laddr` |
//! | `seeds` | `""` | seed nodes, asked for addresses when the address book runs low |
//! | `persistent_peers` | `""` | peers to stay connected to, redialled whenever the connection drops |
//! | `addr_book_file` | `"config/addrbook.json"` | where the address book is stored |
//! | `addr_book_strict` | `true` | only keep publicly routable addresses in the book; turn off on private or local networks |
//! | `max_num_inbound_peers` | `40` | how many peers may dial us (unconditional peers come on top) |
//! | `max_num_outbound_peers` | `10` | how many peers we dial ourselves, persistent peers not counted |
//! | `unconditional_peer_ids` | `""` | node IDs exempt from the two limits above |
//! | `persistent_peers_max_dial_period` | `"0s"` | longest wait between redials of a persistent peer; `0s` means exponential back-off without a cap |
//! | `flush_throttle_timeout` | `"100ms"` | how long a connection buffers small messages before writing them out |
//! | `max_packet_msg_payload_size` | `1024` | bytes of message data per packet; must match the peers' value |
//! | `send_rate` | `5120000` | bytes per second sent per connection at most (0: unlimited) |
//! | `recv_rate` | `5120000` | bytes per second received per connection at most (0: unlimited) |
//! | `pex` | `true` | run peer exchange: learn addresses from peers and share ours |
//! | `seed_mode` | `false` | act as a seed: crawl the network, answer address requests, then hang up (needs `pex`) |
//! | `private_peer_ids` | `""` | node IDs whose addresses are never shared with other peers |
//! | `allow_duplicate_ip` | `false` | accept several peers from one IP address |
//! | `handshake_timeout` | `"20s"` | how long the encryption handshake and the NodeInfo exchange may take |
//! | `dial_timeout` | `"3s"` | how long a TCP connect may take |
//!
//! The reference also reads `test_dial_fail`, `test_fuzz` and `test_fuzz_config`, testing
//! switches its default file does not write. They are accepted here and have no effect (a
//! warning says so when one is turned on). Any other key gives a [`ConfigWarning`]; a value of
//! the wrong type or out of range is an [`Error::ConfigValue`] naming the key, the value and
//! what is expected.
//!
//! # Mapping onto the connection layers
//!
//! The crates above this one turn these settings into their own configurations:
//! `flush_throttle_timeout`, `max_packet_msg_payload_size`, `send_rate` and `recv_rate` are
//! the MConnection's; `dial_timeout`, `handshake_timeout`, `allow_duplicate_ip` and
//! [`P2PConfig::max_incoming_connections`] the transport's; the peer lists, limits and
//! `persistent_peers_max_dial_period` the switch's; `pex`, `seed_mode`, `seeds`,
//! `addr_book_*` and `private_peer_ids` the peer exchange's. Note that the node defaults
//! differ from the lower crates' own defaults (the reference's transport alone uses a 3 s
//! handshake and 1 s dial timeout, its connection 500 kB/s rates), so map every field.
//!
//! ```
//! use std::time::Duration;
//! use p2p_types::config::NodeConfig;
//!
//! let mut config = NodeConfig::default();
//! config.moniker("seed-1");
//! config.p2p.seed_mode(true).max_num_inbound_peers(200).dial_timeout(Duration::from_secs(5));
//! assert_eq!(config.p2p.handshake_timeout, Duration::from_secs(20));
//! assert_eq!(config.p2p.max_incoming_connections(), 200);
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use core::fmt;
use core::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::{Error, HostPort, NodeId, PeerAddress};

mod duration;
#[cfg(feature = "config")]
mod file;

pub use duration::{GoDuration, format_std as format_go_duration};

/// The directory of the configuration files inside a home directory (`config`).
pub const CONFIG_DIR: &str = "config";
/// The directory of the node's data inside a home directory (`data`).
pub const DATA_DIR: &str = "data";
/// The configuration file, relative to the home directory (`config/config.toml`).
pub const CONFIG_FILE: &str = "config/config.toml";
/// Default `genesis_file`: `config/genesis.json`, as in the reference.
pub const DEFAULT_GENESIS_FILE: &str = "config/genesis.json";
/// Default `node_key_file`: `config/node_key.json`, as in the reference.
pub const DEFAULT_NODE_KEY_FILE: &str = "config/node_key.json";
/// Default `addr_book_file`: `config/addrbook.json`, as in the reference.
pub const DEFAULT_ADDR_BOOK_FILE: &str = "config/addrbook.json";
/// Default `log_level`: `info`, as in the reference.
pub const DEFAULT_LOG_LEVEL: &str = "info";
/// Default `log_format`: `plain`, as in the reference.
pub const DEFAULT_LOG_FORMAT: &str = "plain";
/// The port of the default `laddr` (26656), as in the reference.
pub const DEFAULT_P2P_PORT: u16 = 26656;
/// Default `max_num_inbound_peers`: 40, as in the reference.
pub const DEFAULT_MAX_NUM_INBOUND_PEERS: usize = 40;
/// Default `max_num_outbound_peers`: 10, as in the reference.
pub const DEFAULT_MAX_NUM_OUTBOUND_PEERS: usize = 10;
/// Default `flush_throttle_timeout`: 100 ms, as in the reference v0.38 (v1.0 writes 10 ms).
pub const DEFAULT_FLUSH_THROTTLE_TIMEOUT: Duration = Duration::from_millis(100);
/// Default `max_packet_msg_payload_size`: 1024 bytes, as in the reference.
pub const DEFAULT_MAX_PACKET_MSG_PAYLOAD_SIZE: usize = 1024;
/// Default `send_rate` and `recv_rate`: 5120000 bytes per second, as in the reference's
/// `config.toml` (its connection layer alone defaults to 512000).
pub const DEFAULT_RATE: u64 = 5_120_000;
/// Default `handshake_timeout`: 20 s, as in the reference's `config.toml` (its transport alone
/// defaults to 3 s).
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(20);
/// Default `dial_timeout`: 3 s, as in the reference's `config.toml` (its transport alone
/// defaults to 1 s).
pub const DEFAULT_DIAL_TIMEOUT: Duration = Duration::from_secs(3);

/// The `[p2p]` section of `config.toml`. Every field is the key of the same name unless its
/// doc says otherwise; the defaults are the reference's `DefaultP2PConfig()` (CometBFT v0.38),
/// see the [module docs](self) for what each key does.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct P2PConfig {
    /// Key `laddr`: where to listen. Default `tcp://0.0.0.0:26656`.
    pub listen_address: HostPort,
    /// The address advertised to peers, if not the listen address. Default none (`""`).
    pub external_address: Option<HostPort>,
    /// Seed nodes. Default none.
    pub seeds: Vec<PeerAddress>,
    /// Peers to keep connections to. Default none.
    pub persistent_peers: Vec<PeerAddress>,
    /// The address book file, relative to the home directory unless absolute. Default
    /// [`DEFAULT_ADDR_BOOK_FILE`].
    pub addr_book_file: PathBuf,
    /// Keep only routable addresses in the address book. Default `true`.
    pub addr_book_strict: bool,
    /// Inbound peer limit. Default [`DEFAULT_MAX_NUM_INBOUND_PEERS`].
    pub max_num_inbound_peers: usize,
    /// Outbound peer limit, persistent peers excluded. Default [`DEFAULT_MAX_NUM_OUTBOUND_PEERS`].
    pub max_num_outbound_peers: usize,
    /// Peers exempt from the peer limits. Default none.
    pub unconditional_peer_ids: Vec<NodeId>,
    /// Longest pause between redials of a persistent peer; zero means uncapped exponential
    /// back-off. Default zero.
    pub persistent_peers_max_dial_period: Duration,
    /// Flush period of a connection's write buffer. Default [`DEFAULT_FLUSH_THROTTLE_TIMEOUT`].
    pub flush_throttle_timeout: Duration,
    /// Data bytes per packet. Default [`DEFAULT_MAX_PACKET_MSG_PAYLOAD_SIZE`].
    pub max_packet_msg_payload_size: usize,
    /// Send limit per connection in bytes per second, 0 for none. Default [`DEFAULT_RATE`].
    pub send_rate: u64,
    /// Receive limit per connection in bytes per second, 0 for none. Default [`DEFAULT_RATE`].
    pub recv_rate: u64,
    /// Run the peer-exchange reactor. Default `true`.
    pub pex: bool,
    /// Run as a seed node. Default `false`.
    pub seed_mode: bool,
    /// Peers whose addresses are never gossiped. Default none.
    pub private_peer_ids: Vec<NodeId>,
    /// Accept several peers from one IP. Default `false`.
    pub allow_duplicate_ip: bool,
    /// Deadline of the secret handshake, and again of the NodeInfo exchange. Default
    /// [`DEFAULT_HANDSHAKE_TIMEOUT`].
    pub handshake_timeout: Duration,
    /// Deadline of a TCP connect. Default [`DEFAULT_DIAL_TIMEOUT`].
    pub dial_timeout: Duration,
}

impl Default for P2PConfig {
    fn default() -> Self {
        Self {
            listen_address: HostPort::from(SocketAddr::new(
                IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                DEFAULT_P2P_PORT,
            )),
            external_address: None,
            seeds: Vec::new(),
            persistent_peers: Vec::new(),
            addr_book_file: PathBuf::from(DEFAULT_ADDR_BOOK_FILE),
            addr_book_strict: true,
            max_num_inbound_peers: DEFAULT_MAX_NUM_INBOUND_PEERS,
            max_num_outbound_peers: DEFAULT_MAX_NUM_OUTBOUND_PEERS,
            unconditional_peer_ids: Vec::new(),
            persistent_peers_max_dial_period: Duration::ZERO,
            flush_throttle_timeout: DEFAULT_FLUSH_THROTTLE_TIMEOUT,
            max_packet_msg_payload_size: DEFAULT_MAX_PACKET_MSG_PAYLOAD_SIZE,
            send_rate: DEFAULT_RATE,
            recv_rate: DEFAULT_RATE,
            pex: true,
            seed_mode: false,
            private_peer_ids: Vec::new(),
            allow_duplicate_ip: false,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            dial_timeout: DEFAULT_DIAL_TIMEOUT,
        }
    }
}

impl P2PConfig {
    /// Sets the listen address (`laddr`).
    pub fn listen_address(&mut self, addr: HostPort) -> &mut Self {
        self.listen_address = addr;
        self
    }

    /// Sets the advertised address (`external_address`); `None` advertises the listen address.
    pub fn external_address(&mut self, addr: Option<HostPort>) -> &mut Self {
        self.external_address = addr;
        self
    }

    /// Sets `seeds`.
    pub fn seeds(&mut self, seeds: impl IntoIterator<Item = PeerAddress>) -> &mut Self {
        self.seeds = seeds.into_iter().collect();
        self
    }

    /// Sets `persistent_peers`.
    pub fn persistent_peers(&mut self, peers: impl IntoIterator<Item = PeerAddress>) -> &mut Self {
        self.persistent_peers = peers.into_iter().collect();
        self
    }

    /// Sets `addr_book_file` (relative to the home directory unless absolute).
    pub fn addr_book_file(&mut self, path: impl Into<PathBuf>) -> &mut Self {
        self.addr_book_file = path.into();
        self
    }

    /// Sets `addr_book_strict`.
    pub fn addr_book_strict(&mut self, strict: bool) -> &mut Self {
        self.addr_book_strict = strict;
        self
    }

    /// Sets `max_num_inbound_peers`.
    pub fn max_num_inbound_peers(&mut self, max: usize) -> &mut Self {
        self.max_num_inbound_peers = max;
        self
    }

    /// Sets `max_num_outbound_peers`.
    pub fn max_num_outbound_peers(&mut self, max: usize) -> &mut Self {
        self.max_num_outbound_peers = max;
        self
    }

    /// Sets `unconditional_peer_ids`.
    pub fn unconditional_peer_ids(&mut self, ids: impl IntoIterator<Item = NodeId>) -> &mut Self {
        self.unconditional_peer_ids = ids.into_iter().collect();
        self
    }

    /// Sets `persistent_peers_max_dial_period` (zero: no cap).
    pub fn persistent_peers_max_dial_period(&mut self, period: Duration) -> &mut Self {
        self.persistent_peers_max_dial_period = period;
        self
    }

    /// Sets `flush_throttle_timeout`.
    pub fn flush_throttle_timeout(&mut self, period: Duration) -> &mut Self {
        self.flush_throttle_timeout = period;
        self
    }

    /// Sets `max_packet_msg_payload_size`.
    pub fn max_packet_msg_payload_size(&mut self, bytes: usize) -> &mut Self {
        self.max_packet_msg_payload_size = bytes;
        self
    }

    /// Sets `send_rate` in bytes per second (0: unlimited).
    pub fn send_rate(&mut self, bytes_per_sec: u64) -> &mut Self {
        self.send_rate = bytes_per_sec;
        self
    }

    /// Sets `recv_rate` in bytes per second (0: unlimited).
    pub fn recv_rate(&mut self, bytes_per_sec: u64) -> &mut Self {
        self.recv_rate = bytes_per_sec;
        self
    }

    /// Sets `pex`.
    pub fn pex(&mut self, enabled: bool) -> &mut Self {
        self.pex = enabled;
        self
    }

    /// Sets `seed_mode`.
    pub fn seed_mode(&mut self, enabled: bool) -> &mut Self {
        self.seed_mode = enabled;
        self
    }

    /// Sets `private_peer_ids`.
    pub fn private_peer_ids(&mut self, ids: impl IntoIterator<Item = NodeId>) -> &mut Self {
        self.private_peer_ids = ids.into_iter().collect();
        self
    }

    /// Sets `allow_duplicate_ip`.
    pub fn allow_duplicate_ip(&mut self, allow: bool) -> &mut Self {
        self.allow_duplicate_ip = allow;
        self
    }

    /// Sets `handshake_timeout`.
    pub fn handshake_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Sets `dial_timeout`.
    pub fn dial_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.dial_timeout = timeout;
        self
    }

    /// The limit a reference node gives its transport for connections accepted at once:
    /// `max_num_inbound_peers` plus the number of `unconditional_peer_ids`.
    pub fn max_incoming_connections(&self) -> usize {
        self.max_num_inbound_peers
            .saturating_add(self.unconditional_peer_ids.len())
    }

    /// The address to announce in our NodeInfo: `external_address` if set, else the listen
    /// address (as the reference chooses).
    pub fn advertised_address(&self) -> &HostPort {
        self.external_address
            .as_ref()
            .unwrap_or(&self.listen_address)
    }
}

/// The parts of `config.toml` a p2p node uses: a few top-level keys and the `[p2p]` section.
/// The defaults are the reference's `DefaultConfig()` (CometBFT v0.38), except the moniker.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeConfig {
    /// The node's name. Default `"anonymous"` ([`DEFAULT_MONIKER`](crate::node_info::DEFAULT_MONIKER);
    /// the reference uses the host name, and `anonymous` only when it has none).
    pub moniker: String,
    /// The genesis file, relative to the home directory unless absolute. Default
    /// [`DEFAULT_GENESIS_FILE`].
    pub genesis_file: PathBuf,
    /// The node key file, relative to the home directory unless absolute. Default
    /// [`DEFAULT_NODE_KEY_FILE`].
    pub node_key_file: PathBuf,
    /// The log level, in the reference's syntax. Default [`DEFAULT_LOG_LEVEL`].
    pub log_level: String,
    /// The log format, `plain` or `json`. Default [`DEFAULT_LOG_FORMAT`].
    pub log_format: String,
    /// The `[p2p]` section.
    pub p2p: P2PConfig,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            moniker: crate::node_info::DEFAULT_MONIKER.to_owned(),
            genesis_file: PathBuf::from(DEFAULT_GENESIS_FILE),
            node_key_file: PathBuf::from(DEFAULT_NODE_KEY_FILE),
            log_level: DEFAULT_LOG_LEVEL.to_owned(),
            log_format: DEFAULT_LOG_FORMAT.to_owned(),
            p2p: P2PConfig::default(),
        }
    }
}

impl NodeConfig {
    /// Sets `moniker`.
    pub fn moniker(&mut self, moniker: impl Into<String>) -> &mut Self {
        self.moniker = moniker.into();
        self
    }

    /// Sets `genesis_file` (relative to the home directory unless absolute).
    pub fn genesis_file(&mut self, path: impl Into<PathBuf>) -> &mut Self {
        self.genesis_file = path.into();
        self
    }

    /// Sets `node_key_file` (relative to the home directory unless absolute).
    pub fn node_key_file(&mut self, path: impl Into<PathBuf>) -> &mut Self {
        self.node_key_file = path.into();
        self
    }

    /// Sets `log_level`.
    pub fn log_level(&mut self, level: impl Into<String>) -> &mut Self {
        self.log_level = level.into();
        self
    }

    /// Sets `log_format`.
    pub fn log_format(&mut self, format: impl Into<String>) -> &mut Self {
        self.log_format = format.into();
        self
    }

    /// Sets the `[p2p]` section.
    pub fn p2p(&mut self, p2p: P2PConfig) -> &mut Self {
        self.p2p = p2p;
        self
    }
}

/// Something in a configuration file that was accepted but deserves the operator's attention.
/// Reading a file collects these (and logs each at `warn` level).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigWarning {
    /// A key this implementation does not know, ignored; check its spelling and section.
    UnknownKey {
        /// The key with its section, e.g. `p2p.upnp`.
        key: String,
    },
    /// A known key that has no effect here.
    Ignored {
        /// The key with its section.
        key: String,
        /// Why it has no effect.
        reason: &'static str,
    },
    /// One entry of a list was dropped because it is invalid.
    DroppedEntry {
        /// The key with its section.
        key: String,
        /// The dropped entry.
        entry: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl ConfigWarning {
    /// The key the warning is about, with its section.
    pub fn key(&self) -> &str {
        match self {
            Self::UnknownKey { key }
            | Self::Ignored { key, .. }
            | Self::DroppedEntry { key, .. } => key,
        }
    }
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownKey { key } => write!(f, "unknown key {key} is ignored"),
            Self::Ignored { key, reason } => write!(f, "{key} is ignored: {reason}"),
            Self::DroppedEntry { key, entry, reason } => {
                write!(f, "{key}: entry {entry:?} is dropped: {reason}")
            }
        }
    }
}

/// Splits a comma-separated list the way the reference does: on every comma, trimming spaces
/// (only U+0020) around each entry and dropping empty entries.
///
/// ```
/// use p2p_types::config::split_list;
///
/// assert_eq!(split_list(" a, b ,,c,").collect::<Vec<_>>(), ["a", "b", "c"]);
/// assert_eq!(split_list("").count(), 0);
/// ```
pub fn split_list(s: &str) -> impl Iterator<Item = &str> {
    s.split(',')
        .map(|e| e.trim_matches(' '))
        .filter(|e| !e.is_empty())
}

/// Parses a comma-separated list of `id@host:port` addresses (`seeds`, `persistent_peers`),
/// failing on the first bad entry, as the reference's node does.
pub fn parse_peer_list(s: &str) -> Result<Vec<PeerAddress>, Error> {
    split_list(s).map(str::parse).collect()
}

/// Parses a comma-separated list of node IDs (`unconditional_peer_ids`, `private_peer_ids`).
pub fn parse_id_list(s: &str) -> Result<Vec<NodeId>, Error> {
    split_list(s).map(str::parse).collect()
}

/// Resolves a path from the configuration against the home directory, as the reference's
/// `rootify` does: absolute paths stay, relative ones are joined to `home`.
pub fn resolve_path(home: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_owned()
    } else {
        home.join(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_references() {
        let c = P2PConfig::default();
        assert_eq!(c.listen_address.to_string(), "0.0.0.0:26656");
        assert_eq!(c.external_address, None);
        assert_eq!(c.addr_book_file, Path::new("config/addrbook.json"));
        assert!(c.addr_book_strict);
        assert_eq!(
            (c.max_num_inbound_peers, c.max_num_outbound_peers),
            (40, 10)
        );
        assert_eq!(c.persistent_peers_max_dial_period, Duration::ZERO);
        assert_eq!(c.flush_throttle_timeout, Duration::from_millis(100));
        assert_eq!(c.max_packet_msg_payload_size, 1024);
        assert_eq!((c.send_rate, c.recv_rate), (5_120_000, 5_120_000));
        assert!(c.pex && !c.seed_mode && !c.allow_duplicate_ip);
        assert_eq!(c.handshake_timeout, Duration::from_secs(20));
        assert_eq!(c.dial_timeout, Duration::from_secs(3));
        let n = NodeConfig::default();
        assert_eq!(n.node_key_file, Path::new("config/node_key.json"));
        assert_eq!(n.genesis_file, Path::new("config/genesis.json"));
        assert_eq!(
            (n.log_level.as_str(), n.log_format.as_str()),
            ("info", "plain")
        );
    }

    #[test]
    fn lists_split_like_the_reference() {
        assert_eq!(
            split_list("\ta ,  b,").collect::<Vec<_>>(),
            ["\ta", "b"],
            "only spaces are trimmed"
        );
        let id = "deadbeefdeadbeefdeadbeefdeadbeefdeadbeef";
        let peers = parse_peer_list(&format!(" {id}@a.example:1 ,,{id}@[::1]:2")).unwrap();
        assert_eq!(peers.len(), 2);
        assert_eq!(peers[0].to_string(), format!("{id}@a.example:1"));
        assert_eq!(peers[1].to_string(), format!("{id}@[::1]:2"));
        assert!(parse_peer_list(&format!("{id}@a.example:1,nope")).is_err());
        assert_eq!(parse_id_list(id).unwrap().len(), 1);
        assert!(parse_id_list("abc").is_err());
    }

    #[test]
    fn limits_and_addresses() {
        let mut c = P2PConfig::default();
        let id: NodeId = "deadbeefdeadbeefdeadbeefdeadbeefdeadbeef".parse().unwrap();
        c.unconditional_peer_ids([id, id])
            .max_num_inbound_peers(usize::MAX);
        assert_eq!(c.max_incoming_connections(), usize::MAX);
        c.max_num_inbound_peers(3);
        assert_eq!(c.max_incoming_connections(), 5);
        assert_eq!(c.advertised_address(), &c.listen_address);
        let ext: HostPort = "node.example.com:1".parse().unwrap();
        c.external_address(Some(ext.clone()));
        assert_eq!(c.advertised_address(), &ext);
    }

    #[test]
    fn paths_resolve_like_rootify() {
        let home = Path::new("/home/n/.cometbft");
        assert_eq!(
            resolve_path(home, Path::new("config/addrbook.json")),
            Path::new("/home/n/.cometbft/config/addrbook.json")
        );
        assert_eq!(resolve_path(home, Path::new("/etc/x")), Path::new("/etc/x"));
    }
}
