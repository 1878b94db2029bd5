//! The shaped pipe and the network's faults on raw connections, on tokio's paused clock.

use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use p2p_testkit::memory::{MemoryNetwork, MemoryStream, RawListener};
use p2p_testkit::trace::{Event, Trace};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{Instant, timeout};

const MS: Duration = Duration::from_millis(1);

/// Two hosts and a raw connection from the first to the second.
async fn pair(net: &MemoryNetwork) -> (IpAddr, IpAddr, MemoryStream, MemoryStream, RawListener) {
    let (a, b) = (net.next_ip(), net.next_ip());
    let mut l = net.listen_raw(SocketAddr::new(b, 26656)).unwrap();
    let (out, _) = net.connect_raw(a, l.local_addr()).unwrap();
    let inb = l.accept().await.unwrap();
    (a, b, out, inb, l)
}

#[tokio::test(start_paused = true)]
async fn latency_delays_delivery_by_exactly_the_configured_amount() {
    let net = MemoryNetwork::new();
    let (a, b, mut out, mut inb, _l) = pair(&net).await;
    net.link(a, b).latency(75 * MS);
    for _ in 0..3 {
        let sent = Instant::now();
        out.write_all(&[7; 100]).await.unwrap();
        let mut buf = [0; 100];
        inb.read_exact(&mut buf).await.unwrap();
        assert_eq!(sent.elapsed(), 75 * MS);
        // And back: the link is symmetric.
        let sent = Instant::now();
        inb.write_all(&buf).await.unwrap();
        out.read_exact(&mut buf).await.unwrap();
        assert_eq!(sent.elapsed(), 75 * MS);
    }
    // One way only: the way back is instant again.
    net.link(a, b).latency(Duration::ZERO);
    net.link_one_way(a, b).latency(20 * MS);
    let sent = Instant::now();
    inb.write_all(b"x").await.unwrap();
    let mut one = [0; 1];
    out.read_exact(&mut one).await.unwrap();
    assert_eq!(sent.elapsed(), Duration::ZERO);
    out.write_all(b"y").await.unwrap();
    inb.read_exact(&mut one).await.unwrap();
    assert_eq!(sent.elapsed(), 20 * MS);
}

#[tokio::test(start_paused = true)]
async fn jitter_stays_in_bounds_keeps_order_and_follows_the_seed() {
    async fn arrivals(seed: u64) -> Vec<Duration> {
        let net = MemoryNetwork::with_seed(seed);
        let (a, b, mut out, mut inb, _l) = pair(&net).await;
        net.link(a, b).latency(10 * MS).jitter(30 * MS);
        let start = Instant::now();
        let writer = tokio::spawn(async move {
            for i in 0..50u8 {
                out.write_all(&[i]).await.unwrap();
                tokio::time::sleep(5 * MS).await;
            }
            out
        });
        let mut got = Vec::new();
        for i in 0..50u8 {
            let mut one = [0; 1];
            inb.read_exact(&mut one).await.unwrap();
            assert_eq!(one[0], i, "bytes stay in order");
            let sent_at = 5 * MS * u32::from(i);
            let delay = start.elapsed() - sent_at;
            got.push(delay);
        }
        drop(writer.await.unwrap());
        got
    }
    let x = arrivals(1).await;
    assert!(x.iter().all(|d| *d >= 10 * MS && *d <= 41 * MS), "{x:?}");
    // The extra delay really varies.
    assert!(x.iter().any(|d| *d >= 25 * MS), "{x:?}");
    assert_eq!(x, arrivals(1).await, "same seed, same delays");
    assert_ne!(x, arrivals(2).await, "another seed, other delays");
}

#[tokio::test(start_paused = true)]
async fn bandwidth_caps_throughput() {
    let net = MemoryNetwork::new();
    let (a, b, mut out, mut inb, _l) = pair(&net).await;
    // 100 kB/s; 500 kB take 5 s.
    net.link(a, b).bandwidth(Some(100_000));
    let writer = tokio::spawn(async move {
        let chunk = vec![1u8; 10_000];
        for _ in 0..50 {
            out.write_all(&chunk).await.unwrap();
        }
        out
    });
    let start = Instant::now();
    let mut total = 0;
    let mut buf = vec![0; 8192];
    let mut at_one_second = None;
    while total < 500_000 {
        total += inb.read(&mut buf).await.unwrap();
        if at_one_second.is_none() && start.elapsed() >= Duration::from_secs(1) {
            at_one_second = Some(total);
        }
    }
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(4990) && took <= Duration::from_millis(5010),
        "{took:?}"
    );
    // Steady, not in one burst at the end.
    let early = at_one_second.unwrap();
    assert!((95_000..=110_000).contains(&early), "{early}");
    drop(writer.await.unwrap());
}

