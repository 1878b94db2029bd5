//! Reading and writing `config.toml` (feature `config`).
//!
//! Reading walks the parsed TOML tables by hand rather than through a serde derive, so that
//! each unknown key becomes a warning, each bad value an error naming the key, and keys match
//! without regard to case (the reference's loader lower-cases every key).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::{Table, Value};

use super::{ConfigWarning, GoDuration, NodeConfig, P2PConfig, format_go_duration, split_list};
use crate::{Error, HostPort, NodeId, PeerAddress};

/// Top-level keys of the reference (v0.34 to v1.0) that a p2p node has no use for.
const IGNORED_BASE_KEYS: &[&str] = &[
    "version",
    "proxy_app",
    "block_sync",
    "fast_sync",
    "db_backend",
    "db_dir",
    "priv_validator_key_file",
    "priv_validator_state_file",
    "priv_validator_laddr",
    "abci",
    "filter_peers",
    "event_bus_buffer_capacity",
    "prof_laddr",
];

/// Sections of the reference (v0.34 to v1.0) other than `[p2p]`; their content is not ours.
const OTHER_SECTIONS: &[&str] = &[
    "rpc",
    "grpc",
    "mempool",
    "statesync",
    "blocksync",
    "fastsync",
    "consensus",
    "storage",
    "tx_index",
    "instrumentation",
];

/// Why the `home` key has no effect.
const HOME_IGNORED: &str = "the home directory is where the file is read from";
/// Why the reference's testing switches have no effect.
const TEST_SWITCH_IGNORED: &str = "a testing switch of the reference that is not implemented here";
/// Why v0.40's `[p2p.libp2p] enabled = true` has no effect.
const LIBP2P_IGNORED: &str = "CometBFT v0.40's experimental go-libp2p networking is not implemented \
     here; this node speaks the CometBFT p2p protocol with the other [p2p] settings";

/// The longest rendering of a bad value in an error message, in characters.
const MAX_SHOWN: usize = 200;

impl NodeConfig {
    /// Reads a `config.toml`: the top-level keys and the `[p2p]` section this struct holds,
    /// starting from the defaults. Keys are matched without regard to case, as the reference
    /// does. Returns the warnings for unknown and ignored keys (each is also logged at `warn`
    /// level); fails on a syntax error ([`Error::ConfigSyntax`]), a value of the wrong type or
    /// range ([`Error::ConfigValue`]) or a key given twice ([`Error::ConfigDuplicateKey`]).
    ///
    /// ```
    /// use std::time::Duration;
    /// use p2p_types::config::{ConfigWarning, NodeConfig};
    ///
    /// let text = r#"
    /// moniker = "seed-1"
    /// [p2p]
    /// seeds = "deadbeefdeadbeefdeadbeefdeadbeefdeadbeef@seed.example.com:26656"
    /// dial_timeout = "1.5s"
    /// upnp = false
    /// "#;
    /// let (config, warnings) = NodeConfig::from_toml(text).unwrap();
    /// assert_eq!(config.moniker, "seed-1");
    /// assert_eq!(config.p2p.dial_timeout, Duration::from_millis(1500));
    /// assert_eq!(warnings, [ConfigWarning::UnknownKey { key: "p2p.upnp".into() }]);
    ///
    /// let err = NodeConfig::from_toml("[p2p]\nmax_num_inbound_peers = -1").unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     "config key p2p.max_num_inbound_peers = -1: expected a non-negative integer"
    /// );
    /// ```
    pub fn from_toml(text: &str) -> Result<(Self, Vec<ConfigWarning>), Error> {
        let table: Table = text
            .parse()
            .map_err(|e: toml::de::Error| Error::ConfigSyntax {
                reason: e.to_string().trim_end().to_owned(),
            })?;
        let mut reader = Reader::default();
        let config = reader.node(&table)?;
        for warning in &reader.warnings {
            tracing::warn!(key = warning.key(), "config.toml: {warning}");
        }
        Ok((config, reader.warnings))
    }

