//! The city dashboard (大屏) for the center's wall screen: large figures,
//! dark, readable across a room; the page refreshes its own figures
//! (`dashboard.js` polls the data, the map's cells are recoloured) without
//! reloading. Every screen reads the one computation the service keeps.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use field_i18n::Lang;
use maud::{Markup, html};

use super::layout::{page, service_error, t, tr};
use super::session::Staff;
use crate::http::routes::blocking;
use crate::http::{AppError, AppState};
use crate::service::Dashboard;

const DASHBOARD_JS: &str = include_str!("dashboard.js");
/// How often a screen asks for the figures again (s).
const REFRESH_S: u32 = 30;

const STYLE: &str = "#dash{background:#0b1a2b;color:#e8f0ff;padding:1em;font-size:22px}\
#dash .big{font-size:64px;font-weight:bold;line-height:1.1}#dash .tiles{display:flex;gap:1em;flex-wrap:wrap}\
#dash .tile{background:#13304f;padding:.5em 1em;min-width:10em}#dash table td,#dash table th{border-color:#345;font-size:22px}\
#dash .late{color:#ff8a80}#dash .ok{color:#9be7a0}#dash ul{margin:.2em 0;padding-left:1.2em}";

fn tile(id: &str, label: String, value: String, class: &str) -> Markup {
    html! { div.tile { div { (label) } div.big.(class) id=(id) { (value) } } }
}

fn figures(l: Lang, d: &Dashboard, tz: chrono_tz::Tz) -> Markup {
    let coverage = if d.coverage_windows == 0 {
        "—".to_string()
    } else {
        l.percent(d.coverage_covered as f64 / d.coverage_windows as f64)
    };
    html! {
        div.tiles {
            (tile("dash-coverage", t(l, "dash-coverage"), coverage, "ok"))
            (tile("dash-on-post", t(l, "dash-on-post"), d.on_post.len().to_string(), "ok"))
            (tile("dash-off-post", t(l, "dash-off-post"), d.off_post.len().to_string(), "late"))
            (tile("dash-reported", t(l, "dash-cases"), d.totals.reported.to_string(), ""))
            (tile("dash-tasks-due", t(l, "dash-tasks-due"), d.tasks_due.to_string(), ""))
            (tile("dash-tasks-late", t(l, "dash-tasks-late"), d.tasks_late.to_string(), "late"))
        }
        table #dash-classes {
            tr { th { (t(l, "dash-class")) } th { (t(l, "dash-reported")) } th { (t(l, "dash-registered")) }
                 th { (t(l, "dash-dispatched")) } th { (t(l, "dash-closed")) } }
            @for c in d.classes.iter().chain([&d.totals]) {
                tr data-class=(c.class) {
                    td { @if c.class == "*" { (t(l, "dash-total")) } @else { (c.class) " " (c.name) } }
                    td { (c.reported) } td { (c.registered) } td { (c.dispatched) } td { (c.closed) }
                }
            }
        }
        div.tiles {
            div.tile { div { (t(l, "dash-off-post")) } ul #dash-off-list { @for n in &d.off_post { li { (n) } } } }
            div.tile { div { (t(l, "dash-red-flags")) }
                ul #dash-flag-counts { @for (kind, n) in &d.red_flag_counts {
                    li data-flag=(kind) { (t(l, &format!("flag-{kind}"))) " " b { (n) } } } }
                ul #dash-flags {
                @for f in d.red_flags.iter().take(10) {
                    li data-flag=(f.kind) { (t(l, &format!("flag-{}", f.kind))) " · " (f.collector) " · " (f.case.get(..8).unwrap_or(&f.case)) }
                } } }
        }
        p #dash-updated data-at=(d.computed_at_ms) {
            (tr(l, "dash-updated", &[("time", l.date_time(d.computed_at_ms, tz).into()), ("seconds", REFRESH_S.into())]))
        }
    }
}

pub async fn dashboard(State(s): State<AppState>, staff: Staff) -> Response {
    let (c, p) = (s.center.clone(), staff.principal.clone());
    let (d, tz) = match blocking(move || Ok((c.dashboard(&p)?, c.city_tz()?))).await {
        Ok(v) => v,
        Err(e) => return service_error(&staff, e),
    };
    let l = staff.lang;
    let map_src = format!("/console/map/data?day={}&colour=coverage", d.day);
    let body = html! {
        style { (maud::PreEscaped(STYLE)) }
        div #dash data-src="/console/dashboard/data" data-refresh=(REFRESH_S)
            data-updated-text=(tr(l, "dash-updated", &[("time", "{time}".into()), ("seconds", REFRESH_S.into())]))
            data-stale-text=(tr(l, "dash-stale", &[("time", "{time}".into())])) {
            (figures(l, &d, tz))
            p #map-status { (t(l, "map-drawing")) }
            svg #map xmlns="http://www.w3.org/2000/svg" viewBox="0 0 900 900" width="700" height="700"
                style="background:#f8f8f4" {}
        }
        script src="/console/assets/map.js" data-src=(map_src)
            data-status-text=(super::map::status_template(l)) data-error-text=(super::map::error_template(l)) {}
        script src="/console/assets/dashboard.js" {}
    };
    page(l, &t(l, "dash-title"), Some(&staff), body).into_response()
}

#[derive(serde::Deserialize, Default)]
pub struct DayQuery {
    /// A past day's wall (YYYY-MM-DD); today when absent.
    #[serde(default)]
    day: Option<chrono::NaiveDate>,
}

/// The figures as the screens poll them (JSON; today's is the one kept
/// computation every screen shares).
pub async fn dashboard_data(
    State(s): State<AppState>,
    staff: Staff,
    query: Result<Query<DayQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, AppError> {
    let Query(q) = query?;
    let (c, p) = (s.center.clone(), staff.principal.clone());
    let d = blocking(move || match q.day {
        Some(day) => c.dashboard_of(&p, day),
        None => Ok(c.dashboard(&p)?.as_ref().clone()),
    })
    .await?;
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(d)).into_response())
}

pub async fn dashboard_js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        DASHBOARD_JS,
    )
        .into_response()
}
