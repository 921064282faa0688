//! The review queue page: filters, one page of 50 cases with a thumbnail,
//! status, flags and a register button each, and links through the pages.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use field_core::model::{CaseSource, Status};
use maud::html;
use serde::Deserialize;

use super::actions;
use super::layout::{error_page, local_time, page, service_error, status_name, t, tr};
use super::session::Staff;
use crate::http::AppState;
use crate::http::routes::blocking;
use crate::service::{CaseRow, FLAG_KINDS, QueueFilter};

pub const PAGE_SIZE: usize = 50;

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
    pub(super) fn filter(&self) -> QueueFilter {
        let some = |s: &str| Some(s.to_string()).filter(|s| !s.trim().is_empty());
        QueueFilter {
            status: some(&self.status),
            category: some(&self.category),
            cell: some(&self.cell),
            collector: some(&self.collector),
            flag: some(&self.flag),
            id: None,
            offset: self.page * PAGE_SIZE,
            limit: PAGE_SIZE,
        }
    }

    /// The same filters as a workbook of every matching case.
    fn xlsx_link(&self) -> String {
        let mut out = form_urlencoded::Serializer::new(String::new());
        for (k, v) in self.pairs() {
            out.append_pair(k, v);
        }
        format!("/console/cases.xlsx?{}", out.finish())
    }

    fn pairs(&self) -> Vec<(&'static str, &str)> {
        [
            ("status", self.status.as_str()),
            ("category", &self.category),
            ("cell", &self.cell),
            ("collector", &self.collector),
            ("flag", &self.flag),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .collect()
    }

    fn link(&self, page: usize) -> String {
        let mut out = form_urlencoded::Serializer::new(String::new());
        for (k, v) in self.pairs() {
            out.append_pair(k, v);
        }
        out.append_pair("page", &page.to_string());
        format!("/console/queue?{}", out.finish())
    }
}

fn statuses(lang: field_i18n::Lang, row: &CaseRow) -> String {
    row.summary
        .status
        .iter()
        .map(|s| status_name(lang, s.as_str()))
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
            &staff.lang.t("err-filters"),
        );
    };
    let center = s.center.clone();
    let p = staff.principal.clone();
    let filter = q.filter();
    let found = blocking(move || Ok((center.queue(&p, &filter)?, center.city_tz()?))).await;
    let (found, tz) = match found {
        Ok(found) => found,
        Err(e) => return service_error(&staff, e),
    };
    let pages = found.total.div_ceil(PAGE_SIZE).max(1);
    let page_no = q.page;
    let back = q.link(page_no);
    let l = staff.lang;
    let body = html! {
        form #filters method="get" action="/console/queue" {
            label { (t(l, "filter-status")) " " select name="status" {
                option value="" { (t(l, "filter-any")) }
                @for st in Status::ALL { option value=(st.as_str()) selected[q.status == st.as_str()] { (status_name(l, st.as_str())) } }
            } } " "
            label { (t(l, "filter-category")) " " input name="category" size="8" value=(q.category) placeholder="BJ01"; } " "
            label { (t(l, "filter-cell")) " " input name="cell" size="16" value=(q.cell); } " "
            label { (t(l, "filter-collector")) " " input name="collector" size="10" value=(q.collector); } " "
            label { (t(l, "filter-flag")) " " select name="flag" {
                option value="" { "—" }
                @for f in ["any", "conflict"].into_iter().chain(FLAG_KINDS) { option value=(f) selected[q.flag == f] { (t(l, &format!("flag-{f}"))) } }
            } } " "
            button #filter type="submit" { (t(l, "filter-submit")) }
            " "
            a #cases-xlsx href=(q.xlsx_link()) { (t(l, "report-cases-xlsx")) }
        }
        p #count { (tr(l, "queue-total", &[("count", found.total.into()), ("page", (page_no + 1).into()), ("pages", pages.into())])) }
        table #queue {
            tr { th { (t(l, "col-case")) } th { (t(l, "col-photo")) } th { (t(l, "col-status")) } th { (t(l, "col-category")) } th { (t(l, "col-cell")) } th { (t(l, "col-collector")) }
                 th { (tr(l, "col-reported", &[("zone", tz.name().into())])) } th { (t(l, "col-description")) } th { (t(l, "col-flags")) } th { (t(l, "col-act")) } }
            @for row in &found.rows {
                @let id = row.summary.id.to_string();
                tr data-case=(id) {
                    td { a href={ "/console/cases/" (id) } { (id.get(..8).unwrap_or(&id)) } }
                    td {
                        @if row.photos_pending { (t(l, "photos-pending")) }
                        @else if let Some(hash) = row.photo_hashes.first() {
                            img.thumb loading="lazy" src={ "/console/photos/" (hash) "/thumb" } alt=(t(l, "col-photo"));
                        }
                        @if row.summary.photos > 1 { " +" (row.summary.photos - 1) }
                    }
                    td.status data-status=(row.summary.status.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("|")) { (statuses(l, row)) @if row.summary.conflict { " " span.conflict { (t(l, "conflict")) } } }
                    td { (row.summary.category.as_deref().unwrap_or("")) " " (row.summary.category_name.as_deref().unwrap_or("")) }
                    td { (row.summary.cell.as_deref().unwrap_or("")) }
                    td { (row.summary.collector.as_deref().unwrap_or("")) }
                    td { (row.summary.reported_at.map(|at| local_time(l, at.millis(), tz)).unwrap_or_default()) }
                    td.desc { (row.summary.description.as_deref().unwrap_or("")) }
                    td { @for f in &row.flags { span.flag data-flag=(f.kind) { (t(l, &format!("flag-{}", f.kind))) } " " }
                         @if !row.likely_duplicates.is_empty() { span.flag { (t(l, "maybe-duplicate")) } } }
                    td.actions {
                        @let quick_fix = row.summary.source == Some(CaseSource::QuickFix);
                        (actions::forms(l, &id, &actions::allowed(&row.summary.status, quick_fix), &staff.csrf, Some(&back)))
                    }
                }
            }
        }
        p {
            @if page_no > 0 { a #prev href=(q.link(page_no - 1)) { (t(l, "page-prev")) } " " }
            @if page_no + 1 < pages { a #next href=(q.link(page_no + 1)) { (t(l, "page-next")) } }
        }
    };
    page(l, &t(l, "queue-title"), Some(&staff), body).into_response()
}

/// `/console/cases.xlsx`: every case the queue's filters match, as a
/// workbook in the person's language.
pub async fn cases_xlsx(
    State(s): State<AppState>,
    staff: Staff,
    query: Result<Query<QueueQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let (c, p, l) = (s.center.clone(), staff.principal.clone(), staff.lang);
    let filter = q.filter();
    match blocking(move || crate::http::workbooks::cases_book(&c, &p, l, filter)).await {
        Ok(bytes) => crate::http::workbooks::xlsx(bytes, "cases.xlsx"),
        Err(e) => service_error(&staff, e),
    }
}
