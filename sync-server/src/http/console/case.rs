//! A case page and the review actions posted from it.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use field_core::model::CaseId;
use maud::html;
use serde::Deserialize;

use super::layout::{error_page, page, service_error};
use super::session::{self, Staff};
use crate::http::AppState;
use crate::http::routes::blocking;
use crate::service::{Action, DecisionRequest, ServiceError};

const REASONS: [&str; 7] = [
    "wrong_category",
    "wrong_location",
    "duplicate",
    "false_report",
    "out_of_scope",
    "bad_photo",
    "other",
];

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
    let v = match blocking(move || center.case_show(&p, id)).await {
        Ok(v) => v,
        Err(e) => return service_error(&staff, e),
    };
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
    let body = html! {
        table #case {
            tr { th { "Status" } td #status { (statuses.join(" / "))
                @if summary["conflict"].as_bool() == Some(true) { " " span.conflict { "conflict: decide again to resolve" } } } }
            tr { th { "Category" } td { (text(&summary["category"])) " " (text(&summary["category_name"])) } }
            tr { th { "Cell" } td { (text(&summary["cell"])) } }
            tr { th { "Position" } td { (text(&v["case"]["placement"]["pos"])) } }
            tr { th { "Collector" } td { (text(&summary["collector"])) } }
            tr { th { "Reported" } td { (text(&summary["reported_at"])) } }
            tr { th { "Description" } td #description { (text(&summary["description"])) } }
            tr { th { "Photos" } td {
                @if summary["photos_pending"].as_bool() == Some(true) { "photos pending " }
                @for ph in v["case"]["photos"].as_array().into_iter().flatten() {
                    @let hash = text(&ph["hash"]);
                    img.thumb src={ "/console/photos/" (hash) "/thumb" } alt=(text(&ph["role"])) title=(hash);
                }
            } }
            tr { th { "Flags" } td {
                @for f in summary["flags"].as_array().into_iter().flatten() {
                    div { span.flag { (text(&f["kind"])) } " " code { (f["evidence"].to_string()) } }
                }
            } }
            tr { th { "Likely duplicates" } td {
                @for d in summary["likely_duplicates"].as_array().into_iter().flatten() {
                    @let did = text(&d["id"]);
                    a href={ "/console/cases/" (did) } { (did) } " "
                }
            } }
        }
        h2 { "Decide" }
        @let action = format!("/console/cases/{id}/decide");
        form.inline method="post" action=(action) {
            input type="hidden" name="csrf" value=(staff.csrf);
            input type="hidden" name="action" value="register";
            button #register type="submit" { "Register" }
        }
        form.inline #reject method="post" action=(action) {
            input type="hidden" name="csrf" value=(staff.csrf);
            input type="hidden" name="action" value="reject";
            select name="reason" { @for r in REASONS { option value=(r) { (r) } } }
            input name="text" placeholder="note (for other)";
            button type="submit" { "Reject" }
        }
        form.inline method="post" action=(action) {
            input type="hidden" name="csrf" value=(staff.csrf);
            input type="hidden" name="action" value="dispatch";
            input name="department" placeholder="department" required;
            button type="submit" { "Dispatch" }
        }
        @for (a, label) in [("handled", "Handled"), ("close", "Close"), ("rework", "Rework")] {
            form.inline method="post" action=(action) {
                input type="hidden" name="csrf" value=(staff.csrf);
                input type="hidden" name="action" value=(a);
                button type="submit" { (label) }
            }
        }
        h2 { "History" }
        table #history {
            tr { th { "At" } th { "Kind" } th { "Wrote" } th { "Overwritten" } }
            @for h in v["history"].as_array().into_iter().flatten() {
                tr { td { (text(&h["at"])) } td { (text(&h["kind"])) } td { code { (h["op"].to_string()) } }
                     td { (text(&h["overwritten"])) } }
            }
        }
    };
    page(&format!("Case {id}"), Some(&staff), body).into_response()
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
            "cross-site request refused: reload the page",
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
                &format!("action: `{other}` is not a review action"),
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
