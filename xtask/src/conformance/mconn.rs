//! Conformance cases of `p2p-mconn` against the reference (being written).

use super::Case;

pub(super) fn cases() -> Vec<Case> {
    Vec::new()
}
