//! Reference Go nodes in a testnet (`--go-nodes K`): each a `cometbft-shim pex --role node`
//! process (the reference switch and PEX reactor of CometBFT, built by `cargo xtask shim`)
//! that knows only our seed, on loopback with its own port and the testnet's chain ID.
//!
//! The process prints one JSON event a line on stdout; a reader task per process keeps the
//! last `state` (its peers) so the run can count them. Its output is treated as untrusted
//! input: lines are capped at [`MAX_LINE`], anything that does not parse is skipped.
//!
//! Go nodes carry only the PEX channel, not the gossip channel: our gossip reactor does not
//! send to them (it checks each peer's NodeInfo channels) and gossip counts our nodes only.
//! The processes are killed and reaped at the end of a run, and killed when dropped (an
//! error, Ctrl-C), so none outlives the testnet.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use p2p_types::NodeId;
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

use super::{Testnet, TestnetConfig, TestnetError};

/// Longest line read from a Go process; a longer one is skipped up to its end.
pub const MAX_LINE: usize = 1 << 20;
/// How long a Go process gets to print its `ready` event.
pub const READY_TIMEOUT: Duration = Duration::from_secs(15);
/// The environment variable naming the shim when `--go-shim` is not given.
pub const SHIM_ENV: &str = "COMETBFT_SHIM";
/// The chain ID an old shim (without `--network`) announces; the testnet then uses it.
pub const OLD_SHIM_NETWORK: &str = "test-chain";

/// One peer of a Go node, as its `state` event lists it.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoPeer {
    /// The peer's node ID.
    pub id: NodeId,
    /// Whether the Go node dialled it.
    pub outbound: bool,
}

/// An event of a Go node's output the testnet uses.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum GoEvent {
    /// The switch listens: its node ID and address.
    Ready {
        /// The node ID.
        id: NodeId,
        /// `ID@HOST:PORT` or `HOST:PORT`, as printed.
        addr: String,
    },
    /// Its peers and the size of its address book.
    State {
        /// Peers (entries with a bad ID are left out).
        peers: Vec<GoPeer>,
        /// Addresses in its book.
        book: usize,
    },
    /// The process reported an error.
    Error(String),
}

/// Parses one output line; `None` for anything that is not a well-formed event we use.
/// Never panics, whatever the line holds.
pub fn parse_event(line: &str) -> Option<GoEvent> {
    if line.len() > MAX_LINE {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    match v.get("event")?.as_str()? {
        "ready" => Some(GoEvent::Ready {
            id: v.get("node_id")?.as_str()?.parse().ok()?,
            addr: v.get("addr")?.as_str()?.to_owned(),
        }),
        "state" => {
            let peers = v
                .get("peers")?
                .as_array()?
                .iter()
                .filter_map(|p| {
                    Some(GoPeer {
                        id: p.get("id")?.as_str()?.parse().ok()?,
                        outbound: p.get("outbound")?.as_bool()?,
                    })
                })
                .collect();
            let book = v
                .get("book")
                .and_then(serde_json::Value::as_array)
                .map_or(0, Vec::len);
            Some(GoEvent::State { peers, book })
        }
        "error" => Some(GoEvent::Error(
            v.get("error")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("")
                .chars()
                .take(512)
                .collect(),
        )),
        _ => None,
    }
}

/// What a reader task knows of its process.
#[derive(Debug, Default)]
struct GoState {
    ready: Option<NodeId>,
    peers: Vec<GoPeer>,
    book: usize,
    error: Option<String>,
    closed: bool,
}

/// A Go node's peers, as the progress and the summary show them (the seed left out).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct GoPeers {
    /// Peers the Go node dialled.
    pub outbound: usize,
    /// Peers that dialled it.
    pub inbound: usize,
    /// How many of its peers are our nodes.
    pub ours: usize,
    /// How many of our nodes list it among their peers (our side of the same links).
    pub ours_seeing_it: usize,
    /// Addresses in its book.
    pub addrbook: usize,
}

