//! A CometBFT-compatible seed node.
//!
//! A seed runs only the peer-exchange (PEX) protocol in seed mode: it dials the addresses it
//! knows (crawling), asks each peer it dialled for more, answers other nodes' requests with a
//! selection of its address book and hangs up once the answer is sent. What it learns is kept
//! in the home's `addrbook.json`, saved periodically and on shutdown, so a restart resumes
//! from it.
//!
//! - [`Seed`]: one chain's seed, built from a CometBFT [`Home`] ([`Seed::start`],
//!   [`Seed::stop`], [`Seed::local_addr`], [`Seed::status`], [`Seed::verified_peers`],
//!   [`Seed::metrics_text`]).
//! - [`SeedSet`]: several chains in one process, from a [`config::SeedFile`]
//!   (`[[chain]]` entries) or from the command line's single home.
//! - [`http`]: `/metrics`, `/peers` (JSON), `/peers.txt`, per chain with `?chain=ID` or
//!   `/ID/peers`; [`status`]: the figures and the status line.
//!
//! Deliberate differences from the reference are listed in the [`manual`].

#![forbid(unsafe_code)]

pub mod cli;
pub mod config;
pub mod http;
pub mod manual;
pub mod status;

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use p2p_pex::{AddrBook, AddrBookConfig, PexConfig};
use p2p_switch::metrics::Metrics;
use p2p_switch::{Switch, SwitchBuilder, SwitchConfig};
use p2p_transport::TcpTransport;
use p2p_types::home::{Home, InitOptions};
use p2p_types::{NetAddress, NodeId, NodeInfo, NodeKey};
use prometheus_client::registry::Registry;

use crate::config::ChainConfig;
use crate::status::SeedMetrics;

