//! Building and driving the Go reference shim (`xtask/go`, see its README).
//!
//! The shim's sources are shared by every CometBFT line we test against; what differs per
//! line is its module file (`go.mod` and `go.sum`, committed: `xtask/go` for the default line,
//! `xtask/go/lines/<line>/` for the others) and one small `compat_*.go` file picked by a build
//! tag. A build copies the sources and the line's module file into
//! `target/conformance-go/<version>/` and builds there, so the lines never disturb each other
//! or the source tree. What was built (module version, NodeInfo release string, p2p protocol,
//! MConnection defaults) is then read from the binary itself (`cometbft-shim version`), never
//! assumed.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail, ensure};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// The reference's Go module.
pub const MODULE: &str = "github.com/cometbft/cometbft";

/// One CometBFT release line and how it differs from the others, as far as the shim and the
/// conformance cases care.
#[derive(Debug)]
pub struct Line {
    /// The line's name, as `--reference` takes it: `v0.38`.
    pub name: &'static str,
    /// The Go build tag that selects the line's `compat_*.go` (`None`: the default sources).
    pub build_tag: Option<&'static str>,
    /// Where the line's committed `go.mod` and `go.sum` are, relative to `xtask/go`.
    pub module_dir: &'static str,
    /// `version.P2PProtocol`: the `protocol_version.p2p` the reference announces.
    pub p2p_protocol: u64,
    /// `version.BlockProtocol`.
    pub block_protocol: u64,
    /// The default `FlushThrottle` of the reference's `MConnConfig`.
    pub flush_throttle: Duration,
    /// The Go constant holding the release string the reference announces in its NodeInfo.
    pub semver_const: &'static str,
    /// The names of the reactor's receive method and the peer's send method.
    pub envelope_api: &'static str,
}

/// The lines we know, oldest first. The default is [`DEFAULT_LINE`].
pub const LINES: &[Line] = &[
    Line {
        name: "v0.37",
        build_tag: Some("cometbft_v037"),
        module_dir: "lines/v0.37",
        p2p_protocol: 8,
        block_protocol: 11,
        flush_throttle: Duration::from_millis(100),
        semver_const: "version.TMCoreSemVer",
        envelope_api: "Reactor.ReceiveEnvelope / Peer.SendEnvelope",
    },
    Line {
        name: "v0.38",
        build_tag: None,
        module_dir: ".",
        p2p_protocol: 8,
        block_protocol: 11,
        flush_throttle: Duration::from_millis(100),
        semver_const: "version.TMCoreSemVer",
        envelope_api: "Reactor.Receive / Peer.Send",
    },
    Line {
        name: "v0.40",
        build_tag: None,
        module_dir: "lines/v0.40",
        p2p_protocol: 8,
        block_protocol: 11,
        flush_throttle: Duration::from_millis(10),
        semver_const: "version.TMCoreSemVer",
        envelope_api: "Reactor.Receive / Peer.Send",
    },
    Line {
        name: "v1.0",
        build_tag: Some("cometbft_v1"),
        module_dir: "lines/v1.0",
        p2p_protocol: 9,
        block_protocol: 11,
        flush_throttle: Duration::from_millis(10),
        semver_const: "version.CMTSemVer",
        envelope_api: "Reactor.Receive / Peer.Send",
    },
];

/// The line built when no `--reference` is given (the one the crates are written against).
pub const DEFAULT_LINE: &str = "v0.38";

/// What to build: a line, and either its pinned patch or an exact version.
#[derive(Debug)]
pub struct Spec {
    pub line: &'static Line,
    /// An exact module version (`v0.38.21`); `None` is the line's pinned patch.
    pub exact: Option<String>,
}

impl Default for Spec {
    fn default() -> Self {
        Self {
            line: line(DEFAULT_LINE).unwrap_or(&LINES[1]),
            exact: None,
        }
    }
}

/// The line named `name` (`v0.38`).
pub fn line(name: &str) -> Option<&'static Line> {
    LINES.iter().find(|l| l.name == name)
}

impl Spec {
    /// Parses `--reference`: a line (`v0.37`, `v0.37.x`, `0.37`, `v1`, `v1.0.x`) for its
    /// pinned patch, or an exact version (`v0.38.21`, `v1.0.0-rc2`).
    pub fn parse(s: &str) -> anyhow::Result<Self> {
        let v = s.trim().trim_start_matches('v');
        let mut parts = v.splitn(3, '.');
        let major = parts.next().unwrap_or_default();
        let minor = parts.next().unwrap_or("0");
        let patch = parts.next();
        let known = || LINES.iter().map(|l| l.name).collect::<Vec<_>>().join(", ");
        ensure!(
            !major.is_empty()
                && major.chars().all(|c| c.is_ascii_digit())
                && minor.chars().all(|c| c.is_ascii_digit()),
            "--reference {s:?}: want a line like v0.38 or v0.38.x, or a version like v0.38.26"
        );
        let name = format!("v{major}.{minor}");
        let line = line(&name).ok_or_else(|| {
            anyhow!(
                "--reference {s:?}: unknown line {name} (known lines: {})",
                known()
            )
        })?;
        let exact = match patch {
            None | Some("x") => None,
            Some(p) => {
                ensure!(
                    p.starts_with(|c: char| c.is_ascii_digit())
                        && p.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.'),
                    "--reference {s:?}: bad patch {p:?}"
                );
                Some(format!("{name}.{p}"))
            }
        };
        Ok(Self { line, exact })
    }
}

