//! The switch of the CometBFT p2p stack: it runs **reactors** (the protocols: consensus,
//! mempool, PEX, yours) over the peers of any [`Transport`](p2p_transport::Transport), keeps
//! the peer set, accepts and dials, redials persistent peers and broadcasts. It sits above the
//! transport (`p2p-transport`) and below PEX (`p2p-pex`).
//!
//! # How it works
//!
//! A reactor owns channels (IDs with priorities and capacities) and a `prost` message type.
//! The switch's channel list, which is announced in our NodeInfo and given to every
//! MConnection, is the reactors' channels in registration order. For each peer the switch calls
//! `init_peer`, adds it to the peer set, calls `add_peer`, then delivers every message of a
//! reactor's channels to that reactor, decoded once, and finally calls `remove_peer` exactly
//! once with the reason, whatever ended the peer. Peers send typed messages through their
//! [`Peer`] handle.
//!
//! # An echo protocol, whole
//!
//! ```
//! use std::time::Duration;
//! use p2p_mconn::ChannelDescriptor;
//! use p2p_switch::{Envelope, Reactor, SwitchBuilder, SwitchConfig};
//! use p2p_types::{NetAddress, NodeInfo, NodeKey};
//! use tokio::sync::mpsc;
//!
//! #[derive(Clone, PartialEq, prost::Message)]
//! struct Text {
//!     #[prost(string, tag = "1")]
//!     text: String,
//!     #[prost(bool, tag = "2")]
//!     reply: bool,
//! }
//!
//! /// Echoes every message back once, and reports the echoes it gets.
//! struct Echo(mpsc::Sender<String>);
//!
//! impl Reactor for Echo {
//!     type Message = Text;
//!
//!     fn channels(&self) -> Vec<ChannelDescriptor> {
//!         vec![ChannelDescriptor::new(0x70, 1).send_queue_capacity(10)]
//!     }
//!
//!     async fn receive(&self, e: Envelope<Text>) {
//!         if e.message.reply {
//!             let _ = self.0.send(e.message.text).await;
//!         } else {
//!             let reply = Text { reply: true, ..e.message };
//!             let _ = e.src.send(e.channel, &reply).await;
//!         }
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let node = |seed: u8, tx: mpsc::Sender<String>| {
//!     let key = NodeKey::from_seed([seed; 32]);
//!     let info = NodeInfo::new(key.node_id(), "echo-net", "tcp://127.0.0.1:26656");
//!     let mut config = SwitchConfig::default();
//!     config.listen_addr(Some("127.0.0.1:0".parse().unwrap())).allow_duplicate_ip(true);
//!     let mut builder = SwitchBuilder::new(key, info, config);
//!     builder.add_reactor("echo", Echo(tx))?;
//!     builder.build_tcp()
//! };
//! let (tx, mut echoes) = mpsc::channel(1);
//! let (a, b) = (node(1, tx.clone())?, node(2, tx)?);
//! a.start().await?;
//! b.start().await?;
//!
//! let b_addr = b.net_address().expect("listening");
//! let peer = a.dial_peer_with_address(&b_addr).await?;
//! peer.send(0x70, &Text { text: "hello".into(), reply: false }).await?;
//! assert_eq!(echoes.recv().await.as_deref(), Some("hello"));
//!
//! a.stop().await;
//! b.stop().await;
//! # Ok(()) }
//! ```
//!
//! # Why `receive` is an `async fn`
//!
//! Each channel of each peer has a task that awaits the reactor's `receive` for one message at
//! a time. That gives backpressure and isolation with no code in the reactor: a reactor that
//! is slow simply takes long to return, which holds up that channel of that peer only (its
//! messages wait in the channel's bounded receive queue), while other channels, other peers,
//! other reactors and the keepalive go on. No queue grows without bound. The alternative, a
//! bounded inbox per reactor that the reactor drains itself, needs a loop and a task in every
//! reactor and serialises all peers through it; a reactor that wants that forwards from
//! `receive` into a channel of its own. What happens once a queue is full is described on
//! [`Reactor`].
//!
//! # Modules and types
//!
//! - [`Reactor`], [`Envelope`]: the protocol side.
//! - [`SwitchBuilder`], [`Switch`], [`SwitchHandle`], [`SwitchConfig`]: the switch.
//! - [`Peer`]: a connected peer, typed sending, per-peer data.
//! - [`Raw`]: a message type that is its bytes, for protocols that frame their own messages.
//! - [`AddressBook`]: the seam to an address book (`p2p-pex` implements it).
//! - [`metrics`]: the reference's Prometheus metrics.
//! - [`manual`]: how every method of the reference's `Switch` and `Peer` maps to this crate,
//!   and where the behaviour deliberately differs.

#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![warn(clippy::exhaustive_enums, clippy::exhaustive_structs)]

mod adapt;
mod addr_book;
mod config;
mod error;
pub mod manual;
pub mod metrics;
mod peer;
mod raw;
mod reactor;
mod switch;

pub use addr_book::AddressBook;
pub use config::{
    DEFAULT_MAX_NUM_INBOUND_PEERS, DEFAULT_MAX_NUM_OUTBOUND_PEERS, DEFAULT_STOP_TIMEOUT,
    DIAL_RANDOMIZER_INTERVAL, RECONNECT_ATTEMPTS, RECONNECT_BACKOFF_ATTEMPTS,
    RECONNECT_BACKOFF_BASE, RECONNECT_INTERVAL, SwitchConfig,
};
pub use error::{AddAddressError, Error, ReactorError, SendError, StopReason};
pub use p2p_mconn::{Blame, ConnectionId};
pub use peer::{Peer, PeerState};
pub use raw::Raw;
pub use reactor::{Envelope, Reactor, type_label};
pub use switch::{
    BroadcastReport, Switch, SwitchBuilder, SwitchHandle, parse_peer_ids, parse_peer_list,
    resolve_peer_list,
};
