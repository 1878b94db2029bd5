//! The sans-IO handshake state machine.
//!
//! Both peers run the same symmetric procedure:
//!
//! 1. [`Handshake::new`] makes an ephemeral X25519 key and returns the 35-byte message to send
//!    (a delimited `BytesValue` holding the key), in plaintext.
//! 2. [`Handshake::recv_ephemeral`] takes the peer's message, rejects low-order keys, runs DH,
//!    derives the two AEAD keys with HKDF and the challenge with a Merlin transcript, signs the
//!    challenge, and returns the sealed `AuthSigMessage` frame to send.
//! 3. [`Handshake::open_frame`] decrypts the peer's frames until a whole delimited
//!    `AuthSigMessage` is in hand; [`Handshake::recv_auth_sig`] checks the peer's signature of the
//!    challenge and yields the [`SecretSession`] and the peer's authenticated identity.
//!
//! Send and receive at each step concurrently: a peer that waits for the other's message before
//! sending its own deadlocks against an identical peer on a connection without buffering.
//!
//! ```
//! use p2p_secretconn::{Handshake, SEALED_FRAME_LEN};
//! use p2p_types::NodeKey;
//!
//! # fn main() -> Result<(), p2p_secretconn::Error> {
//! let (alice_key, bob_key) = (NodeKey::from_seed([1; 32]), NodeKey::from_seed([2; 32]));
//! let (alice, alice_eph) = Handshake::new(&alice_key, &mut rand::rng());
//! let (bob, bob_eph) = Handshake::new(&bob_key, &mut rand::rng());
//!
//! let (mut alice, mut alice_auth) = alice.recv_ephemeral(&bob_eph)?;
//! let (mut bob, mut bob_auth) = bob.recv_ephemeral(&alice_eph)?;
//!
//! // Each auth message fits in one frame; in general, feed frames until a message is complete.
//! let msg = alice.open_frame(&mut bob_auth)?.to_vec();
//! let (mut alice_session, bob_seen_by_alice) = alice.recv_auth_sig(&msg)?;
//! let msg = bob.open_frame(&mut alice_auth)?.to_vec();
//! let (mut bob_session, alice_seen_by_bob) = bob.recv_auth_sig(&msg)?;
//! assert_eq!(bob_seen_by_alice.node_id(), bob_key.node_id());
//! assert_eq!(alice_seen_by_bob.node_id(), alice_key.node_id());
//!
//! let mut wire = Vec::new();
//! alice_session.seal(b"hello", &mut wire)?;
//! assert_eq!(wire.len(), SEALED_FRAME_LEN);
//! assert_eq!(bob_session.open_frame(&mut wire)?, b"hello");
//! # Ok(())
//! # }
//! ```

use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use hkdf::Hkdf;
use merlin::Transcript;
use p2p_types::proto::crypto::{PublicKey as ProtoPublicKey, public_key};
use p2p_types::proto::p2p::AuthSigMessage;
use p2p_types::{NodeId, NodeKey, varint};
use prost::Message as _;
use sha2::Sha256;
use x25519_dalek::{PublicKey as XPublicKey, StaticSecret};
use zeroize::{Zeroize as _, Zeroizing};

use crate::Error;
use crate::aead::{Backend, KEY_LEN};
use crate::frame::{Opener, SEALED_FRAME_LEN, Sealer, SecretSession};

/// Largest handshake message (ephemeral key or auth signature) the reference accepts: 1 MiB.
pub const MAX_HANDSHAKE_MSG_LEN: usize = 1024 * 1024;
/// Size of the ephemeral-key message on the wire: `0x22 0x0a 0x20 ‖ key`.
pub const EPHEMERAL_MSG_LEN: usize = 35;

const TRANSCRIPT_LABEL: &[u8] = b"TENDERMINT_SECRET_CONNECTION_TRANSCRIPT_HASH";
const LABEL_EPH_LOWER: &[u8] = b"EPHEMERAL_LOWER_PUBLIC_KEY";
const LABEL_EPH_UPPER: &[u8] = b"EPHEMERAL_UPPER_PUBLIC_KEY";
const LABEL_DH_SECRET: &[u8] = b"DH_SECRET";
const LABEL_MAC: &[u8] = b"SECRET_CONNECTION_MAC";
const HKDF_INFO: &[u8] = b"TENDERMINT_SECRET_CONNECTION_KEY_AND_CHALLENGE_GEN";

/// The peer's authenticated long-term identity, known once the handshake is complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RemoteIdentity {
    public_key: VerifyingKey,
    node_id: NodeId,
}

