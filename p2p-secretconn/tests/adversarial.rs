//! Every bad input named in the spec gets a typed error, never a panic or a hang; what a
//! dishonest peer causes is a protocol violation (`InvalidData` through the stream adapters),
//! never mistaken for a disconnect.

mod common;

use std::time::Duration;

use common::{EvilPeer, auth_msg, evil_until_auth};
use p2p_secretconn::{Config, Error, SecretStream};
use p2p_types::NodeKey;
use p2p_types::proto::crypto::public_key;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, duplex};

fn our_key() -> NodeKey {
    NodeKey::from_seed([1; 32])
}

/// `err` is the peer's fault, and says so however it is carried.
#[track_caller]
fn assert_violation(err: &Error) {
    assert!(err.is_protocol_violation(), "{err:?}");
    assert!(!err.is_io(), "{err:?}");
    assert_eq!(
        std::io::Error::from(err.clone()).kind(),
        std::io::ErrorKind::InvalidData
    );
}

/// A read error of a stream adapter: `InvalidData` carrying a protocol violation.
#[track_caller]
fn violation_from_read(err: std::io::Error) -> Error {
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{err:?}");
    let inner = Error::from(err);
    assert_violation(&inner);
    inner
}

/// Runs our handshake against a scripted peer and returns our result.
async fn against<F, Fut>(script: F) -> Result<SecretStream<DuplexStream>, Error>
where
    F: FnOnce(DuplexStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (ours, theirs) = duplex(64 * 1024);
    let peer = tokio::spawn(script(theirs));
    let res = SecretStream::handshake(ours, &our_key()).await;
    peer.abort();
    res
}

#[tokio::test]
async fn truncated_ephemeral_message() {
    let err = against(|mut io| async move {
        io.write_all(&[0x22, 0x0a, 0x20, 1, 2, 3]).await.unwrap();
        // close
    })
    .await
    .unwrap_err();
    assert!(matches!(err, Error::UnexpectedEof { .. }), "{err:?}");
    assert!(err.is_io() && !err.is_protocol_violation());
}

