//! Checks the crate against the golden vectors in `testdata/vectors/` (a copy of the spec vectors) (computed from the
//! reference's encodings; see that folder's README).

use std::net::IpAddr;

use base64::Engine as _;
use p2p_types::proto::crypto::{PublicKey, public_key};
use p2p_types::proto::p2p::{
    Message, Packet, PacketMsg, PacketPing, PacketPong, PexAddrs, PexRequest, message, packet,
};
use p2p_types::{
    Error, NetAddress, NodeId, NodeInfo, NodeInfoOther, NodeKey, ProtocolVersion, channels, proto,
    varint,
};
use prost::Message as _;
use serde_json::Value;

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/vectors/");

fn load(name: &str) -> Value {
    let path = format!("{VECTORS}{name}");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("missing string {key:?} in {v}"))
}

fn u(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("missing number {key:?} in {v}"))
}

fn hex_field(v: &Value, key: &str) -> Vec<u8> {
    hex::decode(s(v, key)).unwrap()
}

// ---- node_ids.json -------------------------------------------------------------------------

#[test]
fn node_ids() {
    let file = load("node_ids.json");
    let vectors = file["vectors"].as_array().unwrap();
    assert!(vectors.len() >= 4);
    for v in vectors {
        let what = s(v, "description");
        let seed: [u8; 32] = hex_field(v, "ed25519_seed_hex").try_into().unwrap();
        let key = NodeKey::from_seed(seed);

        let pubkey = hex_field(v, "ed25519_pubkey_hex");
        assert_eq!(key.public_key().as_bytes().as_slice(), pubkey, "{what}");

        let id: NodeId = s(v, "node_id").parse().unwrap();
        assert_eq!(key.node_id(), id, "{what}");
        assert_eq!(key.node_id().to_string(), s(v, "node_id"), "{what}");
        let pubkey32: [u8; 32] = pubkey.as_slice().try_into().unwrap();
        assert_eq!(NodeId::from_public_key_bytes(&pubkey32), id, "{what}");

        // 64-byte Go layout seed ‖ pubkey, as stored in node_key.json.
        let priv64 = hex_field(v, "privkey_64_hex_(seed||pubkey)");
        assert_eq!(key.to_keypair_bytes().as_slice(), priv64, "{what}");
        assert_eq!(NodeKey::from_keypair_bytes(&priv64).unwrap(), key, "{what}");
        let json = format!(
            r#"{{"priv_key":{{"type":"tendermint/PrivKeyEd25519","value":"{}"}}}}"#,
            base64::engine::general_purpose::STANDARD.encode(&priv64)
        );
        assert_eq!(NodeKey::from_json(&json).unwrap(), key, "{what}");
        assert_eq!(key.to_json(), json, "{what}");

        // tendermint.crypto.PublicKey{ed25519}, as carried in AuthSigMessage.
        let pk_proto = PublicKey {
            sum: Some(public_key::Sum::Ed25519(pubkey.clone())),
        };
        let want = hex_field(v, "public_key_proto_hex");
        assert_eq!(pk_proto.encode_to_vec(), want, "{what}");
        assert_eq!(
            PublicKey::decode(want.as_slice()).unwrap(),
            pk_proto,
            "{what}"
        );
    }
}

// ---- nodeinfo_pex.json ---------------------------------------------------------------------

#[test]
fn node_info_full() {
    let file = load("nodeinfo_pex.json");
    let v = &file["node_info_full"];
    let f = &v["fields"];
    let pv = &f["protocol_version"];
    let info = NodeInfo {
        protocol_version: ProtocolVersion::new(u(pv, "p2p"), u(pv, "block"), u(pv, "app")),
        id: s(f, "default_node_id").parse().unwrap(),
        listen_addr: s(f, "listen_addr").into(),
        network: s(f, "network").into(),
        version: s(f, "version").into(),
        channels: hex_field(f, "channels_hex"),
        moniker: s(f, "moniker").into(),
        other: NodeInfoOther {
            tx_index: s(&f["other"], "tx_index").into(),
            rpc_address: s(&f["other"], "rpc_address").into(),
        },
    };
    // A realistic v0.38 node: the documented defaults and channel order.
    assert_eq!(info.protocol_version, ProtocolVersion::default());
    assert_eq!(info.channels, channels::V0_38_FULL_NODE);

    let proto_bytes = hex_field(v, "proto_hex");
    let delimited = hex_field(v, "delimited_hex");
    assert_eq!(info.to_proto().encode_to_vec(), proto_bytes);
    assert_eq!(info.encode_delimited(), delimited);

    let pb = proto::p2p::DefaultNodeInfo::decode(proto_bytes.as_slice()).unwrap();
    assert_eq!(NodeInfo::from_proto(pb).unwrap(), info);
    let decoded = NodeInfo::decode_delimited(&delimited).unwrap();
    assert_eq!(decoded, info);
    assert_eq!(decoded.validate(), Ok(()));
    assert_eq!(decoded.compatible_with(&info), Ok(()));
}

