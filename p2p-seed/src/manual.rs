//! Where the seed differs from the reference seed mode (`cometbft start` with
//! `seed_mode = true`, CometBFT v0.38) and from tenderseed-style tools (tenderseed, tinyseed),
//! and why.
//!
//! # How a seed works
//!
//! A seed only runs the peer exchange (PEX, channel 0x00). A node that dials it sends one
//! address request, gets one answer (a selection of the book biased towards addresses not yet
//! vetted) and is disconnected once the answer is flushed. Every crawl period the seed dials
//! addresses from its book it has not crawled for `min_time_between_crawls`, asks each one
//! for its addresses and files it as vetted (an "old" bucket entry); what it learns grows the
//! book, which is saved to `addrbook.json` every 2 minutes and on shutdown.
//!
//! # Differences from the reference seed mode
//!
//! - Only the PEX reactor runs: no consensus, mempool, block sync or RPC. A home's other
//!   sections (`[rpc]`, `[consensus]`, `[instrumentation]`, ...) are read and ignored.
//! - `seed_mode` is forced on and `pex` is ignored, whatever `config.toml` says: the
//!   program is a seed.
//! - A missing home is created with the reference's defaults (`config.toml`, `node_key.json`)
//!   as `cometbft init` would, but without a genesis file or validator key: the chain ID comes
//!   from `--chain-id` (or `chain_id` in a seed file). An existing genesis file must agree.
//! - Crawled peers are disconnected after 2 minutes by default instead of 28 hours
//!   (`--disconnect-wait`). This crate's PEX crawls only within `max_num_outbound_peers` (the
//!   reference dials every crawl candidate regardless of its outbound count), so holding each
//!   crawled peer for 28 hours would stop the crawl after the first ten peers. A crawled peer
//!   is asked once per connection, so keeping it longer teaches nothing.
//! - Metrics are served by the seed itself at `--metrics-addr` (`/metrics`), not through
//!   `[instrumentation] prometheus_listen_addr`. The switch's metrics keep the reference's
//!   names (`cometbft_p2p_peers`, `cometbft_p2p_message_*_bytes_total`, labelled `chain_id`
//!   as CometBFT labels its own); the seed's own figures, which the reference does not have,
//!   are under a `cometbft_seed_*` subsystem (see [`status`](crate::status)). Per-peer series
//!   are off (CometBFT v1.0 removed them too): a seed sees thousands of short-lived peers.
//! - The same endpoint serves the verified addresses (`/peers` as JSON, `/peers.txt` as a
//!   `persistent_peers` line) and `/status`; the reference has no such list.
//! - A status line per chain is printed on standard output every `--status-interval`; logs
//!   go to standard error (`RUST_LOG` filters them, default `info`).
//! - Several chains can run in one process (`--config` with `[[chain]]` entries), each with
//!   its own home, key, listener and address book.
//! - An address counts as verified for `--verified-window` (24 h) after the seed last
//!   connected to it; the reference has no such notion.
//! - Two limits of the lower layers apply that the reference lacks: at most 4 node IDs per IP
//!   in the address book, and at most 32 handshakes at once from one source IP, then 10 per
//!   second. A crowd reconnecting from one address gets in over a few seconds.
//!
//! # Differences from tenderseed-style tools
//!
//! - The home directory is a real CometBFT home: a node's `config.toml`, `node_key.json` and
//!   `addrbook.json` are used as they are (the address book file is the reference's format),
//!   so a seed can be moved between this program and `cometbft` without losing its ID or
//!   book. tenderseed keeps its own config file and key.
//! - Seed-mode behaviour (one answer then hang up, request rate limits and bans, biased
//!   selections, bucketed address book) is the reference's, not a simplified re-implementation,
//!   so the seed is as hard to poison as a CometBFT seed.
//! - The multi-chain file (as tinyseed's) is TOML with one `[[chain]]` table per chain, and
//!   each entry may override the home's `laddr`, `external_address`, `seeds` and key file; an
//!   unknown key is an error rather than ignored.
//! - `/peers` lists only addresses the seed itself connected to recently, not everything it
//!   heard of, so it can be pasted into `persistent_peers`.
