//! Node identity: the 20-byte node ID derived from an ed25519 public key.

use core::fmt;
use core::str::FromStr;

use ed25519_dalek::VerifyingKey;
use sha2::{Digest, Sha256};

use crate::Error;

/// Length of a node ID in bytes (`IDByteLength` in the reference).
pub const NODE_ID_LEN: usize = 20;

/// A node ID: the first 20 bytes of SHA-256 of the node's ed25519 public key.
///
/// Its text form is 40 lower-case hex characters. Parsing accepts upper-case hex too (as the
/// reference's validation does) and normalises it to lower case.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId([u8; NODE_ID_LEN]);

impl NodeId {
    /// Wraps raw ID bytes.
    pub const fn new(bytes: [u8; NODE_ID_LEN]) -> Self {
        Self(bytes)
    }

    /// Derives the ID of an ed25519 public key.
    pub fn from_public_key(key: &VerifyingKey) -> Self {
        Self::from_public_key_bytes(key.as_bytes())
    }

    /// Derives the ID of a raw 32-byte ed25519 public key.
    pub fn from_public_key_bytes(key: &[u8; 32]) -> Self {
        let digest = Sha256::digest(key);
        let mut id = [0u8; NODE_ID_LEN];
        id.copy_from_slice(&digest[..NODE_ID_LEN]);
        Self(id)
    }

    /// The raw 20 bytes.
    pub const fn as_bytes(&self) -> &[u8; NODE_ID_LEN] {
        &self.0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({self})")
    }
}

impl FromStr for NodeId {
    type Err = Error;

    /// Parses 40 hex characters, with the reference's rules and error cases.
    fn from_str(s: &str) -> Result<Self, Error> {
        if s.is_empty() {
            return Err(Error::EmptyNodeId);
        }
        let bytes = hex::decode(s).map_err(|_| Error::NodeIdNotHex { id: s.to_owned() })?;
        let id: [u8; NODE_ID_LEN] =
            bytes
                .as_slice()
                .try_into()
                .map_err(|_| Error::NodeIdLength {
                    id: s.to_owned(),
                    len: bytes.len(),
                })?;
        Ok(Self(id))
    }
}

impl From<[u8; NODE_ID_LEN]> for NodeId {
    fn from(bytes: [u8; NODE_ID_LEN]) -> Self {
        Self(bytes)
    }
}

impl AsRef<[u8]> for NodeId {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for NodeId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for NodeId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_print_round_trip() {
        let s = "00112233445566778899aabbccddeeff00112233";
        let id: NodeId = s.parse().unwrap();
        assert_eq!(id.to_string(), s);
        let upper: NodeId = s.to_uppercase().parse().unwrap();
        assert_eq!(upper, id);
    }

    #[test]
    fn parse_errors() {
        assert_eq!("".parse::<NodeId>(), Err(Error::EmptyNodeId));
        assert!(matches!(
            "zz112233445566778899aabbccddeeff00112233".parse::<NodeId>(),
            Err(Error::NodeIdNotHex { .. })
        ));
        assert!(matches!(
            "0011".parse::<NodeId>(),
            Err(Error::NodeIdLength { len: 2, .. })
        ));
        assert!(matches!(
            "001".parse::<NodeId>(),
            Err(Error::NodeIdNotHex { .. })
        ));
    }
}
