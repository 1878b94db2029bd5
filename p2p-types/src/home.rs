//! A CometBFT home directory: where a node keeps its configuration, key and data
//! (feature `config`).
//!
//! The layout is the reference's:
//!
//! ```text
//! <home>/
//!   config/config.toml     settings (NodeConfig)
//!   config/node_key.json   the node key; its public half gives the node ID
//!   config/genesis.json    the chain's genesis document (chain_id); never written here
//!   config/addrbook.json   the address book, written by the peer exchange
//!   data/                  the node's databases (unused by a p2p node)
//! ```
//!
//! The paths of the key, genesis and address-book files come from `config.toml`
//! (`node_key_file`, `genesis_file`, `p2p.addr_book_file`) and are relative to the home
//! directory unless absolute.
//!
//! [`Home::open`] uses an existing home and changes nothing in it. [`Home::load_or_init`] first
//! creates what is missing, as the reference's `init` command does for the files a p2p node
//! needs: the two directories, a `config.toml` with the defaults (written by
//! [`NodeConfig::to_toml`]) and a new node key. It never overwrites a file, so a home made by a
//! Go node keeps working with both.
//!
//! ```
//! use p2p_types::home::{Home, InitOptions};
//!
//! let dir = std::env::temp_dir().join(format!("p2p-types-home-doc-{}", std::process::id()));
//! let mut init = InitOptions::default();
//! init.moniker("seed-1").chain_id("my-chain");
//! let home = Home::load_or_init(&dir, &init).unwrap();
//! assert_eq!(home.config().moniker, "seed-1");
//! assert_eq!(home.chain_id(), Some("my-chain"));
//! assert_eq!(home.addr_book_file(), dir.join("config/addrbook.json"));
//!
//! // Opening it again finds the same key and settings.
//! let again = Home::open(&dir).unwrap();
//! assert_eq!(again.node_key(), home.node_key());
//! # std::fs::remove_dir_all(&dir).unwrap();
//! ```

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use crate::config::{CONFIG_DIR, CONFIG_FILE, ConfigWarning, DATA_DIR, NodeConfig, resolve_path};
use crate::{Error, NodeKey};

/// The largest `config.toml` read (1 MiB; the reference's default file is about 20 KiB).
pub const MAX_CONFIG_FILE_SIZE: u64 = 1 << 20;

/// What [`Home::load_or_init`] puts into a new home.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct InitOptions {
    moniker: Option<String>,
    chain_id: Option<String>,
}

impl InitOptions {
    /// The moniker written into a new `config.toml`. Default: the default of
    /// [`NodeConfig::moniker`]. An existing `config.toml` keeps its own.
    pub fn moniker(&mut self, moniker: impl Into<String>) -> &mut Self {
        self.moniker = Some(moniker.into());
        self
    }

    /// The chain the node is for. Used when the home has no genesis file; when it has one, its
    /// `chain_id` must be this one. Default: none (the genesis file decides).
    pub fn chain_id(&mut self, chain_id: impl Into<String>) -> &mut Self {
        self.chain_id = Some(chain_id.into());
        self
    }
}

/// An opened home directory: its settings, the warnings reading them produced, the node key
/// and the chain ID.
#[derive(Clone, Debug)]
pub struct Home {
    root: PathBuf,
    config: NodeConfig,
    warnings: Vec<ConfigWarning>,
    node_key: NodeKey,
    chain_id: Option<String>,
}

