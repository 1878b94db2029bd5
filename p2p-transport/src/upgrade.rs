//! The upgrade pipeline every transport shares: SecretConnection, NodeInfo exchange and checks,
//! peer filters, MConnection.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use p2p_mconn::MConnection;
use p2p_secretconn::SecretStream;
use p2p_types::varint::{MAX_VARINT_LEN, decode_length_prefix};
use p2p_types::{MAX_NODE_INFO_SIZE, NetAddress, NodeId, NodeInfo, NodeKey};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::filter::{PendingPeer, run_filters};
use crate::{Connection, Direction, Error, TransportConfig};

/// Everything the upgrade needs: our identity, our NodeInfo and the settings. Cheap to clone.
///
/// ```
/// use p2p_mconn::ChannelDescriptor;
/// use p2p_transport::{TransportConfig, UpgradeConfig};
/// use p2p_types::{NodeInfo, NodeKey};
///
/// let key = NodeKey::generate();
/// let mut info = NodeInfo::new(key.node_id(), "my-chain", "tcp://0.0.0.0:26656");
/// info.channels = vec![0x01];
/// let mut config = TransportConfig::default();
/// config.channels([ChannelDescriptor::new(0x01, 1)]);
/// let upgrade = UpgradeConfig::new(key, info, config).unwrap();
/// ```
#[derive(Clone)]
pub struct UpgradeConfig {
    inner: Arc<Inner>,
}

struct Inner {
    key: NodeKey,
    node_info: NodeInfo,
    /// Our NodeInfo in its wire form, encoded once.
    node_info_wire: Vec<u8>,
    config: TransportConfig,
    secret: p2p_secretconn::Config,
}

impl std::fmt::Debug for UpgradeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpgradeConfig")
            .field("node_id", &self.inner.node_info.id)
            .field("network", &self.inner.node_info.network)
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl UpgradeConfig {
    /// Checks and bundles the identity, NodeInfo and settings.
    ///
    /// Fails ([`Error::InvalidConfig`]) if `node_info.id` is not the key's ID, if our NodeInfo
    /// fails the checks a peer will run on it ([`NodeInfo::validate`]) or encodes to more than
    /// [`MAX_NODE_INFO_SIZE`] bytes, if it lists a channel `config` has no descriptor for, or if
    /// `config` itself is invalid ([`TransportConfig::validate`]).
    pub fn new(key: NodeKey, node_info: NodeInfo, config: TransportConfig) -> Result<Self, Error> {
        config.validate()?;
        if node_info.id != key.node_id() {
            return Err(Error::config(format!(
                "NodeInfo ID {} is not the node key's ID {}",
                node_info.id,
                key.node_id()
            )));
        }
        node_info
            .validate()
            .map_err(|e| Error::config(format!("our NodeInfo is invalid: {e}")))?;
        for ch in &node_info.channels {
            if !config.channels.iter().any(|d| d.id == *ch) {
                return Err(Error::config(format!(
                    "NodeInfo lists channel {ch:#04x} but no channel descriptor has it"
                )));
            }
        }
        let node_info_wire = node_info.encode_delimited();
        let body = match decode_length_prefix(&node_info_wire, usize::MAX) {
            Ok(Some((len, _))) => len,
            _ => usize::MAX,
        };
        if body > MAX_NODE_INFO_SIZE {
            return Err(Error::config(format!(
                "our NodeInfo encodes to {body} bytes, peers accept at most {MAX_NODE_INFO_SIZE}"
            )));
        }
        let mut secret = config.secret.clone();
        secret.handshake_timeout(Some(config.handshake_timeout));
        Ok(Self {
            inner: Arc::new(Inner {
                key,
                node_info,
                node_info_wire,
                config,
                secret,
            }),
        })
    }

    /// Our node ID.
    pub fn node_id(&self) -> NodeId {
        self.inner.node_info.id
    }

    /// Our NodeInfo.
    pub fn node_info(&self) -> &NodeInfo {
        &self.inner.node_info
    }

    /// Our node key.
    pub fn node_key(&self) -> &NodeKey {
        &self.inner.key
    }

    /// The settings.
    pub fn transport_config(&self) -> &TransportConfig {
        &self.inner.config
    }
}

