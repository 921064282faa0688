//! Collector and company report pages: the four rates with composite,
//! grade and deductions, a chart of each day's rates over the period, and
//! every explain list as a table.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;

use super::layout::{page, service_error};
use super::session::Staff;
use crate::http::AppState;
use crate::http::routes::blocking;
use crate::service::{DayRates, Rate, Report, ReportQuery};
use crate::storage::Role;

#[derive(Deserialize, Default)]
pub struct ReportForm {
    #[serde(default)]
    collector: String,
    #[serde(default)]
    company: String,
    #[serde(default)]
    period: String,
}

fn pct(r: &Rate) -> String {
    match r.rate {
        Some(x) => format!("{:.1}% ({}/{})", x * 100.0, r.n, r.d),
        None => format!("— ({}/{})", r.n, r.d),
    }
}

const SERIES: [(&str, &str); 4] = [
    ("coverage", "#2a8a3e"),
    ("miss rate", "#c0392b"),
    ("timeliness", "#1f4fd8"),
    ("error rate", "#e08e0b"),
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
fn chart(daily: &[DayRates]) -> Markup {
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
                        stroke=(SERIES[*s].1) stroke-width="2" {}
                }
                @for (i, d) in daily.iter().enumerate() {
                    @if let Some(r) = series_rate(d, *s) {
                        circle cx=(x(i)) cy=(y(r)) r="2.5" fill=(SERIES[*s].1) {
                            title { (SERIES[*s].0) " " (d.day) ": " (format!("{:.1}%", r * 100.0)) }
                        }
                    }
                }
            }
        }
        p.legend { @for (name, colour) in SERIES { span style={ "color:" (colour) } { "■ " (name) } " " } }
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
fn explain_table(name: &str, items: &[Value]) -> Markup {
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
            @if items.is_empty() { p { "none" } } @else {
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

fn report_block(r: &Report) -> Markup {
    // The typed explanation, as tables keyed by list name.
    let explain = r
        .explain
        .as_ref()
        .and_then(|e| serde_json::to_value(e).ok());
    html! {
        section.report data-who=(r.who) {
            h2 { (r.who) " · " (r.period) @if !r.complete { span.sofar { " (so far)" } } }
            p { (r.days_assigned) " day(s) charged of " (r.days) @if !r.complete { ": the period is still running, nothing after now is charged" } "." }
            table.rates {
                tr { th { "Coverage" } th { "Miss rate" } th { "Timeliness" } th { "Error rate" }
                     th { "Composite" } th { "Grade" } th { "Deductions (yuan)" } }
                tr { td.coverage { (pct(&r.coverage)) } td.miss { (pct(&r.miss_rate)) }
                     td.timeliness { (pct(&r.timeliness)) } td.error { (pct(&r.error_rate)) }
                     td.composite { (format!("{:.1}", r.composite)) } td.grade { (r.grade) }
                     td { (format!("{:.2}", r.deductions_total)) } }
            }
            p { (r.cases_reported) " cases reported, " (r.quick_fixes) " quick fixes, "
                (r.late_starts) " late starts, " (r.early_leaves) " early leaves, "
                (r.absent_halves) " half-days absent, " (r.off_post_events) " off-post events"
                @if !r.quota_breaches.is_empty() { "; quotas missed: " (r.quota_breaches.join(", ")) } }
            @if let Some(s) = &r.settlement {
                p.settlement { "Settlement: fee " (format!("{:.2}", s.fee)) " − deductions " (format!("{:.2}", s.deductions))
                    ": payable " (format!("{:.2}", s.payable)) " yuan, due by " (s.due_by)
                    @if s.owed_back > 0.0 { "; the company owes back " (format!("{:.2}", s.owed_back)) " yuan" }
                    @if s.waived > 0.0 { "; " (format!("{:.2}", s.waived)) " yuan of deductions waived by the cap" } }
            }
            @if r.daily.len() > 1 { (chart(&r.daily)) }
            @if let Some(Value::Object(lists)) = &explain {
                h3 { "Explain" }
                @for (name, items) in lists {
                    (explain_table(name, items.as_array().map(Vec::as_slice).unwrap_or(&[])))
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
    let body = html! {
        form #report-form method="get" action="/console/report" {
            label { "Collector " input name="collector" value=(q.collector); } " "
            label { "Company " input name="company" value=(q.company); } " "
            label { "Period " input name="period" placeholder="2026-11, 2026-11-26, 2026-W48, 2026-Q4" value=(q.period) required; } " "
            button type="submit" { "Report" }
        }
        @if !chosen {
            h2 { "Collectors" }
            ul #collectors { @for u in &users {
                li { a href=(link(("collector", &u.user.name))) { (u.user.name) }
                     @if let Some(c) = &u.user.company { " · " (c) } }
            } }
            h2 { "Companies" }
            ul #companies { @for c in &companies { li { a href=(link(("company", c))) { (c) } } } }
        }
        @for r in &shown { (report_block(r)) }
    };
    let title = if chosen { "Report" } else { "Reports" };
    page(title, Some(&staff), body).into_response()
}
