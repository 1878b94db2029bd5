//! A message type that is its own bytes.

use bytes::{Buf, BufMut, Bytes};
use prost::DecodeError;
use prost::encoding::{DecodeContext, WireType};

/// A reactor message type that is exactly its bytes, with no protobuf framing: every byte
/// string decodes (so nothing is a decode error), and sending one puts its bytes on the wire as
/// they are. For protocols that frame their messages themselves, and for talking to peers whose
/// reactor does the same (the Go conformance shim's echo reactor is one).
///
/// It is meant as a reactor's [`Message`](crate::Reactor::Message) only; as a field of another
/// `prost` message its content is skipped.
///
/// ```
/// use prost::Message;
/// use p2p_switch::Raw;
///
/// let raw = Raw::decode(&[0xff, 0x00, 0x07][..]).unwrap();
/// assert_eq!(raw.0.as_ref(), &[0xff, 0x00, 0x07]);
/// assert_eq!(raw.encode_to_vec(), vec![0xff, 0x00, 0x07]);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[allow(clippy::exhaustive_structs)]
pub struct Raw(pub Bytes);

impl prost::Message for Raw {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        buf.put_slice(&self.0);
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        prost::encoding::skip_field(wire_type, tag, buf, ctx)
    }

    fn encoded_len(&self) -> usize {
        self.0.len()
    }

    fn clear(&mut self) {
        self.0.clear();
    }

    fn decode(mut buf: impl Buf) -> Result<Self, DecodeError> {
        Ok(Self(buf.copy_to_bytes(buf.remaining())))
    }

    fn merge(&mut self, mut buf: impl Buf) -> Result<(), DecodeError> {
        let more = buf.copy_to_bytes(buf.remaining());
        if self.0.is_empty() {
            self.0 = more;
        } else {
            let mut joined = Vec::with_capacity(self.0.len() + more.len());
            joined.extend_from_slice(&self.0);
            joined.extend_from_slice(&more);
            self.0 = Bytes::from(joined);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn any_bytes_round_trip() {
        for bytes in [&[][..], &[0x0a, 0xff], &[0; 300]] {
            let raw = Raw::decode(bytes).unwrap();
            assert_eq!(raw.0.as_ref(), bytes);
            assert_eq!(raw.encode_to_vec(), bytes);
            assert_eq!(raw.encoded_len(), bytes.len());
        }
        let mut r = Raw(Bytes::from_static(b"ab"));
        r.merge(&b"cd"[..]).unwrap();
        assert_eq!(r.0.as_ref(), b"abcd");
    }
}
