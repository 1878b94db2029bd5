//! The address book's behaviour: the reference's `addrbook_test.go`, ported, and the places
//! where this crate does better.

mod common;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use common::*;
use p2p_pex::params::{
    MAX_GET_SELECTION, NEW_BUCKET_SIZE, NEW_BUCKETS_PER_GROUP, OLD_BUCKET_SIZE,
    OLD_BUCKETS_PER_GROUP,
};
use p2p_pex::{AddOutcome, AddrBook, AddrBookConfig, BucketKind, Clock, Error};
use p2p_types::NetAddress;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn pick_address_follows_the_bias_and_the_available_kinds() {
    let (mut book, _) = book(1);
    assert!(book.is_empty());
    assert_eq!(book.pick_address(50), None);

    let mut rng = rng(1);
    let (a, s) = (random_addr(&mut rng), random_addr(&mut rng));
    book.add_address(&a, &s).unwrap();
    // Only new addresses: any bias finds it.
    for bias in [0, 50, 100] {
        assert_eq!(book.pick_address(bias), Some(a));
    }
    // Only old addresses.
    book.mark_good(&a.id());
    assert_eq!(book.pick_address(0), Some(a));
    assert_eq!(book.pick_address(50), Some(a));
    // Fully biased towards new with no new address: nothing.
    assert_eq!(book.pick_address(100), None);
    book.verify_consistency().unwrap();
}

#[test]
fn pick_address_bias_shapes_the_mix() {
    let mut book = book_with_old_and_new(2, 100, 100);
    let olds = |book: &mut AddrBook, bias| {
        (0..2000)
            .filter(|_| {
                let a = book.pick_address(bias).unwrap();
                book.is_good(&a)
            })
            .count()
    };
    // Equal counts: old is chosen with odds (100 - bias) : bias.
    let at_10 = olds(&mut book, 10);
    let at_90 = olds(&mut book, 90);
    assert!((1650..=1950).contains(&at_10), "{at_10}");
    assert!((50..=350).contains(&at_90), "{at_90}");
}

#[test]
fn lookup_remove_and_duplicates() {
    let (mut book, _) = book(3);
    let mut rng = rng(3);
    let pairs = random_pairs(&mut rng, 100);
    let other_src = random_addr(&mut rng);
    for (a, s) in &pairs {
        assert_eq!(book.add_address(a, s).unwrap(), AddOutcome::Added);
        assert!(book.has_address(a));
        // Duplicates, from the same and from another source, do not add entries.
        assert_ne!(book.add_address(a, s).unwrap(), AddOutcome::Added);
        assert_ne!(book.add_address(a, &other_src).unwrap(), AddOutcome::Added);
    }
    assert_eq!(book.len(), 100);
    book.verify_consistency().unwrap();

    let (a, _) = pairs[0];
    book.remove_address(&a);
    assert!(!book.has_address(&a));
    assert_eq!(book.len(), 99);
    book.remove_address(&random_addr(&mut rng));
    assert_eq!(book.len(), 99);
    book.verify_consistency().unwrap();
}

#[test]
fn promoting_half_keeps_the_size_and_selections_stay_within_the_book() {
    let (mut book, _) = book(4);
    let mut rng = rng(4);
    let pairs = random_pairs(&mut rng, 100);
    for (a, s) in &pairs {
        book.add_address(a, s).unwrap();
    }
    for (a, _) in &pairs {
        book.mark_attempt(a);
    }
    for (a, _) in pairs.iter().step_by(2) {
        book.mark_good(&a.id());
    }
    assert_eq!(book.len(), 100);
    assert_eq!((book.num_old(), book.num_new()), (50, 50));
    assert_eq!(book.get_selection().len(), 32);
    assert_eq!(book.get_selection_with_bias(30).len(), 32);
    book.verify_consistency().unwrap();
}

#[test]
fn empty_ignores_our_addresses_and_private_ids() {
    let (mut book, _) = book(5);
    let mut rng = rng(5);
    assert!(book.is_empty());
    book.add_our_address(&random_addr(&mut rng));
    book.add_private_ids((0..5).map(|_| random_id(&mut rng)));
    assert!(book.is_empty());
    book.add_address(&random_addr(&mut rng), &random_addr(&mut rng))
        .unwrap();
    assert!(!book.is_empty());
}

