//! The error type of this crate.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use p2p_types::{NetAddress, NodeId};

/// Everything a transport can report: a rejected connection (with the remote address and the
/// reason), a failed dial, a local problem, or the transport being closed.
///
/// Rejections fall into the reference's kinds (`ErrRejected`'s `is*` methods); ask
/// [`kind`](Self::kind) or the `is_*` methods rather than matching variants when only the kind
/// matters. A rejection never ends [`Transport::accept`](crate::Transport::accept): call it
/// again.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ---- authentication failures ---------------------------------------------------------
    /// The SecretConnection handshake failed or timed out: the peer is slow, gone, or does not
    /// speak the protocol.
    #[error("{addr}: auth failure: secret connection failed: {source}")]
    Handshake {
        /// The remote socket address.
        addr: SocketAddr,
        /// Why the handshake failed (a timeout is `HandshakeTimeout`).
        #[source]
        source: p2p_secretconn::Error,
    },
    /// We dialed one node ID and the peer authenticated as another: the address is stale or
    /// someone else answers there.
    #[error(
        "{addr}: auth failure: dialed ID {dialed} but the peer authenticated as {authenticated}"
    )]
    DialedIdMismatch {
        /// The remote socket address.
        addr: SocketAddr,
        /// The ID we dialed.
        dialed: NodeId,
        /// The ID the peer's key proves.
        authenticated: NodeId,
    },
    /// The NodeInfo exchange did not finish within the handshake timeout: the peer is slow or
    /// stalled after the secret handshake.
    #[error("{addr}: auth failure: NodeInfo exchange with {id} timed out after {timeout:?}")]
    NodeInfoTimeout {
        /// The remote socket address.
        addr: SocketAddr,
        /// The authenticated ID of the peer.
        id: NodeId,
        /// The configured handshake timeout.
        timeout: Duration,
    },
    /// Sending or receiving the NodeInfo failed, usually because the peer closed the connection.
    #[error("{addr}: auth failure: NodeInfo exchange with {id} failed: {source}")]
    NodeInfoIo {
        /// The remote socket address.
        addr: SocketAddr,
        /// The authenticated ID of the peer.
        id: NodeId,
        /// The I/O error.
        #[source]
        source: Arc<io::Error>,
    },
    /// The peer's NodeInfo could not be decoded: longer than 10240 bytes, malformed protobuf, or
    /// a non-canonical ID.
    #[error("{addr}: auth failure: NodeInfo from {id} is undecodable: {source}")]
    NodeInfoDecode {
        /// The remote socket address.
        addr: SocketAddr,
        /// The authenticated ID of the peer.
        id: NodeId,
        /// The decoder's error.
        #[source]
        source: p2p_types::Error,
    },
    /// The peer's NodeInfo claims another ID than the key it authenticated with: spoofing.
    #[error(
        "{addr}: auth failure: peer authenticated as {authenticated} but its NodeInfo claims {claimed}"
    )]
    NodeInfoIdMismatch {
        /// The remote socket address.
        addr: SocketAddr,
        /// The ID the peer's key proves.
        authenticated: NodeId,
        /// The ID in its NodeInfo.
        claimed: NodeId,
    },

    // ---- other rejections ----------------------------------------------------------------
    /// The peer's NodeInfo fails validation (listen address, version, channels, moniker, ...).
    #[error("{addr}: invalid NodeInfo from {id}: {source}")]
    InvalidNodeInfo {
        /// The remote socket address.
        addr: SocketAddr,
        /// The authenticated ID of the peer.
        id: NodeId,
        /// The validation error.
        #[source]
        source: p2p_types::Error,
    },
    /// We connected to ourselves; `addr` (`ourID@ip:port`) is one of our own addresses, which an
    /// address book should learn and never dial.
    #[error("self connection: {addr} is our own address")]
    SelfConnection {
        /// Our ID at the remote socket address.
        addr: NetAddress,
    },
    /// The peer is incompatible (block version, network, or no common channel; see
    /// `p2p_types::Error::is_incompatibility`).
    #[error("{addr}: incompatible peer {id}: {source}")]
    Incompatible {
        /// The remote socket address.
        addr: SocketAddr,
        /// The authenticated ID of the peer.
        id: NodeId,
        /// Which check failed.
        #[source]
        source: p2p_types::Error,
    },
    /// A connection with the same remote `ip:port` already exists or is being set up.
    #[error("{addr}: duplicate connection")]
    DuplicateConnection {
        /// The remote socket address.
        addr: SocketAddr,
    },
    /// A connection from or to the same IP exists and duplicate IPs are not allowed.
    #[error("{addr}: duplicate IP: {ip} is already connected")]
    DuplicateIp {
        /// The remote socket address.
        addr: SocketAddr,
        /// The IP already in the connection set.
        ip: IpAddr,
    },
    /// A connection or peer filter refused the connection.
    #[error("{addr}: filtered: {denied}")]
    Filtered {
        /// The remote socket address.
        addr: SocketAddr,
        /// The peer's ID when known (peer filters, outbound connection filters).
        id: Option<NodeId>,
        /// The filter and its reason.
        denied: Denied,
    },
    /// A connection or peer filter did not answer within the filter timeout; the connection is
    /// refused (the reference's `ErrFilterTimeout`).
    #[error("{addr}: filtered: filter {filter} timed out after {timeout:?}")]
    FilterTimeout {
        /// The remote socket address.
        addr: SocketAddr,
        /// The peer's ID when known.
        id: Option<NodeId>,
        /// The filter's name.
        filter: String,
        /// The configured filter timeout.
        timeout: Duration,
    },

    /// The remote's source (its IPv4 address or IPv6 `/64`) started more inbound handshakes
    /// than the per-source rate limit allows; the connection was closed before any handshake
    /// work.
    #[error(
        "{addr}: too many handshakes from this source (at most {burst} at once, then one per {interval:?})"
    )]
    HandshakeRateLimited {
        /// The remote socket address.
        addr: SocketAddr,
        /// The configured burst.
        burst: u32,
        /// The configured interval between further handshakes.
        interval: Duration,
    },

    // ---- dialing and local errors --------------------------------------------------------
    /// Connecting to the address failed (refused, unreachable, ...).
    #[error("dial {addr}: {source}")]
    Dial {
        /// The address dialed.
        addr: SocketAddr,
        /// The I/O error.
        #[source]
        source: Arc<io::Error>,
    },
    /// Connecting did not complete within the dial timeout.
    #[error("dial {addr}: timed out after {timeout:?}")]
    DialTimeout {
        /// The address dialed.
        addr: SocketAddr,
        /// The configured dial timeout.
        timeout: Duration,
    },
    /// Binding the listen address failed (in use, not local, no permission).
    #[error("listen on {addr}: {source}")]
    Listen {
        /// The address given to `listen`.
        addr: SocketAddr,
        /// The I/O error.
        #[source]
        source: Arc<io::Error>,
    },
    /// `listen` was called on a transport that already listens; a transport listens once.
    #[error("already listening on {addr}")]
    AlreadyListening {
        /// The address being listened on.
        addr: SocketAddr,
    },
    /// The MConnection could not be started over an upgraded connection (bad channel list or
    /// MConnection settings); fix the configuration.
    #[error("{addr}: starting the MConnection failed: {source}")]
    MConnection {
        /// The remote socket address.
        addr: SocketAddr,
        /// The MConnection's error.
        #[source]
        source: p2p_mconn::Error,
    },
    /// The transport's configuration, node key or NodeInfo is unusable; fix what `reason` says.
    #[error("invalid transport configuration: {reason}")]
    InvalidConfig {
        /// What is wrong.
        reason: String,
    },
    /// The transport is closed: nothing more is accepted or dialed.
    #[error("transport is closed")]
    Closed,
}

