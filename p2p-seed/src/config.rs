//! The seed's own configuration file, for one process seeding several chains (as tinyseed
//! does): top-level settings and one `[[chain]]` table per chain.
//!
//! ```toml
//! metrics_addr = "127.0.0.1:26660"   # optional: serve /metrics and /peers here
//! status_interval = "10s"            # optional, a Go duration; "0s" turns status lines off
//!
//! [[chain]]
//! home = "/var/lib/p2p-seed/cosmoshub"  # a CometBFT home (created with defaults if absent)
//! chain_id = "cosmoshub-4"              # optional when the home has a genesis file
//! laddr = "tcp://0.0.0.0:26656"         # optional: overrides [p2p] laddr
//! seeds = "id@host:26656,id@host:26656" # optional: overrides [p2p] seeds
//! node_key_file = "node_key.json"       # optional: overrides node_key_file
//! external_address = "tcp://203.0.113.7:26656"  # optional: overrides [p2p] external_address
//! moniker = "my-seed"                   # optional: moniker of a new config.toml
//! ```
//!
//! Every key of a `[[chain]]` but `home` overrides the home's `config.toml` for this run
//! (nothing is written back). Relative `home` paths are relative to the directory of the seed
//! file. Unknown keys are an error, so a typo is not silently ignored. [`SeedFile::from_toml`]
//! never panics on any input (a fuzz target checks it).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use p2p_types::config::GoDuration;
use p2p_types::{HostPort, PeerAddress};
use serde::Deserialize;

use crate::Error;

/// Largest seed file read (64 KiB: a few dozen chains need a few KiB).
pub const MAX_SEED_FILE_SIZE: u64 = 64 * 1024;
/// Most `[[chain]]` entries in one file (each runs a switch with its own listener).
pub const MAX_CHAINS: usize = 64;
/// Default interval between status lines: 10 s (no reference equivalent).
pub const DEFAULT_STATUS_INTERVAL: Duration = Duration::from_secs(10);

/// One chain to seed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChainConfig {
    /// The chain's home directory.
    pub home: PathBuf,
    /// The chain ID (required when the home has no genesis file; must match it otherwise).
    pub chain_id: Option<String>,
    /// Moniker for a new `config.toml`.
    pub moniker: Option<String>,
    /// Overrides `[p2p] laddr`.
    pub laddr: Option<HostPort>,
    /// Overrides `[p2p] external_address`.
    pub external_address: Option<HostPort>,
    /// Overrides `[p2p] seeds`.
    pub seeds: Option<Vec<PeerAddress>>,
    /// Overrides `node_key_file` (relative to the chain's home unless absolute).
    pub node_key_file: Option<PathBuf>,
}

impl ChainConfig {
    /// A chain served from `home`, with the home's own settings.
    pub fn new(home: impl Into<PathBuf>) -> Self {
        Self {
            home: home.into(),
            ..Self::default()
        }
    }

    /// See [`chain_id`](Self::chain_id).
    pub fn chain_id(&mut self, id: impl Into<String>) -> &mut Self {
        self.chain_id = Some(id.into());
        self
    }

    /// See [`laddr`](Self::laddr).
    pub fn laddr(&mut self, addr: HostPort) -> &mut Self {
        self.laddr = Some(addr);
        self
    }

    /// See [`seeds`](Self::seeds).
    pub fn seeds(&mut self, seeds: Vec<PeerAddress>) -> &mut Self {
        self.seeds = Some(seeds);
        self
    }
}

/// A parsed seed file.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SeedFile {
    /// Where to serve `/metrics` and `/peers`, if anywhere.
    pub metrics_addr: Option<SocketAddr>,
    /// Interval between status lines (zero: none). Default [`DEFAULT_STATUS_INTERVAL`].
    pub status_interval: Duration,
    /// The chains, in file order.
    pub chains: Vec<ChainConfig>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    metrics_addr: Option<String>,
    status_interval: Option<String>,
    #[serde(default)]
    chain: Vec<RawChain>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChain {
    home: String,
    chain_id: Option<String>,
    moniker: Option<String>,
    laddr: Option<String>,
    external_address: Option<String>,
    seeds: Option<String>,
    node_key_file: Option<String>,
}

