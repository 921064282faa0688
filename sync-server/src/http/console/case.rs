//! A case page and the review actions posted from it.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use field_core::model::{CaseId, Status, Timestamp};
use maud::html;
use serde::Deserialize;

use super::actions;
use super::layout::{error_page, local_text, page, service_error, status_name, t, tr};
use super::session::{self, Staff};
use crate::http::AppState;
use crate::http::routes::blocking;
use crate::service::{Action, DecisionRequest, ServiceError};

fn parse_id(staff: &Staff, id: &str) -> Result<CaseId, Box<Response>> {
    CaseId::parse("id", id).map_err(|e| Box::new(service_error(staff, ServiceError::from(e))))
}

pub async fn case_page(
    State(s): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Response {
    let id = match parse_id(&staff, &id) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    let center = s.center.clone();
    let p = staff.principal.clone();
    let v = match blocking(move || Ok((center.case_show(&p, id)?, center.city_tz()?))).await {
        Ok(v) => v,
        Err(e) => return service_error(&staff, e),
    };
    let (v, tz) = v;
    let summary = &v["summary"];
    let text = |x: &serde_json::Value| match x {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    };
    let statuses: Vec<String> = summary["status"]
        .as_array()
        .map(|a| a.iter().map(text).collect())
        .unwrap_or_default();
    let current: Vec<Status> = statuses
        .iter()
        .filter_map(|t| Status::parse("status", t).ok())
        .collect();
    let quick_fix = summary["source"] == "quick_fix";
    let actions = actions::allowed(&current, quick_fix);
    // The reporter's cells, track and cases of the report's day, this one marked.
    let reported = v["case"]["origin"]["reported_at"]
        .as_str()
        .and_then(|t| Timestamp::parse("reported_at", t).ok());
    let collector = summary["collector"].as_str().map(String::from);
    // The report's local day, in the zone already read for this page.
    let where_ = match (reported, collector) {
        (Some(t), Some(c)) => chrono::DateTime::from_timestamp_millis(t.millis())
            .map(|at| (at.with_timezone(&tz).date_naive(), c)),
        _ => None,
    };
    let l = staff.lang;
    let body = html! {
        table #case {
            tr { th { (t(l, "col-status")) } td #status data-status=(statuses.join("|")) { (statuses.iter().map(|st| status_name(l, st)).collect::<Vec<_>>().join(" / "))
                @if summary["conflict"].as_bool() == Some(true) { " " span.conflict { (t(l, "conflict-hint")) } } } }
            tr { th { (t(l, "col-category")) } td { (text(&summary["category"])) " " (text(&summary["category_name"])) } }
            tr { th { (t(l, "col-cell")) } td { (text(&summary["cell"])) } }
            tr { th { (t(l, "case-position")) } td { (text(&v["case"]["placement"]["pos"])) } }
            tr { th { (t(l, "col-collector")) } td { (text(&summary["collector"])) } }
            tr { th { (t(l, "case-reported")) } td { (local_text(l, &text(&summary["reported_at"]), tz)) " (" (tz.name()) ")" } }
            tr { th { (t(l, "col-description")) } td #description { (text(&summary["description"])) } }
            tr { th { (t(l, "case-photos")) } td {
                @if summary["photos_pending"].as_bool() == Some(true) { (t(l, "photos-pending")) " " }
                @for ph in v["case"]["photos"].as_array().into_iter().flatten() {
                    @let hash = text(&ph["hash"]);
                    img.thumb src={ "/console/photos/" (hash) "/thumb" } alt=(text(&ph["role"])) title=(hash);
                }
            } }
            tr { th { (t(l, "col-flags")) } td {
                @for f in summary["flags"].as_array().into_iter().flatten() {
                    div { span.flag data-flag=(text(&f["kind"])) { (t(l, &format!("flag-{}", text(&f["kind"])))) } " " code { (f["evidence"].to_string()) } }
                }
            } }
            tr { th { (t(l, "case-duplicates")) } td {
                @for d in summary["likely_duplicates"].as_array().into_iter().flatten() {
                    @let did = text(&d["id"]);
                    a href={ "/console/cases/" (did) } { (did) } " "
                }
            } }
        }
        h2 { (t(l, "case-decide")) }
        // A div, not a p: the forms inside would close a paragraph.
        div.actions {
            @if actions.is_empty() { (t(l, "case-no-action")) }
            (actions::forms(l, &id.to_string(), &actions, &staff.csrf, None))
        }
        @if let Some((day, collector)) = &where_ {
            h2 { (t(l, "case-where")) }
            p #map-status { (t(l, "map-drawing")) }
            svg #map xmlns="http://www.w3.org/2000/svg" viewBox="0 0 900 900" width="450" height="450"
                style="border:1px solid #ccc;background:#f8f8f4;overflow:hidden" {}
            @let src = format!("/console/map/data?{}", form_urlencoded::Serializer::new(String::new())
                .append_pair("day", &day.to_string()).append_pair("collector", collector).finish());
            script src="/console/assets/map.js" data-src=(src) data-highlight=(id) data-fit="assigned"
                data-status-text=(super::map::status_template(l)) data-error-text=(super::map::error_template(l)) {}
        }
        h2 { (t(l, "case-history")) }
        table #history {
            tr { th { (t(l, "hist-at")) } th { (t(l, "hist-kind")) } th { (t(l, "hist-wrote")) } th { (t(l, "hist-overwritten")) } }
            @for h in v["history"].as_array().into_iter().flatten() {
                tr { td { (local_text(l, &text(&h["at"]), tz)) } td { (text(&h["kind"])) } td { code { (h["op"].to_string()) } }
                     td { (text(&h["overwritten"])) } }
            }
        }
    };
    let title = tr(l, "case-title", &[("id", id.to_string().into())]);
    page(l, &title, Some(&staff), body).into_response()
}

