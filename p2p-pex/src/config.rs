//! Settings of the address book and of the PEX protocol, with the reference's defaults.

use std::time::Duration;

use p2p_types::NetAddress;

use crate::params::{DEFAULT_BAN_TIME, DUMP_ADDRESS_INTERVAL, MAX_ATTEMPTS_TO_DIAL};

/// Default [`AddrBookConfig::max_addrs_per_ip`]: 4 node IDs per IP (no reference equivalent).
pub const DEFAULT_MAX_ADDRS_PER_IP: usize = 4;
/// Default [`AddrBookConfig::max_bans`]: 10 000 banned node IDs remembered at once (no
/// reference equivalent: the reference's ban list is unbounded).
pub const DEFAULT_MAX_BANS: usize = 10_000;
/// Default [`AddrBookConfig::max_failed_attempts`]: an address that failed 16 dials in a row,
/// with no success in the last week, is dropped (no reference equivalent; 16 is the reference
/// PEX reactor's `maxAttemptsToDial`).
pub const DEFAULT_MAX_FAILED_ATTEMPTS: u32 = MAX_ATTEMPTS_TO_DIAL;

/// Settings of an [`AddrBook`](crate::AddrBook).
///
/// ```
/// use p2p_pex::AddrBookConfig;
///
/// let mut config = AddrBookConfig::default();
/// config.routability_strict(false).max_addrs_per_ip(2);
/// assert!(!config.is_strict());
/// ```
#[derive(Clone, Debug)]
pub struct AddrBookConfig {
    pub(crate) strict: bool,
    pub(crate) max_addrs_per_ip: usize,
    pub(crate) max_bans: usize,
    pub(crate) max_failed_attempts: u32,
}

impl Default for AddrBookConfig {
    fn default() -> Self {
        Self {
            strict: true,
            max_addrs_per_ip: DEFAULT_MAX_ADDRS_PER_IP,
            max_bans: DEFAULT_MAX_BANS,
            max_failed_attempts: DEFAULT_MAX_FAILED_ATTEMPTS,
        }
    }
}

impl AddrBookConfig {
    /// Whether only publicly routable addresses are accepted, and local and private ones are
    /// grouped as `"local"` / `"unroutable"`. Default `true` (the reference's
    /// `addr_book_strict`). Turn it off for private networks and tests on one machine.
    pub fn routability_strict(&mut self, strict: bool) -> &mut Self {
        self.strict = strict;
        self
    }

    /// How many node IDs the book holds on one IP at most; further IDs on that IP are refused
    /// with [`Error::IpLimit`](crate::Error::IpLimit). Default [`DEFAULT_MAX_ADDRS_PER_IP`]. At
    /// least 1. (The reference has no such limit: one host can fill the book by announcing
    /// itself under thousands of fresh IDs.)
    pub fn max_addrs_per_ip(&mut self, max: usize) -> &mut Self {
        self.max_addrs_per_ip = max.max(1);
        self
    }

    /// How many bans are remembered at once; when full, the ban ending soonest is forgotten.
    /// Default [`DEFAULT_MAX_BANS`]. At least 1.
    pub fn max_bans(&mut self, max: usize) -> &mut Self {
        self.max_bans = max.max(1);
        self
    }

    /// After this many failed attempts in a row, an address with no success in the last week is
    /// removed from the book. Default [`DEFAULT_MAX_FAILED_ATTEMPTS`]. At least 1.
    pub fn max_failed_attempts(&mut self, max: u32) -> &mut Self {
        self.max_failed_attempts = max.max(1);
        self
    }

    /// See [`routability_strict`](Self::routability_strict).
    pub fn is_strict(&self) -> bool {
        self.strict
    }

    /// See [`max_addrs_per_ip`](Self::max_addrs_per_ip).
    pub fn addrs_per_ip_limit(&self) -> usize {
        self.max_addrs_per_ip
    }
}

/// Default [`PexConfig::ensure_peers_period`]: 30 s (the reference's `defaultEnsurePeersPeriod`).
pub const DEFAULT_ENSURE_PEERS_PERIOD: Duration = Duration::from_secs(30);
/// Default [`PexConfig::max_num_outbound_peers`]: 10 (the reference's `max_num_outbound_peers`).
pub const DEFAULT_MAX_NUM_OUTBOUND_PEERS: usize = 10;
/// Default [`PexConfig::seed_disconnect_wait_period`]: 28 h (what the reference's
/// `node/setup.go` hard-codes).
pub const DEFAULT_SEED_DISCONNECT_WAIT_PERIOD: Duration = Duration::from_secs(28 * 3600);
/// Default [`PexConfig::crawl_period`]: 30 s (the reference's `crawlPeerPeriod`).
pub const DEFAULT_CRAWL_PERIOD: Duration = Duration::from_secs(30);
/// Default [`PexConfig::min_time_between_crawls`]: 2 min (the reference's
/// `minTimeBetweenCrawls`).
pub const DEFAULT_MIN_TIME_BETWEEN_CRAWLS: Duration = Duration::from_secs(2 * 60);

/// Settings of the PEX protocol ([`PexCore`](crate::PexCore)).
///
/// ```
/// use std::time::Duration;
/// use p2p_pex::PexConfig;
///
/// let mut config = PexConfig::default();
/// config
///     .seed_mode(true)
///     .seed_disconnect_wait_period(Duration::from_secs(5 * 60))
///     .max_num_outbound_peers(20);
/// ```
#[derive(Clone, Debug)]
pub struct PexConfig {
    pub(crate) seed_mode: bool,
    pub(crate) seeds: Vec<NetAddress>,
    pub(crate) ensure_peers_period: Duration,
    pub(crate) max_num_outbound_peers: usize,
    pub(crate) seed_disconnect_wait_period: Duration,
    pub(crate) persistent_peers_max_dial_period: Duration,
    pub(crate) crawl_period: Duration,
    pub(crate) min_time_between_crawls: Duration,
    pub(crate) max_attempts_to_dial: u32,
    pub(crate) ban_time: Duration,
    pub(crate) save_interval: Duration,
}

