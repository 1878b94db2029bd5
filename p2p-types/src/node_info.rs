//! The NodeInfo handshake message: what two nodes tell each other right after the secret
//! handshake, and the rules for accepting a peer's.
//!
//! Mirrors `DefaultNodeInfo` of the reference (`p2p/node_info.go`) and its protobuf
//! (`proto/tendermint/p2p/types.proto`). After the SecretConnection is up, each side writes its
//! [`NodeInfo`] with [`NodeInfo::encode_delimited`] and reads the peer's with
//! [`NodeInfo::decode_delimited`]; the transport then calls [`NodeInfo::validate`] on the
//! peer's, checks that its ID is the authenticated one, and calls
//! [`NodeInfo::compatible_with`].
//!
//! ```
//! use p2p_types::{NodeInfo, NodeKey, channels};
//!
//! let id = NodeKey::from_seed([1; 32]).node_id();
//! let mut ours = NodeInfo::new(id, "test-chain", "tcp://0.0.0.0:26656");
//! ours.channels = vec![channels::PEX, channels::MEMPOOL];
//! let wire = ours.encode_delimited();
//!
//! // ... on the other side:
//! let theirs = NodeInfo::decode_delimited(&wire).unwrap();
//! theirs.validate().unwrap();
//! ours.compatible_with(&theirs).unwrap();
//! assert_eq!(theirs, ours);
//! ```

use crate::netaddr::{PeerAddress, strip_scheme};
use crate::{Error, NodeId, proto, varint};

/// Largest encoded NodeInfo accepted, in bytes, excluding the length prefix
/// (`maxNodeInfoSize`).
pub const MAX_NODE_INFO_SIZE: usize = 10240;

/// Most channels a NodeInfo may list (`maxNumChannels`).
pub const MAX_NUM_CHANNELS: usize = 16;

/// The p2p protocol version of CometBFT v0.37 and v0.38 (`version.P2PProtocol`; v1.0 uses 9).
/// It is sent but not compared: v0.38 and v1.0 nodes interconnect.
pub const P2P_PROTOCOL: u64 = 8;

/// The block protocol version of CometBFT v0.37, v0.38 and v1.0 (`version.BlockProtocol`).
/// Peers must agree on it.
pub const BLOCK_PROTOCOL: u64 = 11;

/// The default moniker of [`NodeInfo::new`]: the reference's fallback when the host name is
/// unavailable (`config.getDefaultMoniker`).
pub const DEFAULT_MONIKER: &str = "anonymous";

/// The channel IDs of the reference's reactors (the single byte that tags every MConnection
/// packet, and what [`NodeInfo::channels`] lists).
pub mod channels {
    /// Peer exchange (`p2p/pex`).
    pub const PEX: u8 = 0x00;
    /// Consensus: round-state announcements (`consensus.StateChannel`).
    pub const CONSENSUS_STATE: u8 = 0x20;
    /// Consensus: proposals and block parts (`consensus.DataChannel`).
    pub const CONSENSUS_DATA: u8 = 0x21;
    /// Consensus: votes (`consensus.VoteChannel`).
    pub const CONSENSUS_VOTE: u8 = 0x22;
    /// Consensus: vote bit arrays (`consensus.VoteSetBitsChannel`).
    pub const CONSENSUS_VOTE_SET_BITS: u8 = 0x23;
    /// Mempool transactions (`mempool.MempoolChannel`).
    pub const MEMPOOL: u8 = 0x30;
    /// Evidence of misbehaviour (`evidence.EvidenceChannel`).
    pub const EVIDENCE: u8 = 0x38;
    /// Block sync (`blocksync.BlocksyncChannel`).
    pub const BLOCKSYNC: u8 = 0x40;
    /// State sync: snapshot discovery (`statesync.SnapshotChannel`).
    pub const STATESYNC_SNAPSHOT: u8 = 0x60;
    /// State sync: snapshot chunks (`statesync.ChunkChannel`).
    pub const STATESYNC_CHUNK: u8 = 0x61;

    /// The channels a v0.38 full node advertises with PEX enabled, in the order it lists them
    /// (`makeNodeInfo` in `node/node.go`).
    pub const V0_38_FULL_NODE: [u8; 10] = [
        BLOCKSYNC,
        CONSENSUS_STATE,
        CONSENSUS_DATA,
        CONSENSUS_VOTE,
        CONSENSUS_VOTE_SET_BITS,
        MEMPOOL,
        EVIDENCE,
        STATESYNC_SNAPSHOT,
        STATESYNC_CHUNK,
        PEX,
    ];
}

