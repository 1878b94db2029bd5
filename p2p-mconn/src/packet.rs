//! Packets and their framing: `uvarint(len) ‖ protobuf Packet`.
//!
//! A `Packet` is a oneof of `PacketPing {}` (field 1), `PacketPong {}` (field 2) and
//! `PacketMsg { int32 channel_id = 1; bool eof = 2; bytes data = 3; }` (field 3). Encoding is
//! written out by hand (it is on the hot path and trivial); decoding goes through `prost`, so
//! whatever protobuf allows (unknown fields, fields out of order) is accepted as the reference
//! accepts it. Both are checked against the reference's vectors in the tests.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use p2p_types::proto::p2p as pb;
use p2p_types::varint::{decode_length_prefix, encode_uvarint, uvarint_len};
use prost::Message as _;

use crate::Error;

/// One packet of the protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Packet {
    /// Keepalive request; answered with a pong.
    Ping,
    /// Keepalive answer.
    Pong,
    /// A piece of a channel message.
    Msg(PacketMsg),
}

/// A piece of a message on a channel; the piece with `eof` set completes the message.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PacketMsg {
    /// The channel, as sent (the protocol carries an `int32`; only 0..=255 are valid).
    pub channel_id: i32,
    /// Whether this piece ends the message.
    pub eof: bool,
    /// The piece's bytes.
    pub data: Bytes,
}

impl PacketMsg {
    /// A message piece.
    pub fn new(channel_id: u8, eof: bool, data: impl Into<Bytes>) -> Self {
        Self {
            channel_id: i32::from(channel_id),
            eof,
            data: data.into(),
        }
    }
}

/// Wire encoding of a delimited ping: `02 0a 00`.
pub const PING_BYTES: [u8; 3] = [0x02, 0x0a, 0x00];
/// Wire encoding of a delimited pong: `02 12 00`.
pub const PONG_BYTES: [u8; 3] = [0x02, 0x12, 0x00];

/// Protobuf size of the `PacketMsg` fields (without the outer `Packet` wrapper).
fn msg_inner_len(channel: u8, eof: bool, data_len: usize) -> usize {
    let ch = if channel == 0 {
        0
    } else {
        1 + uvarint_len(u64::from(channel))
    };
    let eof = if eof { 2 } else { 0 };
    let data = if data_len == 0 {
        0
    } else {
        1 + uvarint_len(data_len as u64) + data_len
    };
    ch + eof + data
}

/// Protobuf size of a `Packet` holding a `PacketMsg` (without the length prefix).
pub fn msg_packet_len(channel: u8, eof: bool, data_len: usize) -> usize {
    let inner = msg_inner_len(channel, eof, data_len);
    1 + uvarint_len(inner as u64) + inner
}

/// The largest packet body accepted from a peer for a given payload size: the encoded size of
/// a `Packet` with a `PacketMsg` on channel 1 with `eof` set and `payload` data bytes, as the
/// reference computes it (1034 for 1024).
pub fn max_packet_size(payload: usize) -> usize {
    msg_packet_len(1, true, payload)
}

/// The largest data piece that fits a packet of [`max_packet_size`] on `channel`: the payload
/// size, or one byte less on channels 0x80 and above, whose ID takes two bytes. (The reference
/// sends full pieces there and its own receivers reject them; we stay within the limit.)
pub fn max_piece_len(channel: u8, payload: usize) -> usize {
    let max = max_packet_size(payload);
    let mut piece = payload;
    while piece > 1 && msg_packet_len(channel, true, piece) > max {
        piece -= 1;
    }
    piece
}

