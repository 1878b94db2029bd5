//! The HTTP endpoint: `/metrics` (Prometheus), `/status` (JSON), `/peers` (JSON), `/peers.txt`
//! and `/peers?format=list` (a comma-separated `id@ip:port` list for `persistent_peers`), each
//! `/peers` form also per chain (see [`respond`]).
//!
//! hyper 1 serves HTTP/1.1 without a framework; at most [`MAX_CONNECTIONS`] connections are
//! served at once (others wait in the kernel's backlog), a client gets [`HEADER_TIMEOUT`] to
//! send a request's headers, and each connection is closed after [`CONNECTION_TIMEOUT`], so
//! slow clients cannot hold the endpoint.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::status::{PeerEntry, Status};

/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 64;
/// Longest life of one connection.
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client has to send a request's headers (also between keep-alive requests).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(3);

/// What the endpoint shows, computed per request.
pub trait Source: Send + Sync + 'static {
    /// The Prometheus text of every chain.
    fn metrics(&self) -> String;
    /// The verified peers of `chain` (of every chain if `None`); `None` for an unknown chain.
    fn peers(&self, chain: Option<&str>) -> Option<Vec<PeerEntry>>;
    /// One status per chain.
    fn statuses(&self) -> Vec<Status>;
}

/// Answers one request:
///
/// - `/metrics`: every chain's metrics (OpenMetrics text);
/// - `/peers`: the verified addresses as JSON (`[{"chain_id", "id", "addr",
///   "last_success_secs_ago"}]`), `/peers.txt` or `/peers?format=list` as one
///   `id@ip:port,...` line for `persistent_peers`;
/// - one chain only: `/peers?chain=ID` (also with `&format=list`), `/ID/peers`,
///   `/ID/peers.txt`; an unknown chain is a 404;
/// - `/status`: the status of every chain as JSON.
pub fn respond(source: &dyn Source, path: &str, query: Option<&str>) -> Response<Full<Bytes>> {
    let text = |status: StatusCode, ct: &str, body: String| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = status;
        if let Ok(v) = hyper::header::HeaderValue::from_str(ct) {
            r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
        }
        r
    };
    // Query values and the `/ID/...` segment arrive percent-encoded (`?chain=my%20chain`); a
    // value that does not decode to UTF-8 is kept as sent (and so matches no chain).
    // In the query (form encoding) `+` is also a space; in the path it is itself.
    let decode = |v: &str, form: bool| -> String {
        let v = if form {
            v.replace('+', " ")
        } else {
            v.to_owned()
        };
        match percent_encoding::percent_decode_str(&v).decode_utf8() {
            Ok(d) => d.into_owned(),
            Err(_) => v,
        }
    };
    let params: Vec<(&str, String)> = query
        .unwrap_or_default()
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k, decode(v, true)))
        .collect();
    let param = |k: &str| {
        params
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.as_str())
    };
    let not_found = |what: String| {
        text(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            format!(
                "{what}: try /metrics, /status, /peers, /peers.txt, /peers?chain=ID, /ID/peers\n"
            ),
        )
    };
    // `/ID/peers[.txt]` is `/peers[.txt]?chain=ID`.
    let segment;
    let (path, chain) = match path.trim_start_matches('/').split_once('/') {
        Some((id, rest)) if !id.is_empty() && (rest == "peers" || rest == "peers.txt") => {
            segment = decode(id, false);
            (
                if rest == "peers" {
                    "/peers"
                } else {
                    "/peers.txt"
                },
                Some(segment.as_str()),
            )
        }
        _ => (path, param("chain")),
    };
    let list = param("format") == Some("list");
    match path {
        "/metrics" => text(
            StatusCode::OK,
            p2p_switch::metrics::CONTENT_TYPE,
            source.metrics(),
        ),
        "/status" => {
            let body = serde_json::to_string(&source.statuses()).unwrap_or_else(|_| "[]".into());
            text(StatusCode::OK, "application/json", body)
        }
        "/peers" | "/peers.txt" => {
            let Some(peers) = source.peers(chain) else {
                return not_found(format!("unknown chain {:?}", chain.unwrap_or_default()));
            };
            if path == "/peers" && !list {
                let body = serde_json::to_string(&peers).unwrap_or_else(|_| "[]".into());
                text(StatusCode::OK, "application/json", body)
            } else {
                let body: Vec<String> = peers.iter().map(PeerEntry::peer_address).collect();
                text(
                    StatusCode::OK,
                    "text/plain; charset=utf-8",
                    body.join(",") + "\n",
                )
            }
        }
        other => not_found(format!("not found: {other}")),
    }
}

