//! `testnet`: N full nodes on loopback TCP (or, with `--netns`, each in its own network
//! namespace with its own IP behind a bridge) discovering each other with PEX through one
//! seed, gossip flooding, live progress and a summary.
//! `cargo run --release -p p2p-testkit --bin testnet -- --help`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use comfy_table::Table;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use p2p_testkit::testnet::{
    self, NetnsOptions, PartitionConfig, Scenario, Snapshot, Summary, TestnetConfig,
};

/// Runs an in-process testnet of full nodes over loopback TCP (node 0 a PEX seed in seed
/// mode, the others knowing only the seed) and reports convergence, delivery, throughput,
/// latency and memory.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Number of nodes, the seed included.
    #[arg(long, default_value_t = 16)]
    nodes: usize,
    /// Run time in seconds (a drain of up to 3 s follows).
    #[arg(long, default_value_t = 30.0)]
    duration: f64,
    /// Payload bytes per gossip message.
    #[arg(long, default_value_t = 256)]
    msg_size: usize,
    /// Messages each node originates per second.
    #[arg(long, default_value_t = 10.0)]
    rate: f64,
    /// Outbound connections each node aims for (PEX max_num_outbound_peers; capped at
    /// nodes - 2).
    #[arg(long, default_value_t = 10)]
    outbound: usize,
    /// PEX period in seconds: outbound top-up and seed crawl (the reference's is 30).
    #[arg(long, default_value_t = 1.0)]
    pex_period: f64,
    /// Node i listens on 127.0.0.1:BASE_PORT+i (0: free ports).
    #[arg(long, default_value_t = 0)]
    base_port: u16,
    /// Keep the nodes' homes (node-N/config/addrbook.json for node N) here instead of a temporary
    /// directory; with --base-port a second run starts from the saved address books.
    #[arg(long)]
    home: Option<PathBuf>,
    /// Serve node i's Prometheus metrics at http://127.0.0.1:PORT+i/metrics (0: free ports,
    /// printed at the start).
    #[arg(long)]
    metrics_port: Option<u16>,
    /// MConnection send limit in bytes/s (0 = unlimited).
    #[arg(long, default_value_t = 512_000)]
    send_rate: u64,
    /// MConnection receive limit in bytes/s (0 = unlimited).
    #[arg(long, default_value_t = 512_000)]
    recv_rate: u64,
    /// Seed of all randomness.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Directory for summary.json, peers.svg, latency.svg and topology.dot.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Print the summary as one JSON object on the last line.
    #[arg(long)]
    json: bool,
    /// Add K reference Go nodes (CometBFT's switch and PEX, knowing only the seed); needs
    /// --go-shim or COMETBFT_SHIM. Gossip counts our nodes only (Go nodes lack its channel).
    #[arg(long, default_value_t = 0)]
    go_nodes: usize,
    /// The Go reference program (`cargo xtask shim` builds it and prints its path); default:
    /// the COMETBFT_SHIM environment variable.
    #[arg(long)]
    go_shim: Option<PathBuf>,
    /// Linux, root: every node in its own network namespace with its own IPv4 address behind
    /// a bridge (duplicate-IP filter on), all listening on port 26656 (or --base-port).
    /// Everything created is deleted at the end, on an error and on Ctrl-C.
    #[arg(long)]
    netns: bool,
    /// With --netns: one-way delay added to each node's packets, ms (tc netem; fails with a
    /// clear error where the kernel has no netem).
    #[arg(long, requires = "netns")]
    netns_delay: Option<u32>,
    /// With --netns: share of each node's packets dropped, percent (tc netem).
    #[arg(long, requires = "netns")]
    netns_loss: Option<f64>,
    /// With --netns: rate cap of each node's traffic, a tc rate such as 10mbit (tc tbf).
    #[arg(long, requires = "netns")]
    netns_rate: Option<String>,
    /// What happens after convergence: `steady` (gossip at once) or `partition` (needs
    /// --netns: split the network in two, heal, restart --restarts nodes, then gossip).
    #[arg(long, default_value = "steady", value_parser = ["steady", "partition"])]
    scenario: String,
    /// Partition scenario: seconds the split lasts.
    #[arg(long, default_value_t = 8.0)]
    partition_hold: f64,
    /// Partition scenario: nodes (the last ones) stopped and restarted after the heal.
    #[arg(long, default_value_t = 2)]
    restarts: usize,
    /// Seconds the PEX bans an address it finds bad: a misbehaving peer, an address where
    /// another node answers (the reference: 24 h).
    #[arg(long, default_value_t = 30.0)]
    ban_time: f64,
}

