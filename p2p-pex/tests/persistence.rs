//! `addrbook.json`: round trips, the reference's format, crash safety, damaged files.

mod common;

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use p2p_pex::file::MAX_FILE_SIZE;
use p2p_pex::{AddrBook, AddrBookConfig, BucketKind, Clock, LoadIssue, ManualClock};
use p2p_types::NetAddress;

fn reopen(clock: &ManualClock, path: &Path, seed: u64) -> (AddrBook, p2p_pex::LoadReport) {
    let mut book = AddrBook::with_seed(AddrBookConfig::default(), seed, Arc::new(clock.clone()));
    let report = book.load_file(path).unwrap();
    (book, report)
}

fn filled_book(seed: u64) -> (AddrBook, ManualClock, Vec<NetAddress>) {
    let (mut book, clock) = book(seed);
    let mut rng = rng(seed);
    let mut addrs = Vec::new();
    for (i, (a, s)) in random_pairs(&mut rng, 100).into_iter().enumerate() {
        clock.advance(Duration::from_millis(1234));
        book.add_address(&a, &s).unwrap();
        if i % 3 == 0 {
            book.mark_attempt(&a);
        }
        if i % 4 == 0 {
            book.mark_good(&a.id());
        }
        addrs.push(a);
    }
    (book, clock, addrs)
}

#[test]
fn save_and_load_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("addrbook.json");

    // An empty book.
    let (empty, clock) = book(1);
    empty.save_to(&path).unwrap();
    let (loaded, report) = reopen(&clock, &path, 2);
    assert!(report.is_clean(), "{:?}", report.issues());
    assert!(loaded.is_empty());
    assert_eq!(loaded.key(), empty.key());

    // A hundred addresses, a quarter of them old, some with failed attempts.
    let (book, clock, addrs) = filled_book(3);
    book.save_to(&path).unwrap();
    let (loaded, report) = reopen(&clock, &path, 4);
    assert!(report.is_clean(), "{:?}", report.issues());
    assert_eq!(report.loaded(), 100);
    assert_eq!(loaded.len(), 100);
    assert_eq!(
        (loaded.num_old(), loaded.num_new()),
        (book.num_old(), book.num_new())
    );
    for a in &addrs {
        assert_eq!(loaded.get(&a.id()), book.get(&a.id()));
    }
    assert_eq!(loaded.to_json().unwrap(), book.to_json().unwrap());
    loaded.verify_consistency().unwrap();
}

#[test]
fn the_key_survives_so_placement_is_stable_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("addrbook.json");
    let (book, clock, _) = filled_book(5);
    book.save_to(&path).unwrap();
    let (loaded, _) = reopen(&clock, &path, 6);
    let mut rng = rng(5);
    for _ in 0..100 {
        let (a, s) = (random_addr(&mut rng), random_addr(&mut rng));
        assert_eq!(book.calc_new_bucket(&a, &s), loaded.calc_new_bucket(&a, &s));
        assert_eq!(book.calc_old_bucket(&a), loaded.calc_old_bucket(&a));
    }
}

#[test]
fn the_file_has_the_reference_layout() {
    let (mut book, clock) = book(7);
    let a: NetAddress = "0123456789abcdef0123456789abcdef01234567@1.2.3.4:26656"
        .parse()
        .unwrap();
    let s: NetAddress = "76543210fedcba9876543210fedcba9876543210@5.6.7.8:26656"
        .parse()
        .unwrap();
    clock.advance(Duration::from_nanos(123_456_789));
    book.add_address(&a, &s).unwrap();
    let json = String::from_utf8(book.to_json().unwrap()).unwrap();
    let bucket = book.get(&a.id()).unwrap().buckets()[0];
    let want = format!(
        "{{\n\t\"key\": \"{key}\",\n\t\"addrs\": [\n\t\t{{\n\t\t\t\"addr\": {{\n\t\t\t\t\"id\": \"{id}\",\n\t\t\t\t\"ip\": \"1.2.3.4\",\n\t\t\t\t\"port\": 26656\n\t\t\t}},\n\t\t\t\"src\": {{\n\t\t\t\t\"id\": \"{sid}\",\n\t\t\t\t\"ip\": \"5.6.7.8\",\n\t\t\t\t\"port\": 26656\n\t\t\t}},\n\t\t\t\"buckets\": [\n\t\t\t\t{bucket}\n\t\t\t],\n\t\t\t\"attempts\": 0,\n\t\t\t\"bucket_type\": 1,\n\t\t\t\"last_attempt\": \"2023-11-14T22:13:20.123456789Z\",\n\t\t\t\"last_success\": \"0001-01-01T00:00:00Z\",\n\t\t\t\"last_ban_time\": \"0001-01-01T00:00:00Z\"\n\t\t}}\n\t]\n}}",
        key = book.key(),
        id = a.id(),
        sid = s.id(),
    );
    assert_eq!(json, want);
    assert_eq!(book.key().len(), 24);
    assert!(book.key().bytes().all(|b| b.is_ascii_hexdigit()));
}

