//! The ChaCha20-Poly1305 backends.
//!
//! Frames are sealed with IETF ChaCha20-Poly1305 (12-byte nonce, no associated data). Two
//! implementations are available: with the `ring` feature (on by default), ring's audited
//! assembly implementation, and always RustCrypto's `chacha20poly1305` (pure Rust). Both
//! produce identical bytes; the choice only affects speed and portability.

use crate::Error;

/// Length of a ChaCha20-Poly1305 key.
pub(crate) const KEY_LEN: usize = 32;
/// Length of a ChaCha20-Poly1305 nonce.
pub(crate) const NONCE_LEN: usize = 12;
/// Length of a Poly1305 tag.
pub const TAG_LEN: usize = 16;

/// Which ChaCha20-Poly1305 implementation seals and opens frames.
///
/// The default is `Backend::Ring` when the `ring` feature is enabled (it is by default), the
/// way rustls defaults to its fastest audited provider, and [`Backend::RustCrypto`] otherwise
/// (`default-features = false`, for targets where ring does not build). Cargo features are
/// additive across a build, so any crate in the dependency graph enabling `ring` changes the
/// default for everyone; pick a backend explicitly in [`Config`](crate::Config) when that
/// matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Backend {
    /// RustCrypto's pure-Rust `chacha20poly1305` (portable; uses SIMD when the CPU has it).
    #[cfg_attr(not(feature = "ring"), default)]
    RustCrypto,
    /// ring's ChaCha20-Poly1305 (audited assembly; the fastest on x86_64 and aarch64).
    #[cfg(feature = "ring")]
    #[cfg_attr(docsrs, doc(cfg(feature = "ring")))]
    #[default]
    Ring,
}

impl Backend {
    /// Every backend compiled into this build, default first.
    pub fn all() -> &'static [Self] {
        #[cfg(feature = "ring")]
        {
            &[Self::Ring, Self::RustCrypto]
        }
        #[cfg(not(feature = "ring"))]
        {
            &[Self::RustCrypto]
        }
    }

    /// A short name for logs and benchmarks.
    pub fn name(self) -> &'static str {
        match self {
            Self::RustCrypto => "rustcrypto",
            #[cfg(feature = "ring")]
            Self::Ring => "ring",
        }
    }
}

/// A keyed AEAD of one direction. There are two per connection, so the size difference
/// between the variants does not matter.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Cipher {
    RustCrypto(chacha20poly1305::ChaCha20Poly1305),
    #[cfg(feature = "ring")]
    Ring(ring::aead::LessSafeKey),
}

impl Cipher {
    pub(crate) fn new(backend: Backend, key: &[u8; KEY_LEN]) -> Result<Self, Error> {
        Ok(match backend {
            Backend::RustCrypto => {
                use chacha20poly1305::KeyInit as _;
                Self::RustCrypto(chacha20poly1305::ChaCha20Poly1305::new(key.into()))
            }
            #[cfg(feature = "ring")]
            Backend::Ring => {
                // Fails only on a wrong key length, which the array type rules out.
                let unbound = ring::aead::UnboundKey::new(&ring::aead::CHACHA20_POLY1305, key)
                    .map_err(|_| Error::Crypto)?;
                Self::Ring(ring::aead::LessSafeKey::new(unbound))
            }
        })
    }

    /// Encrypts `buf` in place and returns the tag.
    pub(crate) fn seal_in_place(
        &self,
        nonce: [u8; NONCE_LEN],
        buf: &mut [u8],
    ) -> Result<[u8; TAG_LEN], Error> {
        match self {
            Self::RustCrypto(c) => {
                use chacha20poly1305::aead::AeadInOut as _;
                let tag = c
                    .encrypt_inout_detached(&nonce.into(), &[], buf.into())
                    .map_err(|_| Error::Crypto)?;
                Ok(tag.into())
            }
            #[cfg(feature = "ring")]
            Self::Ring(k) => {
                let tag = k
                    .seal_in_place_separate_tag(
                        ring::aead::Nonce::assume_unique_for_key(nonce),
                        ring::aead::Aad::empty(),
                        buf,
                    )
                    .map_err(|_| Error::Crypto)?;
                let mut out = [0u8; TAG_LEN];
                out.copy_from_slice(tag.as_ref());
                Ok(out)
            }
        }
    }

    /// Verifies `tag` and decrypts `buf` in place. On failure `buf` holds garbage.
    pub(crate) fn open_in_place(
        &self,
        nonce: [u8; NONCE_LEN],
        buf: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), Error> {
        match self {
            Self::RustCrypto(c) => {
                use chacha20poly1305::aead::AeadInOut as _;
                c.decrypt_inout_detached(&nonce.into(), &[], buf.into(), tag.into())
                    .map_err(|_| Error::Crypto)
            }
            #[cfg(feature = "ring")]
            Self::Ring(k) => {
                let tag = ring::aead::Tag::from(*tag);
                k.open_in_place_separate_tag(
                    ring::aead::Nonce::assume_unique_for_key(nonce),
                    ring::aead::Aad::empty(),
                    tag,
                    buf,
                    0..,
                )
                .map(|_| ())
                .map_err(|_| Error::Crypto)
            }
        }
    }
}

impl core::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let name = match self {
            Self::RustCrypto(_) => "rustcrypto",
            #[cfg(feature = "ring")]
            Self::Ring(_) => "ring",
        };
        f.debug_tuple("Cipher").field(&name).finish()
    }
}
