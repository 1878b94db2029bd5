//! IO-agnostic buffering shared by the tokio and blocking adapters.
//!
//! [`RecvBuf`] holds raw bytes read from the transport and decrypts whole frames in place, so a
//! frame's data is copied once: from the buffer to the caller. [`SendBuf`] seals caller data
//! straight into the outgoing buffer, so many frames go out in one write to the transport.

use crate::Error;
use crate::frame::{DATA_MAX_SIZE, Opener, SEALED_FRAME_LEN, Sealer, frames_for};
use crate::handshake::{AwaitingAuthSig, EPHEMERAL_MSG_LEN, Handshake};
use p2p_types::varint;

/// Largest handshake message the IO adapters accept. The reference allows 1 MiB, but honest
/// messages are 35 and 103 bytes; refusing anything over 64 KiB bounds the memory a peer can
/// make us hold before it has authenticated.
pub(crate) const IO_HANDSHAKE_MSG_LIMIT: usize = 64 * 1024;

/// Initial size of a receive buffer: enough for the handshake. It grows to its full size as
/// soon as one transport read fills it (more data was waiting), so connections that only ever
/// carry small messages stay small.
const INITIAL_RECV_BUF: usize = 2 * SEALED_FRAME_LEN;

/// Where [`RecvBuf::read_plain_into`] puts decrypted bytes.
pub(crate) trait PlainOut {
    /// Bytes that still fit.
    fn room(&self) -> usize;
    /// Appends `bytes` (at most `room()` of them).
    fn put(&mut self, bytes: &[u8]);
}

/// A plain slice, filled from the front.
#[cfg(any(test, feature = "std"))]
struct SliceOut<'a> {
    buf: &'a mut [u8],
    len: usize,
}

#[cfg(any(test, feature = "std"))]
impl PlainOut for SliceOut<'_> {
    fn room(&self) -> usize {
        self.buf.len() - self.len
    }

    fn put(&mut self, bytes: &[u8]) {
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }
}

#[cfg(feature = "tokio")]
impl PlainOut for tokio::io::ReadBuf<'_> {
    fn room(&self) -> usize {
        self.remaining()
    }

    fn put(&mut self, bytes: &[u8]) {
        self.put_slice(bytes);
    }
}

/// Receive-side buffer: `[consumed | plaintext | raw ciphertext | free]`.
pub(crate) struct RecvBuf {
    buf: Vec<u8>,
    /// The size `buf` may grow to.
    max: usize,
    /// Decrypted data not yet handed out, within `buf`.
    plain_start: usize,
    plain_end: usize,
    /// Bytes read from the transport and not yet decrypted.
    raw_start: usize,
    raw_end: usize,
    /// Plaintext left over from the handshake's last frame, served before anything else.
    extra: Vec<u8>,
    extra_pos: usize,
    /// A frame failed to open after data of earlier frames was handed out in the same call:
    /// the error is reported on the next call (and every later one).
    failed: Option<Error>,
}

impl RecvBuf {
    pub(crate) fn new(capacity: usize) -> Self {
        let max = capacity.max(SEALED_FRAME_LEN);
        Self {
            buf: vec![0u8; INITIAL_RECV_BUF.min(max)],
            max,
            plain_start: 0,
            plain_end: 0,
            raw_start: 0,
            raw_end: 0,
            extra: Vec::new(),
            extra_pos: 0,
            failed: None,
        }
    }

    /// Undecrypted bytes.
    pub(crate) fn raw(&self) -> &[u8] {
        &self.buf[self.raw_start..self.raw_end]
    }

    /// Drops `n` undecrypted bytes from the front.
    pub(crate) fn consume_raw(&mut self, n: usize) {
        self.raw_start = (self.raw_start + n).min(self.raw_end);
    }

    /// Free space to read transport bytes into, after moving the undecrypted tail to the front
    /// when no plaintext is pending. Empty only if the buffer is full of undecrypted bytes.
    pub(crate) fn spare(&mut self) -> &mut [u8] {
        if self.plain_start == self.plain_end && self.raw_start > 0 {
            self.buf.copy_within(self.raw_start..self.raw_end, 0);
            self.raw_end -= self.raw_start;
            self.raw_start = 0;
            self.plain_start = 0;
            self.plain_end = 0;
        }
        if self.buf.len() - self.raw_end < SEALED_FRAME_LEN {
            self.grow();
        }
        &mut self.buf[self.raw_end..]
    }

    /// Records that `n` bytes were written into [`spare`](Self::spare).
    pub(crate) fn filled(&mut self, n: usize) {
        self.raw_end = (self.raw_end + n).min(self.buf.len());
        if self.raw_end == self.buf.len() {
            // The read took all the room there was, so more is probably waiting: read in
            // full-size pieces from now on.
            self.grow();
        }
    }

    fn grow(&mut self) {
        if self.buf.len() < self.max {
            self.buf.resize(self.max, 0);
        }
    }

