//! Two SecretConnection endpoints over loopback TCP.
//!
//! Alice listens, Bob dials; both run the handshake, check who they are talking to, then
//! exchange a few messages and a 4 MiB stream in both directions at once, and print what
//! happened.
//!
//! ```text
//! cargo run --release -p p2p-secretconn --example loopback
//! ```

use std::time::Instant;

use p2p_secretconn::{Backend, Config, SecretStream};
use p2p_types::NodeKey;
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

const STREAM_LEN: usize = 4 * 1024 * 1024;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let alice_key = NodeKey::generate();
    let bob_key = NodeKey::generate();
    println!("alice is {}", alice_key.node_id());
    println!("bob   is {}", bob_key.node_id());
    println!("AEAD backend: {}", Backend::default().name());

    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    println!("alice listens on {addr}");

    let expected_bob = bob_key.node_id();
    let alice = tokio::spawn(async move {
        let (tcp, peer) = listener.accept().await?;
        // (A real node would also check the peer against the ID it expects, as below.)
        let started = Instant::now();
        let conn = SecretStream::handshake_with(tcp, &alice_key, &Config::default()).await?;
        println!(
            "alice: handshake with {peer} done in {:?}, peer proved it is {}",
            started.elapsed(),
            conn.remote_node_id()
        );
        if conn.remote_node_id() != expected_bob {
            return Err::<usize, BoxError>("not the node we expected".into());
        }
        run_side("alice", conn, b"hello bob, this is alice", 1).await
    });

    let tcp = TcpStream::connect(addr).await?;
    let conn = SecretStream::handshake(tcp, &bob_key).await?;
    println!(
        "bob:   connected, peer proved it is {}",
        conn.remote_node_id()
    );
    let bob = run_side("bob", conn, b"hi alice, bob here", 2).await?;
    let alice = alice.await??;
    println!(
        "done: alice received {} bytes, bob received {} bytes; every byte checked",
        alice, bob
    );
    Ok(())
}

/// Sends a greeting, prints the peer's, then streams STREAM_LEN pseudo-random bytes both ways
/// at once and checks what arrives against the peer's generator.
async fn run_side(
    who: &'static str,
    conn: SecretStream<TcpStream>,
    greeting: &'static [u8],
    seed: u8,
) -> Result<usize, BoxError> {
    let (mut rx, mut tx) = conn.split_with(TcpStream::into_split);

    let sender = tokio::spawn(async move {
        tx.write_all(&(greeting.len() as u32).to_le_bytes()).await?;
        tx.write_all(greeting).await?;
        let data = stream_bytes(seed);
        let started = Instant::now();
        tx.write_all(&data).await?;
        tx.flush().await?;
        Ok::<_, std::io::Error>(started.elapsed())
    });

    let mut len = [0u8; 4];
    rx.read_exact(&mut len).await?;
    let mut msg = vec![0u8; u32::from_le_bytes(len) as usize];
    rx.read_exact(&mut msg).await?;
    println!("{who:5}: received {:?}", String::from_utf8_lossy(&msg));

    let mut got = vec![0u8; STREAM_LEN];
    let started = Instant::now();
    rx.read_exact(&mut got).await?;
    let elapsed = started.elapsed();
    let peer_seed = if seed == 1 { 2 } else { 1 };
    let ok = Sha256::digest(&got) == Sha256::digest(stream_bytes(peer_seed));
    println!(
        "{who:5}: received a {} MiB stream in {elapsed:?} ({:.0} MiB/s while sending as much), checksum {}",
        STREAM_LEN >> 20,
        STREAM_LEN as f64 / elapsed.as_secs_f64() / (1024.0 * 1024.0),
        if ok { "ok" } else { "MISMATCH" }
    );
    sender.await??;
    if !ok {
        return Err("stream corrupted".into());
    }
    Ok(msg.len() + 4 + got.len())
}

fn stream_bytes(seed: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(STREAM_LEN);
    let mut block = Sha256::digest([seed]);
    while out.len() < STREAM_LEN {
        out.extend_from_slice(&block);
        block = Sha256::digest(block);
    }
    out
}
