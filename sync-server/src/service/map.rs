//! The coverage map of a collector's day as SVG: assigned cells coloured by
//! the share of their windows covered, the day's track drawn over them.
//! Reviewers would rather look than read.

use chrono::NaiveDate;
use field_core::assess::coverage;
use field_core::geo::tiling::outline;
use geo::{BoundingRect, CoordsIter};

use super::authorize::Operation;
use super::{Center, Result, ServiceError};
use crate::storage::{Principal, Role};

const SIZE: f64 = 800.0;
const MARGIN: f64 = 20.0;

/// Red (nothing covered) through amber to green (everything covered).
fn colour(share: f64) -> String {
    let s = share.clamp(0.0, 1.0);
    let (r, g) = if s < 0.5 {
        (220.0, 60.0 + 340.0 * s)
    } else {
        (220.0 - 340.0 * (s - 0.5), 230.0)
    };
    format!("rgb({:.0},{:.0},70)", r, g)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

impl Center {
    pub fn coverage_map(&self, p: &Principal, collector: &str, day: &str) -> Result<String> {
        self.require(p, Operation::ReadCases)?;
        let day: NaiveDate = day
            .parse()
            .map_err(|_| super::invalid("day", format!("`{day}` is not YYYY-MM-DD")))?;
        let user = self
            .storage
            .users()?
            .into_iter()
            .find(|u| u.role == Role::Collector && (u.id == collector || u.name == collector))
            .ok_or_else(|| ServiceError::NotFound(format!("collector {collector}")))?;
        let cfg = self.city_config()?.config;
        let patrol = cfg.patrol.patrol_day(day)?;
        let grid = match self.storage.grid()? {
            Some((_, g)) => field_core::import::parse_grid(&g.to_string(), &Default::default())?,
            None => Vec::new(),
        };
        let cells: Vec<_> = grid
            .into_iter()
            .filter(|c| user.cells.iter().any(|x| x == c.code.as_str()))
            .collect();
        if cells.is_empty() {
            return Err(super::invalid(
                "collector",
                "has no assigned cells in the grid",
            ));
        }
        let mut points = Vec::new();
        for d in self.storage.devices_of(&user.id)? {
            points.extend(
                self.storage
                    .track_between(d.actor, patrol.start_ms, patrol.end_ms)?,
            );
        }
        points.sort_by_key(|p| p.at);
        let windows = coverage(&cells, &patrol, &points, &cfg.patrol);
        let bounds = outline(&cells)
            .bounding_rect()
            .ok_or_else(|| ServiceError::Internal("empty outline".into()))?;
        let k = bounds.min().y.to_radians().cos();
        let (w, h) = (
            (bounds.max().x - bounds.min().x) * k,
            bounds.max().y - bounds.min().y,
        );
        let scale = (SIZE - 2.0 * MARGIN) / w.max(h).max(1e-9);
        let xy = |lon: f64, lat: f64| {
            (
                MARGIN + (lon - bounds.min().x) * k * scale,
                MARGIN + (bounds.max().y - lat) * scale,
            )
        };
        let mut svg = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {SIZE} {SIZE}\" width=\"{SIZE}\" height=\"{SIZE}\" font-family=\"sans-serif\" font-size=\"10\">\n<title>{} {}</title>\n",
            escape(&user.name),
            day
        );
        for c in &cells {
            let mine: Vec<_> = windows
                .iter()
                .filter(|w| w.cell == c.code.as_str())
                .collect();
            let share = mine.iter().filter(|w| w.covered).count() as f64 / mine.len().max(1) as f64;
            for poly in &c.geometry.0 {
                let pts: Vec<String> = poly
                    .exterior()
                    .coords_iter()
                    .map(|co| xy(co.x, co.y))
                    .map(|(x, y)| format!("{x:.1},{y:.1}"))
                    .collect();
                svg.push_str(&format!(
                    "<polygon class=\"cell\" data-cell=\"{}\" data-covered=\"{:.3}\" points=\"{}\" fill=\"{}\" fill-opacity=\"0.6\" stroke=\"#333\" stroke-width=\"1\"><title>{} {} {}/{} windows</title></polygon>\n",
                    c.code,
                    share,
                    pts.join(" "),
                    colour(share),
                    c.code,
                    c.zone.as_str(),
                    mine.iter().filter(|w| w.covered).count(),
                    mine.len()
                ));
            }
        }
        if !points.is_empty() {
            let line: Vec<String> = points
                .iter()
                .map(|p| xy(p.pos.lon(), p.pos.lat()))
                .map(|(x, y)| format!("{x:.1},{y:.1}"))
                .collect();
            svg.push_str(&format!("<polyline class=\"track\" points=\"{}\" fill=\"none\" stroke=\"#1f4fd8\" stroke-width=\"1.5\"/>\n", line.join(" ")));
        }
        let covered = windows.iter().filter(|w| w.covered).count();
        svg.push_str(&format!(
            "<text x=\"{MARGIN}\" y=\"{:.0}\">{} · {} · coverage {}/{} windows · {} track points</text>\n</svg>\n",
            SIZE - 5.0,
            escape(&user.name),
            day,
            covered,
            windows.len(),
            points.len()
        ));
        Ok(svg)
    }
}

