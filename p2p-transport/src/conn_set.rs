//! The connection set: every connection a transport is setting up or holds, keyed by remote
//! address (the reference's `ConnSet`).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::{Direction, Error};

/// The connections a transport is upgrading or holds, keyed by remote `ip:port`, with their
/// resolved IPs. Cheap to clone (a shared handle).
///
/// An entry is added by [`reserve`](Self::reserve) (which [`admit`](crate::admit) calls
/// before any handshake work) and removed when its [`Reservation`] is dropped: when the
/// upgrade fails, or when the upgraded [`Connection`](crate::Connection) holding it is cleaned
/// up or dropped. The set is what the duplicate-connection and duplicate-IP checks look at;
/// connection filters get a read-only [`ConnSetView`] of it.
///
/// ```
/// use p2p_transport::{ConnSet, Direction};
///
/// let set = ConnSet::new();
/// let remote = "10.0.0.7:41000".parse().unwrap();
/// let reservation = set.reserve(remote, vec![remote.ip()], Direction::Inbound, false)?;
/// assert!(set.contains(&remote) && set.view().contains_ip(remote.ip()));
/// drop(reservation);
/// assert!(set.is_empty());
/// # Ok::<(), p2p_transport::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct ConnSet {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    next_id: u64,
    entries: HashMap<SocketAddr, Entry>,
}

#[derive(Clone, Debug)]
struct Entry {
    id: u64,
    ips: Vec<IpAddr>,
    direction: Direction,
    established: bool,
}

/// One entry of a [`ConnSet`], as [`ConnSet::entries`] reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnSetEntry {
    /// The remote socket address (the key).
    pub addr: SocketAddr,
    /// The remote host's resolved IPs.
    pub ips: Vec<IpAddr>,
    /// Whether we dialed or accepted.
    pub direction: Direction,
    /// Whether the upgrade completed (false while it is in progress).
    pub established: bool,
}

impl ConnSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        lock(&self.inner)
    }

    /// Number of connections being upgraded or held.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.lock().entries.is_empty()
    }

    /// Whether a connection with this remote address is in the set.
    pub fn contains(&self, addr: &SocketAddr) -> bool {
        self.lock().entries.contains_key(addr)
    }

    /// Whether any connection in the set resolved to `ip`.
    pub fn contains_ip(&self, ip: IpAddr) -> bool {
        self.count_ip(ip) > 0
    }

    /// Number of connections in the set that resolved to `ip`.
    pub fn count_ip(&self, ip: IpAddr) -> usize {
        let ip = ip.to_canonical();
        self.lock()
            .entries
            .values()
            .filter(|e| e.ips.contains(&ip))
            .count()
    }

    /// A read-only handle on this set (what connection filters see).
    pub fn view(&self) -> ConnSetView {
        ConnSetView { set: self.clone() }
    }

    /// A snapshot of the entries, in no particular order.
    pub fn entries(&self) -> Vec<ConnSetEntry> {
        self.lock()
            .entries
            .iter()
            .map(|(addr, e)| ConnSetEntry {
                addr: *addr,
                ips: e.ips.clone(),
                direction: e.direction,
                established: e.established,
            })
            .collect()
    }

    /// Adds an entry for a new connection, unless one with the same remote address exists
    /// ([`Error::DuplicateConnection`]) or, when duplicate IPs are not allowed, one of `ips` is
    /// already in the set ([`Error::DuplicateIp`]). Both checks and the insertion happen
    /// atomically, so two racing connections cannot both pass.
    pub fn reserve(
        &self,
        addr: SocketAddr,
        ips: Vec<IpAddr>,
        direction: Direction,
        allow_duplicate_ip: bool,
    ) -> Result<Reservation, Error> {
        let ips: Vec<IpAddr> = ips.into_iter().map(|ip| ip.to_canonical()).collect();
        let mut inner = self.lock();
        if inner.entries.contains_key(&addr) {
            return Err(Error::DuplicateConnection { addr });
        }
        if !allow_duplicate_ip {
            for ip in &ips {
                if inner.entries.values().any(|e| e.ips.contains(ip)) {
                    return Err(Error::DuplicateIp { addr, ip: *ip });
                }
            }
        }
        inner.next_id += 1;
        let id = inner.next_id;
        inner.entries.insert(
            addr,
            Entry {
                id,
                ips,
                direction,
                established: false,
            },
        );
        Ok(Reservation {
            set: Arc::clone(&self.inner),
            addr,
            id,
        })
    }
}

