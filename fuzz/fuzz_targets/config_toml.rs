//! `config.toml` from arbitrary text (an operator's file): reading must never panic, and every
//! file that reads must write out to text that reads back to the same settings without
//! warnings. Go durations and `host:port` addresses, the value syntaxes the reader adds, are
//! checked on the raw text too.

#![no_main]

use libfuzzer_sys::fuzz_target;
use p2p_types::HostPort;
use p2p_types::config::{GoDuration, NodeConfig};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };

    if let Ok((config, _warnings)) = NodeConfig::from_toml(text) {
        let written = config.to_toml();
        match NodeConfig::from_toml(&written) {
            Ok((again, warnings)) => {
                assert_eq!(again, config, "{written}");
                assert!(warnings.is_empty(), "{warnings:?}\n{written}");
            }
            Err(e) => panic!("written file does not read back: {e}\n{written}"),
        }
    }

    if let Ok(d) = text.parse::<GoDuration>() {
        let printed = d.to_string();
        assert_eq!(printed.parse::<GoDuration>(), Ok(d), "{printed}");
    }

    if let Ok(hp) = text.parse::<HostPort>() {
        let printed = hp.to_string();
        assert_eq!(printed.parse::<HostPort>().as_ref(), Ok(&hp), "{printed}");
    }
});