    /// Writes the configuration as a `config.toml` in the reference's layout (the same keys in
    /// the same order, durations in Go's syntax), with comments explaining each key.
    /// [`from_toml`](Self::from_toml) reads it back to an equal value without warnings, and a
    /// reference node reads it with the same meaning (the settings of its other subsystems,
    /// absent here, take their defaults).
    ///
    /// Paths that are not valid UTF-8 are written lossily; durations above about 292 years
    /// ([`GoDuration::MAX`]) are written but cannot be read back.
    pub fn to_toml(&self) -> String {
        render(self)
    }
}

// ---- reading -------------------------------------------------------------------------------

#[derive(Default)]
struct Reader {
    warnings: Vec<ConfigWarning>,
}

/// The entries of a table with lower-cased keys, each with its key as written, refusing two
/// keys that differ only in case.
fn entries<'t>(table: &'t Table, section: &str) -> Result<Vec<(String, Key<'t>)>, Error> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(table.len());
    for (key, value) in table {
        let lower = key.to_lowercase();
        let key = Key {
            name: qualified(section, key),
            value,
        };
        if !seen.insert(lower.clone()) {
            return Err(Error::ConfigDuplicateKey { key: key.name });
        }
        out.push((lower, key));
    }
    Ok(out)
}

fn qualified(section: &str, key: &str) -> String {
    if section.is_empty() {
        key.to_owned()
    } else {
        format!("{section}.{key}")
    }
}

/// A key (with its section, as written) and its value.
struct Key<'t> {
    name: String,
    value: &'t Value,
}

impl Key<'_> {
    fn error(&self, expected: impl Into<String>) -> Error {
        Error::ConfigValue {
            key: self.name.as_str().into(),
            value: show(self.value).into(),
            expected: expected.into().into(),
        }
    }

    fn string(&self) -> Result<&str, Error> {
        self.value
            .as_str()
            .ok_or_else(|| self.error("a string in double quotes"))
    }

    fn boolean(&self) -> Result<bool, Error> {
        self.value
            .as_bool()
            .ok_or_else(|| self.error("true or false"))
    }

    fn integer(&self) -> Result<u64, Error> {
        self.value
            .as_integer()
            .and_then(|i| u64::try_from(i).ok())
            .ok_or_else(|| self.error("a non-negative integer"))
    }

    fn count(&self) -> Result<usize, Error> {
        let n = self.integer()?;
        usize::try_from(n).map_err(|_| self.error("a non-negative integer that fits in memory"))
    }

    fn duration(&self) -> Result<Duration, Error> {
        const EXPECTED: &str = "a non-negative Go duration such as \"100ms\", \"3s\" or \"1m30s\"";
        let s = self.value.as_str().ok_or_else(|| self.error(EXPECTED))?;
        let d: GoDuration = s.parse().map_err(|e| match e {
            Error::InvalidDuration { reason, .. } => self.error(format!("{EXPECTED} ({reason})")),
            other => self.error(format!("{EXPECTED} ({other})")),
        })?;
        d.to_std().ok_or_else(|| self.error(EXPECTED))
    }

    fn path(&self) -> Result<PathBuf, Error> {
        const EXPECTED: &str = "a file path (relative to the home directory, or absolute)";
        match self.value.as_str() {
            Some(s) if !s.is_empty() => Ok(PathBuf::from(s)),
            _ => Err(self.error(EXPECTED)),
        }
    }

    fn host_port(&self) -> Result<HostPort, Error> {
        const EXPECTED: &str = "an address of the form [tcp://]host:port";
        let s = self.value.as_str().ok_or_else(|| self.error(EXPECTED))?;
        s.parse()
            .map_err(|e| self.error(format!("{EXPECTED} ({e})")))
    }

    fn peers(&self) -> Result<Vec<PeerAddress>, Error> {
        const EXPECTED: &str = "a comma-separated list of id@host:port addresses";
        let s = self.value.as_str().ok_or_else(|| self.error(EXPECTED))?;
        split_list(s)
            .map(|entry| {
                entry
                    .parse()
                    .map_err(|e| self.error(format!("{EXPECTED} (entry {entry:?}: {e})")))
            })
            .collect()
    }

    fn ids(&self) -> Result<Vec<NodeId>, Error> {
        const EXPECTED: &str = "a comma-separated list of node IDs (40 hex characters each)";
        let s = self.value.as_str().ok_or_else(|| self.error(EXPECTED))?;
        split_list(s)
            .map(|entry| {
                entry
                    .parse()
                    .map_err(|e| self.error(format!("{EXPECTED} (entry {entry:?}: {e})")))
            })
            .collect()
    }
}

