//! Properties: hostile `addrbook.json` input never panics and never breaks the book; any
//! sequence of operations keeps the book consistent and free of private and own addresses.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use p2p_pex::{AddrBook, AddrBookConfig, ManualClock};
use p2p_types::{NetAddress, NodeId};
use proptest::prelude::*;

/// Pieces of JSON that an address book file is made of, and some that it is not.
fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("{".to_owned()),
        Just("}".to_owned()),
        Just("[".to_owned()),
        Just("]".to_owned()),
        Just(",".to_owned()),
        Just(":".to_owned()),
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("\"key\"".to_owned()),
        Just("\"addrs\"".to_owned()),
        Just("\"bans\"".to_owned()),
        Just("\"addr\"".to_owned()),
        Just("\"src\"".to_owned()),
        Just("\"id\"".to_owned()),
        Just("\"ip\"".to_owned()),
        Just("\"port\"".to_owned()),
        Just("\"buckets\"".to_owned()),
        Just("\"bucket_type\"".to_owned()),
        Just("\"attempts\"".to_owned()),
        Just("\"last_attempt\"".to_owned()),
        Just("\"last_ban_time\"".to_owned()),
        Just("\"0101010101010101010101010101010101010101\"".to_owned()),
        Just("\"1.2.3.4\"".to_owned()),
        Just("\"::1\"".to_owned()),
        Just("\"2024-01-01T00:00:00Z\"".to_owned()),
        Just("\"0001-01-01T00:00:00Z\"".to_owned()),
        Just("\"9999-12-31T23:59:59.999999999+23:59\"".to_owned()),
        (-70_000i64..70_000).prop_map(|n| n.to_string()),
        "\"[a-z0-9.:]{0,12}\"",
        any::<f64>().prop_map(|f| f.to_string()),
    ]
}

fn json_ish() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(token(), 0..120).prop_map(|t| t.join(" ").into_bytes())
}

/// One entry with field values drawn from plausible and implausible ones.
fn entry() -> impl Strategy<Value = String> {
    (
        prop_oneof![Just("0101010101010101010101010101010101010101".to_owned()), "[0-9a-f]{40}", "[0-9a-zA-Z]{0,42}"],
        prop_oneof![
            any::<[u8; 4]>().prop_map(|b| Ipv4Addr::from(b).to_string()),
            Just("10.0.0.1".to_owned()),
            Just("2a01:4f8::1".to_owned()),
            "[0-9.:a-f]{0,20}",
        ],
        any::<u16>(),
        prop::collection::vec(-5i64..300, 0..7),
        -2i64..5,
        any::<i64>(),
        prop_oneof![
            Just("2024-01-01T00:00:00Z".to_owned()),
            Just("0001-01-01T00:00:00Z".to_owned()),
            Just("2999-01-01T00:00:00.5-07:00".to_owned()),
            "[0-9T:Z.-]{0,30}",
        ],
    )
        .prop_map(|(id, ip, port, buckets, kind, attempts, time)| {
            let buckets: Vec<String> = buckets.iter().map(i64::to_string).collect();
            format!(
                r#"{{"addr": {{"id": "{id}", "ip": "{ip}", "port": {port}}}, "src": {{"id": "{id}", "ip": "{ip}", "port": {port}}}, "buckets": [{}], "attempts": {attempts}, "bucket_type": {kind}, "last_attempt": "{time}", "last_success": "{time}", "last_ban_time": "{time}"}}"#,
                buckets.join(", ")
            )
        })
}

fn structured_file() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec(entry(), 0..40),
        prop::collection::vec(entry(), 0..5),
        "[0-9a-f]{0,30}",
    )
        .prop_map(|(addrs, bans, key)| {
            format!(
                r#"{{"key": "{key}", "addrs": [{}], "bans": [{}]}}"#,
                addrs.join(","),
                bans.join(",")
            )
            .into_bytes()
        })
}

