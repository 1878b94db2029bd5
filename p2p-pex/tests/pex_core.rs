//! The PEX protocol core on injected time: the reference's reactor tests, at the core level,
//! and the limits it was missing.

mod common;

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use common::*;
use p2p_pex::params::{MAX_GET_SELECTION, PEX_CHANNEL};
use p2p_pex::{
    AddrBook, AddrBookConfig, DialOutcome, DisconnectReason, Error, PexAction, PexConfig, PexCore,
    PexMessage, PexPeer, SwitchView, check_seeds,
};
use p2p_types::proto::p2p::{Message, NetAddress as PbAddress, PexAddrs, message};
use p2p_types::{NetAddress, NodeId};
use prost::Message as _;

#[derive(Default)]
struct FakeSwitch {
    outbound: usize,
    dialing: usize,
    connected: BTreeSet<NodeId>,
    persistent: BTreeSet<NodeId>,
}

impl SwitchView for FakeSwitch {
    fn num_outbound(&self) -> usize {
        self.outbound
    }
    fn num_dialing(&self) -> usize {
        self.dialing
    }
    fn is_dialing_or_connected(&self, addr: &NetAddress) -> bool {
        self.connected.contains(&addr.id())
    }
    fn is_persistent(&self, addr: &NetAddress) -> bool {
        self.persistent.contains(&addr.id())
    }
}

fn drain(core: &mut PexCore) -> Vec<PexAction> {
    std::iter::from_fn(|| core.poll_action()).collect()
}

fn dials(actions: &[PexAction]) -> Vec<NetAddress> {
    actions
        .iter()
        .filter_map(|a| match a {
            PexAction::Dial { addr } => Some(*addr),
            _ => None,
        })
        .collect()
}

fn sends(actions: &[PexAction]) -> Vec<(NodeId, &PexMessage)> {
    actions
        .iter()
        .filter_map(|a| match a {
            PexAction::Send { peer, message } => Some((*peer, message)),
            _ => None,
        })
        .collect()
}

fn disconnects(actions: &[PexAction]) -> Vec<(NodeId, &DisconnectReason)> {
    actions
        .iter()
        .filter_map(|a| match a {
            PexAction::Disconnect { peer, reason } => Some((*peer, reason)),
            _ => None,
        })
        .collect()
}

fn peer(addr: NetAddress, outbound: bool) -> PexPeer {
    PexPeer {
        id: addr.id(),
        outbound,
        persistent: false,
        listen_addr: Some(addr),
        socket_addr: addr,
    }
}

const REQUEST: [u8; 2] = [0x0a, 0x00];

fn addrs_msg(addrs: &[NetAddress]) -> Vec<u8> {
    PexMessage::Addrs(addrs.to_vec()).encode()
}

struct Setup {
    core: PexCore,
    book: AddrBook,
    switch: FakeSwitch,
    now: Instant,
    rng: rand::rngs::StdRng,
}

fn setup(config: PexConfig, seed: u64) -> Setup {
    let (book, _) = book(seed);
    let now = Instant::now();
    Setup {
        core: PexCore::with_seed(config, now, seed),
        book,
        switch: FakeSwitch::default(),
        now,
        rng: rng(seed),
    }
}

impl Setup {
    fn tick(&mut self) -> Vec<PexAction> {
        self.core
            .handle_timeout(self.now, &mut self.book, &self.switch);
        drain(&mut self.core)
    }
    fn advance(&mut self, d: Duration) {
        self.now += d;
    }
    fn add(&mut self, p: PexPeer) -> Vec<PexAction> {
        self.core.handle_peer_added(p, self.now, &mut self.book);
        drain(&mut self.core)
    }
    fn msg(&mut self, from: &NodeId, bytes: &[u8]) -> Vec<PexAction> {
        self.core
            .handle_message(from, bytes, self.now, &mut self.book);
        drain(&mut self.core)
    }
    fn result(&mut self, addr: &NetAddress, outcome: DialOutcome) -> Vec<PexAction> {
        self.core
            .handle_dial_result(addr, outcome, self.now, &mut self.book, &self.switch);
        drain(&mut self.core)
    }
    fn fill_book(&mut self, n: usize) -> Vec<NetAddress> {
        let pairs = random_pairs(&mut self.rng, n);
        for (a, s) in &pairs {
            self.book.add_address(a, s).unwrap();
        }
        pairs.into_iter().map(|(a, _)| a).collect()
    }
}

