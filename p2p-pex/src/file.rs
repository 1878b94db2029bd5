//! `addrbook.json`: the reference's file format, read and written.
//!
//! The file is a JSON object, indented with tabs (shown as spaces here):
//!
//! ```text
//! {
//!     "key": "<the book's secret, 24 hex characters>",
//!     "addrs": [
//!         {
//!             "addr": {"id": "<node ID>", "ip": "1.2.3.4", "port": 26656},
//!             "src": {"id": "<node ID>", "ip": "5.6.7.8", "port": 26656},
//!             "buckets": [17],
//!             "attempts": 0,
//!             "bucket_type": 1,
//!             "last_attempt": "2024-01-01T00:00:00.123456789Z",
//!             "last_success": "0001-01-01T00:00:00Z",
//!             "last_ban_time": "0001-01-01T00:00:00Z"
//!         }
//!     ],
//!     "bans": [ ... ]
//! }
//! ```
//!
//! `bucket_type` is 1 for new and 2 for old; times are RFC 3339 with up to nine fractional
//! digits (Go's `RFC3339Nano`), "never" is Go's zero time `0001-01-01T00:00:00Z`. `bans` is
//! this crate's addition (entries of the same shape whose `last_ban_time` is the end of the
//! ban, `bucket_type` 0 for an ID banned while not in the book); Go's decoder ignores unknown
//! fields, so a Go node reads our files, and we read its.
//!
//! Writing is atomic: the new contents go to a temporary file in the same directory, which is
//! flushed to disk, renamed over the old file, and the directory is flushed too. A crash at
//! any moment leaves the old file or the new one. Reading never panics: a damaged file is
//! renamed aside (`addrbook.json.corrupt-<unix time>`), every entry that is still valid is
//! kept, and a clean file is written at once; what was wrong is reported in a [`LoadReport`].

use std::fmt;
use std::fs::{self, File};
use std::io::{Read as _, Write as _};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use p2p_types::{NetAddress, NodeId};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tracing::{info, warn};

use crate::Error;
use crate::book::{AddrBook, Ban, BucketKind, KnownAddress};
use crate::params::{BOOK_CAPACITY, MAX_NEW_BUCKETS_PER_ADDRESS};

/// Largest `addrbook.json` read: 32 MiB (a full book in the reference's format is about 11 MB).
pub const MAX_FILE_SIZE: u64 = 32 << 20;
/// Largest single entry read: 4 KiB (a real one is about 500 bytes).
pub const MAX_ENTRY_SIZE: usize = 4096;
/// Most entries read from each list of the file: twice the book's capacity, so a reference
/// file (whose buckets may hold one address more than ours) is never cut short.
pub const MAX_FILE_ENTRIES: usize = 2 * BOOK_CAPACITY;
/// Most issues a [`LoadReport`] lists one by one; the rest are only counted.
pub const MAX_REPORTED_ISSUES: usize = 100;

/// Go's zero `time.Time`, which the reference writes for "never".
const GO_ZERO_TIME: &str = "0001-01-01T00:00:00Z";
/// [`GO_ZERO_TIME`] in nanoseconds since the Unix epoch.
const GO_ZERO_NANOS: i128 = -62_135_596_800 * 1_000_000_000;
/// The last nanosecond of year 9999, the latest time Go can write.
const GO_MAX_NANOS: i128 = 253_402_300_800 * 1_000_000_000 - 1;
/// Longest book key accepted (the reference writes 24 characters).
const MAX_KEY_LEN: usize = 256;

