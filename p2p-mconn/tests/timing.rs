//! Keepalive, rate limits, priorities and isolation. Time-dependent behaviour runs on tokio's
//! paused clock, so durations below are virtual and exact.

mod common;

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use common::{RawPeer, pair, unlimited, with_raw_peer};
use p2p_mconn::{ChannelDescriptor, Error, MConnConfig, MConnection, Packet, PacketMsg};
use tokio::io::AsyncWrite;
use tokio::time::{Instant, sleep};

fn keepalive(ping_secs: u64, pong_secs: u64) -> MConnConfig {
    let mut c = unlimited();
    c.ping_interval(Duration::from_secs(ping_secs))
        .pong_timeout(Duration::from_secs(pong_secs));
    c
}

#[tokio::test(start_paused = true)]
async fn keepalive_holds_between_two_connections() {
    let chans = [ChannelDescriptor::new(1, 1)];
    let (a, _ra, b, _rb) = pair(&chans, keepalive(10, 5), keepalive(7, 3));
    sleep(Duration::from_secs(605)).await;
    assert!(a.is_running() && b.is_running());
    // 60 pings of 3 bytes from A, answered by 60 pongs; 86 pings from B, answered too.
    let sa = a.status();
    assert_eq!(sa.send.bytes, 60 * 3 + 86 * 3);
    assert_eq!(sa.recv.bytes, 86 * 3 + 60 * 3);
    assert_eq!(sa.send.messages, 0);
}

#[tokio::test(start_paused = true)]
async fn silent_peer_hits_the_pong_timeout() {
    let chans = [ChannelDescriptor::new(1, 1)];
    let start = Instant::now();
    let (conn, _rx, mut peer) = with_raw_peer(&chans, keepalive(10, 5));
    // The peer reads (so writes do not block) but never answers.
    let reader = tokio::spawn(async move {
        let mut pings = 0;
        while let Some(p) = peer.recv().await {
            assert_eq!(p, Packet::Ping);
            pings += 1;
        }
        pings
    });
    assert_eq!(
        conn.closed().await,
        Err(Error::PongTimeout {
            timeout: Duration::from_secs(5)
        })
    );
    assert_eq!(start.elapsed(), Duration::from_secs(15));
    assert_eq!(reader.await.unwrap(), 1);
}

#[tokio::test(start_paused = true)]
async fn answered_pings_keep_the_connection() {
    let chans = [ChannelDescriptor::new(1, 1)];
    let (conn, _rx, peer) = with_raw_peer(&chans, keepalive(10, 5));
    let answerer = tokio::spawn(answer_pings(peer));
    sleep(Duration::from_secs(305)).await;
    assert!(conn.is_running());
    conn.stop();
    assert_eq!(answerer.await.unwrap(), 30);
}

async fn answer_pings(mut peer: RawPeer) -> usize {
    let mut pings = 0;
    while let Some(p) = peer.recv().await {
        if p == Packet::Ping {
            pings += 1;
            peer.send(&Packet::Pong).await;
        }
    }
    pings
}

/// Counts flushes of the wrapped writer.
struct CountFlushes<W> {
    inner: W,
    flushes: Arc<AtomicUsize>,
}

impl<W: AsyncWrite + Unpin> AsyncWrite for CountFlushes<W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.flushes.fetch_add(1, Ordering::Relaxed);
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[tokio::test(start_paused = true)]
async fn a_ping_flood_does_not_force_a_flush_per_ping() {
    let (x, y) = tokio::io::duplex(1 << 20);
    let (r, w) = tokio::io::split(x);
    let flushes = Arc::new(AtomicUsize::new(0));
    let w = CountFlushes {
        inner: w,
        flushes: Arc::clone(&flushes),
    };
    let chans = [ChannelDescriptor::new(1, 1)];
    let mut cfg = unlimited();
    cfg.flush_throttle(Duration::from_millis(100));
    let (conn, _rx) = MConnection::spawn(r, w, &chans, cfg).unwrap();
    let mut peer = RawPeer::new(y);
    let start = Instant::now();
    // 10,000 pings, one every 100 µs: one second of flooding.
    let flood = Bytes::from_static(&p2p_mconn::PING_BYTES);
    let mut pongs = 0;
    for _ in 0..10_000 {
        peer.send_raw(&flood).await;
        sleep(Duration::from_micros(100)).await;
    }
    let elapsed = start.elapsed();
    sleep(Duration::from_millis(200)).await;
    conn.stop();
    while let Some(p) = peer.recv().await {
        assert_eq!(p, Packet::Pong);
        pongs += 1;
    }
    let flushes = flushes.load(Ordering::Relaxed);
    // At most one flush per throttle period (plus the last one), and every flush carried one
    // pong for all the pings since the previous one.
    let periods = (elapsed.as_millis() / 100) as usize + 3;
    assert!(flushes <= periods, "{flushes} flushes in {elapsed:?}");
    assert!(
        pongs >= 1 && pongs <= flushes,
        "{pongs} pongs, {flushes} flushes"
    );
}

