//! Project chores, run as `cargo xtask <command>`.
//!
//! - `cargo xtask conformance [--test NAME]... [--list] [--require-go]`: runs our crates against
//!   the Go reference (CometBFT v0.38, pinned in `xtask/go/go.mod`) over real sockets.
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
  conformance [--test NAME]... [--list] [--require-go]
      Run the Rust implementation against the Go reference (CometBFT v0.38).
      --test NAME    run only cases whose name starts with NAME (repeatable)
      --list         list the cases and exit
      --require-go   fail if the Go reference cannot be built (also: XTASK_REQUIRE_GO=1)
  bench [SUITE] [--json] [--quick]
      Run benchmark suites (default: all). Suites: secretconn, mconn, transport.
      --json         one JSON object per figure
      --quick        smaller workloads (for smoke tests; figures are noisier)
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((cmd, rest)) = args.split_first() else {
        eprint!("{USAGE}");
        return ExitCode::from(2);
    };
    let result = match cmd.as_str() {
        "conformance" => conformance::main(rest),
        "bench" => bench::main(rest),
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