impl RemoteIdentity {
    pub(crate) fn new(public_key: VerifyingKey) -> Self {
        Self {
            node_id: NodeId::from_public_key(&public_key),
            public_key,
        }
    }

    /// The peer's ed25519 public key.
    pub fn public_key(&self) -> &VerifyingKey {
        &self.public_key
    }

    /// The peer's node ID, derived from its public key.
    pub fn node_id(&self) -> NodeId {
        self.node_id
    }
}

/// An ephemeral X25519 key pair: the secret and its public key (the base-point
/// multiplication, the part of the handshake's crypto that needs nothing from the peer).
pub(crate) struct EphemeralKey {
    secret: StaticSecret,
    public: [u8; 32],
}

impl EphemeralKey {
    fn generate<R: rand_core::CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(bytes.as_mut());
        Self::from_secret(*bytes)
    }

    #[cfg(test)]
    pub(crate) fn public(&self) -> &[u8; 32] {
        &self.public
    }

    pub(crate) fn from_secret(secret: [u8; 32]) -> Self {
        let secret = StaticSecret::from(secret);
        let public = XPublicKey::from(&secret).to_bytes();
        Self { secret, public }
    }
}

/// Handshake state: our ephemeral key is sent, the peer's is awaited.
pub struct AwaitingEphemeral {
    identity: SigningKey,
    secret: StaticSecret,
    public: [u8; 32],
    backend: Backend,
}

/// Handshake state: the AEAD keys are derived and our signature is sent; the peer's is awaited.
pub struct AwaitingAuthSig {
    challenge: Zeroizing<[u8; 32]>,
    sealer: Sealer,
    opener: Opener,
}

/// The SecretConnection handshake, as a typestate machine that never touches IO.
///
/// See the [module docs](crate::handshake) for the sequence.
pub struct Handshake<S> {
    state: S,
}

impl<S> core::fmt::Debug for Handshake<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Handshake")
            .field("state", &core::any::type_name::<S>())
            .finish_non_exhaustive()
    }
}

impl Handshake<AwaitingEphemeral> {
    /// Starts a handshake for `identity` with a fresh ephemeral key drawn from `rng`, using the
    /// default AEAD [`Backend`]. Returns the state and the message to send to the peer.
    pub fn new<R: rand_core::CryptoRng + ?Sized>(
        identity: &NodeKey,
        rng: &mut R,
    ) -> (Self, [u8; EPHEMERAL_MSG_LEN]) {
        Self::with_backend(identity, rng, Backend::default())
    }

    /// Like [`new`](Self::new), with an explicit AEAD backend for the session.
    pub fn with_backend<R: rand_core::CryptoRng + ?Sized>(
        identity: &NodeKey,
        rng: &mut R,
        backend: Backend,
    ) -> (Self, [u8; EPHEMERAL_MSG_LEN]) {
        Self::with_key(identity, EphemeralKey::generate(rng), backend)
    }

    /// Starts a handshake with a caller-chosen ephemeral secret.
    ///
    /// Only for test vectors: an ephemeral secret must be fresh and random for every handshake,
    /// or the connection loses forward secrecy and may be attacked.
    #[doc(hidden)]
    pub fn with_ephemeral_secret(
        identity: &NodeKey,
        secret: [u8; 32],
        backend: Backend,
    ) -> (Self, [u8; EPHEMERAL_MSG_LEN]) {
        Self::with_key(identity, EphemeralKey::from_secret(secret), backend)
    }

    /// Starts a handshake with an ephemeral key pair made beforehand (used once).
    pub(crate) fn with_key(
        identity: &NodeKey,
        key: EphemeralKey,
        backend: Backend,
    ) -> (Self, [u8; EPHEMERAL_MSG_LEN]) {
        let EphemeralKey { secret, public } = key;
        let mut msg = [0u8; EPHEMERAL_MSG_LEN];
        // uvarint(34) ‖ field 1, wire type 2 ‖ uvarint(32) ‖ key
        msg[..3].copy_from_slice(&[0x22, 0x0a, 0x20]);
        msg[3..].copy_from_slice(&public);
        let state = AwaitingEphemeral {
            identity: identity.signing_key().clone(),
            secret,
            public,
            backend,
        };
        (Self { state }, msg)
    }

    /// Our ephemeral public key.
    pub fn local_ephemeral_key(&self) -> &[u8; 32] {
        &self.state.public
    }