#[test]
fn pex_channel_is_zero() {
    assert_eq!(PEX_CHANNEL, 0);
}

/// The reference's `TestPEXReactorRequestMessageAbuse`.
#[test]
fn request_message_abuse() {
    let mut s = setup(PexConfig::default(), 1);
    s.fill_book(5);
    let p = random_addr(&mut s.rng);
    s.add(peer(p, false));
    assert!(s.book.has_address(&p));

    // The first two requests are free.
    for _ in 0..2 {
        let out = s.msg(&p.id(), &REQUEST);
        assert!(matches!(sends(&out)[..], [(to, PexMessage::Addrs(_))] if to == p.id()));
        assert!(disconnects(&out).is_empty());
    }
    // The third one too soon: disconnected and banned.
    s.advance(Duration::from_secs(9));
    let out = s.msg(&p.id(), &REQUEST);
    assert!(sends(&out).is_empty());
    match &disconnects(&out)[..] {
        [
            (
                to,
                DisconnectReason::Misbehaved {
                    error: Error::RequestTooSoon { .. },
                    banned: true,
                },
            ),
        ] => {
            assert_eq!(*to, p.id());
        }
        other => panic!("{other:?}"),
    }
    assert!(s.book.is_banned(&p));
    s.core.handle_peer_removed(&p.id());
    assert!(!s.core.knows_peer(&p.id()));
}

#[test]
fn requests_at_the_allowed_pace_are_answered() {
    let mut s = setup(PexConfig::default(), 2);
    s.fill_book(40);
    let p = random_addr(&mut s.rng);
    s.add(peer(p, false));
    for _ in 0..10 {
        let out = s.msg(&p.id(), &REQUEST);
        match &sends(&out)[..] {
            [(_, PexMessage::Addrs(addrs))] => assert_eq!(addrs.len(), 32),
            other => panic!("{other:?}"),
        }
        s.advance(Duration::from_secs(10));
    }
    assert!(!s.book.is_banned(&p));
}

/// tendermint#3338: a peer that reconnects is not punished for requests of its previous
/// connection.
#[test]
fn request_timing_is_forgotten_when_the_peer_goes() {
    let mut s = setup(PexConfig::default(), 3);
    let p = random_addr(&mut s.rng);
    s.add(peer(p, false));
    s.msg(&p.id(), &REQUEST);
    s.msg(&p.id(), &REQUEST);
    s.core.handle_peer_removed(&p.id());
    s.advance(Duration::from_secs(1));
    s.add(peer(p, false));
    for _ in 0..2 {
        let out = s.msg(&p.id(), &REQUEST);
        assert!(disconnects(&out).is_empty());
    }
    assert!(!s.book.is_banned(&p));
}

/// The reference's `TestPEXReactorAddrsMessageAbuse`.
#[test]
fn addrs_message_abuse() {
    let mut s = setup(PexConfig::default(), 4);
    let p = random_addr(&mut s.rng);
    // An outbound peer is asked for addresses while the book needs some.
    let out = s.add(peer(p, true));
    assert!(matches!(sends(&out)[..], [(to, PexMessage::Request)] if to == p.id()));
    assert!(s.core.is_request_outstanding(&p.id()));

    // The answer clears the request and fills the book.
    let out = s.msg(&p.id(), &addrs_msg(&[p]));
    assert!(out.is_empty());
    assert!(!s.core.is_request_outstanding(&p.id()));
    assert!(s.book.has_address(&p));

    // An answer nobody asked for: disconnected and banned.
    let out = s.msg(&p.id(), &addrs_msg(&[p]));
    assert!(matches!(
        disconnects(&out)[..],
        [(
            _,
            DisconnectReason::Misbehaved {
                error: Error::UnsolicitedAddrs { .. },
                banned: true
            }
        )]
    ));
    assert!(s.book.is_banned(&p));
}

