//! The blocking adapter: a secret connection over any `std::io::Read + Write`, for threads
//! rather than tasks (remote signers, simple tools).
//!
//! The handshake sends each message and then reads the peer's. Over a socket this is as good as
//! sending and receiving concurrently, because both messages (35 and 1044 bytes) fit in the
//! kernel's buffers; over an unbuffered in-memory pipe it would deadlock against an identical
//! peer. There is no built-in timeout: set the socket's read and write timeouts
//! (`TcpStream::set_read_timeout`) before the handshake.
//!
//! Unlike the async adapter, every `write` goes to the transport before it returns, so no
//! `flush` is needed.

use std::io::{self, Read, Write};

use p2p_types::{NodeId, NodeKey};

use crate::buffer::{RecvBuf, SendBuf};
use crate::frame::{Opener, Sealer};
use crate::handshake::{AwaitingEphemeral, Handshake, RemoteIdentity};
use crate::{Config, Error};

/// A transport that can be cloned into a second handle to the same connection, so the two
/// halves of a [`SecretStream`] can live on different threads.
pub trait TryCloneIo: Sized {
    /// Returns another handle to the same connection.
    fn try_clone_io(&self) -> io::Result<Self>;
}

impl TryCloneIo for std::net::TcpStream {
    fn try_clone_io(&self) -> io::Result<Self> {
        self.try_clone()
    }
}

#[cfg(unix)]
impl TryCloneIo for std::os::unix::net::UnixStream {
    fn try_clone_io(&self) -> io::Result<Self> {
        self.try_clone()
    }
}

/// A blocking secret connection over `T`.
#[derive(Debug)]
pub struct SecretStream<T> {
    io: T,
    reader: ReadState,
    writer: WriteState,
    remote: RemoteIdentity,
}

/// The receiving half of a split blocking [`SecretStream`].
#[derive(Debug)]
pub struct ReadHalf<T> {
    io: T,
    state: ReadState,
    remote: RemoteIdentity,
}

/// The sending half of a split blocking [`SecretStream`].
#[derive(Debug)]
pub struct WriteHalf<T> {
    io: T,
    state: WriteState,
    remote: RemoteIdentity,
}

struct ReadState {
    opener: Opener,
    buf: RecvBuf,
    failed: Option<Error>,
}

struct WriteState {
    sealer: Sealer,
    buf: SendBuf,
    failed: Option<Error>,
}

