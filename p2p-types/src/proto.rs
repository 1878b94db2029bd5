//! Protobuf messages of the CometBFT p2p layer, as `prost` types.
//!
//! These mirror `proto/tendermint/p2p/{conn,types,pex}.proto` and
//! `proto/tendermint/crypto/keys.proto` of CometBFT v0.38. They are written out by hand with
//! `prost`'s derive macros, so building needs no `protoc`. Field numbers and types are the
//! reference's; the encoded bytes are checked against the golden vectors in the tests.
//!
//! The reference generates these with gogoproto, where a few message-typed fields are
//! "non-nullable" (always present). In prost such fields are `Option`s: set them to `Some` when
//! encoding (the helpers in this crate do) and treat `None` as the empty message when decoding.
//!
//! Most users want the typed wrappers ([`crate::NodeInfo`], [`crate::NetAddress`]) rather than
//! these raw messages.

#![allow(missing_docs, clippy::exhaustive_structs, clippy::exhaustive_enums)]

/// `tendermint.crypto` messages.
pub mod crypto {
    /// `tendermint.crypto.PublicKey`: a oneof over the supported key types.
    #[derive(Clone, PartialEq, Eq, Hash, ::prost::Message)]
    pub struct PublicKey {
        #[prost(oneof = "public_key::Sum", tags = "1, 2")]
        pub sum: Option<public_key::Sum>,
    }

    /// Nested types of [`PublicKey`].
    pub mod public_key {
        /// The key material; only ed25519 is accepted by the p2p layer.
        #[derive(Clone, PartialEq, Eq, Hash, ::prost::Oneof)]
        pub enum Sum {
            #[prost(bytes, tag = "1")]
            Ed25519(Vec<u8>),
            #[prost(bytes, tag = "2")]
            Secp256k1(Vec<u8>),
        }
    }
}

/// `tendermint.p2p` messages.
pub mod p2p {
    // ---- conn.proto ----------------------------------------------------------------------

    /// Keepalive request.
    #[derive(Clone, Copy, PartialEq, Eq, Hash, ::prost::Message)]
    pub struct PacketPing {}

    /// Keepalive answer.
    #[derive(Clone, Copy, PartialEq, Eq, Hash, ::prost::Message)]
    pub struct PacketPong {}

    /// One piece of a channel message; `eof` marks the last piece.
    #[derive(Clone, PartialEq, Eq, Hash, ::prost::Message)]
    pub struct PacketMsg {
        #[prost(int32, tag = "1")]
        pub channel_id: i32,
        #[prost(bool, tag = "2")]
        pub eof: bool,
        #[prost(bytes = "bytes", tag = "3")]
        pub data: ::bytes::Bytes,
    }

    /// What an MConnection sends: a ping, a pong or a message piece.
    #[derive(Clone, PartialEq, Eq, Hash, ::prost::Message)]
    pub struct Packet {
        #[prost(oneof = "packet::Sum", tags = "1, 2, 3")]
        pub sum: Option<packet::Sum>,
    }

    /// Nested types of [`Packet`].
    pub mod packet {
        /// The packet variants.
        #[derive(Clone, PartialEq, Eq, Hash, ::prost::Oneof)]
        pub enum Sum {
            #[prost(message, tag = "1")]
            PacketPing(super::PacketPing),
            #[prost(message, tag = "2")]
            PacketPong(super::PacketPong),
            #[prost(message, tag = "3")]
            PacketMsg(super::PacketMsg),
        }
    }

    /// The SecretConnection authentication message: our long-term key and its signature
    /// over the handshake challenge. `pub_key` is non-nullable in the reference.
    #[derive(Clone, PartialEq, Eq, Hash, ::prost::Message)]
    pub struct AuthSigMessage {
        #[prost(message, optional, tag = "1")]
        pub pub_key: Option<super::crypto::PublicKey>,
        #[prost(bytes = "vec", tag = "2")]
        pub sig: Vec<u8>,
    }

    // ---- types.proto ---------------------------------------------------------------------

    /// A peer address as carried by PEX: the IP is always textual, never a host name.
    #[derive(Clone, PartialEq, Eq, Hash, ::prost::Message)]
    pub struct NetAddress {
        #[prost(string, tag = "1")]
        pub id: String,
        #[prost(string, tag = "2")]
        pub ip: String,
        #[prost(uint32, tag = "3")]
        pub port: u32,
    }

    /// Protocol versions a node speaks.
    #[derive(Clone, Copy, PartialEq, Eq, Hash, ::prost::Message)]
    pub struct ProtocolVersion {
        #[prost(uint64, tag = "1")]
        pub p2p: u64,
        #[prost(uint64, tag = "2")]
        pub block: u64,
        #[prost(uint64, tag = "3")]
        pub app: u64,
    }

    /// What nodes exchange right after the secret handshake.
    /// `protocol_version` and `other` are non-nullable in the reference (always encoded).
    #[derive(Clone, PartialEq, Eq, Hash, ::prost::Message)]
    pub struct DefaultNodeInfo {
        #[prost(message, optional, tag = "1")]
        pub protocol_version: Option<ProtocolVersion>,
        #[prost(string, tag = "2")]
        pub default_node_id: String,
        #[prost(string, tag = "3")]
        pub listen_addr: String,
        #[prost(string, tag = "4")]
        pub network: String,
        #[prost(string, tag = "5")]
        pub version: String,
        #[prost(bytes = "vec", tag = "6")]
        pub channels: Vec<u8>,
        #[prost(string, tag = "7")]
        pub moniker: String,
        #[prost(message, optional, tag = "8")]
        pub other: Option<DefaultNodeInfoOther>,
    }

    /// Free-form extras of [`DefaultNodeInfo`].
    #[derive(Clone, PartialEq, Eq, Hash, ::prost::Message)]
    pub struct DefaultNodeInfoOther {
        #[prost(string, tag = "1")]
        pub tx_index: String,
        #[prost(string, tag = "2")]
        pub rpc_address: String,
    }

    // ---- pex.proto -----------------------------------------------------------------------

    /// Asks a peer for addresses.
    #[derive(Clone, Copy, PartialEq, Eq, Hash, ::prost::Message)]
    pub struct PexRequest {}

    /// Addresses sent in answer to a [`PexRequest`].
    #[derive(Clone, PartialEq, Eq, Hash, ::prost::Message)]
    pub struct PexAddrs {
        #[prost(message, repeated, tag = "1")]
        pub addrs: Vec<NetAddress>,
    }

    /// What travels on the PEX channel (0x00).
    #[derive(Clone, PartialEq, Eq, Hash, ::prost::Message)]
    pub struct Message {
        #[prost(oneof = "message::Sum", tags = "1, 2")]
        pub sum: Option<message::Sum>,
    }

    /// Nested types of [`Message`].
    pub mod message {
        /// The PEX message variants.
        #[derive(Clone, PartialEq, Eq, Hash, ::prost::Oneof)]
        pub enum Sum {
            #[prost(message, tag = "1")]
            PexRequest(super::PexRequest),
            #[prost(message, tag = "2")]
            PexAddrs(super::PexAddrs),
        }
    }
}
