//! Interop with the independent Rust implementation in `tendermint-p2p`, over loopback TCP, in
//! both dial directions: 10 MiB each way at the same time, random write sizes, every byte
//! checked with a SHA-256 of the whole stream against the sender's.
//!
//! `tendermint-p2p` panics when handed a read buffer smaller than a frame's data, so we read
//! from it 1024 bytes at a time.

mod common;

use std::io::{Read as _, Write as _};
use std::net::SocketAddr;

use common::Rng;
use p2p_secretconn::SecretStream;
use p2p_types::{NodeId, NodeKey};
use sha2::{Digest as _, Sha256};
use tendermint_p2p::secret_connection::{PublicKey as TmPublicKey, SecretConnection, Version};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

const TOTAL: usize = 10 * 1024 * 1024;
const MAX_WRITE: usize = 64 * 1024;

fn tm_key(seed: u8) -> ed25519_consensus::SigningKey {
    ed25519_consensus::SigningKey::from([seed; 32])
}

fn tm_node_id(seed: u8) -> NodeId {
    NodeId::from_public_key_bytes(tm_key(seed).verification_key().as_ref().try_into().unwrap())
}

/// The stream one side sends: TOTAL bytes from `seed`, cut into random write sizes.
fn writes(seed: u64) -> impl Iterator<Item = Vec<u8>> {
    let mut sizes = Rng(seed ^ 0xabcd);
    let mut data = Rng(seed);
    let mut left = TOTAL;
    std::iter::from_fn(move || {
        (left > 0).then(|| {
            let n = sizes.range(1, MAX_WRITE).min(left);
            left -= n;
            data.bytes(n)
        })
    })
}

fn expected_digest(seed: u64) -> [u8; 32] {
    let mut h = Sha256::new();
    for w in writes(seed) {
        h.update(&w);
    }
    h.finalize().into()
}

/// Runs the tendermint-p2p side on a thread: handshake, then send our stream and receive theirs.
fn run_tm(tcp: std::net::TcpStream, seed_key: u8, send_seed: u64) -> ([u8; 32], NodeId) {
    let sc = SecretConnection::new(tcp, tm_key(seed_key), Version::V0_34).unwrap();
    let TmPublicKey::Ed25519(remote) = sc.remote_pubkey();
    let remote_id = NodeId::from_public_key_bytes(remote.as_ref().try_into().unwrap());
    let (mut tx, mut rx) = sc.split().unwrap();
    let writer = std::thread::spawn(move || {
        for w in writes(send_seed) {
            tx.write_all(&w).unwrap();
        }
        tx.flush().unwrap();
        tx
    });
    let mut hash = Sha256::new();
    let mut got = 0;
    let mut buf = [0u8; 1024];
    while got < TOTAL {
        let n = rx.read(&mut buf).unwrap();
        assert!(n > 0, "tendermint-p2p side saw EOF after {got} bytes");
        hash.update(&buf[..n]);
        got += n;
    }
    let _tx = writer.join().unwrap();
    (hash.finalize().into(), remote_id)
}

/// Runs our side: send our stream and receive theirs concurrently on split halves.
async fn run_ours(tcp: TcpStream, key: &NodeKey, send_seed: u64) -> ([u8; 32], NodeId) {
    let stream = SecretStream::handshake(tcp, key).await.unwrap();
    let remote = stream.remote_node_id();
    let (mut r, mut w) = stream.split_with(TcpStream::into_split);
    let writer = tokio::spawn(async move {
        for chunk in writes(send_seed) {
            w.write_all(&chunk).await.unwrap();
        }
        w.flush().await.unwrap();
        w
    });
    let mut hash = Sha256::new();
    let mut got = 0;
    // An odd buffer size, so reads do not line up with frames.
    let mut buf = vec![0u8; 37 * 1000];
    while got < TOTAL {
        let n = r.read(&mut buf).await.unwrap();
        assert!(n > 0, "our side saw EOF after {got} bytes");
        hash.update(&buf[..n]);
        got += n;
    }
    let _w = writer.await.unwrap();
    (hash.finalize().into(), remote)
}

async fn exchange(ours_listens: bool) {
    let ours = NodeKey::from_seed([1; 32]);
    let (ours_seed, tm_seed) = (11u64, 22u64);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let ((ours_got, ours_saw), (tm_got, tm_saw));
    if ours_listens {
        let tm = std::thread::spawn(move || {
            run_tm(std::net::TcpStream::connect(addr).unwrap(), 2, tm_seed)
        });
        let (tcp, _) = listener.accept().await.unwrap();
        (ours_got, ours_saw) = run_ours(tcp, &ours, ours_seed).await;
        (tm_got, tm_saw) = tokio::task::spawn_blocking(move || tm.join().unwrap())
            .await
            .unwrap();
    } else {
        let std_listener = listener.into_std().unwrap();
        std_listener.set_nonblocking(false).unwrap();
        let tm = std::thread::spawn(move || {
            let (tcp, _) = std_listener.accept().unwrap();
            run_tm(tcp, 2, tm_seed)
        });
        let tcp = TcpStream::connect(addr).await.unwrap();
        (ours_got, ours_saw) = run_ours(tcp, &ours, ours_seed).await;
        (tm_got, tm_saw) = tokio::task::spawn_blocking(move || tm.join().unwrap())
            .await
            .unwrap();
    }
    assert_eq!(ours_saw, tm_node_id(2));
    assert_eq!(tm_saw, ours.node_id());
    assert_eq!(
        ours_got,
        expected_digest(tm_seed),
        "what we received from tendermint-p2p"
    );
    assert_eq!(
        tm_got,
        expected_digest(ours_seed),
        "what tendermint-p2p received from us"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tendermint_p2p_dials_us() {
    exchange(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn we_dial_tendermint_p2p() {
    exchange(false).await;
}

/// The blocking adapter against tendermint-p2p (smaller stream).
#[test]
fn blocking_adapter_interop() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let tm = std::thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        let mut sc = SecretConnection::new(tcp, tm_key(3), Version::V0_34).unwrap();
        let mut buf = [0u8; 1024];
        let mut got = Vec::new();
        while got.len() < 5000 {
            let n = sc.read(&mut buf).unwrap();
            got.extend_from_slice(&buf[..n]);
        }
        sc.write_all(&got).unwrap();
        got
    });
    let tcp = std::net::TcpStream::connect(addr).unwrap();
    let key = NodeKey::from_seed([4; 32]);
    let mut ours = p2p_secretconn::blocking::SecretStream::handshake(tcp, &key).unwrap();
    assert_eq!(ours.remote_node_id(), tm_node_id(3));
    let data = Rng(5).bytes(5000);
    ours.write_all(&data).unwrap();
    let mut echo = vec![0u8; 5000];
    ours.read_exact(&mut echo).unwrap();
    assert_eq!(echo, data);
    assert_eq!(tm.join().unwrap(), data);
}