/// The kind of an [`Error`]: the reference's rejection kinds plus dialing, closing and the
/// rest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Authentication failed (`IsAuthFailure`): handshake, dialed ID, NodeInfo exchange or
    /// NodeInfo ID.
    AuthFailure,
    /// The peer's NodeInfo is invalid (`IsNodeInfoInvalid`).
    InvalidNodeInfo,
    /// The peer is incompatible (`IsIncompatible`).
    Incompatible,
    /// A connection to ourselves (`IsSelf`).
    SelfConnection,
    /// A duplicate connection or IP (`IsDuplicate`).
    Duplicate,
    /// Refused by a filter, or a filter timed out (`IsFiltered`, `ErrFilterTimeout`).
    Filtered,
    /// Closed before any handshake work because its source opened connections too fast (no
    /// reference kind: the reference has no such limit).
    RateLimited,
    /// Connecting failed or timed out.
    Dial,
    /// The transport is closed.
    Closed,
    /// A local problem: configuration, listening.
    Other,
}

impl Error {
    /// The kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Handshake { .. }
            | Self::DialedIdMismatch { .. }
            | Self::NodeInfoTimeout { .. }
            | Self::NodeInfoIo { .. }
            | Self::NodeInfoDecode { .. }
            | Self::NodeInfoIdMismatch { .. } => ErrorKind::AuthFailure,
            Self::InvalidNodeInfo { .. } => ErrorKind::InvalidNodeInfo,
            Self::SelfConnection { .. } => ErrorKind::SelfConnection,
            Self::Incompatible { .. } => ErrorKind::Incompatible,
            Self::DuplicateConnection { .. } | Self::DuplicateIp { .. } => ErrorKind::Duplicate,
            Self::Filtered { .. } | Self::FilterTimeout { .. } => ErrorKind::Filtered,
            Self::HandshakeRateLimited { .. } => ErrorKind::RateLimited,
            Self::Dial { .. } | Self::DialTimeout { .. } => ErrorKind::Dial,
            Self::Closed => ErrorKind::Closed,
            Self::Listen { .. }
            | Self::AlreadyListening { .. }
            | Self::MConnection { .. }
            | Self::InvalidConfig { .. } => ErrorKind::Other,
        }
    }

    /// Whether a connection was rejected (any of the reference's `ErrRejected` kinds, or the
    /// handshake rate limit).
    pub fn is_rejection(&self) -> bool {
        matches!(
            self.kind(),
            ErrorKind::AuthFailure
                | ErrorKind::InvalidNodeInfo
                | ErrorKind::Incompatible
                | ErrorKind::SelfConnection
                | ErrorKind::Duplicate
                | ErrorKind::Filtered
                | ErrorKind::RateLimited
        )
    }

    /// Whether authentication failed.
    pub fn is_auth_failure(&self) -> bool {
        self.kind() == ErrorKind::AuthFailure
    }

    /// Whether the peer's NodeInfo is invalid.
    pub fn is_invalid_node_info(&self) -> bool {
        self.kind() == ErrorKind::InvalidNodeInfo
    }

    /// Whether the peer is incompatible.
    pub fn is_incompatible(&self) -> bool {
        self.kind() == ErrorKind::Incompatible
    }

    /// Whether this was a connection to ourselves (see [`self_addr`](Self::self_addr)).
    pub fn is_self(&self) -> bool {
        self.kind() == ErrorKind::SelfConnection
    }

    /// Whether the connection or its IP was a duplicate.
    pub fn is_duplicate(&self) -> bool {
        self.kind() == ErrorKind::Duplicate
    }

    /// Whether a filter refused the connection or timed out.
    pub fn is_filtered(&self) -> bool {
        self.kind() == ErrorKind::Filtered
    }

    /// Whether the connection's source was over the handshake rate limit.
    pub fn is_rate_limited(&self) -> bool {
        self.kind() == ErrorKind::RateLimited
    }

    /// Whether dialing failed before any handshake.
    pub fn is_dial(&self) -> bool {
        self.kind() == ErrorKind::Dial
    }

    /// Whether the transport is closed.
    pub fn is_closed(&self) -> bool {
        self.kind() == ErrorKind::Closed
    }

    /// The remote socket address the error is about, if any.
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        match self {
            Self::Handshake { addr, .. }
            | Self::DialedIdMismatch { addr, .. }
            | Self::NodeInfoTimeout { addr, .. }
            | Self::NodeInfoIo { addr, .. }
            | Self::NodeInfoDecode { addr, .. }
            | Self::NodeInfoIdMismatch { addr, .. }
            | Self::InvalidNodeInfo { addr, .. }
            | Self::Incompatible { addr, .. }
            | Self::DuplicateConnection { addr }
            | Self::DuplicateIp { addr, .. }
            | Self::Filtered { addr, .. }
            | Self::FilterTimeout { addr, .. }
            | Self::HandshakeRateLimited { addr, .. }
            | Self::Dial { addr, .. }
            | Self::DialTimeout { addr, .. }
            | Self::MConnection { addr, .. } => Some(*addr),
            Self::SelfConnection { addr } => Some(addr.socket_addr()),
            Self::Listen { .. }
            | Self::AlreadyListening { .. }
            | Self::InvalidConfig { .. }
            | Self::Closed => None,
        }
    }

    /// Our own address (`ourID@ip:port`) learned from a self connection.
    pub fn self_addr(&self) -> Option<&NetAddress> {
        match self {
            Self::SelfConnection { addr } => Some(addr),
            _ => None,
        }
    }

    /// The ID the peer authenticated with, when the rejection happened after the secret
    /// handshake.
    pub fn peer_id(&self) -> Option<NodeId> {
        match self {
            Self::DialedIdMismatch { authenticated, .. }
            | Self::NodeInfoIdMismatch { authenticated, .. } => Some(*authenticated),
            Self::NodeInfoTimeout { id, .. }
            | Self::NodeInfoIo { id, .. }
            | Self::NodeInfoDecode { id, .. }
            | Self::InvalidNodeInfo { id, .. }
            | Self::Incompatible { id, .. } => Some(*id),
            Self::Filtered { id, .. } | Self::FilterTimeout { id, .. } => *id,
            Self::SelfConnection { addr } => Some(addr.id()),
            _ => None,
        }
    }

    pub(crate) fn config(reason: impl Into<String>) -> Self {
        Self::InvalidConfig {
            reason: reason.into(),
        }
    }

    pub(crate) fn dial(addr: SocketAddr, e: io::Error) -> Self {
        Self::Dial {
            addr,
            source: Arc::new(e),
        }
    }
}

