//! Seeds for every random choice, derived from one simulation seed.

use sha2::{Digest, Sha256};

/// 32 bytes for `label` and `parts` under `seed`: SHA-256 of a fixed prefix, the seed, the
/// label and the parts, so that every use draws from its own stream and adding one does not
/// shift the others.
pub(crate) fn bytes(seed: u64, label: &str, parts: &[u64]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"p2p-testkit/sim/v1\0");
    h.update(seed.to_le_bytes());
    h.update((label.len() as u64).to_le_bytes());
    h.update(label.as_bytes());
    for p in parts {
        h.update(p.to_le_bytes());
    }
    h.finalize().into()
}

/// A `u64` for `label` and `parts` under `seed` (see [`bytes`]).
pub(crate) fn u64(seed: u64, label: &str, parts: &[u64]) -> u64 {
    let b = bytes(seed, label, parts);
    let mut first = [0u8; 8];
    first.copy_from_slice(&b[..8]);
    u64::from_le_bytes(first)
}

#[cfg(test)]
mod tests {
    #[test]
    fn streams_differ_by_seed_label_and_parts() {
        let base = super::u64(1, "a", &[1]);
        assert_eq!(base, super::u64(1, "a", &[1]));
        assert_ne!(base, super::u64(2, "a", &[1]));
        assert_ne!(base, super::u64(1, "b", &[1]));
        assert_ne!(base, super::u64(1, "a", &[2]));
        assert_ne!(super::u64(1, "a", &[]), super::u64(1, "a", &[0]));
    }
}