#[test]
fn bans_survive_a_restart_and_end_while_down() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("addrbook.json");
    let (mut book, clock, addrs) = filled_book(8);
    let mut rng = rng(80);
    let stranger = random_addr(&mut rng);
    book.mark_bad(&addrs[1], Duration::from_secs(3600));
    book.mark_bad(&addrs[2], Duration::from_secs(24 * 3600));
    book.mark_bad(&stranger, Duration::from_secs(24 * 3600));
    book.save_to(&path).unwrap();

    let (loaded, report) = reopen(&clock, &path, 9);
    assert!(report.is_clean(), "{:?}", report.issues());
    assert_eq!(report.bans(), 3);
    for a in [addrs[1], addrs[2], stranger] {
        assert!(loaded.is_banned(&a));
        assert!(!loaded.has_address(&a));
    }

    // Two hours later the first ban has ended: its entry comes back.
    clock.advance(Duration::from_secs(7200));
    let (loaded, report) = reopen(&clock, &path, 10);
    assert_eq!(report.bans(), 2);
    assert!(!loaded.is_banned(&addrs[1]));
    assert!(loaded.has_address(&addrs[1]));
    assert_eq!(loaded.get(&addrs[1].id()).unwrap().kind(), BucketKind::New);
    assert!(loaded.is_banned(&addrs[2]));
    loaded.verify_consistency().unwrap();
}

#[test]
fn saves_are_atomic_and_leave_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("addrbook.json");
    let (book, _, _) = filled_book(11);
    for _ in 0..3 {
        book.save_to(&path).unwrap();
    }
    let names: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["addrbook.json".to_owned()]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644);
    }
}

/// A crash between writing the temporary file and renaming it leaves the old file and a
/// temporary one: the old book loads and the leftover goes.
#[test]
fn a_crash_before_the_rename_leaves_the_old_book() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("addrbook.json");
    let (book, clock, _) = filled_book(12);
    book.save_to(&path).unwrap();
    let old = fs::read(&path).unwrap();

    // What an interrupted save of a bigger book would leave: a half-written temporary file.
    let (bigger, _, _) = filled_book(13);
    let new = bigger.to_json().unwrap();
    let leftover = dir.path().join(".addrbook.json.aB3xY9.tmp");
    fs::write(&leftover, &new[..new.len() / 2]).unwrap();
    // Files that are not ours stay.
    let unrelated = dir.path().join(".other.json.x.tmp");
    fs::write(&unrelated, b"x").unwrap();

    let (loaded, report) = reopen(&clock, &path, 14);
    assert!(report.is_clean(), "{:?}", report.issues());
    assert_eq!(report.stale_temp_files(), 1);
    assert_eq!(loaded.to_json().unwrap(), old);
    assert!(!leftover.exists());
    assert!(unrelated.exists());
}

/// A file cut short (a disk that lied about its flush, or a copy gone wrong): never a panic,
/// the entries before the cut are kept, the damaged file is kept aside for inspection and a
/// clean file replaces it.
#[test]
fn a_truncated_file_keeps_what_precedes_the_cut() {
    let (book, clock, _) = filled_book(15);
    let full = book.to_json().unwrap();
    for cut in [
        0,
        1,
        10,
        full.len() / 3,
        full.len() / 2,
        full.len() - 2,
        full.len() - 1,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("addrbook.json");
        fs::write(&path, &full[..cut]).unwrap();
        let (loaded, report) = reopen(&clock, &path, 16);
        assert!(report.is_damaged(), "cut at {cut}");
        loaded.verify_consistency().unwrap();
        let aside = report.set_aside().expect("set aside").to_owned();
        assert_eq!(fs::read(&aside).unwrap(), &full[..cut]);
        // Every kept entry is one of the original book's, unchanged.
        for e in loaded.entries() {
            assert_eq!(book.get(&e.addr().id()), Some(e));
        }
        if cut > full.len() / 2 {
            assert!(loaded.len() >= 40, "cut at {cut}: kept {}", loaded.len());
        }
        if cut > 40 {
            assert_eq!(loaded.key(), book.key(), "cut at {cut}");
        }
        // The clean file written in its place loads without complaint.
        let (again, report) = reopen(&clock, &path, 17);
        assert!(report.is_clean(), "cut at {cut}: {:?}", report.issues());
        assert_eq!(again.len(), loaded.len());
    }
}

