//! The IO side of the secret-connection harness: a scripted transport that hands out the
//! peer's bytes in fuzzer-chosen pieces, stalls where the fuzzer says and records what we
//! write, and drivers that run either IO adapter over it to the end of the stream.
//!
//! The handshakes go through the adapters' public entry points, with a key source that yields
//! our fixed ephemeral secret; established streams come from the crate's `fuzzing` hooks.

use std::cell::RefCell;
use std::future::Future;
use std::io::{self, Read as _};
use std::pin::{Pin, pin};
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use p2p_secretconn::blocking;
use p2p_secretconn::{Backend, Config, Error, Handshake, KeySource, Opener, RemoteIdentity};
use p2p_types::NodeKey;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Which IO adapter drives a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Driver {
    /// [`blocking::SecretStream`] over `std::io::{Read, Write}`.
    Blocking,
    /// [`p2p_secretconn::SecretStream`] over tokio's `AsyncRead + AsyncWrite`, polled by hand.
    Tokio,
}

/// How the scripted transport behaves. Each list is used in a cycle (an empty one means
/// "as much as possible" every time); each byte is a size code:
/// 0 = not now (`Pending` for tokio, `Interrupted` for std; never twice in a row),
/// 1..=250 = that many bytes, 251/252/253 = 1043/1044/1045, 254 = 4096, 255 = unlimited.
#[derive(Clone, Copy, Debug, Default)]
pub struct Script<'a> {
    /// Transport reads.
    pub reads: &'a [u8],
    /// Transport writes.
    pub writes: &'a [u8],
    /// The sizes of the buffers the application reads the stream into (0 counts as 1).
    pub outs: &'a [u8],
}

/// Decodes a size code of a [`Script`]; `None` is "not now".
pub fn size_code(code: u8) -> Option<usize> {
    match code {
        0 => None,
        251 => Some(1043),
        252 => Some(1044),
        253 => Some(1045),
        254 => Some(4096),
        255 => Some(usize::MAX),
        n => Some(n.into()),
    }
}

/// How a run stopped.
#[derive(Debug)]
pub enum Stop {
    /// The stream ended cleanly (a read returned 0).
    Eof,
    /// The handshake or a read failed with this error.
    Error(Error),
    /// The adapter asked the transport to read into an empty buffer although input
    /// remained: it would have taken that for an end of stream. Always a bug.
    Stalled,
    /// The adapter returned `Pending` although the transport had not: nothing would ever
    /// wake it. Always a bug.
    Hung,
}

/// What a run did.
#[derive(Debug)]
pub struct Outcome {
    /// The authenticated peer, if a handshake was run and completed.
    pub remote: Option<RemoteIdentity>,
    /// Everything our side wrote to the transport.
    pub written: Vec<u8>,
    /// The stream data the application read, in order.
    pub data: Vec<u8>,
    /// Why it stopped.
    pub stop: Stop,
    /// After an error: whether the next read failed too, with an error of the same kind.
    pub error_is_sticky: bool,
}

struct Shared {
    wire: Vec<u8>,
    pos: usize,
    reads: Vec<u8>,
    read_idx: usize,
    read_was_pending: bool,
    writes: Vec<u8>,
    write_idx: usize,
    write_was_pending: bool,
    written: Vec<u8>,
    stalled: bool,
    pendings: u64,
}

/// Next step from a cyclic script: `None` = "not now", never twice in a row.
fn step(codes: &[u8], idx: &mut usize, was_pending: &mut bool) -> Option<usize> {
    let code = if codes.is_empty() {
        255
    } else {
        let c = codes[*idx % codes.len()];
        *idx += 1;
        c
    };
    match size_code(code) {
        None if !*was_pending => {
            *was_pending = true;
            None
        }
        size => {
            *was_pending = false;
            Some(size.unwrap_or(1))
        }
    }
}

/// The scripted transport: reads hand out `wire`, writes are collected.
#[derive(Clone)]
struct ScriptedIo(Rc<RefCell<Shared>>);

impl ScriptedIo {
    fn new(wire: &[u8], script: &Script<'_>) -> Self {
        Self(Rc::new(RefCell::new(Shared {
            wire: wire.to_vec(),
            pos: 0,
            reads: script.reads.to_vec(),
            read_idx: 0,
            read_was_pending: false,
            writes: script.writes.to_vec(),
            write_idx: 0,
            write_was_pending: false,
            written: Vec::new(),
            stalled: false,
            pendings: 0,
        })))
    }