/// Errors of the seed node.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The home directory could not be opened or created.
    #[error("home {home}: {source}")]
    Home {
        /// The home directory.
        home: PathBuf,
        /// Why.
        source: p2p_types::Error,
    },
    /// The address book file could not be read or written.
    #[error("address book {path}: {source}")]
    AddrBook {
        /// The file.
        path: PathBuf,
        /// Why.
        source: p2p_pex::Error,
    },
    /// The switch could not be built or started.
    #[error("chain {chain_id}: switch: {source}")]
    Switch {
        /// The chain.
        chain_id: String,
        /// Why.
        source: Box<p2p_switch::Error>,
    },
    /// The home has no chain ID (no genesis file) and none was given.
    #[error("home {home}: no genesis file and no chain ID given (--chain-id or chain_id)")]
    NoChainId {
        /// The home directory.
        home: PathBuf,
    },
    /// Two chains of one process have the same chain ID.
    #[error("chain {chain_id} is configured twice")]
    DuplicateChain {
        /// The chain.
        chain_id: String,
    },
    /// The seed config file could not be read or parsed.
    #[error("seed config {path}: {reason}")]
    SeedConfig {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The HTTP listener could not be bound.
    #[error("metrics address {addr}: {source}")]
    Http {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// Default [`SeedOptions::verified_window`]: an address counts as verified for 24 hours after
/// the seed last connected to it (no reference equivalent; the reference keeps crawl records
/// for the same 24 hours).
pub const DEFAULT_VERIFIED_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// Default [`SeedOptions::seed_disconnect_wait_period`]: 2 minutes (the reference waits 28
/// hours). The PEX crawls only within `max_num_outbound_peers`, so crawled peers held for 28
/// hours would stop the crawl after the first ten; a crawled peer is asked once per
/// connection, so keeping it longer teaches nothing. See the [`manual`].
pub const DEFAULT_DISCONNECT_WAIT: Duration = Duration::from_secs(120);

/// How a seed runs, beyond what the home's `config.toml` says. The defaults are the
/// reference's seed-mode constants, except [`DEFAULT_DISCONNECT_WAIT`].
#[derive(Clone, Debug)]
pub struct SeedOptions {
    crawl_period: Duration,
    min_time_between_crawls: Duration,
    seed_disconnect_wait_period: Duration,
    save_interval: Option<Duration>,
    ensure_peers_period: Duration,
    verified_window: Duration,
    max_addrs_per_ip: usize,
    rng_seed: Option<u64>,
}

impl Default for SeedOptions {
    fn default() -> Self {
        Self {
            crawl_period: p2p_pex::DEFAULT_CRAWL_PERIOD,
            min_time_between_crawls: p2p_pex::DEFAULT_MIN_TIME_BETWEEN_CRAWLS,
            seed_disconnect_wait_period: DEFAULT_DISCONNECT_WAIT,
            save_interval: None,
            ensure_peers_period: p2p_pex::DEFAULT_ENSURE_PEERS_PERIOD,
            verified_window: DEFAULT_VERIFIED_WINDOW,
            max_addrs_per_ip: p2p_pex::DEFAULT_MAX_ADDRS_PER_IP,
            rng_seed: None,
        }
    }
}

impl SeedOptions {
    /// How often the seed crawls. Default [`p2p_pex::DEFAULT_CRAWL_PERIOD`] (30 s, the
    /// reference's `crawlPeerPeriod`).
    pub fn crawl_period(&mut self, period: Duration) -> &mut Self {
        self.crawl_period = period;
        self
    }

    /// How long before an address is crawled again. Default
    /// [`p2p_pex::DEFAULT_MIN_TIME_BETWEEN_CRAWLS`] (2 min, the reference's
    /// `minTimeBetweenCrawls`).
    pub fn min_time_between_crawls(&mut self, period: Duration) -> &mut Self {
        self.min_time_between_crawls = period;
        self
    }

    /// How long a crawled peer stays connected at most (checked at each crawl). Default
    /// [`DEFAULT_DISCONNECT_WAIT`] (2 min); the reference's `SeedDisconnectWaitPeriod` is
    /// [`p2p_pex::DEFAULT_SEED_DISCONNECT_WAIT_PERIOD`] (28 h).
    pub fn seed_disconnect_wait_period(&mut self, period: Duration) -> &mut Self {
        self.seed_disconnect_wait_period = period;
        self
    }

    /// How often the address book is saved. Default `None`: the PEX default (2 min, the
    /// reference's `dumpAddressInterval`).
    pub fn save_interval(&mut self, interval: Option<Duration>) -> &mut Self {
        self.save_interval = interval;
        self
    }

    /// The PEX's `ensure_peers_period`. A seed does not top up peers; a third of it is the
    /// least time between two address requests of a peer we dialled (sooner, and the peer
    /// is disconnected and banned). Default [`p2p_pex::DEFAULT_ENSURE_PEERS_PERIOD`] (30 s, the
    /// reference's, so 10 s between requests).
    pub fn ensure_peers_period(&mut self, period: Duration) -> &mut Self {
        self.ensure_peers_period = period;
        self
    }

    /// How long after its last successful connection an address counts as verified (and is
    /// listed at `/peers`). Default [`DEFAULT_VERIFIED_WINDOW`].
    pub fn verified_window(&mut self, window: Duration) -> &mut Self {
        self.verified_window = window;
        self
    }

    /// Node IDs the book keeps per IP. Default [`p2p_pex::DEFAULT_MAX_ADDRS_PER_IP`] (4).
    pub fn max_addrs_per_ip(&mut self, max: usize) -> &mut Self {
        self.max_addrs_per_ip = max;
        self
    }

    /// Seeds the PEX's random generator (repeatable tests). Default `None`.
    pub fn rng_seed(&mut self, seed: Option<u64>) -> &mut Self {
        self.rng_seed = seed;
        self
    }

    /// See [`verified_window`](Self::verified_window).
    pub fn get_verified_window(&self) -> Duration {
        self.verified_window
    }
}

/// Name of the PEX reactor in the switch.
pub const PEX_REACTOR: &str = "pex";

/// Opens (creating what is missing, as the reference's `init` does) the home of `chain`,
/// applies its overrides and returns it with the node key to use (the home's, or the one at
/// `chain.node_key_file`, generated there if missing).
pub fn open_home(chain: &ChainConfig) -> Result<(Home, NodeKey), Error> {
    let mut init = InitOptions::default();
    if let Some(c) = &chain.chain_id {
        init.chain_id(c.clone());
    }
    if let Some(m) = &chain.moniker {
        init.moniker(m.clone());
    }
    let home_err = |source| Error::Home {
        home: chain.home.clone(),
        source,
    };
    let mut home = Home::load_or_init(&chain.home, &init).map_err(home_err)?;
    apply(chain, &mut home);
    let key = match &chain.node_key_file {
        Some(path) => NodeKey::load_or_generate(home.resolve(path)).map_err(home_err)?,
        None => home.node_key().clone(),
    };
    Ok((home, key))
}

fn apply(chain: &ChainConfig, home: &mut Home) {
    let p2p = &mut home.config_mut().p2p;
    if let Some(l) = &chain.laddr {
        p2p.listen_address(l.clone());
    }
    if let Some(e) = &chain.external_address {
        p2p.external_address(Some(e.clone()));
    }
    if let Some(s) = &chain.seeds {
        p2p.seeds(s.clone());
    }
}

/// A running seed for one chain.
pub struct Seed {
    chain_id: String,
    node_id: NodeId,
    switch: Switch<TcpTransport>,
    pex: p2p_pex::Reactor,
    registry: Mutex<Registry>,
    metrics: SeedMetrics,
    verified_window: Duration,
}

impl std::fmt::Debug for Seed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Seed")
            .field("chain_id", &self.chain_id)
            .field("node_id", &self.node_id)
            .finish_non_exhaustive()
    }
}

