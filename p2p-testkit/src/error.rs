//! The error type of this crate's simulation tools.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

/// What can keep a [`Sim`](crate::sim::Sim) from starting or a node from being added.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The tokio runtime of the simulation could not be built.
    #[error("cannot build the simulation's tokio runtime: {source}")]
    Runtime {
        /// What tokio reported.
        #[source]
        source: Arc<io::Error>,
    },
    /// A directory for the simulation or a node could not be made.
    #[error("cannot create the directory {path:?}: {source}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// What the file system reported.
        #[source]
        source: Arc<io::Error>,
    },
    /// A node name is empty, has characters other than ASCII letters, digits, `-` and `_`, or
    /// is taken (names become directory names).
    #[error("bad node name {name:?}: {reason}")]
    NodeName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}
