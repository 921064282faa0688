//! The console's pages and form handlers.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use field_core::model::{CaseId, Status};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde::Deserialize;

use super::session::{self, Staff};
use crate::http::routes::blocking;
use crate::http::{AppError, AppState};
use crate::service::{Action, CaseRow, DecisionRequest, ReportQuery, ServiceError};

const PAGE_SIZE: usize = 50;
const STYLE: &str = "body{font-family:sans-serif;margin:0}nav{background:#234;padding:.5em 1em}\
nav a,nav button{color:#fff;margin-right:1em;background:none;border:0;cursor:pointer;font:inherit}\
main{padding:1em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25em .5em;\
text-align:left;vertical-align:top}.error{color:#a00}.flag{background:#fdd;padding:0 .3em}\
.conflict{background:#fc6;padding:0 .3em}img.thumb{max-height:80px}form.inline{display:inline}";

fn page(title: &str, staff: Option<&Staff>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { (title) " · field console" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                @if let Some(s) = staff {
                    nav {
                        a href="/console/queue" { "Review queue" }
                        a href="/console/map" { "Map" }
                        a href="/console/report" { "Reports" }
                        span style="color:#9bd" { (s.principal.user.name) " (" (s.principal.user.role.as_str()) ")" }
                        form.inline method="post" action="/console/sign-out" {
                            input type="hidden" name="csrf" value=(s.csrf);
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main { h1 { (title) } (body) }
            }
        }
    }
}

fn error_page(staff: Option<&Staff>, status: StatusCode, message: &str) -> Response {
    (
        status,
        page("Error", staff, html! { p.error { (message) } }),
    )
        .into_response()
}

fn service_error(staff: &Staff, e: impl Into<AppError>) -> Response {
    let e: AppError = e.into();
    let message = match &e.body.field {
        Some(field) => format!("{field}: {}", e.body.reason),
        None => e.body.reason.clone(),
    };
    error_page(Some(staff), e.status, &message)
}

pub async fn home() -> Redirect {
    Redirect::to("/console/queue")
}

pub async fn sign_in_form() -> Markup {
    sign_in_page(None)
}

fn sign_in_page(error: Option<&str>) -> Markup {
    page(
        "Sign in",
        None,
        html! {
            @if let Some(e) = error { p.error { (e) } }
            form method="post" action="/console/sign-in" {
                label { "Reviewer token " input type="password" name="token" autocomplete="off" required; }
                " "
                button type="submit" { "Sign in" }
            }
        },
    )
}

#[derive(Deserialize)]
pub struct SignIn {
    token: String,
}

pub async fn sign_in(State(s): State<AppState>, parts: Parts, Form(f): Form<SignIn>) -> Response {
    if session::cross_site(&parts) {
        return error_page(None, StatusCode::FORBIDDEN, "cross-site request refused");
    }
    let center = s.center.clone();
    let token = f.token.trim().to_string();
    let bearer = token.clone();
    let who = blocking(move || center.authenticate(Some(&bearer))).await;
    match who {
        Ok(p) if p.user.role.is_staff() => {
            let id = s.sessions.open(&token);
            (
                [(header::SET_COOKIE, session::cookie(Some(&id)))],
                Redirect::to("/console/queue"),
            )
                .into_response()
        }
        Ok(p) => (
            StatusCode::FORBIDDEN,
            sign_in_page(Some(&format!(
                "{} is a {}: the console is for reviewers and admins",
                p.user.name,
                p.user.role.as_str()
            ))),
        )
            .into_response(),
        Err(_) => (
            StatusCode::UNAUTHORIZED,
            sign_in_page(Some("unknown or revoked token")),
        )
            .into_response(),
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

pub async fn sign_out(
    State(s): State<AppState>,
    staff: Staff,
    parts: Parts,
    Form(f): Form<CsrfForm>,
) -> Response {
    if session::cross_site(&parts) || !staff.check_csrf(&f.csrf) {
        return error_page(
            Some(&staff),
            StatusCode::FORBIDDEN,
            "cross-site request refused",
        );
    }
    s.sessions.close(&staff.session);
    (
        [(header::SET_COOKIE, session::cookie(None))],
        Redirect::to("/console/sign-in"),
    )
        .into_response()
}

#[derive(Deserialize, Default)]
pub struct QueueQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    cell: String,
    #[serde(default)]
    collector: String,
    #[serde(default)]
    flag: String,
    #[serde(default)]
    page: usize,
}

impl QueueQuery {
    fn keeps(&self, row: &CaseRow) -> bool {
        let s = &row.summary;
        let eq = |want: &str, have: Option<&str>| want.is_empty() || have == Some(want);
        (self.category.is_empty()
            || s.category
                .as_deref()
                .is_some_and(|c| c.starts_with(&self.category)))
            && eq(&self.cell, s.cell.as_deref())
            && eq(&self.collector, s.collector.as_deref())
            && (self.flag.is_empty()
                || (self.flag == "any" && !row.flags.is_empty())
                || (self.flag == "conflict" && s.conflict)
                || row.flags.iter().any(|f| f.kind == self.flag))
    }

    fn link(&self, page: usize) -> String {
        let q = [
            ("status", self.status.as_str()),
            ("category", &self.category),
            ("cell", &self.cell),
            ("collector", &self.collector),
            ("flag", &self.flag),
        ];
        let mut out = form_urlencoded::Serializer::new(String::new());
        for (k, v) in q.iter().filter(|(_, v)| !v.is_empty()) {
            out.append_pair(k, v);
        }
        out.append_pair("page", &page.to_string());
        format!("/console/queue?{}", out.finish())
    }
}

const STATUSES: [&str; 7] = [
    "reported",
    "registered",
    "rejected",
    "dispatched",
    "handled",
    "closed",
    "rework",
];
const FLAGS: [&str; 6] = [
    "any",
    "conflict",
    "reused_photo",
    "far_from_track",
    "exif_time",
    "test_case_outside_cells",
];
const REASONS: [&str; 7] = [
    "wrong_category",
    "wrong_location",
    "duplicate",
    "false_report",
    "out_of_scope",
    "bad_photo",
    "other",
];

fn statuses(row: &CaseRow) -> String {
    row.summary
        .status
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(" / ")
}

pub async fn queue(
    State(s): State<AppState>,
    staff: Staff,
    query: Result<Query<QueueQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(q)) = query else {
        return error_page(
            Some(&staff),
            StatusCode::BAD_REQUEST,
            "bad filter in the address",
        );
    };
    let status = if q.status.is_empty() {
        None
    } else {
        match Status::parse("status", &q.status) {
            Ok(st) => Some(st),
            Err(e) => return service_error(&staff, ServiceError::from(e)),
        }
    };
    let center = s.center.clone();
    let p = staff.principal.clone();
    let rows = match blocking(move || center.case_list(&p, status)).await {
        Ok(rows) => rows,
        Err(e) => return service_error(&staff, e),
    };
    let mut rows: Vec<CaseRow> = rows.into_iter().filter(|r| q.keeps(r)).collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.summary.reported_at));
    let total = rows.len();
    let pages = total.div_ceil(PAGE_SIZE).max(1);
    let page_no = q.page.min(pages - 1);
    let shown = rows.iter().skip(page_no * PAGE_SIZE).take(PAGE_SIZE);
    let body = html! {
        form #filters method="get" action="/console/queue" {
            label { "Status " select name="status" {
                option value="" { "any" }
                @for st in STATUSES { option value=(st) selected[q.status == st] { (st) } }
            } } " "
            label { "Category " input name="category" size="8" value=(q.category); } " "
            label { "Cell " input name="cell" size="16" value=(q.cell); } " "
            label { "Collector " input name="collector" size="10" value=(q.collector); } " "
            label { "Flag " select name="flag" {
                option value="" { "—" }
                @for f in FLAGS { option value=(f) selected[q.flag == f] { (f) } }
            } } " "
            button type="submit" { "Filter" }
        }
        p #count { (total) " cases · page " (page_no + 1) " of " (pages) }
        table #queue {
            tr { th { "Case" } th { "Status" } th { "Category" } th { "Cell" } th { "Collector" }
                 th { "Reported" } th { "Description" } th { "Photos" } th { "Flags" } th { "Act" } }
            @for row in shown {
                @let id = row.summary.id.to_string();
                tr data-case=(id) {
                    td { a href={ "/console/cases/" (id) } { (id.get(..8).unwrap_or(&id)) } }
                    td { (statuses(row)) @if row.summary.conflict { " " span.conflict { "conflict" } } }
                    td { (row.summary.category.as_deref().unwrap_or("")) " " (row.summary.category_name.as_deref().unwrap_or("")) }
                    td { (row.summary.cell.as_deref().unwrap_or("")) }
                    td { (row.summary.collector.as_deref().unwrap_or("")) }
                    td { (row.summary.reported_at.map(|t| t.to_string()).unwrap_or_default()) }
                    td.desc { (row.summary.description.as_deref().unwrap_or("")) }
                    td { (row.summary.photos) @if row.photos_pending { " (photos pending)" } }
                    td { @for f in &row.flags { span.flag { (f.kind) } " " } }
                    td { @if row.summary.status.contains(&Status::Reported) {
                        form.inline method="post" action={ "/console/cases/" (id) "/decide" } {
                            input type="hidden" name="csrf" value=(staff.csrf);
                            input type="hidden" name="action" value="register";
                            button type="submit" { "Register" }
                        }
                    } }
                }
            }
        }
        p {
            @if page_no > 0 { a #prev href=(q.link(page_no - 1)) { "← previous" } " " }
            @if page_no + 1 < pages { a #next href=(q.link(page_no + 1)) { "next →" } }
        }
    };
    page("Review queue", Some(&staff), body).into_response()
}

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
        Ok(_) => Redirect::to(&format!("/console/cases/{id}")).into_response(),
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