/// Appends `uvarint(len) ‖ Packet{PacketMsg{channel, eof, data}}` to `out`; returns the
/// number of bytes written.
pub fn encode_msg(channel: u8, eof: bool, data: &[u8], out: &mut impl BufMut) -> usize {
    let inner = msg_inner_len(channel, eof, data.len());
    let body = 1 + uvarint_len(inner as u64) + inner;
    let start = out.remaining_mut();
    encode_uvarint(body as u64, out);
    out.put_u8(0x1a); // Packet.packet_msg, field 3, length-delimited
    encode_uvarint(inner as u64, out);
    if channel != 0 {
        out.put_u8(0x08); // channel_id, field 1, varint
        encode_uvarint(u64::from(channel), out);
    }
    if eof {
        out.put_slice(&[0x10, 0x01]); // eof, field 2, varint true
    }
    if !data.is_empty() {
        out.put_u8(0x1a); // data, field 3, length-delimited
        encode_uvarint(data.len() as u64, out);
        out.put_slice(data);
    }
    start - out.remaining_mut()
}

impl Packet {
    /// Appends the delimited encoding of the packet to `out`; returns the bytes written.
    pub fn encode(&self, out: &mut impl BufMut) -> usize {
        match self {
            Self::Ping => {
                out.put_slice(&PING_BYTES);
                PING_BYTES.len()
            }
            Self::Pong => {
                out.put_slice(&PONG_BYTES);
                PONG_BYTES.len()
            }
            Self::Msg(m) => {
                // Channels outside 0..=255 cannot be produced by `PacketMsg::new`; encode any
                // other value through prost so that tests can build such packets.
                match u8::try_from(m.channel_id) {
                    Ok(ch) => encode_msg(ch, m.eof, &m.data, out),
                    Err(_) => {
                        let p = pb::Packet {
                            sum: Some(pb::packet::Sum::PacketMsg(pb::PacketMsg {
                                channel_id: m.channel_id,
                                eof: m.eof,
                                data: m.data.clone(),
                            })),
                        };
                        let bytes = p.encode_length_delimited_to_vec();
                        out.put_slice(&bytes);
                        bytes.len()
                    }
                }
            }
        }
    }

    /// The delimited encoding as a new buffer.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::new();
        self.encode(&mut out);
        out.freeze()
    }

    /// Decodes a packet body (without the length prefix).
    pub fn decode_body(body: Bytes) -> Result<Self, Error> {
        let p = pb::Packet::decode(body).map_err(|e| Error::MalformedPacket {
            reason: e.to_string(),
        })?;
        match p.sum {
            Some(pb::packet::Sum::PacketPing(_)) => Ok(Self::Ping),
            Some(pb::packet::Sum::PacketPong(_)) => Ok(Self::Pong),
            Some(pb::packet::Sum::PacketMsg(m)) => Ok(Self::Msg(PacketMsg {
                channel_id: m.channel_id,
                eof: m.eof,
                data: m.data,
            })),
            None => Err(Error::UnknownPacket),
        }
    }
}

/// Splits a byte stream into [`Packet`]s, rejecting any packet longer than the limit before
/// reading it; also encodes packets. Usable with `tokio_util::codec::{FramedRead, FramedWrite}`.
///
/// ```
/// use bytes::BytesMut;
/// use p2p_mconn::{Packet, PacketCodec};
///
/// let mut codec = PacketCodec::new(1034);
/// let mut buf = BytesMut::from(&[0x02, 0x0a, 0x00, 0x02][..]);
/// assert_eq!(codec.decode_packet(&mut buf).unwrap(), Some(Packet::Ping));
/// assert_eq!(codec.decode_packet(&mut buf).unwrap(), None); // a partial packet waits
/// ```
#[derive(Clone, Debug)]
pub struct PacketCodec {
    max_packet_size: usize,
    last_len: usize,
}

impl PacketCodec {
    /// A codec accepting packet bodies of at most `max_packet_size` bytes (see
    /// [`max_packet_size`]).
    pub fn new(max_packet_size: usize) -> Self {
        Self {
            max_packet_size,
            last_len: 0,
        }
    }

    /// Wire size (prefix included) of the packet last returned by `decode_packet`.
    pub fn last_len(&self) -> usize {
        self.last_len
    }

