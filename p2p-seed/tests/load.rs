//! 200 peers connect to a seed at once while its HTTP endpoints are queried: the inbound
//! limit holds and every endpoint keeps answering.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use p2p_seed::SeedSet;

const PEERS: u32 = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_answer_while_200_peers_connect_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let home = loopback_home(dir.path(), "load-1");
    let limit = home.config().p2p.max_num_inbound_peers;
    assert_eq!(limit, 40, "the reference's default inbound limit");
    let set = Arc::new(
        SeedSet::start(
            &[chain(dir.path(), "load-1", free_addr(9))],
            &fast_options(),
        )
        .await
        .unwrap(),
    );
    let seed_addr = set.seeds()[0].local_addr().unwrap();
    let (http, stop_http, http_task) = serve_http(set.clone()).await;
    let rss_before = rss_kib();

    // Sample the seed's inbound count and query every endpoint until the dials are done.
    let done = Arc::new(AtomicBool::new(false));
    let max_inbound = Arc::new(AtomicUsize::new(0));
    let answers = Arc::new(AtomicUsize::new(0));
    let watcher = {
        let (set, done, max_inbound, answers) = (
            set.clone(),
            done.clone(),
            max_inbound.clone(),
            answers.clone(),
        );
        tokio::spawn(async move {
            while !done.load(Ordering::Acquire) {
                let inbound = set.seeds()[0].switch().num_peers().1;
                max_inbound.fetch_max(inbound, Ordering::AcqRel);
                for path in ["/metrics", "/peers", "/peers.txt", "/status"] {
                    let (code, _, body) = get(http, path).await;
                    assert_eq!(code, 200, "{path}");
                    if path == "/metrics" {
                        assert!(body.contains("cometbft_p2p_peers{chain_id=\"load-1\"}"));
                        assert!(body.ends_with("# EOF\n"));
                    }
                    if path == "/peers" {
                        assert!(serde_json::from_str::<serde_json::Value>(&body).is_ok());
                    }
                    answers.fetch_add(1, Ordering::AcqRel);
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };

    // 200 peers that stay connected (they never ask for addresses), all dialling at once.
    let mut switches = Vec::new();
    for n in 0..PEERS {
        let announce = std::net::SocketAddr::from(([127, 0, 1, (n % 250) as u8 + 1], 26656));
        let s = silent_switch(1000 + n, "load-1", announce);
        s.start().await.unwrap();
        switches.push(s);
    }
    let wave = |idx: Vec<usize>| {
        let mut dials = tokio::task::JoinSet::new();
        for i in idx {
            let h = switches[i].handle();
            dials.spawn(async move { (i, h.dial_peer_with_address(&seed_addr).await.is_ok()) });
        }
        dials
    };
    // All at once: the transport's per-source handshake limit (32 at once, then 10 per
    // second; every peer here comes from 127.0.0.1) refuses most.
    let mut dials = wave((0..switches.len()).collect());
    let mut failed = Vec::new();
    let mut first_ok = 0;
    while let Some(r) = dials.join_next().await {
        let (i, ok) = r.unwrap();
        if ok {
            first_ok += 1;
        } else {
            failed.push(i);
        }
    }
    eprintln!(
        "load: first wave {first_ok} of {PEERS} accepted; {:?}",
        set.statuses()[0]
    );
    // The refused ones retry (as real nodes would) until the inbound slots are full; later
    // ones are refused by the inbound limit.
    let mut rounds = 0;
    while set.seeds()[0].switch().num_peers().1 < limit {
        rounds += 1;
        assert!(rounds < 300, "the seed never filled its inbound slots");
        tokio::time::sleep(Duration::from_millis(200)).await;
        let batch: Vec<usize> = failed.drain(..failed.len().min(20)).collect();
        let mut dials = wave(batch);
        while let Some(r) = dials.join_next().await {
            let (i, ok) = r.unwrap();
            if !ok {
                failed.push(i);
            }
        }
    }
    // With the slots full, another wave of the rest gets nowhere.
    let mut dials = wave(failed.clone());
    while dials.join_next().await.is_some() {}
    // Give refused peers' removals time to settle, then check the limit again.
    tokio::time::sleep(Duration::from_millis(500)).await;
    done.store(true, Ordering::Release);
    watcher.await.unwrap();
    let status = &set.statuses()[0];
    let max = max_inbound.load(Ordering::Acquire);
    let rss_after = rss_kib();
    eprintln!(
        "load: {PEERS} peers, {rounds} retry rounds, inbound max seen {max} (limit {limit}), \
         now {} inbound; {} HTTP answers; RSS {rss_before:?} KiB -> {rss_after:?} KiB (seed + 200 client switches in one process)",
        status.inbound,
        answers.load(Ordering::Acquire)
    );
    assert!(max <= limit, "inbound peers {max} above the limit {limit}");
    assert_eq!(status.inbound, limit);
    assert!(answers.load(Ordering::Acquire) >= 4);
    // The metrics agree with the switch.
    let (_, _, m) = get(http, "/metrics").await;
    assert!(
        m.contains(&format!(
            "cometbft_seed_peers_inbound{{chain_id=\"load-1\"}} {limit}"
        )),
        "{m}"
    );
    let _ = stop_http.send(());
    http_task.await.unwrap();
    for s in &switches {
        s.stop().await;
    }
    set.stop().await;
}
