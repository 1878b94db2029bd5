//! The TCP transport passes the transport conformance suite of `p2p-testkit`.

use p2p_testkit::conformance;
use p2p_transport::TcpTransport;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_transport_passes_the_suite() {
    let report = conformance::run(
        "127.0.0.1:0".parse().unwrap(),
        |key, info, config| async move { TcpTransport::new(key, info, config) },
    )
    .await
    .unwrap_or_else(|failure| panic!("{failure}"));
    assert_eq!(report.passed.len(), 8, "{report}");
}
