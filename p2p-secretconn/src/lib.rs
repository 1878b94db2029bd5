//! The CometBFT SecretConnection: an authenticated key exchange followed by an encrypted,
//! framed byte stream. This is the layer right above TCP in the p2p stack; it is also what
//! remote signers (privval) speak.
//!
//! # How to drive it
//!
//! With tokio (feature `tokio`, on by default), run the handshake over any
//! `AsyncRead + AsyncWrite` and use the result as a byte stream:
//!
//! ```no_run
//! # #[cfg(feature = "tokio")]
//! # mod example {
//! use p2p_secretconn::SecretStream;
//! use p2p_types::NodeKey;
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let key = NodeKey::generate();
//! let tcp = tokio::net::TcpStream::connect("127.0.0.1:26656").await?;
//! let mut conn = SecretStream::handshake(tcp, &key).await?;
//! println!("connected to {}", conn.remote_node_id());
//! conn.write_all(b"hello").await?;
//! // Sent at once as far as the socket takes it; flush makes sure all of it has left.
//! conn.flush().await?;
//! let mut buf = [0u8; 5];
//! conn.read_exact(&mut buf).await?;
//! # Ok(()) }
//! # }
//! ```
//!
//! Without an async runtime, [`blocking::SecretStream`] (feature `std`) does the same over
//! `std::io::Read + Write`. Without any IO at all, drive the sans-IO [`Handshake`] and
//! [`SecretSession`] yourself: they take and return bytes and never touch a socket.
//!
//! # Errors: attacks are not disconnects
//!
//! Every failure is an [`Error`]. Whatever a peer does that no honest peer does (a malformed
//! handshake, a low-order key, a bad signature, a frame that fails to authenticate, a frame
//! length above 1024) is a variant of its own for which [`Error::is_protocol_violation`] is
//! true; transport failures and a peer that leaves (even mid-frame) are [`Error::is_io`]
//! instead. Through the `AsyncRead`/`AsyncWrite` and `Read`/`Write` adapters errors arrive as
//! `io::Error`s carrying the `Error`, of kind `InvalidData` exactly for protocol violations:
//! that is how the MConnection above tells an attack from a disconnect. A stream that failed
//! keeps returning the same error.
//!
//! # Randomness
//!
//! The IO adapters draw each handshake's ephemeral key from the [`KeySource`] of their
//! [`Config`]: by default the operating system's generator; a seeded source makes every byte a
//! test network writes reproducible. See the [manual](manual#randomness-and-determinism).
//!
//! # Protocol in brief
//!
//! Each side sends a fresh X25519 key; the DH secret keys HKDF-SHA256, which yields one
//! ChaCha20-Poly1305 key per direction; a Merlin transcript of both ephemeral keys and the DH
//! secret yields a challenge, which each side signs with its long-term ed25519 key and sends
//! encrypted. Data then travels in frames of exactly 1044 bytes, each carrying up to 1024 bytes.
//! The details, and how this implementation differs from the reference where it does, are in
//! the [`manual`].
//!
//! # Features
//!
//! - `tokio` (default): [`SecretStream`] over tokio IO.
//! - `std` (default): the [`blocking`] adapter.
//! - `ring` (default): ring's audited assembly ChaCha20-Poly1305 is the default [`Backend`],
//!   several times the pure-Rust backend's speed on x86_64 and aarch64. Without it
//!   (`default-features = false, features = ["tokio", "std"]`) the build is pure Rust and
//!   uses RustCrypto's `chacha20poly1305`, which is always compiled and selectable with
//!   [`Config::backend`]. Both produce the same bytes.
//!
//! This crate depends on no other crate of this workspace except `p2p-types` (node keys and
//! IDs, protobuf messages).

#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![warn(clippy::exhaustive_enums, clippy::exhaustive_structs)]

mod aead;
#[cfg(feature = "std")]
#[cfg_attr(docsrs, doc(cfg(feature = "std")))]
pub mod blocking;
#[cfg(any(feature = "std", feature = "tokio"))]
mod buffer;
mod config;
mod error;
mod frame;
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing;
pub mod handshake;
mod keys;
pub mod manual;
#[cfg(feature = "tokio")]
mod stream;

pub use aead::{Backend, TAG_LEN};
pub use config::{Config, DEFAULT_BUFFER_FRAMES, DEFAULT_HANDSHAKE_TIMEOUT};
pub use error::Error;
pub use frame::{
    DATA_LEN_SIZE, DATA_MAX_SIZE, FRAME_PLAINTEXT_LEN, Opener, SEALED_FRAME_LEN, Sealer,
    SecretSession, frames_for, nonce_bytes,
};
pub use handshake::{
    AwaitingAuthSig, AwaitingEphemeral, EPHEMERAL_MSG_LEN, Handshake, MAX_HANDSHAKE_MSG_LEN,
    RemoteIdentity,
};
pub use keys::KeySource;
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub use stream::{SecretReadHalf, SecretStream, SecretWriteHalf};

pub use p2p_types::{NodeId, NodeKey};
