//! Hooks for the fuzz targets in `fuzz/` (compiled only under `cfg(fuzzing)`, never part of the
//! API).
//!
//! Each hook drives a real code path: the sans-IO handshake and frame core, and the two IO
//! adapters' handshake and read loops over a scripted transport that hands out bytes in
//! fuzzer-chosen pieces and stalls where the fuzzer says. None of them reimplements protocol
//! logic; the targets hold the models the results are checked against.

// Built by our own fuzz crate with struct literals and matched exhaustively there.
#![allow(clippy::exhaustive_enums, clippy::exhaustive_structs)]

use x25519_dalek::{PublicKey as XPublicKey, StaticSecret};

use crate::frame::{FRAME_PLAINTEXT_LEN, Opener, SEALED_FRAME_LEN, Sealer};
use crate::handshake::{Handshake, RemoteIdentity, check_auth_sig, decode_ephemeral, derive};
use crate::{Backend, Error};

/// The largest handshake message the IO adapters accept.
#[cfg(any(feature = "std", feature = "tokio"))]
pub const IO_HANDSHAKE_MSG_LIMIT: usize = crate::buffer::IO_HANDSHAKE_MSG_LIMIT;

/// A [`Sealer`] keyed with `key`, as the handshake builds one, starting at nonce 0.
pub fn sealer(backend: Backend, key: &[u8; 32]) -> Result<Sealer, Error> {
    Sealer::new(backend, key)
}

/// An [`Opener`] keyed with `key`, as the handshake builds one, starting at nonce 0.
pub fn opener(backend: Backend, key: &[u8; 32]) -> Result<Opener, Error> {
    Opener::new(backend, key)
}

/// Seals an arbitrary frame plaintext (`len ‖ data ‖ padding`, with any `len`, even above
/// 1024) with `sealer`'s next nonce, as an authenticated but dishonest peer would.
pub fn seal_plaintext(
    sealer: &mut Sealer,
    plaintext: &[u8; FRAME_PLAINTEXT_LEN],
) -> Result<[u8; SEALED_FRAME_LEN], Error> {
    let mut out = [0u8; SEALED_FRAME_LEN];
    out[..FRAME_PLAINTEXT_LEN].copy_from_slice(plaintext);
    sealer.seal_plaintext_in_place(&mut out)?;
    Ok(out)
}

/// The peer's side of a session whose other side is ours, with our ephemeral secret
/// `our_secret`, after the peer sent `peer_msg` as its ephemeral-key message. The keys come
/// from the handshake's own derivation, so a peer that sent any key at all (even one whose
/// secret it does not know) can be simulated.
pub struct PeerView {
    /// The challenge both sides sign.
    pub challenge: [u8; 32],
    /// Seals what we open (our receive key), from nonce 0.
    pub sealer: Sealer,
    /// Opens what we seal (our send key), from nonce 0.
    pub opener: Opener,
}

/// See [`PeerView`]. Fails exactly as our side of the handshake fails on `peer_msg`.
pub fn peer_view(
    our_secret: [u8; 32],
    backend: Backend,
    peer_msg: &[u8],
) -> Result<PeerView, Error> {
    let remote = decode_ephemeral(peer_msg)?;
    let secret = StaticSecret::from(our_secret);
    let local = XPublicKey::from(&secret).to_bytes();
    let derived = derive(secret, &local, &remote)?;
    Ok(PeerView {
        challenge: *derived.challenge,
        sealer: Sealer::new(backend, &derived.keys.recv)?,
        opener: Opener::new(backend, &derived.keys.send)?,
    })
}

/// The checks our side applies to a peer's delimited `AuthSigMessage` signing `challenge`;
/// returns the key it authenticates.
pub fn check_auth(challenge: &[u8; 32], msg: &[u8]) -> Result<RemoteIdentity, Error> {
    check_auth_sig(challenge, msg).map(RemoteIdentity::new)
}

/// Our side's sans-IO handshake run on whole messages: the result the IO adapters must agree
/// with.
pub fn sans_io_handshake(
    identity: &p2p_types::NodeKey,
    our_secret: [u8; 32],
    backend: Backend,
    peer_eph: &[u8],
    peer_auth: &[u8],
) -> Result<RemoteIdentity, Error> {
    let (hs, _) = Handshake::with_ephemeral_secret(identity, our_secret, backend);
    let (hs, _) = hs.recv_ephemeral(peer_eph)?;
    hs.recv_auth_sig(peer_auth).map(|(_, remote)| remote)
}

#[cfg(all(feature = "std", feature = "tokio"))]
pub use io::*;

#[cfg(all(feature = "std", feature = "tokio"))]
mod io {
    use std::cell::RefCell;
    use std::future::Future;
    use std::io::{self, Read as _};
    use std::pin::{Pin, pin};
    use std::rc::Rc;
    use std::sync::OnceLock;
    use std::task::{Context, Poll, Waker};

    use p2p_types::NodeKey;
    use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

    use crate::buffer::RecvBuf;
    use crate::frame::{Opener, Sealer};
    use crate::handshake::{Handshake, RemoteIdentity};
    use crate::{Config, Error, blocking};

    /// Which IO adapter drives a run.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Driver {
        /// [`blocking::SecretStream`] over `std::io::{Read, Write}`.
        Blocking,
        /// [`crate::SecretStream`] over tokio's `AsyncRead + AsyncWrite`, polled by hand.
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
        stream: &'a mut crate::SecretStream<ScriptedIo>,
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
        config.handshake_timeout(None);
        let (hs, eph) = Handshake::with_ephemeral_secret(identity, our_secret, config.backend);
        let io = ScriptedIo::new(wire, script);
        let failed = |stop| (Vec::new(), stop, false);
        match driver {
            Driver::Blocking => {
                match blocking::SecretStream::handshake_from(io.clone(), hs, &eph, &config) {
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
                let fut = crate::SecretStream::handshake_from(io.clone(), hs, &eph, &config, false);
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
        static REMOTE: OnceLock<RemoteIdentity> = OnceLock::new();
        let remote =
            *REMOTE.get_or_init(|| RemoteIdentity::new(NodeKey::from_seed([0; 32]).public_key()));
        let io = ScriptedIo::new(wire, script);
        let recv = RecvBuf::new(config.read_buffer_len());
        let sealer = match Sealer::new(config.backend, &[0; 32]) {
            Ok(sealer) => sealer,
            Err(e) => return outcome(&io, None, (Vec::new(), Stop::Error(e), false)),
        };
        let read = match driver {
            Driver::Blocking => {
                let mut stream = blocking::SecretStream::from_parts(
                    io.clone(),
                    sealer,
                    opener,
                    recv,
                    remote,
                    config,
                );
                read_all(blocking_reader(&mut stream, &io), script.outs)
            }
            Driver::Tokio => {
                let mut stream = crate::SecretStream::from_parts(
                    io.clone(),
                    sealer,
                    opener,
                    recv,
                    remote,
                    config,
                );
                read_all(tokio_reader(&mut stream, &io), script.outs)
            }
        };
        outcome(&io, None, read)
    }
}
