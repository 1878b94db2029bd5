//! Switch settings, with the reference's defaults.

use std::net::SocketAddr;
use std::time::Duration;

use p2p_transport::TransportConfig;
use p2p_types::{NetAddress, NodeId};

/// Default `max_num_inbound_peers`: 40 (the reference's `config.toml` default).
pub const DEFAULT_MAX_NUM_INBOUND_PEERS: usize = 40;
/// Default `max_num_outbound_peers`: 10 (the reference's `config.toml` default).
pub const DEFAULT_MAX_NUM_OUTBOUND_PEERS: usize = 10;
/// Upper bound of the random delay before each dial of `dial_peers_async` and each redial:
/// 3 s (the reference's `dialRandomizerIntervalMilliseconds`).
pub const DIAL_RANDOMIZER_INTERVAL: Duration = Duration::from_secs(3);
/// Redials of a persistent peer at a fixed interval before the backoff starts: 20 (the
/// reference's `reconnectAttempts`).
pub const RECONNECT_ATTEMPTS: u32 = 20;
/// The fixed interval between those redials, plus up to [`DIAL_RANDOMIZER_INTERVAL`]: 5 s (the
/// reference's `reconnectInterval`).
pub const RECONNECT_INTERVAL: Duration = Duration::from_secs(5);
/// Redials with exponential backoff after the fixed ones: 10 (the reference's
/// `reconnectBackOffAttempts`).
pub const RECONNECT_BACKOFF_ATTEMPTS: u32 = 10;
/// Base of the backoff: the `i`th backoff redial waits `3^i` s plus up to
/// [`DIAL_RANDOMIZER_INTERVAL`] (the reference's `reconnectBackOffBaseSeconds`).
pub const RECONNECT_BACKOFF_BASE: u64 = 3;
/// Default bound on a graceful stop (of a peer, or of the whole switch): 10 s, the
/// MConnection's send timeout. (The reference's stop is unbounded.)
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings of a [`Switch`](crate::Switch): plain values with setters, the reference's
/// defaults (its `P2PConfig` in `config.toml`).
///
/// The transport settings are nested ([`transport`](Self::transport)); the switch fills in
/// the channels (from its reactors), `allow_duplicate_ip` and, when left at 0, the incoming
/// connection limit (`max_num_inbound_peers` plus the unconditional peers, as a reference node
/// does).
///
/// ```
/// use std::time::Duration;
/// use p2p_switch::SwitchConfig;
///
/// let mut config = SwitchConfig::default();
/// config
///     .listen_addr(Some("127.0.0.1:26656".parse().unwrap()))
///     .max_num_inbound_peers(20)
///     .persistent_peers_max_dial_period(Duration::from_secs(60))
///     .rng_seed(Some(7)); // deterministic dial jitter, for simulations
/// config.transport().handshake_timeout(Duration::from_secs(5));
/// ```
#[derive(Clone, Debug)]
pub struct SwitchConfig {
    pub(crate) listen_addr: Option<SocketAddr>,
    pub(crate) max_num_inbound_peers: usize,
    pub(crate) max_num_outbound_peers: usize,
    pub(crate) persistent_peers_max_dial_period: Duration,
    pub(crate) allow_duplicate_ip: bool,
    pub(crate) persistent_peers: Vec<NetAddress>,
    pub(crate) unconditional_peer_ids: Vec<NodeId>,
    pub(crate) private_peer_ids: Vec<NodeId>,
    pub(crate) stop_timeout: Duration,
    pub(crate) rng_seed: Option<u64>,
    pub(crate) transport: TransportConfig,
}

impl Default for SwitchConfig {
    fn default() -> Self {
        Self {
            listen_addr: Some(SocketAddr::from(([0, 0, 0, 0], 26656))),
            max_num_inbound_peers: DEFAULT_MAX_NUM_INBOUND_PEERS,
            max_num_outbound_peers: DEFAULT_MAX_NUM_OUTBOUND_PEERS,
            persistent_peers_max_dial_period: Duration::ZERO,
            allow_duplicate_ip: false,
            persistent_peers: Vec::new(),
            unconditional_peer_ids: Vec::new(),
            private_peer_ids: Vec::new(),
            stop_timeout: DEFAULT_STOP_TIMEOUT,
            rng_seed: None,
            transport: TransportConfig::default(),
        }
    }
}

impl SwitchConfig {
    /// Where [`start`](crate::Switch::start) listens (port 0: any free port); `None` to only
    /// dial. Default `0.0.0.0:26656` (the reference's `laddr`, `tcp://0.0.0.0:26656`).
    pub fn listen_addr(&mut self, addr: Option<SocketAddr>) -> &mut Self {
        self.listen_addr = addr;
        self
    }

