//! Encrypted framing: every frame carries at most 1024 bytes of data and is exactly 1044 bytes
//! on the wire.
//!
//! ```text
//! plaintext (1028 bytes):  data_len: u32 LE | data (data_len <= 1024) | padding
//! sealed    (1044 bytes):  ChaCha20-Poly1305(plaintext, nonce, no AAD) | tag (16)
//! nonce     (12 bytes):    0u32 | counter: u64 LE      (one counter per direction, from 0)
//! ```
//!
//! Receivers ignore the padding; we always send zeros there. A zero-length frame is legal.

use core::fmt;

use zeroize::Zeroize as _;

use crate::Error;
use crate::aead::{Backend, Cipher, KEY_LEN, NONCE_LEN, TAG_LEN};

/// Size of the little-endian length prefix inside a frame.
pub const DATA_LEN_SIZE: usize = 4;
/// Maximum number of data bytes in one frame.
pub const DATA_MAX_SIZE: usize = 1024;
/// Size of a frame's plaintext: length prefix, data and padding.
pub const FRAME_PLAINTEXT_LEN: usize = DATA_LEN_SIZE + DATA_MAX_SIZE;
/// Size of a sealed frame on the wire. Every frame has exactly this size.
pub const SEALED_FRAME_LEN: usize = FRAME_PLAINTEXT_LEN + TAG_LEN;

/// Number of sealed frames needed to carry `len` bytes (a zero-length write sends none).
pub const fn frames_for(len: usize) -> usize {
    len.div_ceil(DATA_MAX_SIZE)
}

/// One direction's nonce counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct NonceCounter(u64);

impl NonceCounter {
    /// Returns the nonce to use now and advances the counter. The last counter value is never
    /// used: like the reference, which refuses to increment past it, we stop one short.
    fn next(&mut self) -> Result<[u8; NONCE_LEN], Error> {
        if self.0 == u64::MAX {
            return Err(Error::NonceExhausted);
        }
        let nonce = nonce_bytes(self.0);
        self.0 += 1;
        Ok(nonce)
    }
}

/// The 12-byte nonce for a frame counter: four zero bytes, then the counter little-endian.
pub const fn nonce_bytes(counter: u64) -> [u8; NONCE_LEN] {
    let c = counter.to_le_bytes();
    [0, 0, 0, 0, c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]
}

/// Seals outgoing frames (one direction of a [`SecretSession`]).
pub struct Sealer {
    cipher: Cipher,
    nonce: NonceCounter,
}

impl Sealer {
    pub(crate) fn new(backend: Backend, key: &[u8; KEY_LEN]) -> Result<Self, Error> {
        Ok(Self {
            cipher: Cipher::new(backend, key)?,
            nonce: NonceCounter::default(),
        })
    }

    /// Number of frames sealed so far (the next frame's nonce counter).
    pub fn frames_sealed(&self) -> u64 {
        self.nonce.0
    }

    /// Seals one frame carrying `data` (at most [`DATA_MAX_SIZE`] bytes) into `out`.
    pub fn seal_frame(
        &mut self,
        data: &[u8],
        out: &mut [u8; SEALED_FRAME_LEN],
    ) -> Result<(), Error> {
        let len = data.len();
        if len > DATA_MAX_SIZE {
            return Err(Error::FrameLength { len: len as u64 });
        }
        out[..DATA_LEN_SIZE].copy_from_slice(&(len as u32).to_le_bytes());
        out[DATA_LEN_SIZE..DATA_LEN_SIZE + len].copy_from_slice(data);
        out[DATA_LEN_SIZE + len..FRAME_PLAINTEXT_LEN].fill(0);
        self.seal_plaintext_in_place(out)
    }

    /// Seals a frame whose plaintext (`len ‖ data ‖ padding`) is already in
    /// `frame[..FRAME_PLAINTEXT_LEN]`, writing the tag after it.
    pub(crate) fn seal_plaintext_in_place(
        &mut self,
        frame: &mut [u8; SEALED_FRAME_LEN],
    ) -> Result<(), Error> {
        let nonce = self.nonce.next()?;
        let (plain, tag_out) = frame.split_at_mut(FRAME_PLAINTEXT_LEN);
        let tag = self.cipher.seal_in_place(nonce, plain)?;
        tag_out.copy_from_slice(&tag);
        Ok(())
    }

