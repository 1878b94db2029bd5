//! The node's long-term ed25519 key and its `node_key.json` file.
//!
//! The file format is the reference's amino-JSON:
//! `{"priv_key":{"type":"tendermint/PrivKeyEd25519","value":"<base64>"}}`, where the value is
//! the 64-byte Go private key layout `seed ‖ public key`. Files written here are readable by a Go
//! node and the other way round.

use std::fs;
use std::io::Write as _;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};

use crate::{Error, NodeId};

/// The amino type name of an ed25519 private key in `node_key.json`.
pub const PRIV_KEY_ED25519_TYPE: &str = "tendermint/PrivKeyEd25519";

/// A node's long-term identity key (ed25519). Its [`NodeId`] is derived from the public half.
///
/// The secret is wiped from memory when the key is dropped; `Debug` never prints it.
#[derive(Clone)]
pub struct NodeKey {
    signing: SigningKey,
}

impl NodeKey {
    /// Generates a fresh key from the operating system's random source.
    pub fn generate() -> Self {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).expect("the operating system random source failed");
        let key = Self::from_seed(seed);
        zeroize::Zeroize::zeroize(&mut seed);
        key
    }

    /// Builds the key from its 32-byte seed (the first half of Go's 64-byte private key).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self {
            signing: SigningKey::from_bytes(&seed),
        }
    }

    /// Wraps an existing `ed25519-dalek` signing key.
    pub fn from_signing_key(signing: SigningKey) -> Self {
        Self { signing }
    }

    /// The `ed25519-dalek` signing key.
    pub fn signing_key(&self) -> &SigningKey {
        &self.signing
    }

    /// The public key.
    pub fn public_key(&self) -> VerifyingKey {
        self.signing.verifying_key()
    }

    /// The node ID of this key.
    pub fn node_id(&self) -> NodeId {
        NodeId::from_public_key(&self.public_key())
    }

    /// Signs `msg` with plain ed25519.
    pub fn sign(&self, msg: &[u8]) -> Signature {
        self.signing.sign(msg)
    }

    /// The 64-byte Go layout of the private key: `seed ‖ public key`.
    pub fn to_keypair_bytes(&self) -> [u8; 64] {
        self.signing.to_keypair_bytes()
    }

    /// Parses the 64-byte Go layout, checking that the public half belongs to the seed.
    pub fn from_keypair_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let bytes: &[u8; 64] = bytes.try_into().map_err(|_| Error::InvalidNodeKey {
            reason: format!("private key must be 64 bytes, got {}", bytes.len()),
        })?;
        let signing = SigningKey::from_keypair_bytes(bytes).map_err(|_| Error::InvalidNodeKey {
            reason: "public half of the private key does not match its seed".into(),
        })?;
        Ok(Self { signing })
    }

    /// Serialises the key in the `node_key.json` format.
    pub fn to_json(&self) -> String {
        let mut bytes = self.to_keypair_bytes();
        let value = BASE64.encode(bytes);
        zeroize::Zeroize::zeroize(&mut bytes);
        let file = json::NodeKeyFile {
            priv_key: json::TypedValue {
                r#type: PRIV_KEY_ED25519_TYPE.to_owned(),
                value,
            },
        };
        serde_json::to_string(&file).expect("serialising plain strings cannot fail")
    }

    /// Parses a key from the `node_key.json` format.
    pub fn from_json(text: &str) -> Result<Self, Error> {
        let file: json::NodeKeyFile =
            serde_json::from_str(text).map_err(|e| Error::InvalidNodeKey {
                reason: format!("not a node key file: {e}"),
            })?;
        if file.priv_key.r#type != PRIV_KEY_ED25519_TYPE {
            return Err(Error::InvalidNodeKey {
                reason: format!(
                    "unsupported key type {:?}, expected {PRIV_KEY_ED25519_TYPE:?}",
                    file.priv_key.r#type
                ),
            });
        }
        let mut bytes =
            BASE64
                .decode(file.priv_key.value.as_bytes())
                .map_err(|e| Error::InvalidNodeKey {
                    reason: format!("private key is not base64: {e}"),
                })?;
        let key = Self::from_keypair_bytes(&bytes);
        zeroize::Zeroize::zeroize(&mut bytes);
        key
    }

    /// Reads `node_key.json` from `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let text = fs::read_to_string(path).map_err(|e| Error::NodeKeyFile {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Self::from_json(&text)
    }

    /// Writes the key to `path` with owner-only permissions (0600 on Unix), atomically: the file
    /// is written next to `path` and then renamed over it.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), Error> {
        let path = path.as_ref();
        let file_err = |e: std::io::Error| Error::NodeKeyFile {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(file_err)?;
        }
        let tmp = path.with_extension("json.tmp");
        let mut options = fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let mut f = options.open(&tmp).map_err(file_err)?;
        f.write_all(self.to_json().as_bytes()).map_err(file_err)?;
        f.sync_all().map_err(file_err)?;
        drop(f);
        fs::rename(&tmp, path).map_err(file_err)
    }

    /// Loads the key at `path`, or generates and saves a new one if the file does not exist.
    pub fn load_or_generate(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        if path.exists() {
            Self::load(path)
        } else {
            let key = Self::generate();
            key.save(path)?;
            Ok(key)
        }
    }
}

impl core::fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("NodeKey")
            .field("id", &self.node_id())
            .finish_non_exhaustive()
    }
}

impl PartialEq for NodeKey {
    fn eq(&self, other: &Self) -> bool {
        self.signing.as_bytes() == other.signing.as_bytes()
    }
}

impl Eq for NodeKey {}

mod json {
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize)]
    pub(super) struct NodeKeyFile {
        pub(super) priv_key: TypedValue,
    }

    #[derive(Serialize, Deserialize)]
    pub(super) struct TypedValue {
        pub(super) r#type: String,
        pub(super) value: String,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip() {
        let key = NodeKey::from_seed([7; 32]);
        let json = key.to_json();
        assert!(json.starts_with(r#"{"priv_key":{"type":"tendermint/PrivKeyEd25519","value":""#));
        assert_eq!(NodeKey::from_json(&json).unwrap(), key);
    }

    #[test]
    fn mismatched_public_half_is_rejected() {
        let mut bytes = NodeKey::from_seed([7; 32]).to_keypair_bytes();
        bytes[40] ^= 1;
        assert!(matches!(
            NodeKey::from_keypair_bytes(&bytes),
            Err(Error::InvalidNodeKey { .. })
        ));
    }

    #[test]
    fn wrong_type_is_rejected() {
        let json = r#"{"priv_key":{"type":"tendermint/PrivKeySecp256k1","value":"AAAA"}}"#;
        let err = NodeKey::from_json(json).unwrap_err();
        assert!(err.to_string().contains("unsupported key type"), "{err}");
    }

    #[test]
    fn save_and_load() {
        let dir = std::env::temp_dir().join(format!("p2p-types-key-{}", std::process::id()));
        let path = dir.join("config/node_key.json");
        let key = NodeKey::load_or_generate(&path).unwrap();
        assert_eq!(NodeKey::load_or_generate(&path).unwrap(), key);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        fs::remove_dir_all(dir).unwrap();
    }
}
