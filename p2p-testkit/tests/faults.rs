//! Each fault of the simulated network acting on real connections (secret handshake and
//! MConnection over the in-memory transport), measured on virtual time.

use std::io::ErrorKind;
use std::time::Duration;

use p2p_mconn::{ChannelDescriptor, ChannelReceiver, MConnConfig};
use p2p_testkit::memory::MemoryTransport;
use p2p_testkit::sim::{NodeCtx, Sim};
use p2p_transport::{Connection, Transport, TransportConfig};
use tokio::time::{Instant, timeout};

const MS: Duration = Duration::from_millis(1);

fn config(mconn: MConnConfig) -> TransportConfig {
    let mut c = TransportConfig::default();
    c.channels([ChannelDescriptor::new(0x01, 1).recv_message_capacity(4 << 20)])
        .mconn(mconn);
    c
}

fn quiet() -> MConnConfig {
    let mut m = MConnConfig::default();
    m.send_rate(0).recv_rate(0);
    m
}

struct Pair {
    _ta: MemoryTransport,
    _tb: MemoryTransport,
    out: Connection,
    inb: Connection,
    rx_a: ChannelReceiver,
    rx_b: ChannelReceiver,
}

fn transport(ctx: &NodeCtx, c: TransportConfig) -> MemoryTransport {
    let mut info = ctx.node_info("faults");
    info.channels = vec![0x01];
    ctx.transport(info, c).unwrap()
}

/// A connection from `a` to `b`.
async fn connect(a: &NodeCtx, b: &NodeCtx, c: TransportConfig) -> Pair {
    let (ta, tb) = (transport(a, c.clone()), transport(b, c));
    let at = tb.listen(b.listen_addr()).await.unwrap();
    let to = p2p_types::NetAddress::new(b.node_id(), at);
    let (out, inb) = tokio::join!(ta.dial(&to), tb.accept());
    let (mut out, mut inb) = (out.unwrap(), inb.unwrap());
    let rx_a = out.take_receivers().take(0x01).unwrap();
    let rx_b = inb.take_receivers().take(0x01).unwrap();
    Pair {
        _ta: ta,
        _tb: tb,
        out,
        inb,
        rx_a,
        rx_b,
    }
}

/// A simulation with two idle nodes, driven from the test.
fn two() -> (Sim, NodeCtx, NodeCtx) {
    let mut sim = Sim::new(1).unwrap();
    let a = sim.node("a", |_| async {}).unwrap();
    let b = sim.node("b", |_| async {}).unwrap();
    let (a, b) = (sim.ctx(a), sim.ctx(b));
    (sim, a, b)
}

/// Virtual time from sending `msg` on `from` to receiving it on `rx`, sent a second after
/// the last traffic (so the MConnection's flush throttle does not hold it back).
async fn one_way(from: &Connection, rx: &mut ChannelReceiver, msg: &[u8]) -> Duration {
    tokio::time::sleep(Duration::from_secs(1)).await;
    let start = Instant::now();
    from.mconn().send(0x01, msg.to_vec()).await.unwrap();
    let got = rx.recv().await.unwrap();
    assert_eq!(&got[..], msg);
    start.elapsed()
}

#[test]
fn latency_delays_delivery_by_the_configured_amount() {
    let (mut sim, a, b) = two();
    sim.block_on(async {
        let mut p = connect(&a, &b, config(quiet())).await;
        let base = one_way(&p.out, &mut p.rx_b, b"ping").await;
        a.net().link(a.ip(), b.ip()).latency(120 * MS);
        for _ in 0..3 {
            assert_eq!(one_way(&p.out, &mut p.rx_b, b"ping").await, base + 120 * MS);
            assert_eq!(one_way(&p.inb, &mut p.rx_a, b"pong").await, base + 120 * MS);
        }
        // Dials pay a round trip, and the handshake several.
        let start = Instant::now();
        let _q = connect(&b, &a, config(quiet())).await;
        assert!(start.elapsed() >= 240 * MS, "{:?}", start.elapsed());
    });
}

#[test]
fn bandwidth_caps_throughput() {
    let (mut sim, a, b) = two();
    sim.block_on(async {
        let mut p = connect(&a, &b, config(quiet())).await;
        // 200 kB/s: 1 MB of message takes 5 s plus the framing overhead (secret-connection
        // frames carry 1024 bytes in 1044, packets add a few bytes).
        a.net().link(a.ip(), b.ip()).bandwidth(Some(200_000));
        let msg = vec![3u8; 1_000_000];
        let took = one_way(&p.out, &mut p.rx_b, &msg).await;
        assert!(
            took >= Duration::from_secs(5) && took <= Duration::from_millis(5400),
            "{took:?}"
        );
        // Lifting the cap makes it fast again.
        a.net().link(a.ip(), b.ip()).bandwidth(None);
        let took = one_way(&p.out, &mut p.rx_b, &msg).await;
        assert!(took < Duration::from_millis(200), "{took:?}");
    });
}

