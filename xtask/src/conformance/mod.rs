//! `cargo xtask conformance`: our implementation against the Go reference, over real sockets.
//!
//! Each case starts the Go shim (`xtask/go`) in some mode and plays the other side with our
//! crates. One line per case (`PASS name (details)` or `FAIL name: reason`), then
//! `N passed, M failed`. If the Go reference cannot be built here, one loud line says so and
//! nothing counts as passed.

mod mconn;
mod secretconn;
mod transport;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use crate::shim::{self, GoStatus};

/// What a passing case reports (a short summary of what it checked).
pub type CaseResult = anyhow::Result<String>;
type CaseFn = fn(PathBuf) -> Pin<Box<dyn Future<Output = CaseResult> + Send>>;

/// A named conformance case.
pub struct Case {
    pub name: &'static str,
    pub run: CaseFn,
}

/// Every case, in run order.
fn all_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    cases.extend(secretconn::cases());
    cases.extend(mconn::cases());
    cases.extend(transport::cases());
    cases
}

const CASE_TIMEOUT: Duration = Duration::from_secs(180);

pub fn main(args: &[String]) -> anyhow::Result<ExitCode> {
    let mut filters = Vec::new();
    let mut list = false;
    let mut require_go = std::env::var("XTASK_REQUIRE_GO").is_ok_and(|v| v == "1");
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--test" => filters.push(
                it.next()
                    .ok_or_else(|| anyhow::anyhow!("--test needs a case name"))?
                    .clone(),
            ),
            "--list" => list = true,
            "--require-go" => require_go = true,
            other => anyhow::bail!("unknown conformance option {other:?}"),
        }
    }
    let cases: Vec<Case> = all_cases()
        .into_iter()
        .filter(|c| filters.is_empty() || filters.iter().any(|f| c.name.starts_with(f.as_str())))
        .collect();
    if list {
        for c in &cases {
            println!("{}", c.name);
        }
        return Ok(ExitCode::SUCCESS);
    }
    if cases.is_empty() {
        anyhow::bail!("no conformance case matches {filters:?} (see --list)");
    }

    eprintln!(
        "conformance: building the Go reference shim ({})...",
        shim::REFERENCE
    );
    let bin = match shim::build()? {
        GoStatus::Ready(bin) => bin,
        GoStatus::Unavailable(why) => {
            println!(
                "!!! CONFORMANCE NOT RUN: the Go reference is unavailable on this machine: {}",
                why.replace('\n', " | ")
            );
            println!("0 passed, 0 failed ({} not run)", cases.len());
            return Ok(if require_go {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            });
        }
    };

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (mut passed, mut failed) = (0usize, 0usize);
    for case in &cases {
        let started = Instant::now();
        let outcome = rt.block_on(run_case(case, &bin));
        let secs = started.elapsed().as_secs_f64();
        match outcome {
            Ok(summary) => {
                passed += 1;
                println!("PASS {} ({summary}; {secs:.1} s)", case.name);
            }
            Err(e) => {
                failed += 1;
                println!("FAIL {}: {e:#}", case.name);
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn run_case(case: &Case, bin: &Path) -> CaseResult {
    match tokio::time::timeout(CASE_TIMEOUT, (case.run)(bin.to_path_buf())).await {
        Ok(r) => r,
        Err(_) => anyhow::bail!("timed out after {CASE_TIMEOUT:?}"),
    }
}
