//! Test helpers: a deterministic data generator and an independent, deliberately bendable
//! implementation of the SecretConnection handshake (the "evil peer").

#![allow(dead_code, unreachable_pub, missing_docs)]

use chacha20poly1305::ChaCha20Poly1305;
use chacha20poly1305::aead::{AeadInOut as _, KeyInit as _};
use ed25519_dalek::{Signer as _, SigningKey};
use hkdf::Hkdf;
use merlin::Transcript;
use p2p_types::proto::crypto::{PublicKey, public_key};
use p2p_types::proto::p2p::AuthSigMessage;
use prost::Message as _;
use sha2::Sha256;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// SplitMix64: a tiny seeded generator so both ends can produce the same byte stream.
#[derive(Clone)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = vec![0u8; n];
        self.fill(&mut v);
        v
    }
}

/// One side of a handshake computed by hand, so tests can send anything they like.
pub struct EvilPeer {
    pub identity: SigningKey,
    pub eph_secret: x25519_dalek::StaticSecret,
    pub eph_public: [u8; 32],
}

pub struct EvilSession {
    send: ChaCha20Poly1305,
    recv: ChaCha20Poly1305,
    send_n: u64,
    recv_n: u64,
    pub challenge: [u8; 32],
}

fn nonce(n: u64) -> [u8; 12] {
    let mut out = [0u8; 12];
    out[4..].copy_from_slice(&n.to_le_bytes());
    out
}

impl EvilPeer {
    pub fn new(seed: u8) -> Self {
        let identity = SigningKey::from_bytes(&[seed; 32]);
        let eph_secret = x25519_dalek::StaticSecret::from([seed.wrapping_add(100); 32]);
        let eph_public = x25519_dalek::PublicKey::from(&eph_secret).to_bytes();
        Self {
            identity,
            eph_secret,
            eph_public,
        }
    }

    pub fn eph_msg(&self) -> Vec<u8> {
        let mut m = vec![0x22, 0x0a, 0x20];
        m.extend_from_slice(&self.eph_public);
        m
    }

    pub fn derive(&self, remote: [u8; 32]) -> EvilSession {
        let dh = self
            .eph_secret
            .diffie_hellman(&x25519_dalek::PublicKey::from(remote));
        let least = self.eph_public <= remote;
        let (lo, hi) = if least {
            (self.eph_public, remote)
        } else {
            (remote, self.eph_public)
        };
        let mut t = Transcript::new(b"TENDERMINT_SECRET_CONNECTION_TRANSCRIPT_HASH");
        t.append_message(b"EPHEMERAL_LOWER_PUBLIC_KEY", &lo);
        t.append_message(b"EPHEMERAL_UPPER_PUBLIC_KEY", &hi);
        t.append_message(b"DH_SECRET", dh.as_bytes());
        let mut okm = [0u8; 96];
        Hkdf::<Sha256>::new(None, dh.as_bytes())
            .expand(
                b"TENDERMINT_SECRET_CONNECTION_KEY_AND_CHALLENGE_GEN",
                &mut okm,
            )
            .unwrap();
        let (k0, k1) = (&okm[..32], &okm[32..64]);
        let (recv, send) = if least { (k0, k1) } else { (k1, k0) };
        let mut challenge = [0u8; 32];
        t.challenge_bytes(b"SECRET_CONNECTION_MAC", &mut challenge);
        EvilSession {
            send: ChaCha20Poly1305::new(send.try_into().unwrap()),
            recv: ChaCha20Poly1305::new(recv.try_into().unwrap()),
            send_n: 0,
            recv_n: 0,
            challenge,
        }
    }

    /// A correct delimited AuthSigMessage for `session`.
    pub fn auth_msg(&self, session: &EvilSession) -> Vec<u8> {
        let sig = self.identity.sign(&session.challenge).to_bytes().to_vec();
        auth_msg(
            Some(public_key::Sum::Ed25519(
                self.identity.verifying_key().to_bytes().to_vec(),
            )),
            sig,
        )
    }
}

pub fn auth_msg(key: Option<public_key::Sum>, sig: Vec<u8>) -> Vec<u8> {
    AuthSigMessage {
        pub_key: Some(PublicKey { sum: key }),
        sig,
    }
    .encode_length_delimited_to_vec()
}

impl EvilSession {
    /// Seals an arbitrary 1028-byte plaintext (any length prefix) into one frame.
    pub fn seal_plaintext(&mut self, plain: &[u8; 1028]) -> Vec<u8> {
        let mut buf = plain.to_vec();
        let tag = self
            .send
            .encrypt_inout_detached(&nonce(self.send_n).into(), &[], buf.as_mut_slice().into())
            .unwrap();
        self.send_n += 1;
        buf.extend_from_slice(&tag);
        buf
    }

    /// Seals `data` into frames of at most `chunk` bytes each.
    pub fn seal_chunks(&mut self, data: &[u8], chunk: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for piece in data.chunks(chunk) {
            let mut plain = [0u8; 1028];
            plain[..4].copy_from_slice(&(piece.len() as u32).to_le_bytes());
            plain[4..4 + piece.len()].copy_from_slice(piece);
            out.extend(self.seal_plaintext(&plain));
        }
        out
    }

    /// Opens one frame and returns its data.
    pub fn open(&mut self, frame: &[u8]) -> Vec<u8> {
        let (body, tag) = frame.split_at(1028);
        let mut body = body.to_vec();
        self.recv
            .decrypt_inout_detached(
                &nonce(self.recv_n).into(),
                &[],
                body.as_mut_slice().into(),
                tag.try_into().unwrap(),
            )
            .unwrap();
        self.recv_n += 1;
        let len = u32::from_le_bytes(body[..4].try_into().unwrap()) as usize;
        body[4..4 + len].to_vec()
    }
}

/// Reads the peer's 35-byte ephemeral message and returns the key.
pub async fn read_eph<R: AsyncRead + Unpin>(io: &mut R) -> [u8; 32] {
    let mut m = [0u8; 35];
    io.read_exact(&mut m).await.unwrap();
    assert_eq!(&m[..3], &[0x22, 0x0a, 0x20]);
    m[3..].try_into().unwrap()
}

/// Runs the evil side up to (not including) sending its auth message: exchanges ephemeral keys
/// and reads our auth frame. Returns the derived session.
pub async fn evil_until_auth<T: AsyncRead + AsyncWrite + Unpin>(
    io: &mut T,
    peer: &EvilPeer,
) -> EvilSession {
    io.write_all(&peer.eph_msg()).await.unwrap();
    let remote = read_eph(io).await;
    let mut session = peer.derive(remote);
    let mut frame = [0u8; 1044];
    io.read_exact(&mut frame).await.unwrap();
    let data = session.open(&frame);
    assert_eq!(data.len(), 103, "an honest auth message is 103 bytes");
    session
}

/// [`evil_until_auth`] over blocking IO.
pub fn evil_until_auth_blocking<T: std::io::Read + std::io::Write>(
    io: &mut T,
    peer: &EvilPeer,
) -> EvilSession {
    io.write_all(&peer.eph_msg()).unwrap();
    let mut m = [0u8; 35];
    io.read_exact(&mut m).unwrap();
    assert_eq!(&m[..3], &[0x22, 0x0a, 0x20]);
    let mut session = peer.derive(m[3..].try_into().unwrap());
    let mut frame = [0u8; 1044];
    io.read_exact(&mut frame).unwrap();
    let data = session.open(&frame);
    assert_eq!(data.len(), 103, "an honest auth message is 103 bytes");
    session
}