#[test]
fn a_partition_stops_traffic_and_a_heal_restores_it() {
    let (mut sim, a, b) = two();
    let c = sim.node("c", |_| async {}).unwrap();
    let c = sim.ctx(c);
    sim.block_on(async {
        let mut p = connect(&a, &b, config(quiet())).await;
        a.net().partition(&[a.ip()], &[b.ip(), c.ip()]);
        p.out.mconn().send(0x01, &b"across"[..]).await.unwrap();
        // Well within the keepalive (a 60 s ping interval), nothing arrives.
        assert!(
            timeout(Duration::from_secs(30), p.rx_b.recv())
                .await
                .is_err()
        );
        // A new dial across goes unanswered until its timeout.
        let tc = transport(&c, config(quiet()));
        tc.listen(c.listen_addr()).await.unwrap();
        let ta = transport(&a, config(quiet()));
        let start = Instant::now();
        let to = p2p_types::NetAddress::new(c.node_id(), c.listen_addr());
        let e = ta.dial(&to).await.unwrap_err();
        assert!(
            matches!(e, p2p_transport::Error::DialTimeout { .. }),
            "{e:?}"
        );
        assert_eq!(start.elapsed(), config(quiet()).get_dial_timeout());
        a.net().heal();
        let got = timeout(MS * 10, p.rx_b.recv()).await.unwrap().unwrap();
        assert_eq!(&got[..], b"across");
        assert!(p.out.mconn().is_running() && p.inb.mconn().is_running());
        assert!(ta.dial(&to).await.is_ok());
    });
}

#[test]
fn a_long_partition_ends_connections_through_the_keepalive() {
    let (mut sim, a, b) = two();
    sim.block_on(async {
        let mut m = quiet();
        m.ping_interval(Duration::from_secs(2))
            .pong_timeout(Duration::from_secs(1));
        let p = connect(&a, &b, config(m)).await;
        a.net().partition(&[a.ip()], &[b.ip()]);
        let e = timeout(Duration::from_secs(10), p.out.mconn().closed())
            .await
            .unwrap()
            .unwrap_err();
        assert!(e.is_disconnect(), "{e:?}");
    });
}

#[test]
fn a_reset_ends_the_connections_with_a_reset_error() {
    let (mut sim, a, b) = two();
    sim.block_on(async {
        let p = connect(&a, &b, config(quiet())).await;
        let q = connect(&b, &a, config(quiet())).await;
        assert_eq!(a.net().reset_connections(a.ip()), 2);
        for conn in [&p.out, &p.inb, &q.out, &q.inb] {
            let e = timeout(MS, conn.mconn().closed())
                .await
                .unwrap()
                .unwrap_err();
            assert_eq!(
                e.io_error().map(|e| e.kind()),
                Some(ErrorKind::ConnectionReset),
                "{e:?}"
            );
            assert!(e.is_disconnect(), "{e:?}");
        }
    });
}

#[test]
fn a_stalled_reader_ends_the_writers_connection_with_a_write_stall() {
    let (mut sim, a, b) = two();
    sim.block_on(async {
        let mut m = quiet();
        m.ping_interval(Duration::from_secs(2))
            .pong_timeout(Duration::from_secs(1));
        let p = connect(&a, &b, config(m)).await;
        a.net().stall_reader(a.ip(), b.ip());
        // More than the pipe holds: the writer backs up, and its next ping cannot go out.
        let start = Instant::now();
        p.out.mconn().send(0x01, vec![0u8; 1 << 20]).await.unwrap();
        let e = timeout(Duration::from_secs(10), p.out.mconn().closed())
            .await
            .unwrap()
            .unwrap_err();
        assert!(matches!(e, p2p_mconn::Error::WriteStalled { .. }), "{e:?}");
        // Within ping interval + pong timeout.
        assert!(
            start.elapsed() <= Duration::from_secs(3),
            "{:?}",
            start.elapsed()
        );
        drop(p.rx_b);
    });
}

#[test]
fn a_crashed_node_restarts_with_its_key_address_and_files() {
    let mut sim = Sim::new(3).unwrap();
    let server = sim
        .node("server", |ctx| async move {
            let t = transport(&ctx, config(quiet()));
            t.listen(ctx.listen_addr()).await.unwrap();
            let marker = ctx.dir().join("book.json");
            let before = std::fs::read_to_string(&marker).unwrap_or_default();
            std::fs::write(&marker, format!("{before}{}\n", ctx.incarnation())).unwrap();
            let mut held = Vec::new();
            loop {
                match t.accept().await {
                    Ok(conn) => held.push(conn),
                    Err(p2p_transport::Error::Closed) => break,
                    Err(_) => {}
                }
            }
        })
        .unwrap();
    let client = sim.node("client", |_| async {}).unwrap();
    let (cctx, to) = (sim.ctx(client), sim.addr(server));
    sim.run_for(MS);
    let t = transport(&cctx, config(quiet()));
    let conn = sim.block_on(async { t.dial(&to).await.unwrap() });
    sim.crash(server);
    assert!(!sim.is_running(server));
    let e = sim.block_on(async {
        timeout(MS, conn.mconn().closed())
            .await
            .unwrap()
            .unwrap_err()
    });
    assert_eq!(
        e.io_error().map(|e| e.kind()),
        Some(ErrorKind::ConnectionReset)
    );
    // Down: nothing listens.
    let e = sim.block_on(async { t.dial(&to).await.unwrap_err() });
    assert!(e.is_dial(), "{e:?}");
    sim.restart(server);
    sim.run_for(MS);
    assert!(sim.is_running(server));
    let again = sim.block_on(async { t.dial(&to).await.unwrap() });
    assert_eq!(again.node_id(), to.id());
    let book = std::fs::read_to_string(sim.dir(server).join("book.json")).unwrap();
    assert_eq!(book, "0\n1\n");
}
