//! The seed's multi-chain file from arbitrary text (an operator's file): reading never
//! panics, and every file that reads respects the limits the seed relies on.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use p2p_seed::config::{MAX_CHAINS, SeedFile};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let base = Path::new("/seed");
    let Ok(file) = SeedFile::from_toml(text, base) else {
        return;
    };
    assert!(!file.chains.is_empty() && file.chains.len() <= MAX_CHAINS);
    for (i, a) in file.chains.iter().enumerate() {
        assert!(a.home.starts_with(base) || a.home.is_absolute());
        assert!(a.chain_id.as_deref() != Some(""));
        for b in file.chains.iter().skip(i + 1) {
            assert_ne!(a.home, b.home);
            assert!(a.chain_id.is_none() || a.chain_id != b.chain_id);
            assert!(a.laddr.is_none() || a.laddr != b.laddr);
        }
    }
});
