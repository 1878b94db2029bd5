//! Stalls: a peer that stops reading, our own consumer that stops taking messages. Each ends
//! the connection in bounded time with an error that names who stalled.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::unlimited;
use p2p_mconn::{ChannelDescriptor, Error, MConnConfig, MConnection};
use tokio::io::AsyncReadExt;
use tokio::time::{Instant, timeout};

fn keepalive(ping_secs: u64, pong_secs: u64) -> MConnConfig {
    let mut c = unlimited();
    c.ping_interval(Duration::from_secs(ping_secs))
        .pong_timeout(Duration::from_secs(pong_secs));
    c
}

/// Reads `io` to its end; returns how many bytes came.
async fn read_to_end(mut io: impl tokio::io::AsyncRead + Unpin) -> usize {
    let mut n = 0;
    let mut buf = vec![0; 64 * 1024];
    loop {
        match io.read(&mut buf).await {
            Ok(0) | Err(_) => return n,
            Ok(k) => n += k,
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_peer_that_stops_reading_ends_the_connection() {
    // A pipe with a small buffer whose other end is never read: our writes block for good.
    let (ours, theirs) = tokio::io::duplex(1024);
    let chans = [ChannelDescriptor::new(1, 1)];
    let start = Instant::now();
    let (conn, _rx) = MConnection::spawn_stream(ours, &chans, keepalive(10, 5)).unwrap();
    conn.send(1, vec![7; 100_000]).await.unwrap();
    // The ping at 10 s queues behind the stuck data; its pong is due at 15 s.
    let end = timeout(Duration::from_secs(100), conn.closed())
        .await
        .expect("the connection must end while its write is blocked");
    assert_eq!(
        end,
        Err(Error::WriteStalled {
            waited: Duration::from_secs(5)
        })
    );
    assert_eq!(start.elapsed(), Duration::from_secs(15));
    assert!(!conn.is_running());
    // The stream was released: the peer sees its end after what was buffered.
    assert_eq!(read_to_end(theirs).await, 1024);
}

#[tokio::test(start_paused = true)]
async fn flush_stop_against_a_peer_that_stops_reading_ends_too() {
    let (ours, _theirs) = tokio::io::duplex(1024);
    let chans = [ChannelDescriptor::new(1, 1)];
    let (conn, _rx) = MConnection::spawn_stream(ours, &chans, keepalive(10, 5)).unwrap();
    conn.send(1, vec![7; 100_000]).await.unwrap();
    let end = timeout(Duration::from_secs(100), conn.flush_stop())
        .await
        .expect("flush_stop must end while its write is blocked");
    assert!(matches!(end, Err(Error::WriteStalled { .. })), "{end:?}");
}

#[tokio::test]
async fn a_tcp_peer_that_stops_reading_ends_the_connection() {
    use tokio::net::{TcpListener, TcpStream};

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let tcp = TcpStream::connect(addr).await.unwrap();
    // The peer accepts and then never reads.
    let (peer, _) = listener.accept().await.unwrap();
    let (r, w) = tcp.into_split();
    let chans = [ChannelDescriptor::new(1, 1).send_queue_capacity(4)];
    let (conn, _rx) = MConnection::spawn(r, w, &chans, keepalive(2, 1)).unwrap();
    // Far more than the socket buffers of both ends hold.
    let sender = tokio::spawn({
        let conn = conn.clone();
        async move {
            let m = Bytes::from(vec![0x5a; 1 << 20]);
            for _ in 0..256 {
                if conn.send(1, m.clone()).await.is_err() {
                    break;
                }
            }
        }
    });
    let end = timeout(Duration::from_secs(60), conn.closed())
        .await
        .expect("the connection must end while its writes are blocked");
    assert!(matches!(end, Err(Error::WriteStalled { .. })), "{end:?}");
    sender.await.unwrap();
    // Our socket is closed: the peer, reading at last, gets to the end of the stream.
    let got = timeout(Duration::from_secs(60), read_to_end(peer))
        .await
        .expect("the peer must see the end of the stream");
    assert!(got > 0);
}

#[tokio::test(start_paused = true)]
async fn our_stalled_consumer_is_not_blamed_on_the_peer() {
    // B's consumer of channel 1 never takes anything; its queue holds one message.
    let chans = [ChannelDescriptor::new(1, 1)
        .send_queue_capacity(100)
        .recv_queue_capacity(2048)];
    let (a, _ra, b, _rb) = common::pair(&chans, keepalive(10, 5), keepalive(10, 5));
    let start = Instant::now();
    for i in 0..20u8 {
        a.send(1, vec![i; 1000]).await.unwrap();
    }
    let end = timeout(Duration::from_secs(100), b.closed()).await.unwrap();
    // Our side names itself and the channel: not a pong timeout.
    assert_eq!(
        end,
        Err(Error::ReceiverStalled {
            channel: 1,
            waited: Duration::from_secs(5)
        })
    );
    assert_eq!(start.elapsed(), Duration::from_secs(5));
    // The peer sees an orderly close.
    assert_eq!(a.closed().await, Err(Error::ClosedByPeer));
}

#[tokio::test(start_paused = true)]
async fn a_slow_consumer_does_not_turn_into_a_pong_timeout() {
    // B's consumer takes one message every 2 s: each pause is shorter than the pong timeout,
    // but B's pings are answered behind 30 messages, so B reads the pong only after a minute.
    // The paused time does not count toward B's pong timeout.
    let chans = [ChannelDescriptor::new(1, 1)
        .send_queue_capacity(100)
        .recv_queue_capacity(2048)];
    let (a, _ra, b, mut rb) = common::pair(&chans, keepalive(1000, 500), keepalive(10, 5));
    tokio::time::sleep(Duration::from_millis(9900)).await;
    for i in 0..30u8 {
        a.send(1, vec![i; 1000]).await.unwrap();
    }
    let consumer = tokio::spawn(async move {
        let mut got = 0u8;
        while let Some(m) = rb[0].recv().await {
            assert_eq!(m[0], got);
            got += 1;
            if got == 30 {
                break;
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        (got, rb)
    });
    let (got, _rb) = timeout(Duration::from_secs(200), consumer)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, 30);
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(b.is_running(), "{:?}", b.outcome());
    assert!(a.is_running(), "{:?}", a.outcome());
}
