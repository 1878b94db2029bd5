//! The in-memory transport's own behaviour, deterministic under tokio's paused clock.

use std::net::IpAddr;
use std::time::Duration;

use p2p_mconn::{ChannelDescriptor, MConnConfig};
use p2p_testkit::memory::{MemoryNetwork, MemoryTransport};
use p2p_transport::{Error, Transport, TransportConfig};
use p2p_types::{NetAddress, NodeInfo, NodeKey};

fn config() -> TransportConfig {
    let mut mconn = MConnConfig::default();
    mconn.send_rate(0).recv_rate(0);
    let mut c = TransportConfig::default();
    c.channels([ChannelDescriptor::new(0x01, 1)]).mconn(mconn);
    c
}

fn node(net: &MemoryNetwork, seed: u8, config: TransportConfig) -> MemoryTransport {
    node_at(net, net.next_ip(), seed, "sim", config)
}

/// A node on `network` at host `ip`.
fn node_at(
    net: &MemoryNetwork,
    ip: IpAddr,
    seed: u8,
    network: &str,
    config: TransportConfig,
) -> MemoryTransport {
    let key = NodeKey::from_seed([seed; 32]);
    let mut info = NodeInfo::new(key.node_id(), network, "tcp://10.0.0.1:26656");
    info.channels = vec![0x01];
    net.transport_at(ip, key, info, config).unwrap()
}

async fn listening(
    net: &MemoryNetwork,
    seed: u8,
    config: TransportConfig,
) -> (MemoryTransport, NetAddress) {
    let t = node(net, seed, config);
    let at = t.listen("0.0.0.0:26656".parse().unwrap()).await.unwrap();
    let addr = NetAddress::new(t.node_id(), at);
    (t, addr)
}

#[tokio::test(start_paused = true)]
async fn addresses_are_deterministic() {
    let net = MemoryNetwork::new();
    let (a, a_addr) = listening(&net, 1, config()).await;
    let (b, b_addr) = listening(&net, 2, config()).await;
    assert_eq!(a_addr.socket_addr(), "10.0.0.1:26656".parse().unwrap());
    assert_eq!(b_addr.socket_addr(), "10.0.0.2:26656".parse().unwrap());
    let (out, inb) = tokio::join!(a.dial(&b_addr), b.accept());
    assert!(out.is_ok());
    // The dialer's first ephemeral port.
    assert_eq!(
        inb.unwrap().socket_addr(),
        "10.0.0.1:49152".parse().unwrap()
    );
}

#[tokio::test(start_paused = true)]
async fn silent_connections_do_not_delay_a_good_peer() {
    let net = MemoryNetwork::new();
    let mut c = config();
    // All silent connections come from one host: this is about slots, not rates.
    c.handshake_rate_limit(None)
        .dangerous()
        .allow_duplicate_ip(true);
    let (b, b_addr) = listening(&net, 1, c).await;
    let loris = net.next_ip();
    let mut silent = Vec::new();
    for _ in 0..500 {
        silent.push(net.connect_raw(loris, b_addr.socket_addr()).unwrap());
        // Let the listener drain its backlog.
        tokio::task::yield_now().await;
    }
    let start = tokio::time::Instant::now();
    let a = node(&net, 2, config());
    let (out, inb) = tokio::join!(a.dial(&b_addr), b.accept());
    assert!(out.is_ok() && inb.is_ok());
    // In virtual time nothing but timers takes time: the good peer got in before any silent
    // connection's handshake timeout could have fired.
    assert!(start.elapsed() < Duration::from_secs(3));
    assert_eq!(b.incoming(), 501);
    // Then each silent one times out and lets go of its slot.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(b.incoming(), 1);
    drop(silent);
}

