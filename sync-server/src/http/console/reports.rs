//! Collector and company report pages: the four rates with composite,
//! grade and deductions, a chart of each day's rates over the period, and
//! every explain list as a table.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;

use super::layout::{page, service_error, t, tr};
use super::session::Staff;
use crate::http::AppState;
use crate::http::routes::blocking;
use crate::service::{DayRates, Rate, Report, ReportQuery};
use crate::storage::Role;
use field_i18n::Lang;

#[derive(Deserialize, Default)]
pub struct ReportForm {
    #[serde(default)]
    collector: String,
    #[serde(default)]
    company: String,
    #[serde(default)]
    period: String,
}

fn pct(l: Lang, r: &Rate) -> String {
    match r.rate {
        Some(x) => format!("{} ({}/{})", l.percent(x), r.n, r.d),
        None => format!("— ({}/{})", r.n, r.d),
    }
}

/// The four rates: their series id, their message, their colour.
const SERIES: [(&str, &str, &str); 4] = [
    ("coverage", "rate-coverage", "#2a8a3e"),
    ("miss rate", "rate-miss", "#c0392b"),
    ("timeliness", "rate-timeliness", "#1f4fd8"),
    ("error rate", "rate-error", "#e08e0b"),
];

fn series_rate(d: &DayRates, i: usize) -> Option<f64> {
    match i {
        0 => d.coverage.rate,
        1 => d.miss_rate.rate,
        2 => d.timeliness.rate,
        _ => d.error_rate.rate,
    }
}

/// Each day's four rates as lines on 0–100 %; a day without a rate (no
/// denominator) breaks its line.
fn chart(l: Lang, daily: &[DayRates]) -> Markup {
    let (w, h, left, bottom) = (760.0, 240.0, 40.0, 24.0);
    let step = (w - left - 10.0) / (daily.len().max(2) - 1) as f64;
    let x = |i: usize| left + i as f64 * step;
    let y = |r: f64| 10.0 + (1.0 - r.clamp(0.0, 1.0)) * (h - bottom - 10.0);
    let lines: Vec<(usize, Vec<String>)> = (0..SERIES.len())
        .map(|s| {
            let mut runs = Vec::new();
            let mut run = String::new();
            for (i, d) in daily.iter().enumerate() {
                match series_rate(d, s) {
                    Some(r) => {
                        run.push_str(&format!("{:.1},{:.1} ", x(i), y(r)));
                    }
                    None if !run.is_empty() => runs.push(std::mem::take(&mut run)),
                    None => {}
                }
            }
            if !run.is_empty() {
                runs.push(run);
            }
            (s, runs)
        })
        .collect();
    html! {
        svg #chart xmlns="http://www.w3.org/2000/svg" width=(w) height=(h) viewBox={ "0 0 " (w) " " (h) }
            font-family="sans-serif" font-size="10" {
            @for t in [0.0, 0.25, 0.5, 0.75, 1.0] {
                line x1=(left) x2=(w - 10.0) y1=(y(t)) y2=(y(t)) stroke="#ddd" {}
                text x="2" y=(y(t) + 3.0) { (format!("{:.0}%", t * 100.0)) }
            }
            @for (i, d) in daily.iter().enumerate() {
                @if daily.len() <= 12 || i % 5 == 0 || i + 1 == daily.len() {
                    text x=((x(i) - 8.0).min(w - 32.0)) y=(h - 6.0) { (d.day.format("%m-%d").to_string()) }
                }
            }
            @for (s, runs) in &lines {
                @for run in runs {
                    polyline.series data-series=(SERIES[*s].0) points=(run) fill="none"
                        stroke=(SERIES[*s].2) stroke-width="2" {}
                }
                @for (i, d) in daily.iter().enumerate() {
                    @if let Some(r) = series_rate(d, *s) {
                        circle cx=(x(i)) cy=(y(r)) r="2.5" fill=(SERIES[*s].2) {
                            title { (t(l, SERIES[*s].1)) " " (l.date(d.day)) ": " (l.percent(r)) }
                        }
                    }
                }
            }
        }
        p.legend { @for (_, name, colour) in SERIES { span style={ "color:" (colour) } { "■ " (t(l, name)) } " " } }
    }
}

