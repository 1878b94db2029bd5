//! Attacks are not ordinary disconnects: a forged or corrupted secret-connection frame, an
//! oversize frame and an oversize packet, each over a real `SecretStream`, end the connection
//! with an error blamed on the peer, distinct from the peer closing or the network failing.

mod common;

use std::error::Error as _;
use std::time::Duration;

use common::unlimited;
use p2p_mconn::{Blame, ChannelDescriptor, Error, MConnection};
use p2p_secretconn::{Backend, Handshake, SEALED_FRAME_LEN, SecretSession, SecretStream};
use p2p_types::NodeKey;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::time::timeout;

const LIMIT: Duration = Duration::from_secs(20);

fn chans() -> [ChannelDescriptor; 1] {
    [ChannelDescriptor::new(1, 1)]
}

/// The secret connection's error inside a stream violation.
fn secretconn_cause(e: &Error) -> Option<&p2p_secretconn::Error> {
    // The source chain reaches it too.
    assert!(e.source().is_some());
    e.io_error()?
        .get_ref()?
        .downcast_ref::<p2p_secretconn::Error>()
}

#[tokio::test]
async fn a_flipped_ciphertext_bit_is_the_peers_violation() {
    // A ⇄ relay ⇄ B; the relay flips a bit in A's first data frame, after the handshake
    // (35 bytes of ephemeral key and one 1044-byte frame of authentication each way).
    let (a_io, from_a) = tokio::io::duplex(64 * 1024);
    let (to_b, b_io) = tokio::io::duplex(64 * 1024);
    let forward = tokio::spawn(relay_pair(from_a, to_b, Some(35 + SEALED_FRAME_LEN + 100)));
    let (ka, kb) = (NodeKey::generate(), NodeKey::generate());
    let (a, b) = tokio::join!(
        SecretStream::handshake(a_io, &ka),
        SecretStream::handshake(b_io, &kb),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let (conn_a, _ra) = MConnection::spawn_stream(a, &chans(), unlimited()).unwrap();
    let (conn_b, mut rb) = MConnection::spawn_stream(b, &chans(), unlimited()).unwrap();
    conn_a.send(1, vec![0x42; 500]).await.unwrap();
    let end = timeout(LIMIT, conn_b.closed()).await.unwrap().unwrap_err();
    assert!(matches!(end, Error::StreamViolation { .. }), "{end:?}");
    assert_eq!(end.blame(), Blame::Peer);
    assert!(end.is_protocol_violation() && !end.is_disconnect());
    assert!(
        matches!(secretconn_cause(&end), Some(p2p_secretconn::Error::Crypto)),
        "{end:?}"
    );
    // Nothing of the corrupted frame was delivered.
    assert_eq!(rb.get_mut(1).unwrap().try_recv().ok().flatten(), None);
    // A, whose peer hung up on it, sees an ordinary disconnect (the relay goes away with B).
    forward.abort();
    let a_end = timeout(LIMIT, conn_a.closed()).await.unwrap().unwrap_err();
    assert_eq!(a_end.blame(), Blame::Gone, "{a_end:?}");
}

/// Relays both directions between two pipe ends, flipping one byte from `a` to `b`.
async fn relay_pair(a: DuplexStream, b: DuplexStream, flip: Option<usize>) {
    let (ar, aw) = tokio::io::split(a);
    let (br, bw) = tokio::io::split(b);
    tokio::join!(copy_flip(ar, bw, flip), copy_flip(br, aw, None));
}

async fn copy_flip(
    mut from: impl tokio::io::AsyncRead + Unpin,
    mut to: impl tokio::io::AsyncWrite + Unpin,
    flip: Option<usize>,
) {
    let mut buf = vec![0; 4096];
    let mut at = 0;
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if let Some(f) = flip {
            if (at..at + n).contains(&f) {
                buf[f - at] ^= 0x10;
            }
        }
        at += n;
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// A dishonest but authenticated secret-connection peer, playing the handshake by hand with
/// a known ephemeral secret so that it can seal frames of its own making.
struct Dishonest {
    io: DuplexStream,
    session: SecretSession,
    send_key: [u8; 32],
}

impl Dishonest {
    async fn handshake(mut io: DuplexStream) -> Self {
        use hkdf::Hkdf;
        use sha2::Sha256;
        use x25519_dalek::{PublicKey, StaticSecret};

        let secret = [0x5c; 32];
        let (hs, eph) =
            Handshake::with_ephemeral_secret(&NodeKey::generate(), secret, Backend::default());
        io.write_all(&eph).await.unwrap();
        let mut theirs = [0u8; 35];
        io.read_exact(&mut theirs).await.unwrap();
        let (mut hs, auth) = hs.recv_ephemeral(&theirs).unwrap();
        io.write_all(&auth).await.unwrap();
        let mut frame = [0u8; SEALED_FRAME_LEN];
        io.read_exact(&mut frame).await.unwrap();
        let msg = hs.open_frame(&mut frame).unwrap().to_vec();
        let (session, _) = hs.recv_auth_sig(&msg).unwrap();

        // The same derivation as the handshake's: HKDF-SHA256 of the DH secret; the side
        // whose ephemeral key sorts first receives with the first key.
        let remote: [u8; 32] = theirs[3..].try_into().unwrap();
        let secret = StaticSecret::from(secret);
        let local = PublicKey::from(&secret).to_bytes();
        let dh = secret.diffie_hellman(&PublicKey::from(remote));
        let mut okm = [0u8; 96];
        Hkdf::<Sha256>::new(None, dh.as_bytes())
            .expand(
                b"TENDERMINT_SECRET_CONNECTION_KEY_AND_CHALLENGE_GEN",
                &mut okm,
            )
            .unwrap();
        let range = if local <= remote { 32..64 } else { 0..32 };
        let send_key = okm[range].try_into().unwrap();
        Self {
            io,
            session,
            send_key,
        }
    }

    /// Sends `data` honestly, in frames.
    async fn send(&mut self, data: &[u8]) {
        let mut wire = Vec::new();
        self.session.seal(data, &mut wire).unwrap();
        self.io.write_all(&wire).await.unwrap();
    }

    /// Sends a properly sealed frame whose length field announces `len` bytes.
    async fn send_frame_announcing(&mut self, len: u32) {
        use chacha20poly1305::aead::AeadInOut as _;
        use chacha20poly1305::{ChaCha20Poly1305, KeyInit as _};

        let counter = self.session.sealer().frames_sealed();
        let mut frame = vec![0u8; SEALED_FRAME_LEN];
        frame[..4].copy_from_slice(&len.to_le_bytes());
        let cipher = ChaCha20Poly1305::new((&self.send_key).into());
        let nonce = p2p_secretconn::nonce_bytes(counter);
        let (plain, tag_out) = frame.split_at_mut(SEALED_FRAME_LEN - 16);
        let tag = cipher
            .encrypt_inout_detached(&nonce.into(), &[], plain.into())
            .unwrap();
        tag_out.copy_from_slice(&tag);
        self.io.write_all(&frame).await.unwrap();
    }
}

/// Our MConnection over a real SecretStream, facing a dishonest peer.
async fn facing_dishonest() -> (MConnection, Dishonest) {
    let (ours, theirs) = tokio::io::duplex(64 * 1024);
    let key = NodeKey::generate();
    let (ours, peer) = tokio::join!(
        SecretStream::handshake(ours, &key),
        Dishonest::handshake(theirs),
    );
    let (conn, _rx) = MConnection::spawn_stream(ours.unwrap(), &chans(), unlimited()).unwrap();
    (conn, peer)
}

#[tokio::test]
async fn an_oversize_secretconn_frame_is_the_peers_violation() {
    let (conn, mut peer) = facing_dishonest().await;
    // An honest frame first (the FrameLength below, rather than Crypto, shows the keys right).
    peer.send(&p2p_mconn::PING_BYTES).await;
    peer.send_frame_announcing(2000).await;
    let end = timeout(LIMIT, conn.closed()).await.unwrap().unwrap_err();
    assert!(matches!(end, Error::StreamViolation { .. }), "{end:?}");
    assert_eq!(end.blame(), Blame::Peer);
    assert!(
        matches!(
            secretconn_cause(&end),
            Some(p2p_secretconn::Error::FrameLength { len: 2000 })
        ),
        "{end:?}"
    );
}

#[tokio::test]
async fn an_oversize_packet_over_a_secret_connection_is_the_peers_violation() {
    let (conn, mut peer) = facing_dishonest().await;
    peer.send(&[0x8b, 0x08]).await; // a packet of 1035 bytes, one more than allowed
    let end = timeout(LIMIT, conn.closed()).await.unwrap().unwrap_err();
    assert_eq!(
        end,
        Error::PacketTooLarge {
            len: 1035,
            max: 1034
        }
    );
    assert_eq!(end.blame(), Blame::Peer);
}

#[tokio::test]
async fn closing_and_failing_are_not_violations() {
    let (conn, peer) = facing_dishonest().await;
    drop(peer);
    let end = timeout(LIMIT, conn.closed()).await.unwrap().unwrap_err();
    assert_eq!(end.blame(), Blame::Gone, "{end:?}");
    assert!(end.is_disconnect() && !end.is_protocol_violation());
}

#[test]
fn every_mconn_violation_is_blamed_on_the_peer() {
    for e in [
        Error::PacketTooLarge { len: 2, max: 1 },
        Error::MalformedPacket {
            reason: String::new(),
        },
        Error::UnknownPacket,
        Error::UnknownChannel { channel: 9 },
        Error::MessageTooLarge { channel: 1, max: 1 },
    ] {
        assert_eq!(e.blame(), Blame::Peer, "{e}");
    }
    for e in [
        Error::ReceiverStalled {
            channel: 1,
            waited: Duration::ZERO,
        },
        Error::ReceiverDropped { channel: 1 },
        Error::TaskPanicked { task: "read" },
        Error::Closed,
    ] {
        assert_eq!(e.blame(), Blame::Local, "{e}");
    }
    for e in [
        Error::PongTimeout {
            timeout: Duration::ZERO,
        },
        Error::WriteStalled {
            waited: Duration::ZERO,
        },
        Error::ClosedByPeer,
        Error::UnexpectedEof,
    ] {
        assert_eq!(e.blame(), Blame::Gone, "{e}");
    }
}
