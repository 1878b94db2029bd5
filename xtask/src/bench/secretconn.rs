//! Suite `secretconn`: one-direction throughput over loopback TCP and sequential handshakes.
//!
//! Figures and their references (all measured in this run):
//! - `throughput` (the default build's backend, ring) and `throughput_rustcrypto` (the
//!   pure-Rust backend, what `default-features = false` builds use): MiB/s of payload from one
//!   `SecretStream` to another over loopback TCP, sender and receiver each on its own thread,
//!   large writes. References: `aead_bound` (the slower of sealing alone and opening
//!   alone of 1028-byte frames in memory on one core, raw backend calls), `tendermint-p2p`
//!   (its SecretConnection over `BufReader`/`BufWriter`, its best case), `loopback_tcp` (plain
//!   TCP, same harness), `go-cometbft` (the reference's SecretConnection, Go to Go).
//! - `handshake`: sequential handshakes per second over already-connected loopback TCP pairs,
//!   one thread per side (connecting, and registering a socket with the tokio reactor, happen
//!   before the clock starts, as they do in the Go reference's bench), default `Config`.
//!   References: `crypto_bound` (one side's X25519 keygen + DH + ed25519 sign + verify + HKDF
//!   on one core), `crypto_bound_both` (the same on two threads at once, one per side, as a
//!   handshake needs it: the slower thread's rate; where it is below `crypto_bound` the two
//!   cores slow each other down), `crypto_and_exchanges` (that crypto on both sides with the
//!   handshake's two message exchanges between them over the same tokio sockets, and nothing
//!   else: the floor of a sequential handshake on this machine, where the time a message
//!   takes to wake the other side is counted twice per handshake), `tendermint-p2p` (same
//!   harness), `go-cometbft`.
//! - `handshake_spare`: the same with `KeySource::os_with_spare()` on each side (the next
//!   ephemeral key is made while waiting for the peer's signature). Reference: `crypto_bound`.

use std::io::{BufReader, BufWriter, Read, Write};
use std::net::TcpStream as StdStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use p2p_secretconn::{Backend, Config, KeySource, SecretStream};
use p2p_types::NodeKey;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::{Report, Scale, best, current_thread, mib_per_s, tcp_pair};
use crate::shim::{self, GoStatus};

const SUITE: &str = "secretconn";
const FRAME_PLAIN: usize = 1028;
const FRAME_SEALED: usize = 1044;
const WRITE_CHUNK: usize = 1 << 20;
const READ_CHUNK: usize = 256 * 1024;

