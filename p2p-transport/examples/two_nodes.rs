//! Two nodes on loopback TCP, the whole stack below the switch: TCP, SecretConnection,
//! NodeInfo exchange and checks, MConnection with prioritised channels.
//!
//! Alice listens, Bob dials her. Each prints what it learnt about the other. They exchange
//! short messages on a high-priority channel on the idle connection, then again while Bob
//! streams 128 MiB of bulk data on a low-priority channel, and the two round-trip times are
//! printed side by side: the scheduler and the transport's socket sizing (its defaults) keep
//! the high-priority messages from waiting behind the bulk. Each side prints the connection's
//! counters at the end.
//!
//! ```text
//! cargo run --release -p p2p-transport --example two_nodes
//! ```

use std::time::{Duration, Instant};

use p2p_mconn::{ChannelDescriptor, ChannelReceiver, MConnConfig};
use p2p_transport::{Connection, TcpTransport, Transport, TransportConfig};
use p2p_types::{NetAddress, NodeInfo, NodeKey};

const CONSENSUS: u8 = 0x20;
const BULK: u8 = 0x40;
const BULK_MSG: usize = 64 * 1024;
const BULK_MSGS: usize = 2048;
const CHAT: usize = 20;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn node(moniker: &str) -> Result<TcpTransport, BoxError> {
    let key = NodeKey::generate();
    let mut info = NodeInfo::new(key.node_id(), "demo-chain", "tcp://127.0.0.1:0");
    info.moniker = moniker.into();
    info.channels = vec![CONSENSUS, BULK];
    let mut mconn = MConnConfig::node_default();
    mconn
        .send_rate(0)
        .recv_rate(0)
        .flush_throttle(Duration::from_millis(10));
    let mut config = TransportConfig::default();
    config
        .channels([
            ChannelDescriptor::new(CONSENSUS, 10).send_queue_capacity(100),
            ChannelDescriptor::new(BULK, 1)
                .send_queue_capacity(16)
                .recv_message_capacity(BULK_MSG),
        ])
        .mconn(mconn);
    // Both nodes share 127.0.0.1, which the reference's duplicate-IP rule would refuse.
    config.dangerous().allow_duplicate_ip(true);
    Ok(TcpTransport::new(key, info, config)?)
}

fn describe(who: &str, conn: &Connection) {
    let info = conn.node_info();
    println!(
        "{who}: connected to {:?} ({}), {}, network {:?}, version {:?}, channels {:02x?}",
        info.moniker,
        conn.remote_addr(),
        if conn.is_outbound() {
            "outbound"
        } else {
            "inbound"
        },
        info.network,
        info.version,
        info.channels,
    );
}

/// `CHAT` votes from Bob to Alice on the high-priority channel, each acknowledged by Alice;
/// returns the sorted round-trip times.
async fn round_trips(
    to_alice: &Connection,
    to_bob: &Connection,
    at_alice: &mut ChannelReceiver,
    at_bob: &mut ChannelReceiver,
) -> Result<Vec<Duration>, BoxError> {
    let mut rtts = Vec::new();
    for i in 0..CHAT {
        let t0 = Instant::now();
        to_alice
            .mconn()
            .send(CONSENSUS, format!("vote {i}").into_bytes())
            .await?;
        let vote = at_alice.recv().await.ok_or("alice's connection ended")?;
        to_bob
            .mconn()
            .send(CONSENSUS, [&b"ack "[..], &vote].concat())
            .await?;
        at_bob.recv().await.ok_or("bob's connection ended")?;
        rtts.push(t0.elapsed());
        // Spaced wider than the 10 ms flush throttle, as votes are: each goes out at once.
        tokio::time::sleep(Duration::from_millis(12)).await;
    }
    rtts.sort();
    Ok(rtts)
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let alice = node("alice")?;
    let bob = node("bob")?;
    let addr = alice.listen("127.0.0.1:0".parse()?).await?;
    let alice_addr = NetAddress::new(alice.upgrade_config().node_id(), addr);
    println!("alice listens on {alice_addr}");

    let started = Instant::now();
    let (dialed, accepted) = tokio::join!(bob.dial(&alice_addr), alice.accept());
    let (mut to_alice, mut to_bob) = (dialed?, accepted?);
    println!(
        "handshake, NodeInfo exchange and checks took {:?}",
        started.elapsed()
    );
    describe("bob", &to_alice);
    describe("alice", &to_bob);

    let mut at_alice = to_bob.take_receivers();
    let mut at_bob = to_alice.take_receivers();

    // The high-priority round trip on the idle connection.
    let mut consensus_at_alice = at_alice.take(CONSENSUS).ok_or("no consensus channel")?;
    let mut consensus_at_bob = at_bob.take(CONSENSUS).ok_or("no consensus channel")?;
    let idle = round_trips(
        &to_alice,
        &to_bob,
        &mut consensus_at_alice,
        &mut consensus_at_bob,
    )
    .await?;

    // Bob: bulk on the low-priority channel, in the background.
    let bob_conn = to_alice.mconn().clone();
    let bulk = tokio::spawn(async move {
        let chunk = bytes::Bytes::from(vec![0xb0; BULK_MSG]);
        for _ in 0..BULK_MSGS {
            bob_conn.send(BULK, chunk.clone()).await?;
        }
        Ok::<_, p2p_mconn::SendError>(())
    });
    // Alice: count the bulk as it arrives.
    let bulk_rx = at_alice.take(BULK).ok_or("no bulk channel")?;
    let counting = tokio::spawn(async move {
        let mut rx = bulk_rx;
        let (mut bytes, t0) = (0usize, Instant::now());
        while bytes < BULK_MSG * BULK_MSGS {
            match rx.recv().await {
                Some(m) => bytes += m.len(),
                None => break,
            }
        }
        (bytes, t0.elapsed())
    });

    // The same round trips while the bulk fills the connection.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let loaded = round_trips(
        &to_alice,
        &to_bob,
        &mut consensus_at_alice,
        &mut consensus_at_bob,
    )
    .await?;
    let still_running = !bulk.is_finished();
    println!("high-priority round trip (bob -> alice -> bob, {CHAT} votes):");
    println!(
        "  idle connection:        median {:>10.3?}, max {:>10.3?}",
        idle[CHAT / 2],
        idle[CHAT - 1]
    );
    println!(
        "  during the bulk ({}): median {:>10.3?}, max {:>10.3?}",
        if still_running { "busy" } else { "done" },
        loaded[CHAT / 2],
        loaded[CHAT - 1]
    );

    bulk.await??;
    let (bytes, took) = counting.await?;
    println!(
        "alice received {} MiB of bulk in {took:?} ({:.0} MiB/s)",
        bytes >> 20,
        bytes as f64 / took.as_secs_f64() / 1048576.0
    );
    for (who, conn) in [("bob", &to_alice), ("alice", &to_bob)] {
        let s = conn.mconn().status();
        println!(
            "{who}: sent {} messages / {} bytes, received {} messages / {} bytes",
            s.send.messages, s.send.bytes, s.recv.messages, s.recv.bytes
        );
    }

    // Bob leaves gracefully: everything queued is delivered before the stream closes.
    to_alice.mconn().flush_stop().await?;
    println!("alice sees: {:?}", to_bob.mconn().closed().await);
    bob.cleanup(to_alice);
    alice.cleanup(to_bob);
    alice.close().await;
    bob.close().await;
    Ok(())
}
