//! Suite `mconn`: the multiplexed connection over a SecretConnection over loopback TCP.
//!
//! Figures and their references (all measured in this run):
//! - `throughput_1k`, `throughput_64k`: MiB/s of message payload from one `MConnection` to
//!   another, one channel, one direction, rates 0 (unlimited), messages of 1 KiB / 64 KiB, each
//!   side on its own thread with a current-thread runtime (the sender's thread runs the sending
//!   loop and the write task, the receiver's the read task and the receiving loop). The clock
//!   runs from the first `send` until the receiver has taken the last message. References:
//!   `secretconn` (plain `SecretStream`s in the same harness moving the same total bytes in
//!   writes of 64 KiB, the MConnection's largest write batch, and reads
//!   of 64 KiB: what the MConnection adds is the difference) and `go-cometbft` (the shim's
//!   `bench-mconn`: two reference MConnections, same messages, rates 0, flush throttle 100 ms).
//! - `latency_p99_loaded`: p99 latency, in µs, of 100-byte messages on a priority-10 channel
//!   while a priority-1 channel is kept saturated with 64 KiB messages. Reference
//!   `latency_p99_idle`: the same messages on an otherwise idle link. Also `latency_p50_loaded`
//!   against `latency_p50_idle`. Probes are spaced 12 to 16 ms apart with a 10 ms flush throttle
//!   (the reference's v1 value), so that the idle figure is the path's latency and not the
//!   throttle's (with probes closer than the throttle, an idle link holds each one back until
//!   the throttle allows a flush, in the reference too). Reference `go-cometbft` for
//!   `latency_p99_loaded`: the shim's `bench-mconn-latency`, two reference MConnections under
//!   the same load (Go's sockets, the kernel's defaults). Reference `latency_p99_separate_conn`
//!   (and `latency_p50_separate_conn`): the same load, with the probes on a second connection
//!   between the same two threads that carries nothing else. No scheduling inside a connection
//!   can do better than a connection of its own, so this is the machine's floor under the load
//!   (CPU time, task scheduling and the kernel, with both cores busy moving the bulk); where
//!   `latency_p99_loaded` is near it and far above `latency_p99_idle`, the gap is the machine's.
//! - `throughput_64k_wan`, `latency_p99_loaded_wan`, `latency_p50_loaded_wan`: the same over an
//!   emulated long link (`netem`: two network namespaces, 100 Mbit/s and 25 ms each way, by
//!   the netem qdisc on a veth where the kernel has it, else by a userspace delay line between
//!   TUN devices; its measured round trip is printed and must be 45 to 70 ms), against plain
//!   SecretStreams on the same link and the idle latency on it. Run only as root with `ip` and
//!   `tc`; printed as skipped otherwise.
//! - `throughput_64k_wan_paced`, `latency_p99_loaded_wan_paced`, `latency_p50_loaded_wan_paced`:
//!   the same with the MConnection's send rate at 85 % of the link's rate, so that the queue
//!   forms in the sender's scheduler (where priorities act) instead of the link's buffer.
//!   85 % of payload is about 90 % of the link once SecretConnection framing (about 2 %) and
//!   TCP/IP headers (about 3.6 %) are added; at 90 % of payload the link's own buffer fills
//!   again and the high-priority p99 triples.
//! - `idle_conn_bytes`: heap bytes held by one established, idle connection (SecretConnection
//!   plus MConnection with the channels of a v0.38 full node, `reference::full_node()`, both
//!   tasks spawned and parked), counted by the allocator over many connections. Reference
//!   `none` (ratio 1).

use std::alloc::System;
use std::net::TcpStream as StdStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, ensure};
use bytes::Bytes;
use p2p_mconn::{ChannelDescriptor, ChannelReceiver, MConnConfig, MConnection};
use p2p_secretconn::SecretStream;
use p2p_transport::SocketTuning;
use p2p_transport::socket::{self, LinkEstimate};
use p2p_types::NodeKey;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use super::{Report, Scale, best, current_thread, mib_per_s, netem, tcp_pair};
use crate::shim::{self, GoStatus};

