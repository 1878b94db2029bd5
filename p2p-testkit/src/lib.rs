//! Test tools for the p2p stack, one layer above the transport (`p2p-transport`): an in-memory
//! network whose transport needs no sockets, and a conformance suite any
//! [`Transport`](p2p_transport::Transport) implementation can run in its own tests.
//!
//! # How to drive it
//!
//! Check a transport against the trait's guarantees; here the in-memory one, under tokio's
//! paused clock (nothing in it waits on the OS, so virtual time is exact):
//!
//! ```
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! use p2p_testkit::{conformance, memory::MemoryNetwork};
//!
//! let net = MemoryNetwork::new();
//! let report = conformance::run("0.0.0.0:0".parse().unwrap(), |key, info, config| {
//!     let net = net.clone();
//!     async move { net.transport(key, info, config) }
//! })
//! .await
//! .unwrap_or_else(|failure| panic!("{failure}"));
//! println!("{report}");
//! # }
//! ```
//!
//! The TCP transport runs the same suite in `p2p-transport/tests/conformance.rs`, and
//! `examples/unix_transport.rs` is a third transport, over Unix domain sockets, written the
//! way a user would write theirs: bytes its own way, everything else left to a
//! `p2p_transport::Upgrader`.
//!
//! # Modules
//!
//! - [`memory`]: [`MemoryNetwork`](memory::MemoryNetwork) and
//!   [`MemoryTransport`](memory::MemoryTransport); deterministic addresses (`10.0.0.N`),
//!   connections over `tokio::io::duplex`, raw connections for playing misbehaving peers.
//! - [`conformance`]: the suite, [`conformance::run`].
//!
//! Protocol notes for what the transports do are in `p2p_transport::manual` and the
//! workspace's `shared/spec/behaviour.md` §1.

#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![warn(clippy::exhaustive_enums, clippy::exhaustive_structs)]

pub mod conformance;
pub mod memory;
