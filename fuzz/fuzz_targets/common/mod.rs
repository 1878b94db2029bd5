//! What the secret-connection targets share: a dishonest peer's frames, the wire they make,
//! and the model of what a receiver must make of that wire; and, in [`scripted`], the
//! scripted transport and the drivers that run the IO adapters over it.
//!
//! The model works on whole frames and knows how each one was made, so it needs no
//! cryptography: a 1044-byte window opens if and only if it is a frame we sealed, at its own
//! offset, with the nonce the receiver expects next. Everything else (garbage, a shifted
//! boundary, a flipped bit, a replay, a skipped nonce) fails to authenticate.

#![allow(dead_code)] // Each target uses part of it.

pub mod scripted;

use std::collections::HashMap;

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use p2p_secretconn::fuzzing;
use p2p_secretconn::{
    Backend, DATA_MAX_SIZE, Error, FRAME_PLAINTEXT_LEN, SEALED_FRAME_LEN, Sealer,
};
use scripted::{Outcome, Stop};

/// One thing a peer puts on the wire after the ephemeral keys.
#[derive(Arbitrary, Debug)]
pub enum Frame {
    /// An honest frame carrying these bytes (the first 1024 of them).
    Data(Vec<u8>),
    /// An authenticated frame with an arbitrary plaintext: any length prefix, even above 1024,
    /// and any padding.
    Plain { len: u32, body: Vec<u8> },
    /// An honest frame with one byte changed in transit.
    Corrupt { data: Vec<u8>, pos: u16, xor: u8 },
    /// Bytes that are not a frame at all (they shift every later frame boundary).
    Garbage(Vec<u8>),
    /// A frame sealed and never sent: the next one arrives with the wrong nonce.
    Dropped,
    /// An honest frame sent twice.
    Replayed(Vec<u8>),
}

/// What opening a sealed frame yields, when it is opened at its own offset and nonce.
#[derive(Debug)]
enum Kind {
    Good(Vec<u8>),
    TooLong(u32),
    Forged,
}

#[derive(Debug)]
struct Sealed {
    nonce: u64,
    kind: Kind,
}

/// Why the model stops opening frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelStop {
    /// The wire ends on a frame boundary.
    Eof,
    /// The wire ends inside a frame.
    MidFrame,
    /// A window does not authenticate.
    Crypto,
    /// An authenticated frame announces more than 1024 bytes.
    FrameLength(u32),
}

impl ModelStop {
    /// The error this stop is reported as while the handshake is still waiting for the peer's
    /// `AuthSigMessage`.
    pub fn during_handshake(self) -> Error {
        match self {
            Self::Eof | Self::MidFrame => Error::UnexpectedEof {
                during: "during the handshake",
            },
            Self::Crypto => Error::Crypto,
            Self::FrameLength(len) => Error::FrameLength { len: len.into() },
        }
    }

    /// What a reader of the established stream sees.
    pub fn on_stream(self) -> Option<Error> {
        match self {
            Self::Eof => None,
            Self::MidFrame => Some(Error::UnexpectedEof {
                during: "in the middle of a frame",
            }),
            Self::Crypto => Some(Error::Crypto),
            Self::FrameLength(len) => Some(Error::FrameLength { len: len.into() }),
        }
    }
}

/// A wire under construction, with a record of every frame sealed onto it.
#[derive(Default)]
pub struct Wire {
    pub bytes: Vec<u8>,
    sealed: HashMap<usize, Sealed>,
    next_nonce: u64,
}

impl Wire {
    pub fn push_raw(&mut self, bytes: &[u8]) {
        self.bytes.extend_from_slice(bytes);
    }

    fn push_sealed(&mut self, frame: &[u8; SEALED_FRAME_LEN], nonce: u64, kind: Kind) {
        self.sealed.insert(self.bytes.len(), Sealed { nonce, kind });
        self.bytes.extend_from_slice(frame);
    }

    fn seal_honest(&mut self, sealer: &mut Sealer, data: &[u8]) -> [u8; SEALED_FRAME_LEN] {
        let mut frame = [0u8; SEALED_FRAME_LEN];
        sealer
            .seal_frame(data, &mut frame)
            .expect("honest frames seal");
        self.next_nonce += 1;
        frame
    }

    /// Appends an honest frame carrying `data` (at most 1024 bytes).
    pub fn push_data(&mut self, sealer: &mut Sealer, data: &[u8]) {
        let data = &data[..data.len().min(DATA_MAX_SIZE)];
        let nonce = self.next_nonce;
        let frame = self.seal_honest(sealer, data);
        self.push_sealed(&frame, nonce, Kind::Good(data.to_vec()));
    }

