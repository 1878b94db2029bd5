//! Address parsing from arbitrary text (configuration, a peer's `listen_addr`): parsing must
//! never panic, and every parsed address must print to text that parses back to it.

#![no_main]

use libfuzzer_sys::fuzz_target;
use p2p_types::{Host, NetAddress, PeerAddress};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };

    if let Ok(peer) = text.parse::<PeerAddress>() {
        let printed = peer.to_string();
        assert_eq!(printed.parse::<PeerAddress>().as_ref(), Ok(&peer), "{printed}");
        if let Some(addr) = peer.to_net_address() {
            assert_eq!(addr.to_string(), printed);
        }
    }

    if let Ok(addr) = text.parse::<NetAddress>() {
        let printed = addr.to_string();
        assert_eq!(printed.parse::<NetAddress>(), Ok(addr), "{printed}");
        assert_eq!(NetAddress::from_proto(&addr.to_proto()), Ok(addr));
        assert_eq!(PeerAddress::from(addr).to_string(), printed);
        if addr.is_routable() {
            assert!(addr.is_valid() && !addr.is_local());
        }
    }

    if let Ok(host) = text.parse::<Host>() {
        assert_eq!(host.to_string().parse::<Host>().as_ref(), Ok(&host));
    }
});
