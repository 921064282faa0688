//! Routes and their handlers.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use field_core::model::CaseId;
use field_core::sync::protocol::{EnrollRequest, PhotosNeededRequest};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tower_http::catch_panic::CatchPanicLayer;

use super::auth::Auth;
use super::{AppError, AppState};
use crate::service::{
    DecisionRequest, NewTaskRequest, NewUserRequest, QueueFilter, RevokeCodesRequest, ServiceError,
};
use crate::storage::Role;

/// Runs service code (SQLite, file I/O) off the async workers.
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ServiceError> + Send + 'static,
) -> Result<T, AppError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(AppError::from),
        Err(e) => Err(AppError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            None,
            format!("request failed: {e}"),
        )),
    }
}

/// JSON in, with refusals that name the field (axum's own says 422 and
/// little else).
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, AppError> {
        let Json(v) = Json::<T>::from_request(req, state).await?;
        Ok(ApiJson(v))
    }
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    AppError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        None,
        "the request failed; the server is still up",
    )
    .into_response()
}

pub fn router(state: AppState) -> Router {
    let limits = state.center.limits().clone();
    // Device requests wait their turn, or are told when to come back.
    let admitted = || axum::middleware::from_fn_with_state(state.clone(), super::admission::admit);
    let photos = Router::new()
        .route(
            "/v1/photos/{hash}",
            put(upload_chunk).layer(admitted()).get(photo_original),
        )
        .route("/v1/photos/{hash}/thumb", get(photo_thumb))
        .layer(DefaultBodyLimit::max(limits.max_chunk_bytes));
    Router::new()
        .route("/", get(super::operations::front_door))
        .route("/healthz", get(super::operations::healthz))
        .route("/readyz", get(super::operations::readyz))
        .route("/metrics", get(super::operations::metrics))
        .route("/v1/health", get(health))
        .route("/v1/enroll", post(enroll))
        .route("/v1/sync", post(sync).layer(admitted()))
        .route("/v1/photos/needed", post(photos_needed).layer(admitted()))
        .route("/v1/devices/successor", post(successor))
        .route("/v1/center/users", post(add_user).get(users))
        .route("/v1/center/users/{id}/codes", post(new_code))
        .route("/v1/center/users/{id}/disable", post(disable_user))
        .route("/v1/center/users/{id}/enable", post(enable_user))
        .route("/v1/center/users/{id}/codes/revoke", post(revoke_codes))
        .route("/v1/center/token/rotate", post(rotate_token))
        .route("/v1/center/audit", get(audit_log))
        .route("/v1/center/devices/{actor}/revoke", post(revoke_device))
        .route("/v1/center/grid", put(import_grid))
        .route("/v1/center/catalog", put(import_catalog))
        .route("/v1/center/cases", get(case_list))
        .route("/v1/center/cases/{id}", get(case_show))
        .route("/v1/center/cases/{id}/decisions", post(decide))
        .route("/v1/center/tasks", post(create_task).get(task_list))
        .route("/v1/center/shifts", get(shifts))
        .route("/v1/center/findings", post(add_finding).get(findings))
        .route("/v1/center/findings/bulk", post(add_findings))
        .route("/v1/center/report", get(report))
        .route("/v1/center/map", get(coverage_map))
        .route("/v1/center/city-map", get(city_map))
        .route("/v1/center/assignments", post(assign))
        .route("/v1/center/config", get(config_show).put(config_import))
        .route("/v1/center/config/set", post(config_set))
        .route("/v1/center/surveys", post(create_survey).get(survey_list))
        .route("/v1/center/surveys/{id}/report", get(survey_report))
        .route("/v1/center/digest", get(digest))
        .route("/v1/center/dashboard", get(dashboard))
        .route(
            "/v1/center/report.xlsx",
            super::workbooks::api_book(super::workbooks::Book::Report),
        )
        .route(
            "/v1/center/settlement.xlsx",
            super::workbooks::api_book(super::workbooks::Book::Settlement),
        )
        .route("/v1/center/cases.xlsx", get(super::workbooks::api_cases))
        .route(
            "/v1/center/violations",
            post(record_violation).get(violations),
        )
        .route("/v1/center/city-figures", get(city_figures))
        .route("/v1/center/certification/attempts", post(record_attempt))
        .route("/v1/center/certification/{collector}", get(certification))
        .route("/v1/center/trainings", post(record_training).get(trainings))
        .route("/v1/center/violations/{id}/revoke", post(revoke_violation))
        .route("/v1/center/channels", post(open_channel).get(channels))
        .route("/v1/center/channels/{id}/revoke", post(revoke_channel))
        // A citizen's request is a short form: 64 KiB is ample.
        .merge(super::open311::router().layer(DefaultBodyLimit::max(64 * 1024)))
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .merge(photos)
        .merge(super::console::router())
        .fallback(|| async {
            AppError::new(StatusCode::NOT_FOUND, "not_found", None, "no such endpoint")
        })
        .layer(CatchPanicLayer::custom(panic_response))
        .with_state(state)
}