/// A cell of an explain table as a reader wants it: strings bare, objects
/// as `key: value` pairs (a rejection's `{"reason": "duplicate"}` reads
/// `reason: duplicate`), lists comma-separated.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Object(o) => o
            .iter()
            .map(|(k, v)| format!("{k}: {}", text(v)))
            .collect::<Vec<_>>()
            .join(", "),
        Value::Array(a) => a.iter().map(text).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

/// One explain list (an array of objects) as a table; columns are the
/// union of the items' keys, in first-seen order.
fn explain_table(l: Lang, name: &str, items: &[Value]) -> Markup {
    let mut cols: Vec<String> = Vec::new();
    for it in items {
        for k in it.as_object().into_iter().flat_map(|o| o.keys()) {
            if !cols.contains(k) {
                cols.push(k.clone());
            }
        }
    }
    html! {
        details open[items.len() <= 20] {
            summary { (name.replace('_', " ")) " (" (items.len()) ")" }
            @if items.is_empty() { p { (t(l, "report-none")) } } @else {
                table.explain data-list=(name) {
                    tr { @for c in &cols { th { (c) } } }
                    @for it in items {
                        tr { @for c in &cols { td { (text(&it[c.as_str()])) } } }
                    }
                }
            }
        }
    }
}

fn report_block(l: Lang, r: &Report) -> Markup {
    let explain = r
        .explain
        .as_ref()
        .and_then(|e| serde_json::to_value(e).ok());
    let money = |x: f64| l.number(x, 2);
    html! {
        section.report data-who=(r.who) {
            h2 { (r.who) " · " (r.period) @if !r.complete { span.sofar { " " (t(l, "report-so-far")) } } }
            p { (tr(l, "report-days", &[("charged", r.days_assigned.into()), ("days", r.days.into())]))
                @if !r.complete { (t(l, "report-running")) } "." }
            table.rates {
                tr { th { (t(l, "rate-coverage")) } th { (t(l, "rate-miss")) } th { (t(l, "rate-timeliness")) } th { (t(l, "rate-error")) }
                     th { (t(l, "composite")) } th { (t(l, "grade")) } th { (t(l, "report-deductions")) } }
                tr { td.coverage { (pct(l, &r.coverage)) } td.miss { (pct(l, &r.miss_rate)) }
                     td.timeliness { (pct(l, &r.timeliness)) } td.error { (pct(l, &r.error_rate)) }
                     td.composite { (l.number(r.composite, 1)) } td.grade { (r.grade) }
                     td { (money(r.deductions_total)) } }
            }
            p { (tr(l, "report-counts", &[
                    ("cases", r.cases_reported.into()), ("quick", r.quick_fixes.into()),
                    ("late", r.late_starts.into()), ("early", r.early_leaves.into()),
                    ("absent", r.absent_halves.into()), ("off", r.off_post_events.into())]))
                @if !r.quota_breaches.is_empty() { (tr(l, "report-quotas-missed", &[("which", r.quota_breaches.join(", ").into())])) } }
            @if let Some(s) = &r.settlement {
                p.settlement { (tr(l, "report-settlement", &[
                        ("fee", money(s.fee).into()), ("deductions", money(s.deductions).into()),
                        ("payable", money(s.payable).into()), ("due", s.due_by.to_string().into())]))
                    @if s.owed_back > 0.0 { (tr(l, "report-owed-back", &[("amount", money(s.owed_back).into())])) }
                    @if s.waived > 0.0 { (tr(l, "report-waived", &[("amount", money(s.waived).into())])) } }
            }
            @if r.daily.len() > 1 { (chart(l, &r.daily)) }
            @if let Some(Value::Object(lists)) = &explain {
                h3 { (t(l, "report-explain")) }
                @for (name, items) in lists {
                    (explain_table(l, name, items.as_array().map(Vec::as_slice).unwrap_or(&[])))
                }
            }
        }
    }
}

