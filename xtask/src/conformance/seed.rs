//! `p2p-seed` against reference nodes: the deployable seed, built from a CometBFT home
//! directory as `p2p-seed --home` builds it, is the only address two (here three) reference
//! nodes with the reference PEX reactor know; they find each other through it alone.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use p2p_seed::config::ChainConfig;
use p2p_seed::{Seed, SeedOptions};
use p2p_types::HostPort;
use p2p_types::home::{Home, InitOptions};

use super::pex::{
    DISCOVERY_TIMEOUT, ENSURE_PEERS_ARG, Scratch, free_port, go_node, known_ids, until_state,
};
use super::{Case, CaseResult};

pub(super) fn cases() -> Vec<Case> {
    vec![Case {
        name: "seed/go-nodes-find-each-other-through-p2p-seed",
        run: |bin| Box::pin(go_nodes_through_seed(bin)),
    }]
}

/// A home as `p2p-seed --home` creates it (the reference's `init` defaults), with the two
/// settings a one-machine network needs changed in its `config.toml`: loopback addresses are
/// not routable under `addr_book_strict`, and every node shares 127.0.0.1.
fn loopback_home(dir: &std::path::Path, chain_id: &str) -> anyhow::Result<()> {
    let mut init = InitOptions::default();
    init.chain_id(chain_id);
    let home = Home::load_or_init(dir, &init).map_err(|e| anyhow!("{e}"))?;
    let path = home.config_file();
    let text = std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
    let text = text
        .replace("addr_book_strict = true", "addr_book_strict = false")
        .replace("allow_duplicate_ip = false", "allow_duplicate_ip = true");
    std::fs::write(&path, text)?;
    Ok(())
}

async fn go_nodes_through_seed(bin: PathBuf) -> CaseResult {
    let dir = Scratch::new("p2p-seed")?;
    let home = dir.path("seed-home");
    loopback_home(&home, "test-chain")?;
    let listen = free_port()?;
    let mut chain = ChainConfig::new(&home);
    chain.laddr = Some(HostPort::from(listen));
    chain.chain_id = Some("test-chain".to_owned());
    let (home, key) = p2p_seed::open_home(&chain).map_err(|e| anyhow!("{e}"))?;
    let mut options = SeedOptions::default();
    // The reference nodes ask every 2 s here (their ensure-peers period); the seed crawls
    // on the same short cadence.
    options
        .crawl_period(Duration::from_secs(2))
        .ensure_peers_period(Duration::from_secs(2))
        .min_time_between_crawls(Duration::from_secs(2))
        .rng_seed(Some(7));
    let seed = Seed::start_with_key(&home, key, &options)
        .await
        .map_err(|e| anyhow!("{e}"))?;
    let seeds = seed
        .local_addr()
        .ok_or_else(|| anyhow!("the seed is not listening"))?
        .to_string();

    let mut nodes = Vec::new();
    for i in 0..3u64 {
        let file = dir.arg(&format!("go-addrbook-{i}.json"));
        let args = [
            "--file",
            &file,
            "--seeds",
            &seeds,
            "--ensure-peers-period",
            ENSURE_PEERS_ARG,
        ];
        nodes.push(go_node(&bin, 41 + i, &args).await?);
    }
    let ids: Vec<String> = nodes.iter().map(|(_, a)| a.id().to_string()).collect();
    let started = tokio::time::Instant::now();
    let mut result = Ok(());
    for (i, (shim, addr)) in nodes.iter_mut().enumerate() {
        let me = addr.id().to_string();
        let others: Vec<&String> = ids.iter().filter(|id| **id != me).collect();
        let what = format!("reference node {i} finding the others through p2p-seed");
        let r = until_state(shim, &what, DISCOVERY_TIMEOUT, |s| {
            let known = known_ids(s);
            others.iter().all(|o| known.contains(*o))
        })
        .await;
        if let Err(e) = r {
            result = Err(e);
            break;
        }
    }
    let took = started.elapsed();
    let status = seed.status();
    let line = p2p_seed::status::status_line(&status);
    seed.stop().await;
    drop(nodes);
    result?;
    let saved = home.resolve(&home.config().p2p.addr_book_file);
    anyhow::ensure!(saved.exists(), "the seed did not save {}", saved.display());
    Ok(format!(
        "3 reference nodes knowing only p2p-seed found each other in {:.1} s; seed status: {line}",
        took.as_secs_f64()
    ))
}
