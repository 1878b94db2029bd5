//! The address book: what a node knows about other nodes' addresses.
//!
//! Addresses live in buckets. An address learned from gossip goes into one of
//! [`NEW_BUCKET_COUNT`] "new" buckets; once we have connected to it, it moves into one of
//! [`OLD_BUCKET_COUNT`] "old" buckets. The bucket is chosen by a keyed hash of the address's
//! network group and of the group of the peer that told us about it (its source), with a key
//! only this node knows:
//!
//! - new bucket: `h = H(group(addr), group(src)) mod 32`, then `H(group(src), h) mod 256`, so
//!   everything learned from one source group lands in at most 32 of the 256 new buckets;
//! - old bucket: `h = H(addr) mod 4`, then `H(group(addr), h) mod 64`, so one address group
//!   reaches at most 4 of the 64 old buckets.
//!
//! Buckets are small ([`NEW_BUCKET_SIZE`], [`OLD_BUCKET_SIZE`]); a full new bucket drops a bad
//! or its least recently tried address, a full old bucket moves its least recently tried
//! address back to a new bucket. Together this keeps an attacker who controls many addresses
//! in few networks from filling the book (an eclipse attack): they compete for a few buckets
//! only, and addresses we have connected to are never displaced by gossip.
//!
//! One entry is kept per node ID; the address of a known ID is never changed by gossip.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::Hasher as _;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use p2p_types::{NetAddress, NodeId};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use siphasher::sip::SipHasher24;
use tracing::{debug, info};

use crate::Error;
use crate::clock::{Clock, SystemClock};
use crate::config::AddrBookConfig;
use crate::group::group_key;
use crate::params::{
    GET_SELECTION_PERCENT, MAX_FAILURES, MAX_GET_SELECTION, MAX_NEW_BUCKETS_PER_ADDRESS,
    MIN_BAD_DAYS, MIN_GET_SELECTION, NEED_ADDRESS_THRESHOLD, NEW_BUCKET_COUNT, NEW_BUCKET_SIZE,
    NEW_BUCKETS_PER_GROUP, NUM_MISSING_DAYS, NUM_RETRIES, OLD_BUCKET_COUNT, OLD_BUCKET_SIZE,
    OLD_BUCKETS_PER_GROUP, RECENT_ATTEMPT,
};

/// Which kind of bucket an address is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BucketKind {
    /// Learned from gossip, never connected to (or not since it was demoted).
    New,
    /// Connected to successfully ("vetted").
    Old,
}

impl BucketKind {
    /// The number `addrbook.json` uses: 1 for new, 2 for old.
    pub const fn code(self) -> u8 {
        match self {
            Self::New => 1,
            Self::Old => 2,
        }
    }

    /// The kind for an `addrbook.json` number.
    pub const fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::New),
            2 => Some(Self::Old),
            _ => None,
        }
    }

    /// How many buckets of this kind there are.
    pub const fn bucket_count(self) -> usize {
        match self {
            Self::New => NEW_BUCKET_COUNT,
            Self::Old => OLD_BUCKET_COUNT,
        }
    }

    /// How many addresses one bucket of this kind holds.
    pub const fn bucket_size(self) -> usize {
        match self {
            Self::New => NEW_BUCKET_SIZE,
            Self::Old => OLD_BUCKET_SIZE,
        }
    }
}

/// What the book knows about one address. Timestamps are `None` for "never" (the zero time of
/// the file format).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownAddress {
    pub(crate) addr: NetAddress,
    pub(crate) src: NetAddress,
    pub(crate) buckets: Vec<u16>,
    pub(crate) attempts: u32,
    pub(crate) kind: BucketKind,
    pub(crate) last_attempt: Option<SystemTime>,
    pub(crate) last_success: Option<SystemTime>,
    pub(crate) last_ban_time: Option<SystemTime>,
}

impl KnownAddress {
    /// The address.
    pub fn addr(&self) -> &NetAddress {
        &self.addr
    }

    /// The address of the peer we learned it from (the address itself for inbound peers).
    pub fn src(&self) -> &NetAddress {
        &self.src
    }

    /// The buckets (of [`kind`](Self::kind)) holding it: one to four new buckets, or one old.
    pub fn buckets(&self) -> &[u16] {
        &self.buckets
    }

    /// Failed attempts since the last success.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// New or old.
    pub fn kind(&self) -> BucketKind {
        self.kind
    }

    /// When it was last tried (or added).
    pub fn last_attempt(&self) -> Option<SystemTime> {
        self.last_attempt
    }

    /// When we last connected to it.
    pub fn last_success(&self) -> Option<SystemTime> {
        self.last_success
    }

    /// Until when it was last banned.
    pub fn last_ban_time(&self) -> Option<SystemTime> {
        self.last_ban_time
    }

