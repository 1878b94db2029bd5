//! Settings of the IO adapters.

use std::time::Duration;

use crate::aead::Backend;
use crate::keys::KeySource;

/// Settings for [`SecretStream`](crate::SecretStream) and
/// [`blocking::SecretStream`](crate::blocking::SecretStream).
///
/// ```
/// use std::time::Duration;
/// use p2p_secretconn::Config;
///
/// let mut config = Config::default();
/// config.handshake_timeout(Some(Duration::from_secs(10))).read_buffer_frames(16);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub(crate) backend: Backend,
    pub(crate) keys: KeySource,
    pub(crate) handshake_timeout: Option<Duration>,
    pub(crate) read_buffer_frames: usize,
    pub(crate) write_buffer_frames: usize,
}

/// Default handshake timeout: 3 s, the reference transport's handshake deadline.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(3);
/// Default size of the read and write buffers, in sealed frames (64 frames, about 65 KiB).
pub const DEFAULT_BUFFER_FRAMES: usize = 64;

impl Default for Config {
    fn default() -> Self {
        Self {
            backend: Backend::default(),
            keys: KeySource::os(),
            handshake_timeout: Some(DEFAULT_HANDSHAKE_TIMEOUT),
            read_buffer_frames: DEFAULT_BUFFER_FRAMES,
            write_buffer_frames: DEFAULT_BUFFER_FRAMES,
        }
    }
}

impl Config {
    /// The AEAD implementation. Default: [`Backend::default()`].
    pub fn backend(&mut self, backend: Backend) -> &mut Self {
        self.backend = backend;
        self
    }

    /// Where the ephemeral key of each handshake comes from. Default: [`KeySource::os()`],
    /// the operating system's random source, as the reference (`crypto/rand`). A seeded
    /// source makes test networks reproducible; see [`KeySource`].
    pub fn key_source(&mut self, keys: KeySource) -> &mut Self {
        self.keys = keys;
        self
    }

    /// Deadline for the whole handshake (async adapter only; for the blocking adapter set the
    /// socket's read and write timeouts). `None` waits forever. Default:
    /// [`DEFAULT_HANDSHAKE_TIMEOUT`] (3 s).
    ///
    /// The deadline uses tokio's timer, so the runtime must have time enabled.
    pub fn handshake_timeout(&mut self, timeout: Option<Duration>) -> &mut Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Size of the receive buffer, in sealed frames (at least 1). Each read from the
    /// transport asks for up to this much. Default: [`DEFAULT_BUFFER_FRAMES`].
    pub fn read_buffer_frames(&mut self, frames: usize) -> &mut Self {
        self.read_buffer_frames = frames.max(1);
        self
    }

    /// How many sealed frames may wait to be written before a write reports back-pressure (at
    /// least 1). Larger means fewer, larger writes to the transport. Default:
    /// [`DEFAULT_BUFFER_FRAMES`].
    pub fn write_buffer_frames(&mut self, frames: usize) -> &mut Self {
        self.write_buffer_frames = frames.max(1);
        self
    }

    /// The configured backend.
    pub fn get_backend(&self) -> Backend {
        self.backend
    }

    /// The configured key source.
    pub fn get_key_source(&self) -> &KeySource {
        &self.keys
    }

    /// The configured handshake timeout.
    pub fn get_handshake_timeout(&self) -> Option<Duration> {
        self.handshake_timeout
    }

    #[cfg(any(feature = "std", feature = "tokio"))]
    pub(crate) fn read_buffer_len(&self) -> usize {
        self.read_buffer_frames * crate::SEALED_FRAME_LEN
    }

    #[cfg(any(feature = "std", feature = "tokio"))]
    pub(crate) fn write_buffer_len(&self) -> usize {
        self.write_buffer_frames * crate::SEALED_FRAME_LEN
    }
}
