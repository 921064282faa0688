//! The web console for center staff: server-rendered HTML (maud escapes
//! everything interpolated, so whatever a collector typed renders as
//! text) over the same service calls as the JSON API. One small script of
//! our own draws the city map from GeoJSON; no base-map tiles, nothing
//! fetched from the internet at run time, and a Content-Security-Policy
//! that allows only the console's own origin.

mod accounts;
mod actions;
mod case;
mod dashboard;
mod layout;
mod map;
mod queue;
mod reports;
mod session;

pub(crate) use session::constant_time_eq;
mod sign_in;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use axum::routing::{get, post};

use super::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console", get(sign_in::home))
        .route("/console/", get(sign_in::home))
        .route(
            "/console/sign-in",
            get(sign_in::sign_in_form).post(sign_in::sign_in),
        )
        .route("/console/sign-out", post(sign_in::sign_out))
        .route("/console/lang", get(sign_in::choose_lang))
        .route("/console/queue", get(queue::queue))
        .route("/console/cases/{id}", get(case::case_page))
        .route("/console/cases/{id}/decide", post(case::decide))
        .route("/console/photos/{hash}/thumb", get(case::thumb))
        .route("/console/map", get(map::map))
        .route("/console/map/data", get(map::map_data))
        .route("/console/assets/map.js", get(map::map_js))
        .route("/console/report", get(reports::report))
        .route(
            "/console/report.xlsx",
            reports::book_route(crate::http::workbooks::Book::Report),
        )
        .route(
            "/console/settlement.xlsx",
            reports::book_route(crate::http::workbooks::Book::Settlement),
        )
        .route("/console/cases.xlsx", get(queue::cases_xlsx))
        .route("/console/dashboard", get(dashboard::dashboard))
        .route("/console/dashboard/data", get(dashboard::dashboard_data))
        .route("/console/assets/dashboard.js", get(dashboard::dashboard_js))
        .route("/console/accounts", get(accounts::accounts))
        .layer(axum::middleware::map_response(secure_headers))
}

/// Scripts, styles, images and fetches from the console's own origin only
/// (inline styles allowed, inline scripts not); never framed.
async fn secure_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
             img-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    r
}