fn bad(path: &Path, reason: impl Into<String>) -> Error {
    Error::SeedConfig {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

impl SeedFile {
    /// Reads and checks the seed file at `path` (at most [`MAX_SEED_FILE_SIZE`] bytes);
    /// relative homes are resolved against the file's directory.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let meta = std::fs::metadata(path).map_err(|e| bad(path, e.to_string()))?;
        if meta.len() > MAX_SEED_FILE_SIZE {
            return Err(bad(
                path,
                format!(
                    "{} bytes, more than the {MAX_SEED_FILE_SIZE} allowed",
                    meta.len()
                ),
            ));
        }
        let text = std::fs::read_to_string(path).map_err(|e| bad(path, e.to_string()))?;
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        Self::from_toml(&text, base).map_err(|e| match e {
            Error::SeedConfig { reason, .. } => bad(path, reason),
            other => other,
        })
    }

    /// Parses and checks seed-file text; relative homes are resolved against `base`. At
    /// least one and at most [`MAX_CHAINS`] chains; chain IDs given must be distinct, and so
    /// must homes and listen addresses.
    pub fn from_toml(text: &str, base: &Path) -> Result<Self, Error> {
        let here = Path::new("<seed file>");
        if text.len() as u64 > MAX_SEED_FILE_SIZE {
            return Err(bad(here, "file too large"));
        }
        let raw: RawFile = toml::from_str(text).map_err(|e| bad(here, e.to_string()))?;
        let metrics_addr = raw
            .metrics_addr
            .map(|s| {
                s.parse::<SocketAddr>()
                    .map_err(|e| bad(here, format!("metrics_addr {s:?}: {e}")))
            })
            .transpose()?;
        let status_interval = match raw.status_interval {
            None => DEFAULT_STATUS_INTERVAL,
            Some(s) => s
                .parse::<GoDuration>()
                .ok()
                .and_then(GoDuration::to_std)
                .ok_or_else(|| {
                    bad(
                        here,
                        format!("status_interval {s:?}: not a non-negative Go duration"),
                    )
                })?,
        };
        if raw.chain.is_empty() {
            return Err(bad(here, "no [[chain]] entry"));
        }
        if raw.chain.len() > MAX_CHAINS {
            return Err(bad(
                here,
                format!(
                    "{} chains, more than the {MAX_CHAINS} allowed",
                    raw.chain.len()
                ),
            ));
        }
        let mut chains = Vec::with_capacity(raw.chain.len());
        for (i, c) in raw.chain.into_iter().enumerate() {
            let at = |what: &str, e: &dyn std::fmt::Display| {
                bad(here, format!("chain #{}: {what}: {e}", i + 1))
            };
            if c.home.is_empty() {
                return Err(at("home", &"empty"));
            }
            let home = base.join(&c.home);
            let laddr = c
                .laddr
                .map(|s| s.parse::<HostPort>().map_err(|e| at("laddr", &e)))
                .transpose()?;
            let external_address = c
                .external_address
                .map(|s| {
                    s.parse::<HostPort>()
                        .map_err(|e| at("external_address", &e))
                })
                .transpose()?;
            let seeds = c
                .seeds
                .map(|s| p2p_types::config::parse_peer_list(&s).map_err(|e| at("seeds", &e)))
                .transpose()?;
            if let Some(id) = &c.chain_id {
                if id.is_empty() {
                    return Err(at("chain_id", &"empty"));
                }
            }
            chains.push(ChainConfig {
                home,
                chain_id: c.chain_id,
                moniker: c.moniker,
                laddr,
                external_address,
                seeds,
                node_key_file: c.node_key_file.map(PathBuf::from),
            });
        }
        for (i, a) in chains.iter().enumerate() {
            for b in chains.iter().skip(i + 1) {
                if a.home == b.home {
                    return Err(bad(here, format!("home {} used twice", a.home.display())));
                }
                if a.chain_id.is_some() && a.chain_id == b.chain_id {
                    return Err(bad(here, format!("chain_id {:?} used twice", a.chain_id)));
                }
                if a.laddr.is_some() && a.laddr == b.laddr {
                    return Err(bad(here, format!("laddr {:?} used twice", a.laddr)));
                }
            }
        }
        Ok(Self {
            metrics_addr,
            status_interval,
            chains,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_two_chains() {
        let f = SeedFile::from_toml(
            r#"
            metrics_addr = "127.0.0.1:26660"
            status_interval = "1m30s"
            [[chain]]
            home = "a"
            chain_id = "chain-a"
            laddr = "tcp://127.0.0.1:26656"
            seeds = "0123456789abcdef0123456789abcdef01234567@127.0.0.1:1"
            [[chain]]
            home = "/abs/b"
            "#,
            Path::new("/etc/seed"),
        )
        .unwrap();
        assert_eq!(f.metrics_addr, Some("127.0.0.1:26660".parse().unwrap()));
        assert_eq!(f.status_interval, Duration::from_secs(90));
        assert_eq!(f.chains.len(), 2);
        assert_eq!(f.chains[0].home, PathBuf::from("/etc/seed/a"));
        assert_eq!(f.chains[0].chain_id.as_deref(), Some("chain-a"));
        assert_eq!(f.chains[0].seeds.as_ref().map(Vec::len), Some(1));
        assert_eq!(f.chains[1].home, PathBuf::from("/abs/b"));
        assert_eq!(f.chains[1].laddr, None);
    }

    #[test]
    fn refuses_bad_files() {
        let base = Path::new(".");
        for (text, why) in [
            ("", "no [[chain]]"),
            ("[[chain]]\nhome = \"a\"\nport = 1\n", "unknown field"),
            ("[[chain]]\nhome = \"\"\n", "empty"),
            ("[[chain]]\nhome = \"a\"\nladdr = \"nope\"\n", "laddr"),
            ("[[chain]]\nhome = \"a\"\nseeds = \"x@y\"\n", "seeds"),
            (
                "status_interval = \"-1s\"\n[[chain]]\nhome = \"a\"\n",
                "status_interval",
            ),
            (
                "metrics_addr = \"x\"\n[[chain]]\nhome = \"a\"\n",
                "metrics_addr",
            ),
            (
                "[[chain]]\nhome = \"a\"\n[[chain]]\nhome = \"a\"\n",
                "used twice",
            ),
            (
                "[[chain]]\nhome = \"a\"\nchain_id = \"c\"\n[[chain]]\nhome = \"b\"\nchain_id = \"c\"\n",
                "used twice",
            ),
        ] {
            let e = SeedFile::from_toml(text, base).unwrap_err().to_string();
            assert!(e.contains(why), "{text:?}: {e}");
        }
        let many: String = (0..=MAX_CHAINS)
            .map(|i| format!("[[chain]]\nhome = \"h{i}\"\n"))
            .collect();
        let e = SeedFile::from_toml(&many, base).unwrap_err().to_string();
        assert!(e.contains("more than"), "{e}");
    }
}