    /// Where the first packet in `buf` is: `Ok(Some((prefix_len, body_len)))` once it has
    /// fully arrived, `Ok(None)` before. A length over the limit is an error as soon as the
    /// prefix is readable.
    pub(crate) fn frame(&self, buf: &[u8]) -> Result<Option<(usize, usize)>, Error> {
        let prefix = decode_length_prefix(buf, self.max_packet_size).map_err(|e| match e {
            p2p_types::Error::MessageTooLarge { len, max } => Error::PacketTooLarge { len, max },
            other => Error::MalformedPacket {
                reason: other.to_string(),
            },
        })?;
        Ok(prefix
            .filter(|&(len, used)| buf.len() >= used + len)
            .map(|(len, used)| (used, len)))
    }

    /// Takes one packet from the front of `buf`: `Ok(None)` if `buf` does not hold a whole
    /// packet yet (nothing is consumed then).
    pub fn decode_packet(&mut self, buf: &mut BytesMut) -> Result<Option<Packet>, Error> {
        let Some((used, len)) = self.frame(buf)? else {
            return Ok(None);
        };
        buf.advance(used);
        let body = buf.split_to(len).freeze();
        self.last_len = used + len;
        Packet::decode_body(body).map(Some)
    }
}

impl tokio_util::codec::Decoder for PacketCodec {
    type Item = Packet;
    type Error = Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Packet>, Error> {
        self.decode_packet(src)
    }
}

impl tokio_util::codec::Encoder<Packet> for PacketCodec {
    type Error = Error;

    fn encode(&mut self, item: Packet, dst: &mut BytesMut) -> Result<(), Error> {
        item.encode(dst);
        Ok(())
    }
}

impl From<Error> for std::io::Error {
    fn from(e: Error) -> Self {
        let kind = match &e {
            Error::Io(inner) => inner.kind(),
            Error::UnexpectedEof => std::io::ErrorKind::UnexpectedEof,
            _ => std::io::ErrorKind::InvalidData,
        };
        Self::new(kind, e)
    }
}

/// A packet whose data is borrowed from the buffer it was read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PacketView<'a> {
    Ping,
    Pong,
    Msg {
        channel_id: i32,
        eof: bool,
        data: &'a [u8],
    },
}

impl Packet {
    /// The packet as a view of its own data.
    pub(crate) fn view(&self) -> PacketView<'_> {
        match self {
            Self::Ping => PacketView::Ping,
            Self::Pong => PacketView::Pong,
            Self::Msg(m) => PacketView::Msg {
                channel_id: m.channel_id,
                eof: m.eof,
                data: &m.data,
            },
        }
    }
}

/// Reads a minimal varint (as encoders write them) from the front of `buf`.
fn minimal_varint(buf: &[u8]) -> Option<(u64, usize)> {
    let (v, n) = p2p_types::varint::decode_uvarint(buf).ok()??;
    (n == uvarint_len(v)).then_some((v, n))
}