/// Why a [connection or peer filter](crate::filter) refused a connection: which filter, and
/// its reason.
#[derive(Clone, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[error("{filter}: {reason}")]
#[non_exhaustive]
pub struct Denied {
    /// The filter's name.
    pub filter: String,
    /// Its reason, for logs.
    pub reason: String,
}

impl Denied {
    /// A refusal by `filter` for `reason`.
    pub fn new(filter: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            filter: filter.into(),
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_accessors() {
        let addr: SocketAddr = "1.2.3.4:26656".parse().unwrap();
        let id = p2p_types::NodeKey::from_seed([1; 32]).node_id();
        let e = Error::DialedIdMismatch {
            addr,
            dialed: id,
            authenticated: id,
        };
        assert!(e.is_auth_failure() && e.is_rejection());
        assert_eq!(e.remote_addr(), Some(addr));
        let e = Error::SelfConnection {
            addr: NetAddress::new(id, addr),
        };
        assert!(e.is_self());
        assert_eq!(e.self_addr().map(NetAddress::id), Some(id));
        assert_eq!(e.peer_id(), Some(id));
        assert!(Error::Closed.is_closed() && !Error::Closed.is_rejection());
        let e = Error::DialTimeout {
            addr,
            timeout: Duration::from_secs(1),
        };
        assert!(e.is_dial() && !e.is_rejection());
        let e = Error::HandshakeRateLimited {
            addr,
            burst: 1,
            interval: Duration::from_secs(1),
        };
        assert!(e.is_rate_limited() && e.is_rejection());
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        assert_eq!(e.remote_addr(), Some(addr));
        assert_eq!(e.peer_id(), None);
    }
}
