//! Helpers shared by the integration tests.

#![allow(dead_code, unreachable_pub)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use p2p_pex::{AddrBook, AddrBookConfig, ManualClock};
use p2p_types::{NetAddress, NodeId};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// 2023-11-14T22:13:20Z.
pub fn start_time() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

pub fn clock() -> ManualClock {
    ManualClock::new(start_time())
}

pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// A strict book with a seeded generator and a manual clock.
pub fn book(seed: u64) -> (AddrBook, ManualClock) {
    book_with(AddrBookConfig::default(), seed)
}

pub fn book_with(config: AddrBookConfig, seed: u64) -> (AddrBook, ManualClock) {
    let clock = clock();
    (
        AddrBook::with_seed(config, seed, Arc::new(clock.clone())),
        clock,
    )
}

pub fn random_id(rng: &mut StdRng) -> NodeId {
    NodeId::new(rng.random())
}

pub fn addr(id: NodeId, ip: IpAddr, port: u16) -> NetAddress {
    NetAddress::new(id, SocketAddr::new(ip, port))
}

/// A random publicly routable IPv4 address with a fresh ID (like the reference's
/// `randIPv4Address`).
pub fn random_addr(rng: &mut StdRng) -> NetAddress {
    loop {
        let ip = Ipv4Addr::new(
            rng.random_range(1..255),
            rng.random_range(0..255),
            rng.random_range(0..255),
            rng.random_range(0..255),
        );
        let a = addr(random_id(rng), IpAddr::V4(ip), rng.random_range(1..65535));
        if a.is_routable() {
            return a;
        }
    }
}

/// `n` pairs of random routable (address, source).
pub fn random_pairs(rng: &mut StdRng, n: usize) -> Vec<(NetAddress, NetAddress)> {
    (0..n)
        .map(|_| (random_addr(rng), random_addr(rng)))
        .collect()
}

/// A book with `n_old` good and `n_new` new random addresses.
pub fn book_with_old_and_new(seed: u64, n_old: usize, n_new: usize) -> AddrBook {
    let (mut book, _) = book(seed);
    let mut rng = rng(seed ^ 0x5eed);
    for (a, s) in random_pairs(&mut rng, n_old) {
        book.add_address(&a, &s).unwrap();
        book.mark_good(&a.id());
    }
    for (a, s) in random_pairs(&mut rng, n_new) {
        book.add_address(&a, &s).unwrap();
    }
    assert_eq!((book.num_old(), book.num_new()), (n_old, n_new));
    book
}
