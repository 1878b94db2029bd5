//! The netns mode's network: one Linux network namespace per node, each with its own IPv4
//! address on a veth pair whose other end is a port of one bridge in the root namespace, and
//! the guard ([`Netns`]) that deletes all of it again.
//!
//! # What a run creates
//!
//! With a run tag `T` (this process's pid as 6 hex digits, then a per-process run counter as 2
//! hex digits, so two runs of one process, as in a test binary, do not collide):
//!
//! - namespaces `p2ptn-T-<i>`, one per node, `lo` up, the node's veth end `eth0` with
//!   `A.B.x.y/16` (node `i` gets host number `i + 1`) and, with [`NetnsOptions`], a `tc`
//!   qdisc on `eth0` (`netem` for delay/loss, `tbf` for a rate cap);
//! - the bridge `ptbT` (no address: the root namespace does not join the network) and, for
//!   the partition scenario, a second bridge `ptcT`;
//! - veth host ends `pvT<i>`, ports of `ptbT` (or of `ptcT` while partitioned).
//!
//! The subnet `A.B.0.0/16` is the first of [`SUBNETS`] that overlaps no address or route of
//! the host (`ip -4 addr`, `ip -4 route`); if all do, the run fails with
//! [`NetnsError::NoFreeSubnet`]. Every name is written, as it is created, to the marker file
//! `/run/p2ptn/<pid>/<tag>`; [`Netns`] deletes what it lists on drop (after an error, at the
//! end, after Ctrl-C, while unwinding from a panic), and every [`Netns::create`] first removes
//! what the markers of dead processes (no `/proc/<pid>`) list. Nothing else is touched: only
//! names of the forms above are ever deleted.
//!
//! Needs root and iproute2 (`ip`, `tc`); without `ip`, `apt-get install -y iproute2` is tried
//! (root only) from the configured sources.

use std::fmt::Write as _;
use std::fs::File;
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// Where the per-run marker files go: `/run/p2ptn/<pid>/<tag>`.
pub const MARKER_DIR: &str = "/run/p2ptn";

/// The candidate subnets (`A.B.0.0/16`), tried in order.
pub const SUBNETS: [[u8; 2]; 4] = [[10, 214], [10, 215], [10, 251], [172, 29]];

/// Most nodes in netns mode (veth names stay under the 15-character limit).
pub const MAX_NODES: usize = 9999;

static RUNS: AtomicU32 = AtomicU32::new(0);

/// Shaping of each node's link: added on the namespace's side of its veth (`eth0`), so it
/// applies to everything the node sends.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct NetnsOptions {
    /// One-way delay added to each node's outgoing packets, milliseconds (`netem delay`).
    pub delay_ms: Option<u32>,
    /// Share of each node's outgoing packets dropped, percent (`netem loss`).
    pub loss_pct: Option<f64>,
    /// Rate cap of each node's outgoing traffic, a `tc` rate such as `10mbit` (`tbf`).
    pub rate: Option<String>,
}

impl NetnsOptions {
    /// Sets the delay.
    pub fn delay_ms(&mut self, ms: Option<u32>) -> &mut Self {
        self.delay_ms = ms;
        self
    }
    /// Sets the loss.
    pub fn loss_pct(&mut self, pct: Option<f64>) -> &mut Self {
        self.loss_pct = pct;
        self
    }
    /// Sets the rate cap.
    pub fn rate(&mut self, rate: Option<String>) -> &mut Self {
        self.rate = rate;
        self
    }
    fn wants_netem(&self) -> bool {
        self.delay_ms.is_some() || self.loss_pct.is_some()
    }
}

