//! The wire formats this crate implements, and every deliberate difference from the reference
//! (CometBFT v0.38), with its reason.
//!
//! Everything here follows CometBFT v0.38, whose formats are byte-identical to v0.37 and v1.0.
//! The golden vectors in the repository's `testdata/vectors/` are checked by the tests.
//!
//! # Node keys and IDs
//!
//! A node key is an ed25519 key. Go stores the private key as 64 bytes, the 32-byte seed
//! followed by the 32-byte public key; `node_key.json` holds them base64-encoded as
//! `{"priv_key":{"type":"tendermint/PrivKeyEd25519","value":"…"}}`, and the file is written
//! with mode 0600. The node ID is the first 20 bytes of the SHA-256 of the 32-byte public key,
//! written as 40 lower-case hex digits. The reference accepts upper-case hex when parsing an
//! ID but compares IDs as strings, so a canonical ID is always lower case.
//!
//! # Addresses
//!
//! The text form of an address is `id@host:port` (`host:port` without an ID), with IPv6 hosts
//! in brackets (`id@[2001:db8::1]:26656`) and IPv4-mapped IPv6 addresses printed as IPv4.
//! Parsing first drops a scheme: if the text contains `://`, only what lies between the first
//! `://` and the next one (or the end) is kept, any scheme accepted. It then requires exactly
//! one `@` with a valid ID before it, a non-empty host and a decimal 16-bit port.
//!
//! An address is valid when its IP is set, not unspecified, not in the documentation range
//! 2001:db8::/32 and not the IPv4 broadcast address. It is local when it is loopback or in
//! 0.0.0.0/8, and routable when it is valid, not local and in none of the private,
//! link-local and unique-local ranges (RFC 1918, 3927, 4862, 4193, 4843). Two addresses are
//! the same peer when their `ip:port` are equal or when both have the same ID.
//!
//! On the wire (`NetAddress` in `types.proto`) an address is `id` (field 1, string), `ip`
//! (field 2, the textual IP, never a host name) and `port` (field 3, uint32, which must fit in
//! 16 bits).
//!
//! # Delimited messages
//!
//! Every message of the handshakes and every MConnection packet travels as an unsigned
//! LEB128 varint holding the body's length, followed by the protobuf body (protobuf's
//! "delimited" format). A reader checks the announced length against its limit before
//! reading the body; the limit applies to the body alone. See [`varint`](crate::varint).
//!
//! # NodeInfo
//!
//! After the secret connection is established both peers send their `DefaultNodeInfo` at the
//! same time, as one delimited message of at most 10240 bytes
//! ([`MAX_NODE_INFO_SIZE`](crate::MAX_NODE_INFO_SIZE)). Its fields, in the order they are
//! encoded: protocol versions (1: p2p, block and app, always encoded even when empty), node ID
//! (2), listen address (3), network, i.e. the chain ID (4), software version (5), channel IDs,
//! one byte each (6), moniker (7), and `other` (8: tx-index flag and RPC address, always
//! encoded). A v0.38 node sends p2p protocol 8 and block protocol 11.
//!
//! The peer's NodeInfo is valid ([`NodeInfo::validate`](crate::NodeInfo::validate)) when its
//! listen address parses as an address with the node's ID, its version is empty or printable
//! ASCII (bytes 32 to 126) and not only spaces, it has at most 16 channels and no duplicate,
//! its moniker is non-empty printable ASCII and not only spaces, its tx-index flag is empty,
//! `on` or `off`, and its RPC address is empty or printable ASCII and not only spaces.
//!
//! Two NodeInfos are compatible
//! ([`NodeInfo::compatible_with`](crate::NodeInfo::compatible_with)) when their block
//! protocols and networks are equal and, unless our own channel list is empty, they share at
//! least one channel. The p2p and app versions are not compared, which lets v0.38 (p2p 8) and
//! v1.0 (p2p 9) nodes connect.
//!
//! The sections below list every deliberate difference from the reference.
//!
//! # Differences: addresses and NodeInfo
//!
//! - **No DNS inside parsing or validation.** The reference looks a host name up while parsing
//!   an address and while validating a peer's NodeInfo (blocking I/O driven by the remote
//!   side). Here [`PeerAddress`](crate::PeerAddress) and [`HostPort`](crate::HostPort) keep the
//!   name and [`PeerAddress::resolve`](crate::PeerAddress::resolve) looks it up on request;
//!   [`NodeInfo::validate`](crate::NodeInfo::validate) checks the host's syntax only, so a peer
//!   advertising a name that does not resolve is accepted here and rejected by the reference.
//! - **DNS name syntax.** A name must have labels of `A-Z a-z 0-9 - _` (1 to 63 characters, no
//!   `-` at either end) and a non-numeric last label, so a mistyped IPv4 address such as
//!   `127.0.0` is refused instead of being looked up.
//! - **Typed node IDs.** A PEX address's ID is parsed on receipt (the reference keeps a string
//!   and drops a bad one later); a bad ID gives the distinct
//!   [`Error::NetAddressId`](crate::Error::NetAddressId) so the entry can be skipped. Upper-case
//!   IDs are normalised to lower case.
//! - **Canonical NodeInfo IDs and UTF-8.** A NodeInfo whose ID is not lower-case hex, or whose
//!   strings are not UTF-8, fails to decode; the reference rejects such a peer a step later.
//!
//! # Differences: `config.toml`
//!
//! - **Strict value types.** The reference's loader converts between types: a quoted number, a
//!   `1` for `true`, a bare integer as a count of nanoseconds for a duration. Here each key
//!   takes the TOML type the reference writes (string, integer or boolean), and anything else
//!   is an [`Error::ConfigValue`](crate::Error::ConfigValue) naming the key: a `dial_timeout =
//!   3` that the reference reads as three nanoseconds is almost certainly a mistake. Files the
//!   reference writes always use these types.
//! - **Checks at read time.** Negative counts, rates and durations, a bad `laddr` or
//!   `external_address`, a malformed `seeds`, `persistent_peers` or `unconditional_peer_ids`
//!   entry, and a `log_format` other than `plain`/`json` fail the file. The reference finds
//!   these when it validates the config or starts the node, so the outcome is the same, only
//!   earlier. (It does not refuse negative `handshake_timeout` and `dial_timeout`; they have no
//!   use.) DNS names in the peer lists are not looked up while reading.
//! - **Unknown keys are reported.** The reference ignores them silently; here each is a
//!   [`ConfigWarning`](crate::config::ConfigWarning), logged and returned, so a misspelt key
//!   does not go unnoticed. The keys of the reference's other sections and its other top-level
//!   keys are known and raise nothing.
//! - **Letter case.** Keys match without regard to case, as in the reference. The same key in
//!   two spellings is an error here; the reference keeps one of them.
//! - **`private_peer_ids`.** The reference stores the entries unchecked, so a malformed one
//!   never matches anything; here it is dropped with a warning. IDs are normalised to lower
//!   case, so an upper-case entry matches here and never in the reference.
//! - **Testing switches.** `test_dial_fail`, `test_fuzz` and `test_fuzz_config` are accepted and
//!   have no effect; turning one on gives a warning.
//! - **`[p2p.libp2p]`.** CometBFT v0.40 writes an experimental go-libp2p table; it is accepted
//!   (so a v0.40 node's file reads without warnings) and has no effect here: this stack speaks
//!   the CometBFT p2p protocol. `enabled = true` in it gives a warning.
//! - **`home`.** A `home` key in the file is ignored with a warning: the home directory is the
//!   one the file is read from (in the reference the command line always overrides it).
//!   Environment variables and command-line flags are for the program using this crate.
//! - **Default moniker.** `anonymous`, where the reference uses the machine's host name (and
//!   `anonymous` when there is none): the host name needs a system call `std` does not offer,
//!   and it leaks the machine's name to every peer.
//! - **Writing.** `NodeConfig::to_toml` writes the
//!   top-level keys a p2p node uses and the whole `[p2p]` section, in the reference's order and
//!   value syntax, with comments of its own. It writes no `version` key (it is not a CometBFT
//!   binary; the reference accepts files without one, as v0.37 writes them) and none of the
//!   other sections, which a reference node then takes at their defaults. `laddr` is always
//!   written with `tcp://`, which the reference ignores anyway.
//! - **Size limit.** A `config.toml` over 1 MiB is refused (the reference's is about 20 KiB).
//!
//! # Differences: home directory
//!
//! - **What `init` creates.** `Home::load_or_init` creates
//!   the `config/` and `data/` directories, `config.toml` and the node key, as the reference's
//!   `init` does, but no `genesis.json` and no validator key or state: a p2p node is no
//!   validator, and a genesis document belongs to the chain, not to one node. The chain ID is
//!   taken from the genesis file when there is one, else from the caller.
//! - **Never overwrite.** A new `config.toml` is written to a temporary file and linked into
//!   place only if no file has appeared there meanwhile.
