//! Transport settings, with the reference's defaults.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use p2p_mconn::{ChannelDescriptor, MConnConfig};

use crate::filter::{ConnFilter, PeerFilter};
use crate::socket::SocketTuning;
use crate::{Admission, Error, HandshakeRateLimit};

/// Default dial timeout: 1 s, the reference transport's `defaultDialTimeout` (TCP connect).
pub const DEFAULT_DIAL_TIMEOUT: Duration = Duration::from_secs(1);
/// Default handshake timeout: 3 s, the reference transport's `defaultHandshakeTimeout`.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(3);
/// Default filter timeout: 5 s, the reference transport's `defaultFilterTimeout`.
pub const DEFAULT_FILTER_TIMEOUT: Duration = Duration::from_secs(5);
/// Default capacity of the queue between the per-connection upgrade tasks and `accept`.
pub const DEFAULT_ACCEPT_QUEUE: usize = 16;
/// The listen backlog asked for where the system's maximum cannot be read (see
/// [`system_listen_backlog`]). Linux, macOS and the BSDs cap a requested backlog at their own
/// maximum, so asking for more than it is harmless; 4096 is Linux's default maximum since
/// kernel 5.4.
pub const FALLBACK_LISTEN_BACKLOG: u32 = 4096;

/// The system's maximum listen backlog, which [`TransportConfig::listen_backlog`] uses by
/// default (as Go's `net.Listen` does): on Linux `/proc/sys/net/core/somaxconn` (capped at
/// 65535, as Go does, for kernels that keep it in 16 bits), elsewhere or when unreadable
/// [`FALLBACK_LISTEN_BACKLOG`].
pub fn system_listen_backlog() -> u32 {
    #[cfg(target_os = "linux")]
    if let Some(n) = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .filter(|n| *n > 0)
    {
        return n.min(u32::from(u16::MAX));
    }
    FALLBACK_LISTEN_BACKLOG
}

/// Default per-source limit on inbound handshakes: 32 at once, then 10 per second (one per
/// 100 ms). The reference has no such limit.
///
/// Why these numbers: an inbound handshake costs about 200 µs of CPU, so a source held to 10
/// per second costs at most 0.2 % of a core, however fast it opens connections. Honest nodes
/// connect once and then hold the connection (a reference node redials a lost peer after
/// seconds, with backoff), so even a few dozen validators and sentries behind one NAT address,
/// all reconnecting at once after a restart, stay within the burst of 32.
pub const DEFAULT_HANDSHAKE_RATE_LIMIT: HandshakeRateLimit =
    HandshakeRateLimit::new(32, Duration::from_millis(100));

/// Settings of a transport and of the upgrade pipeline. Plain values with setters; the
/// defaults are those of a reference v0.38 node's transport.
///
/// ```
/// use std::time::Duration;
/// use p2p_mconn::reference;
/// use p2p_transport::TransportConfig;
///
/// let mut config = TransportConfig::default();
/// config
///     .channels(reference::full_node())
///     .max_incoming_connections(40)
///     .handshake_timeout(Duration::from_secs(5));
/// // The unsafe knobs sit behind one more step.
/// config.dangerous().allow_duplicate_ip(true);
/// ```
#[derive(Clone)]
pub struct TransportConfig {
    pub(crate) dial_timeout: Duration,
    pub(crate) handshake_timeout: Duration,
    pub(crate) filter_timeout: Duration,
    pub(crate) max_incoming_connections: usize,
    pub(crate) accept_queue: usize,
    pub(crate) handshake_rate_limit: Option<HandshakeRateLimit>,
    pub(crate) listen_backlog: u32,
    pub(crate) allow_duplicate_ip: bool,
    pub(crate) channels: Vec<ChannelDescriptor>,
    pub(crate) mconn: MConnConfig,
    pub(crate) secret: p2p_secretconn::Config,
    pub(crate) socket_tuning: SocketTuning,
    pub(crate) conn_filters: Vec<Arc<dyn ConnFilter>>,
    pub(crate) peer_filters: Vec<Arc<dyn PeerFilter>>,
}

impl Default for TransportConfig {
    fn default() -> Self {
        Self {
            dial_timeout: DEFAULT_DIAL_TIMEOUT,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            filter_timeout: DEFAULT_FILTER_TIMEOUT,
            max_incoming_connections: 0,
            accept_queue: DEFAULT_ACCEPT_QUEUE,
            handshake_rate_limit: Some(DEFAULT_HANDSHAKE_RATE_LIMIT),
            listen_backlog: 0,
            allow_duplicate_ip: false,
            channels: Vec::new(),
            mconn: MConnConfig::node_default(),
            secret: p2p_secretconn::Config::default(),
            socket_tuning: SocketTuning::Auto,
            conn_filters: Vec::new(),
            peer_filters: Vec::new(),
        }
    }
}