#[tokio::test]
async fn garbage_ephemeral_message() {
    // Length 34, but field 1 with wire type 0 (varint) instead of 2: not a BytesValue.
    let err = against(|mut io| async move {
        let mut msg = vec![0x22, 0x08, 0x20];
        msg.extend_from_slice(&[7; 32]);
        io.write_all(&msg).await.unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await
    .unwrap_err();
    assert!(matches!(err, Error::MalformedHandshake { .. }), "{err:?}");
    assert_violation(&err);
}

#[tokio::test]
async fn short_ephemeral_key() {
    let err = against(|mut io| async move {
        io.write_all(&[0x12, 0x0a, 0x10]).await.unwrap();
        io.write_all(&[9; 16]).await.unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await
    .unwrap_err();
    assert!(
        matches!(err, Error::MalformedHandshake { reason } if reason.contains("32 bytes")),
        "{err:?}"
    );
    assert_violation(&err);
}

#[tokio::test]
async fn oversize_handshake_length_is_refused_before_reading() {
    let err = against(|mut io| async move {
        // Announces 2^28 bytes and sends nothing more.
        io.write_all(&[0x80, 0x80, 0x80, 0x80, 0x01]).await.unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await
    .unwrap_err();
    assert!(
        matches!(err, Error::HandshakeMessageTooLarge { len, .. } if len == 1 << 28),
        "{err:?}"
    );
    assert_violation(&err);
}

#[tokio::test]
async fn low_order_ephemeral_key() {
    let err = against(|mut io| async move {
        let mut msg = vec![0x22, 0x0a, 0x20];
        msg.extend_from_slice(&[0; 32]);
        io.write_all(&msg).await.unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await
    .unwrap_err();
    assert!(matches!(err, Error::LowOrderKey), "{err:?}");
    assert_violation(&err);
}

#[tokio::test]
async fn honest_evil_peer_is_accepted() {
    // Sanity check of the test peer itself: played straight, it completes the handshake.
    let peer = EvilPeer::new(9);
    let expected = p2p_types::NodeId::from_public_key(&peer.identity.verifying_key());
    let stream = against(move |mut io| async move {
        let mut s = evil_until_auth(&mut io, &peer).await;
        let auth = peer.auth_msg(&s);
        io.write_all(&s.seal_chunks(&auth, 1024)).await.unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await
    .unwrap();
    assert_eq!(stream.remote_node_id(), expected);
}

#[tokio::test]
async fn wrong_signature() {
    let peer = EvilPeer::new(9);
    let err = against(move |mut io| async move {
        let mut s = evil_until_auth(&mut io, &peer).await;
        let mut sig = peer.identity.sign_challenge_for_test(&s.challenge);
        sig[0] ^= 1;
        let msg = auth_msg(
            Some(public_key::Sum::Ed25519(
                peer.identity.verifying_key().to_bytes().to_vec(),
            )),
            sig,
        );
        io.write_all(&s.seal_chunks(&msg, 1024)).await.unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await
    .unwrap_err();
    assert!(matches!(err, Error::ChallengeVerification), "{err:?}");
    assert_violation(&err);
}

#[tokio::test]
async fn signature_by_another_key() {
    let peer = EvilPeer::new(9);
    let impostor = EvilPeer::new(10);
    let err = against(move |mut io| async move {
        let mut s = evil_until_auth(&mut io, &peer).await;
        // Claims the impostor's public key but signs with its own.
        let sig = peer.identity.sign_challenge_for_test(&s.challenge);
        let msg = auth_msg(
            Some(public_key::Sum::Ed25519(
                impostor.identity.verifying_key().to_bytes().to_vec(),
            )),
            sig,
        );
        io.write_all(&s.seal_chunks(&msg, 1024)).await.unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await
    .unwrap_err();
    assert!(matches!(err, Error::ChallengeVerification), "{err:?}");
    assert_violation(&err);
}

#[tokio::test]
async fn secp256k1_key_is_refused() {
    let peer = EvilPeer::new(9);
    let err = against(move |mut io| async move {
        let mut s = evil_until_auth(&mut io, &peer).await;
        let msg = auth_msg(Some(public_key::Sum::Secp256k1(vec![2; 33])), vec![0; 64]);
        io.write_all(&s.seal_chunks(&msg, 1024)).await.unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::UnsupportedKeyType {
                key_type: "secp256k1"
            }
        ),
        "{err:?}"
    );
    assert_violation(&err);
}

#[tokio::test]
async fn missing_key_and_short_signature() {
    for (key, sig) in [
        (None, vec![0; 64]),
        (Some(public_key::Sum::Ed25519(vec![1; 31])), vec![0; 64]),
    ] {
        let peer = EvilPeer::new(9);
        let err = against(move |mut io| async move {
            let mut s = evil_until_auth(&mut io, &peer).await;
            io.write_all(&s.seal_chunks(&auth_msg(key, sig), 1024))
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_secs(5)).await;
        })
        .await
        .unwrap_err();
        assert!(matches!(err, Error::MalformedHandshake { .. }), "{err:?}");
        assert_violation(&err);
    }
    let peer = EvilPeer::new(9);
    let err = against(move |mut io| async move {
        let mut s = evil_until_auth(&mut io, &peer).await;
        let key = peer.identity.verifying_key().to_bytes().to_vec();
        let msg = auth_msg(Some(public_key::Sum::Ed25519(key)), vec![0; 63]);
        io.write_all(&s.seal_chunks(&msg, 1024)).await.unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await
    .unwrap_err();
    assert!(
        matches!(err, Error::MalformedHandshake { reason } if reason.contains("64 bytes")),
        "{err:?}"
    );
    assert_violation(&err);
}

#[tokio::test]
async fn auth_message_split_over_frames_with_data_after_it() {
    // Legal but unusual: the auth message spans three frames and data follows it in the last.
    let peer = EvilPeer::new(9);
    let mut stream = against(move |mut io| async move {
        let mut s = evil_until_auth(&mut io, &peer).await;
        let mut bytes = peer.auth_msg(&s);
        bytes.extend_from_slice(b"first data");
        io.write_all(&s.seal_chunks(&bytes, 50)).await.unwrap();
        io.write_all(&s.seal_chunks(b" and more", 1024))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await
    .unwrap();
    let mut buf = [0u8; 19];
    stream.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"first data and more");
}

#[tokio::test]
async fn zero_length_frames_are_skipped_not_eof() {
    let peer = EvilPeer::new(9);
    let mut stream = against(move |mut io| async move {
        let mut s = evil_until_auth(&mut io, &peer).await;
        io.write_all(&s.seal_chunks(&peer.auth_msg(&s), 1024))
            .await
            .unwrap();
        let empty = [0u8; 1028];
        let mut frames = s.seal_plaintext(&empty);
        frames.extend(s.seal_plaintext(&empty));
        frames.extend(s.seal_chunks(b"x", 1024));
        io.write_all(&frames).await.unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await
    .unwrap();
    let mut buf = [0u8; 8];
    let n = stream.read(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"x");
}

#[tokio::test]
async fn oversize_frame_length_is_an_error() {
    let peer = EvilPeer::new(9);
    let mut stream = against(move |mut io| async move {
        let mut s = evil_until_auth(&mut io, &peer).await;
        io.write_all(&s.seal_chunks(&peer.auth_msg(&s), 1024))
            .await
            .unwrap();
        let mut plain = [0u8; 1028];
        plain[..4].copy_from_slice(&1025u32.to_le_bytes());
        io.write_all(&s.seal_plaintext(&plain)).await.unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await
    .unwrap();
    let mut buf = [0u8; 8];
    let inner = violation_from_read(stream.read(&mut buf).await.unwrap_err());
    assert!(
        matches!(inner, Error::FrameLength { len: 1025 }),
        "{inner:?}"
    );
    // The stream stays failed.
    let again = violation_from_read(stream.read(&mut buf).await.unwrap_err());
    assert!(
        matches!(again, Error::FrameLength { len: 1025 }),
        "{again:?}"
    );
}

#[tokio::test]
async fn flipped_ciphertext_bit_is_an_error() {
    let peer = EvilPeer::new(9);
    let mut stream = against(move |mut io| async move {
        let mut s = evil_until_auth(&mut io, &peer).await;
        io.write_all(&s.seal_chunks(&peer.auth_msg(&s), 1024))
            .await
            .unwrap();
        let mut frame = s.seal_chunks(b"hello", 1024);
        frame[500] ^= 0x10;
        io.write_all(&frame).await.unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await
    .unwrap();
    let mut buf = [0u8; 8];
    let err = violation_from_read(stream.read(&mut buf).await.unwrap_err());
    assert!(matches!(err, Error::Crypto), "{err:?}");
}

#[tokio::test]
async fn flipped_bit_on_a_split_read_half() {
    let peer = EvilPeer::new(9);
    let stream = against(move |mut io| async move {
        let mut s = evil_until_auth(&mut io, &peer).await;
        io.write_all(&s.seal_chunks(&peer.auth_msg(&s), 1024))
            .await
            .unwrap();
        let mut frames = s.seal_chunks(b"fine", 1024);
        let mut bad = s.seal_chunks(b"tampered", 1024);
        bad[1043] ^= 1; // in the tag
        frames.extend(bad);
        io.write_all(&frames).await.unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await
    .unwrap();
    let (mut reader, _writer) = stream.into_split();
    let mut buf = [0u8; 4];
    reader.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"fine");
    let err = violation_from_read(reader.read(&mut buf).await.unwrap_err());
    assert!(matches!(err, Error::Crypto), "{err:?}");
}

#[tokio::test]
async fn peer_stops_mid_frame() {
    let peer = EvilPeer::new(9);
    let mut stream = against(move |mut io| async move {
        let mut s = evil_until_auth(&mut io, &peer).await;
        io.write_all(&s.seal_chunks(&peer.auth_msg(&s), 1024))
            .await
            .unwrap();
        let frame = s.seal_chunks(b"complete", 1024);
        io.write_all(&frame).await.unwrap();
        let frame = s.seal_chunks(b"cut short", 1024);
        io.write_all(&frame[..600]).await.unwrap();
        io.shutdown().await.unwrap();
    })
    .await
    .unwrap();
    let mut buf = [0u8; 8];
    stream.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"complete");
    let err = stream.read(&mut buf).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
    let err = Error::from(err);
    assert!(matches!(err, Error::UnexpectedEof { .. }), "{err:?}");
    assert!(err.is_io() && !err.is_protocol_violation());
}

#[tokio::test]
async fn clean_close_on_frame_boundary_is_eof() {
    let peer = EvilPeer::new(9);
    let mut stream = against(move |mut io| async move {
        let mut s = evil_until_auth(&mut io, &peer).await;
        io.write_all(&s.seal_chunks(&peer.auth_msg(&s), 1024))
            .await
            .unwrap();
        io.write_all(&s.seal_chunks(b"bye", 1024)).await.unwrap();
        io.shutdown().await.unwrap();
    })
    .await
    .unwrap();
    let mut all = Vec::new();
    stream.read_to_end(&mut all).await.unwrap();
    assert_eq!(all, b"bye");
}

#[tokio::test(start_paused = true)]
async fn silent_peer_times_out() {
    let (ours, _theirs) = duplex(1024);
    let mut config = Config::default();
    config.handshake_timeout(Some(Duration::from_secs(3)));
    let err = SecretStream::handshake_with(ours, &our_key(), &config)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::HandshakeTimeout { timeout } if timeout == Duration::from_secs(3)),
        "{err:?}"
    );
    // A slow peer is neither a transport failure nor proof of misbehaviour.
    assert!(!err.is_protocol_violation() && !err.is_io());
    assert_eq!(
        std::io::Error::from(err).kind(),
        std::io::ErrorKind::TimedOut
    );
}

/// The blocking adapter against a peer on another thread.
#[cfg(unix)]
mod blocking {
    use std::io::{Read as _, Write as _};
    use std::os::unix::net::UnixStream;
    use std::sync::mpsc;

    use super::common::{EvilPeer, EvilSession, evil_until_auth_blocking};
    use super::{assert_violation, our_key, violation_from_read};
    use p2p_secretconn::Error;
    use p2p_secretconn::blocking::SecretStream;

    /// Runs our blocking handshake against `script`, which writes what it likes after the
    /// ephemeral keys and our auth frame, and keeps its end open until the test is done.
    fn against(
        script: impl FnOnce(&mut UnixStream, &EvilPeer, &mut EvilSession) + Send + 'static,
    ) -> (Result<SecretStream<UnixStream>, Error>, mpsc::Sender<()>) {
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        let (done, wait) = mpsc::channel::<()>();
        std::thread::spawn(move || {
            let peer = EvilPeer::new(9);
            let mut s = evil_until_auth_blocking(&mut theirs, &peer);
            script(&mut theirs, &peer, &mut s);
            let _ = wait.recv();
        });
        (SecretStream::handshake(ours, &our_key()), done)
    }

    fn honest_auth(io: &mut UnixStream, peer: &EvilPeer, s: &mut EvilSession) {
        let auth = peer.auth_msg(s);
        io.write_all(&s.seal_chunks(&auth, 1024)).unwrap();
    }

    #[test]
    fn flipped_ciphertext_bit_is_invalid_data() {
        let (stream, _done) = against(|io, peer, s| {
            honest_auth(io, peer, s);
            let mut frame = s.seal_chunks(b"hello", 1024);
            frame[500] ^= 0x10;
            io.write_all(&frame).unwrap();
        });
        let mut stream = stream.unwrap();
        let mut buf = [0u8; 8];
        for _ in 0..2 {
            let err = violation_from_read(stream.read(&mut buf).unwrap_err());
            assert!(matches!(err, Error::Crypto), "{err:?}");
        }
    }

    #[test]
    fn oversize_frame_length_is_invalid_data() {
        let (stream, _done) = against(|io, peer, s| {
            honest_auth(io, peer, s);
            io.write_all(&s.seal_chunks(b"ok", 1024)).unwrap();
            let mut plain = [0u8; 1028];
            plain[..4].copy_from_slice(&u32::MAX.to_le_bytes());
            io.write_all(&s.seal_plaintext(&plain)).unwrap();
        });
        let mut stream = stream.unwrap();
        let mut buf = [0u8; 2];
        stream.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"ok");
        let err = violation_from_read(stream.read(&mut buf).unwrap_err());
        assert!(
            matches!(err, Error::FrameLength { len } if len == u64::from(u32::MAX)),
            "{err:?}"
        );
    }

    #[test]
    fn bad_signature_is_a_violation() {
        let (res, _done) = against(|io, peer, s| {
            let mut auth = peer.auth_msg(s);
            let last = auth.len() - 1;
            auth[last] ^= 1; // the signature's last byte
            io.write_all(&s.seal_chunks(&auth, 1024)).unwrap();
        });
        let err = res.unwrap_err();
        assert!(matches!(err, Error::ChallengeVerification), "{err:?}");
        assert_violation(&err);
    }

    #[test]
    fn peer_leaving_mid_frame_is_a_disconnect() {
        let (stream, done) = against(|io, peer, s| {
            honest_auth(io, peer, s);
            let frame = s.seal_chunks(b"cut short", 1024);
            io.write_all(&frame[..700]).unwrap();
            io.shutdown(std::net::Shutdown::Write).unwrap();
        });
        let mut stream = stream.unwrap();
        let mut buf = [0u8; 8];
        let err = stream.read(&mut buf).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
        let err = Error::from(err);
        assert!(err.is_io() && !err.is_protocol_violation(), "{err:?}");
        drop(done);
    }
}

trait SignForTest {
    fn sign_challenge_for_test(&self, challenge: &[u8; 32]) -> Vec<u8>;
}

impl SignForTest for ed25519_dalek::SigningKey {
    fn sign_challenge_for_test(&self, challenge: &[u8; 32]) -> Vec<u8> {
        use ed25519_dalek::Signer as _;
        self.sign(challenge).to_bytes().to_vec()
    }
}
