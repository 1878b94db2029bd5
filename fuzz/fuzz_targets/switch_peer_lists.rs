//! The switch's peer lists from configuration files (`persistent_peers`, `unconditional_peer_ids`,
//! `private_peer_ids`, comma-separated): parsing must never panic, a list that parses must
//! print back to one that parses to the same entries, and an error names an entry of the list.

#![no_main]

use libfuzzer_sys::fuzz_target;
use p2p_switch::{Error, parse_peer_ids, parse_peer_list};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let entries = text.split(',').map(str::trim).filter(|s| !s.is_empty()).count();

    match parse_peer_list(text) {
        Ok(peers) => {
            assert_eq!(peers.len(), entries);
            let printed: Vec<String> = peers.iter().map(ToString::to_string).collect();
            assert_eq!(parse_peer_list(&printed.join(",")).ok(), Some(peers));
        }
        Err(Error::InvalidPeer { index, .. }) => assert!(index < entries),
        Err(e) => panic!("unexpected error {e}"),
    }

    match parse_peer_ids(text) {
        Ok(ids) => {
            assert_eq!(ids.len(), entries);
            let printed: Vec<String> = ids.iter().map(ToString::to_string).collect();
            assert_eq!(parse_peer_ids(&printed.join(", ")).ok(), Some(ids));
        }
        Err(Error::InvalidPeer { index, .. }) => assert!(index < entries),
        Err(e) => panic!("unexpected error {e}"),
    }
});
