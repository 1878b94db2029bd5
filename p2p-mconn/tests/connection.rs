//! The connection over in-memory pipes: delivery, order, splitting, errors, stopping.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{RawPeer, pair, unlimited, with_raw_peer};
use p2p_mconn::{
    ChannelDescriptor, Error, MConnConfig, MConnection, Packet, PacketMsg, SendFailure,
};
use proptest::prelude::*;

fn chans() -> Vec<ChannelDescriptor> {
    vec![
        ChannelDescriptor::new(0x01, 1).send_queue_capacity(100),
        ChannelDescriptor::new(0x02, 5).send_queue_capacity(100),
        ChannelDescriptor::new(0x20, 10).send_queue_capacity(100),
    ]
}

fn payload(seed: u64, len: usize) -> Bytes {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect::<Vec<u8>>()
        .into()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Messages of any size are split into packets of any payload size and reassembled
    /// byte-exact and in order, per channel.
    #[test]
    fn split_and_reassemble(
        payload_size in 2usize..3000,
        sizes in proptest::collection::vec(0usize..20_000, 1..20),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let mut cfg = unlimited();
            cfg.max_packet_msg_payload_size(payload_size).flush_throttle(Duration::ZERO);
            let (a, _ra, b, mut rb) = pair(&chans(), cfg.clone(), cfg);
            let msgs: Vec<(usize, Bytes)> = sizes
                .iter()
                .enumerate()
                .map(|(i, &n)| (i % 3, payload(i as u64, n)))
                .collect();
            let ids = [0x01u8, 0x02, 0x20];
            for (ch, m) in &msgs {
                a.send(ids[*ch], m.clone()).await.unwrap();
            }
            for (ch, rx) in rb.iter_mut().enumerate() {
                for (_, m) in msgs.iter().filter(|(c, _)| *c == ch) {
                    let got = rx.recv().await.unwrap();
                    assert_eq!(&got, m);
                }
            }
            assert!(b.is_running());
        });
    }
}

#[tokio::test]
async fn packets_on_the_wire_respect_the_payload_size() {
    let mut cfg = unlimited();
    cfg.max_packet_msg_payload_size(100);
    let chans = [
        ChannelDescriptor::new(0x05, 1),
        ChannelDescriptor::new(0x90, 1),
    ];
    let (conn, _rx, mut peer) = with_raw_peer(&chans, cfg);
    conn.send(0x05, payload(1, 250)).await.unwrap();
    let mut pieces = Vec::new();
    while pieces.len() < 3 {
        match peer.recv().await.unwrap() {
            Packet::Msg(m) => pieces.push(m),
            other => panic!("unexpected {other:?}"),
        }
    }
    let lens: Vec<(usize, bool)> = pieces.iter().map(|m| (m.data.len(), m.eof)).collect();
    assert_eq!(lens, [(100, false), (100, false), (50, true)]);
    // On a channel whose ID takes two bytes, pieces are one byte shorter so that they stay
    // within the receiver's packet limit.
    conn.send(0x90, payload(2, 100)).await.unwrap();
    let Some(Packet::Msg(m)) = peer.recv().await else {
        panic!()
    };
    assert_eq!((m.data.len(), m.eof), (99, false));
    assert!(peer.last_len() <= p2p_mconn::max_packet_size(100) + 2);
}

#[tokio::test]
async fn message_over_capacity_closes_the_connection() {
    let chans = [ChannelDescriptor::new(0x01, 1).recv_message_capacity(1500)];
    let (conn, _rx, mut peer) = with_raw_peer(&chans, unlimited());
    peer.send(&Packet::Msg(PacketMsg::new(1, false, vec![0; 1000])))
        .await;
    peer.send(&Packet::Msg(PacketMsg::new(1, true, vec![0; 501])))
        .await;
    assert_eq!(
        conn.closed().await,
        Err(Error::MessageTooLarge {
            channel: 1,
            max: 1500
        })
    );
    // The peer sees the stream end.
    assert_eq!(peer.recv().await, None);
}

