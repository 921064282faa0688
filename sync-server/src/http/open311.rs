//! Open311 GeoReport v2 at `/open311/v2/`: the city's catalog as services,
//! citizens' requests posted by channels (a form with `api_key`) and read
//! back by id or token, each in JSON or XML as the path's extension says.
//! Errors are GeoReport's own shape (`[{code, description}]`), a channel
//! past its allowance gets 429 with `Retry-After`. Bodies are bounded by the
//! server's request limit; every field by its own bound (see the service).

use axum::Form;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use field_i18n::Lang;
use serde::{Deserialize, Serialize};

use super::AppState;
use crate::service::{Center, NewRequest, RequestStatus, ServiceError};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Xml,
}

impl Format {
    fn of(ext: &str) -> Option<Format> {
        match ext {
            "json" => Some(Format::Json),
            "xml" => Some(Format::Xml),
            _ => None,
        }
    }
}

/// `name.json` / `name.xml` → the name and the format.
fn split(file: &str) -> Option<(&str, Format)> {
    let (name, ext) = file.rsplit_once('.')?;
    Some((name, Format::of(ext)?))
}

#[derive(Serialize)]
struct Service {
    service_code: String,
    service_name: String,
    description: String,
    metadata: bool,
    #[serde(rename = "type")]
    kind: &'static str,
    keywords: String,
    group: String,
}

#[derive(Serialize)]
#[serde(rename = "services")]
struct Services {
    service: Vec<Service>,
}

#[derive(Serialize)]
#[serde(rename = "service_definition")]
struct Definition {
    service_code: String,
    attributes: Vec<()>,
}

#[derive(Serialize)]
struct Receipt {
    service_request_id: String,
    token: String,
    service_notice: String,
    account_id: String,
}

#[derive(Serialize)]
#[serde(rename = "service_requests")]
struct Receipts {
    request: Vec<Receipt>,
}

#[derive(Serialize)]
#[serde(rename = "service_requests")]
struct Requests {
    request: Vec<RequestStatus>,
}

#[derive(Serialize)]
struct TokenAnswer {
    service_request_id: String,
    token: String,
}

#[derive(Serialize)]
#[serde(rename = "service_requests")]
struct TokenAnswers {
    request: Vec<TokenAnswer>,
}

#[derive(Serialize)]
struct GeoError {
    code: u16,
    description: String,
}

#[derive(Serialize)]
#[serde(rename = "errors")]
struct GeoErrors {
    error: Vec<GeoError>,
}