    #[cfg(any(test, feature = "std"))]
    /// Copies decrypted data into `out`, opening further complete frames while `out` has room.
    /// Returns the number of bytes copied; 0 means a transport read is needed (or `out` is
    /// empty).
    ///
    /// Every byte of the frames that authenticated before a bad one is handed out before the
    /// error is reported (as the reference, which reads frame by frame, does).
    pub(crate) fn read_plain(
        &mut self,
        opener: &mut Opener,
        out: &mut [u8],
    ) -> Result<usize, Error> {
        self.read_plain_into(opener, &mut SliceOut { buf: out, len: 0 })
    }

    /// [`read_plain`](Self::read_plain) into any [`PlainOut`] (tokio's `ReadBuf` need not be
    /// zeroed first, which matters when callers offer large uninitialised buffers).
    pub(crate) fn read_plain_into(
        &mut self,
        opener: &mut Opener,
        out: &mut impl PlainOut,
    ) -> Result<usize, Error> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let mut copied = 0;
        if self.extra_pos < self.extra.len() {
            let n = (self.extra.len() - self.extra_pos).min(out.room());
            out.put(&self.extra[self.extra_pos..self.extra_pos + n]);
            self.extra_pos += n;
            copied += n;
            if self.extra_pos == self.extra.len() {
                self.extra = Vec::new();
                self.extra_pos = 0;
            }
        }
        while out.room() > 0 {
            if self.plain_start < self.plain_end {
                let n = (self.plain_end - self.plain_start).min(out.room());
                out.put(&self.buf[self.plain_start..self.plain_start + n]);
                self.plain_start += n;
                copied += n;
                continue;
            }
            if self.raw_end - self.raw_start < SEALED_FRAME_LEN {
                break;
            }
            let start = self.raw_start;
            let range =
                match opener.open_frame_range(&mut self.buf[start..start + SEALED_FRAME_LEN]) {
                    Ok(range) => range,
                    Err(e) if copied > 0 => {
                        self.failed = Some(e);
                        break;
                    }
                    Err(e) => return Err(e),
                };
            self.raw_start += SEALED_FRAME_LEN;
            self.plain_start = start + range.start;
            self.plain_end = start + range.end;
        }
        Ok(copied)
    }

    /// Takes the peer's delimited ephemeral-key message off the front of the raw bytes, if it
    /// has fully arrived.
    pub(crate) fn take_ephemeral(&mut self) -> Result<Option<Vec<u8>>, Error> {
        let limit = IO_HANDSHAKE_MSG_LIMIT.min(self.max - varint::MAX_VARINT_LEN);
        let Some((len, used)) =
            varint::decode_length_prefix(self.raw(), limit).map_err(prefix_error)?
        else {
            return Ok(None);
        };
        if self.raw().len() < used + len {
            return Ok(None);
        }
        let mut msg = Vec::with_capacity(EPHEMERAL_MSG_LEN);
        msg.extend_from_slice(&self.raw()[..used + len]);
        self.consume_raw(used + len);
        Ok(Some(msg))
    }

    /// Opens the peer's frames with the handshake's keys until its delimited `AuthSigMessage`
    /// is complete in `acc`; returns the message, leaving any plaintext that follows it to be
    /// read as stream data.
    pub(crate) fn take_auth_sig(
        &mut self,
        hs: &mut Handshake<AwaitingAuthSig>,
        acc: &mut Vec<u8>,
    ) -> Result<Option<Vec<u8>>, Error> {
        loop {
            if let Some((len, used)) =
                varint::decode_length_prefix(acc, IO_HANDSHAKE_MSG_LIMIT).map_err(prefix_error)?
            {
                if acc.len() >= used + len {
                    let rest = acc.split_off(used + len);
                    let msg = core::mem::take(acc);
                    self.extra = rest;
                    self.extra_pos = 0;
                    return Ok(Some(msg));
                }
            }
            if self.raw_end - self.raw_start < SEALED_FRAME_LEN {
                return Ok(None);
            }
            let start = self.raw_start;
            let data = hs.open_frame(&mut self.buf[start..start + SEALED_FRAME_LEN])?;
            acc.extend_from_slice(data);
            self.raw_start += SEALED_FRAME_LEN;
        }
    }
}

fn prefix_error(e: p2p_types::Error) -> Error {
    match e {
        p2p_types::Error::MessageTooLarge { len, max } => {
            Error::HandshakeMessageTooLarge { len, max }
        }
        _ => Error::MalformedHandshake {
            reason: "bad length prefix",
        },
    }
}

/// Send-side buffer: sealed frames waiting for the transport.
#[cfg_attr(not(feature = "tokio"), allow(dead_code))] // The blocking adapter needs less.
pub(crate) struct SendBuf {
    buf: Vec<u8>,
    pos: usize,
    limit: usize,
}