#[test]
fn answers_with_too_many_or_invalid_addresses_are_refused() {
    let bad_ip = Message {
        sum: Some(message::Sum::PexAddrs(PexAddrs {
            addrs: vec![PbAddress {
                id: "0123456789abcdef0123456789abcdef01234567".into(),
                ip: "300.1.2.3".into(),
                port: 1,
            }],
        })),
    }
    .encode_to_vec();
    let cases: Vec<(Vec<u8>, bool)> = {
        let mut rng = rng(5);
        let many: Vec<NetAddress> = (0..=MAX_GET_SELECTION)
            .map(|_| random_addr(&mut rng))
            .collect();
        vec![
            (addrs_msg(&many), true),
            (bad_ip, true),
            (vec![0xff, 0x01], false),
        ]
    };
    for (i, (bytes, ban)) in cases.into_iter().enumerate() {
        let mut s = setup(PexConfig::default(), 50 + i as u64);
        let p = random_addr(&mut s.rng);
        s.add(peer(p, true));
        let out = s.msg(&p.id(), &bytes);
        match &disconnects(&out)[..] {
            [(_, DisconnectReason::Misbehaved { banned, .. })] => {
                assert_eq!(*banned, ban, "case {i}")
            }
            other => panic!("case {i}: {other:?}"),
        }
        assert_eq!(s.book.is_banned(&p), ban, "case {i}");
        assert_eq!(s.book.len(), 0, "case {i}");
        // Once disconnecting, nothing more from it is processed.
        assert!(s.msg(&p.id(), &REQUEST).is_empty());
    }
}

#[test]
fn entries_with_invalid_ids_are_skipped_not_punished() {
    let mut s = setup(PexConfig::default(), 6);
    let p = random_addr(&mut s.rng);
    let good = random_addr(&mut s.rng);
    s.add(peer(p, true));
    let mut msg = PexMessage::Addrs(vec![good]).to_proto();
    if let Some(message::Sum::PexAddrs(a)) = &mut msg.sum {
        a.addrs.push(PbAddress {
            id: "1".into(),
            ip: "127.0.0.1".into(),
            port: 9090,
        });
    }
    let out = s.msg(&p.id(), &msg.encode_to_vec());
    assert!(disconnects(&out).is_empty());
    assert!(s.book.has_address(&good));
}

/// The reference's `TestPEXReactorDoesNotAddPrivatePeersToAddrBook`.
#[test]
fn private_peers_stay_out_of_the_book() {
    let mut s = setup(PexConfig::default(), 7);
    let p = random_addr(&mut s.rng);
    s.book.add_private_ids([p.id()]);
    let out = s.add(peer(p, true));
    assert_eq!(sends(&out).len(), 1);
    s.msg(&p.id(), &addrs_msg(&[p]));
    assert!(s.book.is_empty());
    s.core.handle_peer_removed(&p.id());
    s.add(peer(p, false));
    assert!(s.book.is_empty());
}

#[test]
fn unknown_messages_are_ignored() {
    let mut s = setup(PexConfig::default(), 8);
    let p = random_addr(&mut s.rng);
    s.add(peer(p, false));
    assert!(s.msg(&p.id(), &[]).is_empty());
    let stranger = random_id(&mut s.rng);
    assert!(s.msg(&stranger, &REQUEST).is_empty());
}

#[test]
fn ensure_peers_never_exceeds_the_outbound_limit() {
    let mut s = setup(PexConfig::default(), 9);
    s.fill_book(200);
    // Nobody connected: the first round runs at once and dials up to the limit.
    let out = s.tick();
    let first = dials(&out);
    assert_eq!(first.len(), 10);
    assert_eq!(first.iter().collect::<BTreeSet<_>>().len(), 10);
    // While those are pending, later rounds (and fast dials) dial nothing more.
    s.advance(Duration::from_secs(30));
    assert!(dials(&s.tick()).is_empty());
    // The switch now counts 9 outbound and one failed: room for exactly one.
    for a in &first[..9] {
        s.result(a, DialOutcome::Connected);
    }
    s.result(&first[9], DialOutcome::Failed);
    s.switch.outbound = 9;
    s.advance(Duration::from_secs(30));
    assert_eq!(dials(&s.tick()).len(), 1);
    // Dials started elsewhere count too.
    s.switch.dialing = 1;
    s.advance(Duration::from_secs(30));
    assert!(dials(&s.tick()).is_empty());
}

#[test]
fn lost_dial_results_do_not_stall_dialling() {
    let mut s = setup(PexConfig::default(), 10);
    s.fill_book(100);
    assert_eq!(dials(&s.tick()).len(), 10);
    s.advance(Duration::from_secs(61));
    assert_eq!(dials(&s.tick()).len(), 10);
}

#[test]
fn already_connected_addresses_are_not_dialled() {
    let mut s = setup(PexConfig::default(), 11);
    let addrs = s.fill_book(3);
    s.switch.connected.extend(addrs.iter().map(NetAddress::id));
    assert!(dials(&s.tick()).is_empty());
}

