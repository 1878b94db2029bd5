//! Helpers of the seed's integration tests: Rust nodes (switch + PEX reactor) on loopback TCP,
//! temp homes, a tiny HTTP client and a polling wait.
//!
//! Each node listens on its own loopback IP (127.0.0.N) so that the address book's per-IP
//! limit does not interfere; connections still come from 127.0.0.1, so the seeds under test
//! allow duplicate IPs.

#![allow(dead_code, unreachable_pub)]

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use p2p_mconn::ChannelDescriptor;
use p2p_pex::{AddrBook, AddrBookConfig, Config, Reactor, SharedAddrBook, SystemClock};
use p2p_seed::config::ChainConfig;
use p2p_seed::{Seed, SeedOptions};
use p2p_switch::{Envelope, Raw, Switch, SwitchBuilder, SwitchConfig};
use p2p_transport::TcpTransport;
use p2p_types::home::{Home, InitOptions};
use p2p_types::{HostPort, NetAddress, NodeInfo, NodeKey};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Logs to the test's output when `RUST_LOG` is set.
pub fn logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// A key from a number.
pub fn key(n: u32) -> NodeKey {
    let mut seed = [9u8; 32];
    seed[..4].copy_from_slice(&n.to_le_bytes());
    NodeKey::from_seed(seed)
}

/// A free port on 127.0.0.`last` (bound and released at once).
pub fn free_addr(last: u8) -> SocketAddr {
    let ip = Ipv4Addr::new(127, 0, 0, last);
    let l = std::net::TcpListener::bind((ip, 0)).unwrap();
    l.local_addr().unwrap()
}

/// A chain entry for a seed on `home`, listening on `laddr`, with no seeds.
pub fn chain(home: &Path, chain_id: &str, laddr: SocketAddr) -> ChainConfig {
    let mut c = ChainConfig::new(home);
    c.chain_id(chain_id)
        .laddr(HostPort::from(laddr))
        .seeds(Vec::new());
    c
}

/// Prepares a home as `p2p-seed --home` would create it (defaults, as the reference's init),
/// then turns off the address book's strictness and allows duplicate IPs in its config.toml
/// (a one-machine network needs both).
pub fn loopback_home(dir: &Path, chain_id: &str) -> Home {
    let mut init = InitOptions::default();
    init.chain_id(chain_id);
    let home = Home::load_or_init(dir, &init).unwrap();
    let path = home.config_file();
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text
        .replace("addr_book_strict = true", "addr_book_strict = false")
        .replace("allow_duplicate_ip = false", "allow_duplicate_ip = true");
    std::fs::write(&path, text).unwrap();
    Home::load_or_init(dir, &init).unwrap()
}

/// Seed options for tests: crawl every second, recrawl after a second, accept a crawled
/// peer's requests every 100 ms (the test nodes ask every 500 ms).
pub fn fast_options() -> SeedOptions {
    let mut o = SeedOptions::default();
    o.crawl_period(Duration::from_secs(1))
        .ensure_peers_period(Duration::from_millis(300))
        .min_time_between_crawls(Duration::from_secs(1))
        .rng_seed(Some(1));
    o
}

/// Starts the seed of `chain` (whose home was prepared by [`loopback_home`]).
pub async fn start_seed(chain: &ChainConfig, options: &SeedOptions) -> Seed {
    logs();
    let (home, key) = p2p_seed::open_home(chain).unwrap();
    Seed::start_with_key(&home, key, options).await.unwrap()
}

/// A Rust node: switch + PEX reactor (not seed mode) on loopback TCP.
pub struct Node {
    pub switch: Switch<TcpTransport>,
    pub book: SharedAddrBook,
    pub addr: NetAddress,
}

fn switch_config(listen: Option<SocketAddr>) -> SwitchConfig {
    let mut c = SwitchConfig::default();
    c.listen_addr(listen)
        .allow_duplicate_ip(true)
        .rng_seed(Some(3));
    let mut mconn = p2p_mconn::MConnConfig::node_default();
    mconn.flush_throttle(Duration::from_millis(10));
    c.transport().mconn(mconn);
    c
}

/// Node `n` of `chain_id` on 127.0.0.`10 + n % 200`, knowing only `seeds`; starts it.
pub async fn node(n: u32, chain_id: &str, seeds: &[NetAddress]) -> Node {
    logs();
    let listen = free_addr(10 + (n % 200) as u8);
    let k = key(n);
    let addr = NetAddress::new(k.node_id(), listen);
    let info = NodeInfo::new(k.node_id(), chain_id, format!("tcp://{listen}"));
    let mut config = Config::default();
    let list: Vec<String> = seeds.iter().map(ToString::to_string).collect();
    config.seeds(list.join(",")).rng_seed(Some(u64::from(n)));
    config.pex().ensure_peers_period(Duration::from_millis(500));
    let mut bc = AddrBookConfig::default();
    bc.routability_strict(false);
    let reactor = Reactor::new(
        config,
        AddrBook::with_seed(bc, u64::from(n), Arc::new(SystemClock)),
    );
    let book = reactor.address_book();
    let mut b = SwitchBuilder::new(k, info, switch_config(Some(listen)));
    b.add_reactor("pex", reactor).unwrap();
    b.address_book(Arc::new(book.clone()));
    let switch = b.build_tcp().unwrap();
    switch.start().await.unwrap();
    Node { switch, book, addr }
}

/// A reactor on the PEX channel that never sends anything: a peer that connects and stays.
pub struct Silent;

impl p2p_switch::Reactor for Silent {
    type Message = Raw;
    fn channels(&self) -> Vec<ChannelDescriptor> {
        vec![ChannelDescriptor::new(0x00, 1).send_queue_capacity(10)]
    }
    async fn receive(&self, _: Envelope<Raw>) {}
}

/// A switch with only [`Silent`], not listening (it announces `announce`).
pub fn silent_switch(n: u32, chain_id: &str, announce: SocketAddr) -> Switch<TcpTransport> {
    let k = key(n);
    let info = NodeInfo::new(k.node_id(), chain_id, format!("tcp://{announce}"));
    let mut b = SwitchBuilder::new(k, info, switch_config(None));
    b.add_reactor("silent", Silent).unwrap();
    b.build_tcp().unwrap()
}

/// Waits (polling every 50 ms) until `cond` holds; fails after `limit`, a bound far above
/// what the step needs, so load does not make it flaky.
pub async fn eventually(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !cond() {
        assert!(
            tokio::time::Instant::now() <= deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `GET path` over HTTP/1.1: status code, content type and body.
pub async fn get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: seed\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8(buf).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status: u16 = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap();
    let ct = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type: ")
                .map(str::to_owned)
        })
        .unwrap_or_default();
    (status, ct, body.to_owned())
}

/// Serves `source` on a free loopback port until the returned sender is dropped or fired.
pub async fn serve_http(
    source: Arc<dyn p2p_seed::http::Source>,
) -> (
    SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let l = p2p_seed::http::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(p2p_seed::http::serve(l, source, async move {
        let _ = rx.await;
    }));
    (addr, tx, task)
}

/// The process's resident set size in KiB (Linux), if known.
pub fn rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