    /// One read: `None` is "not now".
    fn read_some(&self, buf: &mut [u8]) -> Option<usize> {
        let mut s = self.0.borrow_mut();
        let remaining = s.wire.len() - s.pos;
        if buf.is_empty() {
            if remaining > 0 {
                s.stalled = true;
            }
            return Some(0);
        }
        let s = &mut *s;
        let size = step(&s.reads, &mut s.read_idx, &mut s.read_was_pending)?;
        let n = size.min(buf.len()).min(remaining);
        buf[..n].copy_from_slice(&s.wire[s.pos..s.pos + n]);
        s.pos += n;
        Some(n)
    }

    /// One write: `None` is "not now".
    fn write_some(&self, buf: &[u8]) -> Option<usize> {
        let mut s = self.0.borrow_mut();
        if buf.is_empty() {
            return Some(0);
        }
        let s = &mut *s;
        let size = step(&s.writes, &mut s.write_idx, &mut s.write_was_pending)?;
        let n = size.min(buf.len());
        s.written.extend_from_slice(&buf[..n]);
        Some(n)
    }

    fn pending(&self, cx: &mut Context<'_>) {
        self.0.borrow_mut().pendings += 1;
        cx.waker().wake_by_ref();
    }

    fn pendings(&self) -> u64 {
        self.0.borrow().pendings
    }

    fn stalled(&self) -> bool {
        self.0.borrow().stalled
    }

    fn written(&self) -> Vec<u8> {
        self.0.borrow().written.clone()
    }
}

impl io::Read for ScriptedIo {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_some(buf)
            .ok_or_else(|| io::ErrorKind::Interrupted.into())
    }
}

impl io::Write for ScriptedIo {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_some(buf)
            .ok_or_else(|| io::ErrorKind::Interrupted.into())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsyncRead for ScriptedIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.read_some(buf.initialize_unfilled()) {
            Some(n) => {
                buf.advance(n);
                Poll::Ready(Ok(()))
            }
            None => {
                self.pending(cx);
                Poll::Pending
            }
        }
    }
}

impl AsyncWrite for ScriptedIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.write_some(buf) {
            Some(n) => Poll::Ready(Ok(n)),
            None => {
                self.pending(cx);
                Poll::Pending
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Polls `fut` to completion with a no-op waker, as long as every `Pending` comes from the
/// transport.
fn drive<F: Future>(fut: F, io: &ScriptedIo) -> Result<F::Output, Stop> {
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        let before = io.pendings();
        let res = fut.as_mut().poll(&mut cx);
        if io.stalled() {
            return Err(Stop::Stalled);
        }
        match res {
            Poll::Ready(out) => return Ok(out),
            Poll::Pending if io.pendings() == before => return Err(Stop::Hung),
            Poll::Pending => {}
        }
    }
}

/// Reads the stream to its end with buffers of the scripted sizes.
fn read_all(
    mut read: impl FnMut(&mut [u8]) -> Result<usize, Stop>,
    outs: &[u8],
) -> (Vec<u8>, Stop, bool) {
    let mut data = Vec::new();
    let mut buf = Vec::new();
    let mut i = 0;
    loop {
        let code = if outs.is_empty() {
            255
        } else {
            outs[i % outs.len()]
        };
        i += 1;
        buf.resize(size_code(code).unwrap_or(1).min(1 << 16), 0);
        match read(&mut buf) {
            Ok(0) => return (data, Stop::Eof, false),
            Ok(n) => data.extend_from_slice(&buf[..n]),
            Err(Stop::Error(e)) => {
                let sticky = matches!(
                    read(&mut buf),
                    Err(Stop::Error(again))
                        if core::mem::discriminant(&again) == core::mem::discriminant(&e)
                );
                return (data, Stop::Error(e), sticky);
            }
            Err(stop) => return (data, stop, false),
        }
    }
}

fn blocking_reader<'a>(
    stream: &'a mut blocking::SecretStream<ScriptedIo>,
    io: &'a ScriptedIo,
) -> impl FnMut(&mut [u8]) -> Result<usize, Stop> + 'a {
    move |buf| {
        let res = stream.read(buf);
        if io.stalled() {
            return Err(Stop::Stalled);
        }
        res.map_err(|e| Stop::Error(e.into()))
    }
}