/// Serves `source` on `listener` until `stop` resolves.
pub async fn serve(listener: TcpListener, source: Arc<dyn Source>, stop: impl Future<Output = ()>) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(stop);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p,
            () = &mut stop => return,
        };
        let Ok(permit) = permit else {
            return;
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::debug!(error = %e, "http accept");
                    continue;
                }
            },
            () = &mut stop => return,
        };
        let source = source.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let r = respond(&*source, req.uri().path(), req.uri().query());
                async move { Ok::<_, Infallible>(r) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            match tokio::time::timeout(CONNECTION_TIMEOUT, conn).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "http connection"),
                Err(_) => tracing::debug!(%peer, "http connection timed out"),
            }
            drop(permit);
        });
    }
}

/// Binds `addr`.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, crate::Error> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| crate::Error::Http { addr, source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    struct Empty;

    impl Source for Empty {
        fn metrics(&self) -> String {
            "# EOF\n".into()
        }
        fn peers(&self, _: Option<&str>) -> Option<Vec<PeerEntry>> {
            Some(Vec::new())
        }
        fn statuses(&self) -> Vec<Status> {
            Vec::new()
        }
    }

    /// Knows one chain, whose ID needs percent-encoding in a URL.
    struct OneChain;

    impl Source for OneChain {
        fn metrics(&self) -> String {
            String::new()
        }
        fn peers(&self, chain: Option<&str>) -> Option<Vec<PeerEntry>> {
            matches!(chain, None | Some("my chain/é+1")).then(Vec::new)
        }
        fn statuses(&self) -> Vec<Status> {
            Vec::new()
        }
    }

    #[test]
    fn chain_ids_are_percent_decoded() {
        let status = |path: &str, query: Option<&str>| respond(&OneChain, path, query).status();
        let ok = StatusCode::OK;
        let missing = StatusCode::NOT_FOUND;
        // Query: %-escapes and `+` for a space; a literal `+` must be escaped.
        assert_eq!(status("/peers", Some("chain=my%20chain%2F%C3%A9%2B1")), ok);
        assert_eq!(
            status("/peers", Some("chain=my+chain%2F%C3%A9%2B1&format=list")),
            ok
        );
        assert_eq!(status("/peers", Some("chain=my+chain%2F%C3%A9+1")), missing);
        // Path segment: `+` is itself, and the `/` inside the ID must be escaped.
        assert_eq!(status("/my%20chain%2F%C3%A9+1/peers", None), ok);
        assert_eq!(status("/my%20chain%2F%C3%A9+1/peers.txt", None), ok);
        // Not UTF-8 once decoded: kept as sent, so no chain matches.
        assert_eq!(status("/peers", Some("chain=%FF")), missing);
        assert_eq!(status("/peers", None), ok);
    }

    proptest::proptest! {
        /// Any path and query get an answer (200 or 404), never a panic.
        #[test]
        fn any_request_is_answered(path in "/[ -~]{0,40}", query in proptest::option::of("[ -~]{0,60}")) {
            let status = respond(&OneChain, &path, query.as_deref()).status();
            proptest::prop_assert!(status == StatusCode::OK || status == StatusCode::NOT_FOUND);
        }
    }

    /// A client that never finishes its headers is dropped after HEADER_TIMEOUT (virtual
    /// time), well before the connection's own limit; a well-behaved one is answered.
    #[tokio::test(start_paused = true)]
    async fn a_client_slow_with_its_headers_is_dropped() {
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, Arc::new(Empty), async move {
            let _ = stop_rx.await;
        }));

        let mut ok = tokio::net::TcpStream::connect(addr).await.unwrap();
        ok.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        ok.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("# EOF\n"), "{answer}");

        let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
        let started = tokio::time::Instant::now();
        slow.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        let mut rest = Vec::new();
        // The server gives up on the headers and closes (hyper may answer 408 first).
        let _ = slow.read_to_end(&mut rest).await;
        let waited = started.elapsed();
        assert!(
            waited >= HEADER_TIMEOUT && waited < CONNECTION_TIMEOUT,
            "closed after {waited:?}"
        );
        let _ = stop_tx.send(());
        server.await.unwrap();
    }
}