#[test]
fn node_info_mostly_empty() {
    let file = load("nodeinfo_pex.json");
    let v = &file["node_info_mostly_empty"];
    let f = &v["fields"];
    let pv = &f["protocol_version"];
    assert_eq!(s(f, "all_other_fields"), "empty");
    let info = NodeInfo {
        protocol_version: ProtocolVersion::new(u(pv, "p2p"), u(pv, "block"), u(pv, "app")),
        id: s(f, "default_node_id").parse().unwrap(),
        listen_addr: String::new(),
        network: String::new(),
        version: String::new(),
        channels: Vec::new(),
        moniker: String::new(),
        other: NodeInfoOther::default(),
    };
    let proto_bytes = hex_field(v, "proto_hex");
    // Fields 1 and 8 are emitted as empty sub-messages: starts with 0a00, ends with 4200.
    assert_eq!(proto_bytes.get(..2), Some(&[0x0a, 0x00][..]));
    assert_eq!(
        proto_bytes.get(proto_bytes.len() - 2..),
        Some(&[0x42, 0x00][..])
    );
    assert_eq!(info.to_proto().encode_to_vec(), proto_bytes);

    let mut delimited = Vec::new();
    varint::encode_uvarint(proto_bytes.len() as u64, &mut delimited);
    delimited.extend_from_slice(&proto_bytes);
    assert_eq!(info.encode_delimited(), delimited);
    let decoded = NodeInfo::decode_delimited(&delimited).unwrap();
    assert_eq!(decoded, info);
    // It decodes, but it is not a valid NodeInfo (no listen address, no moniker).
    assert!(matches!(
        decoded.validate(),
        Err(Error::InvalidListenAddr { .. })
    ));
}

#[test]
fn pex_request_and_empty_addrs() {
    let file = load("nodeinfo_pex.json");
    let request = Message {
        sum: Some(message::Sum::PexRequest(PexRequest {})),
    };
    let empty = Message {
        sum: Some(message::Sum::PexAddrs(PexAddrs { addrs: Vec::new() })),
    };
    for (msg, key) in [(request, "pex_request"), (empty, "pex_addrs_empty")] {
        let want = hex_field(&file[key], "message_hex");
        assert_eq!(msg.encode_to_vec(), want, "{key}");
        assert_eq!(Message::decode(want.as_slice()).unwrap(), msg, "{key}");
    }
}

#[test]
fn pex_addrs_two() {
    let file = load("nodeinfo_pex.json");
    let v = &file["pex_addrs_two"];
    let addrs: Vec<NetAddress> = v["addrs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let ip: IpAddr = s(a, "ip").parse().unwrap();
            let port = u16::try_from(u(a, "port")).unwrap();
            NetAddress::new(s(a, "id").parse().unwrap(), (ip, port).into())
        })
        .collect();
    let msg = Message {
        sum: Some(message::Sum::PexAddrs(PexAddrs {
            addrs: addrs.iter().map(NetAddress::to_proto).collect(),
        })),
    };
    let want = hex_field(v, "message_hex");
    assert_eq!(msg.encode_to_vec(), want);

    let Some(message::Sum::PexAddrs(decoded)) = Message::decode(want.as_slice()).unwrap().sum
    else {
        panic!("not PexAddrs");
    };
    let back: Vec<NetAddress> = decoded
        .addrs
        .iter()
        .map(|a| NetAddress::from_proto(a).unwrap())
        .collect();
    assert_eq!(back, addrs);
    // As the vector notes: the second address is in RFC 3849 documentation space.
    assert!(back[0].is_valid() && back[0].is_routable());
    assert!(back[1].is_rfc3849() && !back[1].is_valid());
}

