//! The tokio adapter: [`SecretStream`] over any `AsyncRead + AsyncWrite`.
//!
//! After [`SecretStream::handshake`] the stream is a plain byte stream: writes are split into
//! frames, reads return the peer's bytes in order with no regard for frame boundaries.
//! [`SecretStream::split_with`] turns it into a read half and a write half that two tasks can
//! own.
//!
//! Writes are not held back: `poll_write` seals the data and writes it to the transport at
//! once, as far as the transport accepts it. What the transport does not take right away (its
//! buffer is full) waits in the stream's write buffer, up to
//! [`Config::write_buffer_frames`](crate::Config::write_buffer_frames), and goes out on the
//! next write or `flush`; only `flush` (or `shutdown`) guarantees that everything has reached
//! the transport. `write_all` followed by `flush` is the usual pattern.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use p2p_types::{NodeId, NodeKey};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::buffer::{RecvBuf, SendBuf};
use crate::frame::{Opener, Sealer};
use crate::handshake::{AwaitingEphemeral, Handshake, RemoteIdentity};
use crate::{Config, Error};

/// An established secret connection over `T`.
#[derive(Debug)]
pub struct SecretStream<T> {
    io: T,
    reader: ReadState,
    writer: WriteState,
    remote: RemoteIdentity,
}

/// The receiving half of a split [`SecretStream`].
#[derive(Debug)]
pub struct SecretReadHalf<R> {
    io: R,
    state: ReadState,
    remote: RemoteIdentity,
}

/// The sending half of a split [`SecretStream`].
#[derive(Debug)]
pub struct SecretWriteHalf<W> {
    io: W,
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
            .field("pending", &self.buf.pending().len())
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> SecretStream<T> {
    /// Runs the handshake over `io` as `identity` with the default [`Config`].
    ///
    /// Both peers call this; there is no client or server role.
    pub async fn handshake(io: T, identity: &NodeKey) -> Result<Self, Error> {
        Self::handshake_with(io, identity, &Config::default()).await
    }

    /// Runs the handshake with explicit settings.
    pub async fn handshake_with(io: T, identity: &NodeKey, config: &Config) -> Result<Self, Error> {
        let (hs, eph) = Handshake::with_key(identity, config.keys.take()?, config.backend);
        Self::handshake_from(io, hs, &eph, config).await
    }

    /// Runs the handshake from a started sans-IO [`Handshake`] whose message is `eph`.
    async fn handshake_from(
        mut io: T,
        hs: Handshake<AwaitingEphemeral>,
        eph: &[u8],
        config: &Config,
    ) -> Result<Self, Error> {
        let fut = run_handshake(&mut io, hs, eph, config);
        let (reader, writer, remote) = match config.handshake_timeout {
            Some(timeout) => tokio::time::timeout(timeout, fut)
                .await
                .map_err(|_| Error::HandshakeTimeout { timeout })??,
            None => fut.await?,
        };
        tracing::debug!(remote = %remote.node_id(), "secret connection established");
        Ok(Self {
            io,
            reader,
            writer,
            remote,
        })
    }
}

impl<T> SecretStream<T> {
    /// An established stream from its parts; `recv` holds whatever followed the handshake.
    #[cfg(all(fuzzing, feature = "std"))]
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

    /// Splits the stream with a function that splits the transport, for example
    /// `TcpStream::into_split` (no locking) or `tokio::io::split` (any transport).
    ///
    /// ```no_run
    /// # async fn f(stream: p2p_secretconn::SecretStream<tokio::net::TcpStream>) {
    /// let (reader, writer) = stream.split_with(tokio::net::TcpStream::into_split);
    /// # }
    /// ```
    pub fn split_with<R, W>(
        self,
        split: impl FnOnce(T) -> (R, W),
    ) -> (SecretReadHalf<R>, SecretWriteHalf<W>) {
        let (r, w) = split(self.io);
        (
            SecretReadHalf {
                io: r,
                state: self.reader,
                remote: self.remote,
            },
            SecretWriteHalf {
                io: w,
                state: self.writer,
                remote: self.remote,
            },
        )
    }
}

impl<T: AsyncRead + AsyncWrite> SecretStream<T> {
    /// Splits the stream into halves over `tokio::io::split` (works for any transport; halves
    /// share a lock on it).
    pub fn into_split(
        self,
    ) -> (
        SecretReadHalf<tokio::io::ReadHalf<T>>,
        SecretWriteHalf<tokio::io::WriteHalf<T>>,
    ) {
        self.split_with(tokio::io::split)
    }
}

impl<R> SecretReadHalf<R> {
    /// The peer's authenticated identity.
    pub fn remote(&self) -> &RemoteIdentity {
        &self.remote
    }

