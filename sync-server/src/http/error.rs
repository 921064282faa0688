//! Errors to responses, in one place: every refusal is a 4xx with a JSON
//! body naming the field and the reason.

use axum::Json;
use axum::extract::rejection::{BytesRejection, JsonRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use field_core::sync::protocol::ErrorBody;

use crate::service::ServiceError;

#[derive(Debug)]
pub struct AppError {
    pub status: StatusCode,
    pub body: ErrorBody,
}

impl AppError {
    pub fn new(
        status: StatusCode,
        error: &str,
        field: Option<String>,
        reason: impl Into<String>,
    ) -> AppError {
        AppError {
            status,
            body: ErrorBody {
                error: error.into(),
                field,
                reason: reason.into(),
            },
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

impl From<ServiceError> for AppError {
    fn from(e: ServiceError) -> AppError {
        match e {
            ServiceError::Unauthorized(r) => {
                AppError::new(StatusCode::UNAUTHORIZED, "unauthorized", None, r)
            }
            ServiceError::Forbidden(r) => {
                AppError::new(StatusCode::FORBIDDEN, "forbidden", None, r)
            }
            ServiceError::Invalid { field, reason } => {
                AppError::new(StatusCode::BAD_REQUEST, "invalid", Some(field), reason)
            }
            ServiceError::TooLarge(r) => {
                AppError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", None, r)
            }
            ServiceError::RateLimited { reason, .. } => {
                AppError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", None, reason)
            }
            ServiceError::NotFound(r) => AppError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                None,
                format!("{r} not found"),
            ),
            ServiceError::Internal(r) => {
                tracing::error!("internal error: {r}");
                AppError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    None,
                    "internal error; see the server log",
                )
            }
        }
    }
}

fn body_error(status: StatusCode, text: String) -> AppError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        AppError::new(status, "too_large", None, text)
    } else {
        AppError::new(
            StatusCode::BAD_REQUEST,
            "invalid",
            Some("body".into()),
            text,
        )
    }
}

impl From<JsonRejection> for AppError {
    fn from(r: JsonRejection) -> AppError {
        // serde's message names the path and the problem
        // ("push[0].op: unknown field `x`", "missing field `pull`").
        body_error(r.status(), r.body_text())
    }
}

impl From<BytesRejection> for AppError {
    fn from(r: BytesRejection) -> AppError {
        body_error(r.status(), r.body_text())
    }
}

impl From<QueryRejection> for AppError {
    fn from(r: QueryRejection) -> AppError {
        AppError::new(
            StatusCode::BAD_REQUEST,
            "invalid",
            Some("query".into()),
            r.body_text(),
        )
    }
}