    /// Most inbound peers, unconditional ones not counted; more are refused after their
    /// handshake. Default [`DEFAULT_MAX_NUM_INBOUND_PEERS`] (40).
    pub fn max_num_inbound_peers(&mut self, max: usize) -> &mut Self {
        self.max_num_inbound_peers = max;
        self
    }

    /// Most outbound peers, for the reactors that dial (PEX); the switch reports it and does
    /// not dial on its own. Default [`DEFAULT_MAX_NUM_OUTBOUND_PEERS`] (10).
    pub fn max_num_outbound_peers(&mut self, max: usize) -> &mut Self {
        self.max_num_outbound_peers = max;
        self
    }

    /// Longest wait between two redials of a persistent peer; zero keeps the reference's
    /// schedule (20 redials every 5 s, then 10 with backoff `3^i` s, then give up). When set,
    /// the switch redials persistent peers forever with the backoff capped at this period.
    /// Default zero (the reference's default; its switch ignores the setting, only its PEX
    /// reactor reads it).
    pub fn persistent_peers_max_dial_period(&mut self, period: Duration) -> &mut Self {
        self.persistent_peers_max_dial_period = period;
        self
    }

    /// Allows several peers at one IP, here and in the transport. Default `false` (the
    /// reference's `allow_duplicate_ip`); local testnets need `true`.
    pub fn allow_duplicate_ip(&mut self, allow: bool) -> &mut Self {
        self.allow_duplicate_ip = allow;
        self
    }

    /// The persistent peers (`persistent_peers`): redialed whenever their connection ends.
    /// Default none. [`resolve_peer_list`](crate::resolve_peer_list) parses the reference's
    /// comma-separated form.
    pub fn persistent_peers(&mut self, peers: impl IntoIterator<Item = NetAddress>) -> &mut Self {
        self.persistent_peers = peers.into_iter().collect();
        self
    }

    /// The unconditional peers (`unconditional_peer_ids`): exempt from the inbound limit and
    /// not counted in [`num_peers`](crate::SwitchHandle::num_peers). Default none.
    pub fn unconditional_peer_ids(&mut self, ids: impl IntoIterator<Item = NodeId>) -> &mut Self {
        self.unconditional_peer_ids = ids.into_iter().collect();
        self
    }

    /// The private peers (`private_peer_ids`): never handed to the address book. Default none.
    pub fn private_peer_ids(&mut self, ids: impl IntoIterator<Item = NodeId>) -> &mut Self {
        self.private_peer_ids = ids.into_iter().collect();
        self
    }

    /// Bound on graceful stops: a peer's flush before it is closed, a reactor's in-progress
    /// `receive` when its peer is removed, and the whole [`stop`](crate::Switch::stop).
    /// Default [`DEFAULT_STOP_TIMEOUT`] (10 s; the reference's stop is unbounded).
    pub fn stop_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.stop_timeout = timeout;
        self
    }

    /// Seed of the random numbers the switch draws (dial jitter, dial order); `None` draws the
    /// seed from the OS. Default `None`. Set it to make a simulated network deterministic.
    pub fn rng_seed(&mut self, seed: Option<u64>) -> &mut Self {
        self.rng_seed = seed;
        self
    }

    /// The transport settings, to change in place (timeouts, filters, MConnection settings).
    /// Default [`TransportConfig::default`].
    pub fn transport(&mut self) -> &mut TransportConfig {
        &mut self.transport
    }

    /// The settings of a node's `config.toml` `[p2p]` section: `laddr` (if its host is an IP
    /// literal; else all interfaces on its port), the peer limits, `persistent_peers` (DNS names
    /// looked up on a blocking thread, unresolvable ones logged and skipped, as the reference
    /// does), `unconditional_peer_ids`, `private_peer_ids`, `allow_duplicate_ip`,
    /// `persistent_peers_max_dial_period`, the handshake and dial timeouts, and the
    /// MConnection's flush throttle, packet payload size and rates. Everything else keeps the
    /// defaults above.
    pub async fn from_p2p_config(p2p: &p2p_types::config::P2PConfig) -> Self {
        let mut c = Self::default();
        let listen = p2p
            .listen_address
            .socket_addr()
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], p2p.listen_address.port())));
        let mut persistent = Vec::with_capacity(p2p.persistent_peers.len());
        for peer in &p2p.persistent_peers {
            if let Some(addr) = crate::switch::resolve(peer.clone()).await {
                persistent.push(addr);
            }
        }
        c.listen_addr(Some(listen))
            .max_num_inbound_peers(p2p.max_num_inbound_peers)
            .max_num_outbound_peers(p2p.max_num_outbound_peers)
            .persistent_peers(persistent)
            .unconditional_peer_ids(p2p.unconditional_peer_ids.iter().copied())
            .private_peer_ids(p2p.private_peer_ids.iter().copied())
            .allow_duplicate_ip(p2p.allow_duplicate_ip)
            .persistent_peers_max_dial_period(p2p.persistent_peers_max_dial_period);
        let mut mconn = p2p_mconn::MConnConfig::node_default();
        mconn
            .flush_throttle(p2p.flush_throttle_timeout)
            .max_packet_msg_payload_size(p2p.max_packet_msg_payload_size)
            .send_rate(p2p.send_rate)
            .recv_rate(p2p.recv_rate);
        c.transport()
            .handshake_timeout(p2p.handshake_timeout)
            .dial_timeout(p2p.dial_timeout)
            .mconn(mconn);
        c
    }

    /// The listen address.
    pub fn get_listen_addr(&self) -> Option<SocketAddr> {
        self.listen_addr
    }

    /// The inbound peer limit.
    pub fn get_max_num_inbound_peers(&self) -> usize {
        self.max_num_inbound_peers
    }

    /// The outbound peer limit.
    pub fn get_max_num_outbound_peers(&self) -> usize {
        self.max_num_outbound_peers
    }

    /// The persistent peers' longest redial period (zero: the reference's schedule).
    pub fn get_persistent_peers_max_dial_period(&self) -> Duration {
        self.persistent_peers_max_dial_period
    }

    /// Whether several peers may share an IP.
    pub fn get_allow_duplicate_ip(&self) -> bool {
        self.allow_duplicate_ip
    }

    /// The stop timeout.
    pub fn get_stop_timeout(&self) -> Duration {
        self.stop_timeout
    }

    /// The transport settings.
    pub fn get_transport(&self) -> &TransportConfig {
        &self.transport
    }
}

