//! The MConnection (`p2p-mconn` over `p2p-secretconn`) against the reference
//! `conn.NewMConnectionWithConfig` over the reference SecretConnection, over loopback TCP.
//!
//! Exchanges: three channels of different priorities, both dial directions, both drive
//! directions (one side sends a plan of messages of 1 byte to 64 KiB plus 1 MiB messages that
//! span 1024 packets, the other echoes each message on its channel), ping 200 ms / pong 100 ms
//! on both sides with a linger after the last echo so keepalive runs on an idle link too. Every
//! echo is checked byte for byte and in order per channel. A tap under our MConnection decodes
//! both directions independently: message packets must add up to exactly the computed bytes of
//! full 1024-byte pieces, the rest must be pings and pongs (each side must have sent and
//! answered several), our status counters must agree with it, and it measures how long our
//! pongs take (the reference drops a peer whose pong misses its 100 ms timeout).
//!
//! Negative and behavioural cases: pong timeouts on both sides against a silent peer, an
//! unknown channel rejected by either side with its reason, our send and receive rate limits
//! (measured over 5 s, changed at runtime), and a slow consumer on one of our channels that
//! must not stall the others or the keepalive (the reference's weak spot).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail, ensure};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use p2p_mconn::{
    ChannelDescriptor, ChannelReceiver, Error, MConnConfig, MConnection, Packet, PacketCodec,
};
use p2p_secretconn::SecretStream;
use p2p_types::NodeKey;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use super::{Case, CaseResult};
use crate::data::Rng;
use crate::shim::{Shim, parse_ready};

const EVENT_TIMEOUT: Duration = Duration::from_secs(30);
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// Channels of the exchange cases: (ID, priority), in registration order.
const CHANNELS: [(u8, u32); 3] = [(0x01, 1), (0x02, 5), (0x20, 10)];
const PAYLOAD: usize = 1024;
const COUNT: usize = 300;
const MAX_SIZE: usize = 64 * 1024;
const BIG_EVERY: usize = 50;
const BIG: usize = 1 << 20;
const PING: Duration = Duration::from_millis(200);
const PONG: Duration = Duration::from_millis(100);
const LINGER: Duration = Duration::from_secs(1);
/// The seed of the shim's plan when it drives.
const GO_SEED: u64 = 11;