/// Something wrong with an `addrbook.json` that was read.
#[derive(Debug)]
#[non_exhaustive]
pub enum LoadIssue {
    /// The file is larger than [`MAX_FILE_SIZE`]; nothing was read.
    TooLarge {
        /// Its size (or more).
        len: u64,
    },
    /// The file is not JSON of the expected shape, or is cut short. Entries read before the
    /// damage are kept.
    Unreadable {
        /// The parser's complaint.
        reason: String,
    },
    /// The key is missing or unusable; a new one was generated.
    BadKey {
        /// What is wrong.
        reason: String,
    },
    /// An entry is malformed and was dropped.
    BadEntry {
        /// `"addrs"` or `"bans"`.
        list: &'static str,
        /// Its position in the list.
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// An entry's bucket list was partly unusable; the entry was kept with what was usable
    /// (or placed afresh).
    RepairedEntry {
        /// Its position in the list.
        index: usize,
        /// The address.
        addr: NetAddress,
        /// What was wrong.
        reason: String,
    },
    /// A second entry for a node ID already read was dropped.
    DuplicateId {
        /// Its position in the list.
        index: usize,
        /// The node ID.
        id: NodeId,
    },
    /// A list had more than [`MAX_FILE_ENTRIES`] entries; the rest were ignored.
    TooManyEntries {
        /// `"addrs"` or `"bans"`.
        list: &'static str,
        /// How many were ignored.
        ignored: usize,
    },
    /// A well-formed entry the book's rules refuse (our own, private, banned, non-routable on
    /// a strict book, IP limit). Not a sign of damage.
    Refused {
        /// Its position in the list.
        index: usize,
        /// Why.
        reason: Error,
    },
    /// A well-formed entry whose buckets were already full (the reference lets a bucket hold
    /// one address more than this crate does). Not a sign of damage.
    BucketFull {
        /// Its position in the list.
        index: usize,
        /// The address.
        addr: NetAddress,
    },
}

impl LoadIssue {
    /// Whether this issue means the file was damaged (and is therefore set aside), as opposed
    /// to valid entries the book's current rules refuse.
    pub fn is_damage(&self) -> bool {
        !matches!(self, Self::Refused { .. } | Self::BucketFull { .. })
    }
}

impl fmt::Display for LoadIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge { len } => write!(f, "file of {len} bytes exceeds {MAX_FILE_SIZE}"),
            Self::Unreadable { reason } => write!(f, "unreadable: {reason}"),
            Self::BadKey { reason } => write!(f, "bad key ({reason}), a new one was made"),
            Self::BadEntry {
                list,
                index,
                reason,
            } => write!(f, "{list}[{index}] dropped: {reason}"),
            Self::RepairedEntry {
                index,
                addr,
                reason,
            } => write!(f, "addrs[{index}] ({addr}) repaired: {reason}"),
            Self::DuplicateId { index, id } => write!(f, "addrs[{index}] repeats node ID {id}"),
            Self::TooManyEntries { list, ignored } => {
                write!(
                    f,
                    "{ignored} entries of {list} beyond {MAX_FILE_ENTRIES} ignored"
                )
            }
            Self::Refused { index, reason } => write!(f, "addrs[{index}] refused: {reason}"),
            Self::BucketFull { index, addr } => {
                write!(f, "addrs[{index}] ({addr}) dropped: its buckets are full")
            }
        }
    }
}

/// What loading an `addrbook.json` found.
#[derive(Debug, Default)]
pub struct LoadReport {
    issues: Vec<LoadIssue>,
    omitted: usize,
    damaged: bool,
    loaded: usize,
    bans: usize,
    set_aside: Option<PathBuf>,
    stale_temp_files: usize,
}

impl LoadReport {
    fn push(&mut self, issue: LoadIssue) {
        self.damaged |= issue.is_damage();
        if self.issues.len() < MAX_REPORTED_ISSUES {
            self.issues.push(issue);
        } else {
            self.omitted += 1;
        }
    }

    /// The issues found (at most [`MAX_REPORTED_ISSUES`]).
    pub fn issues(&self) -> &[LoadIssue] {
        &self.issues
    }

    /// How many further issues were found but not listed.
    pub fn omitted_issues(&self) -> usize {
        self.omitted
    }