    /// Processes the peer's ephemeral-key message: the whole delimited message, length prefix
    /// included (use [`p2p_types::varint::decode_length_prefix`] with
    /// [`MAX_HANDSHAKE_MSG_LEN`] to find its end).
    ///
    /// Returns the next state and the sealed frame carrying our `AuthSigMessage`, to be sent to
    /// the peer.
    pub fn recv_ephemeral(
        self,
        msg: &[u8],
    ) -> Result<(Handshake<AwaitingAuthSig>, [u8; SEALED_FRAME_LEN]), Error> {
        let remote = decode_ephemeral(msg)?;
        let AwaitingEphemeral {
            identity,
            secret,
            public: local,
            backend,
        } = self.state;
        let Derived { keys, challenge } = derive(secret, &local, &remote)?;

        let mut sealer = Sealer::new(backend, &keys.send)?;
        let opener = Opener::new(backend, &keys.recv)?;

        let signature = identity.sign(challenge.as_ref());
        let auth = AuthSigMessage {
            pub_key: Some(ProtoPublicKey {
                sum: Some(public_key::Sum::Ed25519(
                    identity.verifying_key().to_bytes().to_vec(),
                )),
            }),
            sig: signature.to_bytes().to_vec(),
        };
        let encoded = auth.encode_length_delimited_to_vec();
        let mut frame = [0u8; SEALED_FRAME_LEN];
        sealer.seal_frame(&encoded, &mut frame)?;

        let state = AwaitingAuthSig {
            challenge,
            sealer,
            opener,
        };
        Ok((Handshake { state }, frame))
    }
}

impl Handshake<AwaitingAuthSig> {
    /// Decrypts one sealed frame from the peer in place and returns its data: the next piece of
    /// the peer's delimited `AuthSigMessage`. Honest peers send the whole message in the first
    /// frame; a frame may also carry bytes that follow the message, which belong to the data
    /// stream after the handshake.
    pub fn open_frame<'a>(&mut self, frame: &'a mut [u8]) -> Result<&'a [u8], Error> {
        self.state.opener.open_frame(frame)
    }

    /// Like [`open_frame`](Self::open_frame), returning where the data lies in `frame`.
    pub fn open_frame_range(&mut self, frame: &mut [u8]) -> Result<core::ops::Range<usize>, Error> {
        self.state.opener.open_frame_range(frame)
    }

    /// Checks the peer's delimited `AuthSigMessage` (length prefix included) and completes the
    /// handshake.
    pub fn recv_auth_sig(self, msg: &[u8]) -> Result<(SecretSession, RemoteIdentity), Error> {
        let public_key = check_auth_sig(&self.state.challenge, msg)?;
        let AwaitingAuthSig { sealer, opener, .. } = self.state;
        Ok((
            SecretSession::from_parts(sealer, opener),
            RemoteIdentity::new(public_key),
        ))
    }
}

/// Decodes a delimited `AuthSigMessage` (length prefix included) and checks that it carries an
/// ed25519 key and that key's signature of `challenge`.
pub(crate) fn check_auth_sig(challenge: &[u8; 32], msg: &[u8]) -> Result<VerifyingKey, Error> {
    let (len, used) = varint::decode_length_prefix(msg, MAX_HANDSHAKE_MSG_LEN)
        .map_err(handshake_decode_error)?
        .ok_or(Error::MalformedHandshake {
            reason: "auth signature message is truncated",
        })?;
    let body = msg
        .get(used..)
        .filter(|b| b.len() == len)
        .ok_or(Error::MalformedHandshake {
            reason: "auth signature message length does not match its prefix",
        })?;
    let auth = AuthSigMessage::decode(body).map_err(|_| Error::MalformedHandshake {
        reason: "auth signature message is not a valid protobuf",
    })?;
    let key_bytes = match auth.pub_key.and_then(|k| k.sum) {
        Some(public_key::Sum::Ed25519(bytes)) => bytes,
        Some(public_key::Sum::Secp256k1(_)) => {
            return Err(Error::UnsupportedKeyType {
                key_type: "secp256k1",
            });
        }
        None => {
            return Err(Error::MalformedHandshake {
                reason: "auth signature message carries no public key",
            });
        }
    };
    let key_bytes: [u8; 32] =
        key_bytes
            .as_slice()
            .try_into()
            .map_err(|_| Error::MalformedHandshake {
                reason: "ed25519 public key is not 32 bytes",
            })?;
    let public_key = VerifyingKey::from_bytes(&key_bytes).map_err(|_| Error::InvalidPublicKey)?;
    let signature = Signature::from_slice(&auth.sig).map_err(|_| Error::MalformedHandshake {
        reason: "signature is not 64 bytes",
    })?;
    public_key
        .verify(challenge, &signature)
        .map_err(|_| Error::ChallengeVerification)?;
    Ok(public_key)
}