/// The paced long-link lines' send rate, in percent of the link's rate.
const PACED_PERCENT: u64 = 85;

/// Counts every allocation of this process (a few relaxed atomic additions per allocation), so
/// that `idle_conn_bytes` can be measured exactly.
#[global_allocator]
pub(super) static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const SUITE: &str = "mconn";
const READ_CHUNK: usize = 64 * 1024;
/// Write size of the plain SecretStream reference (the reference's own write buffer).
const PLAIN_WRITE: usize = 64 * 1024;
const BULK: u8 = 0x01;
const PROBE: u8 = 0x20;
const PROBE_LEN: usize = 100;

pub fn run(report: &mut Report, scale: Scale) -> anyhow::Result<()> {
    let go = match shim::build()? {
        GoStatus::Ready(bin) => Some(bin),
        GoStatus::Unavailable(why) => {
            eprintln!("bench: the Go reference is unavailable, its lines are skipped: {why}");
            None
        }
    };

    let total = scale.bytes(256 << 20);
    for (name, size) in [("throughput_1k", 1024), ("throughput_64k", 64 << 10)] {
        let count = total / size;
        let reps = |f: &dyn Fn() -> anyhow::Result<f64>| -> anyhow::Result<f64> {
            Ok(best(
                (0..scale.reps())
                    .map(|_| f())
                    .collect::<anyhow::Result<_>>()?,
            ))
        };
        // Interleaved, so that a disturbance of the machine hits both alike.
        let mut ours = Vec::new();
        let mut plain = Vec::new();
        for _ in 0..scale.reps() {
            ours.push(mconn_throughput(tcp_pair(true)?, size, count)?);
            plain.push(secretconn_throughput(tcp_pair(true)?, PLAIN_WRITE, total)?);
        }
        let (ours, plain) = (best(ours), best(plain));
        report.line(SUITE, name, ours, "MiB/s", "secretconn", plain);
        match &go {
            Some(bin) => {
                let g = reps(&|| go_throughput(bin, size, count))?;
                report.line(SUITE, name, ours, "MiB/s", "go-cometbft", g);
            }
            None => report.missing(SUITE, name, "go-cometbft", "Go reference unavailable"),
        }
    }

    let probes = if scale.quick { 40 } else { 150 };
    let mut idle = Vec::new();
    let mut loaded = Vec::new();
    // The same load on the kernel's default sockets: what the socket sizing buys.
    let mut kernel = Vec::new();
    // The same load, the probes on a second connection that carries nothing else: the
    // machine's own delay under this load (two cores busy with the bulk), which no
    // scheduling inside a connection can go below.
    let mut separate = Vec::new();
    for _ in 0..scale.reps() {
        idle.push(latency(tcp_pair(true)?, probes, false, TRANSPORT)?);
        loaded.push(latency(tcp_pair(true)?, probes, true, TRANSPORT)?);
        kernel.push(latency(tcp_pair(true)?, probes, true, Sockets::Kernel)?);
        let pairs = vec![tcp_pair(true)?, tcp_pair(true)?];
        separate.push(latency_at(pairs, probes, true, TRANSPORT, 0)?);
    }
    // The least disturbed run: the lowest percentiles.
    let low = |xs: &[Percentiles], f: fn(&Percentiles) -> f64| {
        xs.iter().map(f).fold(f64::INFINITY, f64::min)
    };
    eprintln!(
        "bench: mconn/latency_loaded on the kernel's default sockets: p99 {:.0} us, p50 {:.0} us",
        low(&kernel, |p| p.p99),
        low(&kernel, |p| p.p50)
    );
    if let Some(l) = loaded.iter().min_by(|a, b| a.p99.total_cmp(&b.p99)) {
        eprintln!(
            "bench: mconn/latency_loaded: bulk at {:.0} MiB/s, a probe waited behind a median \
             of {:.1} MiB of bulk sent and not yet received",
            l.bulk_mibs,
            l.in_flight / (1024.0 * 1024.0)
        );
    }
    // A loaded percentile against the same percentile of `reference`'s runs.
    let versus = |report: &mut Report,
                  name: &'static str,
                  f: fn(&Percentiles) -> f64,
                  reference: &'static str,
                  runs: &[Percentiles]| {
        report.line(SUITE, name, low(&loaded, f), "us", reference, low(runs, f));
    };
    let p99: fn(&Percentiles) -> f64 = |p| p.p99;
    let p50: fn(&Percentiles) -> f64 = |p| p.p50;
    versus(report, "latency_p99_loaded", p99, "latency_p99_idle", &idle);
    versus(
        report,
        "latency_p99_loaded",
        p99,
        "latency_p99_separate_conn",
        &separate,
    );
    match &go {
        Some(bin) => {
            let g = (0..scale.reps())
                .map(|_| go_latency(bin, probes, true))
                .collect::<anyhow::Result<Vec<_>>>()?;
            report.line(
                SUITE,
                "latency_p99_loaded",
                low(&loaded, |p| p.p99),
                "us",
                "go-cometbft",
                g.into_iter().fold(f64::INFINITY, f64::min),
            );
        }
        None => report.missing(
            SUITE,
            "latency_p99_loaded",
            "go-cometbft",
            "Go reference unavailable",
        ),
    }
    versus(report, "latency_p50_loaded", p50, "latency_p50_idle", &idle);
    versus(
        report,
        "latency_p50_loaded",
        p50,
        "latency_p50_separate_conn",
        &separate,
    );

    match netem::Link::new() {
        Ok(mut link) => {
            // A delayed link whose round trip is not what it should be fails the bench.
            link.calibrate()?;
            wan(report, scale, &link)?;
        }
        Err(e) => eprintln!("bench: mconn/*_wan: skipped (no emulated long link): {e:#}"),
    }

    let conns = if scale.quick { 20 } else { 100 };
    let (total, secret) = idle_conn_bytes(conns)?;
    eprintln!(
        "bench: mconn/idle_conn_bytes: {total:.0} bytes per connection, of which the \
         SecretConnection holds {secret:.0} and the MConnection {:.0}",
        total - secret
    );
    report.line(SUITE, "idle_conn_bytes", total, "bytes", "none", total);
    Ok(())
}