    /// Whether the file was damaged (then it was set aside, see [`set_aside`](Self::set_aside)).
    pub fn is_damaged(&self) -> bool {
        self.damaged
    }

    /// Whether nothing at all was wrong.
    pub fn is_clean(&self) -> bool {
        self.issues.is_empty() && self.omitted == 0
    }

    /// How many addresses are in the book after loading.
    pub fn loaded(&self) -> usize {
        self.loaded
    }

    /// How many bans are in force after loading.
    pub fn bans(&self) -> usize {
        self.bans
    }

    /// Where the damaged file was moved to.
    pub fn set_aside(&self) -> Option<&Path> {
        self.set_aside.as_deref()
    }

    /// How many temporary files of interrupted saves were removed.
    pub fn stale_temp_files(&self) -> usize {
        self.stale_temp_files
    }
}

// ---- writing -------------------------------------------------------------------------------

#[derive(Serialize)]
struct FileOut<'a> {
    key: &'a str,
    addrs: Vec<EntryOut>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    bans: Vec<EntryOut>,
}

#[derive(Serialize)]
struct EntryOut {
    addr: AddrJson,
    src: AddrJson,
    buckets: Vec<u16>,
    attempts: i32,
    bucket_type: u8,
    last_attempt: String,
    last_success: String,
    last_ban_time: String,
}

#[derive(Serialize, Deserialize)]
struct AddrJson {
    id: String,
    ip: String,
    port: u16,
}

impl From<&NetAddress> for AddrJson {
    fn from(addr: &NetAddress) -> Self {
        Self {
            id: addr.id().to_string(),
            ip: addr.ip().to_string(),
            port: addr.port(),
        }
    }
}

impl EntryOut {
    fn new(e: &KnownAddress, buckets: Vec<u16>, bucket_type: u8, ban: Option<SystemTime>) -> Self {
        Self {
            addr: (&e.addr).into(),
            src: (&e.src).into(),
            buckets,
            attempts: i32::try_from(e.attempts).unwrap_or(i32::MAX),
            bucket_type,
            last_attempt: format_time(e.last_attempt),
            last_success: format_time(e.last_success),
            last_ban_time: format_time(ban.or(e.last_ban_time)),
        }
    }
}

/// Go's `RFC3339Nano` in UTC, Go's zero time for "never"; times outside years 1 to 9999
/// (which Go cannot write) are clamped.
pub(crate) fn format_time(t: Option<SystemTime>) -> String {
    let Some(t) = t else {
        return GO_ZERO_TIME.to_owned();
    };
    let nanos: i128 = match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i128::try_from(d.as_nanos()).unwrap_or(i128::MAX),
        Err(e) => -i128::try_from(e.duration().as_nanos()).unwrap_or(i128::MAX),
    };
    let nanos = nanos.clamp(GO_ZERO_NANOS, GO_MAX_NANOS);
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| GO_ZERO_TIME.to_owned())
}

/// Parses a Go time; `None` for Go's zero time (or JSON null).
pub(crate) fn parse_time(s: Option<&str>) -> Result<Option<SystemTime>, String> {
    let Some(s) = s else {
        return Ok(None);
    };
    let t = OffsetDateTime::parse(s, &Rfc3339).map_err(|e| format!("bad time {s:?}: {e}"))?;
    let nanos = t.unix_timestamp_nanos();
    // Go's zero time, and anything before it (year 0), is "never".
    if nanos <= GO_ZERO_NANOS {
        return Ok(None);
    }
    let abs = nanos.unsigned_abs();
    let magnitude = u64::try_from(abs / 1_000_000_000)
        .map(|secs| Duration::new(secs, (abs % 1_000_000_000) as u32))
        .map_err(|_| format!("time {s:?} is out of range"))?;
    let t = if nanos >= 0 {
        SystemTime::UNIX_EPOCH.checked_add(magnitude)
    } else {
        SystemTime::UNIX_EPOCH.checked_sub(magnitude)
    };
    t.map(Some)
        .ok_or_else(|| format!("time {s:?} is out of range"))
}

