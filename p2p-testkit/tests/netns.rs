//! The testnet in netns mode: every node in its own network namespace with its own IPv4
//! address behind a bridge, the duplicate-IP filter on. A small testnet converges and
//! delivers every gossip message; the partition scenario splits, heals and restarts and the
//! network recovers; and whatever a run created (namespaces, veths, bridges, marker file) is
//! gone afterwards: after a normal end, after a failure half-way through the setup, and when
//! a [`Testnet`] is dropped without being stopped.
//!
//! Needs Linux, root and a working `ip netns`; otherwise each test says why on stderr and
//! passes without running. The tests run one at a time (they share the machine's CPUs and
//! the check for leftovers looks at all of this process's names).

use std::process::Command;
use std::time::Duration;

use p2p_testkit::testnet::{
    self, NetnsError, NetnsOptions, PartitionConfig, Scenario, Testnet, TestnetConfig,
    TestnetError, netns,
};

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Whether netns mode can run here; if not, says why. Also starts logging (`RUST_LOG`).
fn supported(test: &str) -> bool {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    match netns::check_support() {
        Ok(()) => true,
        Err(e) => {
            eprintln!("{test}: skipped: {e}");
            false
        }
    }
}

fn ip(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(out.status.success(), "ip {args:?} failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Namespaces and links whose names contain `tag`, and whether its marker file is there.
fn leftovers(tag: &str) -> Vec<String> {
    let mut left: Vec<String> = ip(&["netns", "list"])
        .lines()
        .chain(ip(&["-o", "link", "show"]).lines())
        .filter(|l| l.contains(tag))
        .map(str::to_owned)
        .collect();
    let marker = format!("{}/{}/{tag}", netns::MARKER_DIR, std::process::id());
    if std::path::Path::new(&marker).exists() {
        left.push(marker);
    }
    left
}

fn config(nodes: usize) -> TestnetConfig {
    let mut config = TestnetConfig::default();
    config
        .nodes(nodes)
        .duration(Duration::from_secs(45))
        .gossip_for(Some(Duration::from_secs(2)))
        .rate(10.0)
        .netns(Some(NetnsOptions::default()))
        .seed(11);
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_nodes_in_namespaces_converge_with_the_duplicate_ip_filter_on() {
    let _one = ONE_AT_A_TIME.lock().await;
    if !supported("six_nodes_in_namespaces") {
        return;
    }
    let s = testnet::run(&config(6), std::future::pending(), |_| {}, |_| {})
        .await
        .unwrap();
    println!("{}", s.to_json_line());
    let ns = s.netns.as_ref().expect("a netns summary");
    assert!(ns.duplicate_ip_filter);
    assert!(s.converged, "did not converge: {s:?}");
    assert_eq!(s.outbound_target, 4);
    assert!(s.peers_min >= 4, "a node with {} peers", s.peers_min);
    assert!(
        s.addrbook_min >= 4,
        "an address book with {}",
        s.addrbook_min
    );
    // Five gossiping nodes at 10 messages/s for 2 s; every copy reached the four others.
    assert!(s.sent >= 5 * 10, "only {} sent", s.sent);
    assert_eq!(s.delivered, s.sent * 4);
    assert_eq!(s.lost, 0);
    assert!(s.partition.is_none());
    let left = leftovers(&ns.tag);
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_has_its_own_address_and_a_dropped_testnet_cleans_up() {
    let _one = ONE_AT_A_TIME.lock().await;
    if !supported("own_address_and_drop") {
        return;
    }
    let net = Testnet::start(&config(4)).await.unwrap();
    let ns = net.netns().expect("netns mode");
    let tag = ns.tag().to_owned();
    // One address per node, all on the reference port, in the subnet picked.
    let addrs: Vec<_> = (0..4).map(|i| net.addr(i).socket_addr()).collect();
    for (i, a) in addrs.iter().enumerate() {
        assert_eq!(a.port(), testnet::NETNS_PORT);
        assert_eq!(a.ip(), std::net::IpAddr::V4(ns.ip(i)));
        assert!(addrs.iter().filter(|b| b.ip() == a.ip()).count() == 1);
    }
    // Each node listens inside its own namespace, on its own address.
    let inside = Command::new("ip")
        .args(["netns", "exec", &ns.namespace(2), "ss", "-ltn"])
        .output();
    if let Some(inside) = inside.ok().filter(|o| o.status.success()) {
        let text = String::from_utf8_lossy(&inside.stdout);
        assert!(
            text.contains(&addrs[2].to_string()),
            "node 2 listens: {text}"
        );
        assert!(
            !text.contains(&addrs[1].to_string()),
            "node 1 in node 2's namespace"
        );
    }
    // Namespaces, veths and the bridge exist while it runs, and the marker lists them.
    assert_eq!(leftovers(&tag).len(), 4 + 4 + 1 + 1);
    let marker = std::fs::read_to_string(ns.marker()).unwrap();
    assert_eq!(marker.lines().count(), 4 + 4 + 1);
    drop(net);
    let left = leftovers(&tag);
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leftovers_of_a_dead_run_are_removed_and_a_live_ones_are_kept() {
    let _one = ONE_AT_A_TIME.lock().await;
    if !supported("leftovers") {
        return;
    }
    // A process that is gone: its pid has no /proc entry once reaped.
    let mut child = Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    assert!(!std::path::Path::new(&format!("/proc/{dead}")).exists());
    let tag = format!("{dead:06x}ff");
    let (ns, bridge) = (format!("p2ptn-{tag}-0"), format!("ptb{tag}"));
    ip(&["netns", "add", &ns]);
    ip(&["link", "add", "name", &bridge, "type", "bridge"]);
    let dir = format!("{}/{dead}", netns::MARKER_DIR);
    std::fs::create_dir_all(&dir).unwrap();
    // A name that is not of our forms is never deleted, whatever a marker says.
    std::fs::write(
        format!("{dir}/{tag}"),
        format!("link {bridge}\nnetns {ns}\nlink lo\n"),
    )
    .unwrap();
    // This (live) process's marker is kept.
    let live = format!("{}/{}", netns::MARKER_DIR, std::process::id());
    std::fs::create_dir_all(&live).unwrap();
    std::fs::write(format!("{live}/keepme"), "").unwrap();

    let removed = netns::remove_stale();
    assert_eq!(
        removed,
        vec![std::path::PathBuf::from(format!("{dir}/{tag}"))]
    );
    let left = leftovers(&tag);
    assert!(left.is_empty(), "left behind: {left:?}");
    assert!(!std::path::Path::new(&dir).exists());
    assert!(ip(&["link", "show", "lo"]).contains("lo"));
    assert!(std::path::Path::new(&format!("{live}/keepme")).exists());
    std::fs::remove_file(format!("{live}/keepme")).unwrap();
    let _ = std::fs::remove_dir(&live);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_setup_leaves_nothing_behind() {
    let _one = ONE_AT_A_TIME.lock().await;
    if !supported("failed_setup") {
        return;
    }
    let mut cfg = config(3);
    let mut options = NetnsOptions::default();
    options.delay_ms(Some(5));
    cfg.netns(Some(options)).duration(Duration::from_secs(3));
    match testnet::run(&cfg, std::future::pending(), |_| {}, |_| {}).await {
        // This kernel has no netem: the error says so, and what was set up before it is gone.
        Err(TestnetError::Netns(NetnsError::NetemUnavailable { command, .. })) => {
            let tag = command
                .split_whitespace()
                .find_map(|w| w.strip_prefix("p2ptn-"))
                .and_then(|w| w.split('-').next())
                .expect("the namespace in the command")
                .to_owned();
            let left = leftovers(&tag);
            assert!(left.is_empty(), "left behind: {left:?}");
        }
        // A kernel with netem: the delay shows in the latencies.
        Ok(s) => {
            assert!(s.converged);
            assert!(s.latency_p50_ms >= 5.0, "{s:?}");
            let left = leftovers(&s.netns.as_ref().unwrap().tag);
            assert!(left.is_empty(), "left behind: {left:?}");
        }
        Err(e) => panic!("unexpected error: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_network_recovers_from_a_partition_and_restarts() {
    let _one = ONE_AT_A_TIME.lock().await;
    if !supported("partition") {
        return;
    }
    let mut cfg = config(6);
    let mut p = PartitionConfig::default();
    p.hold(Duration::from_secs(5))
        .restarts(2)
        .recover_limit(Duration::from_secs(20));
    // After the heal both sides dial at once and the duplicate-IP filter refuses one of each
    // pair mid-handshake: a failed attempt for the PEX, not a ban (the default ban time).
    cfg.scenario(Scenario::Partition(p))
        .duration(Duration::from_secs(60));
    let s = testnet::run(&cfg, std::future::pending(), |_| {}, |_| {})
        .await
        .unwrap();
    println!("{}", s.to_json_line());
    let p = s.partition.as_ref().expect("a partition summary");
    assert!(p.completed, "the scenario did not finish: {p:?}");
    assert_eq!(p.second_half, vec![3, 4, 5]);
    // The split took effect: nobody kept four peers (each half has at most three nodes but
    // the seed), and no connection across it survived the pings.
    assert!(p.peers_min_split.is_some_and(|m| m < 4), "{p:?}");
    assert_eq!(p.cross_connections_at_heal, Some(0), "{p:?}");
    // Then every node got back to its target, after the heal and after the restarts, and
    // the restarted nodes came back with their address books.
    assert!(p.heal_reconverge_s.is_some(), "{p:?}");
    assert_eq!(p.nodes_at_target_after_heal, 5);
    assert_eq!(p.restarted, vec![4, 5]);
    assert!(p.restarted_loaded.iter().all(|&l| l >= 4), "{p:?}");
    assert!(p.restart_reconverge_s.is_some(), "{p:?}");
    assert_eq!(p.nodes_at_target_after_restart, 5);
    // Gossip on the recovered network lost nothing.
    assert!(s.sent >= 5 * 10, "only {} sent", s.sent);
    assert_eq!(s.delivered, s.sent * 4);
    assert_eq!(s.lost, 0);
    let left = leftovers(&s.netns.as_ref().unwrap().tag);
    assert!(left.is_empty(), "left behind: {left:?}");
}