impl Reader {
    fn warn(&mut self, warning: ConfigWarning) {
        self.warnings.push(warning);
    }

    fn node(&mut self, table: &Table) -> Result<NodeConfig, Error> {
        let mut config = NodeConfig::default();
        for (lower, key) in entries(table, "")? {
            match lower.as_str() {
                "moniker" => config.moniker = key.string()?.to_owned(),
                "genesis_file" => config.genesis_file = key.path()?,
                "node_key_file" => config.node_key_file = key.path()?,
                "log_level" => config.log_level = key.string()?.to_owned(),
                "log_format" => {
                    let format = key.string()?;
                    if !matches!(format, "plain" | "json") {
                        return Err(key.error("\"plain\" or \"json\""));
                    }
                    config.log_format = format.to_owned();
                }
                "p2p" => {
                    let section = key
                        .value
                        .as_table()
                        .ok_or_else(|| key.error("a [p2p] section (a table)"))?;
                    config.p2p = self.p2p(section, &key.name)?;
                }
                "home" => self.warn(ConfigWarning::Ignored {
                    key: key.name,
                    reason: HOME_IGNORED,
                }),
                other if IGNORED_BASE_KEYS.contains(&other) => {}
                other if OTHER_SECTIONS.contains(&other) && key.value.is_table() => {}
                _ => self.warn(ConfigWarning::UnknownKey { key: key.name }),
            }
        }
        Ok(config)
    }

    fn p2p(&mut self, table: &Table, section: &str) -> Result<P2PConfig, Error> {
        let mut c = P2PConfig::default();
        for (lower, key) in entries(table, section)? {
            match lower.as_str() {
                "laddr" => c.listen_address = key.host_port()?,
                "external_address" => {
                    c.external_address = if key.string()?.is_empty() {
                        None
                    } else {
                        Some(key.host_port()?)
                    }
                }
                "seeds" => c.seeds = key.peers()?,
                "persistent_peers" => c.persistent_peers = key.peers()?,
                "addr_book_file" => c.addr_book_file = key.path()?,
                "addr_book_strict" => c.addr_book_strict = key.boolean()?,
                "max_num_inbound_peers" => c.max_num_inbound_peers = key.count()?,
                "max_num_outbound_peers" => c.max_num_outbound_peers = key.count()?,
                "unconditional_peer_ids" => c.unconditional_peer_ids = key.ids()?,
                "persistent_peers_max_dial_period" => {
                    c.persistent_peers_max_dial_period = key.duration()?;
                }
                "flush_throttle_timeout" => c.flush_throttle_timeout = key.duration()?,
                "max_packet_msg_payload_size" => c.max_packet_msg_payload_size = key.count()?,
                "send_rate" => c.send_rate = key.integer()?,
                "recv_rate" => c.recv_rate = key.integer()?,
                "pex" => c.pex = key.boolean()?,
                "seed_mode" => c.seed_mode = key.boolean()?,
                "private_peer_ids" => c.private_peer_ids = self.private_ids(&key)?,
                "allow_duplicate_ip" => c.allow_duplicate_ip = key.boolean()?,
                "handshake_timeout" => c.handshake_timeout = key.duration()?,
                "dial_timeout" => c.dial_timeout = key.duration()?,
                "test_dial_fail" | "test_fuzz" => {
                    if key.boolean()? {
                        self.warn(ConfigWarning::Ignored {
                            key: key.name,
                            reason: TEST_SWITCH_IGNORED,
                        });
                    }
                }
                // CometBFT v0.40's experimental go-libp2p table (written by its `init`).
                "libp2p" => {
                    let table = key
                        .value
                        .as_table()
                        .ok_or_else(|| key.error("a [p2p.libp2p] section (a table)"))?;
                    if table.get("enabled").and_then(Value::as_bool) == Some(true) {
                        self.warn(ConfigWarning::Ignored {
                            key: format!("{}.enabled", key.name),
                            reason: LIBP2P_IGNORED,
                        });
                    }
                }
                "test_fuzz_config" => {
                    if !key.value.is_table() {
                        return Err(key.error("a table"));
                    }
                }
                "home" => self.warn(ConfigWarning::Ignored {
                    key: key.name,
                    reason: HOME_IGNORED,
                }),
                _ => self.warn(ConfigWarning::UnknownKey { key: key.name }),
            }
        }
        Ok(c)
    }

