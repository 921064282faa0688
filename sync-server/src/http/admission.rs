//! Admission of device requests (syncs, photo uploads): a server at
//! capacity says so instead of letting requests pile up past the client's
//! timeout. At most `max_concurrent_syncs` run at once; up to
//! `max_waiting_syncs` wait their turn, each for at most
//! `admission_wait_s`; anything more is answered at once with 503 and a
//! `Retry-After` estimated from the queue and the recent service time. A
//! device backs off with jitter and resumes (every round trip is
//! idempotent), so overload slows a city's sync down but fails no one.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tokio::sync::Semaphore;

use axum::extract::FromRequestParts;

use super::auth::Auth;
use super::{AppError, AppState};
use crate::config::Limits;

/// The queue of device requests, shared by every connection.
#[derive(Clone)]
pub struct Admission {
    inner: Arc<Inner>,
}

struct Inner {
    turns: Arc<Semaphore>,
    capacity: usize,
    max_waiting: usize,
    wait: Duration,
    waiting: AtomicUsize,
    /// Moving average of a request's service time, in ms.
    service_ms: AtomicU64,
    admitted: AtomicU64,
    shed: AtomicU64,
}

/// What the queue looks like now (`GET /v1/health`).
#[derive(Clone, Debug, Serialize)]
pub struct AdmissionState {
    pub running: usize,
    pub waiting: usize,
    pub capacity: usize,
    pub admitted_total: u64,
    /// Requests answered 503 because the server was at capacity.
    pub shed_total: u64,
}

impl Admission {
    pub fn new(limits: &Limits) -> Admission {
        let capacity = limits.max_concurrent_syncs.max(1);
        Admission {
            inner: Arc::new(Inner {
                turns: Arc::new(Semaphore::new(capacity)),
                capacity,
                max_waiting: limits.max_waiting_syncs,
                wait: Duration::from_secs(limits.admission_wait_s),
                waiting: AtomicUsize::new(0),
                service_ms: AtomicU64::new(200),
                admitted: AtomicU64::new(0),
                shed: AtomicU64::new(0),
            }),
        }
    }

    pub fn state(&self) -> AdmissionState {
        let i = &self.inner;
        AdmissionState {
            running: i.capacity - i.turns.available_permits(),
            waiting: i.waiting.load(Ordering::Relaxed),
            capacity: i.capacity,
            admitted_total: i.admitted.load(Ordering::Relaxed),
            shed_total: i.shed.load(Ordering::Relaxed),
        }
    }

    /// Seconds a turned-away request should wait: the queue ahead of it
    /// drained at the recent service rate, at least one.
    fn retry_after_s(&self) -> u64 {
        let i = &self.inner;
        let ahead = i.waiting.load(Ordering::Relaxed) + i.capacity;
        let ms = i.service_ms.load(Ordering::Relaxed) * ahead as u64 / i.capacity as u64;
        ms.div_ceil(1000).clamp(1, 120)
    }

    fn busy(&self, why: &str) -> Response {
        self.inner.shed.fetch_add(1, Ordering::Relaxed);
        let after = self.retry_after_s();
        let mut r = AppError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            None,
            format!("the server is at capacity ({why}); retry after {after} s"),
        )
        .into_response();
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(after));
        r
    }
}

/// The middleware: the caller authenticated first (an anonymous client
/// cannot hold a device's turn), then a turn, or 503 with `Retry-After`.
pub async fn admit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    match Auth::from_request_parts(&mut parts, &state).await {
        Ok(Auth(principal)) => {
            parts.extensions.insert(principal);
        }
        Err(e) => return e.into_response(),
    }
    let req = Request::from_parts(parts, body);
    let adm = &state.admission;
    let i = &adm.inner;
    let permit = match i.turns.clone().try_acquire_owned() {
        Ok(p) => p,
        Err(_) => {
            // Counted while waiting, uncounted however the wait ends (a
            // client that hangs up drops this future mid-wait).
            struct Waiting<'a>(&'a AtomicUsize);
            impl Drop for Waiting<'_> {
                fn drop(&mut self) {
                    self.0.fetch_sub(1, Ordering::SeqCst);
                }
            }
            let place = i.waiting.fetch_add(1, Ordering::SeqCst);
            let waiting = Waiting(&i.waiting);
            if place >= i.max_waiting {
                drop(waiting);
                return adm.busy("the waiting line is full");
            }
            let got = tokio::time::timeout(i.wait, i.turns.clone().acquire_owned()).await;
            drop(waiting);
            match got {
                Ok(Ok(p)) => p,
                _ => return adm.busy("no turn came within the admission wait"),
            }
        }
    };
    i.admitted.fetch_add(1, Ordering::Relaxed);
    let started = Instant::now();
    let resp = next.run(req).await;
    drop(permit);
    // An exponential moving average (1/8 weight to the newest).
    let took = started.elapsed().as_millis() as u64;
    let old = i.service_ms.load(Ordering::Relaxed);
    i.service_ms.store((old * 7 + took) / 8, Ordering::Relaxed);
    resp
}
