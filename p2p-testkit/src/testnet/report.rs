//! Run artefacts: summary JSON, SVG plots (peers over time, latency distribution) and the final
//! topology as Graphviz, plus the process's peak memory.

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;

use super::{Summary, TestnetError};

/// Peak resident set size of this process (`VmHWM` in `/proc/self/status`), if readable.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn write(path: &Path, text: &str) -> Result<(), TestnetError> {
    std::fs::write(path, text).map_err(|source| TestnetError::Report {
        path: path.display().to_string(),
        source,
    })
}

fn plot_err(path: &Path, e: impl std::fmt::Display) -> TestnetError {
    TestnetError::Plot {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// Writes `summary.json`, `peers.svg`, `latency.svg` and `topology.dot` into `dir`.
pub fn write_report(dir: &Path, summary: &Summary) -> Result<(), TestnetError> {
    std::fs::create_dir_all(dir).map_err(|source| TestnetError::Report {
        path: dir.display().to_string(),
        source,
    })?;
    let json = serde_json::to_string_pretty(summary).map_err(|e| TestnetError::Report {
        path: "summary.json".to_owned(),
        source: std::io::Error::other(e),
    })?;
    write(&dir.join("summary.json"), &json)?;

    let mut dot = String::from("digraph testnet {\n  node [shape=circle];\n");
    for (a, b) in &summary.edges {
        let _ = writeln!(dot, "  n{a} -> n{b};");
    }
    dot.push_str("}\n");
    write(&dir.join("topology.dot"), &dot)?;

    let peers = dir.join("peers.svg");
    plot_peers(&peers, summary).map_err(|e| plot_err(&peers, e))?;
    let lat = dir.join("latency.svg");
    plot_latency(&lat, summary).map_err(|e| plot_err(&lat, e))?;
    Ok(())
}

type PlotResult = Result<(), Box<dyn std::error::Error>>;

fn plot_peers(path: &Path, s: &Summary) -> PlotResult {
    let root = SVGBackend::new(path, (800, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let t_max = s.peer_series.last().map_or(1.0, |p| p.t_s).max(1.0);
    let y_max = s
        .peer_series
        .iter()
        .map(|p| p.max)
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption("Peers per node over time", ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(40)
        .build_cartesian_2d(0.0..t_max, 0.0..y_max + 1.0)?;
    chart
        .configure_mesh()
        .x_desc("seconds")
        .y_desc("peers")
        .draw()?;
    type Pick = fn(&super::PeerSample) -> f64;
    let series: [(&str, RGBColor, Pick); 3] = [
        ("min", RED, |p| p.min as f64),
        ("mean", BLUE, |p| p.mean),
        ("max", GREEN, |p| p.max as f64),
    ];
    for (name, color, f) in series {
        chart
            .draw_series(LineSeries::new(
                s.peer_series.iter().map(|p| (p.t_s, f(p))),
                color,
            ))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    chart.configure_series_labels().border_style(BLACK).draw()?;
    root.present()?;
    Ok(())
}

fn plot_latency(path: &Path, s: &Summary) -> PlotResult {
    let root = SVGBackend::new(path, (800, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    // Cumulative distribution of delivery latency.
    let n = s.latencies_us.len().max(1) as f64;
    let step = (s.latencies_us.len() / 2000).max(1);
    let points: Vec<(f64, f64)> = s
        .latencies_us
        .iter()
        .enumerate()
        .step_by(step)
        .map(|(i, &us)| (us as f64 / 1000.0, (i + 1) as f64 / n))
        .collect();
    let x_max = s.latency_max_ms.max(1.0);
    let mut chart = ChartBuilder::on(&root)
        .caption("Delivery latency (CDF)", ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(40)
        .build_cartesian_2d(0.0..x_max, 0.0..1.0)?;
    chart
        .configure_mesh()
        .x_desc("milliseconds")
        .y_desc("fraction delivered")
        .draw()?;
    chart.draw_series(LineSeries::new(points, BLUE))?;
    root.present()?;
    Ok(())
}
