//! The city map: every cell coloured by the day's coverage or by zone, the
//! collectors' tracks and the day's cases, drawn in the browser from the
//! GeoJSON at `/console/map/data` (no base-map tiles).

use axum::Json;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;

use super::layout::{page, service_error, t, tr};
use super::session::Staff;
use crate::http::routes::blocking;
use crate::http::{AppError, AppState};
use crate::service::MapColour;

/// The script that draws the map (no library: SVG by hand, ~100 lines).
const MAP_JS: &str = include_str!("map.js");

#[derive(Deserialize, Default)]
pub struct MapQuery {
    #[serde(default)]
    day: String,
    #[serde(default)]
    collector: String,
    #[serde(default)]
    colour: String,
}

impl MapQuery {
    fn colour(&self) -> MapColour {
        if self.colour == "zone" {
            MapColour::Zone
        } else {
            MapColour::Coverage
        }
    }
}

pub async fn map(
    State(s): State<AppState>,
    staff: Staff,
    query: Result<Query<MapQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let mut q = query.map(|Query(q)| q).unwrap_or_default();
    if q.day.is_empty() {
        let center = s.center.clone();
        match blocking(move || center.today()).await {
            Ok(d) => q.day = d.to_string(),
            Err(e) => return service_error(&staff, e),
        }
    }
    let mut src = form_urlencoded::Serializer::new(String::new());
    src.append_pair("day", &q.day);
    if !q.collector.is_empty() {
        src.append_pair("collector", &q.collector);
    }
    src.append_pair(
        "colour",
        if q.colour == "zone" {
            "zone"
        } else {
            "coverage"
        },
    );
    let src = format!("/console/map/data?{}", src.finish());
    let l = staff.lang;
    let body = html! {
        form #map-form method="get" action="/console/map" {
            label { (t(l, "map-day")) " " input type="date" name="day" value=(q.day) required; } " "
            label { (t(l, "col-collector")) " " input name="collector" value=(q.collector) placeholder=(t(l, "map-all")); } " "
            label { (t(l, "map-colour")) " " select name="colour" {
                option value="coverage" selected[q.colour != "zone"] { (t(l, "map-colour-coverage")) }
                option value="zone" selected[q.colour == "zone"] { (t(l, "map-colour-zone")) }
            } } " "
            button type="submit" { (t(l, "map-show")) }
        }
        p #map-status { (t(l, "map-drawing")) }
        svg #map xmlns="http://www.w3.org/2000/svg" viewBox="0 0 900 900" width="900" height="900"
            style="border:1px solid #ccc;background:#f8f8f4" {}
        p.legend { (t(l, "map-legend")) }
        script src="/console/assets/map.js" data-src=(src)
            data-status-text=(status_template(l)) data-error-text=(error_template(l)) {}
    };
    page(l, &t(l, "map-title"), Some(&staff), body).into_response()
}

/// The map's status line in the page's language, with `{cells}`, `{tracks}`,
/// `{cases}`, `{gaps}` and `{day}` for the script to fill in.
pub(super) fn status_template(l: field_i18n::Lang) -> String {
    tr(
        l,
        "map-status",
        &[
            ("cells", "{cells}".into()),
            ("tracks", "{tracks}".into()),
            ("cases", "{cases}".into()),
            ("gaps", "{gaps}".into()),
            ("day", "{day}".into()),
        ],
    )
}

/// The map's failure line, with `{reason}` for the script.
pub(super) fn error_template(l: field_i18n::Lang) -> String {
    tr(l, "map-error", &[("reason", "{reason}".into())])
}

pub async fn map_data(
    State(s): State<AppState>,
    staff: Staff,
    query: Result<Query<MapQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, AppError> {
    let Query(q) = query?;
    let center = s.center.clone();
    let colour = q.colour();
    let p = staff.principal.clone();
    let collector = Some(q.collector.clone()).filter(|c| !c.is_empty());
    let fc = blocking(move || center.city_map(&p, &q.day, collector.as_deref(), colour)).await?;
    Ok(Json(fc).into_response())
}

pub async fn map_js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        MAP_JS,
    )
        .into_response()
}