#[test]
fn bad_entries_are_dropped_or_repaired_and_the_rest_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("addrbook.json");
    let good = |id: &str, ip: &str, buckets: &str, kind: u8| {
        format!(
            r#"{{"addr": {{"id": "{id}", "ip": "{ip}", "port": 26656}},
                "src": {{"id": "{id}", "ip": "{ip}", "port": 26656}},
                "buckets": {buckets}, "attempts": 1, "bucket_type": {kind},
                "last_attempt": "2023-11-14T00:00:00Z",
                "last_success": "0001-01-01T00:00:00Z",
                "last_ban_time": "0001-01-01T00:00:00Z"}}"#
        )
    };
    let id = |n: u8| format!("{n:02x}").repeat(20);
    let entries = [
        good(&id(1), "1.2.3.4", "[7]", 1),                   // 0: fine
        good(&id(2), "1.2.3.999", "[7]", 1),                 // 1: bad IP
        good(&id(3), "2.3.4.5", "[7]", 3),                   // 2: bad bucket type
        good(&id(4), "3.4.5.6", "[9999, -1, 8]", 1),         // 3: two bad indices: repaired
        good(&id(1), "4.5.6.7", "[7]", 1),                   // 4: duplicate ID
        good("zz", "5.6.7.8", "[7]", 1),                     // 5: bad ID
        good(&id(6), "6.7.8.9", "[100]", 2),                 // 6: old index out of range
        good(&id(7), "10.0.0.1", "[7]", 1),                  // 7: private IP on a strict book
        r#"{"addr": 5}"#.to_owned(),                         // 8: wrong type
        good(&id(9), "7.8.9.10", "null", 1),                 // 9: no bucket: placed afresh
        good(&id(10), "8.9.10.11", "[1, 2, 3, 4, 5, 6]", 1), // 10: too many buckets
        r#""just a string""#.to_owned(),                     // 11
        good(&id(12), "9.10.11.12", "[3]", 1).replace("attempts\": 1", "attempts\": -5"), // 12
        good(&id(13), "9.10.11.13", "[3]", 1).replace("2023-11-14T00:00:00Z", "soon"), // 13
    ];
    let file = format!(
        r#"{{"key": "0123456789abcdef01234567", "extra": {{"ignored": [1, 2]}}, "addrs": [{}]}}"#,
        entries.join(",")
    );
    fs::write(&path, &file).unwrap();
    let (book, report) = reopen(&clock(), &path, 18);
    assert!(report.is_damaged());
    assert!(report.set_aside().is_some());
    book.verify_consistency().unwrap();
    let kept: Vec<String> = book.entries().map(|e| e.addr().ip().to_string()).collect();
    assert_eq!(
        kept,
        [
            "1.2.3.4",
            "3.4.5.6",
            "6.7.8.9",
            "7.8.9.10",
            "8.9.10.11",
            "9.10.11.12"
        ],
        "{:#?}",
        report.issues()
    );
    assert_eq!(book.key(), "0123456789abcdef01234567");
    let by_ip = |ip: &str| {
        book.entries()
            .find(|e| e.addr().ip().to_string() == ip)
            .unwrap()
    };
    assert_eq!(by_ip("3.4.5.6").buckets(), &[8]);
    assert_eq!(by_ip("8.9.10.11").buckets(), &[1, 2, 3, 4]);
    assert_eq!(by_ip("6.7.8.9").kind(), BucketKind::Old);
    assert_eq!(by_ip("9.10.11.12").attempts(), 0);

    let bad: Vec<usize> = report
        .issues()
        .iter()
        .filter_map(|i| match i {
            LoadIssue::BadEntry { index, .. } => Some(*index),
            _ => None,
        })
        .collect();
    assert_eq!(bad, [1, 2, 5, 8, 11, 13]);
    assert!(
        report
            .issues()
            .iter()
            .any(|i| matches!(i, LoadIssue::DuplicateId { index: 4, .. }))
    );
    assert!(
        report
            .issues()
            .iter()
            .any(|i| matches!(i, LoadIssue::Refused { index: 7, .. }))
    );
    let repaired = report
        .issues()
        .iter()
        .filter(|i| matches!(i, LoadIssue::RepairedEntry { .. }))
        .count();
    assert_eq!(repaired, 4, "{:#?}", report.issues());
}