impl AddrBook {
    /// The book in the reference's `addrbook.json` format (see the [module docs](self)).
    /// Entries are ordered by node ID.
    pub fn to_json(&self) -> Result<Vec<u8>, Error> {
        let addrs = self
            .entries
            .values()
            .map(|e| EntryOut::new(e, e.buckets.clone(), e.kind.code(), None))
            .collect();
        let bans = self
            .bans
            .values()
            .map(|ban| match &ban.entry {
                Some(e) => EntryOut::new(e, Vec::new(), e.kind.code(), Some(ban.until)),
                None => EntryOut {
                    addr: (&ban.addr).into(),
                    src: (&ban.addr).into(),
                    buckets: Vec::new(),
                    attempts: 0,
                    bucket_type: 0,
                    last_attempt: format_time(None),
                    last_success: format_time(None),
                    last_ban_time: format_time(Some(ban.until)),
                },
            })
            .collect();
        let file = FileOut {
            key: &self.key,
            addrs,
            bans,
        };
        let mut out = Vec::new();
        let mut ser = serde_json::Serializer::with_formatter(
            &mut out,
            serde_json::ser::PrettyFormatter::with_indent(b"\t"),
        );
        file.serialize(&mut ser).map_err(|e| Error::Encode {
            reason: e.to_string(),
        })?;
        Ok(out)
    }

    /// Writes the book atomically to `path` (see the [module docs](self)).
    pub fn save_to(&self, path: impl AsRef<Path>) -> Result<(), Error> {
        let path = path.as_ref();
        let json = self.to_json()?;
        write_atomic(path, &json)?;
        info!(path = %path.display(), size = self.len(), "saved address book");
        Ok(())
    }

    /// Writes the book to the file it was loaded from with [`load_file`](Self::load_file);
    /// does nothing if there is none.
    pub fn save(&self) -> Result<(), Error> {
        match &self.file_path {
            Some(path) => self.save_to(path),
            None => Ok(()),
        }
    }

    /// The file this book is saved to.
    pub fn file_path(&self) -> Option<&Path> {
        self.file_path.as_deref()
    }

    /// Replaces the book's contents with those of `addrbook.json` text, keeping every valid
    /// entry. Never fails and never panics: what was wrong is in the report. Our own addresses,
    /// private IDs and the settings of this book apply to the loaded entries.
    pub fn load_json(&mut self, bytes: &[u8]) -> LoadReport {
        let mut report = LoadReport::default();
        if bytes.len() as u64 > MAX_FILE_SIZE {
            report.push(LoadIssue::TooLarge {
                len: bytes.len() as u64,
            });
            self.reset(None);
            return report;
        }
        let mut partial = Partial::default();
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let parsed = TopSeed(&mut partial)
            .deserialize(&mut de)
            .and_then(|()| de.end());
        if let Err(e) = parsed {
            report.push(LoadIssue::Unreadable {
                reason: e.to_string(),
            });
        }

        let key = match partial.key.take() {
            Some(k) if !k.is_empty() && k.len() <= MAX_KEY_LEN => Some(k),
            Some(k) => {
                report.push(LoadIssue::BadKey {
                    reason: format!("{} characters", k.len()),
                });
                None
            }
            None => {
                report.push(LoadIssue::BadKey {
                    reason: "missing".to_owned(),
                });
                None
            }
        };
        self.reset(key);
        for (list, ignored) in [
            ("addrs", partial.addrs_ignored),
            ("bans", partial.bans_ignored),
        ] {
            if ignored > 0 {
                report.push(LoadIssue::TooManyEntries { list, ignored });
            }
        }

        let now = self.now();
        let mut ended_bans = Vec::new();
        for (index, raw) in partial.bans.iter().enumerate() {
            match parse_ban(raw, now) {
                Ok(ban) if ban.until > now => self.insert_ban(ban),
                Ok(ban) => ended_bans.extend(ban.entry),
                Err(reason) => report.push(LoadIssue::BadEntry {
                    list: "bans",
                    index,
                    reason,
                }),
            }
        }
        for (index, raw) in partial.addrs.iter().enumerate() {
            match parse_entry(raw, now) {
                Ok(parsed) => self.insert_parsed(index, parsed, &mut report),
                Err(reason) => report.push(LoadIssue::BadEntry {
                    list: "addrs",
                    index,
                    reason,
                }),
            }
        }
        for entry in ended_bans {
            if !self.entries.contains_key(&entry.addr.id()) {
                self.reinstate_loaded(entry);
            }
        }
        report.loaded = self.len();
        report.bans = self.bans.len();
        report
    }