/// Upgrades a connected byte stream to a [`Connection`], splitting it with `tokio::io::split`
/// for the MConnection's two tasks (a lock per operation; prefer [`upgrade_with`] when the
/// stream has its own halves).
///
/// See [`upgrade_with`] for the steps.
pub async fn upgrade<S>(
    stream: S,
    remote: SocketAddr,
    dialed: Option<NodeId>,
    config: &UpgradeConfig,
) -> Result<Connection, Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    upgrade_with(stream, tokio::io::split, remote, dialed, config).await
}

/// Upgrades a connected byte stream to a [`Connection`]: the pipeline of the reference's
/// `MultiplexTransport.upgrade`, shared by every transport so they differ only in how bytes
/// travel.
///
/// `remote` is the peer's socket address (non-IP transports map theirs to one), `dialed` the
/// node ID we dialed for an outbound connection or `None` for an inbound one, and `split`
/// turns the stream into a read and a write half (`TcpStream::into_split`,
/// `UnixStream::into_split`, or `tokio::io::split` for any stream).
///
/// In order, each failure dropping the stream:
///
/// 1. the SecretConnection handshake within the handshake timeout ([`Error::Handshake`]);
/// 2. outbound only: the authenticated ID must be the dialed ID ([`Error::DialedIdMismatch`]);
/// 3. the NodeInfo exchange within a fresh handshake timeout: both sides send theirs as one
///    varint-delimited protobuf and read the peer's concurrently; a length above
///    [`MAX_NODE_INFO_SIZE`] (10240) is refused before anything is allocated
///    ([`Error::NodeInfoTimeout`], [`Error::NodeInfoIo`], [`Error::NodeInfoDecode`]);
/// 4. [`NodeInfo::validate`] ([`Error::InvalidNodeInfo`]);
/// 5. the NodeInfo's ID must be the authenticated ID ([`Error::NodeInfoIdMismatch`]);
/// 6. the peer must not be us ([`Error::SelfConnection`], carrying `ourID@remote`);
/// 7. [`NodeInfo::compatible_with`] ([`Error::Incompatible`]);
/// 8. the peer filters, concurrently, each within the filter timeout ([`Error::Filtered`],
///    [`Error::FilterTimeout`]);
/// 9. the MConnection starts with the configured channels and settings
///    ([`Error::MConnection`]).
///
/// Duplicate and connection-filter checks come before this (see
/// [`admit`](crate::admit)). Must run within a tokio runtime with time
/// enabled.
pub async fn upgrade_with<S, R, W, F>(
    stream: S,
    split: F,
    remote: SocketAddr,
    dialed: Option<NodeId>,
    config: &UpgradeConfig,
) -> Result<Connection, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(S) -> (R, W),
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let cfg = &config.inner;
    let timeout = cfg.config.handshake_timeout;

    // 1. Secret handshake (the stream's own deadline covers it).
    let secret = SecretStream::handshake_with(stream, &cfg.key, &cfg.secret)
        .await
        .map_err(|source| Error::Handshake {
            addr: remote,
            source,
        })?;
    let authenticated = secret.remote_node_id();

    // 2. The dialed ID.
    if let Some(dialed) = dialed {
        if dialed != authenticated {
            return Err(Error::DialedIdMismatch {
                addr: remote,
                dialed,
                authenticated,
            });
        }
    }

    // 3. NodeInfo exchange under a fresh deadline, over the halves the MConnection will own.
    let (mut reader, mut writer) = secret.split_with(split);
    let exchange = async {
        let send = async {
            writer.write_all(&cfg.node_info_wire).await?;
            writer.flush().await.map_err(ReadError::Io)
        };
        tokio::try_join!(send, read_node_info(&mut reader)).map(|((), theirs)| theirs)
    };
    let theirs = match tokio::time::timeout(timeout, exchange).await {
        Err(_) => {
            return Err(Error::NodeInfoTimeout {
                addr: remote,
                id: authenticated,
                timeout,
            });
        }
        Ok(Err(ReadError::Io(e))) => {
            return Err(Error::NodeInfoIo {
                addr: remote,
                id: authenticated,
                source: Arc::new(e),
            });
        }
        Ok(Err(ReadError::Decode(source))) => {
            return Err(Error::NodeInfoDecode {
                addr: remote,
                id: authenticated,
                source,
            });
        }
        Ok(Ok(theirs)) => theirs,
    };

    // 4. Validation.
    theirs.validate().map_err(|source| Error::InvalidNodeInfo {
        addr: remote,
        id: authenticated,
        source,
    })?;
    // 5. The NodeInfo's ID is the authenticated one.
    if theirs.id != authenticated {
        return Err(Error::NodeInfoIdMismatch {
            addr: remote,
            authenticated,
            claimed: theirs.id,
        });
    }
    // 6. Not ourselves.
    let addr = NetAddress::new(authenticated, remote);
    if authenticated == cfg.node_info.id {
        return Err(Error::SelfConnection { addr });
    }
    // 7. Compatibility.
    cfg.node_info
        .compatible_with(&theirs)
        .map_err(|source| Error::Incompatible {
            addr: remote,
            id: authenticated,
            source,
        })?;

    // 8. Peer filters.
    let direction = Direction::from_dialed(dialed);
    let node_info = Arc::new(theirs);
    if !cfg.config.peer_filters.is_empty() {
        let pending = PendingPeer {
            node_info: Arc::clone(&node_info),
            addr,
            direction,
        };
        let checks = cfg
            .config
            .peer_filters
            .iter()
            .map(|f| (f.name().to_owned(), f.check(&pending)))
            .collect();
        run_filters(
            checks,
            cfg.config.filter_timeout,
            remote,
            Some(authenticated),
        )
        .await?;
    }

    // 9. The MConnection.
    let (mconn, receivers) = MConnection::spawn(
        reader,
        writer,
        &cfg.config.channels,
        cfg.config.mconn.clone(),
    )
    .map_err(|source| Error::MConnection {
        addr: remote,
        source,
    })?;
    tracing::debug!(peer = %addr, ?direction, "peer connection upgraded");
    Ok(Connection::new(
        node_info, addr, direction, mconn, receivers,
    ))
}