    /// The reference's `isBad`: whether a new address is worthless. Old addresses never are,
    /// nor one tried within the last minute. Otherwise it is bad if it was not tried for a
    /// week, or failed [`NUM_RETRIES`] times and never succeeded, or failed [`MAX_FAILURES`]
    /// times with no success for a week.
    pub fn is_bad(&self, now: SystemTime) -> bool {
        if self.kind == BucketKind::Old {
            return false;
        }
        if within(self.last_attempt, now, RECENT_ATTEMPT) {
            return false;
        }
        if !within(self.last_attempt, now, NUM_MISSING_DAYS) {
            return true;
        }
        if self.last_success.is_none() && self.attempts >= NUM_RETRIES {
            return true;
        }
        !within(self.last_success, now, MIN_BAD_DAYS) && self.attempts >= MAX_FAILURES
    }
}

/// Whether `t` is less than `d` before `now` (a time in the future counts as recent; "never"
/// does not).
pub(crate) fn within(t: Option<SystemTime>, now: SystemTime, d: Duration) -> bool {
    match t {
        None => false,
        Some(t) => now.duration_since(t).map_or(true, |age| age < d),
    }
}

/// What [`AddrBook::add_address`] did with an acceptable address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AddOutcome {
    /// A new entry was created.
    Added,
    /// The known address was put into one more new bucket.
    AddedToBucket,
    /// Nothing changed: the ID is known (old, in enough buckets, gossiped with another address,
    /// or this time not chosen for another bucket).
    AlreadyKnown,
}

/// A banned node ID.
#[derive(Clone, Debug)]
pub(crate) struct Ban {
    /// The address it was banned under.
    pub(crate) addr: NetAddress,
    /// When the ban ends.
    pub(crate) until: SystemTime,
    /// Its book entry at the time, to reinstate when the ban ends.
    pub(crate) entry: Option<KnownAddress>,
}

/// The address book. The [`manual`](crate::manual) explains how it places addresses.
///
/// Time comes from a [`Clock`] and randomness from a seedable generator, so that a book built
/// with [`with_rng`](Self::with_rng) behaves the same in every run.
///
/// ```
/// use p2p_pex::{AddrBook, AddrBookConfig};
///
/// let mut book = AddrBook::new(AddrBookConfig::default());
/// let addr = "0123456789abcdef0123456789abcdef01234567@1.2.3.4:26656".parse().unwrap();
/// let src = "76543210fedcba9876543210fedcba9876543210@5.6.7.8:26656".parse().unwrap();
/// book.add_address(&addr, &src).unwrap();
/// assert!(book.has_address(&addr));
/// // Private addresses are refused on a strict (public network) book.
/// let private = "00112233445566778899aabbccddeeff00112233@10.0.0.1:26656".parse().unwrap();
/// assert!(book.add_address(&private, &src).is_err());
/// book.mark_good(&addr.id());
/// assert!(book.is_good(&addr));
/// assert_eq!(book.get_selection(), vec![addr]);
/// ```
#[derive(Debug)]
pub struct AddrBook {
    pub(crate) config: AddrBookConfig,
    /// The book's secret, persisted as the file's `key`.
    pub(crate) key: String,
    /// The SipHash key derived from `key`.
    sip_key: [u8; 16],
    pub(crate) rng: StdRng,
    pub(crate) clock: Arc<dyn Clock>,
    our_ids: BTreeSet<NodeId>,
    our_addrs: BTreeSet<SocketAddr>,
    private_ids: BTreeSet<NodeId>,
    pub(crate) entries: BTreeMap<NodeId, KnownAddress>,
    ip_counts: BTreeMap<IpAddr, usize>,
    pub(crate) bans: BTreeMap<NodeId, Ban>,
    new_buckets: Vec<Vec<NodeId>>,
    old_buckets: Vec<Vec<NodeId>>,
    n_new: usize,
    n_old: usize,
    pub(crate) file_path: Option<PathBuf>,
}

impl AddrBook {
    /// An empty book with a generator seeded by the operating system and the system clock.
    pub fn new(config: AddrBookConfig) -> Self {
        Self::with_rng(config, rand::make_rng::<StdRng>(), Arc::new(SystemClock))
    }

    /// An empty book with the given generator and clock (for simulations and tests).
    pub fn with_rng(config: AddrBookConfig, mut rng: StdRng, clock: Arc<dyn Clock>) -> Self {
        let key = random_key(&mut rng);
        Self {
            config,
            sip_key: derive_sip_key(&key),
            key,
            rng,
            clock,
            our_ids: BTreeSet::new(),
            our_addrs: BTreeSet::new(),
            private_ids: BTreeSet::new(),
            entries: BTreeMap::new(),
            ip_counts: BTreeMap::new(),
            bans: BTreeMap::new(),
            new_buckets: vec![Vec::new(); NEW_BUCKET_COUNT],
            old_buckets: vec![Vec::new(); OLD_BUCKET_COUNT],
            n_new: 0,
            n_old: 0,
            file_path: None,
        }
    }

