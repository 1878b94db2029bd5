//! `cargo xtask bench [SUITE] [--json] [--quick]`: every figure is printed beside a reference
//! measured in the same run, with their ratio, because absolute times on shared machines mean
//! little. Each figure and each reference is the best of several runs (five; one with
//! `--quick`), measured in the same way.

mod mconn;
mod netem;
mod secretconn;
mod switch;
mod transport;

use std::process::ExitCode;
use std::time::Duration;

/// One figure compared with one reference: `ratio = value / reference_value`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Line {
    pub suite: &'static str,
    pub name: &'static str,
    pub value: f64,
    pub unit: &'static str,
    pub reference: &'static str,
    pub reference_value: f64,
    pub ratio: f64,
}

/// Collects and prints lines as they are measured.
pub struct Report {
    json: bool,
    lines: Vec<Line>,
}

impl Report {
    fn new(json: bool) -> Self {
        if !json {
            println!(
                "{:<11} {:<28} {:>14} {:<8} {:<25} {:>14} {:>7}",
                "suite", "figure", "value", "unit", "reference", "ref value", "ratio"
            );
        }
        Self {
            json,
            lines: Vec::new(),
        }
    }

    /// Records `value` against `reference`.
    pub fn line(
        &mut self,
        suite: &'static str,
        name: &'static str,
        value: f64,
        unit: &'static str,
        reference: &'static str,
        reference_value: f64,
    ) {
        let line = Line {
            suite,
            name,
            value,
            unit,
            reference,
            reference_value,
            ratio: if reference_value > 0.0 {
                value / reference_value
            } else {
                f64::NAN
            },
        };
        if self.json {
            println!("{}", serde_json::to_string(&line).unwrap_or_default());
        } else {
            println!(
                "{:<11} {:<28} {:>14.1} {:<8} {:<25} {:>14.1} {:>7.2}",
                line.suite,
                line.name,
                line.value,
                line.unit,
                line.reference,
                line.reference_value,
                line.ratio
            );
        }
        self.lines.push(line);
    }

    /// A reference that could not be measured here (printed to stderr, never as a figure).
    pub fn missing(&self, suite: &str, name: &str, reference: &str, why: &str) {
        eprintln!("bench: {suite}/{name} vs {reference}: not measured: {why}");
    }
}

/// Workload sizes.
#[derive(Clone, Copy, Debug)]
pub struct Scale {
    pub quick: bool,
}

impl Scale {
    /// Scales a byte count down in quick mode.
    pub fn bytes(self, full: usize) -> usize {
        if self.quick { full / 16 } else { full }
    }

    pub fn count(self, full: usize) -> usize {
        if self.quick {
            (full / 10).max(10)
        } else {
            full
        }
    }

    pub fn reps(self) -> usize {
        if self.quick { 1 } else { 5 }
    }
}

/// The best of a few repetitions of a rate measurement: the run least disturbed by whatever
/// else the machine was doing. Figures and references are aggregated the same way.
pub fn best(xs: Vec<f64>) -> f64 {
    xs.into_iter().fold(f64::NAN, f64::max)
}

/// A connected loopback TCP pair with Nagle off (and non-blocking, for tokio, if asked).
pub fn tcp_pair(nonblocking: bool) -> anyhow::Result<(std::net::TcpStream, std::net::TcpStream)> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    let a = std::net::TcpStream::connect(l.local_addr()?)?;
    let (b, _) = l.accept()?;
    for s in [&a, &b] {
        s.set_nodelay(true)?;
        s.set_nonblocking(nonblocking)?;
    }
    Ok((a, b))
}

/// A single-threaded tokio runtime with IO and time.
pub fn current_thread() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

pub fn mib_per_s(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / (1024.0 * 1024.0)
}

const SUITES: &[&str] = &["secretconn", "mconn", "transport", "switch"];

pub fn main(args: &[String]) -> anyhow::Result<ExitCode> {
    let mut json = false;
    let mut quick = false;
    let mut suites = Vec::new();
    for a in args {
        match a.as_str() {
            "--json" => json = true,
            "--quick" => quick = true,
            s if SUITES.contains(&s) => suites.push(s.to_owned()),
            other => anyhow::bail!("unknown bench option or suite {other:?} (suites: {SUITES:?})"),
        }
    }
    if suites.is_empty() {
        suites = SUITES.iter().map(|s| s.to_string()).collect();
    }
    let scale = Scale { quick };
    let mut report = Report::new(json);
    for s in &suites {
        match s.as_str() {
            "secretconn" => secretconn::run(&mut report, scale)?,
            "mconn" => mconn::run(&mut report, scale)?,
            "transport" => transport::run(&mut report, scale)?,
            "switch" => switch::run(&mut report, scale)?,
            _ => unreachable!("suite names are checked above"),
        }
    }
    Ok(ExitCode::SUCCESS)
}