    /// Reads `path` into the book (a missing file gives an empty book) and remembers it for
    /// [`save`](Self::save). Temporary files of interrupted saves are removed; a damaged file
    /// is renamed aside and a clean one written at once. Fails only if the file exists but
    /// cannot be read, or the clean file cannot be written.
    pub fn load_file(&mut self, path: impl AsRef<Path>) -> Result<LoadReport, Error> {
        let path = path.as_ref();
        self.file_path = Some(path.to_owned());
        let stale = remove_stale_temp_files(path);
        let bytes = match read_bounded(path)? {
            Some(bytes) => bytes,
            None => {
                self.reset(None);
                return Ok(LoadReport {
                    stale_temp_files: stale,
                    ..LoadReport::default()
                });
            }
        };
        let mut report = if bytes.len() as u64 > MAX_FILE_SIZE {
            let mut report = LoadReport::default();
            report.push(LoadIssue::TooLarge {
                len: bytes.len() as u64,
            });
            self.reset(None);
            report
        } else {
            self.load_json(&bytes)
        };
        report.stale_temp_files = stale;
        for issue in &report.issues {
            if issue.is_damage() {
                warn!(path = %path.display(), %issue, "address book file");
            } else {
                info!(path = %path.display(), %issue, "address book file");
            }
        }
        if report.is_damaged() {
            let aside = set_aside(path, self.now())?;
            warn!(
                path = %path.display(),
                aside = %aside.display(),
                kept = report.loaded,
                "address book file was damaged; moved it aside and kept the valid entries"
            );
            report.set_aside = Some(aside);
            self.save_to(path)?;
        }
        info!(path = %path.display(), size = report.loaded, bans = report.bans, "loaded address book");
        Ok(report)
    }

    fn insert_parsed(&mut self, index: usize, parsed: ParsedEntry, report: &mut LoadReport) {
        let ParsedEntry {
            entry,
            buckets,
            repaired,
        } = parsed;
        let addr = entry.addr;
        let id = addr.id();
        if let Err(reason) = self.admissible(&entry) {
            report.push(LoadIssue::Refused { index, reason });
            return;
        }
        if self.entries.contains_key(&id) {
            report.push(LoadIssue::DuplicateId { index, id });
            return;
        }
        if let Some(reason) = repaired {
            report.push(LoadIssue::RepairedEntry {
                index,
                addr,
                reason,
            });
        }
        let kind = entry.kind;
        let buckets = if buckets.is_empty() {
            let fresh = match kind {
                BucketKind::New => self.calc_new_bucket(&addr, &entry.src),
                BucketKind::Old => self.calc_old_bucket(&addr),
            };
            vec![fresh]
        } else {
            buckets
        };
        self.insert_entry(entry);
        let mut placed = false;
        for bucket in buckets {
            placed |= self.add_loaded_ref(&id, bucket);
        }
        if !placed {
            self.remove_entry(&id);
            report.push(LoadIssue::BucketFull { index, addr });
        }
    }

