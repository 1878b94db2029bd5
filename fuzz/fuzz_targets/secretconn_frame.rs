//! The sans-IO frame core: `Sealer::seal`/`seal_frame` and `Opener::open_frame` on arbitrary
//! data, arbitrary plaintexts (any length prefix), flipped bytes and arbitrary byte strings,
//! across both AEAD backends.
//!
//! Properties: no panic; both backends seal byte-identical frames; an honest frame opens to
//! exactly its data on either backend when the nonces agree, and fails with `Crypto` when they
//! do not; a frame announcing more than 1024 bytes fails with `FrameLength`; any changed byte
//! fails with `Crypto` and leaves no unauthenticated plaintext behind; anything not exactly
//! 1044 bytes fails with `FrameSize` without using a nonce; the nonce counters advance exactly
//! once per frame sealed or per 1044-byte frame opened.

#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use p2p_secretconn::fuzzing;
use p2p_secretconn::{
    Backend, DATA_MAX_SIZE, Error, FRAME_PLAINTEXT_LEN, Opener, SEALED_FRAME_LEN, Sealer,
    frames_for,
};

#[derive(Arbitrary, Debug)]
enum Op {
    /// `seal_frame` of at most 1024 bytes, then open.
    Frame(Vec<u8>),
    /// `seal` of any length (many frames), then open each.
    Seal(Vec<u8>),
    /// An arbitrary plaintext sealed, then opened.
    Plain { len: u32, body: Vec<u8> },
    /// An honest frame with bytes changed, then opened.
    Flip {
        data: Vec<u8>,
        flips: Vec<(u16, u8)>,
    },
    /// Arbitrary bytes handed to the opener.
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
struct Input {
    key: [u8; 32],
    open_ring: bool,
    ops: Vec<Op>,
}

/// Seals with both backends in lockstep and checks they agree byte for byte.
struct Sealers([Sealer; 2]);

impl Sealers {
    fn seal_frame(&mut self, data: &[u8]) -> [u8; SEALED_FRAME_LEN] {
        let mut a = [0u8; SEALED_FRAME_LEN];
        let mut b = [0u8; SEALED_FRAME_LEN];
        self.0[0].seal_frame(data, &mut a).expect("seal");
        self.0[1].seal_frame(data, &mut b).expect("seal");
        assert_eq!(a, b, "backends disagree");
        a
    }

    fn seal(&mut self, data: &[u8]) -> Vec<u8> {
        let mut a = Vec::new();
        let mut b = vec![0xee; 3]; // appends after what is there
        self.0[0].seal(data, &mut a).expect("seal");
        self.0[1].seal(data, &mut b).expect("seal");
        assert_eq!(&b[..3], &[0xee; 3]);
        assert!(a == b[3..], "backends disagree");
        assert_eq!(a.len(), frames_for(data.len()) * SEALED_FRAME_LEN);
        a
    }

    fn seal_plaintext(&mut self, plain: &[u8; FRAME_PLAINTEXT_LEN]) -> [u8; SEALED_FRAME_LEN] {
        let a = fuzzing::seal_plaintext(&mut self.0[0], plain).expect("seal");
        let b = fuzzing::seal_plaintext(&mut self.0[1], plain).expect("seal");
        assert_eq!(a, b, "backends disagree");
        a
    }