impl fmt::Debug for TransportConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransportConfig")
            .field("dial_timeout", &self.dial_timeout)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("filter_timeout", &self.filter_timeout)
            .field("max_incoming_connections", &self.max_incoming_connections)
            .field("accept_queue", &self.accept_queue)
            .field("handshake_rate_limit", &self.handshake_rate_limit)
            .field("listen_backlog", &self.listen_backlog)
            .field("allow_duplicate_ip", &self.allow_duplicate_ip)
            .field("channels", &self.channels)
            .field("mconn", &self.mconn)
            .field("secret", &self.secret)
            .field("socket_tuning", &self.socket_tuning)
            .field(
                "conn_filters",
                &self
                    .conn_filters
                    .iter()
                    .map(|f| f.name())
                    .collect::<Vec<_>>(),
            )
            .field(
                "peer_filters",
                &self
                    .peer_filters
                    .iter()
                    .map(|f| f.name())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl TransportConfig {
    /// How long a TCP connect may take. Default [`DEFAULT_DIAL_TIMEOUT`] (1 s, the reference's
    /// transport default; its `config.toml` `dial_timeout` of 3 s is not wired in v0.38).
    pub fn dial_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.dial_timeout = timeout;
        self
    }

    /// Deadline for the SecretConnection handshake, and again, fresh, for the NodeInfo exchange
    /// after it (as the reference resets its deadline between the two), so an upgrade takes at
    /// most twice this long. Default [`DEFAULT_HANDSHAKE_TIMEOUT`] (3 s, the reference's
    /// transport default; its `config.toml` `handshake_timeout` of 20 s is not wired in v0.38).
    pub fn handshake_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.handshake_timeout = timeout;
        self
    }

    /// How long each connection or peer filter may take before the connection is refused.
    /// Default [`DEFAULT_FILTER_TIMEOUT`] (5 s, as in the reference).
    pub fn filter_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.filter_timeout = timeout;
        self
    }

    /// Most inbound connections held at once, counting those still being upgraded and the
    /// established ones not yet cleaned up; 0 means unlimited. Default 0 (the reference's
    /// transport default; a reference node sets `max_num_inbound_peers` plus the number of
    /// unconditional peers).
    ///
    /// **Difference from the reference:** the reference wraps its listener in a
    /// `LimitListener`, which stops accepting at the limit, so further connections wait in the
    /// kernel's backlog (a flood of silent connections fills it and good peers queue behind
    /// them). Here connections over the limit are accepted and closed at once, before any
    /// handshake work: the excess learns immediately, and nothing of it is kept.
    pub fn max_incoming_connections(&mut self, max: usize) -> &mut Self {
        self.max_incoming_connections = max;
        self
    }

    /// How many upgraded connections (and rejection reports) may wait for `accept`. A full
    /// queue makes upgraded connections wait (their slots stay taken) and drops rejection
    /// reports (they are still counted and logged: see
    /// [`Upgrader::rejections`](crate::Upgrader::rejections)). Default [`DEFAULT_ACCEPT_QUEUE`] (the reference uses an
    /// unbuffered channel). At least 1.
    pub fn accept_queue(&mut self, capacity: usize) -> &mut Self {
        self.accept_queue = capacity.max(1);
        self
    }

    /// The per-source limit on inbound handshakes, checked for every inbound connection before
    /// any handshake work (after the connection is accepted, before the incoming limit): a
    /// source over its budget has the connection closed at once, reported as
    /// [`Error::HandshakeRateLimited`]. Sources are IPv4 addresses and IPv6 `/64` prefixes.
    /// `None` (or a limit with a burst of 0) turns it off. Default
    /// [`DEFAULT_HANDSHAKE_RATE_LIMIT`] (32 at once, then 10 per second; see there why).
    ///
    /// **Difference from the reference**, which has no such limit: one host can otherwise make
    /// a node spend a core on handshakes while staying under the incoming limit. Transports
    /// whose remote addresses are made up (all streams from one address) should turn it off.
    pub fn handshake_rate_limit(&mut self, limit: Option<HandshakeRateLimit>) -> &mut Self {
        self.handshake_rate_limit = limit.filter(|l| !l.is_off());
        self
    }

    /// The backlog of the TCP listener: how many connections the kernel completes and queues
    /// for `accept(2)`; 0 means the system's maximum ([`system_listen_backlog`]). Default 0,
    /// as the reference (Go's `net.Listen` asks for the system's maximum).
    ///
    /// A small backlog loses connections in bursts: once the queue is full, Linux drops the
    /// handshake packets of further connections, so their dialers wait for retransmissions
    /// (the first after a second, already past a 1 s dial timeout) or believe they are
    /// connected while the listener never sees them. Transports that are not TCP ignore it.
    pub fn listen_backlog(&mut self, backlog: u32) -> &mut Self {
        self.listen_backlog = backlog;
        self
    }

    /// The channels every connection's MConnection gets, in priority tie-break order (the
    /// switch hands in its reactors' channels). Every channel our NodeInfo lists must be here.
    /// Default: none.
    pub fn channels(&mut self, channels: impl IntoIterator<Item = ChannelDescriptor>) -> &mut Self {
        self.channels = channels.into_iter().collect();
        self
    }

    /// The MConnection settings. Default [`MConnConfig::node_default`] (what a reference node
    /// passes its transport: the conn defaults with `config.toml`'s 5120000 B/s rates).
    pub fn mconn(&mut self, config: MConnConfig) -> &mut Self {
        self.mconn = config;
        self
    }

    /// The SecretConnection settings (AEAD backend, buffer sizes). Its handshake timeout is
    /// replaced by [`handshake_timeout`](Self::handshake_timeout). Default: its default.
    pub fn secret(&mut self, config: p2p_secretconn::Config) -> &mut Self {
        self.secret = config;
        self
    }

    /// How [`TcpTransport`](crate::TcpTransport) sizes the kernel's socket buffers of each
    /// connection (`SO_RCVBUF`, `TCP_NOTSENT_LOWAT`), which bounds how long a high-priority
    /// message waits behind bulk already handed to the kernel. Default: [`SocketTuning::Auto`],
    /// sized from the MConnection's rates and the round-trip time measured while connecting
    /// (see [`socket`](crate::socket)); `SocketTuning::Fixed(SocketSizes::KERNEL)` leaves the
    /// kernel's defaults, as the reference does.
    pub fn socket_tuning(&mut self, tuning: SocketTuning) -> &mut Self {
        self.socket_tuning = tuning;
        self
    }

    /// Adds a connection filter (run for inbound and outbound connections before any handshake).
    pub fn conn_filter(&mut self, filter: impl ConnFilter) -> &mut Self {
        self.conn_filters.push(Arc::new(filter));
        self
    }

    /// Adds a peer filter (run after the NodeInfo checks, before the MConnection starts).
    pub fn peer_filter(&mut self, filter: impl PeerFilter) -> &mut Self {
        self.peer_filters.push(Arc::new(filter));
        self
    }

    /// The settings that weaken protections; see [`DangerousTransportConfig`].
    pub fn dangerous(&mut self) -> DangerousTransportConfig<'_> {
        DangerousTransportConfig { config: self }
    }

    /// The dial timeout.
    pub fn get_dial_timeout(&self) -> Duration {
        self.dial_timeout
    }

    /// The handshake timeout.
    pub fn get_handshake_timeout(&self) -> Duration {
        self.handshake_timeout
    }

    /// The filter timeout.
    pub fn get_filter_timeout(&self) -> Duration {
        self.filter_timeout
    }

    /// The incoming connection limit (0 = unlimited).
    pub fn get_max_incoming_connections(&self) -> usize {
        self.max_incoming_connections
    }

    /// The accept queue capacity.
    pub fn get_accept_queue(&self) -> usize {
        self.accept_queue
    }

    /// The per-source inbound handshake limit (`None`: off).
    pub fn get_handshake_rate_limit(&self) -> Option<HandshakeRateLimit> {
        self.handshake_rate_limit
    }

    /// The listen backlog as configured (0: the system's maximum).
    pub fn get_listen_backlog(&self) -> u32 {
        self.listen_backlog
    }

    /// The listen backlog to ask for: the configured one, or the system's maximum for 0.
    pub fn effective_listen_backlog(&self) -> u32 {
        match self.listen_backlog {
            0 => system_listen_backlog(),
            n => n,
        }
    }

    /// Whether several connections may share an IP.
    pub fn get_allow_duplicate_ip(&self) -> bool {
        self.allow_duplicate_ip
    }

    /// The channels.
    pub fn get_channels(&self) -> &[ChannelDescriptor] {
        &self.channels
    }

    /// The MConnection settings.
    pub fn get_mconn(&self) -> &MConnConfig {
        &self.mconn
    }

    /// See [`socket_tuning`](Self::socket_tuning).
    pub fn get_socket_tuning(&self) -> SocketTuning {
        self.socket_tuning
    }

    /// The SecretConnection settings (to change one of them, e.g. the key source, without
    /// replacing the rest).
    pub fn get_secret(&self) -> &p2p_secretconn::Config {
        &self.secret
    }

    /// What [`admit`](crate::admit) checks new connections against: the duplicate-IP
    /// setting, the connection filters and the filter timeout.
    pub fn admission(&self) -> Admission<'_> {
        Admission::new(
            self.allow_duplicate_ip,
            &self.conn_filters,
            self.filter_timeout,
        )
    }

    /// Checks the values that can be checked without a connection.
    pub fn validate(&self) -> Result<(), Error> {
        if self.handshake_timeout.is_zero() {
            return Err(Error::config("handshake_timeout must be positive"));
        }
        if self.dial_timeout.is_zero() {
            return Err(Error::config("dial_timeout must be positive"));
        }
        if self.filter_timeout.is_zero() {
            return Err(Error::config("filter_timeout must be positive"));
        }
        self.mconn
            .validate()
            .map_err(|e| Error::config(format!("MConnection settings: {e}")))?;
        let mut seen = [false; 256];
        for ch in &self.channels {
            if ch.priority == 0 {
                return Err(Error::config(format!(
                    "channel {:#04x} has priority 0",
                    ch.id
                )));
            }
            if std::mem::replace(&mut seen[usize::from(ch.id)], true) {
                return Err(Error::config(format!(
                    "channel {:#04x} is listed twice",
                    ch.id
                )));
            }
        }
        Ok(())
    }
}