    /// The underlying transport half.
    pub fn get_ref(&self) -> &R {
        &self.io
    }
}

impl<W> SecretWriteHalf<W> {
    /// The peer's authenticated identity.
    pub fn remote(&self) -> &RemoteIdentity {
        &self.remote
    }

    /// The underlying transport half.
    pub fn get_ref(&self) -> &W {
        &self.io
    }
}

/// Runs both handshake steps, sending and receiving concurrently within each.
async fn run_handshake<T: AsyncRead + AsyncWrite + Unpin>(
    io: &mut T,
    hs: Handshake<AwaitingEphemeral>,
    eph: &[u8],
    config: &Config,
) -> Result<(ReadState, WriteState, RemoteIdentity), Error> {
    let mut recv = RecvBuf::new(config.read_buffer_len());
    let mut send = SendBuf::new(config.write_buffer_len());

    send.push_raw(eph);
    let mut peer_eph = None;
    poll_fn(|cx| {
        let written = poll_drain_flush(io, &mut send, cx)?.is_ready();
        while peer_eph.is_none() {
            peer_eph = recv.take_ephemeral()?;
            if peer_eph.is_none() {
                ready!(poll_fill(io, &mut recv, cx))?;
            }
        }
        if written {
            Poll::Ready(Ok::<_, Error>(()))
        } else {
            Poll::Pending
        }
    })
    .await?;
    let peer_eph = peer_eph.ok_or(Error::MalformedHandshake {
        reason: "no ephemeral key",
    })?;

    let (mut hs, auth_frame) = hs.recv_ephemeral(&peer_eph)?;
    send.push_raw(&auth_frame);
    let mut acc = Vec::new();
    let mut peer_auth = None;
    poll_fn(|cx| {
        let written = poll_drain_flush(io, &mut send, cx)?.is_ready();
        while peer_auth.is_none() {
            peer_auth = recv.take_auth_sig(&mut hs, &mut acc)?;
            if peer_auth.is_none() && poll_fill(io, &mut recv, cx)?.is_pending() {
                if written {
                    // Nothing to do but wait: make the next handshake's key now (if the key
                    // source keeps a spare).
                    config.keys.refill();
                }
                return Poll::Pending;
            }
        }
        if written {
            Poll::Ready(Ok::<_, Error>(()))
        } else {
            Poll::Pending
        }
    })
    .await?;
    let peer_auth = peer_auth.ok_or(Error::MalformedHandshake {
        reason: "no auth signature",
    })?;
    let (session, remote) = hs.recv_auth_sig(&peer_auth)?;
    let (sealer, opener) = session.split();
    Ok((
        ReadState {
            opener,
            buf: recv,
            failed: None,
        },
        WriteState {
            sealer,
            buf: send,
            failed: None,
        },
        remote,
    ))
}

/// Writes out everything pending in `send`.
fn poll_drain<W: AsyncWrite + Unpin + ?Sized>(
    io: &mut W,
    send: &mut SendBuf,
    cx: &mut Context<'_>,
) -> Poll<Result<(), Error>> {
    while !send.is_empty() {
        let n = ready!(Pin::new(&mut *io).poll_write(cx, send.pending()))?;
        if n == 0 {
            return Poll::Ready(Err(io::Error::from(io::ErrorKind::WriteZero).into()));
        }
        send.advance(n);
    }
    Poll::Ready(Ok(()))
}

/// Like [`poll_drain`], then flushes the transport (the handshake must not sit in a buffer).
fn poll_drain_flush<W: AsyncWrite + Unpin + ?Sized>(
    io: &mut W,
    send: &mut SendBuf,
    cx: &mut Context<'_>,
) -> Poll<Result<(), Error>> {
    ready!(poll_drain(io, send, cx))?;
    ready!(Pin::new(&mut *io).poll_flush(cx))?;
    Poll::Ready(Ok(()))
}

/// Reads more transport bytes into `recv` during the handshake.
fn poll_fill<R: AsyncRead + Unpin + ?Sized>(
    io: &mut R,
    recv: &mut RecvBuf,
    cx: &mut Context<'_>,
) -> Poll<Result<(), Error>> {
    let spare = recv.spare();
    if spare.is_empty() {
        return Poll::Ready(Err(Error::MalformedHandshake {
            reason: "handshake message does not fit the receive buffer",
        }));
    }
    let mut rb = ReadBuf::new(spare);
    ready!(Pin::new(&mut *io).poll_read(cx, &mut rb))?;
    let n = rb.filled().len();
    if n == 0 {
        return Poll::Ready(Err(Error::UnexpectedEof {
            during: "during the handshake",
        }));
    }
    recv.filled(n);
    Poll::Ready(Ok(()))
}

impl ReadState {
    fn poll_read<R: AsyncRead + Unpin + ?Sized>(
        &mut self,
        io: &mut R,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some(e) = &self.failed {
            return Poll::Ready(Err(e.clone().into()));
        }
        let res = self.poll_read_inner(io, cx, out);
        if let Poll::Ready(Err(e)) = &res {
            self.failed = Some(e.clone());
        }
        res.map_err(Into::into)
    }