/// Loads `bytes`, checks the book, and checks that what it writes reads back identically.
fn load_and_round_trip(bytes: &[u8], strict: bool) -> Result<(), TestCaseError> {
    let clock = clock();
    let mut config = AddrBookConfig::default();
    config.routability_strict(strict);
    let mut book = AddrBook::with_seed(config.clone(), 1, Arc::new(clock.clone()));
    let _report = book.load_json(bytes);
    prop_assert_eq!(book.verify_consistency(), Ok(()));
    let written = book.to_json().unwrap();
    let mut again = AddrBook::with_seed(config, 2, Arc::new(clock));
    let report = again.load_json(&written);
    prop_assert!(report.is_clean(), "{:?}", report.issues());
    prop_assert_eq!(again.to_json().unwrap(), written);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        load_and_round_trip(&bytes, true)?;
    }

    #[test]
    fn json_ish_input_never_panics(bytes in json_ish()) {
        load_and_round_trip(&bytes, true)?;
    }

    #[test]
    fn structured_files_load_what_is_valid(bytes in structured_file(), strict in any::<bool>()) {
        load_and_round_trip(&bytes, strict)?;
    }

    #[test]
    fn a_damaged_real_file_never_panics(
        seed in any::<u64>(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
    ) {
        let book = book_with_old_and_new(seed, 5, 15);
        let mut bytes = book.to_json().unwrap();
        for (at, byte, op) in edits {
            if bytes.is_empty() {
                break;
            }
            let i = at.index(bytes.len());
            match op {
                0 => bytes[i] = byte,
                1 => { bytes.remove(i); }
                _ => bytes.insert(i, byte),
            }
        }
        load_and_round_trip(&bytes, true)?;
    }
}

#[derive(Clone, Debug)]
enum Op {
    Add(usize, usize),
    Good(usize),
    Attempt(usize),
    Bad(usize, u64),
    Remove(usize),
    Reinstate,
    Pick(u8),
    Selection(u8),
    Private(usize),
    Ours(usize),
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..64usize, 0..64usize).prop_map(|(a, s)| Op::Add(a, s)),
        2 => (0..64usize).prop_map(Op::Good),
        2 => (0..64usize).prop_map(Op::Attempt),
        1 => (0..64usize, 0..200u64).prop_map(|(a, t)| Op::Bad(a, t)),
        1 => (0..64usize).prop_map(Op::Remove),
        1 => Just(Op::Reinstate),
        1 => any::<u8>().prop_map(Op::Pick),
        1 => any::<u8>().prop_map(Op::Selection),
        1 => (0..64usize).prop_map(Op::Private),
        1 => (0..64usize).prop_map(Op::Ours),
        1 => (0..100_000u64).prop_map(Op::Advance),
    ]
}