#[derive(Deserialize, Default)]
pub struct MapQuery {
    #[serde(default)]
    collector: String,
    #[serde(default)]
    day: String,
}

pub async fn map(
    State(s): State<AppState>,
    staff: Staff,
    query: Result<Query<MapQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let svg = if q.collector.is_empty() || q.day.is_empty() {
        None
    } else {
        let center = s.center.clone();
        let p = staff.principal.clone();
        let (c, d) = (q.collector.clone(), q.day.clone());
        match blocking(move || center.coverage_map(&p, &c, &d)).await {
            Ok(svg) => Some(svg),
            Err(e) => return service_error(&staff, e),
        }
    };
    let body = html! {
        form method="get" action="/console/map" {
            label { "Collector " input name="collector" value=(q.collector) required; } " "
            label { "Day " input type="date" name="day" value=(q.day) required; } " "
            button type="submit" { "Show" }
        }
        @if let Some(svg) = svg {
            // Our own SVG, built by the map service with every label escaped.
            div #map { (PreEscaped(svg)) }
        }
    };
    page("Map", Some(&staff), body).into_response()
}

#[derive(Deserialize, Default)]
pub struct ReportForm {
    #[serde(default)]
    collector: String,
    #[serde(default)]
    company: String,
    #[serde(default)]
    period: String,
}