/// Sends 16 KiB messages on channel 1 forever.
fn saturate(conn: &MConnection, channel: u8) -> tokio::task::JoinHandle<()> {
    let conn = conn.clone();
    tokio::spawn(async move {
        let m = Bytes::from(vec![0xab; 16 * 1024]);
        while conn.send(channel, m.clone()).await.is_ok() {}
    })
}

/// Bytes the connection received between `from` and `from + window` (virtual time).
async fn bytes_in_window(conn: &MConnection, from: Duration, window: Duration) -> u64 {
    sleep(from).await;
    let before = conn.status().recv.bytes;
    sleep(window).await;
    conn.status().recv.bytes - before
}

fn assert_rate(bytes: u64, window: Duration, rate: u64) {
    let expected = rate as f64 * window.as_secs_f64();
    let err = (bytes as f64 - expected).abs() / expected;
    assert!(
        err < 0.05,
        "{bytes} bytes in {window:?}, expected {expected} ({:.1} % off)",
        err * 100.0
    );
}

#[tokio::test(start_paused = true)]
async fn send_rate_is_enforced_and_changeable() {
    let chans = [ChannelDescriptor::new(1, 1).send_queue_capacity(4)];
    let mut limited = unlimited();
    limited.send_rate(100_000);
    let (a, _ra, b, mut rb) = pair(&chans, limited, unlimited());
    let _sender = saturate(&a, 1);
    let _drain = tokio::spawn(async move { while rb[0].recv().await.is_some() {} });
    let window = Duration::from_secs(5);
    assert_rate(
        bytes_in_window(&b, Duration::from_secs(1), window).await,
        window,
        100_000,
    );
    a.set_send_rate(250_000);
    assert_rate(
        bytes_in_window(&b, Duration::from_secs(1), window).await,
        window,
        250_000,
    );
    assert_eq!(a.status().send.limit, 250_000);
    let cur = a.status().send.cur_rate;
    assert!((200_000..=300_000).contains(&cur), "current rate {cur}");
}

