//! Two switches on loopback TCP running an echo reactor: node A sends a few lines, node B
//! echoes each back, A prints the round trips, then both stop.
//!
//! ```sh
//! cargo run -p p2p-switch --example echo
//! ```
//!
//! The whole protocol is the `Echo` reactor below: a message type, the channel it owns, and
//! what to do with a message.

use std::time::Duration;

use p2p_mconn::ChannelDescriptor;
use p2p_switch::{Envelope, Peer, Reactor, StopReason, SwitchBuilder, SwitchConfig};
use p2p_types::{NodeInfo, NodeKey};
use tokio::sync::mpsc;
use tokio::time::Instant;

const ECHO: u8 = 0x70;

/// The echo protocol's one message.
#[derive(Clone, PartialEq, prost::Message)]
struct Line {
    #[prost(string, tag = "1")]
    text: String,
    /// Set on the way back.
    #[prost(bool, tag = "2")]
    echoed: bool,
}

/// Echoes what it gets; hands echoes it gets back to the application.
struct Echo {
    echoes: mpsc::Sender<String>,
}

impl Reactor for Echo {
    type Message = Line;

    fn channels(&self) -> Vec<ChannelDescriptor> {
        vec![ChannelDescriptor::new(ECHO, 1).send_queue_capacity(16)]
    }

    async fn receive(&self, e: Envelope<Line>) {
        if e.message.echoed {
            // Awaiting here is the backpressure: a slow application slows this channel only.
            let _ = self.echoes.send(e.message.text).await;
        } else {
            let back = Line {
                echoed: true,
                ..e.message
            };
            if let Err(err) = e.src.send(ECHO, &back).await {
                println!("could not echo to {}: {err}", e.src.id());
            }
        }
    }

    async fn add_peer(&self, peer: &Peer) {
        println!("  + {} ({})", peer.node_info().moniker, peer.remote_addr());
    }

    async fn remove_peer(&self, peer: &Peer, reason: &StopReason) {
        println!("  - {}: {reason}", peer.node_info().moniker);
    }
}

fn node(
    seed: u8,
    moniker: &str,
) -> Result<
    (
        p2p_switch::Switch<p2p_transport::TcpTransport>,
        mpsc::Receiver<String>,
    ),
    p2p_switch::Error,
> {
    let key = NodeKey::from_seed([seed; 32]);
    let mut info = NodeInfo::new(key.node_id(), "echo-net", "tcp://127.0.0.1:26656");
    info.moniker = moniker.to_owned();
    let mut config = SwitchConfig::default();
    // Both nodes are on 127.0.0.1.
    config
        .listen_addr(Some("127.0.0.1:0".parse().expect("address")))
        .allow_duplicate_ip(true);
    let (tx, rx) = mpsc::channel(16);
    let mut builder = SwitchBuilder::new(key, info, config);
    builder.add_reactor("echo", Echo { echoes: tx })?;
    Ok((builder.build_tcp()?, rx))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (a, mut echoes) = node(1, "node-a")?;
    let (b, _) = node(2, "node-b")?;
    a.start().await?;
    b.start().await?;
    let b_addr = b.net_address().ok_or("node B is not listening")?;
    println!("A dials B at {b_addr}");
    let peer = a.dial_peer_with_address(&b_addr).await?;

    for text in ["hello", "from", "the switch"] {
        let sent = Instant::now();
        let line = Line {
            text: text.to_owned(),
            echoed: false,
        };
        peer.send(ECHO, &line).await?;
        let back = tokio::time::timeout(Duration::from_secs(5), echoes.recv())
            .await?
            .ok_or("no echo")?;
        println!("echo {back:?} after {:?}", sent.elapsed());
    }

    let (out, inb, dialing) = a.num_peers();
    println!("A has {out} outbound, {inb} inbound peers, {dialing} dials in progress");
    a.stop().await;
    b.stop().await;
    Ok(())
}
