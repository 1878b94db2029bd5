//! Suite `transport`: full upgrades per second over loopback TCP.
//!
//! Figures and their reference (all measured in this run):
//! - `upgrades_1` and `upgrades_16`: complete upgrades per second with 1 and with 16 dialers
//!   running at once against one listening `TcpTransport`, all in one multi-threaded tokio
//!   runtime. An upgrade counts when the dialer's `dial` returned a `Connection` and the
//!   listener's `accept` returned its side: TCP connect, SecretConnection handshake, NodeInfo
//!   exchange and checks, MConnection started on both sides. Each dialer loops dial → cleanup
//!   with its own node key (one transport cannot hold two connections to one address); the
//!   listener cleans up each connection as it accepts it. Setup (keys, transports, the
//!   listener, one warm-up dial per dialer) is not timed.
//! - Reference `crypto_bound`: one side's handshake crypto per second on one core (X25519
//!   keygen and DH, Merlin challenge, HKDF-SHA256, both AEAD key setups with one frame sealed
//!   and one opened, ed25519 sign and verify), the same measurement as the `secretconn` suite's.
//!   An upgrade needs this work on both sides, so a machine with two cores busy with nothing
//!   else upgrades at most about `crypto_bound` connections per second: the ratio is the share
//!   of the crypto-bound rate the whole pipeline achieves.
//! - Reference `secret_handshake`: bare SecretConnection handshakes per second, one after the
//!   other over loopback TCP pairs connected beforehand (connecting is not timed), the two
//!   sides in separate tasks of the same kind of runtime. Its ratio shows what the transport
//!   adds to the handshake (TCP connect, NodeInfo exchange, checks, MConnection, cleanup).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use p2p_mconn::{ChannelDescriptor, MConnConfig};
use p2p_transport::{TcpTransport, Transport, TransportConfig};
use p2p_types::{NetAddress, NodeInfo, NodeKey};

use super::{Report, Scale, best};

const SUITE: &str = "transport";

pub fn run(report: &mut Report, scale: Scale) -> anyhow::Result<()> {
    let n = scale.count(1000);
    let crypto = best(
        (0..scale.reps())
            .map(|_| super::secretconn::crypto_bound(n))
            .collect(),
    );
    let handshakes = best(
        (0..scale.reps())
            .map(|_| secret_handshakes(n))
            .collect::<anyhow::Result<_>>()?,
    );
    for (name, dialers) in [("upgrades_1", 1), ("upgrades_16", 16)] {
        let v = best(
            (0..scale.reps())
                .map(|_| upgrades(n, dialers))
                .collect::<anyhow::Result<_>>()?,
        );
        report.line(SUITE, name, v, "per_s", "crypto_bound", crypto);
        report.line(SUITE, name, v, "per_s", "secret_handshake", handshakes);
    }
    Ok(())
}

/// `n` sequential bare SecretConnection handshakes over pre-connected loopback pairs, the two
/// sides in separate tasks; handshakes per second (only the handshakes are timed).
fn secret_handshakes(n: usize) -> anyhow::Result<f64> {
    use p2p_secretconn::SecretStream;
    use tokio::net::{TcpListener, TcpStream};
    const BATCH: usize = 100;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (ka, kb) = (
            Arc::new(NodeKey::from_seed([1; 32])),
            Arc::new(NodeKey::from_seed([2; 32])),
        );
        let mut timed = Duration::ZERO;
        let mut done = 0;
        while done < n {
            let k = BATCH.min(n - done);
            let mut pairs = Vec::with_capacity(k);
            for _ in 0..k {
                let (c, a) = tokio::join!(TcpStream::connect(addr), listener.accept());
                pairs.push((c?, a?.0));
            }
            let mut open = Vec::with_capacity(k);
            let start = Instant::now();
            for (c, s) in pairs {
                let kb = Arc::clone(&kb);
                let other = tokio::spawn(async move { SecretStream::handshake(s, &kb).await });
                let ours = SecretStream::handshake(c, &ka).await?;
                // Closing is not part of a handshake: keep both until the batch is timed.
                open.push((ours, other.await??));
            }
            timed += start.elapsed();
            drop(open);
            done += k;
        }
        Ok(n as f64 / timed.as_secs_f64())
    })
}