/// The reference's `TestPEXReactorDialPeer`: exponential backoff per address.
#[test]
fn failed_dials_back_off_exponentially() {
    let mut s = setup(PexConfig::default(), 12);
    let a = s.fill_book(1)[0];
    assert_eq!(dials(&s.tick()), vec![a]);
    assert_eq!(s.core.dial_attempts(&a), 0);
    s.result(&a, DialOutcome::Failed);
    assert_eq!(s.core.dial_attempts(&a), 1);
    assert_eq!(s.book.get(&a.id()).unwrap().attempts(), 1);

    // 2^1 s plus up to 1 s of jitter: not before 2 s, surely after 3 s.
    s.advance(Duration::from_millis(1999));
    s.core.handle_timeout(s.now, &mut s.book, &s.switch);
    let ensure = |s: &mut Setup| {
        // Force a round: ensure peers runs on ticks; jump to the next one.
        let next = s.core.poll_timeout().unwrap();
        if next > s.now {
            s.now = next;
        }
        s.tick()
    };
    // Ticks come every 30 s, so the next one is well past the backoff.
    assert_eq!(dials(&ensure(&mut s)), vec![a]);
    s.result(&a, DialOutcome::Failed);
    assert_eq!(s.core.dial_attempts(&a), 2);
    // Success clears the record.
    s.advance(Duration::from_secs(5));
    let out = ensure(&mut s);
    assert_eq!(dials(&out), vec![a]);
    s.result(&a, DialOutcome::Connected);
    assert_eq!(s.core.dial_attempts(&a), 0);
}

#[test]
fn too_early_redials_are_skipped() {
    let mut config = PexConfig::default();
    config.ensure_peers_period(Duration::from_millis(300));
    let mut s = setup(config, 13);
    let a = s.fill_book(1)[0];
    assert_eq!(dials(&s.tick()), vec![a]);
    s.result(&a, DialOutcome::Failed);
    // Rounds every 300 ms: no redial within 2 s, one after 3 s.
    let mut redials = Vec::new();
    for _ in 0..10 {
        s.advance(Duration::from_millis(300));
        redials.extend(dials(&s.tick()).into_iter().map(|_| s.now));
    }
    assert_eq!(redials.len(), 1, "{redials:?}");
    let failed_at = s.now - Duration::from_millis(3000);
    let waited = redials[0] - failed_at;
    assert!(
        waited >= Duration::from_secs(2) && waited <= Duration::from_millis(3300),
        "{waited:?}"
    );
}

fn fail_until_banned(s: &mut Setup, a: &NetAddress, rounds: usize) -> usize {
    let mut dialled = 0;
    for _ in 0..rounds {
        // Far past any backoff (2^17 s).
        s.advance(Duration::from_secs(200_000));
        for d in dials(&s.tick()) {
            dialled += 1;
            s.result(&d, DialOutcome::Failed);
        }
        if s.book.is_banned(a) {
            break;
        }
    }
    dialled
}

#[test]
fn an_address_is_banned_after_sixteen_failed_dials() {
    // A book that keeps failing addresses, to see the PEX rule on its own.
    let mut config = AddrBookConfig::default();
    config.max_failed_attempts(1000);
    let (book, _) = book_with(config, 14);
    let mut s = setup(PexConfig::default(), 14);
    s.book = book;
    let a = s.fill_book(1)[0];
    let dialled = fail_until_banned(&mut s, &a, 40);
    assert_eq!(dialled, 17);
    assert!(s.book.is_banned(&a));
    assert!(!s.book.has_address(&a));
    assert_eq!(s.core.dial_attempts(&a), 0);
}

#[test]
fn with_the_default_book_a_failing_address_is_dropped_after_sixteen() {
    let mut s = setup(PexConfig::default(), 15);
    let a = s.fill_book(1)[0];
    let dialled = fail_until_banned(&mut s, &a, 40);
    assert_eq!(dialled, 16);
    assert!(!s.book.has_address(&a));
}