impl Default for PexConfig {
    fn default() -> Self {
        Self {
            seed_mode: false,
            seeds: Vec::new(),
            ensure_peers_period: DEFAULT_ENSURE_PEERS_PERIOD,
            max_num_outbound_peers: DEFAULT_MAX_NUM_OUTBOUND_PEERS,
            seed_disconnect_wait_period: DEFAULT_SEED_DISCONNECT_WAIT_PERIOD,
            persistent_peers_max_dial_period: Duration::ZERO,
            crawl_period: DEFAULT_CRAWL_PERIOD,
            min_time_between_crawls: DEFAULT_MIN_TIME_BETWEEN_CRAWLS,
            max_attempts_to_dial: MAX_ATTEMPTS_TO_DIAL,
            ban_time: DEFAULT_BAN_TIME,
            save_interval: DUMP_ADDRESS_INTERVAL,
        }
    }
}

impl PexConfig {
    /// Runs as a seed (crawler): crawl the network, answer each inbound request once and
    /// disconnect, never run the outbound-peer upkeep. Default `false` (the reference's
    /// `seed_mode`).
    pub fn seed_mode(&mut self, seed_mode: bool) -> &mut Self {
        self.seed_mode = seed_mode;
        self
    }

    /// The seed nodes, dialled when the book has nothing to dial. Default none (the
    /// reference's `seeds`). Resolve DNS names before (`PeerAddress::resolve`); see
    /// [`check_seeds`](crate::check_seeds) for the start-up rule about unresolvable seeds.
    pub fn seeds(&mut self, seeds: impl IntoIterator<Item = NetAddress>) -> &mut Self {
        self.seeds = seeds.into_iter().collect();
        self
    }

    /// How often the outbound peers are topped up; a peer asking for addresses more often
    /// than every third of this is disconnected and banned. Default
    /// [`DEFAULT_ENSURE_PEERS_PERIOD`]. At least 3 ms.
    pub fn ensure_peers_period(&mut self, period: Duration) -> &mut Self {
        self.ensure_peers_period = period.max(Duration::from_millis(3));
        self
    }

    /// Most outbound peers (connected plus being dialled) the PEX ever makes. Default
    /// [`DEFAULT_MAX_NUM_OUTBOUND_PEERS`] (the reference's `max_num_outbound_peers`).
    pub fn max_num_outbound_peers(&mut self, max: usize) -> &mut Self {
        self.max_num_outbound_peers = max;
        self
    }

    /// In seed mode, how long a non-persistent peer stays connected before it is
    /// disconnected. Default [`DEFAULT_SEED_DISCONNECT_WAIT_PERIOD`] (the reference hard-codes
    /// 28 h).
    pub fn seed_disconnect_wait_period(&mut self, period: Duration) -> &mut Self {
        self.seed_disconnect_wait_period = period;
        self
    }

    /// Cap on the redial backoff of persistent peers; zero means uncapped. Default zero (the
    /// reference's `persistent_peers_max_dial_period`).
    pub fn persistent_peers_max_dial_period(&mut self, period: Duration) -> &mut Self {
        self.persistent_peers_max_dial_period = period;
        self
    }

    /// In seed mode, how often the network is crawled. Default [`DEFAULT_CRAWL_PERIOD`].
    /// At least 1 ms.
    pub fn crawl_period(&mut self, period: Duration) -> &mut Self {
        self.crawl_period = period.max(Duration::from_millis(1));
        self
    }

    /// In seed mode, the least time between two crawls of one peer. Default
    /// [`DEFAULT_MIN_TIME_BETWEEN_CRAWLS`].
    pub fn min_time_between_crawls(&mut self, period: Duration) -> &mut Self {
        self.min_time_between_crawls = period;
        self
    }

    /// Failed dials after which a non-persistent address is banned. Default
    /// [`MAX_ATTEMPTS_TO_DIAL`] (16, the reference's `maxAttemptsToDial`).
    pub fn max_attempts_to_dial(&mut self, max: u32) -> &mut Self {
        self.max_attempts_to_dial = max;
        self
    }

    /// How long a misbehaving peer is banned. Default [`DEFAULT_BAN_TIME`] (24 h, the
    /// reference's `defaultBanTime`).
    pub fn ban_time(&mut self, ban_time: Duration) -> &mut Self {
        self.ban_time = ban_time;
        self
    }

    /// How often the address book is saved. Default [`DUMP_ADDRESS_INTERVAL`] (2 min, the
    /// reference's `dumpAddressInterval`). At least 1 s.
    pub fn save_interval(&mut self, interval: Duration) -> &mut Self {
        self.save_interval = interval.max(Duration::from_secs(1));
        self
    }

    /// The least time between two requests of one peer: a third of
    /// [`ensure_peers_period`](Self::ensure_peers_period).
    pub fn min_receive_request_interval(&self) -> Duration {
        self.ensure_peers_period / 3
    }

    /// Whether seed mode is on.
    pub fn is_seed_mode(&self) -> bool {
        self.seed_mode
    }

    /// The seed nodes.
    pub fn seed_addrs(&self) -> &[NetAddress] {
        &self.seeds
    }
}
