//! Prometheus metrics with the reference's names, types and labels (`p2p/metrics.go` of
//! CometBFT v0.38, plus the families v0.40 added), so existing dashboards of any line work.
//!
//! | name (namespace `cometbft`) | type | labels | lines |
//! |---|---|---|---|
//! | `cometbft_p2p_peers` | gauge | | all |
//! | `cometbft_p2p_peer_receive_bytes_total` | counter | `peer_id`, `chID` | v0.37-v0.40 |
//! | `cometbft_p2p_peer_send_bytes_total` | counter | `peer_id`, `chID` | v0.37-v0.40 |
//! | `cometbft_p2p_peer_pending_send_bytes` | gauge | `peer_id` | v0.37, v0.38, v1.0 |
//! | `cometbft_p2p_peer_send_queue_size` | gauge | `peer_id` | v0.40 |
//! | `cometbft_p2p_num_txs` | gauge | `peer_id` | all |
//! | `cometbft_p2p_message_receive_bytes_total` | counter | `message_type` | all |
//! | `cometbft_p2p_message_send_bytes_total` | counter | `message_type` | all |
//! | `cometbft_p2p_messages_received` | counter (exposed as untyped) | `message_type`, `reactor` | v0.40 |
//! | `cometbft_p2p_messages_reactor_in_flight` | gauge | `message_type`, `reactor` | v0.40 |
//! | `cometbft_p2p_messages_reactor_pending_duration` | histogram | `message_type`, `reactor` | v0.40 |
//! | `cometbft_p2p_message_reactor_receive_duration` | histogram | `message_type`, `reactor` | v0.40 |
//! | `cometbft_p2p_message_reactor_queue_concurrency` | gauge | `reactor` | v0.40 |
//!
//! `chID` is written like Go's `%#x` (`0x0`, `0x20`); `message_type` is `module_Type` (see
//! [`Reactor::message_label`](crate::Reactor::message_label)); `reactor` is the name the
//! reactor was added under (`"PEX"`, `"MEMPOOL"`...). Byte counts are message bytes
//! (protobuf), as in the reference. `peer_pending_send_bytes` and `peer_send_queue_size` are
//! the same figure under the two lines' names: the messages waiting in the peer's send
//! queues, refreshed every 10 s.
//!
//! The per-reactor families say how well the reactors keep up with the network:
//! `messages_received` counts the messages handed to each reactor; `messages_reactor_in_flight`
//! those inside a reactor's `receive` now; `messages_reactor_pending_duration` is, in seconds,
//! how long a message waited between its last byte arriving and its `receive` starting (its
//! time in the connection's receive queue plus decoding); `message_reactor_receive_duration`
//! how long `receive` took; `message_reactor_queue_concurrency` how many receive queues (one
//! per peer and channel) feed the reactor, which is how many messages it may be handling at
//! once. v0.40 registers these families without setting them; here they are live. The
//! histograms have Prometheus's default buckets, like the reference's. `messages_received` is
//! a counter whose name lacks `_total`: the OpenMetrics text we write cannot call such a
//! family a counter, so it is exposed untyped, under the reference's exact name, which is what
//! queries see (see the [`manual`](crate::manual)).
//!
//! The per-peer series (`peer_*`, `num_txs`) can be turned off, as CometBFT v1.0 removed most
//! of them for their cardinality; when on, a peer's series are removed with the peer (the
//! reference keeps them forever).
//!
//! ```
//! use p2p_switch::metrics::{Metrics, render};
//! use prometheus_client::registry::Registry;
//!
//! let mut registry = Registry::default();
//! let metrics = Metrics::new(&mut registry, "cometbft", true);
//! // builder.metrics(metrics.clone()); ...
//! let text = render(&registry);
//! assert!(text.contains("# TYPE cometbft_p2p_peers gauge"));
//! ```

use std::collections::HashMap;
use std::sync::Arc;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;

/// How often `peer_pending_send_bytes` is refreshed (the reference's `metricsTickerDuration`).
pub const PEER_METRICS_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

