//! What the server tells its operators about every request: a request id
//! (returned in `x-request-id`), a `tracing` span carrying the route, the
//! principal, the outcome and the duration, and Prometheus metrics. The
//! metric names are listed in `docs/deploy.md` ("What to monitor").
//!
//! Nothing secret is ever recorded: the span holds the route template
//! (`/v1/photos/{hash}`), never the query string, headers or body.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing::Instrument;

use super::AppState;
use super::frontend::Conn;

pub const REQUEST_ID: &str = "x-request-id";

/// Latency buckets (seconds) of every `*_seconds` histogram.
const SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// The process's Prometheus recorder, installed on first use (one per
/// process: every server in it reports into the same registry).
pub fn prometheus() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
                .ok()?
                .install_recorder()
                .map_err(|e| tracing::warn!("metrics recorder not installed: {e}"))
                .ok()?;
            metrics::gauge!("build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
            describe();
            Some(handle)
        })
        .as_ref()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "http_requests_total",
        "HTTP requests answered, by route, method and status"
    );
    describe_histogram!(
        "http_request_duration_seconds",
        "HTTP request latency, by route and method"
    );
    describe_counter!("sync_requests_total", "Device syncs answered");
    describe_counter!("sync_changes_pushed_total", "Changes devices pushed");
    describe_counter!(
        "sync_changes_total",
        "Pushed changes judged, by outcome (accepted, held, duplicate, reused, refused) and reason (forbidden, invalid, clock, …)"
    );
    describe_counter!("sync_changes_pulled_total", "Changes sent to devices");
    describe_histogram!(
        "sync_pull_lag_changes",
        "Changes a device was behind when it pulled (the page it got, plus more when more waits)"
    );
    describe_counter!("photo_bytes_in_total", "Photo bytes uploaded");
    describe_counter!("photo_bytes_out_total", "Photo and thumbnail bytes served");
    describe_gauge!(
        "photo_uploads_pending",
        "Photos devices still have to send (asked for at the last photos/needed)"
    );
    describe_gauge!(
        "db_pool_connections",
        "Database connections, by state (size, available, waiting)"
    );
    describe_histogram!(
        "db_transaction_seconds",
        "Database transaction time, by kind (write, snapshot, read)"
    );
    describe_histogram!("job_duration_seconds", "Job run time, by job");
    describe_counter!("job_runs_total", "Job runs, by job and outcome");
    describe_gauge!("console_sessions", "Console sessions open");
    describe_gauge!("admission_waiting", "Device requests waiting for a turn");
    describe_gauge!("build_info", "The server's version (value 1)");
}

/// The request id a response carries and the log lines share: a fresh
/// UUID (a client's own id is not trusted into our logs).
fn new_request_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Wraps every request: id, span, HSTS over HTTPS, metrics, one log line.
pub async fn observe(State(s): State<AppState>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "(unmatched)".into());
    let method = req.method().clone();
    let conn = req.extensions().get::<Conn>().copied();
    let frontend = s.front_door.frontend(conn, req.headers());
    let id = new_request_id();
    let span = tracing::info_span!(
        "request",
        id = %id,
        method = %method,
        route = %route,
        client = frontend.client.map(|c| c.to_string()).unwrap_or_default(),
        principal = tracing::field::Empty,
        status = tracing::field::Empty,
        ms = tracing::field::Empty,
    );
    let https = frontend.https;
    req.extensions_mut().insert(frontend);
    let mut resp = next.run(req).instrument(span.clone()).await;
    let status = resp.status();
    let elapsed = started.elapsed();
    span.record("status", status.as_u16());
    span.record("ms", elapsed.as_secs_f64() * 1000.0);
    span.in_scope(|| {
        if status.is_server_error() {
            tracing::warn!("answered");
        } else {
            tracing::info!("answered");
        }
    });
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(REQUEST_ID, v);
    }
    if https {
        resp.headers_mut().insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    // Label values come from a closed set: the route template, a known
    // method (a client inventing methods must not mint new series).
    let method_label = match method.as_str() {
        m @ ("GET" | "POST" | "PUT" | "DELETE" | "HEAD" | "PATCH" | "OPTIONS") => m,
        _ => "OTHER",
    };
    let labels = [("route", route), ("method", method_label.to_string())];
    metrics::counter!(
        "http_requests_total",
        &[
            ("route", labels[0].1.clone()),
            ("method", labels[1].1.clone()),
            ("status", status.as_u16().to_string()),
        ]
    )
    .increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels).record(elapsed.as_secs_f64());
    resp
}

/// Names who made the request in its span (called where the bearer token
/// or session was checked).
pub fn principal(name: &str) {
    tracing::Span::current().record("principal", name);
}

/// What one sync did, in metrics and in a log line of the request's span.
pub fn sync_done(
    device: &str,
    req_changes: usize,
    resp: &field_core::sync::protocol::SyncResponse,
    body_bytes: usize,
) {
    use field_core::sync::protocol::PushOutcome;
    metrics::counter!("sync_requests_total").increment(1);
    metrics::counter!("sync_changes_pushed_total").increment(req_changes as u64);
    let mut refused = 0;
    for r in &resp.push {
        let outcome = match r.outcome {
            PushOutcome::Refused => {
                refused += 1;
                "refused"
            }
            o => outcome_name(o),
        };
        let reason = match r.code {
            None => "",
            Some(403) => "forbidden",
            Some(400) => "invalid",
            Some(field_core::sync::protocol::CODE_RETRY_CLOCK) => "clock",
            Some(field_core::sync::protocol::CODE_REUSED) => "reused",
            Some(_) => "other",
        };
        metrics::counter!("sync_changes_total", "outcome" => outcome, "reason" => reason)
            .increment(1);
    }
    let pulled = resp.pull.changes.len();
    metrics::counter!("sync_changes_pulled_total").increment(pulled as u64);
    // Lag: what the device had yet to receive when it asked (a full page
    // with more waiting means at least that much again).
    let lag = pulled as f64 * if resp.pull.more { 2.0 } else { 1.0 };
    metrics::histogram!("sync_pull_lag_changes").record(lag);
    tracing::info!(
        device,
        pushed = req_changes,
        refused,
        pulled,
        bytes_in = body_bytes,
        "sync"
    );
}

fn outcome_name(o: field_core::sync::protocol::PushOutcome) -> &'static str {
    use field_core::sync::protocol::PushOutcome::*;
    match o {
        Accepted => "accepted",
        Held => "held",
        Duplicate => "duplicate",
        Refused => "refused",
        Reused => "reused",
    }
}
