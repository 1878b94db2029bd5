//! The figures a seed reports: in the status line, at `/metrics` and at `/peers`.
//!
//! Metrics (all labelled `chain_id`, as CometBFT labels its own): the switch's, with the
//! reference's names (`cometbft_p2p_peers`, `cometbft_p2p_message_{send,receive}_bytes_total`),
//! and the seed's, which have no reference equivalent, under the `seed` subsystem:
//!
//! | name | type | meaning |
//! |---|---|---|
//! | `cometbft_seed_addrbook_new` | gauge | addresses in the book's new buckets (heard of) |
//! | `cometbft_seed_addrbook_old` | gauge | addresses in the book's old buckets (vetted) |
//! | `cometbft_seed_addrbook_verified` | gauge | addresses the seed connected to within the verified window (24 h) |
//! | `cometbft_seed_peers_inbound` | gauge | connected peers that dialled us |
//! | `cometbft_seed_peers_outbound` | gauge | connected peers we dialled (crawling) |
//! | `cometbft_seed_crawled_last_hour` | gauge | node IDs dialled to crawl in the last hour |
//! | `cometbft_seed_crawl_dials_total` | counter | dials made to crawl since start |
//! | `cometbft_seed_requests_served_total` | counter | address requests answered since start |
//! | `cometbft_seed_answers_received_total` | counter | address answers received from crawled peers |

use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::Serialize;

use crate::Seed;

/// Window of [`Status::crawled_last_hour`].
pub const CRAWL_WINDOW: Duration = Duration::from_secs(3600);

/// A snapshot of one seed's state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Status {
    /// The chain.
    pub chain_id: String,
    /// Our node ID.
    pub node_id: String,
    /// Where we listen (`ip:port`), if running.
    pub listen: Option<String>,
    /// Addresses in the book's new buckets (heard of, never vetted).
    pub new: usize,
    /// Addresses in the book's old buckets (vetted: we connected to them once).
    pub old: usize,
    /// Addresses we connected to within the verified window.
    pub verified: usize,
    /// Peers connected now (inbound + outbound, unconditional ones included).
    pub connected: usize,
    /// Connected peers that dialled us.
    pub inbound: usize,
    /// Connected peers we dialled.
    pub outbound: usize,
    /// Node IDs dialled to crawl within the last hour.
    pub crawled_last_hour: usize,
    /// Dials made to crawl since start.
    pub crawl_dials: u64,
    /// Address requests answered since start.
    pub requests_served: u64,
    /// Address answers received since start.
    pub answers_received: u64,
}

/// A verified address, as `/peers` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PeerEntry {
    /// The chain.
    pub chain_id: String,
    /// The node ID.
    pub id: String,
    /// `ip:port`.
    pub addr: String,
    /// Seconds since the seed last connected to it.
    pub last_success_secs_ago: u64,
}

impl PeerEntry {
    /// `id@ip:port`, as `persistent_peers` takes it.
    pub fn peer_address(&self) -> String {
        format!("{}@{}", self.id, self.addr)
    }
}

impl Seed {
    /// The current figures.
    pub fn status(&self) -> Status {
        let switch = self.switch.handle();
        let (outbound, inbound, _) = switch.num_peers();
        let connected = switch.peers().len();
        let stats = self.pex.stats();
        let crawled_last_hour = self.pex.crawled_within(CRAWL_WINDOW);
        let (new, old, verified) = {
            let book = self.pex.address_book();
            let book = book.lock();
            let now = book.now();
            let verified = book.entries().filter(|k| self.is_verified(k, now)).count();
            (book.num_new(), book.num_old(), verified)
        };
        Status {
            chain_id: self.chain_id.clone(),
            node_id: self.node_id.to_string(),
            listen: self.local_addr().map(|a| a.socket_addr().to_string()),
            new,
            old,
            verified,
            connected,
            inbound,
            outbound,
            crawled_last_hour,
            crawl_dials: stats.crawl_dials,
            requests_served: stats.requests_served,
            answers_received: stats.answers_received,
        }
    }

