//! Identity, addressing and handshake metadata of the CometBFT p2p layer.
//!
//! This is the bottom layer of the workspace, plain data with no I/O except reading and writing
//! `node_key.json`, the explicit DNS lookup of [`PeerAddress::resolve`] and, with the `config`
//! feature, reading and initialising a home directory:
//!
//! - node keys and IDs: [`NodeKey`], [`NodeId`];
//! - addresses: [`NetAddress`] (resolved `id@ip:port`, as stored and exchanged by PEX) and
//!   [`PeerAddress`] (configured `id@host:port`, host possibly a DNS name), in [`netaddr`];
//! - the handshake metadata: [`NodeInfo`] with its validation and compatibility rules, plus the
//!   reactors' [`channels`], in [`node_info`];
//! - the varint-delimited framing every handshake message uses ([`varint`]);
//! - the protobuf messages of the reference ([`proto`]);
//! - the node's settings as `config.toml` holds them: [`config::NodeConfig`] and
//!   [`config::P2PConfig`], with Go's duration syntax ([`config::GoDuration`]); reading and
//!   writing the file and the home directory (`home`) need the `config` feature;
//! - the deliberate differences from the reference, in [`manual`];
//! - one error type, [`Error`].
//!
//! ```
//! use p2p_types::{NetAddress, NodeInfo, NodeKey, channels};
//!
//! let key = NodeKey::from_seed([0x11; 32]);
//! let id = key.node_id();
//! assert_eq!(id, id.to_string().parse().unwrap());
//!
//! let addr: NetAddress = format!("tcp://{id}@1.2.3.4:26656").parse().unwrap();
//! assert_eq!(addr.to_string(), format!("{id}@1.2.3.4:26656"));
//!
//! let mut info = NodeInfo::new(id, "my-chain", "tcp://0.0.0.0:26656");
//! info.channels = channels::V0_38_FULL_NODE.to_vec();
//! let wire = info.encode_delimited();
//! let received = NodeInfo::decode_delimited(&wire).unwrap();
//! received.validate().unwrap();
//! info.compatible_with(&received).unwrap();
//! ```
//!
//! Wire formats follow CometBFT v0.38 (byte-identical to v0.37 and v1.0). The [`manual`]
//! describes them (node IDs and key files, addresses, delimited messages, NodeInfo with its
//! validation and compatibility rules) and lists where this crate deliberately behaves
//! differently from the reference.
//!
//! # Features
//!
//! - `serde`: `Serialize`/`Deserialize` for [`NodeId`], [`NetAddress`], [`PeerAddress`] and
//!   [`HostPort`], as their text forms.
//! - `config`: `NodeConfig::from_toml` and `NodeConfig::to_toml` for `config.toml`, and the
//!   `home` module (a CometBFT home directory); pulls in `toml` and `tracing`.

#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![warn(clippy::exhaustive_enums, clippy::exhaustive_structs)]

pub mod config;
mod error;
#[cfg(feature = "config")]
#[cfg_attr(docsrs, doc(cfg(feature = "config")))]
pub mod home;
mod id;
mod key;
pub mod manual;
pub mod netaddr;
pub mod node_info;
pub mod proto;
pub mod varint;

pub use error::Error;
pub use id::{NODE_ID_LEN, NodeId};
pub use key::{NodeKey, PRIV_KEY_ED25519_TYPE};
pub use netaddr::{Host, HostPort, NetAddress, PeerAddress};
pub use node_info::{
    BLOCK_PROTOCOL, MAX_NODE_INFO_SIZE, MAX_NUM_CHANNELS, NodeInfo, NodeInfoOther, P2P_PROTOCOL,
    ProtocolVersion, channels,
};

pub use ed25519_dalek;
