//! The HTTP adapter: routes, the bearer-token extractor, and the one place
//! errors become responses. Handlers parse, call the service on a blocking
//! thread (SQLite), and serialise; nothing else.

mod admission;
mod auth;
mod console;
mod error;
pub mod frontend;
pub mod observe;
mod open311;
mod operations;
mod routes;
pub mod tls;
pub(crate) mod workbooks;

use std::future::Future;

use axum::Router;
use tokio::net::TcpListener;

use crate::service::Center;

pub use admission::AdmissionState;

/// The language a caller's `Accept-Language` asks for among those the
/// product speaks (Chinese when none or none spoken).
pub fn accepted_lang(headers: &axum::http::HeaderMap) -> field_i18n::Lang {
    headers
        .get(axum::http::header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .map(field_i18n::Lang::negotiate)
        .unwrap_or_default()
}
pub use error::AppError;

#[derive(Clone)]
pub struct AppState {
    pub center: Center,
    pub admission: admission::Admission,
    /// Which forwarding headers to believe, and the public URL.
    pub front_door: std::sync::Arc<frontend::FrontDoor>,
    /// The bearer a Prometheus scraper presents (else the admin token).
    pub metrics_token: Option<std::sync::Arc<str>>,
}

/// How the server is put on the network, beyond its listener.
#[derive(Clone, Default)]
pub struct Serving {
    /// Terminate TLS with these files (reloadable).
    pub tls: Option<std::sync::Arc<tls::TlsFiles>>,
    pub front_door: frontend::FrontDoor,
    pub metrics_token: Option<String>,
}

/// The whole API as a router (tests can drive it without a socket).
pub fn app(center: Center) -> Router {
    app_with(center, &Serving::default())
}

fn app_with(center: Center, serving: &Serving) -> Router {
    observe::prometheus();
    let state = AppState {
        admission: admission::Admission::new(center.limits()),
        center,
        front_door: std::sync::Arc::new(serving.front_door.clone()),
        metrics_token: serving.metrics_token.as_deref().map(std::sync::Arc::from),
    };
    routes::router(state.clone())
        // Request bodies may come gzipped (devices send a day's track so);
        // the body limits apply to the bytes after decompression, so a
        // small bomb is refused like a large body. Other encodings: 415.
        .layer(tower_http::decompression::RequestDecompressionLayer::new())
        .layer(axum::middleware::from_fn_with_state(
            state,
            observe::observe,
        ))
}

/// Serves only `/metrics`, without a token, until `shutdown` resolves: for
/// a listener on a private interface (`metrics.listen`).
pub async fn serve_metrics(
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    observe::prometheus();
    let app = Router::new().route("/metrics", axum::routing::get(operations::metrics_open));
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Serves until `shutdown` resolves, then finishes in-flight requests
/// (for at most `DRAIN`, then gives up on them).
///
/// Every connection is bounded: headers (and an idle keep-alive wait) within
/// `header_timeout_s`, bodies within `body_timeout_s`, handlers within
/// `request_timeout_s`, and at most `max_connections` open at once.
pub async fn run(
    listener: TcpListener,
    center: Center,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve(listener, center, Serving::default(), shutdown).await
}

/// Connections waiting to be accepted, at most (the kernel caps it at
/// `net.core.somaxconn`). Tokio's default of 1,024 is less than a city's
/// handsets syncing at once: past it a handshake the kernel completed is
/// dropped, and the handset's request times out after minutes instead of
/// being answered "busy".
pub const LISTEN_BACKLOG: u32 = 8192;

/// A listening socket on `addr` with room for [`LISTEN_BACKLOG`] waiting
/// connections.
pub fn listen(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// [`run`], put on the network as `serving` says (TLS, a proxy in front).
pub async fn serve(
    listener: TcpListener,
    center: Center,
    serving: Serving,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use std::time::Duration;

    let limits = center.limits().clone();
    let app = app_with(center, &serving).layer((
        tower_http::timeout::RequestBodyTimeoutLayer::new(Duration::from_secs(
            limits.body_timeout_s,
        )),
        tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_secs(limits.request_timeout_s),
        ),
    ));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(limits.header_timeout_s.max(1)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait, keep serving.
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let info = frontend::Conn {
            peer,
            tls: serving.tls.is_some(),
        };
        // Each request learns its connection's facts (peer, TLS).
        let service = hyper_util::service::TowerToHyperService::new(
            tower::ServiceBuilder::new()
                .map_request(move |mut req: hyper::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(info);
                    req
                })
                .service(app.clone()),
        );
        match &serving.tls {
            None => {
                let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
                tokio::spawn(async move {
                    let _ = conn.await;
                    drop(permit);
                });
            }
            Some(files) => {
                let acceptor = files.acceptor();
                let http = http.clone();
                let watcher = graceful.watcher();
                let handshake = Duration::from_secs(limits.header_timeout_s.max(1));
                tokio::spawn(async move {
                    // A client that never finishes its handshake holds a
                    // slot no longer than a slow header would.
                    let stream =
                        match tokio::time::timeout(handshake, acceptor.accept(stream)).await {
                            Ok(Ok(s)) => s,
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, "TLS handshake failed: {e}");
                                return;
                            }
                            Err(_) => return,
                        };
                    let conn = watcher.watch(http.serve_connection(TokioIo::new(stream), service));
                    let _ = conn.await;
                    drop(permit);
                });
            }
        }
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("gave up on requests still running after {DRAIN:?}");
    }
    Ok(())
}

/// How long a stopping server waits for requests in flight.
pub const DRAIN: std::time::Duration = std::time::Duration::from_secs(10);