/// One Go process.
#[derive(Debug)]
struct GoNode {
    child: Child,
    state: Arc<Mutex<GoState>>,
    id: NodeId,
}

/// The Go nodes of a testnet.
#[derive(Debug, Default)]
pub struct GoNodes {
    nodes: Vec<GoNode>,
}

fn lock(m: &Mutex<GoState>) -> std::sync::MutexGuard<'_, GoState> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Reads lines of at most [`MAX_LINE`] bytes (longer ones skipped) until end of file.
async fn read_events(out: impl AsyncRead + Unpin, state: Arc<Mutex<GoState>>) {
    let mut reader = BufReader::new(out);
    let mut line = Vec::new();
    let mut skipping = false;
    loop {
        let (done, used) = match reader.fill_buf().await {
            Ok([]) | Err(_) => break,
            Ok(buf) => match buf.iter().position(|&b| b == b'\n') {
                Some(nl) => {
                    if !skipping {
                        line.extend_from_slice(buf.get(..nl).unwrap_or(&[]));
                    }
                    (true, nl + 1)
                }
                None => {
                    if !skipping {
                        line.extend_from_slice(buf);
                    }
                    (false, buf.len())
                }
            },
        };
        reader.consume(used);
        if line.len() > MAX_LINE {
            line.clear();
            skipping = true;
        }
        if !done {
            continue;
        }
        if !skipping {
            if let Some(ev) = std::str::from_utf8(&line).ok().and_then(parse_event) {
                let mut s = lock(&state);
                match ev {
                    GoEvent::Ready { id, .. } => s.ready = Some(id),
                    GoEvent::State { peers, book } => {
                        s.peers = peers;
                        s.book = book;
                    }
                    GoEvent::Error(e) => s.error = Some(e),
                }
            }
        }
        line.clear();
        skipping = false;
    }
    lock(&state).closed = true;
}

/// The shim to run: `configured`, or [`SHIM_ENV`]; a typed error telling the user how to get
/// one if neither is set or the file is missing.
pub fn resolve_shim(configured: Option<&Path>) -> Result<PathBuf, TestnetError> {
    let path = configured
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os(SHIM_ENV).map(PathBuf::from))
        .ok_or(TestnetError::GoShimMissing { path: None })?;
    if path.is_file() {
        Ok(path)
    } else {
        Err(TestnetError::GoShimMissing { path: Some(path) })
    }
}

/// Which of the flags this change added the shim knows (an older build has none).
async fn shim_has_new_flags(shim: &Path) -> Result<bool, TestnetError> {
    let out = Command::new(shim)
        .args(["pex", "-h"])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|source| TestnetError::Io {
            what: format!("running {} pex -h", shim.display()),
            source,
        })?;
    let text = String::from_utf8_lossy(&out.stderr) + String::from_utf8_lossy(&out.stdout);
    Ok(text.contains("-network") && text.contains("-max-outbound"))
}

/// The chain ID the testnet must use with `shim`: ours, or (an old shim that cannot be told
/// another) [`OLD_SHIM_NETWORK`].
pub async fn network_for(shim: &Path, ours: &str) -> Result<String, TestnetError> {
    Ok(if shim_has_new_flags(shim).await? {
        ours.to_owned()
    } else {
        tracing::warn!(
            shim = %shim.display(),
            "the shim has no --network flag (built before it was added; `cargo xtask shim` builds \
             a new one): the testnet uses its chain ID {OLD_SHIM_NETWORK:?}"
        );
        OLD_SHIM_NETWORK.to_owned()
    })
}