    /// `private_peer_ids`: the reference stores the strings unchecked (a bad one never matches
    /// a peer), so a bad entry is dropped with a warning rather than failing the file.
    fn private_ids(&mut self, key: &Key<'_>) -> Result<Vec<NodeId>, Error> {
        let s = key
            .value
            .as_str()
            .ok_or_else(|| key.error("a comma-separated list of node IDs"))?;
        let mut ids = Vec::new();
        for entry in split_list(s) {
            match entry.parse::<NodeId>() {
                Ok(id) => ids.push(id),
                Err(e) => self.warn(ConfigWarning::DroppedEntry {
                    key: key.name.clone(),
                    entry: entry.to_owned(),
                    reason: e.to_string(),
                }),
            }
        }
        Ok(ids)
    }
}

/// A short rendering of a TOML value for an error message.
fn show(value: &Value) -> String {
    match value {
        Value::String(s) => {
            let mut shown: String = s.chars().take(MAX_SHOWN).collect();
            if shown.len() < s.len() {
                shown.push('…');
            }
            format!("{shown:?}")
        }
        Value::Integer(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Boolean(b) => b.to_string(),
        Value::Datetime(d) => d.to_string(),
        Value::Array(a) => format!("an array of {} values", a.len()),
        Value::Table(_) => "a table".to_owned(),
    }
}

// ---- writing -------------------------------------------------------------------------------

/// A TOML basic string: `"..."` with backslash escapes.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn quote_path(path: &Path) -> String {
    quote(&path.to_string_lossy())
}

fn quote_duration(d: Duration) -> String {
    quote(&format_go_duration(d))
}

