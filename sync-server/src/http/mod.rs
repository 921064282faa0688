//! The HTTP adapter: routes, the bearer-token extractor, and the one place
//! errors become responses. Handlers parse, call the service on a blocking
//! thread (SQLite), and serialise; nothing else.

mod auth;
mod console;
mod error;
mod routes;

use std::future::Future;

use axum::Router;
use tokio::net::TcpListener;

use crate::service::Center;

pub use error::AppError;

#[derive(Clone)]
pub struct AppState {
    pub center: Center,
    pub sessions: console::Sessions,
}

/// The whole API as a router (tests can drive it without a socket).
pub fn app(center: Center) -> Router {
    routes::router(AppState {
        center,
        sessions: console::Sessions::default(),
    })
}

/// Serves until `shutdown` resolves, then finishes in-flight requests.
pub async fn run(
    listener: TcpListener,
    center: Center,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(center))
        .with_graceful_shutdown(shutdown)
        .await
}