pub fn run(report: &mut Report, scale: Scale) -> anyhow::Result<()> {
    let go = match shim::build()? {
        GoStatus::Ready(bin) => Some(bin),
        GoStatus::Unavailable(why) => {
            eprintln!("bench: the Go reference is unavailable, its lines are skipped: {why}");
            None
        }
    };

    // References shared by both throughput figures.
    let loopback = best(
        (0..scale.reps())
            .map(|_| loopback_tcp(scale.bytes(1 << 30)))
            .collect::<anyhow::Result<_>>()?,
    );
    let tm = best(
        (0..scale.reps())
            .map(|_| tendermint_throughput(scale.bytes(256 << 20)))
            .collect::<anyhow::Result<_>>()?,
    );
    // Like every other figure and reference, the best of several runs.
    let go_mibs = match &go {
        Some(bin) => Some(best(
            (0..scale.reps())
                .map(|_| {
                    go_bench(
                        bin,
                        &["--bytes", &scale.bytes(256 << 20).to_string()],
                        "mib_per_s",
                    )
                })
                .collect::<anyhow::Result<_>>()?,
        )),
        None => None,
    };

    // `throughput` is what a user of the default features gets; the other backend is its own
    // line (it is the default of a pure-Rust build).
    let backends: &[(&'static str, Backend, usize)] = &[
        ("throughput", Backend::default(), 1 << 30),
        ("throughput_rustcrypto", Backend::RustCrypto, 256 << 20),
    ];
    for &(name, backend, bytes) in backends {
        if name != "throughput" && backend == Backend::default() {
            continue; // a build without ring: the first line already is this backend
        }
        let bound = best(
            (0..scale.reps())
                .map(|_| aead_bound(backend, scale.bytes(256 << 20)))
                .collect(),
        );
        let ours = best(
            (0..scale.reps())
                .map(|_| our_throughput(backend, scale.bytes(bytes)))
                .collect::<anyhow::Result<_>>()?,
        );
        report.line(SUITE, name, ours, "MiB/s", "aead_bound", bound);
        report.line(SUITE, name, ours, "MiB/s", "tendermint-p2p", tm);
        report.line(SUITE, name, ours, "MiB/s", "loopback_tcp", loopback);
        match go_mibs {
            Some(g) => report.line(SUITE, name, ours, "MiB/s", "go-cometbft", g),
            None => report.missing(SUITE, name, "go-cometbft", "Go reference unavailable"),
        }
    }

    let n = scale.count(1000);
    let crypto = best((0..scale.reps()).map(|_| crypto_bound(n)).collect());
    let crypto_both = best(
        (0..scale.reps())
            .map(|_| crypto_bound_both(n))
            .collect::<anyhow::Result<_>>()?,
    );
    let floor = best(
        (0..scale.reps())
            .map(|_| crypto_and_exchanges(n))
            .collect::<anyhow::Result<_>>()?,
    );
    let ours = best(
        (0..scale.reps())
            .map(|_| our_handshakes(n, false))
            .collect::<anyhow::Result<_>>()?,
    );
    let ours_spare = best(
        (0..scale.reps())
            .map(|_| our_handshakes(n, true))
            .collect::<anyhow::Result<_>>()?,
    );
    let tm_hs = best(
        (0..scale.reps())
            .map(|_| tendermint_handshakes(n))
            .collect::<anyhow::Result<_>>()?,
    );
    report.line(SUITE, "handshake", ours, "per_s", "crypto_bound", crypto);
    report.line(
        SUITE,
        "handshake",
        ours,
        "per_s",
        "crypto_bound_both",
        crypto_both,
    );
    report.line(
        SUITE,
        "handshake",
        ours,
        "per_s",
        "crypto_and_exchanges",
        floor,
    );
    report.line(SUITE, "handshake", ours, "per_s", "tendermint-p2p", tm_hs);
    report.line(
        SUITE,
        "handshake_spare",
        ours_spare,
        "per_s",
        "crypto_bound",
        crypto,
    );
    match &go {
        Some(bin) => {
            let g = best(
                (0..scale.reps())
                    .map(|_| go_bench(bin, &["--handshakes", &n.to_string()], "per_s"))
                    .collect::<anyhow::Result<_>>()?,
            );
            report.line(SUITE, "handshake", ours, "per_s", "go-cometbft", g);
        }
        None => report.missing(
            SUITE,
            "handshake",
            "go-cometbft",
            "Go reference unavailable",
        ),
    }
    Ok(())
}

/// The slower of sealing alone and opening alone of `total` bytes of 1028-byte frames in
/// memory, on this thread, with the backend's raw API.
fn aead_bound(backend: Backend, total: usize) -> f64 {
    const FRAMES: usize = 4096; // 4 MiB working set
    let key = [7u8; 32];
    let rounds = (total / (FRAMES * 1024)).max(1);
    let mut buf = vec![0u8; FRAMES * FRAME_SEALED];
    let seal_all = |buf: &mut [u8], base: u64| {
        for (i, frame) in buf.chunks_exact_mut(FRAME_SEALED).enumerate() {
            let (plain, tag) = frame.split_at_mut(FRAME_PLAIN);
            tag.copy_from_slice(&raw_seal(
                backend,
                &key,
                p2p_secretconn::nonce_bytes(base + i as u64),
                plain,
            ));
        }
    };
    let open_all = |buf: &mut [u8], base: u64| {
        for (i, frame) in buf.chunks_exact_mut(FRAME_SEALED).enumerate() {
            let (body, tag) = frame.split_at_mut(FRAME_PLAIN);
            let ok = raw_open(
                backend,
                &key,
                p2p_secretconn::nonce_bytes(base + i as u64),
                body,
                tag,
            );
            assert!(ok, "benchmark frames must open");
        }
    };
    let mut seal_time = Duration::ZERO;
    let mut open_time = Duration::ZERO;
    for r in 0..rounds {
        let base = (r * FRAMES) as u64;
        let t = Instant::now();
        seal_all(&mut buf, base);
        seal_time += t.elapsed();
        let t = Instant::now();
        open_all(&mut buf, base);
        open_time += t.elapsed();
    }
    let bytes = rounds * FRAMES * 1024;
    mib_per_s(bytes, seal_time).min(mib_per_s(bytes, open_time))
}

fn raw_seal(backend: Backend, key: &[u8; 32], nonce: [u8; 12], buf: &mut [u8]) -> [u8; 16] {
    match backend {
        Backend::Ring => {
            use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
            // Set the key up once per thread, as a connection does.
            thread_local! {
                static KEY: std::cell::RefCell<Option<LessSafeKey>> = const { std::cell::RefCell::new(None) };
            }
            KEY.with(|k| {
                let mut k = k.borrow_mut();
                let k = k.get_or_insert_with(|| {
                    LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, key).expect("32-byte key"))
                });
                let tag = k
                    .seal_in_place_separate_tag(
                        Nonce::assume_unique_for_key(nonce),
                        Aad::empty(),
                        buf,
                    )
                    .expect("seal");
                tag.as_ref().try_into().expect("16-byte tag")
            })
        }
        _ => {
            use chacha20poly1305::aead::{AeadInOut as _, KeyInit as _};
            thread_local! {
                static KEY: std::cell::RefCell<Option<chacha20poly1305::ChaCha20Poly1305>> = const { std::cell::RefCell::new(None) };
            }
            KEY.with(|k| {
                let mut k = k.borrow_mut();
                let c =
                    k.get_or_insert_with(|| chacha20poly1305::ChaCha20Poly1305::new(key.into()));
                c.encrypt_inout_detached(&nonce.into(), &[], buf.into())
                    .expect("seal")
                    .into()
            })
        }
    }
}