/// Liveness, and how busy the device queue is.
async fn health(State(state): State<AppState>) -> Json<Health> {
    Json(Health {
        ok: true,
        admission: state.admission.state(),
    })
}

#[derive(serde::Serialize)]
struct Health {
    ok: bool,
    admission: super::AdmissionState,
}

async fn enroll(
    State(s): State<AppState>,
    ApiJson(req): ApiJson<EnrollRequest>,
) -> Result<impl IntoResponse, AppError> {
    let c = s.center.clone();
    Ok(Json(blocking(move || c.enroll(req)).await?))
}

async fn sync(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiJson(req): ApiJson<crate::service::SyncWire>,
) -> Result<impl IntoResponse, AppError> {
    let c = s.center.clone();
    let pushed = req.push.len();
    let bytes: usize = req.push.iter().map(|c| c.get().len()).sum();
    let device = p.label();
    let resp = blocking(move || c.sync_wire(&p, req)).await?;
    super::observe::sync_done(&device, pushed, &resp, bytes);
    Ok(Json(resp))
}

async fn successor(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiJson(req): ApiJson<field_core::sync::protocol::SuccessorRequest>,
) -> Result<impl IntoResponse, AppError> {
    let c = s.center.clone();
    Ok(Json(blocking(move || c.succeed_device(&p, req)).await?))
}

