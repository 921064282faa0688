//! Where a request is authenticated: the bearer token becomes a
//! `Principal`, or the request stops here with 401.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::{AppError, AppState};
use crate::storage::Principal;

/// An authenticated caller.
pub struct Auth(pub Principal);

impl FromRequestParts<AppState> for Auth {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Auth, AppError> {
        // Already authenticated on admission (device requests).
        if let Some(p) = parts.extensions.get::<Principal>() {
            return Ok(Auth(p.clone()));
        }
        let bearer = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_string);
        let center = state.center.clone();
        let principal =
            super::routes::blocking(move || center.authenticate(bearer.as_deref())).await?;
        super::observe::principal(&principal.label());
        Ok(Auth(principal))
    }
}