    /// An empty book whose generator is seeded with `seed`.
    pub fn with_seed(config: AddrBookConfig, seed: u64, clock: Arc<dyn Clock>) -> Self {
        Self::with_rng(config, StdRng::seed_from_u64(seed), clock)
    }

    /// The settings.
    pub fn config(&self) -> &AddrBookConfig {
        &self.config
    }

    /// The book's secret key (the file's `key` field), which determines bucket placement.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The current time of the book's clock.
    pub fn now(&self) -> SystemTime {
        self.clock.now()
    }

    /// Empties the book and installs `key` (a fresh random one if `None`). Settings, our
    /// addresses and private IDs stay.
    pub(crate) fn reset(&mut self, key: Option<String>) {
        let key = key.unwrap_or_else(|| random_key(&mut self.rng));
        self.sip_key = derive_sip_key(&key);
        self.key = key;
        self.entries.clear();
        self.ip_counts.clear();
        self.bans.clear();
        self.new_buckets.iter_mut().for_each(Vec::clear);
        self.old_buckets.iter_mut().for_each(Vec::clear);
        self.n_new = 0;
        self.n_old = 0;
    }

    // ---- our own and private addresses ---------------------------------------------------

    /// Remembers one of our own addresses: neither its node ID nor its IP and port will be
    /// stored (an entry already there is removed).
    pub fn add_our_address(&mut self, addr: &NetAddress) {
        info!(%addr, "our own address");
        self.our_ids.insert(addr.id());
        self.our_addrs.insert(addr.socket_addr());
        let ours: Vec<NodeId> = self
            .entries
            .values()
            .filter(|e| self.is_ours(&e.addr))
            .map(|e| e.addr.id())
            .collect();
        for id in ours {
            self.remove_entry(&id);
        }
    }

    /// Whether `addr` is one of ours (by node ID or by IP and port).
    pub fn is_our_address(&self, addr: &NetAddress) -> bool {
        self.is_ours(addr)
    }

    fn is_ours(&self, addr: &NetAddress) -> bool {
        self.our_ids.contains(&addr.id()) || self.our_addrs.contains(&addr.socket_addr())
    }

    /// Marks node IDs as private: they are never stored nor handed out, and nothing learned
    /// from them is stored. Entries already in the book, of them or learned from them, are
    /// removed.
    pub fn add_private_ids(&mut self, ids: impl IntoIterator<Item = NodeId>) {
        self.private_ids.extend(ids);
        let tainted: Vec<NodeId> = self
            .entries
            .values()
            .filter(|e| {
                self.private_ids.contains(&e.addr.id()) || self.private_ids.contains(&e.src.id())
            })
            .map(|e| e.addr.id())
            .collect();
        for id in tainted {
            self.remove_entry(&id);
        }
    }

    /// Whether `id` was marked private.
    pub fn is_private(&self, id: &NodeId) -> bool {
        self.private_ids.contains(id)
    }

    // ---- adding and removing -------------------------------------------------------------

    /// Adds `addr`, learned from `src`, to a new bucket.
    ///
    /// Refused with an error: an invalid IP, a banned ID, a private ID or an address learned
    /// from a private peer, one of our addresses, a non-routable address when the book is
    /// strict, or an IP already holding [`AddrBookConfig::max_addrs_per_ip`] IDs. An ID the
    /// book already knows keeps its address; if it is new and gossiped again with the same
    /// address, it may be put into one more bucket (with probability `1 / (2 × buckets)`, up to
    /// [`MAX_NEW_BUCKETS_PER_ADDRESS`]), so often-heard addresses are more likely picked.
    pub fn add_address(
        &mut self,
        addr: &NetAddress,
        src: &NetAddress,
    ) -> Result<AddOutcome, Error> {
        addr.validate().map_err(|e| Error::InvalidAddress {
            addr: *addr,
            reason: e.to_string(),
        })?;
        let id = addr.id();
        let now = self.now();
        match self.bans.get(&id) {
            Some(ban) if ban.until > now => return Err(Error::Banned { addr: *addr }),
            Some(_) => self.lift_ban(&id),
            None => {}
        }
        if self.private_ids.contains(&id) {
            return Err(Error::PrivateAddress { addr: *addr });
        }
        if self.private_ids.contains(&src.id()) {
            return Err(Error::PrivateSource { src: *src });
        }
        if self.is_ours(addr) {
            return Err(Error::OwnAddress { addr: *addr });
        }
        if self.config.strict && !addr.is_routable() {
            return Err(Error::NonRoutable { addr: *addr });
        }

        if let Some(known) = self.entries.get(&id) {
            // Gossip never changes the address of a known ID, nor touches an old entry.
            let in_buckets = known.buckets.len();
            if known.kind == BucketKind::Old
                || known.addr != *addr
                || in_buckets >= MAX_NEW_BUCKETS_PER_ADDRESS
            {
                return Ok(AddOutcome::AlreadyKnown);
            }
            if self.rng.random_range(0..2 * in_buckets.max(1)) != 0 {
                return Ok(AddOutcome::AlreadyKnown);
            }
            let bucket = self.calc_new_bucket(addr, src);
            return Ok(if self.add_to_new_bucket(&id, bucket) {
                AddOutcome::AddedToBucket
            } else {
                AddOutcome::AlreadyKnown
            });
        }

        let limit = self.config.max_addrs_per_ip;
        if self.ip_counts.get(&addr.ip()).copied().unwrap_or(0) >= limit {
            return Err(Error::IpLimit { addr: *addr, limit });
        }
        self.insert_entry(KnownAddress {
            addr: *addr,
            src: *src,
            buckets: Vec::new(),
            attempts: 0,
            kind: BucketKind::New,
            last_attempt: Some(now),
            last_success: None,
            last_ban_time: None,
        });
        let bucket = self.calc_new_bucket(addr, src);
        if !self.add_to_new_bucket(&id, bucket) {
            self.remove_entry(&id);
        }
        Ok(AddOutcome::Added)
    }

