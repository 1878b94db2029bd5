//! Protocol and design notes.
//!
//! # The protocol (CometBFT v0.38 `p2p/conn`)
//!
//! - **Framing.** Every packet is `uvarint(len) ‖ Packet`, `Packet` being a protobuf oneof of
//!   `PacketPing {}` (encoded `0a 00`), `PacketPong {}` (`12 00`) and `PacketMsg { int32
//!   channel_id = 1; bool eof = 2; bytes data = 3 }` (default values omitted, so a piece on
//!   channel 0 carries no channel field). A receiver rejects any packet whose announced length
//!   exceeds the encoded size of a full piece on channel 1 with `eof` set: 1034 bytes for the
//!   default 1024-byte payload.
//! - **Messages.** A message is cut into pieces of at most the payload size; every piece but the
//!   last has `eof = false`. An empty message is one piece with no data and `eof = true`. The
//!   receiver appends pieces per channel and fails the connection if a message would exceed the
//!   channel's `recv_message_capacity`, or if a piece names a channel it does not have.
//! - **Scheduling.** The sender picks the channel with the smallest `recently_sent / priority`
//!   among channels with something to send (ties: the first registered), adds the bytes of each
//!   packet to that channel's `recently_sent`, and multiplies every `recently_sent` by 0.8 every
//!   2 seconds.
//! - **Keepalive.** A ping every `ping_interval` (60 s); a pong must follow within
//!   `pong_timeout` (45 s) or the connection closes. Pings are answered with pongs.
//! - **Flushing.** Packets are buffered and flushed at most once per `flush_throttle` (100 ms),
//!   unless the buffer fills.
//! - **Rates.** Each direction is limited to a number of bytes per second (512000 by default in
//!   the conn package, 5120000 in a node's `config.toml`; 0 means unlimited).
//!
//! # Where this implementation differs (none of it is visible to the peer)
//!
//! - **Decoupled reading and dispatch.** The reference calls the reactor synchronously on its
//!   receive routine: one slow reactor stalls every channel and leaves pings unanswered until the
//!   peer gives up. Here each channel has its own bounded receive queue
//!   ([`ChannelDescriptor::recv_queue_capacity`](crate::ChannelDescriptor), bytes). A slow
//!   consumer delays nothing while its queue has room. When its queue is full the read task
//!   waits (it never drops a message and never buffers without bound), which holds back the
//!   other channels and the peer's pongs too: that is TCP back-pressure, and a consumer that
//!   stays stuck longer than the pong timeout will lose the connection, as in the reference.
//! - **The write path never waits on the limiter with control packets pending.** In the
//!   reference a send routine blocked in the rate limiter cannot send pings or pongs. Here the
//!   write task computes when the next data packet may go and keeps serving the keepalive in the
//!   meantime; pings and pongs count toward the rate but never wait for it.
//! - **Priority without a one-second wait.** The write task picks the next packet each time it
//!   has room, so a high-priority message goes out right after the packet being written, not
//!   after a batch of ten packets and a rate-limit sample.
//! - **Flushes.** The buffer is written out when it is full, and flushed as soon as the write
//!   task runs out of queued data, but at most once per `flush_throttle`: an idle link gets its
//!   message out immediately instead of after up to 100 ms, and a busy one is flushed no more
//!   often than the reference's. Our own pings are flushed at once, and so is a pong (the peer's
//!   pong timeout may be shorter than our flush throttle), except that pongs force at most one
//!   flush per `flush_throttle`: a peer flooding pings cannot force a flush per ping.
//! - **Token bucket.** The reference's limiter measures 100 ms samples and sleeps while a sample
//!   is over budget, overshooting by up to ten packets. Here a token bucket (100 ms of burst) is
//!   used; the long-run rate is the configured one, and changing it at runtime keeps the state.
//! - **Channels 0x80 and above.** A full piece on such a channel encodes one byte longer than the
//!   receiver's packet limit (the reference computed the limit with a one-byte channel ID), so a
//!   reference receiver rejects it. Here pieces on those channels are one byte shorter. All the
//!   reference's channels are below 0x80.
//! - **Typed failures.** An invalid configuration, a peer's protocol violation or a missing
//!   channel is an [`Error`](crate::Error), never a panic; a connection ends with exactly one
//!   error, the first ([`MConnection::closed`](crate::MConnection::closed)).
