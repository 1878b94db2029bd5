//! MConnection packet framing: `PacketCodec` on arbitrary bytes, fed in arbitrary chunks.
//!
//! Properties: no panic; the result does not depend on how the input is chunked; every packet
//! decoded re-encodes to bytes that decode to the same packet; errors are the typed ones.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use p2p_mconn::{Error, Packet, PacketCodec};

/// Decodes `wire` fed in chunks of `chunk` bytes: the packets, then how it stopped (`None` for
/// running out of input).
fn decode(wire: &[u8], chunk: usize) -> (Vec<Packet>, Option<Error>) {
    let mut codec = PacketCodec::new(1034);
    let mut buf = BytesMut::new();
    let mut packets = Vec::new();
    for piece in wire.chunks(chunk.max(1)) {
        buf.extend_from_slice(piece);
        loop {
            match codec.decode_packet(&mut buf) {
                Ok(Some(p)) => {
                    assert!(codec.last_len() <= 1034 + 2);
                    packets.push(p);
                }
                Ok(None) => break,
                Err(e) => return (packets, Some(e)),
            }
        }
    }
    (packets, None)
}

fuzz_target!(|input: (u8, &[u8])| {
    let (chunk, wire) = input;
    let whole = decode(wire, wire.len());
    let chunked = decode(wire, usize::from(chunk));
    assert_eq!(whole, chunked);
    if let Some(e) = &whole.1 {
        assert!(
            matches!(
                e,
                Error::PacketTooLarge { .. } | Error::MalformedPacket { .. } | Error::UnknownPacket
            ),
            "{e:?}"
        );
    }
    for p in &whole.0 {
        let bytes = p.to_bytes();
        let mut codec = PacketCodec::new(usize::MAX);
        let mut buf = BytesMut::from(&bytes[..]);
        assert_eq!(codec.decode_packet(&mut buf).unwrap().as_ref(), Some(p));
        assert!(buf.is_empty());
    }
});