#[test]
fn private_peers_are_neither_stored_nor_sources() {
    let (mut book, _) = book(6);
    let mut rng = rng(6);
    let private: Vec<NetAddress> = (0..10).map(|_| random_addr(&mut rng)).collect();
    book.add_private_ids(private.iter().map(NetAddress::id));
    for a in &private {
        assert!(matches!(
            book.add_address(a, a),
            Err(Error::PrivateAddress { .. })
        ));
    }
    let fresh = random_addr(&mut rng);
    assert!(matches!(
        book.add_address(&fresh, &private[0]),
        Err(Error::PrivateSource { .. })
    ));
    assert!(book.is_empty());

    // Declaring an ID private removes what the book already had of it.
    let (a, s) = (random_addr(&mut rng), random_addr(&mut rng));
    book.add_address(&a, &s).unwrap();
    book.add_private_ids([a.id()]);
    assert!(!book.has_address(&a));
    assert!(book.get_selection().is_empty());
    book.verify_consistency().unwrap();
}

#[test]
fn our_own_addresses_are_refused_by_id_and_by_ip_and_port() {
    let (mut book, _) = book(7);
    let mut rng = rng(7);
    let ours = random_addr(&mut rng);
    let src = random_addr(&mut rng);
    // Known before we learn it is ours: removed.
    book.add_address(&ours, &src).unwrap();
    book.add_our_address(&ours);
    assert!(!book.has_address(&ours));
    assert!(matches!(
        book.add_address(&ours, &src),
        Err(Error::OwnAddress { .. })
    ));
    // Same ID elsewhere, or another ID on our IP and port.
    let same_id = addr(ours.id(), ip("8.8.4.4"), 1000);
    let same_socket = addr(random_id(&mut rng), ours.ip(), ours.port());
    assert!(matches!(
        book.add_address(&same_id, &src),
        Err(Error::OwnAddress { .. })
    ));
    assert!(matches!(
        book.add_address(&same_socket, &src),
        Err(Error::OwnAddress { .. })
    ));
    assert!(book.is_our_address(&same_socket));
}

#[test]
fn strict_books_refuse_private_and_local_addresses() {
    let (mut strict, _) = book(8);
    let mut loose_config = AddrBookConfig::default();
    loose_config.routability_strict(false);
    let (mut loose, _) = book_with(loose_config, 8);
    let mut rng = rng(8);
    let src = random_addr(&mut rng);
    for s in [
        "10.0.0.1",
        "192.168.1.1",
        "172.16.0.9",
        "127.0.0.1",
        "169.254.3.3",
        "fc00::1",
    ] {
        let a = addr(random_id(&mut rng), ip(s), 26656);
        assert!(
            matches!(strict.add_address(&a, &src), Err(Error::NonRoutable { .. })),
            "{s}"
        );
        assert_eq!(
            loose.add_address(&a, &src).unwrap(),
            AddOutcome::Added,
            "{s}"
        );
    }
    // Never dialable, whatever the mode.
    for s in ["0.0.0.0", "255.255.255.255", "2001:db8::1"] {
        let a = addr(random_id(&mut rng), ip(s), 26656);
        assert!(
            matches!(
                loose.add_address(&a, &src),
                Err(Error::InvalidAddress { .. })
            ),
            "{s}"
        );
    }
    assert!(strict.is_empty());
}

/// The reference's `TestAddrBookAddDoesNotOverwriteOldIP` (tendermint#1581).
#[test]
fn add_does_not_overwrite_old_ip() {
    let (mut book, _) = book(9);
    let id = "678503e6c8f50db7279c7da3cb9b072aac4bc0d5";
    let real: NetAddress = format!("{id}@1.1.1.1:26656").parse().unwrap();
    let attempt: NetAddress = format!("{id}@2.2.2.2:26656").parse().unwrap();
    let src: NetAddress = "b0dd378c3fbc4c156cd6d302a799f0d2e4227201@159.89.121.174:26656"
        .parse()
        .unwrap();
    book.add_address(&real, &src).unwrap();
    book.mark_attempt(&real);
    book.mark_good(&real.id());
    assert_eq!(
        book.add_address(&real, &src).unwrap(),
        AddOutcome::AlreadyKnown
    );
    for _ in 0..10 {
        assert_eq!(
            book.add_address(&attempt, &src).unwrap(),
            AddOutcome::AlreadyKnown
        );
    }
    for _ in 0..10 {
        assert_eq!(book.get_selection(), vec![real]);
    }
    assert_eq!(book.get(&real.id()).unwrap().addr(), &real);
}