fn handshake_decode_error(e: p2p_types::Error) -> Error {
    match e {
        p2p_types::Error::MessageTooLarge { len, max } => {
            Error::HandshakeMessageTooLarge { len, max }
        }
        _ => Error::MalformedHandshake {
            reason: "bad length prefix",
        },
    }
}

/// What one side derives from the two ephemeral keys.
pub(crate) struct Derived {
    pub(crate) keys: SessionKeys,
    pub(crate) challenge: Zeroizing<[u8; 32]>,
}

/// DH with low-order rejection, then the session keys (HKDF) and the challenge (Merlin).
pub(crate) fn derive(
    secret: StaticSecret,
    local: &[u8; 32],
    remote: &[u8; 32],
) -> Result<Derived, Error> {
    let shared = secret.diffie_hellman(&XPublicKey::from(*remote));
    drop(secret);
    if !shared.was_contributory() {
        return Err(Error::LowOrderKey);
    }

    let local_is_least = local <= remote;
    let (lo, hi) = if local_is_least {
        (local, remote)
    } else {
        (remote, local)
    };
    let mut transcript = Transcript::new(TRANSCRIPT_LABEL);
    transcript.append_message(LABEL_EPH_LOWER, lo);
    transcript.append_message(LABEL_EPH_UPPER, hi);
    transcript.append_message(LABEL_DH_SECRET, shared.as_bytes());

    let keys = derive_secrets(shared.as_bytes(), local_is_least);
    let mut challenge = Zeroizing::new([0u8; 32]);
    transcript.challenge_bytes(LABEL_MAC, challenge.as_mut());
    Ok(Derived { keys, challenge })
}

/// Parses the delimited `BytesValue` carrying the peer's ephemeral key.
pub(crate) fn decode_ephemeral(msg: &[u8]) -> Result<[u8; 32], Error> {
    let (len, used) = varint::decode_length_prefix(msg, MAX_HANDSHAKE_MSG_LEN)
        .map_err(handshake_decode_error)?
        .ok_or(Error::MalformedHandshake {
            reason: "ephemeral key message is truncated",
        })?;
    let body = msg
        .get(used..)
        .filter(|b| b.len() == len)
        .ok_or(Error::MalformedHandshake {
            reason: "ephemeral key message length does not match its prefix",
        })?;
    let value = BytesValue::decode(body).map_err(|_| Error::MalformedHandshake {
        reason: "ephemeral key message is not a valid protobuf BytesValue",
    })?;
    // The reference copies min(len, 32) bytes and zero-pads; honest peers always send 32, and
    // anything else is refused here.
    value
        .value
        .as_slice()
        .try_into()
        .map_err(|_| Error::MalformedHandshake {
            reason: "ephemeral key is not 32 bytes",
        })
}

/// `google.protobuf.BytesValue`.
#[derive(Clone, PartialEq, prost::Message)]
struct BytesValue {
    #[prost(bytes = "vec", tag = "1")]
    value: Vec<u8>,
}

/// The two AEAD keys of a session.
pub(crate) struct SessionKeys {
    pub(crate) send: [u8; KEY_LEN],
    pub(crate) recv: [u8; KEY_LEN],
}

impl Drop for SessionKeys {
    fn drop(&mut self) {
        self.send.zeroize();
        self.recv.zeroize();
    }
}

