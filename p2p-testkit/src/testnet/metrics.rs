//! The metrics endpoint: node `i`'s switch metrics (the reference's names, rendered by
//! [`p2p_switch::metrics::render`]) served over HTTP at `http://127.0.0.1:<port + i>/metrics`,
//! one port per node as each CometBFT node has its own `prometheus_listen_addr`.
//!
//! One port per node rather than one endpoint with a `node` label: the switch renders a whole
//! registry, and the same metric families from several registries in one answer would repeat
//! their `# TYPE` lines, which Prometheus refuses. hyper 1 serves HTTP/1.1 without a
//! framework; at most [`MAX_CONNECTIONS`] connections per node are served at once, each closed
//! after [`CONNECTION_TIMEOUT`].

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::TestnetError;
use super::net::Registries;

/// Connections served at once per node.
pub const MAX_CONNECTIONS: usize = 16;
/// Longest life of one connection.
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);

/// The stop signal shared by the endpoint's tasks.
type Stop = tokio::sync::watch::Receiver<bool>;

/// The metrics endpoints of a testnet; they stop when this is dropped.
#[derive(Debug)]
pub struct MetricsServer {
    addrs: Vec<SocketAddr>,
    stop: tokio::sync::watch::Sender<bool>,
}

impl MetricsServer {
    /// Where node `i`'s metrics are, by index.
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

fn respond(registries: &Registries, node: usize, path: &str) -> Response<Full<Bytes>> {
    let text = |status: StatusCode, ct: &str, body: String| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = status;
        if let Ok(v) = hyper::header::HeaderValue::from_str(ct) {
            r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
        }
        r
    };
    if path != "/metrics" {
        return text(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "not found: try /metrics\n".into(),
        );
    }
    let body = {
        let regs = registries.read().unwrap_or_else(PoisonError::into_inner);
        regs.get(node).map(|r| p2p_switch::metrics::render(r))
    };
    match body {
        Some(body) => text(StatusCode::OK, p2p_switch::metrics::CONTENT_TYPE, body),
        None => text(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "no such node\n".into(),
        ),
    }
}

async fn serve(listener: TcpListener, registries: Registries, node: usize, mut stop: Stop) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p,
            _ = stop.changed() => return,
        };
        let Ok(permit) = permit else {
            return;
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::debug!(error = %e, "metrics accept");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        let registries = Arc::clone(&registries);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let r = respond(&registries, node, req.uri().path());
                async move { Ok::<_, Infallible>(r) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            match tokio::time::timeout(CONNECTION_TIMEOUT, conn).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "metrics connection"),
                Err(_) => tracing::debug!(%peer, "metrics connection timed out"),
            }
            drop(permit);
        });
    }
}

/// Binds `127.0.0.1:port + i` for every node and serves its metrics there (port 0: free
/// ports picked by the system, see [`MetricsServer::addrs`]).
pub(super) async fn start(
    port: u16,
    nodes: usize,
    registries: Registries,
) -> Result<MetricsServer, TestnetError> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut addrs = Vec::with_capacity(nodes);
    for i in 0..nodes {
        let p = if port == 0 {
            0
        } else {
            u16::try_from(i)
                .ok()
                .and_then(|i| port.checked_add(i))
                .ok_or_else(|| TestnetError::Config {
                    reason: format!("metrics port {port} + {nodes} nodes passes 65535"),
                })?
        };
        let addr = SocketAddr::from(([127, 0, 0, 1], p));
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| TestnetError::Io {
                what: format!("binding the metrics endpoint {addr}"),
                source,
            })?;
        let bound = listener.local_addr().map_err(|source| TestnetError::Io {
            what: format!("binding the metrics endpoint {addr}"),
            source,
        })?;
        addrs.push(bound);
        tokio::spawn(serve(listener, Arc::clone(&registries), i, stop_rx.clone()));
    }
    Ok(MetricsServer {
        addrs,
        stop: stop_tx,
    })
}