#[test]
fn gossip_does_not_change_the_address_of_a_new_entry_either() {
    let (mut book, _) = book(10);
    let mut rng = rng(10);
    let a = random_addr(&mut rng);
    book.add_address(&a, &random_addr(&mut rng)).unwrap();
    for _ in 0..50 {
        let moved = addr(a.id(), random_addr(&mut rng).ip(), 26656);
        assert_eq!(
            book.add_address(&moved, &random_addr(&mut rng)).unwrap(),
            AddOutcome::AlreadyKnown
        );
    }
    assert_eq!(book.get(&a.id()).unwrap().addr(), &a);
    assert_eq!(book.get(&a.id()).unwrap().buckets().len(), 1);
}

#[test]
fn an_address_heard_often_reaches_at_most_four_new_buckets() {
    let (mut book, _) = book(11);
    let mut rng = rng(11);
    let a = random_addr(&mut rng);
    book.add_address(&a, &random_addr(&mut rng)).unwrap();
    let mut grew = 0;
    for _ in 0..2000 {
        if book.add_address(&a, &random_addr(&mut rng)).unwrap() == AddOutcome::AddedToBucket {
            grew += 1;
        }
    }
    assert_eq!(grew, 3);
    assert_eq!(book.get(&a.id()).unwrap().buckets().len(), 4);
    assert_eq!(book.len(), 1);
    book.verify_consistency().unwrap();
}

/// The reference's `TestBanBadPeers`, on a manual clock.
#[test]
fn ban_and_reinstatement() {
    let (mut book, clock) = book(12);
    let mut rng = rng(12);
    let a = random_addr(&mut rng);
    book.add_address(&a, &a).unwrap();
    book.mark_bad(&a, Duration::from_secs(1));
    assert!(!book.has_address(&a));
    assert!(book.is_banned(&a));
    assert!(matches!(
        book.add_address(&a, &a),
        Err(Error::Banned { .. })
    ));
    // Still banned: nothing to reinstate.
    assert_eq!(book.reinstate_bad_peers(), 0);
    assert!(book.is_empty());

    clock.advance(Duration::from_secs(1));
    assert!(!book.is_banned(&a));
    assert_eq!(book.reinstate_bad_peers(), 1);
    assert_eq!(book.len(), 1);
    assert!(book.has_address(&a));
    assert!(!book.is_good(&a));
    book.verify_consistency().unwrap();
}

#[test]
fn bans_extend_never_shorten_and_cover_unknown_ids() {
    let (mut book, clock) = book(13);
    let mut rng = rng(13);
    let a = random_addr(&mut rng);
    book.mark_bad(&a, Duration::from_secs(100));
    book.mark_bad(&a, Duration::from_secs(10));
    clock.advance(Duration::from_secs(50));
    assert!(book.is_banned(&a));
    assert!(book.add_address(&a, &a).is_err());
    clock.advance(Duration::from_secs(50));
    // An ended ban no longer refuses the address, even before any reinstatement.
    assert_eq!(book.add_address(&a, &a).unwrap(), AddOutcome::Added);
    assert_eq!(book.num_bans(), 0);
}

#[test]
fn the_ban_list_is_bounded() {
    let mut config = AddrBookConfig::default();
    config.max_bans(10);
    let (mut book, clock) = book_with(config, 14);
    let mut rng = rng(14);
    let first = random_addr(&mut rng);
    book.mark_bad(&first, Duration::from_secs(1));
    clock.advance(Duration::from_millis(1));
    for _ in 0..100 {
        book.mark_bad(&random_addr(&mut rng), Duration::from_secs(3600));
    }
    assert_eq!(book.num_bans(), 10);
    // The ban ending soonest went first.
    assert!(!book.is_banned(&first));
    book.verify_consistency().unwrap();
}

#[test]
fn an_ended_ban_reinstates_the_entry_with_its_history() {
    let (mut book, clock) = book(15);
    let mut rng = rng(15);
    let a = random_addr(&mut rng);
    book.add_address(&a, &a).unwrap();
    book.mark_attempt(&a);
    book.mark_attempt(&a);
    book.mark_bad(&a, Duration::from_secs(60));
    clock.advance(Duration::from_secs(61));
    book.reinstate_bad_peers();
    let known = book.get(&a.id()).unwrap();
    assert_eq!(known.attempts(), 2);
    assert_eq!(known.kind(), BucketKind::New);
}