    /// Whether the book's rules allow a loaded entry.
    fn admissible(&self, entry: &KnownAddress) -> Result<(), Error> {
        let addr = entry.addr;
        addr.validate().map_err(|e| Error::InvalidAddress {
            addr,
            reason: e.to_string(),
        })?;
        if self.bans.contains_key(&addr.id()) {
            return Err(Error::Banned { addr });
        }
        if self.is_private(&addr.id()) {
            return Err(Error::PrivateAddress { addr });
        }
        if self.is_private(&entry.src.id()) {
            return Err(Error::PrivateSource { src: entry.src });
        }
        if self.is_our_address(&addr) {
            return Err(Error::OwnAddress { addr });
        }
        if self.config.strict && !addr.is_routable() {
            return Err(Error::NonRoutable { addr });
        }
        let limit = self.config.max_addrs_per_ip;
        if self.ip_count(&addr.ip()) >= limit && !self.entries.contains_key(&addr.id()) {
            return Err(Error::IpLimit { addr, limit });
        }
        Ok(())
    }

    /// Puts the entry of a ban that ended while the node was down back into a new bucket.
    fn reinstate_loaded(&mut self, mut entry: KnownAddress) {
        entry.kind = BucketKind::New;
        if self.admissible(&entry).is_err() {
            return;
        }
        let id = entry.addr.id();
        let bucket = self.calc_new_bucket(&entry.addr, &entry.src);
        self.insert_entry(entry);
        if !self.add_loaded_ref(&id, bucket) {
            self.remove_entry(&id);
        }
    }
}

// ---- reading -------------------------------------------------------------------------------

/// What was collected from the file, up to the first syntax error.
#[derive(Default)]
struct Partial<'a> {
    key: Option<String>,
    addrs: Vec<&'a RawValue>,
    addrs_ignored: usize,
    bans: Vec<&'a RawValue>,
    bans_ignored: usize,
}

/// Reads the top-level object into a [`Partial`], keeping what was read if it fails later.
struct TopSeed<'p, 'a>(&'p mut Partial<'a>);

impl<'de> DeserializeSeed<'de> for TopSeed<'_, 'de> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for TopSeed<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an address book object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(field) = map.next_key::<String>()? {
            match field.as_str() {
                "key" => {
                    let raw: &RawValue = map.next_value()?;
                    self.0.key = serde_json::from_str::<Option<String>>(raw.get())
                        .ok()
                        .flatten();
                }
                "addrs" => map.next_value_seed(ListSeed {
                    items: &mut self.0.addrs,
                    ignored: &mut self.0.addrs_ignored,
                })?,
                "bans" => map.next_value_seed(ListSeed {
                    items: &mut self.0.bans,
                    ignored: &mut self.0.bans_ignored,
                })?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// Reads a list (or null) of raw entries, at most [`MAX_FILE_ENTRIES`] of them.
struct ListSeed<'p, 'a> {
    items: &'p mut Vec<&'a RawValue>,
    ignored: &'p mut usize,
}

impl<'de> DeserializeSeed<'de> for ListSeed<'_, 'de> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ListSeed<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of address book entries")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(raw) = seq.next_element::<&'de RawValue>()? {
            if self.items.len() < MAX_FILE_ENTRIES {
                self.items.push(raw);
            } else {
                *self.ignored += 1;
            }
        }
        Ok(())
    }
}

/// One entry as written (missing fields take Go's zero values).
#[derive(Deserialize)]
struct EntryIn {
    addr: Option<AddrJson>,
    #[serde(default)]
    src: Option<AddrJson>,
    #[serde(default)]
    buckets: Option<Vec<i64>>,
    #[serde(default)]
    attempts: i64,
    #[serde(default)]
    bucket_type: i64,
    #[serde(default)]
    last_attempt: Option<String>,
    #[serde(default)]
    last_success: Option<String>,
    #[serde(default)]
    last_ban_time: Option<String>,
}