/// The long-link figures, over `link` (see [`netem`]): bulk throughput against plain
/// SecretStreams on the same link, and the high-priority latency loaded against idle.
fn wan(report: &mut Report, scale: Scale, link: &netem::Link) -> anyhow::Result<()> {
    eprintln!("bench: mconn/*_wan: the link: {}", link.describe());
    let total = scale.bytes(48 << 20);
    let size = 64 << 10;
    let reps = scale.reps().min(3);
    let (mut ours, mut plain) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        ours.push(mconn_throughput(link.tcp_pair()?, size, total / size)?);
        plain.push(secretconn_throughput(link.tcp_pair()?, PLAIN_WRITE, total)?);
    }
    let plain_best = plain.clone();
    report.line(
        SUITE,
        "throughput_64k_wan",
        best(ours),
        "MiB/s",
        "secretconn",
        best(plain),
    );
    let probes = if scale.quick { 40 } else { 150 };
    let (mut idle, mut loaded, mut kernel) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..reps {
        idle.push(latency(link.tcp_pair()?, probes, false, TRANSPORT)?);
        loaded.push(latency(link.tcp_pair()?, probes, true, TRANSPORT)?);
        kernel.push(latency(link.tcp_pair()?, probes, true, Sockets::Kernel)?);
    }
    let low = |xs: &[Percentiles], f: fn(&Percentiles) -> f64| {
        xs.iter().map(f).fold(f64::INFINITY, f64::min)
    };
    eprintln!(
        "bench: mconn/latency_loaded_wan on the kernel's default sockets: p99 {:.0} us, p50 {:.0} us",
        low(&kernel, |p| p.p99),
        low(&kernel, |p| p.p50)
    );
    report.line(
        SUITE,
        "latency_p99_loaded_wan",
        low(&loaded, |p| p.p99),
        "us",
        "latency_p99_idle_wan",
        low(&idle, |p| p.p99),
    );
    report.line(
        SUITE,
        "latency_p50_loaded_wan",
        low(&loaded, |p| p.p50),
        "us",
        "latency_p50_idle_wan",
        low(&idle, |p| p.p50),
    );
    // The same with the MConnection's send rate below the link's: the queue stays in the
    // sender's scheduler, where priorities act, instead of the link's buffer.
    let paced = u64::from(netem::RATE_MBIT) * 1_000_000 / 8 * PACED_PERCENT / 100;
    let (mut ours, mut loaded) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        ours.push(mconn_throughput_at(
            link.tcp_pair()?,
            size,
            total / size,
            paced,
        )?);
        loaded.push(latency_at(
            vec![link.tcp_pair()?],
            probes,
            true,
            Sockets::Transport { rates: paced },
            paced,
        )?);
    }
    eprintln!(
        "bench: mconn/*_wan_paced: the MConnection send rate at {paced} B/s, \
         {PACED_PERCENT} % of the link"
    );
    report.line(
        SUITE,
        "throughput_64k_wan_paced",
        best(ours),
        "MiB/s",
        "secretconn",
        best(plain_best),
    );
    report.line(
        SUITE,
        "latency_p99_loaded_wan_paced",
        low(&loaded, |p| p.p99),
        "us",
        "latency_p99_idle_wan",
        low(&idle, |p| p.p99),
    );
    report.line(
        SUITE,
        "latency_p50_loaded_wan_paced",
        low(&loaded, |p| p.p50),
        "us",
        "latency_p50_idle_wan",
        low(&idle, |p| p.p50),
    );
    if let Some(stats) = link.stats() {
        eprintln!("bench: mconn/*_wan: {stats}");
    }
    Ok(())
}