    fn count(&self) -> u64 {
        assert_eq!(self.0[0].frames_sealed(), self.0[1].frames_sealed());
        self.0[0].frames_sealed()
    }
}

/// Opens an honestly sealed frame; it must give `data` back iff the nonces agree.
fn open_honest(opener: &mut Opener, in_sync: bool, mut frame: [u8; SEALED_FRAME_LEN], data: &[u8]) {
    match opener.open_frame(&mut frame) {
        Ok(got) => {
            assert!(in_sync, "a frame opened with the wrong nonce");
            assert_eq!(got, data);
        }
        Err(Error::Crypto) => assert!(!in_sync, "an honest frame failed to open"),
        Err(e) => panic!("unexpected error {e:?}"),
    }
}

fuzz_target!(|input: Input| {
    let mut sealers = Sealers([
        fuzzing::sealer(Backend::RustCrypto, &input.key).expect("sealer"),
        fuzzing::sealer(Backend::Ring, &input.key).expect("sealer"),
    ]);
    let backend = if input.open_ring {
        Backend::Ring
    } else {
        Backend::RustCrypto
    };
    let mut opener = fuzzing::opener(backend, &input.key).expect("opener");

    for op in &input.ops {
        let opened_before = opener.frames_opened();
        let sealed_before = sealers.count();
        let in_sync = opened_before == sealed_before;
        let mut frames_opened = 1;
        let mut frames_sealed = 1;
        match op {
            Op::Frame(data) => {
                let data = &data[..data.len().min(DATA_MAX_SIZE)];
                let frame = sealers.seal_frame(data);
                open_honest(&mut opener, in_sync, frame, data);
            }
            Op::Seal(data) => {
                let wire = sealers.seal(data);
                frames_opened = frames_for(data.len());
                frames_sealed = frames_opened;
                // Once out of sync, every frame fails (each uses up one nonce on both sides).
                for (frame, chunk) in wire
                    .chunks_exact(SEALED_FRAME_LEN)
                    .zip(data.chunks(DATA_MAX_SIZE))
                {
                    let frame: [u8; SEALED_FRAME_LEN] = frame.try_into().expect("frame size");
                    open_honest(&mut opener, in_sync, frame, chunk);
                }
            }
            Op::Plain { len, body } => {
                let mut plain = [0u8; FRAME_PLAINTEXT_LEN];
                plain[..4].copy_from_slice(&len.to_le_bytes());
                let n = body.len().min(DATA_MAX_SIZE);
                plain[4..4 + n].copy_from_slice(&body[..n]);
                let mut frame = sealers.seal_plaintext(&plain);
                match (opener.open_frame(&mut frame), in_sync) {
                    (Ok(got), true) => {
                        assert!(*len as usize <= DATA_MAX_SIZE);
                        assert_eq!(got, &plain[4..4 + *len as usize]);
                    }
                    (Err(Error::FrameLength { len: l }), true) => {
                        assert!(*len as usize > DATA_MAX_SIZE);
                        assert_eq!(l, u64::from(*len));
                    }
                    (Err(Error::Crypto), false) => {}
                    (res, in_sync) => panic!("{res:?} (nonces in sync: {in_sync})"),
                }
            }
            Op::Flip { data, flips } => {
                let data = &data[..data.len().min(DATA_MAX_SIZE)];
                let mut frame = sealers.seal_frame(data);
                let original = frame;
                for &(pos, xor) in flips {
                    frame[usize::from(pos) % SEALED_FRAME_LEN] ^= xor;
                }
                if frame == original {
                    open_honest(&mut opener, in_sync, frame, data);
                } else {
                    let res = opener.open_frame(&mut frame).map(<[u8]>::to_vec);
                    assert!(matches!(res, Err(Error::Crypto)), "{res:?}");
                    assert!(
                        frame[..FRAME_PLAINTEXT_LEN].iter().all(|&b| b == 0),
                        "unauthenticated plaintext left in the buffer"
                    );
                }
            }
            Op::Raw(bytes) => {
                frames_sealed = 0;
                let mut bytes = bytes.clone();
                match opener.open_frame(&mut bytes) {
                    Err(Error::FrameSize { len }) => {
                        assert_eq!(len, bytes.len());
                        assert_ne!(len, SEALED_FRAME_LEN);
                        frames_opened = 0;
                    }
                    Err(Error::Crypto) => assert_eq!(bytes.len(), SEALED_FRAME_LEN),
                    res => panic!("forged frame: {res:?}"),
                }
            }
        }
        assert_eq!(opener.frames_opened(), opened_before + frames_opened as u64);
        assert_eq!(sealers.count(), sealed_before + frames_sealed as u64);
    }
});