    fn is_verified(&self, k: &p2p_pex::KnownAddress, now: std::time::SystemTime) -> bool {
        k.last_success().is_some_and(|t| {
            now.duration_since(t)
                .map_or(true, |ago| ago <= self.verified_window)
        })
    }

    /// The verified addresses (connected to within the verified window, not banned), most
    /// recently verified first.
    pub fn verified_peers(&self) -> Vec<PeerEntry> {
        let book = self.pex.address_book();
        let book = book.lock();
        let now = book.now();
        let mut out: Vec<PeerEntry> = book
            .entries()
            .filter(|k| self.is_verified(k, now) && !book.is_banned(k.addr()))
            .map(|k| {
                let ago = k
                    .last_success()
                    .and_then(|t| now.duration_since(t).ok())
                    .unwrap_or_default();
                PeerEntry {
                    chain_id: self.chain_id.clone(),
                    id: k.addr().id().to_string(),
                    addr: k.addr().socket_addr().to_string(),
                    last_success_secs_ago: ago.as_secs(),
                }
            })
            .collect();
        out.sort_by(|a, b| {
            a.last_success_secs_ago
                .cmp(&b.last_success_secs_ago)
                .then_with(|| a.id.cmp(&b.id))
        });
        out
    }
}

/// The status line of one chain.
pub fn status_line(s: &Status) -> String {
    format!(
        "chain={} id={} listen={} book={} new/{} old verified={} peers={} (in {}/out {}) \
         crawled_1h={} crawl_dials={} served={} answers={}",
        s.chain_id,
        s.node_id,
        s.listen.as_deref().unwrap_or("-"),
        s.new,
        s.old,
        s.verified,
        s.connected,
        s.inbound,
        s.outbound,
        s.crawled_last_hour,
        s.crawl_dials,
        s.requests_served,
        s.answers_received,
    )
}

/// The seed's own metrics of one chain (see the [module docs](self)).
#[derive(Clone, Debug, Default)]
pub struct SeedMetrics {
    new: Gauge,
    old: Gauge,
    verified: Gauge,
    inbound: Gauge,
    outbound: Gauge,
    crawled_last_hour: Gauge,
    crawl_dials: Counter,
    requests_served: Counter,
    answers_received: Counter,
}

impl SeedMetrics {
    /// Registers the metrics in `registry` (prefixed `cometbft_seed` by the caller).
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        let gauges = [
            (
                "addrbook_new",
                "Addresses in the address book's new buckets",
                &m.new,
            ),
            (
                "addrbook_old",
                "Addresses in the address book's old (vetted) buckets",
                &m.old,
            ),
            (
                "addrbook_verified",
                "Addresses the seed connected to within the verified window",
                &m.verified,
            ),
            ("peers_inbound", "Connected inbound peers", &m.inbound),
            (
                "peers_outbound",
                "Connected outbound (crawled) peers",
                &m.outbound,
            ),
            (
                "crawled_last_hour",
                "Node IDs dialled to crawl in the last hour",
                &m.crawled_last_hour,
            ),
        ];
        for (name, help, g) in gauges {
            registry.register(name, help, g.clone());
        }
        let counters = [
            ("crawl_dials", "Dials made to crawl", &m.crawl_dials),
            (
                "requests_served",
                "Address requests answered",
                &m.requests_served,
            ),
            (
                "answers_received",
                "Address answers received from crawled peers",
                &m.answers_received,
            ),
        ];
        for (name, help, c) in counters {
            registry.register(name, help, c.clone());
        }
        m
    }

    /// Sets the metrics from `s`.
    pub fn update(&self, s: &Status) {
        let g = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.new.set(g(s.new));
        self.old.set(g(s.old));
        self.verified.set(g(s.verified));
        self.inbound.set(g(s.inbound));
        self.outbound.set(g(s.outbound));
        self.crawled_last_hour.set(g(s.crawled_last_hour));
        for (c, v) in [
            (&self.crawl_dials, s.crawl_dials),
            (&self.requests_served, s.requests_served),
            (&self.answers_received, s.answers_received),
        ] {
            // The sources only grow; catch the counter up.
            let now = c.get();
            if v > now {
                c.inc_by(v - now);
            }
        }
    }
}

