//! The flooding gossip reactor: every message carries its origin, sequence number and send
//! time; a node records the first copy it sees and forwards it to every other peer.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use p2p_mconn::ChannelDescriptor;
use p2p_switch::{Envelope, Reactor, ReactorError, SwitchHandle};
use tokio::time::Instant;

/// The channel the gossip reactor owns.
pub const GOSSIP_CHANNEL: u8 = 0x71;

/// Latency samples kept per node, so memory stays bounded on long runs.
const MAX_SAMPLES: usize = 1 << 20;

/// One gossiped message.
#[derive(Clone, PartialEq, prost::Message)]
#[allow(clippy::exhaustive_structs)] // a wire message: every field is part of the format
pub struct Gossip {
    /// Index of the node that first sent it.
    #[prost(uint32, tag = "1")]
    pub origin: u32,
    /// Per-origin sequence number, from 0.
    #[prost(uint64, tag = "2")]
    pub seq: u64,
    /// Send time in microseconds since the testnet's start.
    #[prost(uint64, tag = "3")]
    pub sent_us: u64,
    /// Filler to reach the configured message size.
    #[prost(bytes = "bytes", tag = "4")]
    pub payload: bytes::Bytes,
}

/// Per-node gossip state and counters.
#[derive(Debug)]
pub struct GossipReactor {
    epoch: Instant,
    switch: OnceLock<SwitchHandle>,
    seen: Mutex<HashSet<(u32, u64)>>,
    latencies_us: Mutex<Vec<u64>>,
    delivered: AtomicU64,
    delivered_bytes: AtomicU64,
    forward_failures: AtomicU64,
}

impl GossipReactor {
    /// A reactor whose timestamps count from `epoch` (shared by every node of the testnet).
    pub fn new(epoch: Instant) -> Self {
        Self {
            epoch,
            switch: OnceLock::new(),
            seen: Mutex::new(HashSet::new()),
            latencies_us: Mutex::new(Vec::new()),
            delivered: AtomicU64::new(0),
            delivered_bytes: AtomicU64::new(0),
            forward_failures: AtomicU64::new(0),
        }
    }

    /// Microseconds since the epoch.
    pub fn now_us(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// Sends a new message of this node's own to every peer.
    pub async fn originate(&self, msg: Gossip) {
        self.mark_seen(msg.origin, msg.seq);
        self.forward(&msg, None).await;
    }

    /// Messages from other nodes received (first copies only).
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    /// Encoded bytes of the first copies received.
    pub fn delivered_bytes(&self) -> u64 {
        self.delivered_bytes.load(Ordering::Relaxed)
    }

    /// Forwards that failed (peer gone, queue full past the send timeout).
    pub fn forward_failures(&self) -> u64 {
        self.forward_failures.load(Ordering::Relaxed)
    }

    /// Takes the latency samples recorded so far.
    pub fn take_latencies(&self) -> Vec<u64> {
        std::mem::take(&mut *lock(&self.latencies_us))
    }

    fn mark_seen(&self, origin: u32, seq: u64) -> bool {
        lock(&self.seen).insert((origin, seq))
    }

    async fn forward(&self, msg: &Gossip, except: Option<p2p_types::NodeId>) {
        let Some(switch) = self.switch.get() else {
            return;
        };
        for peer in switch.peers() {
            // Peers without the gossip channel (the reference Go nodes of a testnet) get
            // nothing; the switch would refuse the send anyway (PeerLacksChannel).
            if Some(peer.id()) == except || !peer.node_info().has_channel(GOSSIP_CHANNEL) {
                continue;
            }
            if peer.send(GOSSIP_CHANNEL, msg).await.is_err() {
                self.forward_failures.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Reactor for GossipReactor {
    type Message = Gossip;

    fn channels(&self) -> Vec<ChannelDescriptor> {
        vec![ChannelDescriptor::new(GOSSIP_CHANNEL, 1).send_queue_capacity(256)]
    }

    async fn start(&self, switch: SwitchHandle) -> Result<(), ReactorError> {
        let _ = self.switch.set(switch);
        Ok(())
    }

    async fn receive(&self, e: Envelope<Gossip>) {
        let msg = e.message;
        if !self.mark_seen(msg.origin, msg.seq) {
            return;
        }
        let latency = self.now_us().saturating_sub(msg.sent_us);
        {
            let mut samples = lock(&self.latencies_us);
            if samples.len() < MAX_SAMPLES {
                samples.push(latency);
            }
        }
        self.delivered.fetch_add(1, Ordering::Relaxed);
        self.delivered_bytes.fetch_add(
            u64::try_from(prost::Message::encoded_len(&msg)).unwrap_or(0),
            Ordering::Relaxed,
        );
        self.forward(&msg, Some(e.src.id())).await;
    }
}
