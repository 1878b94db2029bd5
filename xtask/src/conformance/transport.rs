//! Conformance cases of `p2p-transport` against the reference (being written).

use super::Case;

pub(super) fn cases() -> Vec<Case> {
    Vec::new()
}