    /// Removes the entry of `addr`'s node ID, if any.
    pub fn remove_address(&mut self, addr: &NetAddress) {
        if self.remove_entry(&addr.id()).is_some() {
            info!(%addr, "removed address from book");
        }
    }

    /// Whether the book holds an entry for `addr`'s node ID.
    pub fn has_address(&self, addr: &NetAddress) -> bool {
        self.entries.contains_key(&addr.id())
    }

    /// The entry of a node ID.
    pub fn get(&self, id: &NodeId) -> Option<&KnownAddress> {
        self.entries.get(id)
    }

    /// Every entry, ordered by node ID.
    pub fn entries(&self) -> impl Iterator<Item = &KnownAddress> {
        self.entries.values()
    }

    /// Number of addresses in the book.
    pub fn len(&self) -> usize {
        self.n_new + self.n_old
    }

    /// Whether the book holds no address (our own and private ones are never in it).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of addresses in new buckets.
    pub fn num_new(&self) -> usize {
        self.n_new
    }

    /// Number of addresses in old buckets.
    pub fn num_old(&self) -> usize {
        self.n_old
    }

    /// Whether the book wants more addresses (fewer than [`NEED_ADDRESS_THRESHOLD`]).
    pub fn need_more_addrs(&self) -> bool {
        self.len() < NEED_ADDRESS_THRESHOLD
    }

    // ---- marks ---------------------------------------------------------------------------

    /// We connected to `id`: its failures are forgotten and it moves to an old bucket (a full
    /// old bucket sends its least recently tried address back to a new bucket).
    pub fn mark_good(&mut self, id: &NodeId) {
        let now = self.now();
        let Some(entry) = self.entries.get_mut(id) else {
            return;
        };
        entry.attempts = 0;
        entry.last_attempt = Some(now);
        entry.last_success = Some(now);
        if entry.kind == BucketKind::New {
            self.move_to_old(id);
        }
    }

    /// We tried `addr`'s node ID (and failed). Returns `true` if that was one failure too many:
    /// after [`AddrBookConfig::max_failed_attempts`] failures in a row with no success in the
    /// last week the entry is removed.
    pub fn mark_attempt(&mut self, addr: &NetAddress) -> bool {
        let now = self.now();
        let id = addr.id();
        let Some(entry) = self.entries.get_mut(&id) else {
            return false;
        };
        entry.attempts = entry.attempts.saturating_add(1);
        entry.last_attempt = Some(now);
        if entry.attempts >= self.config.max_failed_attempts
            && !within(entry.last_success, now, MIN_BAD_DAYS)
        {
            info!(%addr, attempts = entry.attempts, "dropping address that keeps failing");
            self.remove_entry(&id);
            return true;
        }
        false
    }

