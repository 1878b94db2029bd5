//! The testnet with reference Go nodes: 8 of our nodes and 2 CometBFT nodes (the Go
//! reference program's `pex --role node`) find each other through our seed, peer with each
//! other both ways, and our gossip loses nothing though the Go nodes lack its channel.
//!
//! The Go program comes from `COMETBFT_SHIM` or the workspace's target directory (`cargo
//! xtask shim` builds it there); without one the test prints "skipped: ..." and passes.
//! The time limit is only there so that a broken build fails instead of hanging.

use std::path::{Path, PathBuf};
use std::time::Duration;

use p2p_testkit::testnet::{self, TestnetConfig, TestnetError};

const PATIENCE: Duration = Duration::from_secs(90);

/// `COMETBFT_SHIM`, or the newest-named `conformance-go/*/bin/cometbft-shim` under the
/// target directory (`CARGO_TARGET_DIR` or the workspace's `target`).
fn find_shim() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("COMETBFT_SHIM") {
        return Some(PathBuf::from(p)).filter(|p| p.is_file());
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let mut found: Vec<PathBuf> = std::fs::read_dir(target.join("conformance-go"))
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("bin").join("cometbft-shim"))
        .filter(|p| p.is_file())
        .collect();
    found.sort();
    // Prefer the default line (v0.38) when several are built.
    found
        .iter()
        .find(|p| p.to_string_lossy().contains("v0.38."))
        .cloned()
        .or_else(|| found.pop())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_of_ours_and_two_go_nodes_converge_and_peer_both_ways() {
    let Some(shim) = find_shim() else {
        println!("skipped: no Go reference program (set COMETBFT_SHIM or run `cargo xtask shim`)");
        return;
    };
    let mut config = TestnetConfig::default();
    config
        .nodes(8)
        .go_nodes(2)
        .go_shim(Some(shim))
        .duration(PATIENCE)
        .gossip_for(Some(Duration::from_secs(2)))
        .rate(10.0)
        .seed(11);
    let s = testnet::run(&config, std::future::pending(), |_| {}, |_| {})
        .await
        .unwrap();
    println!("{}", s.to_json_line());
    assert!(s.converged, "did not converge: {s:?}");
    assert_eq!(s.go_nodes, 2);
    assert_eq!(s.go_peers.len(), 2);
    for (k, g) in s.go_peers.iter().enumerate() {
        assert!(
            g.ours > 0,
            "Go node {k} has none of our nodes as peers: {g:?}"
        );
        assert!(
            g.ours_seeing_it > 0,
            "none of our nodes has Go node {k} as a peer: {g:?}"
        );
    }
    // Gossip counts our nodes only: 7 originate, each message reaches the 6 others.
    assert!(s.sent > 0);
    assert_eq!(s.delivered, s.sent * 6);
    assert_eq!(s.lost, 0);
    assert_eq!(
        s.forward_failures, 0,
        "a send to a peer without the channel?"
    );
}

#[tokio::test]
async fn go_nodes_without_a_shim_is_a_typed_error() {
    let mut config = TestnetConfig::default();
    config
        .nodes(3)
        .go_nodes(1)
        .go_shim(Some(PathBuf::from("/nonexistent/cometbft-shim")));
    let err = testnet::run(&config, std::future::pending(), |_| {}, |_| {})
        .await
        .unwrap_err();
    assert!(
        matches!(err, TestnetError::GoShimMissing { path: Some(_) }),
        "{err}"
    );
    assert!(err.to_string().contains("cargo xtask shim"), "{err}");
}