fn tokio_reader<'a>(
    stream: &'a mut p2p_secretconn::SecretStream<ScriptedIo>,
    io: &'a ScriptedIo,
) -> impl FnMut(&mut [u8]) -> Result<usize, Stop> + 'a {
    move |buf| {
        let fut = core::future::poll_fn(|cx| {
            let mut rb = ReadBuf::new(buf);
            match Pin::new(&mut *stream).poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) => Poll::Ready(Ok(rb.filled().len())),
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            }
        });
        match drive(fut, io) {
            Ok(res) => res.map_err(|e| Stop::Error(e.into())),
            Err(stop) => Err(stop),
        }
    }
}

fn outcome(
    io: &ScriptedIo,
    remote: Option<RemoteIdentity>,
    (data, stop, error_is_sticky): (Vec<u8>, Stop, bool),
) -> Outcome {
    Outcome {
        remote,
        written: io.written(),
        data,
        stop,
        error_is_sticky,
    }
}

/// A "generator" that yields the same 32 bytes for every key: our side's ephemeral secret,
/// chosen by the target so that it can derive the peer's view of the session.
struct FixedSecret([u8; 32]);

impl rand_core::TryRng for FixedSecret {
    type Error = core::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        unreachable!("keys are drawn with fill_bytes")
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        unreachable!("keys are drawn with fill_bytes")
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        assert_eq!(dst.len(), 32, "an ephemeral secret is 32 bytes");
        dst.copy_from_slice(&self.0);
        Ok(())
    }
}

impl rand_core::TryCryptoRng for FixedSecret {}

/// Our side's sans-IO handshake run on whole messages: the result the IO adapters must agree
/// with.
pub fn sans_io_handshake(
    identity: &NodeKey,
    our_secret: [u8; 32],
    backend: Backend,
    peer_eph: &[u8],
    peer_auth: &[u8],
) -> Result<RemoteIdentity, Error> {
    let (hs, _) = Handshake::with_ephemeral_secret(identity, our_secret, backend);
    let (hs, _) = hs.recv_ephemeral(peer_eph)?;
    hs.recv_auth_sig(peer_auth).map(|(_, remote)| remote)
}

/// Runs our side's handshake as `identity` with the ephemeral secret `our_secret` over a
/// transport that delivers `wire` (the peer's bytes), then reads the stream to its end.
pub fn handshake(
    driver: Driver,
    identity: &NodeKey,
    our_secret: [u8; 32],
    config: &Config,
    wire: &[u8],
    script: &Script<'_>,
) -> Outcome {
    let mut config = config.clone();
    config
        .handshake_timeout(None)
        .key_source(KeySource::from_rng(FixedSecret(our_secret)));
    let io = ScriptedIo::new(wire, script);
    let failed = |stop| (Vec::new(), stop, false);
    match driver {
        Driver::Blocking => {
            match blocking::SecretStream::handshake_with(io.clone(), identity, &config) {
                _ if io.stalled() => outcome(&io, None, failed(Stop::Stalled)),
                Ok(mut stream) => {
                    let remote = *stream.remote();
                    let read = read_all(blocking_reader(&mut stream, &io), script.outs);
                    outcome(&io, Some(remote), read)
                }
                Err(e) => outcome(&io, None, failed(Stop::Error(e))),
            }
        }
        Driver::Tokio => {
            let fut = p2p_secretconn::SecretStream::handshake_with(io.clone(), identity, &config);
            match drive(fut, &io) {
                Ok(Ok(mut stream)) => {
                    let remote = *stream.remote();
                    let read = read_all(tokio_reader(&mut stream, &io), script.outs);
                    outcome(&io, Some(remote), read)
                }
                Ok(Err(e)) => outcome(&io, None, failed(Stop::Error(e))),
                Err(stop) => outcome(&io, None, failed(stop)),
            }
        }
    }
}

/// Reads the stream that `wire` carries, opened with `opener`, as an established
/// connection's adapter does.
pub fn stream(
    driver: Driver,
    opener: Opener,
    config: &Config,
    wire: &[u8],
    script: &Script<'_>,
) -> Outcome {
    let io = ScriptedIo::new(wire, script);
    let failed = |e| outcome(&io, None, (Vec::new(), Stop::Error(e), false));
    let read = match driver {
        Driver::Blocking => {
            match p2p_secretconn::fuzzing::blocking_stream(io.clone(), opener, config) {
                Ok(mut stream) => read_all(blocking_reader(&mut stream, &io), script.outs),
                Err(e) => return failed(e),
            }
        }
        Driver::Tokio => match p2p_secretconn::fuzzing::tokio_stream(io.clone(), opener, config) {
            Ok(mut stream) => read_all(tokio_reader(&mut stream, &io), script.outs),
            Err(e) => return failed(e),
        },
    };
    outcome(&io, None, read)
}