/// Parses a packet body if it is in the canonical form every encoder produces (fields in
/// order, each once, defaults omitted, minimal varints, nothing unknown); `None` for anything
/// else, which the caller then hands to the general protobuf decoder. This is the hot path of
/// the receive side: no allocation, no copy.
pub(crate) fn parse_canonical(body: &[u8]) -> Option<PacketView<'_>> {
    match body {
        [0x0a, 0x00] => Some(PacketView::Ping),
        [0x12, 0x00] => Some(PacketView::Pong),
        [0x1a, rest @ ..] => {
            let (inner_len, n) = minimal_varint(rest)?;
            let mut inner = rest.get(n..)?;
            if inner.len() as u64 != inner_len {
                return None;
            }
            let mut channel_id = 0;
            if let [0x08, tail @ ..] = inner {
                let (ch, n) = minimal_varint(tail)?;
                if ch == 0 || ch > i32::MAX as u64 {
                    return None;
                }
                channel_id = ch as i32;
                inner = &tail[n..];
            }
            let mut eof = false;
            if let [0x10, 0x01, tail @ ..] = inner {
                eof = true;
                inner = tail;
            }
            let data: &[u8] = match inner {
                [] => &[],
                [0x1a, tail @ ..] => {
                    let (len, n) = minimal_varint(tail)?;
                    let data = &tail[n..];
                    if len == 0 || data.len() as u64 != len {
                        return None;
                    }
                    data
                }
                _ => return None,
            };
            Some(PacketView::Msg {
                channel_id,
                eof,
                data,
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn prost_encoding(channel_id: i32, eof: bool, data: &[u8]) -> Vec<u8> {
        pb::Packet {
            sum: Some(pb::packet::Sum::PacketMsg(pb::PacketMsg {
                channel_id,
                eof,
                data: Bytes::copy_from_slice(data),
            })),
        }
        .encode_length_delimited_to_vec()
    }

    #[test]
    fn reference_vectors() {
        // TestConnVectors in the reference's p2p/conn/connection_test.go.
        assert_eq!(hex::encode(Packet::Ping.to_bytes()), "020a00");
        assert_eq!(hex::encode(Packet::Pong.to_bytes()), "021200");
        let msg = Packet::Msg(PacketMsg::new(
            1,
            false,
            &b"data transmitted over the wire"[..],
        ));
        let enc = msg.to_bytes();
        assert_eq!(
            hex::encode(&enc[1..]),
            "1a2208011a1e64617461207472616e736d6974746564206f766572207468652077697265"
        );
        assert_eq!(enc[0] as usize, enc.len() - 1);
    }

    #[test]
    fn max_packet_sizes() {
        assert_eq!(max_packet_size(1024), 1034);
        assert_eq!(max_packet_size(2048), 2058);
        assert_eq!(max_packet_size(4096), 4106);
        assert_eq!(max_piece_len(0x01, 1024), 1024);
        assert_eq!(max_piece_len(0x00, 1024), 1024);
        assert_eq!(max_piece_len(0x80, 1024), 1023);
        assert_eq!(max_piece_len(0xff, 1024), 1023);
    }

    /// The fast parser agrees with prost wherever it answers, and answers for everything we
    /// encode.
    fn check_parsers_agree(body: &[u8]) {
        let general = Packet::decode_body(Bytes::copy_from_slice(body));
        if let Some(view) = parse_canonical(body) {
            let general = general.expect("canonical input decodes");
            assert_eq!(view, general.view(), "{}", hex::encode(body));
        }
    }

    proptest! {
        #[test]
        fn fast_parser_agrees_with_prost(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            check_parsers_agree(&bytes);
            // Also with a plausible start.
            let mut b = vec![0x1a, bytes.len() as u8];
            b.extend_from_slice(&bytes);
            check_parsers_agree(&b);
        }

        #[test]
        fn fast_parser_takes_all_we_encode(ch in any::<u8>(), eof in any::<bool>(), data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut out = BytesMut::new();
            encode_msg(ch, eof, &data, &mut out);
            let (_, used) = p2p_types::varint::decode_uvarint(&out).unwrap().unwrap();
            let view = parse_canonical(&out[used..]).expect("canonical");
            prop_assert_eq!(view, PacketView::Msg { channel_id: i32::from(ch), eof, data: &data });
        }

        #[test]
        fn encoding_matches_prost(ch in any::<u8>(), eof in any::<bool>(), data in proptest::collection::vec(any::<u8>(), 0..3000)) {
            let mut out = BytesMut::new();
            let n = encode_msg(ch, eof, &data, &mut out);
            prop_assert_eq!(n, out.len());
            prop_assert_eq!(out.to_vec(), prost_encoding(i32::from(ch), eof, &data));
            prop_assert_eq!(out.len(), uvarint_len(msg_packet_len(ch, eof, data.len()) as u64) + msg_packet_len(ch, eof, data.len()));
            let mut codec = PacketCodec::new(usize::MAX);
            let p = codec.decode_packet(&mut out).unwrap().unwrap();
            prop_assert_eq!(p, Packet::Msg(PacketMsg::new(ch, eof, data)));
            prop_assert!(out.is_empty());
        }

        #[test]
        fn full_pieces_fit_the_limit(ch in any::<u8>(), payload in 2usize..5000) {
            let piece = max_piece_len(ch, payload);
            prop_assert!(msg_packet_len(ch, true, piece) <= max_packet_size(payload));
            prop_assert!(piece + 1 >= payload);
        }

        #[test]
        fn decoding_any_split_is_the_same(data in proptest::collection::vec(any::<u8>(), 0..200), cut in any::<prop::sample::Index>()) {
            let mut wire = BytesMut::new();
            Packet::Ping.encode(&mut wire);
            encode_msg(3, true, &data, &mut wire);
            Packet::Pong.encode(&mut wire);
            let cut = cut.index(wire.len() + 1);
            let mut codec = PacketCodec::new(1034);
            let mut buf = BytesMut::from(&wire[..cut]);
            let mut got = Vec::new();
            while let Some(p) = codec.decode_packet(&mut buf).unwrap() { got.push(p); }
            buf.extend_from_slice(&wire[cut..]);
            while let Some(p) = codec.decode_packet(&mut buf).unwrap() { got.push(p); }
            prop_assert_eq!(got, vec![Packet::Ping, Packet::Msg(PacketMsg::new(3, true, data)), Packet::Pong]);
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut codec = PacketCodec::new(1034);
            let mut buf = BytesMut::from(&bytes[..]);
            while let Ok(Some(_)) = codec.decode_packet(&mut buf) {}
        }
    }

    #[test]
    fn fast_parser_defers_non_canonical_forms() {
        assert_eq!(parse_canonical(&[0x0a, 0x00]), Some(PacketView::Ping));
        assert_eq!(parse_canonical(&[0x12, 0x00]), Some(PacketView::Pong));
        for body in [
            &[0x10, 0x00][..],                     // eof explicitly false
            &[0x1a, 0x02, 0x10, 0x00],             // eof false inside a message
            &[0x1a, 0x02, 0x08, 0x00],             // channel 0 written out
            &[0x1a, 0x03, 0x08, 0x81, 0x00],       // non-minimal varint
            &[0x1a, 0x02, 0x1a, 0x00],             // empty data written out
            &[0x1a, 0x04, 0x10, 0x01, 0x08, 0x01], // fields out of order
            &[0x1a, 0x02, 0x20, 0x01],             // unknown field
            &[0x0a, 0x02, 0x08, 0x01],             // ping with an unknown field
            &[0x1a, 0x00, 0x1a, 0x00],             // two messages
            &[],                                   // no variant
        ] {
            assert_eq!(parse_canonical(body), None, "{}", hex::encode(body));
            check_parsers_agree(body);
        }
    }

    #[test]
    fn rejections() {
        let mut codec = PacketCodec::new(1034);
        // Announced length above the limit: rejected before the body arrives.
        let mut buf = BytesMut::from(&[0x8b, 0x08][..]); // 1035
        assert_eq!(
            codec.decode_packet(&mut buf),
            Err(Error::PacketTooLarge {
                len: 1035,
                max: 1034
            })
        );
        // An empty packet carries no variant.
        let mut buf = BytesMut::from(&[0x00][..]);
        assert_eq!(codec.decode_packet(&mut buf), Err(Error::UnknownPacket));
        // Not protobuf.
        let mut buf = BytesMut::from(&[0x02, 0xff, 0xff][..]);
        assert!(matches!(
            codec.decode_packet(&mut buf),
            Err(Error::MalformedPacket { .. })
        ));
        // A channel ID outside a byte survives decoding (the connection rejects it).
        let wire = prost_encoding(300, true, b"x");
        let mut buf = BytesMut::from(&wire[..]);
        let p = codec.decode_packet(&mut buf).unwrap().unwrap();
        assert!(matches!(
            p,
            Packet::Msg(PacketMsg {
                channel_id: 300,
                ..
            })
        ));
        // A varint longer than ten bytes.
        let mut buf = BytesMut::from(&[0xff; 11][..]);
        assert!(matches!(
            codec.decode_packet(&mut buf),
            Err(Error::MalformedPacket { .. })
        ));
    }
}