pub(super) fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "mconn/rust-dials-go/rust-drives",
            run: |bin| Box::pin(exchange(bin, Dial::RustDialsGo, Drive::Rust)),
        },
        Case {
            name: "mconn/rust-dials-go/go-drives",
            run: |bin| Box::pin(exchange(bin, Dial::RustDialsGo, Drive::Go)),
        },
        Case {
            name: "mconn/go-dials-rust/rust-drives",
            run: |bin| Box::pin(exchange(bin, Dial::GoDialsRust, Drive::Rust)),
        },
        Case {
            name: "mconn/go-dials-rust/go-drives",
            run: |bin| Box::pin(exchange(bin, Dial::GoDialsRust, Drive::Go)),
        },
        Case {
            name: "mconn/rust-pong-timeout-vs-silent-go",
            run: |bin| Box::pin(rust_pong_timeout(bin)),
        },
        Case {
            name: "mconn/go-pong-timeout-vs-silent-rust",
            run: |bin| Box::pin(go_pong_timeout(bin)),
        },
        Case {
            name: "mconn/go-rejects-unknown-channel",
            run: |bin| Box::pin(go_rejects_unknown_channel(bin)),
        },
        Case {
            name: "mconn/rust-rejects-unknown-channel",
            run: |bin| Box::pin(rust_rejects_unknown_channel(bin)),
        },
        Case {
            name: "mconn/rust-send-rate-vs-go",
            run: |bin| Box::pin(send_rate(bin)),
        },
        Case {
            name: "mconn/rust-recv-rate-vs-go",
            run: |bin| Box::pin(recv_rate(bin)),
        },
        Case {
            name: "mconn/rust-slow-consumer-keeps-keepalive",
            run: |bin| Box::pin(slow_consumer(bin)),
        },
    ]
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Dial {
    RustDialsGo,
    GoDialsRust,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Drive {
    Rust,
    Go,
}

fn our_key() -> NodeKey {
    NodeKey::from_seed(*b"p2p-rs conformance mconn      01")
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// `--channels` for the shim.
fn channel_flag(channels: &[(u8, u32)]) -> String {
    channels
        .iter()
        .map(|(id, p)| format!("{id:#04x}:{p}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn descriptors(channels: &[(u8, u32)]) -> Vec<ChannelDescriptor> {
    channels
        .iter()
        .map(|&(id, p)| {
            ChannelDescriptor::new(id, p)
                .send_queue_capacity(100)
                .recv_message_capacity(4 << 20)
        })
        .collect()
}

/// Our settings: rates off, the reference's flush throttle (that of the line the shim was
/// built against), fast keepalive.
fn config() -> MConnConfig {
    let mut c = MConnConfig::default();
    if let Ok(r) = crate::shim::reference() {
        c.flush_throttle(r.flush_throttle);
    }
    c.send_rate(0)
        .recv_rate(0)
        .max_packet_msg_payload_size(PAYLOAD)
        .ping_interval(PING)
        .pong_timeout(PONG);
    c
}

/// On failure, adds what the shim reported: its `error` event if it sends one soon, and the
/// tail of its stderr.
async fn explain<T>(shim: &mut Shim, r: anyhow::Result<T>) -> anyhow::Result<T> {
    let e = match r {
        Ok(v) => return Ok(v),
        Err(e) => e,
    };
    let mut error = Value::Null;
    while let Ok(v) = shim.next_event(Duration::from_secs(2)).await {
        if v["event"] == "error" {
            error = v;
            break;
        }
    }
    Err(e.context(format!(
        "the shim's error: {}\n--- shim stderr ---\n{}",
        error["error"],
        shim.stderr_tail()
    )))
}

/// The shim's keepalive flags matching [`config`].
fn keepalive_flags() -> Vec<String> {
    strings(&[
        "--ping-interval",
        &format!("{}ms", PING.as_millis()),
        "--pong-timeout",
        &format!("{}ms", PONG.as_millis()),
    ])
}

type Secret = SecretStream<TcpStream>;

/// Starts the shim in `mode` with `args`, connects to it (or lets it connect to us), runs our
/// handshake and checks both authenticated IDs.
async fn connect(
    bin: &Path,
    mode: &str,
    dial: Dial,
    mut args: Vec<String>,
) -> anyhow::Result<(Shim, Secret)> {
    let key = our_key();
    args.extend(strings(&["--log-level", "error"]));
    args.extend(["--expect-id".into(), key.node_id().to_string()]);
    let (mut shim, tcp, go_id) = match dial {
        Dial::RustDialsGo => {
            args.extend(strings(&["--listen", "127.0.0.1:0"]));
            let mut shim = Shim::spawn(bin, mode, &args)?;
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
            let mut shim = Shim::spawn(bin, mode, &args)?;
            let ready = parse_ready(&shim.expect("ready", EVENT_TIMEOUT).await?)?;
            let (tcp, _) = tokio::time::timeout(EVENT_TIMEOUT, listener.accept())
                .await
                .map_err(|_| anyhow!("the shim did not connect"))??;
            (shim, tcp, ready.node_id)
        }
    };
    tcp.set_nodelay(true)?;
    let stream = SecretStream::handshake(tcp, &key)
        .await
        .context("SecretConnection handshake with the Go reference")?;
    ensure!(
        stream.remote_node_id() == go_id,
        "authenticated ID {} differs from the shim's {go_id}",
        stream.remote_node_id()
    );
    let connected = shim.expect("connected", EVENT_TIMEOUT).await?;
    ensure!(
        connected["remote_id"] == key.node_id().to_string(),
        "the shim authenticated {} instead of our {}",
        connected["remote_id"],
        key.node_id()
    );
    Ok((shim, stream))
}

fn spawn_mconn(
    stream: Secret,
    channels: &[ChannelDescriptor],
    config: MConnConfig,
) -> anyhow::Result<(MConnection, Vec<ChannelReceiver>)> {
    let (r, w) = stream.split_with(TcpStream::into_split);
    let (conn, rxs) =
        MConnection::spawn(r, w, channels, config).context("starting our MConnection")?;
    Ok((conn, rxs.into_iter().collect()))
}

/// Like [`spawn_mconn`], with both directions tapped: every byte our connection writes and
/// reads (the plaintext inside the SecretConnection) is decoded independently and tallied.
fn spawn_tapped(
    stream: Secret,
    channels: &[ChannelDescriptor],
    config: MConnConfig,
) -> anyhow::Result<(MConnection, Vec<ChannelReceiver>, Taps)> {
    let (r, w) = stream.split_with(TcpStream::into_split);
    let taps = Taps::default();
    let r = Tap::new(r, taps.read.clone());
    let w = Tap::new(w, taps.write.clone());
    let (conn, rxs) =
        MConnection::spawn(r, w, channels, config).context("starting our MConnection")?;
    Ok((conn, rxs.into_iter().collect(), taps))
}

/// What a tap saw in one direction.
#[derive(Clone, Debug, Default)]
struct Tally {
    bytes: u64,
    pings: u64,
    pongs: u64,
    msg_packets: u64,
    /// Wire bytes of message packets, length prefixes included.
    msg_wire: u64,
    /// Packets with `eof` set (complete messages).
    messages: u64,
    /// Pieces without `eof` shorter than the full payload (the reference never sends one).
    short_pieces: u64,
    error: Option<String>,
}

/// When the oldest unanswered ping from the peer came in, and the longest we took to write a
/// pong after one came in.
#[derive(Debug, Default)]
struct PongClock {
    ping_since: Option<Instant>,
    max_delay: Duration,
    /// How long the peer's oldest unanswered ping had waited when the peer closed.
    unanswered_at_eof: Option<Duration>,
}

impl Tally {
    fn check(&self, what: &str) -> anyhow::Result<()> {
        match &self.error {
            Some(e) => bail!("{what}: the tap could not decode the stream: {e}"),
            None => Ok(()),
        }
    }
}

#[derive(Clone)]
struct Taps {
    read: Arc<Mutex<TapState>>,
    write: Arc<Mutex<TapState>>,
    pongs: Arc<Mutex<PongClock>>,
}

impl Default for Taps {
    fn default() -> Self {
        let pongs = Arc::new(Mutex::new(PongClock::default()));
        let state = || {
            Arc::new(Mutex::new(TapState {
                buf: BytesMut::new(),
                codec: PacketCodec::new(p2p_mconn::max_packet_size(PAYLOAD)),
                tally: Tally::default(),
                pongs: pongs.clone(),
            }))
        };
        Self {
            read: state(),
            write: state(),
            pongs,
        }
    }
}

impl Taps {
    /// The longest time between a ping coming in and our pong going out, and a ping left
    /// unanswered when the peer closed.
    fn pong_report(&self) -> String {
        let c = lock(&self.pongs);
        let mut s = format!("our slowest pong went {:?} after the ping", c.max_delay);
        if let Some(d) = c.unanswered_at_eof {
            s += &format!("; when the peer closed, its ping had waited {d:?} for our pong");
        }
        s
    }

    fn read(&self) -> Tally {
        lock(&self.read).tally.clone()
    }
    fn write(&self) -> Tally {
        lock(&self.write).tally.clone()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

struct TapState {
    buf: BytesMut,
    codec: PacketCodec,
    tally: Tally,
    pongs: Arc<Mutex<PongClock>>,
}

impl TapState {
    fn feed(&mut self, data: &[u8]) {
        if self.tally.error.is_some() {
            return;
        }
        self.tally.bytes += data.len() as u64;
        self.buf.extend_from_slice(data);
        loop {
            match self.codec.decode_packet(&mut self.buf) {
                Ok(None) => break,
                Ok(Some(p)) => {
                    let t = &mut self.tally;
                    match p {
                        // The read tap sees the peer's pings, the write tap our pongs.
                        Packet::Ping => {
                            t.pings += 1;
                            lock(&self.pongs)
                                .ping_since
                                .get_or_insert_with(Instant::now);
                        }
                        Packet::Pong => {
                            t.pongs += 1;
                            let mut c = lock(&self.pongs);
                            if let Some(since) = c.ping_since.take() {
                                c.max_delay = c.max_delay.max(since.elapsed());
                            }
                        }
                        Packet::Msg(m) => {
                            t.msg_packets += 1;
                            t.msg_wire += self.codec.last_len() as u64;
                            if m.eof {
                                t.messages += 1;
                            } else if m.data.len() < PAYLOAD {
                                t.short_pieces += 1;
                            }
                        }
                        other => {
                            t.error = Some(format!("unexpected packet {other:?}"));
                            break;
                        }
                    }
                }
                Err(e) => {
                    self.tally.error = Some(e.to_string());
                    break;
                }
            }
        }
    }
}

/// An IO half that decodes the MConnection packets going through it.
struct Tap<T> {
    inner: T,
    state: Arc<Mutex<TapState>>,
}

impl<T> Tap<T> {
    fn new(inner: T, state: Arc<Mutex<TapState>>) -> Self {
        Self { inner, state }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Tap<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let room = buf.remaining() > 0;
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = r {
            let mut state = lock(&self.state);
            if room && buf.filled().len() == before {
                let mut c = lock(&state.pongs);
                c.unanswered_at_eof = c.ping_since.map(|t| t.elapsed());
            }
            state.feed(&buf.filled()[before..]);
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Tap<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        if let Poll::Ready(Ok(n)) = r {
            lock(&self.state).feed(&data[..n]);
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Bytes on the wire (length prefixes included) of one message of `len` bytes on `channel`,
/// cut into pieces of `PAYLOAD` bytes as both implementations do for channels below 0x80.
fn wire_len(channel: u8, len: usize) -> u64 {
    // `msg_packet_len` is the protobuf body; the uvarint length prefix comes on top.
    let packet = |eof, data| {
        let body = p2p_mconn::msg_packet_len(channel, eof, data);
        let prefix = if body < 0x80 {
            1
        } else if body < 0x4000 {
            2
        } else {
            3
        };
        (prefix + body) as u64
    };
    let piece = p2p_mconn::max_piece_len(channel, PAYLOAD);
    if len == 0 {
        return packet(true, 0);
    }
    let full = (len - 1) / piece;
    full as u64 * packet(false, piece) + packet(true, len - full * piece)
}

/// One planned message.
#[derive(Clone)]
struct Msg {
    index: usize,
    channel: u8,
    data: Bytes,
}

/// `count` messages of 1..=`max` bytes (every `big_every`-th exactly 1 MiB) on random channels.
fn plan(seed: u64, count: usize, max: usize, big_every: usize, channels: &[u8]) -> Vec<Msg> {
    let mut rng = Rng(seed);
    (0..count)
        .map(|index| {
            let mut len = rng.range(1, max);
            if big_every > 0 && (index + 1) % big_every == 0 {
                len = BIG;
            }
            let channel = channels[rng.range(0, channels.len() - 1)];
            Msg {
                index,
                channel,
                data: Bytes::from(rng.bytes(len)),
            }
        })
        .collect()
}

/// Progress of a driver: per verified echo, when it came and the wire bytes echoed so far.
type Progress = Arc<Mutex<Vec<(Instant, u64)>>>;

/// Sends `plan` on `conn` and checks that every message comes back on its channel, in order
/// and byte for byte. Returns once every echo was verified.
async fn drive(
    conn: &MConnection,
    receivers: Vec<ChannelReceiver>,
    plan: Vec<Msg>,
    progress: Progress,
) -> anyhow::Result<()> {
    let mut checkers = tokio::task::JoinSet::new();
    for mut rx in receivers {
        let ch = rx.channel_id();
        let mut expected: VecDeque<Msg> =
            plan.iter().filter(|m| m.channel == ch).cloned().collect();
        let progress = progress.clone();
        checkers.spawn(async move {
            while let Some(want) = expected.pop_front() {
                let got = rx.recv().await.ok_or_else(|| {
                    anyhow!(
                        "channel {ch:#04x}: the connection ended before the echo of message {}",
                        want.index
                    )
                })?;
                if got != want.data {
                    let off = got
                        .iter()
                        .zip(want.data.iter())
                        .position(|(a, b)| a != b)
                        .unwrap_or(got.len().min(want.data.len()));
                    bail!(
                        "channel {ch:#04x}: echo of message {} differs at offset {off} ({} bytes, \
                         want {})",
                        want.index,
                        got.len(),
                        want.data.len()
                    );
                }
                let mut p = lock(&progress);
                let so_far = p.last().map_or(0, |l| l.1);
                p.push((Instant::now(), so_far + wire_len(ch, want.data.len())));
            }
            anyhow::Ok(())
        });
    }
    let sender = {
        let conn = conn.clone();
        tokio::spawn(async move {
            for m in plan {
                conn.send(m.channel, m.data)
                    .await
                    .with_context(|| format!("sending message {}", m.index))?;
            }
            anyhow::Ok(())
        })
    };
    while let Some(r) = checkers.join_next().await {
        if let Err(e) = r? {
            sender.abort();
            return Err(e.context(format!("our connection: {:?}", conn.outcome())));
        }
    }
    sender.await??;
    Ok(())
}

/// Echo statistics of our side.
#[derive(Default)]
struct Echoed {
    messages: u64,
    payload: u64,
    /// Wire bytes of the echoed messages (what we sent and received of them).
    wire: u64,
}

/// Echoes every message of every channel back on the same channel until the connection ends.
fn echo(
    conn: &MConnection,
    receivers: Vec<ChannelReceiver>,
    delay: impl Fn(u8) -> Duration,
) -> tokio::task::JoinHandle<anyhow::Result<Echoed>> {
    let mut set = tokio::task::JoinSet::new();
    for mut rx in receivers {
        let conn = conn.clone();
        let pause = delay(rx.channel_id());
        set.spawn(async move {
            let ch = rx.channel_id();
            tokio::time::sleep(pause).await;
            let mut e = Echoed::default();
            while let Some(m) = rx.recv().await {
                e.messages += 1;
                e.payload += m.len() as u64;
                e.wire += wire_len(ch, m.len());
                conn.send(ch, m)
                    .await
                    .with_context(|| format!("echoing on channel {ch:#04x}"))?;
            }
            anyhow::Ok(e)
        });
    }
    tokio::spawn(async move {
        let mut total = Echoed::default();
        while let Some(r) = set.join_next().await {
            let e = r??;
            total.messages += e.messages;
            total.payload += e.payload;
            total.wire += e.wire;
        }
        Ok(total)
    })
}

fn go_drive_args(channels: &[(u8, u32)], count: usize, big_every: usize) -> Vec<String> {
    let mut args = strings(&[
        "--role",
        "drive",
        "--channels",
        &channel_flag(channels),
        "--count",
        &count.to_string(),
        "--max-size",
        &MAX_SIZE.to_string(),
        "--big-every",
        &big_every.to_string(),
        "--seed",
        &GO_SEED.to_string(),
        "--linger",
        &format!("{}ms", LINGER.as_millis()),
    ]);
    args.extend(keepalive_flags());
    args
}

fn go_echo_args(channels: &[(u8, u32)]) -> Vec<String> {
    let mut args = strings(&["--role", "echo", "--channels", &channel_flag(channels)]);
    args.extend(keepalive_flags());
    args
}

async fn exchange(bin: PathBuf, dial: Dial, drive_side: Drive) -> CaseResult {
    let ids: Vec<u8> = CHANNELS.iter().map(|c| c.0).collect();
    let args = match drive_side {
        Drive::Rust => go_echo_args(&CHANNELS),
        Drive::Go => go_drive_args(&CHANNELS, COUNT, BIG_EVERY),
    };
    let (mut shim, stream) = connect(&bin, "mconn", dial, args).await?;
    let (conn, receivers, taps) = spawn_tapped(stream, &descriptors(&CHANNELS), config())?;
    let started = Instant::now();
    let pong_delay = || taps.pong_report();

    let (summary, sent, received, data) = match drive_side {
        Drive::Rust => {
            let plan = plan(99, COUNT, MAX_SIZE, BIG_EVERY, &ids);
            let data: u64 = plan.iter().map(|m| wire_len(m.channel, m.data.len())).sum();
            let payload: usize = plan.iter().map(|m| m.data.len()).sum();
            let progress = Progress::default();
            let run = async {
                tokio::time::timeout(RUN_TIMEOUT, drive(&conn, receivers, plan, progress))
                    .await
                    .map_err(|_| {
                        anyhow!("driving timed out; our connection: {:?}", conn.outcome())
                    })??;
                // Idle: only keepalive runs now; either side's 100 ms pong timeout would end it.
                let idle = taps.read();
                tokio::time::sleep(LINGER).await;
                ensure!(
                    conn.outcome().is_none(),
                    "our connection ended while lingering (after {} pings and {} pongs from the \
                     reference in {LINGER:?}; {}): {:?}",
                    taps.read().pings - idle.pings,
                    taps.read().pongs - idle.pongs,
                    taps.pong_report(),
                    conn.outcome()
                );
                let received = taps.read();
                tokio::time::timeout(EVENT_TIMEOUT, conn.flush_stop())
                    .await
                    .map_err(|_| anyhow!("flush_stop did not finish"))?
                    .context("flush_stop")?;
                anyhow::Ok((idle, received))
            };
            let (idle, received) = explain(&mut shim, run.await).await?;
            let st = conn.status();
            let sent = taps.write();
            ensure!(
                st.send.messages == COUNT as u64 && st.recv.messages == COUNT as u64,
                "our status counts {} messages sent and {} received, expected {COUNT} each",
                st.send.messages,
                st.recv.messages
            );
            ensure!(
                st.send.bytes == sent.bytes,
                "our status counts {} bytes sent, the tap saw {}",
                st.send.bytes,
                sent.bytes
            );
            let status = shim.expect("status", EVENT_TIMEOUT).await?;
            let done = shim.expect_done(EVENT_TIMEOUT).await?;
            ensure!(
                done["messages"] == COUNT && done["bytes"] == payload,
                "the shim echoed {} messages of {} bytes, expected {COUNT} of {payload}",
                done["messages"],
                done["bytes"]
            );
            // What Go read is what we wrote, except perhaps the last pings or pongs (the
            // reference's send routine may see the connection reset before its receive routine
            // has read them).
            let go_read = status["recv_monitor"]["bytes"].as_u64().unwrap_or(0);
            ensure!(
                go_read <= sent.bytes
                    && (sent.bytes - go_read) % 3 == 0
                    && (sent.bytes - go_read) / 3 <= 2,
                "the reference read {go_read} bytes, we wrote {}",
                sent.bytes
            );
            let idle_pings = received.pings - idle.pings;
            let summary = format!(
                "{COUNT} messages ({payload} bytes, {} of 1 MiB) on 3 channels echoed byte-exact \
                 in order by Go; Go read {go_read} of our {} bytes; {idle_pings} pings from Go \
                 while idle",
                COUNT / BIG_EVERY,
                sent.bytes
            );
            (summary, sent, received, data)
        }
        Drive::Go => {
            let echoer = echo(&conn, receivers, |_| Duration::ZERO);
            let status = shim
                .expect("status", RUN_TIMEOUT)
                .await
                .with_context(pong_delay)?;
            let done = shim
                .expect_done(EVENT_TIMEOUT)
                .await
                .with_context(pong_delay)?;
            ensure!(
                done["messages"] == COUNT,
                "the shim verified {} messages, expected {COUNT}",
                done["messages"]
            );
            let outcome = tokio::time::timeout(EVENT_TIMEOUT, conn.closed())
                .await
                .map_err(|_| anyhow!("our connection did not see the reference close"))?;
            // A reset instead of a clean close is the reference closing its socket while our
            // last ping or pong is still unread there: a race of the timers, not a defect.
            ensure!(
                match &outcome {
                    Err(Error::ClosedByPeer) => true,
                    Err(Error::Io(e)) => e.kind() == std::io::ErrorKind::ConnectionReset,
                    _ => false,
                },
                "our connection ended with {outcome:?}, expected ClosedByPeer (or a reset)"
            );
            let e = echoer.await??;
            ensure!(
                e.messages == COUNT as u64 && Some(e.payload) == done["bytes"].as_u64(),
                "we echoed {} messages of {} bytes; the shim verified {} of {}",
                e.messages,
                e.payload,
                done["messages"],
                done["bytes"]
            );
            let st = conn.status();
            let (sent, received) = (taps.write(), taps.read());
            ensure!(
                st.recv.bytes == received.bytes && st.send.bytes == sent.bytes,
                "our status counts {}/{} bytes sent/received, the taps saw {}/{}",
                st.send.bytes,
                st.recv.bytes,
                sent.bytes,
                received.bytes
            );
            let go_sent = status["send_monitor"]["bytes"].as_u64().unwrap_or(0);
            ensure!(
                go_sent <= received.bytes,
                "the reference's monitor counts {go_sent} bytes sent, we read only {}",
                received.bytes
            );
            let summary = format!(
                "Go's {COUNT} messages ({} bytes, {} of 1 MiB) on 3 channels echoed by Rust and \
                 verified by Go",
                e.payload,
                COUNT / BIG_EVERY,
            );
            (summary, sent, received, e.wire)
        }
    };
    sent.check("sent")?;
    received.check("received")?;
    for (what, t) in [("sent", &sent), ("received", &received)] {
        ensure!(
            t.messages == COUNT as u64 && t.msg_wire == data && t.short_pieces == 0,
            "{what}: {} messages in {} message packets of {} bytes ({} short pieces); expected \
             {COUNT} messages in {data} bytes of full pieces",
            t.messages,
            t.msg_packets,
            t.msg_wire,
            t.short_pieces
        );
        ensure!(
            t.bytes == t.msg_wire + 3 * (t.pings + t.pongs),
            "{what}: {} bytes are not {} of messages plus 3-byte pings and pongs",
            t.bytes,
            t.msg_wire
        );
    }
    // Each side pings every 200 ms and answers the other's pings. The bounds follow the
    // measured run time (a loaded machine makes the run longer and the timers later, never
    // the pings more frequent): at least every other interval has its ping, none has two, and
    // at least half of the pings get a pong, never more pongs than pings (the reference lets a
    // pong stand for several pings that came in before it could answer).
    let intervals = (started.elapsed().as_millis() / PING.as_millis()) as u64;
    for (who, pings, answers) in [
        ("we", sent.pings, received.pongs),
        ("the reference", received.pings, sent.pongs),
    ] {
        ensure!(
            pings >= (intervals / 2).max(3) && pings <= intervals + 1,
            "{who} sent {pings} pings in {intervals} ping intervals of {PING:?}; expected \
             between {} and {}",
            (intervals / 2).max(3),
            intervals + 1
        );
        ensure!(
            answers * 2 >= pings && answers <= pings,
            "{who} got {answers} pongs for {pings} pings"
        );
    }
    Ok(format!(
        "{summary}; keepalive over {intervals} intervals: we sent {} pings / {} pongs, Go {} / \
         {}; {}",
        sent.pings,
        sent.pongs,
        received.pings,
        received.pongs,
        pong_delay()
    ))
}

/// Go's shim in `secretconn --role sink` reads and never writes: our pings get no pong.
async fn rust_pong_timeout(bin: PathBuf) -> CaseResult {
    let (shim, stream) = connect(
        &bin,
        "secretconn",
        Dial::RustDialsGo,
        strings(&["--role", "sink"]),
    )
    .await?;
    let started = Instant::now();
    let (conn, _receivers) = spawn_mconn(stream, &descriptors(&CHANNELS), config())?;
    // A control timer of the same length on the same runtime: how late this machine fires
    // timers right now, so that the bound below allows for load without growing blind.
    let control = tokio::spawn(async move {
        tokio::time::sleep(PING + PONG).await;
        started.elapsed()
    });
    let outcome = tokio::time::timeout(Duration::from_secs(5), conn.closed())
        .await
        .map_err(|_| anyhow!("no pong timeout within 5 s"))?;
    let took = started.elapsed();
    let control = control.await?;
    ensure!(
        outcome == Err(Error::PongTimeout { timeout: PONG }),
        "our connection ended with {outcome:?}, expected a pong timeout"
    );
    // The first ping goes at PING, the timeout at PING + PONG.
    ensure!(
        took >= PING + PONG && took < control.max(PING + PONG) + Duration::from_millis(400),
        "the pong timeout came after {took:?}, expected {:?} (a {:?} control timer took \
         {control:?})",
        PING + PONG,
        PING + PONG
    );
    let (ok, events) = shim.finish(EVENT_TIMEOUT).await?;
    let read = events
        .iter()
        .find(|e| e["event"] == "done")
        .map(|e| e["bytes"].clone());
    ensure!(ok, "the sink failed: {events:?}");
    ensure!(
        read.as_ref().and_then(Value::as_u64) == Some(3),
        "the sink read {read:?} bytes, expected exactly our one 3-byte ping"
    );
    Ok(format!(
        "{outcome:?} after {took:?}; the reference read our one ping"
    ))
}

/// We complete the SecretConnection handshake and then neither read nor write: the reference
/// must give up with its pong timeout.
async fn go_pong_timeout(bin: PathBuf) -> CaseResult {
    let (shim, stream) = connect(&bin, "mconn", Dial::GoDialsRust, go_echo_args(&CHANNELS)).await?;
    let started = Instant::now();
    let (ok, events) = shim.finish(Duration::from_secs(10)).await?;
    let took = started.elapsed();
    drop(stream);
    let last = events.last().cloned().unwrap_or_default();
    ensure!(
        !ok && last["event"] == "error"
            && last["error"]
                .as_str()
                .unwrap_or("")
                .contains("pong timeout"),
        "the reference did not time out on a silent peer: success={ok}, last event {last}"
    );
    ensure!(
        took < Duration::from_secs(2),
        "the reference took {took:?} to time out"
    );
    Ok(format!("reference: {} after {took:?}", last["error"]))
}

/// We send on a channel the reference does not have: it must close with "unknown channel".
async fn go_rejects_unknown_channel(bin: PathBuf) -> CaseResult {
    let go_channels = &CHANNELS[..2];
    let (shim, stream) =
        connect(&bin, "mconn", Dial::RustDialsGo, go_echo_args(go_channels)).await?;
    let (conn, mut receivers) = spawn_mconn(stream, &descriptors(&CHANNELS), config())?;
    // A shared channel works...
    conn.send(0x02, Bytes::from_static(b"shared channel"))
        .await?;
    let echo = tokio::time::timeout(EVENT_TIMEOUT, receivers[1].recv())
        .await
        .map_err(|_| anyhow!("no echo on the shared channel"))?;
    ensure!(
        echo.as_deref() == Some(&b"shared channel"[..]),
        "wrong echo on the shared channel: {echo:?}"
    );
    // ...the other one ends the connection.
    conn.send(0x20, Bytes::from_static(b"not yours")).await?;
    let outcome = tokio::time::timeout(EVENT_TIMEOUT, conn.closed())
        .await
        .map_err(|_| anyhow!("the reference kept the connection open"))?;
    let (ok, events) = shim.finish(EVENT_TIMEOUT).await?;
    let last = events.last().cloned().unwrap_or_default();
    let reason = last["error"].as_str().unwrap_or("");
    ensure!(
        !ok && last["event"] == "error" && reason.contains("unknown channel 20"),
        "the reference did not reject channel 0x20: success={ok}, last event {last}"
    );
    ensure!(
        outcome.as_ref().is_err_and(Error::is_disconnect),
        "our connection ended with {outcome:?}, expected a disconnect"
    );
    Ok(format!("reference: {reason:?}; ours: {outcome:?}"))
}

/// The reference sends on a channel we do not have: we must close with `UnknownChannel`.
async fn rust_rejects_unknown_channel(bin: PathBuf) -> CaseResult {
    // Go plans over all three channels; we only register two. Go's plan puts a message on
    // 0x20 among its first few.
    let (shim, stream) = connect(
        &bin,
        "mconn",
        Dial::GoDialsRust,
        go_drive_args(&CHANNELS, 50, 0),
    )
    .await?;
    let (conn, receivers) = spawn_mconn(stream, &descriptors(&CHANNELS[..2]), config())?;
    let echoer = echo(&conn, receivers, |_| Duration::ZERO);
    let outcome = tokio::time::timeout(EVENT_TIMEOUT, conn.closed())
        .await
        .map_err(|_| anyhow!("our connection accepted channel 0x20"))?;
    ensure!(
        outcome == Err(Error::UnknownChannel { channel: 0x20 }),
        "our connection ended with {outcome:?}, expected UnknownChannel {{ channel: 32 }}"
    );
    let reason = outcome
        .as_ref()
        .err()
        .map(ToString::to_string)
        .unwrap_or_default();
    let (ok, events) = shim.finish(EVENT_TIMEOUT).await?;
    let last = events.last().cloned().unwrap_or_default();
    ensure!(
        !ok && last["event"] == "error",
        "the reference did not notice: success={ok}, last event {last}"
    );
    let e = echoer.await??;
    Ok(format!(
        "ours: {reason:?} (after echoing {} messages); reference: {}",
        e.messages, last["error"]
    ))
}

/// The configured rate of the rate cases, in bytes per second.
const RATE: u64 = 1_000_000;
/// The measured window of the rate cases.
const WINDOW: Duration = Duration::from_secs(5);
/// Time before the window, to skip the initial burst.
const WARMUP: Duration = Duration::from_secs(1);

/// The average rate between the first sample at or after `from` and the last one at or before
/// `to`.
fn window_rate(samples: &[(Instant, u64)], from: Instant, to: Instant) -> anyhow::Result<f64> {
    let a = samples
        .iter()
        .find(|s| s.0 >= from)
        .ok_or_else(|| anyhow!("no sample after the warm-up"))?;
    let b = samples
        .iter()
        .rev()
        .find(|s| s.0 <= to)
        .ok_or_else(|| anyhow!("no sample in the window"))?;
    let secs = b.0.saturating_duration_since(a.0).as_secs_f64();
    ensure!(secs > 3.0, "the window holds only {secs:.2} s of samples");
    Ok((b.1 - a.1) as f64 / secs)
}

/// We drive with a send limit against an unlimited reference echo: the echoes come back at our
/// send rate, within 5 % over 5 s; then the limit is lifted at runtime and the rest goes fast.
async fn send_rate(bin: PathBuf) -> CaseResult {
    let (shim, stream) = connect(&bin, "mconn", Dial::RustDialsGo, go_echo_args(&CHANNELS)).await?;
    let mut cfg = config();
    cfg.send_rate(RATE);
    let (conn, receivers) = spawn_mconn(stream, &descriptors(&CHANNELS), cfg)?;
    let ids: Vec<u8> = CHANNELS.iter().map(|c| c.0).collect();
    // About 10 MB: 10 s at the limit, far more than the window.
    let plan = plan(5, 300, MAX_SIZE, 0, &ids);
    let progress = Progress::default();
    let started = Instant::now();
    let driver = {
        let (conn, progress) = (conn.clone(), progress.clone());
        tokio::spawn(async move { drive(&conn, receivers, plan, progress).await })
    };
    tokio::time::sleep(WARMUP).await;
    let s0 = (Instant::now(), conn.status().send.bytes);
    tokio::time::sleep(WINDOW).await;
    let s1 = (Instant::now(), conn.status().send.bytes);
    ensure!(
        !driver.is_finished(),
        "the plan was sent before the window ended"
    );
    conn.set_send_rate(0);
    let lifted = Instant::now();
    tokio::time::timeout(RUN_TIMEOUT, driver)
        .await
        .map_err(|_| anyhow!("the rest did not come back after lifting the limit"))???;
    let rest = lifted.elapsed();
    let ours = (s1.1 - s0.1) as f64 / (s1.0 - s0.0).as_secs_f64();
    let echoed = {
        let p = lock(&progress);
        window_rate(&p, started + WARMUP, lifted)?
    };
    tokio::time::timeout(EVENT_TIMEOUT, conn.flush_stop())
        .await
        .map_err(|_| anyhow!("flush_stop did not finish"))??;
    shim.expect_done(EVENT_TIMEOUT).await?;
    for (what, r) in [
        ("our send counter", ours),
        ("the reference's echoes", echoed),
    ] {
        ensure!(
            (r / RATE as f64 - 1.0).abs() <= 0.05,
            "{what}: {r:.0} B/s over the window, limit {RATE} B/s"
        );
    }
    ensure!(
        rest < Duration::from_secs(4),
        "after lifting the limit the rest took {rest:?}"
    );
    Ok(format!(
        "limit {RATE} B/s: {ours:.0} B/s sent, {echoed:.0} B/s echoed back by Go over {WINDOW:?}; \
         limit lifted at runtime, the rest took {rest:?}"
    ))
}

/// The reference drives unlimited; we echo with a receive limit: we read at our rate, within
/// 5 % over 5 s; then the limit is lifted at runtime and the rest goes fast.
///
/// Keepalive stays at the defaults on both sides here: a ping or pong sits in the byte stream
/// behind the megabytes the reference has buffered, which we read at 1 MB/s, so it arrives
/// seconds late (in the reference as much as here: nothing can overtake data in a stream).
async fn recv_rate(bin: PathBuf) -> CaseResult {
    // About 10 MB from Go.
    let mut args = go_drive_args(&CHANNELS, 300, 0);
    let ka = args
        .iter()
        .position(|a| a == "--ping-interval")
        .ok_or_else(|| anyhow!("no keepalive flags"))?;
    args.drain(ka..ka + 4);
    let (mut shim, stream) = connect(&bin, "mconn", Dial::GoDialsRust, args).await?;
    let mut cfg = config();
    cfg.recv_rate(RATE)
        .ping_interval(Duration::from_secs(60))
        .pong_timeout(Duration::from_secs(45));
    let (conn, receivers, taps) = spawn_tapped(stream, &descriptors(&CHANNELS), cfg)?;
    let echoer = echo(&conn, receivers, |_| Duration::ZERO);
    tokio::time::sleep(WARMUP).await;
    let s0 = (Instant::now(), conn.status().recv.bytes, taps.read().bytes);
    tokio::time::sleep(WINDOW).await;
    let s1 = (Instant::now(), conn.status().recv.bytes, taps.read().bytes);
    ensure!(
        conn.outcome().is_none(),
        "ended early: {:?}",
        conn.outcome()
    );
    conn.set_recv_rate(0);
    let lifted = Instant::now();
    shim.expect("status", RUN_TIMEOUT).await?;
    let rest = lifted.elapsed().saturating_sub(LINGER);
    let done = shim.expect_done(EVENT_TIMEOUT).await?;
    let _ = tokio::time::timeout(EVENT_TIMEOUT, conn.closed()).await;
    let e = echoer.await??;
    ensure!(
        done["messages"] == 300 && e.messages == 300,
        "Go verified {} messages, we echoed {}",
        done["messages"],
        e.messages
    );
    let secs = (s1.0 - s0.0).as_secs_f64();
    let ours = (s1.1 - s0.1) as f64 / secs;
    // What actually came out of the SecretConnection (in reads of up to 64 KiB).
    let tapped = (s1.2 - s0.2) as f64 / secs;
    for (what, r) in [("our receive counter", ours), ("the tap", tapped)] {
        ensure!(
            (r / RATE as f64 - 1.0).abs() <= 0.05,
            "{what}: {r:.0} B/s over the window, limit {RATE} B/s"
        );
    }
    ensure!(
        rest < Duration::from_secs(4),
        "after lifting the limit the rest took {rest:?}"
    );
    Ok(format!(
        "limit {RATE} B/s: we read {ours:.0} B/s ({tapped:.0} B/s at the tap) from an \
         unlimited reference over {WINDOW:?}; limit lifted at runtime, the rest took {rest:?}"
    ))
}

/// The reference drives with a 100 ms pong timeout while our consumer of channel 0x01 sleeps
/// 1.5 s: the other channels keep echoing and our pongs keep coming, so the reference never
/// times out (in the reference itself, a reactor that slow would stall everything).
async fn slow_consumer(bin: PathBuf) -> CaseResult {
    const STALL: Duration = Duration::from_millis(1500);
    let count = 300;
    let (shim, stream) = connect(
        &bin,
        "mconn",
        Dial::GoDialsRust,
        go_drive_args(&CHANNELS, count, 0),
    )
    .await?;
    // Room for everything Go sends on 0x01 while its consumer sleeps.
    let channels: Vec<ChannelDescriptor> = descriptors(&CHANNELS)
        .into_iter()
        .map(|d| d.recv_queue_capacity(16 << 20))
        .collect();
    let (conn, receivers) = spawn_mconn(stream, &channels, config())?;
    let started = Instant::now();
    let echoer = echo(&conn, receivers, |ch| {
        if ch == 0x01 { STALL } else { Duration::ZERO }
    });
    tokio::time::sleep(STALL - Duration::from_millis(100)).await;
    let mid = conn.status();
    let stalled = mid.channels[0].recv_queue_bytes;
    let others = mid.send.messages;
    let done = shim.expect_done(RUN_TIMEOUT).await?;
    let took = started.elapsed();
    let e = echoer.await??;
    ensure!(
        done["messages"] == count && e.messages == count as u64,
        "Go verified {} messages, we echoed {}",
        done["messages"],
        e.messages
    );
    ensure!(
        stalled > 0 && others > 0,
        "during the stall {stalled} bytes waited on 0x01 and {others} messages were echoed on \
         the other channels; both should be positive"
    );
    Ok(format!(
        "0x01 consumer asleep {STALL:?}: meanwhile {others} messages echoed on 0x02/0x20 and \
         {stalled} bytes queued on 0x01; Go (pong timeout {PONG:?}) verified all {count} in \
         {took:?}"
    ))
}