fn pct(r: &crate::service::Rate) -> String {
    match r.rate {
        Some(x) => format!("{:.1}% ({}/{})", x * 100.0, r.n, r.d),
        None => format!("— ({}/{})", r.n, r.d),
    }
}

pub async fn report(
    State(s): State<AppState>,
    staff: Staff,
    query: Result<Query<ReportForm>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let reports = if q.period.is_empty() {
        Vec::new()
    } else {
        let center = s.center.clone();
        let p = staff.principal.clone();
        let rq = ReportQuery {
            period: q.period.clone(),
            collector: Some(q.collector.clone()).filter(|c| !c.is_empty()),
            company: Some(q.company.clone()).filter(|c| !c.is_empty()),
            explain: true,
        };
        match blocking(move || center.report(&p, rq)).await {
            Ok(r) => r,
            Err(e) => return service_error(&staff, e),
        }
    };
    let body = html! {
        form method="get" action="/console/report" {
            label { "Collector " input name="collector" value=(q.collector); } " "
            label { "Company " input name="company" value=(q.company); } " "
            label { "Period " input name="period" placeholder="2026-11 or 2026-11-26" value=(q.period) required; } " "
            button type="submit" { "Report" }
        }
        @if !reports.is_empty() {
            table #rates {
                tr { th { "Who" } th { "Period" } th { "Coverage" } th { "Miss rate" } th { "Timeliness" }
                     th { "Error rate" } th { "Composite" } th { "Grade" } th { "Deductions (yuan)" } }
                @for r in &reports {
                    tr { td { (r.who) } td { (r.period) } td.coverage { (pct(&r.coverage)) } td.miss { (pct(&r.miss_rate)) }
                         td.timeliness { (pct(&r.timeliness)) } td.error { (pct(&r.error_rate)) }
                         td { (format!("{:.1}", r.composite)) } td { (r.grade) } td { (format!("{:.2}", r.deductions_total)) } }
                }
            }
            h2 { "Explain" }
            @for r in &reports {
                @if let Some(x) = &r.explain {
                    details { summary { (r.who) } pre { (serde_json::to_string_pretty(x).unwrap_or_default()) } }
                }
            }
        }
    };
    page("Reports", Some(&staff), body).into_response()
}
