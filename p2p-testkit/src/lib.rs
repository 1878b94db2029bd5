//! Test tools for the p2p stack, one layer above the transport (`p2p-transport`): an in-memory
//! network whose transport needs no sockets, deterministic simulations with fault injection,
//! and a conformance suite any
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
//! # Simulations
//!
//! [`sim::Sim`] runs many nodes on one [`memory::MemoryNetwork`] under tokio's paused clock,
//! with one seed fixing every random choice, so that the same seed gives the same
//! [`trace::Trace`] (a hash of every connection event and delivered byte with its virtual
//! time). Faults (latency, jitter, bandwidth, partitions, stalled readers, resets, crashes)
//! are injected through the network; see [`memory`] and [`sim`] for examples.
//!
//! # Modules
//!
//! - [`memory`]: [`MemoryNetwork`](memory::MemoryNetwork) and
//!   [`MemoryTransport`](memory::MemoryTransport); deterministic addresses (`10.0.0.N`),
//!   shaped pipes, faults between hosts, raw connections and listeners for playing
//!   misbehaving peers.
//! - [`pipe`]: [`MemoryStream`](pipe::MemoryStream), the shaped duplex under every
//!   connection (bounded buffers, latency, jitter, bandwidth, held and reset states).
//! - [`sim`]: [`Sim`](sim::Sim), deterministic simulations with nodes that crash and restart.
//! - [`trace`]: [`Trace`](trace::Trace), the record of a run and its hash.
//! - [`conformance`]: the suite, [`conformance::run`].
//! - `unix` (Unix only): `UnixTransport`, a transport over Unix domain sockets built on an
//!   `Upgrader`, as a user would write one.
//! - [`manual`]: how this relates to the reference's test tools, and the model's limits.
//!
//! Protocol notes for what the transports do are in `p2p_transport::manual`.

#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![warn(clippy::exhaustive_enums, clippy::exhaustive_structs)]

pub mod conformance;
mod derive;
mod error;
pub mod manual;
pub mod memory;
pub mod pipe;
pub mod sim;
pub mod testnet;
pub mod trace;
#[cfg(unix)]
pub mod unix;

pub use error::Error;