/// `out/in (ours)` per Go node.
fn go_peers(p: &[testnet::GoPeers]) -> String {
    p.iter()
        .map(|g| format!("{}/{} ({} ours)", g.outbound, g.inbound, g.ours))
        .collect::<Vec<_>>()
        .join("  ")
}

fn status(s: &Snapshot) -> String {
    let peers: Vec<String> = s.peers.iter().map(ToString::to_string).collect();
    let go = if s.go_peers.is_empty() {
        String::new()
    } else {
        format!("\n  Go nodes' peers out/in: {}", go_peers(&s.go_peers))
    };
    let text = format!(
        "t={:5.1}s  PEX discovery {}/{} nodes at target  gossip {}\n  delivered {}  {:.0} msgs/s  {:.0} B/s\n  peers per node: {}",
        s.elapsed_s,
        s.converged_nodes,
        s.nodes.saturating_sub(1) + s.go_peers.len(),
        if s.gossiping { "on" } else { "waiting" },
        s.delivered,
        s.msgs_per_s,
        s.bytes_per_s,
        peers.join(" ")
    );
    text + &go
}

fn table(s: &Summary) -> Table {
    let mut t = Table::new();
    t.set_header(["metric", "value"]);
    let conv = s
        .convergence_s
        .map_or_else(|| "not reached".to_owned(), |c| format!("{c:.2} s"));
    let mut rows: Vec<(&str, String)> = vec![
        ("nodes", s.nodes.to_string()),
        ("outbound target", s.outbound_target.to_string()),
        ("time to converge", conv),
        (
            "outbound peers (min/max)",
            format!("{} / {}", s.outbound_min, s.outbound_max),
        ),
        ("fewest peers", s.peers_min.to_string()),
        ("smallest address book", s.addrbook_min.to_string()),
        ("PEX period", format!("{:.1} s", s.pex_period_s)),
        ("messages sent", s.sent.to_string()),
        ("delivered", s.delivered.to_string()),
        ("lost", s.lost.to_string()),
        (
            "throughput",
            format!("{:.0} msgs/s, {:.0} B/s", s.msgs_per_s, s.bytes_per_s),
        ),
        ("latency p50", format!("{:.2} ms", s.latency_p50_ms)),
        ("latency p99", format!("{:.2} ms", s.latency_p99_ms)),
        ("latency max", format!("{:.2} ms", s.latency_max_ms)),
        (
            "peak RSS",
            format!("{:.1} MiB", s.peak_rss_bytes as f64 / 1048576.0),
        ),
        ("interrupted", s.interrupted.to_string()),
    ];
    if let Some(ns) = &s.netns {
        rows.insert(
            1,
            ("network", format!("netns, {} (tag {})", ns.subnet, ns.tag)),
        );
        rows.insert(
            2,
            (
                "duplicate-IP filter",
                if ns.duplicate_ip_filter { "on" } else { "off" }.to_owned(),
            ),
        );
        let shaping = [
            ns.delay_ms.map(|d| format!("delay {d} ms")),
            ns.loss_pct.map(|l| format!("loss {l}%")),
            ns.rate.as_ref().map(|r| format!("rate {r}")),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>();
        if !shaping.is_empty() {
            rows.insert(3, ("link shaping", shaping.join(", ")));
        }
    }
    if let Some(p) = &s.partition {
        let secs =
            |v: Option<f64>| v.map_or_else(|| "not reached".to_owned(), |c| format!("{c:.2} s"));
        let list = |v: &[usize]| {
            v.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" ")
        };
        let gossipers = s.nodes.saturating_sub(1);
        rows.extend([
            (
                "partition",
                format!(
                    "{:.1} s, nodes {} split off",
                    p.hold_s,
                    list(&p.second_half)
                ),
            ),
            (
                "fewest peers at the end of the split",
                p.peers_min_split
                    .map_or_else(|| "-".to_owned(), |v| v.to_string()),
            ),
            (
                "connections across the split at the heal",
                p.cross_connections_at_heal
                    .map_or_else(|| "-".to_owned(), |v| v.to_string()),
            ),
            ("re-converged after the heal", secs(p.heal_reconverge_s)),
            (
                "nodes at target after the heal",
                format!("{}/{gossipers}", p.nodes_at_target_after_heal),
            ),
            (
                "restarted (addresses loaded)",
                p.restarted
                    .iter()
                    .zip(
                        p.restarted_loaded
                            .iter()
                            .map(Some)
                            .chain(std::iter::repeat(None)),
                    )
                    .map(|(i, l)| match l {
                        Some(l) => format!("{i} ({l})"),
                        None => i.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            (
                "re-converged after the restarts",
                secs(p.restart_reconverge_s),
            ),
            (
                "nodes at target after the restarts",
                format!("{}/{gossipers}", p.nodes_at_target_after_restart),
            ),
            ("scenario completed", p.completed.to_string()),
        ]);
    }
    if s.go_nodes > 0 {
        rows.insert(1, ("Go nodes", s.go_nodes.to_string()));
        rows.insert(2, ("Go nodes' peers out/in", go_peers(&s.go_peers)));
        rows.insert(
            3,
            (
                "our nodes seeing each Go node",
                s.go_peers
                    .iter()
                    .map(|g| g.ours_seeing_it.to_string())
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
        );
        rows.push(("gossip counts", "our nodes only".to_owned()));
        rows.push(("chain ID", s.network.clone()));
    }
    for (k, v) in rows {
        t.add_row([k.to_owned(), v]);
    }
    t
}

/// Ctrl-C, or (Unix) SIGTERM: the run stops early and cleans up (Go nodes, netns mode's
/// namespaces and bridge) before the summary. The handlers are installed at once, so a
/// signal during the setup is not fatal either: it stops the run as soon as it starts.
fn stop_signal() -> impl Future<Output = ()> {
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{SignalKind, signal};
        signal(SignalKind::interrupt())
            .and_then(|int| Ok((int, signal(SignalKind::terminate())?)))
            .ok()
    };
    async move {
        #[cfg(unix)]
        if let Some((mut int, mut term)) = signals {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let mut config = TestnetConfig::default();
    config
        .nodes(args.nodes)
        .duration(Duration::from_secs_f64(args.duration.max(0.0)))
        .msg_size(args.msg_size)
        .rate(args.rate)
        .outbound_target(args.outbound)
        .send_rate(args.send_rate)
        .recv_rate(args.recv_rate)
        .pex_period(Duration::from_secs_f64(args.pex_period.max(0.003)))
        .base_port(args.base_port)
        .home(args.home.clone())
        .metrics_port(args.metrics_port)
        .seed(args.seed)
        .go_nodes(args.go_nodes)
        .go_shim(args.go_shim.clone())
        .ban_time(Duration::from_secs_f64(args.ban_time.max(0.0)));
    if args.netns {
        let mut options = NetnsOptions::default();
        options
            .delay_ms(args.netns_delay)
            .loss_pct(args.netns_loss)
            .rate(args.netns_rate.clone());
        config.netns(Some(options));
    }
    if args.scenario == "partition" {
        let mut p = PartitionConfig::default();
        p.hold(Duration::from_secs_f64(args.partition_hold.max(0.0)))
            .restarts(args.restarts);
        config.scenario(Scenario::Partition(p));
    }
    let tty = std::io::stdout().is_terminal();
    let bar = if tty {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stdout());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        Some(bar)
    } else {
        None
    };
    let mut last_line = -1.0f64;
    let result = testnet::run(
        &config,
        stop_signal(),
        |m| {
            let first = m
                .addrs()
                .first()
                .map(ToString::to_string)
                .unwrap_or_default();
            let last = m
                .addrs()
                .last()
                .map(ToString::to_string)
                .unwrap_or_default();
            println!("metrics: http://{first}/metrics (node 0) .. http://{last}/metrics");
        },
        |s| match &bar {
            Some(bar) => {
                bar.set_message(status(s));
                bar.tick();
            }
            None => {
                if s.elapsed_s - last_line >= 1.0 {
                    last_line = s.elapsed_s;
                    println!("{}", status(s).replace("\n ", " |"));
                }
            }
        },
    )
    .await;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let summary = match result {
        Ok(s) => s,
        Err(e) => {
            eprintln!("testnet: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    println!("{}", table(&summary));
    if let Some(dir) = &args.report {
        match testnet::write_report(dir, &summary) {
            Ok(()) => println!("report written to {}", dir.display()),
            Err(e) => eprintln!("testnet: {e}"),
        }
    }
    if args.json {
        println!("{}", summary.to_json_line());
    }
    std::process::ExitCode::SUCCESS
}