/// Joins addresses or IDs into the comma-separated form.
fn join<T: ToString>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// The file, key by key in the reference's order; the comments are ours.
fn render(c: &NodeConfig) -> String {
    let p = &c.p2p;
    let external = p
        .external_address
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default();
    let mut out = String::new();
    // `write!` into a String cannot fail.
    let _ = write!(
        out,
        r#"# CometBFT node configuration (TOML), limited to the settings a p2p node reads.
# A CometBFT node can use this file as it is: what it lacks takes the node's defaults.
#
# Paths are relative to the home directory (the directory holding config/ and data/)
# unless they are absolute. Durations are written like "100ms", "3s" or "1m30s".

#######################################################################
###                   Main Base Config Options                      ###
#######################################################################

# The node's name, as its peers see it.
moniker = {moniker}

# How much to log: a level (debug, info, error, none), or levels per module such as
# "p2p:debug,*:info".
log_level = {log_level}

# "plain" for text lines, "json" for one JSON object per line.
log_format = {log_format}

##### additional base config options #####

# The chain's genesis document; its chain_id names the network this node belongs to.
genesis_file = {genesis_file}

# The node's private ed25519 key, from which its node ID is derived.
node_key_file = {node_key_file}

#######################################################################
###                 Advanced Configuration Options                  ###
#######################################################################

#######################################################
###           P2P Configuration Options             ###
#######################################################
[p2p]

# Where to accept incoming connections.
laddr = {laddr}

# The host:port peers should dial to reach this node, when it is not laddr (behind NAT or a
# load balancer, for instance). Empty: laddr is advertised.
external_address = {external}

# Seed nodes to ask for peer addresses, as comma-separated id@host:port entries.
seeds = {seeds}

# Peers to stay connected to (redialled when the connection drops), as comma-separated
# id@host:port entries.
persistent_peers = {persistent_peers}

# Where the address book (known peer addresses) is kept.
addr_book_file = {addr_book_file}

# true: keep only publicly routable addresses in the address book.
# Turn it off on private or local networks.
addr_book_strict = {addr_book_strict}

# The most peers that may have dialled this node.
max_num_inbound_peers = {max_num_inbound_peers}

# The most peers this node dials itself, persistent peers not counted.
max_num_outbound_peers = {max_num_outbound_peers}

# Comma-separated node IDs that may connect, or are dialled, beyond the two limits above.
unconditional_peer_ids = {unconditional_peer_ids}

# The longest wait between two dials of a persistent peer; "0s": exponential back-off, uncapped.
persistent_peers_max_dial_period = {persistent_peers_max_dial_period}

# How long a connection collects small messages before sending them.
flush_throttle_timeout = {flush_throttle_timeout}

# Message bytes per packet. Every peer of the network must use the same value.
max_packet_msg_payload_size = {max_packet_msg_payload_size}

# The most bytes per second sent on one connection (0: no limit).
send_rate = {send_rate}

# The most bytes per second received on one connection (0: no limit).
recv_rate = {recv_rate}

# true: exchange peer addresses with other nodes (peer exchange, PEX).
pex = {pex}

# true: run as a seed, which crawls the network for addresses, hands them to whoever asks and
# then disconnects. Needs pex = true.
seed_mode = {seed_mode}

# Comma-separated node IDs whose addresses are never passed on to other peers.
private_peer_ids = {private_peer_ids}

# true: accept more than one peer from the same IP address.
allow_duplicate_ip = {allow_duplicate_ip}

# How long connecting may take: the encrypted handshake and the exchange of node information
# (handshake_timeout), and the TCP connect (dial_timeout).
handshake_timeout = {handshake_timeout}
dial_timeout = {dial_timeout}
"#,
        moniker = quote(&c.moniker),
        log_level = quote(&c.log_level),
        log_format = quote(&c.log_format),
        genesis_file = quote_path(&c.genesis_file),
        node_key_file = quote_path(&c.node_key_file),
        laddr = quote(&format!("tcp://{}", p.listen_address)),
        external = quote(&external),
        seeds = quote(&join(&p.seeds)),
        persistent_peers = quote(&join(&p.persistent_peers)),
        addr_book_file = quote_path(&p.addr_book_file),
        addr_book_strict = p.addr_book_strict,
        max_num_inbound_peers = p.max_num_inbound_peers,
        max_num_outbound_peers = p.max_num_outbound_peers,
        unconditional_peer_ids = quote(&join(&p.unconditional_peer_ids)),
        persistent_peers_max_dial_period = quote_duration(p.persistent_peers_max_dial_period),
        flush_throttle_timeout = quote_duration(p.flush_throttle_timeout),
        max_packet_msg_payload_size = p.max_packet_msg_payload_size,
        send_rate = p.send_rate,
        recv_rate = p.recv_rate,
        pex = p.pex,
        seed_mode = p.seed_mode,
        private_peer_ids = quote(&join(&p.private_peer_ids)),
        allow_duplicate_ip = p.allow_duplicate_ip,
        handshake_timeout = quote_duration(p.handshake_timeout),
        dial_timeout = quote_duration(p.dial_timeout),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "deadbeefdeadbeefdeadbeefdeadbeefdeadbeef";

    fn parse(text: &str) -> Result<(NodeConfig, Vec<ConfigWarning>), Error> {
        NodeConfig::from_toml(text)
    }

    #[test]
    fn empty_file_is_the_defaults() {
        assert_eq!(parse("").unwrap(), (NodeConfig::default(), vec![]));
    }

    #[test]
    fn keys_ignore_case_but_not_twice() {
        let (c, w) = parse("MONIKER = \"x\"\n[P2P]\nPex = false").unwrap();
        assert_eq!(c.moniker, "x");
        assert!(!c.p2p.pex);
        assert!(w.is_empty());
        assert_eq!(
            parse("[p2p]\npex = false\nPEX = true").unwrap_err(),
            Error::ConfigDuplicateKey {
                key: "p2p.pex".into()
            }
        );
    }

    #[test]
    fn dotted_keys_are_the_same_section() {
        let (c, _) = parse("p2p.seed_mode = true").unwrap();
        assert!(c.p2p.seed_mode);
    }

    #[test]
    fn syntax_errors_are_reported() {
        assert!(matches!(parse("[p2p"), Err(Error::ConfigSyntax { .. })));
        assert!(matches!(
            parse("a = 1\na = 2"),
            Err(Error::ConfigSyntax { .. })
        ));
    }

    #[test]
    fn deep_nesting_is_refused_without_overflowing_the_stack() {
        for (open, close) in [("[", "]"), ("{a=", "}")] {
            let text = format!("x = {}1{}", open.repeat(100_000), close.repeat(100_000));
            assert!(matches!(parse(&text), Err(Error::ConfigSyntax { .. })));
        }
        let text = format!("{} = 1", vec!["a"; 100_000].join("."));
        let _ = parse(&text);
    }

    #[test]
    fn quote_escapes() {
        assert_eq!(quote("a\"b\\c\nd\u{1}é"), r#""a\"b\\c\nd\u0001é""#);
        let text = format!("moniker = {}", quote("x\"\\\u{7f}\u{b}\t ü"));
        assert_eq!(parse(&text).unwrap().0.moniker, "x\"\\\u{7f}\u{b}\t ü");
    }

    #[test]
    fn long_values_are_cut_in_errors() {
        let long = "x".repeat(1000);
        let err = parse(&format!("[p2p]\nladdr = \"{long}\"")).unwrap_err();
        let Error::ConfigValue { value, .. } = err else {
            panic!("{err}")
        };
        assert!(value.chars().count() < 210, "{value}");
    }

    #[test]
    fn private_ids_drop_bad_entries() {
        let (c, w) = parse(&format!("[p2p]\nprivate_peer_ids = \"{ID}, nope\"")).unwrap();
        assert_eq!(c.p2p.private_peer_ids, [ID.parse().unwrap()]);
        assert!(matches!(
            &w[..],
            [ConfigWarning::DroppedEntry { key, entry, .. }] if key == "p2p.private_peer_ids" && entry == "nope"
        ));
    }

    #[test]
    fn render_round_trips() {
        let mut c = NodeConfig::default();
        c.moniker("my \"node\"").log_format("json");
        c.p2p
            .seeds([format!("{ID}@seed.example.com:26656").parse().unwrap()])
            .external_address(Some("[::1]:1".parse().unwrap()))
            .flush_throttle_timeout(Duration::from_micros(1500))
            .seed_mode(true);
        let text = c.to_toml();
        assert_eq!(parse(&text).unwrap(), (c, vec![]));
    }
}