#[test]
fn is_bad_follows_the_reference_rules() {
    let (mut book, clock) = book(16);
    let mut rng = rng(16);
    let fresh = random_addr(&mut rng);
    let failing = random_addr(&mut rng);
    let stale = random_addr(&mut rng);
    for a in [fresh, failing, stale] {
        book.add_address(&a, &a).unwrap();
    }
    for _ in 0..3 {
        book.mark_attempt(&failing);
    }
    let now = clock.now();
    // Attempted within the last minute: never bad.
    assert!(!book.get(&failing.id()).unwrap().is_bad(now));
    let later = now + Duration::from_secs(61);
    assert!(book.get(&failing.id()).unwrap().is_bad(later));
    assert!(!book.get(&fresh.id()).unwrap().is_bad(later));
    // Not tried for a week.
    let week = now + Duration::from_secs(7 * 24 * 3600 + 1);
    assert!(book.get(&stale.id()).unwrap().is_bad(week));
    // Old addresses never are.
    book.mark_good(&stale.id());
    assert!(
        !book
            .get(&stale.id())
            .unwrap()
            .is_bad(week + Duration::from_secs(3600 * 24 * 365))
    );
}

/// tendermint#3532: an address that keeps failing is really dropped.
#[test]
fn an_address_failing_sixteen_times_in_a_row_is_dropped() {
    let (mut book, clock) = book(17);
    let mut rng = rng(17);
    let a = random_addr(&mut rng);
    book.add_address(&a, &a).unwrap();
    for i in 1..16 {
        clock.advance(Duration::from_secs(1 << i.min(10)));
        assert!(!book.mark_attempt(&a), "attempt {i}");
    }
    assert!(book.mark_attempt(&a));
    assert!(!book.has_address(&a));
    book.verify_consistency().unwrap();

    // A peer that worked this week survives a bad spell.
    let good = random_addr(&mut rng);
    book.add_address(&good, &good).unwrap();
    book.mark_good(&good.id());
    for _ in 0..40 {
        assert!(!book.mark_attempt(&good));
    }
    assert!(book.has_address(&good));
}

