//! A PEX channel message from a peer: protobuf decoding and the conversion of every
//! advertised address must never panic; converted addresses must round-trip.

#![no_main]

use libfuzzer_sys::fuzz_target;
use p2p_types::NetAddress;
use p2p_types::proto::p2p::{Message, message};
use prost::Message as _;

fuzz_target!(|data: &[u8]| {
    let Ok(msg) = Message::decode(data) else {
        return;
    };
    let Some(message::Sum::PexAddrs(addrs)) = msg.sum else {
        return;
    };
    for pb in &addrs.addrs {
        let Ok(addr) = NetAddress::from_proto(pb) else {
            continue;
        };
        assert_eq!(NetAddress::from_proto(&addr.to_proto()), Ok(addr));
        assert_eq!(addr.to_string().parse::<NetAddress>(), Ok(addr));
        let _ = (addr.is_valid(), addr.is_local(), addr.is_routable());
    }
});