/// The protocol versions a node speaks.
// A frozen wire message: new fields would change the protocol, so the struct is exhaustive.
#[allow(clippy::exhaustive_structs)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProtocolVersion {
    /// The p2p protocol version (not compared between peers).
    pub p2p: u64,
    /// The block protocol version (must match).
    pub block: u64,
    /// The application's version (not compared).
    pub app: u64,
}

impl ProtocolVersion {
    /// Builds a protocol version.
    pub const fn new(p2p: u64, block: u64, app: u64) -> Self {
        Self { p2p, block, app }
    }
}

impl Default for ProtocolVersion {
    /// [`P2P_PROTOCOL`], [`BLOCK_PROTOCOL`] and app 0, like the reference's
    /// `defaultProtocolVersion`.
    fn default() -> Self {
        Self::new(P2P_PROTOCOL, BLOCK_PROTOCOL, 0)
    }
}

/// Application-specific extras of a [`NodeInfo`].
// A frozen wire message: new fields would change the protocol, so the struct is exhaustive.
#[allow(clippy::exhaustive_structs)]
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct NodeInfoOther {
    /// Whether the node indexes transactions: `"on"`, `"off"` or empty.
    pub tx_index: String,
    /// The node's RPC listen address, or empty.
    pub rpc_address: String,
}

/// What a node tells its peers about itself during the handshake (the reference's
/// `DefaultNodeInfo`).
///
/// The fields are public because this mirrors a frozen wire message; [`validate`](Self::validate)
/// says whether a received one is acceptable.
// A frozen wire message: new fields would change the protocol, so the struct is exhaustive.
#[allow(clippy::exhaustive_structs)]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NodeInfo {
    /// Protocol versions.
    pub protocol_version: ProtocolVersion,
    /// The node's ID; a peer's must equal the ID of its authenticated key.
    pub id: NodeId,
    /// Where the node accepts connections, `[scheme://]host:port` (e.g. `tcp://0.0.0.0:26656`).
    /// Self-reported and unauthenticated.
    pub listen_addr: String,
    /// The network (chain ID); peers must agree on it.
    pub network: String,
    /// The software version, e.g. `0.38.25`.
    pub version: String,
    /// The channels the node speaks, one byte each, in the node's order.
    pub channels: Vec<u8>,
    /// A human-readable name.
    pub moniker: String,
    /// Application-specific extras.
    pub other: NodeInfoOther,
}