fn key(seed: u8) -> NodeKey {
    NodeKey::from_seed([seed; 32])
}

/// Rates off, the reference's other defaults.
fn unlimited() -> MConnConfig {
    let mut c = MConnConfig::default();
    c.send_rate(0).recv_rate(0);
    c
}

type Secret = SecretStream<TcpStream>;

fn spawn_mconn(
    s: Secret,
    channels: &[ChannelDescriptor],
    config: MConnConfig,
) -> anyhow::Result<(MConnection, Vec<ChannelReceiver>)> {
    let (r, w) = s.split_with(TcpStream::into_split);
    let (conn, rxs) = MConnection::spawn(r, w, channels, config)?;
    Ok((conn, rxs.into_iter().collect()))
}

/// How the bench's sockets are set up.
#[derive(Clone, Copy, Debug)]
enum Sockets {
    /// As `TcpTransport` sets them up by default, for an MConnection with `rates` (send and
    /// receive, bytes per second, 0 = unlimited).
    Transport { rates: u64 },
    /// The kernel's defaults.
    Kernel,
}

impl Sockets {
    /// The transport's default `SocketTuning::Auto` (the handshake's duration as the RTT, as
    /// `TcpTransport` measures it on an accepted connection).
    fn apply(self, tcp: &TcpStream, handshake: Duration) -> anyhow::Result<()> {
        if let Self::Transport { rates } = self {
            let link = LinkEstimate {
                rtt: handshake,
                send_rate: rates,
                recv_rate: rates,
                max_recv_buffer: socket::max_recv_buffer(),
            };
            let sizes = SocketTuning::default().sizes(&link);
            socket::apply(tcp, &sizes)?;
        }
        Ok(())
    }
}

/// The transport's default sockets for the bench's unlimited rates.
const TRANSPORT: Sockets = Sockets::Transport { rates: 0 };

/// A secret handshake, then the socket set up as `sockets` says.
async fn handshake(
    tcp: StdStream,
    seed: u8,
    sockets: Sockets,
) -> anyhow::Result<SecretStream<TcpStream>> {
    let started = tokio::time::Instant::now();
    let s = SecretStream::handshake(TcpStream::from_std(tcp)?, &key(seed)).await?;
    sockets.apply(s.get_ref(), started.elapsed())?;
    Ok(s)
}