#[tokio::test]
async fn message_at_capacity_is_delivered() {
    let chans = [ChannelDescriptor::new(0x01, 1).recv_message_capacity(1500)];
    let (conn, mut rx, mut peer) = with_raw_peer(&chans, unlimited());
    peer.send(&Packet::Msg(PacketMsg::new(1, false, vec![7; 1000])))
        .await;
    peer.send(&Packet::Msg(PacketMsg::new(1, true, vec![8; 500])))
        .await;
    let msg = rx[0].recv().await.unwrap();
    assert_eq!(msg.len(), 1500);
    assert!(conn.is_running());
}

#[tokio::test]
async fn unknown_channel_closes_the_connection() {
    let (conn, _rx, mut peer) = with_raw_peer(&chans(), unlimited());
    peer.send(&Packet::Msg(PacketMsg::new(0x33, true, vec![1])))
        .await;
    assert_eq!(
        conn.closed().await,
        Err(Error::UnknownChannel { channel: 0x33 })
    );
}

#[tokio::test]
async fn channel_id_out_of_byte_range_is_unknown() {
    let (conn, _rx, mut peer) = with_raw_peer(&chans(), unlimited());
    let mut m = PacketMsg::new(1, true, vec![1]);
    m.channel_id = 257; // would alias channel 1 if truncated to a byte
    peer.send(&Packet::Msg(m)).await;
    assert_eq!(
        conn.closed().await,
        Err(Error::UnknownChannel { channel: 257 })
    );
}

#[tokio::test]
async fn protocol_violations_are_typed_errors() {
    // An empty packet (no variant).
    let (conn, _rx, mut peer) = with_raw_peer(&chans(), unlimited());
    peer.send_raw(&[0x00]).await;
    assert_eq!(conn.closed().await, Err(Error::UnknownPacket));
    // An oversize length, rejected before its body arrives.
    let (conn, _rx, mut peer) = with_raw_peer(&chans(), unlimited());
    peer.send_raw(&[0x8b, 0x08]).await;
    assert_eq!(
        conn.closed().await,
        Err(Error::PacketTooLarge {
            len: 1035,
            max: 1034
        })
    );
    // Garbage.
    let (conn, _rx, mut peer) = with_raw_peer(&chans(), unlimited());
    peer.send_raw(&[0x03, 0xff, 0xff, 0xff]).await;
    assert!(matches!(
        conn.closed().await,
        Err(Error::MalformedPacket { .. })
    ));
    // A stream cut in the middle of a packet.
    let (conn, _rx, mut peer) = with_raw_peer(&chans(), unlimited());
    peer.send_raw(&[0x10, 0x1a]).await;
    drop(peer);
    assert_eq!(conn.closed().await, Err(Error::UnexpectedEof));
    // A clean end of stream.
    let (conn, _rx, peer) = with_raw_peer(&chans(), unlimited());
    drop(peer);
    assert_eq!(conn.closed().await, Err(Error::ClosedByPeer));
}

#[tokio::test]
async fn send_errors_give_the_message_back() {
    let (a, _ra, _b, _rb) = pair(&chans(), unlimited(), unlimited());
    let e = a.send(0x77, vec![1, 2]).await.unwrap_err();
    assert_eq!(e.reason, SendFailure::NoSuchChannel { channel: 0x77 });
    assert_eq!(e.message, &[1, 2][..]);
    let e = a.try_send(0x77, vec![3]).unwrap_err();
    assert_eq!(e.reason, SendFailure::NoSuchChannel { channel: 0x77 });
    assert_eq!(e.into_message(), &[3][..]);
    assert!(!a.can_send(0x77));
    assert!(a.can_send(0x01));
    a.stop();
    let e = a.send(0x01, vec![4]).await.unwrap_err();
    assert_eq!((e.reason, &e.message[..]), (SendFailure::Closed, &[4][..]));
    let e = a.try_send(0x01, vec![5]).unwrap_err();
    assert_eq!((e.reason, &e.message[..]), (SendFailure::Closed, &[5][..]));
    assert!(!a.can_send(0x01));
    assert_eq!(a.closed().await, Ok(()));
}

