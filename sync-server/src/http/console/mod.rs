//! The web console for center staff: server-rendered HTML (maud escapes
//! everything interpolated, so whatever a collector typed renders as
//! text) over the same service calls as the JSON API. No script, no
//! base-map tiles, nothing fetched from the internet at run time.

mod pages;
mod session;

use axum::Router;
use axum::routing::{get, post};

pub use session::Sessions;

use super::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console", get(pages::home))
        .route("/console/", get(pages::home))
        .route(
            "/console/sign-in",
            get(pages::sign_in_form).post(pages::sign_in),
        )
        .route("/console/sign-out", post(pages::sign_out))
        .route("/console/queue", get(pages::queue))
        .route("/console/cases/{id}", get(pages::case_page))
        .route("/console/cases/{id}/decide", post(pages::decide))
        .route("/console/photos/{hash}/thumb", get(pages::thumb))
        .route("/console/map", get(pages::map))
        .route("/console/report", get(pages::report))
}
