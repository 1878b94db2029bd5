//! The error type of this crate.

/// Everything that can go wrong when parsing, validating or encoding p2p types.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A node ID was empty. Node IDs are 40 hex characters.
    #[error("node ID is empty")]
    EmptyNodeId,
    /// A node ID held characters other than hex digits.
    #[error("node ID {id:?} is not hex")]
    NodeIdNotHex {
        /// The offending text.
        id: String,
    },
    /// A node ID decoded to the wrong number of bytes (must be 20).
    #[error("node ID {id:?} is {len} bytes long, expected 20")]
    NodeIdLength {
        /// The offending text.
        id: String,
        /// Its decoded length.
        len: usize,
    },
    /// A node key could not be parsed or did not hold a valid ed25519 key.
    #[error("invalid node key: {reason}")]
    InvalidNodeKey {
        /// What was wrong with it.
        reason: String,
    },
    /// The node key file could not be read or written.
    #[error("node key file {path}: {reason}")]
    NodeKeyFile {
        /// The file.
        path: String,
        /// The I/O error.
        reason: String,
    },
    /// A varint was longer than ten bytes or overflowed 64 bits.
    #[error("varint overflows 64 bits")]
    VarintOverflow,
    /// A delimited message announced a length above the reader's limit.
    #[error("message of {len} bytes exceeds the maximum of {max} bytes")]
    MessageTooLarge {
        /// The announced length.
        len: u64,
        /// The limit.
        max: usize,
    },
    /// The input ended before the message did.
    #[error("message is truncated")]
    Truncated,
    /// Bytes followed a message that should have filled the buffer.
    #[error("{extra} unexpected bytes after the message")]
    TrailingBytes {
        /// How many bytes were left over.
        extra: usize,
    },
    /// A protobuf message could not be decoded.
    #[error("protobuf decode error: {reason}")]
    Decode {
        /// The decoder's message.
        reason: String,
    },
}