#[tokio::test(start_paused = true)]
async fn full_queue_try_send_fails_and_send_times_out() {
    // The peer never reads, so the writer blocks and queues fill up.
    let chans = [ChannelDescriptor::new(0x01, 1).send_queue_capacity(2)];
    let (x, _y) = tokio::io::duplex(1024);
    let mut cfg = unlimited();
    cfg.send_timeout(Duration::from_secs(3));
    let (conn, _rx) = MConnection::spawn_stream(x, &chans, cfg).unwrap();
    let big = Bytes::from(vec![0u8; 1 << 20]);
    // One message in flight in the writer, two queued.
    let mut accepted = 0;
    while conn.try_send(0x01, big.clone()).is_ok() {
        accepted += 1;
        tokio::task::yield_now().await;
        assert!(accepted < 10, "queue never filled");
    }
    let last = Bytes::from(vec![9u8; 100]);
    let e = conn.try_send(0x01, last.clone()).unwrap_err();
    assert_eq!(e.reason, SendFailure::QueueFull { channel: 1 });
    assert_eq!(e.message, last);
    assert!(!conn.can_send(0x01));
    let started = tokio::time::Instant::now();
    let e = conn.send(0x01, last.clone()).await.unwrap_err();
    assert_eq!(
        e.reason,
        SendFailure::Timeout {
            channel: 1,
            timeout: Duration::from_secs(3)
        }
    );
    assert_eq!(e.message, last);
    assert_eq!(started.elapsed(), Duration::from_secs(3));
    assert_eq!(conn.status().channels[0].send_queue_size, 2);
}

#[tokio::test]
async fn flush_stop_loses_nothing() {
    let chans = [ChannelDescriptor::new(0x01, 1).send_queue_capacity(1000)];
    let (a, _ra, b, mut rb) = pair(&chans, unlimited(), unlimited());
    let n = 10_000u32;
    let sender = tokio::spawn(async move {
        for i in 0..n {
            let len = (i as usize * 7919) % 3000;
            let mut m = payload(u64::from(i), len).to_vec();
            m.extend_from_slice(&i.to_be_bytes());
            a.send(0x01, m).await.unwrap();
        }
        a.flush_stop().await
    });
    for i in 0..n {
        let m = rb[0].recv().await.unwrap();
        let len = (i as usize * 7919) % 3000;
        assert_eq!(&m[len..], &i.to_be_bytes(), "message {i} out of order");
        assert_eq!(m[..len], payload(u64::from(i), len)[..]);
    }
    assert_eq!(sender.await.unwrap(), Ok(()));
    assert_eq!(rb[0].recv().await, None);
    assert_eq!(b.closed().await, Err(Error::ClosedByPeer));
    assert_eq!(b.status().recv.messages, u64::from(n));
}

#[tokio::test]
async fn flush_stop_sends_what_try_send_accepted() {
    let chans = [
        ChannelDescriptor::new(0x01, 1).send_queue_capacity(500),
        ChannelDescriptor::new(0x02, 3).send_queue_capacity(500),
    ];
    let (a, _ra, _b, mut rb) = pair(&chans, unlimited(), unlimited());
    let mut accepted = [0u32; 2];
    for i in 0..1000u32 {
        let ch = (i % 2) as usize;
        if a.try_send(ch as u8 + 1, Bytes::from(vec![ch as u8; 2000]))
            .is_ok()
        {
            accepted[ch] += 1;
        }
    }
    let stop = tokio::spawn({
        let a = a.clone();
        async move { a.flush_stop().await }
    });
    // New messages are refused once stopping.
    tokio::task::yield_now().await;
    let mut got = [0u32; 2];
    let t0 = std::time::Instant::now();
    for (ch, rx) in rb.iter_mut().enumerate() {
        eprintln!("ch {ch} start {:?} {:?}", t0.elapsed(), a.status());
        while let Some(m) = rx.recv().await {
            assert_eq!(m.len(), 2000);
            got[ch] += 1;
        }
    }
    assert_eq!(stop.await.unwrap(), Ok(()));
    assert_eq!(got, accepted);
    assert_eq!(
        a.try_send(1, vec![1]).map_err(|e| e.reason),
        Err(SendFailure::Closed)
    );
}

