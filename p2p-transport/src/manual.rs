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
//! # The NodeInfo exchange on the wire
//!
//! Once the secret connection stands, each side writes its NodeInfo and reads the peer's at
//! the same time (neither waits for the other), as one message: an unsigned LEB128 varint
//! with the body's length, then the body, a protobuf `DefaultNodeInfo`. The reader refuses a
//! length over 10240 bytes (`maxNodeInfoSize`) before reading the body, and a varint longer
//! than ten bytes. A NodeInfo over 1024 bytes simply spans several secret-connection frames.
//!
//! ```text
//! DefaultNodeInfo {
//!   1 protocol_version: ProtocolVersion { 1 p2p: uint64, 2 block: uint64, 3 app: uint64 }
//!   2 default_node_id:  string  lower-case hex of the 20-byte ID
//!   3 listen_addr:      string  e.g. "tcp://0.0.0.0:26656"
//!   4 network:          string  the chain ID
//!   5 version:          string  the software version
//!   6 channels:         bytes   one byte per channel ID
//!   7 moniker:          string
//!   8 other:            DefaultNodeInfoOther { 1 tx_index: string, 2 rpc_address: string }
//! }
//! ```
//!
//! Fields go out in field-number order, and the two nested messages (fields 1 and 8) are
//! written even when empty, as Go's gogoproto does; a reader accepts any valid protobuf.
//!
//! The peer's NodeInfo must then pass validation (its listen address parses as an address
//! once prefixed with its ID; version, moniker and RPC address are printable ASCII and not
//! only spaces, the moniker non-empty; at most 16 channels, none twice; `tx_index` empty,
//! `on` or `off`), name the ID its key proves, not be ourselves, and be compatible: the same
//! block protocol version (the p2p and app versions are not compared) and network, and at
//! least one channel in common (unless we list none). A peer is only sent messages on the
//! channels its NodeInfo lists.
//!
//! Rejections are the reference's `ErrRejected` kinds: auth failure, duplicate, filtered,
//! incompatible, invalid NodeInfo, self. The self rejection carries `ourID@remoteIP:port` so
//! the address book can remember it as ours.
//!
//! # Where this implementation differs
//!
//! None of these is visible on the wire.
//!
//! - **Socket buffers sized for each connection.** The reference leaves the kernel's
//!   defaults, under which a bulk transfer fills megabytes of socket buffers and a
//!   high-priority message waits behind them (milliseconds on loopback, tens of milliseconds
//!   on a 100 Mbit/s link). [`TcpTransport`](crate::TcpTransport) sets `TCP_NOTSENT_LOWAT`
//!   and, where the link allows, `SO_RCVBUF` once the secret handshake is done, sized by
//!   [`size_socket`](crate::socket::size_socket) from the MConnection's rates and the
//!   round-trip time measured while connecting (the TCP connect for outbound connections,
//!   the secret handshake for both). A fixed receive buffer turns off the kernel's
//!   autotuning and caps a connection at one window per round trip; so it is sized to twice
//!   the bandwidth-delay product and never set beyond `net.core.rmem_max` (longer, faster
//!   links keep autotuning). `TransportConfig::socket_tuning` chooses fixed sizes or the
//!   kernel's defaults instead.
//! - **Incoming limit before any work.** The reference counts incoming connections with a
//!   `LimitListener`, which stops calling `accept(2)` at the limit: further connections wait in
//!   the kernel backlog behind whatever holds the slots (a flood of silent connections holds
//!   them for the whole handshake timeout). Here a connection over the limit is accepted and
//!   closed at once; nothing is read from it or allocated for it. The count covers connections
//!   being upgraded, upgraded ones waiting for `accept`, and established ones until cleanup.
//! - **A per-source handshake rate limit.** The reference has none: a host can open
//!   connections as fast as it likes and each costs the listener a full handshake (about
//!   200 µs of CPU) even while it stays under the incoming limit. Here each source (IPv4
//!   address, IPv6 `/64`) may start 32 handshakes at once and then 10 per second
//!   ([`TransportConfig::handshake_rate_limit`](crate::TransportConfig::handshake_rate_limit));
//!   a connection over that is closed before any handshake work and reported as
//!   [`Error::HandshakeRateLimited`](crate::Error::HandshakeRateLimited), a rejection kind of
//!   its own. Honest peers, even many behind one NAT address, connect far less often.
//! - **Listen backlog.** Like the reference (Go asks for the system's maximum,
//!   `/proc/sys/net/core/somaxconn` on Linux), the TCP listener asks for the system's maximum
//!   backlog ([`system_listen_backlog`](crate::system_listen_backlog)), and it is a setting
//!   ([`TransportConfig::listen_backlog`](crate::TransportConfig::listen_backlog)). A backlog of
//!   128 loses connections in a burst: Linux drops the packets of connections arriving while
//!   the queue is full, so dialers time out or believe themselves connected to a listener that
//!   never sees them.
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
//! - **Bounded reports, every rejection counted.** Upgraded connections wait in a bounded
//!   queue for `accept`; rejection reports that find it full are dropped instead of holding a
//!   task. Every inbound rejection is counted by kind all the same
//!   ([`Upgrader::rejections`](crate::Upgrader::rejections), for metrics) and logged at info
//!   level in summaries, at most one line per kind per 10 s with the count since the last
//!   one, so a flood is visible without flooding the log (the reference logs each rejection).
//! - **Own NodeInfo checked up front.** A transport refuses to start with a NodeInfo peers
//!   would reject (invalid, wrong ID, too large) or listing channels it has no descriptor for.
//! - **Canonical IDs.** A NodeInfo whose ID is not lower-case hex is undecodable here (an auth
//!   failure); the reference rejects it in the ID comparison, also as an auth failure.
