//! Eclipse attacks on the address book: an attacker with many addresses in few networks must
//! not crowd out what the book knows.

mod common;

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

use common::*;
use p2p_pex::params::{NEW_BUCKET_COUNT, NEW_BUCKET_SIZE, NEW_BUCKETS_PER_GROUP};
use p2p_pex::{AddrBook, BucketKind, DEFAULT_MAX_ADDRS_PER_IP};
use p2p_types::NetAddress;
use rand::RngExt;

const HONEST: usize = 3000;
const HONEST_OLD: usize = 300;
const ATTACK: usize = 10_000;
/// What one source group may occupy: 32 of the 256 new buckets.
const SHARE: usize = NEW_BUCKETS_PER_GROUP as usize * NEW_BUCKET_SIZE;

/// A book with `HONEST` honest addresses from sources all over the address space, the first
/// `HONEST_OLD` of them connected to (old).
fn honest_book(seed: u64) -> (AddrBook, Vec<NetAddress>) {
    let (mut book, _) = book(seed);
    let mut rng = rng(seed);
    let mut honest = Vec::new();
    while honest.len() < HONEST {
        let (a, s) = (random_addr(&mut rng), random_addr(&mut rng));
        if book.add_address(&a, &s).is_ok() {
            honest.push(a);
        }
    }
    for a in &honest[..HONEST_OLD] {
        book.mark_good(&a.id());
    }
    (book, honest)
}

fn in_attacker_net(a: &NetAddress) -> bool {
    matches!(a.ip(), IpAddr::V4(v4) if v4.octets()[..2] == [45, 67])
}

fn report(book: &AddrBook, honest: &[NetAddress]) -> (usize, usize, usize) {
    let attacker = book.entries().filter(|e| in_attacker_net(e.addr())).count();
    let honest_kept = honest.iter().filter(|a| book.has_address(a)).count();
    let old_kept = honest[..HONEST_OLD]
        .iter()
        .filter(|a| book.is_good(a))
        .count();
    (attacker, honest_kept, old_kept)
}

/// 10 000 addresses under fresh IDs in one /16, announced by sources in that same /16 (the
/// attacker gossiping its own network, or inbound connections from it).
#[test]
fn ten_thousand_addresses_from_one_slash_16_get_at_most_their_share() {
    let (mut book, honest) = honest_book(1);
    let mut rng = rng(2);
    let mut new_buckets = BTreeSet::new();
    for _ in 0..ATTACK {
        let ip = Ipv4Addr::new(45, 67, rng.random(), rng.random_range(1..255));
        let a = addr(random_id(&mut rng), IpAddr::V4(ip), 26656);
        let src_ip = Ipv4Addr::new(45, 67, rng.random(), rng.random_range(1..255));
        let src = addr(random_id(&mut rng), IpAddr::V4(src_ip), 26656);
        let _ = book.add_address(&a, &src);
        new_buckets.insert(book.calc_new_bucket(&a, &src));
    }
    book.verify_consistency().unwrap();
    let (attacker, honest_kept, old_kept) = report(&book, &honest);
    // One address group announced by one source group maps to a single new bucket.
    assert_eq!(new_buckets.len(), 1);
    assert!(attacker <= NEW_BUCKET_SIZE, "attacker holds {attacker}");
    // Honest addresses outside those buckets are untouched, and no old one was displaced.
    assert_eq!(old_kept, HONEST_OLD);
    assert!(
        honest_kept * 100 >= HONEST * 80,
        "kept {honest_kept} of {HONEST}"
    );
    // Picking goes to a random non-empty bucket first: the attacker's 32 are few of them.
    let non_empty = (0..NEW_BUCKET_COUNT)
        .filter(|&b| book.bucket_len(BucketKind::New, b) > 0)
        .count();
    assert!(non_empty > 200, "{non_empty} non-empty new buckets");
    println!(
        "one /16: attacker holds {attacker} entries in {} buckets; honest kept {honest_kept}/{HONEST}, old kept {old_kept}/{HONEST_OLD}",
        new_buckets.len()
    );
}