#[tokio::test]
async fn the_first_error_is_the_one_reported() {
    let (conn, _rx, mut peer) = with_raw_peer(&chans(), unlimited());
    peer.send(&Packet::Msg(PacketMsg::new(0x44, true, vec![1])))
        .await;
    let first = conn.closed().await;
    assert_eq!(first, Err(Error::UnknownChannel { channel: 0x44 }));
    // Later events (the peer going away, a stop) do not change it.
    drop(peer);
    conn.stop();
    tokio::task::yield_now().await;
    assert_eq!(conn.closed().await, first);
    assert_eq!(conn.outcome(), Some(first.clone()));
    assert_eq!(conn.flush_stop().await, first);
}

#[tokio::test]
async fn dropping_every_handle_closes_the_stream() {
    let (conn, mut rx, mut peer) = with_raw_peer(&chans(), unlimited());
    drop(conn);
    assert_eq!(peer.recv().await, None);
    assert_eq!(rx[0].recv().await, None);
}

#[tokio::test]
async fn dropped_receiver_ends_the_connection_when_used() {
    let (conn, mut rx, mut peer) = with_raw_peer(&chans(), unlimited());
    let mut kept = rx.remove(0);
    drop(rx);
    // A channel whose receiver is kept still works.
    peer.send(&Packet::Msg(PacketMsg::new(0x01, true, vec![1])))
        .await;
    assert_eq!(kept.recv().await.unwrap(), &[1][..]);
    peer.send(&Packet::Msg(PacketMsg::new(0x02, true, vec![1])))
        .await;
    assert_eq!(
        conn.closed().await,
        Err(Error::ReceiverDropped { channel: 0x02 })
    );
}

#[tokio::test]
async fn invalid_configuration_is_an_error() {
    let (x, _y) = tokio::io::duplex(64);
    let mut cfg = MConnConfig::default();
    cfg.pong_timeout(Duration::from_secs(61));
    let e = MConnection::spawn_stream(x, &chans(), cfg).unwrap_err();
    assert!(matches!(e, Error::InvalidConfig { .. }), "{e}");
    let (x, _y) = tokio::io::duplex(64);
    let dup = [ChannelDescriptor::new(1, 1), ChannelDescriptor::new(1, 1)];
    assert!(MConnection::spawn_stream(x, &dup, MConnConfig::default()).is_err());
    let (x, _y) = tokio::io::duplex(64);
    let zero = [ChannelDescriptor::new(1, 0)];
    assert!(MConnection::spawn_stream(x, &zero, MConnConfig::default()).is_err());
}

#[test]
fn spawning_outside_a_runtime_is_an_error() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (x, _y) = rt.block_on(async { tokio::io::duplex(64) });
    let e = MConnection::spawn_stream(x, &chans(), MConnConfig::default()).unwrap_err();
    assert!(e.to_string().contains("tokio runtime"), "{e}");
}

#[tokio::test]
async fn status_counts_bytes_and_messages() {
    let (a, _ra, b, mut rb) = pair(&chans(), unlimited(), unlimited());
    for i in 0..10u8 {
        a.send(0x02, vec![i; 3000]).await.unwrap();
    }
    for _ in 0..10 {
        rb[1].recv().await.unwrap();
    }
    let sa = a.status();
    let sb = b.status();
    assert_eq!(sa.send.messages, 10);
    assert_eq!(sb.recv.messages, 10);
    // 10 messages of 3000 bytes in 3 packets each (1024 + 1024 + 952 data bytes).
    let wire: u64 = 10
        * ((p2p_mconn::msg_packet_len(2, false, 1024) as u64 + 2) * 2
            + p2p_mconn::msg_packet_len(2, true, 952) as u64
            + 2);
    assert_eq!(sb.recv.bytes, wire);
    assert_eq!(sa.send.bytes, wire);
    let ch = &sa.channels[1];
    assert_eq!((ch.id, ch.priority, ch.send_queue_capacity), (0x02, 5, 100));
    assert_eq!(ch.recently_sent, wire);
    assert_eq!(sa.send.limit, 0);
}