fn node(seed: u64) -> anyhow::Result<TcpTransport> {
    let mut s = [0u8; 32];
    s[..8].copy_from_slice(&seed.to_be_bytes());
    s[8..].copy_from_slice(b"p2p-rs bench transport!!");
    let key = NodeKey::from_seed(s);
    let mut info = NodeInfo::new(key.node_id(), "bench-chain", "tcp://127.0.0.1:26656");
    info.channels = vec![0x20, 0x30];
    let mut mconn = MConnConfig::default();
    mconn.send_rate(0).recv_rate(0);
    let mut config = TransportConfig::default();
    config
        .channels([
            ChannelDescriptor::new(0x20, 6).send_queue_capacity(100),
            ChannelDescriptor::new(0x30, 5),
        ])
        .mconn(mconn)
        // Generous: 16 dialers share two cores with the listener.
        .handshake_timeout(Duration::from_secs(30))
        .accept_queue(64)
        // Every dialer is on 127.0.0.1, far above the per-IP rate a node allows.
        .handshake_rate_limit(None);
    config.dangerous().allow_duplicate_ip(true);
    Ok(TcpTransport::new(key, info, config)?)
}

/// `n` (rounded up to a multiple of `dialers`) full upgrades by `dialers` concurrent dialers;
/// returns upgrades per second.
fn upgrades(n: usize, dialers: usize) -> anyhow::Result<f64> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = Arc::new(node(0)?);
        let bound = listener.listen("127.0.0.1:0".parse()?).await?;
        let target = NetAddress::new(listener.upgrade_config().node_id(), bound);
        let accepted = Arc::new(AtomicUsize::new(0));
        let acceptor = {
            let (l, accepted) = (Arc::clone(&listener), Arc::clone(&accepted));
            tokio::spawn(async move {
                loop {
                    match l.accept().await {
                        Ok(c) => {
                            l.cleanup(c);
                            accepted.fetch_add(1, Ordering::Release);
                        }
                        Err(e) if e.is_closed() => return anyhow::Ok(()),
                        Err(e) => return Err(anyhow!("rejected during the bench: {e}")),
                    }
                }
            })
        };
        let ts: Vec<Arc<TcpTransport>> = (1..=dialers as u64)
            .map(|s| node(s).map(Arc::new))
            .collect::<anyhow::Result<_>>()?;
        // Warm-up: one untimed upgrade per dialer.
        for t in &ts {
            let c = t.dial(&target).await?;
            t.cleanup(c);
        }
        let warm = ts.len();
        while accepted.load(Ordering::Acquire) < warm {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }

        let per = n.div_ceil(dialers);
        let total = per * dialers;
        let start = Instant::now();
        let mut set = tokio::task::JoinSet::new();
        for t in ts {
            set.spawn(async move {
                for _ in 0..per {
                    let c = t.dial(&target).await?;
                    t.cleanup(c);
                }
                anyhow::Ok(())
            });
        }
        while let Some(r) = set.join_next().await {
            r??;
        }
        while accepted.load(Ordering::Acquire) < warm + total {
            if acceptor.is_finished() {
                break;
            }
            tokio::task::yield_now().await;
        }
        let secs = start.elapsed().as_secs_f64();
        listener.close().await;
        acceptor.await??;
        anyhow::ensure!(
            accepted.load(Ordering::Acquire) == warm + total,
            "the listener accepted {} of {} upgrades",
            accepted.load(Ordering::Acquire),
            warm + total
        );
        Ok(total as f64 / secs)
    })
}
