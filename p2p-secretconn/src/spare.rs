//! One ephemeral key pair per thread, made while a handshake waits for the network, so that the
//! next handshake on the same thread can send its key at once instead of first spending the
//! X25519 base-point multiplication (about a seventh of a handshake's crypto) on its critical
//! path. Each pair is used once and wiped when dropped; see the [manual](crate::manual).

use std::cell::Cell;

use crate::handshake::EphemeralKey;

thread_local! {
    static SPARE: Cell<Option<EphemeralKey>> = const { Cell::new(None) };
}

/// The thread's spare key pair (which then has none), or a fresh one.
pub(crate) fn take() -> EphemeralKey {
    SPARE
        .try_with(Cell::take)
        .ok()
        .flatten()
        .unwrap_or_else(|| EphemeralKey::generate(&mut rand::rng()))
}

/// Makes the thread's spare key pair, unless it has one.
#[cfg(feature = "tokio")]
pub(crate) fn refill() {
    // Fails only while the thread is being torn down; then there is no next handshake.
    let _ = SPARE.try_with(|spare| {
        let key = spare
            .take()
            .unwrap_or_else(|| EphemeralKey::generate(&mut rand::rng()));
        spare.set(Some(key));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spare_is_used_once() {
        refill();
        let spare = SPARE.with(Cell::take).map(|k| *k.public());
        assert!(spare.is_some());
        SPARE.with(|s| s.set(None));
        refill();
        let first = *take().public();
        let second = *take().public();
        assert_ne!(first, second);
    }
}