impl GoNodes {
    /// Starts `config.go_nodes` Go nodes knowing only `net`'s seed, each waiting for its
    /// `ready` event.
    pub async fn start(
        config: &TestnetConfig,
        shim: &Path,
        net: &Testnet,
    ) -> Result<Self, TestnetError> {
        let mut nodes = Self::default();
        if config.go_nodes == 0 {
            return Ok(nodes);
        }
        let new_flags = shim_has_new_flags(shim).await?;
        let seed_addr = net.addr(0).to_string();
        let timeout = config.duration + super::DRAIN + Duration::from_secs(120);
        for k in 0..config.go_nodes {
            let dir = net.home().join(format!("go-{k}"));
            std::fs::create_dir_all(&dir).map_err(|source| TestnetError::Io {
                what: format!("creating {}", dir.display()),
                source,
            })?;
            let port = if config.base_port == 0 {
                0
            } else {
                u16::try_from(config.nodes + k)
                    .ok()
                    .and_then(|o| config.base_port.checked_add(o))
                    .ok_or_else(|| TestnetError::Config {
                        reason: format!(
                            "base port {} + {} nodes passes 65535",
                            config.base_port,
                            config.nodes + config.go_nodes
                        ),
                    })?
            };
            let key_seed = (config.seed.wrapping_mul(1000).wrapping_add(k as u64 + 1)) as i64;
            let mut cmd = Command::new(shim);
            cmd.arg("pex")
                .args(["--role", "node"])
                .arg(format!("--seed={key_seed}"))
                .arg(format!("--listen=127.0.0.1:{port}"))
                .arg(format!("--seeds={seed_addr}"))
                .arg("--file")
                .arg(dir.join("addrbook.json"))
                .arg(format!(
                    "--ensure-peers-period={}ms",
                    config.pex_period.as_millis().max(1)
                ))
                .arg("--state-every=500ms")
                .arg(format!("--timeout={}s", timeout.as_secs()))
                .arg("--log-level=none");
            if new_flags {
                cmd.arg(format!("--network={}", config.network))
                    .arg(format!("--moniker=go-{k}"))
                    .arg(format!("--max-outbound={}", config.target().max(1)));
            }
            cmd.stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .kill_on_drop(true);
            let mut child = cmd.spawn().map_err(|source| TestnetError::Io {
                what: format!("starting Go node {k} ({})", shim.display()),
                source,
            })?;
            let state = Arc::new(Mutex::new(GoState::default()));
            if let Some(out) = child.stdout.take() {
                tokio::spawn(read_events(out, Arc::clone(&state)));
            }
            let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
            let id = loop {
                let (ready, closed, error) = {
                    let s = lock(&state);
                    (s.ready, s.closed, s.error.clone())
                };
                if let Some(id) = ready {
                    break id;
                }
                if closed || tokio::time::Instant::now() >= deadline {
                    let _ = child.kill().await;
                    let why = error.unwrap_or_else(|| {
                        if closed {
                            "the process ended before its ready event".to_owned()
                        } else {
                            format!("no ready event within {READY_TIMEOUT:?}")
                        }
                    });
                    nodes.stop().await;
                    return Err(TestnetError::GoNode {
                        node: k,
                        reason: why,
                    });
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            };
            nodes.nodes.push(GoNode { child, state, id });
        }
        Ok(nodes)
    }

    /// Number of Go nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The Go nodes' IDs.
    pub fn ids(&self) -> Vec<NodeId> {
        self.nodes.iter().map(|n| n.id).collect()
    }

    /// Each Go node's peers now (from its last `state` event), the seed left out.
    pub fn peers(&self, net: &Testnet) -> Vec<GoPeers> {
        let seed = net.ids().first().copied();
        let ours = net.ids();
        self.nodes
            .iter()
            .map(|n| {
                let s = lock(&n.state);
                let mut p = GoPeers {
                    addrbook: s.book,
                    ..GoPeers::default()
                };
                for peer in s.peers.iter().filter(|p| Some(p.id) != seed) {
                    if peer.outbound {
                        p.outbound += 1;
                    } else {
                        p.inbound += 1;
                    }
                    if ours.contains(&peer.id) {
                        p.ours += 1;
                    }
                }
                p.ours_seeing_it = net
                    .running()
                    .filter(|(_, nd)| nd.switch.peers().iter().any(|q| q.id() == n.id))
                    .count();
                p
            })
            .collect()
    }

    /// How many Go nodes reached the outbound target or are connected to every other node
    /// but the seed (ours and the other Go nodes).
    pub fn converged(&self, net: &Testnet) -> usize {
        let others = net.len().saturating_sub(2) + self.len().saturating_sub(1);
        self.peers(net)
            .iter()
            .filter(|p| p.outbound >= net.target() || p.outbound + p.inbound >= others)
            .count()
    }

    /// Kills every process and waits for it (reaps it).
    pub async fn stop(&mut self) {
        for mut n in self.nodes.drain(..) {
            let _ = n.child.kill().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef01234567";

    #[test]
    fn parses_ready_and_state() {
        let ready = format!(r#"{{"event":"ready","node_id":"{ID}","addr":"{ID}@127.0.0.1:5"}}"#);
        assert!(
            matches!(parse_event(&ready), Some(GoEvent::Ready { id, .. }) if id.to_string() == ID)
        );
        let state = format!(
            r#"{{"event":"state","peers":[{{"id":"{ID}","outbound":true}},{{"id":"zz","outbound":false}}],"book":[{{}},{{}}]}}"#
        );
        match parse_event(&state) {
            Some(GoEvent::State { peers, book }) => {
                assert_eq!(book, 2);
                assert_eq!(peers.len(), 1, "the entry with a bad ID is left out");
                assert!(peers.iter().all(|p| p.outbound));
            }
            other => panic!("not a state: {other:?}"),
        }
        assert_eq!(
            parse_event(r#"{"event":"error","error":"boom"}"#),
            Some(GoEvent::Error("boom".to_owned()))
        );
    }

    #[test]
    fn rejects_malformed_events() {
        for line in [
            "",
            "not json",
            "{}",
            "[]",
            r#"{"event":3}"#,
            r#"{"event":"ready"}"#,
            r#"{"event":"ready","node_id":"xyz","addr":"a"}"#,
            r#"{"event":"state","peers":{}}"#,
            r#"{"event":"dialed","addr":"x"}"#,
        ] {
            assert_eq!(parse_event(line), None, "{line:?}");
        }
    }

    #[tokio::test]
    async fn reader_skips_overlong_and_broken_lines() {
        let mut input = vec![b'x'; MAX_LINE + 10];
        input.extend_from_slice(b"\n\xff\xfe garbage\n");
        input.extend_from_slice(
            format!("{{\"event\":\"ready\",\"node_id\":\"{ID}\",\"addr\":\"a\"}}\n").as_bytes(),
        );
        input.extend_from_slice(b"{\"event\":\"state\",\"peers\":[],\"book\":[1]}");
        let state = Arc::new(Mutex::new(GoState::default()));
        read_events(&input[..], Arc::clone(&state)).await;
        let s = lock(&state);
        assert!(s.closed);
        assert_eq!(s.ready.map(|i| i.to_string()).as_deref(), Some(ID));
        assert_eq!(s.book, 0, "a last line without newline is not an event");
    }

    proptest::proptest! {
        #[test]
        fn garbage_never_panics(line in ".{0,400}") {
            let _ = parse_event(&line);
        }

        #[test]
        fn json_shaped_garbage_never_panics(
            event in proptest::sample::select(vec!["ready", "state", "error", "x"]),
            body in "[\\[\\]{}\":,a-f0-9truefalsn ]{0,200}",
        ) {
            let _ = parse_event(&format!(r#"{{"event":"{event}",{body}}}"#));
            let _ = parse_event(&format!(r#"{{"event":"{event}","peers":[{body}]}}"#));
        }
    }
}