    fn poll_read_inner<R: AsyncRead + Unpin + ?Sized>(
        &mut self,
        io: &mut R,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<Result<(), Error>> {
        if out.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            // Straight into the caller's buffer, which may be uninitialised: no zeroing.
            if self.buf.read_plain_into(&mut self.opener, out)? > 0 {
                return Poll::Ready(Ok(()));
            }
            let spare = self.buf.spare();
            let mut rb = ReadBuf::new(spare);
            ready!(Pin::new(&mut *io).poll_read(cx, &mut rb))?;
            let got = rb.filled().len();
            if got == 0 {
                // End of stream: clean only on a frame boundary.
                return if self.buf.raw().is_empty() {
                    Poll::Ready(Ok(()))
                } else {
                    Poll::Ready(Err(Error::UnexpectedEof {
                        during: "in the middle of a frame",
                    }))
                };
            }
            self.buf.filled(got);
        }
    }
}

impl WriteState {
    fn poll_write<W: AsyncWrite + Unpin + ?Sized>(
        &mut self,
        io: &mut W,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.guard(|s| {
            if data.is_empty() {
                return Poll::Ready(Ok(0));
            }
            while s.buf.is_full() {
                ready!(poll_drain(io, &mut s.buf, cx))?;
            }
            let n = s.buf.seal(&mut s.sealer, data)?;
            // Start writing right away; what the transport does not take now goes out on the
            // next write or flush.
            if let Poll::Ready(Err(e)) = poll_drain(io, &mut s.buf, cx) {
                return Poll::Ready(Err(e));
            }
            Poll::Ready(Ok(n))
        })
    }

    fn poll_flush<W: AsyncWrite + Unpin + ?Sized>(
        &mut self,
        io: &mut W,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        self.guard(|s| {
            ready!(poll_drain(io, &mut s.buf, cx))?;
            ready!(Pin::new(&mut *io).poll_flush(cx))?;
            Poll::Ready(Ok(()))
        })
    }

    fn poll_shutdown<W: AsyncWrite + Unpin + ?Sized>(
        &mut self,
        io: &mut W,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        self.guard(|s| {
            ready!(poll_drain(io, &mut s.buf, cx))?;
            ready!(Pin::new(&mut *io).poll_shutdown(cx))?;
            Poll::Ready(Ok(()))
        })
    }

    /// Runs `f` unless the writer failed before; remembers a failure.
    fn guard<O>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Poll<Result<O, Error>>,
    ) -> Poll<io::Result<O>> {
        if let Some(e) = &self.failed {
            return Poll::Ready(Err(e.clone().into()));
        }
        let res = f(self);
        if let Poll::Ready(Err(e)) = &res {
            self.failed = Some(e.clone());
        }
        res.map_err(Into::into)
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for SecretStream<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.reader.poll_read(&mut this.io, cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for SecretStream<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.writer.poll_write(&mut this.io, cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.writer.poll_flush(&mut this.io, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.writer.poll_shutdown(&mut this.io, cx)
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for SecretReadHalf<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.state.poll_read(&mut this.io, cx, buf)
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for SecretWriteHalf<W> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.state.poll_write(&mut this.io, cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.state.poll_flush(&mut this.io, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.state.poll_shutdown(&mut this.io, cx)
    }
}