/// Errors of the netns mode.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetnsError {
    /// Not running as root.
    #[error("--netns needs root (network namespaces, veths and a bridge are created)")]
    NotRoot,
    /// A command could not be started.
    #[error("running `{command}`: {source}")]
    Spawn {
        /// The command line.
        command: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A command failed.
    #[error("`{command}` failed: {stderr}")]
    Command {
        /// The command line.
        command: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// `ip` is missing and could not be installed.
    #[error("iproute2 (`ip`) is missing and `apt-get install -y iproute2` did not work: {reason}")]
    IprouteMissing {
        /// What went wrong.
        reason: String,
    },
    /// `ip netns` does not work here.
    #[error("`ip netns` does not work here: {reason}")]
    NetnsUnsupported {
        /// What went wrong.
        reason: String,
    },
    /// Every candidate subnet overlaps an address or route of the host.
    #[error("no free private subnet: {tried} all overlap the host's addresses or routes")]
    NoFreeSubnet {
        /// The subnets tried.
        tried: String,
    },
    /// The kernel has no `netem` qdisc (module `sch_netem`), so delay and loss cannot be
    /// emulated.
    #[error(
        "--netns-delay/--netns-loss need the netem qdisc, which is unavailable in this kernel \
         (no sch_netem); `{command}`: {stderr}"
    )]
    NetemUnavailable {
        /// The `tc` command that failed.
        command: String,
        /// What `tc` printed.
        stderr: String,
    },
    /// Too many nodes for netns mode.
    #[error("netns mode supports at most {MAX_NODES} nodes, not {nodes}")]
    TooManyNodes {
        /// The number asked for.
        nodes: usize,
    },
    /// A marker file could not be written.
    #[error("marker file {path}: {source}")]
    Marker {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A node's thread could not enter its namespace.
    #[error("entering namespace {name}: {reason}")]
    Enter {
        /// The namespace.
        name: String,
        /// What went wrong.
        reason: String,
    },
}