impl NodeInfo {
    /// A NodeInfo with defaults for everything but the ID, network and listen address.
    ///
    /// Defaults, and where they come from:
    /// - `protocol_version`: p2p [`P2P_PROTOCOL`] (8), block [`BLOCK_PROTOCOL`] (11), app 0 —
    ///   the reference's `defaultProtocolVersion`; a node embedding an application sets `app`.
    /// - `version`: this crate's version. The reference sends its own release (`TMCoreSemVer`);
    ///   peers only check that it is printable ASCII.
    /// - `channels`: empty. The switch fills in its reactors' channels; an empty list makes
    ///   [`compatible_with`](Self::compatible_with) accept any peer (the reference's test mode).
    /// - `moniker`: [`DEFAULT_MONIKER`], the reference's fallback when it cannot read the host
    ///   name (it must be non-empty to pass validation).
    /// - `other.tx_index`: `"off"`. The reference sends `"on"` when it runs a transaction
    ///   indexer; a p2p-only node has none.
    /// - `other.rpc_address`: empty (no RPC server).
    pub fn new(id: NodeId, network: impl Into<String>, listen_addr: impl Into<String>) -> Self {
        Self {
            protocol_version: ProtocolVersion::default(),
            id,
            listen_addr: listen_addr.into(),
            network: network.into(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            channels: Vec::new(),
            moniker: DEFAULT_MONIKER.to_owned(),
            other: NodeInfoOther {
                tx_index: "off".to_owned(),
                rpc_address: String::new(),
            },
        }
    }

    /// Whether the node lists `channel`.
    pub fn has_channel(&self, channel: u8) -> bool {
        self.channels.contains(&channel)
    }

    /// Checks a peer's self-reported NodeInfo with the reference's rules (`Validate`):
    ///
    /// 1. `listen_addr`, prefixed with `<id>@` after its scheme is dropped, parses as a peer
    ///    address ([`Error::InvalidListenAddr`]);
    /// 2. `version`, if not empty, is printable ASCII (bytes 32..=126) and not only spaces
    ///    ([`Error::InvalidVersion`]);
    /// 3. at most [`MAX_NUM_CHANNELS`] channels ([`Error::TooManyChannels`]), none twice
    ///    ([`Error::DuplicateChannel`]);
    /// 4. `moniker` is non-empty printable ASCII and not only spaces ([`Error::InvalidMoniker`]);
    /// 5. `other.tx_index` is `""`, `"on"` or `"off"` ([`Error::InvalidTxIndex`]);
    /// 6. `other.rpc_address`, if not empty, is printable ASCII and not only spaces
    ///    ([`Error::InvalidRpcAddress`]).
    ///
    /// Tabs and other control characters are not "printable ASCII". The network is checked by
    /// [`compatible_with`](Self::compatible_with), the ID against the authenticated key by the
    /// transport.
    ///
    /// **Difference from the reference:** the reference DNS-resolves a host name in
    /// `listen_addr` and rejects the peer if the lookup fails. That is blocking I/O driven by
    /// the remote side during the handshake, so here the host only has to be an IP literal or a
    /// syntactically valid DNS name (see [`crate::netaddr::is_valid_dns_name`]); nothing is
    /// resolved. A peer whose name does not resolve is therefore accepted here and rejected by
    /// the reference.
    pub fn validate(&self) -> Result<(), Error> {
        let with_id = format!("{}@{}", self.id, strip_scheme(&self.listen_addr));
        if let Err(e) = with_id.parse::<PeerAddress>() {
            return Err(Error::InvalidListenAddr {
                listen_addr: self.listen_addr.clone(),
                source: Box::new(e),
            });
        }

        if !self.version.is_empty() && !is_ascii_text(&self.version) {
            return Err(Error::InvalidVersion {
                version: self.version.clone(),
            });
        }

        if self.channels.len() > MAX_NUM_CHANNELS {
            return Err(Error::TooManyChannels {
                count: self.channels.len(),
                max: MAX_NUM_CHANNELS,
            });
        }
        let mut seen = [false; 256];
        for &channel in &self.channels {
            let slot = &mut seen[usize::from(channel)];
            if *slot {
                return Err(Error::DuplicateChannel { channel });
            }
            *slot = true;
        }

        if !is_ascii_text(&self.moniker) {
            return Err(Error::InvalidMoniker {
                moniker: self.moniker.clone(),
            });
        }

        if !matches!(self.other.tx_index.as_str(), "" | "on" | "off") {
            return Err(Error::InvalidTxIndex {
                tx_index: self.other.tx_index.clone(),
            });
        }

        let rpc = &self.other.rpc_address;
        if !rpc.is_empty() && !is_ascii_text(rpc) {
            return Err(Error::InvalidRpcAddress {
                rpc_address: rpc.clone(),
            });
        }
        Ok(())
    }

    /// Checks whether we (`self`) can talk to a peer announcing `other` (the reference's
    /// `CompatibleWith`): same block version, same network, and at least one of our channels
    /// among theirs, unless we list no channels at all. The p2p and app versions are not
    /// compared.
    ///
    /// Every error returned here satisfies [`Error::is_incompatibility`].
    pub fn compatible_with(&self, other: &Self) -> Result<(), Error> {
        if self.protocol_version.block != other.protocol_version.block {
            return Err(Error::IncompatibleBlockVersion {
                ours: self.protocol_version.block,
                theirs: other.protocol_version.block,
            });
        }
        if self.network != other.network {
            return Err(Error::IncompatibleNetwork {
                ours: self.network.clone(),
                theirs: other.network.clone(),
            });
        }
        if !self.channels.is_empty() && !self.channels.iter().any(|&c| other.has_channel(c)) {
            return Err(Error::NoCommonChannels {
                ours: self.channels.clone(),
                theirs: other.channels.clone(),
            });
        }
        Ok(())
    }

    /// The node's self-reported address, `id@host:port` from `listen_addr` (the reference's
    /// `NetAddress()`, without the DNS lookup: call [`PeerAddress::resolve`] if needed).
    ///
    /// The host is often unspecified (`0.0.0.0`), and it is never authenticated.
    pub fn peer_address(&self) -> Result<PeerAddress, Error> {
        format!("{}@{}", self.id, strip_scheme(&self.listen_addr))
            .parse()
            .map_err(|e| Error::InvalidListenAddr {
                listen_addr: self.listen_addr.clone(),
                source: Box::new(e),
            })
    }

    /// The protobuf form. `protocol_version` and `other` are always `Some`, so they are always
    /// encoded, as the reference's non-nullable fields are.
    pub fn to_proto(&self) -> proto::p2p::DefaultNodeInfo {
        proto::p2p::DefaultNodeInfo {
            protocol_version: Some(proto::p2p::ProtocolVersion {
                p2p: self.protocol_version.p2p,
                block: self.protocol_version.block,
                app: self.protocol_version.app,
            }),
            default_node_id: self.id.to_string(),
            listen_addr: self.listen_addr.clone(),
            network: self.network.clone(),
            version: self.version.clone(),
            channels: self.channels.clone(),
            moniker: self.moniker.clone(),
            other: Some(proto::p2p::DefaultNodeInfoOther {
                tx_index: self.other.tx_index.clone(),
                rpc_address: self.other.rpc_address.clone(),
            }),
        }
    }

    /// Converts the protobuf form. A missing `protocol_version` or `other` reads as empty
    /// (all zero, empty strings), as gogoproto's non-nullable fields do.
    ///
    /// The ID must be valid and in canonical lower-case form: the reference compares it as a
    /// string with the lower-case ID of the authenticated key, so a peer sending any other
    /// spelling can never be accepted ([`Error::NodeIdNotCanonical`]). Nothing else is checked;
    /// call [`validate`](Self::validate).
    pub fn from_proto(pb: proto::p2p::DefaultNodeInfo) -> Result<Self, Error> {
        let id: NodeId = pb.default_node_id.parse()?;
        // `NodeId`'s text form is canonical; anything else (upper case) is not.
        if pb.default_node_id.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(Error::NodeIdNotCanonical {
                id: pb.default_node_id,
            });
        }
        let version = pb.protocol_version.unwrap_or_default();
        let other = pb.other.unwrap_or_default();
        Ok(Self {
            protocol_version: ProtocolVersion::new(version.p2p, version.block, version.app),
            id,
            listen_addr: pb.listen_addr,
            network: pb.network,
            version: pb.version,
            channels: pb.channels,
            moniker: pb.moniker,
            other: NodeInfoOther {
                tx_index: other.tx_index,
                rpc_address: other.rpc_address,
            },
        })
    }

