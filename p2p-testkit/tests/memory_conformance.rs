//! The in-memory transport passes the transport conformance suite, in virtual time.

use p2p_testkit::{conformance, memory::MemoryNetwork};

#[tokio::test(start_paused = true)]
async fn memory_transport_passes_the_suite() {
    let net = MemoryNetwork::new();
    let report = conformance::run("0.0.0.0:0".parse().unwrap(), |key, info, config| {
        let net = net.clone();
        async move { net.transport(key, info, config) }
    })
    .await
    .unwrap_or_else(|failure| panic!("{failure}"));
    assert_eq!(report.passed.len(), 8, "{report}");
    // Everything was closed: no listener left behind.
    assert!(net.listeners().is_empty(), "{:?}", net.listeners());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_transport_passes_the_suite_in_real_time_on_threads() {
    let net = MemoryNetwork::new();
    conformance::run("0.0.0.0:0".parse().unwrap(), |key, info, config| {
        let net = net.clone();
        async move { net.transport(key, info, config) }
    })
    .await
    .unwrap_or_else(|failure| panic!("{failure}"));
}
