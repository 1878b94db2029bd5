//! Protocol and design notes, the map from the reference's API to this crate's, and every
//! deliberate difference from the reference (CometBFT v0.38 `p2p/switch.go`, `p2p/peer.go`,
//! `p2p/peer_set.go`, `p2p/base_reactor.go`).
//!
//! # What the reference's switch does
//!
//! - **Reactors** register channels; no two may share one. The channel list, in registration
//!   order, is announced in the NodeInfo and configures every MConnection. Each message is
//!   unmarshalled into the channel's message type and handed to the reactor's `Receive`; a
//!   message that does not unmarshal, or that the reactor's optional `MsgBytesFilter` rejects,
//!   stops the peer.
//! - **Start** starts the reactors, then the accept routine. **Stop** stops and removes every
//!   peer, then the reactors.
//! - **Accepting**: a self connection teaches the address book our address; other rejections
//!   are logged; inbound peers beyond `max_num_inbound_peers` (40) are dropped unless
//!   unconditional.
//! - **Adding a peer**: duplicate-ID check and peer filters (5 s timeout), `InitPeer` on every
//!   reactor, start the peer, insert it in the peer set, `AddPeer` on every reactor.
//! - **Dialing**: `DialPeersAsync` puts the addresses in the address book and dials each after
//!   a random 0–3 s; `DialPeerWithAddress` refuses addresses already being dialed or connected
//!   (or sharing a connected IP, unless duplicate IPs are allowed).
//! - **Stopping a peer**: transport cleanup, stop, `RemovePeer` on every reactor, removal from
//!   the peer set; persistent peers stopped for an error are redialed: 20 times every
//!   5 s (+0–3 s), then 10 times after `3^i` s (+0–3 s), then never again.
//! - **Broadcast** sends to every peer concurrently and reports one boolean per peer.
//!
//! # Reference API → this crate
//!
//! ## `Switch`
//!
//! | reference | here |
//! |---|---|
//! | `NewSwitch(cfg, transport, opts...)` | [`SwitchBuilder::new`](crate::SwitchBuilder::new) + [`build`](crate::SwitchBuilder::build) (the transport is built from the switch's channel list) |
//! | `SwitchFilterTimeout`, `SwitchPeerFilters` | the transport's `TransportConfig::filter_timeout` / `peer_filter`, through [`SwitchConfig::transport`](crate::SwitchConfig::transport) (peer filters run in the transport) |
//! | `WithMetrics` | [`SwitchBuilder::metrics`](crate::SwitchBuilder::metrics) |
//! | `AddReactor(name, r)` | [`SwitchBuilder::add_reactor`](crate::SwitchBuilder::add_reactor) (an error, not a panic, for a shared channel) |
//! | `RemoveReactor` | none: the channel list is fixed once the transport is built (the reference's removal leaves the NodeInfo and running connections inconsistent) |
//! | `Reactors()`, `Reactor(name)` | [`reactor_names`](crate::SwitchHandle::reactor_names), [`reactor::<R>(name)`](crate::SwitchHandle::reactor) (typed) |
//! | `SetNodeInfo`, `NodeInfo()` | given to the builder; [`node_info`](crate::SwitchHandle::node_info) |
//! | `SetNodeKey` | given to the builder |
//! | `NetAddress()` | [`net_address`](crate::SwitchHandle::net_address) |
//! | `OnStart`, `OnStop` (`Start`, `Stop`) | [`Switch::start`](crate::Switch::start), [`Switch::stop`](crate::Switch::stop) |
//! | `IsRunning()` | [`is_running`](crate::SwitchHandle::is_running) |
//! | `Broadcast(e) chan bool` | [`broadcast`](crate::SwitchHandle::broadcast) (awaits all, each peer's typed result) |
//! | v1 `TryBroadcast` | [`try_broadcast`](crate::SwitchHandle::try_broadcast) |
//! | `NumPeers()` | [`num_peers`](crate::SwitchHandle::num_peers) |
//! | `IsPeerUnconditional(id)` | [`is_peer_unconditional`](crate::SwitchHandle::is_peer_unconditional) |
//! | `MaxNumOutboundPeers()` | [`max_num_outbound_peers`](crate::SwitchHandle::max_num_outbound_peers) |
//! | `Peers() IPeerSet` (`Has`, `HasIP`, `Get`, `List`, `Size`) | [`peers`](crate::SwitchHandle::peers) (a snapshot), [`peer(id)`](crate::SwitchHandle::peer), [`is_dialing_or_existing_address`](crate::SwitchHandle::is_dialing_or_existing_address) |
//! | `StopPeerForError(p, reason)` | [`stop_peer_for_error`](crate::SwitchHandle::stop_peer_for_error), [`Peer::stop_for_error`](crate::Peer::stop_for_error) |
//! | `StopPeerGracefully(p)` | [`stop_peer_gracefully`](crate::SwitchHandle::stop_peer_gracefully) (flushes first) |
//! | `SetAddrBook(book)` | [`SwitchBuilder::address_book`](crate::SwitchBuilder::address_book) |
//! | `MarkPeerAsGood(p)` | [`mark_peer_as_good`](crate::SwitchHandle::mark_peer_as_good) |
//! | `DialPeersAsync([]string)` | [`dial_peers_async`](crate::SwitchHandle::dial_peers_async) (typed addresses; [`resolve_peer_list`](crate::resolve_peer_list) parses the string form) |
//! | `DialPeerWithAddress(addr)` | [`dial_peer_with_address`](crate::SwitchHandle::dial_peer_with_address) (returns the peer) |
//! | `IsDialingOrExistingAddress(addr)` | [`is_dialing_or_existing_address`](crate::SwitchHandle::is_dialing_or_existing_address) |
//! | `AddPersistentPeers([]string)` | [`SwitchConfig::persistent_peers`](crate::SwitchConfig::persistent_peers), [`add_persistent_peers`](crate::SwitchHandle::add_persistent_peers) |
//! | `AddUnconditionalPeerIDs([]string)` | [`SwitchConfig::unconditional_peer_ids`](crate::SwitchConfig::unconditional_peer_ids), [`add_unconditional_peer_ids`](crate::SwitchHandle::add_unconditional_peer_ids) ([`parse_peer_ids`](crate::parse_peer_ids) parses the string form) |
//! | `AddPrivatePeerIDs([]string)` | [`SwitchConfig::private_peer_ids`](crate::SwitchConfig::private_peer_ids), [`add_private_peer_ids`](crate::SwitchHandle::add_private_peer_ids) |
//! | `IsPeerPersistent(addr)` | [`is_peer_persistent`](crate::SwitchHandle::is_peer_persistent) |
//! | `MConnConfig(cfg)` | [`SwitchConfig::from_p2p_config`](crate::SwitchConfig::from_p2p_config) (the whole `[p2p]` section), or `TransportConfig::mconn` through [`SwitchConfig::transport`](crate::SwitchConfig::transport) |
//! | `reconnectToPeer`, `acceptRoutine`, `addPeer`, `filterPeer`, `addOutboundPeerWithConfig`, `stopAndRemovePeer` | internal |
//!
//! ## `Peer`
//!
//! | reference | here |
//! |---|---|
//! | `ID()` | [`Peer::id`](crate::Peer::id) |
//! | `RemoteIP()` | [`Peer::remote_ip`](crate::Peer::remote_ip) (no DNS lookup, no panic) |
//! | `RemoteAddr()` | [`Peer::remote_addr`](crate::Peer::remote_addr) |
//! | `SocketAddr()` | [`Peer::socket_addr`](crate::Peer::socket_addr) |
//! | `IsOutbound()`, `IsPersistent()` | [`Peer::is_outbound`](crate::Peer::is_outbound), [`Peer::is_persistent`](crate::Peer::is_persistent) |
//! | `NodeInfo()` | [`Peer::node_info`](crate::Peer::node_info) |
//! | `Status()` | [`Peer::status`](crate::Peer::status) |
//! | `Send(e)`, `TrySend(e)` (bool) | [`Peer::send`](crate::Peer::send), [`Peer::try_send`](crate::Peer::try_send) (typed messages, a [`SendError`](crate::SendError) saying why); [`send_bytes`](crate::Peer::send_bytes), [`try_send_bytes`](crate::Peer::try_send_bytes) for encoded ones |
//! | `CanSend(ch)` | none: `try_send` answers the same question without a race |
//! | `Set(key, v)`, `Get(key)` | [`Peer::insert`](crate::Peer::insert), [`Peer::get`](crate::Peer::get), [`get_or_insert_with`](crate::Peer::get_or_insert_with), [`remove`](crate::Peer::remove) (keyed by type, no casts) |
//! | `Start`, `Stop`, `IsRunning`, `Quit` (`service.Service`) | the switch starts and stops peers; [`Peer::is_running`](crate::Peer::is_running), [`Peer::state`](crate::Peer::state), [`Peer::removed`](crate::Peer::removed) |
//! | `FlushStop()` | [`Peer::flush_stop`](crate::Peer::flush_stop) (bounded by the stop timeout, and the peer is then removed) |
//! | `CloseConn()` | [`Peer::close`](crate::Peer::close) |
//! | `SetRemovalFailed`, `GetRemovalFailed` | none: removal cannot fail here (each peer has one task that owns its removal) |
//! | `String()` | `Display` |
//!
//! ## `Reactor`, `BaseReactor`, `MsgBytesFilter`
//!
//! | reference | here |
//! |---|---|
//! | `GetChannels()` (`ChannelDescriptor` with `MessageType`) | [`Reactor::channels`](crate::Reactor::channels) plus the associated type [`Reactor::Message`](crate::Reactor::Message) |
//! | `SetSwitch(sw)` | [`Reactor::start`](crate::Reactor::start) receives a [`SwitchHandle`](crate::SwitchHandle) |
//! | `InitPeer(p) Peer` | [`Reactor::init_peer`](crate::Reactor::init_peer) (attaches data instead of wrapping the peer) |
//! | `AddPeer`, `RemovePeer(p, reason)`, `Receive(e)` | [`add_peer`](crate::Reactor::add_peer), [`remove_peer`](crate::Reactor::remove_peer) (a typed [`StopReason`](crate::StopReason)), [`receive`](crate::Reactor::receive) (async) |
//! | `Start`, `Stop` | [`Reactor::start`](crate::Reactor::start), [`Reactor::stop`](crate::Reactor::stop) |
//! | `FilterMsgBytes(ch, p, bytes)` | [`Reactor::filter_bytes`](crate::Reactor::filter_bytes) |
//! | `Envelope{Src, Message, ChannelID}` | [`Envelope`](crate::Envelope)`{src, message, channel}` |
//! | `Wrapper` / `Unwrapper` | none: the reactor's message type is the wire type (usually the `oneof` wrapper); [`Reactor::message_label`](crate::Reactor::message_label) names the inner type for the metrics |
//!
//! # Where this implementation differs
//!
//! None of these is visible on the wire.
//!
//! - **Async, isolated delivery.** The reference calls `Receive` on the connection's receive
//!   routine: one slow reactor stops every channel of the peer and its pongs (cometbft#2685,
//!   #3199). Here every channel of every peer has its own delivery task awaiting the reactor's
//!   `receive`; a slow reactor holds up its own channel of that peer only, up to the channel's
//!   bounded receive queue, after which the connection stops reading, and ends (blamed on us)
//!   if the queue stays full for the pong timeout (see [`Reactor`](crate::Reactor)). Order
//!   within a channel is kept.
//! - **Delivery starts after `add_peer`.** The reference may call `Receive` before `AddPeer`
//!   (the peer is started first); here a reactor gets a peer's messages only once its
//!   `add_peer` returned (they wait in the bounded queues meanwhile).
//! - **`remove_peer` exactly once, never early.** Each peer has one task owning its life, so
//!   `remove_peer` is called exactly once for every peer that reached `add_peer`, after its
//!   last `receive` returned, whatever stops it and however many stop requests race. The
//!   reference can call `RemovePeer` for a peer that never got `AddPeer` (a peer failing during
//!   `addPeer`), and then refuses the peer with `ErrPeerRemoval`.
//! - **A reconnecting node waits instead of failing.** While a node's old connection is being
//!   removed, its new connection waits (up to the filter timeout) for the removal to finish
//!   instead of being rejected as a duplicate; `init_peer` still never overlaps the old
//!   `remove_peer` (the reference's `TestSwitchInitPeerIsNotCalledBeforeRemovePeer`).
//! - **Simultaneous dials keep one connection.** When two nodes dial each other at once, both
//!   keep the connection dialed by the node with the lower ID and close the other. The
//!   reference keeps whichever it added first on each side, so each side may close the
//!   connection the other kept, leaving none.
//! - **No panics.** Two reactors on one channel, an unknown channel, a transport error in the
//!   accept routine (the reference panics: "accept routine exited") are errors or logged; the
//!   accept routine goes on after a pause. A reactor's `receive` that panics stops that peer
//!   for an error, like the reference's MConnection recovering a panic, and nothing else.
//! - **Persistent peers redialed forever when asked.** With
//!   `persistent_peers_max_dial_period` set, the switch redials persistent peers forever, no
//!   wait longer than that period (the reference's switch ignores the setting and gives up after
//!   about a day: cometbft#2542, #3519, #3520). Without it, the reference's schedule.
//! - **Typed results.** `send`, `try_send` and broadcast report why a send failed
//!   ([`SendError`](crate::SendError)); `remove_peer` gets a [`StopReason`](crate::StopReason)
//!   with [`blame`](crate::StopReason::blame) (peer misbehaved, gone, or our decision).
//! - **Bounded stop.** A graceful peer stop flushes within the stop timeout; a reactor's
//!   `receive` still running a stop timeout after its peer stopped is abandoned; the whole
//!   switch stop waits at most twice the stop timeout. The reference waits without bound.
//! - **Private peers never reach the book.** `dial_peers_async` does not hand a private
//!   peer's address to the address book at all (the reference relies on the book to refuse it).
//! - **Peer filters** run in the transport, before the MConnection starts
//!   (`p2p_transport::PeerFilter`); the switch still refuses duplicate IDs itself.
//! - **Not-running switch.** Adding a peer to a switch that is not running fails with
//!   [`Error::NotRunning`](crate::Error::NotRunning) and closes the connection (the reference
//!   logs and returns success without adding it).
//! - **`start` dials the persistent peers** (a reference node does this in `node.go` right
//!   after starting the switch).
//! - **Metrics.** Names, types and labels are the reference's; per-peer series can be turned
//!   off (as v1.0 did) and are removed with their peer. `message_type` labels come from
//!   [`Reactor::message_label`](crate::Reactor::message_label) (default: `module_Type` of the
//!   reactor's message type). Every line's families are registered at once (v0.38's
//!   `peer_pending_send_bytes` beside v0.40's `peer_send_queue_size`, the same figure), so a
//!   dashboard of any line works. v0.40's per-reactor families (`messages_received`,
//!   `messages_reactor_in_flight`, the two duration histograms, `message_reactor_queue_concurrency`)
//!   are registered but never set by the reference; here they are measured. `messages_received`
//!   is written untyped rather than as a counter, because OpenMetrics requires a counter's
//!   samples to end in `_total` and the reference's name does not: the sample name, which is
//!   what queries use, is the reference's.
//! - **Deterministic randomness.** Dial jitter and dial order come from a generator seeded by
//!   [`SwitchConfig::rng_seed`](crate::SwitchConfig::rng_seed) (default: from the OS), and all
//!   timing uses tokio's clock, so simulated networks replay exactly.