    /// Appends the sealed frames carrying all of `data` to `out`: one frame per started 1024
    /// bytes, none for empty `data`. This is the fast path: each frame is built directly in
    /// `out` and encrypted in place, so the data is copied exactly once.
    pub fn seal(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        let start = out.len();
        out.reserve(frames_for(data.len()) * SEALED_FRAME_LEN);
        for chunk in data.chunks(DATA_MAX_SIZE) {
            let frame_start = out.len();
            out.extend_from_slice(&(chunk.len() as u32).to_le_bytes());
            out.extend_from_slice(chunk);
            // Zero padding (only short frames have any) and room for the tag.
            out.resize(frame_start + SEALED_FRAME_LEN, 0);
            let frame: &mut [u8; SEALED_FRAME_LEN] = (&mut out[frame_start..])
                .try_into()
                .map_err(|_| Error::FrameLength { len: 0 })?;
            if let Err(e) = self.seal_plaintext_in_place(frame) {
                out.truncate(start);
                return Err(e);
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer")
            .field("cipher", &self.cipher)
            .field("frames_sealed", &self.nonce.0)
            .finish()
    }
}

/// Opens incoming frames (the other direction of a [`SecretSession`]).
pub struct Opener {
    cipher: Cipher,
    nonce: NonceCounter,
}

impl Opener {
    pub(crate) fn new(backend: Backend, key: &[u8; KEY_LEN]) -> Result<Self, Error> {
        Ok(Self {
            cipher: Cipher::new(backend, key)?,
            nonce: NonceCounter::default(),
        })
    }

    /// Number of frames opened so far (the next frame's nonce counter).
    pub fn frames_opened(&self) -> u64 {
        self.nonce.0
    }

    /// Authenticates and decrypts one sealed frame in place and returns its data.
    ///
    /// `frame` must be exactly [`SEALED_FRAME_LEN`] bytes. Any failure (wrong size, bad tag,
    /// length prefix above [`DATA_MAX_SIZE`]) is fatal for the connection: the nonce has
    /// advanced, so later frames cannot be opened either.
    pub fn open_frame<'a>(&mut self, frame: &'a mut [u8]) -> Result<&'a [u8], Error> {
        let range = self.open_frame_range(frame)?;
        Ok(&frame[range])
    }

    /// Like [`open_frame`](Self::open_frame), returning where the data lies in `frame`.
    pub fn open_frame_range(&mut self, frame: &mut [u8]) -> Result<core::ops::Range<usize>, Error> {
        if frame.len() != SEALED_FRAME_LEN {
            return Err(Error::FrameSize { len: frame.len() });
        }
        let nonce = self.nonce.next()?;
        let (body, tag) = frame.split_at_mut(FRAME_PLAINTEXT_LEN);
        let tag: &[u8; TAG_LEN] = (&*tag).try_into().map_err(|_| Error::Crypto)?;
        if let Err(e) = self.cipher.open_in_place(nonce, body, tag) {
            // Do not leave unauthenticated plaintext around.
            body.zeroize();
            return Err(e);
        }
        let mut len_bytes = [0u8; DATA_LEN_SIZE];
        len_bytes.copy_from_slice(&body[..DATA_LEN_SIZE]);
        let len = u32::from_le_bytes(len_bytes);
        if len as usize > DATA_MAX_SIZE {
            return Err(Error::FrameLength { len: len.into() });
        }
        Ok(DATA_LEN_SIZE..DATA_LEN_SIZE + len as usize)
    }
}

impl fmt::Debug for Opener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Opener")
            .field("cipher", &self.cipher)
            .field("frames_opened", &self.nonce.0)
            .finish()
    }
}

/// The established session: a [`Sealer`] for what we send and an [`Opener`] for what we
/// receive. It never touches a socket; the IO adapters ([`SecretStream`](crate::SecretStream),
/// [`blocking::SecretStream`](crate::blocking::SecretStream)) are built on it.
#[derive(Debug)]
pub struct SecretSession {
    sealer: Sealer,
    opener: Opener,
}

impl SecretSession {
    pub(crate) fn from_parts(sealer: Sealer, opener: Opener) -> Self {
        Self { sealer, opener }
    }

    /// See [`Sealer::seal`].
    pub fn seal(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        self.sealer.seal(data, out)
    }