/// Runs a command; its stdout on success.
fn run(args: &[&str]) -> Result<String, NetnsError> {
    let command = args.join(" ");
    let (prog, rest) = args.split_first().ok_or_else(|| NetnsError::Command {
        command: command.clone(),
        stderr: "empty command".to_owned(),
    })?;
    let out = Command::new(prog)
        .args(rest)
        .output()
        .map_err(|source| NetnsError::Spawn {
            command: command.clone(),
            source,
        })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(NetnsError::Command {
            command,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

/// Whether this process runs as root (effective uid 0).
#[cfg(target_os = "linux")]
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Whether this process runs as root (never, off Linux: netns mode is Linux-only).
#[cfg(not(target_os = "linux"))]
pub fn is_root() -> bool {
    false
}

/// Makes sure `ip` works, installing iproute2 with apt-get if it is missing (root only).
pub fn ensure_iproute() -> Result<(), NetnsError> {
    match Command::new("ip").arg("-V").output() {
        Ok(out) if out.status.success() => return Ok(()),
        Ok(_) | Err(_) => {}
    }
    if !is_root() {
        return Err(NetnsError::NotRoot);
    }
    tracing::info!("`ip` is missing: installing iproute2 with apt-get");
    let install = || run(&["apt-get", "install", "-y", "iproute2"]);
    if install().is_err() {
        // The package lists may be missing (a fresh container): fetch them once.
        run(&["apt-get", "update"]).map_err(|e| NetnsError::IprouteMissing {
            reason: e.to_string(),
        })?;
        install().map_err(|e| NetnsError::IprouteMissing {
            reason: e.to_string(),
        })?;
    }
    run(&["ip", "-V"]).map_err(|e| NetnsError::IprouteMissing {
        reason: e.to_string(),
    })?;
    Ok(())
}

/// Whether this machine can run netns mode: root, `ip` present, `ip netns` working. `Err`
/// says why not. Does not install anything.
pub fn check_support() -> Result<(), NetnsError> {
    if !is_root() {
        return Err(NetnsError::NotRoot);
    }
    run(&["ip", "-V"]).map_err(|e| NetnsError::IprouteMissing {
        reason: e.to_string(),
    })?;
    run(&["ip", "netns", "list"]).map_err(|e| NetnsError::NetnsUnsupported {
        reason: e.to_string(),
    })?;
    Ok(())
}

/// An IPv4 network `addr/len`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Net {
    addr: u32,
    len: u8,
}

impl Net {
    fn parse(s: &str) -> Option<Self> {
        let (a, len) = match s.split_once('/') {
            Some((a, l)) => (a, l.parse().ok()?),
            None => (s, 32),
        };
        if len > 32 {
            return None;
        }
        Some(Self {
            addr: u32::from(a.parse::<Ipv4Addr>().ok()?),
            len,
        })
    }
    fn mask(self) -> u32 {
        match self.len {
            0 => 0,
            l => u32::MAX << (32 - u32::from(l)),
        }
    }
    fn overlaps(self, other: Self) -> bool {
        let m = self.mask() & other.mask();
        self.addr & m == other.addr & m
    }
}

/// The networks the host uses: every `ip -4 -o addr` prefix and `ip -4 route` destination
/// (the default route left out: it overlaps everything without claiming anything).
fn host_networks() -> Result<Vec<Net>, NetnsError> {
    let mut nets = Vec::new();
    for line in run(&["ip", "-4", "-o", "addr", "show"])?.lines() {
        let mut words = line.split_whitespace();
        while let Some(w) = words.next() {
            if w == "inet" {
                nets.extend(words.next().and_then(Net::parse));
            }
        }
    }
    for table in ["main", "local"] {
        for line in run(&["ip", "-4", "route", "show", "table", table])?.lines() {
            let mut words = line.split_whitespace();
            let mut dest = words.next();
            if matches!(dest, Some("local" | "broadcast" | "unicast" | "blackhole")) {
                dest = words.next();
            }
            if let Some(d) = dest.filter(|d| *d != "default") {
                nets.extend(Net::parse(d));
            }
        }
    }
    Ok(nets)
}

/// The first of [`SUBNETS`] that overlaps none of `used`.
fn pick_subnet(used: &[Net]) -> Result<[u8; 2], NetnsError> {
    SUBNETS
        .iter()
        .copied()
        .find(|[a, b]| {
            let cand = Net {
                addr: u32::from(Ipv4Addr::new(*a, *b, 0, 0)),
                len: 16,
            };
            !used.iter().any(|n| n.overlaps(cand))
        })
        .ok_or_else(|| NetnsError::NoFreeSubnet {
            tried: SUBNETS
                .iter()
                .map(|[a, b]| format!("{a}.{b}.0.0/16"))
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// The names one run creates.
#[derive(Clone, Debug)]
struct Names {
    tag: String,
}

impl Names {
    fn namespace(&self, i: usize) -> String {
        format!("p2ptn-{}-{i}", self.tag)
    }
    fn bridge(&self) -> String {
        format!("ptb{}", self.tag)
    }
    fn second_bridge(&self) -> String {
        format!("ptc{}", self.tag)
    }
    fn veth(&self, i: usize) -> String {
        format!("pv{}{i}", self.tag)
    }
}

/// Whether `name` has one of the forms a run creates (so a marker can name nothing else).
fn is_ours(kind: &str, name: &str) -> bool {
    let hexes = |s: &str| s.len() >= 8 && s.bytes().take(8).all(|b| b.is_ascii_hexdigit());
    match kind {
        "netns" => name.strip_prefix("p2ptn-").is_some_and(hexes),
        "link" => ["ptb", "ptc", "pv"]
            .iter()
            .any(|p| name.strip_prefix(p).is_some_and(hexes)),
        _ => false,
    }
}

/// Deletes one listed item; `false` if it was there and could not be deleted.
fn delete(kind: &str, name: &str) -> bool {
    if !is_ours(kind, name) {
        tracing::warn!(kind, name, "netns cleanup: not a name of ours, left alone");
        return true;
    }
    let result = match kind {
        "netns" => run(&["ip", "netns", "del", name]),
        _ => run(&["ip", "link", "del", name]),
    };
    match result {
        Ok(_) => true,
        // Already gone (a namespace's veth end takes its pair along).
        Err(NetnsError::Command { stderr, .. })
            if stderr.contains("Cannot find device")
                || stderr.contains("No such file")
                || stderr.contains("does not exist") =>
        {
            true
        }
        Err(e) => {
            tracing::warn!(kind, name, error = %e, "netns cleanup failed");
            false
        }
    }
}

/// Removes what the markers of runs whose process is gone list; returns the markers removed.
pub fn remove_stale() -> Vec<PathBuf> {
    let mut removed = Vec::new();
    let Ok(dirs) = std::fs::read_dir(MARKER_DIR) else {
        return removed;
    };
    for dir in dirs.flatten() {
        let name = dir.file_name();
        let Some(pid) = name.to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let Ok(files) = std::fs::read_dir(dir.path()) else {
            continue;
        };
        for f in files.flatten() {
            let path = f.path();
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            if delete_listed(&text) {
                let _ = std::fs::remove_file(&path);
                tracing::info!(marker = %path.display(), "removed the leftovers of a dead testnet run");
                removed.push(path);
            }
        }
        let _ = std::fs::remove_dir(dir.path());
    }
    removed
}

/// Deletes what a marker lists, links (bridges, veths) after namespaces; `true` if nothing
/// is left.
fn delete_listed(text: &str) -> bool {
    let items: Vec<(&str, &str)> = text
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, n)| (k, n.trim()))
        .collect();
    let mut ok = true;
    for kind in ["netns", "link"] {
        for (k, n) in items.iter().rev().filter(|(k, _)| *k == kind) {
            ok &= delete(k, n);
        }
    }
    ok
}

/// Which half of a partition a node is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    First,
    Second,
}

/// The network of one netns run; deletes everything it created when dropped.
#[derive(Debug)]
pub struct Netns {
    names: Names,
    subnet: [u8; 2],
    nodes: usize,
    marker: PathBuf,
    /// What was created, in order: ("netns" | "link", name).
    created: Vec<(&'static str, String)>,
    partitioned: bool,
}

impl Netns {
    /// Creates the namespaces, veths and bridge for `nodes` nodes, shaped by `options`.
    /// Removes dead runs' leftovers first. On an error, whatever was created is deleted.
    pub fn create(nodes: usize, options: &NetnsOptions) -> Result<Self, NetnsError> {
        if nodes > MAX_NODES {
            return Err(NetnsError::TooManyNodes { nodes });
        }
        if !is_root() {
            return Err(NetnsError::NotRoot);
        }
        ensure_iproute()?;
        run(&["ip", "netns", "list"]).map_err(|e| NetnsError::NetnsUnsupported {
            reason: e.to_string(),
        })?;
        let stale = remove_stale();
        if !stale.is_empty() {
            tracing::info!(runs = stale.len(), "removed leftovers of dead testnet runs");
        }
        let subnet = pick_subnet(&host_networks()?)?;
        let pid = std::process::id();
        let seq = RUNS.fetch_add(1, Ordering::Relaxed) % 256;
        let names = Names {
            tag: format!("{pid:06x}{seq:02x}"),
        };
        let dir = Path::new(MARKER_DIR).join(pid.to_string());
        std::fs::create_dir_all(&dir).map_err(|source| NetnsError::Marker {
            path: dir.clone(),
            source,
        })?;
        let mut net = Self {
            marker: dir.join(&names.tag),
            names,
            subnet,
            nodes,
            created: Vec::new(),
            partitioned: false,
        };
        // From here on, dropping `net` removes whatever was created.
        net.write_marker()?;
        net.build(options)?;
        tracing::info!(
            nodes,
            subnet = %net.subnet_str(),
            bridge = %net.names.bridge(),
            "netns network created"
        );
        Ok(net)
    }

    fn record(&mut self, kind: &'static str, name: String) -> Result<(), NetnsError> {
        self.created.push((kind, name));
        self.write_marker()
    }

    fn write_marker(&self) -> Result<(), NetnsError> {
        let mut text = String::new();
        for (k, n) in &self.created {
            let _ = writeln!(text, "{k} {n}");
        }
        let err = |source| NetnsError::Marker {
            path: self.marker.clone(),
            source,
        };
        let mut f = File::create(&self.marker).map_err(err)?;
        f.write_all(text.as_bytes()).map_err(err)
    }

    fn add_bridge(&mut self, name: String) -> Result<(), NetnsError> {
        // Bridged frames skip iptables where the kernel lets us say so (br_netfilter with a
        // FORWARD policy of DROP, as Docker sets, would otherwise cut the nodes apart).
        if run(&[
            "ip",
            "link",
            "add",
            "name",
            &name,
            "type",
            "bridge",
            "nf_call_iptables",
            "0",
        ])
        .is_err()
        {
            run(&["ip", "link", "add", "name", &name, "type", "bridge"])?;
        }
        self.record("link", name.clone())?;
        run(&["ip", "link", "set", &name, "up"])?;
        Ok(())
    }

    fn build(&mut self, options: &NetnsOptions) -> Result<(), NetnsError> {
        self.add_bridge(self.names.bridge())?;
        let bridge = self.names.bridge();
        for i in 0..self.nodes {
            let ns = self.names.namespace(i);
            run(&["ip", "netns", "add", &ns])?;
            self.record("netns", ns.clone())?;
            let veth = self.names.veth(i);
            run(&[
                "ip", "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns,
            ])?;
            self.record("link", veth.clone())?;
            run(&["ip", "link", "set", &veth, "master", &bridge])?;
            run(&["ip", "link", "set", &veth, "up"])?;
            let addr = format!("{}/16", self.ip(i));
            run(&["ip", "-n", &ns, "addr", "add", &addr, "dev", "eth0"])?;
            run(&["ip", "-n", &ns, "link", "set", "eth0", "up"])?;
            run(&["ip", "-n", &ns, "link", "set", "lo", "up"])?;
            shape(&ns, options)?;
        }
        Ok(())
    }

    /// The run tag in every name (`p2ptn-<tag>-<i>`, `ptb<tag>`, `pv<tag><i>`).
    pub fn tag(&self) -> &str {
        &self.names.tag
    }

    /// The subnet, `A.B.0.0/16`.
    pub fn subnet_str(&self) -> String {
        let [a, b] = self.subnet;
        format!("{a}.{b}.0.0/16")
    }

    /// Node `i`'s address (host number `i + 1` in the subnet).
    pub fn ip(&self, i: usize) -> Ipv4Addr {
        let [a, b] = self.subnet;
        let host = i + 1;
        Ipv4Addr::new(a, b, (host >> 8) as u8, (host & 0xff) as u8)
    }

    /// Node `i`'s namespace name.
    pub fn namespace(&self, i: usize) -> String {
        self.names.namespace(i)
    }

    /// Node `i`'s namespace file (`/run/netns/<name>`), for `setns`.
    pub fn namespace_path(&self, i: usize) -> PathBuf {
        Path::new("/run/netns").join(self.names.namespace(i))
    }

    /// The marker file of this run.
    pub fn marker(&self) -> &Path {
        &self.marker
    }

    /// Everything created so far: (`"netns"` or `"link"`, name).
    pub fn created(&self) -> Vec<(String, String)> {
        self.created
            .iter()
            .map(|(k, n)| ((*k).to_owned(), n.clone()))
            .collect()
    }

    /// Splits the network: the nodes in `second` move to a second bridge, so they reach
    /// each other but no node outside `second` (packets are dropped, connections are not
    /// reset: they stall as on a real split).
    pub fn partition(&mut self, second: &[usize]) -> Result<(), NetnsError> {
        if !self
            .created
            .iter()
            .any(|(_, n)| *n == self.names.second_bridge())
        {
            self.add_bridge(self.names.second_bridge())?;
        }
        for &i in second.iter().filter(|&&i| i < self.nodes) {
            self.attach(i, Side::Second)?;
        }
        self.partitioned = true;
        Ok(())
    }

    /// Ends a [`partition`](Self::partition): every node on the first bridge again.
    pub fn heal(&mut self) -> Result<(), NetnsError> {
        for i in 0..self.nodes {
            self.attach(i, Side::First)?;
        }
        self.partitioned = false;
        Ok(())
    }

    /// Whether the network is split.
    pub fn is_partitioned(&self) -> bool {
        self.partitioned
    }

    fn attach(&self, i: usize, side: Side) -> Result<(), NetnsError> {
        let bridge = match side {
            Side::First => self.names.bridge(),
            Side::Second => self.names.second_bridge(),
        };
        run(&["ip", "link", "set", &self.names.veth(i), "master", &bridge])?;
        Ok(())
    }

    /// Deletes everything created (namespaces first, their veth ends take the pairs along,
    /// then the links), then the marker; kept if something could not be deleted, so that a
    /// later run retries.
    fn cleanup(&mut self) {
        let mut text = String::new();
        for (k, n) in &self.created {
            let _ = writeln!(text, "{k} {n}");
        }
        if delete_listed(&text) {
            self.created.clear();
            let _ = std::fs::remove_file(&self.marker);
            if let Some(dir) = self.marker.parent() {
                // Only if empty (another run of this process may still have its marker).
                let _ = std::fs::remove_dir(dir);
            }
            tracing::info!(tag = %self.names.tag, "netns network deleted");
        } else {
            tracing::warn!(marker = %self.marker.display(), "netns cleanup incomplete; the marker is kept");
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// Adds the qdiscs of `options` to `eth0` in namespace `ns`.
fn shape(ns: &str, options: &NetnsOptions) -> Result<(), NetnsError> {
    let tc = |extra: &[&str]| -> Result<String, NetnsError> {
        let mut args = vec![
            "ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", "eth0",
        ];
        args.extend_from_slice(extra);
        run(&args)
    };
    let mut netem_args: Vec<String> = Vec::new();
    if let Some(ms) = options.delay_ms {
        netem_args.extend(["delay".to_owned(), format!("{ms}ms")]);
    }
    if let Some(pct) = options.loss_pct {
        netem_args.extend(["loss".to_owned(), format!("{pct}%")]);
    }
    let tbf = |parent: &[&'static str], rate: &str| -> Result<String, NetnsError> {
        let mut args: Vec<&str> = parent.to_vec();
        args.extend(["tbf", "rate", rate, "burst", "32kb", "latency", "50ms"]);
        tc(&args)
    };
    if options.wants_netem() {
        let mut args: Vec<&str> = vec!["root", "handle", "1:", "netem"];
        args.extend(netem_args.iter().map(String::as_str));
        args.extend(["limit", "100000"]);
        if let Err(e) = tc(&args) {
            return Err(match e {
                NetnsError::Command { command, stderr } => {
                    NetnsError::NetemUnavailable { command, stderr }
                }
                other => other,
            });
        }
        if let Some(rate) = &options.rate {
            tbf(&["parent", "1:1", "handle", "10:"], rate)?;
        }
    } else if let Some(rate) = &options.rate {
        tbf(&["root", "handle", "1:"], rate)?;
    }
    Ok(())
}

/// Moves the calling thread into the namespace at `path` (off Linux: an error).
#[cfg(not(target_os = "linux"))]
pub fn enter(path: &Path) -> Result<(), NetnsError> {
    Err(NetnsError::Enter {
        name: path.display().to_string(),
        reason: "network namespaces are Linux-only".to_owned(),
    })
}

/// Moves the calling thread into the namespace at `path` (the thread's sockets are made in it
/// from then on).
#[cfg(target_os = "linux")]
pub fn enter(path: &Path) -> Result<(), NetnsError> {
    let name = path.display().to_string();
    let file = File::open(path).map_err(|e| NetnsError::Enter {
        name: name.clone(),
        reason: e.to_string(),
    })?;
    nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| NetnsError::Enter {
        name,
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_that_overlap_the_host_are_skipped() {
        let parse = |s| Net::parse(s).unwrap();
        assert!(parse("10.214.3.0/24").overlaps(parse("10.214.0.0/16")));
        assert!(parse("10.0.0.0/8").overlaps(parse("10.214.0.0/16")));
        assert!(!parse("192.0.2.0/24").overlaps(parse("10.214.0.0/16")));
        assert_eq!(pick_subnet(&[parse("127.0.0.0/8")]).unwrap(), [10, 214]);
        assert_eq!(
            pick_subnet(&[parse("10.214.9.9/32"), parse("10.215.0.0/16")]).unwrap(),
            [10, 251]
        );
        assert!(matches!(
            pick_subnet(&[parse("10.0.0.0/8"), parse("172.16.0.0/12")]),
            Err(NetnsError::NoFreeSubnet { .. })
        ));
    }

    #[test]
    fn only_our_names_are_deleted() {
        assert!(is_ours("netns", "p2ptn-0012ab00-3"));
        assert!(is_ours("link", "ptb0012ab00"));
        assert!(is_ours("link", "pv0012ab0017"));
        assert!(!is_ours("link", "eth0"));
        assert!(!is_ours("link", "docker0"));
        assert!(!is_ours("netns", "mynet"));
        assert!(!is_ours("route", "ptb0012ab00"));
        // `delete` refuses (and reports nothing left to do) for foreign names.
        assert!(delete("link", "eth0"));
    }

    #[test]
    fn names_fit_the_interface_limit() {
        let n = Names {
            tag: format!("{:06x}{:02x}", 4_194_304u32, 255),
        };
        assert!(n.veth(MAX_NODES - 1).len() <= 15);
        assert!(n.bridge().len() <= 15);
        assert!(n.second_bridge().len() <= 15);
    }
}
