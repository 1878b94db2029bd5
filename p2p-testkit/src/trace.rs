//! The record of a simulation: every connection event, every chunk of bytes delivered, every
//! fault and every message a test chooses to note, each stamped with the virtual time since
//! the trace started, folded into one SHA-256 hash (and optionally kept as a list).
//!
//! Two runs are the same when their [`TraceHash`]es are equal. The hash covers the order of
//! the events, their virtual timestamps (in nanoseconds) and their contents; with
//! [`Trace::hash_payloads`] on (the default) it also covers every byte delivered, so two runs
//! agree only if every handshake drew the same ephemeral keys.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! use p2p_testkit::trace::Trace;
//!
//! let (a, b) = (Trace::new(), Trace::new());
//! for t in [&a, &b] {
//!     t.keep_events(true);
//!     t.note("n1", "hello");
//! }
//! assert_eq!(a.hash(), b.hash());
//! assert_eq!(a.events()[0].to_string(), "0.000000000 n1: hello");
//! # }
//! ```

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::time::Instant;

/// Which way bytes travel on a connection: from its dialer to its listener, or back.
// Two directions, forever.
#[allow(clippy::exhaustive_enums)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Way {
    /// From the end that connected to the listener's end.
    Forth,
    /// From the listener's end to the end that connected.
    Back,
}

impl fmt::Display for Way {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Forth => ">",
            Self::Back => "<",
        })
    }
}

/// One thing that happened.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A connection was opened from `from` to the listener at `to`.
    Connect {
        /// The connection's number in this network (from 1, in order of connection).
        conn: u64,
        /// The dialer's address.
        from: SocketAddr,
        /// The listener's address.
        to: SocketAddr,
    },
    /// A connection attempt failed at once.
    Refused {
        /// The dialing host.
        from: IpAddr,
        /// The address dialed.
        to: SocketAddr,
        /// Why.
        why: &'static str,
    },
    /// A reader took `len` bytes off connection `conn`.
    Deliver {
        /// The connection.
        conn: u64,
        /// Which way the bytes went.
        way: Way,
        /// How many bytes.
        len: usize,
    },
    /// One end of connection `conn` stopped writing (shut down or dropped): the other end
    /// reads end of stream once it has read what was sent.
    Close {
        /// The connection.
        conn: u64,
        /// The writing side that stopped: `Forth` is the dialer's.
        way: Way,
    },
    /// Connection `conn` was reset: both ends fail with `ConnectionReset`.
    Reset {
        /// The connection.
        conn: u64,
    },
    /// A fault was injected or lifted (latency, partition, stall, crash, ...).
    Fault {
        /// What, in words.
        what: String,
    },
    /// Something a test or node recorded with [`Trace::note`] or [`Trace::message`].
    Note {
        /// Who noted it (a node name, an address).
        who: String,
        /// What.
        what: String,
    },
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connect { conn, from, to } => write!(f, "#{conn} connect {from} -> {to}"),
            Self::Refused { from, to, why } => write!(f, "refused {from} -> {to}: {why}"),
            Self::Deliver { conn, way, len } => write!(f, "#{conn} {way} {len} bytes"),
            Self::Close { conn, way } => write!(f, "#{conn} {way} closed"),
            Self::Reset { conn } => write!(f, "#{conn} reset"),
            Self::Fault { what } => write!(f, "fault: {what}"),
            Self::Note { who, what } => write!(f, "{who}: {what}"),
        }
    }
}

/// An [`Event`] with its virtual time since the trace started.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TraceEvent {
    /// When, on tokio's clock, since the trace was made.
    pub at: Duration,
    /// What.
    pub event: Event,
}

impl fmt::Display for TraceEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{:09} {}",
            self.at.as_secs(),
            self.at.subsec_nanos(),
            self.event
        )
    }
}

/// The SHA-256 of a trace (see the [module docs](self)). Displays as hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub struct TraceHash(pub [u8; 32]);

impl fmt::Display for TraceHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for TraceHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceHash({self})")
    }
}

/// A shared, append-only record of a run (see the [module docs](self)). Cheap to clone:
/// clones append to the same record.
///
/// Make it inside the tokio runtime that runs the simulation, with its clock paused, so that
/// timestamps are virtual.
#[derive(Clone)]
pub struct Trace {
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    /// The runtime whose clock timestamps come from, so that events recorded from outside it
    /// (a test injecting a fault between runs) still get virtual times.
    clock: Option<tokio::runtime::Handle>,
    start: Instant,
    hasher: Sha256,
    count: u64,
    bytes: u64,
    payloads: bool,
    events: Option<Vec<TraceEvent>>,
}

