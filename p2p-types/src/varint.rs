//! Unsigned LEB128 varints and varint-length-delimited messages.
//!
//! Every handshake message and every MConnection packet travels as `uvarint(len) ‖ body`
//! (protobuf's delimited format, `libs/protoio` in the reference). The reference rejects a
//! length above the reader's limit *before* reading the body; [`decode_length_prefix`] lets
//! callers do the same without allocating.

use crate::Error;

/// Longest possible encoding of a `u64` varint.
pub const MAX_VARINT_LEN: usize = 10;

/// Number of bytes [`encode_uvarint`] writes for `value`.
pub const fn uvarint_len(mut value: u64) -> usize {
    let mut n = 1;
    while value >= 0x80 {
        value >>= 7;
        n += 1;
    }
    n
}

/// Appends the varint encoding of `value` to `out`.
pub fn encode_uvarint(mut value: u64, out: &mut impl bytes::BufMut) {
    while value >= 0x80 {
        out.put_u8((value as u8) | 0x80);
        value >>= 7;
    }
    out.put_u8(value as u8);
}

/// Decodes a varint at the start of `buf`.
///
/// Returns `Ok(None)` when `buf` ends before the varint does, and `Ok(Some((value,
/// bytes_used)))` otherwise. Encodings longer than ten bytes or overflowing 64 bits are
/// rejected, as Go's `binary.ReadUvarint` does.
pub fn decode_uvarint(buf: &[u8]) -> Result<Option<(u64, usize)>, Error> {
    let mut value: u64 = 0;
    for (i, &b) in buf.iter().enumerate() {
        if i == MAX_VARINT_LEN - 1 && b > 1 {
            return Err(Error::VarintOverflow);
        }
        value |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            return Ok(Some((value, i + 1)));
        }
        if i + 1 == MAX_VARINT_LEN {
            return Err(Error::VarintOverflow);
        }
    }
    Ok(None)
}

/// Decodes the length prefix of a delimited message and checks it against `max_len`.
///
/// Returns `Ok(None)` if more bytes are needed to read the prefix, else `Ok(Some((body_len,
/// prefix_len)))`. A body longer than `max_len` is an error ([`Error::MessageTooLarge`]), raised
/// before any of the body is read.
pub fn decode_length_prefix(buf: &[u8], max_len: usize) -> Result<Option<(usize, usize)>, Error> {
    let Some((len, used)) = decode_uvarint(buf)? else {
        return Ok(None);
    };
    match usize::try_from(len) {
        Ok(len) if len <= max_len => Ok(Some((len, used))),
        _ => Err(Error::MessageTooLarge { len, max: max_len }),
    }
}

/// Encodes a protobuf message as `uvarint(len) ‖ body`.
pub fn encode_delimited<M: prost::Message>(msg: &M) -> Vec<u8> {
    msg.encode_length_delimited_to_vec()
}

/// Decodes one complete delimited message that fills `buf` exactly.
///
/// Fails if the prefix announces more than `max_len` bytes, if `buf` holds fewer or more bytes
/// than announced, or if the body is not a valid `M`.
pub fn decode_delimited<M: prost::Message + Default>(
    buf: &[u8],
    max_len: usize,
) -> Result<M, Error> {
    let (len, used) = decode_length_prefix(buf, max_len)?.ok_or(Error::Truncated)?;
    let body = &buf[used..];
    if body.len() != len {
        return Err(if body.len() < len {
            Error::Truncated
        } else {
            Error::TrailingBytes {
                extra: body.len() - len,
            }
        });
    }
    M::decode(body).map_err(|e| Error::Decode {
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_encodings() {
        let mut v = Vec::new();
        encode_uvarint(300, &mut v);
        assert_eq!(v, [0xac, 0x02]);
        assert_eq!(decode_uvarint(&v).unwrap(), Some((300, 2)));
        assert_eq!(decode_uvarint(&[0x80]).unwrap(), None);
        assert_eq!(decode_uvarint(&[]).unwrap(), None);
    }

    #[test]
    fn overflow_is_rejected() {
        let too_long = [0xff; 11];
        assert_eq!(decode_uvarint(&too_long), Err(Error::VarintOverflow));
        let mut big = [0xff; 10];
        big[9] = 0x02; // 2^64 and above
        assert_eq!(decode_uvarint(&big), Err(Error::VarintOverflow));
        let mut max = [0xff; 10];
        max[9] = 0x01;
        assert_eq!(decode_uvarint(&max).unwrap(), Some((u64::MAX, 10)));
    }

    #[test]
    fn limit_is_checked_before_body() {
        assert_eq!(
            decode_length_prefix(&[0x80, 0x08], 1023),
            Err(Error::MessageTooLarge {
                len: 1024,
                max: 1023
            })
        );
        assert_eq!(
            decode_length_prefix(&[0x80, 0x08], 1024).unwrap(),
            Some((1024, 2))
        );
    }

    proptest! {
        #[test]
        fn round_trip(v: u64) {
            let mut buf = Vec::new();
            encode_uvarint(v, &mut buf);
            prop_assert_eq!(buf.len(), uvarint_len(v));
            prop_assert_eq!(decode_uvarint(&buf).unwrap(), Some((v, buf.len())));
            for cut in 0..buf.len() {
                prop_assert_eq!(decode_uvarint(&buf[..cut]).unwrap(), None);
            }
        }

        #[test]
        fn never_panics(buf: Vec<u8>, max in 0usize..2048) {
            let _ = decode_length_prefix(&buf, max);
        }
    }
}