async fn photos_needed(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiJson(req): ApiJson<PhotosNeededRequest>,
) -> Result<impl IntoResponse, AppError> {
    let c = s.center.clone();
    let resp = blocking(move || c.photos_needed(&p, req)).await?;
    metrics::gauge!("photo_uploads_pending").set(resp.needed.len() as f64);
    Ok(Json(resp))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChunkQuery {
    offset: u64,
    total: u64,
}

async fn upload_chunk(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(hash): Path<String>,
    query: Result<Query<ChunkQuery>, axum::extract::rejection::QueryRejection>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<impl IntoResponse, AppError> {
    let Query(q) = query?;
    let bytes = body?;
    let c = s.center.clone();
    let n = bytes.len() as u64;
    let ack = blocking(move || c.upload_chunk(&p, &hash, q.offset, q.total, &bytes)).await?;
    metrics::counter!("photo_bytes_in_total").increment(n);
    Ok(Json(ack))
}

async fn add_user(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiJson(req): ApiJson<NewUserRequest>,
) -> Result<impl IntoResponse, AppError> {
    let c = s.center.clone();
    Ok((
        StatusCode::CREATED,
        Json(blocking(move || c.add_user(&p, req)).await?),
    ))
}

async fn new_code(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    let c = s.center.clone();
    Ok((
        StatusCode::CREATED,
        Json(blocking(move || c.new_code(&p, &id)).await?),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleQuery {
    role: Option<Role>,
}

async fn users(
    State(s): State<AppState>,
    Auth(p): Auth,
    query: Result<Query<RoleQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<impl IntoResponse, AppError> {
    let Query(q) = query?;
    let c = s.center.clone();
    Ok(Json(blocking(move || c.users(&p, q.role)).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PeriodQuery {
    period: String,
}

async fn city_figures(
    State(s): State<AppState>,
    Auth(p): Auth,
    query: Result<Query<PeriodQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<impl IntoResponse, AppError> {
    let Query(q) = query?;
    let c = s.center.clone();
    Ok(Json(blocking(move || c.city_figures(&p, &q.period)).await?))
}

async fn record_attempt(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiJson(req): ApiJson<crate::service::NewAttempt>,
) -> Result<impl IntoResponse, AppError> {
    let c = s.center.clone();
    Ok((
        StatusCode::CREATED,
        Json(blocking(move || c.record_attempt(&p, req)).await?),
    ))
}

async fn certification(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(collector): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    let c = s.center.clone();
    Ok(Json(
        blocking(move || c.certification(&p, &collector)).await?,
    ))
}

async fn record_training(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiJson(req): ApiJson<crate::service::NewTraining>,
) -> Result<impl IntoResponse, AppError> {
    let c = s.center.clone();
    Ok((
        StatusCode::CREATED,
        Json(blocking(move || c.record_training(&p, req)).await?),
    ))
}

async fn trainings(
    State(s): State<AppState>,
    Auth(p): Auth,
) -> Result<impl IntoResponse, AppError> {
    let c = s.center.clone();
    Ok(Json(blocking(move || c.trainings(&p)).await?))
}

async fn record_violation(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiJson(req): ApiJson<crate::service::NewViolation>,
) -> Result<impl IntoResponse, AppError> {
    let c = s.center.clone();
    Ok((
        StatusCode::CREATED,
        Json(blocking(move || c.record_violation(&p, req)).await?),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeViolation {
    reason: String,
}

async fn revoke_violation(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<RevokeViolation>,
) -> Result<impl IntoResponse, AppError> {
    let c = s.center.clone();
    Ok(Json(
        blocking(move || c.revoke_violation(&p, &id, &req.reason)).await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ViolationQuery {
    collector: Option<String>,
}

async fn violations(
    State(s): State<AppState>,
    Auth(p): Auth,
    query: Result<Query<ViolationQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<impl IntoResponse, AppError> {
    let Query(q) = query?;
    let c = s.center.clone();
    Ok(Json(
        blocking(move || c.violations(&p, q.collector.as_deref())).await?,
    ))
}

async fn disable_user(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    let c = s.center.clone();
    Ok(Json(
        blocking(move || c.set_user_disabled(&p, &id, true)).await?,
    ))
}

async fn enable_user(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    let c = s.center.clone();
    Ok(Json(
        blocking(move || c.set_user_disabled(&p, &id, false)).await?,
    ))
}

async fn revoke_codes(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<impl IntoResponse, AppError> {
    let req: RevokeCodesRequest = if body.is_empty() {
        RevokeCodesRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| AppError::from(crate::service::invalid("body", e.to_string())))?
    };
    let c = s.center.clone();
    let n = blocking(move || c.revoke_codes(&p, &id, req)).await?;
    Ok(Json(serde_json::json!({ "revoked": n })))
}

async fn rotate_token(
    State(s): State<AppState>,
    Auth(p): Auth,
) -> Result<impl IntoResponse, AppError> {
    let c = s.center.clone();
    Ok(Json(blocking(move || c.rotate_token(&p)).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    limit: Option<usize>,
}

async fn audit_log(
    State(s): State<AppState>,
    Auth(p): Auth,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<impl IntoResponse, AppError> {
    let Query(q) = query?;
    let c = s.center.clone();
    Ok(Json(blocking(move || c.audit_log(&p, q.limit)).await?))
}

async fn revoke_device(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(actor): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    let actor = uuid::Uuid::parse_str(&actor)
        .map_err(|e| AppError::from(crate::service::invalid("actor", e.to_string())))?;
    let c = s.center.clone();
    blocking(move || c.revoke_device(&p, actor)).await?;
    Ok(Json(serde_json::json!({ "revoked": actor })))
}

async fn import_grid(
    State(s): State<AppState>,
    Auth(p): Auth,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<impl IntoResponse, AppError> {
    let text = String::from_utf8(body?.to_vec())
        .map_err(|_| AppError::from(crate::service::invalid("grid", "is not UTF-8 text")))?;
    let c = s.center.clone();
    Ok(Json(blocking(move || c.import_grid(&p, &text)).await?))
}

async fn import_catalog(
    State(s): State<AppState>,
    Auth(p): Auth,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<impl IntoResponse, AppError> {
    let text = String::from_utf8(body?.to_vec())
        .map_err(|_| AppError::from(crate::service::invalid("catalog", "is not UTF-8 text")))?;
    let c = s.center.clone();
    Ok(Json(blocking(move || c.import_catalog(&p, &text)).await?))
}

/// The review queue as JSON: an array of rows (one page when `limit` is
/// given), the number matching in all in `x-total-count`.
async fn case_list(
    State(s): State<AppState>,
    Auth(p): Auth,
    query: Result<Query<QueueFilter>, axum::extract::rejection::QueryRejection>,
) -> Result<impl IntoResponse, AppError> {
    let Query(q) = query?;
    let c = s.center.clone();
    let page = blocking(move || c.queue(&p, &q)).await?;
    Ok(([("x-total-count", page.total.to_string())], Json(page.rows)))
}

async fn case_show(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    let id = CaseId::parse("id", &id).map_err(|e| AppError::from(ServiceError::from(e)))?;
    let c = s.center.clone();
    Ok(Json(blocking(move || c.case_show(&p, id)).await?))
}

async fn findings(State(s): State<AppState>, Auth(p): Auth) -> Result<impl IntoResponse, AppError> {
    let c = s.center.clone();
    Ok(Json(blocking(move || c.findings(&p)).await?))
}

/// Opens a citizens' channel (Open311); its API key is in the answer, once.
async fn open_channel(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiJson(req): ApiJson<crate::service::NewChannel>,
) -> Result<impl IntoResponse, AppError> {
    let c = s.center.clone();
    Ok((
        StatusCode::CREATED,
        Json(blocking(move || c.open_channel(&p, req)).await?),
    ))
}

async fn channels(State(s): State<AppState>, Auth(p): Auth) -> Result<impl IntoResponse, AppError> {
    let c = s.center.clone();
    Ok(Json(blocking(move || c.channels(&p)).await?))
}

async fn revoke_channel(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    let c = s.center.clone();
    Ok(Json(blocking(move || c.revoke_channel(&p, &id)).await?))
}

/// Today's city dashboard figures (kept a few seconds, shared by every caller).
async fn dashboard(
    State(s): State<AppState>,
    Auth(p): Auth,
) -> Result<impl IntoResponse, AppError> {
    let c = s.center.clone();
    Ok(Json(
        blocking(move || c.dashboard(&p)).await?.as_ref().clone(),
    ))
}

async fn digest(State(s): State<AppState>, Auth(p): Auth) -> Result<impl IntoResponse, AppError> {
    let c = s.center.clone();
    Ok(Json(blocking(move || c.digest(&p)).await?))
}

async fn decide(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<DecisionRequest>,
) -> Result<impl IntoResponse, AppError> {
    let id = CaseId::parse("id", &id).map_err(|e| AppError::from(ServiceError::from(e)))?;
    let c = s.center.clone();
    Ok(Json(blocking(move || c.decide(&p, id, req)).await?))
}

async fn create_task(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiJson(req): ApiJson<NewTaskRequest>,
) -> Result<impl IntoResponse, AppError> {
    let c = s.center.clone();
    Ok((
        StatusCode::CREATED,
        Json(blocking(move || c.create_task(&p, req)).await?),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskQuery {
    to: Option<String>,
}

async fn task_list(
    State(s): State<AppState>,
    Auth(p): Auth,
    query: Result<Query<TaskQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<impl IntoResponse, AppError> {
    let Query(q) = query?;
    let c = s.center.clone();
    Ok(Json(
        blocking(move || c.task_list(&p, q.to.as_deref())).await?,
    ))
}

async fn photo_original(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(hash): Path<String>,
) -> Result<Response, AppError> {
    serve_photo(s, p, hash, false).await
}

async fn photo_thumb(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(hash): Path<String>,
) -> Result<Response, AppError> {
    serve_photo(s, p, hash, true).await
}

async fn serve_photo(
    s: AppState,
    p: crate::storage::Principal,
    hash: String,
    thumb: bool,
) -> Result<Response, AppError> {
    let c = s.center.clone();
    let file = blocking(move || c.photo(&p, &hash, thumb)).await?;
    Ok(photo_response(file))
}

/// A stored photo as a response, with its type and a long cache life.
pub(super) fn photo_response(file: crate::service::PhotoFile) -> Response {
    metrics::counter!("photo_bytes_out_total").increment(file.bytes.len() as u64);
    (
        [
            (axum::http::header::CONTENT_TYPE, file.mime),
            // Content-addressed: the bytes behind a name never change.
            (
                axum::http::header::CACHE_CONTROL,
                "private, max-age=31536000, immutable".to_string(),
            ),
        ],
        file.bytes,
    )
        .into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShiftQuery {
    #[serde(default)]
    flagged: bool,
}

async fn shifts(
    State(s): State<AppState>,
    Auth(p): Auth,
    query: Result<Query<ShiftQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<impl IntoResponse, AppError> {
    let Query(q) = query?;
    let c = s.center.clone();
    Ok(Json(blocking(move || c.shifts(&p, q.flagged)).await?))
}

async fn create_survey(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiJson(req): ApiJson<crate::service::NewSurveyRequest>,
) -> Result<impl IntoResponse, AppError> {
    let c = s.center.clone();
    Ok((
        StatusCode::CREATED,
        Json(blocking(move || c.create_survey(&p, req)).await?),
    ))
}

async fn survey_list(
    State(s): State<AppState>,
    Auth(p): Auth,
) -> Result<impl IntoResponse, AppError> {
    let c = s.center.clone();
    Ok(Json(blocking(move || c.survey_list(&p)).await?))
}

async fn survey_report(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    let c = s.center.clone();
    Ok(Json(blocking(move || c.survey_report(&p, &id)).await?))
}

async fn add_finding(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiJson(req): ApiJson<crate::service::NewFinding>,
) -> Result<impl IntoResponse, AppError> {
    let c = s.center.clone();
    Ok((
        StatusCode::CREATED,
        Json(blocking(move || c.add_finding(&p, req)).await?),
    ))
}

async fn report(
    State(s): State<AppState>,
    Auth(p): Auth,
    query: Result<Query<crate::service::ReportQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<impl IntoResponse, AppError> {
    let Query(q) = query?;
    let c = s.center.clone();
    Ok(Json(blocking(move || c.report(&p, q)).await?))
}

async fn config_show(
    State(s): State<AppState>,
    Auth(p): Auth,
) -> Result<impl IntoResponse, AppError> {
    let c = s.center.clone();
    Ok(Json(blocking(move || c.show_config(&p)).await?))
}

async fn config_import(
    State(s): State<AppState>,
    Auth(p): Auth,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<impl IntoResponse, AppError> {
    let text = String::from_utf8(body?.to_vec())
        .map_err(|_| AppError::from(crate::service::invalid("config", "is not UTF-8 text")))?;
    let c = s.center.clone();
    Ok(Json(blocking(move || c.import_config(&p, &text)).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigSet {
    key: String,
    value: String,
}

async fn config_set(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiJson(req): ApiJson<ConfigSet>,
) -> Result<impl IntoResponse, AppError> {
    let c = s.center.clone();
    Ok(Json(
        blocking(move || c.set_config(&p, &req.key, &req.value)).await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MapQuery {
    collector: String,
    day: String,
}

async fn coverage_map(
    State(s): State<AppState>,
    Auth(p): Auth,
    query: Result<Query<MapQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, AppError> {
    let Query(q) = query?;
    let c = s.center.clone();
    let svg = blocking(move || c.coverage_map(&p, &q.collector, &q.day)).await?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "image/svg+xml; charset=utf-8",
        )],
        svg,
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CityMapQuery {
    day: String,
    #[serde(default)]
    collector: Option<String>,
    /// `coverage` (default) or `zone`.
    #[serde(default)]
    colour: Option<String>,
}

/// The city on a day as GeoJSON: cells, tracks, cases (what the console draws).
async fn city_map(
    State(s): State<AppState>,
    Auth(p): Auth,
    query: Result<Query<CityMapQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<impl IntoResponse, AppError> {
    let Query(q) = query?;
    let colour = match q.colour.as_deref() {
        None | Some("coverage") => crate::service::MapColour::Coverage,
        Some("zone") => crate::service::MapColour::Zone,
        Some(other) => {
            return Err(ServiceError::Invalid {
                field: "colour".into(),
                reason: format!("`{other}` is not coverage or zone"),
            }
            .into());
        }
    };
    let c = s.center.clone();
    Ok(Json(
        blocking(move || c.city_map(&p, &q.day, q.collector.as_deref(), colour)).await?,
    ))
}

async fn assign(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiJson(req): ApiJson<crate::service::AssignRequest>,
) -> Result<impl IntoResponse, AppError> {
    let c = s.center.clone();
    Ok(Json(blocking(move || c.assign(&p, req)).await?))
}

async fn add_findings(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiJson(rows): ApiJson<Vec<crate::service::NewFinding>>,
) -> Result<impl IntoResponse, AppError> {
    let c = s.center.clone();
    Ok((
        StatusCode::CREATED,
        Json(blocking(move || c.add_findings(&p, rows)).await?),
    ))
}
