//! Building and driving the Go reference shim (`xtask/go`, see its README).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// The reference module and version the shim is pinned to (see `xtask/go/go.mod`).
pub const REFERENCE: &str = "github.com/cometbft/cometbft v0.38.26";

pub fn go_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("go")
}

/// Outcome of preparing the shim.
pub enum GoStatus {
    /// Built and ready.
    Ready(PathBuf),
    /// The Go toolchain or the reference module is not available on this machine.
    Unavailable(String),
}

fn go_command(args: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::new("go");
    cmd.args(args)
        .current_dir(go_dir())
        // Never download another Go toolchain; use the installed one.
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "-mod=readonly");
    cmd
}

/// Fetches the reference module and builds the shim. A missing toolchain or an unreachable
/// module proxy makes the reference unavailable; a build failure of our own shim is an error.
pub fn build() -> anyhow::Result<GoStatus> {
    let version = match go_command(&["version"]).output() {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        Ok(out) => {
            return Ok(GoStatus::Unavailable(format!(
                "`go version` failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Err(e) => {
            return Ok(GoStatus::Unavailable(format!(
                "no Go toolchain (`go`): {e}"
            )));
        }
    };
    let out = go_command(&["mod", "download"])
        .output()
        .context("running `go mod download`")?;
    if !out.status.success() {
        return Ok(GoStatus::Unavailable(format!(
            "cannot fetch {REFERENCE} ({version}): {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let bin = go_dir().join("bin").join("cometbft-shim");
    let out = go_command(&["build", "-o", "bin/cometbft-shim", "."])
        .output()
        .context("running `go build`")?;
    if !out.status.success() {
        bail!(
            "building the Go shim failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(GoStatus::Ready(bin))
}

/// A running shim process with its JSON event stream.
pub struct Shim {
    name: String,
    child: Child,
    events: mpsc::Receiver<Value>,
    stderr: Arc<Mutex<VecDeque<String>>>,
}

const STDERR_TAIL: usize = 40;

impl Shim {
    pub fn spawn(bin: &Path, mode: &str, args: &[String]) -> anyhow::Result<Self> {
        let mut child = Command::new(bin)
            .arg(mode)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let stderr = child.stderr.take().ok_or_else(|| anyhow!("no stderr"))?;
        let (tx, events) = mpsc::channel(1024);
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let v = serde_json::from_str(&line)
                    .unwrap_or_else(|_| serde_json::json!({"event": "unparsable", "line": line}));
                if tx.send(v).await.is_err() {
                    break;
                }
            }
        });
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let tail2 = tail.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(mut t) = tail2.lock() {
                    if t.len() == STDERR_TAIL {
                        t.pop_front();
                    }
                    t.push_back(line);
                }
            }
        });
        Ok(Self {
            name: format!("shim {mode}"),
            child,
            events,
            stderr: tail,
        })
    }

    /// The last lines the shim wrote to stderr, for failure reports.
    pub fn stderr_tail(&self) -> String {
        self.stderr
            .lock()
            .map(|t| t.iter().cloned().collect::<Vec<_>>().join("\n"))
            .unwrap_or_default()
    }

    /// The next event, or an error if the shim exits first or `timeout` passes.
    pub async fn next_event(&mut self, timeout: Duration) -> anyhow::Result<Value> {
        match tokio::time::timeout(timeout, self.events.recv()).await {
            Ok(Some(v)) => Ok(v),
            Ok(None) => bail!("{} exited without another event", self.name),
            Err(_) => bail!("{} sent no event within {timeout:?}", self.name),
        }
    }

    /// Waits for an event named `name`. An `error` event first is returned as an error.
    pub async fn expect(&mut self, name: &str, timeout: Duration) -> anyhow::Result<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let v = self.next_event(left).await?;
            match v["event"].as_str() {
                Some(n) if n == name => return Ok(v),
                Some("error") => bail!(
                    "{} reported: {}\n--- shim stderr ---\n{}",
                    self.name,
                    v["error"],
                    self.stderr_tail()
                ),
                _ => {}
            }
        }
    }

    /// Waits for the shim to exit and returns its remaining events and whether it succeeded.
    pub async fn finish(mut self, timeout: Duration) -> anyhow::Result<(bool, Vec<Value>)> {
        let status = match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(s) => s?,
            Err(_) => {
                let _ = self.child.kill().await;
                bail!("{} did not exit within {timeout:?}", self.name);
            }
        };
        let mut rest = Vec::new();
        while let Ok(Some(v)) =
            tokio::time::timeout(Duration::from_secs(2), self.events.recv()).await
        {
            rest.push(v);
        }
        Ok((status.success(), rest))
    }

    /// Waits for a successful exit whose last event is `done`, and returns that event.
    pub async fn expect_done(self, timeout: Duration) -> anyhow::Result<Value> {
        let tail = self.stderr.clone();
        let name = self.name.clone();
        let (ok, events) = self.finish(timeout).await?;
        let last = events.last().cloned().unwrap_or(Value::Null);
        if ok && last["event"] == "done" {
            return Ok(last);
        }
        let tail = tail
            .lock()
            .map(|t| t.iter().cloned().collect::<Vec<_>>().join("\n"))
            .unwrap_or_default();
        bail!(
            "{name} did not finish cleanly (success={ok}); last event {last}\n--- shim stderr ---\n{tail}"
        )
    }
}

/// The shim's `ready` event: its node ID and, when listening, its address.
pub struct Ready {
    pub node_id: p2p_types::NodeId,
    pub addr: String,
}

pub fn parse_ready(v: &Value) -> anyhow::Result<Ready> {
    Ok(Ready {
        node_id: v["node_id"]
            .as_str()
            .ok_or_else(|| anyhow!("ready event without node_id: {v}"))?
            .parse()?,
        addr: v["addr"].as_str().unwrap_or_default().to_owned(),
    })
}
