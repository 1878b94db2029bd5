//! The handshake as a dishonest peer plays it, through both IO adapters and the sans-IO core:
//! any ephemeral-key message (honest, low-order, wrong length, not protobuf, garbage), then any
//! `AuthSigMessage` (honest, wrong signature, wrong key type or size, arbitrary bytes) split
//! over frames in any way, followed by stream data and frames of every kind; the wire is cut
//! anywhere and delivered in arbitrary pieces, with `Pending`/`Interrupted` anywhere, and our
//! writes are accepted in arbitrary pieces.
//!
//! Properties: no panic, no `Stalled`, no `Hung`; the handshake succeeds or fails exactly as the
//! sans-IO core does on the messages the model finds on the wire (same error); on success the
//! peer is the key the core authenticates and the data read afterwards is exactly what the
//! model opens; what we write is our ephemeral key, then (only if the peer's key was accepted)
//! our `AuthSigMessage` frame, which the peer can open and which authenticates our identity.

#![no_main]

mod common;

use std::sync::OnceLock;

use common::scripted::{self, Driver, Script, Stop};
use common::{Frame, ModelStop, Wire, backend, buffer_frames, check_stream, same_error};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use p2p_secretconn::fuzzing::{self, IO_HANDSHAKE_MSG_LIMIT};
use p2p_secretconn::{Config, Error, Handshake, SEALED_FRAME_LEN};
use p2p_types::NodeKey;
use p2p_types::proto::crypto::{PublicKey, public_key};
use p2p_types::proto::p2p::AuthSigMessage;
use p2p_types::varint;
use prost::Message as _;

/// Our ephemeral secret: fixed, so that a run is deterministic.
const OUR_SECRET: [u8; 32] = [0x5a; 32];