fn raw_open(backend: Backend, key: &[u8; 32], nonce: [u8; 12], buf: &mut [u8], tag: &[u8]) -> bool {
    match backend {
        Backend::Ring => {
            use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, Tag, UnboundKey};
            thread_local! {
                static KEY: std::cell::RefCell<Option<LessSafeKey>> = const { std::cell::RefCell::new(None) };
            }
            KEY.with(|k| {
                let mut k = k.borrow_mut();
                let k = k.get_or_insert_with(|| {
                    LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, key).expect("32-byte key"))
                });
                let tag = Tag::try_from(tag).expect("16-byte tag");
                k.open_in_place_separate_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::empty(),
                    tag,
                    buf,
                    0..,
                )
                .is_ok()
            })
        }
        _ => {
            use chacha20poly1305::aead::{AeadInOut as _, KeyInit as _};
            thread_local! {
                static KEY: std::cell::RefCell<Option<chacha20poly1305::ChaCha20Poly1305>> = const { std::cell::RefCell::new(None) };
            }
            KEY.with(|k| {
                let mut k = k.borrow_mut();
                let c =
                    k.get_or_insert_with(|| chacha20poly1305::ChaCha20Poly1305::new(key.into()));
                let tag: [u8; 16] = tag.try_into().expect("16-byte tag");
                c.decrypt_inout_detached(&nonce.into(), &[], buf.into(), &tag.into())
                    .is_ok()
            })
        }
    }
}