    /// Appends `data` as honest frames: first of the sizes `split` gives (0 is an empty frame,
    /// sizes above 1024 are cut to 1024), then of 1024 bytes.
    pub fn push_split(&mut self, sealer: &mut Sealer, mut data: &[u8], split: &[u16]) {
        let mut sizes = split.iter().copied();
        while !data.is_empty() {
            let n = match sizes.next() {
                Some(n) => usize::from(n).min(DATA_MAX_SIZE).min(data.len()),
                None => data.len().min(DATA_MAX_SIZE),
            };
            self.push_data(sealer, &data[..n]);
            data = &data[n..];
        }
    }

    pub fn push(&mut self, sealer: &mut Sealer, frame: &Frame) {
        match frame {
            Frame::Data(data) => self.push_data(sealer, data),
            Frame::Plain { len, body } => {
                let mut plain = [0u8; FRAME_PLAINTEXT_LEN];
                plain[..4].copy_from_slice(&len.to_le_bytes());
                let n = body.len().min(DATA_MAX_SIZE);
                plain[4..4 + n].copy_from_slice(&body[..n]);
                let nonce = self.next_nonce;
                let sealed = fuzzing::seal_plaintext(sealer, &plain).expect("seal");
                self.next_nonce += 1;
                let kind = match usize::try_from(*len) {
                    Ok(l) if l <= DATA_MAX_SIZE => Kind::Good(plain[4..4 + l].to_vec()),
                    _ => Kind::TooLong(*len),
                };
                self.push_sealed(&sealed, nonce, kind);
            }
            Frame::Corrupt { data, pos, xor } => {
                let data = &data[..data.len().min(DATA_MAX_SIZE)];
                let nonce = self.next_nonce;
                let mut frame = self.seal_honest(sealer, data);
                frame[usize::from(*pos) % SEALED_FRAME_LEN] ^= (*xor).max(1);
                self.push_sealed(&frame, nonce, Kind::Forged);
            }
            Frame::Garbage(bytes) => self.push_raw(bytes),
            Frame::Dropped => {
                self.seal_honest(sealer, b"never sent");
            }
            Frame::Replayed(data) => {
                let data = &data[..data.len().min(DATA_MAX_SIZE)];
                let nonce = self.next_nonce;
                let frame = self.seal_honest(sealer, data);
                self.push_sealed(&frame, nonce, Kind::Good(data.to_vec()));
                self.push_sealed(&frame, nonce, Kind::Good(data.to_vec()));
            }
        }
    }

    /// What a receiver opening `bytes[start..end]` frame by frame (nonces from 0) must get: the
    /// data of each frame that opens, in order, and why it stops.
    pub fn model(&self, start: usize, end: usize) -> (Vec<Vec<u8>>, ModelStop) {
        let mut frames = Vec::new();
        let mut pos = start;
        let mut nonce = 0;
        loop {
            let left = end - pos;
            if left == 0 {
                return (frames, ModelStop::Eof);
            }
            if left < SEALED_FRAME_LEN {
                return (frames, ModelStop::MidFrame);
            }
            match self.sealed.get(&pos) {
                Some(s) if s.nonce == nonce => match &s.kind {
                    Kind::Good(data) => frames.push(data.clone()),
                    Kind::TooLong(len) => return (frames, ModelStop::FrameLength(*len)),
                    Kind::Forged => return (frames, ModelStop::Crypto),
                },
                _ => return (frames, ModelStop::Crypto),
            }
            nonce += 1;
            pos += SEALED_FRAME_LEN;
        }
    }
}

pub fn backend(ring: bool) -> Backend {
    if ring {
        Backend::Ring
    } else {
        Backend::RustCrypto
    }
}

/// Receive buffer size in frames: 0 is the default, anything else 1 to 3 (the tight cases).
pub fn buffer_frames(code: u8) -> Option<usize> {
    (code != 0).then_some(usize::from(code % 3) + 1)
}

pub fn same_error(got: &Error, want: &Error) -> bool {
    format!("{got:?}") == format!("{want:?}")
}

/// Checks a run's stream phase against the model.
pub fn check_stream(out: &Outcome, data: &[u8], stop: ModelStop) {
    match (&out.stop, stop.on_stream()) {
        (Stop::Stalled, _) => panic!("the receive buffer stalled"),
        (Stop::Hung, _) => panic!("pending without a wake-up"),
        (Stop::Eof, None) => {}
        (Stop::Error(got), Some(want)) => {
            assert!(same_error(got, &want), "got {got:?}, expected {want:?}");
            assert!(out.error_is_sticky, "a failed stream read again");
        }
        (got, want) => panic!("stream stopped with {got:?}, expected {want:?}"),
    }
    assert_eq!(out.data.len(), data.len(), "amount of data read");
    assert!(out.data == data, "data read differs from the data sealed");
}