#[test]
fn one_ip_holds_a_bounded_number_of_ids() {
    let (mut book, _) = book(18);
    let mut rng = rng(18);
    let host = ip("203.0.113.7");
    let mut added = 0;
    for port in 0..100 {
        let a = addr(random_id(&mut rng), host, 1000 + port);
        match book.add_address(&a, &a) {
            Ok(_) => added += 1,
            Err(Error::IpLimit { limit, .. }) => assert_eq!(limit, 4),
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(added, p2p_pex::DEFAULT_MAX_ADDRS_PER_IP);
    book.verify_consistency().unwrap();
}

#[test]
fn get_selection_sizes_and_uniqueness() {
    let (mut book, _) = book(19);
    let mut rng = rng(19);
    assert!(book.get_selection().is_empty());
    let a = random_addr(&mut rng);
    book.add_address(&a, &a).unwrap();
    assert_eq!(book.get_selection(), vec![a]);
    for (x, s) in random_pairs(&mut rng, 100) {
        book.add_address(&x, &s).unwrap();
    }
    let selection = book.get_selection();
    let unique: BTreeSet<_> = selection.iter().collect();
    assert_eq!(unique.len(), selection.len());
    assert_eq!(selection.len(), 32);

    for (size, want) in [
        (0, 0),
        (1, 1),
        (31, 31),
        (32, 32),
        (139, 32),
        (140, 32),
        (200, 46),
    ] {
        assert_eq!(AddrBook::selection_size(size), want, "{size}");
    }
    assert_eq!(AddrBook::selection_size(20_000), MAX_GET_SELECTION);
}

/// The reference's `TestAddrBookGetSelectionWithBias`.
#[test]
fn get_selection_with_bias_returns_the_requested_share_of_old_addresses() {
    const BIAS: u8 = 30;
    let (mut book, _) = book(20);
    let mut rng = rng(20);
    assert!(book.get_selection_with_bias(BIAS).is_empty());
    let a = random_addr(&mut rng);
    book.add_address(&a, &a).unwrap();
    assert_eq!(book.get_selection_with_bias(BIAS), vec![a]);

    let pairs = random_pairs(&mut rng, 100);
    for (x, s) in &pairs {
        book.add_address(x, s).unwrap();
    }
    let selection = book.get_selection_with_bias(BIAS);
    let unique: BTreeSet<_> = selection.iter().collect();
    assert_eq!(unique.len(), selection.len());
    assert!(selection.len() <= book.len());

    // Mark 80 % good.
    for (i, (x, _)) in pairs.iter().enumerate() {
        if i * 100 / pairs.len() >= 20 {
            book.mark_good(&x.id());
        }
    }
    let selection = book.get_selection_with_bias(BIAS);
    let good = selection.iter().filter(|x| book.is_good(x)).count();
    let got = good * 100 / selection.len();
    let expected = 100 - usize::from(BIAS);
    let slack = (100.0 / selection.len() as f64).round() as usize;
    assert!(
        got + slack >= expected && got <= expected + slack,
        "{got} % good"
    );
}

/// The reference's `TestMultipleAddrBookAddressSelection`: new addresses first, then old,
/// in the expected numbers, for every mix of book sizes below 32 and two larger ones.
#[test]
fn biased_selection_layout_for_every_mix() {
    let mut sizes: Vec<usize> = (1..32).collect();
    sizes.extend([57, 141]);
    for size in sizes {
        for n_old in 0..=size {
            let n_new = size - n_old;
            let mut book = book_with_old_and_new((size * 1000 + n_old) as u64, n_old, n_new);
            let addrs = book.get_selection_with_bias(30);
            let n = addrs.len();
            assert!(n > 0, "size {size} old {n_old}");
            let kinds: Vec<bool> = addrs.iter().map(|a| book.is_good(a)).collect();
            let got_old = kinds.iter().filter(|&&old| old).count();
            let got_new = n - got_old;
            let k = ((30.0 / 100.0) * n as f64).round() as usize;
            let exp_new = n_new.min(k.max(n.saturating_sub(n_old)));
            let exp_old = n_old.min(n - exp_new);
            assert_eq!(
                (got_new, got_old),
                (exp_new, exp_old),
                "size {size} old {n_old}"
            );
            // All new ones come first.
            assert!(
                kinds.windows(2).all(|w| w[0] <= w[1]),
                "size {size} old {n_old}"
            );
        }
    }
}

#[test]
fn one_source_group_reaches_at_most_32_new_buckets_and_buckets_hold_exactly_their_size() {
    let (mut book, _) = book(21);
    let mut rng = rng(21);
    let src = addr(random_id(&mut rng), ip("198.51.100.1"), 26656);
    let mut buckets = BTreeSet::new();
    for _ in 0..10_000 {
        let a = random_addr(&mut rng);
        let _ = book.add_address(&a, &src);
        buckets.insert(book.calc_new_bucket(&a, &src));
    }
    assert!(
        buckets.len() as u64 <= NEW_BUCKETS_PER_GROUP,
        "{}",
        buckets.len()
    );
    for b in &buckets {
        assert!(book.bucket_len(BucketKind::New, *b) <= NEW_BUCKET_SIZE);
    }
    assert!(book.len() <= buckets.len() * NEW_BUCKET_SIZE);
    // Full buckets are exactly full, not one over.
    assert!(
        buckets
            .iter()
            .any(|b| book.bucket_len(BucketKind::New, *b) == NEW_BUCKET_SIZE)
    );
    book.verify_consistency().unwrap();
}

#[test]
fn one_address_group_reaches_at_most_4_old_buckets() {
    let (book, _) = book(22);
    let mut rng = rng(22);
    let buckets: BTreeSet<usize> = (0..5000)
        .map(|_| {
            let mut a = random_addr(&mut rng);
            a = addr(
                a.id(),
                IpAddr::V4([45, 67, rng_octet(&mut rng), 1].into()),
                a.port(),
            );
            book.calc_old_bucket(&a)
        })
        .collect();
    assert!(buckets.len() as u64 <= OLD_BUCKETS_PER_GROUP, "{buckets:?}");
}

fn rng_octet(rng: &mut rand::rngs::StdRng) -> u8 {
    use rand::RngExt;
    rng.random()
}

/// Finds `n` random addresses (source `src`) that all land in the same new bucket.
fn same_new_bucket(book: &AddrBook, src: &NetAddress, n: usize, seed: u64) -> Vec<NetAddress> {
    let mut rng = rng(seed);
    let mut by_bucket: std::collections::BTreeMap<usize, Vec<NetAddress>> = Default::default();
    loop {
        let a = random_addr(&mut rng);
        let list = by_bucket.entry(book.calc_new_bucket(&a, src)).or_default();
        list.push(a);
        if list.len() == n {
            return list.clone();
        }
    }
}

#[test]
fn a_full_new_bucket_drops_a_bad_address_first_then_the_least_recently_tried() {
    let (mut book, clock) = book(23);
    let mut rng = rng(23);
    let src = random_addr(&mut rng);
    let addrs = same_new_bucket(&book, &src, NEW_BUCKET_SIZE + 2, 23);
    let bucket = book.calc_new_bucket(&addrs[0], &src);
    for a in &addrs[..NEW_BUCKET_SIZE] {
        clock.advance(Duration::from_secs(1));
        book.add_address(a, &src).unwrap();
    }
    assert_eq!(book.bucket_len(BucketKind::New, bucket), NEW_BUCKET_SIZE);
    // Make the 10th one bad: three failures, never a success, last try over a minute ago.
    let bad = addrs[10];
    for _ in 0..3 {
        book.mark_attempt(&bad);
    }
    clock.advance(Duration::from_secs(120));
    book.add_address(&addrs[NEW_BUCKET_SIZE], &src).unwrap();
    assert!(!book.has_address(&bad));
    assert!(book.has_address(&addrs[0]));
    assert_eq!(book.bucket_len(BucketKind::New, bucket), NEW_BUCKET_SIZE);
    // No bad one left: the least recently tried (the first added) goes.
    book.add_address(&addrs[NEW_BUCKET_SIZE + 1], &src).unwrap();
    assert!(!book.has_address(&addrs[0]));
    assert!(book.has_address(&addrs[1]));
    assert_eq!(book.bucket_len(BucketKind::New, bucket), NEW_BUCKET_SIZE);
    book.verify_consistency().unwrap();
}

#[test]
fn a_full_old_bucket_demotes_its_least_recently_tried_address_to_a_new_bucket() {
    let (mut book, clock) = book(24);
    let mut rng = rng(24);
    // Addresses of one /16 reach only 4 old buckets; find 65 sharing one.
    let mut by_bucket: std::collections::BTreeMap<usize, Vec<NetAddress>> = Default::default();
    let group = loop {
        let a = addr(
            random_id(&mut rng),
            IpAddr::V4([45, 67, rng_octet(&mut rng), rng_octet(&mut rng)].into()),
            26656,
        );
        let list = by_bucket.entry(book.calc_old_bucket(&a)).or_default();
        if !list.iter().any(|x| x.ip() == a.ip()) {
            list.push(a);
        }
        if list.len() == OLD_BUCKET_SIZE + 1 {
            break list.clone();
        }
    };
    let bucket = book.calc_old_bucket(&group[0]);
    for a in &group {
        book.add_address(a, &random_addr(&mut rng)).unwrap();
    }
    for a in &group[..OLD_BUCKET_SIZE] {
        clock.advance(Duration::from_secs(1));
        book.mark_good(&a.id());
    }
    assert_eq!(book.bucket_len(BucketKind::Old, bucket), OLD_BUCKET_SIZE);
    clock.advance(Duration::from_secs(1));
    book.mark_good(&group[OLD_BUCKET_SIZE].id());
    assert_eq!(book.bucket_len(BucketKind::Old, bucket), OLD_BUCKET_SIZE);
    assert!(book.is_good(&group[OLD_BUCKET_SIZE]));
    // The reference loses the demoted address; here it is back in a new bucket.
    let demoted = book.get(&group[0].id()).expect("demoted, not dropped");
    assert_eq!(demoted.kind(), BucketKind::New);
    assert_eq!(book.len(), OLD_BUCKET_SIZE + 1);
    book.verify_consistency().unwrap();
}

#[test]
fn books_with_the_same_seed_behave_identically() {
    let run = || {
        let (mut book, clock) = book(25);
        let mut rng = rng(25);
        for (a, s) in random_pairs(&mut rng, 300) {
            book.add_address(&a, &s).unwrap();
        }
        let mut picked = Vec::new();
        for _ in 0..20 {
            clock.advance(Duration::from_secs(5));
            if let Some(a) = book.pick_address(50) {
                book.mark_good(&a.id());
                picked.push(a);
            }
        }
        (
            book.to_json().unwrap(),
            picked,
            book.get_selection_with_bias(30),
        )
    };
    assert_eq!(run(), run());
}

#[test]
fn placement_depends_on_the_key() {
    let (a_book, _) = book(26);
    let (b_book, _) = book(27);
    assert_ne!(a_book.key(), b_book.key());
    let mut rng = rng(26);
    let differs = (0..50)
        .filter(|_| {
            let (a, s) = (random_addr(&mut rng), random_addr(&mut rng));
            a_book.calc_new_bucket(&a, &s) != b_book.calc_new_bucket(&a, &s)
        })
        .count();
    assert!(differs > 40, "{differs}");
}
