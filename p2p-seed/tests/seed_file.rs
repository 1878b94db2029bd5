//! The multi-chain seed file: generated files read back to what was written (property), and
//! hostile ones (cut anywhere, oversized, odd values) are refused with an error, never a panic.

use std::path::Path;

use p2p_seed::config::{MAX_SEED_FILE_SIZE, SeedFile};
use proptest::prelude::*;

#[derive(Clone, Debug)]
struct Entry {
    home: String,
    chain_id: Option<String>,
    port: Option<u16>,
    seeds: Vec<(u8, u16)>,
}

fn entry() -> impl Strategy<Value = Entry> {
    (
        "[a-z][a-z0-9_-]{0,12}",
        proptest::option::of("[a-z][a-z0-9-]{0,10}"),
        proptest::option::of(1u16..),
        proptest::collection::vec((any::<u8>(), 1u16..), 0..3),
    )
        .prop_map(|(home, chain_id, port, seeds)| Entry {
            home,
            chain_id,
            port,
            seeds,
        })
}

fn render(entries: &[Entry], status: u32) -> String {
    let mut t = format!("status_interval = \"{status}s\"\n");
    for e in entries {
        t.push_str(&format!("[[chain]]\nhome = \"{}\"\n", e.home));
        if let Some(c) = &e.chain_id {
            t.push_str(&format!("chain_id = \"{c}\"\n"));
        }
        if let Some(p) = e.port {
            t.push_str(&format!("laddr = \"tcp://127.0.0.1:{p}\"\n"));
        }
        if !e.seeds.is_empty() {
            let list: Vec<String> = e
                .seeds
                .iter()
                .map(|(b, p)| format!("{}@10.0.0.{b}:{p}", format!("{b:02x}").repeat(20)))
                .collect();
            t.push_str(&format!("seeds = \"{}\"\n", list.join(",")));
        }
    }
    t
}

fn distinct(entries: &[Entry]) -> bool {
    entries.iter().enumerate().all(|(i, a)| {
        entries.iter().skip(i + 1).all(|b| {
            a.home != b.home
                && (a.chain_id.is_none() || a.chain_id != b.chain_id)
                && (a.port.is_none() || a.port != b.port)
        })
    })
}

proptest! {
    #[test]
    fn generated_files_read_back(entries in proptest::collection::vec(entry(), 1..6), status in 0u32..100_000) {
        let text = render(&entries, status);
        let base = Path::new("/base");
        match SeedFile::from_toml(&text, base) {
            Ok(f) => {
                prop_assert!(distinct(&entries));
                prop_assert_eq!(f.status_interval.as_secs(), u64::from(status));
                prop_assert_eq!(f.chains.len(), entries.len());
                for (c, e) in f.chains.iter().zip(&entries) {
                    prop_assert_eq!(&c.home, &base.join(&e.home));
                    prop_assert_eq!(&c.chain_id, &e.chain_id);
                    prop_assert_eq!(c.laddr.as_ref().map(|l| l.port()), e.port);
                    prop_assert_eq!(c.seeds.as_ref().map_or(0, Vec::len), e.seeds.len());
                }
            }
            Err(err) => {
                prop_assert!(!distinct(&entries), "{err}\n{text}");
                prop_assert!(err.to_string().contains("used twice"), "{err}");
            }
        }
    }

    #[test]
    fn a_file_cut_anywhere_is_an_error_or_a_prefix(cut in 0usize..400) {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/seed.toml"),
        ).unwrap();
        let cut = cut.min(text.len());
        let Some(prefix) = text.get(..cut) else { return Ok(()); };
        // Never panics; what reads has at most the full file's chains.
        if let Ok(f) = SeedFile::from_toml(prefix, Path::new(".")) {
            prop_assert!(f.chains.len() <= 2);
        }
    }
}

#[test]
fn the_example_file_reads() {
    let f =
        SeedFile::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/seed.toml")).unwrap();
    assert_eq!(f.chains.len(), 2);
    assert_eq!(f.chains[0].chain_id.as_deref(), Some("cosmoshub-4"));
    assert_eq!(f.chains[1].seeds.as_ref().map(Vec::len), Some(1));
}

#[test]
fn hostile_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.toml");
    std::fs::write(&big, "#".repeat(MAX_SEED_FILE_SIZE as usize + 1)).unwrap();
    let e = SeedFile::load(&big).unwrap_err().to_string();
    assert!(e.contains("more than"), "{e}");
    assert!(SeedFile::load(&dir.path().join("missing.toml")).is_err());
    for text in [
        "[[chain]]\nhome = 1\n",
        "[[chain]]\nhome = \"a\"\nchain_id = \"\"\n",
        "[[chain]]\nhome = \"a\"\nladdr = \"tcp://127.0.0.1:99999\"\n",
        "[[chain]]\nhome = \"a\"\nseeds = \"nothex@1.2.3.4:1\"\n",
        "chain = 3\n",
        "[[chain]]\nhome = \"a\"\n[[chain]]\nhome = \"b\"\nladdr = \"1.2.3.4:1\"\n[[chain]]\nhome = \"c\"\nladdr = \"1.2.3.4:1\"\n",
        "status_interval = \"1d\"\n[[chain]]\nhome = \"a\"\n",
        "\u{0}\u{1}",
    ] {
        assert!(
            SeedFile::from_toml(text, Path::new(".")).is_err(),
            "{text:?}"
        );
    }
}