pub async fn report(
    State(s): State<AppState>,
    staff: Staff,
    query: Result<Query<ReportForm>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let mut q = query.map(|Query(q)| q).unwrap_or_default();
    let center = s.center.clone();
    let p = staff.principal.clone();
    let users = match blocking(move || center.users(&p, Some(Role::Collector))).await {
        Ok(u) => u,
        Err(e) => return service_error(&staff, e),
    };
    if q.period.is_empty() {
        let center = s.center.clone();
        match blocking(move || center.today()).await {
            Ok(d) => q.period = d.format("%Y-%m").to_string(),
            Err(e) => return service_error(&staff, e),
        }
    }
    let chosen = !q.collector.is_empty() || !q.company.is_empty();
    let reports = if chosen {
        let center = s.center.clone();
        let p = staff.principal.clone();
        let rq = ReportQuery {
            period: q.period.clone(),
            collector: Some(q.collector.clone()).filter(|c| !c.is_empty()),
            company: Some(q.company.clone()).filter(|c| !c.is_empty()),
            explain: true,
            daily: true,
        };
        match blocking(move || center.report(&p, rq)).await {
            Ok(r) => r,
            Err(e) => return service_error(&staff, e),
        }
    } else {
        Vec::new()
    };
    let mut companies: Vec<&str> = users
        .iter()
        .filter_map(|u| u.user.company.as_deref())
        .collect();
    companies.sort();
    companies.dedup();
    let link = |who: (&str, &str)| {
        let mut out = form_urlencoded::Serializer::new(String::new());
        out.append_pair(who.0, who.1);
        out.append_pair("period", &q.period);
        format!("/console/report?{}", out.finish())
    };
    // A company's page shows its total first, then each collector.
    let shown: Vec<&Report> = reports.iter().rev().collect();
    let l = staff.lang;
    let xlsx = |what: &str| {
        let mut out = form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("collector", &q.collector),
            ("company", &q.company),
            ("period", &q.period),
        ] {
            if !v.is_empty() {
                out.append_pair(k, v);
            }
        }
        format!("/console/{what}.xlsx?{}", out.finish())
    };
    let body = html! {
        form #report-form method="get" action="/console/report" {
            label { (t(l, "col-collector")) " " input name="collector" value=(q.collector); } " "
            label { (t(l, "report-company")) " " input name="company" value=(q.company); } " "
            label { (t(l, "report-period")) " " input name="period" placeholder="2026-11, 2026-11-26, 2026-W48, 2026-Q4" value=(q.period) required; } " "
            button type="submit" { (t(l, "report-submit")) }
        }
        @if chosen {
            p.downloads { a #report-xlsx href=(xlsx("report")) { (t(l, "report-xlsx")) } " · "
                a #settlement-xlsx href=(xlsx("settlement")) { (t(l, "report-settlement-xlsx")) } }
        }
        @if !chosen {
            h2 { (t(l, "report-collectors")) }
            ul #collectors { @for u in &users {
                li { a href=(link(("collector", &u.user.name))) { (u.user.name) }
                     @if let Some(c) = &u.user.company { " · " (c) } }
            } }
            h2 { (t(l, "report-companies")) }
            ul #companies { @for c in &companies { li { a href=(link(("company", c))) { (c) } } } }
        }
        @for r in &shown { (report_block(l, r)) }
    };
    let title = t(
        l,
        if chosen {
            "report-title"
        } else {
            "reports-title"
        },
    );
    page(l, &title, Some(&staff), body).into_response()
}

/// `/console/report.xlsx` and `/console/settlement.xlsx`: the page's report
/// as a workbook in the person's language.
pub fn book_route(book: crate::http::workbooks::Book) -> axum::routing::MethodRouter<AppState> {
    axum::routing::get(
        move |State(s): State<AppState>,
              staff: Staff,
              query: Result<
            Query<crate::http::workbooks::BookQuery>,
            axum::extract::rejection::QueryRejection,
        >| async move {
            let q = query.map(|Query(q)| q).unwrap_or_default();
            let (c, p, l) = (s.center.clone(), staff.principal.clone(), staff.lang);
            match blocking(move || crate::http::workbooks::report_book(&c, &p, l, book, q)).await {
                Ok(bytes) => crate::http::workbooks::xlsx(bytes, book.file_name()),
                Err(e) => service_error(&staff, e),
            }
        },
    )
}
