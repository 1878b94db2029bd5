//! `cargo xtask conformance`: our implementation against the Go reference, over real sockets.
//!
//! Each case starts the Go shim (`xtask/go`) in some mode and plays the other side with our
//! crates. One line per case (`PASS name (details)` or `FAIL name: reason`), then
//! `N passed, M failed`. If the Go reference cannot be built here, one loud line says so and
//! nothing counts as passed; that is a failure (non-zero exit) in CI (`CI=true`), with
//! `--require-go` or with `XTASK_REQUIRE_GO=1`.
//!
//! `--reference` picks the CometBFT line (or exact version) to build the shim against; see
//! [`shim::LINES`] for what differs between lines. The cases read the built reference's
//! announced versions and defaults from [`shim::reference`] instead of assuming v0.38's.
//!
//! Cases with real-time bounds (see [`TIMING_CASES`]) are retried once when they fail, and
//! both attempts are reported: on a loaded machine a 100 ms bound can be missed for reasons
//! outside both implementations, while a real defect fails both attempts.

mod config;
mod mconn;
mod pex;
mod secretconn;
mod seed;
mod switch;
mod transport;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::shim::{self, Spec, Status};

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
    cases.extend(switch::cases());
    cases.extend(pex::cases());
    cases.extend(seed::cases());
    cases.extend(config::cases());
    cases
}

/// Name prefixes of the cases whose checks include real-time bounds (200 ms pings and 100 ms
/// pong timeouts on both sides, rate windows, timeout latencies). A failure of one of these is
/// retried once; both attempts are printed.
pub const TIMING_CASES: &[&str] = &[
    "mconn/rust-dials-go/",
    "mconn/go-dials-rust/",
    "mconn/rust-pong-timeout-vs-silent-go",
    "mconn/go-pong-timeout-vs-silent-rust",
    "mconn/rust-send-rate-vs-go",
    "mconn/rust-recv-rate-vs-go",
    "mconn/rust-slow-consumer-keeps-keepalive",
];

fn is_timing_case(name: &str) -> bool {
    TIMING_CASES.iter().any(|p| name.starts_with(p))
}

const CASE_TIMEOUT: Duration = Duration::from_secs(180);

/// The options of `cargo xtask conformance`.
#[derive(Default)]
struct Options {
    filters: Vec<String>,
    list: bool,
    require_go: bool,
    reference: Option<String>,
    pin: bool,
    go_test: bool,
}

fn parse(args: &[String]) -> anyhow::Result<Options> {
    // CI (which sets CI=true) has Go: there a reference that cannot be built is a failure.
    let mut o = Options {
        require_go: std::env::var("XTASK_REQUIRE_GO").is_ok_and(|v| v == "1")
            || std::env::var("CI").is_ok_and(|v| v == "true"),
        ..Options::default()
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |what: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| anyhow::anyhow!("{a} needs {what}"))
        };
        match a.as_str() {
            "--test" => o.filters.push(value("a case name")?),
            "--reference" => o.reference = Some(value("a line or version, e.g. v0.37.x")?),
            "--list" => o.list = true,
            "--require-go" => o.require_go = true,
            "--pin" => o.pin = true,
            "--go-test" => o.go_test = true,
            other => anyhow::bail!("unknown conformance option {other:?}"),
        }
    }
    Ok(o)
}