/// 64 addresses crowded into few networks and IPs, so buckets fill, IP limits bite and IDs
/// collide with different addresses.
fn universe() -> Vec<NetAddress> {
    (0..64u8)
        .map(|i| {
            let id = NodeId::new([i % 48; 20]);
            let ip = IpAddr::V4(Ipv4Addr::new(45 + i % 3, 67, i % 5, 1 + i % 7));
            addr(id, ip, 26656 + u16::from(i % 2))
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn any_sequence_of_operations_keeps_the_book_consistent(ops in prop::collection::vec(op(), 0..200)) {
        let u = universe();
        let clock = ManualClock::new(start_time());
        let mut config = AddrBookConfig::default();
        config.max_addrs_per_ip(2).max_bans(5).max_failed_attempts(4);
        let mut book = AddrBook::with_seed(config, 3, Arc::new(clock.clone()));
        let mut private = Vec::new();
        let mut ours = Vec::new();
        for op in ops {
            match op {
                Op::Add(a, s) => { let _ = book.add_address(&u[a], &u[s]); }
                Op::Good(a) => book.mark_good(&u[a].id()),
                Op::Attempt(a) => { book.mark_attempt(&u[a]); }
                Op::Bad(a, t) => book.mark_bad(&u[a], Duration::from_secs(t)),
                Op::Remove(a) => book.remove_address(&u[a]),
                Op::Reinstate => { book.reinstate_bad_peers(); }
                Op::Pick(bias) => {
                    if let Some(a) = book.pick_address(bias) {
                        prop_assert!(book.has_address(&a));
                    }
                }
                Op::Selection(bias) => {
                    for a in book.get_selection().into_iter().chain(book.get_selection_with_bias(bias)) {
                        prop_assert!(!private.contains(&a.id()) && !ours.contains(&a.id()));
                        prop_assert!(!book.is_banned(&a));
                    }
                }
                Op::Private(a) => { book.add_private_ids([u[a].id()]); private.push(u[a].id()); }
                Op::Ours(a) => { book.add_our_address(&u[a]); ours.push(u[a].id()); }
                Op::Advance(s) => clock.advance(Duration::from_secs(s)),
            }
            prop_assert_eq!(book.verify_consistency(), Ok(()));
        }
        // And it saves and loads back unchanged (once ended bans are lifted: loading lifts
        // them too).
        book.reinstate_bad_peers();
        let written = book.to_json().unwrap();
        let mut config = AddrBookConfig::default();
        config.max_addrs_per_ip(2).max_bans(5).max_failed_attempts(4);
        let mut again = AddrBook::with_seed(config, 4, Arc::new(clock));
        again.add_private_ids(private);
        for id in ours {
            again.add_our_address(&addr(id, IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0));
        }
        let report = again.load_json(&written);
        prop_assert!(report.is_clean(), "{:?}", report.issues());
        prop_assert_eq!(again.to_json().unwrap(), written);
    }
}

mod core_properties {
    use std::collections::BTreeSet;
    use std::time::{Duration, Instant};

    use p2p_pex::{DialOutcome, PexAction, PexConfig, PexCore, PexMessage, PexPeer, SwitchView};
    use p2p_types::NetAddress;
    use proptest::prelude::*;

    use super::common::*;

    /// A switch that does what the core asks: dials connect or fail, disconnects happen.
    #[derive(Default)]
    struct Switch {
        outbound: BTreeSet<NetAddress>,
        inbound: BTreeSet<NetAddress>,
        dialing: BTreeSet<NetAddress>,
    }

    impl SwitchView for Switch {
        fn num_outbound(&self) -> usize {
            self.outbound.len()
        }
        fn num_dialing(&self) -> usize {
            self.dialing.len()
        }
        fn is_dialing_or_connected(&self, addr: &NetAddress) -> bool {
            let id = addr.id();
            self.outbound
                .iter()
                .chain(&self.inbound)
                .chain(&self.dialing)
                .any(|a| a.id() == id)
        }
        fn is_persistent(&self, _: &NetAddress) -> bool {
            false
        }
    }

    #[derive(Clone, Debug)]
    enum Event {
        Inbound(u8),
        Message(u8, Vec<u8>),
        Gossip(u8, u8),
        Request(u8),
        Leave(u8),
        Advance(u16),
        FinishDials(bool),
    }

    fn event() -> impl Strategy<Value = Event> {
        prop_oneof![
            2 => any::<u8>().prop_map(Event::Inbound),
            2 => (any::<u8>(), prop::collection::vec(any::<u8>(), 0..64)).prop_map(|(p, b)| Event::Message(p, b)),
            2 => (any::<u8>(), 0u8..60).prop_map(|(p, n)| Event::Gossip(p, n)),
            2 => any::<u8>().prop_map(Event::Request),
            1 => any::<u8>().prop_map(Event::Leave),
            3 => any::<u16>().prop_map(Event::Advance),
            2 => any::<bool>().prop_map(Event::FinishDials),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(150))]

        /// Hostile and honest peers in any order: the core never panics, never has more
        /// outbound connections and dials than allowed, and leaves the book consistent.
        #[test]
        fn the_core_survives_anything_and_keeps_the_outbound_limit(
            seed_mode in any::<bool>(),
            events in prop::collection::vec(event(), 0..150),
        ) {
            let mut rng = rng(7);
            let universe: Vec<NetAddress> = (0..16).map(|_| random_addr(&mut rng)).collect();
            let (mut book, _) = book(7);
            for a in &universe[..4] {
                book.add_address(a, a).unwrap();
            }
            let mut config = PexConfig::default();
            config.seed_mode(seed_mode).max_num_outbound_peers(3).seeds([universe[15]]);
            let mut now = Instant::now();
            let mut core = PexCore::with_seed(config, now, 7);
            let mut switch = Switch::default();
            let mut peers: BTreeSet<NetAddress> = BTreeSet::new();
            for ev in events {
                match ev {
                    Event::Inbound(i) => {
                        let a = universe[usize::from(i) % universe.len()];
                        if !switch.is_dialing_or_connected(&a) {
                            switch.inbound.insert(a);
                            peers.insert(a);
                            core.handle_peer_added(PexPeer { id: a.id(), outbound: false, persistent: false, listen_addr: Some(a), socket_addr: a }, now, &mut book);
                        }
                    }
                    Event::Message(i, bytes) => {
                        let a = universe[usize::from(i) % universe.len()];
                        core.handle_message(&a.id(), &bytes, now, &mut book);
                    }
                    Event::Gossip(i, n) => {
                        let a = universe[usize::from(i) % universe.len()];
                        let addrs: Vec<NetAddress> = universe.iter().cycle().take(usize::from(n)).copied().collect();
                        core.handle_message(&a.id(), &PexMessage::Addrs(addrs).encode(), now, &mut book);
                    }
                    Event::Request(i) => {
                        let a = universe[usize::from(i) % universe.len()];
                        core.handle_message(&a.id(), &PexMessage::Request.encode(), now, &mut book);
                    }
                    Event::Leave(i) => {
                        let a = universe[usize::from(i) % universe.len()];
                        if peers.remove(&a) {
                            switch.inbound.remove(&a);
                            switch.outbound.remove(&a);
                            core.handle_peer_removed(&a.id());
                        }
                    }
                    Event::Advance(ms) => {
                        now += Duration::from_millis(u64::from(ms) * 50);
                        if core.poll_timeout().is_some_and(|t| t <= now) {
                            core.handle_timeout(now, &mut book, &switch);
                        }
                    }
                    Event::FinishDials(connect) => {
                        for a in std::mem::take(&mut switch.dialing) {
                            let outcome = if connect && !switch.is_dialing_or_connected(&a) {
                                DialOutcome::Connected
                            } else {
                                DialOutcome::Failed
                            };
                            core.handle_dial_result(&a, outcome, now, &mut book, &switch);
                            if outcome == DialOutcome::Connected {
                                switch.outbound.insert(a);
                                peers.insert(a);
                                core.handle_peer_added(PexPeer { id: a.id(), outbound: true, persistent: false, listen_addr: Some(a), socket_addr: a }, now, &mut book);
                            }
                        }
                    }
                }
                while let Some(action) = core.poll_action() {
                    match action {
                        PexAction::Dial { addr } => {
                            prop_assert!(!switch.is_dialing_or_connected(&addr), "dialling {addr} twice");
                            switch.dialing.insert(addr);
                        }
                        PexAction::Disconnect { peer, .. } => {
                            if let Some(a) = peers.iter().find(|a| a.id() == peer).copied() {
                                peers.remove(&a);
                                switch.inbound.remove(&a);
                                switch.outbound.remove(&a);
                                core.handle_peer_removed(&peer);
                            }
                        }
                        PexAction::Send { .. } | PexAction::SaveAddrBook => {}
                        _ => {}
                    }
                }
                prop_assert!(switch.outbound.len() + switch.dialing.len() <= 3);
                prop_assert_eq!(book.verify_consistency(), Ok(()));
            }
        }
    }
}