/// Runs `send` and `recv` on two threads, each as a task in its own current-thread runtime with
/// the SecretConnection to the other already established over `pair`, set up as `sockets`
/// says; returns the time from the start signal until `recv` finished.
fn two_sides<S, SF, R, RF>(
    pair: (StdStream, StdStream),
    sockets: Sockets,
    send: S,
    recv: R,
) -> anyhow::Result<Duration>
where
    S: FnOnce(Secret, Arc<Barrier>) -> SF + Send + 'static,
    SF: Future<Output = anyhow::Result<()>> + Send + 'static,
    R: FnOnce(Secret, Arc<Barrier>) -> RF + Send + 'static,
    RF: Future<Output = anyhow::Result<Instant>> + Send + 'static,
{
    fn one(v: Vec<Secret>) -> anyhow::Result<Secret> {
        v.into_iter().next().ok_or_else(|| anyhow!("no connection"))
    }
    two_sides_n(
        vec![pair],
        sockets,
        move |v, go| async move { send(one(v)?, go).await },
        move |v, go| async move { recv(one(v)?, go).await },
    )
}

/// [`two_sides`] with a SecretConnection over each of `pairs`, between the same two threads.
fn two_sides_n<S, SF, R, RF>(
    pairs: Vec<(StdStream, StdStream)>,
    sockets: Sockets,
    send: S,
    recv: R,
) -> anyhow::Result<Duration>
where
    S: FnOnce(Vec<Secret>, Arc<Barrier>) -> SF + Send + 'static,
    SF: Future<Output = anyhow::Result<()>> + Send + 'static,
    R: FnOnce(Vec<Secret>, Arc<Barrier>) -> RF + Send + 'static,
    RF: Future<Output = anyhow::Result<Instant>> + Send + 'static,
{
    let (a, b): (Vec<StdStream>, Vec<StdStream>) = pairs.into_iter().unzip();
    // Handshakes first (both sides need each other), then the start signal.
    let hs = Arc::new(Barrier::new(2));
    let go = Arc::new(Barrier::new(3));
    let (h1, h2, g1, g2) = (hs.clone(), hs, go.clone(), go.clone());
    let s = std::thread::spawn(move || {
        current_thread()?.block_on(async move {
            let mut ss = Vec::new();
            for tcp in a {
                ss.push(handshake(tcp, 1, sockets).await?);
            }
            h1.wait();
            // A task like any other: the future given to `block_on` is polled only between
            // batches of the runtime's tasks, which would delay it as no application's reactor
            // task is delayed.
            tokio::spawn(send(ss, g1)).await?
        })
    });
    let r = std::thread::spawn(move || {
        current_thread()?.block_on(async move {
            let mut ss = Vec::new();
            for tcp in b {
                ss.push(handshake(tcp, 2, sockets).await?);
            }
            h2.wait();
            tokio::spawn(recv(ss, g2)).await?
        })
    });
    go.wait();
    let start = Instant::now();
    let end = r.join().map_err(|_| anyhow!("receiver panicked"))??;
    s.join().map_err(|_| anyhow!("sender panicked"))??;
    Ok(end.saturating_duration_since(start))
}

fn throughput_channel(size: usize) -> [ChannelDescriptor; 1] {
    [ChannelDescriptor::new(BULK, 1)
        .send_queue_capacity(100)
        .recv_message_capacity(size)]
}

/// `count` messages of `size` bytes through two MConnections.
fn mconn_throughput(
    pair: (StdStream, StdStream),
    size: usize,
    count: usize,
) -> anyhow::Result<f64> {
    mconn_throughput_at(pair, size, count, 0)
}