/// Track points closer together in time than this stay one line; a longer
/// silence starts a new one (no straight line drawn across a gap).
const TRACK_BREAK_MS: i64 = 5 * 60_000;
/// Douglas–Peucker tolerance for drawn tracks, in degrees (≈1 m): a street
/// walk keeps its shape with a fraction of its points.
const TRACK_SIMPLIFY_DEG: f64 = 0.00001;

/// How the city map colours its cells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapColour {
    /// Share of the day's windows covered, red through green.
    Coverage,
    /// The cell's zone.
    Zone,
}

fn zone_colour(zone: &str) -> &'static str {
    match zone {
        "red" => "#e06666",
        "yellow" => "#f1c232",
        _ => "#6fa8dc",
    }
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

impl Center {
    /// The city on one day as a GeoJSON FeatureCollection the console
    /// draws without tiles: every cell (layer `cell`, with its zone, the
    /// day's covered and total windows and the fill colour), each
    /// collector's track (layer `track`, simplified, split at silences),
    /// the track's gaps with their causes as the recorder stated them
    /// (layer `gap`: from the last fix before to the first after) and the
    /// cases reported that day (layer `case`).
    pub fn city_map(
        &self,
        p: &Principal,
        day: &str,
        collector: Option<&str>,
        colour_by: MapColour,
    ) -> Result<serde_json::Value> {
        use geo::Simplify;
        use serde_json::json;
        self.require(p, Operation::ReadCases)?;
        let day: NaiveDate = day
            .parse()
            .map_err(|_| super::invalid("day", format!("`{day}` is not YYYY-MM-DD")))?;
        let cfg = self.city_config()?.config;
        let patrol = cfg.patrol.patrol_day(day)?;
        let Some((_, grid_json)) = self.storage.grid()? else {
            return Err(super::invalid("grid", "no grid imported yet"));
        };
        let grid = field_core::import::parse_grid(&grid_json.to_string(), &Default::default())?;
        let collectors: Vec<_> = self
            .storage
            .users()?
            .into_iter()
            .filter(|u| u.role == Role::Collector)
            .filter(|u| collector.is_none_or(|c| u.id == c || u.name == c))
            .collect();
        if let Some(c) = collector
            && collectors.is_empty()
        {
            return Err(ServiceError::NotFound(format!("collector {c}")));
        }
        // Windows per cell, summed over the collectors patrolling it that day.
        let mut windows: std::collections::HashMap<String, (usize, usize)> = Default::default();
        let mut features = Vec::new();
        let gaps = self.storage.track_gaps()?;
        let tz = cfg.patrol.tz()?;
        for u in &collectors {
            let assignments = self.storage.assignments(&u.id)?;
            let codes = super::assignments::cells_in_force(&assignments, &u.cells, day);
            let cells: Vec<_> = grid
                .iter()
                .filter(|c| codes.iter().any(|x| x == c.code.as_str()))
                .cloned()
                .collect();
            let mut points = Vec::new();
            let devices = self.storage.devices_of(&u.id)?;
            for d in &devices {
                points.extend(self.storage.track_between(
                    d.actor,
                    patrol.start_ms,
                    patrol.end_ms,
                )?);
            }
            points.sort_by_key(|p| p.at);
            for (_, g) in gaps.iter().filter(|(a, g)| {
                devices.iter().any(|d| d.actor == *a)
                    && g.to.millis() >= patrol.start_ms
                    && g.from.millis() <= patrol.end_ms
            }) {
                let before = points.iter().rev().find(|p| p.at <= g.from);
                let after = points.iter().find(|p| p.at >= g.to);
                let at =
                    |p: &field_core::model::TrackPoint| [round6(p.pos.lon()), round6(p.pos.lat())];
                let geometry = match (before, after) {
                    (Some(a), Some(b)) => {
                        json!({ "type": "LineString", "coordinates": [at(a), at(b)] })
                    }
                    (Some(p), None) | (None, Some(p)) => {
                        json!({ "type": "Point", "coordinates": at(p) })
                    }
                    (None, None) => continue,
                };
                let local = |t: field_core::model::Timestamp| {
                    chrono::DateTime::from_timestamp_millis(t.millis())
                        .map(|d| d.with_timezone(&tz).format("%H:%M").to_string())
                        .unwrap_or_default()
                };
                features.push(json!({
                    "type": "Feature",
                    "geometry": geometry,
                    "properties": {
                        "layer": "gap", "collector": u.name, "cause": g.cause.as_str(),
                        "from": local(g.from), "to": local(g.to), "minutes": g.minutes(),
                    },
                }));
            }
            for w in coverage(&cells, &patrol, &points, &cfg.patrol) {
                let e = windows.entry(w.cell).or_default();
                e.0 += usize::from(w.covered);
                e.1 += 1;
            }
            let mut lines = Vec::new();
            for run in points.chunk_by(|a, b| b.at.millis() - a.at.millis() <= TRACK_BREAK_MS) {
                let line: geo::LineString<f64> =
                    run.iter().map(|p| (p.pos.lon(), p.pos.lat())).collect();
                let line = line.simplify(TRACK_SIMPLIFY_DEG);
                if line.0.len() >= 2 {
                    lines.push(
                        line.0
                            .iter()
                            .map(|c| [round6(c.x), round6(c.y)])
                            .collect::<Vec<_>>(),
                    );
                }
            }
            if !lines.is_empty() {
                features.push(json!({
                    "type": "Feature",
                    "geometry": { "type": "MultiLineString", "coordinates": lines },
                    "properties": { "layer": "track", "collector": u.name, "points": points.len() },
                }));
            }
        }
        let mut out = Vec::with_capacity(grid.len() + features.len());
        for f in grid_json["features"].as_array().into_iter().flatten() {
            let code = f["properties"]["code"].as_str().unwrap_or_default();
            let zone = f["properties"]["zone"].as_str().unwrap_or("blue");
            let (covered, total) = windows.get(code).copied().unwrap_or((0, 0));
            let fill = match colour_by {
                MapColour::Zone => zone_colour(zone).to_string(),
                MapColour::Coverage if total == 0 => "#dddddd".to_string(),
                MapColour::Coverage => colour(covered as f64 / total as f64),
            };
            out.push(json!({
                "type": "Feature",
                "geometry": f["geometry"],
                "properties": {
                    "layer": "cell", "code": code, "zone": zone,
                    "name": f["properties"]["name"],
                    "covered": covered, "windows": total, "fill": fill,
                },
            }));
        }
        out.extend(features);
        let cases = self.storage.case_page(&field_core::store::CaseQuery {
            reported_between: Some((patrol.start_ms, patrol.end_ms)),
            collector: collector
                .and_then(|_| collectors.first())
                .map(|u| u.name.clone()),
            ..Default::default()
        })?;
        for v in &cases.cases {
            let Some(place) = &v.placement else { continue };
            out.push(json!({
                "type": "Feature",
                "geometry": { "type": "Point", "coordinates": [round6(place.pos.lon()), round6(place.pos.lat())] },
                "properties": {
                    "layer": "case", "id": v.id,
                    "status": v.statuses().iter().map(|s| s.as_str()).collect::<Vec<_>>().join("|"),
                    "category": v.category.as_ref().map(|c| c.to_string()),
                    "collector": v.origin.as_ref().map(|o| o.collector.clone()),
                },
            }));
        }
        Ok(json!({
            "type": "FeatureCollection",
            "day": day.to_string(),
            "colour_by": match colour_by { MapColour::Coverage => "coverage", MapColour::Zone => "zone" },
            "features": out,
        }))
    }
}
