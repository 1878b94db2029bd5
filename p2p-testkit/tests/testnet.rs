//! The testnet over real loopback TCP: 16 nodes find each other through one PEX seed and
//! flood gossip without losing a message; a restarted node comes back with its address book
//! file and rejoins without the seed; the metrics endpoint serves each node's switch metrics.
//!
//! No wall-clock bounds are asserted: the overall limits below are only there so a broken
//! build fails instead of hanging.

use std::time::Duration;

use p2p_testkit::testnet::{self, Testnet, TestnetConfig, node_config_dir};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Limit for anything to happen (discovery on a loaded machine takes a few seconds).
const PATIENCE: Duration = Duration::from_secs(90);

async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_nodes_converge_through_the_seed_and_lose_no_gossip() {
    let mut config = TestnetConfig::default();
    config
        .nodes(16)
        .duration(PATIENCE)
        .gossip_for(Some(Duration::from_secs(2)))
        .rate(10.0)
        .seed(7);
    let mut snapshots = 0;
    let s = testnet::run(&config, std::future::pending(), |_| {}, |_| snapshots += 1)
        .await
        .unwrap();
    println!("{}", s.to_json_line());
    assert!(snapshots > 0, "no progress reported");
    assert_eq!(s.nodes, 16);
    assert!(!s.interrupted);
    assert!(s.converged, "the testnet did not converge: {s:?}");
    assert!(s.convergence_s.is_some());
    // 16 nodes: the 15 besides the seed can only have 14 peers each, so the target of 10
    // outbound peers is reached, or the mesh is full.
    assert_eq!(s.outbound_target, 10);
    assert!(s.outbound_max <= 10, "an outbound count over the target");
    assert!(s.peers_min >= 10, "a node with {} peers", s.peers_min);
    // Everyone learnt everyone (but itself) through PEX.
    assert!(
        s.addrbook_min >= 14,
        "an address book with {}",
        s.addrbook_min
    );
    // Fifteen gossiping nodes at 10 messages/s for 2 s; every copy arrived.
    assert!(s.sent >= 15 * 10, "only {} sent", s.sent);
    assert_eq!(s.delivered, s.sent * 14);
    assert_eq!(s.lost, 0);
    assert!(s.latency_p50_ms > 0.0 && s.latency_p50_ms <= s.latency_p99_ms);
    assert!(s.latency_p99_ms <= s.latency_max_ms);
    assert!(!s.edges.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_reloads_its_address_book_and_rejoins_without_the_seed() {
    let mut config = TestnetConfig::default();
    config.nodes(8).seed(11);
    let mut net = Testnet::start(&config).await.unwrap();
    // 8 nodes: target min(10, 6) = 6, a full mesh of the seven besides the seed.
    assert_eq!(net.target(), 6);
    eventually("all nodes converge", || net.is_fully_converged()).await;

    let k = 3;
    net.stop_node(k).await;
    assert!(net.peers(k).is_none());
    let file = node_config_dir(net.home(), k).join("addrbook.json");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains(&net.ids()[1].to_string()), "{text}");
    // With the seed gone, only the book can bring the node back.
    net.stop_node(0).await;
    let loaded = net.restart_node(k).await.unwrap();
    assert!(
        loaded >= 6,
        "only {loaded} addresses loaded from {}",
        file.display()
    );
    eventually("the restarted node rejoins", || net.is_converged(k)).await;
    eventually("everyone is back at the target", || {
        (1..net.len()).all(|i| net.is_converged(i))
    })
    .await;
    net.stop().await;
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    tokio::time::timeout(PATIENCE, s.read_to_string(&mut out))
        .await
        .unwrap()
        .unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_endpoint_serves_each_nodes_switch_metrics() {
    let mut config = TestnetConfig::default();
    config.nodes(4).seed(3);
    let net = Testnet::start(&config).await.unwrap();
    let server = net.serve_metrics(0).await.unwrap();
    assert_eq!(server.addrs().len(), 4);
    eventually("all nodes converge", || net.is_fully_converged()).await;
    // Node 1 has the two other nodes (and perhaps the seed) as peers.
    let page = http_get(server.addrs()[1], "/metrics").await;
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("openmetrics-text"), "{page}");
    let peers: i64 = page
        .lines()
        .find_map(|l| l.strip_prefix("cometbft_p2p_peers "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peers gauge in {page}"));
    assert!(peers >= 2, "node 1 reports {peers} peers");
    assert!(
        page.contains("cometbft_p2p_message_receive_bytes_total"),
        "{page}"
    );
    assert_eq!(
        net.metrics_text(1)
            .map(|t| t.contains("cometbft_p2p_peers")),
        Some(true)
    );
    let missing = http_get(server.addrs()[1], "/nope").await;
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
    drop(server);
    net.stop().await;
}