#[test]
fn entries_the_rules_refuse_do_not_make_a_file_damaged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("addrbook.json");
    let mut loose = AddrBookConfig::default();
    loose.routability_strict(false);
    let (mut book, clock) = book_with(loose, 19);
    let private: NetAddress = "0123456789abcdef0123456789abcdef01234567@192.168.1.1:26656"
        .parse()
        .unwrap();
    let public: NetAddress = "76543210fedcba9876543210fedcba9876543210@5.6.7.8:26656"
        .parse()
        .unwrap();
    book.add_address(&private, &private).unwrap();
    book.add_address(&public, &public).unwrap();
    book.save_to(&path).unwrap();

    // Read by a strict book: the private address is refused, the file stays where it is.
    let (strict, report) = reopen(&clock, &path, 20);
    assert!(!report.is_damaged());
    assert!(report.set_aside().is_none());
    assert!(matches!(report.issues(), [LoadIssue::Refused { .. }]));
    assert_eq!(strict.len(), 1);
    assert!(strict.has_address(&public));
}

#[test]
fn garbage_and_oversized_files_give_an_empty_book() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("addrbook.json");
    for garbage in [
        &b""[..],
        b"\xff\xfe",
        b"[]",
        b"null",
        b"{\"addrs\": 5}",
        b"{{{{",
        b"{} trailing",
    ] {
        fs::write(&path, garbage).unwrap();
        let (book, report) = reopen(&clock(), &path, 21);
        assert!(report.is_damaged(), "{garbage:?}");
        assert!(book.is_empty());
        book.verify_consistency().unwrap();
    }
    let file = fs::File::create(&path).unwrap();
    file.set_len(MAX_FILE_SIZE + 10).unwrap();
    drop(file);
    let (book, report) = reopen(&clock(), &path, 22);
    assert!(matches!(report.issues(), [LoadIssue::TooLarge { .. }]));
    assert!(book.is_empty());
}

#[test]
fn a_missing_file_is_an_empty_book_and_save_goes_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("addrbook.json");
    let (mut book, _) = book(23);
    let report = book.load_file(&path).unwrap();
    assert!(report.is_clean());
    assert!(book.is_empty());
    assert!(!path.exists());
    let mut rng = rng(23);
    let a = random_addr(&mut rng);
    book.add_address(&a, &a).unwrap();
    book.save().unwrap();
    assert_eq!(book.file_path(), Some(path.as_path()));
    let (loaded, _) = reopen(&clock(), &path, 24);
    assert!(loaded.has_address(&a));
}

#[test]
fn future_timestamps_are_taken_as_now() {
    let clock = clock();
    let now = clock.now();
    let mut book = AddrBook::with_seed(AddrBookConfig::default(), 25, Arc::new(clock.clone()));
    let file = r#"{"key": "k", "addrs": [{"addr": {"id": "0101010101010101010101010101010101010101", "ip": "1.2.3.4", "port": 1},
        "src": {"id": "0101010101010101010101010101010101010101", "ip": "1.2.3.4", "port": 1},
        "buckets": [1], "attempts": 5, "bucket_type": 1,
        "last_attempt": "2999-01-01T00:00:00Z", "last_success": "0001-01-01T00:00:00Z",
        "last_ban_time": "0001-01-01T00:00:00Z"}]}"#;
    let report = book.load_json(file.as_bytes());
    assert!(report.is_clean(), "{:?}", report.issues());
    let e = book.entries().next().unwrap();
    assert_eq!(e.last_attempt(), Some(now));
    // So it can still become bad (it would not, stamped in the future).
    assert!(e.is_bad(now + Duration::from_secs(120)));
}

#[test]
fn deep_nesting_is_refused_without_overflowing_the_stack() {
    for prefix in [
        "{\"addrs\": [",
        "{\"key\": ",
        "{\"other\": ",
        "{\"addrs\": [{\"addr\": ",
    ] {
        let mut file = prefix.to_owned();
        file.push_str(&"[".repeat(1_000_000));
        let (mut book, _) = book(26);
        let report = book.load_json(file.as_bytes());
        assert!(report.is_damaged(), "{prefix}");
        assert!(book.is_empty());
    }
}