#[cfg_attr(not(feature = "tokio"), allow(dead_code))]
impl SendBuf {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            buf: Vec::new(),
            pos: 0,
            limit: limit.max(SEALED_FRAME_LEN),
        }
    }

    /// Sealed bytes not yet written to the transport.
    pub(crate) fn pending(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pos == self.buf.len()
    }

    /// Whether no more data should be sealed until some is written out.
    pub(crate) fn is_full(&self) -> bool {
        self.buf.len() - self.pos >= self.limit
    }

    /// Marks `n` pending bytes as written.
    pub(crate) fn advance(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.buf.len());
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
    }

    /// Appends raw (already encoded) bytes.
    pub(crate) fn push_raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Seals as much of `data` as fits under the limit (always at least one frame's worth) and
    /// returns how many bytes of `data` it took.
    pub(crate) fn seal(&mut self, sealer: &mut Sealer, data: &[u8]) -> Result<usize, Error> {
        let pending = self.buf.len() - self.pos;
        let room_frames = (self.limit.saturating_sub(pending) / SEALED_FRAME_LEN).max(1);
        let take = data.len().min(room_frames * DATA_MAX_SIZE);
        if self.pos > 0
            && self.buf.capacity() - self.buf.len() < frames_for(take) * SEALED_FRAME_LEN
        {
            // Reuse the written-out front instead of growing.
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        sealer.seal(&data[..take], &mut self.buf)?;
        Ok(take)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aead::Backend;

    fn keys() -> (Sealer, Opener) {
        let k = [5u8; 32];
        (
            Sealer::new(Backend::RustCrypto, &k).unwrap(),
            Opener::new(Backend::RustCrypto, &k).unwrap(),
        )
    }

    #[test]
    fn send_buf_respects_limit() {
        let (mut s, _) = keys();
        let mut sb = SendBuf::new(4 * SEALED_FRAME_LEN);
        let data = vec![1u8; 10_000];
        let n = sb.seal(&mut s, &data).unwrap();
        assert_eq!(n, 4 * DATA_MAX_SIZE);
        assert!(sb.is_full());
        sb.advance(SEALED_FRAME_LEN);
        assert!(!sb.is_full());
        let n = sb.seal(&mut s, &data[4096..]).unwrap();
        assert_eq!(n, DATA_MAX_SIZE);
        assert_eq!(sb.pending().len(), 4 * SEALED_FRAME_LEN);
    }

    #[test]
    fn recv_buf_grows_once_a_read_fills_it() {
        let max = 64 * SEALED_FRAME_LEN;
        let mut rb = RecvBuf::new(max);
        // Small reads leave it small.
        assert_eq!(rb.spare().len(), INITIAL_RECV_BUF);
        rb.filled(100);
        assert_eq!(rb.spare().len(), INITIAL_RECV_BUF - 100);
        // A read that takes all the room grows it to the full size at once.
        let room = rb.spare().len();
        rb.filled(room);
        assert_eq!(rb.raw().len(), INITIAL_RECV_BUF);
        assert_eq!(rb.spare().len(), max - INITIAL_RECV_BUF);
    }

    #[test]
    fn data_before_a_bad_frame_is_delivered_first() {
        let (mut s, mut o) = keys();
        let mut wire = Vec::new();
        s.seal(b"authentic", &mut wire).unwrap();
        s.seal(b"forged", &mut wire).unwrap();
        wire[SEALED_FRAME_LEN + 10] ^= 1;
        let mut rb = RecvBuf::new(4 * SEALED_FRAME_LEN);
        let spare = rb.spare();
        spare[..wire.len()].copy_from_slice(&wire);
        rb.filled(wire.len());
        let mut out = [0u8; 100];
        assert_eq!(rb.read_plain(&mut o, &mut out).unwrap(), 9);
        assert_eq!(&out[..9], b"authentic");
        for _ in 0..2 {
            assert!(matches!(
                rb.read_plain(&mut o, &mut out),
                Err(Error::Crypto)
            ));
        }
    }

    #[test]
    fn recv_buf_handles_every_split() {
        let (mut s, _) = keys();
        let data: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
        let mut wire = Vec::new();
        s.seal(&data, &mut wire).unwrap();
        for step in [1, 7, 1043, 1044, 1045, 4096] {
            let (_, mut o) = keys();
            let mut rb = RecvBuf::new(3 * SEALED_FRAME_LEN);
            let mut got = Vec::new();
            let mut fed = 0;
            let mut out = [0u8; 700];
            while got.len() < data.len() {
                let n = rb.read_plain(&mut o, &mut out).unwrap();
                got.extend_from_slice(&out[..n]);
                if n == 0 {
                    let spare = rb.spare();
                    let k = step.min(spare.len()).min(wire.len() - fed);
                    assert!(k > 0, "stalled at step {step}");
                    spare[..k].copy_from_slice(&wire[fed..fed + k]);
                    rb.filled(k);
                    fed += k;
                }
            }
            assert_eq!(got, data, "step {step}");
        }
    }
}