#[tokio::test]
async fn works_over_secret_connection_on_tcp() {
    use p2p_secretconn::SecretStream;
    use p2p_types::NodeKey;
    use tokio::net::{TcpListener, TcpStream};

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // A request/response exchange waits for the flush throttle at each turn: keep it short.
    let mut cfg = unlimited();
    cfg.flush_throttle(Duration::from_millis(5));
    let server_cfg = cfg.clone();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let s = SecretStream::handshake(tcp, &NodeKey::generate())
            .await
            .unwrap();
        let (r, w) = s.split_with(TcpStream::into_split);
        let (conn, mut rx) = MConnection::spawn(r, w, &chans(), server_cfg).unwrap();
        // Echo channel 0x20 back.
        let mut rx = rx.take(0x20).unwrap();
        while let Some(m) = rx.recv().await {
            conn.send(0x20, m).await.unwrap();
        }
        conn.closed().await
    });
    let tcp = TcpStream::connect(addr).await.unwrap();
    let s = SecretStream::handshake(tcp, &NodeKey::generate())
        .await
        .unwrap();
    let (r, w) = s.split_with(TcpStream::into_split);
    let (conn, mut rx) = MConnection::spawn(r, w, &chans(), cfg).unwrap();
    let mut rx = rx.take(0x20).unwrap();
    for i in 0..50u64 {
        let m = payload(i, (i as usize * 4099) % 70_000);
        conn.send(0x20, m.clone()).await.unwrap();
        assert_eq!(rx.recv().await.unwrap(), m);
    }
    conn.flush_stop().await.unwrap();
    assert_eq!(server.await.unwrap(), Err(Error::ClosedByPeer));
}

#[tokio::test]
async fn raw_peer_helper_sanity() {
    // The helper itself: a ping from the peer is answered with a pong.
    let (_conn, _rx, mut peer) = with_raw_peer(&chans(), unlimited());
    peer.send(&Packet::Ping).await;
    assert_eq!(peer.recv().await, Some(Packet::Pong));
    let _ = RawPeer::last_len;
}

/// A writer whose shutdown takes a few more turns of the scheduler after closing the stream.
struct SlowShutdown<W> {
    inner: W,
    turns: usize,
}

impl<W: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for SlowShutdown<W> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::ready!(std::pin::Pin::new(&mut self.inner).poll_shutdown(cx))?;
        if self.turns > 0 {
            self.turns -= 1;
            cx.waker().wake_by_ref();
            return std::task::Poll::Pending;
        }
        std::task::Poll::Ready(Ok(()))
    }
}

#[tokio::test]
async fn flush_stop_succeeds_even_if_the_peer_closes_in_reply_first() {
    // The peer closes as soon as it sees our end of stream, and its close reaches our read
    // task before our write task has returned from the shutdown: still a clean flush_stop.
    let (x, y) = tokio::io::duplex(64 * 1024);
    let (r, w) = tokio::io::split(x);
    let w = SlowShutdown { inner: w, turns: 5 };
    let (conn, _rx) = MConnection::spawn(r, w, &chans(), unlimited()).unwrap();
    let peer = tokio::spawn(async move {
        let mut peer = RawPeer::new(y);
        let mut got = 0;
        while let Some(p) = peer.recv().await {
            assert!(matches!(p, Packet::Msg(_)));
            got += 1;
        }
        got // dropping the peer closes its side
    });
    conn.send(0x01, vec![1; 10]).await.unwrap();
    assert_eq!(conn.flush_stop().await, Ok(()));
    assert_eq!(peer.await.unwrap(), 1);
}
