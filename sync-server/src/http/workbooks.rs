//! The XLSX downloads, for the API (`GET /v1/center/{report,settlement,
//! cases}.xlsx`, the language from `Accept-Language`) and for the console
//! (`/console/…xlsx`, the signed-in person's language). One builder each.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use field_i18n::Lang;

use super::auth::Auth;
use super::routes::blocking;
use super::{AppError, AppState};
use crate::exports::workbook;
use crate::service::{Center, QueueFilter, ReportQuery, ServiceError};
use crate::storage::Principal;

/// At most this many cases in one workbook: narrow the filters for more.
pub const MAX_WORKBOOK_CASES: usize = 100_000;

#[derive(Clone, Copy, Debug)]
pub enum Book {
    Report,
    Settlement,
}

impl Book {
    pub fn file_name(self) -> &'static str {
        match self {
            Book::Report => "report.xlsx",
            Book::Settlement => "settlement.xlsx",
        }
    }
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct BookQuery {
    #[serde(default)]
    pub period: String,
    #[serde(default)]
    pub collector: String,
    #[serde(default)]
    pub company: String,
}

fn failed(e: workbook::WorkbookError) -> ServiceError {
    ServiceError::Internal(e.to_string())
}

/// The reports or the settlement asked for, as a workbook.
pub fn report_book(
    c: &Center,
    p: &Principal,
    l: Lang,
    book: Book,
    q: BookQuery,
) -> Result<Vec<u8>, ServiceError> {
    let some = |s: String| Some(s).filter(|s| !s.trim().is_empty());
    let reports = c.report(
        p,
        ReportQuery {
            period: q.period,
            collector: some(q.collector),
            company: some(q.company),
            explain: false,
            daily: false,
        },
    )?;
    match book {
        Book::Report => workbook::reports(l, &reports),
        Book::Settlement => workbook::settlement(l, &reports),
    }
    .map_err(failed)
}

/// The queue's cases matching `filter`, every page, as a workbook.
pub fn cases_book(
    c: &Center,
    p: &Principal,
    l: Lang,
    mut filter: QueueFilter,
) -> Result<Vec<u8>, ServiceError> {
    filter.offset = 0;
    filter.limit = MAX_WORKBOOK_CASES + 1;
    let page = c.queue(p, &filter)?;
    if page.rows.len() > MAX_WORKBOOK_CASES {
        return Err(crate::service::invalid(
            "filters",
            format!(
                "{} cases match; a workbook holds at most {MAX_WORKBOOK_CASES}: narrow the filters",
                page.total
            ),
        ));
    }
    workbook::cases(l, &page.rows, c.city_tz()?).map_err(failed)
}

/// A workbook as a download.
pub fn xlsx(bytes: Vec<u8>, name: &str) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet".to_string(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        bytes,
    )
        .into_response()
}

/// The API route serving `book` (`/v1/center/report.xlsx`,
/// `/v1/center/settlement.xlsx`): the language from `Accept-Language`.
pub fn api_book(book: Book) -> axum::routing::MethodRouter<AppState> {
    axum::routing::get(
        move |State(s): State<AppState>,
              Auth(p): Auth,
              headers: HeaderMap,
              query: Result<Query<BookQuery>, axum::extract::rejection::QueryRejection>| async move {
            let Query(q) = query.map_err(AppError::from)?;
            let (c, l) = (s.center.clone(), super::accepted_lang(&headers));
            let bytes = blocking(move || report_book(&c, &p, l, book, q)).await?;
            Ok::<_, AppError>(xlsx(bytes, book.file_name()))
        },
    )
}

pub async fn api_cases(
    State(s): State<AppState>,
    Auth(p): Auth,
    headers: HeaderMap,
    query: Result<Query<QueueFilter>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, AppError> {
    let Query(f) = query?;
    let (c, l) = (s.center.clone(), super::accepted_lang(&headers));
    let bytes = blocking(move || cases_book(&c, &p, l, f)).await?;
    Ok(xlsx(bytes, "cases.xlsx"))
}