/// [`mconn_throughput`] with the sender's MConnection send rate at `rate` bytes per second
/// (0 = unlimited) and the transport's default sockets for it.
fn mconn_throughput_at(
    pair: (StdStream, StdStream),
    size: usize,
    count: usize,
    rate: u64,
) -> anyhow::Result<f64> {
    let d = two_sides(
        pair,
        Sockets::Transport { rates: rate },
        move |s, go| async move {
            let mut config = unlimited();
            config.send_rate(rate);
            let (conn, _rx) = spawn_mconn(s, &throughput_channel(size), config)?;
            let msg = Bytes::from(vec![0x5a; size]);
            go.wait();
            for _ in 0..count {
                conn.send(BULK, msg.clone()).await?;
            }
            // Everything accepted goes out before the stream closes.
            conn.flush_stop().await?;
            Ok(())
        },
        move |s, go| async move {
            let (_conn, mut rx) = spawn_mconn(s, &throughput_channel(size), unlimited())?;
            go.wait();
            for i in 0..count {
                let m = rx[0]
                    .recv()
                    .await
                    .ok_or_else(|| anyhow!("connection ended after {i} messages"))?;
                ensure!(m.len() == size, "message {i} has {} bytes", m.len());
            }
            Ok(Instant::now())
        },
    )?;
    Ok(mib_per_s(size * count, d))
}

/// `total` bytes through plain SecretStreams on the kernel's default sockets, in writes of
/// `write` bytes, 64 KiB reads.
fn secretconn_throughput(
    pair: (StdStream, StdStream),
    write: usize,
    total: usize,
) -> anyhow::Result<f64> {
    let d = two_sides(
        pair,
        Sockets::Kernel,
        move |mut s, go| async move {
            let chunk = vec![0x5a; write];
            go.wait();
            let mut sent = 0;
            while sent < total {
                let n = write.min(total - sent);
                s.write_all(&chunk[..n]).await?;
                sent += n;
            }
            s.flush().await?;
            Ok(())
        },
        move |mut s, go| async move {
            let mut buf = vec![0u8; READ_CHUNK];
            go.wait();
            let mut got = 0;
            while got < total {
                let n = s.read(&mut buf).await?;
                ensure!(n > 0, "early EOF");
                got += n;
            }
            Ok(Instant::now())
        },
    )?;
    Ok(mib_per_s(total, d))
}

/// The shim's `bench-mconn`: two reference MConnections in one Go process.
fn go_throughput(bin: &std::path::Path, size: usize, count: usize) -> anyhow::Result<f64> {
    let out = std::process::Command::new(bin)
        .args(["bench-mconn", "--messages", &count.to_string()])
        .args(["--msg-size", &size.to_string()])
        .output()
        .context("running the Go shim")?;
    let text = String::from_utf8_lossy(&out.stdout);
    ensure!(out.status.success(), "Go bench failed: {text}");
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line)?;
        if v["event"] == "bench" {
            return v["mib_per_s"]
                .as_f64()
                .ok_or_else(|| anyhow!("no mib_per_s in {v}"));
        }
    }
    anyhow::bail!("the Go bench printed no result: {text}")
}

/// The shim's `bench-mconn-latency`: the p99 latency (µs) of the same probes between two
/// reference MConnections, `loaded` with the same bulk.
fn go_latency(bin: &std::path::Path, probes: usize, loaded: bool) -> anyhow::Result<f64> {
    let mut cmd = std::process::Command::new(bin);
    cmd.args(["bench-mconn-latency", "--probes", &probes.to_string()]);
    if loaded {
        cmd.arg("--loaded");
    }
    let out = cmd.output().context("running the Go shim")?;
    let text = String::from_utf8_lossy(&out.stdout);
    ensure!(out.status.success(), "Go latency bench failed: {text}");
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line)?;
        if v["event"] == "bench" {
            return v["p99_us"]
                .as_f64()
                .ok_or_else(|| anyhow!("no p99_us in {v}"));
        }
    }
    anyhow::bail!("the Go latency bench printed no result: {text}")
}

/// Latency percentiles in µs, and what the bulk channel did meanwhile.
#[derive(Clone, Copy, Debug)]
struct Percentiles {
    p50: f64,
    p99: f64,
    /// Median of the bulk bytes accepted by the sender's `send` and not yet taken by the
    /// receiver when a probe arrived (what a probe waits behind, mostly in TCP buffers).
    in_flight: f64,
    /// Bulk payload rate, MiB/s.
    bulk_mibs: f64,
}