#[test]
fn persistent_peers_are_never_banned_and_their_backoff_is_capped() {
    let mut config = PexConfig::default();
    config.persistent_peers_max_dial_period(Duration::from_secs(10));
    let mut s = setup(config, 16);
    let mut book_config = AddrBookConfig::default();
    book_config.max_failed_attempts(1000);
    s.book = book_with(book_config, 16).0;
    let a = s.fill_book(1)[0];
    s.switch.persistent.insert(a.id());
    for _ in 0..30 {
        s.advance(Duration::from_secs(30));
        for d in dials(&s.tick()) {
            s.result(&d, DialOutcome::Failed);
        }
    }
    // A dial every round: the 10 s cap keeps the backoff under the 30 s period.
    assert!(
        s.core.dial_attempts(&a) >= 29,
        "{}",
        s.core.dial_attempts(&a)
    );
    assert!(!s.book.is_banned(&a));
}

#[test]
fn an_authentication_failure_bans_at_once() {
    let mut s = setup(PexConfig::default(), 17);
    let a = s.fill_book(1)[0];
    assert_eq!(dials(&s.tick()), vec![a]);
    s.result(&a, DialOutcome::AuthFailure);
    assert!(s.book.is_banned(&a));
    assert_eq!(s.core.dial_attempts(&a), 0);
}

#[test]
fn seeds_are_dialled_one_at_a_time_when_the_book_is_empty() {
    let mut rng = rng(18);
    let seeds: Vec<NetAddress> = (0..3).map(|_| random_addr(&mut rng)).collect();
    let mut config = PexConfig::default();
    config.seeds(seeds.clone());
    let mut s = setup(config, 18);
    let mut tried = Vec::new();
    let out = s.tick();
    let first = dials(&out);
    assert_eq!(first.len(), 1);
    tried.push(first[0]);
    for _ in 0..2 {
        let next = dials(&s.result(tried.last().unwrap(), DialOutcome::Failed));
        assert_eq!(next.len(), 1);
        tried.push(next[0]);
    }
    assert!(
        s.result(tried.last().unwrap(), DialOutcome::Failed)
            .is_empty()
    );
    assert_eq!(
        tried.iter().collect::<BTreeSet<_>>(),
        seeds.iter().collect()
    );

    // Next round, a seed connects: no further seed is tried.
    s.advance(Duration::from_secs(30));
    let seed = dials(&s.tick())[0];
    assert!(s.result(&seed, DialOutcome::Connected).is_empty());
}

/// The reference's "fast dial" (#2093) after a seed's answer, within the outbound limit
/// (cometbft#486).
#[test]
fn a_seeds_answer_is_dialled_at_once() {
    let mut rng = rng(19);
    let seed = random_addr(&mut rng);
    let mut config = PexConfig::default();
    config.seeds([seed]).max_num_outbound_peers(5);
    let mut s = setup(config, 19);
    assert_eq!(dials(&s.tick()), vec![seed]);
    s.result(&seed, DialOutcome::Connected);
    s.switch.outbound = 1;
    s.switch.connected.insert(seed.id());
    let out = s.add(peer(seed, true));
    assert!(matches!(sends(&out)[..], [(_, PexMessage::Request)]));

    let gossip: Vec<NetAddress> = (0..50).map(|_| random_addr(&mut rng)).collect();
    s.advance(Duration::from_secs(1));
    assert!(s.msg(&seed.id(), &addrs_msg(&gossip)).is_empty());
    assert_eq!(s.core.poll_timeout(), Some(s.now));
    let out = s.tick();
    let dialled = dials(&out);
    assert_eq!(dialled.len(), 4);
    assert!(dialled.iter().all(|a| gossip.contains(a)));
    // A fast dial sends no request (only the periodic rounds do).
    assert!(sends(&out).is_empty());
}

/// A seed's answer with nothing new in it: the seed is not redialled out of turn (it has just
/// hung up), only at the next periodic round.
#[test]
fn a_seed_is_not_redialled_right_after_an_empty_answer() {
    let mut rng = rng(23);
    let seed = random_addr(&mut rng);
    let mut config = PexConfig::default();
    config.seeds([seed]);
    let mut s = setup(config, 23);
    assert_eq!(dials(&s.tick()), vec![seed]);
    s.result(&seed, DialOutcome::Connected);
    s.add(peer(seed, true));
    s.advance(Duration::from_millis(10));
    s.msg(&seed.id(), &addrs_msg(&[]));
    // The seed hangs up.
    s.core.handle_peer_removed(&seed.id());
    assert!(
        dials(&s.tick()).is_empty(),
        "the seed was redialled at once"
    );
    s.advance(Duration::from_secs(30));
    assert_eq!(dials(&s.tick()), vec![seed]);
}