type PeerChannel = [(&'static str, String); 2];
type PeerLabel = [(&'static str, String); 1];
type MessageLabel = [(&'static str, &'static str); 1];
type ReactorMessage = [(&'static str, String); 2];
type ReactorLabel = [(&'static str, String); 1];
type Histograms = Family<ReactorMessage, Histogram, fn() -> Histogram>;

/// Prometheus's default histogram buckets (seconds), which the reference's histograms use.
const DEFAULT_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

fn default_histogram() -> Histogram {
    Histogram::new(DEFAULT_BUCKETS)
}

/// A counter written under its exact name, untyped: OpenMetrics requires a counter's samples
/// to end in `_total`, and the reference's `messages_received` does not.
#[derive(Clone, Debug, Default)]
struct BareCounter(Counter);

impl EncodeMetric for BareCounter {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        encoder.encode_gauge(&self.0.get())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Unknown
    }
}

impl TypedMetric for BareCounter {
    const TYPE: MetricType = MetricType::Unknown;
}

/// The switch's metrics, registered in a `prometheus_client` registry. Cheap to clone (shared
/// handles); hand a clone to [`SwitchBuilder::metrics`](crate::SwitchBuilder::metrics).
#[derive(Clone, Debug)]
pub struct Metrics {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    per_peer: bool,
    peers: Gauge,
    peer_receive_bytes: Family<PeerChannel, Counter>,
    peer_send_bytes: Family<PeerChannel, Counter>,
    peer_pending_send_bytes: Family<PeerLabel, Gauge>,
    peer_send_queue_size: Family<PeerLabel, Gauge>,
    num_txs: Family<PeerLabel, Gauge>,
    message_receive_bytes: Family<MessageLabel, Counter>,
    message_send_bytes: Family<MessageLabel, Counter>,
    messages_received: Family<ReactorMessage, BareCounter>,
    in_flight: Family<ReactorMessage, Gauge>,
    pending_duration: Histograms,
    receive_duration: Histograms,
    queue_concurrency: Family<ReactorLabel, Gauge>,
}

impl Metrics {
    /// Registers the metrics in `registry` under `<namespace>_p2p_` (the reference's
    /// namespace is `cometbft`). `per_peer` keeps the series labelled by peer (v0.38 has them,
    /// v1.0 not).
    pub fn new(registry: &mut Registry, namespace: &str, per_peer: bool) -> Self {
        Self::with_labels(
            registry,
            namespace,
            per_peer,
            std::iter::empty::<(String, String)>(),
        )
    }

    /// As [`new`](Self::new), with constant labels on every series, as the reference's
    /// `PrometheusMetrics(namespace, labelsAndValues...)`. A CometBFT node labels every
    /// metric with its chain: pass `[("chain_id", chain_id)]` so dashboards that filter on
    /// `chain_id` work.
    ///
    /// ```
    /// use p2p_switch::metrics::{Metrics, render};
    /// use prometheus_client::registry::Registry;
    ///
    /// let mut registry = Registry::default();
    /// let _metrics = Metrics::with_labels(&mut registry, "cometbft", true, [("chain_id", "cosmoshub-4")]);
    /// assert!(render(&registry).contains(r#"cometbft_p2p_peers{chain_id="cosmoshub-4"} 0"#));
    /// ```
    pub fn with_labels<K, V>(
        registry: &mut Registry,
        namespace: &str,
        per_peer: bool,
        labels: impl IntoIterator<Item = (K, V)>,
    ) -> Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        let inner = Inner {
            per_peer,
            peers: Gauge::default(),
            peer_receive_bytes: Family::default(),
            peer_send_bytes: Family::default(),
            peer_pending_send_bytes: Family::default(),
            peer_send_queue_size: Family::default(),
            num_txs: Family::default(),
            message_receive_bytes: Family::default(),
            message_send_bytes: Family::default(),
            messages_received: Family::default(),
            in_flight: Family::default(),
            pending_duration: Family::new_with_constructor(default_histogram),
            receive_duration: Family::new_with_constructor(default_histogram),
            queue_concurrency: Family::default(),
        };
        let prefix = if namespace.is_empty() {
            "p2p".to_owned()
        } else {
            format!("{namespace}_p2p")
        };
        let mut r = registry.sub_registry_with_prefix(prefix);
        for (k, v) in labels {
            r = r.sub_registry_with_label((k.into().into(), v.into().into()));
        }
        r.register("peers", "Number of peers", inner.peers.clone());
        if per_peer {
            // Counters get their `_total` suffix from the encoder.
            r.register(
                "peer_receive_bytes",
                "Number of bytes received from a given peer",
                inner.peer_receive_bytes.clone(),
            );
            r.register(
                "peer_send_bytes",
                "Number of bytes sent to a given peer",
                inner.peer_send_bytes.clone(),
            );
            r.register(
                "peer_pending_send_bytes",
                "Pending bytes to be sent to a given peer",
                inner.peer_pending_send_bytes.clone(),
            );
            r.register(
                "peer_send_queue_size",
                "Number of messages that are currently being sent to a given peer",
                inner.peer_send_queue_size.clone(),
            );
            r.register(
                "num_txs",
                "Number of transactions submitted by each peer",
                inner.num_txs.clone(),
            );
        }
        r.register(
            "message_receive_bytes",
            "Number of bytes of each message type received",
            inner.message_receive_bytes.clone(),
        );
        r.register(
            "message_send_bytes",
            "Number of bytes of each message type sent",
            inner.message_send_bytes.clone(),
        );
        r.register(
            "messages_received",
            "Number of messages received before being processed by the reactor",
            inner.messages_received.clone(),
        );
        r.register(
            "messages_reactor_in_flight",
            "Number of messages in flight (wip by reactor)",
            inner.in_flight.clone(),
        );
        r.register(
            "messages_reactor_pending_duration",
            "Duration between receiving a message and submitting it to the reactor",
            inner.pending_duration.clone(),
        );
        r.register(
            "message_reactor_receive_duration",
            "Duration of the message receive operation by reactor",
            inner.receive_duration.clone(),
        );
        r.register(
            "message_reactor_queue_concurrency",
            "Concurrency of the incoming message queue for a given reactor",
            inner.queue_concurrency.clone(),
        );
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Whether the per-peer series are kept.
    pub fn per_peer(&self) -> bool {
        self.inner.per_peer
    }

    /// The current value of `peers`.
    pub fn peers(&self) -> i64 {
        self.inner.peers.get()
    }

    /// Sets `num_txs` for a peer (the mempool reactor's metric; a no-op without per-peer
    /// series).
    pub fn set_num_txs(&self, peer: &crate::Peer, n: i64) {
        if self.inner.per_peer {
            self.inner
                .num_txs
                .get_or_create(&[("peer_id", peer.inner.id_label.clone())])
                .set(n);
        }
    }

    pub(crate) fn peer_added(&self) {
        self.inner.peers.inc();
    }

    pub(crate) fn peer_removed(&self, peer_id: &str, channels: &[u8]) {
        self.inner.peers.dec();
        if self.inner.per_peer {
            for &ch in channels {
                let key = peer_channel(peer_id, ch);
                self.inner.peer_receive_bytes.remove(&key);
                self.inner.peer_send_bytes.remove(&key);
            }
            let key = [("peer_id", peer_id.to_owned())];
            self.inner.peer_pending_send_bytes.remove(&key);
            self.inner.peer_send_queue_size.remove(&key);
            self.inner.num_txs.remove(&key);
        }
    }

    /// Counters of one peer's channels, made once per peer.
    pub(crate) fn peer_counters(&self, peer_id: &str, channels: &[u8]) -> PeerCounters {
        if !self.inner.per_peer {
            return PeerCounters::default();
        }
        let make = |family: &Family<PeerChannel, Counter>| {
            channels
                .iter()
                .map(|&ch| (ch, family.get_or_create_owned(&peer_channel(peer_id, ch))))
                .collect()
        };
        PeerCounters {
            recv: make(&self.inner.peer_receive_bytes),
            send: make(&self.inner.peer_send_bytes),
            pending: Some(PendingGauges {
                bytes: self
                    .inner
                    .peer_pending_send_bytes
                    .get_or_create_owned(&[("peer_id", peer_id.to_owned())]),
                queue: self
                    .inner
                    .peer_send_queue_size
                    .get_or_create_owned(&[("peer_id", peer_id.to_owned())]),
            }),
        }
    }

    /// Counts one receive queue feeding `reactor` for as long as the guard lives.
    pub(crate) fn reactor_queue(&self, reactor: &str) -> QueueGuard {
        let gauge = self
            .inner
            .queue_concurrency
            .get_or_create_owned(&[("reactor", reactor.to_owned())]);
        gauge.inc();
        QueueGuard(gauge)
    }

    /// The per-reactor series of one message type (looked up once per delivery queue and
    /// type, then kept).
    pub(crate) fn reactor_message(&self, reactor: &str, label: &'static str) -> ReactorSeries {
        let key = [
            ("message_type", label.to_owned()),
            ("reactor", reactor.to_owned()),
        ];
        ReactorSeries {
            label,
            received: self.inner.messages_received.get_or_create_owned(&key).0,
            in_flight: self.inner.in_flight.get_or_create_owned(&key),
            pending: self.inner.pending_duration.get_or_create_owned(&key),
            receive: self.inner.receive_duration.get_or_create_owned(&key),
        }
    }

    pub(crate) fn received(&self, peer: &PeerCounters, channel: u8, label: &'static str, n: usize) {
        let n = n as u64;
        if let Some(c) = peer.recv.get(&channel) {
            c.inc_by(n);
        }
        self.inner
            .message_receive_bytes
            .get_or_create(&[("message_type", label)])
            .inc_by(n);
    }

    pub(crate) fn sent(&self, peer: &PeerCounters, channel: u8, label: &'static str, n: usize) {
        let n = n as u64;
        if let Some(c) = peer.send.get(&channel) {
            c.inc_by(n);
        }
        self.inner
            .message_send_bytes
            .get_or_create(&[("message_type", label)])
            .inc_by(n);
    }
}

/// One peer's per-channel counters (empty without per-peer series).
#[derive(Debug, Default)]
pub(crate) struct PeerCounters {
    recv: HashMap<u8, Counter>,
    send: HashMap<u8, Counter>,
    pub(crate) pending: Option<PendingGauges>,
}

/// `peer_pending_send_bytes` and `peer_send_queue_size` of one peer: one figure, two names.
#[derive(Debug)]
pub(crate) struct PendingGauges {
    bytes: Gauge,
    queue: Gauge,
}

impl PendingGauges {
    pub(crate) fn set(&self, messages: i64) {
        self.bytes.set(messages);
        self.queue.set(messages);
    }
}

/// Holds one unit of `message_reactor_queue_concurrency`.
#[derive(Debug)]
pub(crate) struct QueueGuard(Gauge);

impl Drop for QueueGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The per-reactor series of one message type.
#[derive(Debug)]
pub(crate) struct ReactorSeries {
    pub(crate) label: &'static str,
    received: Counter,
    in_flight: Gauge,
    pending: Histogram,
    receive: Histogram,
}

impl ReactorSeries {
    /// A message handed to the reactor after waiting `pending` since it arrived: counted, its
    /// wait observed, and in flight until the guard is dropped (which observes how long the
    /// reactor's `receive` took).
    pub(crate) fn start(&self, pending: std::time::Duration) -> InFlight<'_> {
        self.received.inc();
        self.pending.observe(pending.as_secs_f64());
        self.in_flight.inc();
        InFlight {
            series: self,
            started: tokio::time::Instant::now(),
        }
    }
}

/// A message inside a reactor's `receive`; dropped when it returns (or is abandoned).
#[derive(Debug)]
pub(crate) struct InFlight<'a> {
    series: &'a ReactorSeries,
    started: tokio::time::Instant,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.series.in_flight.dec();
        self.series
            .receive
            .observe(self.started.elapsed().as_secs_f64());
    }
}

fn peer_channel(peer_id: &str, channel: u8) -> PeerChannel {
    [
        ("peer_id", peer_id.to_owned()),
        ("chID", format!("{channel:#x}")),
    ]
}

/// The HTTP `Content-Type` of what [`render`] returns (OpenMetrics text, which Prometheus
/// scrapes; the counters' samples carry the `_total` suffix the reference's names have).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Renders `registry` in the Prometheus text format (OpenMetrics, as `prometheus_client`
/// writes it), for a `/metrics` endpoint.
pub fn render(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, registry);
    out
}