#[derive(Deserialize)]
pub struct DecideForm {
    #[serde(default)]
    csrf: String,
    action: String,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    department: Option<String>,
    /// A console page to return to (the queue a row was registered from).
    #[serde(default)]
    back: Option<String>,
    /// The reject form's "also record a false-information violation".
    #[serde(default)]
    violation: Option<String>,
}

pub async fn decide(
    State(s): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    parts: Parts,
    Form(f): Form<DecideForm>,
) -> Response {
    if session::cross_site(&parts) || !staff.check_csrf(&f.csrf) {
        return error_page(
            Some(&staff),
            StatusCode::FORBIDDEN,
            &staff.lang.t("err-cross-site"),
        );
    }
    let id = match parse_id(&staff, &id) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    let action = match f.action.as_str() {
        "register" => Action::Register,
        "reject" => Action::Reject,
        "dispatch" => Action::Dispatch,
        "handled" => Action::Handled,
        "close" => Action::Close,
        "rework" => Action::Rework,
        other => {
            return error_page(
                Some(&staff),
                StatusCode::BAD_REQUEST,
                &tr(
                    staff.lang,
                    "err-action",
                    &[("action", other.to_string().into())],
                ),
            );
        }
    };
    let nonempty = |o: Option<String>| o.filter(|s| !s.trim().is_empty());
    let req = DecisionRequest {
        action,
        reason: nonempty(f.reason),
        text: nonempty(f.text),
        department: nonempty(f.department),
        note: None,
        seen: None,
        record_violation: f.violation.is_some(),
    };
    let center = s.center.clone();
    let p = staff.principal.clone();
    match blocking(move || center.decide(&p, id, req)).await {
        Ok(_) => {
            // Only back into the console: never an open redirect.
            let to = f
                .back
                .as_deref()
                .and_then(session::console_path)
                .map(String::from)
                .unwrap_or_else(|| format!("/console/cases/{id}"));
            Redirect::to(&to).into_response()
        }
        Err(e) => service_error(&staff, e),
    }
}

pub async fn thumb(State(s): State<AppState>, staff: Staff, Path(hash): Path<String>) -> Response {
    let center = s.center.clone();
    let p = staff.principal.clone();
    match blocking(move || center.photo(&p, &hash, true)).await {
        Ok(file) => crate::http::routes::photo_response(file),
        Err(e) => service_error(&staff, e),
    }
}
