//! A reusable conformance suite for [`Transport`] implementations: it checks the guarantees
//! documented on the trait, through the trait alone.
//!
//! Call [`run`] from a test with a factory that makes your transport from a node key, a
//! NodeInfo and a [`TransportConfig`], and an address to listen on:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! use p2p_testkit::{conformance, memory::MemoryNetwork};
//!
//! let net = MemoryNetwork::new();
//! let report = conformance::run("0.0.0.0:0".parse().unwrap(), |key, info, config| {
//!     let net = net.clone();
//!     async move { net.transport(key, info, config) }
//! })
//! .await
//! .unwrap_or_else(|failure| panic!("{failure}"));
//! assert!(report.passed.contains(&"dial-accept"));
//! # }
//! ```
//!
//! The checks (each bounded by [`STEP_TIMEOUT`], so a broken transport fails instead of
//! hanging):
//!
//! - `dial-accept`: a dial and an accept yield connections with the right NodeInfo, ID,
//!   address and direction, and messages flow both ways on two channels (one message larger
//!   than a packet, one empty);
//! - `wrong-dialed-id`: dialing a listener under another ID is an authentication failure on
//!   the dialer, a rejection on the listener, and accept goes on;
//! - `self-dial`: dialing our own listener is a self rejection carrying `ourID@ip:port`, on
//!   both ends;
//! - `incompatible-network`: a peer on another network is rejected as incompatible on both
//!   sides (with the networks named), and the next good peer is accepted;
//! - `concurrent-dials`: eight dialers at once into one listener, and one dialer into three
//!   listeners at once;
//! - `cleanup-releases`: after `cleanup` on one side the other side's connection ends, and the
//!   same pair connects again, three times; dropping a connection releases it too;
//! - `cancel-safe-accept`: accept futures dropped while nothing comes in, one dropped after
//!   waiting while a dial got under way, then more polled once and dropped over and over
//!   until the connection is ready (the drops are counted): nothing is lost, the connection
//!   comes out of a later accept;
//! - `close`: a pending accept and later accepts return `Closed`, dialing the closed
//!   transport fails, the closed transport's dial and listen return `Closed`, closing twice is
//!   harmless.
//!
//! The suite allows duplicate IPs in the configuration it hands the factory (all its nodes may
//! share one host) and turns MConnection rate limits off.

use std::collections::BTreeSet;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use p2p_mconn::{ChannelDescriptor, MConnConfig};
use p2p_transport::{Connection, Direction, Error, Transport, TransportConfig};
use p2p_types::{NetAddress, NodeId, NodeInfo, NodeKey};

/// Time allowed for each step of a check (a dial, an accept, a message).
pub const STEP_TIMEOUT: Duration = Duration::from_secs(20);

/// The channels of the suite's nodes.
const CH_A: u8 = 0x01;
const CH_B: u8 = 0x02;

/// What passed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Report {
    /// The checks that passed, in run order.
    pub passed: Vec<&'static str>,
}

/// The first check that failed, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("transport conformance check `{check}` failed: {reason}")]
#[non_exhaustive]
pub struct Failure {
    /// The check's name.
    pub check: &'static str,
    /// What went wrong.
    pub reason: String,
}

type CheckResult = Result<(), String>;

/// Runs every check against transports made by `make`, listening on `listen_on` (port 0 for any
/// free port; the address `listen` returns must be dialable, so use e.g. `127.0.0.1:0` for TCP,
/// not `0.0.0.0:0`). Stops at the first failure.
///
/// `make` gets a fresh node key, the NodeInfo to announce (its ID is the key's) and the
/// configuration to honour (channels, MConnection settings, duplicate IPs allowed).
pub async fn run<T, F, Fut>(listen_on: SocketAddr, make: F) -> Result<Report, Failure>
where
    T: Transport,
    F: FnMut(NodeKey, NodeInfo, TransportConfig) -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    let mut suite = Suite {
        make,
        listen_on,
        next_seed: 0,
    };
    let mut report = Report::default();
    macro_rules! check {
        ($name:literal, $f:ident) => {
            match suite.$f().await {
                Ok(()) => report.passed.push($name),
                Err(reason) => {
                    return Err(Failure {
                        check: $name,
                        reason,
                    });
                }
            }
        };
    }
    check!("dial-accept", dial_accept);
    check!("wrong-dialed-id", wrong_dialed_id);
    check!("self-dial", self_dial);
    check!("incompatible-network", incompatible_network);
    check!("concurrent-dials", concurrent_dials);
    check!("cleanup-releases", cleanup_releases);
    check!("cancel-safe-accept", cancel_safe_accept);
    check!("close", close);
    Ok(report)
}

