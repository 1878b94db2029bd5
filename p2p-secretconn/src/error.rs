//! The error type of this crate.

use std::io;
use std::sync::Arc;
use std::time::Duration;

/// Everything that can end a handshake or a secret connection.
///
/// Cryptographic failures are deliberately opaque ([`Error::Crypto`]): the reason a frame failed
/// to authenticate is not reported, so the error cannot serve as an oracle.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The underlying transport failed. Check the connection; the secret connection is unusable.
    #[error("I/O error: {0}")]
    Io(#[source] Arc<io::Error>),
    /// The peer closed the connection in the middle of the handshake or of a frame.
    #[error("connection closed by the peer {during}")]
    UnexpectedEof {
        /// What was being read: "during the handshake" or "in the middle of a frame".
        during: &'static str,
    },
    /// The handshake did not finish in time. The peer is slow or not speaking this protocol.
    #[error("handshake timed out after {timeout:?}")]
    HandshakeTimeout {
        /// The configured limit.
        timeout: Duration,
    },
    /// A handshake message announced more than the 1 MiB the protocol allows.
    #[error("handshake message of {len} bytes exceeds the maximum of {max} bytes")]
    HandshakeMessageTooLarge {
        /// The announced length.
        len: u64,
        /// The limit.
        max: usize,
    },
    /// A handshake message could not be parsed. The peer does not speak this protocol version.
    #[error("malformed handshake message: {reason}")]
    MalformedHandshake {
        /// What was wrong.
        reason: &'static str,
    },
    /// The peer's ephemeral key is a low-order point (the DH secret would be all zeros).
    #[error("peer sent a low-order ephemeral key")]
    LowOrderKey,
    /// The peer authenticated with a key type other than ed25519, which this protocol requires.
    #[error("expected an ed25519 public key, got {key_type}")]
    UnsupportedKeyType {
        /// The key type the peer sent.
        key_type: &'static str,
    },
    /// The peer's ed25519 public key is not a valid curve point.
    #[error("peer's ed25519 public key is invalid")]
    InvalidPublicKey,
    /// The peer's signature of the handshake challenge does not verify: it does not hold the
    /// key it claims, or the two sides saw different handshakes (a man in the middle).
    #[error("challenge verification failed")]
    ChallengeVerification,
    /// A frame failed to decrypt or authenticate: corrupted or forged data. The connection is
    /// unusable.
    #[error("failed to decrypt a frame")]
    Crypto,
    /// A decrypted frame announced more than 1024 data bytes.
    #[error("frame data length {len} exceeds the maximum of 1024 bytes")]
    FrameLength {
        /// The announced length.
        len: u64,
    },
    /// A sealed frame passed to the sans-IO core was not exactly 1044 bytes.
    #[error("sealed frame is {len} bytes, expected 1044")]
    FrameSize {
        /// Its actual size.
        len: usize,
    },
    /// 2^64 - 1 frames were sent or received in one direction; the connection must be replaced.
    #[error("nonce counter exhausted")]
    NonceExhausted,
}

impl Error {
    /// Whether the error comes from the underlying transport rather than the protocol.
    pub fn is_io(&self) -> bool {
        matches!(self, Self::Io(_) | Self::UnexpectedEof { .. })
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        // Unwrap our own errors that crossed an `io::Error` boundary.
        if e.get_ref().is_some_and(|inner| inner.is::<Self>()) {
            return match e.into_inner().map(|inner| inner.downcast::<Self>()) {
                Some(Ok(ours)) => *ours,
                _ => Self::Io(Arc::new(io::Error::other("secret connection error"))),
            };
        }
        Self::Io(Arc::new(e))
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> Self {
        let kind = match &e {
            Error::Io(inner) => inner.kind(),
            Error::UnexpectedEof { .. } => io::ErrorKind::UnexpectedEof,
            Error::HandshakeTimeout { .. } => io::ErrorKind::TimedOut,
            _ => io::ErrorKind::InvalidData,
        };
        Self::new(kind, e)
    }
}
