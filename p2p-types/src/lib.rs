//! Identity, addressing and handshake metadata of the CometBFT p2p layer.
//!
//! This is the bottom layer of the workspace: node keys and IDs ([`NodeKey`], [`NodeId`]),
//! the varint-delimited framing every handshake message uses ([`varint`]), and the protobuf
//! messages of the reference ([`proto`]). Everything here is plain data with no I/O except
//! reading and writing `node_key.json`.
//!
//! ```
//! use p2p_types::NodeKey;
//!
//! let key = NodeKey::from_seed([0x11; 32]);
//! let id = key.node_id();
//! assert_eq!(id.to_string().len(), 40);
//! assert_eq!(id, id.to_string().parse().unwrap());
//! ```
//!
//! Wire formats follow CometBFT v0.38 (byte-identical to v0.37 and v1.0).

#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![warn(clippy::exhaustive_enums, clippy::exhaustive_structs)]

mod error;
mod id;
mod key;
pub mod proto;
pub mod varint;

pub use error::Error;
pub use id::{NODE_ID_LEN, NodeId};
pub use key::{NodeKey, PRIV_KEY_ED25519_TYPE};

pub use ed25519_dalek;
