//! An `addrbook.json` from disk (written by anyone, damaged in any way): loading must never
//! panic and must leave a consistent book; what the book then writes must read back clean and
//! identical, in a strict and in a non-strict book.

#![no_main]

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use p2p_pex::{AddrBook, AddrBookConfig, ManualClock};

fn check(data: &[u8], strict: bool) {
    let clock = ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    let mut config = AddrBookConfig::default();
    config.routability_strict(strict);
    let mut book = AddrBook::with_seed(config.clone(), 1, Arc::new(clock.clone()));
    let report = book.load_json(data);
    if let Err(e) = book.verify_consistency() {
        panic!("inconsistent book after {:?}: {e}", report.issues());
    }
    assert_eq!(report.loaded(), book.len());
    let written = book.to_json().expect("encoding never fails");
    let mut again = AddrBook::with_seed(config, 2, Arc::new(clock));
    let report = again.load_json(&written);
    assert!(report.is_clean(), "{:?}", report.issues());
    assert_eq!(again.to_json().expect("encoding never fails"), written);
}

fuzz_target!(|data: &[u8]| {
    check(data, true);
    check(data, false);
});