impl core::fmt::Debug for ReadState {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ReadState")
            .field("opener", &self.opener)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl core::fmt::Debug for WriteState {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("WriteState")
            .field("sealer", &self.sealer)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl<T: Read + Write> SecretStream<T> {
    /// Runs the handshake over `io` as `identity` with the default [`Config`] (its handshake
    /// timeout does not apply here; see the module docs).
    pub fn handshake(io: T, identity: &NodeKey) -> Result<Self, Error> {
        Self::handshake_with(io, identity, &Config::default())
    }

    /// Runs the handshake with explicit settings.
    pub fn handshake_with(io: T, identity: &NodeKey, config: &Config) -> Result<Self, Error> {
        let (hs, eph) = Handshake::with_key(identity, config.keys.take()?, config.backend);
        Self::handshake_from(io, hs, &eph, config)
    }

    /// Runs the handshake from a started sans-IO [`Handshake`] whose message is `eph`.
    fn handshake_from(
        mut io: T,
        hs: Handshake<AwaitingEphemeral>,
        eph: &[u8],
        config: &Config,
    ) -> Result<Self, Error> {
        let mut recv = RecvBuf::new(config.read_buffer_len());
        io.write_all(eph)?;
        io.flush()?;
        let peer_eph = loop {
            if let Some(msg) = recv.take_ephemeral()? {
                break msg;
            }
            fill(&mut io, &mut recv)?;
        };
        let (mut hs, auth_frame) = hs.recv_ephemeral(&peer_eph)?;
        io.write_all(&auth_frame)?;
        io.flush()?;
        let mut acc = Vec::new();
        let peer_auth = loop {
            if let Some(msg) = recv.take_auth_sig(&mut hs, &mut acc)? {
                break msg;
            }
            fill(&mut io, &mut recv)?;
        };
        let (session, remote) = hs.recv_auth_sig(&peer_auth)?;
        let (sealer, opener) = session.split();
        Ok(Self::from_parts(io, sealer, opener, recv, remote, config))
    }
}

impl<T> SecretStream<T> {
    /// An established stream from its parts; `recv` holds whatever followed the handshake.
    pub(crate) fn from_parts(
        io: T,
        sealer: Sealer,
        opener: Opener,
        recv: RecvBuf,
        remote: RemoteIdentity,
        config: &Config,
    ) -> Self {
        Self {
            io,
            reader: ReadState {
                opener,
                buf: recv,
                failed: None,
            },
            writer: WriteState {
                sealer,
                buf: SendBuf::new(config.write_buffer_len()),
                failed: None,
            },
            remote,
        }
    }
}

fn fill<T: Read>(io: &mut T, recv: &mut RecvBuf) -> Result<(), Error> {
    let spare = recv.spare();
    if spare.is_empty() {
        return Err(Error::MalformedHandshake {
            reason: "handshake message does not fit the receive buffer",
        });
    }
    let n = read_retrying(io, spare)?;
    if n == 0 {
        return Err(Error::UnexpectedEof {
            during: "during the handshake",
        });
    }
    recv.filled(n);
    Ok(())
}

fn read_retrying<T: Read>(io: &mut T, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match io.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

impl<T> SecretStream<T> {
    /// The peer's authenticated identity.
    pub fn remote(&self) -> &RemoteIdentity {
        &self.remote
    }

    /// The peer's node ID.
    pub fn remote_node_id(&self) -> NodeId {
        self.remote.node_id()
    }

    /// The underlying transport.
    pub fn get_ref(&self) -> &T {
        &self.io
    }

    /// Splits the stream with a function that splits the transport into two handles.
    pub fn split_with<R, W>(self, split: impl FnOnce(T) -> (R, W)) -> (ReadHalf<R>, WriteHalf<W>) {
        let (r, w) = split(self.io);
        (
            ReadHalf {
                io: r,
                state: self.reader,
                remote: self.remote,
            },
            WriteHalf {
                io: w,
                state: self.writer,
                remote: self.remote,
            },
        )
    }
}

impl<T: TryCloneIo> SecretStream<T> {
    /// Splits the stream into halves over two handles of the same connection (for example two
    /// clones of a `TcpStream`), to read on one thread and write on another.
    pub fn try_split(self) -> io::Result<(ReadHalf<T>, WriteHalf<T>)> {
        let second = self.io.try_clone_io()?;
        Ok(self.split_with(|first| (first, second)))
    }
}

impl ReadState {
    fn read<T: Read>(&mut self, io: &mut T, out: &mut [u8]) -> io::Result<usize> {
        if let Some(e) = &self.failed {
            return Err(e.clone().into());
        }
        self.read_inner(io, out).map_err(|e| {
            self.failed = Some(e.clone());
            e.into()
        })
    }

    fn read_inner<T: Read>(&mut self, io: &mut T, out: &mut [u8]) -> Result<usize, Error> {
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            let n = self.buf.read_plain(&mut self.opener, out)?;
            if n > 0 {
                return Ok(n);
            }
            let got = read_retrying(io, self.buf.spare())?;
            if got == 0 {
                return if self.buf.raw().is_empty() {
                    Ok(0)
                } else {
                    Err(Error::UnexpectedEof {
                        during: "in the middle of a frame",
                    })
                };
            }
            self.buf.filled(got);
        }
    }
}

impl WriteState {
    fn write<T: Write>(&mut self, io: &mut T, data: &[u8]) -> io::Result<usize> {
        if let Some(e) = &self.failed {
            return Err(e.clone().into());
        }
        let res = (|| -> Result<usize, Error> {
            if data.is_empty() {
                return Ok(0);
            }
            let n = self.buf.seal(&mut self.sealer, data)?;
            io.write_all(self.buf.pending())?;
            self.buf.advance(self.buf.pending().len());
            Ok(n)
        })();
        res.map_err(|e| {
            self.failed = Some(e.clone());
            e.into()
        })
    }
}

impl<T: Read> Read for SecretStream<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.reader.read(&mut self.io, buf)
    }
}

impl<T: Write> Write for SecretStream<T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer.write(&mut self.io, buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.io.flush()
    }
}

impl<T: Read> Read for ReadHalf<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.state.read(&mut self.io, buf)
    }
}

impl<T> ReadHalf<T> {
    /// The peer's authenticated identity.
    pub fn remote(&self) -> &RemoteIdentity {
        &self.remote
    }
}

impl<T: Write> Write for WriteHalf<T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.state.write(&mut self.io, buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.io.flush()
    }
}

impl<T> WriteHalf<T> {
    /// The peer's authenticated identity.
    pub fn remote(&self) -> &RemoteIdentity {
        &self.remote
    }
}
