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
//!   other channels and the peer's pongs too: that is TCP back-pressure.
//! - **Our slow consumer is not the peer's fault.** In the reference a stuck reactor ends the
//!   connection with a pong timeout, which reads as "the peer did not answer". Here the time
//!   the read task spends waiting on a full queue does not count toward our pong timeout (the
//!   pong may be sitting unread behind it), and a wait longer than the pong timeout ends the
//!   connection with [`Error::ReceiverStalled`](crate::Error::ReceiverStalled), naming the
//!   channel and blamed on our side. (By then the peer has stopped getting our pongs too.)
//! - **A peer that stops reading cannot pin a connection.** In the reference the send routine
//!   blocks in a write or flush when the peer stops reading, and its pong timer can then never
//!   fire: the connection stays until the operating system gives up on the socket. Here the
//!   write side's decisions are made by an IO-free core with injected time (flush throttle,
//!   pong coalescing, drain, keepalive, rate-limit waits), and the write task races every
//!   write, flush and close against the core's next deadline. A ping that is still stuck in
//!   our buffer when its pong is due ends the connection with
//!   [`Error::WriteStalled`](crate::Error::WriteStalled) (so within `ping_interval +
//!   pong_timeout` of the peer stopping), a ping that left and got no answer with
//!   `PongTimeout`. `flush_stop` against such a peer ends the same way.
//! - **Who is to blame.** The reference ends every failure the same way. Here every error
//!   says who caused it ([`Error::blame`](crate::Error::blame)): the peer broke the protocol
//!   (including at the secret-connection layer: a frame that fails to authenticate or
//!   announces too much data reaches us as `InvalidData` and becomes
//!   [`Error::StreamViolation`](crate::Error::StreamViolation)), the peer or the network went
//!   away, or our own side failed. A switch or address book punishes only the first.
//! - **No half-alive connections.** A panic in either task, or the task being dropped with
//!   its runtime, ends the connection with `TaskPanicked`/`TaskAborted`: `closed` resolves
//!   and sends fail instead of hanging. `closed` returns once both tasks have finished.
//! - **Sends give the message back.** A send that fails returns the message with the reason
//!   ([`SendError`](crate::SendError)), a type of its own, apart from the error that ended
//!   the connection.
//! - **Attachments and identity.** Values attached to a connection
//!   ([`MConnection::attach`](crate::MConnection::attach), what a transport holds for it)
//!   are dropped when it can carry no more traffic, whichever handle clone keeps it; every
//!   connection has a process-unique [`ConnectionId`](crate::ConnectionId) in its tracing
//!   spans. Receivers are addressed by channel ID ([`Receivers`](crate::Receivers)) and are
//!   `futures_core::Stream`s.
//! - **The write path never waits on the limiter with control packets pending.** In the
//!   reference a send routine blocked in the rate limiter cannot send pings or pongs. Here the
//!   write task computes when the next data packet may go and keeps serving the keepalive in the
//!   meantime; pings and pongs count toward the rate but never wait for it.
//! - **Priority without a one-second wait.** The write task picks the next packet each time it
//!   has room, so a high-priority message goes out right after the packet being written, not
//!   after a batch of ten packets and a rate-limit sample.
//! - **A write batch of 16 to 64 KiB, sized by the stream's push-back.** The reference buffers
//!   64 KiB (`minWriteBufferSize`) before writing. Here packets are handed to the stream once
//!   16 KiB have gathered ([`WRITE_BUFFER_SIZE`](crate::WRITE_BUFFER_SIZE)); while the stream
//!   takes every batch whole and at once (nothing queues on the way: the sender is the
//!   bottleneck) the batch doubles up to [`MAX_WRITE_BATCH`](crate::MAX_WRITE_BATCH), the
//!   reference's size, and the first write that has to wait brings it back to 16 KiB. The
//!   scheduler picks each packet's channel as it enters the batch, so a high-priority message
//!   that arrives while bulk is flowing waits behind one batch at most: a quarter of the
//!   reference's whenever a queue forms downstream (a slow link, a slow reader), and the full
//!   64 KiB only while the stream keeps up, where it costs the time of sealing and writing
//!   64 KiB. The small batch alone cost about a tenth of the bulk throughput on loopback
//!   (per-write costs); growing it while the stream keeps up wins that back. The underlying
//!   stream batches too (a `SecretStream` seals up to its write buffer before the socket
//!   takes it), and the kernel's socket buffers more: the TCP transport of `p2p-transport`
//!   sizes those.
//! - **Under a send rate, a batch of at most 1 ms.** With a send rate set, the rate fills
//!   the batch, so a batch of `b` bytes holds its first packet back `b / rate` and then enters
//!   the link as one burst. Here the batch is at most what the rate moves in
//!   [`PACED_BATCH_TIME`](crate::PACED_BATCH_TIME) (1 ms, at least one packet): at 10 MB/s a
//!   10 kB batch instead of 64 KiB, so a high-priority message waits about 1 ms behind bulk
//!   instead of up to 6.5 ms.
//! - **Flushes.** The buffer is written out when it is full, and flushed as soon as the write
//!   task runs out of queued data, but at most once per `flush_throttle`: an idle link gets its
//!   message out immediately instead of after up to 100 ms, and a busy one is flushed no more
//!   often than the reference's. Our own pings are flushed at once, and so is a pong (the peer's
//!   pong timeout may be shorter than our flush throttle), except that pongs force at most one
//!   flush per `flush_throttle`: a peer flooding pings cannot force a flush per ping.
//! - **Token bucket.** The reference's limiter measures 100 ms samples and sleeps while a sample
//!   is over budget, overshooting by up to ten packets. Here a token bucket (100 ms of burst) is
//!   used; the long-run rate is the configured one, and changing it at runtime keeps the state.
//!   Credit earned while the stream held the writer back (a write that had to wait) is given
//!   up rather than spent later as a burst of up to 100 ms worth: the rate is a cap, and that
//!   burst would land in whatever queue made the writer wait, in front of every later packet
//!   whatever its priority. Set a send rate a little below the path's (about 85 % of a link's
//!   payload rate) and the queue stays in this scheduler, where priorities act.
//! - **Channels 0x80 and above.** A full piece on such a channel encodes one byte longer than the
//!   receiver's packet limit (the reference computed the limit with a one-byte channel ID), so a
//!   reference receiver rejects it. Here pieces on those channels are one byte shorter. All the
//!   reference's channels are below 0x80.
//! - **Typed failures.** An invalid configuration, a peer's protocol violation or a missing
//!   channel is an [`Error`](crate::Error), never a panic; a connection ends with exactly one
//!   error, the first ([`MConnection::closed`](crate::MConnection::closed)).
