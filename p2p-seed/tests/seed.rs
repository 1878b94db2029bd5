//! The seed over loopback TCP with Rust nodes: discovery through it, restart from its address
//! book, a Go node's home used unchanged, and several chains in one process.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use p2p_seed::SeedSet;

const LIMIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_that_know_only_the_seed_find_each_other() {
    let dir = tempfile::tempdir().unwrap();
    loopback_home(dir.path(), "disco-1");
    let seed = start_seed(&chain(dir.path(), "disco-1", free_addr(2)), &fast_options()).await;
    let seed_addr = seed.local_addr().unwrap();
    assert_eq!(seed.chain_id(), "disco-1");
    assert_eq!(seed_addr.id(), seed.node_id());

    let a = node(1, "disco-1", &[seed_addr]).await;
    let b = node(2, "disco-1", &[seed_addr]).await;
    eventually("A and B connect to each other", LIMIT, || {
        a.switch.handle().peer(b.addr.id()).is_some()
            || b.switch.handle().peer(a.addr.id()).is_some()
    })
    .await;
    // Neither knew the other: the address came from the seed.
    assert!(a.book.lock().has_address(&b.addr) || b.book.lock().has_address(&a.addr));

    // The seed answered both, learned both, and verified both by crawling them.
    eventually("the seed verifies both nodes", LIMIT, || {
        seed.status().verified == 2
    })
    .await;
    let s = seed.status();
    assert!(s.requests_served >= 2, "{s:?}");
    assert!(s.crawl_dials >= 2, "{s:?}");
    assert!(s.answers_received >= 1, "{s:?}");
    {
        let book = seed.pex().address_book();
        let book = book.lock();
        assert!(book.has_address(&a.addr) && book.has_address(&b.addr));
        let entries: Vec<String> = book.entries().map(|k| k.addr().to_string()).collect();
        assert_eq!(s.new + s.old, entries.len(), "{entries:?}");
        assert_eq!(book.num_bans(), 0, "nobody was banned");
    }
    let mut ids: Vec<String> = seed.verified_peers().into_iter().map(|p| p.id).collect();
    ids.sort();
    let mut want = vec![a.addr.id().to_string(), b.addr.id().to_string()];
    want.sort();
    assert_eq!(ids, want);

    a.switch.stop().await;
    b.switch.stop().await;
    seed.stop().await;
    assert!(seed.local_addr().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn addresses_learned_before_a_stop_are_served_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    loopback_home(dir.path(), "restart-1");
    let options = fast_options();
    let seed = start_seed(&chain(dir.path(), "restart-1", free_addr(3)), &options).await;
    let seed_addr = seed.local_addr().unwrap();
    let a = node(11, "restart-1", &[seed_addr]).await;
    let b = node(12, "restart-1", &[seed_addr]).await;
    eventually("the seed learns A and B", LIMIT, || {
        let book = seed.pex().address_book();
        let book = book.lock();
        book.has_address(&a.addr) && book.has_address(&b.addr)
    })
    .await;
    a.switch.stop().await;
    b.switch.stop().await;
    seed.stop().await;

    // The book on disk has both.
    let file = std::fs::read_to_string(dir.path().join("config/addrbook.json")).unwrap();
    for n in [&a, &b] {
        assert!(file.contains(&n.addr.id().to_string()), "{file}");
    }

    // A restarted seed (on another port) loads them and gives them to a newcomer, although
    // A and B are gone.
    let seed = start_seed(&chain(dir.path(), "restart-1", free_addr(4)), &options).await;
    {
        let book = seed.pex().address_book();
        let book = book.lock();
        assert!(book.has_address(&a.addr) && book.has_address(&b.addr));
    }
    let c = node(13, "restart-1", &[seed.local_addr().unwrap()]).await;
    eventually(
        "the newcomer receives A and B from the restarted seed",
        LIMIT,
        || {
            let book = c.book.lock();
            book.has_address(&a.addr) && book.has_address(&b.addr)
        },
    )
    .await;
    assert!(seed.status().requests_served >= 1);
    c.switch.stop().await;
    seed.stop().await;
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), dst).unwrap();
        }
    }
}

