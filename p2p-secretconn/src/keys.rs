//! Where the IO adapters get their ephemeral keys: [`KeySource`].
//!
//! Every handshake needs a fresh X25519 key pair. The sans-IO [`Handshake`](crate::Handshake)
//! takes its randomness from the caller; the IO adapters take it from the
//! [`KeySource`] in their [`Config`](crate::Config). By default that is the operating system's
//! random source, read once per handshake. Tests and simulations can make every handshake
//! reproducible with a seeded source instead.

// Without an IO adapter (no `std`, no `tokio` feature) nothing draws keys from a source.
#![cfg_attr(not(any(feature = "std", feature = "tokio")), allow(dead_code))]

use std::fmt;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};

use rand::rand_core::{CryptoRng, Rng as _, SeedableRng as _, TryRng as _};
use rand::rngs::{ChaCha20Rng, SysRng};
use zeroize::Zeroizing;

use crate::Error;
use crate::handshake::EphemeralKey;

/// Where the IO adapters draw the ephemeral key of each handshake from.
///
/// A `KeySource` is cheap to clone, and clones share their state: one source given to many
/// connections (through their [`Config`](crate::Config)) hands each handshake the next key.
///
/// - [`KeySource::os()`] (the default): the operating system's random source, read for every
///   handshake. Like the reference, which draws each ephemeral key from `crypto/rand`.
/// - [`KeySource::seeded`] / [`KeySource::from_seed`]: a ChaCha20 generator with a fixed seed,
///   so a test network produces the same bytes on every run. **Never in production**: whoever
///   knows the seed can decrypt every connection.
/// - [`KeySource::from_rng`]: any cryptographic generator of your choice.
/// - [`with_spare`](KeySource::with_spare) (for example [`KeySource::os_with_spare()`]): while
///   a tokio handshake waits for the peer's signature with nothing else to do, it makes the
///   key pair of the next handshake that uses this source, which then sends its key at once.
///   Opt-in; see the [manual](crate::manual#security-notes).
///
/// Determinism: the n-th handshake that starts with a seeded source (or with any clone of
/// it) gets the n-th key the generator makes, with or without a spare, however the
/// handshakes interleave afterwards. Handshakes that start in the same order get the same keys.
///
/// ```
/// use p2p_secretconn::{Config, KeySource};
///
/// let keys = KeySource::seeded(7); // shared by every connection of this test node
/// let mut config = Config::default();
/// config.key_source(keys.clone());
/// assert_eq!(config.get_key_source(), &keys);
/// ```
#[derive(Clone)]
pub struct KeySource {
    rng: Source,
    /// The key pair made ahead for the next handshake, when enabled.
    spare: Option<Arc<Mutex<Option<EphemeralKey>>>>,
}

#[derive(Clone)]
enum Source {
    Os,
    Seeded(Arc<Mutex<ChaCha20Rng>>),
    Custom(Arc<Mutex<dyn CryptoRng + Send>>),
}

impl Default for KeySource {
    /// [`KeySource::os()`].
    fn default() -> Self {
        Self::os()
    }
}

impl KeySource {
    /// The operating system's random source (`getrandom`), read for every handshake.
    pub fn os() -> Self {
        Self {
            rng: Source::Os,
            spare: None,
        }
    }

    /// [`os()`](Self::os) with a spare key pair made ahead (see [`with_spare`](Self::with_spare)).
    pub fn os_with_spare() -> Self {
        Self::os().with_spare()
    }

    /// A ChaCha20 generator seeded from `seed` (expanded to 32 bytes with a PCG32 stream, as
    /// `rand`'s `SeedableRng::seed_from_u64` does). For tests and simulations only: the keys
    /// are predictable to anyone who knows the seed.
    pub fn seeded(seed: u64) -> Self {
        Self::from_chacha(ChaCha20Rng::seed_from_u64(seed))
    }

    /// A ChaCha20 generator with this 32-byte seed. For tests and simulations only, like
    /// [`seeded`](Self::seeded).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self::from_chacha(ChaCha20Rng::from_seed(seed))
    }

    fn from_chacha(rng: ChaCha20Rng) -> Self {
        Self {
            rng: Source::Seeded(Arc::new(Mutex::new(rng))),
            spare: None,
        }
    }

    /// Any cryptographic random generator; handshakes take 32 bytes from it each.
    pub fn from_rng<R: CryptoRng + Send + 'static>(rng: R) -> Self {
        let rng: Arc<Mutex<dyn CryptoRng + Send>> = Arc::new(Mutex::new(rng));
        Self {
            rng: Source::Custom(rng),
            spare: None,
        }
    }

    /// This source with a slot for one key pair made ahead: the tokio adapter fills it while a
    /// handshake has sent its signature and waits for the peer's, and the next handshake using
    /// this source (or a clone) takes it instead of computing one on its critical path. That
    /// saves one X25519 base-point multiplication, about a seventh of a handshake's crypto.
    ///
    /// The key pair is still used once only, and wiped when taken over or dropped; it just
    /// exists a little earlier. Clones made after this call share the slot.
    ///
    /// It pays when handshakes wait on the network for long (real peers, real latency): the key
    /// is made in time that is otherwise idle. Over loopback, where the peer's signature is
    /// usually there already, making the key delays checking it by as much as it saves later;
    /// the workspace's `handshake_spare` benchmark measures no gain there.
    pub fn with_spare(self) -> Self {
        Self {
            rng: self.rng,
            spare: Some(Arc::new(Mutex::new(None))),
        }
    }

    /// Whether this source keeps a key pair made ahead.
    pub fn has_spare(&self) -> bool {
        self.spare.is_some()
    }

    /// The key pair for a handshake that starts now: the spare if there is one, else a new one.
    pub(crate) fn take(&self) -> Result<EphemeralKey, Error> {
        let spare = self.spare.as_ref().and_then(|spare| lock(spare).take());
        match spare {
            Some(key) => Ok(key),
            None => self.generate(),
        }
    }

    /// Makes the spare key pair, if this source keeps one and has none.
    ///
    /// Keys are made and taken in the same order, whether they went through the spare slot
    /// or not: the slot holds at most one and is always emptied before a new key is drawn.
    #[cfg(feature = "tokio")]
    pub(crate) fn refill(&self) {
        let Some(spare) = &self.spare else { return };
        let mut slot = lock(spare);
        if slot.is_none() {
            // A failure here shows again, and is reported, when a handshake draws its key.
            *slot = self.generate().ok();
        }
    }

    fn generate(&self) -> Result<EphemeralKey, Error> {
        let mut secret = Zeroizing::new([0u8; 32]);
        match &self.rng {
            Source::Os => {
                SysRng
                    .try_fill_bytes(secret.as_mut())
                    .map_err(|e| Error::Randomness {
                        source: Arc::new(io::Error::other(e)),
                    })?
            }
            Source::Seeded(rng) => lock(rng).fill_bytes(secret.as_mut()),
            Source::Custom(rng) => lock(rng).fill_bytes(secret.as_mut()),
        }
        Ok(EphemeralKey::from_secret(*secret))
    }
}