/// Settings that weaken the transport's protections, reached through
/// [`TransportConfig::dangerous`].
#[derive(Debug)]
pub struct DangerousTransportConfig<'a> {
    config: &'a mut TransportConfig,
}

impl DangerousTransportConfig<'_> {
    /// Allows several connections from or to one IP (the reference's `allow_duplicate_ip`).
    /// Default `false`: like a reference node, the transport refuses a connection whose IP is
    /// already connected ([`Error::DuplicateIp`]), inbound or outbound, so one host cannot
    /// take several peer slots. Local testnets, where every node is on 127.0.0.1, need `true`.
    pub fn allow_duplicate_ip(&mut self, allow: bool) -> &mut Self {
        self.config.allow_duplicate_ip = allow;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_reference() {
        let c = TransportConfig::default();
        assert_eq!(c.dial_timeout, Duration::from_secs(1));
        assert_eq!(c.handshake_timeout, Duration::from_secs(3));
        assert_eq!(c.filter_timeout, Duration::from_secs(5));
        assert_eq!(c.max_incoming_connections, 0);
        assert_eq!(c.get_listen_backlog(), 0);
        assert_eq!(c.effective_listen_backlog(), system_listen_backlog());
        assert_eq!(
            c.get_handshake_rate_limit(),
            Some(HandshakeRateLimit::new(32, Duration::from_millis(100)))
        );
        assert!(!c.allow_duplicate_ip);
        assert_eq!(c.mconn, MConnConfig::node_default());
        c.validate().unwrap();
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_system_backlog_is_somaxconn_on_linux() {
        let somaxconn: u32 = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_eq!(system_listen_backlog(), somaxconn.min(65535));
        let mut c = TransportConfig::default();
        c.listen_backlog(7);
        assert_eq!(c.effective_listen_backlog(), 7);
    }

    #[test]
    fn validation() {
        let mut c = TransportConfig::default();
        c.channels([ChannelDescriptor::new(1, 1), ChannelDescriptor::new(1, 2)]);
        assert!(c.validate().is_err());
        c.channels([ChannelDescriptor::new(1, 0)]);
        assert!(c.validate().is_err());
        c.channels([ChannelDescriptor::new(1, 1)])
            .handshake_timeout(Duration::ZERO);
        assert!(c.validate().is_err());
        c.handshake_timeout(Duration::from_secs(1))
            .dangerous()
            .allow_duplicate_ip(true);
        c.validate().unwrap();
        assert!(c.get_allow_duplicate_ip());
        c.handshake_rate_limit(Some(HandshakeRateLimit::new(0, Duration::from_secs(1))));
        assert_eq!(c.get_handshake_rate_limit(), None, "a burst of 0 is off");
    }
}