/// The low-order points of the reference's old blacklist; each also with bit 255 set.
const LOW_ORDER: [[u8; 32]; 7] = [
    [0; 32],
    [
        1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0,
    ],
    [
        0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4,
        0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49,
        0xb8, 0x00,
    ],
    [
        0x5f, 0x9c, 0x95, 0xbc, 0xa3, 0x50, 0x8c, 0x24, 0xb1, 0xd0, 0xb1, 0x55, 0x9c, 0x83, 0xef,
        0x5b, 0x04, 0x44, 0x5c, 0xc4, 0x58, 0x1c, 0x8e, 0x86, 0xd8, 0x22, 0x4e, 0xdd, 0xd0, 0x9f,
        0x11, 0x57,
    ],
    [
        0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
    [
        0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
    [
        0xee, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
];

/// The peer's ephemeral-key message.
#[derive(Arbitrary, Debug)]
enum Eph {
    /// A real key, from this secret.
    Honest([u8; 32]),
    /// A low-order point (index into the list, bit 255 set if odd).
    LowOrder(u8),
    /// A `BytesValue` holding `value` (any length), with `extra` appended to its body.
    Value { value: Vec<u8>, extra: Vec<u8> },
    /// Anything at all, length prefix included (or not).
    Raw(Vec<u8>),
}

/// The key in the peer's `AuthSigMessage`.
#[derive(Arbitrary, Debug)]
enum Key {
    Absent,
    EmptySum,
    Ed25519(Vec<u8>),
    Secp256k1(Vec<u8>),
    /// The ed25519 key of the identity with this seed.
    Of(u8),
}

/// The peer's `AuthSigMessage`.
#[derive(Arbitrary, Debug)]
enum Auth {
    /// Signed properly by the identity with this seed.
    Honest(u8),
    /// Signed properly, then one byte of the signature changed.
    BadSig { seed: u8, pos: u8, xor: u8 },
    /// A signature of something else than the challenge.
    WrongChallenge(u8),
    /// Arbitrary fields (the signature is `sig`, or a real one by the key's identity if empty).
    Fields {
        key: Key,
        sig: Vec<u8>,
        unknown_field: bool,
    },
    /// Anything at all, length prefix included (or not).
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
struct Input {
    tokio: bool,
    ring: bool,
    buffer_frames: u8,
    eph: Eph,
    auth: Auth,
    /// Stream data sent right after the message, in the same frames.
    early: Vec<u8>,
    /// Frame sizes for the message and the early data.
    split: Vec<u16>,
    /// What follows.
    frames: Vec<Frame>,
    cut: Option<u32>,
    reads: Vec<u8>,
    writes: Vec<u8>,
    outs: Vec<u8>,
}

fn our_identity() -> &'static NodeKey {
    static KEY: OnceLock<NodeKey> = OnceLock::new();
    KEY.get_or_init(|| NodeKey::from_seed([1; 32]))
}

fn peer_identity(seed: u8) -> NodeKey {
    NodeKey::from_seed([seed.wrapping_add(2); 32])
}

fn eph_bytes(eph: &Eph, config: &Config) -> Vec<u8> {
    let value = match eph {
        Eph::Honest(secret) => {
            let (_, msg) =
                Handshake::with_ephemeral_secret(our_identity(), *secret, config.get_backend());
            return msg.to_vec();
        }
        Eph::LowOrder(i) => {
            let mut point = LOW_ORDER[usize::from(*i / 2) % LOW_ORDER.len()];
            point[31] |= (i % 2) << 7;
            point.to_vec()
        }
        Eph::Value { value, extra } => {
            let mut body = Vec::new();
            prost::encoding::bytes::encode(1, value, &mut body);
            body.extend_from_slice(extra);
            let mut msg = Vec::new();
            prost::encoding::encode_varint(body.len() as u64, &mut msg);
            msg.extend_from_slice(&body);
            return msg;
        }
        Eph::Raw(bytes) => return bytes.clone(),
    };
    let mut msg = vec![0x22, 0x0a, 0x20];
    msg.extend_from_slice(&value);
    msg
}

fn auth_bytes(auth: &Auth, challenge: &[u8; 32]) -> Vec<u8> {
    let signed = |seed: u8, msg: &[u8]| {
        let key = peer_identity(seed);
        (
            key.public_key().to_bytes().to_vec(),
            key.sign(msg).to_bytes().to_vec(),
        )
    };
    let ed25519 = |key: Vec<u8>| {
        Some(PublicKey {
            sum: Some(public_key::Sum::Ed25519(key)),
        })
    };
    let (pub_key, sig) = match auth {
        Auth::Honest(seed) => {
            let (key, sig) = signed(*seed, challenge);
            (ed25519(key), sig)
        }
        Auth::BadSig { seed, pos, xor } => {
            let (key, mut sig) = signed(*seed, challenge);
            sig[usize::from(*pos) % 64] ^= (*xor).max(1);
            (ed25519(key), sig)
        }
        Auth::WrongChallenge(seed) => {
            let mut other = *challenge;
            other[0] ^= 1;
            let (key, sig) = signed(*seed, &other);
            (ed25519(key), sig)
        }
        Auth::Fields {
            key,
            sig,
            unknown_field,
        } => {
            let mut sig = sig.clone();
            let pub_key = match key {
                Key::Absent => None,
                Key::EmptySum => Some(PublicKey { sum: None }),
                Key::Ed25519(bytes) => ed25519(bytes.clone()),
                Key::Secp256k1(bytes) => Some(PublicKey {
                    sum: Some(public_key::Sum::Secp256k1(bytes.clone())),
                }),
                Key::Of(seed) => {
                    let (key, real) = signed(*seed, challenge);
                    if sig.is_empty() {
                        sig = real;
                    }
                    ed25519(key)
                }
            };
            let mut msg = AuthSigMessage { pub_key, sig }.encode_to_vec();
            if *unknown_field {
                prost::encoding::bytes::encode(9, &b"ignored".to_vec(), &mut msg);
            }
            let mut out = Vec::new();
            prost::encoding::encode_varint(msg.len() as u64, &mut out);
            out.extend_from_slice(&msg);
            return out;
        }
        Auth::Raw(bytes) => return bytes.clone(),
    };
    AuthSigMessage { pub_key, sig }.encode_length_delimited_to_vec()
}

/// The error the adapters report for a bad length prefix.
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

/// What the model expects of the run.
enum Expect {
    Fails(Error),
    Succeeds {
        remote: p2p_secretconn::RemoteIdentity,
        data: Vec<u8>,
        stop: ModelStop,
    },
}

fuzz_target!(|input: Input| {
    let identity = our_identity();
    let backend = backend(input.ring);
    let mut config = Config::default();
    config.backend(backend);
    if let Some(frames) = buffer_frames(input.buffer_frames) {
        config.read_buffer_frames(frames);
    }
    // The adapters refuse an ephemeral-key message that would not fit their receive buffer.
    let eph_limit = IO_HANDSHAKE_MSG_LIMIT.min(
        buffer_frames(input.buffer_frames).unwrap_or(p2p_secretconn::DEFAULT_BUFFER_FRAMES)
            * SEALED_FRAME_LEN
            - varint::MAX_VARINT_LEN,
    );

    // The peer's wire: its ephemeral key, then (if it is a message we would accept, so that
    // the session keys exist) its frames.
    let mut wire = Wire::default();
    let eph = eph_bytes(&input.eph, &config);
    let eph_msg_len = match varint::decode_length_prefix(&eph, eph_limit) {
        Ok(Some((len, used))) if used + len <= eph.len() => Some(used + len),
        _ => None,
    };
    wire.push_raw(&eph);
    let mut auth = Vec::new();
    // The peer's view of the session, kept for the model when it finds the same message.
    let mut built_with = None;
    let view = eph_msg_len
        .and_then(|n| Some((n, fuzzing::peer_view(OUR_SECRET, backend, &eph[..n]).ok()?)));
    if let Some((n, view)) = view {
        let fuzzing::PeerView {
            challenge,
            mut sealer,
            opener,
        } = view;
        auth = auth_bytes(&input.auth, &challenge);
        let mut plain = auth.clone();
        plain.extend_from_slice(&input.early);
        wire.push_split(&mut sealer, &plain, &input.split);
        for frame in &input.frames {
            wire.push(&mut sealer, frame);
        }
        built_with = Some((eph[..n].to_vec(), challenge, opener));
    } else {
        for frame in &input.frames {
            if let Frame::Garbage(bytes) | Frame::Data(bytes) = frame {
                wire.push_raw(bytes);
            }
        }
    }
    let end = match input.cut {
        Some(cut) => cut as usize % (wire.bytes.len() + 1),
        None => wire.bytes.len(),
    };
    let w = &wire.bytes[..end];

    // The model: find the messages where the adapters must find them, ask the sans-IO core
    // what it makes of them, and open the frames.
    let eof = Error::UnexpectedEof {
        during: "during the handshake",
    };
    let mut accepted_eph = None;
    let expect = match varint::decode_length_prefix(w, eph_limit) {
        Err(e) => Expect::Fails(prefix_error(e)),
        Ok(None) => Expect::Fails(eof),
        Ok(Some((len, used))) if w.len() < used + len => Expect::Fails(eof),
        Ok(Some((len, used))) => {
            let eph_msg = &w[..used + len];
            let view = match built_with {
                Some((msg, challenge, opener)) if msg == eph_msg => Ok((challenge, opener)),
                _ => fuzzing::peer_view(OUR_SECRET, backend, eph_msg)
                    .map(|v| (v.challenge, v.opener)),
            };
            match view {
                Err(e) => Expect::Fails(e),
                Ok(view) => {
                    accepted_eph = Some((eph_msg.to_vec(), view));
                    let (frames, stop) = wire.model(used + len, w.len());
                    let mut frames = frames.into_iter();
                    let mut acc = Vec::new();
                    loop {
                        match varint::decode_length_prefix(&acc, IO_HANDSHAKE_MSG_LIMIT) {
                            Err(e) => break Expect::Fails(prefix_error(e)),
                            Ok(Some((len, used))) if acc.len() >= used + len => {
                                let rest = acc.split_off(used + len);
                                match scripted::sans_io_handshake(
                                    identity, OUR_SECRET, backend, eph_msg, &acc,
                                ) {
                                    Err(e) => {
                                        // The target's own sanity: honest peers get in.
                                        assert!(
                                            !(matches!(input.auth, Auth::Honest(_)) && acc == auth),
                                            "an honest AuthSigMessage was refused: {e:?}"
                                        );
                                        break Expect::Fails(e);
                                    }
                                    Ok(remote) => {
                                        let mut data = rest;
                                        data.extend(frames.by_ref().flatten());
                                        break Expect::Succeeds { remote, data, stop };
                                    }
                                }
                            }
                            Ok(_) => {}
                        }
                        match frames.next() {
                            Some(data) => acc.extend_from_slice(&data),
                            None => break Expect::Fails(stop.during_handshake()),
                        }
                    }
                }
            }
        }
    };

    let driver = if input.tokio {
        Driver::Tokio
    } else {
        Driver::Blocking
    };
    let script = Script {
        reads: &input.reads,
        writes: &input.writes,
        outs: &input.outs,
    };
    let out = scripted::handshake(driver, identity, OUR_SECRET, &config, w, &script);

    // What we wrote: our key, then our AuthSigMessage frame once the peer's key is accepted.
    let (hs, our_eph) = Handshake::with_ephemeral_secret(identity, OUR_SECRET, backend);
    let mut ours = our_eph.to_vec();
    if let Some((eph_msg, (challenge, mut opener))) = accepted_eph {
        let (_, frame) = hs.recv_ephemeral(&eph_msg).expect("accepted above");
        let mut opened = frame;
        let msg = opener
            .open_frame(&mut opened)
            .expect("the peer opens our frame");
        let me = fuzzing::check_auth(&challenge, msg).expect("our AuthSigMessage verifies");
        assert_eq!(me.node_id(), identity.node_id());
        ours.extend_from_slice(&frame);
        if driver == Driver::Blocking {
            assert!(
                out.written == ours,
                "blocking: we must have sent our key and signature"
            );
        }
    }
    assert!(
        ours.starts_with(&out.written),
        "we wrote something else than our messages"
    );

    match expect {
        Expect::Fails(want) => match &out.stop {
            Stop::Error(got) => {
                assert!(out.remote.is_none());
                assert!(
                    same_error(got, &want),
                    "handshake failed with {got:?}, expected {want:?}"
                );
            }
            other => panic!(
                "handshake: got {other:?} (remote {:?}), expected {want:?}",
                out.remote
            ),
        },
        Expect::Succeeds { remote, data, stop } => {
            assert!(
                !matches!(out.stop, Stop::Error(_)) || out.remote.is_some(),
                "handshake failed: {:?}",
                out.stop
            );
            assert_eq!(out.remote, Some(remote));
            assert!(
                out.written == ours,
                "we completed without sending all our messages"
            );
            check_stream(&out, &data, stop);
        }
    }
});