/// Runs `send` and `recv` on two threads started together; returns the time from the start
/// signal until `recv` finished.
fn two_threads<S, R>(send: S, recv: R) -> anyhow::Result<Duration>
where
    S: FnOnce(&Barrier) -> anyhow::Result<()> + Send + 'static,
    R: FnOnce(&Barrier) -> anyhow::Result<Instant> + Send + 'static,
{
    let barrier = Arc::new(Barrier::new(3));
    let (b1, b2) = (barrier.clone(), barrier.clone());
    let s = std::thread::spawn(move || send(&b1));
    let r = std::thread::spawn(move || recv(&b2));
    barrier.wait();
    let start = Instant::now();
    let end = r
        .join()
        .map_err(|_| anyhow::anyhow!("receiver panicked"))??;
    s.join().map_err(|_| anyhow::anyhow!("sender panicked"))??;
    Ok(end.saturating_duration_since(start))
}

fn loopback_tcp(total: usize) -> anyhow::Result<f64> {
    let (a, b) = tcp_pair(false)?;
    let d = two_threads(
        move |go| {
            let rt = current_thread()?;
            rt.block_on(async move {
                let mut a = tokio::net::TcpStream::from_std({
                    a.set_nonblocking(true)?;
                    a
                })?;
                let chunk = vec![0x5a; WRITE_CHUNK];
                go.wait();
                let mut sent = 0;
                while sent < total {
                    let n = chunk.len().min(total - sent);
                    a.write_all(&chunk[..n]).await?;
                    sent += n;
                }
                a.flush().await?;
                anyhow::Ok(())
            })
        },
        move |go| {
            let rt = current_thread()?;
            rt.block_on(async move {
                let mut b = tokio::net::TcpStream::from_std({
                    b.set_nonblocking(true)?;
                    b
                })?;
                let mut buf = vec![0u8; READ_CHUNK];
                go.wait();
                let mut got = 0;
                while got < total {
                    let n = b.read(&mut buf).await?;
                    anyhow::ensure!(n > 0, "early EOF");
                    got += n;
                }
                anyhow::Ok(Instant::now())
            })
        },
    )?;
    Ok(mib_per_s(total, d))
}

fn our_throughput(backend: Backend, total: usize) -> anyhow::Result<f64> {
    let (a, b) = tcp_pair(false)?;
    let mut config = Config::default();
    config.backend(backend);
    let (ca, cb) = (config.clone(), config);
    // The handshake happens before the start signal; both sides need each other for it.
    let hs = Arc::new(Barrier::new(2));
    let (h1, h2) = (hs.clone(), hs);
    let d = two_threads(
        move |go| {
            let rt = current_thread()?;
            rt.block_on(async move {
                a.set_nonblocking(true)?;
                let tcp = tokio::net::TcpStream::from_std(a)?;
                let mut s =
                    SecretStream::handshake_with(tcp, &NodeKey::from_seed([1; 32]), &ca).await?;
                h1.wait();
                let chunk = vec![0x5a; WRITE_CHUNK];
                go.wait();
                let mut sent = 0;
                while sent < total {
                    let n = chunk.len().min(total - sent);
                    s.write_all(&chunk[..n]).await?;
                    sent += n;
                }
                s.flush().await?;
                anyhow::Ok(())
            })
        },
        move |go| {
            let rt = current_thread()?;
            rt.block_on(async move {
                b.set_nonblocking(true)?;
                let tcp = tokio::net::TcpStream::from_std(b)?;
                let mut s =
                    SecretStream::handshake_with(tcp, &NodeKey::from_seed([2; 32]), &cb).await?;
                h2.wait();
                let mut buf = vec![0u8; READ_CHUNK];
                go.wait();
                let mut got = 0;
                while got < total {
                    let n = s.read(&mut buf).await?;
                    anyhow::ensure!(n > 0, "early EOF");
                    got += n;
                }
                anyhow::Ok(Instant::now())
            })
        },
    )?;
    Ok(mib_per_s(total, d))
}