    /// The handshake wire form: `uvarint(len) ‖ protobuf`.
    ///
    /// Peers reject a body above [`MAX_NODE_INFO_SIZE`] bytes; a NodeInfo that passes
    /// [`validate`](Self::validate) with reasonable string lengths is far below it.
    pub fn encode_delimited(&self) -> Vec<u8> {
        varint::encode_delimited(&self.to_proto())
    }

    /// Decodes the handshake wire form: one delimited message that fills `buf` exactly.
    ///
    /// A length prefix above [`MAX_NODE_INFO_SIZE`] fails with [`Error::MessageTooLarge`]
    /// before the body is looked at; then see [`from_proto`](Self::from_proto). Strings that
    /// are not UTF-8 fail to decode ([`Error::Decode`]); the reference decodes them and then
    /// rejects the peer in validation or the ID check, so the outcome is the same.
    pub fn decode_delimited(buf: &[u8]) -> Result<Self, Error> {
        let pb: proto::p2p::DefaultNodeInfo = varint::decode_delimited(buf, MAX_NODE_INFO_SIZE)?;
        Self::from_proto(pb)
    }
}

impl From<&NodeInfo> for proto::p2p::DefaultNodeInfo {
    fn from(info: &NodeInfo) -> Self {
        info.to_proto()
    }
}

impl TryFrom<proto::p2p::DefaultNodeInfo> for NodeInfo {
    type Error = Error;

    fn try_from(pb: proto::p2p::DefaultNodeInfo) -> Result<Self, Error> {
        Self::from_proto(pb)
    }
}

