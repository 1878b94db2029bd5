//! The async and blocking adapters as byte streams: arbitrary chunking, split halves, both
//! directions at once.

mod common;

use common::Rng;
use p2p_secretconn::{Backend, Config, SecretStream};
use p2p_types::NodeKey;
use proptest::prelude::*;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _, DuplexStream, duplex};

async fn pair(
    capacity: usize,
    config: &Config,
) -> (SecretStream<DuplexStream>, SecretStream<DuplexStream>) {
    let (a, b) = duplex(capacity);
    let (ka, kb) = (NodeKey::from_seed([1; 32]), NodeKey::from_seed([2; 32]));
    let c2 = config.clone();
    let other =
        tokio::spawn(async move { SecretStream::handshake_with(b, &kb, &c2).await.unwrap() });
    let first = SecretStream::handshake_with(a, &ka, config).await.unwrap();
    (first, other.await.unwrap())
}

/// Sends `data` cut at `writes` sizes and reads it back with `reads` sizes.
async fn transfer(
    capacity: usize,
    data: Vec<u8>,
    writes: Vec<usize>,
    reads: Vec<usize>,
    backend: Backend,
) {
    let mut config = Config::default();
    config
        .backend(backend)
        .read_buffer_frames(2)
        .write_buffer_frames(3);
    let (mut a, mut b) = pair(capacity, &config).await;
    let expected = data.clone();
    let writer = tokio::spawn(async move {
        let mut pos = 0;
        let mut sizes = writes.into_iter().cycle();
        while pos < data.len() {
            let n = sizes.next().unwrap_or(1).max(1).min(data.len() - pos);
            a.write_all(&data[pos..pos + n]).await.unwrap();
            pos += n;
        }
        a.shutdown().await.unwrap();
    });
    let mut got = Vec::new();
    let mut sizes = reads.into_iter().cycle();
    loop {
        let mut buf = vec![0u8; sizes.next().unwrap_or(1).max(1)];
        let n = b.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    writer.await.unwrap();
    assert_eq!(got.len(), expected.len());
    assert!(got == expected, "stream corrupted");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Whatever the write sizes, read sizes and transport buffer, the bytes arrive intact.
    #[test]
    fn arbitrary_chunking(
        len in 0usize..20_000,
        writes in prop::collection::vec(1usize..5000, 1..8),
        reads in prop::collection::vec(1usize..5000, 1..8),
        capacity in 1usize..4096,
        seed: u64,
    ) {
        let data = Rng(seed).bytes(len);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(transfer(capacity, data, writes, reads, Backend::default()));
    }
}

#[tokio::test]
async fn every_backend_streams() {
    for &backend in Backend::all() {
        let data = Rng(3).bytes(100_000);
        transfer(
            8192,
            data,
            vec![777, 1024, 1, 5000],
            vec![333, 4096],
            backend,
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_halves_full_duplex() {
    let (a, b) = pair(16 * 1024, &Config::default()).await;
    let (mut ar, mut aw) = a.into_split();
    let (mut br, mut bw) = b.into_split();
    let a_data = Rng(1).bytes(1 << 20);
    let b_data = Rng(2).bytes(1 << 20);
    let (a2, b2) = (a_data.clone(), b_data.clone());
    let wa = tokio::spawn(async move {
        aw.write_all(&a2).await.unwrap();
        aw.flush().await.unwrap();
        aw
    });
    let wb = tokio::spawn(async move {
        bw.write_all(&b2).await.unwrap();
        bw.flush().await.unwrap();
        bw
    });
    let mut got_b = vec![0u8; b_data.len()];
    let mut got_a = vec![0u8; a_data.len()];
    let (ra, rb) = tokio::join!(ar.read_exact(&mut got_b), br.read_exact(&mut got_a));
    ra.unwrap();
    rb.unwrap();
    wa.await.unwrap();
    wb.await.unwrap();
    assert!(got_a == a_data);
    assert!(got_b == b_data);
}

#[tokio::test]
async fn identities_are_reported() {
    let (a, b) = pair(4096, &Config::default()).await;
    assert_eq!(a.remote_node_id(), NodeKey::from_seed([2; 32]).node_id());
    assert_eq!(b.remote_node_id(), NodeKey::from_seed([1; 32]).node_id());
    assert_eq!(
        a.remote().public_key(),
        &NodeKey::from_seed([2; 32]).public_key()
    );
}

#[tokio::test]
async fn small_write_goes_out_without_flush() {
    // A write smaller than the transport buffer goes out immediately (eager write).
    let (mut a, mut b) = pair(64 * 1024, &Config::default()).await;
    a.write_all(b"no flush needed here").await.unwrap();
    let mut buf = [0u8; 20];
    b.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"no flush needed here");
}

#[cfg(unix)]
#[test]
fn blocking_adapter_split_across_threads() {
    use p2p_secretconn::blocking::SecretStream as Blocking;
    use std::io::{Read as _, Write as _};
    use std::os::unix::net::UnixStream;

    let (x, y) = UnixStream::pair().unwrap();
    let other = std::thread::spawn(move || {
        let s = Blocking::handshake(y, &NodeKey::from_seed([2; 32])).unwrap();
        // Echo everything back.
        let (mut r, mut w) = s.try_split().unwrap();
        let mut buf = [0u8; 3000];
        loop {
            let n = r.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            w.write_all(&buf[..n]).unwrap();
        }
    });
    let s = Blocking::handshake(x, &NodeKey::from_seed([1; 32])).unwrap();
    assert_eq!(s.remote_node_id(), NodeKey::from_seed([2; 32]).node_id());
    let (mut r, mut w) = s.try_split().unwrap();
    let data = Rng(9).bytes(300_000);
    let d2 = data.clone();
    let writer = std::thread::spawn(move || {
        w.write_all(&d2).unwrap();
        w
    });
    let mut got = vec![0u8; data.len()];
    r.read_exact(&mut got).unwrap();
    assert!(got == data);
    let w = writer.join().unwrap();
    drop(w);
    drop(r);
    other.join().unwrap();
}