/// `tendermint-p2p`'s SecretConnection needs one `Read + Write` object; this one buffers
/// both directions, which is its best case (it writes every 1044-byte frame separately).
/// Its handshake never flushes, so writes go straight through until `buffered` is set.
struct BufIo {
    r: BufReader<StdStream>,
    w: BufWriter<StdStream>,
    buffered: Arc<AtomicBool>,
}

impl BufIo {
    fn new(s: StdStream) -> anyhow::Result<(Self, Arc<AtomicBool>)> {
        let buffered = Arc::new(AtomicBool::new(false));
        Ok((
            Self {
                r: BufReader::with_capacity(READ_CHUNK, s.try_clone()?),
                w: BufWriter::with_capacity(READ_CHUNK, s),
                buffered: buffered.clone(),
            },
            buffered,
        ))
    }
}

impl Read for BufIo {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.r.read(buf)
    }
}

impl Write for BufIo {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.w.write(buf)?;
        if !self.buffered.load(Ordering::Relaxed) {
            self.w.flush()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.w.flush()
    }
}

fn tm_key(seed: u8) -> ed25519_consensus::SigningKey {
    ed25519_consensus::SigningKey::from([seed; 32])
}

fn tendermint_throughput(total: usize) -> anyhow::Result<f64> {
    use tendermint_p2p::secret_connection::{SecretConnection, Version};
    let (a, b) = tcp_pair(false)?;
    let hs = Arc::new(Barrier::new(2));
    let (h1, h2) = (hs.clone(), hs);
    let d = two_threads(
        move |go| {
            let (io, buffered) = BufIo::new(a)?;
            let mut sc = SecretConnection::new(io, tm_key(1), Version::V0_34)
                .map_err(|e| anyhow::anyhow!("tendermint-p2p handshake: {e}"))?;
            buffered.store(true, Ordering::Relaxed);
            h1.wait();
            let chunk = vec![0x5a; WRITE_CHUNK];
            go.wait();
            let mut sent = 0;
            while sent < total {
                let n = chunk.len().min(total - sent);
                sc.write_all(&chunk[..n])?;
                sent += n;
            }
            sc.flush()?;
            Ok(())
        },
        move |go| {
            let (io, buffered) = BufIo::new(b)?;
            let mut sc = SecretConnection::new(io, tm_key(2), Version::V0_34)
                .map_err(|e| anyhow::anyhow!("tendermint-p2p handshake: {e}"))?;
            buffered.store(true, Ordering::Relaxed);
            h2.wait();
            // It panics on reads shorter than a frame's data: read 1024 bytes at a time.
            let mut buf = [0u8; 1024];
            go.wait();
            let mut got = 0;
            while got < total {
                let n = sc.read(&mut buf)?;
                anyhow::ensure!(n > 0, "early EOF");
                got += n;
            }
            Ok(Instant::now())
        },
    )?;
    Ok(mib_per_s(total, d))
}