impl Seed {
    /// Builds the seed of `home`'s chain and starts it: the address book loaded from the
    /// home's `addr_book_file`, the PEX reactor in seed mode with the home's `seeds` (whatever
    /// `seed_mode` says), a switch from the home's `[p2p]` settings listening on its `laddr`,
    /// and metrics labelled `chain_id`.
    pub async fn start(home: &Home, options: &SeedOptions) -> Result<Self, Error> {
        Self::start_with_key(home, home.node_key().clone(), options).await
    }

    /// [`start`](Self::start) with another node key than the home's.
    pub async fn start_with_key(
        home: &Home,
        key: NodeKey,
        options: &SeedOptions,
    ) -> Result<Self, Error> {
        let config = home.config();
        let p2p = &config.p2p;
        let chain_id = home
            .chain_id()
            .map(str::to_owned)
            .ok_or_else(|| Error::NoChainId {
                home: home.root().to_owned(),
            })?;
        let switch_err = |source| Error::Switch {
            chain_id: chain_id.clone(),
            source: Box::new(source),
        };

        let mut book_config = AddrBookConfig::default();
        book_config
            .routability_strict(p2p.addr_book_strict)
            .max_addrs_per_ip(options.max_addrs_per_ip);
        let mut book = AddrBook::new(book_config);
        let book_path = home.resolve(&p2p.addr_book_file);
        let report = book
            .load_file(&book_path)
            .map_err(|source| Error::AddrBook {
                path: book_path.clone(),
                source,
            })?;
        tracing::info!(chain = %chain_id, path = %book_path.display(), loaded = report.loaded(),
            damaged = report.is_damaged(), "address book loaded");
        book.add_private_ids(p2p.private_peer_ids.iter().copied());

        let mut pex_config = p2p_pex::Config::default();
        let seeds: Vec<String> = p2p.seeds.iter().map(ToString::to_string).collect();
        pex_config.seeds(seeds.join(",")).rng_seed(options.rng_seed);
        let pex: &mut PexConfig = pex_config.pex();
        pex.seed_mode(true)
            .max_num_outbound_peers(p2p.max_num_outbound_peers)
            .crawl_period(options.crawl_period)
            .ensure_peers_period(options.ensure_peers_period)
            .min_time_between_crawls(options.min_time_between_crawls)
            .seed_disconnect_wait_period(options.seed_disconnect_wait_period);
        if let Some(i) = options.save_interval {
            pex.save_interval(i);
        }
        let pex = p2p_pex::Reactor::new(pex_config, book);

        let labels = [(Cow::Borrowed("chain_id"), Cow::Owned(chain_id.clone()))];
        let mut registry = Registry::with_labels(labels.into_iter());
        let switch_metrics = Metrics::new(&mut registry, "cometbft", false);
        let metrics = SeedMetrics::register(registry.sub_registry_with_prefix("cometbft_seed"));

        let mut switch_config = SwitchConfig::from_p2p_config(p2p).await;
        if let Some(seed) = options.rng_seed {
            switch_config.rng_seed(Some(seed));
        }
        let node_id = key.node_id();
        let mut info = NodeInfo::new(
            node_id,
            chain_id.clone(),
            format!("tcp://{}", p2p.advertised_address()),
        );
        info.moniker = config.moniker.clone();
        let mut builder = SwitchBuilder::new(key, info, switch_config);
        builder
            .add_reactor(PEX_REACTOR, pex.clone())
            .map_err(switch_err)?;
        builder
            .address_book(std::sync::Arc::new(pex.address_book()))
            .metrics(switch_metrics);
        let switch = builder.build_tcp().map_err(switch_err)?;
        switch.start().await.map_err(switch_err)?;
        tracing::info!(chain = %chain_id, id = %node_id, listen = ?switch.net_address(), "seed started");
        Ok(Self {
            chain_id,
            node_id,
            switch,
            pex,
            registry: Mutex::new(registry),
            metrics,
            verified_window: options.verified_window,
        })
    }

