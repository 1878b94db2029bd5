//! The address-book seam: what the switch needs of an address book, so that `p2p-pex` (or
//! anything else) can provide one. A switch without a book works; it then learns and forgets
//! nothing.

use p2p_types::{NetAddress, NodeId};

use crate::error::AddAddressError;

/// What the switch asks of an address book (the reference's `AddrBook` interface). All calls
/// are quick and must not block on I/O for long (`save` may write a file).
///
/// The switch calls:
/// - [`add_address`](Self::add_address) for each address given to
///   [`dial_peers_async`](crate::SwitchHandle::dial_peers_async), with our address as the
///   source, then [`save`](Self::save);
/// - [`remove_address`](Self::remove_address) and [`add_our_address`](Self::add_our_address)
///   when a dial or an inbound connection turns out to reach ourselves;
/// - [`mark_good`](Self::mark_good) from [`mark_peer_as_good`](crate::SwitchHandle::mark_peer_as_good);
/// - [`add_private_ids`](Self::add_private_ids) with the private peer IDs. The switch never
///   hands the book an address of a private peer itself.
pub trait AddressBook: Send + Sync + 'static {
    /// Adds `addr`, learned from `src`.
    fn add_address(&self, addr: &NetAddress, src: &NetAddress) -> Result<(), AddAddressError>;
    /// Forgets `addr`.
    fn remove_address(&self, addr: &NetAddress);
    /// Whether the book holds `addr`.
    fn has_address(&self, addr: &NetAddress) -> bool;
    /// Remembers `addr` as one of our own, never to be dialed or handed out.
    fn add_our_address(&self, addr: &NetAddress);
    /// Whether `addr` is one of our own.
    fn is_our_address(&self, addr: &NetAddress) -> bool;
    /// The peer did something useful: keep its address.
    fn mark_good(&self, id: NodeId);
    /// IDs whose addresses must never be stored or handed out.
    fn add_private_ids(&self, ids: &[NodeId]);
    /// Persists the book.
    fn save(&self);
}