#[tokio::test(start_paused = true)]
async fn duplicate_ip_and_incoming_limit() {
    let net = MemoryNetwork::new();
    let mut c = config();
    c.max_incoming_connections(1);
    let (b, b_addr) = listening(&net, 1, c).await;
    // Two hosts behind one IP.
    let ip = net.next_ip();
    let mk = |seed: u8| node_at(&net, ip, seed, "sim", config());
    let (x, y) = (mk(2), mk(3));
    let (out, inb) = tokio::join!(x.dial(&b_addr), b.accept());
    let (_out, _inb) = (out.unwrap(), inb.unwrap());
    // The limit (1) is reached: y's connection is closed before any handshake.
    let e = y.dial(&b_addr).await.unwrap_err();
    assert!(matches!(e, Error::Handshake { .. }), "{e:?}");
    drop(_inb);
    drop(_out);
    // x's connection is gone: its slot and its IP entry are free, so y gets in.
    let (out, inb) = tokio::join!(y.dial(&b_addr), b.accept());
    assert!(out.is_ok() && inb.is_ok());
    // A third host on the same IP while y is connected: duplicate IP (the node default).
    drop(inb);
    let z = mk(4);
    let mut c2 = config();
    c2.max_incoming_connections(0);
    let (b2, b2_addr) = listening(&net, 5, c2).await;
    let (o1, i1) = tokio::join!(y.dial(&b2_addr), b2.accept());
    let (_o1, _i1) = (o1.unwrap(), i1.unwrap());
    assert!(z.dial(&b2_addr).await.is_err());
    let e = b2.accept().await.unwrap_err();
    assert!(
        matches!(e, Error::DuplicateIp { ip: dup, .. } if dup == ip),
        "{e:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn refused_when_nothing_listens() {
    let net = MemoryNetwork::new();
    let a = node(&net, 1, config());
    let to = NetAddress::new(
        NodeKey::from_seed([2; 32]).node_id(),
        "10.9.9.9:1".parse().unwrap(),
    );
    let e = a.dial(&to).await.unwrap_err();
    assert!(e.is_dial(), "{e:?}");
    // Listening on another host's IP is refused.
    assert!(matches!(
        a.listen("10.9.9.9:1".parse().unwrap()).await,
        Err(Error::Listen { .. })
    ));
}

/// Waits (in virtual time) until `cond` holds.
async fn wait_until(what: &str, cond: impl Fn() -> bool) {
    for _ in 0..1000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(start_paused = true)]
async fn a_full_accept_queue_drops_rejections_and_holds_connections() {
    let net = MemoryNetwork::new();
    let mut c = config();
    c.accept_queue(1);
    let (b, b_addr) = listening(&net, 1, c).await;
    for seed in 2..5 {
        let stranger = node_at(&net, net.next_ip(), seed, "other-chain", config());
        assert!(stranger.dial(&b_addr).await.is_err());
    }
    wait_until("three rejections", || b.stats().rejected == 3).await;
    // A good peer gets in; its connection waits for room in the queue, holding its slot.
    let a = node(&net, 5, config());
    let out = a.dial(&b_addr).await.unwrap();
    assert_eq!(b.incoming(), 1);
    // One rejection was queued, the other two were dropped; the connection comes next.
    let e = b.accept().await.unwrap_err();
    assert!(matches!(e, Error::Incompatible { .. }), "{e:?}");
    let inb = b.accept().await.unwrap();
    assert_eq!(inb.node_id(), a.node_id());
    assert_eq!(out.node_id(), b.node_id());
}

#[tokio::test(start_paused = true)]
async fn listening_once_and_freeing_the_address() {
    let net = MemoryNetwork::new();
    let ip = net.next_ip();
    let mk = |seed: u8| node_at(&net, ip, seed, "sim", config());
    let at: std::net::SocketAddr = "0.0.0.0:26656".parse().unwrap();
    // Two listens at once on one transport: one wins, the other's address is not kept.
    let a = mk(1);
    let (r1, r2) = tokio::join!(a.listen("0.0.0.0:0".parse().unwrap()), a.listen(at));
    let won = match (r1, r2) {
        (Ok(won), Err(Error::AlreadyListening { addr })) => {
            assert_eq!(addr, won);
            won
        }
        (Err(Error::AlreadyListening { addr }), Ok(won)) => {
            assert_eq!(addr, won);
            won
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(net.listeners(), vec![won]);
    // Close frees the address; a later transport may take it, and dropping the closed one
    // leaves the newcomer's listener alone.
    a.close().await;
    assert!(net.listeners().is_empty());
    let b = mk(2);
    let bound = b.listen(won).await.unwrap();
    drop(a);
    assert_eq!(net.listeners(), vec![bound]);
    // Dropping a listening transport frees its address at once.
    drop(b);
    assert!(net.listeners().is_empty());
}