/// tendermint#4846: one host inserting itself 10 000 times under fresh IDs (as inbound peers
/// do: an inbound peer is its own source).
#[test]
fn ten_thousand_fresh_ids_from_one_ip_hold_a_handful_of_entries() {
    let (mut book, honest) = honest_book(3);
    let mut rng = rng(4);
    let host = IpAddr::V4(Ipv4Addr::new(45, 67, 1, 2));
    let mut refused = 0;
    for i in 0..ATTACK {
        let a = addr(random_id(&mut rng), host, 20_000 + (i % 30_000) as u16);
        if book.add_address(&a, &a).is_err() {
            refused += 1;
        }
    }
    book.verify_consistency().unwrap();
    let (attacker, honest_kept, old_kept) = report(&book, &honest);
    assert_eq!(attacker, DEFAULT_MAX_ADDRS_PER_IP);
    assert_eq!(refused, ATTACK - DEFAULT_MAX_ADDRS_PER_IP);
    assert_eq!(old_kept, HONEST_OLD);
    assert!(honest_kept >= HONEST - DEFAULT_MAX_ADDRS_PER_IP);
}

/// The attacker's addresses relayed by many honest-looking sources in different networks:
/// each source group files the attacker's /16 in one bucket of its 32.
#[test]
fn one_slash_16_relayed_by_many_source_groups_stays_bounded_per_source() {
    let (mut book, honest) = honest_book(5);
    let mut rng = rng(6);
    let sources: Vec<NetAddress> = (0..20).map(|_| random_addr(&mut rng)).collect();
    let groups: BTreeSet<String> = sources
        .iter()
        .map(|s| p2p_pex::group_key(s, true))
        .collect();
    for i in 0..ATTACK {
        let ip = Ipv4Addr::new(45, 67, rng.random(), rng.random_range(1..255));
        let a = addr(random_id(&mut rng), IpAddr::V4(ip), 26656);
        let _ = book.add_address(&a, &sources[i % sources.len()]);
    }
    book.verify_consistency().unwrap();
    let (attacker, _, old_kept) = report(&book, &honest);
    assert!(
        attacker <= groups.len() * NEW_BUCKET_SIZE,
        "attacker holds {attacker}"
    );
    assert_eq!(old_kept, HONEST_OLD);
}

/// Sources in one /16 announcing 10 000 fake addresses spread over the whole IPv4 space: what
/// one source group says reaches at most 32 of the 256 new buckets.
#[test]
fn one_source_slash_16_announcing_anything_gets_at_most_32_buckets() {
    let (mut book, honest) = honest_book(7);
    let mut rng = rng(8);
    let mut new_buckets = BTreeSet::new();
    let mut fakes = Vec::new();
    for _ in 0..ATTACK {
        let a = random_addr(&mut rng);
        let src_ip = Ipv4Addr::new(45, 67, rng.random(), rng.random_range(1..255));
        let src = addr(random_id(&mut rng), IpAddr::V4(src_ip), 26656);
        if book.add_address(&a, &src).is_ok() {
            fakes.push(a);
        }
        new_buckets.insert(book.calc_new_bucket(&a, &src));
    }
    book.verify_consistency().unwrap();
    let fakes_kept = fakes.iter().filter(|a| book.has_address(a)).count();
    let (_, honest_kept, old_kept) = report(&book, &honest);
    assert!(
        new_buckets.len() <= NEW_BUCKETS_PER_GROUP as usize,
        "{}",
        new_buckets.len()
    );
    assert!(fakes_kept <= SHARE, "fakes hold {fakes_kept}");
    assert!(
        fakes_kept <= book.len() / 2,
        "fakes hold {fakes_kept} of {}",
        book.len()
    );
    assert_eq!(old_kept, HONEST_OLD);
    // Only the honest addresses in those 32 buckets (an eighth of the table) can be displaced.
    assert!(
        honest_kept * 100 >= HONEST * 80,
        "kept {honest_kept} of {HONEST}"
    );
    println!(
        "one source /16: fakes hold {fakes_kept} entries in {} buckets; honest kept {honest_kept}/{HONEST}",
        new_buckets.len()
    );
}