/// Locks `m`, ignoring poisoning: a generator that panicked mid-draw is still a generator,
/// and a key slot is valid whatever happened to its last user.
fn lock<T: ?Sized>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl PartialEq for KeySource {
    /// Two sources are equal if they are the OS source or clones of the same source, and
    /// share their spare slot (or both have none).
    fn eq(&self, other: &Self) -> bool {
        let rng = match (&self.rng, &other.rng) {
            (Source::Os, Source::Os) => true,
            (Source::Seeded(a), Source::Seeded(b)) => Arc::ptr_eq(a, b),
            (Source::Custom(a), Source::Custom(b)) => Arc::ptr_eq(a, b),
            _ => false,
        };
        let spare = match (&self.spare, &other.spare) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        };
        rng && spare
    }
}

impl Eq for KeySource {}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rng = match self.rng {
            Source::Os => "os",
            Source::Seeded(_) => "seeded",
            Source::Custom(_) => "custom",
        };
        f.debug_struct("KeySource")
            .field("rng", &rng)
            .field("spare", &self.spare.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publics(source: &KeySource, n: usize) -> Vec<[u8; 32]> {
        (0..n).map(|_| *source.take().unwrap().public()).collect()
    }

    #[test]
    fn seeded_sources_repeat_and_differ_by_seed() {
        let a = publics(&KeySource::seeded(1), 4);
        assert_eq!(a, publics(&KeySource::seeded(1), 4));
        assert_ne!(a, publics(&KeySource::seeded(2), 4));
        assert_ne!(
            publics(&KeySource::from_seed([1; 32]), 4),
            publics(&KeySource::from_seed([2; 32]), 4)
        );
        // Every key of a sequence is new.
        let mut sorted = a.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), a.len());
    }

    #[test]
    fn clones_share_one_sequence() {
        let source = KeySource::seeded(9);
        let clone = source.clone();
        let interleaved = [
            *source.take().unwrap().public(),
            *clone.take().unwrap().public(),
            *source.take().unwrap().public(),
        ];
        assert_eq!(interleaved.to_vec(), publics(&KeySource::seeded(9), 3));
    }

    #[cfg(feature = "tokio")]
    #[test]
    fn a_spare_keeps_the_sequence() {
        let plain = publics(&KeySource::seeded(5), 5);
        let spare = KeySource::seeded(5).with_spare();
        let mut got = Vec::new();
        // Refills at arbitrary points, some redundant.
        spare.refill();
        got.push(*spare.take().unwrap().public());
        got.push(*spare.take().unwrap().public());
        spare.refill();
        spare.refill();
        got.push(*spare.take().unwrap().public());
        spare.refill();
        got.push(*spare.take().unwrap().public());
        got.push(*spare.take().unwrap().public());
        assert_eq!(got, plain);
    }

    #[cfg(feature = "tokio")]
    #[test]
    fn a_spare_is_used_once() {
        let source = KeySource::os_with_spare();
        source.refill();
        let first = *source.take().unwrap().public();
        let second = *source.take().unwrap().public();
        assert_ne!(first, second);
    }

    #[test]
    fn os_keys_differ() {
        let keys = publics(&KeySource::os(), 2);
        assert_ne!(keys[0], keys[1]);
        assert_eq!(KeySource::default(), KeySource::os());
    }

    #[test]
    fn custom_generators_are_used() {
        struct Fixed;
        impl rand::TryRng for Fixed {
            type Error = core::convert::Infallible;
            fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
                Ok(0x0101_0101)
            }
            fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
                Ok(0x0101_0101_0101_0101)
            }
            fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
                dst.fill(1);
                Ok(())
            }
        }
        impl rand::TryCryptoRng for Fixed {}
        let key = KeySource::from_rng(Fixed).take().unwrap();
        assert_eq!(key.public(), EphemeralKey::from_secret([1; 32]).public());
    }

    #[test]
    fn equality_is_identity() {
        let a = KeySource::seeded(1);
        assert_eq!(a, a.clone());
        assert_ne!(a, KeySource::seeded(1));
        assert_ne!(KeySource::os(), KeySource::os_with_spare());
        let s = KeySource::os_with_spare();
        assert_eq!(s, s.clone());
        assert_ne!(s, KeySource::os_with_spare());
        assert!(format!("{a:?}").contains("seeded"));
    }
}
