//! The command line: one chain from `--home` and flags, or several from `--config`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use p2p_types::config::GoDuration;
use p2p_types::{HostPort, PeerAddress};

use crate::config::{ChainConfig, DEFAULT_STATUS_INTERVAL, SeedFile};
use crate::{Error, SeedOptions};

fn go_duration(s: &str) -> Result<Duration, String> {
    s.parse::<GoDuration>()
        .map_err(|e| e.to_string())?
        .to_std()
        .ok_or_else(|| "negative durations are not allowed".to_owned())
}

/// A parsed `id@host:port,...` list (one flag value).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerList(pub Vec<PeerAddress>);

fn peer_list(s: &str) -> Result<PeerList, String> {
    p2p_types::config::parse_peer_list(s)
        .map(PeerList)
        .map_err(|e| e.to_string())
}

/// Runs a CometBFT seed node: only the peer exchange (PEX) in seed mode, which crawls the
/// chain's network and answers other nodes' address requests. A CometBFT (Go) home directory
/// works unchanged; a missing one is created with the defaults, as `cometbft init` would.
#[derive(Clone, Debug, Parser, PartialEq, Eq)]
#[command(version, about, long_about = None)]
pub struct Args {
    /// CometBFT home directory: config/config.toml, config/node_key.json, config/genesis.json
    /// (chain ID) and config/addrbook.json (kept up to date). Created with defaults when
    /// absent; existing files are never rewritten, except the address book.
    #[arg(long, default_value = ".cometbft", conflicts_with = "config")]
    pub home: PathBuf,
    /// Chain ID. Needed when the home has no genesis file; must match it otherwise.
    #[arg(long, value_name = "ID")]
    pub chain_id: Option<String>,
    /// Moniker written into a new config.toml (an existing one keeps its own).
    #[arg(long)]
    pub moniker: Option<String>,
    /// P2P listen address, overriding `[p2p] laddr`, e.g. tcp://0.0.0.0:26656.
    #[arg(long, value_name = "[tcp://]HOST:PORT")]
    pub laddr: Option<HostPort>,
    /// Address announced to peers, overriding `[p2p] external_address`.
    #[arg(long, value_name = "[tcp://]HOST:PORT")]
    pub external_address: Option<HostPort>,
    /// Seeds to start crawling from, as `id@host:port,...`, overriding `[p2p] seeds`. With no
    /// seeds and an empty address book the seed only waits for nodes to dial it.
    #[arg(long, value_name = "LIST", value_parser = peer_list)]
    pub seeds: Option<PeerList>,
    /// Serve /metrics, /status, /peers and /peers.txt over HTTP on HOST:PORT (off by default).
    #[arg(long, value_name = "HOST:PORT")]
    pub metrics_addr: Option<SocketAddr>,
    /// Interval between status lines on standard output, a Go duration ("0s": none).
    /// Default 10s.
    #[arg(long, value_name = "DURATION", value_parser = go_duration)]
    pub status_interval: Option<Duration>,
    /// How often the seed crawls (dials known addresses and asks them for more), a Go
    /// duration. Default 30s, as the reference.
    #[arg(long, value_name = "DURATION", value_parser = go_duration)]
    pub crawl_period: Option<Duration>,
    /// How long a crawled peer may stay connected (checked at each crawl), a Go duration.
    /// Default 2m; the reference's 28h would stall crawling once max_num_outbound_peers
    /// crawled peers are held.
    #[arg(long, value_name = "DURATION", value_parser = go_duration)]
    pub disconnect_wait: Option<Duration>,
    /// How long after the last successful connection an address counts as verified (listed
    /// at /peers), a Go duration. Default 24h.
    #[arg(long, value_name = "DURATION", value_parser = go_duration)]
    pub verified_window: Option<Duration>,
    /// Seed several chains from one process: a TOML file with `[[chain]]` entries (see the
    /// README). Excludes --home and the per-chain flags; --metrics-addr and
    /// --status-interval override the file's.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["chain_id", "moniker", "laddr", "external_address", "seeds"])]
    pub config: Option<PathBuf>,
}

/// What the command line asks for.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Plan {
    /// The chains.
    pub chains: Vec<ChainConfig>,
    /// The options shared by every chain.
    pub options: SeedOptions,
    /// Where to serve HTTP.
    pub metrics_addr: Option<SocketAddr>,
    /// Interval between status lines (zero: none).
    pub status_interval: Duration,
}

impl Args {
    /// Turns the flags (and the `--config` file, read now) into a [`Plan`].
    pub fn plan(&self) -> Result<Plan, Error> {
        let (chains, file_metrics, file_status) = match &self.config {
            Some(path) => {
                let f = SeedFile::load(path)?;
                (f.chains, f.metrics_addr, f.status_interval)
            }
            None => {
                let mut c = ChainConfig::new(&self.home);
                c.chain_id = self.chain_id.clone();
                c.moniker = self.moniker.clone();
                c.laddr = self.laddr.clone();
                c.external_address = self.external_address.clone();
                c.seeds = self.seeds.clone().map(|l| l.0);
                (vec![c], None, DEFAULT_STATUS_INTERVAL)
            }
        };
        let mut options = SeedOptions::default();
        if let Some(p) = self.crawl_period {
            options.crawl_period(p);
        }
        if let Some(p) = self.disconnect_wait {
            options.seed_disconnect_wait_period(p);
        }
        if let Some(w) = self.verified_window {
            options.verified_window(w);
        }
        Ok(Plan {
            chains,
            options,
            metrics_addr: self.metrics_addr.or(file_metrics),
            status_interval: self.status_interval.unwrap_or(file_status),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn flags_become_one_chain() {
        let a = Args::try_parse_from([
            "p2p-seed",
            "--home",
            "/h",
            "--chain-id",
            "c",
            "--laddr",
            "tcp://127.0.0.1:1",
            "--seeds",
            "0123456789abcdef0123456789abcdef01234567@127.0.0.1:2",
            "--status-interval",
            "1m",
            "--crawl-period",
            "5s",
        ])
        .unwrap();
        let p = a.plan().unwrap();
        assert_eq!(p.chains.len(), 1);
        assert_eq!(p.chains[0].home, PathBuf::from("/h"));
        assert_eq!(p.chains[0].chain_id.as_deref(), Some("c"));
        assert_eq!(p.chains[0].seeds.as_ref().map(Vec::len), Some(1));
        assert_eq!(p.status_interval, Duration::from_secs(60));
        assert!(Args::try_parse_from(["p2p-seed", "--laddr", "nope"]).is_err());
        assert!(Args::try_parse_from(["p2p-seed", "--config", "f", "--chain-id", "x"]).is_err());
        assert!(Args::try_parse_from(["p2p-seed", "--status-interval", "-1s"]).is_err());
    }
}