/// Merges OpenMetrics texts (one per chain) into one exposition: each metric family once,
/// with its `# HELP`/`# TYPE`/`# UNIT` lines from the first text that has it and the samples
/// of every text, in first-seen order; one `# EOF` at the end.
pub fn merge_openmetrics(texts: &[String]) -> String {
    let mut families: Vec<(String, Vec<String>, Vec<String>)> = Vec::new();
    for text in texts {
        let mut current: Option<usize> = None;
        for line in text.lines() {
            if line == "# EOF" || line.is_empty() {
                continue;
            }
            if let Some(rest) = line
                .strip_prefix("# HELP ")
                .or_else(|| line.strip_prefix("# TYPE "))
                .or_else(|| line.strip_prefix("# UNIT "))
            {
                let name = rest.split(' ').next().unwrap_or_default().to_owned();
                let idx = match families.iter().position(|(n, _, _)| *n == name) {
                    Some(i) => i,
                    None => {
                        families.push((name, Vec::new(), Vec::new()));
                        families.len() - 1
                    }
                };
                if let Some((_, headers, _)) = families.get_mut(idx) {
                    // Keep the first HELP, TYPE and UNIT line of each family.
                    if !headers.iter().any(|h| h.get(..7) == line.get(..7)) {
                        headers.push(line.to_owned());
                    }
                }
                current = Some(idx);
                continue;
            }
            match current.and_then(|i| families.get_mut(i)) {
                Some((_, _, samples)) => samples.push(line.to_owned()),
                None => families.push((String::new(), Vec::new(), vec![line.to_owned()])),
            }
        }
    }
    let mut out = String::new();
    for (_, headers, samples) in &families {
        for l in headers.iter().chain(samples) {
            out.push_str(l);
            out.push('\n');
        }
    }
    out.push_str("# EOF\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_keeps_each_family_once() {
        let a = "# HELP x_peers Number.\n# TYPE x_peers gauge\nx_peers{chain_id=\"a\"} 1\n# HELP y Y.\n# TYPE y counter\ny_total{chain_id=\"a\"} 2\n# EOF\n";
        let b = "# HELP x_peers Number.\n# TYPE x_peers gauge\nx_peers{chain_id=\"b\"} 3\n# HELP y Y.\n# TYPE y counter\ny_total{chain_id=\"b\"} 4\n# EOF\n";
        let m = merge_openmetrics(&[a.to_owned(), b.to_owned()]);
        assert_eq!(
            m,
            "# HELP x_peers Number.\n# TYPE x_peers gauge\nx_peers{chain_id=\"a\"} 1\nx_peers{chain_id=\"b\"} 3\n# HELP y Y.\n# TYPE y counter\ny_total{chain_id=\"a\"} 2\ny_total{chain_id=\"b\"} 4\n# EOF\n"
        );
        assert_eq!(merge_openmetrics(&[a.to_owned()]), a);
    }

    #[test]
    fn status_line_shows_every_figure() {
        let s = Status {
            chain_id: "c".into(),
            node_id: "n".into(),
            listen: Some("127.0.0.1:1".into()),
            new: 1,
            old: 2,
            verified: 3,
            connected: 4,
            inbound: 5,
            outbound: 6,
            crawled_last_hour: 7,
            crawl_dials: 8,
            requests_served: 9,
            answers_received: 10,
        };
        assert_eq!(
            status_line(&s),
            "chain=c id=n listen=127.0.0.1:1 book=1 new/2 old verified=3 peers=4 (in 5/out 6) \
             crawled_1h=7 crawl_dials=8 served=9 answers=10"
        );
    }
}