/// The built reference, as the binary describes itself.
#[derive(Debug, Clone)]
pub struct Reference {
    pub line: &'static Line,
    /// The shim binary.
    pub bin: PathBuf,
    /// The reference module version linked in (`v0.38.26`).
    pub module: String,
    /// Whether that is the line's pinned patch.
    pub pinned: bool,
    /// The release string the reference announces in its NodeInfo `version`. A release does
    /// not always update it (v0.37.18 says `0.37.16`), so it is read from the binary.
    pub core_semver: String,
    /// `protocol_version.p2p` of the reference's NodeInfo.
    pub p2p_protocol: u64,
    /// `protocol_version.block`.
    pub block_protocol: u64,
    /// The reference's default MConnection flush throttle.
    pub flush_throttle: Duration,
    /// The Go release that built the shim.
    pub go: String,
    /// Where the line's facts and the binary disagree (only possible for a non-pinned
    /// version; for the pinned one it is an error).
    pub warnings: Vec<String>,
}

impl Reference {
    /// One line describing the reference, for logs.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "{MODULE} {} (line {}{}; NodeInfo version {:?} from {}, p2p protocol {}, block {}; \
             flush throttle {:?}; {}; built with {})",
            self.module,
            self.line.name,
            if self.pinned { ", pinned" } else { "" },
            self.core_semver,
            self.line.semver_const,
            self.p2p_protocol,
            self.block_protocol,
            self.flush_throttle,
            self.line.envelope_api,
            self.go
        );
        if self.module.trim_start_matches('v') != self.core_semver {
            s += &format!(
                "; note: this release announces {:?}, not its module version",
                self.core_semver
            );
        }
        s
    }
}

static CURRENT: OnceLock<Reference> = OnceLock::new();

/// Makes `r` the reference the conformance cases compare against (once per process).
pub fn set_reference(r: Reference) -> anyhow::Result<()> {
    CURRENT
        .set(r)
        .map_err(|_| anyhow!("the reference was already chosen"))
}

/// The reference the conformance cases run against: its announced versions and defaults
/// (what the cases' expectations follow).
pub fn reference() -> anyhow::Result<&'static Reference> {
    CURRENT
        .get()
        .ok_or_else(|| anyhow!("no reference built yet (shim::set_reference)"))
}

pub fn go_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("go")
}

fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("target"),
    }
}

/// Outcome of preparing the shim.
pub enum Status<T> {
    /// Built and ready.
    Ready(T),
    /// The Go toolchain or the reference module is not available on this machine.
    Unavailable(String),
}

/// Outcome of building the default line, for the benchmarks.
pub type GoStatus = Status<PathBuf>;

/// `go ARGS` in `dir`, never downloading another toolchain, module files read-only unless
/// `mod_mode` says otherwise.
fn go_command(dir: &Path, mod_mode: &str, args: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::new("go");
    cmd.args(args)
        .current_dir(dir)
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", format!("-mod={mod_mode} -buildvcs=false"));
    cmd
}

/// Runs a go command; `Err(text)` with its stderr if it fails.
fn run_go(mut cmd: std::process::Command, what: &str) -> anyhow::Result<Result<(), String>> {
    let out = cmd.output().with_context(|| format!("running `{what}`"))?;
    if out.status.success() {
        Ok(Ok(()))
    } else {
        Ok(Err(String::from_utf8_lossy(&out.stderr).trim().to_owned()))
    }
}

/// The version of [`MODULE`] required by the `go.mod` at `path`.
pub fn pinned_version(path: &Path) -> anyhow::Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .filter_map(|l| {
            let l = l.trim().trim_start_matches("require").trim();
            let mut it = l.split_whitespace();
            (it.next() == Some(MODULE)).then(|| it.next().map(str::to_owned))?
        })
        .next()
        .ok_or_else(|| anyhow!("{} requires no {MODULE}", path.display()))
}

/// The oldest `go` directive of a generated module file (the v0.38 line's minimum; `go mod
/// tidy` raises it when the release needs a newer Go).
const MIN_GO: &str = "1.22.11";

