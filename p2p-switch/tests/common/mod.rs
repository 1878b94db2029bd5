//! Test reactors and switch builders shared by the integration tests.

#![allow(dead_code, unreachable_pub)]

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use p2p_mconn::ChannelDescriptor;
use p2p_switch::{
    AddAddressError, AddressBook, ConnectionId, Envelope, Peer, Reactor, StopReason, Switch,
    SwitchBuilder, SwitchConfig,
};
use p2p_testkit::memory::{MemoryNetwork, MemoryTransport};
use p2p_types::{NetAddress, NodeId, NodeInfo, NodeKey};
use tokio::sync::Notify;

/// The message type of the test reactors: opaque bytes.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Msg {
    #[prost(bytes = "vec", tag = "1")]
    pub data: Vec<u8>,
}

pub fn msg(data: &[u8]) -> Msg {
    Msg {
        data: data.to_vec(),
    }
}

/// What a [`Recorder`] saw, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Init(NodeId, ConnectionId),
    Add(NodeId, ConnectionId),
    Remove(NodeId, ConnectionId, String),
}

/// A reactor that records every call.
pub struct Recorder {
    channels: Vec<ChannelDescriptor>,
    pub received: Mutex<Vec<(NodeId, u8, Vec<u8>)>>,
    pub events: Mutex<Vec<Event>>,
    pub changed: Notify,
}

impl Recorder {
    pub fn new(channels: &[u8]) -> Arc<Self> {
        Self::with(
            channels
                .iter()
                .map(|&c| ChannelDescriptor::new(c, 1).send_queue_capacity(100))
                .collect(),
        )
    }

    pub fn with(channels: Vec<ChannelDescriptor>) -> Arc<Self> {
        Arc::new(Self {
            channels,
            received: Mutex::new(Vec::new()),
            events: Mutex::new(Vec::new()),
            changed: Notify::new(),
        })
    }

    pub fn received_on(&self, channel: u8) -> Vec<Vec<u8>> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, c, _)| *c == channel)
            .map(|(_, _, d)| d.clone())
            .collect()
    }

    pub fn count(&self) -> usize {
        self.received.lock().unwrap().len()
    }

    pub fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }

    pub fn removes(&self) -> Vec<(NodeId, ConnectionId, String)> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Remove(id, c, r) => Some((id, c, r)),
                _ => None,
            })
            .collect()
    }

    fn push(&self, e: Event) {
        self.events.lock().unwrap().push(e);
        self.changed.notify_waiters();
    }
}

impl Reactor for Recorder {
    type Message = Msg;

    fn channels(&self) -> Vec<ChannelDescriptor> {
        self.channels.clone()
    }

    async fn receive(&self, e: Envelope<Msg>) {
        self.received
            .lock()
            .unwrap()
            .push((e.src.id(), e.channel, e.message.data));
        self.changed.notify_waiters();
    }

    fn init_peer(&self, peer: &Peer) {
        self.push(Event::Init(peer.id(), peer.conn_id()));
    }

    async fn add_peer(&self, peer: &Peer) {
        self.push(Event::Add(peer.id(), peer.conn_id()));
    }

    async fn remove_peer(&self, peer: &Peer, reason: &StopReason) {
        self.push(Event::Remove(peer.id(), peer.conn_id(), reason.to_string()));
    }
}

/// An address book that remembers what it is told.
#[derive(Default)]
pub struct MockBook {
    pub addrs: Mutex<Vec<NetAddress>>,
    pub ours: Mutex<Vec<NetAddress>>,
    pub good: Mutex<Vec<NodeId>>,
    pub private: Mutex<Vec<NodeId>>,
    pub saves: Mutex<usize>,
}

impl AddressBook for MockBook {
    fn add_address(&self, addr: &NetAddress, _src: &NetAddress) -> Result<(), AddAddressError> {
        if self.private.lock().unwrap().contains(&addr.id()) {
            return Err(AddAddressError::Private { id: addr.id() });
        }
        self.addrs.lock().unwrap().push(*addr);
        Ok(())
    }
    fn remove_address(&self, addr: &NetAddress) {
        self.addrs.lock().unwrap().retain(|a| a != addr);
    }
    fn has_address(&self, addr: &NetAddress) -> bool {
        self.addrs.lock().unwrap().contains(addr)
    }
    fn add_our_address(&self, addr: &NetAddress) {
        self.ours.lock().unwrap().push(*addr);
    }
    fn is_our_address(&self, addr: &NetAddress) -> bool {
        self.ours.lock().unwrap().contains(addr)
    }
    fn mark_good(&self, id: NodeId) {
        self.good.lock().unwrap().push(id);
    }
    fn add_private_ids(&self, ids: &[NodeId]) {
        self.private.lock().unwrap().extend_from_slice(ids);
    }
    fn save(&self) {
        *self.saves.lock().unwrap() += 1;
    }
}

pub const PORT: u16 = 26656;

pub fn key(seed: u8) -> NodeKey {
    NodeKey::from_seed([seed; 32])
}

/// A switch config for tests: listening on the default port of its host, quick flushes.
pub fn test_config(listen: SocketAddr) -> SwitchConfig {
    let mut c = SwitchConfig::default();
    c.listen_addr(Some(listen)).rng_seed(Some(1));
    let mut mconn = p2p_mconn::MConnConfig::node_default();
    mconn.flush_throttle(Duration::from_millis(10));
    c.transport().mconn(mconn);
    c
}

/// A node on the in-memory network at host `ip` (fresh if `None`), listening on
/// `ip:26656`, with the given reactors; `setup` may change the config and the builder.
pub fn memory_node(
    net: &MemoryNetwork,
    ip: Option<IpAddr>,
    seed: u8,
    setup: impl FnOnce(&mut SwitchConfig),
    reactors: impl FnOnce(&mut SwitchBuilder),
) -> Switch<MemoryTransport> {
    let ip = ip.unwrap_or_else(|| net.next_ip());
    let k = key(seed);
    let info = NodeInfo::new(k.node_id(), "test-chain", format!("tcp://{ip}:{PORT}"));
    let mut config = test_config(SocketAddr::new(ip, PORT));
    setup(&mut config);
    let mut b = SwitchBuilder::new(k, info, config);
    reactors(&mut b);
    let net = net.clone();
    b.build(move |k, i, c| net.transport_at(ip, k, i, c))
        .expect("build switch")
}

/// Polls `cond` every 10 ms until it holds; panics after `limit` of (possibly virtual) time.
pub async fn eventually(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !cond() {
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub fn addr_of<T>(s: &Switch<T>) -> NetAddress {
    s.net_address().expect("listening")
}