enum ReadError {
    Io(io::Error),
    Decode(p2p_types::Error),
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// Reads one varint-delimited NodeInfo, checking the length before allocating, and nothing
/// more (what follows belongs to the MConnection).
async fn read_node_info<R: AsyncRead + Unpin>(r: &mut R) -> Result<NodeInfo, ReadError> {
    let mut buf = Vec::with_capacity(MAX_VARINT_LEN);
    let (len, prefix) = loop {
        buf.push(r.read_u8().await?);
        match decode_length_prefix(&buf, MAX_NODE_INFO_SIZE) {
            Ok(Some(found)) => break found,
            Ok(None) => {}
            Err(e) => return Err(ReadError::Decode(e)),
        }
    };
    buf.resize(prefix + len, 0);
    r.read_exact(&mut buf[prefix..]).await?;
    NodeInfo::decode_delimited(&buf).map_err(ReadError::Decode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn oversize_length_is_refused_before_reading_the_body() {
        let (mut a, mut b) = tokio::io::duplex(64);
        // 10241 as a varint, then nothing.
        a.write_all(&[0x81, 0x50]).await.unwrap();
        match read_node_info(&mut b).await {
            Err(ReadError::Decode(p2p_types::Error::MessageTooLarge { len, max })) => {
                assert_eq!((len, max), (10241, MAX_NODE_INFO_SIZE));
            }
            _ => panic!("expected MessageTooLarge"),
        }
    }

    #[tokio::test]
    async fn reads_exactly_one_message() {
        let key = NodeKey::from_seed([7; 32]);
        let info = NodeInfo::new(key.node_id(), "chain", "tcp://127.0.0.1:26656");
        let mut wire = info.encode_delimited();
        wire.extend_from_slice(b"next");
        let mut r = &wire[..];
        let got = read_node_info(&mut r).await.ok().unwrap();
        assert_eq!(got, info);
        assert_eq!(r, b"next");
    }

    #[tokio::test]
    async fn overlong_varint_is_refused() {
        let bytes = [0xffu8; 11];
        let mut r = &bytes[..];
        assert!(matches!(
            read_node_info(&mut r).await,
            Err(ReadError::Decode(p2p_types::Error::VarintOverflow))
        ));
    }
}
