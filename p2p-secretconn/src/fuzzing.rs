//! Hooks for the fuzz targets in `fuzz/` (compiled only under `cfg(fuzzing)`, never part of the
//! API).
//!
//! Only what needs the crate's internals lives here: frame sealers and openers with chosen
//! keys, sealing dishonest plaintexts, the session a peer derives from any ephemeral key, our
//! side's check of an `AuthSigMessage`, and established streams built from an opener. The
//! harness (the scripted transport, the drivers, the models) is in `fuzz/fuzz_targets/common`
//! and uses the public API for everything else, the IO adapters' handshakes included.

// Destructured by our own fuzz crate.
#![allow(clippy::exhaustive_structs)]

use x25519_dalek::{PublicKey as XPublicKey, StaticSecret};

use crate::frame::{FRAME_PLAINTEXT_LEN, Opener, SEALED_FRAME_LEN, Sealer};
use crate::handshake::{RemoteIdentity, check_auth_sig, decode_ephemeral, derive};
use crate::{Backend, Error};

/// The largest handshake message the IO adapters accept.
#[cfg(any(feature = "std", feature = "tokio"))]
pub const IO_HANDSHAKE_MSG_LIMIT: usize = crate::buffer::IO_HANDSHAKE_MSG_LIMIT;

/// A [`Sealer`] keyed with `key`, as the handshake builds one, starting at nonce 0.
pub fn sealer(backend: Backend, key: &[u8; 32]) -> Result<Sealer, Error> {
    Sealer::new(backend, key)
}

/// An [`Opener`] keyed with `key`, as the handshake builds one, starting at nonce 0.
pub fn opener(backend: Backend, key: &[u8; 32]) -> Result<Opener, Error> {
    Opener::new(backend, key)
}

/// Seals an arbitrary frame plaintext (`len ‖ data ‖ padding`, with any `len`, even above
/// 1024) with `sealer`'s next nonce, as an authenticated but dishonest peer would.
pub fn seal_plaintext(
    sealer: &mut Sealer,
    plaintext: &[u8; FRAME_PLAINTEXT_LEN],
) -> Result<[u8; SEALED_FRAME_LEN], Error> {
    let mut out = [0u8; SEALED_FRAME_LEN];
    out[..FRAME_PLAINTEXT_LEN].copy_from_slice(plaintext);
    sealer.seal_plaintext_in_place(&mut out)?;
    Ok(out)
}

/// The peer's side of a session whose other side is ours, with our ephemeral secret
/// `our_secret`, after the peer sent `peer_msg` as its ephemeral-key message. The keys come
/// from the handshake's own derivation, so a peer that sent any key at all (even one whose
/// secret it does not know) can be simulated.
pub struct PeerView {
    /// The challenge both sides sign.
    pub challenge: [u8; 32],
    /// Seals what we open (our receive key), from nonce 0.
    pub sealer: Sealer,
    /// Opens what we seal (our send key), from nonce 0.
    pub opener: Opener,
}

/// See [`PeerView`]. Fails exactly as our side of the handshake fails on `peer_msg`.
pub fn peer_view(
    our_secret: [u8; 32],
    backend: Backend,
    peer_msg: &[u8],
) -> Result<PeerView, Error> {
    let remote = decode_ephemeral(peer_msg)?;
    let secret = StaticSecret::from(our_secret);
    let local = XPublicKey::from(&secret).to_bytes();
    let derived = derive(secret, &local, &remote)?;
    Ok(PeerView {
        challenge: *derived.challenge,
        sealer: Sealer::new(backend, &derived.keys.recv)?,
        opener: Opener::new(backend, &derived.keys.send)?,
    })
}

/// The checks our side applies to a peer's delimited `AuthSigMessage` signing `challenge`;
/// returns the key it authenticates.
pub fn check_auth(challenge: &[u8; 32], msg: &[u8]) -> Result<RemoteIdentity, Error> {
    check_auth_sig(challenge, msg).map(RemoteIdentity::new)
}

#[cfg(all(feature = "std", feature = "tokio"))]
pub use io::*;

#[cfg(all(feature = "std", feature = "tokio"))]
mod io {
    use std::sync::OnceLock;

    use p2p_types::NodeKey;

    use crate::buffer::RecvBuf;
    use crate::frame::{Opener, Sealer};
    use crate::handshake::RemoteIdentity;
    use crate::{Config, Error, blocking};

    /// A stand-in peer identity for streams that skipped the handshake.
    fn remote() -> RemoteIdentity {
        static REMOTE: OnceLock<RemoteIdentity> = OnceLock::new();
        *REMOTE.get_or_init(|| RemoteIdentity::new(NodeKey::from_seed([0; 32]).public_key()))
    }

    /// The parts of an established stream whose receive side opens with `opener` and which
    /// has read nothing yet.
    fn parts(opener: Opener, config: &Config) -> Result<(Sealer, Opener, RecvBuf), Error> {
        let sealer = Sealer::new(config.backend, &[0; 32])?;
        Ok((sealer, opener, RecvBuf::new(config.read_buffer_len())))
    }

    /// An established tokio stream over `io` that opens what it reads with `opener`.
    pub fn tokio_stream<T>(
        io: T,
        opener: Opener,
        config: &Config,
    ) -> Result<crate::SecretStream<T>, Error> {
        let (sealer, opener, recv) = parts(opener, config)?;
        Ok(crate::SecretStream::from_parts(
            io,
            sealer,
            opener,
            recv,
            remote(),
            config,
        ))
    }

    /// An established blocking stream over `io` that opens what it reads with `opener`.
    pub fn blocking_stream<T>(
        io: T,
        opener: Opener,
        config: &Config,
    ) -> Result<blocking::SecretStream<T>, Error> {
        let (sealer, opener, recv) = parts(opener, config)?;
        Ok(blocking::SecretStream::from_parts(
            io,
            sealer,
            opener,
            recv,
            remote(),
            config,
        ))
    }
}
