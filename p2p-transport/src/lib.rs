//! The transport layer of the CometBFT p2p stack: how a node reaches peers and is reached by
//! them, ending in authenticated, checked, multiplexed connections. It sits above the
//! MConnection (`p2p-mconn`) and below the switch.
//!
//! - [`Transport`]: the trait the switch uses (listen, accept, dial, cleanup, close), with the
//!   guarantees every implementation must give.
//! - [`upgrade_with`] / [`upgrade`]: the one upgrade pipeline all transports share
//!   (SecretConnection, NodeInfo exchange and checks, peer filters, MConnection), generic over
//!   any byte stream; its output is a [`Connection`].
//! - [`Upgrader`]: everything a transport does besides moving bytes (admission and upgrade
//!   of each stream, concurrent inbound upgrades into a bounded accept queue, an
//!   incoming-connection limit enforced before any handshake work, the [`ConnSet`] with
//!   duplicate checks, [filters](filter), timeouts, close), so a custom transport is small.
//! - [`TcpTransport`]: the reference's `MultiplexTransport`, TCP sockets on an [`Upgrader`].
//! - [`Error`]: every rejection with its remote address, reason and reference kind.
//!
//! # How to drive it
//!
//! Two transports on loopback, one dialing the other:
//!
//! ```
//! use p2p_mconn::{ChannelDescriptor, MConnConfig};
//! use p2p_transport::{TcpTransport, Transport, TransportConfig};
//! use p2p_types::{NetAddress, NodeInfo, NodeKey};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! fn node(seed: u8) -> Result<TcpTransport, p2p_transport::Error> {
//!     let key = NodeKey::from_seed([seed; 32]);
//!     let mut info = NodeInfo::new(key.node_id(), "my-chain", "tcp://127.0.0.1:26656");
//!     info.channels = vec![0x01];
//!     let mut config = TransportConfig::default();
//!     config.channels([ChannelDescriptor::new(0x01, 1)]);
//!     // Both nodes are on 127.0.0.1.
//!     config.dangerous().allow_duplicate_ip(true);
//!     TcpTransport::new(key, info, config)
//! }
//! let (a, b) = (node(1)?, node(2)?);
//! let addr = b.listen("127.0.0.1:0".parse()?).await?;
//! let b_addr = NetAddress::new(b.upgrade_config().node_id(), addr);
//!
//! let (dialed, accepted) = tokio::join!(a.dial(&b_addr), b.accept());
//! let (out, mut inb) = (dialed?, accepted?);
//! assert_eq!(out.node_info().network, "my-chain");
//! assert!(out.is_outbound() && !inb.is_outbound());
//!
//! out.mconn().send(0x01, &b"hello"[..]).await?;
//! let mut rx = inb.take_receivers();
//! let hello = rx.get_mut(0x01).ok_or("no channel 0x01")?.recv().await;
//! assert_eq!(hello.as_deref(), Some(&b"hello"[..]));
//!
//! a.cleanup(out);
//! b.cleanup(inb);
//! b.close().await;
//! # Ok(()) }
//! ```
//!
//! # Custom transports
//!
//! Implement [`Transport`] by moving bytes your way and leaving everything else to an
//! [`Upgrader`]: it admits every connected stream into a [`ConnSet`] (duplicate checks and
//! connection filters) and runs [`upgrade_with`] on it, enforces the incoming limit before any
//! handshake work, upgrades inbound streams concurrently into a bounded accept queue,
//! implements a cancel-safe `accept`, the dial timeout and `close`. Your transport keeps
//! binding, connecting and an accept loop of a few lines, and each [`Transport`] method is one
//! call; the [`Upgrader`] docs show a whole transport over Unix domain sockets. Then run
//! `p2p_testkit::conformance::run` in your tests: `p2p-testkit` has an in-memory transport and
//! a Unix-socket example built that way.
//!
//! A transport that needs its own accept machinery can still use the pieces directly:
//! [`admit`] (into a [`ConnSet`]) before any handshake work, then [`upgrade_with`], keeping the
//! [`Reservation`] in the connection with [`Connection::hold`].
//!
//! # Protocol notes
//!
//! The upgrade follows the reference (`p2p/transport.go` of CometBFT v0.38) step by step.
//! The [`manual`] describes it, with the wire format of the NodeInfo exchange and the checks
//! every peer passes, and lists where this implementation deliberately differs.

#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![warn(clippy::exhaustive_enums, clippy::exhaustive_structs)]

mod admission;
mod config;
mod conn_set;
mod connection;
mod error;
pub mod filter;
pub mod manual;
mod rate_limit;
mod rejections;
pub mod socket;
mod tcp;
mod transport;
mod upgrade;
mod upgrader;

pub use admission::{Admission, admit};
pub use config::{
    DEFAULT_ACCEPT_QUEUE, DEFAULT_DIAL_TIMEOUT, DEFAULT_FILTER_TIMEOUT,
    DEFAULT_HANDSHAKE_RATE_LIMIT, DEFAULT_HANDSHAKE_TIMEOUT, DangerousTransportConfig,
    FALLBACK_LISTEN_BACKLOG, TransportConfig, system_listen_backlog,
};
pub use conn_set::{ConnSet, ConnSetEntry, ConnSetView, Reservation};
pub use connection::{Connection, Direction};
pub use error::{Error, ErrorKind};
pub use filter::{ConnFilter, Denied, PeerFilter, conn_filter_fn, peer_filter_fn};
pub use rate_limit::HandshakeRateLimit;
pub use rejections::{RejectionCounts, SUMMARY_PERIOD};
pub use socket::{SocketSizes, SocketTuning};
pub use tcp::TcpTransport;
pub use transport::Transport;
pub use upgrade::{UpgradeConfig, upgrade, upgrade_with};
pub use upgrader::{Inbound, TransportStats, Upgrader};