/// Sends `probes` 100-byte messages on the priority-10 channel, 12 to 16 ms apart, each
/// carrying its send time; with `loaded`, the priority-1 channel is kept full of 64 KiB
/// messages meanwhile (and drained by the receiver as fast as it can).
fn latency(
    pair: (StdStream, StdStream),
    probes: usize,
    loaded: bool,
    sockets: Sockets,
) -> anyhow::Result<Percentiles> {
    latency_at(vec![pair], probes, loaded, sockets, 0)
}

/// [`latency`] with both MConnections' send rate at `rate` bytes per second (0 = unlimited).
/// With two pairs, the bulk goes over the first connection and the probes over the second,
/// otherwise idle, between the same two threads: no scheduling inside a connection is
/// involved, so what the probes wait is the machine's (CPU time, task scheduling, the
/// kernel).
fn latency_at(
    pairs: Vec<(StdStream, StdStream)>,
    probes: usize,
    loaded: bool,
    sockets: Sockets,
    rate: u64,
) -> anyhow::Result<Percentiles> {
    let channels = [
        ChannelDescriptor::new(BULK, 1)
            .send_queue_capacity(10)
            .recv_message_capacity(64 << 10),
        ChannelDescriptor::new(PROBE, 10).send_queue_capacity(10),
    ];
    let mut config = unlimited();
    config
        .flush_throttle(Duration::from_millis(10))
        .send_rate(rate);
    let base = Instant::now();
    let (c1, c2) = (channels.clone(), channels);
    let (k1, k2) = (config.clone(), config);
    let samples = Arc::new(std::sync::Mutex::new(Vec::with_capacity(probes)));
    let out = samples.clone();
    let bulk_sent = Arc::new(AtomicU64::new(0));
    let bulk_got = Arc::new(AtomicU64::new(0));
    let (sent1, sent2, got1, got2) = (
        bulk_sent.clone(),
        bulk_sent.clone(),
        bulk_got.clone(),
        bulk_got.clone(),
    );
    let started = Instant::now();
    two_sides_n(
        pairs,
        sockets,
        move |ss, go| async move {
            let mut conns = Vec::new();
            for s in ss {
                conns.push(spawn_mconn(s, &c1, k1.clone())?);
            }
            let (conn, _rx) = conns.first().ok_or_else(|| anyhow!("no connection"))?;
            let probe_conn = &conns.last().ok_or_else(|| anyhow!("no connection"))?.0;
            let stop = Arc::new(AtomicBool::new(false));
            let bulk = loaded.then(|| {
                let (conn, stop) = (conn.clone(), stop.clone());
                tokio::spawn(async move {
                    let msg = Bytes::from(vec![0xb0; 64 << 10]);
                    while !stop.load(Ordering::Relaxed) {
                        if conn.send(BULK, msg.clone()).await.is_err() {
                            break;
                        }
                        sent1.fetch_add(msg.len() as u64, Ordering::Relaxed);
                    }
                })
            });
            go.wait();
            if loaded {
                // Let the bulk fill every buffer on the way first.
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            let mut rng = crate::data::Rng(7);
            for _ in 0..probes {
                tokio::time::sleep(Duration::from_micros(rng.range(12_000, 16_000) as u64)).await;
                let mut msg = vec![0u8; PROBE_LEN];
                let t = base.elapsed().as_nanos() as u64;
                msg[..8].copy_from_slice(&t.to_le_bytes());
                probe_conn.send(PROBE, msg).await?;
            }
            stop.store(true, Ordering::Relaxed);
            if let Some(b) = bulk {
                b.abort();
            }
            // The receiver ends the run once it has every probe.
            let _ = probe_conn.closed().await;
            Ok(())
        },
        move |ss, go| async move {
            let mut conns = Vec::new();
            for s in ss {
                conns.push(spawn_mconn(s, &c2, k2.clone())?);
            }
            ensure!(matches!(conns.len(), 1 | 2), "{} connections", conns.len());
            let handles: Vec<MConnection> = conns.iter().map(|(c, _)| c.clone()).collect();
            let (_, mut rx) = conns.swap_remove(0);
            // Channel receivers in order: bulk, probe.
            let mut bulk_rx = rx.swap_remove(0);
            let mut probe_rx = match conns.pop() {
                Some((_, mut rx)) => rx.swap_remove(1),
                None => rx.pop().ok_or_else(|| anyhow!("no probe channel"))?,
            };
            let drain = tokio::spawn(async move {
                while let Some(m) = bulk_rx.recv().await {
                    got1.fetch_add(m.len() as u64, Ordering::Relaxed);
                }
            });
            go.wait();
            for i in 0..probes {
                let m = probe_rx
                    .recv()
                    .await
                    .ok_or_else(|| anyhow!("connection ended after {i} probes"))?;
                let now = base.elapsed().as_nanos() as u64;
                let sent = u64::from_le_bytes(m[..8].try_into()?);
                let queued = sent2
                    .load(Ordering::Relaxed)
                    .saturating_sub(got2.load(Ordering::Relaxed));
                out.lock()
                    .map_err(|_| anyhow!("poisoned"))?
                    .push(((now - sent) as f64 / 1000.0, queued as f64));
            }
            for c in &handles {
                c.stop();
            }
            drain.abort();
            Ok(Instant::now())
        },
    )?;
    let secs = started.elapsed().as_secs_f64();
    let got: Vec<(f64, f64)> = samples.lock().map_err(|_| anyhow!("poisoned"))?.clone();
    ensure!(
        got.len() == probes,
        "{} of {probes} probes measured",
        got.len()
    );
    let (mut xs, mut queued): (Vec<f64>, Vec<f64>) = got.into_iter().unzip();
    let at = |xs: &mut Vec<f64>, q: f64| {
        xs.sort_by(f64::total_cmp);
        xs[((xs.len() as f64 * q).ceil() as usize).clamp(1, xs.len()) - 1]
    };
    Ok(Percentiles {
        p50: at(&mut xs, 0.50),
        p99: at(&mut xs, 0.99),
        in_flight: at(&mut queued, 0.50),
        bulk_mibs: bulk_got.load(Ordering::Relaxed) as f64 / secs / (1024.0 * 1024.0),
    })
}

/// Heap bytes per idle connection, and the part of them the SecretConnection holds: `pairs`
/// connected pairs in this process, handshakes done, MConnections with the full node's
/// channels spawned and left idle. Counted from after the TCP connect (socket buffers are the
/// kernel's, not the heap's) until every task has parked.
fn idle_conn_bytes(pairs: usize) -> anyhow::Result<(f64, f64)> {
    let rt = current_thread()?;
    let sockets: Vec<(StdStream, StdStream)> = (0..pairs)
        .map(|_| tcp_pair(true))
        .collect::<anyhow::Result<_>>()?;
    let (ka, kb) = (key(1), key(2));
    let live = |r: &Region<System>| {
        let c = r.change();
        c.bytes_allocated as f64 - c.bytes_deallocated as f64 + c.bytes_reallocated as f64
    };
    rt.block_on(async move {
        let region = Region::new(GLOBAL);
        let mut streams = Vec::with_capacity(2 * pairs);
        for (a, b) in sockets {
            let (a, b) = (TcpStream::from_std(a)?, TcpStream::from_std(b)?);
            let (x, y) = tokio::join!(
                SecretStream::handshake(a, &ka),
                SecretStream::handshake(b, &kb)
            );
            streams.push(x?);
            streams.push(y?);
        }
        let secret = live(&region);
        let channels = p2p_mconn::reference::full_node();
        let mut conns = Vec::with_capacity(2 * pairs);
        for s in streams {
            conns.push(spawn_mconn(s, &channels, MConnConfig::node_default())?);
        }
        // Let every task start and park.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let total = live(&region);
        for (c, _) in &conns {
            ensure!(c.is_running(), "a connection ended: {:?}", c.outcome());
        }
        let n = (2 * pairs) as f64;
        drop(conns);
        Ok((total / n, secret / n))
    })
}
