//! The reference's packet encodings (`testdata/vectors/mconn_packets.json`, from the reference's
//! `TestConnVectors` and its packet sizes): our encoder produces them byte for byte and our
//! decoder reads them back.

use bytes::{Bytes, BytesMut};
use p2p_mconn::{Packet, PacketCodec, PacketMsg, max_packet_size};
use serde_json::Value;

fn vectors() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../testdata/vectors/mconn_packets.json"
    );
    let text = std::fs::read_to_string(path).expect("testdata/vectors/mconn_packets.json");
    serde_json::from_str(&text).expect("valid JSON")
}

/// The bytes of a hex field, and whether it was abbreviated with `...`.
fn hex_prefix(v: &Value) -> (Vec<u8>, bool) {
    let s = v.as_str().unwrap();
    match s.split_once("...") {
        Some((prefix, _)) => (hex::decode(prefix).unwrap(), true),
        None => (hex::decode(s).unwrap(), false),
    }
}

/// The packet each vector describes.
fn packet_for(name: &str) -> Packet {
    match name {
        "PacketPing" => Packet::Ping,
        "PacketPong" => Packet::Pong,
        "PacketMsg_ch1_noeof" => Packet::Msg(PacketMsg::new(
            1,
            false,
            &b"data transmitted over the wire"[..],
        )),
        "PacketMsg_ch1_eof" => Packet::Msg(PacketMsg::new(
            1,
            true,
            &b"data transmitted over the wire"[..],
        )),
        // The data is an encoded PEX request (`0a 00`).
        "PacketMsg_ch0_eof_pexrequest" => Packet::Msg(PacketMsg::new(0, true, &[0x0a, 0x00][..])),
        "PacketMsg_ch0x20_eof_empty" => Packet::Msg(PacketMsg::new(0x20, true, Bytes::new())),
        "PacketMsg_max_default" => Packet::Msg(PacketMsg::new(1, true, vec![0; 1024])),
        other => panic!("no packet for vector {other}"),
    }
}

#[test]
fn packets_encode_and_decode_as_the_reference() {
    let v = vectors();
    let packets = v["packets"].as_array().unwrap();
    assert_eq!(packets.len(), 7);
    for p in packets {
        let name = p["name"].as_str().unwrap();
        let packet = packet_for(name);
        let ours = packet.to_bytes();
        // Long vectors are abbreviated (`<hex prefix>...(1024 zero bytes)`) and give their
        // lengths instead.
        let (delimited, abbreviated) = hex_prefix(&p["delimited_hex"]);
        let (body, _) = hex_prefix(&p["packet_hex"]);
        if abbreviated {
            assert_eq!(
                &ours[..delimited.len()],
                &delimited[..],
                "encoding of {name}"
            );
            assert_eq!(
                ours.len() as u64,
                p["delimited_len"].as_u64().unwrap(),
                "{name}"
            );
            assert_eq!(
                p["packet_len"].as_u64().unwrap() as usize,
                max_packet_size(1024)
            );
            assert!(ours[delimited.len()..].iter().all(|&b| b == 0));
        } else {
            assert_eq!(ours.to_vec(), delimited, "encoding of {name}");
            assert_eq!(
                &delimited[delimited.len() - body.len()..],
                &body[..],
                "{name}"
            );
        }

        let mut codec = PacketCodec::new(1034);
        let mut buf = BytesMut::from(&ours[..]);
        assert_eq!(
            codec.decode_packet(&mut buf).unwrap(),
            Some(packet),
            "decoding of {name}"
        );
        assert!(buf.is_empty());
        assert_eq!(codec.last_len(), ours.len());
    }
}

#[test]
fn max_packet_sizes_match_the_reference() {
    let v = vectors();
    for (payload, size) in v["max_packet_msg_size_for_payload"].as_object().unwrap() {
        let payload: usize = payload.parse().unwrap();
        assert_eq!(
            max_packet_size(payload),
            size.as_u64().unwrap() as usize,
            "payload {payload}"
        );
    }
}
