//! Protocol and security notes.
//!
//! # The handshake
//!
//! Both peers run the same steps; neither is client or server.
//!
//! 1. Generate an ephemeral X25519 key pair and send the public key in plaintext as a
//!    varint-delimited protobuf `BytesValue` (35 bytes: `22 0a 20 ‖ key`). Send and receive at
//!    the same time.
//! 2. Sort the two ephemeral public keys byte-wise into `lo` and `hi`. Compute the DH secret;
//!    abort if it is all zeros (the peer sent a low-order point).
//! 3. Feed a Merlin transcript labelled `TENDERMINT_SECRET_CONNECTION_TRANSCRIPT_HASH` with
//!    `lo`, `hi` and the DH secret, then draw a 32-byte challenge labelled
//!    `SECRET_CONNECTION_MAC`.
//! 4. HKDF-SHA256 over the DH secret (no salt, info
//!    `TENDERMINT_SECRET_CONNECTION_KEY_AND_CHALLENGE_GEN`) gives 96 bytes; the first two 32-byte
//!    blocks are the keys. The side whose key is `lo` receives with the first and sends with the
//!    second; the other side the reverse. The last 32 bytes are a leftover of an older protocol
//!    and are ignored.
//! 5. Sign the challenge with the long-term ed25519 key and send an `AuthSigMessage` (public key
//!    and signature, 103 bytes delimited) through the encrypted channel. Verify the peer's
//!    signature over the same challenge. The peer's node ID is derived from its key.
//!
//! # Frames
//!
//! Each direction has its own key and a 64-bit frame counter starting at zero; the nonce is four
//! zero bytes followed by the counter in little-endian. A frame's plaintext is a 4-byte
//! little-endian data length, up to 1024 data bytes and padding to 1028 bytes; sealed with
//! ChaCha20-Poly1305 (no associated data) it is always 1044 bytes. Since the counter only grows
//! and each direction has its own key, no (key, nonce) pair is ever used twice. We stop with
//! [`Error::NonceExhausted`](crate::Error::NonceExhausted) rather than wrap, as the reference
//! does (after 2^64 - 1 frames, which no connection reaches).
//!
//! # Where this implementation differs from the reference
//!
//! None of these differences is visible to an honest peer.
//!
//! - **Ephemeral key length.** The reference copies at most 32 bytes of the peer's key into a
//!   zeroed array, accepting short and long keys. We require exactly 32 bytes.
//! - **Handshake message size.** The reference accepts handshake messages up to 1 MiB; the IO
//!   adapters here refuse more than 64 KiB (honest messages are 35 and 103 bytes), which bounds
//!   what an unauthenticated peer can make us buffer. The sans-IO [`Handshake`](crate::Handshake)
//!   accepts up to 1 MiB.
//! - **Signature verification.** The reference verifies ed25519 signatures with ZIP-215 rules;
//!   we use `ed25519-dalek`'s default verification, which agrees on every signature an honest
//!   ed25519 implementation produces and may reject a few crafted edge-case encodings that
//!   ZIP-215 accepts. A peer can only lose its own connection that way.
//! - **Low-order points.** Like the reference we reject an all-zero DH secret, which covers
//!   every low-order point, including those of the blacklist the reference used before v0.33.
//! - **Padding.** We always zero the padding of a frame; the reference may leave stale bytes
//!   there. Receivers ignore it either way.
//! - **Batching.** The reference writes each 1044-byte frame with its own system call. We seal
//!   up to 64 frames (by default) into one buffer and write them together, which is what makes
//!   this implementation several times faster over real sockets. The bytes on the wire are the
//!   same.
//! - **Errors instead of panics.** Every malformed input, including a frame whose length field
//!   exceeds 1024, is a typed [`Error`](crate::Error); after an error the stream stays failed
//!   and returns the same error.
//!
//! # Security notes
//!
//! - The handshake authenticates the peer's long-term key, not its node ID as configured by
//!   you: compare [`RemoteIdentity::node_id`](crate::RemoteIdentity::node_id) with the ID you
//!   meant to reach (the transport layer of this workspace does).
//! - SecretConnection has known weaknesses as a protocol: it is not a standard, well-analysed
//!   construction such as Noise, and it has been broken and repaired more than once (see the
//!   history in the reference's repository). It offers no protection against traffic analysis,
//!   since every frame has the same size but their number and timing are visible.
//! - Secrets (ephemeral key, DH output, derived keys, challenge) are wiped from memory when
//!   dropped.
//! - **Ephemeral keys made ahead (opt-in).** With a [`KeySource`](crate::KeySource) made
//!   [`with_spare`](crate::KeySource::with_spare) (for example
//!   [`KeySource::os_with_spare()`](crate::KeySource::os_with_spare)), when the tokio adapter
//!   has sent its signature and has nothing to do but wait for the peer's, it makes the
//!   ephemeral key pair of the next handshake that uses the same source (at most one per
//!   source), so that handshake can send its key at once. Each pair is still fresh, random and
//!   used for one handshake only; it just lives in memory a little earlier, until a handshake
//!   takes it or the source is dropped (it is wiped either way). Both adapters use such a pair
//!   when there is one. The default source keeps none.
//!
//! # Randomness and determinism
//!
//! The only randomness in this crate is the ephemeral X25519 secret of each handshake (32
//! bytes). Everything else is a function of it and of the inputs: ed25519 signatures are
//! deterministic, nonces are counters, padding is zero. So the bytes a connection writes are
//! fixed once its ephemeral key, its node key, the peer's bytes and the data written are.
//!
//! - The sans-IO [`Handshake`](crate::Handshake) takes the generator from its caller.
//! - The IO adapters take the key from [`Config::key_source`](crate::Config::key_source),
//!   by default [`KeySource::os()`](crate::KeySource::os): the operating system's generator,
//!   read once per handshake, as the reference reads `crypto/rand`. If it fails, the
//!   handshake fails with [`Error::Randomness`](crate::Error::Randomness) before anything is
//!   sent.
//! - A seeded source ([`KeySource::seeded`](crate::KeySource::seeded), a ChaCha20 generator)
//!   makes a test network reproducible: the n-th handshake to start with a source, or with
//!   any clone of it, gets the n-th key it generates, whether a spare is kept or not and
//!   however the handshakes interleave once started. A program that starts its handshakes in
//!   the same order writes the same bytes on every run. Anyone who knows the seed can decrypt
//!   such connections: never use one outside tests.
//!
//! Outside this crate, [`NodeKey::generate`](p2p_types::NodeKey::generate) reads the
//! operating system's generator; deterministic programs use `NodeKey::from_seed` instead.
