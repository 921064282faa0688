//! What operators and their tools call: liveness, readiness, metrics, and
//! the front door that sends a browser to the console.

use axum::extract::State;
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use super::AppState;
use super::routes::blocking;

/// `/`: a browser goes to the console (its sign-in when signed out).
pub async fn front_door() -> Redirect {
    Redirect::to("/console/")
}

/// `/healthz`: the process is up and answering.
pub async fn healthz() -> &'static str {
    "ok\n"
}

#[derive(serde::Serialize)]
struct Readiness {
    ready: bool,
    database: String,
    blobs: String,
}

/// `/readyz`: the database answers at this build's schema and the photo
/// store is reachable; 503 naming what is not.
pub async fn readyz(State(s): State<AppState>) -> Response {
    let center = s.center.clone();
    let checked = blocking(move || {
        let storage = center.storage();
        let database = match storage.ready() {
            Ok(()) => "ok".to_string(),
            Err(e) => e.to_string(),
        };
        let blobs = match storage.blobs_ready() {
            Ok(()) => "ok".to_string(),
            Err(e) => e.to_string(),
        };
        Ok(Readiness {
            ready: database == "ok" && blobs == "ok",
            database,
            blobs,
        })
    })
    .await;
    match checked {
        Ok(r) if r.ready => (StatusCode::OK, axum::Json(r)).into_response(),
        Ok(r) => (StatusCode::SERVICE_UNAVAILABLE, axum::Json(r)).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `/metrics` on the main listener: the scraper's bearer token
/// (`metrics.token`) or the admin's.
pub async fn metrics(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let bearer = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    let scraper = match (&s.metrics_token, &bearer) {
        (Some(want), Some(got)) => {
            super::console::constant_time_eq(want.as_bytes(), got.as_bytes())
        }
        _ => false,
    };
    if !scraper {
        // Everyone else: the table in `service/authorize.rs` decides.
        let center = s.center.clone();
        let allowed = blocking(move || {
            let p = center.authenticate(bearer.as_deref())?;
            center.require(&p, crate::service::authorize::Operation::ReadMetrics)
        })
        .await;
        if let Err(e) = allowed {
            return e.into_response();
        }
    }
    render(&s).await
}

/// `/metrics` on the private metrics listener.
pub async fn metrics_open() -> Response {
    match super::observe::prometheus() {
        Some(h) => {
            h.run_upkeep();
            prometheus_text(h.render())
        }
        None => (StatusCode::SERVICE_UNAVAILABLE, "no metrics recorder\n").into_response(),
    }
}

async fn render(s: &AppState) -> Response {
    // Gauges read at scrape time.
    let center = s.center.clone();
    let _ = blocking(move || {
        let storage = center.storage();
        if let Ok(n) = storage.count_sessions(center.now()) {
            metrics::gauge!("console_sessions").set(n as f64);
        }
        if let Some(pool) = storage.pool() {
            metrics::gauge!("db_pool_connections", "state" => "size").set(pool.size as f64);
            metrics::gauge!("db_pool_connections", "state" => "available")
                .set(pool.available as f64);
            metrics::gauge!("db_pool_connections", "state" => "waiting").set(pool.waiting as f64);
        }
        Ok(())
    })
    .await;
    metrics::gauge!("admission_waiting").set(s.admission.state().waiting as f64);
    metrics_open().await
}

fn prometheus_text(body: String) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}
