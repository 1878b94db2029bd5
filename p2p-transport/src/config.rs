//! Transport settings, with the reference's defaults.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use p2p_mconn::{ChannelDescriptor, MConnConfig};

use crate::Error;
use crate::filter::{ConnFilter, PeerFilter};

/// Default dial timeout: 1 s, the reference transport's `defaultDialTimeout` (TCP connect).
pub const DEFAULT_DIAL_TIMEOUT: Duration = Duration::from_secs(1);
/// Default handshake timeout: 3 s, the reference transport's `defaultHandshakeTimeout`.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(3);
/// Default filter timeout: 5 s, the reference transport's `defaultFilterTimeout`.
pub const DEFAULT_FILTER_TIMEOUT: Duration = Duration::from_secs(5);
/// Default capacity of the queue between the per-connection upgrade tasks and `accept`.
pub const DEFAULT_ACCEPT_QUEUE: usize = 16;

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
    pub(crate) allow_duplicate_ip: bool,
    pub(crate) channels: Vec<ChannelDescriptor>,
    pub(crate) mconn: MConnConfig,
    pub(crate) secret: p2p_secretconn::Config,
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
            allow_duplicate_ip: false,
            channels: Vec::new(),
            mconn: MConnConfig::node_default(),
            secret: p2p_secretconn::Config::default(),
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
            .field("allow_duplicate_ip", &self.allow_duplicate_ip)
            .field("channels", &self.channels)
            .field("mconn", &self.mconn)
            .field("secret", &self.secret)
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
    /// reports (they are logged). Default [`DEFAULT_ACCEPT_QUEUE`] (the reference uses an
    /// unbuffered channel). At least 1.
    pub fn accept_queue(&mut self, capacity: usize) -> &mut Self {
        self.accept_queue = capacity.max(1);
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
        assert!(!c.allow_duplicate_ip);
        assert_eq!(c.mconn, MConnConfig::node_default());
        c.validate().unwrap();
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
    }
}
