//! Project chores, run as `cargo xtask <command>`.
//!
//! - `cargo xtask conformance [--reference LINE|VERSION] [--test NAME]... [--list]
//!   [--require-go] [--go-test] [--pin]`: runs our crates against the Go reference over real
//!   sockets (CometBFT v0.38 by default, pinned in `xtask/go/go.mod`; the other lines in
//!   `xtask/go/lines/`).
//! - `cargo xtask shim [--reference LINE|VERSION]`: builds the Go reference program
//!   (`cometbft-shim`) as the conformance suite does and prints its absolute path (for
//!   `testnet --go-shim`).
//! - `cargo xtask bench [SUITE] [--json]`: benchmarks, each figure beside a reference measured in
//!   the same run.

#![forbid(unsafe_code)]
#![allow(missing_docs, unreachable_pub)]

mod bench;
mod conformance;
mod data;
mod shim;

use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  conformance [--reference LINE|VERSION] [--test NAME]... [--list] [--require-go]
              [--go-test] [--pin]
      Run the Rust implementation against the Go reference (CometBFT).
      --reference R  the CometBFT line or version to build the reference from: a line
                     (v0.37.x, v0.38.x, v0.40.x, v1.0.x: its pinned patch) or an exact
                     version (v0.38.21); default v0.38.x
      --test NAME    run only cases whose name starts with NAME (repeatable)
      --list         list the cases and exit
      --require-go   fail if the Go reference cannot be built (the default when CI=true;
                     also: XTASK_REQUIRE_GO=1)
      --go-test      first run the Go program's go test and selftest.sh against it
      --pin          with an exact version: make it the line's pinned patch (rewrites
                     the line's go.mod and go.sum under xtask/go)
  shim [--reference LINE|VERSION]
      Build the Go reference program (cometbft-shim) as the conformance suite does and
      print its absolute path on stdout (for `testnet --go-nodes K --go-shim PATH`, or
      COMETBFT_SHIM=PATH). --reference as for conformance; default v0.38.x.
  bench [SUITE] [--json] [--quick]
      Run benchmark suites (default: all). Suites: secretconn, mconn, transport.
      --json         one JSON object per figure
      --quick        smaller workloads (for smoke tests; figures are noisier)
";

/// `cargo xtask shim [--reference R]`: builds the shim and prints its absolute path.
fn shim_main(args: &[String]) -> anyhow::Result<ExitCode> {
    let mut reference: Option<&str> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--reference" => {
                let v = it.next().ok_or_else(|| {
                    anyhow::anyhow!("--reference needs a line or version, e.g. v0.38.x")
                })?;
                reference = Some(v);
            }
            other => anyhow::bail!("shim: unknown argument {other:?}\n\n{USAGE}"),
        }
    }
    let spec = match reference {
        Some(r) => shim::Spec::parse(r)?,
        None => shim::Spec::default(),
    };
    eprintln!(
        "shim: building the Go reference shim ({})...",
        spec.line.name
    );
    match shim::build_reference(&spec, false)? {
        shim::Status::Ready(r) => {
            eprintln!("shim: {}", r.describe());
            let path = std::fs::canonicalize(&r.bin).unwrap_or(r.bin);
            println!("{}", path.display());
            Ok(ExitCode::SUCCESS)
        }
        shim::Status::Unavailable(why) => {
            eprintln!("shim: the Go reference cannot be built here: {why}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((cmd, rest)) = args.split_first() else {
        eprint!("{USAGE}");
        return ExitCode::from(2);
    };
    let result = match cmd.as_str() {
        "conformance" => conformance::main(rest),
        "bench" => bench::main(rest),
        "shim" => shim_main(rest),
        "help" | "--help" | "-h" => {
            print!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        other => {
            eprintln!("unknown command {other:?}\n\n{USAGE}");
            Ok(ExitCode::from(2))
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