/// The shim's module path, from `xtask/go/go.mod`.
fn shim_module() -> anyhow::Result<String> {
    let path = go_dir().join("go.mod");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .find_map(|l| l.strip_prefix("module "))
        .map(|m| m.trim().to_owned())
        .ok_or_else(|| anyhow!("{} has no module line", path.display()))
}

/// The line's committed module directory.
pub fn module_dir(line: &Line) -> PathBuf {
    go_dir().join(line.module_dir)
}

/// Builds the default line's pinned patch (for the benchmarks).
pub fn build() -> anyhow::Result<GoStatus> {
    Ok(match build_reference(&Spec::default(), false)? {
        Status::Ready(r) => Status::Ready(r.bin),
        Status::Unavailable(why) => Status::Unavailable(why),
    })
}

/// Fetches the reference module and builds the shim against it. A missing or too old Go
/// toolchain or an unreachable module proxy makes the reference unavailable; a build failure
/// of our own shim, or a binary that is not what the line says, is an error. With `pin`, the
/// module files generated for an exact version are written back as the line's pinned ones.
pub fn build_reference(spec: &Spec, pin: bool) -> anyhow::Result<Status<Reference>> {
    let line = spec.line;
    let go = match go_command(&go_dir(), "readonly", &["version"]).output() {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        Ok(out) => {
            return Ok(Status::Unavailable(format!(
                "`go version` failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Err(e) => return Ok(Status::Unavailable(format!("no Go toolchain (`go`): {e}"))),
    };
    let committed = module_dir(line);
    let pinned = pinned_version(&committed.join("go.mod"))?;
    let version = spec.exact.clone().unwrap_or_else(|| pinned.clone());
    let is_pinned = version == pinned;
    ensure!(
        !pin || !is_pinned,
        "--pin: {version} is already the pinned patch of {}",
        line.name
    );

    // A fresh copy of the sources and the line's module files.
    let dir = target_dir().join("conformance-go").join(&version);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        if path.is_file() {
            std::fs::remove_file(&path)?;
        }
    }
    for entry in std::fs::read_dir(go_dir())? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "go") {
            if let Some(name) = path.file_name() {
                std::fs::copy(&path, dir.join(name))
                    .with_context(|| format!("copying {}", path.display()))?;
            }
        }
    }
    if is_pinned {
        for f in ["go.mod", "go.sum"] {
            std::fs::copy(committed.join(f), dir.join(f))
                .with_context(|| format!("copying {}", committed.join(f).display()))?;
        }
    } else {
        // A fresh module file that requires only the exact version, and its dependencies
        // resolved from that version alone (so that none is newer than the release itself
        // wants). This needs the module proxy and the checksum database. `-e`: the test file
        // for the pre-v1.0 flowrate package cannot resolve on v1.0, which only concerns
        // `go test`.
        std::fs::write(
            dir.join("go.mod"),
            format!(
                "module {}

go {MIN_GO}

require {MODULE} {version}
",
                shim_module()?
            ),
        )?;
        if let Err(e) = run_go(
            go_command(&dir, "mod", &["mod", "tidy", "-e"]),
            "go mod tidy",
        )? {
            return Ok(Status::Unavailable(format!(
                "cannot resolve {MODULE} {version} ({go}): {e}"
            )));
        }
    }
    if let Err(e) = run_go(
        go_command(&dir, "readonly", &["mod", "download"]),
        "go mod download",
    )? {
        return Ok(Status::Unavailable(format!(
            "cannot fetch {MODULE} {version} ({go}): {e}"
        )));
    }
    let mut args = vec!["build"];
    if let Some(tag) = line.build_tag {
        args.extend(["-tags", tag]);
    }
    args.extend(["-o", "bin/cometbft-shim", "."]);
    if let Err(e) = run_go(go_command(&dir, "readonly", &args), "go build")? {
        // An old toolchain is a property of the machine, not a bug of the shim.
        if e.contains("requires go >=") || e.contains("GOTOOLCHAIN=local") {
            return Ok(Status::Unavailable(format!(
                "{go} is too old for {MODULE} {version}: {e}"
            )));
        }
        bail!("building the Go shim against {MODULE} {version} failed:\n{e}");
    }
    let bin = dir.join("bin").join("cometbft-shim");
    let reference = describe_binary(line, &bin, &version, is_pinned, go)?;
    if pin {
        for f in ["go.mod", "go.sum"] {
            std::fs::copy(dir.join(f), committed.join(f))
                .with_context(|| format!("writing {}", committed.join(f).display()))?;
        }
        eprintln!(
            "conformance: pinned {} to {version} ({}/go.mod and go.sum)",
            line.name,
            committed.display()
        );
    }
    Ok(Status::Ready(reference))
}

/// Runs `bin version` and checks what it reports against the line.
fn describe_binary(
    line: &'static Line,
    bin: &Path,
    version: &str,
    pinned: bool,
    go: String,
) -> anyhow::Result<Reference> {
    let out = std::process::Command::new(bin)
        .arg("version")
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {} version", bin.display()))?;
    ensure!(
        out.status.success(),
        "{} version failed: {}",
        bin.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("parsing the version event {:?}", out.stdout))?;
    let text = |k: &str| {
        v[k].as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("version event without {k}: {v}"))
    };
    let num = |k: &str| {
        v[k].as_u64()
            .ok_or_else(|| anyhow!("version event without {k}: {v}"))
    };
    let module = text("module")?;
    ensure!(
        module == version,
        "the shim links {MODULE} {module}, but {version} was built"
    );
    ensure!(
        v["build_tag"].as_str() == Some(line.build_tag.unwrap_or("")),
        "the shim was built with compat tag {}, line {} wants {:?}",
        v["build_tag"],
        line.name,
        line.build_tag
    );
    let r = Reference {
        line,
        bin: bin.to_path_buf(),
        module,
        pinned,
        core_semver: text("core_semver")?,
        p2p_protocol: num("p2p")?,
        block_protocol: num("block")?,
        flush_throttle: Duration::from_millis(num("flush_throttle_ms")?),
        go: text("go").unwrap_or(go),
        warnings: Vec::new(),
    };
    let mut warnings = Vec::new();
    for (what, ours, theirs) in [
        (
            "p2p protocol",
            line.p2p_protocol.to_string(),
            r.p2p_protocol.to_string(),
        ),
        (
            "block protocol",
            line.block_protocol.to_string(),
            r.block_protocol.to_string(),
        ),
        (
            "flush throttle",
            format!("{:?}", line.flush_throttle),
            format!("{:?}", r.flush_throttle),
        ),
    ] {
        if ours != theirs {
            warnings.push(format!(
                "line {} says {what} {ours}, the binary reports {theirs}",
                line.name
            ));
        }
    }
    ensure!(
        !pinned || warnings.is_empty(),
        "the pinned patch {version} contradicts the line table in xtask/src/shim.rs: {}",
        warnings.join("; ")
    );
    Ok(Reference { warnings, ..r })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_spec_parses_lines_and_versions() {
        let s = Spec::parse("v0.37.x").map_err(|e| e.to_string());
        assert_eq!(
            s.as_ref().map(|s| (s.line.name, s.exact.clone())),
            Ok(("v0.37", None))
        );
        for (arg, line, exact) in [
            ("v0.38", "v0.38", None),
            ("0.40", "v0.40", None),
            ("v1", "v1.0", None),
            ("v1.0.x", "v1.0", None),
            ("v0.38.21", "v0.38", Some("v0.38.21")),
            ("v1.0.0-rc2", "v1.0", Some("v1.0.0-rc2")),
        ] {
            let s = Spec::parse(arg).map_err(|e| e.to_string());
            assert_eq!(
                s.map(|s| (s.line.name, s.exact)),
                Ok((line, exact.map(str::to_owned))),
                "{arg}"
            );
        }
        for bad in ["", "v0.36", "vx.38", "v0.38.;rm", "v2.0.x", "latest"] {
            assert!(Spec::parse(bad).is_err(), "{bad:?} parsed");
        }
        assert_eq!(Spec::default().line.name, DEFAULT_LINE);
    }

    #[test]
    fn every_line_has_committed_module_files() {
        for line in LINES {
            let dir = module_dir(line);
            let v = pinned_version(&dir.join("go.mod")).map_err(|e| e.to_string());
            assert!(
                v.as_ref()
                    .is_ok_and(|v| v.starts_with(&format!("{}.", line.name))),
                "{}: {v:?}",
                line.name
            );
            assert!(dir.join("go.sum").is_file(), "{}: no go.sum", line.name);
        }
    }

    #[test]
    fn pinned_version_reads_both_require_forms() {
        let dir = std::env::temp_dir().join(format!("xtask-gomod-{}", std::process::id()));
        std::fs::create_dir_all(&dir).ok();
        let f = dir.join("go.mod");
        for (text, want) in [
            (
                "module x\n\nrequire (\n\tgithub.com/cometbft/cometbft-db v0.14.1\n\tgithub.com/cometbft/cometbft v0.38.26\n)\n",
                Some("v0.38.26"),
            ),
            (
                "module x\nrequire github.com/cometbft/cometbft v1.0.1\n",
                Some("v1.0.1"),
            ),
            (
                "module x\nrequire github.com/cometbft/cometbft-db v0.14.1\n",
                None,
            ),
        ] {
            std::fs::write(&f, text).ok();
            assert_eq!(pinned_version(&f).ok().as_deref(), want, "{text}");
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}