pub fn main(args: &[String]) -> anyhow::Result<ExitCode> {
    let o = parse(args)?;
    let spec = match &o.reference {
        Some(r) => Spec::parse(r)?,
        None => Spec::default(),
    };
    anyhow::ensure!(
        !o.pin || spec.exact.is_some(),
        "--pin needs an exact version, e.g. --reference v0.38.27 --pin"
    );
    let cases: Vec<Case> = all_cases()
        .into_iter()
        .filter(|c| {
            o.filters.is_empty() || o.filters.iter().any(|f| c.name.starts_with(f.as_str()))
        })
        .collect();
    if o.list {
        for c in &cases {
            println!("{}", c.name);
        }
        return Ok(ExitCode::SUCCESS);
    }
    if cases.is_empty() {
        anyhow::bail!("no conformance case matches {:?} (see --list)", o.filters);
    }

    let what = spec
        .exact
        .clone()
        .unwrap_or_else(|| format!("{}.x", spec.line.name));
    eprintln!(
        "conformance: building the Go reference shim against {} {what}...",
        shim::MODULE
    );
    let reference = match shim::build_reference(&spec, o.pin)? {
        Status::Ready(r) => r,
        Status::Unavailable(why) => {
            println!(
                "!!! CONFORMANCE NOT RUN: the Go reference ({} {what}) is unavailable on this \
                 machine: {}",
                shim::MODULE,
                why.replace('\n', " | ")
            );
            println!("0 passed, 0 failed ({} not run)", cases.len());
            return Ok(if o.require_go {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            });
        }
    };
    println!("reference: {}", reference.describe());
    for w in &reference.warnings {
        println!("!!! warning: {w}; the cases follow the binary");
    }
    let bin = reference.bin.clone();
    if o.go_test {
        go_checks(&reference)?;
    }
    shim::set_reference(reference)?;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (mut passed, mut failed) = (0usize, 0usize);
    let mut second_tries = Vec::new();
    for case in &cases {
        let mut outcome = attempt(&rt, case, &bin);
        if let (Err(first), true) = (&outcome.0, is_timing_case(case.name)) {
            let first = format!("{first:#}");
            println!(
                "RETRY {} (a timing case; first attempt failed after {:.1} s: {first})",
                case.name, outcome.1
            );
            outcome = attempt(&rt, case, &bin);
            outcome.0 = match outcome.0 {
                Ok(summary) => {
                    second_tries.push(case.name);
                    Ok(format!(
                        "{summary}; second attempt, the first failed: {first}"
                    ))
                }
                Err(e) => Err(e.context(format!("second attempt; the first failed: {first}"))),
            };
        }
        match outcome {
            (Ok(summary), secs) => {
                passed += 1;
                println!("PASS {} ({summary}; {secs:.1} s)", case.name);
            }
            (Err(e), _) => {
                failed += 1;
                println!("FAIL {}: {e:#}", case.name);
            }
        }
    }
    if !second_tries.is_empty() {
        println!(
            "!!! {} timing case(s) passed only on the second attempt: {}",
            second_tries.len(),
            second_tries.join(", ")
        );
    }
    println!("{passed} passed, {failed} failed");
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// One run of `case`, with how long it took.
fn attempt(rt: &tokio::runtime::Runtime, case: &Case, bin: &Path) -> (CaseResult, f64) {
    let started = Instant::now();
    let r = rt.block_on(run_case(case, bin));
    (r, started.elapsed().as_secs_f64())
}

async fn run_case(case: &Case, bin: &Path) -> CaseResult {
    match tokio::time::timeout(CASE_TIMEOUT, (case.run)(bin.to_path_buf())).await {
        Ok(r) => r,
        Err(_) => anyhow::bail!("timed out after {CASE_TIMEOUT:?}"),
    }
}

/// `--go-test`: the Go program's unit tests and its Go-to-Go self-test, against the built
/// reference (in its build directory, with its build tag).
fn go_checks(r: &shim::Reference) -> anyhow::Result<()> {
    let dir = r
        .bin
        .parent()
        .and_then(Path::parent)
        .context("the shim binary has no build directory")?;
    let mut test = std::process::Command::new("go");
    test.arg("test").arg("-count=1");
    if let Some(tag) = r.line.build_tag {
        test.args(["-tags", tag]);
    }
    test.arg("./...")
        .current_dir(dir)
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "-mod=readonly -buildvcs=false");
    eprintln!("conformance: go test in {}", dir.display());
    let status = test.status().context("running go test")?;
    anyhow::ensure!(status.success(), "go test against {} failed", r.module);
    let selftest = shim::go_dir().join("selftest.sh");
    eprintln!(
        "conformance: {} with {}",
        selftest.display(),
        r.bin.display()
    );
    let status = std::process::Command::new("bash")
        .arg(&selftest)
        .env("SHIM_BIN", &r.bin)
        .env("GOTOOLCHAIN", "local")
        .status()
        .context("running selftest.sh")?;
    anyhow::ensure!(status.success(), "selftest.sh against {} failed", r.module);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_timing_prefix_names_a_case() {
        let cases = all_cases();
        for p in TIMING_CASES {
            assert!(
                cases.iter().any(|c| c.name.starts_with(p)),
                "{p} matches no case"
            );
        }
        assert!(!is_timing_case("secretconn/rust-dials-go/rust-drives"));
        assert!(is_timing_case("mconn/go-dials-rust/go-drives"));
    }

    #[test]
    fn options_parse() {
        let args: Vec<String> = ["--reference", "v1.0.x", "--test", "mconn/", "--go-test"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let o = parse(&args).map_err(|e| e.to_string());
        assert!(
            o.as_ref()
                .is_ok_and(|o| o.reference.as_deref() == Some("v1.0.x")
                    && o.filters == ["mconn/"]
                    && o.go_test
                    && !o.pin)
        );
        assert!(parse(&["--reference".to_owned()]).is_err());
        assert!(parse(&["--bogus".to_owned()]).is_err());
    }
}