/// One side's handshake crypto, `n` times on this thread: X25519 keygen and DH, the Merlin
/// transcript and challenge, HKDF-SHA256, both AEAD key setups with one frame sealed and one
/// opened, ed25519 sign, and decoding plus verifying the peer's key and signature. Returns
/// handshakes per second.
pub(super) fn crypto_bound(n: usize) -> f64 {
    let mut side = CryptoSide::new();
    let start = Instant::now();
    for _ in 0..n {
        let eph = side.keygen();
        let sent = side.derive_and_sign(eph);
        std::hint::black_box((sent.1, side.open_and_verify()));
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// The crypto of one side of a handshake, in its three steps (what can be done before the
/// peer's ephemeral key, before its signature, and after). The peer's values are fixed: the
/// work is the same whatever they are.
struct CryptoSide {
    signer: ed25519_dalek::SigningKey,
    peer_pub_bytes: [u8; 32],
    peer_eph: x25519_dalek::PublicKey,
    challenge: [u8; 32],
    peer_sig: ed25519_dalek::Signature,
    recv_key: [u8; 32],
    peer_frame: Vec<u8>,
    peer_tag: ring::aead::Tag,
    rng: rand::rngs::ThreadRng,
}

impl CryptoSide {
    fn new() -> Self {
        use ed25519_dalek::Signer as _;
        use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
        let peer = ed25519_dalek::SigningKey::from_bytes(&[4; 32]);
        let challenge = [9u8; 32];
        // A frame the peer sealed with the key we will derive for receiving.
        let recv_key = [11u8; 32];
        let mut peer_frame = vec![0u8; FRAME_PLAIN];
        let peer_tag =
            LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, &recv_key).expect("key"))
                .seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key([0; 12]),
                    Aad::empty(),
                    &mut peer_frame,
                )
                .expect("seal");
        Self {
            signer: ed25519_dalek::SigningKey::from_bytes(&[3; 32]),
            peer_pub_bytes: peer.verifying_key().to_bytes(),
            peer_eph: x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from([5; 32])),
            challenge,
            peer_sig: peer.sign(&challenge),
            recv_key,
            peer_frame,
            peer_tag,
            rng: rand::rng(),
        }
    }

    /// A fresh ephemeral key pair.
    fn keygen(&mut self) -> (x25519_dalek::StaticSecret, x25519_dalek::PublicKey) {
        let mut seed = [0u8; 32];
        rand::Rng::fill_bytes(&mut self.rng, &mut seed);
        let secret = x25519_dalek::StaticSecret::from(seed);
        let public = x25519_dalek::PublicKey::from(&secret);
        (secret, public)
    }

    /// DH with the peer's ephemeral key, the transcript, HKDF, the AEAD keys, the signature
    /// and the sealed frame that carries it.
    fn derive_and_sign(
        &mut self,
        (secret, public): (x25519_dalek::StaticSecret, x25519_dalek::PublicKey),
    ) -> ([u8; FRAME_PLAIN], u8) {
        use ed25519_dalek::Signer as _;
        use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
        let dh = secret.diffie_hellman(&self.peer_eph);
        let mut t = merlin::Transcript::new(b"TENDERMINT_SECRET_CONNECTION_TRANSCRIPT_HASH");
        t.append_message(b"EPHEMERAL_LOWER_PUBLIC_KEY", public.as_bytes());
        t.append_message(b"EPHEMERAL_UPPER_PUBLIC_KEY", self.peer_eph.as_bytes());
        t.append_message(b"DH_SECRET", dh.as_bytes());
        let mut mac = [0u8; 32];
        t.challenge_bytes(b"SECRET_CONNECTION_MAC", &mut mac);
        let mut okm = [0u8; 96];
        hkdf::Hkdf::<sha2::Sha256>::new(None, dh.as_bytes())
            .expand(
                b"TENDERMINT_SECRET_CONNECTION_KEY_AND_CHALLENGE_GEN",
                &mut okm,
            )
            .expect("96 bytes");
        let send =
            LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, &okm[32..64]).expect("key"));
        let sig = self.signer.sign(&mac);
        let mut frame = [0u8; FRAME_PLAIN];
        frame[..64].copy_from_slice(&sig.to_bytes());
        let tag = send
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key([0; 12]),
                Aad::empty(),
                &mut frame,
            )
            .expect("seal");
        std::hint::black_box(okm);
        (frame, tag.as_ref()[0])
    }

    /// Opening the peer's frame and verifying its key and signature.
    fn open_and_verify(&mut self) -> bool {
        use ed25519_dalek::Verifier as _;
        use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
        let recv =
            LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, &self.recv_key).expect("key"));
        let mut incoming = self.peer_frame.clone();
        let opened = recv
            .open_in_place_separate_tag(
                Nonce::assume_unique_for_key([0; 12]),
                Aad::empty(),
                self.peer_tag,
                &mut incoming,
                0..,
            )
            .is_ok();
        let ok = ed25519_dalek::VerifyingKey::from_bytes(&self.peer_pub_bytes)
            .map(|k| k.verify(&self.challenge, &self.peer_sig).is_ok())
            .unwrap_or(false);
        opened && ok
    }
}