struct ParsedEntry {
    entry: KnownAddress,
    /// Usable bucket indices from the file (empty: place afresh).
    buckets: Vec<usize>,
    /// What had to be repaired.
    repaired: Option<String>,
}

fn parse_addr(a: &AddrJson) -> Result<NetAddress, String> {
    let id: NodeId = a.id.parse().map_err(|e| format!("bad node ID: {e}"))?;
    let ip: IpAddr = a.ip.parse().map_err(|_| format!("bad IP {:?}", a.ip))?;
    Ok(NetAddress::new(id, SocketAddr::new(ip, a.port)))
}

fn parse_entry_in(raw: &RawValue) -> Result<EntryIn, String> {
    if raw.get().len() > MAX_ENTRY_SIZE {
        return Err(format!(
            "entry of {} bytes exceeds {MAX_ENTRY_SIZE}",
            raw.get().len()
        ));
    }
    serde_json::from_str(raw.get()).map_err(|e| e.to_string())
}

/// Times in the future (a clock that was wrong) are taken as now.
fn past(t: Option<SystemTime>, now: SystemTime) -> Option<SystemTime> {
    t.map(|t| t.min(now))
}

fn parse_entry(raw: &RawValue, now: SystemTime) -> Result<ParsedEntry, String> {
    let e = parse_entry_in(raw)?;
    let addr = parse_addr(e.addr.as_ref().ok_or("no address")?)?;
    let mut repairs = Vec::new();
    let src = match &e.src {
        Some(src) => parse_addr(src).map_err(|r| format!("source: {r}"))?,
        None => {
            repairs.push("no source, taking the address itself".to_owned());
            addr
        }
    };
    let kind = u8::try_from(e.bucket_type)
        .ok()
        .and_then(BucketKind::from_code)
        .ok_or_else(|| format!("bad bucket type {}", e.bucket_type))?;
    let mut buckets = Vec::new();
    let mut bad = 0;
    for b in e.buckets.iter().flatten() {
        match usize::try_from(*b) {
            Ok(b) if b < kind.bucket_count() && !buckets.contains(&b) => buckets.push(b),
            _ => bad += 1,
        }
    }
    if bad > 0 {
        repairs.push(format!("{bad} unusable bucket indices"));
    }
    let max = match kind {
        BucketKind::New => MAX_NEW_BUCKETS_PER_ADDRESS,
        BucketKind::Old => 1,
    };
    if buckets.len() > max {
        repairs.push(format!("in {} buckets", buckets.len()));
        buckets.truncate(max);
    }
    if e.buckets.as_ref().is_none_or(Vec::is_empty) {
        repairs.push("in no bucket".to_owned());
    }
    let entry = KnownAddress {
        addr,
        src,
        buckets: Vec::new(),
        attempts: u32::try_from(e.attempts.max(0)).unwrap_or(u32::MAX),
        kind,
        last_attempt: past(parse_time(e.last_attempt.as_deref())?, now),
        last_success: past(parse_time(e.last_success.as_deref())?, now),
        last_ban_time: parse_time(e.last_ban_time.as_deref())?,
    };
    Ok(ParsedEntry {
        entry,
        buckets,
        repaired: (!repairs.is_empty()).then(|| repairs.join("; ")),
    })
}

fn parse_ban(raw: &RawValue, now: SystemTime) -> Result<Ban, String> {
    let e = parse_entry_in(raw)?;
    let addr = parse_addr(e.addr.as_ref().ok_or("no address")?)?;
    let until = parse_time(e.last_ban_time.as_deref())?.ok_or("no ban time")?;
    let entry = match u8::try_from(e.bucket_type).ok() {
        Some(0) => None,
        _ => Some(parse_entry(raw, now)?.entry),
    };
    Ok(Ban { addr, until, entry })
}

// ---- files ---------------------------------------------------------------------------------

fn io_error<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