/// A read-only handle on a [`ConnSet`]: the queries, not [`reserve`](ConnSet::reserve). Cheap
/// to clone; it sees the set as it changes. Connection filters get one, so a filter cannot
/// add entries:
///
/// ```compile_fail
/// # use p2p_transport::{ConnSetView, Direction};
/// fn sneak_in(view: &ConnSetView) {
///     let addr = "10.0.0.1:1".parse().unwrap();
///     let _ = view.reserve(addr, vec![addr.ip()], Direction::Inbound, true);
/// }
/// ```
#[derive(Clone, Debug)]
pub struct ConnSetView {
    set: ConnSet,
}

impl ConnSetView {
    /// Number of connections being upgraded or held.
    pub fn len(&self) -> usize {
        self.set.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// Whether a connection with this remote address is in the set.
    pub fn contains(&self, addr: &SocketAddr) -> bool {
        self.set.contains(addr)
    }

    /// Whether any connection in the set resolved to `ip`.
    pub fn contains_ip(&self, ip: IpAddr) -> bool {
        self.set.contains_ip(ip)
    }

    /// Number of connections in the set that resolved to `ip`.
    pub fn count_ip(&self, ip: IpAddr) -> usize {
        self.set.count_ip(ip)
    }

    /// A snapshot of the entries, in no particular order.
    pub fn entries(&self) -> Vec<ConnSetEntry> {
        self.set.entries()
    }
}

/// A connection's entry in a [`ConnSet`]; dropping it removes the entry.
#[derive(Debug)]
pub struct Reservation {
    set: Arc<Mutex<Inner>>,
    addr: SocketAddr,
    id: u64,
}

impl Reservation {
    /// The remote address the entry is for.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Marks the connection as established (upgraded).
    pub fn set_established(&self) {
        if let Some(e) = lock(&self.set).entries.get_mut(&self.addr) {
            if e.id == self.id {
                e.established = true;
            }
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut inner = lock(&self.set);
        if inner
            .entries
            .get(&self.addr)
            .is_some_and(|e| e.id == self.id)
        {
            inner.entries.remove(&self.addr);
        }
    }
}

fn lock(m: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn duplicate_address_and_ip() {
        let set = ConnSet::new();
        let a = sa("10.0.0.1:1000");
        let r = set
            .reserve(a, vec![a.ip()], Direction::Inbound, false)
            .unwrap();
        assert!(matches!(
            set.reserve(a, vec![a.ip()], Direction::Outbound, true),
            Err(Error::DuplicateConnection { addr }) if addr == a
        ));
        let b = sa("10.0.0.1:1001");
        assert!(matches!(
            set.reserve(b, vec![b.ip()], Direction::Inbound, false),
            Err(Error::DuplicateIp { ip, .. }) if ip == a.ip()
        ));
        let rb = set
            .reserve(b, vec![b.ip()], Direction::Inbound, true)
            .unwrap();
        assert_eq!(set.count_ip(a.ip()), 2);
        r.set_established();
        let entries = set.entries();
        assert_eq!(entries.len(), 2);
        assert!(entries.iter().any(|e| e.addr == a && e.established));
        drop(r);
        drop(rb);
        assert!(set.is_empty());
    }

    #[test]
    fn ipv4_mapped_is_the_same_ip() {
        let set = ConnSet::new();
        let v4 = sa("10.0.0.1:1000");
        let _r = set
            .reserve(v4, vec![v4.ip()], Direction::Inbound, false)
            .unwrap();
        let mapped = sa("[::ffff:10.0.0.1]:2000");
        assert!(matches!(
            set.reserve(mapped, vec![mapped.ip()], Direction::Inbound, false),
            Err(Error::DuplicateIp { .. })
        ));
    }

    #[test]
    fn stale_reservation_does_not_remove_a_newer_entry() {
        let set = ConnSet::new();
        let a = sa("10.0.0.1:1000");
        let r1 = set
            .reserve(a, vec![a.ip()], Direction::Inbound, true)
            .unwrap();
        // Simulate the entry being replaced (cannot happen through `reserve` while r1 lives,
        // but the id check keeps a late drop from removing someone else's entry).
        lock(&set.inner).entries.clear();
        let _r2 = set
            .reserve(a, vec![a.ip()], Direction::Inbound, true)
            .unwrap();
        drop(r1);
        assert!(set.contains(&a));
    }
}
