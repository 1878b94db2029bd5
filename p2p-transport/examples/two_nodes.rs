//! Two nodes on loopback TCP, the whole stack below the switch: TCP, SecretConnection,
//! NodeInfo exchange and checks, MConnection with prioritised channels.
//!
//! Alice listens, Bob dials her. Each prints what it learnt about the other, then Bob streams
//! 32 MiB of bulk data on a low-priority channel while both exchange short messages on a
//! high-priority one, and each side prints the connection's counters at the end.
//!
//! ```text
//! cargo run --release -p p2p-transport --example two_nodes
//! ```

use std::time::{Duration, Instant};

use p2p_mconn::{ChannelDescriptor, MConnConfig};
use p2p_transport::{Connection, TcpTransport, Transport, TransportConfig};
use p2p_types::{NetAddress, NodeInfo, NodeKey};

const CONSENSUS: u8 = 0x20;
const BULK: u8 = 0x40;
const BULK_MSG: usize = 64 * 1024;
const BULK_MSGS: usize = 512;
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

    // Bob: bulk on the low-priority channel, in the background.
    let bob_conn = to_alice.mconn().clone();
    let bulk = tokio::spawn(async move {
        let chunk = bytes::Bytes::from(vec![0xb0; BULK_MSG]);
        for _ in 0..BULK_MSGS {
            bob_conn.send(BULK, chunk.clone()).await?;
        }
        Ok::<_, p2p_mconn::Error>(())
    });
    // Alice: count the bulk as it arrives.
    let bulk_rx = at_alice.remove(1);
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

    // Meanwhile a short conversation on the high-priority channel, with round-trip times.
    let mut rtts = Vec::new();
    for i in 0..CHAT {
        let t0 = Instant::now();
        to_alice
            .mconn()
            .send(CONSENSUS, format!("vote {i}").into_bytes())
            .await?;
        let vote = at_alice[0].recv().await.ok_or("alice's connection ended")?;
        to_bob
            .mconn()
            .send(CONSENSUS, [&b"ack "[..], &vote].concat())
            .await?;
        let ack = at_bob[0].recv().await.ok_or("bob's connection ended")?;
        rtts.push(t0.elapsed());
        if i == 0 {
            println!("bob -> alice -> bob: {:?}", String::from_utf8_lossy(&ack));
        }
    }
    rtts.sort();
    println!(
        "{CHAT} high-priority round trips during the bulk transfer: median {:?}, max {:?}",
        rtts[CHAT / 2],
        rtts[CHAT - 1]
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