/// The base wait before backoff redial `i` (from 1) of a persistent peer: `3^i` s (saturating).
pub(crate) fn backoff(i: u32) -> Duration {
    Duration::from_secs(RECONNECT_BACKOFF_BASE.saturating_pow(i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_reference() {
        let c = SwitchConfig::default();
        assert_eq!(c.max_num_inbound_peers, 40);
        assert_eq!(c.max_num_outbound_peers, 10);
        assert_eq!(c.persistent_peers_max_dial_period, Duration::ZERO);
        assert!(!c.allow_duplicate_ip);
        assert_eq!(c.listen_addr, Some("0.0.0.0:26656".parse().unwrap()));
        assert_eq!(c.rng_seed, None);
    }

    #[tokio::test]
    async fn from_a_nodes_p2p_section() {
        let mut p2p = p2p_types::config::P2PConfig::default();
        let peer: p2p_types::PeerAddress =
            "deadbeefdeadbeefdeadbeefdeadbeefdeadbeef@10.1.2.3:26656"
                .parse()
                .unwrap();
        p2p.persistent_peers = vec![peer];
        p2p.max_num_inbound_peers = 7;
        p2p.persistent_peers_max_dial_period = Duration::from_secs(30);
        p2p.send_rate = 1000;
        let c = SwitchConfig::from_p2p_config(&p2p).await;
        assert_eq!(c.listen_addr, Some("0.0.0.0:26656".parse().unwrap()));
        assert_eq!(c.max_num_inbound_peers, 7);
        assert_eq!(c.persistent_peers.len(), 1);
        assert_eq!(
            c.persistent_peers[0].to_string(),
            "deadbeefdeadbeefdeadbeefdeadbeefdeadbeef@10.1.2.3:26656"
        );
        assert_eq!(c.persistent_peers_max_dial_period, Duration::from_secs(30));
        assert_eq!(c.transport.get_mconn().send_rate, 1000);
        assert_eq!(c.transport.get_mconn().recv_rate, 5_120_000);
        assert_eq!(c.transport.get_handshake_timeout(), Duration::from_secs(20));
        assert_eq!(c.transport.get_dial_timeout(), Duration::from_secs(3));
    }

    #[test]
    fn backoff_matches_the_reference() {
        assert_eq!(backoff(1), Duration::from_secs(3));
        assert_eq!(backoff(10), Duration::from_secs(59_049));
        let total: u64 = (1..=RECONNECT_BACKOFF_ATTEMPTS)
            .map(|i| backoff(i).as_secs())
            .sum();
        assert_eq!(total, 88_572);
        assert_eq!(backoff(100), Duration::from_secs(u64::MAX));
    }
}