    /// The chain.
    pub fn chain_id(&self) -> &str {
        &self.chain_id
    }

    /// Our node ID.
    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// Where the seed listens (`id@ip:port`, the port the system picked if `laddr` asked for
    /// port 0); `None` once stopped.
    pub fn local_addr(&self) -> Option<NetAddress> {
        self.switch
            .net_address()
            .filter(|_| self.switch.is_running())
    }

    /// The switch (its handle: peers, counts).
    pub fn switch(&self) -> p2p_switch::SwitchHandle {
        self.switch.handle()
    }

    /// The PEX reactor (its address book and counters).
    pub fn pex(&self) -> &p2p_pex::Reactor {
        &self.pex
    }

    /// The Prometheus text of this chain's metrics (the switch's `cometbft_p2p_*` and the
    /// seed's `cometbft_seed_*`, all labelled `chain_id`), refreshed now.
    pub fn metrics_text(&self) -> String {
        self.metrics.update(&self.status());
        let registry = self
            .registry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        p2p_switch::metrics::render(&registry)
    }

    /// Stops the switch (every peer disconnected, the PEX reactor stopped) and saves the
    /// address book. A second call does nothing more.
    pub async fn stop(&self) {
        self.switch.stop().await;
        self.pex.address_book().save_now();
        tracing::info!(chain = %self.chain_id, "seed stopped");
    }
}

/// Several seeds in one process, one per chain.
#[derive(Debug, Default)]
pub struct SeedSet {
    seeds: Vec<Seed>,
}

impl SeedSet {
    /// Opens each chain's home and starts its seed, in order. If one fails, those already
    /// started are stopped and the error returned. Chain IDs must be distinct.
    pub async fn start(chains: &[ChainConfig], options: &SeedOptions) -> Result<Self, Error> {
        let mut set = Self::default();
        for chain in chains {
            let started = async {
                let (home, key) = open_home(chain)?;
                if let Some(id) = home.chain_id() {
                    if set.get(id).is_some() {
                        return Err(Error::DuplicateChain {
                            chain_id: id.to_owned(),
                        });
                    }
                }
                Seed::start_with_key(&home, key, options).await
            }
            .await;
            match started {
                Ok(seed) => set.seeds.push(seed),
                Err(e) => {
                    set.stop().await;
                    return Err(e);
                }
            }
        }
        Ok(set)
    }

    /// A set of already started seeds.
    pub fn from_seeds(seeds: Vec<Seed>) -> Self {
        Self { seeds }
    }

    /// The seeds, in configuration order.
    pub fn seeds(&self) -> &[Seed] {
        &self.seeds
    }

    /// The seed of `chain_id`.
    pub fn get(&self, chain_id: &str) -> Option<&Seed> {
        self.seeds.iter().find(|s| s.chain_id == chain_id)
    }

    /// One status per chain.
    pub fn statuses(&self) -> Vec<status::Status> {
        self.seeds.iter().map(Seed::status).collect()
    }

    /// Stops every seed (saving each address book).
    pub async fn stop(&self) {
        for s in &self.seeds {
            s.stop().await;
        }
    }
}

impl http::Source for SeedSet {
    fn metrics(&self) -> String {
        let texts: Vec<String> = self.seeds.iter().map(Seed::metrics_text).collect();
        status::merge_openmetrics(&texts)
    }

    fn peers(&self, chain: Option<&str>) -> Option<Vec<status::PeerEntry>> {
        match chain {
            None => Some(self.seeds.iter().flat_map(Seed::verified_peers).collect()),
            Some(id) => self.get(id).map(Seed::verified_peers),
        }
    }

    fn statuses(&self) -> Vec<status::Status> {
        Self::statuses(self)
    }
}
