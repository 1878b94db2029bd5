//! Protocol notes and every deliberate difference from the reference (CometBFT v0.38
//! `p2p/pex`).
//!
//! # The address book in a few lines
//!
//! The book descends from bitcoind's address manager. Addresses learned from gossip go into
//! 256 "new" buckets of 64; an address we connected to moves into one of 64 "old" buckets of
//! 64. Placement is a keyed hash of network groups (the /16 of IPv4, the /32 of IPv6, see
//! [`group_key`](crate::group_key)): what one source group tells us lands in at most 32 new
//! buckets, one address group reaches at most 4 old buckets, an address is in at most 4 new
//! buckets. A full new bucket drops a bad address (the reference's `isBad`) or its least
//! recently tried one; a full old bucket sends its least recently tried address back to a new
//! bucket. None of this is visible on the wire: two implementations only need the same
//! *structure* to give the same protection.
//!
//! # The PEX protocol in a few lines
//!
//! Two messages on channel 0x00: a request (`0a 00`) and an answer carrying up to 250
//! addresses. A node asks outbound peers while its book holds fewer than 1000 addresses, and
//! answers each request with a random 23 % of its book (32 to 250 addresses). Every 30 s it
//! tops up its outbound peers from the book, with a backoff of 2^attempts seconds per
//! address, and asks a random peer for more; with nothing to dial it dials a seed. A seed
//! node crawls instead and answers every inbound peer once before disconnecting it. Abuse
//! (requests more often than every 10 s after the first two, answers nobody asked for,
//! unparsable addresses) costs a disconnect and a 24 h ban. [`PexCore`](crate::PexCore)
//! holds all of it without I/O.
//!
//! # Where the address book differs
//!
//! None of these is visible on the wire; the file stays readable by the reference.
//!
//! - **Keyed hash.** Placement uses SipHash-2-4 keyed with 128 bits derived from the file's
//!   `key`, over length-prefixed parts, with the reference's two-level structure. The
//!   reference uses HighwayHash with a random key made at *every start* and never saved, so
//!   after a restart an address is placed differently than before; here the key is the one in
//!   the file and placement is stable across restarts. (SipHash was chosen over HighwayHash
//!   because it is a small, pure-Rust keyed PRF built for short, attacker-influenced inputs;
//!   speed is irrelevant for a few hashes per address.)
//! - **Gossip never changes a known ID's address** (tendermint#1581). The reference already
//!   ignores gossip about an ID in an old bucket; for a new entry it files the known entry in
//!   the bucket of the *gossiped* address's group. Here gossip of a known ID under another
//!   address is ignored altogether, so nobody can steer a known entry into buckets of their
//!   choosing.
//! - **Buckets hold exactly their size.** The reference checks `len > 64` before evicting, so
//!   its buckets hold 65. Here they hold 64; when a reference file with 65 in a bucket is
//!   loaded, the 65th is dropped (reported as [`LoadIssue::BucketFull`](crate::LoadIssue),
//!   not as damage).
//! - **A limit per IP** ([`AddrBookConfig::max_addrs_per_ip`](crate::AddrBookConfig), default
//!   4). Against tendermint#4846, where one host announced itself under thousands of fresh
//!   node IDs: bucket placement only limits how many buckets one network reaches, not how
//!   many IDs one IP may occupy there.
//! - **Bans.** Banning an ID the book does not hold still bans it (the reference's `MarkBad`
//!   does nothing then, so a misbehaving inbound peer was never banned, tendermint#4573). A
//!   ban stops refusing when it ends, even before `reinstate_bad_peers` runs (the reference
//!   refuses an address as long as it is on its ban list, and empties the list only while it
//!   needs addresses). A second ban only ever extends the first. At most
//!   [`AddrBookConfig::max_bans`](crate::AddrBookConfig) bans are remembered (the reference's
//!   list is unbounded); when full, the one ending soonest is forgotten.
//! - **Bans survive restarts.** They are saved in a top-level `bans` list, which Go's decoder
//!   ignores (the reference does not save bans at all).
//! - **Addresses that keep failing are dropped** (tendermint#3532: an entry survived 497
//!   failed dials). After [`AddrBookConfig::max_failed_attempts`](crate::AddrBookConfig)
//!   (16) failed attempts in a row with no success in the last week, `mark_attempt` removes the
//!   entry. The reference only drops a bad address when its bucket overflows.
//! - **Demotion keeps the address.** When a full old bucket makes room, the reference tries to
//!   put the evicted address into a new bucket while it is still marked old, which fails, and
//!   the address is lost. Here it really moves to a new bucket.
//! - **Our own addresses** are refused by node ID and by IP and port (the reference compares
//!   the whole `id@ip:port` text), and declaring an address ours removes it from the book.
//! - **Private IDs** are never in the book: entries of theirs found in the file are refused at
//!   load, and declaring an ID private removes its entry (the reference filters neither, so a
//!   private peer saved before it was declared private can be handed out in PEX answers).
//! - **Picking** chooses uniformly among the non-empty buckets of the chosen kind. That is the
//!   distribution of the reference's "try random buckets until one is not empty" loop, in
//!   bounded time.
//! - **Deterministic order.** Entries are kept and saved ordered by node ID (the reference
//!   iterates Go maps in random order), so a seeded book behaves the same in every run.
//!
//! # Where `addrbook.json` handling differs
//!
//! - **A damaged file never panics** (the reference panics on a decode error and on a bucket
//!   index out of range). Every valid entry is kept, the file is renamed aside as
//!   `addrbook.json.corrupt-<unix time>` and a clean file is written at once; what was wrong
//!   is reported in a [`LoadReport`](crate::LoadReport) and logged. Out-of-range or duplicate
//!   bucket indices are dropped, an entry left in no bucket is placed afresh, negative
//!   attempt counts become 0, and timestamps in the future are taken as now (the reference
//!   would never consider such an address bad).
//! - **Bounded reading.** At most 32 MiB per file, 4 KiB per entry and twice the book's
//!   capacity of entries per list are read.
//! - **Durable saves.** The reference writes a synced temporary file and renames it; here the
//!   directory is synced too, so the rename itself survives a power cut, and temporary files
//!   of interrupted saves are removed at the next load.
//! - **Times are written in UTC** (`...Z`); the reference writes local time with an offset.
//!   Both are read.
//!
//! # Where the PEX protocol differs
//!
//! None of these changes what honest peers see on the wire.
//!
//! - **The outbound limit is never exceeded** (cometbft#486, #3315: a node ended with 82
//!   peers for a limit of 50). Every dial the core asks for, periodic, after a seed's answer
//!   ("fast dial"), to a seed or to crawl, counts against `max_num_outbound_peers` together
//!   with the switch's connected and dialling counts, until its result is reported. A dial
//!   whose result never comes is forgotten after [`PENDING_DIAL_TIMEOUT`](crate::PENDING_DIAL_TIMEOUT).
//! - **Answers with more than 250 addresses are refused** and the sender banned. The
//!   reference only has the channel's 64000-byte limit, though no honest node sends more
//!   than 250.
//! - **A ban for failed dials forgets the dial record.** The reference keeps the record, so
//!   an address reinstated after its ban is banned again on the next attempt without being
//!   dialled (one of the loops of tendermint#3532); here it gets one more try and, failing,
//!   is dropped by the book's failure rule.
//! - **Crawling respects the outbound limit.** The reference's seed dials its crawl targets
//!   one by one, blocking; here they are dialled concurrently within the limit, and the rest
//!   wait for the next round (they are not marked as crawled).
//! - **A seed files the peers it reached as vetted** (`mark_good`). The reference's seeds
//!   never do, so all their addresses stay "new" and their biased answers, meant to be 70 %
//!   vetted, hold none.
//! - **The seed's disconnect wait is a setting**
//!   ([`PexConfig::seed_disconnect_wait_period`](crate::PexConfig::seed_disconnect_wait_period),
//!   default 28 h; the reference hard-codes it, tendermint#3778).
//! - **Messages from a peer being disconnected are ignored**, so one misbehaving peer causes
//!   one disconnect and one ban.
//! - **Asking a peer waits for the period.** Off the periodic round (after a seed's answer,
//!   when a peer goes away) the core dials but asks nobody for addresses, as v0.38 and v1.0
//!   do. CometBFT v0.37 never had that guard and v0.40.0 lost it: there every out-of-turn
//!   round (v0.37: after a seed's answer; v0.40.0: also whenever a peer is removed) asks a
//!   random peer at once. When that peer was asked moments before, the request is too soon
//!   for it and it disconnects and bans the asker, reference or ours alike. A v0.37 or
//!   v0.40.0 node that redials its seed or loses peers often can so be banned by its
//!   neighbours; nothing here needs to change for it, but an operator mixing lines should
//!   know.
//! - **Bounded state.** Actions wait in a queue of at most
//!   [`MAX_QUEUED_ACTIONS`](crate::MAX_QUEUED_ACTIONS) (only address answers are ever dropped
//!   from it); dial and crawl records are capped at the book's capacity.
//!
//! # Where the reactor differs
//!
//! [`Reactor`](crate::Reactor) drives the core over the switch. Against the reference's
//! `pex.Reactor`:
//!
//! - **Messages are queued without blocking.** The reference's `Send` waits up to 10 s for
//!   room in the peer's PEX queue (10 messages); here a message that finds the queue full is
//!   dropped and logged. The core runs under a lock, also from the peer's receive path, so
//!   waiting there would stall that connection and every other peer's PEX; a peer that lets
//!   ten PEX messages pile up is not reading anyway, and the next round asks again.
//! - **The caller loads the book.** The reference's reactor starts the book, which loads its
//!   file and panics on a damaged one. Here the book is loaded (with
//!   [`AddrBook::load_file`](crate::AddrBook::load_file)) before it is handed to
//!   [`Reactor::new`](crate::Reactor::new), so the caller sees the
//!   [`LoadReport`](crate::LoadReport) and decides what to do with damage; the reactor saves
//!   the book to the same file every [`PexConfig::save_interval`](crate::PexConfig) and when
//!   the switch stops, as the reference's book does.
//! - **An address where another node answers is banned; any other failed dial is an
//!   attempt.** When the peer at an address authenticates as another node ID than the one
//!   dialled (or its NodeInfo claims another), the address is banned for the ban time. The
//!   reference means to do the same (`markAddrInBookBasedOnErr` bans on
//!   `ErrSwitchAuthenticationFailure`) but never raises that error, so it only ever counts
//!   an attempt. A handshake the listener cuts short (a duplicate IP, a source over its
//!   handshake rate, a full inbound list), a timeout or a reset counts one attempt here too:
//!   peers dialling each other at the same moment refuse each other that way all the time.
//! - **Seeds are dialled on the periodic round only.** The reference's ensure-peers also
//!   dials a seed out of turn, right after a seed's answer, when that answer held nothing
//!   new to dial; it is usually a no-op there because the seed's connection is still up.
//!   Here the answer is often handled after the seed has hung up, and the redial would
//!   loop as fast as the seed answers (a testnet of 6 nodes made 105 seed connections in
//!   10 s); the next periodic round dials the seed if still needed.
//! - **Every period is a setting.** The ensure-peers period (the reference: 30 s, changeable
//!   only through `SetEnsurePeersPeriod` in code) and the crawl period (the reference: fixed
//!   30 s) are [`PexConfig`](crate::PexConfig) settings with the reference's values as
//!   defaults, so that tests and small networks can run faster.
//! - **Dials end with the reactor.** Each dial the core asks for runs as a task that stopping
//!   the switch cancels; the reference's dial goroutines outlive its reactor.
//! - **Timers follow tokio's clock**, so a paused test clock drives the whole protocol.
//! - **Bans are by node ID.** On a request flood, an unsolicited or unparsable answer, the peer
//!   is stopped for the error and its ID banned, also when the book does not hold it (the
//!   reference's `MarkBad` on an inbound peer's socket address bans nothing, see the book's
//!   bans above). The conformance case `pex/go-request-flood-disconnected` checks that a
//!   flood gets the same two answers from both before the disconnect.
//!
//! The driver must flush the seed's answer before it stops the peer
//! ([`DisconnectReason::SeedAnswered`](crate::DisconnectReason::SeedAnswered); the reference
//! once disconnected first, tendermint#2092), and forget nothing: every `Dial` it is asked for
//! is answered with `handle_dial_result`, every peer it adds is removed with
//! `handle_peer_removed`.
