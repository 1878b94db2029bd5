//! The address book's and the PEX protocol's fixed numbers, those of the reference.
//!
//! They shape the anti-eclipse properties of the book (how many buckets one group of addresses
//! or one source can reach) and what honest peers expect on the wire, so they are constants,
//! not settings.

use std::time::Duration;

/// Number of buckets for addresses not yet connected to ("new").
pub const NEW_BUCKET_COUNT: usize = 256;
/// Addresses one new bucket holds.
pub const NEW_BUCKET_SIZE: usize = 64;
/// Number of buckets for addresses we have connected to ("old").
pub const OLD_BUCKET_COUNT: usize = 64;
/// Addresses one old bucket holds.
pub const OLD_BUCKET_SIZE: usize = 64;
/// New buckets the addresses learned from one source group can reach.
pub const NEW_BUCKETS_PER_GROUP: u64 = 32;
/// Old buckets the addresses of one address group can reach.
pub const OLD_BUCKETS_PER_GROUP: u64 = 4;
/// New buckets one address can be in at once.
pub const MAX_NEW_BUCKETS_PER_ADDRESS: usize = 4;

/// Below this many addresses the book asks for more (`NeedMoreAddrs`).
pub const NEED_ADDRESS_THRESHOLD: usize = 1000;
/// How often the book is written to disk.
pub const DUMP_ADDRESS_INTERVAL: Duration = Duration::from_secs(2 * 60);

/// A new address not attempted for this long is bad.
pub const NUM_MISSING_DAYS: Duration = Duration::from_secs(7 * 24 * 3600);
/// A new address attempted this often without ever succeeding is bad.
pub const NUM_RETRIES: u32 = 3;
/// A new address attempted this often without a success for [`MIN_BAD_DAYS`] is bad.
pub const MAX_FAILURES: u32 = 10;
/// See [`MAX_FAILURES`].
pub const MIN_BAD_DAYS: Duration = Duration::from_secs(7 * 24 * 3600);
/// An address attempted within this period is never bad.
pub const RECENT_ATTEMPT: Duration = Duration::from_secs(60);

/// Share of the book, in percent, a selection returns.
pub const GET_SELECTION_PERCENT: usize = 23;
/// A selection returns at least this many addresses (or the whole book if smaller).
pub const MIN_GET_SELECTION: usize = 32;
/// A selection returns at most this many addresses; also the most a PEX answer may carry.
pub const MAX_GET_SELECTION: usize = 250;

/// The PEX channel.
pub const PEX_CHANNEL: u8 = 0x00;
/// Generous upper bound of one encoded address (the reference's `maxAddressSize`).
pub const MAX_ADDRESS_SIZE: usize = 256;
/// Largest PEX message accepted: [`MAX_ADDRESS_SIZE`] × [`MAX_GET_SELECTION`] = 64000 bytes
/// (the channel's receive capacity).
pub const MAX_MSG_SIZE: usize = MAX_ADDRESS_SIZE * MAX_GET_SELECTION;
/// Bias towards new addresses in the answers of a seed node.
pub const BIAS_TO_SELECT_NEW_PEERS: u8 = 30;
/// How long a misbehaving peer is banned.
pub const DEFAULT_BAN_TIME: Duration = Duration::from_secs(24 * 3600);
/// After this many failed dials a non-persistent address is banned.
pub const MAX_ATTEMPTS_TO_DIAL: u32 = 16;

/// Capacity of the whole book: every new and old bucket full.
pub const BOOK_CAPACITY: usize =
    NEW_BUCKET_COUNT * NEW_BUCKET_SIZE + OLD_BUCKET_COUNT * OLD_BUCKET_SIZE;