fn xml<T: Serialize>(value: &T) -> Response {
    match quick_xml::se::to_string(value) {
        Ok(body) => (
            [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
            format!("<?xml version=\"1.0\" encoding=\"utf-8\"?>{body}"),
        )
            .into_response(),
        Err(e) => {
            tracing::error!("open311 xml: {e}");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// The body in the format asked for: JSON is the list GeoReport expects.
fn answer<T: Serialize, X: Serialize>(f: Format, json: &T, wrapped: X) -> Response {
    match f {
        Format::Json => axum::Json(json).into_response(),
        Format::Xml => xml(&wrapped),
    }
}

fn error(f: Format, status: StatusCode, description: String, retry_after: Option<u64>) -> Response {
    let e = GeoError {
        code: status.as_u16(),
        description,
    };
    let mut r = match f {
        Format::Json => axum::Json(vec![e]).into_response(),
        Format::Xml => xml(&GeoErrors { error: vec![e] }),
    };
    *r.status_mut() = status;
    if let Some(s) = retry_after
        && let Ok(v) = header::HeaderValue::from_str(&s.to_string())
    {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

fn failed(f: Format, e: ServiceError) -> Response {
    let (status, retry) = match &e {
        ServiceError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, None),
        ServiceError::Forbidden(_) => (StatusCode::FORBIDDEN, None),
        ServiceError::Invalid { .. } => (StatusCode::BAD_REQUEST, None),
        ServiceError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, None),
        ServiceError::NotFound(_) => (StatusCode::NOT_FOUND, None),
        ServiceError::RateLimited { retry_after_s, .. } => {
            (StatusCode::TOO_MANY_REQUESTS, Some(*retry_after_s))
        }
        ServiceError::Internal(r) => {
            tracing::error!("open311: {r}");
            return error(
                f,
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error".into(),
                None,
            );
        }
    };
    error(f, status, e.to_string(), retry)
}

/// Runs service work off the async threads, keeping the service's error
/// (GeoReport answers its own shape, with `Retry-After` when rate limited).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ServiceError> + Send + 'static,
) -> Result<T, ServiceError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(ServiceError::Internal(format!("request failed: {e}"))))
}

fn not_found(f: Format) -> Response {
    error(f, StatusCode::NOT_FOUND, "no such resource".into(), None)
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/open311/v2/services.json", get(services_json))
        .route("/open311/v2/services.xml", get(services_xml))
        .route("/open311/v2/services/{file}", get(definition))
        .route("/open311/v2/requests.json", get(list_json).post(post_json))
        .route("/open311/v2/requests.xml", get(list_xml).post(post_xml))
        .route("/open311/v2/requests/{file}", get(one))
        .route("/open311/v2/tokens/{file}", get(token))
}

async fn services(s: AppState, headers: HeaderMap, f: Format) -> Response {
    let c = s.center.clone();
    let lang = super::accepted_lang(&headers);
    match blocking(move || c.services()).await {
        Ok(entries) => {
            let list: Vec<Service> = entries
                .into_iter()
                .map(|e| Service {
                    service_code: e.code.to_string(),
                    service_name: match lang {
                        Lang::Zh => e.name_zh.clone(),
                        Lang::En => e.name_en.clone(),
                    },
                    description: format!("{} · {}", e.major_name, e.name_zh),
                    metadata: false,
                    kind: "realtime",
                    keywords: format!("{} {}", e.name_zh, e.name_en),
                    group: e.major_name.clone(),
                })
                .collect();
            match f {
                Format::Json => axum::Json(list).into_response(),
                Format::Xml => xml(&Services { service: list }),
            }
        }
        Err(e) => failed(f, e),
    }
}

async fn services_json(State(s): State<AppState>, headers: HeaderMap) -> Response {
    services(s, headers, Format::Json).await
}

async fn services_xml(State(s): State<AppState>, headers: HeaderMap) -> Response {
    services(s, headers, Format::Xml).await
}

/// A service's definition: no extra attributes (every service's
/// `metadata` is false), but GeoReport clients may ask.
async fn definition(State(s): State<AppState>, Path(file): Path<String>) -> Response {
    let Some((code, f)) = split(&file) else {
        return not_found(Format::Json);
    };
    let c = s.center.clone();
    let code = code.to_string();
    let wanted = code.clone();
    match blocking(move || c.services()).await {
        Ok(entries) if entries.iter().any(|e| e.code.to_string() == wanted) => {
            let d = Definition {
                service_code: code,
                attributes: Vec::new(),
            };
            match f {
                Format::Json => axum::Json(&d).into_response(),
                Format::Xml => xml(&d),
            }
        }
        Ok(_) => not_found(f),
        Err(e) => failed(f, e),
    }
}

async fn post(
    s: AppState,
    f: Format,
    form: Result<Form<NewRequest>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(req)) = form else {
        return error(
            f,
            StatusCode::BAD_REQUEST,
            "body: a form (application/x-www-form-urlencoded) with api_key, service_code, lat, long, description".into(),
            None,
        );
    };
    let c = s.center.clone();
    match blocking(move || c.submit_request(req)).await {
        Ok(r) => {
            let receipt = vec![Receipt {
                service_request_id: r.id,
                token: r.token,
                service_notice: String::new(),
                account_id: String::new(),
            }];
            let mut out = match f {
                Format::Json => axum::Json(&receipt).into_response(),
                Format::Xml => xml(&Receipts { request: receipt }),
            };
            *out.status_mut() = StatusCode::CREATED;
            out
        }
        Err(e) => failed(f, e),
    }
}

async fn post_json(
    State(s): State<AppState>,
    form: Result<Form<NewRequest>, axum::extract::rejection::FormRejection>,
) -> Response {
    post(s, Format::Json, form).await
}

