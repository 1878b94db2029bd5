//! With seeded key sources, connections are byte-for-byte reproducible: everything each side
//! writes is the same on every run. Different seeds, and the default OS source, differ.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use p2p_secretconn::{Config, KeySource, SecretStream};
use p2p_types::NodeKey;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};

/// A transport that records every byte written through it.
struct Recorder<T> {
    io: T,
    log: Arc<Mutex<Vec<u8>>>,
}

impl<T> Recorder<T> {
    fn new(io: T) -> (Self, Arc<Mutex<Vec<u8>>>) {
        let log = Arc::new(Mutex::new(Vec::new()));
        (
            Self {
                io,
                log: log.clone(),
            },
            log,
        )
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Recorder<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Recorder<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let res = Pin::new(&mut self.io).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = res {
            self.log.lock().unwrap().extend_from_slice(&buf[..n]);
        }
        res
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

impl<T: io::Read> io::Read for Recorder<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.io.read(buf)
    }
}

impl<T: io::Write> io::Write for Recorder<T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.io.write(buf)?;
        self.log.lock().unwrap().extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.io.flush()
    }
}

fn config(keys: &KeySource) -> Config {
    let mut config = Config::default();
    config.key_source(keys.clone());
    config
}

/// What each side wrote during one connection: the handshake, then a message each way.
type Transcripts = (Vec<u8>, Vec<u8>);

/// One connection over an in-memory pipe, both sides polled by `join!` on this task (so the
/// order in which they start is fixed).
async fn connection(a_keys: &KeySource, b_keys: &KeySource) -> Transcripts {
    let (x, y) = tokio::io::duplex(4096);
    let (x, a_log) = Recorder::new(x);
    let (y, b_log) = Recorder::new(y);
    let (ka, kb) = (NodeKey::from_seed([1; 32]), NodeKey::from_seed([2; 32]));
    let (ca, cb) = (config(a_keys), config(b_keys));
    let (a, b) = tokio::join!(
        SecretStream::handshake_with(x, &ka, &ca),
        SecretStream::handshake_with(y, &kb, &cb)
    );
    let (mut a, mut b) = (a.unwrap(), b.unwrap());
    let data: Vec<u8> = (0..3000u32).map(|i| (i * 31) as u8).collect();
    let mut got = vec![0u8; data.len()];
    let (w, r) = tokio::join!(
        async {
            a.write_all(&data).await?;
            a.flush().await
        },
        b.read_exact(&mut got)
    );
    w.unwrap();
    r.unwrap();
    assert_eq!(got, data);
    b.write_all(b"thanks").await.unwrap();
    b.flush().await.unwrap();
    let mut reply = [0u8; 6];
    a.read_exact(&mut reply).await.unwrap();
    let a_written = a_log.lock().unwrap().clone();
    let b_written = b_log.lock().unwrap().clone();
    (a_written, b_written)
}

#[tokio::test]
async fn same_seeds_same_bytes() {
    let first = connection(&KeySource::seeded(1), &KeySource::seeded(2)).await;
    let second = connection(&KeySource::seeded(1), &KeySource::seeded(2)).await;
    // Ephemeral key, auth frame, 3 data frames from A; ephemeral key, auth frame, 1 frame
    // from B.
    assert_eq!(first.0.len(), 35 + 4 * 1044);
    assert_eq!(first.1.len(), 35 + 2 * 1044);
    assert!(first == second, "seeded runs wrote different bytes");

    let other = connection(&KeySource::seeded(1), &KeySource::seeded(3)).await;
    assert_eq!(other.0[..35], first.0[..35], "A's key comes from A's seed");
    assert_ne!(other.1[..35], first.1[..35], "B's key comes from B's seed");
    assert_ne!(
        other.0, first.0,
        "a new session key changes everything A sends"
    );
}

#[tokio::test]
async fn the_default_source_is_the_os() {
    assert_eq!(Config::default().get_key_source(), &KeySource::os());
    let os = KeySource::default();
    let first = connection(&os, &os).await;
    let second = connection(&os, &os).await;
    assert_ne!(first.0[..35], second.0[..35]);
    assert_ne!(first.1[..35], second.1[..35]);
    assert_ne!(first.0[..35], first.1[..35]);
}

/// Several connections in a row, all drawing from one shared source.
async fn network(keys: KeySource) -> Vec<Transcripts> {
    let mut out = Vec::new();
    for _ in 0..4 {
        out.push(connection(&keys, &keys).await);
    }
    out
}

#[tokio::test]
async fn one_source_shared_by_many_connections_is_deterministic() {
    for spare in [false, true] {
        let source = || {
            let keys = KeySource::seeded(42);
            if spare { keys.with_spare() } else { keys }
        };
        let first = network(source()).await;
        let second = network(source()).await;
        assert!(first == second, "spare {spare}: runs differ");
        // Every handshake got a key of its own.
        let mut keys: Vec<&[u8]> = first
            .iter()
            .flat_map(|(a, b)| [&a[..35], &b[..35]])
            .collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), 8, "spare {spare}");
        assert!(first != network(KeySource::seeded(43)).await);
    }
    // With or without a spare, the n-th handshake gets the n-th key.
    assert!(
        network(KeySource::seeded(42)).await == network(KeySource::seeded(42).with_spare()).await
    );
}

#[cfg(unix)]
fn blocking_connection(a_keys: KeySource, b_keys: KeySource) -> Transcripts {
    use p2p_secretconn::blocking::SecretStream as Blocking;
    use std::io::{Read as _, Write as _};
    use std::os::unix::net::UnixStream;

    let (x, y) = UnixStream::pair().unwrap();
    let (x, a_log) = Recorder::new(x);
    let (y, b_log) = Recorder::new(y);
    let other = std::thread::spawn(move || {
        let mut b =
            Blocking::handshake_with(y, &NodeKey::from_seed([2; 32]), &config(&b_keys)).unwrap();
        let mut buf = [0u8; 5];
        b.read_exact(&mut buf).unwrap();
        b.write_all(b"world").unwrap();
    });
    let mut a =
        Blocking::handshake_with(x, &NodeKey::from_seed([1; 32]), &config(&a_keys)).unwrap();
    a.write_all(b"hello").unwrap();
    let mut buf = [0u8; 5];
    a.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"world");
    other.join().unwrap();
    let a_written = a_log.lock().unwrap().clone();
    let b_written = b_log.lock().unwrap().clone();
    (a_written, b_written)
}

#[cfg(unix)]
#[test]
fn blocking_adapter_is_deterministic_too() {
    let first = blocking_connection(KeySource::seeded(1), KeySource::seeded(2));
    assert_eq!(first.0.len(), 35 + 2 * 1044);
    assert!(first == blocking_connection(KeySource::seeded(1), KeySource::seeded(2)));
    assert!(first != blocking_connection(KeySource::seeded(1), KeySource::seeded(5)));
    let os = blocking_connection(KeySource::os(), KeySource::os());
    assert!(os != blocking_connection(KeySource::os(), KeySource::os()));
}
