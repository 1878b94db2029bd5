//! The error type of this crate.

use std::io;
use std::sync::Arc;
use std::time::Duration;

/// Everything that can end a handshake or a secret connection.
///
/// Cryptographic failures are deliberately opaque ([`Error::Crypto`]): the reason a frame failed
/// to authenticate is not reported, so the error cannot serve as an oracle.
///
/// # Three kinds of failure
///
/// - [`is_protocol_violation`](Self::is_protocol_violation): the peer sent something no
///   honest implementation sends (a malformed or oversize handshake message, a low-order key,
///   a bad signature, a frame that does not authenticate, a frame length above 1024). Treat it
///   as an attack or a broken peer, not as a disconnect.
/// - [`is_io`](Self::is_io): the transport failed or the peer went away (also in the middle
///   of a frame).
/// - Neither: a handshake timeout, the random source failing, an exhausted nonce counter, or
///   a misuse of the sans-IO API ([`Error::FrameSize`]).
///
/// Through the `AsyncRead`/`Read` and `AsyncWrite`/`Write` adapters an error arrives as an
/// [`io::Error`] that carries this one (`From<io::Error> for Error` gets it back, and
/// `get_ref()` plus `downcast_ref::<Error>()` reads it in place). Its kind is
/// [`io::ErrorKind::InvalidData`] exactly for protocol violations, so a layer above that only
/// sees `io::Error`s (the MConnection) classifies `InvalidData` from its stream as a protocol
/// violation. The other kinds: `UnexpectedEof` when the peer left mid-frame or mid-handshake,
/// `TimedOut` for a handshake timeout, `InvalidInput` for [`Error::FrameSize`], `Other` for
/// the rest, and for [`Error::Io`] the transport's own error, kind included, unchanged (a
/// transport that itself reports `InvalidData` is passed through as such).
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
    /// The random source of the [`KeySource`](crate::KeySource) failed to produce an ephemeral
    /// key (the operating system's generator is unavailable).
    #[error("the random source failed: {source}")]
    Randomness {
        /// What the generator reported.
        #[source]
        source: Arc<io::Error>,
    },
    /// 2^64 - 1 frames were sent or received in one direction; the connection must be replaced.
    #[error("nonce counter exhausted")]
    NonceExhausted,
}

impl Error {
    /// Whether the error comes from the underlying transport rather than the protocol: it
    /// failed, or the peer closed the connection (even in the middle of a frame).
    pub fn is_io(&self) -> bool {
        matches!(self, Self::Io(_) | Self::UnexpectedEof { .. })
    }

    /// Whether the peer misbehaved: it sent bytes that no honest peer sends, in the handshake
    /// or on the established stream. These, and only these, travel as
    /// [`io::ErrorKind::InvalidData`] through the stream adapters.
    pub fn is_protocol_violation(&self) -> bool {
        match self {
            Self::HandshakeMessageTooLarge { .. }
            | Self::MalformedHandshake { .. }
            | Self::LowOrderKey
            | Self::UnsupportedKeyType { .. }
            | Self::InvalidPublicKey
            | Self::ChallengeVerification
            | Self::Crypto
            | Self::FrameLength { .. } => true,
            Self::Io(_)
            | Self::UnexpectedEof { .. }
            | Self::HandshakeTimeout { .. }
            | Self::FrameSize { .. }
            | Self::Randomness { .. }
            | Self::NonceExhausted => false,
        }
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
            _ if e.is_protocol_violation() => io::ErrorKind::InvalidData,
            Error::Io(inner) => inner.kind(),
            Error::UnexpectedEof { .. } => io::ErrorKind::UnexpectedEof,
            Error::HandshakeTimeout { .. } => io::ErrorKind::TimedOut,
            Error::FrameSize { .. } => io::ErrorKind::InvalidInput,
            _ => io::ErrorKind::Other,
        };
        Self::new(kind, e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_variant() -> Vec<Error> {
        vec![
            Error::Io(Arc::new(io::ErrorKind::ConnectionReset.into())),
            Error::UnexpectedEof { during: "x" },
            Error::HandshakeTimeout {
                timeout: Duration::from_secs(3),
            },
            Error::HandshakeMessageTooLarge { len: 1, max: 0 },
            Error::MalformedHandshake { reason: "x" },
            Error::LowOrderKey,
            Error::UnsupportedKeyType { key_type: "x" },
            Error::InvalidPublicKey,
            Error::ChallengeVerification,
            Error::Crypto,
            Error::FrameLength { len: 1025 },
            Error::FrameSize { len: 1 },
            Error::Randomness {
                source: Arc::new(io::Error::other("no entropy")),
            },
            Error::NonceExhausted,
        ]
    }

    #[test]
    fn invalid_data_means_protocol_violation() {
        let violations: Vec<String> = every_variant()
            .into_iter()
            .filter(Error::is_protocol_violation)
            .map(|e| format!("{e:?}"))
            .collect();
        assert_eq!(violations.len(), 8, "{violations:?}");
        for e in every_variant() {
            assert!(!(e.is_io() && e.is_protocol_violation()), "{e:?}");
            let violation = e.is_protocol_violation();
            let before = format!("{e:?}");
            let io = io::Error::from(e);
            assert_eq!(
                io.kind() == io::ErrorKind::InvalidData,
                violation,
                "{before}"
            );
            // The typed error survives the trip through io::Error.
            let inner = io.get_ref().and_then(|i| i.downcast_ref::<Error>());
            assert_eq!(inner.map(|i| format!("{i:?}")), Some(before.clone()));
            assert_eq!(format!("{:?}", Error::from(io)), before);
        }
    }

    #[test]
    fn transport_errors_keep_their_kind() {
        let e = Error::from(io::Error::from(io::ErrorKind::BrokenPipe));
        assert!(e.is_io() && !e.is_protocol_violation());
        assert_eq!(io::Error::from(e).kind(), io::ErrorKind::BrokenPipe);
    }
}
