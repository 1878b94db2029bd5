//! SecretConnection against the reference `conn.MakeSecretConnection`: both dial directions,
//! each side driving 1,000 messages of 1 byte to 64 KiB that the other echoes byte-exact.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail, ensure};
use p2p_secretconn::SecretStream;
use p2p_types::NodeKey;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use super::{Case, CaseResult};
use crate::data;
use crate::shim::{Shim, parse_ready};

const COUNT: usize = 1000;
const MAX_SIZE: usize = 64 * 1024;
const EVENT_TIMEOUT: Duration = Duration::from_secs(30);
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

pub(super) fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "secretconn/rust-dials-go/rust-drives",
            run: |bin| Box::pin(run(bin, Dial::RustDialsGo, Drive::Rust)),
        },
        Case {
            name: "secretconn/rust-dials-go/go-drives",
            run: |bin| Box::pin(run(bin, Dial::RustDialsGo, Drive::Go)),
        },
        Case {
            name: "secretconn/go-dials-rust/rust-drives",
            run: |bin| Box::pin(run(bin, Dial::GoDialsRust, Drive::Rust)),
        },
        Case {
            name: "secretconn/go-dials-rust/go-drives",
            run: |bin| Box::pin(run(bin, Dial::GoDialsRust, Drive::Go)),
        },
        Case {
            name: "secretconn/go-rejects-low-order-key",
            run: |bin| Box::pin(low_order_key(bin)),
        },
    ]
}

#[derive(Clone, Copy)]
enum Dial {
    RustDialsGo,
    GoDialsRust,
}

#[derive(Clone, Copy)]
enum Drive {
    Rust,
    Go,
}

fn our_key() -> NodeKey {
    NodeKey::from_seed(*b"p2p-rs conformance secretconn 01")
}

async fn run(bin: PathBuf, dial: Dial, drive: Drive) -> CaseResult {
    let key = our_key();
    let go_role = match drive {
        Drive::Rust => "echo",
        Drive::Go => "drive",
    };
    let mut args: Vec<String> = [
        "--role",
        go_role,
        "--count",
        &COUNT.to_string(),
        "--max-size",
        &MAX_SIZE.to_string(),
        "--seed",
        "7",
        "--log-level",
        "error",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();

    let (mut shim, tcp, go_id) = match dial {
        Dial::RustDialsGo => {
            args.extend(["--listen".into(), "127.0.0.1:0".into()]);
            args.extend(["--expect-id".into(), key.node_id().to_string()]);
            let mut shim = Shim::spawn(&bin, "secretconn", &args)?;
            let ready = parse_ready(&shim.expect("ready", EVENT_TIMEOUT).await?)?;
            let tcp = TcpStream::connect(&ready.addr)
                .await
                .with_context(|| format!("connecting to the shim at {}", ready.addr))?;
            (shim, tcp, ready.node_id)
        }
        Dial::GoDialsRust => {
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            let addr = listener.local_addr()?;
            args.extend(["--dial".into(), format!("{}@{addr}", key.node_id())]);
            args.extend(["--expect-id".into(), key.node_id().to_string()]);
            let mut shim = Shim::spawn(&bin, "secretconn", &args)?;
            let ready = parse_ready(&shim.expect("ready", EVENT_TIMEOUT).await?)?;
            let (tcp, _) = tokio::time::timeout(EVENT_TIMEOUT, listener.accept())
                .await
                .map_err(|_| anyhow!("the shim did not connect"))??;
            (shim, tcp, ready.node_id)
        }
    };

    let stream = SecretStream::handshake(tcp, &key)
        .await
        .context("handshake with the Go reference")?;
    ensure!(
        stream.remote_node_id() == go_id,
        "authenticated ID {} differs from the shim's {}",
        stream.remote_node_id(),
        go_id
    );
    let connected = shim.expect("connected", EVENT_TIMEOUT).await?;
    ensure!(
        connected["remote_id"] == key.node_id().to_string(),
        "the shim authenticated {} instead of our {}",
        connected["remote_id"],
        key.node_id()
    );

    let summary = match drive {
        Drive::Rust => {
            let (msgs, bytes) = tokio::time::timeout(RUN_TIMEOUT, drive_echo(stream, 99))
                .await
                .map_err(|_| anyhow!("driving timed out"))??;
            shim.expect_done(EVENT_TIMEOUT).await?;
            format!("{msgs} messages, {bytes} bytes echoed byte-exact by Go")
        }
        Drive::Go => {
            let echoed = tokio::time::timeout(RUN_TIMEOUT, echo(stream))
                .await
                .map_err(|_| anyhow!("echoing timed out"))??;
            let done = shim.expect_done(EVENT_TIMEOUT).await?;
            ensure!(
                done["messages"] == COUNT,
                "the shim verified {} messages, expected {COUNT}",
                done["messages"]
            );
            format!(
                "Go verified {} messages, {} bytes echoed by Rust ({echoed} bytes)",
                done["messages"], done["bytes"]
            )
        }
    };
    Ok(summary)
}

/// Sends `COUNT` random messages and checks each echo byte for byte, reading and writing
/// concurrently.
pub(crate) async fn drive_echo<T>(
    stream: SecretStream<T>,
    seed: u64,
) -> anyhow::Result<(usize, usize)>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let msgs = data::messages(seed, COUNT, MAX_SIZE);
    let total: usize = msgs.iter().map(Vec::len).sum();
    let (mut r, mut w) = stream.into_split();
    let to_send = msgs.clone();
    let writer = tokio::spawn(async move {
        for m in &to_send {
            w.write_all(m).await?;
            w.flush().await?;
        }
        anyhow::Ok(w)
    });
    let mut buf = Vec::new();
    for (i, m) in msgs.iter().enumerate() {
        buf.resize(m.len(), 0);
        r.read_exact(&mut buf)
            .await
            .with_context(|| format!("reading the echo of message {i}"))?;
        if let Some(off) = buf.iter().zip(m).position(|(a, b)| a != b) {
            bail!("echo of message {i} differs at offset {off}");
        }
    }
    let mut w = writer.await??;
    w.shutdown().await?;
    Ok((msgs.len(), total))
}

/// Echoes every byte back until the peer closes; returns the number of bytes echoed.
async fn echo<T: AsyncRead + AsyncWrite + Unpin>(
    mut stream: SecretStream<T>,
) -> anyhow::Result<usize> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0;
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => n,
            // The driver may reset the connection once it has verified everything.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => return Err(e).context("reading from the Go driver"),
        };
        stream.write_all(&buf[..n]).await?;
        stream.flush().await?;
        total += n;
    }
    Ok(total)
}

/// We send Go a low-order ephemeral key; the reference must abort the handshake.
async fn low_order_key(bin: PathBuf) -> CaseResult {
    let args: Vec<String> = [
        "--listen",
        "127.0.0.1:0",
        "--role",
        "echo",
        "--log-level",
        "error",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut shim = Shim::spawn(&bin, "secretconn", &args)?;
    let ready = parse_ready(&shim.expect("ready", EVENT_TIMEOUT).await?)?;
    let mut tcp = TcpStream::connect(&ready.addr).await?;
    let mut msg = vec![0x22, 0x0a, 0x20];
    msg.extend_from_slice(&[0u8; 32]);
    tcp.write_all(&msg).await?;
    let (ok, events) = shim.finish(EVENT_TIMEOUT).await?;
    let last = events.last().cloned().unwrap_or_default();
    ensure!(
        !ok && last["event"] == "error",
        "the reference accepted a low-order key (last event {last})"
    );
    Ok(format!("reference refused it: {}", last["error"]))
}
