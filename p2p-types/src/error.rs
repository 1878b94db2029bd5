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

    // ---- addresses -------------------------------------------------------------------------
    /// An address had no `id@` part (or more than one `@`); write it as `id@host:port`.
    #[error("address {addr:?} must be of the form id@host:port")]
    AddressMissingId {
        /// The address, without its scheme.
        addr: String,
    },
    /// An address's `host:port` was malformed; write IPv6 hosts in brackets: `id@[::1]:26656`.
    #[error("address {addr:?} is not host:port: {reason}")]
    MalformedHostPort {
        /// The `host:port` text.
        addr: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The host part of an address was empty; give an IP address or a DNS name.
    #[error("address {addr:?} has an empty host")]
    EmptyHost {
        /// The `host:port` text.
        addr: String,
    },
    /// A host was neither an IP literal nor a syntactically valid DNS name; fix the host.
    #[error("host {host:?} is neither an IP address nor a valid DNS name")]
    InvalidHost {
        /// The offending host.
        host: String,
    },
    /// A port was not a decimal number in 0..=65535; fix the port.
    #[error("port {port:?} is not a decimal number in 0..=65535")]
    InvalidPort {
        /// The offending port text.
        port: String,
    },
    /// A `NetAddress` was given a DNS name; parse a `PeerAddress` and `resolve` it instead.
    #[error("host {host:?} is a DNS name, not an IP address; use PeerAddress::resolve")]
    HostNotIp {
        /// The DNS name.
        host: String,
    },
    /// Resolving a DNS name failed or returned no address; check the name and the resolver.
    #[error("looking up {host:?} failed: {reason}")]
    DnsLookup {
        /// The name looked up.
        host: String,
        /// The resolver's message.
        reason: String,
    },
    /// A protobuf `NetAddress` carried an IP that is not an IP literal; the sender is faulty.
    #[error("{ip:?} is not an IP address")]
    InvalidIp {
        /// The offending text.
        ip: String,
    },
    /// A protobuf `NetAddress` carried a port of 65536 or more; the sender is faulty.
    #[error("port {port} is out of range (must be below 65536)")]
    PortOutOfRange {
        /// The offending port.
        port: u32,
    },
    /// A protobuf `NetAddress` had a bad node ID; skip that entry (the reference drops it later).
    #[error("address has an invalid node ID {id:?}: {source}")]
    NetAddressId {
        /// The offending ID text.
        id: String,
        /// Why the ID is invalid.
        source: Box<Self>,
    },
    /// An address's IP can never be dialled (unspecified, broadcast, documentation); drop it.
    #[error("address IP {ip} is not usable: {reason}")]
    UnusableIp {
        /// The offending IP.
        ip: core::net::IpAddr,
        /// Which rule it breaks.
        reason: &'static str,
    },

    // ---- NodeInfo --------------------------------------------------------------------------
    /// A NodeInfo's node ID was not lower-case hex, so it can never match the peer's key; reject.
    #[error("node ID {id:?} is not in canonical lower-case form")]
    NodeIdNotCanonical {
        /// The offending ID text.
        id: String,
    },
    /// A NodeInfo's `listen_addr` is not `[scheme://]host:port`; the sender is misconfigured.
    #[error("listen address {listen_addr:?} is invalid: {source}")]
    InvalidListenAddr {
        /// The offending address.
        listen_addr: String,
        /// Why it was rejected.
        source: Box<Self>,
    },
    /// A NodeInfo's `version` was not printable ASCII (bytes 32..=126) or only spaces.
    #[error("version {version:?} must be printable ASCII text and not only spaces")]
    InvalidVersion {
        /// The offending version.
        version: String,
    },
    /// A NodeInfo listed more channels than allowed (16).
    #[error("{count} channels listed, at most {max} are allowed")]
    TooManyChannels {
        /// How many channels were listed.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A NodeInfo listed the same channel twice; each channel ID must appear once.
    #[error("channel {channel:#04x} is listed twice")]
    DuplicateChannel {
        /// The duplicated channel ID.
        channel: u8,
    },
    /// A NodeInfo's `moniker` was empty, not printable ASCII (bytes 32..=126), or only spaces.
    #[error("moniker {moniker:?} must be non-empty printable ASCII text and not only spaces")]
    InvalidMoniker {
        /// The offending moniker.
        moniker: String,
    },
    /// A NodeInfo's `other.tx_index` was not `""`, `"on"` or `"off"`.
    #[error("tx_index {tx_index:?} must be \"on\", \"off\" or empty")]
    InvalidTxIndex {
        /// The offending value.
        tx_index: String,
    },
    /// A NodeInfo's `other.rpc_address` was not printable ASCII (bytes 32..=126) or only spaces.
    #[error("rpc_address {rpc_address:?} must be printable ASCII text and not only spaces")]
    InvalidRpcAddress {
        /// The offending value.
        rpc_address: String,
    },
    /// The peer runs a different block protocol version; it cannot follow our chain.
    #[error("peer is on block version {theirs}, we are on {ours}")]
    IncompatibleBlockVersion {
        /// Our block version.
        ours: u64,
        /// The peer's block version.
        theirs: u64,
    },
    /// The peer is on a different network (chain ID); check the peer list.
    #[error("peer is on network {theirs:?}, we are on {ours:?}")]
    IncompatibleNetwork {
        /// Our network.
        ours: String,
        /// The peer's network.
        theirs: String,
    },
    /// The peer shares none of our channels, so there is nothing to talk about.
    #[error("peer has no channel in common with us (ours: {ours:02x?}, theirs: {theirs:02x?})")]
    NoCommonChannels {
        /// Our channels.
        ours: Vec<u8>,
        /// The peer's channels.
        theirs: Vec<u8>,
    },

    // ---- configuration ---------------------------------------------------------------------
    /// A duration was not in Go's syntax (`"100ms"`, `"3s"`, `"1m30s"`); fix the text.
    #[error("{duration:?} is not a Go duration: {reason}")]
    InvalidDuration {
        /// The offending text.
        duration: String,
        /// What Go's parser would say about it.
        reason: String,
    },
    /// A configuration file is not valid TOML; fix the syntax at the position given.
    #[error("config file is not valid TOML: {reason}")]
    ConfigSyntax {
        /// The TOML parser's message, with the position.
        reason: String,
    },
    /// A configuration key has a value of the wrong type or out of range; fix the value.
    // Boxed strings keep this variant, and so the whole enum, at its former size.
    #[error("config key {key} = {value}: expected {expected}")]
    ConfigValue {
        /// The key, with its section (`p2p.seeds`).
        key: Box<str>,
        /// The value as written (shortened if long).
        value: Box<str>,
        /// What the key takes.
        expected: Box<str>,
    },
    /// A configuration key appears twice in different letter cases; keys ignore case, keep one.
    #[error("config key {key} is given twice (keys are not case-sensitive)")]
    ConfigDuplicateKey {
        /// The second spelling of the key, with its section.
        key: String,
    },
    /// A configuration file was unusable; the inner error says why, fix the file.
    #[error("{path}: {source}")]
    ConfigFileInvalid {
        /// The file.
        path: String,
        /// What is wrong in it.
        source: Box<Self>,
    },
    /// A file or directory of a home directory could not be read or created; check it exists
    /// and its permissions.
    #[error("{path}: {reason}")]
    HomeFile {
        /// The file or directory.
        path: String,
        /// The I/O error.
        reason: String,
    },
    /// The genesis file could not be read or holds no chain ID; fix or replace it.
    #[error("genesis file {path}: {reason}")]
    GenesisFile {
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The chain ID asked for differs from the home's genesis file; use the right home or ID.
    #[error("chain ID {given:?} was asked for, but the genesis file is for {genesis:?}")]
    ChainIdMismatch {
        /// The chain ID in the genesis file.
        genesis: String,
        /// The chain ID asked for.
        given: String,
    },
}

impl Error {
    /// Whether this error says a well-formed peer is *incompatible* with us (different block
    /// version, network or channels), as opposed to malformed or invalid.
    ///
    /// Transports can use it to tell "drop quietly" from "the peer is misbehaving".
    pub fn is_incompatibility(&self) -> bool {
        matches!(
            self,
            Self::IncompatibleBlockVersion { .. }
                | Self::IncompatibleNetwork { .. }
                | Self::NoCommonChannels { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    /// Errors travel inside the upper crates' errors and results: keep them at the size they
    /// had before the configuration variants (clippy's `result_large_err` limit for those
    /// results is 128 bytes).
    #[test]
    fn error_stays_small() {
        assert!(
            size_of::<super::Error>() <= 56,
            "{}",
            size_of::<super::Error>()
        );
    }
}