#[tokio::test(start_paused = true)]
async fn the_buffer_is_bounded_and_backpressure_is_real() {
    let net = MemoryNetwork::new();
    let (a, b, mut out, mut inb, _l) = pair(&net).await;
    net.link(a, b).capacity(Some(1000));
    // 1000 bytes go in; the next write waits for the reader.
    out.write_all(&[0; 1000]).await.unwrap();
    assert!(
        timeout(Duration::from_secs(60), out.write_all(&[1]))
            .await
            .is_err()
    );
    let mut buf = [0; 10];
    inb.read_exact(&mut buf).await.unwrap();
    timeout(MS, out.write_all(&[1; 10])).await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_partition_stops_traffic_and_a_heal_restores_it() {
    let net = MemoryNetwork::new();
    let (a, b, mut out, mut inb, _l) = pair(&net).await;
    let c = net.next_ip();
    net.link(a, b).latency(10 * MS);
    net.partition(&[a], &[b, c]);
    assert!(net.is_partitioned(b, a) && net.is_partitioned(a, c) && !net.is_partitioned(b, c));
    out.write_all(b"during").await.unwrap();
    let mut buf = [0; 6];
    assert!(
        timeout(Duration::from_secs(600), inb.read_exact(&mut buf))
            .await
            .is_err(),
        "nothing crosses a partition"
    );
    // New connections across go unanswered.
    let e = net.connect_raw(a, SocketAddr::new(b, 26656)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TimedOut);
    let healed = Instant::now();
    net.heal();
    inb.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"during");
    // What waited flows at once (its latency passed long ago).
    assert_eq!(healed.elapsed(), Duration::ZERO);
    inb.write_all(b"back").await.unwrap();
    let mut four = [0; 4];
    out.read_exact(&mut four).await.unwrap();
    assert_eq!(healed.elapsed(), 10 * MS);
    assert!(net.connect_raw(a, SocketAddr::new(b, 26656)).is_ok());
}

#[tokio::test(start_paused = true)]
async fn a_reset_fails_both_ends_with_connection_reset() {
    let net = MemoryNetwork::new();
    let (a, _b, mut out, mut inb, _l) = pair(&net).await;
    out.write_all(b"unread").await.unwrap();
    let reader = tokio::spawn(async move {
        let mut buf = [0; 100];
        // Drain what was sent, then wait for more; the reset ends the wait.
        loop {
            match inb.read(&mut buf).await {
                Ok(n) if n > 0 => continue,
                other => return other,
            }
        }
    });
    tokio::time::sleep(MS).await;
    assert_eq!(net.reset_connections(a), 1);
    assert_eq!(
        reader.await.unwrap().unwrap_err().kind(),
        ErrorKind::ConnectionReset
    );
    assert_eq!(
        out.write_all(b"x").await.unwrap_err().kind(),
        ErrorKind::ConnectionReset
    );
    let mut buf = [0; 1];
    assert_eq!(
        out.read(&mut buf).await.unwrap_err().kind(),
        ErrorKind::ConnectionReset
    );
    // Nothing left to reset.
    assert_eq!(net.reset_connections(a), 0);
}

#[tokio::test(start_paused = true)]
async fn a_stalled_reader_backs_up_the_writer_until_resumed() {
    let net = MemoryNetwork::new();
    let (a, b, mut out, mut inb, _l) = pair(&net).await;
    net.link(a, b).capacity(Some(4096));
    net.stall_reader(a, b);
    let writer = tokio::spawn(async move {
        let mut sent = 0usize;
        while timeout(Duration::from_secs(1), out.write_all(&[9; 512]))
            .await
            .is_ok()
        {
            sent += 512;
        }
        (out, sent)
    });
    let mut buf = [0; 512];
    assert!(
        timeout(Duration::from_secs(10), inb.read(&mut buf))
            .await
            .is_err()
    );
    let (mut out, sent) = writer.await.unwrap();
    assert_eq!(sent, 4096, "the writer stops once the buffer is full");
    // The other way still flows.
    inb.write_all(b"ok").await.unwrap();
    let mut two = [0; 2];
    out.read_exact(&mut two).await.unwrap();
    net.resume_reader(a, b);
    let mut total = 0;
    while total < 4096 {
        total += inb.read(&mut buf).await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn close_and_drop_behave_like_tcp() {
    let net = MemoryNetwork::new();
    let (_a, _b, mut out, mut inb, _l) = pair(&net).await;
    out.write_all(b"last words").await.unwrap();
    out.shutdown().await.unwrap();
    let mut s = String::new();
    inb.read_to_string(&mut s).await.unwrap();
    assert_eq!(s, "last words");
    // The other way is still open; once the reader is dropped, writes fail.
    inb.write_all(b"reply").await.unwrap();
    drop(out);
    assert_eq!(
        inb.write_all(b"more").await.unwrap_err().kind(),
        ErrorKind::BrokenPipe
    );
}

#[tokio::test(start_paused = true)]
async fn the_trace_sees_connections_deliveries_and_faults() {
    let net = MemoryNetwork::new();
    let trace = Trace::new();
    trace.keep_events(true);
    net.set_trace(trace.clone());
    let (a, _b, mut out, mut inb, _l) = pair(&net).await;
    out.write_all(b"hi").await.unwrap();
    let mut two = [0; 2];
    inb.read_exact(&mut two).await.unwrap();
    net.reset_connections(a);
    let events: Vec<_> = trace.events().into_iter().map(|e| e.event).collect();
    assert!(
        matches!(events[0], Event::Connect { conn: 1, .. }),
        "{events:?}"
    );
    assert!(
        matches!(
            events[1],
            Event::Deliver {
                conn: 1,
                len: 2,
                ..
            }
        ),
        "{events:?}"
    );
    assert!(matches!(events[2], Event::Fault { .. }), "{events:?}");
    assert!(matches!(events[3], Event::Reset { conn: 1 }), "{events:?}");
    assert_eq!(trace.payload_bytes(), 2);
}