impl Inner {
    fn elapsed(&self) -> Duration {
        let now = match &self.clock {
            Some(handle) => {
                let _enter = handle.enter();
                Instant::now()
            }
            None => Instant::now(),
        };
        now.saturating_duration_since(self.start)
    }
}

impl fmt::Debug for Trace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.lock();
        f.debug_struct("Trace")
            .field("events", &inner.count)
            .field("bytes", &inner.bytes)
            .finish_non_exhaustive()
    }
}

impl Default for Trace {
    fn default() -> Self {
        Self::new()
    }
}

impl Trace {
    /// An empty trace starting now, hashing payloads, keeping no list of events. Timestamps
    /// come from the clock of the runtime this is called in (if any), wherever events are
    /// recorded from.
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                clock: tokio::runtime::Handle::try_current().ok(),
                start: Instant::now(),
                hasher: Sha256::new(),
                count: 0,
                bytes: 0,
                payloads: true,
                events: None,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the bytes of every delivery go into the hash (default `true`). Turn it off to
    /// compare runs whose bytes are meant to differ (fresh random handshake keys) but whose
    /// timing and sizes should not.
    pub fn hash_payloads(&self, on: bool) -> &Self {
        self.lock().payloads = on;
        self
    }

    /// Whether to keep every event in a list (default `false`), for [`events`](Self::events)
    /// and for finding where two runs part.
    pub fn keep_events(&self, on: bool) -> &Self {
        let mut inner = self.lock();
        if on {
            inner.events.get_or_insert_with(Vec::new);
        } else {
            inner.events = None;
        }
        self
    }

    /// Records `event` now.
    pub fn record(&self, event: Event) {
        self.record_with(event, &[]);
    }

    /// Records `event` now, with `payload` hashed after it if payloads are hashed.
    pub fn record_with(&self, event: Event, payload: &[u8]) {
        let mut inner = self.lock();
        let at = inner.elapsed();
        let entry = TraceEvent { at, event };
        let line = format!("{entry}\n");
        inner.hasher.update(line.as_bytes());
        if inner.payloads && !payload.is_empty() {
            inner.hasher.update(payload);
        }
        inner.count += 1;
        inner.bytes += payload.len() as u64;
        if let Some(events) = &mut inner.events {
            events.push(entry);
        }
    }

    /// Records a note: `who` did or saw `what`.
    pub fn note(&self, who: impl fmt::Display, what: impl fmt::Display) {
        self.record(Event::Note {
            who: who.to_string(),
            what: what.to_string(),
        });
    }

    /// Records that `to` received `message` from `from` on `channel` (its length and, when
    /// payloads are hashed, its bytes).
    pub fn message(
        &self,
        to: impl fmt::Display,
        from: impl fmt::Display,
        channel: u8,
        message: &[u8],
    ) {
        self.record_with(
            Event::Note {
                who: to.to_string(),
                what: format!("from {from} on {channel:#04x}: {} bytes", message.len()),
            },
            message,
        );
    }

    /// The hash of everything recorded so far.
    pub fn hash(&self) -> TraceHash {
        TraceHash(self.lock().hasher.clone().finalize().into())
    }

    /// How many events were recorded.
    pub fn len(&self) -> u64 {
        self.lock().count
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many payload bytes were recorded (delivered bytes and noted messages).
    pub fn payload_bytes(&self) -> u64 {
        self.lock().bytes
    }

    /// The events kept so far (empty unless [`keep_events`](Self::keep_events) is on).
    pub fn events(&self) -> Vec<TraceEvent> {
        self.lock().events.clone().unwrap_or_default()
    }

    /// The virtual time since the trace started.
    pub fn elapsed(&self) -> Duration {
        self.lock().elapsed()
    }
}

/// Where two event lists part: the index of the first difference and the two events there
/// (`None` past the end of a list), or `None` if they are equal.
pub fn first_difference(
    a: &[TraceEvent],
    b: &[TraceEvent],
) -> Option<(usize, Option<TraceEvent>, Option<TraceEvent>)> {
    let n = a.len().max(b.len());
    (0..n).find_map(|i| {
        let (x, y) = (a.get(i), b.get(i));
        (x != y).then(|| (i, x.cloned(), y.cloned()))
    })
}