#[tokio::test(start_paused = true)]
async fn recv_rate_is_enforced() {
    let chans = [ChannelDescriptor::new(1, 1).send_queue_capacity(4)];
    let mut limited = unlimited();
    limited.recv_rate(60_000);
    let (a, _ra, b, mut rb) = pair(&chans, unlimited(), limited);
    let _sender = saturate(&a, 1);
    let _drain = tokio::spawn(async move { while rb[0].recv().await.is_some() {} });
    let window = Duration::from_secs(5);
    assert_rate(
        bytes_in_window(&b, Duration::from_secs(1), window).await,
        window,
        60_000,
    );
    // Unlimited again: 600 kB (10 s at the old rate) arrive without the clock moving. (With
    // both directions unlimited nothing ever sleeps, so virtual time only moves for timers.)
    b.set_recv_rate(0);
    let start = Instant::now();
    let before = b.status().recv.bytes;
    while b.status().recv.bytes - before < 600_000 {
        tokio::task::yield_now().await;
    }
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn a_waiting_limiter_blocks_neither_keepalive_nor_the_other_direction() {
    let chans = [ChannelDescriptor::new(1, 1).send_queue_capacity(4)];
    let mut slow = keepalive(2, 1);
    slow.send_rate(1000); // a 16 KiB message takes 16 s to leave
    let (a, mut ra, b, mut rb) = pair(&chans, slow, keepalive(3, 1));
    let _sender = saturate(&a, 1);
    let _drain = tokio::spawn(async move { while rb[0].recv().await.is_some() {} });
    // The other direction is not limited: B's messages reach A right away.
    sleep(Duration::from_secs(5)).await;
    let start = Instant::now();
    for i in 0..100u32 {
        b.send(1, i.to_be_bytes().to_vec()).await.unwrap();
    }
    for i in 0..100u32 {
        assert_eq!(ra[0].recv().await.unwrap(), &i.to_be_bytes()[..]);
    }
    // One flush throttle period at most (virtual time).
    assert!(
        start.elapsed() <= Duration::from_millis(100),
        "{:?}",
        start.elapsed()
    );
    // Pings both ways keep being answered while A's limiter waits.
    sleep(Duration::from_secs(120)).await;
    assert!(
        a.is_running() && b.is_running(),
        "{:?} {:?}",
        a.outcome(),
        b.outcome()
    );
    let sent = a.status().send.bytes;
    assert!(sent < 1000 * 130, "{sent} bytes in 125 s at 1000 B/s");
}

#[tokio::test]
async fn saturated_channels_share_bytes_by_priority() {
    let chans = [
        ChannelDescriptor::new(0x01, 1).send_queue_capacity(64),
        ChannelDescriptor::new(0x02, 4).send_queue_capacity(64),
    ];
    // Queues deep enough that the senders keep both channels busy even when the write task
    // runs for a while before they are scheduled again.
    let (conn, _rx, mut peer) = with_raw_peer(&chans, unlimited());
    let _s1 = saturate(&conn, 0x01);
    let _s2 = saturate(&conn, 0x02);
    // Let both queues fill before counting.
    sleep(Duration::from_millis(50)).await;
    let mut bytes = [0u64; 2];
    while bytes[0] + bytes[1] < 8 << 20 {
        match peer.recv().await.unwrap() {
            Packet::Msg(m) => bytes[m.channel_id as usize - 1] += peer.last_len() as u64,
            other => panic!("unexpected {other:?}"),
        }
    }
    let ratio = bytes[1] as f64 / bytes[0] as f64;
    assert!(
        (ratio - 4.0).abs() / 4.0 < 0.10,
        "bytes {bytes:?}, ratio {ratio:.2}"
    );
}

#[tokio::test]
async fn high_priority_message_overtakes_queued_bulk() {
    let chans = [
        ChannelDescriptor::new(0x01, 1).send_queue_capacity(8),
        ChannelDescriptor::new(0x02, 10).send_queue_capacity(8),
    ];
    let (conn, _rx, mut peer) = with_raw_peer(&chans, unlimited());
    // 8 MiB of bulk queued first.
    for _ in 0..8 {
        conn.send(0x01, vec![0; 1 << 20]).await.unwrap();
    }
    conn.send(0x02, &b"urgent"[..]).await.unwrap();
    let mut bulk_before = 0u64;
    loop {
        let Packet::Msg(m) = peer.recv().await.unwrap() else {
            continue;
        };
        if m.channel_id == 2 {
            assert_eq!(&m.data[..], b"urgent");
            break;
        }
        bulk_before += m.data.len() as u64;
    }
    // It waited for what was already buffered for writing, not for the bulk queue.
    assert!(
        bulk_before <= 2 * p2p_mconn::WRITE_BUFFER_SIZE as u64,
        "{bulk_before} bulk bytes went first"
    );
}

#[tokio::test]
async fn a_slow_consumer_does_not_hold_up_other_channels_while_its_queue_has_room() {
    let chans = [
        ChannelDescriptor::new(0x01, 1).recv_queue_capacity(64 * 1024),
        ChannelDescriptor::new(0x02, 1),
    ];
    let (conn, mut rx, mut peer) = with_raw_peer(&chans, unlimited());
    let mut slow = rx.remove(0);
    let mut fast = rx.remove(0);
    // 40 KiB for the slow channel fit its queue: the fast channel keeps flowing.
    for i in 0..40u8 {
        peer.send(&Packet::Msg(PacketMsg::new(1, true, vec![i; 1000])))
            .await;
    }
    for i in 0..100u8 {
        peer.send(&Packet::Msg(PacketMsg::new(2, true, vec![i; 10])))
            .await;
        assert_eq!(fast.recv().await.unwrap()[0], i);
    }
    let queued = conn.status().channels[0].recv_queue_bytes;
    assert_eq!(queued, 40 * (1000 + 32));
    // Overfill it: reading pauses (back-pressure), nothing is dropped.
    for i in 40..100u8 {
        peer.send(&Packet::Msg(PacketMsg::new(1, true, vec![i; 1000])))
            .await;
    }
    peer.send(&Packet::Msg(PacketMsg::new(2, true, vec![200; 10])))
        .await;
    sleep(Duration::from_millis(100)).await;
    assert!(conn.status().channels[0].recv_queue_bytes <= 64 * 1024);
    assert_eq!(fast.try_recv().unwrap(), None, "read past a full queue");
    for i in 0..100u8 {
        let m = slow.recv().await.unwrap();
        assert_eq!((m[0], m.len()), (i, 1000));
    }
    assert_eq!(fast.recv().await.unwrap()[0], 200);
    assert!(conn.is_running());
}

#[tokio::test(start_paused = true)]
async fn a_burst_queued_before_the_writer_runs_goes_out_without_waiting_for_a_timer() {
    // 1000 messages queued with one wake-up between them: the write task must keep going
    // until the queues are empty, not stop at a full buffer and wait for its next timer.
    let chans = [ChannelDescriptor::new(1, 1).send_queue_capacity(1000)];
    let (a, _ra, _b, mut rb) = pair(&chans, unlimited(), unlimited());
    let start = Instant::now();
    for i in 0..1000u32 {
        a.try_send(1, vec![(i % 251) as u8; 2000]).unwrap();
    }
    for i in 0..1000u32 {
        assert_eq!(rb[0].recv().await.unwrap()[0], (i % 251) as u8);
    }
    assert!(
        start.elapsed() < Duration::from_millis(200),
        "{:?}",
        start.elapsed()
    );
}
