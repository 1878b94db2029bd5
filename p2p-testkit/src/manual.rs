//! How this crate relates to the reference's test tools, and every deliberate difference.
//!
//! The reference (CometBFT v0.38) tests its p2p layer over real loopback sockets and
//! `net.Pipe`, with three helpers this crate replaces:
//!
//! - **`MakeConnectedSwitches` / `Connect2Switches`** (switches wired over `net.Pipe`): here a
//!   [`MemoryNetwork`](crate::memory::MemoryNetwork) with addresses, listeners, dials and a
//!   transport that runs the same upgrade as TCP. Difference: connections go through the full
//!   transport (secret handshake, NodeInfo exchange, filters), never straight into the switch,
//!   so every simulated connection is checked as a real one.
//! - **`FuzzedConnection`** (`p2p/fuzz.go`, enabled by `test_fuzz` in `config.toml`: per
//!   read/write random sleeps up to a maximum delay, or random drops of reads, writes and
//!   whole connections, drawn from the process's random generator): here the shaped pipe
//!   ([`pipe`](crate::pipe)) and the network's faults. Differences, all deliberate:
//!   - delays are a link's latency plus seeded jitter on tokio's clock, not sleeps on the OS
//!     clock, so a test is reproducible and takes no wall time;
//!   - bytes are never silently dropped: a TCP stream does not lose bytes in the middle, it
//!     stalls or fails. Losses are modelled as what the application sees: a partition (bytes
//!     wait), a stalled reader (the writer backs up), a reset (both ends fail with
//!     `ConnectionReset`), a crash;
//!   - there is a bandwidth cap and a bounded buffer per direction (the reference's
//!     `net.Pipe` has no buffer at all: every write waits for a read);
//!   - faults are addressed by host (`link(a, b)`, `partition(&[a], &[b])`), not set per
//!     connection at construction.
//! - **Randomness**: the reference's tests draw keys and choices from `crypto/rand` and
//!   `math/rand`; here one seed fixes node keys, ephemeral keys, jitter and the seeds handed to
//!   the layers above ([`sim`](crate::sim)), and a run's [`Trace`](crate::trace::Trace) hash
//!   shows whether two runs were the same. The reference has no equivalent.
//!
//! - **The testnet** ([`testnet`](crate::testnet)) has no counterpart in the reference's p2p
//!   tests (its e2e runner starts separate processes in containers). Its nodes run the PEX
//!   with periods shortened from the reference's defaults (top-up and crawl every 1 s instead
//!   of 30 s, the seed's disconnect wait 5 s instead of 28 h, crawls of one peer at least 5 s
//!   apart instead of 2 min, the book saved every 1 s instead of 2 min, bans of 30 s instead
//!   of 24 h), so that a run converges in seconds; and, as all its nodes share 127.0.0.1, an
//!   address book without routability rule or per-IP limit and a switch allowing duplicate
//!   IPs.
//!
//! Limits of the model:
//!
//! - Connecting takes one round trip of the link's latency; across a partition it waits for
//!   the dialer's timeout. There is no SYN backlog beyond
//!   [`BACKLOG`](crate::memory::BACKLOG) connections per listener, no retransmission delay
//!   after a heal (what waited flows at once) and no slow start.
//! - Tokio's timers have millisecond resolution: a byte due between two milliseconds is read
//!   at the later one.
//! - `tokio::select!` without `biased;` and `tokio::sync::watch` draw from tokio's own
//!   generator, which only `tokio_unstable` builds can seed; see [`sim`](crate::sim).