#[test]
fn the_periodic_round_asks_a_random_peer_while_the_book_needs_addresses() {
    let mut s = setup(PexConfig::default(), 20);
    let p = random_addr(&mut s.rng);
    s.add(peer(p, false));
    // With a peer, the first round waits for a random part of the period.
    s.tick();
    let first = s.core.poll_timeout().unwrap();
    assert!(first >= s.now && first < s.now + Duration::from_secs(30));
    s.now = first;
    let out = s.tick();
    assert!(matches!(sends(&out)[..], [(to, PexMessage::Request)] if to == p.id()));
    // Outstanding: not asked again.
    s.advance(Duration::from_secs(30));
    assert!(sends(&s.tick()).is_empty());
}

#[test]
fn the_book_is_saved_every_two_minutes() {
    let mut s = setup(PexConfig::default(), 21);
    let mut saves = 0;
    for _ in 0..20 {
        s.advance(Duration::from_secs(30));
        saves += s
            .tick()
            .iter()
            .filter(|a| matches!(a, PexAction::SaveAddrBook))
            .count();
    }
    assert_eq!(saves, 5);
}

#[test]
fn start_refuses_an_empty_book_with_no_resolvable_seed() {
    let (mut book, _) = book(22);
    assert!(matches!(
        check_seeds(2, 0, &book),
        Err(Error::NoPeersToStart { configured: 2 })
    ));
    assert!(check_seeds(2, 1, &book).is_ok());
    assert!(check_seeds(0, 0, &book).is_ok());
    let mut rng = rng(22);
    let a = random_addr(&mut rng);
    book.add_address(&a, &a).unwrap();
    assert!(check_seeds(2, 0, &book).is_ok());
}

// ---- seed mode -------------------------------------------------------------------------------

fn seed_config() -> PexConfig {
    let mut config = PexConfig::default();
    config.seed_mode(true);
    config
}

#[test]
fn a_seed_answers_an_inbound_request_once_then_disconnects() {
    let mut s = setup(seed_config(), 23);
    s.fill_book(60);
    let p = random_addr(&mut s.rng);
    s.add(peer(p, false));
    let out = s.msg(&p.id(), &REQUEST);
    assert_eq!(out.len(), 2);
    match (&out[0], &out[1]) {
        (
            PexAction::Send {
                message: PexMessage::Addrs(addrs),
                ..
            },
            PexAction::Disconnect {
                reason: DisconnectReason::SeedAnswered,
                ..
            },
        ) => assert_eq!(addrs.len(), 32),
        other => panic!("{other:?}"),
    }
    assert!(!s.book.is_banned(&p));
}

#[test]
fn a_seeds_answer_is_biased_towards_vetted_addresses() {
    let mut s = setup(seed_config(), 24);
    let addrs = s.fill_book(200);
    for a in &addrs[..100] {
        s.book.mark_good(&a.id());
    }
    let p = random_addr(&mut s.rng);
    s.add(peer(p, false));
    let out = s.msg(&p.id(), &REQUEST);
    let PexAction::Send {
        message: PexMessage::Addrs(answer),
        ..
    } = &out[0]
    else {
        panic!("{out:?}");
    };
    // 46 addresses, 30 % new: 14 new first, then 32 old.
    assert_eq!(answer.len(), 46);
    let old = answer.iter().filter(|a| s.book.is_good(a)).count();
    assert_eq!(old, 32);
}

#[test]
fn a_seed_crawls_within_the_limits() {
    let mut config = seed_config();
    config.max_num_outbound_peers(5);
    let mut s = setup(config, 25);
    let addrs = s.fill_book(10);
    // No seeds configured: crawl at start, at most five dials (the outbound limit).
    let first = dials(&s.tick());
    assert_eq!(first.len(), 5);
    for a in &first {
        s.result(a, DialOutcome::Failed);
    }
    // 30 s later the other five; the first ones were crawled less than 2 min ago.
    s.advance(Duration::from_secs(30));
    let second = dials(&s.tick());
    assert_eq!(second.len(), 5);
    assert!(second.iter().all(|a| !first.contains(a)));
    for a in &second {
        s.result(a, DialOutcome::Connected);
    }
    s.advance(Duration::from_secs(30));
    assert!(dials(&s.tick()).is_empty(), "nothing is due yet");
    // A connected crawl target is asked for addresses and filed as vetted.
    let out = s.add(peer(second[0], true));
    assert!(matches!(sends(&out)[..], [(_, PexMessage::Request)]));
    assert!(s.book.is_good(&second[0]));
    // Its requests to us follow the normal rules (it is outbound).
    s.msg(&second[0].id(), &REQUEST);
    s.msg(&second[0].id(), &REQUEST);
    let out = s.msg(&second[0].id(), &REQUEST);
    assert_eq!(disconnects(&out).len(), 1);
    assert_eq!(addrs.len(), 10);
}