/// A transport under test with the identity it was made with.
struct Node<T> {
    t: Arc<T>,
    id: NodeId,
    info: NodeInfo,
}

struct Suite<F> {
    make: F,
    listen_on: SocketAddr,
    next_seed: u64,
}

/// Awaits `fut` for at most [`STEP_TIMEOUT`].
async fn step<O>(what: &str, fut: impl Future<Output = O>) -> Result<O, String> {
    tokio::time::timeout(STEP_TIMEOUT, fut)
        .await
        .map_err(|_| format!("{what}: no result within {STEP_TIMEOUT:?}"))
}

fn ensure(cond: bool, msg: impl FnOnce() -> String) -> CheckResult {
    if cond { Ok(()) } else { Err(msg()) }
}

/// The suite's configuration: two channels, no rate limits, duplicate IPs allowed.
pub fn suite_config() -> TransportConfig {
    let mut mconn = MConnConfig::default();
    mconn.send_rate(0).recv_rate(0);
    let mut config = TransportConfig::default();
    config
        .channels([
            ChannelDescriptor::new(CH_A, 1).send_queue_capacity(16),
            ChannelDescriptor::new(CH_B, 5).send_queue_capacity(16),
        ])
        .mconn(mconn);
    config.dangerous().allow_duplicate_ip(true);
    config
}