#[test]
fn net_address_port0() {
    let file = load("nodeinfo_pex.json");
    let v = &file["net_address_port0"];
    let f = &v["fields"];
    assert_eq!(u(f, "port"), 0);
    let addr: NetAddress = format!("{}@{}:0", s(f, "id"), s(f, "ip")).parse().unwrap();
    let want = hex_field(v, "proto_hex");
    assert_eq!(addr.to_proto().encode_to_vec(), want);
    let pb = proto::p2p::NetAddress::decode(want.as_slice()).unwrap();
    assert_eq!(NetAddress::from_proto(&pb), Ok(addr));
    assert!(addr.is_rfc1918() && !addr.is_routable());
}

// ---- mconn_packets.json --------------------------------------------------------------------

fn msg(channel_id: i32, eof: bool, data: &[u8]) -> Packet {
    Packet {
        sum: Some(packet::Sum::PacketMsg(PacketMsg {
            channel_id,
            eof,
            data: data.to_vec().into(),
        })),
    }
}

/// The packet each named vector encodes.
fn expected_packet(name: &str) -> Packet {
    const WIRE_DATA: &[u8] = b"data transmitted over the wire";
    match name {
        "PacketPing" => Packet {
            sum: Some(packet::Sum::PacketPing(PacketPing {})),
        },
        "PacketPong" => Packet {
            sum: Some(packet::Sum::PacketPong(PacketPong {})),
        },
        "PacketMsg_ch1_noeof" => msg(1, false, WIRE_DATA),
        "PacketMsg_ch1_eof" => msg(1, true, WIRE_DATA),
        "PacketMsg_ch0_eof_pexrequest" => {
            let pex = Message {
                sum: Some(message::Sum::PexRequest(PexRequest {})),
            };
            msg(i32::from(channels::PEX), true, &pex.encode_to_vec())
        }
        "PacketMsg_ch0x20_eof_empty" => msg(i32::from(channels::CONSENSUS_STATE), true, &[]),
        "PacketMsg_max_default" => msg(1, true, &[0; 1024]),
        other => panic!("unknown packet vector {other:?}: add it to this test"),
    }
}

#[test]
fn mconn_packets() {
    let file = load("mconn_packets.json");
    let packets = file["packets"].as_array().unwrap();
    assert_eq!(packets.len(), 7);
    for v in packets {
        let name = s(v, "name");
        let packet = expected_packet(name);
        let encoded = packet.encode_to_vec();
        let delimited = varint::encode_delimited(&packet);
        let packet_hex = s(v, "packet_hex");
        let delimited_hex = s(v, "delimited_hex");

        if let Some(len) = v["packet_len"].as_u64() {
            // Truncated vector: only a prefix of the bytes plus the full lengths.
            let prefix = |h: &str| hex::decode(h.split("...").next().unwrap()).unwrap();
            assert_eq!(encoded.len() as u64, len, "{name}");
            assert_eq!(delimited.len() as u64, u(v, "delimited_len"), "{name}");
            assert!(encoded.starts_with(&prefix(packet_hex)), "{name}");
            assert!(delimited.starts_with(&prefix(delimited_hex)), "{name}");
        } else {
            let want = hex::decode(packet_hex).unwrap();
            let want_delimited = hex::decode(delimited_hex).unwrap();
            assert_eq!(encoded, want, "{name}");
            assert_eq!(delimited, want_delimited, "{name}");
            assert_eq!(Packet::decode(want.as_slice()).unwrap(), packet, "{name}");
        }
        // Decoding the delimited form under the reference's default packet limit.
        assert_eq!(
            varint::decode_delimited::<Packet>(&delimited, 1034).unwrap(),
            packet,
            "{name}"
        );
    }
}

#[test]
fn max_packet_msg_size_table() {
    let file = load("mconn_packets.json");
    let table = file["max_packet_msg_size_for_payload"].as_object().unwrap();
    assert!(table.len() >= 4);
    for (payload, size) in table {
        let payload: usize = payload.parse().unwrap();
        let packet = msg(1, true, &vec![0; payload]);
        assert_eq!(
            packet.encoded_len() as u64,
            size.as_u64().unwrap(),
            "payload {payload}"
        );
    }
    // One byte over the limit is refused before the body is read.
    let too_big = varint::encode_delimited(&msg(1, true, &[0; 1025]));
    assert!(matches!(
        varint::decode_delimited::<Packet>(&too_big, 1034),
        Err(Error::MessageTooLarge {
            len: 1035,
            max: 1034
        })
    ));
}
