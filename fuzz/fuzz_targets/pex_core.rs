//! PEX channel messages from hostile peers, through the protocol core: decoding agrees with
//! encoding, nothing panics, the book stays consistent, and every disconnect names a peer
//! that was added.

#![no_main]

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use libfuzzer_sys::fuzz_target;
use p2p_pex::message::decode;
use p2p_pex::{
    AddrBook, AddrBookConfig, ManualClock, PexAction, PexConfig, PexCore, PexMessage, PexPeer,
    Received, SwitchView,
};
use p2p_types::{NetAddress, NodeId};

struct Idle;

impl SwitchView for Idle {
    fn num_outbound(&self) -> usize {
        1
    }
    fn num_dialing(&self) -> usize {
        0
    }
    fn is_dialing_or_connected(&self, _: &NetAddress) -> bool {
        false
    }
    fn is_persistent(&self, _: &NetAddress) -> bool {
        false
    }
}

fn peer(n: u8, outbound: bool) -> PexPeer {
    let addr: NetAddress = format!("{}@{n}.2.3.4:26656", hex(n)).parse().expect("valid");
    PexPeer {
        id: addr.id(),
        outbound,
        persistent: false,
        listen_addr: Some(addr),
        socket_addr: addr,
    }
}

fn hex(n: u8) -> String {
    format!("{n:02x}").repeat(20)
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let peer_id = NodeId::new([9; 20]);
    // Decoding agrees with encoding.
    if let Ok(Received::Addrs { addrs, .. }) = decode(&peer_id, rest) {
        let again = PexMessage::Addrs(addrs.clone()).encode();
        assert!(matches!(decode(&peer_id, &again), Ok(Received::Addrs { addrs: a, skipped: 0 }) if a == addrs));
    }

    let clock = ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    let mut config = AddrBookConfig::default();
    config.routability_strict(flags & 1 == 0);
    let mut book = AddrBook::with_seed(config, 1, Arc::new(clock));
    let mut pex_config = PexConfig::default();
    pex_config.seed_mode(flags & 2 != 0);
    let mut now = Instant::now();
    let mut core = PexCore::with_seed(pex_config, now, 1);
    let peers = [peer(11, false), peer(12, true)];
    for p in &peers {
        core.handle_peer_added(p.clone(), now, &mut book);
    }
    // Messages are cut at 0xff bytes (so one input carries several) and alternate senders.
    for (i, msg) in rest.split(|&b| b == 0xff).enumerate() {
        let from = &peers[i % 2];
        core.handle_message(&from.id, msg, now, &mut book);
        now += Duration::from_secs(u64::from(flags >> 4));
        core.handle_timeout(now, &mut book, &Idle);
        while let Some(action) = core.poll_action() {
            if let PexAction::Disconnect { peer, .. } = action {
                assert!(peers.iter().any(|p| p.id == peer));
            }
        }
        if let Err(e) = book.verify_consistency() {
            panic!("{e}");
        }
    }
});