    /// See [`Opener::open_frame`].
    pub fn open_frame<'a>(&mut self, frame: &'a mut [u8]) -> Result<&'a [u8], Error> {
        self.opener.open_frame(frame)
    }

    /// The sending half.
    pub fn sealer(&mut self) -> &mut Sealer {
        &mut self.sealer
    }

    /// The receiving half.
    pub fn opener(&mut self) -> &mut Opener {
        &mut self.opener
    }

    /// Splits the session into independently owned halves (one per task or thread).
    pub fn split(self) -> (Sealer, Opener) {
        (self.sealer, self.opener)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(backend: Backend) -> (Sealer, Opener) {
        let key = [42u8; 32];
        (
            Sealer::new(backend, &key).unwrap(),
            Opener::new(backend, &key).unwrap(),
        )
    }

    #[test]
    fn seal_open_round_trip_all_backends() {
        for &backend in Backend::all() {
            let (mut s, mut o) = pair(backend);
            let data: Vec<u8> = (0..3000u32).map(|i| (i * 7) as u8).collect();
            let mut wire = Vec::new();
            s.seal(&data, &mut wire).unwrap();
            assert_eq!(wire.len(), 3 * SEALED_FRAME_LEN);
            let mut got = Vec::new();
            for frame in wire.chunks_exact_mut(SEALED_FRAME_LEN) {
                got.extend_from_slice(o.open_frame(frame).unwrap());
            }
            assert_eq!(got, data);
            assert_eq!(s.frames_sealed(), 3);
            assert_eq!(o.frames_opened(), 3);
        }
    }

    #[test]
    fn backends_agree_byte_for_byte() {
        let all = Backend::all();
        let mut outputs = Vec::new();
        for &backend in all {
            let (mut s, _) = pair(backend);
            let mut wire = Vec::new();
            s.seal(b"hello", &mut wire).unwrap();
            s.seal(&[9u8; 1500], &mut wire).unwrap();
            outputs.push(wire);
        }
        assert!(outputs.windows(2).all(|w| w[0] == w[1]));
    }

    #[test]
    fn empty_data_seals_no_frame() {
        let (mut s, _) = pair(Backend::RustCrypto);
        let mut wire = Vec::new();
        s.seal(&[], &mut wire).unwrap();
        assert!(wire.is_empty());
        assert_eq!(s.frames_sealed(), 0);
    }

    #[test]
    fn tampering_is_detected_every_byte() {
        for &backend in Backend::all() {
            let (mut s, _) = pair(backend);
            let mut frame = [0u8; SEALED_FRAME_LEN];
            s.seal_frame(b"payload", &mut frame).unwrap();
            for i in (0..SEALED_FRAME_LEN).step_by(7) {
                let (_, mut o) = pair(backend);
                let mut bad = frame;
                bad[i] ^= 0x01;
                assert!(
                    matches!(o.open_frame(&mut bad), Err(Error::Crypto)),
                    "byte {i}"
                );
            }
        }
    }

    #[test]
    fn wrong_frame_size_is_rejected() {
        let (_, mut o) = pair(Backend::RustCrypto);
        let mut short = [0u8; SEALED_FRAME_LEN - 1];
        assert!(matches!(
            o.open_frame(&mut short),
            Err(Error::FrameSize { len }) if len == SEALED_FRAME_LEN - 1
        ));
    }

    #[test]
    fn oversize_length_prefix_is_rejected() {
        let key = [1u8; 32];
        let cipher = Cipher::new(Backend::RustCrypto, &key).unwrap();
        let mut frame = [0u8; SEALED_FRAME_LEN];
        frame[..4].copy_from_slice(&1025u32.to_le_bytes());
        let tag = cipher
            .seal_in_place(nonce_bytes(0), &mut frame[..FRAME_PLAINTEXT_LEN])
            .unwrap();
        frame[FRAME_PLAINTEXT_LEN..].copy_from_slice(&tag);
        let mut o = Opener::new(Backend::RustCrypto, &key).unwrap();
        assert!(matches!(
            o.open_frame(&mut frame),
            Err(Error::FrameLength { len: 1025 })
        ));
    }

    #[test]
    fn nonce_counter_stops_before_wrapping() {
        let mut n = NonceCounter(u64::MAX - 1);
        assert_eq!(n.next().unwrap(), nonce_bytes(u64::MAX - 1));
        assert!(matches!(n.next(), Err(Error::NonceExhausted)));
        assert!(matches!(n.next(), Err(Error::NonceExhausted)));
    }

    #[test]
    fn replayed_frame_fails() {
        let (mut s, mut o) = pair(Backend::RustCrypto);
        let mut frame = [0u8; SEALED_FRAME_LEN];
        s.seal_frame(b"once", &mut frame).unwrap();
        let mut copy = frame;
        assert_eq!(o.open_frame(&mut frame).unwrap(), b"once");
        assert!(matches!(o.open_frame(&mut copy), Err(Error::Crypto)));
    }
}