async fn post_xml(
    State(s): State<AppState>,
    form: Result<Form<NewRequest>, axum::extract::rejection::FormRejection>,
) -> Response {
    post(s, Format::Xml, form).await
}

#[derive(Deserialize, Default)]
struct ListQuery {
    #[serde(default)]
    service_request_id: Option<String>,
    #[serde(default)]
    service_code: Option<String>,
    #[serde(default)]
    start_date: Option<String>,
    #[serde(default)]
    end_date: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    jurisdiction_id: Option<String>,
}

fn statuses(c: &Center, lang: Lang, q: ListQuery) -> Result<Vec<RequestStatus>, ServiceError> {
    let _ = q.jurisdiction_id;
    let requests = match q.service_request_id.as_deref().filter(|s| !s.is_empty()) {
        Some(ids) => {
            let ids: Vec<&str> = ids.split(',').map(str::trim).collect();
            if ids.len() > 100 {
                return Err(crate::service::invalid(
                    "service_request_id",
                    "at most 100 ids at once",
                ));
            }
            ids.into_iter()
                .map(|id| c.citizen_request(id))
                .collect::<Result<Vec<_>, _>>()?
        }
        None => {
            let at = |field: &str, v: &Option<String>| {
                v.as_deref()
                    .filter(|t| !t.is_empty())
                    .map(|t| field_core::model::Timestamp::parse(field, t).map(|t| t.millis()))
                    .transpose()
            };
            let end = at("end_date", &q.end_date)?.unwrap_or_else(|| c.now() + 1);
            let start = at("start_date", &q.start_date)?.unwrap_or(end - 90 * 86_400_000);
            c.citizen_requests(start, end)?
        }
    };
    let codes: Option<Vec<&str>> = q
        .service_code
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| s.split(',').map(str::trim).collect());
    let wanted: Option<Vec<&str>> = q
        .status
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| s.split(',').map(str::trim).collect());
    let mut out = Vec::new();
    for r in requests.iter().filter(|r| {
        codes
            .as_ref()
            .is_none_or(|c| c.contains(&r.service_code.as_str()))
    }) {
        let st = c.request_status(r, lang)?;
        if wanted
            .as_ref()
            .is_none_or(|w| w.contains(&st.status.as_str()))
        {
            out.push(st);
        }
    }
    Ok(out)
}

async fn list(s: AppState, headers: HeaderMap, f: Format, q: ListQuery) -> Response {
    let (c, lang) = (s.center.clone(), super::accepted_lang(&headers));
    match blocking(move || statuses(&c, lang, q)).await {
        Ok(list) => answer(
            f,
            &list,
            Requests {
                request: list.clone(),
            },
        ),
        Err(e) => failed(f, e),
    }
}

async fn list_json(
    State(s): State<AppState>,
    headers: HeaderMap,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let q = q.map(|Query(q)| q).unwrap_or_default();
    list(s, headers, Format::Json, q).await
}

async fn list_xml(
    State(s): State<AppState>,
    headers: HeaderMap,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let q = q.map(|Query(q)| q).unwrap_or_default();
    list(s, headers, Format::Xml, q).await
}

async fn one(State(s): State<AppState>, headers: HeaderMap, Path(file): Path<String>) -> Response {
    let Some((id, f)) = split(&file) else {
        return not_found(Format::Json);
    };
    let q = ListQuery {
        service_request_id: Some(id.to_string()),
        ..Default::default()
    };
    list(s, headers, f, q).await
}

async fn token(State(s): State<AppState>, Path(file): Path<String>) -> Response {
    let Some((token, f)) = split(&file) else {
        return not_found(Format::Json);
    };
    let c = s.center.clone();
    let token = token.to_string();
    match blocking(move || c.citizen_request_by_token(&token)).await {
        Ok(r) => {
            let list = vec![TokenAnswer {
                service_request_id: r.id,
                token: r.token,
            }];
            match f {
                Format::Json => axum::Json(&list).into_response(),
                Format::Xml => xml(&TokenAnswers { request: list }),
            }
        }
        Err(e) => failed(f, e),
    }
}
