//! Peer exchange (PEX) for a CometBFT-compatible p2p stack: the address book and the PEX
//! protocol.
//!
//! - [`AddrBook`]: what a node knows about other nodes' addresses, in buckets placed by a
//!   keyed hash of network groups so that an attacker holding many addresses in few networks
//!   cannot fill it; bans, selections for PEX answers, picking addresses to dial.
//! - [`file`](mod@file): `addrbook.json` in the reference's format, saved atomically, loaded without
//!   ever panicking, damage reported in a [`LoadReport`].
//! - [`PexCore`]: the PEX protocol without I/O (requests and answers on channel 0x00, their
//!   abuse limits, keeping outbound peers topped up, seeds, seed-mode crawling), driven with
//!   `handle_*` calls and drained with `poll_action` / `poll_timeout`.
//! - [`message`]: the two PEX messages, encoded and checked.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Instant;
//! use p2p_pex::{AddrBook, AddrBookConfig, PexAction, PexConfig, PexCore, PexMessage, PexPeer,
//!     SwitchView, SystemClock};
//! use p2p_types::NetAddress;
//!
//! struct NoPeers;
//! impl SwitchView for NoPeers {
//!     fn num_outbound(&self) -> usize { 0 }
//!     fn num_dialing(&self) -> usize { 0 }
//!     fn is_dialing_or_connected(&self, _: &NetAddress) -> bool { false }
//!     fn is_persistent(&self, _: &NetAddress) -> bool { false }
//! }
//!
//! let mut book = AddrBook::with_seed(AddrBookConfig::default(), 7, Arc::new(SystemClock));
//! let known: NetAddress = "0123456789abcdef0123456789abcdef01234567@1.2.3.4:26656".parse()?;
//! book.add_address(&known, &known)?;
//!
//! let now = Instant::now();
//! let mut pex = PexCore::with_seed(PexConfig::default(), now, 7);
//! // The first round runs at once: nobody is connected, so the known address is dialled.
//! pex.handle_timeout(now, &mut book, &NoPeers);
//! assert!(matches!(pex.poll_action(), Some(PexAction::Dial { addr }) if addr == known));
//!
//! // An outbound peer is asked for addresses while the book needs them.
//! let peer = PexPeer { id: known.id(), outbound: true, persistent: false,
//!     listen_addr: Some(known), socket_addr: known };
//! pex.handle_peer_added(peer, now, &mut book);
//! match pex.poll_action() {
//!     Some(PexAction::Send { message, .. }) => assert_eq!(message.encode(), PexMessage::Request.encode()),
//!     other => panic!("{other:?}"),
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Time and randomness are injected ([`Clock`], seeded generators), so a simulation runs the
//! same way every time. Where this crate deliberately differs from the reference (CometBFT
//! v0.38) is listed in the [`manual`].

#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]

mod book;
mod clock;
mod config;
mod core;
mod error;
pub mod file;
mod group;
pub mod manual;
pub mod message;
pub mod params;
mod reactor;

/// The README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

pub use book::{AddOutcome, AddrBook, BucketKind, KnownAddress};
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{
    AddrBookConfig, DEFAULT_CRAWL_PERIOD, DEFAULT_ENSURE_PEERS_PERIOD, DEFAULT_MAX_ADDRS_PER_IP,
    DEFAULT_MAX_BANS, DEFAULT_MAX_FAILED_ATTEMPTS, DEFAULT_MAX_NUM_OUTBOUND_PEERS,
    DEFAULT_MIN_TIME_BETWEEN_CRAWLS, DEFAULT_SEED_DISCONNECT_WAIT_PERIOD, PexConfig,
};
pub use core::{
    DialOutcome, DisconnectReason, MAX_QUEUED_ACTIONS, PENDING_DIAL_TIMEOUT, PexAction, PexCore,
    PexPeer, PexStats, SwitchView, check_seeds,
};
pub use error::Error;
pub use file::{LoadIssue, LoadReport};
pub use group::group_key;
pub use message::{PexMessage, Received};
pub use reactor::{
    Config, PEX_CHANNEL, PEX_CHANNEL_PRIORITY, PEX_RECV_MESSAGE_CAPACITY, PEX_SEND_QUEUE_CAPACITY,
    Reactor, SharedAddrBook,
};