impl Home {
    /// Opens an existing home: reads `config/config.toml`, the node key and (if present) the
    /// genesis file's `chain_id`. Creates and changes nothing; a missing `config.toml` or node
    /// key is an error.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, Error> {
        let root = dir.as_ref().to_owned();
        let (config, warnings) = read_config(&root.join(CONFIG_FILE))?;
        let node_key = NodeKey::load(resolve_path(&root, &config.node_key_file))?;
        let chain_id = read_chain_id(&resolve_path(&root, &config.genesis_file))?;
        Ok(Self {
            root,
            config,
            warnings,
            node_key,
            chain_id,
        })
    }

    /// Opens a home, first creating what is missing: the home, `config/` and `data/`
    /// directories (owner-only on Unix), `config/config.toml` with the defaults and
    /// `init`'s moniker, and the node key (owner-only, where `node_key_file` says). Existing
    /// files are used as they are, never rewritten.
    ///
    /// The chain ID is the genesis file's if there is one (and must then equal `init`'s, if
    /// given: [`Error::ChainIdMismatch`]), else `init`'s.
    pub fn load_or_init(dir: impl AsRef<Path>, init: &InitOptions) -> Result<Self, Error> {
        let root = dir.as_ref().to_owned();
        for d in [root.clone(), root.join(CONFIG_DIR), root.join(DATA_DIR)] {
            create_dir(&d)?;
        }
        let config_path = root.join(CONFIG_FILE);
        if !exists(&config_path)? {
            let mut config = NodeConfig::default();
            if let Some(moniker) = &init.moniker {
                config.moniker(moniker.clone());
            }
            write_new(&config_path, config.to_toml().as_bytes())?;
            tracing::info!(path = %config_path.display(), "wrote a default config.toml");
        }
        let (config, warnings) = read_config(&config_path)?;
        let key_path = resolve_path(&root, &config.node_key_file);
        let node_key = NodeKey::load_or_generate(&key_path)?;
        let genesis_path = resolve_path(&root, &config.genesis_file);
        let chain_id = match (read_chain_id(&genesis_path)?, &init.chain_id) {
            (Some(genesis), Some(given)) if &genesis != given => {
                return Err(Error::ChainIdMismatch {
                    genesis,
                    given: given.clone(),
                });
            }
            (Some(genesis), _) => Some(genesis),
            (None, given) => given.clone(),
        };
        Ok(Self {
            root,
            config,
            warnings,
            node_key,
            chain_id,
        })
    }

    /// The home directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The settings read from `config.toml`.
    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    /// The settings, to override some (from command-line flags, say) before use. Nothing is
    /// written back.
    pub fn config_mut(&mut self) -> &mut NodeConfig {
        &mut self.config
    }

    /// The warnings reading `config.toml` produced (already logged).
    pub fn warnings(&self) -> &[ConfigWarning] {
        &self.warnings
    }

    /// The node key.
    pub fn node_key(&self) -> &NodeKey {
        &self.node_key
    }

    /// The chain ID: the genesis file's, else the one given to
    /// [`load_or_init`](Self::load_or_init), else none.
    pub fn chain_id(&self) -> Option<&str> {
        self.chain_id.as_deref()
    }

    /// A path from the configuration, resolved against the home directory.
    pub fn resolve(&self, path: impl AsRef<Path>) -> PathBuf {
        resolve_path(&self.root, path.as_ref())
    }

    /// `<home>/config/config.toml`.
    pub fn config_file(&self) -> PathBuf {
        self.root.join(CONFIG_FILE)
    }

    /// The node key file (`node_key_file`).
    pub fn node_key_file(&self) -> PathBuf {
        self.resolve(&self.config.node_key_file)
    }

    /// The genesis file (`genesis_file`).
    pub fn genesis_file(&self) -> PathBuf {
        self.resolve(&self.config.genesis_file)
    }

    /// The address book file (`p2p.addr_book_file`); it may not exist yet.
    pub fn addr_book_file(&self) -> PathBuf {
        self.resolve(&self.config.p2p.addr_book_file)
    }
}

fn io_error(path: &Path, e: &io::Error) -> Error {
    Error::HomeFile {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

fn exists(path: &Path) -> Result<bool, Error> {
    path.try_exists().map_err(|e| io_error(path, &e))
}

/// Creates a directory (owner-only on Unix, as the reference does) unless it exists.
fn create_dir(path: &Path) -> Result<(), Error> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(path).map_err(|e| io_error(path, &e))
}

/// Writes a new file without ever replacing an existing one: the content goes to a temporary
/// file first, which is then hard-linked to `path` (failing if `path` exists, in which case the
/// existing file wins), so a crash never leaves a half-written `path`.
fn write_new(path: &Path, content: &[u8]) -> Result<(), Error> {
    let tmp = path.with_extension(format!("toml.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(content)?;
        f.sync_all()?;
        drop(f);
        match fs::hard_link(&tmp, path) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            other => other,
        }
    })();
    // The temporary file is removed whatever happened; failing to remove it is harmless.
    let _ = fs::remove_file(&tmp);
    result.map_err(|e| io_error(path, &e))
}

/// Reads and parses `config.toml`, refusing files over [`MAX_CONFIG_FILE_SIZE`].
fn read_config(path: &Path) -> Result<(NodeConfig, Vec<ConfigWarning>), Error> {
    let text = read_limited(path, MAX_CONFIG_FILE_SIZE).map_err(|e| io_error(path, &e))?;
    NodeConfig::from_toml(&text).map_err(|e| Error::ConfigFileInvalid {
        path: path.display().to_string(),
        source: Box::new(e),
    })
}

fn read_limited(path: &Path, max: u64) -> io::Result<String> {
    use std::io::Read as _;
    let file = fs::File::open(path)?;
    let mut text = String::new();
    file.take(max + 1).read_to_string(&mut text)?;
    if text.len() as u64 > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {max} bytes"),
        ));
    }
    Ok(text)
}

/// The `chain_id` of a genesis file, or `None` if there is no such file. The rest of the
/// document is parsed but not kept (genesis files of live chains can be hundreds of megabytes).
fn read_chain_id(path: &Path) -> Result<Option<String>, Error> {
    #[derive(serde::Deserialize)]
    struct Genesis {
        chain_id: Option<String>,
    }
    let err = |reason: String| Error::GenesisFile {
        path: path.display().to_string(),
        reason,
    };
    let file = match fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(err(e.to_string())),
    };
    let genesis: Genesis = serde_json::from_reader(io::BufReader::new(file))
        .map_err(|e| err(format!("not a genesis document: {e}")))?;
    match genesis.chain_id {
        Some(id) if !id.is_empty() => Ok(Some(id)),
        _ => Err(err("it has no chain_id".into())),
    }
}