/// A current-thread runtime and `socks` registered with its reactor: connected sockets as
/// tokio hands them out (`TcpStream::connect`, `accept`).
fn tokio_sockets(
    socks: Vec<StdStream>,
) -> anyhow::Result<(tokio::runtime::Runtime, Vec<tokio::net::TcpStream>)> {
    let rt = current_thread()?;
    let socks = rt.block_on(async move {
        socks
            .into_iter()
            .map(|s| {
                s.set_nonblocking(true)?;
                tokio::net::TcpStream::from_std(s)
            })
            .collect::<std::io::Result<Vec<_>>>()
    })?;
    Ok((rt, socks))
}

/// The floor of a handshake on this machine: [`CryptoSide`]'s steps on both sides at once,
/// with the handshake's two exchanges between them (the 35-byte ephemeral-key message, then
/// a 1044-byte sealed frame, each way at once) over the same kind of connected tokio
/// sockets, one thread per side, and nothing else: no parsing, no state machine, no checks.
fn crypto_and_exchanges(n: usize) -> anyhow::Result<f64> {
    sequential_handshakes(
        n,
        |socks, _| tokio_sockets(socks),
        |(rt, socks)| {
            rt.block_on(async move {
                let mut side = CryptoSide::new();
                let mut open = Vec::with_capacity(socks.len());
                for mut tcp in socks {
                    let eph = side.keygen();
                    let mut msg = [0u8; 35];
                    msg[3..].copy_from_slice(eph.1.as_bytes());
                    tcp.write_all(&msg).await?;
                    tcp.read_exact(&mut msg).await?;
                    let (plain, tag) = side.derive_and_sign(eph);
                    let mut frame = [tag; FRAME_SEALED];
                    frame[..FRAME_PLAIN].copy_from_slice(&plain);
                    tcp.write_all(&frame).await?;
                    tcp.read_exact(&mut frame).await?;
                    std::hint::black_box(side.open_and_verify());
                    open.push(tcp);
                }
                anyhow::Ok(open)
            })
        },
    )
}

/// [`crypto_bound`] on two threads at once, one per side, as a handshake runs it: the
/// slower thread's rate. Below `crypto_bound` where the two cores share something (a host
/// core's other hyperthread, a noisy neighbour, the clock boost of one busy core).
fn crypto_bound_both(n: usize) -> anyhow::Result<f64> {
    let start = Arc::new(Barrier::new(2));
    let sides: Vec<_> = (0..2)
        .map(|_| {
            let start = Arc::clone(&start);
            std::thread::spawn(move || {
                start.wait();
                crypto_bound(n)
            })
        })
        .collect();
    let rates = sides
        .into_iter()
        .map(|t| {
            t.join()
                .map_err(|_| anyhow::anyhow!("a crypto_bound thread panicked"))
        })
        .collect::<anyhow::Result<Vec<f64>>>()?;
    Ok(rates.into_iter().fold(f64::INFINITY, f64::min))
}

/// Connected pairs for `n` handshakes, made ahead of time (connecting is not timed).
fn pairs(n: usize) -> anyhow::Result<Vec<(StdStream, StdStream)>> {
    (0..n).map(|_| tcp_pair(false)).collect()
}

