//! A third transport, over Unix domain sockets (`p2p_testkit::unix::UnixTransport`, written
//! the way any user would write a custom transport), run through the transport conformance
//! suite of `p2p-testkit`.
//!
//! ```sh
//! cargo run -p p2p-testkit --example unix_transport
//! ```

use p2p_testkit::unix::UnixTransport;

/// Runs the conformance suite against the Unix-socket transport in a fresh directory.
async fn run_suite() -> Result<p2p_testkit::conformance::Report, Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("p2p-unix-transport-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = p2p_testkit::conformance::run("127.0.0.1:0".parse()?, |key, info, config| {
        let dir = dir.clone();
        async move { UnixTransport::new(&dir, key, info, config) }
    })
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(result?)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let report = run_suite().await?;
    println!("Unix-socket transport: {report}");
    Ok(())
}

#[cfg(test)]
mod tests {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unix_transport_passes_the_suite() {
        let report = super::run_suite().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(report.passed.len(), 8, "{report}");
    }
}