/// The reference's `TestPEXReactorSeedMode` and `...DoesNotDisconnectFromPersistentPeerInSeedMode`.
#[test]
fn a_seed_disconnects_after_the_wait_except_persistent_peers() {
    let mut config = seed_config();
    config.seed_disconnect_wait_period(Duration::from_secs(60));
    let mut s = setup(config, 26);
    s.tick();
    let normal = random_addr(&mut s.rng);
    let persistent = random_addr(&mut s.rng);
    s.add(peer(normal, false));
    s.add(PexPeer {
        persistent: true,
        ..peer(persistent, false)
    });
    s.advance(Duration::from_secs(30));
    assert!(disconnects(&s.tick()).is_empty());
    s.advance(Duration::from_secs(30));
    let out = s.tick();
    match &disconnects(&out)[..] {
        [(who, DisconnectReason::ConnectedLongEnough)] => assert_eq!(*who, normal.id()),
        other => panic!("{other:?}"),
    }
    // Asked once; not again while the switch gets round to it.
    s.advance(Duration::from_secs(30));
    assert!(disconnects(&s.tick()).is_empty());
}

/// The reference's `TestPEXReactorDialsPeerUpToMaxAttemptsInSeedMode`.
#[test]
fn a_seed_bans_an_address_that_failed_too_often() {
    let mut s = setup(seed_config(), 27);
    let mut book_config = AddrBookConfig::default();
    book_config.max_failed_attempts(1000);
    s.book = book_with(book_config, 27).0;
    let a = s.fill_book(1)[0];
    let dialled = fail_until_banned(&mut s, &a, 40);
    assert_eq!(dialled, 17);
    assert!(!s.book.has_address(&a));
}

#[test]
fn a_seed_with_seeds_asks_them_first() {
    let mut rng = rng(28);
    let other_seed = random_addr(&mut rng);
    let mut config = seed_config();
    config.seeds([other_seed]);
    let mut s = setup(config, 28);
    s.fill_book(10);
    assert_eq!(dials(&s.tick()), vec![other_seed]);
}

#[test]
fn requests_from_a_private_ip_inbound_peer_are_answered_without_adding_it() {
    // A strict book refuses the peer's private address, but the protocol still works.
    let mut s = setup(PexConfig::default(), 29);
    let p = addr(
        random_id(&mut s.rng),
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        26656,
    );
    s.add(peer(p, false));
    assert!(s.book.is_empty());
    let out = s.msg(&p.id(), &REQUEST);
    assert_eq!(sends(&out).len(), 1);
}

#[test]
fn stats_count_answers_crawls_and_received_answers() {
    let mut config = seed_config();
    config.max_num_outbound_peers(3);
    let mut s = setup(config, 27);
    assert_eq!(s.core.stats(), p2p_pex::PexStats::default());
    s.fill_book(10);
    let crawled = dials(&s.tick());
    assert_eq!(crawled.len(), 3);
    assert_eq!(s.core.stats().crawl_dials, 3);
    assert_eq!(s.core.crawled_within(s.now, Duration::from_secs(3600)), 3);
    // Two inbound peers get their one answer each; a repeated request is not served again.
    for _ in 0..2 {
        let p = random_addr(&mut s.rng);
        s.add(peer(p, false));
        s.msg(&p.id(), &REQUEST);
        s.msg(&p.id(), &REQUEST);
    }
    assert_eq!(s.core.stats().requests_served, 2);
    // A crawled peer answers our request.
    s.result(&crawled[0], DialOutcome::Connected);
    s.add(peer(crawled[0], true));
    let more = random_addr(&mut s.rng);
    s.msg(&crawled[0].id(), &addrs_msg(&[more]));
    assert_eq!(s.core.stats().answers_received, 1);
    // Two hours on, the crawls fall out of the last hour's window.
    s.advance(Duration::from_secs(2 * 3600));
    assert_eq!(s.core.crawled_within(s.now, Duration::from_secs(3600)), 0);
}