impl<T, F, Fut> Suite<F>
where
    T: Transport,
    F: FnMut(NodeKey, NodeInfo, TransportConfig) -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    async fn node(&mut self, network: &str) -> Result<Node<T>, String> {
        self.next_seed += 1;
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&self.next_seed.to_be_bytes());
        seed[8..].copy_from_slice(b"p2p-testkit conformance!");
        let key = NodeKey::from_seed(seed);
        let id = key.node_id();
        let listen = SocketAddr::new(self.listen_on.ip(), 26656);
        let mut info = NodeInfo::new(id, network, format!("tcp://{listen}"));
        info.channels = vec![CH_A, CH_B];
        info.moniker = format!("conformance-{}", self.next_seed);
        let t = (self.make)(key, info.clone(), suite_config())
            .await
            .map_err(|e| format!("making a transport failed: {e}"))?;
        Ok(Node {
            t: Arc::new(t),
            id,
            info,
        })
    }

    /// A listening node and its dialable address.
    async fn listener(&mut self, network: &str) -> Result<(Node<T>, NetAddress), String> {
        let n = self.node(network).await?;
        let bound = step("listen", n.t.listen(self.listen_on))
            .await?
            .map_err(|e| format!("listen on {} failed: {e}", self.listen_on))?;
        let addr = NetAddress::new(n.id, bound);
        Ok((n, addr))
    }

    async fn dial_accept(&mut self) -> CheckResult {
        let (b, b_addr) = self.listener("conformance").await?;
        let a = self.node("conformance").await?;
        let (out, inb) = connect(&a, &b, &b_addr).await?;
        check_meta(&out, &b, Direction::Outbound, "dialer's")?;
        check_meta(&inb, &a, Direction::Inbound, "listener's")?;
        ensure(out.remote_addr() == &b_addr, || {
            format!(
                "dialer's remote_addr {} is not the dialed {b_addr}",
                out.remote_addr()
            )
        })?;
        exchange(out, inb, &a, &b).await?;
        b.t.close().await;
        a.t.close().await;
        Ok(())
    }

    async fn wrong_dialed_id(&mut self) -> CheckResult {
        let (b, b_addr) = self.listener("conformance").await?;
        let a = self.node("conformance").await?;
        let wrong = NodeKey::from_seed([0xee; 32]).node_id();
        let target = NetAddress::new(wrong, b_addr.socket_addr());
        match step("dial", a.t.dial(&target)).await? {
            Ok(_) => return Err("dialing a peer under the wrong ID succeeded".into()),
            Err(Error::DialedIdMismatch {
                dialed,
                authenticated,
                ..
            }) if dialed == wrong && authenticated == b.id => {}
            Err(e) => return Err(format!("expected DialedIdMismatch, got {e:?}")),
        }
        expect_rejection(&b, "the listener of a wrong-ID dial", |e| e.is_rejection()).await?;
        // The rejection did not end accept.
        let (out, inb) = connect(&a, &b, &b_addr).await?;
        a.t.cleanup(out);
        b.t.cleanup(inb);
        b.t.close().await;
        a.t.close().await;
        Ok(())
    }

    async fn self_dial(&mut self) -> CheckResult {
        let (a, a_addr) = self.listener("conformance").await?;
        match step("self dial", a.t.dial(&a_addr)).await? {
            Ok(_) => return Err("dialing ourselves succeeded".into()),
            Err(Error::SelfConnection { addr }) => ensure(addr == a_addr, || {
                format!("self rejection carries {addr}, expected the dialed {a_addr}")
            })?,
            Err(e) => return Err(format!("expected SelfConnection on the dialer, got {e:?}")),
        }
        let id = a.id;
        let e = expect_rejection(&a, "the accepting side of a self dial", Error::is_self).await?;
        ensure(e.self_addr().map(NetAddress::id) == Some(id), || {
            format!(
                "accept-side self rejection carries {:?}, expected our ID",
                e.self_addr()
            )
        })?;
        a.t.close().await;
        Ok(())
    }

    async fn incompatible_network(&mut self) -> CheckResult {
        let (b, b_addr) = self.listener("net-b").await?;
        let c = self.node("net-c").await?;
        let names = |e: &Error, ours: &str, theirs: &str| {
            matches!(e, Error::Incompatible {
                source: p2p_types::Error::IncompatibleNetwork { ours: o, theirs: t }, ..
            } if o == ours && t == theirs)
        };
        match step("dial", c.t.dial(&b_addr)).await? {
            Ok(_) => return Err("a peer on another network was accepted by the dialer".into()),
            Err(e) if names(&e, "net-c", "net-b") => {}
            Err(e) => {
                return Err(format!(
                    "expected Incompatible(network) on the dialer, got {e:?}"
                ));
            }
        }
        expect_rejection(&b, "the listener of an incompatible dial", |e| {
            names(e, "net-b", "net-c")
        })
        .await?;
        // A rejected inbound connection does not end accept.
        let a = self.node("net-b").await?;
        let (out, inb) = connect(&a, &b, &b_addr).await?;
        a.t.cleanup(out);
        b.t.cleanup(inb);
        for n in [&a, &b, &c] {
            n.t.close().await;
        }
        Ok(())
    }

    async fn concurrent_dials(&mut self) -> CheckResult {
        const DIALERS: usize = 8;
        let (b, b_addr) = self.listener("conformance").await?;
        let mut dialers = Vec::new();
        for _ in 0..DIALERS {
            dialers.push(self.node("conformance").await?);
        }
        let mut tasks = tokio::task::JoinSet::new();
        for d in &dialers {
            let (t, addr) = (Arc::clone(&d.t), b_addr);
            tasks.spawn(async move { t.dial(&addr).await.map(|c| c.node_id()) });
        }
        let mut accepted = BTreeSet::new();
        let mut held = Vec::new();
        while accepted.len() < DIALERS {
            match step("accept", b.t.accept()).await? {
                Ok(conn) => {
                    accepted.insert(conn.node_id());
                    held.push(conn);
                }
                Err(e) => return Err(format!("accept failed during concurrent dials: {e}")),
            }
        }
        while let Some(r) = step("dial", tasks.join_next()).await? {
            match r {
                Ok(Ok(id)) if id == b.id => {}
                Ok(Ok(id)) => return Err(format!("a dial reached {id} instead of {}", b.id)),
                Ok(Err(e)) => return Err(format!("a concurrent dial failed: {e}")),
                Err(e) => return Err(format!("a dial task failed: {e}")),
            }
        }
        let expected: BTreeSet<NodeId> = dialers.iter().map(|d| d.id).collect();
        ensure(accepted == expected, || {
            "the accepted IDs are not the dialers' IDs".into()
        })?;
        for c in held {
            b.t.cleanup(c);
        }

        // One dialer into three listeners at once.
        let mut listeners = Vec::new();
        for _ in 0..3 {
            listeners.push(self.listener("conformance").await?);
        }
        let a = &dialers[0];
        let dials = listeners.iter().map(|(_, addr)| a.t.dial(addr));
        let accepts = listeners.iter().map(|(n, _)| n.t.accept());
        let (dials, accepts) = step("three dials", async {
            let mut ds = Vec::new();
            let mut acc = Vec::new();
            let mut set = Vec::new();
            for (d, ac) in dials.zip(accepts) {
                set.push(async move { tokio::join!(d, ac) });
            }
            for r in join_all(set).await {
                ds.push(r.0);
                acc.push(r.1);
            }
            (ds, acc)
        })
        .await?;
        for ((r, acc), (l, _)) in dials.into_iter().zip(accepts).zip(&listeners) {
            let out = r.map_err(|e| format!("one of three concurrent dials failed: {e}"))?;
            let inb = acc.map_err(|e| format!("accept of a concurrent dial failed: {e}"))?;
            ensure(out.node_id() == l.id && inb.node_id() == a.id, || {
                "concurrent dials got mixed up".into()
            })?;
            a.t.cleanup(out);
            l.t.cleanup(inb);
        }
        for (l, _) in &listeners {
            l.t.close().await;
        }
        for d in &dialers {
            d.t.close().await;
        }
        b.t.close().await;
        Ok(())
    }

    async fn cleanup_releases(&mut self) -> CheckResult {
        let (b, b_addr) = self.listener("conformance").await?;
        let a = self.node("conformance").await?;
        for round in 0..3 {
            let (out, inb) = connect(&a, &b, &b_addr)
                .await
                .map_err(|e| format!("round {round}: {e}"))?;
            let watch = out.mconn().clone();
            b.t.cleanup(inb);
            // Any outcome will do (closed by the peer, reset, ...): it must end.
            let _outcome = step(
                "the dialer's connection to end after the listener's cleanup",
                watch.closed(),
            )
            .await?;
            a.t.cleanup(out);
        }
        // Dropping a connection releases it as well.
        let (out, inb) = connect(&a, &b, &b_addr).await?;
        let watch = inb.mconn().clone();
        drop(out);
        let _outcome = step(
            "the listener's connection to end after the dialer dropped its own",
            watch.closed(),
        )
        .await?;
        drop(inb);
        let (out, inb) = connect(&a, &b, &b_addr)
            .await
            .map_err(|e| format!("reconnecting after dropping: {e}"))?;
        a.t.cleanup(out);
        b.t.cleanup(inb);
        b.t.close().await;
        a.t.close().await;
        Ok(())
    }

    async fn cancel_safe_accept(&mut self) -> CheckResult {
        const IDLE_CANCELS: u32 = 3;
        let (b, b_addr) = self.listener("conformance").await?;
        let a = self.node("conformance").await?;
        // Accepts dropped while nothing comes in must leave accept working.
        let mut idle = 0u32;
        for _ in 0..IDLE_CANCELS {
            match tokio::time::timeout(Duration::from_millis(1), b.t.accept()).await {
                Err(_) => idle += 1,
                Ok(r) => return Err(format!("accept returned {r:?} with nothing dialed")),
            }
        }
        // An accept that is waiting when the dial starts, dropped once the dial is under way
        // (its connection may even be ready by then, unseen).
        let mut waiting = Box::pin(b.t.accept());
        if let Poll::Ready(r) = poll_once(waiting.as_mut()) {
            return Err(format!("accept returned {r:?} with nothing dialed"));
        }
        let (t, addr) = (Arc::clone(&a.t), b_addr);
        let dial = tokio::spawn(async move { t.dial(&addr).await });
        tokio::task::yield_now().await;
        let (mut during_dial, mut after_dial) = (0u32, 0u32);
        if dial.is_finished() {
            after_dial += 1;
        } else {
            during_dial += 1;
        }
        drop(waiting);
        // Then accepts polled once and dropped over and over, with a pause between, until one
        // is ready at its first poll.
        let deadline = tokio::time::Instant::now() + STEP_TIMEOUT;
        let inb = loop {
            if tokio::time::Instant::now() >= deadline {
                return Err("no connection came out of repeatedly cancelled accepts".into());
            }
            let dial_done = dial.is_finished();
            match poll_once(std::pin::pin!(b.t.accept())) {
                Poll::Ready(r) => break r.map_err(|e| format!("accept failed: {e}"))?,
                Poll::Pending if dial_done => after_dial += 1,
                Poll::Pending => during_dial += 1,
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        let out = step("dial", dial)
            .await?
            .map_err(|e| format!("dial task failed: {e}"))?
            .map_err(|e| format!("dial failed: {e}"))?;
        ensure(inb.node_id() == a.id, || "accepted the wrong peer".into())?;
        // The check means something only if waiting accepts were in fact dropped, idle and
        // with the connection on its way.
        ensure(idle == IDLE_CANCELS && during_dial + after_dial > 0, || {
            format!(
                "too few accept futures were dropped ({idle} idle, {during_dial} during the \
                 dial, {after_dial} after it)"
            )
        })?;
        tracing::debug!(
            idle = IDLE_CANCELS,
            during_dial,
            after_dial,
            "accept futures dropped before the connection came"
        );
        a.t.cleanup(out);
        b.t.cleanup(inb);
        b.t.close().await;
        a.t.close().await;
        Ok(())
    }

    async fn close(&mut self) -> CheckResult {
        let (b, b_addr) = self.listener("conformance").await?;
        let (a, a_addr) = self.listener("conformance").await?;
        let t = Arc::clone(&b.t);
        let pending = tokio::spawn(async move { t.accept().await });
        tokio::task::yield_now().await;
        step("close", b.t.close()).await?;
        match step("the pending accept", pending).await? {
            Ok(Err(Error::Closed)) => {}
            Ok(Err(e)) => return Err(format!("a pending accept returned {e:?}, expected Closed")),
            Ok(Ok(_)) => return Err("a pending accept returned a connection after close".into()),
            Err(e) => return Err(format!("the accept task failed: {e}")),
        }
        match step("accept after close", b.t.accept()).await? {
            Err(Error::Closed) => {}
            other => {
                return Err(format!(
                    "accept after close returned {other:?}, expected Closed"
                ));
            }
        }
        if let Ok(c) = step("dialing a closed transport", a.t.dial(&b_addr)).await? {
            return Err(format!("dialing a closed transport succeeded ({c:?})"));
        }
        match step("dial from a closed transport", b.t.dial(&a_addr)).await? {
            Err(Error::Closed) => {}
            other => {
                return Err(format!(
                    "dial after close returned {other:?}, expected Closed"
                ));
            }
        }
        match step("listen after close", b.t.listen(self.listen_on)).await? {
            Err(Error::Closed) => {}
            other => {
                return Err(format!(
                    "listen after close returned {other:?}, expected Closed"
                ));
            }
        }
        step("closing twice", b.t.close()).await?;
        a.t.close().await;
        Ok(())
    }
}

/// Dials `b` from `a` while `b` accepts; both must succeed.
async fn connect<T: Transport>(
    a: &Node<T>,
    b: &Node<T>,
    b_addr: &NetAddress,
) -> Result<(Connection, Connection), String> {
    let (out, inb) = step("dial and accept", async {
        tokio::join!(a.t.dial(b_addr), b.t.accept())
    })
    .await?;
    let out = out.map_err(|e| format!("dial failed: {e}"))?;
    let inb = inb.map_err(|e| format!("accept failed: {e}"))?;
    Ok((out, inb))
}

/// The next accept result must be a rejection satisfying `pred`.
async fn expect_rejection<T: Transport>(
    n: &Node<T>,
    what: &str,
    pred: impl Fn(&Error) -> bool,
) -> Result<Error, String> {
    match step(what, n.t.accept()).await? {
        Ok(c) => Err(format!(
            "{what}: accept returned a connection ({c:?}), expected a rejection"
        )),
        Err(e) if e.is_rejection() && pred(&e) => Ok(e),
        Err(e) => Err(format!("{what}: accept returned {e:?}")),
    }
}

fn check_meta<T>(conn: &Connection, peer: &Node<T>, dir: Direction, side: &str) -> CheckResult {
    ensure(conn.node_id() == peer.id, || {
        format!(
            "{side} connection has ID {}, expected {}",
            conn.node_id(),
            peer.id
        )
    })?;
    ensure(conn.node_info() == &peer.info, || {
        format!(
            "{side} connection has NodeInfo {:?}, expected {:?}",
            conn.node_info(),
            peer.info
        )
    })?;
    ensure(conn.direction() == dir, || {
        format!(
            "{side} connection is {:?}, expected {dir:?}",
            conn.direction()
        )
    })?;
    ensure(conn.remote_addr().id() == peer.id, || {
        format!(
            "{side} remote_addr {} does not carry the peer's ID",
            conn.remote_addr()
        )
    })?;
    ensure(conn.mconn().is_running(), || {
        format!("{side} MConnection is not running")
    })
}

/// Messages both ways on both channels, then cleanup.
async fn exchange<T: Transport>(
    mut out: Connection,
    mut inb: Connection,
    a: &Node<T>,
    b: &Node<T>,
) -> CheckResult {
    let mut out_rx = out.take_receivers();
    let mut inb_rx = inb.take_receivers();
    ensure(out_rx.len() == 2 && inb_rx.len() == 2, || {
        format!(
            "expected 2 channel receivers, got {} and {}",
            out_rx.len(),
            inb_rx.len()
        )
    })?;
    let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let sends: [(&Connection, u8, Vec<u8>); 4] = [
        (&out, CH_A, b"a to b".to_vec()),
        (&out, CH_B, big.clone()),
        (&inb, CH_A, Vec::new()),
        (&inb, CH_B, b"b to a".to_vec()),
    ];
    for (conn, ch, msg) in &sends {
        step("send", conn.mconn().send(*ch, msg.clone()))
            .await?
            .map_err(|e| format!("send on channel {ch:#04x} failed: {e}"))?;
    }
    let expect = [(b"a to b".to_vec(), "b on 0x01"), (big, "b on 0x02")];
    for (rx, (want, what)) in inb_rx.iter_mut().zip(expect) {
        let got = step(what, rx.recv()).await?;
        ensure(got.as_deref() == Some(&want[..]), || {
            format!("{what}: wrong or no message")
        })?;
    }
    let expect = [(Vec::new(), "a on 0x01"), (b"b to a".to_vec(), "a on 0x02")];
    for (rx, (want, what)) in out_rx.iter_mut().zip(expect) {
        let got = step(what, rx.recv()).await?;
        ensure(got.as_deref() == Some(&want[..]), || {
            format!("{what}: wrong or no message")
        })?;
    }
    a.t.cleanup(out);
    b.t.cleanup(inb);
    Ok(())
}

/// Polls `fut` once, with a waker that does nothing (the caller drops or polls it again).
fn poll_once<Fu: Future>(fut: std::pin::Pin<&mut Fu>) -> Poll<Fu::Output> {
    fut.poll(&mut Context::from_waker(Waker::noop()))
}

/// Awaits futures concurrently (a tiny `join_all` without more dependencies).
async fn join_all<Fu: Future>(futs: Vec<Fu>) -> Vec<Fu::Output> {
    let mut futs: Vec<_> = futs.into_iter().map(|f| Some(Box::pin(f))).collect();
    let mut out: Vec<Option<Fu::Output>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (slot, res) in futs.iter_mut().zip(out.iter_mut()) {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => {
                        *res = Some(v);
                        *slot = None;
                    }
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} checks passed: {}",
            self.passed.len(),
            self.passed.join(", ")
        )
    }
}