    /// Bans `addr`'s node ID for `ban_time`: its entry leaves the book and the ID is refused
    /// until the ban ends. A second ban of a banned ID only ever extends it. IDs not in the book
    /// are banned too.
    pub fn mark_bad(&mut self, addr: &NetAddress, ban_time: Duration) {
        let now = self.now();
        let until = now
            .checked_add(ban_time)
            .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600));
        let id = addr.id();
        if let Some(ban) = self.bans.get_mut(&id) {
            ban.until = ban.until.max(until);
            if let Some(entry) = &mut ban.entry {
                entry.last_ban_time = Some(ban.until);
            }
            return;
        }
        let entry = self.remove_entry(&id).map(|mut e| {
            e.last_ban_time = Some(until);
            e
        });
        info!(%addr, ?ban_time, "banned address");
        self.insert_ban(Ban {
            addr: entry.as_ref().map_or(*addr, |e| e.addr),
            until,
            entry,
        });
    }

    pub(crate) fn insert_ban(&mut self, ban: Ban) {
        let id = ban.addr.id();
        if !self.bans.contains_key(&id) && self.bans.len() >= self.config.max_bans {
            let soonest = self
                .bans
                .iter()
                .min_by_key(|(_, b)| b.until)
                .map(|(id, _)| *id);
            if let Some(soonest) = soonest {
                self.bans.remove(&soonest);
            }
        }
        self.bans.insert(id, ban);
    }

    /// Puts every address whose ban has ended back into a new bucket. Returns how many bans
    /// ended.
    pub fn reinstate_bad_peers(&mut self) -> usize {
        let now = self.now();
        let ended: Vec<NodeId> = self
            .bans
            .iter()
            .filter(|(_, b)| b.until <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in &ended {
            self.lift_ban(id);
        }
        ended.len()
    }

    fn lift_ban(&mut self, id: &NodeId) {
        let Some(ban) = self.bans.remove(id) else {
            return;
        };
        let Some(mut entry) = ban.entry else {
            return;
        };
        let addr = entry.addr;
        if self.entries.contains_key(id)
            || self.private_ids.contains(id)
            || self.private_ids.contains(&entry.src.id())
            || self.is_ours(&addr)
            || self.ip_counts.get(&addr.ip()).copied().unwrap_or(0) >= self.config.max_addrs_per_ip
        {
            return;
        }
        entry.kind = BucketKind::New;
        entry.buckets.clear();
        let src = entry.src;
        self.insert_entry(entry);
        let bucket = self.calc_new_bucket(&addr, &src);
        if self.add_to_new_bucket(id, bucket) {
            info!(%addr, "reinstated address");
        } else {
            self.remove_entry(id);
        }
    }

    /// Whether `addr`'s node ID is in an old bucket (we connected to it).
    pub fn is_good(&self, addr: &NetAddress) -> bool {
        self.entries
            .get(&addr.id())
            .is_some_and(|e| e.kind == BucketKind::Old)
    }

    /// Whether `addr`'s node ID is banned now.
    pub fn is_banned(&self, addr: &NetAddress) -> bool {
        let now = self.now();
        self.bans.get(&addr.id()).is_some_and(|b| b.until > now)
    }

    /// Number of remembered bans (including ended ones not yet lifted).
    pub fn num_bans(&self) -> usize {
        self.bans.len()
    }

    // ---- picking and selections ----------------------------------------------------------

    /// Picks an address to dial. `bias_towards_new` (0 to 100, larger values are taken as
    /// 100) weighs new against old addresses: old ones are chosen with odds
    /// `√old × (100 − bias)` to `√new × bias`. Then a random non-empty bucket of that kind and
    /// a random address in it. `None` if the book is empty or the chosen kind has no address.
    pub fn pick_address(&mut self, bias_towards_new: u8) -> Option<NetAddress> {
        if self.is_empty() {
            return None;
        }
        let bias = f64::from(bias_towards_new.min(100));
        let old_corr = (self.n_old as f64).sqrt() * (100.0 - bias);
        let new_corr = (self.n_new as f64).sqrt() * bias;
        let pick_old = (old_corr + new_corr) * self.rng.random::<f64>() < old_corr;
        if (pick_old && self.n_old == 0) || (!pick_old && self.n_new == 0) {
            return None;
        }
        let buckets = if pick_old {
            &self.old_buckets
        } else {
            &self.new_buckets
        };
        let non_empty: Vec<&Vec<NodeId>> = buckets.iter().filter(|b| !b.is_empty()).collect();
        let bucket = non_empty.get(self.rng.random_range(0..non_empty.len().max(1)))?;
        let id = bucket.get(self.rng.random_range(0..bucket.len().max(1)))?;
        self.entries.get(id).map(|e| e.addr)
    }

    /// How many addresses a selection returns for a book of `size`: 23 % of the book, at
    /// least 32 (or the whole book if smaller), at most 250.
    pub fn selection_size(size: usize) -> usize {
        MIN_GET_SELECTION
            .min(size)
            .max(size * GET_SELECTION_PERCENT / 100)
            .min(MAX_GET_SELECTION)
    }

    /// A random selection of addresses, old and new alike, to answer a PEX request
    /// ([`selection_size`](Self::selection_size) of them, no duplicates).
    pub fn get_selection(&mut self) -> Vec<NetAddress> {
        let n = Self::selection_size(self.len());
        let mut all: Vec<NetAddress> = self.entries.values().map(|e| e.addr).collect();
        let n = n.min(all.len());
        // A partial Fisher–Yates shuffle: only the first n places are needed.
        for i in 0..n {
            let j = self.rng.random_range(i..all.len());
            all.swap(i, j);
        }
        all.truncate(n);
        all
    }

    /// A selection with a given share of new addresses, first the new ones, then old ones:
    /// `max(round(bias × n / 100), n − old)` new addresses (as many as there are), the rest
    /// old. Seeds answer with a bias of 30 so their answers are mostly vetted addresses.
    pub fn get_selection_with_bias(&mut self, bias_towards_new: u8) -> Vec<NetAddress> {
        let n = Self::selection_size(self.len());
        if n == 0 {
            return Vec::new();
        }
        let bias = f64::from(bias_towards_new.min(100));
        let wanted_new = ((bias / 100.0) * n as f64).round() as usize;
        let num_new = wanted_new.max(n.saturating_sub(self.n_old));
        let mut selection = self.random_pick(BucketKind::New, num_new);
        let rest = n.saturating_sub(selection.len());
        selection.extend(self.random_pick(BucketKind::Old, rest));
        selection
    }

    /// Up to `num` distinct random addresses of one kind. Like the reference, an address in
    /// several buckets is proportionally more likely to be chosen.
    fn random_pick(&mut self, kind: BucketKind, num: usize) -> Vec<NetAddress> {
        if num == 0 {
            return Vec::new();
        }
        let buckets = match kind {
            BucketKind::New => &self.new_buckets,
            BucketKind::Old => &self.old_buckets,
        };
        let mut refs: Vec<NodeId> = buckets.iter().flatten().copied().collect();
        for i in (1..refs.len()).rev() {
            let j = self.rng.random_range(0..=i);
            refs.swap(i, j);
        }
        let mut chosen = BTreeSet::new();
        let mut selection = Vec::with_capacity(num.min(refs.len()));
        for id in refs {
            if selection.len() >= num {
                break;
            }
            if chosen.insert(id) {
                if let Some(entry) = self.entries.get(&id) {
                    selection.push(entry.addr);
                }
            }
        }
        selection
    }

    // ---- placement -----------------------------------------------------------------------

    fn hash(&self, parts: &[&[u8]]) -> u64 {
        let mut h = SipHasher24::new_with_key(&self.sip_key);
        for part in parts {
            // Length-prefixed, so that no two different part lists hash the same input.
            h.write(&(part.len() as u64).to_be_bytes());
            h.write(part);
        }
        h.finish()
    }

    /// The new bucket of `addr` learned from `src`.
    pub fn calc_new_bucket(&self, addr: &NetAddress, src: &NetAddress) -> usize {
        let addr_group = group_key(addr, self.config.strict);
        let src_group = group_key(src, self.config.strict);
        let h1 = self.hash(&[addr_group.as_bytes(), src_group.as_bytes()]) % NEW_BUCKETS_PER_GROUP;
        let h2 = self.hash(&[src_group.as_bytes(), &h1.to_be_bytes()]);
        (h2 % NEW_BUCKET_COUNT as u64) as usize
    }

    /// The old bucket of `addr`.
    pub fn calc_old_bucket(&self, addr: &NetAddress) -> usize {
        let addr_group = group_key(addr, self.config.strict);
        let h1 = self.hash(&[addr.to_string().as_bytes()]) % OLD_BUCKETS_PER_GROUP;
        let h2 = self.hash(&[addr_group.as_bytes(), &h1.to_be_bytes()]);
        (h2 % OLD_BUCKET_COUNT as u64) as usize
    }

    /// Number of addresses in one bucket.
    pub fn bucket_len(&self, kind: BucketKind, bucket: usize) -> usize {
        self.bucket(kind, bucket).map_or(0, Vec::len)
    }

    fn bucket(&self, kind: BucketKind, bucket: usize) -> Option<&Vec<NodeId>> {
        match kind {
            BucketKind::New => self.new_buckets.get(bucket),
            BucketKind::Old => self.old_buckets.get(bucket),
        }
    }

    fn bucket_mut(&mut self, kind: BucketKind, bucket: usize) -> Option<&mut Vec<NodeId>> {
        match kind {
            BucketKind::New => self.new_buckets.get_mut(bucket),
            BucketKind::Old => self.old_buckets.get_mut(bucket),
        }
    }

    // ---- internals -----------------------------------------------------------------------

    /// Inserts an entry that is in no bucket yet; the caller puts it into one at once.
    pub(crate) fn insert_entry(&mut self, mut entry: KnownAddress) {
        entry.buckets.clear();
        *self.ip_counts.entry(entry.addr.ip()).or_insert(0) += 1;
        match entry.kind {
            BucketKind::New => self.n_new += 1,
            BucketKind::Old => self.n_old += 1,
        }
        self.entries.insert(entry.addr.id(), entry);
    }

    /// How many entries the book holds on `ip`.
    pub(crate) fn ip_count(&self, ip: &IpAddr) -> usize {
        self.ip_counts.get(ip).copied().unwrap_or(0)
    }

    /// Puts a loaded entry straight into one bucket of its kind, if that bucket has room.
    pub(crate) fn add_loaded_ref(&mut self, id: &NodeId, bucket: usize) -> bool {
        let Some(kind) = self.entries.get(id).map(|e| e.kind) else {
            return false;
        };
        let size = kind.bucket_size();
        match self.bucket_mut(kind, bucket) {
            Some(b) if b.len() < size && !b.contains(id) => b.push(*id),
            _ => return false,
        }
        if let Some(entry) = self.entries.get_mut(id) {
            entry.buckets.push(bucket as u16);
        }
        true
    }

    /// Removes an entry from the book entirely.
    pub(crate) fn remove_entry(&mut self, id: &NodeId) -> Option<KnownAddress> {
        let mut entry = self.entries.remove(id)?;
        for bucket in std::mem::take(&mut entry.buckets) {
            if let Some(b) = self.bucket_mut(entry.kind, usize::from(bucket)) {
                b.retain(|x| x != id);
            }
        }
        let ip = entry.addr.ip();
        if let Some(count) = self.ip_counts.get_mut(&ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.ip_counts.remove(&ip);
            }
        }
        match entry.kind {
            BucketKind::New => self.n_new = self.n_new.saturating_sub(1),
            BucketKind::Old => self.n_old = self.n_old.saturating_sub(1),
        }
        Some(entry)
    }

    /// Removes `id` from one bucket; an entry left in no bucket leaves the book.
    fn remove_from_bucket(&mut self, id: &NodeId, kind: BucketKind, bucket: usize) {
        if let Some(b) = self.bucket_mut(kind, bucket) {
            b.retain(|x| x != id);
        }
        let empty = match self.entries.get_mut(id) {
            Some(entry) => {
                entry.buckets.retain(|&b| usize::from(b) != bucket);
                entry.buckets.is_empty()
            }
            None => false,
        };
        if empty {
            self.remove_entry(id);
        }
    }

    /// Adds a reference from new bucket `bucket` to the new entry `id`, making room first if
    /// the bucket is full. Returns `false` if nothing changed.
    fn add_to_new_bucket(&mut self, id: &NodeId, bucket: usize) -> bool {
        let Some(b) = self.new_buckets.get(bucket) else {
            return false;
        };
        if b.contains(id) {
            return false;
        }
        if self
            .entries
            .get(id)
            .is_none_or(|e| e.kind != BucketKind::New)
        {
            return false;
        }
        if b.len() >= NEW_BUCKET_SIZE {
            debug!(bucket, "new bucket is full, expiring an address");
            self.expire_new(bucket);
        }
        if let Some(b) = self.new_buckets.get_mut(bucket) {
            b.push(*id);
        }
        if let Some(entry) = self.entries.get_mut(id) {
            entry.buckets.push(bucket as u16);
        }
        true
    }

    /// Makes room in a new bucket: drops its first bad address, or else the one tried least
    /// recently.
    fn expire_new(&mut self, bucket: usize) {
        let now = self.now();
        let Some(b) = self.new_buckets.get(bucket) else {
            return;
        };
        let bad = b
            .iter()
            .find(|id| self.entries.get(id).is_some_and(|e| e.is_bad(now)))
            .copied();
        let victim = bad.or_else(|| self.oldest(b));
        if let Some(victim) = victim {
            self.remove_from_bucket(&victim, BucketKind::New, bucket);
        }
    }

    /// The address of a bucket tried least recently (the first of equals).
    fn oldest(&self, bucket: &[NodeId]) -> Option<NodeId> {
        bucket
            .iter()
            .min_by_key(|id| self.entries.get(id).and_then(|e| e.last_attempt))
            .copied()
    }

    /// Promotes a new entry to its old bucket. If that bucket is full, its least recently
    /// tried address goes back to a new bucket first.
    fn move_to_old(&mut self, id: &NodeId) {
        let Some(entry) = self.entries.get_mut(id) else {
            return;
        };
        if entry.kind == BucketKind::Old {
            return;
        }
        let buckets = std::mem::take(&mut entry.buckets);
        entry.kind = BucketKind::Old;
        let addr = entry.addr;
        for bucket in buckets {
            if let Some(b) = self.new_buckets.get_mut(usize::from(bucket)) {
                b.retain(|x| x != id);
            }
        }
        self.n_new = self.n_new.saturating_sub(1);
        self.n_old += 1;

        let old_bucket = self.calc_old_bucket(&addr);
        let full = self.old_buckets.get(old_bucket).map_or(0, Vec::len) >= OLD_BUCKET_SIZE;
        if full {
            let victim = self
                .old_buckets
                .get(old_bucket)
                .and_then(|b| self.oldest(b));
            if let Some(victim) = victim {
                self.demote(&victim, old_bucket);
            }
        }
        if let Some(b) = self.old_buckets.get_mut(old_bucket) {
            b.push(*id);
        }
        if let Some(entry) = self.entries.get_mut(id) {
            entry.buckets = vec![old_bucket as u16];
        }
    }

    /// Moves an old entry out of its old bucket into a new bucket.
    fn demote(&mut self, id: &NodeId, old_bucket: usize) {
        if let Some(b) = self.old_buckets.get_mut(old_bucket) {
            b.retain(|x| x != id);
        }
        let Some(entry) = self.entries.get_mut(id) else {
            return;
        };
        entry.buckets.clear();
        entry.kind = BucketKind::New;
        let (addr, src) = (entry.addr, entry.src);
        self.n_old = self.n_old.saturating_sub(1);
        self.n_new += 1;
        let bucket = self.calc_new_bucket(&addr, &src);
        if !self.add_to_new_bucket(id, bucket) {
            self.remove_entry(id);
        }
    }

    /// Checks the book's internal consistency: every entry in one to four new buckets or
    /// exactly one old bucket, and bucket contents, counters, per-IP counts and bucket sizes
    /// agreeing. For tests and fuzzing; a failure is a bug in this crate.
    pub fn verify_consistency(&self) -> Result<(), String> {
        let mut refs: BTreeMap<(NodeId, BucketKind), BTreeSet<u16>> = BTreeMap::new();
        for (kind, buckets) in [
            (BucketKind::New, &self.new_buckets),
            (BucketKind::Old, &self.old_buckets),
        ] {
            for (i, b) in buckets.iter().enumerate() {
                if b.len() > kind.bucket_size() {
                    return Err(format!("{kind:?} bucket {i} holds {} addresses", b.len()));
                }
                for id in b {
                    if !refs.entry((*id, kind)).or_default().insert(i as u16) {
                        return Err(format!("{id} twice in {kind:?} bucket {i}"));
                    }
                }
            }
        }
        let (mut n_new, mut n_old) = (0, 0);
        let mut ips: BTreeMap<IpAddr, usize> = BTreeMap::new();
        for (id, e) in &self.entries {
            if *id != e.addr.id() {
                return Err(format!("entry {id} holds address {}", e.addr));
            }
            let listed: BTreeSet<u16> = e.buckets.iter().copied().collect();
            if listed.len() != e.buckets.len() {
                return Err(format!("{id} lists a bucket twice"));
            }
            let in_buckets = refs.remove(&(*id, e.kind)).unwrap_or_default();
            if listed != in_buckets {
                return Err(format!(
                    "{id} lists buckets {listed:?}, is in {in_buckets:?}"
                ));
            }
            let ok = match e.kind {
                BucketKind::New => (1..=MAX_NEW_BUCKETS_PER_ADDRESS).contains(&listed.len()),
                BucketKind::Old => listed.len() == 1,
            };
            if !ok {
                return Err(format!(
                    "{id} ({:?}) is in {} buckets",
                    e.kind,
                    listed.len()
                ));
            }
            match e.kind {
                BucketKind::New => n_new += 1,
                BucketKind::Old => n_old += 1,
            }
            *ips.entry(e.addr.ip()).or_insert(0) += 1;
            if self.bans.contains_key(id) {
                return Err(format!("{id} is banned and in the book"));
            }
            if self.private_ids.contains(id)
                || self.private_ids.contains(&e.src.id())
                || self.is_ours(&e.addr)
            {
                return Err(format!("{id} is private or ours and in the book"));
            }
        }
        if let Some(((id, kind), _)) = refs.into_iter().next() {
            return Err(format!(
                "{kind:?} buckets hold {id}, which has no such entry"
            ));
        }
        if (n_new, n_old) != (self.n_new, self.n_old) {
            return Err(format!(
                "counted {n_new} new and {n_old} old, counters say {} and {}",
                self.n_new, self.n_old
            ));
        }
        if ips != self.ip_counts {
            return Err("per-IP counts disagree with the entries".to_owned());
        }
        if ips.values().any(|&n| n > self.config.max_addrs_per_ip) {
            return Err("an IP holds more entries than allowed".to_owned());
        }
        if self.bans.len() > self.config.max_bans {
            return Err(format!("{} bans remembered", self.bans.len()));
        }
        Ok(())
    }
}

/// 24 random hex characters (96 bits), like the reference's key.
fn random_key(rng: &mut StdRng) -> String {
    let bytes: [u8; 12] = rng.random();
    hex::encode(bytes)
}

/// The SipHash key for a book key: the key text hashed under a fixed, public domain key, so
/// that any key string (the reference accepts any) gives a uniformly spread 128-bit key.
fn derive_sip_key(key: &str) -> [u8; 16] {
    const DOMAIN: [u8; 16] = *b"p2p-pex/addrbook";
    let h = siphasher::sip128::SipHasher24::new_with_key(&DOMAIN).hash(key.as_bytes());
    u128::from(h).to_be_bytes()
}
