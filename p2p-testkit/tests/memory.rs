//! The in-memory transport's own behaviour, deterministic under tokio's paused clock.

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
    let key = NodeKey::from_seed([seed; 32]);
    let mut info = NodeInfo::new(key.node_id(), "sim", "tcp://10.0.0.1:26656");
    info.channels = vec![0x01];
    net.transport(key, info, config).unwrap()
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
    c.dangerous().allow_duplicate_ip(true);
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
    let mk = |seed: u8| {
        let key = NodeKey::from_seed([seed; 32]);
        let mut info = NodeInfo::new(key.node_id(), "sim", "tcp://10.0.0.9:26656");
        info.channels = vec![0x01];
        net.transport_at(ip, key, info, config()).unwrap()
    };
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
