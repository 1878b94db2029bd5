//! The error type of this crate.

use std::path::PathBuf;
use std::time::Duration;

use p2p_types::{NetAddress, NodeId};

/// Everything that can go wrong in this crate: an address the book refuses, a file that cannot
/// be read or written, or a peer breaking the PEX protocol.
///
/// Refusals of [`AddrBook::add_address`](crate::AddrBook::add_address) are routine (gossip
/// carries many unusable addresses) and are logged at debug level by the PEX core; the
/// protocol errors say why a peer was disconnected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The address can never be dialled (unspecified, broadcast or documentation IP).
    #[error("cannot add invalid address {addr}: {reason}")]
    InvalidAddress {
        /// The address.
        addr: NetAddress,
        /// Why it is unusable.
        reason: String,
    },
    /// The node ID is banned.
    #[error("address {addr} is currently banned")]
    Banned {
        /// The address.
        addr: NetAddress,
    },
    /// The address belongs to a private peer, which is never stored or handed out.
    #[error("cannot add private peer with address {addr}")]
    PrivateAddress {
        /// The address.
        addr: NetAddress,
    },
    /// The address was learned from a private peer.
    #[error("cannot add a peer learned from private peer {src}")]
    PrivateSource {
        /// The private source.
        src: NetAddress,
    },
    /// The address is one of our own (same node ID or same IP and port).
    #[error("cannot add our own address {addr}")]
    OwnAddress {
        /// The address.
        addr: NetAddress,
    },
    /// The book is strict and the address is private, local or otherwise not routable.
    #[error("cannot add non-routable address {addr}")]
    NonRoutable {
        /// The address.
        addr: NetAddress,
    },
    /// The book already holds as many node IDs on this IP as it allows.
    #[error("cannot add {addr}: the book already holds {limit} addresses on this IP")]
    IpLimit {
        /// The address.
        addr: NetAddress,
        /// The per-IP limit ([`AddrBookConfig::max_addrs_per_ip`](crate::AddrBookConfig::max_addrs_per_ip)).
        limit: usize,
    },
    /// A file operation failed.
    #[error("cannot {op} {path}: {source}")]
    Io {
        /// What was being done ("read", "write", "rename", ...).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The book could not be encoded as JSON (never expected).
    #[error("cannot encode the address book: {reason}")]
    Encode {
        /// The encoder's complaint.
        reason: String,
    },
    /// A PEX message from the peer is not a valid protobuf `Message`.
    #[error("malformed PEX message from {peer}: {reason}")]
    MalformedMessage {
        /// The sender.
        peer: NodeId,
        /// The decoder's complaint.
        reason: String,
    },
    /// A PEX message from the peer exceeds the channel's limit.
    #[error("PEX message of {len} bytes from {peer} exceeds the limit of {max} bytes")]
    MessageTooLarge {
        /// The sender.
        peer: NodeId,
        /// The message length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The peer asked for addresses again too soon.
    #[error("peer {peer} sent a PEX request {elapsed:?} after the previous one (minimum {min:?})")]
    RequestTooSoon {
        /// The peer.
        peer: NodeId,
        /// Time since its previous request.
        elapsed: Duration,
        /// The minimum interval.
        min: Duration,
    },
    /// The peer sent addresses we had not asked it for.
    #[error("peer {peer} sent an unsolicited address list")]
    UnsolicitedAddrs {
        /// The peer.
        peer: NodeId,
    },
    /// The peer's answer carries more addresses than any honest node sends.
    #[error("peer {peer} sent {count} addresses (at most {max} allowed)")]
    TooManyAddrs {
        /// The peer.
        peer: NodeId,
        /// How many it sent.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// An address in the peer's answer has an unparsable IP or an out-of-range port.
    #[error("peer {peer} sent an invalid address: {reason}")]
    InvalidAddrs {
        /// The peer.
        peer: NodeId,
        /// What is wrong.
        reason: String,
    },
    /// Seeds were configured, none could be resolved, and the book is empty: nobody to talk to.
    #[error("address book is empty and none of the {configured} seeds could be resolved")]
    NoPeersToStart {
        /// How many seeds were configured.
        configured: usize,
    },
    /// The peer's self-reported listen address is unusable, so its answers have no source.
    #[error("peer {peer} has no usable self-reported address")]
    NoSelfAddress {
        /// The peer.
        peer: NodeId,
    },
}
