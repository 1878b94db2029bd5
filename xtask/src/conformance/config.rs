//! `config.toml` against the reference: the file a reference node writes by default (shim
//! mode `config`, `config.WriteConfigFile` of `config.DefaultConfig()`) parses, with no
//! warning, to our `NodeConfig::default()`, except for what the reference derives from the
//! machine (the moniker is the host name) and the line's flush throttle (v0.40 and v1.0 lowered
//! it to 10 ms).

use std::path::PathBuf;

use anyhow::{anyhow, ensure};
use p2p_types::config::NodeConfig;

use super::pex::Scratch;
use super::{Case, CaseResult};
use crate::shim::{self, Shim};

pub(super) fn cases() -> Vec<Case> {
    vec![Case {
        name: "config/reference-default-config-parses-to-our-defaults",
        run: |bin| Box::pin(reference_default(bin)),
    }]
}

async fn reference_default(bin: PathBuf) -> CaseResult {
    let dir = Scratch::new("config")?;
    let out = dir.arg("config.toml");
    let shim = Shim::spawn(&bin, "config", &["--out".to_owned(), out.clone()])?;
    shim.expect_done(std::time::Duration::from_secs(30)).await?;
    let text = std::fs::read_to_string(&out)?;
    let (ours, warnings) = NodeConfig::from_toml(&text).map_err(|e| anyhow!("{e}"))?;
    ensure!(
        warnings.is_empty(),
        "the reference's own file gave warnings: {warnings:?}"
    );
    let reference = shim::reference()?;
    let mut expected = NodeConfig::default();
    expected.moniker(ours.moniker.clone());
    expected
        .p2p
        .flush_throttle_timeout(reference.flush_throttle);
    if ours != expected {
        let (a, b) = (format!("{ours:#?}"), format!("{expected:#?}"));
        let diff: Vec<String> = a
            .lines()
            .zip(b.lines())
            .filter(|(x, y)| x != y)
            .map(|(x, y)| format!("{} (ours by default: {})", x.trim(), y.trim()))
            .collect();
        anyhow::bail!(
            "the reference's defaults differ from ours: {}",
            diff.join("; ")
        );
    }
    Ok(format!(
        "{} bytes of {}'s default config.toml: every [p2p] value and the rest as our defaults (flush throttle {:?}), no warning",
        text.len(),
        reference.module,
        reference.flush_throttle
    ))
}