/// Runs `n` sequential handshakes, in batches of pre-connected pairs. For each side, on its own
/// thread, `prepare` turns its list of sockets into whatever `run` needs before the clock starts
/// (a runtime, sockets registered with it, the node key: what a node has when a connection has
/// just been established), then `run` does that side's handshakes. Returns handshakes per
/// second.
fn sequential_handshakes<P, S, F, C>(n: usize, prepare: P, run: F) -> anyhow::Result<f64>
where
    P: Fn(Vec<StdStream>, u8) -> anyhow::Result<S> + Send + Sync + Copy + 'static,
    F: Fn(S) -> anyhow::Result<C> + Send + Sync + Copy + 'static,
    C: Send + 'static,
{
    const BATCH: usize = 200;
    let mut total = Duration::ZERO;
    let mut done = 0;
    while done < n {
        let k = BATCH.min(n - done);
        let (xs, ys): (Vec<_>, Vec<_>) = pairs(k)?.into_iter().unzip();
        // Each side keeps its connections open and hands them back to be closed after the
        // clock has stopped: closing is not part of a handshake.
        let (reap_tx, reap_rx) = std::sync::mpsc::channel::<C>();
        let reap_tx2 = reap_tx.clone();
        total += two_threads(
            move |go| {
                let ready = prepare(xs, 1);
                go.wait();
                let _ = reap_tx.send(run(ready?)?);
                Ok(())
            },
            move |go| {
                let ready = prepare(ys, 2);
                go.wait();
                let open = run(ready?)?;
                let end = Instant::now();
                let _ = reap_tx2.send(open);
                Ok(end)
            },
        )?;
        drop(reap_rx);
        done += k;
    }
    Ok(n as f64 / total.as_secs_f64())
}

/// Our handshakes with the default `Config`, or (`spare`) with a key source per side that makes
/// the next ephemeral key while a handshake waits for the peer's signature.
fn our_handshakes(n: usize, spare: bool) -> anyhow::Result<f64> {
    sequential_handshakes(
        n,
        move |socks, seed| {
            let (rt, socks) = tokio_sockets(socks)?;
            let mut config = Config::default();
            if spare {
                config.key_source(KeySource::os_with_spare());
            }
            Ok((rt, socks, NodeKey::from_seed([seed; 32]), config))
        },
        |(rt, socks, key, config)| {
            rt.block_on(async move {
                let mut open = Vec::with_capacity(socks.len());
                for tcp in socks {
                    let conn = SecretStream::handshake_with(tcp, &key, &config).await?;
                    // Closing is not part of a handshake: keep the connection until the batch
                    // ends.
                    open.push(conn);
                }
                anyhow::Ok(open)
            })
        },
    )
}

fn tendermint_handshakes(n: usize) -> anyhow::Result<f64> {
    use tendermint_p2p::secret_connection::{SecretConnection, Version};
    sequential_handshakes(
        n,
        |socks, seed| Ok((socks, tm_key(seed))),
        |(socks, key)| {
            let mut open = Vec::with_capacity(socks.len());
            for s in socks {
                let sc = SecretConnection::new(s, key.clone(), Version::V0_34)
                    .map_err(|e| anyhow::anyhow!("tendermint-p2p handshake: {e}"))?;
                open.push(sc);
            }
            Ok(open)
        },
    )
}

/// Runs the shim's `bench-secretconn` and returns the named field of its `bench` event.
fn go_bench(bin: &std::path::Path, args: &[&str], field: &str) -> anyhow::Result<f64> {
    let out = std::process::Command::new(bin)
        .arg("bench-secretconn")
        .args(args)
        .output()
        .context("running the Go shim")?;
    anyhow::ensure!(
        out.status.success(),
        "Go bench failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line)?;
        if v["event"] == "bench" {
            return v[field]
                .as_f64()
                .ok_or_else(|| anyhow::anyhow!("no {field} in {v}"));
        }
    }
    anyhow::bail!("the Go bench printed no result: {text}")
}