fn dir_of(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// `.addrbook.json.` for `dir/addrbook.json`.
fn temp_prefix(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!(".{name}.")
}

const TEMP_SUFFIX: &str = ".tmp";

/// Reads at most [`MAX_FILE_SIZE`] + 1 bytes; `None` if the file does not exist.
fn read_bounded(path: &Path) -> Result<Option<Vec<u8>>, Error> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error("open", path)(e)),
    };
    let mut bytes = Vec::new();
    file.take(MAX_FILE_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(io_error("read", path))?;
    Ok(Some(bytes))
}

/// Writes `data` to a temporary file next to `path`, flushes it, renames it over `path` and
/// flushes the directory.
fn write_atomic(path: &Path, data: &[u8]) -> Result<(), Error> {
    let dir = dir_of(path);
    let mut tmp = tempfile::Builder::new()
        .prefix(&temp_prefix(path))
        .suffix(TEMP_SUFFIX)
        .tempfile_in(dir)
        .map_err(io_error("create a temporary file in", dir))?;
    tmp.write_all(data).map_err(io_error("write", tmp.path()))?;
    tmp.as_file()
        .sync_all()
        .map_err(io_error("flush", tmp.path()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o644))
            .map_err(io_error("set the permissions of", tmp.path()))?;
    }
    tmp.persist(path)
        .map_err(|e| io_error("rename a temporary file to", path)(e.error))?;
    sync_dir(dir)
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error("flush directory", dir))
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> Result<(), Error> {
    Ok(())
}

/// Removes the temporary files interrupted saves of `path` left behind; returns how many.
fn remove_stale_temp_files(path: &Path) -> usize {
    let prefix = temp_prefix(path);
    let Ok(dir) = fs::read_dir(dir_of(path)) else {
        return 0;
    };
    let mut removed = 0;
    for entry in dir.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(&prefix) && name.ends_with(TEMP_SUFFIX) && name.len() > prefix.len() {
            match fs::remove_file(entry.path()) {
                Ok(()) => {
                    info!(file = %entry.path().display(), "removed the temporary file of an interrupted save");
                    removed += 1;
                }
                Err(e) => {
                    warn!(file = %entry.path().display(), error = %e, "cannot remove stale temporary file")
                }
            }
        }
    }
    removed
}

/// Renames a damaged file to `<path>.corrupt-<unix seconds>` (plus `.N` if taken).
fn set_aside(path: &Path, now: SystemTime) -> Result<PathBuf, Error> {
    let secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let base = format!("{}.corrupt-{secs}", path.display());
    let mut aside = PathBuf::from(&base);
    let mut n = 0;
    while aside.exists() && n < 1000 {
        n += 1;
        aside = PathBuf::from(format!("{base}.{n}"));
    }
    fs::rename(path, &aside).map_err(io_error("move aside", path))?;
    Ok(aside)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_times_round_trip() {
        assert_eq!(format_time(None), GO_ZERO_TIME);
        assert_eq!(parse_time(Some(GO_ZERO_TIME)), Ok(None));
        for s in [
            "2024-01-01T00:00:00Z",
            "2024-01-01T00:00:00.1Z",
            "2024-01-01T00:00:00.123456789Z",
            "1969-07-20T20:17:40.5Z",
            "0001-01-01T00:00:00.000000001Z",
        ] {
            let t = parse_time(Some(s)).unwrap();
            assert_eq!(format_time(t), s);
        }
        // Go writes local times with an offset; they are read as the same instant.
        let local = parse_time(Some("2024-01-01T01:30:00.25+01:30")).unwrap();
        assert_eq!(format_time(local), "2024-01-01T00:00:00.25Z");
        assert!(parse_time(Some("yesterday")).is_err());
        // Beyond what Go can write: clamped.
        let far = SystemTime::UNIX_EPOCH + Duration::from_secs(400_000_000_000);
        assert_eq!(format_time(Some(far)), "9999-12-31T23:59:59.999999999Z");
    }
}