/// HKDF-SHA256 over the DH secret (no salt), 96 bytes out of which the first 64 are the two
/// keys; the peer whose ephemeral key sorts first receives with the first key.
pub(crate) fn derive_secrets(dh: &[u8; 32], local_is_least: bool) -> SessionKeys {
    let mut okm = Zeroizing::new([0u8; 96]);
    // 96 bytes is far below HKDF-SHA256's 8160-byte limit, so `expand` cannot fail.
    let _ = Hkdf::<Sha256>::new(None, dh).expand(HKDF_INFO, okm.as_mut());
    let mut k0 = [0u8; KEY_LEN];
    let mut k1 = [0u8; KEY_LEN];
    k0.copy_from_slice(&okm[..32]);
    k1.copy_from_slice(&okm[32..64]);
    if local_is_least {
        SessionKeys { recv: k0, send: k1 }
    } else {
        SessionKeys { send: k0, recv: k1 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vectors_dir() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/vectors")
    }

    fn hex32(s: &str) -> [u8; 32] {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    #[test]
    fn derive_secrets_matches_reference_golden_file() {
        let text = std::fs::read_to_string(
            vectors_dir().join("TestDeriveSecretsAndChallengeGolden.golden"),
        )
        .unwrap();
        let mut n = 0;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let cols: Vec<&str> = line.split(',').collect();
            let dh = hex32(cols[0]);
            let least: bool = cols[1].parse().unwrap();
            let keys = derive_secrets(&dh, least);
            assert_eq!(hex::encode(keys.recv), cols[2], "recv key, line {n}");
            assert_eq!(hex::encode(keys.send), cols[3], "send key, line {n}");
            n += 1;
        }
        assert_eq!(n, 32);
    }

    /// Every backend compiled in (both with the default features) against the vectors.
    #[test]
    fn full_handshake_matches_vectors() {
        for &backend in Backend::all() {
            handshake_matches_vectors(backend);
        }
    }

    fn handshake_matches_vectors(backend: Backend) {
        let v: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(vectors_dir().join("secret_connection_handshake.json"))
                .unwrap(),
        )
        .unwrap();
        let side = |name: &str| {
            let s = &v[name];
            let key = NodeKey::from_seed(hex32(s["ed25519_seed_hex"].as_str().unwrap()));
            assert_eq!(key.node_id().to_string(), s["node_id"].as_str().unwrap());
            let (hs, eph) = Handshake::with_ephemeral_secret(
                &key,
                hex32(s["eph_x25519_private_hex"].as_str().unwrap()),
                backend,
            );
            assert_eq!(hex::encode(eph), s["wire_eph_msg_hex"].as_str().unwrap());
            (hs, eph, key)
        };
        let (a, a_eph, a_key) = side("A");
        let (b, b_eph, b_key) = side("B");
        let (mut a, a_frame) = a.recv_ephemeral(&b_eph).unwrap();
        let (mut b, b_frame) = b.recv_ephemeral(&a_eph).unwrap();
        assert_eq!(
            hex::encode(a_frame),
            v["A"]["first_sealed_frame_hex"].as_str().unwrap(),
            "{backend:?}"
        );
        assert_eq!(
            hex::encode(b_frame),
            v["B"]["first_sealed_frame_hex"].as_str().unwrap()
        );
        assert_eq!(
            hex::encode(*a.state.challenge),
            v["transcript"]["challenge_hex"].as_str().unwrap()
        );

        let mut frame = b_frame;
        let msg = a.open_frame(&mut frame).unwrap().to_vec();
        assert_eq!(
            hex::encode(&msg),
            v["B"]["authsig_delimited_hex"].as_str().unwrap()
        );
        let (mut a_session, b_seen) = a.recv_auth_sig(&msg).unwrap();
        assert_eq!(b_seen.node_id(), b_key.node_id());
        let mut frame = a_frame;
        let msg = b.open_frame(&mut frame).unwrap().to_vec();
        let (_, a_seen) = b.recv_auth_sig(&msg).unwrap();
        assert_eq!(a_seen.node_id(), a_key.node_id());

        // After the handshake A writes 1500 bytes: two frames with nonces 1 and 2.
        let w = &v["A_write_1500_bytes"];
        let data: Vec<u8> = (0..1500u32).map(|i| (7 * i) as u8).collect();
        let mut wire = Vec::new();
        a_session.seal(&data, &mut wire).unwrap();
        assert_eq!(
            hex::encode(&wire[..SEALED_FRAME_LEN]),
            w["frame1_sealed_hex"].as_str().unwrap()
        );
        assert_eq!(
            hex::encode(&wire[SEALED_FRAME_LEN..]),
            w["frame2_sealed_hex"].as_str().unwrap()
        );
    }

    #[test]
    fn ring_is_the_default_backend_when_compiled_in() {
        let expected = if cfg!(feature = "ring") {
            "ring"
        } else {
            "rustcrypto"
        };
        assert_eq!(Backend::default().name(), expected);
        assert_eq!(Backend::all()[0], Backend::default());
        assert!(Backend::all().contains(&Backend::RustCrypto));
    }

    #[test]
    fn low_order_points_are_rejected() {
        let v: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(vectors_dir().join("low_order_points.json")).unwrap(),
        )
        .unwrap();
        let points = v["points"].as_array().unwrap();
        assert!(points.len() >= 14);
        for p in points {
            let point = hex32(p["point_hex"].as_str().unwrap());
            let mut msg = vec![0x22, 0x0a, 0x20];
            msg.extend_from_slice(&point);
            let (hs, _) = Handshake::new(&NodeKey::from_seed([3; 32]), &mut rand::rng());
            assert!(
                matches!(hs.recv_ephemeral(&msg), Err(Error::LowOrderKey)),
                "{point:02x?}"
            );
        }
    }
}