fn snapshot(dir: &Path, files: &[&str]) -> Vec<Vec<u8>> {
    files
        .iter()
        .map(|f| std::fs::read(dir.join(f)).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_go_nodes_home_is_used_unchanged() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../p2p-types/tests/data");
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&data.join("go-home"), dir.path());
    let files = [
        "config/config.toml",
        "config/node_key.json",
        "config/genesis.json",
    ];
    let before = snapshot(dir.path(), &files);
    let go_id = std::fs::read_to_string(data.join("go-home.node_id")).unwrap();

    // Only the listen address (loopback) and the seeds (not the fixture's remote ones) are
    // overridden, as --laddr and --seeds would.
    let mut c = p2p_seed::config::ChainConfig::new(dir.path());
    c.laddr(free_addr(5).into()).seeds(Vec::new());
    let seed = start_seed(&c, &fast_options()).await;
    assert_eq!(seed.chain_id(), "go-chain-1", "the genesis file's chain ID");
    assert_eq!(
        seed.node_id().to_string(),
        go_id.trim(),
        "the Go node's key"
    );
    // A Rust node can use it.
    let n = node(21, "go-chain-1", &[seed.local_addr().unwrap()]).await;
    eventually("the seed learns the node", LIMIT, || {
        seed.pex().address_book().lock().has_address(&n.addr)
    })
    .await;
    n.switch.stop().await;
    seed.stop().await;
    assert_eq!(snapshot(dir.path(), &files), before, "files left unchanged");
    assert!(dir.path().join("config/addrbook.json").exists());

    // The reference's default config.toml of each version, in a home with nothing else.
    for v in ["v0.37.18", "v0.38.26", "v1.0.1"] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("config")).unwrap();
        let toml = data.join(format!("default-config/{v}.toml"));
        std::fs::copy(&toml, dir.path().join("config/config.toml")).unwrap();
        let seed = start_seed(
            &chain(dir.path(), &format!("chain-{v}"), free_addr(6)),
            &fast_options(),
        )
        .await;
        assert!(seed.local_addr().is_some(), "{v}");
        assert_eq!(seed.status().chain_id, format!("chain-{v}"));
        seed.stop().await;
        assert_eq!(
            std::fs::read(dir.path().join("config/config.toml")).unwrap(),
            std::fs::read(&toml).unwrap(),
            "{v}: config.toml unchanged"
        );
        // As the reference's init: a node key was created.
        assert!(dir.path().join("config/node_key.json").exists(), "{v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_process_seeds_two_chains() {
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    loopback_home(dir_a.path(), "alpha-1");
    loopback_home(dir_b.path(), "beta-1");
    let chains = [
        chain(dir_a.path(), "alpha-1", free_addr(7)),
        chain(dir_b.path(), "beta-1", free_addr(8)),
    ];
    let set = Arc::new(SeedSet::start(&chains, &fast_options()).await.unwrap());
    assert_eq!(set.seeds().len(), 2);
    let sa = set.get("alpha-1").unwrap().local_addr().unwrap();
    let sb = set.get("beta-1").unwrap().local_addr().unwrap();
    assert_ne!(sa.id(), sb.id(), "each chain has its own key");
    let a1 = node(31, "alpha-1", &[sa]).await;
    let a2 = node(32, "alpha-1", &[sa]).await;
    let b1 = node(33, "beta-1", &[sb]).await;
    // A node of beta that dials alpha's seed is refused (other chain) and not learned.
    let stray = node(34, "beta-1", &[sa]).await;
    let verified = |id: &str| set.get(id).unwrap().status().verified;
    let waited = tokio::time::timeout(LIMIT, async {
        while verified("alpha-1") != 2 || verified("beta-1") != 1 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(
        waited.is_ok(),
        "each seed verifies its own chain's nodes: {:?}",
        set.statuses()
    );
    eventually("alpha's nodes find each other", LIMIT, || {
        a1.switch.handle().peer(a2.addr.id()).is_some()
            || a2.switch.handle().peer(a1.addr.id()).is_some()
    })
    .await;
    assert!(
        !set.get("alpha-1")
            .unwrap()
            .pex()
            .address_book()
            .lock()
            .has_address(&stray.addr)
    );
    assert!(!b1.book.lock().has_address(&a1.addr));

    // One status per chain.
    let st = set.statuses();
    assert_eq!(
        st.iter().map(|s| s.chain_id.as_str()).collect::<Vec<_>>(),
        ["alpha-1", "beta-1"]
    );
    // /peers per chain, in both spellings; all chains together; an unknown one.
    let (addr, stop, task) = serve_http(set.clone()).await;
    let ids = |body: &str| -> Vec<String> {
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        let mut ids: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    };
    let mut alpha = vec![a1.addr.id().to_string(), a2.addr.id().to_string()];
    alpha.sort();
    let (code, ct, body) = get(addr, "/peers?chain=alpha-1").await;
    assert_eq!((code, ct.as_str()), (200, "application/json"));
    assert_eq!(ids(&body), alpha);
    let (_, _, body) = get(addr, "/alpha-1/peers").await;
    assert_eq!(ids(&body), alpha);
    let (_, _, body) = get(addr, "/beta-1/peers.txt").await;
    assert_eq!(body.trim(), b1.addr.to_string());
    let (_, _, body) = get(addr, "/peers?chain=beta-1&format=list").await;
    assert_eq!(body.trim(), b1.addr.to_string());
    let (_, _, body) = get(addr, "/peers").await;
    assert_eq!(ids(&body).len(), 3);
    let (code, _, _) = get(addr, "/peers?chain=gamma-1").await;
    assert_eq!(code, 404);
    let (code, _, _) = get(addr, "/gamma-1/peers").await;
    assert_eq!(code, 404);
    let (code, _, body) = get(addr, "/status").await;
    assert_eq!(code, 200);
    assert!(body.contains("\"alpha-1\"") && body.contains("\"beta-1\""));
    // /metrics: both chains' series, each family declared once.
    let (code, ct, m) = get(addr, "/metrics").await;
    assert_eq!(code, 200);
    assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
    for chain in ["alpha-1", "beta-1"] {
        assert!(
            m.contains(&format!("cometbft_p2p_peers{{chain_id=\"{chain}\"}}")),
            "{m}"
        );
        assert!(m.contains(&format!(
            "cometbft_seed_addrbook_verified{{chain_id=\"{chain}\"}}"
        )));
    }
    assert_eq!(
        m.matches("# TYPE cometbft_p2p_peers gauge").count(),
        1,
        "{m}"
    );
    assert!(
        m.contains("cometbft_seed_addrbook_verified{chain_id=\"alpha-1\"} 2"),
        "{m}"
    );
    assert!(m.ends_with("# EOF\n"));
    let _ = stop.send(());
    task.await.unwrap();

    for n in [a1, a2, b1, stray] {
        n.switch.stop().await;
    }
    set.stop().await;
    // A set refuses the same chain twice.
    let dup = [
        chain(dir_a.path(), "alpha-1", free_addr(7)),
        chain(dir_b.path(), "alpha-1", free_addr(8)),
    ];
    assert!(SeedSet::start(&dup, &fast_options()).await.is_err());
}