/// The reference's `IsASCIIText(s) && ASCIITrim(s) != ""`: non-empty, every byte in 32..=126,
/// and at least one byte that is not a space.
fn is_ascii_text(s: &str) -> bool {
    s.bytes().all(|b| (32..=126).contains(&b)) && s.bytes().any(|b| b != b' ')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use prost::Message as _;

    /// The reference test suite's `testCh`.
    const TEST_CH: u8 = 0x01;

    fn test_id() -> NodeId {
        crate::NodeKey::from_seed([3; 32]).node_id()
    }

    /// The reference's `testNodeInfo(id, "testing")` (ports fixed instead of free ones).
    fn test_node_info(id: NodeId, name: &str) -> NodeInfo {
        NodeInfo {
            protocol_version: ProtocolVersion::default(),
            id,
            listen_addr: "127.0.0.1:26656".into(),
            network: "testing".into(),
            version: "1.2.3-rc0-deadbeef".into(),
            channels: vec![TEST_CH],
            moniker: name.into(),
            other: NodeInfoOther {
                tx_index: "on".into(),
                rpc_address: "127.0.0.1:26657".into(),
            },
        }
    }

    /// The reference's `TestNodeInfoValidate` table, with the exact error each case gives here.
    #[test]
    fn reference_validate_table() {
        let channels: Vec<u8> = (0..16).collect();
        let mut dup_channels = channels[..5].to_vec();
        dup_channels.push(TEST_CH);
        let non_ascii = "¢§µ";
        let tab = "\t";
        let spaces = "  ";

        type Malleate = Box<dyn Fn(&mut NodeInfo)>;
        let cases: Vec<(&str, Malleate, Option<Error>)> = vec![
            (
                "Too Many Channels",
                Box::new({
                    let c = channels.clone();
                    move |ni| {
                        ni.channels = c.clone();
                        ni.channels.push(16);
                    }
                }),
                Some(Error::TooManyChannels { count: 17, max: 16 }),
            ),
            (
                "Duplicate Channel",
                Box::new(move |ni| ni.channels = dup_channels.clone()),
                Some(Error::DuplicateChannel { channel: TEST_CH }),
            ),
            (
                "Good Channels",
                Box::new(|ni| ni.channels.truncate(5)),
                None,
            ),
            (
                "Invalid NetAddress",
                Box::new(|ni| ni.listen_addr = "not-an-address".into()),
                Some(Error::InvalidListenAddr {
                    listen_addr: "not-an-address".into(),
                    source: Box::new(Error::MalformedHostPort {
                        addr: "not-an-address".into(),
                        reason: "missing port",
                    }),
                }),
            ),
            (
                "Good NetAddress",
                Box::new(|ni| ni.listen_addr = "0.0.0.0:26656".into()),
                None,
            ),
            (
                "Non-ASCII Version",
                Box::new(move |ni| ni.version = non_ascii.into()),
                Some(Error::InvalidVersion {
                    version: non_ascii.into(),
                }),
            ),
            (
                "Empty tab Version",
                Box::new(move |ni| ni.version = tab.into()),
                Some(Error::InvalidVersion {
                    version: tab.into(),
                }),
            ),
            (
                "Empty space Version",
                Box::new(move |ni| ni.version = spaces.into()),
                Some(Error::InvalidVersion {
                    version: spaces.into(),
                }),
            ),
            ("Empty Version", Box::new(|ni| ni.version.clear()), None),
            (
                "Non-ASCII Moniker",
                Box::new(move |ni| ni.moniker = non_ascii.into()),
                Some(Error::InvalidMoniker {
                    moniker: non_ascii.into(),
                }),
            ),
            (
                "Empty tab Moniker",
                Box::new(move |ni| ni.moniker = tab.into()),
                Some(Error::InvalidMoniker {
                    moniker: tab.into(),
                }),
            ),
            (
                "Empty space Moniker",
                Box::new(move |ni| ni.moniker = spaces.into()),
                Some(Error::InvalidMoniker {
                    moniker: spaces.into(),
                }),
            ),
            (
                "Empty Moniker",
                Box::new(|ni| ni.moniker.clear()),
                Some(Error::InvalidMoniker {
                    moniker: String::new(),
                }),
            ),
            (
                "Good Moniker",
                Box::new(|ni| ni.moniker = "hey its me".into()),
                None,
            ),
            (
                "Non-ASCII TxIndex",
                Box::new(move |ni| ni.other.tx_index = non_ascii.into()),
                Some(Error::InvalidTxIndex {
                    tx_index: non_ascii.into(),
                }),
            ),
            (
                "Empty tab TxIndex",
                Box::new(move |ni| ni.other.tx_index = tab.into()),
                Some(Error::InvalidTxIndex {
                    tx_index: tab.into(),
                }),
            ),
            (
                "Empty space TxIndex",
                Box::new(move |ni| ni.other.tx_index = spaces.into()),
                Some(Error::InvalidTxIndex {
                    tx_index: spaces.into(),
                }),
            ),
            (
                "Empty TxIndex",
                Box::new(|ni| ni.other.tx_index.clear()),
                None,
            ),
            (
                "Off TxIndex",
                Box::new(|ni| ni.other.tx_index = "off".into()),
                None,
            ),
            (
                "Non-ASCII RPCAddress",
                Box::new(move |ni| ni.other.rpc_address = non_ascii.into()),
                Some(Error::InvalidRpcAddress {
                    rpc_address: non_ascii.into(),
                }),
            ),
            (
                "Empty tab RPCAddress",
                Box::new(move |ni| ni.other.rpc_address = tab.into()),
                Some(Error::InvalidRpcAddress {
                    rpc_address: tab.into(),
                }),
            ),
            (
                "Empty space RPCAddress",
                Box::new(move |ni| ni.other.rpc_address = spaces.into()),
                Some(Error::InvalidRpcAddress {
                    rpc_address: spaces.into(),
                }),
            ),
            (
                "Empty RPCAddress",
                Box::new(|ni| ni.other.rpc_address.clear()),
                None,
            ),
            (
                "Good RPCAddress",
                Box::new(|ni| ni.other.rpc_address = "0.0.0.0:26657".into()),
                None,
            ),
        ];

        let mut base = test_node_info(test_id(), "testing");
        base.channels = channels;
        assert_eq!(base.validate(), Ok(()));

        for (name, malleate, want) in cases {
            let mut ni = base.clone();
            malleate(&mut ni);
            assert_eq!(ni.validate().err(), want, "{name}");
        }
    }

    #[test]
    fn empty_node_info_fails() {
        // The reference's "empty fails" case: an all-empty NodeInfo has no listen address.
        let ni = NodeInfo {
            protocol_version: ProtocolVersion::new(0, 0, 0),
            id: test_id(),
            listen_addr: String::new(),
            network: String::new(),
            version: String::new(),
            channels: Vec::new(),
            moniker: String::new(),
            other: NodeInfoOther::default(),
        };
        assert!(matches!(
            ni.validate(),
            Err(Error::InvalidListenAddr { .. })
        ));
    }

    #[test]
    fn listen_addr_forms() {
        let mut ni = test_node_info(test_id(), "testing");
        for good in [
            "tcp://0.0.0.0:26656",
            "0.0.0.0:26656",
            "[::]:26656",
            "tcp://[2001:db8::1]:1",
            "node0:26656",
            "tcp://validator.example.com:26656",
        ] {
            ni.listen_addr = good.into();
            assert_eq!(ni.validate(), Ok(()), "{good}");
        }
        for (bad, inner) in [
            (
                "tcp://:26656",
                Error::EmptyHost {
                    addr: ":26656".into(),
                },
            ),
            (
                "host:port",
                Error::InvalidPort {
                    port: "port".into(),
                },
            ),
            (
                "x@1.2.3.4:80",
                Error::AddressMissingId {
                    addr: format!("{}@x@1.2.3.4:80", ni.id),
                },
            ),
            (
                "bad_host!:80",
                Error::InvalidHost {
                    host: "bad_host!".into(),
                },
            ),
        ] {
            ni.listen_addr = bad.into();
            assert_eq!(
                ni.validate(),
                Err(Error::InvalidListenAddr {
                    listen_addr: bad.into(),
                    source: Box::new(inner),
                }),
                "{bad}"
            );
        }
    }

    #[test]
    fn peer_address_from_listen_addr() {
        let mut ni = test_node_info(test_id(), "testing");
        ni.listen_addr = "tcp://1.2.3.4:26656".into();
        let addr = ni.peer_address().unwrap();
        assert_eq!(addr.to_string(), format!("{}@1.2.3.4:26656", ni.id));
        ni.listen_addr = "nope".into();
        assert!(matches!(
            ni.peer_address(),
            Err(Error::InvalidListenAddr { .. })
        ));
    }

    #[test]
    fn ascii_text() {
        assert!(is_ascii_text("a"));
        assert!(is_ascii_text(" a "));
        assert!(is_ascii_text("~"));
        assert!(!is_ascii_text(""));
        assert!(!is_ascii_text("   "));
        assert!(!is_ascii_text("a\tb"));
        assert!(!is_ascii_text("a\x7f"));
        assert!(!is_ascii_text("é"));
    }

    /// The reference's `TestNodeInfoCompatible`.
    #[test]
    fn reference_compatible_table() {
        let new_test_channel = 0x02;
        let ni1 = test_node_info(test_id(), "testing");
        let mut ni2 = test_node_info(crate::NodeKey::from_seed([4; 32]).node_id(), "testing");
        assert_eq!(ni1.compatible_with(&ni2), Ok(()));

        ni2.channels.push(new_test_channel);
        assert!(ni2.has_channel(new_test_channel));
        assert_eq!(ni1.compatible_with(&ni2), Ok(()));

        let mut wrong_block = ni2.clone();
        wrong_block.protocol_version.block += 1;
        let mut wrong_network = ni2.clone();
        wrong_network.network.push_str("-wrong");
        let mut no_common = ni2.clone();
        no_common.channels = vec![new_test_channel];

        let cases = [
            (
                wrong_block,
                Error::IncompatibleBlockVersion {
                    ours: BLOCK_PROTOCOL,
                    theirs: BLOCK_PROTOCOL + 1,
                },
            ),
            (
                wrong_network,
                Error::IncompatibleNetwork {
                    ours: "testing".into(),
                    theirs: "testing-wrong".into(),
                },
            ),
            (
                no_common,
                Error::NoCommonChannels {
                    ours: vec![TEST_CH],
                    theirs: vec![new_test_channel],
                },
            ),
        ];
        for (theirs, want) in cases {
            let err = ni1.compatible_with(&theirs).unwrap_err();
            assert!(err.is_incompatibility(), "{err}");
            assert_eq!(err, want);
        }
    }

    #[test]
    fn compatibility_details() {
        let mut ours = test_node_info(test_id(), "testing");
        let mut theirs = ours.clone();
        // p2p and app versions are not compared (v0.38 talks to v1.0).
        theirs.protocol_version.p2p = 9;
        theirs.protocol_version.app = 42;
        assert_eq!(ours.compatible_with(&theirs), Ok(()));
        // No channels of our own: anything goes (the reference's test mode).
        ours.channels.clear();
        theirs.channels = vec![0x99];
        assert_eq!(ours.compatible_with(&theirs), Ok(()));
        // ...but not the other way round.
        assert!(matches!(
            theirs.compatible_with(&ours),
            Err(Error::NoCommonChannels { .. })
        ));
        // The network check comes after the block version check.
        theirs.network = "other".into();
        theirs.protocol_version.block = 1;
        assert!(matches!(
            ours.compatible_with(&theirs),
            Err(Error::IncompatibleBlockVersion { .. })
        ));
        assert!(!Error::EmptyNodeId.is_incompatibility());
    }

    #[test]
    fn defaults_of_new() {
        let ni = NodeInfo::new(test_id(), "chain-1", "tcp://0.0.0.0:26656");
        assert_eq!(ni.protocol_version, ProtocolVersion::new(8, 11, 0));
        assert_eq!(ni.version, env!("CARGO_PKG_VERSION"));
        assert_eq!(ni.moniker, "anonymous");
        assert_eq!(ni.other.tx_index, "off");
        assert!(ni.other.rpc_address.is_empty());
        assert!(ni.channels.is_empty());
        assert_eq!(ni.validate(), Ok(()));
    }

    #[test]
    fn proto_non_nullable_fields() {
        let ni = NodeInfo::new(test_id(), "", "");
        let pb = ni.to_proto();
        assert!(pb.protocol_version.is_some() && pb.other.is_some());

        // Missing sub-messages read as empty.
        let mut pb = pb;
        pb.protocol_version = None;
        pb.other = None;
        let back = NodeInfo::from_proto(pb).unwrap();
        assert_eq!(back.protocol_version, ProtocolVersion::new(0, 0, 0));
        assert_eq!(back.other, NodeInfoOther::default());
    }

    #[test]
    fn from_proto_id_rules() {
        let mut pb = test_node_info(test_id(), "x").to_proto();
        let lower = pb.default_node_id.clone();
        pb.default_node_id = lower.to_uppercase();
        assert_eq!(
            NodeInfo::from_proto(pb.clone()),
            Err(Error::NodeIdNotCanonical {
                id: lower.to_uppercase()
            })
        );
        pb.default_node_id = String::new();
        assert_eq!(NodeInfo::from_proto(pb.clone()), Err(Error::EmptyNodeId));
        pb.default_node_id = "abcd".into();
        assert!(matches!(
            NodeInfo::from_proto(pb),
            Err(Error::NodeIdLength { len: 2, .. })
        ));
    }

    #[test]
    fn size_limit_is_enforced_before_the_body() {
        // A prefix announcing 10241 bytes is refused even though no body follows.
        let mut buf = Vec::new();
        varint::encode_uvarint(MAX_NODE_INFO_SIZE as u64 + 1, &mut buf);
        assert_eq!(
            NodeInfo::decode_delimited(&buf),
            Err(Error::MessageTooLarge {
                len: MAX_NODE_INFO_SIZE as u64 + 1,
                max: MAX_NODE_INFO_SIZE
            })
        );
        // A body of exactly the limit is accepted by the framing.
        let mut ni = test_node_info(test_id(), "x");
        let base_len = ni.to_proto().encoded_len();
        // The 1-byte moniker costs 3 bytes (tag, length, byte); a moniker of `m >= 128` bytes
        // costs `3 + m` (two-byte length), so `m = limit - base_len` hits the limit exactly.
        ni.moniker = "x".repeat(MAX_NODE_INFO_SIZE - base_len);
        assert_eq!(ni.to_proto().encoded_len(), MAX_NODE_INFO_SIZE);
        assert_eq!(
            NodeInfo::decode_delimited(&ni.encode_delimited()),
            Ok(ni.clone())
        );
        ni.moniker.push('x');
        assert!(matches!(
            NodeInfo::decode_delimited(&ni.encode_delimited()),
            Err(Error::MessageTooLarge { .. })
        ));
    }

    #[test]
    fn decode_framing_errors() {
        let wire = test_node_info(test_id(), "x").encode_delimited();
        assert_eq!(NodeInfo::decode_delimited(&[]), Err(Error::Truncated));
        assert_eq!(
            NodeInfo::decode_delimited(&wire[..wire.len() - 1]),
            Err(Error::Truncated)
        );
        let mut long = wire.clone();
        long.push(0);
        assert_eq!(
            NodeInfo::decode_delimited(&long),
            Err(Error::TrailingBytes { extra: 1 })
        );
        // Invalid UTF-8 in a string field.
        let mut pb = test_node_info(test_id(), "x").to_proto();
        pb.moniker = "\u{e9}".into();
        let mut bytes = varint::encode_delimited(&pb);
        let pos = bytes.iter().position(|&b| b == 0xc3).unwrap();
        bytes[pos] = 0xff;
        assert!(matches!(
            NodeInfo::decode_delimited(&bytes),
            Err(Error::Decode { .. })
        ));
    }

    fn ascii(max: usize) -> impl Strategy<Value = String> {
        proptest::collection::vec(0x20u8..0x7f, 0..max)
            .prop_map(|b| String::from_utf8(b).unwrap_or_default())
    }

    prop_compose! {
        fn any_node_info()(
            p2p: u64, block: u64, app: u64,
            id: [u8; 20],
            listen_addr in "\\PC{0,40}",
            network in "\\PC{0,20}",
            version in ascii(20),
            channels in proptest::collection::vec(any::<u8>(), 0..20),
            moniker in "\\PC{0,20}",
            tx_index in prop_oneof![
                Just(String::new()),
                Just("on".to_owned()),
                Just("off".to_owned()),
                ascii(4),
            ],
            rpc_address in ascii(30),
        ) -> NodeInfo {
            NodeInfo {
                protocol_version: ProtocolVersion::new(p2p, block, app),
                id: NodeId::new(id),
                listen_addr,
                network,
                version,
                channels,
                moniker,
                other: NodeInfoOther { tx_index, rpc_address },
            }
        }
    }

    proptest! {
        #[test]
        fn encode_decode_round_trip(ni in any_node_info()) {
            let wire = ni.encode_delimited();
            prop_assert_eq!(NodeInfo::decode_delimited(&wire), Ok(ni.clone()));
            prop_assert_eq!(NodeInfo::from_proto(ni.to_proto()), Ok(ni.clone()));
            // Validation and compatibility are total functions.
            let _ = ni.validate();
            let _ = ni.compatible_with(&ni);
        }

        #[test]
        fn decode_arbitrary_bytes_never_panics(
            bytes in proptest::collection::vec(any::<u8>(), 0..512),
        ) {
            if let Ok(ni) = NodeInfo::decode_delimited(&bytes) {
                let _ = ni.validate();
                let _ = ni.compatible_with(&ni);
                // Whatever decodes re-encodes to something that decodes to the same value.
                prop_assert_eq!(NodeInfo::decode_delimited(&ni.encode_delimited()), Ok(ni));
            }
        }

        #[test]
        fn decode_mutated_valid_never_panics(pos: usize, byte: u8) {
            let mut wire = test_node_info(test_id(), "testing").encode_delimited();
            let i = pos % wire.len();
            wire[i] = byte;
            if let Ok(ni) = NodeInfo::decode_delimited(&wire) {
                let _ = ni.validate();
            }
        }
    }
}
