//! The HTTP adapter: routes, the bearer-token extractor, and the one place
//! errors become responses. Handlers parse, call the service on a blocking
//! thread (SQLite), and serialise; nothing else.

mod admission;
mod auth;
mod console;
mod error;
mod routes;

use std::future::Future;

use axum::Router;
use tokio::net::TcpListener;

use crate::service::Center;

pub use admission::AdmissionState;
pub use error::AppError;

#[derive(Clone)]
pub struct AppState {
    pub center: Center,
    pub admission: admission::Admission,
}

/// The whole API as a router (tests can drive it without a socket).
pub fn app(center: Center) -> Router {
    routes::router(AppState {
        admission: admission::Admission::new(center.limits()),
        center,
    })
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
    use hyper_util::rt::{TokioIo, TokioTimer};
    use std::time::Duration;

    let limits = center.limits().clone();
    let app = app(center).layer((
        tower_http::timeout::RequestBodyTimeoutLayer::new(Duration::from_secs(
            limits.body_timeout_s,
        )),
        tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_secs(limits.request_timeout_s),
        ),
    ));
    let service = hyper_util::service::TowerToHyperService::new(app);
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
        let (stream, _) = tokio::select! {
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
        let conn = http.serve_connection(TokioIo::new(stream), service.clone());
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _ = conn.await;
            drop(permit);
        });
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
