//! Files written by the reference itself, read by this crate.
//!
//! `addrbook-go-v0.38.26.json` was written by CometBFT v0.38.26's own address book
//! (`pex.NewAddrBook`, `AddAddress`, `MarkAttempt`, `MarkGood`, `MarkBad`, `Save`) running in
//! a time zone of +05:30; `addrbook-handwritten.json` follows the format by hand, with
//! offsets, several buckets per entry and every field set.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use p2p_pex::{AddrBook, AddrBookConfig, BucketKind, ManualClock};
use p2p_types::NodeId;

fn at(unix: u64) -> ManualClock {
    ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(unix))
}

fn load(file: &str, clock: &ManualClock) -> (AddrBook, p2p_pex::LoadReport) {
    let bytes = std::fs::read(format!("{}/tests/data/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let mut book = AddrBook::with_seed(AddrBookConfig::default(), 1, Arc::new(clock.clone()));
    let report = book.load_json(&bytes);
    (book, report)
}

/// The file's entries as (id, bucket type, buckets), read with a plain JSON parser.
fn raw_entries(file: &str) -> (String, Vec<(NodeId, u64, Vec<u64>)>) {
    let bytes = std::fs::read(format!("{}/tests/data/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let entries = v["addrs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["addr"]["id"].as_str().unwrap().parse().unwrap(),
                e["bucket_type"].as_u64().unwrap(),
                e["buckets"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|b| b.as_u64().unwrap())
                    .collect(),
            )
        })
        .collect();
    (v["key"].as_str().unwrap().to_owned(), entries)
}

#[test]
fn a_file_written_by_the_reference_loads_completely() {
    const FILE: &str = "addrbook-go-v0.38.26.json";
    // 2027-01-01, after the file was written.
    let clock = at(1_798_761_600);
    let (book, report) = load(FILE, &clock);
    assert!(report.is_clean(), "{:#?}", report.issues());
    book.verify_consistency().unwrap();

    let (key, raw) = raw_entries(FILE);
    assert_eq!(book.key(), key);
    assert_eq!(book.len(), raw.len());
    assert_eq!(raw.len(), 42);
    for (id, kind, buckets) in &raw {
        let e = book.get(id).unwrap();
        assert_eq!(u64::from(e.kind().code()), *kind);
        let got: Vec<u64> = e.buckets().iter().map(|&b| u64::from(b)).collect();
        assert_eq!(&got, buckets);
    }
    let old = raw.iter().filter(|(_, kind, _)| *kind == 2).count();
    assert_eq!(book.num_old(), old);
    assert!(old > 0 && book.num_new() > 0);
    // IPv6 addresses came through.
    assert_eq!(
        book.entries().filter(|e| e.addr().ip().is_ipv6()).count(),
        3
    );
    // Old entries were marked good: their last success is set, their attempts reset.
    for e in book.entries().filter(|e| e.kind() == BucketKind::Old) {
        assert!(e.last_success().is_some());
        assert_eq!(e.attempts(), 0);
    }

    // Written back in our format and read again: the same book.
    let ours = book.to_json().unwrap();
    let mut again = AddrBook::with_seed(AddrBookConfig::default(), 2, Arc::new(clock.clone()));
    assert!(again.load_json(&ours).is_clean());
    let ids: BTreeSet<_> = raw.iter().map(|(id, _, _)| *id).collect();
    for id in ids {
        assert_eq!(again.get(&id), book.get(&id));
    }
}

#[test]
fn a_handwritten_reference_file_loads_with_exact_values() {
    const FILE: &str = "addrbook-handwritten.json";
    let clock = at(1_735_689_600); // 2025-01-01
    let (book, report) = load(FILE, &clock);
    assert!(report.is_clean(), "{:#?}", report.issues());
    assert_eq!(book.key(), "e9b1f3a27c4d5e6f708192a3");
    assert_eq!((book.num_new(), book.num_old()), (2, 1));

    let id = |s: &str| s.parse::<NodeId>().unwrap();
    let secs = |s: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(s);

    let a = book
        .get(&id("aa11223344556677889900aabbccddeeff001122"))
        .unwrap();
    assert_eq!(
        a.addr().to_string(),
        "aa11223344556677889900aabbccddeeff001122@95.216.10.20:26656"
    );
    assert_eq!(
        a.src().to_string(),
        "bb11223344556677889900aabbccddeeff001122@135.181.5.6:26656"
    );
    assert_eq!(a.buckets(), &[3, 200]);
    assert_eq!(a.attempts(), 2);
    assert_eq!(a.kind(), BucketKind::New);
    assert_eq!(
        a.last_attempt(),
        Some(secs(1_710_058_530) + Duration::from_millis(500))
    );
    assert_eq!(a.last_success(), None);
    assert_eq!(a.last_ban_time(), None);

    let c = book
        .get(&id("cc11223344556677889900aabbccddeeff001122"))
        .unwrap();
    assert_eq!(
        c.addr().to_string(),
        "cc11223344556677889900aabbccddeeff001122@[2a01:4f8:c17:1234::1]:26656"
    );
    assert_eq!(c.kind(), BucketKind::Old);
    assert_eq!(c.buckets(), &[63]);
    // 10:00 at +02:00 is 08:00 UTC.
    assert_eq!(
        c.last_success(),
        Some(secs(1_710_057_600) + Duration::from_nanos(123_456_789))
    );

    let d = book
        .get(&id("dd11223344556677889900aabbccddeeff001122"))
        .unwrap();
    assert_eq!(d.attempts(), 11);
    // 2024-03-01T00:00:00-05:00.
    assert_eq!(d.last_attempt(), Some(secs(1_709_269_200)));
    assert_eq!(d.last_ban_time(), Some(secs(1_703_440_800)));
    // Eleven failures and no success for a week: bad, by the reference's rules.
    assert!(d.is_bad(secs(1_735_689_600)));
}
