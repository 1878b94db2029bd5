//! The NodeInfo a peer sends during the handshake: decoding, validation and the
//! compatibility check must never panic, and whatever decodes must survive a round trip.

#![no_main]

use libfuzzer_sys::fuzz_target;
use p2p_types::proto::p2p::DefaultNodeInfo;
use p2p_types::{NodeId, NodeInfo, channels};
use prost::Message as _;

fuzz_target!(|data: &[u8]| {
    let Ok(theirs) = NodeInfo::decode_delimited(data) else {
        return;
    };
    let _ = theirs.validate();
    let _ = theirs.peer_address();

    let mut ours = NodeInfo::new(NodeId::new([7; 20]), "test-chain", "tcp://0.0.0.0:26656");
    ours.channels = channels::V0_38_FULL_NODE.to_vec();
    if let Err(e) = ours.compatible_with(&theirs) {
        assert!(e.is_incompatibility(), "{e}");
    }
    let _ = theirs.compatible_with(&ours);
    let _ = theirs.compatible_with(&theirs);

    // Re-encoding may grow past the size limit (the non-nullable sub-messages are always
    // written), so the round trip goes through the unbounded protobuf decoder.
    let bytes = theirs.to_proto().encode_to_vec();
    let pb = DefaultNodeInfo::decode(bytes.as_slice()).expect("our own encoding decodes");
    let back = NodeInfo::from_proto(pb).expect("our own encoding converts");
    assert_eq!(back, theirs);
});
