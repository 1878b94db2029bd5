//! Protocol and design notes.
//!
//! # The reference's upgrade (CometBFT v0.38 `p2p/transport.go`)
//!
//! ```text
//! TCP connect (dial timeout 1 s) ─► connection filters (dialer too) ─►
//!   SecretConnection handshake (handshake timeout 3 s) ─►
//!   [dialer] authenticated ID == dialed ID ─►
//!   NodeInfo exchange (fresh 3 s deadline) ─► Validate ─► ID == NodeInfo ID ─►
//!   not self ─► CompatibleWith ─► MConnection
//! ```
//!
//! The NodeInfo exchange sends our `DefaultNodeInfo` as one varint-length-delimited protobuf
//! through the secret connection while reading the peer's (limit 10240 bytes). Both sides run
//! every check, so an incompatible network is reported on both ends, while a wrong dialed ID is
//! seen by the dialer as an authentication failure and by the listener as a connection closed
//! during the NodeInfo exchange.
//!
//! Rejections are the reference's `ErrRejected` kinds: auth failure, duplicate, filtered,
//! incompatible, invalid NodeInfo, self. The self rejection carries `ourID@remoteIP:port` so
//! the address book can remember it as ours.
//!
//! # Where this implementation differs
//!
//! None of these is visible on the wire.
//!
//! - **Incoming limit before any work.** The reference counts incoming connections with a
//!   `LimitListener`, which stops calling `accept(2)` at the limit: further connections wait in
//!   the kernel backlog behind whatever holds the slots (a flood of silent connections holds
//!   them for the whole handshake timeout). Here a connection over the limit is accepted and
//!   closed at once; nothing is read from it or allocated for it. The count covers connections
//!   being upgraded, upgraded ones waiting for `accept`, and established ones until cleanup.
//! - **Timeouts as documented.** The reference has `dial_timeout` and `handshake_timeout` in
//!   its `config.toml` but its transport ignores them (1 s and 3 s, fixed). Here they are
//!   settings with those defaults. The handshake timeout applies to the secret handshake and
//!   again, fresh, to the NodeInfo exchange, as in the reference.
//! - **Peer filters run in the transport**, after the NodeInfo checks and before the
//!   MConnection starts (the reference runs them in its switch, after starting the peer).
//! - **Admission is atomic.** The duplicate-connection and duplicate-IP checks and the insertion
//!   into the connection set happen under one lock before the custom connection filters run, so
//!   two simultaneous connections from one IP cannot both pass. Custom filters see the set
//!   with the new connection in it.
//! - **Accept never dies.** An `accept(2)` error (e.g. out of file descriptors) pauses the loop
//!   briefly instead of ending it (the reference's switch panics then).
//! - **Bounded reports.** Upgraded connections wait in a bounded queue for `accept`; rejection
//!   reports that find it full are logged and dropped instead of holding a task.
//! - **Own NodeInfo checked up front.** A transport refuses to start with a NodeInfo peers
//!   would reject (invalid, wrong ID, too large) or listing channels it has no descriptor for.
//! - **Canonical IDs.** A NodeInfo whose ID is not lower-case hex is undecodable here (an auth
//!   failure); the reference rejects it in the ID comparison, also as an auth failure.
