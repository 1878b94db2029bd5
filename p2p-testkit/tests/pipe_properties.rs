//! Properties of the shaped pipe under arbitrary shapes and arbitrary write and read sizes:
//! every byte arrives once, in order, intact; the writer is never more than the capacity
//! ahead of the reader; nothing arrives before the link's latency has passed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use p2p_testkit::memory::MemoryNetwork;
use proptest::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

#[derive(Debug, Clone)]
struct Case {
    latency_ms: u64,
    jitter_ms: u64,
    bandwidth: Option<u64>,
    capacity: usize,
    writes: Vec<usize>,
    reads: Vec<usize>,
    pauses_ms: Vec<u64>,
    seed: u64,
}

fn case() -> impl Strategy<Value = Case> {
    (
        0u64..50,
        0u64..20,
        prop::option::of(1_000u64..1_000_000),
        1usize..20_000,
        prop::collection::vec(1usize..10_000, 1..30),
        prop::collection::vec(1usize..5_000, 1..10),
        prop::collection::vec(0u64..30, 1..10),
        any::<u64>(),
    )
        .prop_map(
            |(latency_ms, jitter_ms, bandwidth, capacity, writes, reads, pauses_ms, seed)| Case {
                latency_ms,
                jitter_ms,
                bandwidth,
                capacity,
                writes,
                reads,
                pauses_ms,
                seed,
            },
        )
}

fn check(c: Case) -> Result<(), TestCaseError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async move {
        let net = MemoryNetwork::with_seed(c.seed);
        let (a, b) = (net.next_ip(), net.next_ip());
        let mut link = net.link(a, b);
        link.latency(Duration::from_millis(c.latency_ms))
            .jitter(Duration::from_millis(c.jitter_ms))
            .bandwidth(c.bandwidth)
            .capacity(Some(c.capacity));
        let mut l = net.listen_raw(SocketAddr::new(b, 1)).unwrap();
        let (mut out, _) = net.connect_raw(a, l.local_addr()).unwrap();
        let mut inb = l.accept().await.unwrap();
        let total: usize = c.writes.iter().sum();
        let data: Vec<u8> = (0..total).map(|i| (i * 7 + i / 251) as u8).collect();
        let (written, read) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let start = Instant::now();
        let writer = {
            let (data, written, read, writes, cap) = (
                data.clone(),
                Arc::clone(&written),
                Arc::clone(&read),
                c.writes.clone(),
                c.capacity,
            );
            tokio::spawn(async move {
                let mut at = 0;
                for w in writes {
                    let mut chunk = &data[at..at + w];
                    while !chunk.is_empty() {
                        let n = out.write(chunk).await.unwrap();
                        chunk = &chunk[n..];
                        let ahead = written.fetch_add(n, Ordering::SeqCst) + n
                            - read.load(Ordering::SeqCst);
                        assert!(ahead <= cap, "writer {ahead} bytes ahead, capacity {cap}");
                    }
                    at += w;
                }
                out
            })
        };
        let mut got = Vec::with_capacity(total);
        let mut i = 0;
        while got.len() < total {
            let mut buf = vec![0; c.reads[i % c.reads.len()]];
            let n = inb.read(&mut buf).await.unwrap();
            prop_assert!(n > 0, "end of stream before all bytes arrived");
            if got.is_empty() {
                prop_assert!(start.elapsed() >= Duration::from_millis(c.latency_ms));
            }
            got.extend_from_slice(&buf[..n]);
            read.fetch_add(n, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(c.pauses_ms[i % c.pauses_ms.len()])).await;
            i += 1;
        }
        prop_assert_eq!(&got, &data);
        let out = writer.await.unwrap();
        drop(out);
        let mut rest = Vec::new();
        inb.read_to_end(&mut rest).await.unwrap();
        prop_assert!(rest.is_empty());
        if let Some(bw) = c.bandwidth {
            // Never faster than the cap allows (whole segments, rounded to milliseconds).
            let min = Duration::from_secs_f64(total.saturating_sub(1460) as f64 / bw as f64);
            prop_assert!(start.elapsed() + Duration::from_millis(1) >= min);
        }
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn bytes_arrive_once_in_order_within_capacity(c in case()) {
        check(c)?;
    }
}
